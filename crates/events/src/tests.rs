use proptest::prelude::*;
use serde_json::json;

use crate::*;

const MS: u64 = 1_000_000;

fn intervention(decision: u64) -> Kind {
    Kind::Intervention {
        decision,
        interval: decision,
        subsystem: sis_autonomy::Subsystem::Memory,
        directive: sis_autonomy::Directive::ProactiveReclaim,
        confidence_per_mille: 900,
    }
}

#[test]
fn events_are_numbered_from_one_and_serialize_flat_with_their_kind() {
    let mut log = EventLog::new(4);
    assert_eq!(log.publish(5 * MS + 999_999, intervention(7)), 1);
    assert_eq!(log.publish(6 * MS, intervention(8)), 2);
    let batch = log.since(1, MAX_BATCH);
    assert_eq!(batch.missed, 0);
    assert_eq!(batch.next, 3);
    assert_eq!(
        serde_json::to_value(&batch.events[0]).unwrap(),
        json!({
            "seq": 1, "at_ms": 5, "kind": "autonomy.intervention", "decision": 7, "interval": 7,
            "subsystem": "memory", "directive": { "directive": "proactive_reclaim" }, "confidence_per_mille": 900
        })
    );
}

#[test]
fn a_reader_behind_the_log_is_told_exactly_how_many_it_missed() {
    let mut log = EventLog::new(3);
    for decision in 1..=5 {
        log.publish(decision * MS, intervention(decision));
    }
    // Held: 3, 4, 5. A reader at 1 missed 1 and 2.
    let batch = log.since(1, MAX_BATCH);
    assert_eq!(batch.missed, 2);
    assert_eq!(batch.events.iter().map(|event| event.seq).collect::<Vec<_>>(), [3, 4, 5]);
    assert_eq!(batch.next, 6);
    assert_eq!(log.counters(), Counters { published: 5, dropped: 2, held: 3, capacity: 3 });
    // Caught up: nothing, same cursor.
    assert_eq!(log.since(6, MAX_BATCH), Batch { missed: 0, events: Vec::new(), next: 6 });
    // A cursor from the future gets nothing and the real next cursor.
    assert_eq!(log.since(100, MAX_BATCH).next, 6);
    // A reader starting now sees only later events.
    assert_eq!(log.next_seq(), 6);
}

#[test]
fn a_batch_stops_at_max_and_the_next_cursor_continues_after_it() {
    let mut log = EventLog::new(10);
    for decision in 1..=5 {
        log.publish(decision * MS, intervention(decision));
    }
    let first = log.since(2, 2);
    assert_eq!(first.events.iter().map(|event| event.seq).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(first.next, 4);
    let second = log.since(first.next, 2);
    assert_eq!(second.events.iter().map(|event| event.seq).collect::<Vec<_>>(), [4, 5]);
}

proptest! {
    /// Whatever the capacity, batch size and publishing pattern, a reader following its cursor sees every event
    /// exactly once or counts it as missed, in order.
    #[test]
    fn a_reader_sees_or_counts_every_event_once(
        capacity in 1usize..16,
        max in 1usize..8,
        bursts in proptest::collection::vec(0u64..20, 1..30),
    ) {
        let mut log = EventLog::new(capacity);
        let mut cursor = 1;
        let (mut seen, mut missed, mut published) = (Vec::new(), 0, 0);
        for burst in bursts {
            for _ in 0..burst {
                published += 1;
                log.publish(published * MS, intervention(published));
            }
            let batch = log.since(cursor, max);
            missed += batch.missed;
            seen.extend(batch.events.iter().map(|event| event.seq));
            cursor = batch.next;
        }
        loop {
            let batch = log.since(cursor, max);
            missed += batch.missed;
            if batch.events.is_empty() {
                break;
            }
            seen.extend(batch.events.iter().map(|event| event.seq));
            cursor = batch.next;
        }
        prop_assert_eq!(seen.len() as u64 + missed, published);
        prop_assert!(seen.windows(2).all(|pair| pair[0] < pair[1]));
        prop_assert_eq!(log.counters().dropped, published.saturating_sub(capacity as u64));
    }

    /// However OOM events arrive, the published events add up to the run's count, none comes within the interval
    /// of the previous one, and only the first waits for nothing.
    #[test]
    fn oom_events_add_up_and_respect_the_interval(steps in proptest::collection::vec((0u64..40, 0u64..4), 1..200)) {
        let mut coalescer = OomCoalescer::new(3);
        let (mut now, mut total, mut sum) = (0u64, 0u64, 0u64);
        let mut published_at: Vec<u64> = Vec::new();
        for (advance_ms, new) in steps {
            now += advance_ms * MS;
            total += new;
            if let Some(Kind::Oom { run, new_oom_events, oom_events, .. }) = coalescer.observe(now, total, 64) {
                prop_assert_eq!(run, 3);
                prop_assert_eq!(oom_events, total);
                prop_assert!(new_oom_events > 0);
                sum += new_oom_events;
                published_at.push(now);
            }
        }
        if let Some(Kind::Oom { new_oom_events, oom_events, .. }) = coalescer.flush() {
            prop_assert_eq!(oom_events, total);
            sum += new_oom_events;
        }
        prop_assert_eq!(sum, total);
        prop_assert!(published_at.windows(2).all(|pair| pair[1] - pair[0] >= OOM_INTERVAL_NS));
        prop_assert_eq!(coalescer.flush(), None);
    }
}

#[test]
fn the_first_oom_event_is_published_at_once_and_later_ones_wait() {
    let mut coalescer = OomCoalescer::new(1);
    assert_eq!(coalescer.observe(10 * MS, 0, 0), None, "no OOM event yet");
    assert_eq!(
        coalescer.observe(10 * MS, 1, 4096),
        Some(Kind::Oom { run: 1, new_oom_events: 1, oom_events: 1, bytes: 4096 })
    );
    assert_eq!(coalescer.observe(50 * MS, 5, 512), None);
    assert_eq!(coalescer.observe(109 * MS, 6, 128), None);
    assert_eq!(
        coalescer.observe(110 * MS, 6, 128),
        Some(Kind::Oom { run: 1, new_oom_events: 5, oom_events: 6, bytes: 128 })
    );
    assert_eq!(coalescer.observe(300 * MS, 6, 0), None, "nothing new");
    assert_eq!(
        coalescer.observe(301 * MS, 7, 8),
        Some(Kind::Oom { run: 1, new_oom_events: 1, oom_events: 7, bytes: 8 })
    );
}

#[test]
fn progress_is_the_elapsed_share_of_the_duration_at_most_every_interval() {
    let (mut run, started) = RunProgress::start(4, "memory", 42, Some(2_000), 1_000 * MS);
    assert_eq!(started, Kind::StressStarted { run: 4, test: "memory", seed: 42, duration_ms: Some(2_000) });
    assert_eq!(
        run.progress(1_500 * MS),
        Some(Kind::StressProgress { run: 4, test: "memory", percent: Some(25), elapsed_ms: 500 })
    );
    assert_eq!(run.progress(1_599 * MS), None, "within the interval");
    assert_eq!(
        run.progress(1_600 * MS),
        Some(Kind::StressProgress { run: 4, test: "memory", percent: Some(30), elapsed_ms: 600 })
    );
    // Past the duration: capped at 100.
    assert_eq!(
        run.progress(3_500 * MS),
        Some(Kind::StressProgress { run: 4, test: "memory", percent: Some(100), elapsed_ms: 2_500 })
    );
    assert_eq!(
        run.finish(3_600 * MS, Outcome::Failed, Some("stress-failed")),
        Kind::StressFinished {
            run: 4,
            test: "memory",
            elapsed_ms: 2_600,
            status: Outcome::Failed,
            error: Some("stress-failed")
        }
    );
}

#[test]
fn a_run_without_a_duration_reports_no_percent() {
    let (mut run, _) = RunProgress::start(1, "learning", 7, None, 0);
    assert_eq!(run.progress(MS), Some(Kind::StressProgress { run: 1, test: "learning", percent: None, elapsed_ms: 1 }));
    assert_eq!(
        serde_json::to_value(run.finish(2 * MS, Outcome::Passed, None)).unwrap(),
        json!({ "kind": "stress.finished", "run": 1, "test": "learning", "elapsed_ms": 2, "status": "passed", "error": null })
    );
}

#[test]
fn a_run_of_parts_reports_the_share_of_parts_done() {
    let (mut run, _) = RunProgress::start(2, "compare", 7, None, 0);
    assert_eq!(
        run.parts_done(10 * MS, 1, 3),
        Kind::StressProgress { run: 2, test: "compare", percent: Some(33), elapsed_ms: 10 }
    );
    assert_eq!(
        run.parts_done(11 * MS, 3, 3),
        Kind::StressProgress { run: 2, test: "compare", percent: Some(100), elapsed_ms: 11 }
    );
    // A zero total does not divide by zero; a share below the last does not lower it.
    assert_eq!(
        run.parts_done(12 * MS, 0, 0),
        Kind::StressProgress { run: 2, test: "compare", percent: Some(100), elapsed_ms: 12 }
    );
}

#[test]
fn every_kind_is_named_as_it_serializes() {
    let (mut run, started) = RunProgress::start(1, "chaos", 2, Some(10), 0);
    let kinds = [
        started,
        run.progress(MS).unwrap(),
        run.finish(2 * MS, Outcome::Passed, None),
        Kind::ChaosEvent {
            run: 1,
            index: 1,
            event: "memory_spike",
            fault: None,
            recovered: true,
            recovery_us: Some(5),
            failure: None,
        },
        OomCoalescer::new(1).observe(0, 1, 8).unwrap(),
        intervention(1),
    ];
    for kind in kinds {
        assert_eq!(serde_json::to_value(&kind).unwrap()["kind"], kind.name());
    }
}
