//! Scheduling policy: the `Scheduler` trait the platform's thread mechanism calls, and its policies.
//!
//! The platform owns threads, stacks and context switches (mechanism); a policy
//! only decides which runnable thread goes next and when the running one must
//! give way. Policies are plain safe code driven by explicit timestamps, so they
//! are tested on the host with a fake clock.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod cbs;
mod round_robin;

pub use cbs::{
    AdmissionError, CbsEdf, ServerLatency, ServerParams, ServerStats, DEFAULT_BOUND_PPM, MAX_DEADLINE_PERIODS,
};

pub use round_robin::RoundRobin;

/// Identifies a thread; assigned by the platform, never reused while the thread exists.
pub type ThreadId = u32;

/// A scheduling policy.
///
/// Protocol (the platform keeps to it; every method is O(1) or O(runnable)):
/// - a thread that becomes runnable is `enqueue`d exactly once;
/// - `pick_next` removes and returns the thread that runs next;
/// - the running thread is `charge`d for the time it ran before every
///   decision, and is `enqueue`d again if it is preempted while runnable;
/// - a thread that blocks, sleeps or exits, whether queued or running, is
///   `dequeue`d.
pub trait Scheduler: Send {
    /// Short policy name, shown by `threads`.
    fn name(&self) -> &'static str;
    /// Makes `thread` runnable at `now_ns`.
    fn enqueue(&mut self, thread: ThreadId, now_ns: u64);
    /// Removes a queued `thread`; returns whether it was queued.
    fn dequeue(&mut self, thread: ThreadId) -> bool;
    /// Removes and returns the thread to run next, or `None` to idle.
    fn pick_next(&mut self, now_ns: u64) -> Option<ThreadId>;
    /// Accounts `ran_ns` of CPU time to the running `thread`.
    fn charge(&mut self, thread: ThreadId, ran_ns: u64, now_ns: u64);
    /// Whether the running `thread` must give way now (a runnable peer is owed the CPU).
    fn should_preempt(&mut self, running: ThreadId, now_ns: u64) -> bool;
    /// Absolute time at which the policy next needs a decision for `running`
    /// (end of its time slice), or `None` if no timer is needed.
    fn next_decision_ns(&self, running: Option<ThreadId>, now_ns: u64) -> Option<u64>;
    /// Number of threads waiting to run.
    fn runnable_count(&self) -> usize;

    /// Gives `thread` a deadline server; policies without servers refuse.
    fn admit(&mut self, _thread: ThreadId, _params: ServerParams, _now_ns: u64) -> Result<(), AdmissionError> {
        Err(AdmissionError::Unsupported)
    }
    /// Removes `thread`'s server, if it has one, returning its statistics.
    fn release(&mut self, _thread: ThreadId, _now_ns: u64) -> Option<ServerStats> {
        None
    }
    /// Changes the budget of `thread`'s server (period and deadline kept); policies without servers refuse.
    fn set_budget(&mut self, _thread: ThreadId, _budget_ns: u64) -> Result<(), AdmissionError> {
        Err(AdmissionError::Unsupported)
    }
    /// Changes the relative deadline of `thread`'s server (budget and period kept); policies without servers
    /// refuse.
    fn set_deadline(&mut self, _thread: ThreadId, _deadline_ns: u64) -> Result<(), AdmissionError> {
        Err(AdmissionError::Unsupported)
    }
    /// Reports that `thread` finished a job whose absolute deadline was `job_deadline_ns`.
    fn job_complete(&mut self, _thread: ThreadId, _now_ns: u64, _job_deadline_ns: u64) {}
    /// `thread`'s server parameters and statistics, if it has a server.
    fn server(&self, _thread: ThreadId) -> Option<(ServerParams, ServerStats)> {
        None
    }
    /// `thread`'s response-time and release-jitter figures, if it has a server.
    fn server_latency(&self, _thread: ThreadId) -> Option<ServerLatency> {
        None
    }
    /// Sets the admission bound (ppm of one CPU); refused if admitted servers already exceed it.
    fn set_bound(&mut self, _bound_ppm: u64) -> Result<(), AdmissionError> {
        Err(AdmissionError::Unsupported)
    }
    /// Σ Q/T of admitted servers and the admission bound, both in ppm.
    fn utilization(&self) -> (u64, u64) {
        (0, 0)
    }
    /// Sets a best-effort thread's priority ([`MIN_PRIORITY`]..=[`MAX_PRIORITY`]): its time slice is
    /// `priority` base slices, so among threads that never block its CPU share is its priority over the sum
    /// of theirs. Returns whether the policy applied it. [`DEFAULT_PRIORITY`] forgets the thread.
    fn set_priority(&mut self, _thread: ThreadId, _priority: u8) -> bool {
        false
    }
    /// A best-effort thread's priority ([`DEFAULT_PRIORITY`] unless set).
    fn priority(&self, _thread: ThreadId) -> u8 {
        DEFAULT_PRIORITY
    }
}

/// Lowest best-effort priority, and every thread's until it is set: one base time slice.
pub const DEFAULT_PRIORITY: u8 = 1;
/// Lowest best-effort priority.
pub const MIN_PRIORITY: u8 = 1;
/// Highest best-effort priority: eight base time slices per turn.
pub const MAX_PRIORITY: u8 = 8;
