//! CBS+EDF tests: admission, CBS rules, and an exact event-driven simulation of periodic task sets.

use super::*;
use alloc::vec;
use alloc::vec::Vec;

const MS: u64 = 1_000_000;

fn params(budget_ms: u64, period_ms: u64) -> ServerParams {
    ServerParams { budget_ns: budget_ms * MS, period_ns: period_ms * MS, deadline_ns: period_ms * MS }
}

#[test]
fn admission_checks_parameters_and_the_bound_and_changes_nothing_when_refused() {
    let mut policy = CbsEdf::new(DEFAULT_BOUND_PPM, 10 * MS, 16);
    assert_eq!(policy.admit(1, params(0, 10), 0), Err(AdmissionError::ZeroParameter));
    let inverted = ServerParams { budget_ns: 5 * MS, period_ns: 10 * MS, deadline_ns: 4 * MS };
    assert_eq!(policy.admit(1, inverted, 0), Err(AdmissionError::BudgetAboveDeadline));
    let long_deadline = ServerParams { budget_ns: MS, period_ns: 10 * MS, deadline_ns: 20 * MS };
    assert_eq!(policy.admit(1, long_deadline, 0), Err(AdmissionError::DeadlineAbovePeriod));
    policy.admit(1, params(5, 10), 0).unwrap();
    policy.admit(2, params(4, 10), 0).unwrap();
    assert_eq!(policy.utilization_ppm(), 900_000);
    let refused = policy.admit(3, params(1, 10), 0).unwrap_err();
    assert_eq!(refused, AdmissionError::OverBound { utilization_ppm: 1_000_000, bound_ppm: 950_000 });
    assert_eq!(refused.to_string(), "utilization would be 1.0000 > bound 0.9500");
    assert_eq!(policy.utilization_ppm(), 900_000);
    assert_eq!(policy.admit(1, params(1, 100), 0), Err(AdmissionError::AlreadyAdmitted));
    assert_eq!(policy.release(2, 0).map(|stats| stats.jobs), Some(0));
    assert_eq!(policy.utilization_ppm(), 500_000);
    let extreme = ServerParams { budget_ns: u64::MAX, period_ns: u64::MAX, deadline_ns: u64::MAX };
    assert!(matches!(policy.admit(4, extreme, 0), Err(AdmissionError::OverBound { .. })));
}

#[test]
fn a_budget_change_cuts_at_once_and_a_raise_passes_admission() {
    let mut policy = CbsEdf::new(DEFAULT_BOUND_PPM, 10 * MS, 16);
    assert_eq!(policy.set_budget(1, MS), Err(AdmissionError::NotAdmitted));
    policy.admit(1, params(4, 10), 0).unwrap();
    policy.admit(2, params(5, 10), 0).unwrap();
    policy.enqueue(1, 0);
    assert_eq!(policy.pick_next(0), Some(1));
    policy.set_budget(1, 2 * MS).unwrap();
    assert_eq!(policy.utilization_ppm(), 700_000);
    assert_eq!(policy.next_decision_ns(Some(1), 0), Some(2 * MS), "the running job's budget is cut at once");
    assert_eq!(policy.server(1).map(|(params, _)| params.budget_ns), Some(2 * MS));
    let refused = policy.set_budget(1, 5 * MS).unwrap_err();
    assert_eq!(refused, AdmissionError::OverBound { utilization_ppm: 1_000_000, bound_ppm: 950_000 });
    assert_eq!(policy.utilization_ppm(), 700_000, "a refused raise changes nothing");
    assert_eq!(policy.set_budget(1, 11 * MS), Err(AdmissionError::BudgetAboveDeadline));
    assert_eq!(policy.set_budget(1, 0), Err(AdmissionError::ZeroParameter));
    policy.set_budget(1, 4 * MS).unwrap();
    assert_eq!(policy.utilization_ppm(), 900_000);
}

#[test]
fn earliest_deadline_runs_first_and_best_effort_waits() {
    let mut policy = CbsEdf::new(DEFAULT_BOUND_PPM, 10 * MS, 16);
    policy.admit(1, params(1, 20), 0).unwrap();
    policy.admit(2, params(1, 10), 0).unwrap();
    policy.enqueue(9, 0);
    policy.enqueue(1, 0);
    policy.enqueue(2, 0);
    assert_eq!(policy.pick_next(0), Some(2));
    policy.charge(2, MS, MS);
    assert!(policy.should_preempt(2, MS), "budget spent");
    policy.enqueue(2, MS);
    assert_eq!(policy.pick_next(MS), Some(1));
    policy.charge(1, MS, 2 * MS);
    policy.enqueue(1, 2 * MS);
    assert_eq!(policy.pick_next(2 * MS), Some(9), "both servers throttled: best effort runs");
    assert_eq!(policy.next_decision_ns(Some(9), 2 * MS), Some(10 * MS), "server 2 replenishes at its deadline");
    assert!(policy.should_preempt(9, 10 * MS));
}

#[test]
fn a_best_effort_thread_preempted_by_a_server_more_often_than_its_slice_does_not_starve_the_others() {
    // Thread 8 runs flat out, thread 9 waits behind it, and server 1 preempts every 5 ms (slice 10 ms).
    let mut policy = CbsEdf::new(DEFAULT_BOUND_PPM, 10 * MS, 16);
    policy.admit(1, params(1, 5), 0).unwrap();
    policy.enqueue(8, 0);
    policy.enqueue(9, 0);
    let mut now = 0;
    let mut running = policy.pick_next(now).unwrap();
    let mut ran_9 = false;
    for _ in 0..40 {
        let next_release = (now / (5 * MS) + 1) * 5 * MS;
        let until = policy.next_decision_ns(Some(running), now).map_or(next_release, |at| at.min(next_release));
        policy.charge(running, until - now, until);
        now = until;
        if now == next_release {
            policy.enqueue(1, now);
        }
        if policy.should_preempt(running, now) {
            if running != 1 {
                policy.enqueue(running, now);
            }
            running = policy.pick_next(now).unwrap();
        }
        if running == 1 {
            // The server's job: 1 ms, then it blocks until its next release.
            policy.charge(1, MS, now + MS);
            now += MS;
            policy.dequeue(1);
            running = policy.pick_next(now).unwrap();
        }
        ran_9 |= running == 9;
        if ran_9 {
            break;
        }
    }
    assert!(ran_9, "thread 9 never ran by {} ms", now / MS);
    assert!(now <= 15 * MS, "thread 9 first ran at {} ms; a slice is 10 ms", now / MS);
}

#[test]
fn a_best_effort_thread_preempted_by_a_server_resumes_before_the_others() {
    let mut policy = CbsEdf::new(DEFAULT_BOUND_PPM, 10 * MS, 16);
    policy.admit(1, params(1, 10), 0).unwrap();
    policy.enqueue(8, 0);
    policy.enqueue(9, 0);
    assert_eq!(policy.pick_next(0), Some(8));
    // The server wakes 2 ms into 8's slice: it preempts 8 ...
    policy.charge(8, 2 * MS, 2 * MS);
    policy.enqueue(1, 2 * MS);
    assert!(policy.should_preempt(8, 2 * MS));
    policy.enqueue(8, 2 * MS);
    assert_eq!(policy.pick_next(2 * MS), Some(1));
    // ... and when it blocks, 8 runs again, not 9 (which waited all along behind it).
    policy.charge(1, MS / 2, 2 * MS + MS / 2);
    policy.dequeue(1);
    assert_eq!(policy.pick_next(2 * MS + MS / 2), Some(8));
    // A slice that runs out still goes to the back.
    policy.charge(8, 10 * MS, 13 * MS);
    assert!(policy.should_preempt(8, 13 * MS));
    policy.enqueue(8, 13 * MS);
    assert_eq!(policy.pick_next(13 * MS), Some(9));
}

#[test]
fn wake_up_rule_keeps_or_resets_the_deadline() {
    let mut policy = CbsEdf::new(DEFAULT_BOUND_PPM, 10 * MS, 16);
    policy.admit(1, params(2, 10), 0).unwrap();
    policy.enqueue(1, 0);
    assert_eq!(policy.pick_next(0), Some(1));
    policy.charge(1, MS, MS);
    policy.dequeue(1);
    // At 2 ms: c = 1 ms, d - t = 8 ms: 1/8 < 2/10, the deadline is kept.
    policy.enqueue(1, 2 * MS);
    assert_eq!(policy.stats(1).unwrap().deadline_resets, 0);
    assert_eq!(policy.pick_next(2 * MS), Some(1));
    policy.dequeue(1);
    // At 9.5 ms: c = 1 ms, d - t = 0.5 ms: 2 > 0.2, a fresh deadline and budget.
    policy.enqueue(1, 9 * MS + MS / 2);
    assert_eq!(policy.stats(1).unwrap().deadline_resets, 1);
    // Woke at 9.5 ms, dispatched at 9.7 ms: 0.2 ms of release jitter on top of the first dispatch's 0.
    assert_eq!(policy.pick_next(9 * MS + 7 * MS / 10), Some(1));
    let latency = policy.latency(1).unwrap();
    assert_eq!(latency.release_jitter.count, 3);
    assert_eq!(latency.release_jitter.max_ns, 200_000);
    policy.job_complete(1, 12 * MS, 9 * MS + MS / 2 + 10 * MS);
    assert_eq!(policy.latency(1).unwrap().response_time.max_ns, 12 * MS - (9 * MS + MS / 2));
}

/// A periodic task for the simulator: jobs of `execution_ns` released every `period_ns`.
#[derive(Clone, Copy)]
struct Task {
    params: ServerParams,
    execution_ns: u64,
}

#[derive(Default, Clone)]
struct TaskState {
    next_release: u64,
    /// Absolute deadlines of released, unfinished jobs, oldest first.
    pending: Vec<u64>,
    work_left: u64,
    misses: u64,
    jobs: u64,
}

/// Simulates `tasks` (thread IDs 1..) under CBS+EDF with an exact event clock; returns misses per task.
fn simulate(tasks: &[Task], horizon_ns: u64) -> Vec<u64> {
    let mut policy = CbsEdf::new(DEFAULT_BOUND_PPM, 10 * MS, tasks.len() + 1);
    for (index, task) in tasks.iter().enumerate() {
        policy.admit(index as u32 + 1, task.params, 0).expect("admitted");
    }
    let mut states = vec![TaskState::default(); tasks.len()];
    let mut running: Option<ThreadId> = None;
    let mut now = 0u64;
    loop {
        // Releases due now.
        for (index, task) in tasks.iter().enumerate() {
            let state = &mut states[index];
            while state.next_release <= now && state.next_release < horizon_ns {
                let was_idle = state.pending.is_empty();
                state.pending.push(state.next_release + task.params.deadline_ns);
                if was_idle {
                    state.work_left = task.execution_ns;
                    if running != Some(index as u32 + 1) {
                        policy.enqueue(index as u32 + 1, now);
                    }
                }
                state.next_release += task.params.period_ns;
            }
        }
        // Dispatch.
        match running {
            Some(thread) if policy.should_preempt(thread, now) => {
                policy.enqueue(thread, now);
                running = policy.pick_next(now);
            }
            None => running = policy.pick_next(now),
            _ => {}
        }
        if now >= horizon_ns {
            break;
        }
        // Next event: a release, the running job's completion, or a policy decision.
        let mut next = tasks.iter().zip(&states).map(|(_, state)| state.next_release).min().unwrap_or(u64::MAX);
        if let Some(thread) = running {
            next = next.min(now + states[thread as usize - 1].work_left);
        }
        if let Some(decision) = policy.next_decision_ns(running, now) {
            next = next.min(decision.max(now + 1));
        }
        let next = next.min(horizon_ns);
        let ran = next - now;
        now = next;
        if let Some(thread) = running {
            let state = &mut states[thread as usize - 1];
            state.work_left -= ran.min(state.work_left);
            policy.charge(thread, ran, now);
            if state.work_left == 0 {
                let deadline = state.pending.remove(0);
                state.jobs += 1;
                if now > deadline {
                    state.misses += 1;
                }
                policy.job_complete(thread, now, deadline);
                if state.pending.is_empty() {
                    policy.dequeue(thread);
                    running = policy.pick_next(now);
                } else {
                    state.work_left = tasks[thread as usize - 1].execution_ns;
                }
            }
        }
    }
    // Jobs still unfinished past their deadline at the horizon are misses too.
    states
        .iter()
        .map(|state| state.misses + state.pending.iter().filter(|&&deadline| deadline < now).count() as u64)
        .collect()
}

/// UUniFast-Discard: `count` utilizations summing to `total`, none above 1.
fn uunifast_discard(rng: &mut Xorshift, count: usize, total: f64) -> Vec<f64> {
    loop {
        let mut sum = total;
        let mut shares = Vec::with_capacity(count);
        for remaining in (1..count).rev() {
            let next = sum * rng.unit().powf(1.0 / remaining as f64);
            shares.push(sum - next);
            sum = next;
        }
        shares.push(sum);
        if shares.iter().all(|&share| share <= 1.0) {
            return shares;
        }
    }
}

struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn a_thousand_admitted_task_sets_miss_no_deadline() {
    let mut rng = Xorshift(0x5eed_2026);
    let mut admitted_sets = 0;
    let mut rejected_sets = 0;
    for set in 0..1000 {
        let count = 2 + (rng.next() % 15) as usize;
        let total = 0.1 + rng.unit() * (0.95 - 0.1);
        let tasks: Vec<Task> = uunifast_discard(&mut rng, count, total)
            .into_iter()
            .map(|share| {
                // Periods log-uniform in 1 ms .. 100 ms.
                let period_ns = (MS as f64 * 10f64.powf(rng.unit() * 2.0)) as u64;
                let budget_ns = ((share * period_ns as f64) as u64).max(1);
                Task { params: ServerParams { budget_ns, period_ns, deadline_ns: period_ns }, execution_ns: budget_ns }
            })
            .collect();
        let mut probe = CbsEdf::new(DEFAULT_BOUND_PPM, 10 * MS, count);
        if tasks.iter().enumerate().any(|(index, task)| probe.admit(index as u32 + 1, task.params, 0).is_err()) {
            rejected_sets += 1;
            continue;
        }
        admitted_sets += 1;
        let misses = simulate(&tasks, 500 * MS);
        assert!(misses.iter().all(|&m| m == 0), "set {set}: misses {misses:?}");
    }
    assert!(admitted_sets > 950, "{admitted_sets} admitted, {rejected_sets} rejected");
}

#[test]
fn sets_above_the_bound_are_rejected() {
    let mut policy = CbsEdf::new(DEFAULT_BOUND_PPM, 10 * MS, 8);
    let mut total = 0;
    for thread in 1..=8 {
        match policy.admit(thread, params(13, 100), 0) {
            Ok(()) => total += 130_000,
            Err(AdmissionError::OverBound { utilization_ppm, .. }) => {
                assert_eq!(utilization_ppm, total + 130_000);
                assert!(utilization_ppm > 950_000);
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(policy.utilization_ppm(), 910_000);
}

#[test]
fn an_overrunning_thread_is_throttled_and_never_causes_another_miss() {
    // U = 0.2 + 0.3 + 0.4 = 0.9; task 1 runs 50 % over its budget every job.
    let mut tasks = vec![
        Task { params: params(2, 10), execution_ns: 3 * MS },
        Task { params: params(6, 20), execution_ns: 6 * MS },
        Task { params: params(20, 50), execution_ns: 20 * MS },
    ];
    let misses = simulate(&tasks, 1000 * MS);
    assert_eq!(&misses[1..], &[0, 0], "CBS isolates the others: {misses:?}");
    assert!(misses[0] > 0, "the overrunning task itself misses");
    tasks[0].execution_ns = 2 * MS;
    assert_eq!(simulate(&tasks, 1000 * MS), vec![0, 0, 0]);
}

/// Regression: after a stall (the host paused the machine) a throttled server
/// was replenished with a deadline still in the past and ran budget after
/// budget at top priority, starving best-effort threads (the shell) until it
/// caught up. As in Linux's replenishment, a deadline still behind is reset
/// to now + D.
#[test]
fn a_stall_does_not_let_a_server_catch_up_at_full_speed() {
    let mut policy = CbsEdf::new(DEFAULT_BOUND_PPM, 10 * MS, 4);
    policy.admit(1, params(2, 10), 0).unwrap();
    policy.enqueue(1, 0);
    policy.enqueue(9, 0);
    let mut now = 0;
    let mut running = policy.pick_next(now).unwrap();
    assert_eq!(running, 1);
    // Spend the budget: throttled until 10 ms.
    now += 2 * MS;
    policy.charge(running, 2 * MS, now);
    assert!(policy.should_preempt(running, now));
    policy.enqueue(running, now);
    running = policy.pick_next(now).unwrap();
    assert_eq!(running, 9);
    // The machine stalls for a second.
    now += 1000 * MS;
    let mut server_ns = 0;
    let step = 100_000;
    for _ in 0..1000 {
        if policy.should_preempt(running, now) {
            policy.enqueue(running, now);
            running = policy.pick_next(now).unwrap();
        }
        now += step;
        policy.charge(running, step, now);
        if running == 1 {
            server_ns += step;
        }
    }
    // 100 ms at 0.2 bandwidth: 20 ms, plus at most one budget of slack.
    assert!(server_ns <= 22 * MS, "server took {} ms of 100", server_ns / MS);
    assert!(server_ns >= 18 * MS, "server took {} ms of 100", server_ns / MS);
}

/// A server whose budget runs out after its deadline has passed is throttled until now and replenished by
/// the same decision. It must go back through the run queue: left on the CPU marked ready, its budget would
/// never throttle it again, and every decision would fall due at once (a timer-interrupt storm in the kernel).
#[test]
fn a_server_replenished_while_on_the_cpu_is_dispatched_again_and_throttles_at_its_next_budget() {
    let mut policy = CbsEdf::new(DEFAULT_BOUND_PPM, 10 * MS, 4);
    policy.admit(1, params(2, 10), 0).unwrap();
    policy.enqueue(1, 0);
    assert_eq!(policy.pick_next(0), Some(1));
    // Late: the budget runs out 12 ms in, after the 10 ms deadline.
    policy.charge(1, 2 * MS, 12 * MS);
    assert!(policy.should_preempt(1, 12 * MS), "the decision must be taken again");
    policy.enqueue(1, 12 * MS);
    assert_eq!(policy.pick_next(12 * MS), Some(1), "replenished, and alone");
    assert_eq!(policy.next_decision_ns(Some(1), 12 * MS), Some(14 * MS), "a full budget from now");
    policy.charge(1, 2 * MS, 14 * MS);
    assert!(policy.should_preempt(1, 14 * MS), "throttled at the end of its new budget");
    assert_eq!(policy.stats(1).unwrap().throttles, 2);
}

/// Runs one job of `work_ns` for server 1 released at `release_ns`, alone on the CPU, through throttling and
/// replenishment; reports it against release + D (D read at completion, as the kernel does) and returns its
/// completion time.
fn run_job(policy: &mut CbsEdf, release_ns: u64, work_ns: u64) -> u64 {
    let mut now = release_ns;
    let mut left = work_ns;
    policy.enqueue(1, now);
    loop {
        match policy.pick_next(now) {
            Some(1) => {
                let ran = left.min(policy.next_decision_ns(Some(1), now).unwrap() - now);
                now += ran;
                left -= ran;
                policy.charge(1, ran, now);
                if left == 0 {
                    let deadline_ns = policy.params(1).unwrap().deadline_ns;
                    policy.job_complete(1, now, release_ns + deadline_ns);
                    policy.dequeue(1);
                    return now;
                }
                if policy.should_preempt(1, now) {
                    policy.enqueue(1, now);
                }
            }
            other => {
                assert_eq!(other, None, "only server 1 exists");
                now = policy.next_decision_ns(None, now).unwrap();
            }
        }
    }
}

#[test]
fn a_relaxed_deadline_turns_a_miss_into_a_met_job_and_stays_within_two_periods() {
    // The chaos run's deadline thread under pressure: 1.5 ms of work in a 1 ms budget every 10 ms.
    let mut policy = CbsEdf::new(DEFAULT_BOUND_PPM, 10 * MS, 4);
    let reservation = params(1, 10);
    policy.admit(1, reservation, 0).unwrap();
    // D = 10 ms: 1 ms, throttled until 10 ms, 0.5 ms more: done at 10.5 ms, late.
    assert_eq!(run_job(&mut policy, 0, 3 * MS / 2), 10 * MS + MS / 2);
    assert_eq!(policy.stats(1).map(|stats| (stats.jobs, stats.deadline_misses)), Some((1, 1)));
    // D = 12.5 ms: throttled until the next period starts (20 + 10 ms, not the deadline 32.5 ms), done at
    // 30.5 ms, before 32.5 ms.
    policy.set_deadline(1, 12 * MS + MS / 2).unwrap();
    assert_eq!(policy.params(1).map(|params| (params.budget_ns, params.period_ns)), Some((MS, 10 * MS)));
    assert_eq!(policy.utilization_ppm(), 100_000, "Q/T unchanged");
    assert_eq!(run_job(&mut policy, 20 * MS, 3 * MS / 2), 30 * MS + MS / 2);
    assert_eq!(policy.stats(1).map(|stats| (stats.jobs, stats.deadline_misses)), Some((2, 1)));
    // Bounded: at most two periods, at least the budget; a refusal changes nothing.
    assert_eq!(
        policy.set_deadline(1, 20 * MS + 1),
        Err(AdmissionError::DeadlineBeyondBound { deadline_ns: 20 * MS + 1, limit_ns: 20 * MS })
    );
    assert_eq!(policy.set_deadline(1, MS - 1), Err(AdmissionError::BudgetAboveDeadline));
    assert_eq!(policy.set_deadline(1, 0), Err(AdmissionError::ZeroParameter));
    assert_eq!(policy.set_deadline(2, 10 * MS), Err(AdmissionError::NotAdmitted));
    assert_eq!(policy.params(1).map(|params| params.deadline_ns), Some(12 * MS + MS / 2));
    policy.set_deadline(1, 20 * MS).unwrap();
    // Restored: the reservation as admitted, and the same job misses again.
    policy.set_deadline(1, 10 * MS).unwrap();
    assert_eq!(policy.params(1), Some(reservation));
    assert_eq!(run_job(&mut policy, 40 * MS, 3 * MS / 2), 50 * MS + MS / 2);
    assert_eq!(policy.stats(1).map(|stats| (stats.jobs, stats.deadline_misses)), Some((3, 2)));
    assert_eq!(
        AdmissionError::DeadlineBeyondBound { deadline_ns: 25 * MS, limit_ns: 20 * MS }.to_string(),
        "deadline 25000000 ns exceeds 2 periods (20000000 ns)"
    );
}

#[test]
fn a_deadline_change_moves_a_ready_server_in_the_edf_order_at_once() {
    let mut policy = CbsEdf::new(DEFAULT_BOUND_PPM, 10 * MS, 4);
    policy.admit(1, params(1, 10), 0).unwrap();
    policy.admit(2, ServerParams { budget_ns: MS, period_ns: 20 * MS, deadline_ns: 12 * MS }, 0).unwrap();
    policy.enqueue(1, 0);
    policy.enqueue(2, 0);
    // Deadlines 10 and 12 ms: 1 first. Relaxed to 15 ms (period start 0 kept), 1 goes after 2.
    policy.set_deadline(1, 15 * MS).unwrap();
    assert_eq!(policy.pick_next(0), Some(2));
    policy.charge(2, MS / 2, MS / 2);
    // While 2 runs, 2's deadline relaxed to 16 ms: now 1 (15 ms) is earlier and preempts it.
    policy.set_deadline(2, 16 * MS).unwrap();
    assert!(policy.should_preempt(2, MS / 2));
    policy.enqueue(2, MS / 2);
    assert_eq!(policy.pick_next(MS / 2), Some(1));
}
