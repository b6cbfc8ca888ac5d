//! The shared state of a channel: its slots, its two indices, and which side writes what.
//!
//! Every field is written by one side only, except `head` under drop-oldest
//! (see [`super`]) and the two waiter tokens (registered by one side, taken
//! by the other). The two sides' fields are on separate cache lines, so the
//! producer's stores do not evict what the consumer is reading.

use alloc::boxed::Box;
use core::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};

use spin::mutex::SpinMutex;

use super::{ChannelStats, Overflow};

/// Aligns its content to 128 bytes: x86 fetches cache lines in adjacent pairs
/// and some aarch64 cores have 128-byte lines.
#[repr(align(128))]
#[derive(Debug, Default)]
pub(super) struct Padded<T>(pub T);

/// One place in the ring. Slots are packed, not padded to a cache line each:
/// consecutive items then share a line, so one line transfer between cores
/// carries several of them (measured with two pinned threads: padding made a
/// hop more than ten times slower).
///
/// The lock is uncontended except under drop-oldest, where the producer and
/// the consumer may both want the oldest item.
#[derive(Debug)]
pub(super) struct Slot<T>(pub SpinMutex<Option<T>>);

/// What the producer writes (and the consumer's waiter token and disconnection, which it reads).
#[derive(Debug, Default)]
pub(super) struct ProducerSide {
    /// Items ever queued; item `i` lives in slot `i % capacity` while `head <= i < tail`.
    pub tail: AtomicUsize,
    pub offered: AtomicU64,
    /// Items the producer discarded: by the overflow policy or sent after a close.
    pub dropped: AtomicU64,
    pub high_water: AtomicU64,
    pub blocked_count: AtomicU64,
    pub blocked_ns: AtomicU64,
    pub closed: AtomicBool,
    /// Set once by the consumer when the receiver is dropped. It sits here because
    /// the producer reads it on every send and the consumer's line moves on every receive.
    pub receiver_dropped: AtomicBool,
    /// The consumer's token while it waits for an item (0: none).
    pub consumer_waiter: AtomicU64,
}

/// What the consumer writes (and the producer's waiter token, which the consumer takes).
#[derive(Debug, Default)]
pub(super) struct ConsumerSide {
    /// Items ever removed, received or discarded. Only the holder of slot
    /// `head % capacity`'s lock advances it.
    pub head: AtomicUsize,
    pub received: AtomicU64,
    pub drained: AtomicU64,
    /// The producer's token while it waits for room (0: none).
    pub producer_waiter: AtomicU64,
}

/// The state both ends of a channel hold.
#[derive(Debug)]
pub(super) struct Shared<T> {
    pub producer: Padded<ProducerSide>,
    pub consumer: Padded<ConsumerSide>,
    /// `capacity` slots.
    pub slots: Box<[Slot<T>]>,
    pub capacity: usize,
    pub overflow: Overflow,
}

impl<T> Shared<T> {
    /// An empty ring; `capacity` was checked by the caller.
    pub fn new(capacity: usize, overflow: Overflow) -> Self {
        Shared {
            producer: Padded::default(),
            consumer: Padded::default(),
            slots: (0..capacity).map(|_| Slot(SpinMutex::new(None))).collect(),
            capacity,
            overflow,
        }
    }

    /// The lock of slot `index` (an item's number modulo `capacity`).
    #[inline(always)]
    pub fn slot(&self, index: usize) -> &SpinMutex<Option<T>> {
        &self.slots[index].0
    }

    /// `index + 1`, modulo `capacity`, without dividing.
    #[inline(always)]
    pub fn next_index(&self, index: usize) -> usize {
        if index + 1 == self.capacity {
            0
        } else {
            index + 1
        }
    }
}

impl<T> Shared<T> {
    /// The counters, as both ends report them.
    pub fn stats(&self) -> ChannelStats {
        let (producer, consumer) = (&self.producer.0, &self.consumer.0);
        // `head` first: `tail` only grows, so `tail >= head` below.
        let head = consumer.head.load(Ordering::Acquire);
        let tail = producer.tail.load(Ordering::Acquire);
        let drained = consumer.drained.load(Ordering::Relaxed);
        ChannelStats {
            capacity: self.capacity as u64,
            overflow: self.overflow,
            offered: producer.offered.load(Ordering::Relaxed),
            received: consumer.received.load(Ordering::Relaxed),
            dropped: producer.dropped.load(Ordering::Relaxed) + drained,
            drained,
            blocked_count: producer.blocked_count.load(Ordering::Relaxed),
            blocked_ns: producer.blocked_ns.load(Ordering::Relaxed),
            high_water: producer.high_water.load(Ordering::Relaxed),
            queued: tail.saturating_sub(head) as u64,
            closed: producer.closed.load(Ordering::Relaxed),
        }
    }
}

/// Adds to a counter only one side writes: a load and a store, no read-modify-write.
#[inline(always)]
pub(super) fn increment(counter: &AtomicU64, amount: u64) {
    counter.store(counter.load(Ordering::Relaxed).saturating_add(amount), Ordering::Relaxed);
}

/// Takes a registered waiter token, after a fence that orders the caller's
/// index store before the read (the waiter registers, fences, then checks the index).
#[inline(always)]
pub(super) fn take_waiter(waiter: &AtomicU64) -> Option<u64> {
    fence(Ordering::SeqCst);
    if waiter.load(Ordering::Relaxed) == 0 {
        return None;
    }
    match waiter.swap(0, Ordering::AcqRel) {
        0 => None,
        token => Some(token),
    }
}
