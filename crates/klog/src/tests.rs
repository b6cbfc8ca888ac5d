//! The rate-limit rules with a fake clock: floods, isolation between sources, window edges, off, bad input.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;

const MS: u64 = 1_000_000;
const SECOND: u64 = 1_000_000_000;

/// Every line a run printed, in order, and the sum of the N of its suppression lines for `source`.
#[derive(Default)]
struct Printed {
    lines: Vec<String>,
}

impl Printed {
    fn take(&mut self, emission: Emission) {
        self.lines.extend(emission.lines().map(ToString::to_string));
    }

    fn reported(&self, source: &str) -> u64 {
        let prefix = alloc::format!("klog: {source}: ");
        self.lines
            .iter()
            .filter_map(|line| line.strip_prefix(&prefix)?.strip_suffix(" messages suppressed")?.parse::<u64>().ok())
            .sum()
    }

    fn count_starting(&self, prefix: &str) -> usize {
        self.lines.iter().filter(|line| line.starts_with(prefix)).count()
    }
}

#[test]
fn a_flood_prints_burst_per_window_and_its_suppression_lines_add_up_after_flush() {
    // 10,000 messages of `noisy` 200 us apart (0 .. 1.9998 s) and 20 of `steady` 100 ms apart, in time order.
    let mut log = Log::new();
    let mut printed = Printed::default();
    let mut events: Vec<(u64, &str, u64)> = (0..10_000).map(|i| (i * 200_000, "noisy", i)).collect();
    events.extend((0..20).map(|i| (i * 100 * MS, "steady", i)));
    events.sort_by_key(|&(at, name, _)| (at, name == "noisy"));
    for (at, source, i) in events {
        printed.take(log.emit(at, source, &alloc::format!("{source} {i}")).unwrap());
    }
    // Windows [0, 1 s) and [1 s, 2 s): 5,000 messages each, 10 printed each.
    let noisy = log.source("noisy").unwrap();
    assert_eq!(noisy.counters.emitted, 10_000);
    assert_eq!(noisy.counters.printed, 20);
    assert_eq!(noisy.counters.suppressed, 9_980);
    // The first window's 4,990 were reported when the second began, right before message 5,000.
    assert_eq!(noisy.counters.suppression_reports, 1);
    assert_eq!(noisy.counters.suppressed_reported, 4_990);
    let at = printed.lines.iter().position(|line| line == "klog: noisy: 4990 messages suppressed").unwrap();
    assert_eq!(printed.lines[at + 1], "noisy 5000");
    assert_eq!(log.flush("noisy").unwrap().as_deref(), Some("klog: noisy: 4990 messages suppressed"));
    assert_eq!(log.flush("noisy").unwrap(), None, "a flush pays the debt once");
    printed.lines.push(String::from("klog: noisy: 4990 messages suppressed"));
    assert_eq!(printed.reported("noisy"), 9_980);
    assert_eq!(printed.count_starting("noisy "), 20);
    // `steady` sent 10 per window, within its own budget, whatever `noisy` did.
    let steady = log.source("steady").unwrap();
    assert_eq!((steady.counters.printed, steady.counters.suppressed), (20, 0));
    assert_eq!(printed.count_starting("steady "), 20);
    let totals = log.totals();
    assert_eq!(totals.counters.emitted, 10_020);
    assert_eq!(totals.counters.printed, 40);
    assert_eq!(totals.counters.suppressed_reported, totals.counters.suppressed);
    assert_eq!((totals.pending_suppressed, totals.rejected, totals.sources), (0, 0, 2));
}

#[test]
fn a_message_exactly_one_interval_after_the_window_start_opens_the_next_window() {
    let mut log = Log::new();
    log.set_limit(Some("edge"), RateLimit::new(1_000, 2).unwrap()).unwrap();
    let mut lines = Vec::new();
    for at in [500, 501, 502, 1_499] {
        lines.extend(log.emit(at, "edge", &alloc::format!("at {at}")).unwrap().lines().map(String::from));
    }
    assert_eq!(lines, ["at 500", "at 501"]);
    let opened = log.emit(1_500, "edge", "at 1500").unwrap();
    assert_eq!(opened.suppression_report.as_deref(), Some("klog: edge: 2 messages suppressed"));
    assert_eq!(opened.message.as_deref(), Some("at 1500"));
    assert_eq!(log.source("edge").unwrap().window_start_ns, Some(1_500));
    // A time before the window's start (a caller's stale reading) stays in the window.
    assert_eq!(log.emit(1_000, "edge", "stale").unwrap().message.as_deref(), Some("stale"));
    assert_eq!(log.emit(2_499, "edge", "late").unwrap(), Emission::default());
    assert_eq!(log.source("edge").unwrap().counters.suppressed, 3);
}

#[test]
fn limiting_off_prints_everything_and_first_reports_what_was_suppressed_before() {
    let mut log = Log::new();
    for i in 0..15 {
        log.emit(i, "dev", "x").unwrap();
    }
    assert_eq!(log.source("dev").unwrap().counters.suppressed, 5);
    log.set_limiting(Some("dev"), false).unwrap();
    let first = log.emit(20, "dev", "now printed").unwrap();
    assert_eq!(first.lines().collect::<Vec<_>>(), ["klog: dev: 5 messages suppressed", "now printed"]);
    for i in 0..10_000 {
        assert!(log.emit(30 + i, "dev", "y").unwrap().message.is_some());
    }
    let dev = log.source("dev").unwrap();
    assert_eq!((dev.counters.emitted, dev.counters.printed, dev.counters.suppressed), (10_016, 10_011, 5));
    assert!(!dev.limiting && dev.own_limiting);
    // Back on: a fresh window, burst 10 again.
    log.set_limiting(Some("dev"), true).unwrap();
    let printed = (0..20).filter(|i| log.emit(20_000 + i, "dev", "z").unwrap().message.is_some()).count();
    assert_eq!(printed, 10);
}

#[test]
fn the_default_applies_to_sources_without_their_own_setting() {
    let mut log = Log::new();
    log.register("own").unwrap();
    log.register("shared").unwrap();
    log.set_limit(Some("own"), RateLimit::new(SECOND, 3).unwrap()).unwrap();
    log.set_limit(None, RateLimit::new(SECOND, 5).unwrap()).unwrap();
    let printed =
        |log: &mut Log, name: &str| (0..50).filter(|_| log.emit(0, name, "m").unwrap().message.is_some()).count();
    assert_eq!(printed(&mut log, "own"), 3);
    assert_eq!(printed(&mut log, "shared"), 5);
    assert_eq!(printed(&mut log, "later"), 5, "a new source follows the default");
    log.set_limiting(None, false).unwrap();
    assert_eq!(printed(&mut log, "shared"), 50);
    assert_eq!(log.source("shared").unwrap().counters.suppression_reports, 1, "the debt was paid before printing");
    assert!(log.source("own").unwrap().own_limit);
    assert!(!log.source("shared").unwrap().own_limit);
    assert_eq!(log.default_limit(), RateLimit::new(SECOND, 5).unwrap());
    assert!(!log.default_limiting());
}

#[test]
fn bad_names_are_refused_counted_and_change_nothing() {
    let mut log = Log::new();
    let long = "a".repeat(MAX_NAME_BYTES + 1);
    let cases: [(&str, KlogError); 4] = [
        ("", KlogError::EmptyName),
        (&long, KlogError::NameTooLong { length: 17 }),
        ("net dev", KlogError::BadNameCharacter { offset: 3 }),
        ("ré", KlogError::BadNameCharacter { offset: 1 }),
    ];
    for (name, expected) in cases {
        assert_eq!(log.emit(0, name, "m"), Err(expected.clone()), "{name:?}");
        assert_eq!(log.set_limit(Some(name), RateLimit::DEFAULT), Err(expected.clone()));
        assert_eq!(log.set_limiting(Some(name), false), Err(expected.clone()));
        assert_eq!(log.flush(name), Err(expected.clone()));
        assert_eq!(expected.code(), "bad-source-name");
    }
    assert_eq!(log.flush("absent"), Err(KlogError::UnknownSource));
    assert_eq!(log.source("absent"), Err(KlogError::UnknownSource));
    assert_eq!(log.totals(), Totals { rejected: 4, ..Totals::default() });
    assert_eq!(check_name("a-Z_9"), Ok(()));
}

#[test]
fn the_table_holds_max_sources_and_refuses_a_new_one_beyond() {
    let mut log = Log::new();
    for i in 0..MAX_SOURCES {
        log.emit(0, &alloc::format!("s{i}"), "m").unwrap();
    }
    let full = KlogError::TooManySources { limit: MAX_SOURCES };
    assert_eq!(log.emit(0, "one-more", "m"), Err(full.clone()));
    assert_eq!(log.set_limit(Some("one-more"), RateLimit::DEFAULT), Err(full.clone()));
    assert_eq!(full.code(), "too-many-sources");
    assert!(log.emit(1, "s0", "known sources still log").unwrap().message.is_some());
    let totals = log.totals();
    assert_eq!((totals.sources, totals.rejected, totals.counters.emitted), (MAX_SOURCES, 1, MAX_SOURCES as u64 + 1));
}

#[test]
fn bad_limits_are_typed_errors() {
    assert_eq!(RateLimit::new(0, 10), Err(KlogError::ZeroInterval));
    assert_eq!(RateLimit::new(SECOND, 0), Err(KlogError::ZeroBurst));
    assert_eq!(
        RateLimit::new(MAX_INTERVAL_NS + 1, 1),
        Err(KlogError::IntervalTooLong { interval_ns: MAX_INTERVAL_NS + 1 })
    );
    assert_eq!(RateLimit::new(1, MAX_BURST + 1), Err(KlogError::BurstTooLarge { burst: MAX_BURST + 1 }));
    assert_eq!(
        RateLimit::new(MAX_INTERVAL_NS, MAX_BURST).map(|limit| (limit.interval_ns(), limit.burst())),
        Ok((MAX_INTERVAL_NS, MAX_BURST))
    );
    assert_eq!(KlogError::ZeroBurst.code(), "out-of-range");
    assert_eq!(RateLimit::DEFAULT, RateLimit::new(DEFAULT_INTERVAL_NS, DEFAULT_BURST).unwrap());
}

#[test]
fn a_message_is_always_one_line_of_bounded_length() {
    assert_eq!(one_line("a\nb\r\tc"), "a\\nb\\r\\tc");
    let long = "é".repeat(MAX_MESSAGE_BYTES);
    let cut = one_line(&long);
    assert_eq!(cut.len(), MAX_MESSAGE_BYTES + 3);
    assert!(cut.ends_with("é..."));
    let mut log = Log::new();
    assert_eq!(log.emit(0, "x", "two\nlines").unwrap().message.as_deref(), Some("two\\nlines"));
}

#[test]
fn counters_serialize_flat_in_the_totals() {
    let mut log = Log::new();
    log.emit(0, "a", "m").unwrap();
    let value = serde_json::to_value(log.totals()).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"emitted": 1, "printed": 1, "suppressed": 0, "suppression_reports": 0,
            "suppressed_reported": 0, "pending_suppressed": 0, "rejected": 0, "sources": 1})
    );
}

/// One step of a random run: a message, a flush, or a change of limit or switch.
#[derive(Debug, Clone)]
enum Step {
    Message { source: usize, advance_ns: u64 },
    Flush { source: usize },
    Limit { source: Option<usize>, interval_ns: u64, burst: u32 },
    Limiting { source: Option<usize>, on: bool },
}

fn step() -> impl Strategy<Value = Step> {
    let source = 0..4usize;
    prop_oneof![
        20 => (source.clone(), 0..300 * MS).prop_map(|(source, advance_ns)| Step::Message { source, advance_ns }),
        1 => source.clone().prop_map(|source| Step::Flush { source }),
        1 => (proptest::option::of(source.clone()), 1..2 * SECOND, 1..20u32)
            .prop_map(|(source, interval_ns, burst)| Step::Limit { source, interval_ns, burst }),
        1 => (proptest::option::of(source), any::<bool>()).prop_map(|(source, on)| Step::Limiting { source, on }),
    ]
}

const NAMES: [&str; 4] = ["a", "b", "c", "d"];

proptest! {
    #[test]
    fn every_message_is_printed_or_suppressed_and_every_suppression_reported_after_flush_all(
        steps in proptest::collection::vec(step(), 1..400)
    ) {
        let mut log = Log::new();
        let mut printed = Printed::default();
        let mut now = 0u64;
        let mut messages = [0u64; 4];
        for step in steps {
            match step {
                Step::Message { source, advance_ns } => {
                    now += advance_ns;
                    messages[source] += 1;
                    let text = alloc::format!("{} message", NAMES[source]);
                    printed.take(log.emit(now, NAMES[source], &text).unwrap());
                }
                Step::Flush { source } => {
                    if let Ok(Some(line)) = log.flush(NAMES[source]) {
                        printed.lines.push(line);
                    }
                }
                Step::Limit { source, interval_ns, burst } => {
                    let limit = RateLimit::new(interval_ns, burst).unwrap();
                    log.set_limit(source.map(|index| NAMES[index]), limit).unwrap();
                }
                Step::Limiting { source, on } => log.set_limiting(source.map(|index| NAMES[index]), on).unwrap(),
            }
        }
        printed.lines.extend(log.flush_all());
        for (index, name) in NAMES.iter().enumerate() {
            let Ok(source) = log.source(name) else {
                prop_assert_eq!(messages[index], 0);
                continue;
            };
            let counters = source.counters;
            prop_assert_eq!(counters.emitted, messages[index]);
            prop_assert_eq!(counters.printed + counters.suppressed, counters.emitted);
            prop_assert_eq!(printed.count_starting(&alloc::format!("{name} message")) as u64, counters.printed);
            prop_assert_eq!(counters.suppressed_reported, counters.suppressed);
            prop_assert_eq!(printed.reported(name), counters.suppressed);
            prop_assert_eq!(source.pending_suppressed, 0);
        }
        let totals = log.totals();
        prop_assert_eq!(totals.counters.emitted, messages.iter().sum::<u64>());
        prop_assert_eq!(totals.counters.suppressed_reported, totals.counters.suppressed);
    }
}
