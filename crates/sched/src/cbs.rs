//! CBS+EDF: deadline threads behind constant-bandwidth servers scheduled by earliest deadline, best effort in the leftover time.
//!
//! Each deadline thread has a server with budget Q, period T and relative
//! deadline D (D <= T). The rules are those Linux documents for
//! SCHED_DEADLINE:
//! - **Wake-up.** A thread that becomes runnable at t keeps its server's
//!   deadline d and remaining budget c unless d < t or c / (d - t) > Q / T;
//!   then d = t + D and c = Q.
//! - **Accounting.** Running consumes c. When c reaches 0 the server is
//!   throttled until d, or, with a relaxed deadline (D > T), until its next
//!   period starts (d - D + T, as Linux does); then d = d + T and c = Q, and
//!   if d is still in the past, d = now + D (hard CBS: an overrunning or
//!   stalled thread never takes time from the others).
//! - **Dispatch.** The eligible server with the earliest d runs; ties go to
//!   the lower thread ID. Best-effort threads run round robin when no server
//!   is eligible.
//! - **Admission.** A server is admitted only if the sum of Q / T stays
//!   within the bound (default 0.95), computed exactly in rational terms.
//!   It is admitted with D <= T; [`CbsEdf::set_deadline`] may later relax D
//!   up to [`MAX_DEADLINE_PERIODS`] periods. Q / T does not depend on D, and
//!   for D >= T EDF meets every deadline when the sum stays within 1, so a
//!   relaxation needs no more bandwidth.

use alloc::boxed::Box;

use sis_metrics::{LatencyHistogram, LatencySummary};

use crate::{RoundRobin, Scheduler, ThreadId};

mod slots;

use slots::{SlotHeap, SlotTable};

/// Default admission bound: 950,000 ppm (Σ Q/T ≤ 0.95).
pub const DEFAULT_BOUND_PPM: u64 = 950_000;

/// The longest relative deadline [`CbsEdf::set_deadline`] accepts, in periods: repeated relaxations stop here.
pub const MAX_DEADLINE_PERIODS: u64 = 2;

/// A server's parameters, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerParams {
    /// Budget Q per period (the thread's worst-case execution time).
    pub budget_ns: u64,
    /// Period T.
    pub period_ns: u64,
    /// Relative deadline D.
    pub deadline_ns: u64,
}

/// Why a server was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmissionError {
    /// A parameter of zero.
    ZeroParameter,
    /// Budget above the deadline: no job could meet it.
    BudgetAboveDeadline,
    /// Deadline above the period (constrained deadlines only).
    DeadlineAbovePeriod,
    /// Admitting would exceed the bound.
    OverBound {
        /// Σ Q/T with the new server, ppm (rounded up).
        utilization_ppm: u64,
        /// The bound, ppm.
        bound_ppm: u64,
    },
    /// The thread already has a server.
    AlreadyAdmitted,
    /// The policy in use has no deadline servers.
    Unsupported,
    /// The thread has no server to change.
    NotAdmitted,
    /// A deadline change beyond [`MAX_DEADLINE_PERIODS`] periods.
    DeadlineBeyondBound {
        /// The deadline asked for, ns.
        deadline_ns: u64,
        /// The longest accepted, ns.
        limit_ns: u64,
    },
}

impl core::fmt::Display for AdmissionError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AdmissionError::ZeroParameter => write!(formatter, "budget, period and deadline must be at least 1 ns"),
            AdmissionError::BudgetAboveDeadline => write!(formatter, "budget exceeds the deadline"),
            AdmissionError::DeadlineAbovePeriod => {
                write!(formatter, "deadline exceeds the period (only constrained deadlines are supported)")
            }
            AdmissionError::OverBound { utilization_ppm, bound_ppm } => write!(
                formatter,
                "utilization would be {}.{:04} > bound {}.{:04}",
                utilization_ppm / 1_000_000,
                utilization_ppm % 1_000_000 / 100,
                bound_ppm / 1_000_000,
                bound_ppm % 1_000_000 / 100
            ),
            AdmissionError::AlreadyAdmitted => write!(formatter, "the thread already has a server"),
            AdmissionError::Unsupported => write!(formatter, "the scheduling policy has no deadline servers"),
            AdmissionError::NotAdmitted => write!(formatter, "the thread has no deadline server"),
            AdmissionError::DeadlineBeyondBound { deadline_ns, limit_ns } => {
                write!(formatter, "deadline {deadline_ns} ns exceeds {MAX_DEADLINE_PERIODS} periods ({limit_ns} ns)")
            }
        }
    }
}

/// What happened to one server, counted as it happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Times the budget ran out (the thread overran and was throttled).
    pub throttles: u64,
    /// Times the wake-up rule gave the server a new deadline and full budget.
    pub deadline_resets: u64,
    /// Jobs reported complete.
    pub jobs: u64,
    /// Jobs reported complete after their own deadline (release + D).
    pub deadline_misses: u64,
    /// CPU time consumed.
    pub runtime_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not runnable.
    Blocked,
    /// Runnable and eligible.
    Ready,
    /// On the CPU.
    Running,
    /// Runnable but out of budget until the time given.
    Throttled { until_ns: u64 },
    /// Not runnable and out of budget until the time given.
    ThrottledBlocked { until_ns: u64 },
}

#[derive(Debug, Clone)]
struct Server {
    params: ServerParams,
    budget_left_ns: u64,
    deadline_at_ns: u64,
    state: State,
    stats: ServerStats,
    /// When the thread last woke, until it is dispatched.
    woke_at_ns: Option<u64>,
    /// Job release to completion.
    response: Box<LatencyHistogram>,
    /// Wake-up to dispatch.
    release_jitter: Box<LatencyHistogram>,
}

/// A deadline thread's latency figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerLatency {
    /// Job release to job completion.
    pub response_time: LatencySummary,
    /// Wake-up (release) to first dispatch.
    pub release_jitter: LatencySummary,
}

/// The CBS+EDF policy.
///
/// Every decision is O(log n): eligible servers sit in a heap ordered by
/// (deadline, thread) and throttled ones in a heap ordered by replenishment
/// time; [`CbsEdf::set_state`] is the one place that moves a server
/// between them. Servers are found by thread ID with a binary search.
#[derive(Debug)]
pub struct CbsEdf {
    servers: SlotTable<Server>,
    /// Eligible servers by (absolute deadline, thread).
    ready: SlotHeap,
    /// Throttled servers by (replenishment time, thread).
    throttled: SlotHeap,
    /// The server dispatched last, if a server is on the CPU.
    running: Option<ThreadId>,
    best_effort: RoundRobin,
    /// The best-effort thread just preempted by a ready server: it goes back first in line.
    preempted_best_effort: Option<ThreadId>,
    bound_ppm: u64,
    /// Σ Q/T as a fraction over the product-free form: kept as ppb rounded up per server.
    utilization_ppb: u64,
}

/// Q/T in parts per billion, rounded up (so admission errs on the safe side).
fn utilization_ppb(params: &ServerParams) -> u64 {
    ((params.budget_ns as u128 * 1_000_000_000).div_ceil(params.period_ns as u128)).min(u64::MAX as u128) as u64
}

impl CbsEdf {
    /// A policy with the given admission bound (ppm of one CPU) and best-effort time slice.
    pub fn new(bound_ppm: u64, best_effort_slice_ns: u64, capacity: usize) -> Self {
        CbsEdf {
            servers: SlotTable::with_capacity(capacity),
            ready: SlotHeap::with_capacity(capacity),
            throttled: SlotHeap::with_capacity(capacity),
            running: None,
            best_effort: RoundRobin::with_capacity(best_effort_slice_ns, capacity),
            preempted_best_effort: None,
            bound_ppm: bound_ppm.min(1_000_000),
            utilization_ppb: 0,
        }
    }

    /// Checks `params` and the bound; on success `thread` is scheduled by its server from now on.
    pub fn admit(&mut self, thread: ThreadId, params: ServerParams, now_ns: u64) -> Result<(), AdmissionError> {
        if params.budget_ns == 0 || params.period_ns == 0 || params.deadline_ns == 0 {
            return Err(AdmissionError::ZeroParameter);
        }
        if params.budget_ns > params.deadline_ns {
            return Err(AdmissionError::BudgetAboveDeadline);
        }
        if params.deadline_ns > params.period_ns {
            return Err(AdmissionError::DeadlineAbovePeriod);
        }
        if self.servers.get(thread).is_some() {
            return Err(AdmissionError::AlreadyAdmitted);
        }
        let total = self.utilization_ppb.saturating_add(utilization_ppb(&params));
        if total > self.bound_ppm.saturating_mul(1000) {
            return Err(AdmissionError::OverBound { utilization_ppm: total.div_ceil(1000), bound_ppm: self.bound_ppm });
        }
        let was_queued = self.best_effort.dequeue(thread);
        self.utilization_ppb = total;
        let deadline_at_ns = now_ns.saturating_add(params.deadline_ns);
        self.servers.insert(
            thread,
            Server {
                params,
                budget_left_ns: params.budget_ns,
                deadline_at_ns,
                state: State::Blocked,
                stats: ServerStats::default(),
                woke_at_ns: None,
                response: Box::default(),
                release_jitter: Box::default(),
            },
        );
        if was_queued {
            self.set_state(thread, State::Ready);
        }
        Ok(())
    }

    /// Moves `thread`'s server to `state`, keeping the ready and throttled heaps in step.
    fn set_state(&mut self, thread: ThreadId, state: State) {
        let Some(slot) = self.servers.slot(thread) else { return };
        let Some(server) = self.servers.at_mut(slot) else { return };
        match server.state {
            State::Ready => {
                self.ready.remove(slot);
            }
            State::Throttled { .. } | State::ThrottledBlocked { .. } => {
                self.throttled.remove(slot);
            }
            State::Running => {
                if self.running == Some(thread) {
                    self.running = None;
                }
            }
            State::Blocked => {}
        }
        server.state = state;
        match state {
            State::Ready => self.ready.insert(slot, server.deadline_at_ns, thread),
            State::Throttled { until_ns } | State::ThrottledBlocked { until_ns } => {
                self.throttled.insert(slot, until_ns, thread)
            }
            State::Running => self.running = Some(thread),
            State::Blocked => {}
        }
    }

    /// Removes `thread`'s server (it becomes best effort); returns its statistics.
    pub fn release(&mut self, thread: ThreadId, now_ns: u64) -> Option<ServerStats> {
        let runnable = matches!(self.servers.get(thread)?.state, State::Ready | State::Throttled { .. });
        self.set_state(thread, State::Blocked);
        let (_, server) = self.servers.remove(thread)?;
        self.utilization_ppb -= utilization_ppb(&server.params);
        if runnable {
            self.best_effort.enqueue(thread, now_ns);
        }
        Some(server.stats)
    }

    /// Changes the budget of `thread`'s server, keeping its period and deadline. A smaller budget takes
    /// effect at once (what is left of the current one is cut to it); a larger one passes admission
    /// control first, with the server's old utilization taken out of the sum.
    pub fn set_budget(&mut self, thread: ThreadId, budget_ns: u64) -> Result<(), AdmissionError> {
        let server = self.servers.get(thread).ok_or(AdmissionError::NotAdmitted)?;
        let mut params = server.params;
        params.budget_ns = budget_ns;
        if budget_ns == 0 {
            return Err(AdmissionError::ZeroParameter);
        }
        if budget_ns > params.deadline_ns {
            return Err(AdmissionError::BudgetAboveDeadline);
        }
        let others = self.utilization_ppb - utilization_ppb(&server.params);
        let total = others.saturating_add(utilization_ppb(&params));
        if total > self.utilization_ppb && total > self.bound_ppm.saturating_mul(1000) {
            return Err(AdmissionError::OverBound { utilization_ppm: total.div_ceil(1000), bound_ppm: self.bound_ppm });
        }
        self.utilization_ppb = total;
        if let Some(server) = self.servers.get_mut(thread) {
            server.params = params;
            server.budget_left_ns = server.budget_left_ns.min(budget_ns);
        }
        Ok(())
    }

    /// Changes the relative deadline of `thread`'s server, keeping budget and period. The current period's
    /// start (d - D) is kept, so the server's deadline becomes start + `deadline_ns` at once, and so does the
    /// deadline of a job judged at completion against its release + D. Refused below the budget and beyond
    /// [`MAX_DEADLINE_PERIODS`] periods; utilization (Q/T) does not change.
    pub fn set_deadline(&mut self, thread: ThreadId, deadline_ns: u64) -> Result<(), AdmissionError> {
        let server = self.servers.get(thread).ok_or(AdmissionError::NotAdmitted)?;
        let params = server.params;
        if deadline_ns == 0 {
            return Err(AdmissionError::ZeroParameter);
        }
        if params.budget_ns > deadline_ns {
            return Err(AdmissionError::BudgetAboveDeadline);
        }
        let limit_ns = params.period_ns.saturating_mul(MAX_DEADLINE_PERIODS);
        if deadline_ns > limit_ns {
            return Err(AdmissionError::DeadlineBeyondBound { deadline_ns, limit_ns });
        }
        let state = server.state;
        let start_ns = server.deadline_at_ns.saturating_sub(params.deadline_ns);
        // Out of the ready heap while its key changes; a throttled server keeps the replenishment time set when
        // it was throttled.
        let requeue = state == State::Ready;
        if requeue {
            self.set_state(thread, State::Blocked);
        }
        if let Some(server) = self.servers.get_mut(thread) {
            server.params.deadline_ns = deadline_ns;
            server.deadline_at_ns = start_ns.saturating_add(deadline_ns);
        }
        if requeue {
            self.set_state(thread, State::Ready);
        }
        Ok(())
    }

    /// Reports that `thread` finished a job at `now_ns` whose absolute deadline
    /// was `job_deadline_ns` (release + D). Misses are counted against the
    /// job's own deadline: the server's deadline moves on when CBS postpones it.
    pub fn job_complete(&mut self, thread: ThreadId, now_ns: u64, job_deadline_ns: u64) {
        if let Some(server) = self.servers.get_mut(thread) {
            server.stats.jobs += 1;
            if now_ns > job_deadline_ns {
                server.stats.deadline_misses += 1;
            }
            let release = job_deadline_ns.saturating_sub(server.params.deadline_ns);
            server.response.record(now_ns.saturating_sub(release));
        }
    }

    /// A deadline thread's response-time and release-jitter figures.
    pub fn latency(&self, thread: ThreadId) -> Option<ServerLatency> {
        self.servers.get(thread).map(|server| ServerLatency {
            response_time: server.response.summary(),
            release_jitter: server.release_jitter.summary(),
        })
    }

    /// A server's statistics.
    pub fn stats(&self, thread: ThreadId) -> Option<ServerStats> {
        self.servers.get(thread).map(|server| server.stats)
    }

    /// A server's parameters.
    pub fn params(&self, thread: ThreadId) -> Option<ServerParams> {
        self.servers.get(thread).map(|server| server.params)
    }

    /// Σ Q/T of admitted servers, ppm rounded up.
    pub fn utilization_ppm(&self) -> u64 {
        self.utilization_ppb.div_ceil(1000)
    }

    /// The admission bound, ppm.
    pub fn bound_ppm(&self) -> u64 {
        self.bound_ppm
    }

    /// Replenishes servers whose throttling ended by `now_ns`.
    fn refresh(&mut self, now_ns: u64) {
        while let Some((until_ns, thread)) = self.throttled.first() {
            if until_ns > now_ns {
                break;
            }
            let Some(server) = self.servers.get_mut(thread) else {
                // Not reachable: a server leaves the heap before the table. Drop the entry rather than spin.
                self.throttled.pop();
                continue;
            };
            let next = match server.state {
                State::Throttled { .. } => State::Ready,
                _ => State::Blocked,
            };
            // Leave the throttled set first (keyed by `until`), then replenish.
            self.set_state(thread, State::Blocked);
            if let Some(server) = self.servers.get_mut(thread) {
                server.deadline_at_ns = server.deadline_at_ns.saturating_add(server.params.period_ns);
                server.budget_left_ns = server.params.budget_ns;
                // A deadline still behind (the machine stalled, or the server
                // fell far back) would let it run budget after budget at top
                // priority; as Linux does, start afresh from now.
                if server.deadline_at_ns < now_ns {
                    server.deadline_at_ns = now_ns.saturating_add(server.params.deadline_ns);
                    server.stats.deadline_resets += 1;
                }
            }
            self.set_state(thread, next);
        }
    }

    /// The ready server with the earliest deadline (lower ID on ties).
    fn earliest_ready(&self) -> Option<(ThreadId, u64)> {
        self.ready.first().map(|(deadline, thread)| (thread, deadline))
    }
}

impl Scheduler for CbsEdf {
    fn name(&self) -> &'static str {
        "cbs-edf"
    }

    fn set_priority(&mut self, thread: ThreadId, priority: u8) -> bool {
        self.best_effort.set_priority(thread, priority)
    }

    fn priority(&self, thread: ThreadId) -> u8 {
        self.best_effort.priority(thread)
    }

    fn enqueue(&mut self, thread: ThreadId, now_ns: u64) {
        self.refresh(now_ns);
        let Some(server) = self.servers.get_mut(thread) else {
            if self.preempted_best_effort == Some(thread) {
                self.preempted_best_effort = None;
                self.best_effort.enqueue_front(thread);
            } else {
                self.best_effort.enqueue(thread, now_ns);
            }
            return;
        };
        let next = match server.state {
            State::Blocked => {
                // CBS wake-up rule: c / (d - t) > Q / T  <=>  c * T > (d - t) * Q.
                let params = server.params;
                let stale = server.deadline_at_ns < now_ns
                    || server.budget_left_ns as u128 * params.period_ns as u128
                        > (server.deadline_at_ns - now_ns) as u128 * params.budget_ns as u128;
                if stale {
                    server.deadline_at_ns = now_ns.saturating_add(params.deadline_ns);
                    server.budget_left_ns = params.budget_ns;
                    server.stats.deadline_resets += 1;
                }
                server.woke_at_ns = Some(now_ns);
                State::Ready
            }
            State::ThrottledBlocked { until_ns } => State::Throttled { until_ns },
            State::Running => State::Ready,
            State::Ready | State::Throttled { .. } => return,
        };
        self.set_state(thread, next);
    }

    fn dequeue(&mut self, thread: ThreadId) -> bool {
        let next = match self.servers.get(thread).map(|server| server.state) {
            None => return self.best_effort.dequeue(thread),
            Some(State::Ready | State::Running) => State::Blocked,
            Some(State::Throttled { until_ns }) => State::ThrottledBlocked { until_ns },
            Some(State::Blocked | State::ThrottledBlocked { .. }) => return false,
        };
        self.set_state(thread, next);
        true
    }

    fn pick_next(&mut self, now_ns: u64) -> Option<ThreadId> {
        self.refresh(now_ns);
        // A server still marked running was neither re-enqueued nor dequeued:
        // it has stopped, so it is blocked from here on.
        if let Some(thread) = self.running {
            self.set_state(thread, State::Blocked);
        }
        if let Some((thread, _)) = self.earliest_ready() {
            self.set_state(thread, State::Running);
            if let Some(server) = self.servers.get_mut(thread) {
                if let Some(woke_at) = server.woke_at_ns.take() {
                    server.release_jitter.record(now_ns.saturating_sub(woke_at));
                }
            }
            return Some(thread);
        }
        self.best_effort.pick_next(now_ns)
    }

    fn charge(&mut self, thread: ThreadId, ran_ns: u64, now_ns: u64) {
        let Some(server) = self.servers.get_mut(thread) else {
            self.best_effort.charge(thread, ran_ns, now_ns);
            return;
        };
        server.stats.runtime_ns = server.stats.runtime_ns.saturating_add(ran_ns);
        server.budget_left_ns = server.budget_left_ns.saturating_sub(ran_ns);
        if server.budget_left_ns == 0 && server.state == State::Running {
            server.stats.throttles += 1;
            // Hard CBS: wait for the deadline, then replenish with the next one. A relaxed deadline (D > T)
            // lies beyond the next period's start (d - D + T): waiting for it would cut the bandwidth to Q/D.
            let params = server.params;
            let next_period_ns =
                server.deadline_at_ns.saturating_sub(params.deadline_ns).saturating_add(params.period_ns);
            let until_ns = server.deadline_at_ns.min(next_period_ns).max(now_ns);
            self.set_state(thread, State::Throttled { until_ns });
        }
    }

    fn should_preempt(&mut self, running: ThreadId, now_ns: u64) -> bool {
        self.refresh(now_ns);
        match self.servers.get(running) {
            Some(server) => {
                // Throttled, or replenished by the refresh above while on the CPU (its budget ran out after its
                // deadline, so it was throttled until now): either way it goes back through the run queue.
                // Left on the CPU marked ready, its budget would never throttle it again.
                if server.state != State::Running {
                    return true;
                }
                let own = (server.deadline_at_ns, running);
                self.earliest_ready().is_some_and(|(thread, deadline)| (deadline, thread) < own)
            }
            None if self.earliest_ready().is_some() => {
                // Preempted by a server, not by its slice: it resumes before the other best-effort threads.
                self.preempted_best_effort = Some(running);
                true
            }
            None => self.best_effort.should_preempt(running, now_ns),
        }
    }

    fn next_decision_ns(&self, running: Option<ThreadId>, now_ns: u64) -> Option<u64> {
        let replenish = self.throttled.first().map(|(until_ns, _)| until_ns);
        let own = match running.and_then(|thread| self.servers.get(thread).map(|server| (thread, server))) {
            Some((_, server)) => Some(now_ns.saturating_add(server.budget_left_ns)),
            None => self.best_effort.next_decision_ns(running, now_ns),
        };
        match (replenish, own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn runnable_count(&self) -> usize {
        self.ready.len() + self.best_effort.runnable_count()
    }

    fn admit(&mut self, thread: ThreadId, params: ServerParams, now_ns: u64) -> Result<(), AdmissionError> {
        CbsEdf::admit(self, thread, params, now_ns)
    }

    fn release(&mut self, thread: ThreadId, now_ns: u64) -> Option<ServerStats> {
        CbsEdf::release(self, thread, now_ns)
    }

    fn job_complete(&mut self, thread: ThreadId, now_ns: u64, job_deadline_ns: u64) {
        CbsEdf::job_complete(self, thread, now_ns, job_deadline_ns);
    }

    fn set_budget(&mut self, thread: ThreadId, budget_ns: u64) -> Result<(), AdmissionError> {
        CbsEdf::set_budget(self, thread, budget_ns)
    }

    fn set_deadline(&mut self, thread: ThreadId, deadline_ns: u64) -> Result<(), AdmissionError> {
        CbsEdf::set_deadline(self, thread, deadline_ns)
    }

    fn server(&self, thread: ThreadId) -> Option<(ServerParams, ServerStats)> {
        self.servers.get(thread).map(|server| (server.params, server.stats))
    }

    fn server_latency(&self, thread: ThreadId) -> Option<ServerLatency> {
        self.latency(thread)
    }

    fn utilization(&self) -> (u64, u64) {
        (self.utilization_ppm(), self.bound_ppm)
    }

    fn set_bound(&mut self, bound_ppm: u64) -> Result<(), AdmissionError> {
        if bound_ppm == 0 || bound_ppm > 1_000_000 {
            return Err(AdmissionError::ZeroParameter);
        }
        if self.utilization_ppb > bound_ppm.saturating_mul(1000) {
            return Err(AdmissionError::OverBound { utilization_ppm: self.utilization_ppm(), bound_ppm });
        }
        self.bound_ppm = bound_ppm;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
