//! Bounded single-producer single-consumer channels with a declared overflow policy and exact counters.
//!
//! A channel is a ring of `capacity` places between one [`Sender`] and one
//! [`Receiver`]. When the ring is full, the channel's [`Overflow`] policy
//! decides: `block` hands the item back ([`Full`]) so the producer waits for
//! room (backpressure, nothing lost); `drop-newest` discards the offered item;
//! `drop-oldest` discards the oldest queued item and queues the offered one.
//!
//! # Counters
//! [`ChannelStats`] counts what was offered (every `try_send` that returned
//! `Ok`), received, dropped and still queued. At any quiescent point
//! `offered == received + dropped + queued`: an item is counted once when it
//! is offered and once when it leaves (received, or dropped by the policy, by
//! a send after a close or by [`Receiver::drain`]). A `Full` return is not an
//! offer: the item went back to the caller. Blocked time is measured by the
//! caller, who knows the clock, and added with [`Sender::add_blocked_ns`].
//!
//! # How it works without `unsafe`
//! A channel is built on `sis_platform::spsc`, a lock-free single-producer
//! single-consumer ring (`rtrb`'s design): the one crate in SIS allowed
//! `unsafe` holds the slot accesses, behind a safe API whose two ends are
//! neither `Clone` nor `Sync`. `tail` (written by the producer only) and
//! `head` (by the consumer only) count items ever queued and ever removed;
//! item `i` lives in slot `i % capacity` while `head <= i < tail`. A send
//! writes slot `tail` and stores `tail + 1` (`Release`); a receive reads slot
//! `head` and stores `head + 1`; each side caches the other's index and
//! reloads it (`Acquire`) only when the cached value says full or empty. No
//! read-modify-write, and no shared store beyond the index per message:
//! `received` is `head` less the drained items, and `offered` is `tail` plus
//! the items discarded unqueued, both counted only when that happens. The
//! producer also reads one flag (closed, or receiver gone) per send, and
//! raises `high_water` itself, reading `head` again only when its cached copy
//! says the depth may be a new high. The ring also carries what both ends
//! share besides (policy, flags, waiter tokens, the rarer counters), so a
//! channel is one allocation for its state and one for its slots.
//!
//! Under `drop-oldest` a full producer removes item `head` (which sits in the
//! slot the new item goes to) itself, racing the consumer for it, which the
//! lock-free ring cannot allow: the consumer's read of a slot would race the
//! producer's. Such a channel's lock-free ring has no places (every send
//! finds it full, every receive empty, and both then turn to the other ring),
//! and the items go through a ring kept beside it whose slots are
//! `SpinMutex<Option<T>>`, the safe way to move a `T` between threads, with
//! the same two indices. The rule that settles the race: `head` advances from
//! `h` only by the holder of slot `h`'s lock, after checking under that lock
//! that `head` still equals `h`. Whoever takes the lock first removes item
//! `h` and stores `h + 1` before unlocking; the other then reads `head != h`
//! under the lock and retries (the consumer with the new head, unless the
//! new oldest item is in the slot it holds, as always in a one-place channel,
//! and it takes that one; the producer knowing there is now room). So every
//! item is removed exactly once, and the consumer still receives items in
//! order. `received` there is `head` less the drained and the evicted items.
//! Spin locks are not fair: on two CPUs, a producer that sends without ever
//! pausing can win every race for the oldest item, and the consumer's
//! `try_recv` then spins until the producer pauses. Kernel threads on SIS's
//! one CPU take turns instead. The price of the lock is an atomic
//! read-modify-write per send and per receive. `cargo xtask bench dataflow`
//! measures the `block` channel against `rtrb`.
//!
//! # Waiting (kernel threads)
//! The channel never blocks; a thread that must wait registers a token (its
//! thread id) and the other side takes it after it made progress and wakes
//! that thread. Registration and the checks it pairs with use atomics only, so
//! they are safe inside a `block_current_until` closure with IRQs masked:
//!
//! ```text
//! let mut item = item;
//! loop {
//!     match sender.try_send(item) {
//!         Ok(_) => break,
//!         Err(Full(back)) => item = back,
//!     }
//!     let started = now_ns();
//!     block_current_until(|| sender.room_or_wait(current_id()));
//!     sender.add_blocked_ns(now_ns() - started);
//! }
//! if let Some(consumer) = sender.take_waiting_receiver() {
//!     wake(consumer);
//! }
//! ```
//!
//! `room_or_wait` registers first and checks second, and `take_waiting_*`
//! fences after the index store, so on several CPUs too a side either sees
//! the progress or the other sees the token: no wake-up is lost. Under
//! drop-oldest `try_send` and `try_recv` may spin on a slot lock (on one CPU,
//! until the other thread, preempted while holding it, runs again), so they
//! must not run with IRQs masked.

mod control;
mod locked;
mod monitor;
mod receiver;
mod sender;
#[cfg(test)]
mod tests;

use core::fmt;

use control::Control;
pub use monitor::Monitor;
pub use receiver::Receiver;
pub use sender::Sender;
use sis_platform::spsc;

/// What a channel does with an item offered while it is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overflow {
    /// The item goes back to the producer, which waits for room: nothing is lost.
    Block,
    /// The offered item is discarded.
    DropNewest,
    /// The oldest queued item is discarded and the offered one queued.
    DropOldest,
}

impl Overflow {
    /// Every policy, in declaration order.
    pub const ALL: [Overflow; 3] = [Overflow::Block, Overflow::DropNewest, Overflow::DropOldest];

    /// The policy's name: `block`, `drop-newest` or `drop-oldest` (as serialized).
    pub fn name(self) -> &'static str {
        match self {
            Overflow::Block => "block",
            Overflow::DropNewest => "drop-newest",
            Overflow::DropOldest => "drop-oldest",
        }
    }

    /// The policy named `text` (exactly as [`Overflow::name`] spells it).
    pub fn parse(text: &str) -> Option<Overflow> {
        Overflow::ALL.into_iter().find(|policy| policy.name() == text)
    }
}

/// The largest capacity a channel may have.
pub const MAX_CAPACITY: usize = 65_536;

/// Why a channel could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelError {
    /// The capacity is 0 or above `max`.
    Capacity {
        /// The capacity asked for.
        requested: usize,
        /// [`MAX_CAPACITY`].
        max: usize,
    },
    /// The heap could not hold the ring.
    OutOfMemory {
        /// Bytes of the ring's slots.
        bytes: usize,
    },
}

impl ChannelError {
    /// A stable code for JSON.
    pub fn code(&self) -> &'static str {
        match self {
            ChannelError::Capacity { .. } => "bad-capacity",
            ChannelError::OutOfMemory { .. } => "out-of-memory",
        }
    }
}

impl fmt::Display for ChannelError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::Capacity { requested, max } => {
                write!(formatter, "channel capacity {requested} is outside 1..={max}")
            }
            ChannelError::OutOfMemory { bytes } => write!(formatter, "no heap memory for a ring of {bytes} bytes"),
        }
    }
}

/// Bytes the slots of a channel of `capacity` items of `T` under `overflow` take (what a graph charges
/// to its budget for it): an item each under `block` and `drop-newest`, an `Option` of an item and its
/// lock under `drop-oldest`.
pub fn slot_bytes<T>(capacity: usize, overflow: Overflow) -> usize {
    match overflow {
        Overflow::Block | Overflow::DropNewest => spsc::slot_bytes::<T>(capacity),
        Overflow::DropOldest => capacity.saturating_mul(core::mem::size_of::<locked::Slot<T>>()),
    }
}

/// A bounded channel of `capacity` items with the given overflow policy.
///
/// The ring has `capacity` slots: lock-free ones under `block` and
/// `drop-newest`, each an `Option<T>` and its lock under `drop-oldest`
/// (see [`slot_bytes`]).
pub fn channel<T>(capacity: usize, overflow: Overflow) -> Result<(Sender<T>, Receiver<T>), ChannelError> {
    if capacity == 0 || capacity > MAX_CAPACITY {
        return Err(ChannelError::Capacity { requested: capacity, max: MAX_CAPACITY });
    }
    let out_of_memory = ChannelError::OutOfMemory { bytes: slot_bytes::<T>(capacity, overflow) };
    let (places, locked) = match overflow {
        Overflow::Block | Overflow::DropNewest => (capacity, None),
        Overflow::DropOldest => (0, Some(locked::Ring::try_new(capacity).ok_or(out_of_memory)?)),
    };
    let shared = Shared { control: Control::new(overflow), locked };
    let (producer, consumer) = spsc::ring(places, shared).ok_or(out_of_memory)?;
    Ok((Sender::new(producer), Receiver::new(consumer)))
}

/// What both ends reach beside the lock-free ring's slots and indices. Under
/// drop-oldest that ring has no places and `locked` holds the items instead,
/// so the lock-free paths of `try_send` and `try_recv` need not test the policy.
#[derive(Debug)]
struct Shared<T> {
    control: Control,
    locked: Option<locked::Ring<T>>,
}

/// A channel's counters, from its ring's indices and its control block.
fn stats<T>(ring: &spsc::Ring<T, Shared<T>>) -> ChannelStats {
    let Shared { control, locked } = ring.shared();
    match locked {
        None => control.stats(ring.capacity(), || {
            let head = ring.popped();
            (head, ring.pushed())
        }),
        Some(locked) => control.stats(locked.capacity(), || locked.indices()),
    }
}

/// What became of an offered item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sent {
    /// The item was queued.
    Queued,
    /// The offered item was discarded: the channel was full under drop-newest,
    /// or the sender was closed, or the receiver is gone.
    DroppedNewest,
    /// The item was queued and the oldest queued item discarded (drop-oldest, full).
    DroppedOldest,
}

/// The item comes back: the channel is full and its policy is [`Overflow::Block`].
#[derive(Clone, PartialEq, Eq)]
pub struct Full<T>(pub T);

impl<T> fmt::Debug for Full<T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Full(..)")
    }
}

/// Why [`Receiver::try_recv`] returned no item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing is queued now; more may come.
    Empty,
    /// Nothing is queued and the sender is closed: nothing more will come.
    Closed,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            TryRecvError::Empty => "the channel is empty",
            TryRecvError::Closed => "the channel is empty and closed",
        })
    }
}

/// A channel's counters; `offered == received + dropped + queued` at any quiescent point.
///
/// Read while the other side runs, the fields are each current but not
/// taken at one instant. `offered` and `received` are derived from the
/// ring's indices and the rarer counters; while a drain or a drop-oldest
/// eviction is under way, `received` may include the item being removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ChannelStats {
    /// Items the channel holds at most.
    pub capacity: u64,
    /// The channel's policy when full.
    pub overflow: Overflow,
    /// `try_send` calls that returned `Ok` (a [`Full`] return is not counted).
    pub offered: u64,
    /// Items the receiver got from `try_recv`.
    pub received: u64,
    /// Items offered that will never be received: discarded by the overflow
    /// policy, sent after a close or after the receiver was dropped, or drained.
    pub dropped: u64,
    /// The part of `dropped` removed by [`Receiver::drain`] (and by dropping the receiver).
    pub drained: u64,
    /// Waits for room the producer reported with [`Sender::add_blocked_ns`].
    pub blocked_count: u64,
    /// Their total duration, as the producer measured it.
    pub blocked_ns: u64,
    /// The most items queued at once, read by the producer just after a send.
    pub high_water: u64,
    /// Items queued now.
    pub queued: u64,
    /// Whether the sender is closed.
    pub closed: bool,
}
