//! The receiving end of a channel.

use alloc::sync::Arc;
use core::cell::Cell;
use core::fmt;
use core::sync::atomic::{fence, Ordering};

use super::ring::{increment, take_waiter, Shared};
use super::{ChannelStats, Overflow, TryRecvError};

/// The receiving end of a channel; one thread at a time receives (it is `Send`, not `Sync`).
///
/// Dropping it drains the channel (the items count as drained) and marks it
/// disconnected, so later sends are discarded.
pub struct Receiver<T> {
    pub(super) shared: Arc<Shared<T>>,
    /// `head` as the consumer last left it (under drop-oldest the producer may advance it).
    head: Cell<usize>,
    /// `head % capacity`, kept without dividing.
    index: Cell<usize>,
    /// `tail` as last read; `tail` only grows, so this is a lower bound.
    cached_tail: Cell<usize>,
}

impl<T> Receiver<T> {
    pub(super) fn new(shared: Arc<Shared<T>>) -> Self {
        Receiver { shared, head: Cell::new(0), index: Cell::new(0), cached_tail: Cell::new(0) }
    }

    /// The oldest queued item; [`TryRecvError::Closed`] only once nothing is
    /// queued and the sender is closed.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        if let Some(item) = self.take() {
            increment(&self.shared.consumer.0.received, 1);
            return Ok(item);
        }
        if !self.shared.flags.0.closed.load(Ordering::Acquire) {
            return Err(TryRecvError::Empty);
        }
        // The sender's last send happened before its close: look once more.
        match self.take() {
            Some(item) => {
                increment(&self.shared.consumer.0.received, 1);
                Ok(item)
            }
            None => Err(TryRecvError::Closed),
        }
    }

    /// Registers the consumer as waiting for an item under `token` (nonzero;
    /// 0 withdraws it). The sender hands it out once from [`Sender::take_waiting_receiver`](super::Sender::take_waiting_receiver).
    pub fn wait_as(&self, token: u64) {
        self.shared.waiters.0.consumer.store(token, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// For a wait condition: registers `token` as by [`Receiver::wait_as`],
    /// then returns whether the wait is over (an item is queued, or the sender is closed).
    pub fn item_or_wait(&self, token: u64) -> bool {
        self.wait_as(token);
        !self.is_empty() || self.is_closed()
    }

    /// After a receive: the producer's token if it registered as waiting for room (the registration is cleared).
    pub fn take_waiting_sender(&self) -> Option<u64> {
        take_waiter(&self.shared.waiters.0.producer)
    }

    /// Whether nothing is queued (atomics only: safe with IRQs masked).
    pub fn is_empty(&self) -> bool {
        let head = self.shared.head.0.load(Ordering::SeqCst);
        self.shared.tail.0.load(Ordering::SeqCst) <= head
    }

    /// Whether the sender is closed (items sent before may still be queued).
    pub fn is_closed(&self) -> bool {
        self.shared.flags.0.closed.load(Ordering::SeqCst)
    }

    /// The channel's counters.
    pub fn stats(&self) -> ChannelStats {
        self.shared.stats()
    }

    /// Drops every queued item and returns how many: when a graph is torn
    /// down. They count as `dropped` (and `drained`), not as received: no
    /// operator saw them.
    pub fn drain(&self) -> usize {
        let mut count = 0;
        while let Some(item) = self.take() {
            increment(&self.shared.consumer.0.drained, 1);
            drop(item);
            count += 1;
        }
        count
    }

    /// Removes the oldest queued item, if any.
    fn take(&self) -> Option<T> {
        let shared = &*self.shared;
        let drop_oldest = shared.overflow == Overflow::DropOldest;
        loop {
            let mut head = if drop_oldest { shared.head.0.load(Ordering::Acquire) } else { self.head.get() };
            if head != self.head.get() {
                // The producer discarded items: item `head` is further on.
                self.head.set(head);
                self.index.set(head % shared.capacity);
            }
            // Under drop-oldest `head` may have passed `cached_tail`.
            if head >= self.cached_tail.get() {
                self.cached_tail.set(shared.tail.0.load(Ordering::Acquire));
                if head >= self.cached_tail.get() {
                    return None;
                }
            }
            let mut slot = shared.slot(self.index.get()).lock();
            if drop_oldest {
                let current = shared.head.0.load(Ordering::Acquire);
                if current != head {
                    // The producer discarded item `head` first. If the oldest item now
                    // lives in the slot held (always so with one place), take it rather
                    // than chase a producer that keeps discarding.
                    let same_slot = current % shared.capacity == self.index.get();
                    if !same_slot || current >= shared.tail.0.load(Ordering::Acquire) {
                        continue;
                    }
                    head = current;
                    self.head.set(current);
                }
            }
            let item = slot.take();
            shared.head.0.store(head + 1, Ordering::Release);
            drop(slot);
            self.head.set(head + 1);
            self.index.set(shared.next_index(self.index.get()));
            // The producer filled the slot before publishing a tail above `head`,
            // so this is `Some` (returned as it is: a large `T` is not copied again).
            debug_assert!(item.is_some(), "a slot below the tail holds its item");
            return item;
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.flags.0.receiver_dropped.store(true, Ordering::SeqCst);
        self.drain();
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("Receiver").field("stats", &self.stats()).finish()
    }
}
