//! Round robin: runnable threads in FIFO order, each for at most one time slice.

use alloc::collections::VecDeque;

use alloc::vec::Vec;

use crate::{Scheduler, ThreadId, DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY};

/// FIFO round-robin policy with a time slice per priority.
///
/// A thread runs until it blocks or has used its slice (`slice_ns` times its
/// priority, 1 unless set) of CPU time since it was last picked while another
/// thread is waiting; then it goes to the back of the queue. A thread alone on
/// the CPU is never preempted.
#[derive(Debug)]
pub struct RoundRobin {
    slice_ns: u64,
    queue: VecDeque<ThreadId>,
    /// Thread picked last and the CPU time it has used since then.
    running: Option<(ThreadId, u64)>,
    /// A thread put first in line after a preemption by a higher class, and the slice it had used: it
    /// resumes its slice rather than starting a fresh one, or a higher class preempting it more often than
    /// once a slice would let it starve every other thread in this queue.
    resumed: Option<(ThreadId, u64)>,
    /// Threads whose priority is not [`DEFAULT_PRIORITY`]; capacity reserved up front, so setting one
    /// allocates only beyond the thread capacity.
    priorities: Vec<(ThreadId, u8)>,
}

impl RoundRobin {
    /// Creates the policy with a time slice of `slice_ns` (clamped to at least 1 µs).
    pub fn new(slice_ns: u64) -> Self {
        RoundRobin {
            slice_ns: slice_ns.max(1_000),
            queue: VecDeque::new(),
            running: None,
            resumed: None,
            priorities: Vec::new(),
        }
    }

    /// Creates the policy with room for `capacity` queued threads, so enqueueing
    /// never allocates (the platform calls the policy from interrupt context).
    pub fn with_capacity(slice_ns: u64, capacity: usize) -> Self {
        let mut policy = Self::new(slice_ns);
        policy.queue.reserve(capacity);
        policy.priorities.reserve(capacity);
        policy
    }

    /// The time slice in nanoseconds.
    pub fn slice_ns(&self) -> u64 {
        self.slice_ns
    }

    /// Puts `thread` first in line: a thread preempted by a higher class resumes before the others, as a
    /// SCHED_RR thread does, with what was left of its slice.
    pub fn enqueue_front(&mut self, thread: ThreadId) {
        if let Some(index) = self.queue.iter().position(|&id| id == thread) {
            self.queue.remove(index);
        }
        self.queue.push_front(thread);
        self.resumed = Some((thread, self.used_ns(thread)));
    }

    /// The slice of `thread`: its priority times the base slice.
    fn slice_of(&self, thread: ThreadId) -> u64 {
        self.slice_ns.saturating_mul(u64::from(self.priority(thread)))
    }

    fn used_ns(&self, thread: ThreadId) -> u64 {
        match self.running {
            Some((id, used)) if id == thread => used,
            _ => 0,
        }
    }
}

impl Scheduler for RoundRobin {
    fn name(&self) -> &'static str {
        "round-robin"
    }

    fn enqueue(&mut self, thread: ThreadId, _now_ns: u64) {
        if !self.queue.contains(&thread) {
            self.queue.push_back(thread);
        }
    }

    fn dequeue(&mut self, thread: ThreadId) -> bool {
        match self.queue.iter().position(|&id| id == thread) {
            Some(index) => {
                self.queue.remove(index);
                true
            }
            None => false,
        }
    }

    fn pick_next(&mut self, _now_ns: u64) -> Option<ThreadId> {
        let next = self.queue.pop_front();
        let resumed = self.resumed.take();
        self.running = next.map(|id| match resumed {
            Some((thread, used)) if thread == id => (id, used),
            _ => (id, 0),
        });
        next
    }

    fn charge(&mut self, thread: ThreadId, ran_ns: u64, _now_ns: u64) {
        if let Some((id, used)) = &mut self.running {
            if *id == thread {
                *used = used.saturating_add(ran_ns);
            }
        }
    }

    fn should_preempt(&mut self, running: ThreadId, _now_ns: u64) -> bool {
        !self.queue.is_empty() && self.used_ns(running) >= self.slice_of(running)
    }

    fn next_decision_ns(&self, running: Option<ThreadId>, now_ns: u64) -> Option<u64> {
        let running = running?;
        if self.queue.is_empty() {
            return None;
        }
        let left = self.slice_of(running).saturating_sub(self.used_ns(running));
        Some(now_ns.saturating_add(left))
    }

    fn runnable_count(&self) -> usize {
        self.queue.len()
    }

    fn set_priority(&mut self, thread: ThreadId, priority: u8) -> bool {
        if !(MIN_PRIORITY..=MAX_PRIORITY).contains(&priority) {
            return false;
        }
        let index = self.priorities.iter().position(|&(id, _)| id == thread);
        match (index, priority == DEFAULT_PRIORITY) {
            (Some(index), true) => {
                self.priorities.swap_remove(index);
            }
            (Some(index), false) => self.priorities[index].1 = priority,
            (None, true) => {}
            (None, false) => self.priorities.push((thread, priority)),
        }
        true
    }

    fn priority(&self, thread: ThreadId) -> u8 {
        self.priorities.iter().find(|&&(id, _)| id == thread).map_or(DEFAULT_PRIORITY, |&(_, priority)| priority)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLICE: u64 = 10_000_000;

    /// Simulates a CPU with a fake clock: every thread always runnable, the
    /// platform re-queues the running thread when the policy preempts it.
    fn simulate(policy: &mut RoundRobin, threads: &[ThreadId], step_ns: u64, steps: usize) -> Vec<u64> {
        let mut cpu = vec![0u64; threads.len()];
        let mut now = 0;
        for &id in threads {
            policy.enqueue(id, now);
        }
        let mut running = policy.pick_next(now).unwrap();
        for _ in 0..steps {
            now += step_ns;
            policy.charge(running, step_ns, now);
            cpu[running as usize] += step_ns;
            if policy.should_preempt(running, now) {
                policy.enqueue(running, now);
                running = policy.pick_next(now).unwrap();
            }
        }
        cpu
    }

    #[test]
    fn equal_threads_share_the_cpu_to_within_one_slice() {
        let mut policy = RoundRobin::new(SLICE);
        let cpu = simulate(&mut policy, &[0, 1, 2], 1_000_000, 3_000);
        assert_eq!(cpu.iter().sum::<u64>(), 3_000_000_000);
        for time in &cpu {
            assert!(time.abs_diff(1_000_000_000) <= SLICE, "{cpu:?}");
        }
    }

    #[test]
    fn thread_alone_is_never_preempted_and_needs_no_timer() {
        let mut policy = RoundRobin::new(SLICE);
        policy.enqueue(7, 0);
        assert_eq!(policy.pick_next(0), Some(7));
        policy.charge(7, 5 * SLICE, 5 * SLICE);
        assert!(!policy.should_preempt(7, 5 * SLICE));
        assert_eq!(policy.next_decision_ns(Some(7), 5 * SLICE), None);
    }

    #[test]
    fn slice_end_is_reported_while_a_peer_waits() {
        let mut policy = RoundRobin::new(SLICE);
        policy.enqueue(1, 0);
        policy.enqueue(2, 0);
        assert_eq!(policy.pick_next(0), Some(1));
        policy.charge(1, 4_000_000, 4_000_000);
        assert_eq!(policy.next_decision_ns(Some(1), 4_000_000), Some(SLICE));
        assert!(!policy.should_preempt(1, 4_000_000));
        policy.charge(1, 6_000_000, SLICE);
        assert!(policy.should_preempt(1, SLICE));
    }

    #[test]
    fn enqueue_is_idempotent_and_dequeue_removes() {
        let mut policy = RoundRobin::new(SLICE);
        policy.enqueue(3, 0);
        policy.enqueue(3, 0);
        assert_eq!(policy.runnable_count(), 1);
        assert!(policy.dequeue(3));
        assert!(!policy.dequeue(3));
        assert_eq!(policy.pick_next(0), None);
    }

    #[test]
    fn cpu_shares_follow_priorities() {
        let mut policy = RoundRobin::new(SLICE);
        assert!(policy.set_priority(1, 3));
        assert!(policy.set_priority(2, 4));
        let cpu = simulate(&mut policy, &[0, 1, 2], 1_000_000, 8_000);
        // Shares 1:3:4 of 8 s, each to within one of its slices.
        for (time, priority) in cpu.iter().zip([1u64, 3, 4]) {
            assert!(time.abs_diff(priority * 1_000_000_000) <= priority * SLICE, "{cpu:?}");
        }
    }

    #[test]
    fn priorities_out_of_range_are_refused_and_the_default_forgets() {
        let mut policy = RoundRobin::with_capacity(SLICE, 4);
        assert!(!policy.set_priority(1, 0));
        assert!(!policy.set_priority(1, MAX_PRIORITY + 1));
        assert_eq!(policy.priority(1), DEFAULT_PRIORITY);
        assert!(policy.set_priority(1, MAX_PRIORITY));
        assert_eq!(policy.priority(1), MAX_PRIORITY);
        assert!(policy.set_priority(1, DEFAULT_PRIORITY));
        assert!(policy.priorities.is_empty());
    }

    #[test]
    fn fifo_order_is_kept() {
        let mut policy = RoundRobin::with_capacity(SLICE, 8);
        for id in [5, 1, 9] {
            policy.enqueue(id, 0);
        }
        assert_eq!(policy.pick_next(0), Some(5));
        assert_eq!(policy.pick_next(0), Some(1));
        assert_eq!(policy.pick_next(0), Some(9));
        assert_eq!(policy.pick_next(0), None);
    }
}
