//! Metrics: counters (monotonic sums), gauges and histograms with explicit bucket bounds.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::KeyValue;

/// Whether a point's value covers the time since the previous export or since its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporality {
    /// Since the previous point (1).
    Delta,
    /// Since `start_time_unix_nano`, which stays the same from point to point (2); what the kernel's counters are.
    Cumulative,
}

impl Temporality {
    /// Its number in OTLP (`AggregationTemporality`).
    pub fn code(self) -> u8 {
        match self {
            Temporality::Delta => 1,
            Temporality::Cumulative => 2,
        }
    }
}

/// A number a sum or gauge point carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NumberValue {
    /// `asInt`, written as a decimal string.
    Int(i64),
    /// `asDouble`.
    Double(f64),
}

/// One value of a sum or a gauge at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct NumberPoint {
    /// What distinguishes this series from the metric's others.
    pub attributes: Vec<KeyValue>,
    /// Start of the period the value covers, Unix ns (for a cumulative counter: when counting began).
    pub start_time_unix_nano: u64,
    /// When the value was read, Unix ns.
    pub time_unix_nano: u64,
    /// The value.
    pub value: NumberValue,
}

impl NumberPoint {
    /// A point without attributes.
    pub fn new(start_time_unix_nano: u64, time_unix_nano: u64, value: NumberValue) -> Self {
        NumberPoint { attributes: Vec::new(), start_time_unix_nano, time_unix_nano, value }
    }
}

/// One histogram at one time: counts of values in buckets split by explicit bounds.
///
/// Bucket `i` holds the values `v` with `bounds[i-1] < v <= bounds[i]` (the first bucket has no lower bound,
/// the last no upper one), as OTLP defines; there is always one bucket more than bounds, and `count` is the
/// sum of the buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramPoint {
    /// What distinguishes this series from the metric's others.
    pub attributes: Vec<KeyValue>,
    /// Start of the period, Unix ns.
    pub start_time_unix_nano: u64,
    /// When it was read, Unix ns.
    pub time_unix_nano: u64,
    /// Sum of the values, when known.
    pub sum: Option<f64>,
    /// Smallest value, when known (none when the count is 0).
    pub min: Option<f64>,
    /// Largest value, when known (none when the count is 0).
    pub max: Option<f64>,
    explicit_bounds: Vec<f64>,
    bucket_counts: Vec<u64>,
    count: u64,
}

/// Why a metric point is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricError {
    /// Bound number `index` is not finite or not above the one before it.
    BoundsNotIncreasing {
        /// Its position.
        index: usize,
    },
    /// There must be one bucket more than bounds.
    BucketCount {
        /// Bounds given.
        bounds: usize,
        /// Buckets given.
        buckets: usize,
    },
    /// The buckets add up to more than 2^64 - 1.
    CountOverflow,
}

impl fmt::Display for MetricError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricError::BoundsNotIncreasing { index } => {
                write!(formatter, "histogram bound {index} is not finite or not above the bound before it")
            }
            MetricError::BucketCount { bounds, buckets } => write!(
                formatter,
                "a histogram with {bounds} bounds has {} buckets, not {buckets}",
                bounds.saturating_add(1)
            ),
            MetricError::CountOverflow => write!(formatter, "the histogram's buckets add up past 2^64 - 1"),
        }
    }
}

impl HistogramPoint {
    /// A point with these bounds and bucket counts (and no attributes, sum, min or max); refused unless the
    /// bounds are finite and strictly increasing and there is one bucket more than bounds.
    pub fn new(
        start_time_unix_nano: u64,
        time_unix_nano: u64,
        explicit_bounds: Vec<f64>,
        bucket_counts: Vec<u64>,
    ) -> Result<Self, MetricError> {
        check_bounds(&explicit_bounds)?;
        if bucket_counts.len() != explicit_bounds.len() + 1 {
            return Err(MetricError::BucketCount { bounds: explicit_bounds.len(), buckets: bucket_counts.len() });
        }
        let count = bucket_counts
            .iter()
            .try_fold(0u64, |total, count| total.checked_add(*count))
            .ok_or(MetricError::CountOverflow)?;
        Ok(HistogramPoint {
            attributes: Vec::new(),
            start_time_unix_nano,
            time_unix_nano,
            sum: None,
            min: None,
            max: None,
            explicit_bounds,
            bucket_counts,
            count,
        })
    }

    /// The histogram of `values` over these bounds, with their sum, min and max (NaN values are not counted).
    pub fn from_values(
        start_time_unix_nano: u64,
        time_unix_nano: u64,
        explicit_bounds: Vec<f64>,
        values: &[f64],
    ) -> Result<Self, MetricError> {
        check_bounds(&explicit_bounds)?;
        let mut bucket_counts = alloc::vec![0u64; explicit_bounds.len() + 1];
        let (mut sum, mut min, mut max) = (0.0, None::<f64>, None::<f64>);
        for value in values.iter().copied().filter(|value| !value.is_nan()) {
            let bucket = explicit_bounds.partition_point(|bound| *bound < value);
            bucket_counts[bucket] += 1;
            sum += value;
            min = Some(min.map_or(value, |min| min.min(value)));
            max = Some(max.map_or(value, |max| max.max(value)));
        }
        let mut point = HistogramPoint::new(start_time_unix_nano, time_unix_nano, explicit_bounds, bucket_counts)?;
        point.sum = Some(sum);
        point.min = min;
        point.max = max;
        Ok(point)
    }

    /// The bounds between buckets, increasing.
    pub fn explicit_bounds(&self) -> &[f64] {
        &self.explicit_bounds
    }

    /// The count of each bucket (one more than bounds).
    pub fn bucket_counts(&self) -> &[u64] {
        &self.bucket_counts
    }

    /// Values counted: the sum of the buckets.
    pub fn count(&self) -> u64 {
        self.count
    }
}

fn check_bounds(bounds: &[f64]) -> Result<(), MetricError> {
    for (index, bound) in bounds.iter().enumerate() {
        let above_previous = index == 0 || bounds[index - 1] < *bound;
        if !bound.is_finite() || !above_previous {
            return Err(MetricError::BoundsNotIncreasing { index });
        }
    }
    Ok(())
}

/// A metric's points and what kind of metric it is.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricData {
    /// A sum; a counter is a monotonic cumulative one.
    Sum {
        /// Its points.
        points: Vec<NumberPoint>,
        /// What period each point covers.
        temporality: Temporality,
        /// Whether it only ever grows.
        monotonic: bool,
    },
    /// A value read at a time (memory in use, queue length).
    Gauge {
        /// Its points.
        points: Vec<NumberPoint>,
    },
    /// Distributions such as latencies.
    Histogram {
        /// Its points.
        points: Vec<HistogramPoint>,
        /// What period each point covers.
        temporality: Temporality,
    },
}

/// One metric: its name, description, unit and points.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Its name, such as `sis.shell.commands`.
    pub name: String,
    /// What it measures, for people.
    pub description: String,
    /// Its unit in UCUM (`1`, `ns`, `By`, `{command}`).
    pub unit: String,
    /// Its kind and points.
    pub data: MetricData,
}

impl Metric {
    /// A counter: a monotonic cumulative sum.
    pub fn counter(name: &str, description: &str, unit: &str, points: Vec<NumberPoint>) -> Self {
        let data = MetricData::Sum { points, temporality: Temporality::Cumulative, monotonic: true };
        Metric { name: name.into(), description: description.into(), unit: unit.into(), data }
    }

    /// A gauge.
    pub fn gauge(name: &str, description: &str, unit: &str, points: Vec<NumberPoint>) -> Self {
        let data = MetricData::Gauge { points };
        Metric { name: name.into(), description: description.into(), unit: unit.into(), data }
    }

    /// A cumulative histogram.
    pub fn histogram(name: &str, description: &str, unit: &str, points: Vec<HistogramPoint>) -> Self {
        let data = MetricData::Histogram { points, temporality: Temporality::Cumulative };
        Metric { name: name.into(), description: description.into(), unit: unit.into(), data }
    }

    /// Points it carries.
    pub fn point_count(&self) -> usize {
        match &self.data {
            MetricData::Sum { points, .. } | MetricData::Gauge { points } => points.len(),
            MetricData::Histogram { points, .. } => points.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_fall_into_the_bucket_whose_upper_bound_includes_them() {
        let point = HistogramPoint::from_values(
            10,
            20,
            alloc::vec![1.0, 5.0, 10.0],
            &[0.5, 1.0, 1.5, 5.0, 9.0, 10.0, 11.0, f64::NAN],
        )
        .unwrap();
        assert_eq!(point.bucket_counts(), [2, 2, 2, 1]);
        assert_eq!(point.count(), 7);
        assert_eq!(point.sum, Some(38.0));
        assert_eq!((point.min, point.max), (Some(0.5), Some(11.0)));
        let empty = HistogramPoint::from_values(10, 20, alloc::vec![1.0], &[]).unwrap();
        assert_eq!((empty.count(), empty.bucket_counts(), empty.min, empty.max), (0, &[0, 0][..], None, None));
        assert_eq!(empty.sum, Some(0.0));
    }

    #[test]
    fn bad_bounds_and_bucket_counts_are_refused() {
        assert_eq!(
            HistogramPoint::new(0, 1, alloc::vec![1.0, 1.0], alloc::vec![0, 0, 0]),
            Err(MetricError::BoundsNotIncreasing { index: 1 })
        );
        assert_eq!(
            HistogramPoint::new(0, 1, alloc::vec![f64::INFINITY], alloc::vec![0, 0]),
            Err(MetricError::BoundsNotIncreasing { index: 0 })
        );
        assert_eq!(
            HistogramPoint::from_values(0, 1, alloc::vec![2.0, f64::NAN], &[]),
            Err(MetricError::BoundsNotIncreasing { index: 1 })
        );
        assert_eq!(
            HistogramPoint::new(0, 1, alloc::vec![1.0, 2.0], alloc::vec![0, 0]),
            Err(MetricError::BucketCount { bounds: 2, buckets: 2 })
        );
        assert_eq!(
            HistogramPoint::new(0, 1, alloc::vec![1.0], alloc::vec![u64::MAX, 1]),
            Err(MetricError::CountOverflow)
        );
        let point = HistogramPoint::new(0, 1, alloc::vec![], alloc::vec![u64::MAX]).unwrap();
        assert_eq!(point.count(), u64::MAX);
    }

    #[test]
    fn a_counter_is_a_monotonic_cumulative_sum() {
        let counter = Metric::counter(
            "sis.shell.commands",
            "commands run",
            "{command}",
            alloc::vec![NumberPoint::new(1, 2, NumberValue::Int(5))],
        );
        assert_eq!(
            counter.data,
            MetricData::Sum {
                points: alloc::vec![NumberPoint::new(1, 2, NumberValue::Int(5))],
                temporality: Temporality::Cumulative,
                monotonic: true
            }
        );
        assert_eq!(counter.point_count(), 1);
    }
}
