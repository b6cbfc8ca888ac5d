//! Histogram tests: exact figures, quantiles within the stated bound on seeded data, merge, extremes.

use super::*;
use proptest::prelude::*;

/// Exact nearest-rank quantile of sorted values.
fn exact(sorted: &[u64], parts_per_million: u32) -> u64 {
    let rank = ((parts_per_million as u128 * sorted.len() as u128).div_ceil(1_000_000) as usize).max(1);
    sorted[rank - 1]
}

fn assert_within_bound(histogram: &LatencyHistogram, values: &mut [u64]) {
    values.sort_unstable();
    for ppm in [1, 100_000, 500_000, 900_000, 950_000, 990_000, 999_000, 1_000_000] {
        let truth = exact(values, ppm);
        let reported = histogram.quantile(ppm);
        let error = reported.abs_diff(truth) as u128 * 1_000_000;
        assert!(
            error <= RELATIVE_ERROR_PPM as u128 * truth.max(1) as u128,
            "quantile {ppm} ppm: reported {reported}, exact {truth}"
        );
    }
}

#[test]
fn bucket_edges_cover_every_value_once() {
    for bucket in 0..BUCKET_COUNT - 1 {
        let (low, width) = bounds_of(bucket);
        let (next_low, _) = bounds_of(bucket + 1);
        assert_eq!(low + width, next_low, "bucket {bucket}");
        assert_eq!(bucket_of(low), bucket);
        assert_eq!(bucket_of(low + width - 1), bucket);
        assert!(width as u128 * 128 <= low.max(128) as u128, "bucket {bucket} wider than 1/128");
    }
    assert_eq!(bucket_of(MAX_TRACKED_NS), BUCKET_COUNT - 1);
    assert_eq!(bucket_of(u64::MAX), BUCKET_COUNT - 1);
    assert_eq!(BUCKET_COUNT, 4864);
    assert_eq!(core::mem::size_of::<LatencyHistogram>(), 19_504);
}

#[test]
fn small_values_are_exact() {
    let mut histogram = LatencyHistogram::new();
    for value in [5, 1, 3, 2, 4] {
        histogram.record(value);
    }
    assert_eq!(
        histogram.summary(),
        LatencySummary { count: 5, min_ns: 1, max_ns: 5, mean_ns: 3, p50_ns: 3, p95_ns: 5, p99_ns: 5, p999_ns: 5 }
    );
}

#[test]
fn empty_histogram_reads_zero() {
    assert_eq!(LatencyHistogram::new().summary(), LatencySummary::default());
}

#[test]
fn extremes_do_not_panic_and_max_stays_exact() {
    let mut histogram = LatencyHistogram::new();
    histogram.record(0);
    histogram.record(u64::MAX);
    assert_eq!(histogram.min(), 0);
    assert_eq!(histogram.max(), u64::MAX);
    assert_eq!(histogram.mean(), u64::MAX / 2);
    assert_eq!(histogram.quantile(1_000_000), u64::MAX);
}

#[test]
fn merge_equals_recording_the_union() {
    let mut a = LatencyHistogram::new();
    let mut b = LatencyHistogram::new();
    let mut union = LatencyHistogram::new();
    for value in 0..5_000u64 {
        let value = value * value % 1_000_003;
        if value % 3 == 0 {
            a.record(value);
        } else {
            b.record(value);
        }
        union.record(value);
    }
    a.merge(&b);
    assert_eq!(a.summary(), union.summary());
    a.reset();
    assert_eq!(a.summary(), LatencySummary::default());
}

fn seeded(seed: u64, length: usize, shape: impl Fn(u64) -> u64) -> Vec<u64> {
    let mut state = seed | 1;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shape(state)
        })
        .collect()
}

#[test]
fn quantiles_stay_within_the_bound_on_varied_shapes() {
    type Shape = fn(u64) -> u64;
    let shapes: [(&str, Shape); 4] = [
        ("uniform", |r| r % 10_000_000),
        ("log-uniform", |r| (1u64 << (r % 40)) | ((r >> 40) % 1024)),
        ("constant", |_| 123_456),
        ("two-point", |r| if r % 10 == 0 { 5_000_000 } else { 800 }),
    ];
    for (name, shape) in shapes {
        let mut values = seeded(0x5eed ^ name.len() as u64, 20_000, shape);
        let mut histogram = LatencyHistogram::new();
        values.iter().for_each(|&value| histogram.record(value));
        assert_eq!(histogram.count(), values.len() as u64, "{name}");
        assert_eq!(histogram.mean(), (values.iter().map(|&v| v as u128).sum::<u128>() / values.len() as u128) as u64);
        assert_within_bound(&histogram, &mut values);
    }
}

proptest! {
    #[test]
    fn any_values_quantiles_within_bound(mut values in proptest::collection::vec(0u64..MAX_TRACKED_NS, 1..500)) {
        let mut histogram = LatencyHistogram::new();
        values.iter().for_each(|&value| histogram.record(value));
        assert_within_bound(&histogram, &mut values);
    }
}

#[test]
fn counts_below_bucket_edges_are_exact_and_limits_inside_a_bucket_are_refused() {
    let mut histogram = LatencyHistogram::new();
    for value in [0, 5, 127, 128, 1_023, 1_024, 1_025, 9_999, 10_048, 1 << 20, MAX_TRACKED_NS, u64::MAX] {
        histogram.record(value);
    }
    assert_eq!(histogram.count_below(0), Some(0));
    assert_eq!(histogram.count_below(6), Some(2));
    assert_eq!(histogram.count_below(128), Some(3));
    assert_eq!(histogram.count_below(1_024), Some(5));
    assert_eq!(histogram.count_below(1_025), None);
    // 10,048 = 157 << 6 is an edge; 10,000 lies inside [9,984, 10,048).
    assert_eq!(histogram.count_below(10_048), Some(8));
    assert_eq!(histogram.count_below(10_000), None);
    assert_eq!(histogram.count_below(1 << 20), Some(9));
    assert_eq!(histogram.count_below((1 << 20) + 1), None);
    // u64::MAX shares the last bucket with MAX_TRACKED_NS: the top edge cannot be split.
    assert_eq!(histogram.count_below(MAX_TRACKED_NS + 1), None);
    assert_eq!(histogram.count_below(MAX_TRACKED_NS + 2), None);
    assert_eq!(
        histogram.sum_ns(),
        [0u128, 5, 127, 128, 1_023, 1_024, 1_025, 9_999, 10_048, 1 << 20].iter().sum::<u128>()
            + MAX_TRACKED_NS as u128
            + u64::MAX as u128
    );
}

proptest! {
    #[test]
    fn counts_below_powers_of_two_equal_the_values_below(values in proptest::collection::vec(0u64..1 << 40, 0..200), exponent in 0u32..45) {
        let mut histogram = LatencyHistogram::new();
        values.iter().for_each(|&value| histogram.record(value));
        let limit = 1u64 << exponent;
        prop_assert_eq!(histogram.count_below(limit), Some(values.iter().filter(|value| **value < limit).count() as u64));
    }
}

proptest! {
    #[test]
    fn counts_below_many_limits_in_one_pass_equal_each_count_below(values in proptest::collection::vec(0u64..1 << 44, 0..200)) {
        let mut histogram = LatencyHistogram::new();
        values.iter().for_each(|&value| histogram.record(value));
        let limits: Vec<u64> = (0..=44).map(|exponent| 1u64 << exponent).collect();
        let counts = histogram.counts_below(&limits).unwrap();
        let each: Vec<u64> = limits.iter().map(|limit| histogram.count_below(*limit).unwrap_or(u64::MAX)).collect();
        prop_assert_eq!(counts.as_slice(), each.as_slice());
    }
}

#[test]
fn counts_below_refuses_limits_inside_buckets_out_of_order_or_too_many() {
    let histogram = LatencyHistogram::new();
    assert_eq!(histogram.counts_below(&[1_024, 10_000]), None);
    assert_eq!(histogram.counts_below(&[2_048, 1_024]), None);
    assert_eq!(histogram.counts_below(&[1_024, 1_024]), None);
    let mut past_the_top = LatencyHistogram::new();
    past_the_top.record(u64::MAX);
    assert_eq!(past_the_top.counts_below(&[1 << 20, 1 << 44]), None);
    assert_eq!(past_the_top.counts_below(&[1 << 20, 1 << 34]).unwrap().as_slice(), &[0, 0]);
    let many: Vec<u64> = (0..=alloc_free::MAX_LIMITS as u64).collect();
    assert_eq!(histogram.counts_below(&many), None);
    assert_eq!(
        histogram.counts_below(&many[..alloc_free::MAX_LIMITS]).unwrap().as_slice(),
        &[0; alloc_free::MAX_LIMITS][..]
    );
}
