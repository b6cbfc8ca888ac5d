//! Host JSON report paths: the stress-report validator (`sis_testing::validate`)
//! and the shell reply reader (`sis_testing::parse_json_reply`) on arbitrary text.
//!
//! The first four bytes pick thresholds, the rest is the report. Invariants:
//! a verdict always comes back; sections are checked once each, in order;
//! each rule adds at most one failure (one rule for memory, compare and
//! percentiles; two for learning: the seed's improvement and SIS's best
//! baseline beaten); a report that is not a JSON object
//! has exactly one failure and no section; `passed` means no failure and a
//! checked section; loosening every threshold keeps the same sections and
//! never adds a failure. An accepted reply is one line holding an object with
//! `schema_version` 1, a `command` string or null, and an `ok` boolean.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sis_testing::validate::{validate, Thresholds};

const SECTIONS: [&str; 4] = ["memory", "compare", "percentiles", "learning"];
/// Rules per section, in [`SECTIONS`] order.
const RULES: [usize; 4] = [1, 1, 1, 2];

fuzz_target!(|bytes: &[u8]| {
    let (thresholds, report) = match bytes {
        [oom, interventions, p99, improvement, report @ ..] => (
            Thresholds {
                max_oom_events: u64::from(*oom),
                min_autonomy_interventions: u64::from(*interventions),
                max_p99_latency_ms: f64::from(*p99) / 4.0,
                min_learning_improvement_pct: f64::from(*improvement) - 128.0,
            },
            report,
        ),
        _ => (Thresholds::default(), bytes),
    };
    let text = String::from_utf8_lossy(report);

    let verdict = validate(&text, &thresholds);
    let order: Vec<usize> =
        verdict.checked.iter().map(|name| SECTIONS.iter().position(|known| known == name).expect("known")).collect();
    assert!(order.windows(2).all(|pair| pair[0] < pair[1]), "sections {:?}", verdict.checked);
    let rules: usize = order.iter().map(|index| RULES[*index]).sum();
    assert!(verdict.failures.len() <= rules.max(1), "{verdict:?}");
    assert_eq!(verdict.passed(), verdict.failures.is_empty() && !verdict.checked.is_empty());
    let object = serde_json::from_str::<Value>(&text).ok().filter(Value::is_object);
    if object.is_none() {
        assert!(verdict.checked.is_empty() && verdict.failures.len() == 1, "{verdict:?}");
    }

    let loose = Thresholds {
        max_oom_events: u64::MAX,
        min_autonomy_interventions: 0,
        max_p99_latency_ms: f64::INFINITY,
        min_learning_improvement_pct: f64::NEG_INFINITY,
    };
    let relaxed = validate(&text, &loose);
    assert_eq!(relaxed.checked, verdict.checked);
    assert!(relaxed.failures.len() <= verdict.failures.len(), "{relaxed:?} vs {verdict:?}");

    if let Ok(reply) = sis_testing::parse_json_reply(&text) {
        assert_eq!(text.matches('\n').count(), 1);
        assert!(text.ends_with('\n'));
        assert_eq!(reply["schema_version"], u64::from(sis_proto::SCHEMA_VERSION));
        assert!(reply["command"].is_string() || reply["command"].is_null());
        assert!(reply["ok"].is_boolean());
    }
});
