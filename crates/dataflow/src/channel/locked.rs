//! The drop-oldest ring: slots behind spin locks, because a full producer removes the oldest item itself,
//! racing the consumer for it (see [`super`] for the rule that settles the race).
//!
//! It is kept in the lock-free ring's shared value (that ring then has no
//! places), so each side's own positions live here too, as atomics only that
//! side writes (`Relaxed`: plain loads and stores).

use alloc::boxed::Box;
use core::sync::atomic::{AtomicUsize, Ordering};

use sis_platform::spsc::CachePadded;
use spin::mutex::SpinMutex;

use super::control::{increment, Control};
use super::Sent;

/// One place in the ring. Slots are packed, not padded to a cache line each:
/// consecutive items then share a line, so one line transfer between cores
/// carries several of them.
pub(super) type Slot<T> = SpinMutex<Option<T>>;

/// The producer's own positions; only it reads or writes them.
#[derive(Debug, Default)]
struct ProducerPosition {
    /// `tail % capacity`, kept without dividing.
    index: AtomicUsize,
    /// `head` as last read; `head` only grows, so this is a lower bound.
    cached_head: AtomicUsize,
}

/// The consumer's own positions; only it reads or writes them.
#[derive(Debug, Default)]
struct ConsumerPosition {
    /// `head` as the consumer last left it (the producer may advance `head`).
    head: AtomicUsize,
    /// `head % capacity`, kept without dividing.
    index: AtomicUsize,
    /// `tail` as last read; `tail` only grows, so this is a lower bound.
    cached_tail: AtomicUsize,
}

/// The ring both ends reach.
#[derive(Debug)]
pub(super) struct Ring<T> {
    /// Items ever queued; item `i` lives in slot `i % capacity` while
    /// `head <= i < tail`. Only the producer writes it.
    tail: CachePadded<AtomicUsize>,
    /// Items ever removed, received, drained or evicted. Only the holder of
    /// slot `head % capacity`'s lock advances it (the consumer, or the producer evicting).
    head: CachePadded<AtomicUsize>,
    producer: CachePadded<ProducerPosition>,
    consumer: CachePadded<ConsumerPosition>,
    /// `capacity` slots.
    slots: Box<[Slot<T>]>,
    capacity: usize,
}

impl<T> Ring<T> {
    /// A ring of `capacity` slots (checked by the caller); `None` when the heap cannot hold the slots.
    pub fn try_new(capacity: usize) -> Option<Self> {
        let mut slots = alloc::vec::Vec::new();
        slots.try_reserve_exact(capacity).ok()?;
        slots.resize_with(capacity, || SpinMutex::new(None));
        Some(Ring {
            tail: CachePadded::default(),
            head: CachePadded::default(),
            producer: CachePadded::default(),
            consumer: CachePadded::default(),
            slots: slots.into_boxed_slice(),
            capacity,
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// `(head, tail)`, `head` first.
    pub fn indices(&self) -> (usize, usize) {
        let head = self.head.0.load(Ordering::Acquire);
        (head, self.tail.0.load(Ordering::Acquire))
    }

    /// `index + 1`, modulo `capacity`, without dividing.
    #[inline(always)]
    fn next_index(&self, index: usize) -> usize {
        if index + 1 == self.capacity {
            0
        } else {
            index + 1
        }
    }

    /// Producer: queues `item`, first evicting the oldest item when the ring is full (counted in `control`).
    /// Kept out of line and marked cold: it sits beside the lock-free path in
    /// [`Sender::try_send`](super::Sender::try_send), whose registers it would otherwise crowd.
    #[cold]
    #[inline(never)]
    pub fn push(&self, item: T, control: &Control) -> Sent {
        let own = &self.producer.0;
        let tail = self.pushed();
        let mut sent = Sent::Queued;
        if tail - self.popped_at_least() >= self.capacity && tail - self.popped() >= self.capacity {
            sent = Sent::DroppedOldest;
        }
        let index = own.index.load(Ordering::Relaxed);
        // When full, the oldest item, `tail - capacity`, is in this slot.
        let mut slot = self.slots[index].lock();
        let oldest = if sent == Sent::DroppedOldest {
            // Under this lock only its holder may advance `head` from `tail - capacity`.
            let head = self.head.0.load(Ordering::Acquire);
            if head == tail - self.capacity {
                self.head.0.store(head + 1, Ordering::Release);
                own.cached_head.store(head + 1, Ordering::Relaxed);
                slot.replace(item)
            } else {
                // The consumer took it first: there is room.
                own.cached_head.store(head, Ordering::Relaxed);
                sent = Sent::Queued;
                *slot = Some(item);
                None
            }
        } else {
            *slot = Some(item);
            None
        };
        // Published under the lock: a consumer that wins the lock next finds
        // this item queued, instead of an old tail, and is not starved by a
        // producer that keeps evicting.
        self.tail.0.store(tail + 1, Ordering::Release);
        drop(slot);
        own.index.store(self.next_index(index), Ordering::Relaxed);
        if oldest.is_some() {
            // After the `head` store it accounts for (see `Control::stats`).
            increment(&control.producer.0.evicted, 1);
            drop(oldest);
        }
        sent
    }

    /// Producer: items ever queued (its own count).
    pub fn pushed(&self) -> usize {
        self.tail.0.load(Ordering::Relaxed)
    }

    /// Producer: a lower bound of `head`, as last read.
    pub fn popped_at_least(&self) -> usize {
        self.producer.0.cached_head.load(Ordering::Relaxed)
    }

    /// Producer: `head`, read now (also refreshes the lower bound).
    pub fn popped(&self) -> usize {
        let head = self.head.0.load(Ordering::Acquire);
        self.producer.0.cached_head.store(head, Ordering::Relaxed);
        head
    }

    /// Producer: whether `capacity` items are queued (`SeqCst`, for the waiting protocol).
    pub fn is_full(&self) -> bool {
        self.pushed() - self.head.0.load(Ordering::SeqCst) >= self.capacity
    }

    /// Consumer: removes the oldest queued item, if any (out of line and cold, as [`Ring::push`]).
    #[cold]
    #[inline(never)]
    pub fn pop(&self) -> Option<T> {
        let own = &self.consumer.0;
        loop {
            let mut head = self.head.0.load(Ordering::Acquire);
            if head != own.head.load(Ordering::Relaxed) {
                // The producer evicted items: item `head` is further on.
                own.head.store(head, Ordering::Relaxed);
                own.index.store(head % self.capacity, Ordering::Relaxed);
            }
            // `head` may have passed the cached tail.
            if head >= own.cached_tail.load(Ordering::Relaxed) {
                own.cached_tail.store(self.tail.0.load(Ordering::Acquire), Ordering::Relaxed);
                if head >= own.cached_tail.load(Ordering::Relaxed) {
                    return None;
                }
            }
            let index = own.index.load(Ordering::Relaxed);
            let mut slot = self.slots[index].lock();
            let current = self.head.0.load(Ordering::Acquire);
            if current != head {
                // The producer evicted item `head` first. If the oldest item now
                // lives in the slot held (always so with one place), take it rather
                // than chase a producer that keeps evicting.
                let same_slot = current % self.capacity == index;
                if !same_slot || current >= self.tail.0.load(Ordering::Acquire) {
                    continue;
                }
                head = current;
            }
            let item = slot.take();
            self.head.0.store(head + 1, Ordering::Release);
            drop(slot);
            own.head.store(head + 1, Ordering::Relaxed);
            own.index.store(self.next_index(index), Ordering::Relaxed);
            // The producer filled the slot before publishing a tail above `head`,
            // so this is `Some` (returned as it is: a large `T` is not copied again).
            debug_assert!(item.is_some(), "a slot below the tail holds its item");
            return item;
        }
    }

    /// Consumer: whether nothing is queued (`SeqCst`, for the waiting protocol).
    pub fn is_empty(&self) -> bool {
        let head = self.head.0.load(Ordering::SeqCst);
        self.tail.0.load(Ordering::SeqCst) <= head
    }
}
