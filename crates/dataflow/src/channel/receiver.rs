//! The receiving end of a channel.

use core::fmt;
use core::sync::atomic::{fence, Ordering};

use sis_platform::spsc;

use super::control::{increment, take_waiter, Control};
use super::{locked, ChannelStats, Shared, TryRecvError};

/// The receiving end of a channel; one thread at a time receives (it is `Send`, not `Sync`).
///
/// Dropping it drains the channel (the items count as drained) and marks it
/// disconnected, so later sends are discarded.
pub struct Receiver<T> {
    pub(super) consumer: spsc::Consumer<T, Shared<T>>,
}

impl<T> Receiver<T> {
    pub(super) fn new(consumer: spsc::Consumer<T, Shared<T>>) -> Self {
        Receiver { consumer }
    }

    /// The oldest queued item; [`TryRecvError::Closed`] only once nothing is
    /// queued and the sender is closed.
    #[inline]
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let consumer = &self.consumer;
        // Under drop-oldest the lock-free ring has no places, so this finds
        // nothing and the locked ring is asked next: the common path tests nothing more.
        if let Some(item) = consumer.pop() {
            return Ok(item);
        }
        let Shared { control, locked } = consumer.shared();
        match locked {
            None if control.closed(Ordering::Acquire) => consumer.pop().ok_or(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
            Some(locked) => receive_locked(locked, control),
        }
    }

    /// Registers the consumer as waiting for an item under `token` (nonzero;
    /// 0 withdraws it). The sender hands it out once from [`Sender::take_waiting_receiver`](super::Sender::take_waiting_receiver).
    pub fn wait_as(&self, token: u64) {
        self.control().waiters.0.consumer.store(token, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// For a wait condition: registers `token` as by [`Receiver::wait_as`],
    /// then returns whether the wait is over (an item is queued, or the sender is closed).
    pub fn item_or_wait(&self, token: u64) -> bool {
        self.wait_as(token);
        !self.is_empty() || self.is_closed()
    }

    /// After a receive: the producer's token if it registered as waiting for room (the registration is cleared).
    #[inline]
    pub fn take_waiting_sender(&self) -> Option<u64> {
        take_waiter(&self.control().waiters.0.producer)
    }

    /// Whether nothing is queued (atomics only: safe with IRQs masked).
    pub fn is_empty(&self) -> bool {
        match &self.consumer.shared().locked {
            None => self.consumer.is_empty(),
            Some(locked) => locked.is_empty(),
        }
    }

    /// Whether the sender is closed (items sent before may still be queued).
    pub fn is_closed(&self) -> bool {
        self.control().closed(Ordering::SeqCst)
    }

    /// The channel's counters.
    pub fn stats(&self) -> ChannelStats {
        super::stats(self.consumer.ring())
    }

    /// Drops every queued item and returns how many: when a graph is torn
    /// down. They count as `dropped` (and `drained`), not as received: no
    /// operator saw them.
    pub fn drain(&self) -> usize {
        let mut count = 0;
        while let Some(item) = self.take() {
            // After the `head` store it accounts for (see `Control::stats`).
            increment(&self.control().drained.0, 1);
            drop(item);
            count += 1;
        }
        count
    }

    #[inline(always)]
    fn control(&self) -> &Control {
        &self.consumer.shared().control
    }

    /// Removes the oldest queued item, if any.
    fn take(&self) -> Option<T> {
        match &self.consumer.shared().locked {
            None => self.consumer.pop(),
            Some(locked) => locked.pop(),
        }
    }
}

/// `try_recv` on a drop-oldest channel. Out of line, so that in the common
/// path an item read from the lock-free ring has one way to the caller, who
/// may then read only part of it (the compiler can skip copying the rest).
#[inline(never)]
fn receive_locked<T>(locked: &locked::Ring<T>, control: &Control) -> Result<T, TryRecvError> {
    match locked.pop() {
        Some(item) => Ok(item),
        None if control.closed(Ordering::Acquire) => locked.pop().ok_or(TryRecvError::Closed),
        None => Err(TryRecvError::Empty),
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.control().drop_receiver();
        self.drain();
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("Receiver").field("stats", &self.stats()).finish()
    }
}
