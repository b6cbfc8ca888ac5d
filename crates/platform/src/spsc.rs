//! A bounded lock-free single-producer single-consumer ring of `T` with a safe API, for `sis-dataflow`'s channels.
//!
//! [`ring`] makes the ring and its two ends, once: a [`Producer`] that
//! pushes and a [`Consumer`] that pops. Neither end is `Clone` or `Sync`, so
//! at any time one thread pushes and one thread pops; that is what makes the
//! slot accesses below sound. Both ends may move to other threads (`Send`)
//! when `T` may.
//!
//! `tail` (written by the producer only) and `head` (by the consumer only)
//! count items ever pushed and ever popped; item `i` lives in slot
//! `i % capacity` while `head <= i < tail`. The producer writes slot `tail`
//! only once `tail - head < capacity`, then publishes `tail + 1` with a
//! `Release` store; the consumer reads slot `head` only once `head < tail`,
//! then publishes `head + 1`. Each `Acquire` load of the other side's index
//! makes the slot's contents (or its emptying) visible, so a slot is never
//! read and written at once and no atomic read-modify-write is needed: a
//! push is a slot write and a store, a pop a slot read and a store (the
//! design of `rtrb` and of Lamport's ring). Each end caches the other's
//! index and reloads it only when the cached value says full or empty. The
//! two indices sit on separate cache lines, apart from the read-only fields.
//!
//! The slots are allocated fallibly: a ring the heap cannot hold is `None`,
//! never an abort. Items still queued when the last end (or [`Ring`]
//! handle) goes are dropped with the ring, each exactly once.
//!
//! The ring also carries a value `S` that both ends can read (the dataflow
//! channel keeps its flags, counters and waiter tokens there), so one
//! allocation holds all of a channel's shared state.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::{Cell, UnsafeCell};
use core::fmt;
use core::mem::{ManuallyDrop, MaybeUninit};
use core::sync::atomic::{AtomicUsize, Ordering};

/// Aligns its content to 128 bytes: x86 fetches cache lines in adjacent pairs
/// and some aarch64 cores have 128-byte lines.
#[repr(align(128))]
#[derive(Debug, Default)]
pub struct CachePadded<T>(pub T);

/// The state both ends share: the two indices, the slots, and the caller's `S`.
///
/// Reachable from an end ([`Producer::ring`], [`Consumer::ring`]) and
/// clonable as an `Arc`, to read the indices from a third thread (e.g. for
/// statistics); it cannot push or pop.
#[repr(C)]
pub struct Ring<T, S = ()> {
    /// Items ever pushed. Written by the producer only.
    tail: CachePadded<AtomicUsize>,
    /// Items ever popped. Written by the consumer only.
    head: CachePadded<AtomicUsize>,
    capacity: usize,
    /// `capacity` places; slot `i % capacity` holds item `i` while `head <= i < tail`, and is uninitialised otherwise.
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    shared: S,
}

// SAFETY: a `&Ring` only reads `capacity`, the atomics and `&S` (hence
// `S: Sync`); the slots are reached only through the one `Producer` (writes
// slot `tail`) and the one `Consumer` (reads slot `head`), which the index
// protocol keeps apart (see the module docs), and items move from the
// producer's thread to the consumer's (hence `T: Send`). No `&T` is ever
// handed out, so `T: Sync` is not needed.
unsafe impl<T: Send, S: Sync> Sync for Ring<T, S> {}

/// Makes a ring of `capacity` slots carrying `shared`, and its two ends.
/// `None` when the heap cannot hold the slots (or their size overflows).
///
/// A ring of capacity 0 is always full and always empty.
pub fn ring<T, S>(capacity: usize, shared: S) -> Option<(Producer<T, S>, Consumer<T, S>)> {
    let mut slots = Vec::new();
    slots.try_reserve_exact(capacity).ok()?;
    slots.resize_with(capacity, || UnsafeCell::new(MaybeUninit::uninit()));
    let ring = Arc::new(Ring {
        tail: CachePadded(AtomicUsize::new(0)),
        head: CachePadded(AtomicUsize::new(0)),
        capacity,
        slots: slots.into_boxed_slice(),
        shared,
    });
    let producer = Producer {
        ring: ManuallyDrop::new(Arc::clone(&ring)),
        tail: Cell::new(0),
        index: Cell::new(0),
        cached_head: Cell::new(0),
    };
    let consumer =
        Consumer { ring: ManuallyDrop::new(ring), head: Cell::new(0), index: Cell::new(0), cached_tail: Cell::new(0) };
    Some((producer, consumer))
}

/// Bytes the slots of a ring of `capacity` items of `T` take.
pub const fn slot_bytes<T>(capacity: usize) -> usize {
    capacity.saturating_mul(core::mem::size_of::<T>())
}

impl<T, S> Ring<T, S> {
    /// Items the ring holds at most.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Items ever pushed (`Acquire`).
    #[inline]
    pub fn pushed(&self) -> usize {
        self.tail.0.load(Ordering::Acquire)
    }

    /// Items ever popped (`Acquire`).
    #[inline]
    pub fn popped(&self) -> usize {
        self.head.0.load(Ordering::Acquire)
    }

    /// The value both ends share.
    #[inline]
    pub fn shared(&self) -> &S {
        &self.shared
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
}

impl<T, S> Drop for Ring<T, S> {
    fn drop(&mut self) {
        if !core::mem::needs_drop::<T>() {
            return;
        }
        let (head, tail) = (*self.head.0.get_mut(), *self.tail.0.get_mut());
        let mut index = if self.capacity == 0 { 0 } else { head % self.capacity };
        for _ in head..tail {
            // SAFETY: `&mut self`: no end is left, so nothing else touches the
            // slots. Items `head..tail` are exactly the initialised slots
            // (pushed, not yet popped), each visited once here, so each queued
            // item is dropped exactly once.
            unsafe { self.slots[index].get_mut().assume_init_drop() };
            index = self.next_index(index);
        }
    }
}

impl<T, S: fmt::Debug> fmt::Debug for Ring<T, S> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Ring")
            .field("capacity", &self.capacity)
            .field("pushed", &self.pushed())
            .field("popped", &self.popped())
            .field("shared", &self.shared)
            .finish()
    }
}

/// The pushing end of a [`ring`]: one thread at a time pushes (`Send`, not `Sync`).
pub struct Producer<T, S = ()> {
    /// Dropped by value in `drop`: `Arc`'s own drop would hand this field's
    /// address to an out-of-line function, and an end whose address escapes
    /// cannot live in registers, so every push would load and store its
    /// positions in memory (about a third slower on one thread).
    ring: ManuallyDrop<Arc<Ring<T, S>>>,
    /// The producer's own copy of `tail` (only it writes `tail`).
    tail: Cell<usize>,
    /// `tail % capacity`, kept without dividing.
    index: Cell<usize>,
    /// `head` as last read; `head` only grows, so this is a lower bound.
    cached_head: Cell<usize>,
}

impl<T, S> Producer<T, S> {
    /// Queues `item`, visible to the consumer when this returns; gives it back when the ring is full.
    #[inline]
    pub fn push(&self, item: T) -> Result<(), T> {
        let ring = &*self.ring;
        let tail = self.tail.get();
        if tail.wrapping_sub(self.cached_head.get()) >= ring.capacity {
            let head = ring.head.0.load(Ordering::Acquire);
            self.cached_head.set(head);
            if tail.wrapping_sub(head) >= ring.capacity {
                return Err(item);
            }
        }
        let index = self.index.get();
        // SAFETY: `index == tail % capacity` (kept by `next_index`, and
        // `capacity > 0` since `tail - head < capacity`), so in bounds. Slot
        // `index` last held item `tail - capacity`, which is popped: the head
        // loaded above (or earlier, when cached) exceeds it, and that
        // `Acquire` load saw the consumer's `Release` store made after it read
        // the slot. The consumer reads this slot again only after the store
        // of `tail + 1` below. Only this producer writes slots (`Producer` is
        // neither `Clone` nor `Sync`), so the write is exclusive; the slot
        // holds no initialised item, so nothing is leaked by overwriting it.
        unsafe { (*ring.slots.get_unchecked(index).get()).write(item) };
        ring.tail.0.store(tail.wrapping_add(1), Ordering::Release);
        self.tail.set(tail.wrapping_add(1));
        self.index.set(ring.next_index(index));
        Ok(())
    }

    /// Whether [`Producer::push`] would queue an item now: the cached `head`
    /// first, reloaded (`Acquire`) only when it says full. A caller that must
    /// not move a large item in vain asks this first.
    #[inline]
    pub fn has_room(&self) -> bool {
        let ring = &*self.ring;
        let tail = self.tail.get();
        if tail.wrapping_sub(self.cached_head.get()) < ring.capacity {
            return true;
        }
        let head = ring.head.0.load(Ordering::Acquire);
        self.cached_head.set(head);
        tail.wrapping_sub(head) < ring.capacity
    }

    /// Items ever pushed (the producer's own count: no shared access).
    #[inline]
    pub fn pushed(&self) -> usize {
        self.tail.get()
    }

    /// Items ever popped as last read by this end: a lower bound, no shared access.
    #[inline]
    pub fn popped_at_least(&self) -> usize {
        self.cached_head.get()
    }

    /// Items ever popped, read now (`Acquire`; also refreshes [`Producer::popped_at_least`]).
    #[inline]
    pub fn popped(&self) -> usize {
        let head = self.ring.head.0.load(Ordering::Acquire);
        self.cached_head.set(head);
        head
    }

    /// Whether `capacity` items are queued, with a `SeqCst` load of `head`
    /// (for a waiting protocol that orders it against other `SeqCst` accesses).
    #[inline]
    pub fn is_full(&self) -> bool {
        let head = self.ring.head.0.load(Ordering::SeqCst);
        self.tail.get().wrapping_sub(head) >= self.ring.capacity
    }

    /// The value both ends share.
    #[inline]
    pub fn shared(&self) -> &S {
        &self.ring.shared
    }

    /// The ring, to read its indices from elsewhere.
    pub fn ring(&self) -> &Arc<Ring<T, S>> {
        &self.ring
    }
}

impl<T, S> Drop for Producer<T, S> {
    fn drop(&mut self) {
        // SAFETY: `self.ring` is taken once, here, and not used again: the end is being dropped.
        drop(unsafe { ManuallyDrop::take(&mut self.ring) });
    }
}

impl<T, S> fmt::Debug for Producer<T, S> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Producer")
            .field("capacity", &self.ring.capacity)
            .field("pushed", &self.tail.get())
            .field("popped_at_least", &self.cached_head.get())
            .finish()
    }
}

/// The popping end of a [`ring`]: one thread at a time pops (`Send`, not `Sync`).
pub struct Consumer<T, S = ()> {
    /// Dropped by value in `drop`, as [`Producer`]'s.
    ring: ManuallyDrop<Arc<Ring<T, S>>>,
    /// The consumer's own copy of `head` (only it writes `head`).
    head: Cell<usize>,
    /// `head % capacity`, kept without dividing.
    index: Cell<usize>,
    /// `tail` as last read; `tail` only grows, so this is a lower bound.
    cached_tail: Cell<usize>,
}

impl<T, S> Consumer<T, S> {
    /// The oldest queued item, if any.
    #[inline]
    pub fn pop(&self) -> Option<T> {
        let ring = &*self.ring;
        let head = self.head.get();
        if head == self.cached_tail.get() {
            let tail = ring.tail.0.load(Ordering::Acquire);
            self.cached_tail.set(tail);
            if head == tail {
                return None;
            }
        }
        let index = self.index.get();
        // SAFETY: `head < tail` (the cached tail is a lower bound of the real
        // one), so item `head` is queued and `capacity > 0`; `index == head %
        // capacity`, in bounds. The producer wrote the slot before its
        // `Release` store of a tail above `head`, which the `Acquire` load
        // above (or earlier, when cached) saw, so the item is initialised and
        // visible. The producer writes this slot again only after it sees the
        // store of `head + 1` below, and only this consumer reads slots
        // (`Consumer` is neither `Clone` nor `Sync`): the item is moved out
        // exactly once and the slot counts as empty from here.
        let item = unsafe { (*ring.slots.get_unchecked(index).get()).assume_init_read() };
        ring.head.0.store(head.wrapping_add(1), Ordering::Release);
        self.head.set(head.wrapping_add(1));
        self.index.set(ring.next_index(index));
        Some(item)
    }

    /// Items ever popped (the consumer's own count: no shared access).
    #[inline]
    pub fn popped(&self) -> usize {
        self.head.get()
    }

    /// Items ever pushed, read now (`Acquire`; also refreshes the consumer's cached copy).
    #[inline]
    pub fn pushed(&self) -> usize {
        let tail = self.ring.tail.0.load(Ordering::Acquire);
        self.cached_tail.set(tail);
        tail
    }

    /// Whether nothing is queued, with a `SeqCst` load of `tail`
    /// (for a waiting protocol that orders it against other `SeqCst` accesses).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.ring.tail.0.load(Ordering::SeqCst) == self.head.get()
    }

    /// The value both ends share.
    #[inline]
    pub fn shared(&self) -> &S {
        &self.ring.shared
    }

    /// The ring, to read its indices from elsewhere.
    pub fn ring(&self) -> &Arc<Ring<T, S>> {
        &self.ring
    }
}

impl<T, S> Drop for Consumer<T, S> {
    fn drop(&mut self) {
        // SAFETY: `self.ring` is taken once, here, and not used again: the end is being dropped.
        drop(unsafe { ManuallyDrop::take(&mut self.ring) });
    }
}

impl<T, S> fmt::Debug for Consumer<T, S> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Consumer")
            .field("capacity", &self.ring.capacity)
            .field("popped", &self.head.get())
            .field("pushed_at_least", &self.cached_tail.get())
            .finish()
    }
}

#[cfg(test)]
mod tests;
