//! The sending end of a channel.

use core::fmt;
use core::sync::atomic::{fence, Ordering};

use sis_platform::spsc;

use super::control::{increment, take_waiter, Control};
use super::{ChannelStats, Full, Overflow, Sent, Shared};

/// The sending end of a channel; one thread at a time sends (it is `Send`, not `Sync`).
pub struct Sender<T> {
    producer: spsc::Producer<T, Shared<T>>,
}

impl<T> Sender<T> {
    pub(super) fn new(producer: spsc::Producer<T, Shared<T>>) -> Self {
        Sender { producer }
    }

    /// Offers `item`; see [`Sent`] for the outcomes. Under [`Overflow::Block`]
    /// a full channel returns the item in [`Full`] and counts nothing.
    ///
    /// After the sender was closed, or the receiver dropped, the item is
    /// discarded and counted as dropped ([`Sent::DroppedNewest`]): nobody will
    /// receive it, and under `block` a producer must not wait for room forever.
    #[inline]
    pub fn try_send(&self, item: T) -> Result<Sent, Full<T>> {
        let producer = &self.producer;
        let shared = producer.shared();
        if shared.control.send_is_void() {
            return Ok(discard(&shared.control, item));
        }
        // Under drop-oldest the lock-free ring has no places, so it has no
        // room and the locked ring takes the item: the common path tests
        // nothing more. The item is moved only where it goes (a large `T` is
        // not copied out and back when the ring is full), and nothing out of
        // line is handed `self`, so the compiler may keep a sender held in a
        // local variable in registers.
        if !producer.has_room() {
            let Shared { control, locked } = shared;
            return match locked {
                Some(locked) => {
                    let sent = locked.push(item, control);
                    note_depth(control, locked.pushed(), locked.popped_at_least(), || locked.popped());
                    Ok(sent)
                }
                // The lock-free ring serves `block` and `drop-newest` only.
                None => match control.overflow {
                    Overflow::Block => Err(Full(item)),
                    Overflow::DropNewest | Overflow::DropOldest => Ok(discard(control, item)),
                },
            };
        }
        match producer.push(item) {
            Ok(()) => {
                note_depth(&shared.control, producer.pushed(), producer.popped_at_least(), || producer.popped());
                Ok(Sent::Queued)
            }
            // `has_room` said there is room, and only this end pushes.
            Err(item) => Err(Full(item)),
        }
    }

    /// Reports that the caller waited `ns` for room: adds to `blocked_ns` and counts one in `blocked_count`.
    pub fn add_blocked_ns(&self, ns: u64) {
        let counters = &self.control().producer.0;
        increment(&counters.blocked_ns, ns);
        increment(&counters.blocked_count, 1);
    }

    /// Registers the producer as waiting for room under `token` (a kernel
    /// thread id, nonzero; 0 withdraws the registration). The receiver hands
    /// it out once from [`Receiver::take_waiting_sender`](super::Receiver::take_waiting_sender).
    pub fn wait_as(&self, token: u64) {
        self.control().waiters.0.producer.store(token, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// For a wait condition: registers `token` as by [`Sender::wait_as`], then
    /// returns whether the wait is over (there is room, or the receiver is gone).
    pub fn room_or_wait(&self, token: u64) -> bool {
        self.wait_as(token);
        !self.is_full() || self.is_disconnected()
    }

    /// After a send: the consumer's token if it registered as waiting for an item (the registration is cleared).
    #[inline]
    pub fn take_waiting_receiver(&self) -> Option<u64> {
        take_waiter(&self.control().waiters.0.consumer)
    }

    /// Whether `capacity` items are queued (atomics only: safe with IRQs masked).
    pub fn is_full(&self) -> bool {
        match &self.producer.shared().locked {
            None => self.producer.is_full(),
            Some(locked) => locked.is_full(),
        }
    }

    /// Whether the receiver was dropped: nothing sent from now on will be received.
    pub fn is_disconnected(&self) -> bool {
        self.control().receiver_dropped()
    }

    /// Closes the channel: the receiver gets what is queued, then [`TryRecvError::Closed`](super::TryRecvError::Closed).
    /// Dropping the sender closes it too. A consumer waiting for an item must
    /// be woken by the caller ([`Sender::take_waiting_receiver`] after this).
    pub fn close(&self) {
        self.control().close();
    }

    /// The channel's counters.
    pub fn stats(&self) -> ChannelStats {
        super::stats(self.producer.ring())
    }

    #[inline(always)]
    fn control(&self) -> &Control {
        &self.producer.shared().control
    }
}

/// Counts `item` as offered and dropped (it is offered, never queued), and drops it.
fn discard<T>(control: &Control, item: T) -> Sent {
    increment(&control.producer.0.discarded, 1);
    drop(item);
    Sent::DroppedNewest
}

/// Raises `high_water` to the depth just after a send when it exceeds it.
/// `head_lower_bound` gives an upper bound of the depth; only when that
/// bound is a new high is `head` read again (`read_head`), so the figure
/// recorded is a depth that was real at the instant of that read. Only the
/// producer writes `high_water`, so its own `Relaxed` load is exact.
#[inline(always)]
fn note_depth(control: &Control, tail: usize, head_lower_bound: usize, read_head: impl FnOnce() -> usize) {
    let high_water = &control.producer.0.high_water;
    let mark = high_water.load(Ordering::Relaxed);
    if (tail.wrapping_sub(head_lower_bound) as u64) <= mark {
        return;
    }
    let depth = tail.wrapping_sub(read_head()) as u64;
    if depth > mark {
        high_water.store(depth, Ordering::Relaxed);
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
