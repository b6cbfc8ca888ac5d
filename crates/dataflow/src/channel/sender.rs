//! The sending end of a channel.

use alloc::sync::Arc;
use core::cell::Cell;
use core::fmt;
use core::sync::atomic::{fence, Ordering};

use super::ring::{increment, take_waiter, Shared};
use super::{ChannelStats, Full, Overflow, Sent};

/// The sending end of a channel; one thread at a time sends (it is `Send`, not `Sync`).
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
    /// The producer's own copy of `tail` (only it writes `tail`).
    tail: Cell<usize>,
    /// `tail % capacity`, kept without dividing.
    index: Cell<usize>,
    /// `head` as last read; `head` only grows, so this is a lower bound.
    cached_head: Cell<usize>,
    /// The producer's own copy of `high_water`.
    high_water: Cell<usize>,
}

impl<T> Sender<T> {
    pub(super) fn new(shared: Arc<Shared<T>>) -> Self {
        Sender { shared, tail: Cell::new(0), index: Cell::new(0), cached_head: Cell::new(0), high_water: Cell::new(0) }
    }

    /// Offers `item`; see [`Sent`] for the outcomes. Under [`Overflow::Block`]
    /// a full channel returns the item in [`Full`] and counts nothing.
    ///
    /// After the sender was closed, or the receiver dropped, the item is
    /// discarded and counted as dropped ([`Sent::DroppedNewest`]): nobody will
    /// receive it, and under `block` a producer must not wait for room forever.
    pub fn try_send(&self, item: T) -> Result<Sent, Full<T>> {
        let shared = &*self.shared;
        if shared.flags.0.closed.load(Ordering::Relaxed) || shared.flags.0.receiver_dropped.load(Ordering::Acquire) {
            return Ok(self.discard(item));
        }
        let tail = self.tail.get();
        let mut sent = Sent::Queued;
        if tail - self.cached_head.get() >= shared.capacity {
            self.cached_head.set(shared.head.0.load(Ordering::Acquire));
            if tail - self.cached_head.get() >= shared.capacity {
                match shared.overflow {
                    Overflow::Block => return Err(Full(item)),
                    Overflow::DropNewest => return Ok(self.discard(item)),
                    Overflow::DropOldest => sent = Sent::DroppedOldest,
                }
            }
        }
        // When full, the oldest item, `tail - capacity`, is in this slot.
        let mut slot = shared.slot(self.index.get()).lock();
        let oldest = if sent == Sent::DroppedOldest {
            // Under this lock only its holder may advance `head` from `tail - capacity`.
            let head = shared.head.0.load(Ordering::Acquire);
            if head == tail - shared.capacity {
                shared.head.0.store(head + 1, Ordering::Release);
                self.cached_head.set(head + 1);
                slot.replace(item)
            } else {
                // The consumer took it first: there is room.
                self.cached_head.set(head);
                sent = Sent::Queued;
                *slot = Some(item);
                None
            }
        } else {
            *slot = Some(item);
            None
        };
        if shared.overflow == Overflow::DropOldest {
            // Published under the lock: a consumer that wins the lock next finds
            // this item queued, instead of an old tail, and is not starved by a
            // producer that keeps discarding.
            shared.tail.0.store(tail + 1, Ordering::Release);
            drop(slot);
        } else {
            // Published after unlocking: a consumer that sees it never waits for the lock.
            drop(slot);
            shared.tail.0.store(tail + 1, Ordering::Release);
        }
        self.tail.set(tail + 1);
        self.index.set(shared.next_index(self.index.get()));
        increment(&shared.producer.0.offered, 1);
        if oldest.is_some() {
            increment(&shared.producer.0.dropped, 1);
            drop(oldest);
        }
        self.note_depth(tail + 1);
        Ok(sent)
    }

    /// Reports that the caller waited `ns` for room: adds to `blocked_ns` and counts one in `blocked_count`.
    pub fn add_blocked_ns(&self, ns: u64) {
        increment(&self.shared.producer.0.blocked_ns, ns);
        increment(&self.shared.producer.0.blocked_count, 1);
    }

    /// Registers the producer as waiting for room under `token` (a kernel
    /// thread id, nonzero; 0 withdraws the registration). The receiver hands
    /// it out once from [`Receiver::take_waiting_sender`](super::Receiver::take_waiting_sender).
    pub fn wait_as(&self, token: u64) {
        self.shared.waiters.0.producer.store(token, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// For a wait condition: registers `token` as by [`Sender::wait_as`], then
    /// returns whether the wait is over (there is room, or the receiver is gone).
    pub fn room_or_wait(&self, token: u64) -> bool {
        self.wait_as(token);
        !self.is_full() || self.is_disconnected()
    }

    /// After a send: the consumer's token if it registered as waiting for an item (the registration is cleared).
    pub fn take_waiting_receiver(&self) -> Option<u64> {
        take_waiter(&self.shared.waiters.0.consumer)
    }

    /// Whether `capacity` items are queued (atomics only: safe with IRQs masked).
    pub fn is_full(&self) -> bool {
        let shared = &*self.shared;
        let head = shared.head.0.load(Ordering::SeqCst);
        self.tail.get() - head >= shared.capacity
    }

    /// Whether the receiver was dropped: nothing sent from now on will be received.
    pub fn is_disconnected(&self) -> bool {
        self.shared.flags.0.receiver_dropped.load(Ordering::SeqCst)
    }

    /// Closes the channel: the receiver gets what is queued, then [`TryRecvError::Closed`](super::TryRecvError::Closed).
    /// Dropping the sender closes it too. A consumer waiting for an item must
    /// be woken by the caller ([`Sender::take_waiting_receiver`] after this).
    pub fn close(&self) {
        self.shared.flags.0.closed.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// The channel's counters.
    pub fn stats(&self) -> ChannelStats {
        self.shared.stats()
    }

    /// Counts `item` as offered and dropped, and drops it.
    fn discard(&self, item: T) -> Sent {
        increment(&self.shared.producer.0.offered, 1);
        increment(&self.shared.producer.0.dropped, 1);
        drop(item);
        Sent::DroppedNewest
    }

    /// Raises `high_water` to the depth just after a send when it exceeds it.
    /// The cached head gives an upper bound; only when that bound is a new
    /// high is `head` read again, so the figure recorded is a depth that was
    /// real at the instant of that read.
    #[inline(always)]
    fn note_depth(&self, tail: usize) {
        if tail - self.cached_head.get() <= self.high_water.get() {
            return;
        }
        let head = self.shared.head.0.load(Ordering::Acquire);
        self.cached_head.set(head);
        let depth = tail - head;
        if depth > self.high_water.get() {
            self.high_water.set(depth);
            self.shared.producer.0.high_water.store(depth as u64, Ordering::Relaxed);
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("Sender").field("stats", &self.stats()).finish()
    }
}
