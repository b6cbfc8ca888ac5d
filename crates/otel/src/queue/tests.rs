use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;

const CONFIG: QueueConfig =
    QueueConfig { max_batch: 3, max_queued: 5, max_attempts: 3, initial_backoff_ns: 100, max_backoff_ns: 250 };

fn queue_of(items: core::ops::Range<u32>) -> ExportQueue<u32> {
    let mut queue = ExportQueue::new(CONFIG).unwrap();
    for item in items {
        let _ = queue.enqueue(item);
    }
    queue
}

#[test]
fn batches_hold_at_most_max_batch_items_oldest_first() {
    let mut queue = queue_of(0..5);
    let mut sent = Vec::new();
    assert_eq!(
        queue.poll(0, |batch: &[u32]| {
            sent.push(batch.to_vec());
            Ok::<_, ()>(())
        }),
        Poll::Exported { items: 3 }
    );
    assert_eq!(
        queue.poll(0, |batch: &[u32]| {
            sent.push(batch.to_vec());
            Ok::<_, ()>(())
        }),
        Poll::Exported { items: 2 }
    );
    assert_eq!(queue.poll(0, |_: &[u32]| -> Result<(), ()> { panic!("nothing to send") }), Poll::Idle);
    assert_eq!(sent, [vec![0, 1, 2], vec![3, 4]]);
    assert_eq!(queue.counters(), QueueCounters { enqueued: 5, exported: 5, batches: 2, ..QueueCounters::default() });
}

#[test]
fn a_full_queue_drops_new_items_and_counts_them() {
    let mut queue = queue_of(0..5);
    assert_eq!(queue.enqueue(5), Err(QueueFull));
    assert_eq!(queue.enqueue(6), Err(QueueFull));
    assert_eq!(queue.counters().dropped_full, 2);
    // Room returns only when a batch is accepted: a batch waiting to be retried still counts as held.
    assert!(matches!(queue.poll(0, |_: &[u32]| Err("down")), Poll::Retrying { .. }));
    assert_eq!(queue.enqueue(7), Err(QueueFull));
    assert_eq!(queue.poll(100, |_: &[u32]| Ok::<_, &str>(())), Poll::Exported { items: 3 });
    assert_eq!(queue.enqueue(8), Ok(()));
    let mut sent = Vec::new();
    queue.poll(100, |batch: &[u32]| {
        sent.extend_from_slice(batch);
        Ok::<_, ()>(())
    });
    assert_eq!(sent, [3, 4, 8]);
    assert_eq!(
        queue.counters(),
        QueueCounters { enqueued: 6, exported: 6, dropped_full: 3, retries: 1, batches: 2, ..QueueCounters::default() }
    );
}

#[test]
fn a_failed_batch_is_retried_after_a_doubling_capped_backoff_then_dropped() {
    let mut queue = queue_of(0..4);
    let mut attempts = Vec::new();
    let mut fail = |now: u64, queue: &mut ExportQueue<u32>| {
        queue.poll(now, |batch: &[u32]| {
            attempts.push((now, batch.to_vec()));
            Err("503")
        })
    };
    assert_eq!(fail(1_000, &mut queue), Poll::Retrying { error: "503", attempt: 1, retry_at_ns: 1_100 });
    assert_eq!(fail(1_099, &mut queue), Poll::Waiting { retry_at_ns: 1_100 });
    assert_eq!(fail(1_100, &mut queue), Poll::Retrying { error: "503", attempt: 2, retry_at_ns: 1_300 });
    assert_eq!(fail(1_300, &mut queue), Poll::Dropped { error: "503", items: 3 });
    // The next batch starts afresh: a full first backoff.
    assert_eq!(fail(1_300, &mut queue), Poll::Retrying { error: "503", attempt: 1, retry_at_ns: 1_400 });
    assert_eq!(attempts, [(1_000, vec![0, 1, 2]), (1_100, vec![0, 1, 2]), (1_300, vec![0, 1, 2]), (1_300, vec![3])]);
    assert_eq!(
        queue.counters(),
        QueueCounters {
            enqueued: 4,
            dropped_after_retries: 3,
            retries: 2,
            batches_dropped: 1,
            held: 1,
            ..QueueCounters::default()
        }
    );
}

#[test]
fn the_backoff_is_capped_and_never_overflows() {
    let config = QueueConfig { max_attempts: 100, initial_backoff_ns: 100, max_backoff_ns: 250, ..CONFIG };
    let queue = ExportQueue::<u32>::new(config).unwrap();
    let waits: Vec<u64> = (1..=5).map(|failures| queue.backoff_ns(failures)).collect();
    assert_eq!(waits, [100, 200, 250, 250, 250]);
    let huge =
        ExportQueue::<u32>::new(QueueConfig { initial_backoff_ns: u64::MAX / 2, max_backoff_ns: u64::MAX, ..config })
            .unwrap();
    assert_eq!(huge.backoff_ns(70), u64::MAX);
    let mut late = queue_of(0..1);
    assert_eq!(
        late.poll(u64::MAX - 10, |_: &[u32]| Err(())),
        Poll::Retrying { error: (), attempt: 1, retry_at_ns: u64::MAX }
    );
}

#[test]
fn a_configuration_that_cannot_work_is_refused() {
    let refused = |config| ExportQueue::<u32>::new(config).unwrap_err();
    assert_eq!(refused(QueueConfig { max_batch: 0, ..CONFIG }), QueueConfigError::ZeroBatch);
    assert_eq!(refused(QueueConfig { max_queued: 2, ..CONFIG }), QueueConfigError::QueueSmallerThanBatch);
    assert_eq!(refused(QueueConfig { max_attempts: 0, ..CONFIG }), QueueConfigError::ZeroAttempts);
    assert_eq!(refused(QueueConfig { max_backoff_ns: 99, ..CONFIG }), QueueConfigError::BackoffCapBelowInitial);
}

#[derive(Debug, Clone)]
enum Step {
    Enqueue,
    Advance(u64),
    Poll { succeed: bool },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Enqueue),
        1 => (0u64..400).prop_map(Step::Advance),
        3 => any::<bool>().prop_map(|succeed| Step::Poll { succeed }),
    ]
}

proptest! {
    /// Whatever happens, every item offered is exported once, dropped (full or after retries) once, or held;
    /// items are exported in the order they were offered; each batch obeys the limit.
    #[test]
    fn every_item_is_exported_dropped_or_held_exactly_once(steps in proptest::collection::vec(step(), 0..300)) {
        let mut queue = ExportQueue::new(CONFIG).unwrap();
        let (mut now, mut offered, mut exported, mut attempts) = (0u64, 0u32, Vec::new(), 0u64);
        let mut dropped = Vec::new();
        let mut retrying = false;
        for step in steps {
            match step {
                Step::Enqueue => {
                    if queue.enqueue(offered).is_err() {
                        dropped.push(offered);
                    }
                    offered += 1;
                }
                Step::Advance(delta) => now += delta,
                Step::Poll { succeed } => {
                    let mut batch_seen = Vec::new();
                    let poll = queue.poll(now, |batch: &[u32]| {
                        batch_seen = batch.to_vec();
                        if succeed { Ok(()) } else { Err(()) }
                    });
                    prop_assert!(batch_seen.len() <= CONFIG.max_batch);
                    if !batch_seen.is_empty() {
                        attempts += 1;
                    }
                    match poll {
                        Poll::Exported { items } => {
                            retrying = false;
                            prop_assert_eq!(items, batch_seen.len());
                            exported.extend(batch_seen);
                        }
                        Poll::Dropped { items, .. } => {
                            retrying = false;
                            prop_assert_eq!(items, batch_seen.len());
                            dropped.extend(batch_seen);
                        }
                        Poll::Retrying { .. } => retrying = true,
                        Poll::Waiting { .. } | Poll::Idle => {}
                    }
                }
            }
            let counters = queue.counters();
            prop_assert!(counters.held as usize <= CONFIG.max_queued);
            prop_assert_eq!(counters.enqueued, counters.exported + counters.dropped_after_retries + counters.held);
            prop_assert_eq!(counters.enqueued + counters.dropped_full, u64::from(offered));
            prop_assert_eq!(counters.exported, exported.len() as u64);
            prop_assert_eq!(counters.dropped_full + counters.dropped_after_retries, dropped.len() as u64);
            // Every attempt is a batch's first or a retry; a batch is first tried when it forms.
            let formed = counters.batches + counters.batches_dropped + u64::from(retrying);
            prop_assert_eq!(attempts, formed + counters.retries);
        }
        // Exported items keep their order; no item is both exported and dropped, or exported twice.
        prop_assert!(exported.windows(2).all(|pair| pair[0] < pair[1]));
        let mut all: Vec<u32> = exported.iter().chain(&dropped).copied().collect();
        all.sort_unstable();
        all.dedup();
        prop_assert_eq!(all.len(), exported.len() + dropped.len());
    }
}

#[test]
fn an_attempt_started_and_finished_later_holds_its_batch_until_then() {
    let mut queue = queue_of(0..5);
    assert_eq!(queue.finish(0, Ok::<_, ()>(())), Err(NoAttempt));
    assert_eq!(queue.start(0), Start::Ready(&[0, 1, 2][..]));
    // While the attempt is open its items stay held, new items queue behind it, and nothing else starts.
    assert_eq!(queue.start(10), Start::Busy);
    assert_eq!(
        queue.poll(10, |_: &[u32]| -> Result<(), ()> { panic!("an attempt is open") }),
        Poll::Waiting { retry_at_ns: 10 }
    );
    assert_eq!(queue.counters().held, 5);
    assert_eq!(queue.finish(20, Err("refused")), Ok(Poll::Retrying { error: "refused", attempt: 1, retry_at_ns: 120 }));
    assert_eq!(queue.finish(20, Err("again")), Err(NoAttempt));
    assert_eq!(queue.start(119), Start::Waiting { retry_at_ns: 120 });
    assert_eq!(queue.start(120), Start::Ready(&[0, 1, 2][..]));
    assert_eq!(queue.finish(130, Ok::<_, ()>(())), Ok(Poll::Exported { items: 3 }));
    assert_eq!(queue.start(130), Start::Ready(&[3, 4][..]));
    assert_eq!(queue.finish(140, Err(())), Ok(Poll::Retrying { error: (), attempt: 1, retry_at_ns: 240 }));
    assert_eq!(queue.start(240), Start::Ready(&[3, 4][..]));
    assert_eq!(queue.finish(240, Err(())), Ok(Poll::Retrying { error: (), attempt: 2, retry_at_ns: 440 }));
    assert_eq!(queue.start(440), Start::Ready(&[3, 4][..]));
    assert_eq!(queue.finish(440, Err(())), Ok(Poll::Dropped { error: (), items: 2 }));
    assert_eq!(queue.start(440), Start::Idle);
    assert_eq!(
        queue.counters(),
        QueueCounters {
            enqueued: 5,
            exported: 3,
            dropped_after_retries: 2,
            retries: 3,
            batches: 1,
            batches_dropped: 1,
            held: 0,
            ..QueueCounters::default()
        }
    );
}
