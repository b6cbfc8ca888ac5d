//! Log-linear latency histogram: exact below 128 ns, then 128 linear sub-buckets per power of two.
//!
//! Recording is O(1), never allocates and never panics, so it can run on hot
//! paths and in `static`s. A value `v >= 128` falls in the bucket
//! `[(128 + m) << s, (129 + m) << s)` with `s = floor(log2 v) - 7`; the
//! bucket's width is at most 1/128 of its lower edge, and quantiles report
//! the bucket's midpoint, so a reported quantile is within 1/256 (3,907 ppm)
//! of the exact order statistic. Values of [`MAX_TRACKED_NS`] and more share
//! the last bucket; `max` stays exact.

/// Values below this are counted exactly, one bucket each.
const LINEAR_LIMIT: u64 = 128;
/// Sub-buckets per power of two (log2).
const SUB_BUCKET_BITS: u32 = 7;
/// Highest power of two with its own buckets: values up to 2^44 ns (about 4.9 hours).
const TOP_EXPONENT: u32 = 43;

/// Number of buckets: the linear range plus 128 per power of two from 2^7 to 2^43.
pub const BUCKET_COUNT: usize = LINEAR_LIMIT as usize + (TOP_EXPONENT - SUB_BUCKET_BITS + 1) as usize * 128;
/// Largest value with its own bucket; larger ones are counted in the last bucket.
pub const MAX_TRACKED_NS: u64 = (1 << (TOP_EXPONENT + 1)) - 1;
/// Bound on the relative error of any reported quantile, in parts per million (1/256).
pub const RELATIVE_ERROR_PPM: u32 = 3_907;

/// A latency histogram in nanoseconds.
#[derive(Clone)]
pub struct LatencyHistogram {
    counts: [u32; BUCKET_COUNT],
    count: u64,
    sum_ns: u128,
    min_ns: u64,
    max_ns: u64,
}

impl core::fmt::Debug for LatencyHistogram {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("LatencyHistogram").field("summary", &self.summary()).finish()
    }
}

/// Figures read from a histogram; all zero when it is empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Smallest value (exact).
    pub min_ns: u64,
    /// Largest value (exact).
    pub max_ns: u64,
    /// Arithmetic mean, rounded down (exact sum kept).
    pub mean_ns: u64,
    /// Median.
    pub p50_ns: u64,
    /// 95th percentile.
    pub p95_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram (usable in a `static`).
    pub const fn new() -> Self {
        LatencyHistogram { counts: [0; BUCKET_COUNT], count: 0, sum_ns: 0, min_ns: u64::MAX, max_ns: 0 }
    }

    /// Records one value.
    pub fn record(&mut self, value_ns: u64) {
        let bucket = bucket_of(value_ns);
        self.counts[bucket] = self.counts[bucket].saturating_add(1);
        self.count = self.count.saturating_add(1);
        self.sum_ns = self.sum_ns.saturating_add(value_ns as u128);
        self.min_ns = self.min_ns.min(value_ns);
        self.max_ns = self.max_ns.max(value_ns);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Smallest value, or 0 when empty.
    pub fn min(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.min_ns
        }
    }

    /// Largest value, or 0 when empty.
    pub fn max(&self) -> u64 {
        self.max_ns
    }

    /// Mean rounded down, or 0 when empty.
    pub fn mean(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            (self.sum_ns / self.count as u128) as u64
        }
    }

    /// The nearest-rank quantile `parts_per_million / 10^6` (500_000 = median),
    /// clamped to the exact min and max; 0 when empty.
    pub fn quantile(&self, parts_per_million: u32) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let fraction = parts_per_million.min(1_000_000) as u128;
        let rank = ((fraction * self.count as u128).div_ceil(1_000_000) as u64).max(1);
        // The first and last order statistics are kept exactly.
        if rank == 1 {
            return self.min_ns;
        }
        if rank >= self.count {
            return self.max_ns;
        }
        let mut seen = 0u64;
        for (bucket, &count) in self.counts.iter().enumerate() {
            seen += count as u64;
            if seen >= rank {
                if bucket == BUCKET_COUNT - 1 {
                    // The overflow bucket has no upper edge: report the exact maximum.
                    return self.max_ns;
                }
                return midpoint_of(bucket).clamp(self.min_ns, self.max_ns);
            }
        }
        self.max_ns
    }

    /// The exact sum of the values recorded (saturating).
    pub fn sum_ns(&self) -> u128 {
        self.sum_ns
    }

    /// Values recorded below `limit_ns`, exactly, when `limit_ns` is an edge between two buckets (any value up to
    /// 128, then a value whose bits below its 8 highest are zero, such as every power of two, up to
    /// `MAX_TRACKED_NS + 1`); `None` for a limit inside a bucket, whose count cannot be split.
    pub fn count_below(&self, limit_ns: u64) -> Option<u64> {
        if limit_ns > MAX_TRACKED_NS + 1 {
            return None;
        }
        if limit_ns == MAX_TRACKED_NS + 1 {
            // The last bucket also holds every larger value: only exact when none is that large.
            return (self.max_ns <= MAX_TRACKED_NS).then_some(self.count);
        }
        if !is_edge(limit_ns) {
            return None;
        }
        let below = bucket_of(limit_ns);
        Some(self.counts[..below].iter().map(|count| u64::from(*count)).sum())
    }

    /// [`Self::count_below`] of each of `limits` (increasing) in one pass over the buckets; `None` when a limit is
    /// not a bucket edge or the limits do not increase.
    pub fn counts_below(&self, limits: &[u64]) -> Option<alloc_free::Counts> {
        let mut counts = alloc_free::Counts::new();
        let (mut bucket, mut seen, mut previous) = (0usize, 0u64, None);
        for &limit in limits {
            if previous.is_some_and(|previous| limit <= previous) {
                return None;
            }
            previous = Some(limit);
            if limit == MAX_TRACKED_NS + 1 {
                counts.push(self.count_below(limit)?)?;
                continue;
            }
            if limit > MAX_TRACKED_NS + 1 || !is_edge(limit) {
                return None;
            }
            let end = bucket_of(limit);
            while bucket < end {
                seen += u64::from(self.counts[bucket]);
                bucket += 1;
            }
            counts.push(seen)?;
        }
        Some(counts)
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
        self.count = self.count.saturating_add(other.count);
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
        self.min_ns = self.min_ns.min(other.min_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    /// Forgets every value.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Count, extremes, mean and the usual percentiles.
    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            count: self.count,
            min_ns: self.min(),
            max_ns: self.max(),
            mean_ns: self.mean(),
            p50_ns: self.quantile(500_000),
            p95_ns: self.quantile(950_000),
            p99_ns: self.quantile(990_000),
            p999_ns: self.quantile(999_000),
        }
    }
}

/// A fixed-capacity list of counts, so [`LatencyHistogram::counts_below`] needs no allocator.
pub mod alloc_free {
    /// Most limits [`super::LatencyHistogram::counts_below`] takes.
    pub const MAX_LIMITS: usize = 64;

    /// Up to [`MAX_LIMITS`] counts.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Counts {
        values: [u64; MAX_LIMITS],
        len: usize,
    }

    impl Counts {
        pub(super) fn new() -> Self {
            Counts { values: [0; MAX_LIMITS], len: 0 }
        }

        pub(super) fn push(&mut self, value: u64) -> Option<()> {
            *self.values.get_mut(self.len)? = value;
            self.len += 1;
            Some(())
        }

        /// The counts, one per limit.
        pub fn as_slice(&self) -> &[u64] {
            &self.values[..self.len]
        }
    }
}

/// Whether `limit_ns` (at most `MAX_TRACKED_NS`) is where two buckets meet.
fn is_edge(limit_ns: u64) -> bool {
    if limit_ns < LINEAR_LIMIT {
        return true;
    }
    let shift = (63 - limit_ns.leading_zeros()) - SUB_BUCKET_BITS;
    limit_ns & ((1 << shift) - 1) == 0
}

fn bucket_of(value_ns: u64) -> usize {
    if value_ns < LINEAR_LIMIT {
        return value_ns as usize;
    }
    let value_ns = value_ns.min(MAX_TRACKED_NS);
    let exponent = 63 - value_ns.leading_zeros();
    let shift = exponent - SUB_BUCKET_BITS;
    let sub_bucket = (value_ns >> shift) - LINEAR_LIMIT;
    LINEAR_LIMIT as usize + shift as usize * 128 + sub_bucket as usize
}

/// Lower edge and width of a bucket.
fn bounds_of(bucket: usize) -> (u64, u64) {
    if bucket < LINEAR_LIMIT as usize {
        return (bucket as u64, 1);
    }
    let offset = bucket - LINEAR_LIMIT as usize;
    let shift = (offset / 128) as u32;
    let sub_bucket = (offset % 128) as u64;
    ((LINEAR_LIMIT + sub_bucket) << shift, 1 << shift)
}

fn midpoint_of(bucket: usize) -> u64 {
    let (low, width) = bounds_of(bucket);
    low + width / 2
}

#[cfg(test)]
mod tests;
