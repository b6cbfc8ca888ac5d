//! Channels between real threads: order, counts and the drop-oldest race.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use sis_dataflow::channel::{channel, ChannelStats, Full, Overflow, Receiver, Sender, Sent, TryRecvError};

/// Sends `0..count`, retrying what comes back under `block` (spinning, then yielding); returns the outcomes' counts.
fn produce(sender: Sender<u64>, count: u64) -> [u64; 3] {
    let mut outcomes = [0; 3];
    for mut item in 0..count {
        let mut waited_since = None;
        loop {
            match sender.try_send(item) {
                Ok(sent) => {
                    outcomes[sent as usize] += 1;
                    break;
                }
                Err(Full(back)) => {
                    item = back;
                    waited_since.get_or_insert_with(Instant::now);
                    thread::yield_now();
                }
            }
        }
        if let Some(started) = waited_since {
            sender.add_blocked_ns(started.elapsed().as_nanos() as u64);
        }
    }
    outcomes
}

/// Receives until the channel reports closed, yielding when empty (the two threads may share a core);
/// returns the items in arrival order.
fn consume(receiver: &Receiver<u64>) -> Vec<u64> {
    let mut items = Vec::new();
    loop {
        match receiver.try_recv() {
            Ok(item) => items.push(item),
            Err(TryRecvError::Empty) => thread::yield_now(),
            Err(TryRecvError::Closed) => return items,
        }
    }
}

/// One producer thread and one consumer thread over a channel of `capacity`.
fn run(capacity: usize, overflow: Overflow, count: u64) -> ([u64; 3], Vec<u64>, ChannelStats) {
    let (sender, receiver) = channel::<u64>(capacity, overflow).unwrap();
    let producer = thread::spawn(move || produce(sender, count));
    let items = consume(&receiver);
    let outcomes = producer.join().unwrap();
    (outcomes, items, receiver.stats())
}

fn assert_strictly_increasing(items: &[u64]) {
    if let Some(index) = items.windows(2).position(|pair| pair[0] >= pair[1]) {
        panic!("out of order at {index}: {} then {}", items[index], items[index + 1]);
    }
}

#[test]
fn block_delivers_every_item_in_order() {
    let count = 300_000;
    let (outcomes, items, stats) = run(16, Overflow::Block, count);
    assert_eq!(outcomes, [count, 0, 0]);
    assert_eq!(items.len() as u64, count);
    assert!(items.iter().copied().eq(0..count));
    assert_eq!((stats.offered, stats.received, stats.dropped, stats.queued), (count, count, 0, 0));
    assert!(stats.high_water >= 1 && stats.high_water <= 16, "{stats:?}");
    assert!(stats.closed);
}

#[test]
fn drop_newest_keeps_order_and_counts_every_drop() {
    let count = 300_000;
    let capacity = 8;
    let (outcomes, items, stats) = run(capacity, Overflow::DropNewest, count);
    assert_strictly_increasing(&items);
    // The first `capacity` items find room; drop-newest never removes a queued item.
    assert_eq!(items[..capacity], [0, 1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(outcomes[0] + outcomes[1], count);
    assert_eq!(outcomes[2], 0);
    assert_eq!(
        (stats.offered, stats.received, stats.dropped, stats.queued),
        (count, items.len() as u64, outcomes[1], 0)
    );
    assert_eq!(stats.offered, stats.received + stats.dropped + stats.queued);
}

#[test]
fn drop_oldest_keeps_order_and_the_newest_item() {
    let count = 300_000;
    for capacity in [1, 2, 8] {
        let (outcomes, items, stats) = run(capacity, Overflow::DropOldest, count);
        assert_strictly_increasing(&items);
        // Drop-oldest never discards the item just offered, so the last one always arrives.
        assert_eq!(items.last(), Some(&(count - 1)));
        assert_eq!(outcomes[0] + outcomes[2], count);
        assert_eq!(outcomes[1], 0);
        assert_eq!(
            (stats.offered, stats.received, stats.dropped, stats.queued),
            (count, items.len() as u64, outcomes[2], 0),
            "capacity {capacity}"
        );
    }
}

/// Items that count their drops, to catch an item removed twice or never.
struct Counted {
    value: u64,
    drops: Arc<AtomicUsize>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

/// A producer that never waits for room, always discarding the oldest item,
/// against a consumer that never waits: the two race for the oldest slot. The
/// producer pauses for a microsecond after every 16 sends: spin locks are not
/// fair, and without pauses a consumer on another core can lose every race
/// until the producer stops (see the channel's docs).
#[test]
fn drop_oldest_survives_the_race_for_the_oldest_item() {
    let count = 400_000u64;
    let drops = Arc::new(AtomicUsize::new(0));
    let (sender, receiver) = channel::<Counted>(1, Overflow::DropOldest).unwrap();
    let producer_drops = Arc::clone(&drops);
    let producer = thread::spawn(move || {
        let mut discarded = 0u64;
        for value in 0..count {
            if value % 16 == 0 {
                let paused = Instant::now();
                while paused.elapsed() < Duration::from_micros(1) {
                    std::hint::spin_loop();
                }
            }
            match sender.try_send(Counted { value, drops: Arc::clone(&producer_drops) }) {
                Ok(Sent::DroppedOldest) => discarded += 1,
                Ok(Sent::Queued) => {}
                other => panic!("unexpected {:?}", other.map_err(|Full(item)| item.value)),
            }
        }
        discarded
    });
    let mut received = Vec::new();
    loop {
        match receiver.try_recv() {
            Ok(item) => received.push(item.value),
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Closed) => break,
        }
    }
    let discarded = producer.join().unwrap();
    assert_strictly_increasing(&received);
    assert_eq!(received.last(), Some(&(count - 1)));
    assert_eq!(received.len() as u64 + discarded, count);
    // Both sides took part: some items were received, and with one place many were discarded.
    assert!(received.len() > 1 && discarded > 0, "received {}, discarded {discarded}", received.len());
    assert_eq!(drops.load(Ordering::Relaxed) as u64, count);
    let stats = receiver.stats();
    assert_eq!(
        (stats.offered, stats.received, stats.dropped, stats.queued),
        (count, received.len() as u64, discarded, 0)
    );
}

/// The waiting protocol across threads, with `park` standing in for blocking:
/// register, check, park; progress, take the token, unpark. A lost wake-up
/// shows as a park that ran its whole timeout with nothing to do.
#[test]
fn waiters_are_woken_and_no_wake_up_is_lost() {
    const PRODUCER: u64 = 1;
    const CONSUMER: u64 = 2;
    const TIMEOUT: Duration = Duration::from_secs(2);
    let count = 100_000u64;
    let (sender, receiver) = channel::<u64>(4, Overflow::Block).unwrap();
    let consumer_thread = thread::current();
    let producer = thread::spawn(move || {
        let mut lost = 0;
        for mut item in 0..count {
            loop {
                match sender.try_send(item) {
                    Ok(_) => break,
                    Err(Full(back)) => item = back,
                }
                while !sender.room_or_wait(PRODUCER) {
                    let started = Instant::now();
                    thread::park_timeout(TIMEOUT);
                    lost += u64::from(started.elapsed() >= TIMEOUT);
                }
            }
            if sender.take_waiting_receiver() == Some(CONSUMER) {
                consumer_thread.unpark();
            }
        }
        sender.close();
        if sender.take_waiting_receiver() == Some(CONSUMER) {
            consumer_thread.unpark();
        }
        lost
    });
    let producer_thread = producer.thread().clone();
    let mut next = 0;
    let mut lost = 0;
    loop {
        match receiver.try_recv() {
            Ok(item) => {
                assert_eq!(item, next);
                next += 1;
                if receiver.take_waiting_sender() == Some(PRODUCER) {
                    producer_thread.unpark();
                }
            }
            Err(TryRecvError::Closed) => break,
            Err(TryRecvError::Empty) => {
                while !receiver.item_or_wait(CONSUMER) {
                    let started = Instant::now();
                    thread::park_timeout(TIMEOUT);
                    lost += u64::from(started.elapsed() >= TIMEOUT);
                }
            }
        }
    }
    assert_eq!(next, count);
    assert_eq!((producer.join().unwrap(), lost), (0, 0));
    let stats = receiver.stats();
    assert_eq!((stats.offered, stats.received, stats.dropped), (count, count, 0));
}
