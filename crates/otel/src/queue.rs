//! A bounded export queue: batches, retries with backoff on the caller's clock, drops with a count.
//!
//! Producers [`ExportQueue::enqueue`]; when the queue holds its maximum the new item is dropped and counted,
//! so a producer never waits. An exporter calls [`ExportQueue::poll`] with the time and a function that sends
//! one batch: each poll makes at most one attempt, so a poll's cost is bounded by one batch. A failed batch
//! is tried again after a backoff that doubles from `initial_backoff_ns` up to `max_backoff_ns`; after
//! `max_attempts` failures it is dropped and counted. At every moment
//! `enqueued = exported + dropped_after_retries + held`.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;

/// The queue's limits and retry schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Items sent in one export call, at most.
    pub max_batch: usize,
    /// Items held (waiting and in the batch being tried), at most; more are dropped.
    pub max_queued: usize,
    /// Attempts at one batch before it is dropped (1: no retry).
    pub max_attempts: u32,
    /// Wait after a batch's first failure, ns; each further failure doubles it.
    pub initial_backoff_ns: u64,
    /// The longest wait between two attempts, ns.
    pub max_backoff_ns: u64,
}

/// Why a configuration is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueConfigError {
    /// `max_batch` is 0.
    ZeroBatch,
    /// `max_queued` is below `max_batch`, so a full batch could never form.
    QueueSmallerThanBatch,
    /// `max_attempts` is 0.
    ZeroAttempts,
    /// `max_backoff_ns` is below `initial_backoff_ns`.
    BackoffCapBelowInitial,
}

impl fmt::Display for QueueConfigError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            QueueConfigError::ZeroBatch => "a batch must hold at least 1 item",
            QueueConfigError::QueueSmallerThanBatch => "the queue must hold at least one full batch",
            QueueConfigError::ZeroAttempts => "a batch must be tried at least once",
            QueueConfigError::BackoffCapBelowInitial => "the longest backoff cannot be shorter than the first",
        })
    }
}

/// The queue's counters, all since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueCounters {
    /// Items accepted by [`ExportQueue::enqueue`].
    pub enqueued: u64,
    /// Items in batches the exporter accepted.
    pub exported: u64,
    /// Items refused because the queue was full.
    pub dropped_full: u64,
    /// Items in batches dropped after `max_attempts` failures.
    pub dropped_after_retries: u64,
    /// Attempts after a batch's first (each follows a failure).
    pub retries: u64,
    /// Batches the exporter accepted.
    pub batches: u64,
    /// Batches dropped after `max_attempts` failures.
    pub batches_dropped: u64,
    /// Items held now: waiting, and in the batch being tried.
    pub held: u64,
}

/// [`ExportQueue::enqueue`] refused an item: the queue holds `max_queued` items. It was counted in
/// `dropped_full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

/// What one [`ExportQueue::poll`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll<E> {
    /// Nothing to send.
    Idle,
    /// A failed batch waits for its next attempt, due at `retry_at_ns`; nothing was sent.
    Waiting {
        /// When the next attempt is due.
        retry_at_ns: u64,
    },
    /// A batch of `items` was accepted.
    Exported {
        /// Items in it.
        items: usize,
    },
    /// Attempt `attempt` (from 1) at the batch failed; the next is due at `retry_at_ns`.
    Retrying {
        /// What the exporter said.
        error: E,
        /// The attempt that failed.
        attempt: u32,
        /// When the next is due.
        retry_at_ns: u64,
    },
    /// The batch's last attempt failed: its `items` were dropped.
    Dropped {
        /// What the exporter said.
        error: E,
        /// Items dropped.
        items: usize,
    },
}

/// What [`ExportQueue::start`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Start<'a, T> {
    /// Nothing to send.
    Idle,
    /// A failed batch waits for its next attempt, due at `retry_at_ns`.
    Waiting {
        /// When the next attempt is due.
        retry_at_ns: u64,
    },
    /// An attempt is open already: [`ExportQueue::finish`] it first.
    Busy,
    /// An attempt began at this batch: send it, then [`ExportQueue::finish`].
    Ready(&'a [T]),
}

/// [`ExportQueue::finish`] was called with no attempt open; nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoAttempt;

/// The batch being tried: its items, failures so far and when the next attempt is due.
#[derive(Debug, Clone)]
struct InFlight<T> {
    items: Vec<T>,
    failures: u32,
    retry_at_ns: u64,
    /// An attempt began ([`ExportQueue::start`]) and has not finished.
    attempting: bool,
}

/// A bounded queue of items to export in batches.
#[derive(Debug, Clone)]
pub struct ExportQueue<T> {
    config: QueueConfig,
    waiting: VecDeque<T>,
    in_flight: Option<InFlight<T>>,
    counters: QueueCounters,
}

impl<T> ExportQueue<T> {
    /// An empty queue; its memory for `max_queued` items is taken now.
    pub fn new(config: QueueConfig) -> Result<Self, QueueConfigError> {
        if config.max_batch == 0 {
            return Err(QueueConfigError::ZeroBatch);
        }
        if config.max_queued < config.max_batch {
            return Err(QueueConfigError::QueueSmallerThanBatch);
        }
        if config.max_attempts == 0 {
            return Err(QueueConfigError::ZeroAttempts);
        }
        if config.max_backoff_ns < config.initial_backoff_ns {
            return Err(QueueConfigError::BackoffCapBelowInitial);
        }
        Ok(ExportQueue {
            config,
            waiting: VecDeque::with_capacity(config.max_queued),
            in_flight: None,
            counters: QueueCounters::default(),
        })
    }

    /// Its configuration.
    pub fn config(&self) -> QueueConfig {
        self.config
    }

    /// Its counters.
    pub fn counters(&self) -> QueueCounters {
        QueueCounters { held: self.held() as u64, ..self.counters }
    }

    /// Items held now.
    pub fn held(&self) -> usize {
        self.waiting.len() + self.in_flight.as_ref().map_or(0, |batch| batch.items.len())
    }

    /// Adds an item; when the queue is full it is dropped and counted instead (never waits).
    pub fn enqueue(&mut self, item: T) -> Result<(), QueueFull> {
        if self.held() >= self.config.max_queued {
            self.counters.dropped_full += 1;
            return Err(QueueFull);
        }
        self.waiting.push_back(item);
        self.counters.enqueued += 1;
        Ok(())
    }

    /// Makes at most one export attempt at `now_ns`: the batch that failed, once its retry is due, or else the
    /// next batch of up to `max_batch` waiting items, oldest first. (An attempt begun by [`Self::start`] and not
    /// yet finished makes it [`Poll::Waiting`] until then.)
    pub fn poll<E>(&mut self, now_ns: u64, export: impl FnOnce(&[T]) -> Result<(), E>) -> Poll<E> {
        match self.start(now_ns) {
            Start::Idle => Poll::Idle,
            Start::Waiting { retry_at_ns } => Poll::Waiting { retry_at_ns },
            Start::Busy => Poll::Waiting { retry_at_ns: now_ns },
            Start::Ready(batch) => {
                let result = export(batch);
                match self.finish(now_ns, result) {
                    Ok(poll) => poll,
                    // `start` just began the attempt, so `finish` has one to end.
                    Err(NoAttempt) => Poll::Idle,
                }
            }
        }
    }

    /// Begins an attempt at `now_ns` that ends later with [`Self::finish`] (an export over a network, which
    /// takes many polls): the batch that failed, once its retry is due, or else the next batch of up to
    /// `max_batch` waiting items, oldest first. While an attempt is open the batch stays held (counted in
    /// `held`) and another `start` says [`Start::Busy`].
    pub fn start(&mut self, now_ns: u64) -> Start<'_, T> {
        match self.in_flight.take() {
            Some(batch) if batch.attempting => {
                self.in_flight = Some(batch);
                return Start::Busy;
            }
            Some(batch) if now_ns < batch.retry_at_ns => {
                let retry_at_ns = batch.retry_at_ns;
                self.in_flight = Some(batch);
                return Start::Waiting { retry_at_ns };
            }
            Some(mut batch) => {
                self.counters.retries += 1;
                batch.attempting = true;
                self.in_flight = Some(batch);
            }
            None if self.waiting.is_empty() => return Start::Idle,
            None => {
                let take = self.waiting.len().min(self.config.max_batch);
                let items = self.waiting.drain(..take).collect();
                self.in_flight = Some(InFlight { items, failures: 0, retry_at_ns: now_ns, attempting: true });
            }
        }
        match self.in_flight.as_ref() {
            Some(batch) => Start::Ready(&batch.items),
            None => Start::Idle,
        }
    }

    /// Ends the attempt [`Self::start`] began, at `now_ns`, with the exporter's `result`: the batch is exported,
    /// scheduled for a retry, or dropped after its last attempt. [`NoAttempt`] (nothing changes) when no attempt
    /// is open.
    pub fn finish<E>(&mut self, now_ns: u64, result: Result<(), E>) -> Result<Poll<E>, NoAttempt> {
        let mut batch = match self.in_flight.take() {
            Some(batch) if batch.attempting => batch,
            other => {
                self.in_flight = other;
                return Err(NoAttempt);
            }
        };
        batch.attempting = false;
        let items = batch.items.len();
        Ok(match result {
            Ok(()) => {
                self.counters.exported += items as u64;
                self.counters.batches += 1;
                Poll::Exported { items }
            }
            Err(error) => {
                batch.failures += 1;
                if batch.failures >= self.config.max_attempts {
                    self.counters.dropped_after_retries += items as u64;
                    self.counters.batches_dropped += 1;
                    return Ok(Poll::Dropped { error, items });
                }
                let attempt = batch.failures;
                let retry_at_ns = now_ns.saturating_add(self.backoff_ns(attempt));
                batch.retry_at_ns = retry_at_ns;
                self.in_flight = Some(batch);
                Poll::Retrying { error, attempt, retry_at_ns }
            }
        })
    }

    /// The wait after failure number `failures` (from 1): the initial backoff doubled `failures - 1` times,
    /// at most the cap.
    fn backoff_ns(&self, failures: u32) -> u64 {
        let doublings = failures.saturating_sub(1).min(63);
        self.config.initial_backoff_ns.saturating_mul(1u64 << doublings).min(self.config.max_backoff_ns)
    }
}

#[cfg(test)]
mod tests;
