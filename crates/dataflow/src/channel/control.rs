//! What a channel keeps beside its ring: the policy, the two end flags, the waiter tokens and the rare counters.
//!
//! The per-message figures are not counted here: `received` and `offered`
//! are derived from the ring's indices (`head` counts items removed, `tail`
//! items queued), so a send or a receive stores nothing beyond its index.

use core::sync::atomic::{fence, AtomicU64, AtomicU8, Ordering};

use sis_platform::spsc::CachePadded;

use super::{ChannelStats, Overflow};

/// `ends` bit: the sender is closed (or dropped).
const CLOSED: u8 = 1;
/// `ends` bit: the receiver is dropped.
const RECEIVER_DROPPED: u8 = 2;

/// What only the producer writes, and only when an item is not queued or a wait ends.
#[derive(Debug, Default)]
pub(super) struct ProducerCounters {
    /// Items offered and never queued: discarded under drop-newest, or sent after a close or the receiver's drop.
    pub discarded: AtomicU64,
    /// Queued items the producer removed to make room (drop-oldest).
    pub evicted: AtomicU64,
    pub high_water: AtomicU64,
    pub blocked_count: AtomicU64,
    pub blocked_ns: AtomicU64,
}

/// Waiter tokens (0: none), written when a side registers.
#[derive(Debug, Default)]
pub(super) struct Waiters {
    /// The producer's, while it waits for room.
    pub producer: AtomicU64,
    /// The consumer's, while it waits for an item.
    pub consumer: AtomicU64,
}

/// The state both ends of a channel share beside the ring's slots and indices,
/// on cache lines apart from the indices: nothing here is written per message.
#[derive(Debug)]
pub(super) struct Control {
    pub overflow: Overflow,
    /// [`CLOSED`] and [`RECEIVER_DROPPED`], each set once.
    ends: AtomicU8,
    pub producer: CachePadded<ProducerCounters>,
    /// Items [`Receiver::drain`](super::Receiver::drain) removed; only the consumer writes it.
    pub drained: CachePadded<AtomicU64>,
    pub waiters: CachePadded<Waiters>,
}

impl Control {
    pub fn new(overflow: Overflow) -> Self {
        Control {
            overflow,
            ends: AtomicU8::new(0),
            producer: CachePadded::default(),
            drained: CachePadded::default(),
            waiters: CachePadded::default(),
        }
    }

    /// Whether a send must discard its item: the sender is closed or the receiver gone.
    ///
    /// `Relaxed`: only this producer closes, and a receiver's drop seen late
    /// leaves the item queued until the ring is dropped, as for a send that
    /// raced the drop; either way no data is read on the strength of it.
    #[inline(always)]
    pub fn send_is_void(&self) -> bool {
        self.ends.load(Ordering::Relaxed) != 0
    }

    /// Whether the sender is closed; `Acquire`, so the items it sent before are visible after `true`.
    #[inline]
    pub fn closed(&self, ordering: Ordering) -> bool {
        self.ends.load(ordering) & CLOSED != 0
    }

    /// Whether the receiver is dropped.
    pub fn receiver_dropped(&self) -> bool {
        self.ends.load(Ordering::SeqCst) & RECEIVER_DROPPED != 0
    }

    /// Marks the sender closed, then fences (a waiter's check after its registration pairs with it).
    pub fn close(&self) {
        self.ends.fetch_or(CLOSED, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Marks the receiver dropped.
    pub fn drop_receiver(&self) {
        self.ends.fetch_or(RECEIVER_DROPPED, Ordering::SeqCst);
    }

    /// The counters, given the ring's capacity and a reader of its indices `(head, tail)`.
    ///
    /// The counters are read before the indices, and each is stored after
    /// the index move it accounts for (`Release` and `Acquire`), so the
    /// derived `received = head - drained - evicted` never falls below the
    /// true figure; while a drain or an eviction is under way it may exceed it
    /// by the items in flight. At a quiescent point every figure is exact.
    pub fn stats(&self, capacity: usize, indices: impl FnOnce() -> (usize, usize)) -> ChannelStats {
        let producer = &self.producer.0;
        let drained = self.drained.0.load(Ordering::Acquire);
        let evicted = producer.evicted.load(Ordering::Acquire);
        let discarded = producer.discarded.load(Ordering::Relaxed);
        // `head` before `tail`: `tail` only grows and never passes below `head`, so `tail >= head`.
        let (head, tail) = indices();
        let (head, tail) = (head as u64, tail as u64);
        ChannelStats {
            capacity: capacity as u64,
            overflow: self.overflow,
            offered: tail.saturating_add(discarded),
            received: head.saturating_sub(drained).saturating_sub(evicted),
            dropped: discarded.saturating_add(evicted).saturating_add(drained),
            drained,
            blocked_count: producer.blocked_count.load(Ordering::Relaxed),
            blocked_ns: producer.blocked_ns.load(Ordering::Relaxed),
            high_water: producer.high_water.load(Ordering::Relaxed),
            queued: tail.saturating_sub(head),
            closed: self.closed(Ordering::Relaxed),
        }
    }
}

/// Adds to a counter only one side writes: a load and a `Release` store, no read-modify-write.
#[inline(always)]
pub(super) fn increment(counter: &AtomicU64, amount: u64) {
    counter.store(counter.load(Ordering::Relaxed).saturating_add(amount), Ordering::Release);
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
