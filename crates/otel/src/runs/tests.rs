use alloc::vec::Vec;

use super::*;
use crate::{AnyValue, MetricData};

#[test]
fn a_run_is_a_root_with_a_child_per_part_each_from_the_previous_end() {
    let mut ids = IdGenerator::new(4);
    let mut run = RunTrace::start(&mut ids, "stresstest all", 1_000, alloc::vec![KeyValue::int("sis.stress.seed", 7)]);
    run.part_done(&mut ids, "memory", 3_000, Vec::new());
    run.part_done(&mut ids, "commands", 3_500, alloc::vec![KeyValue::int("sis.stress.part", 2)]);
    // A clock read before the last boundary is taken as the boundary: parts never end before they start.
    run.part_done(&mut ids, "multi", 3_400, Vec::new());
    let spans = run.finish(9_000, CommandOutcome::Failed("stress-failed"));
    let names: Vec<&str> = spans.iter().map(|span| span.name.as_str()).collect();
    assert_eq!(names, ["memory", "commands", "multi", "stresstest all"]);
    let root = &spans[3];
    assert_eq!((root.parent_span_id, root.start_time_unix_nano, root.end_time_unix_nano), (None, 1_000, 9_000));
    assert_eq!(root.status, Status::Error(String::from("stress-failed")));
    let times: Vec<(u64, u64)> =
        spans[..3].iter().map(|span| (span.start_time_unix_nano, span.end_time_unix_nano)).collect();
    assert_eq!(times, [(1_000, 3_000), (3_000, 3_500), (3_500, 3_500)]);
    for part in &spans[..3] {
        assert_eq!(
            (part.trace_id, part.parent_span_id, &part.status),
            (root.trace_id, Some(root.span_id), &Status::Ok)
        );
    }
    assert_eq!(spans[1].attributes[0].value, AnyValue::Int(2));
    let mut expected = IdGenerator::new(4);
    assert_eq!(root.trace_id, expected.trace_id());
    assert_eq!(root.span_id, expected.span_id());
    let single = operation_span(&mut ids, "llm.infer", 10, 5, Vec::new(), CommandOutcome::Ok);
    assert_eq!((single.start_time_unix_nano, single.end_time_unix_nano, single.status), (10, 10, Status::Ok));
}

#[test]
fn a_latency_histogram_becomes_exact_otlp_buckets() {
    let mut histogram = LatencyHistogram::new();
    for value in [500, 1_023, 1_024, 2_047, 2_048, 1_000_000, 20_000_000_000] {
        histogram.record(value);
    }
    let metric = latency_histogram("sis.x.duration", "x", &histogram, 1, 2).unwrap();
    let MetricData::Histogram { points, .. } = &metric.data else { panic!() };
    let point = &points[0];
    assert_eq!(point.explicit_bounds()[0], 1_023.0);
    assert_eq!(point.explicit_bounds().len(), 25);
    let counts = point.bucket_counts();
    // <= 1,023: 500 and 1,023; <= 2,047: 1,024 and 2,047; <= 4,095: 2,048; 1 ms in (2^19-1, 2^20-1]; 20 s past
    // the last bound (2^34 - 1 = 17.2 s).
    assert_eq!((counts[0], counts[1], counts[2], counts[10], counts[25]), (2, 2, 1, 1, 1));
    assert_eq!(counts.iter().sum::<u64>(), 7);
    assert_eq!((point.sum, point.min, point.max), (Some(20_001_006_642.0), Some(500.0), Some(20_000_000_000.0)));
    let empty = latency_histogram("e", "e", &LatencyHistogram::new(), 1, 2).unwrap();
    let MetricData::Histogram { points, .. } = &empty.data else { panic!() };
    assert_eq!((points[0].count(), points[0].sum), (0, None));
    let mut huge = LatencyHistogram::new();
    huge.record(u64::MAX);
    assert!(latency_histogram("h", "h", &huge, 1, 2).is_some());
}
