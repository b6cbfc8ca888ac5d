//! The shared state of a channel: its slots, its two indices, and which side writes what.
//!
//! Every field is written by one side only, except `head` under drop-oldest
//! (see [`super`]) and the two waiter tokens (registered by one side, taken
//! by the other).

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

/// What only the producer writes and only [`Shared::stats`] reads.
#[derive(Debug, Default)]
pub(super) struct ProducerCounters {
    pub offered: AtomicU64,
    /// Items the producer discarded: by the overflow policy or sent after a close.
    pub dropped: AtomicU64,
    pub high_water: AtomicU64,
    pub blocked_count: AtomicU64,
    pub blocked_ns: AtomicU64,
}

/// What only the consumer writes and only [`Shared::stats`] reads.
#[derive(Debug, Default)]
pub(super) struct ConsumerCounters {
    pub received: AtomicU64,
    pub drained: AtomicU64,
}

/// Set once each; read often by both sides.
#[derive(Debug, Default)]
pub(super) struct Flags {
    pub closed: AtomicBool,
    pub receiver_dropped: AtomicBool,
}

/// Waiter tokens (0: none), written when a side registers.
#[derive(Debug, Default)]
pub(super) struct Waiters {
    /// The producer's, while it waits for room.
    pub producer: AtomicU64,
    /// The consumer's, while it waits for an item.
    pub consumer: AtomicU64,
}

/// The state both ends of a channel hold, on separate cache lines by who
/// writes it and how often: a side polling the other's index does not also
/// pull in lines the other writes on every message for its counters.
#[derive(Debug)]
pub(super) struct Shared<T> {
    /// Items ever queued; item `i` lives in slot `i % capacity` while
    /// `head <= i < tail`. Only the producer writes it.
    pub tail: Padded<AtomicUsize>,
    /// Items ever removed, received or discarded. Only the holder of slot
    /// `head % capacity`'s lock advances it (the consumer, or under
    /// drop-oldest the producer).
    pub head: Padded<AtomicUsize>,
    pub producer: Padded<ProducerCounters>,
    pub consumer: Padded<ConsumerCounters>,
    pub flags: Padded<Flags>,
    pub waiters: Padded<Waiters>,
    /// `capacity` slots.
    pub slots: Box<[Slot<T>]>,
    pub capacity: usize,
    pub overflow: Overflow,
}

impl<T> Shared<T> {
    /// An empty ring; `capacity` was checked by the caller. `None` when the heap cannot hold the slots.
    pub fn try_new(capacity: usize, overflow: Overflow) -> Option<Self> {
        let mut slots = alloc::vec::Vec::new();
        slots.try_reserve_exact(capacity).ok()?;
        slots.extend((0..capacity).map(|_| Slot(SpinMutex::new(None))));
        Some(Shared {
            tail: Padded::default(),
            head: Padded::default(),
            producer: Padded::default(),
            consumer: Padded::default(),
            flags: Padded::default(),
            waiters: Padded::default(),
            slots: slots.into_boxed_slice(),
            capacity,
            overflow,
        })
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
        let head = self.head.0.load(Ordering::Acquire);
        let tail = self.tail.0.load(Ordering::Acquire);
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
            closed: self.flags.0.closed.load(Ordering::Relaxed),
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
