//! A shared byte budget: every tensor's storage is charged to one, so a graph's memory is counted and capped.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::TensorError;

/// A byte limit shared by the tensors charged to it, with exact counters.
///
/// The counters are atomics (so a budget is `Send + Sync` and never blocks): each
/// figure is exact, but [`Budget::stats`] reads them one after another, so under
/// concurrent use a snapshot may mix moments. They guard no memory, so relaxed
/// ordering suffices.
#[derive(Debug)]
pub struct Budget {
    limit_bytes: u64,
    used_bytes: AtomicU64,
    peak_bytes: AtomicU64,
    live_tensors: AtomicU64,
    allocations: AtomicU64,
    refusals: AtomicU64,
}

/// A budget's figures at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BudgetStats {
    /// The most bytes that may be charged at once.
    pub limit_bytes: u64,
    /// Bytes charged now: live tensor storages and the scratch of operations under way.
    pub used_bytes: u64,
    /// The most bytes ever charged at once.
    pub peak_bytes: u64,
    /// Tensors not yet dropped, views included.
    pub live_tensors: u64,
    /// Tensor storages allocated since the budget was made (a view allocates none; scratch is not counted).
    pub allocations: u64,
    /// Charges refused because they would have passed the limit.
    pub refusals: u64,
}

impl Budget {
    /// A budget of `limit_bytes`, nothing charged.
    pub fn new(limit_bytes: u64) -> Arc<Budget> {
        Arc::new(Budget {
            limit_bytes,
            used_bytes: AtomicU64::new(0),
            peak_bytes: AtomicU64::new(0),
            live_tensors: AtomicU64::new(0),
            allocations: AtomicU64::new(0),
            refusals: AtomicU64::new(0),
        })
    }

    /// The figures now.
    pub fn stats(&self) -> BudgetStats {
        BudgetStats {
            limit_bytes: self.limit_bytes,
            used_bytes: self.used_bytes.load(Ordering::Relaxed),
            peak_bytes: self.peak_bytes.load(Ordering::Relaxed),
            live_tensors: self.live_tensors.load(Ordering::Relaxed),
            allocations: self.allocations.load(Ordering::Relaxed),
            refusals: self.refusals.load(Ordering::Relaxed),
        }
    }

    /// Charges `bytes` until the returned reservation is dropped, or refuses (counted in `refusals`) when fewer
    /// are left. For memory other than tensors that a graph wants counted under the same limit.
    pub fn reserve(self: &Arc<Self>, bytes: u64) -> Result<Reservation, TensorError> {
        let mut used = self.used_bytes.load(Ordering::Relaxed);
        loop {
            let available_bytes = self.limit_bytes.saturating_sub(used);
            if bytes > available_bytes {
                self.refusals.fetch_add(1, Ordering::Relaxed);
                return Err(TensorError::BudgetExceeded { requested_bytes: bytes, available_bytes });
            }
            // `bytes <= limit - used`, so the sum cannot overflow.
            let charged = used + bytes;
            match self.used_bytes.compare_exchange_weak(used, charged, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    self.peak_bytes.fetch_max(charged, Ordering::Relaxed);
                    return Ok(Reservation { budget: Arc::clone(self), bytes });
                }
                Err(now) => used = now,
            }
        }
    }

    pub(super) fn tensor_created(&self, allocated: bool) {
        self.live_tensors.fetch_add(1, Ordering::Relaxed);
        if allocated {
            self.allocations.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn tensor_dropped(&self) {
        self.live_tensors.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Bytes charged to a budget until this is dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Budget>,
    bytes: u64,
}

impl Reservation {
    /// The bytes charged.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The budget charged.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// Moves `bytes` of this reservation (at most all of it) into a new one, so one charge checked against the
    /// limit can pay for several buffers.
    pub fn split_off(&mut self, bytes: u64) -> Reservation {
        let bytes = bytes.min(self.bytes);
        self.bytes -= bytes;
        Reservation { budget: Arc::clone(&self.budget), bytes }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used_bytes.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}
