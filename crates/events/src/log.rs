//! The log: the last events, their sequence numbers, and readers' cursors.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use serde::Serialize;

use crate::Kind;

/// Events the kernel's log keeps: a reader more than this far behind misses the oldest (and is told how many).
pub const DEFAULT_CAPACITY: usize = 256;
/// Most events one [`EventLog::since`] returns.
pub const MAX_BATCH: usize = 64;

/// One event: its sequence number, when it was published, and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Its number: the first event since boot is 1, each next one 1 more.
    pub seq: u64,
    /// Kernel uptime when it was published, ms.
    pub at_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: Kind,
}

/// What a reader gets: the events since its cursor and what it missed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Events the log dropped before the reader asked for them (they were older than the log keeps).
    pub missed: u64,
    /// The events, oldest first, at most the `max` asked for.
    pub events: Vec<Event>,
    /// The cursor to ask with next time.
    pub next: u64,
}

/// The log's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Events published since boot.
    pub published: u64,
    /// Events dropped because the log was full.
    pub dropped: u64,
    /// Events held now.
    pub held: usize,
    /// Events the log holds at most.
    pub capacity: usize,
}

/// The last `capacity` events, numbered from 1.
#[derive(Debug, Clone)]
pub struct EventLog {
    events: VecDeque<Event>,
    capacity: usize,
    next_seq: u64,
    dropped: u64,
}

impl EventLog {
    /// An empty log holding at most `capacity` events (at least 1); its memory is taken now, so publishing
    /// never allocates for the ring itself.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        EventLog { events: VecDeque::with_capacity(capacity), capacity, next_seq: 1, dropped: 0 }
    }

    /// Appends an event published at `at_ns` and returns its sequence number; the oldest is dropped when full.
    pub fn publish(&mut self, at_ns: u64, kind: Kind) -> u64 {
        if self.events.len() == self.capacity {
            self.events.pop_front();
            self.dropped += 1;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.events.push_back(Event { seq, at_ms: at_ns / 1_000_000, kind });
        seq
    }

    /// The cursor of a reader that wants only what comes from now on.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Up to `max` events with a sequence number of at least `cursor`, oldest first, and how many such events the
    /// log no longer holds. A cursor beyond the newest event (a reader from before a reset, or a made-up one) gets
    /// nothing and the next cursor.
    pub fn since(&self, cursor: u64, max: usize) -> Batch {
        let oldest = self.next_seq - self.events.len() as u64;
        if cursor >= self.next_seq {
            return Batch { missed: 0, events: Vec::new(), next: self.next_seq };
        }
        let missed = oldest.saturating_sub(cursor);
        let first = cursor.max(oldest);
        let skip = (first - oldest) as usize;
        let events: Vec<Event> = self.events.iter().skip(skip).take(max).cloned().collect();
        let next = first + events.len() as u64;
        Batch { missed, events, next }
    }

    /// Its counters.
    pub fn counters(&self) -> Counters {
        Counters {
            published: self.next_seq - 1,
            dropped: self.dropped,
            held: self.events.len(),
            capacity: self.capacity,
        }
    }
}
