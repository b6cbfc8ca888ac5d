//! Kernel events: a bounded, sequenced log of what happened, for readers that follow it at their own pace.
//!
//! Producers (stress runs, the chaos engine, the memory workload's OOM events,
//! the meta-agent's interventions) publish typed events into one [`EventLog`];
//! each gets the next sequence number. The log keeps the last `capacity`
//! events and drops the oldest when full. A reader keeps a cursor (the next
//! sequence number it wants) and asks for what came since: when the log has
//! dropped events the reader had not seen, the answer says exactly how many
//! ([`Batch::missed`]), so a reader never mistakes a gap for silence.
//!
//! Progress and OOM events arrive faster than anyone needs them; [`RunProgress`]
//! and [`OomCoalescer`] decide, from the time given to them, which to publish
//! (the rules are in their docs), so the log's rate stays bounded and every
//! figure in an event is the producer's own count, not an estimate.
//!
//! The log takes time as an argument: the rules are tested on the host with
//! made-up clocks, and the kernel passes its uptime.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod kind;
mod log;
mod run;

pub use kind::{Kind, Outcome};
pub use log::{Batch, Counters, Event, EventLog, DEFAULT_CAPACITY, MAX_BATCH};
pub use run::{OomCoalescer, RunProgress, OOM_INTERVAL_NS, PROGRESS_INTERVAL_NS};

#[cfg(test)]
mod tests;
