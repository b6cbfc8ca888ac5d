//! Channel tests on one thread: exact outcomes against a `VecDeque` model.
//! (Tests with real threads are in `tests/channel_threads.rs`.)

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;

use super::*;

/// What a channel should do, written the obvious way.
#[derive(Debug)]
struct Model {
    capacity: usize,
    overflow: Overflow,
    queue: VecDeque<u32>,
    offered: u64,
    received: u64,
    dropped: u64,
    drained: u64,
    blocked_count: u64,
    blocked_ns: u64,
    high_water: u64,
    closed: bool,
}

impl Model {
    fn new(capacity: usize, overflow: Overflow) -> Self {
        Model {
            capacity,
            overflow,
            queue: VecDeque::new(),
            offered: 0,
            received: 0,
            dropped: 0,
            drained: 0,
            blocked_count: 0,
            blocked_ns: 0,
            high_water: 0,
            closed: false,
        }
    }

    fn send(&mut self, item: u32) -> Result<Sent, u32> {
        let full = self.queue.len() == self.capacity;
        let sent = match (self.closed, full, self.overflow) {
            (true, _, _) | (false, true, Overflow::DropNewest) => {
                self.dropped += 1;
                Sent::DroppedNewest
            }
            (false, true, Overflow::Block) => return Err(item),
            (false, true, Overflow::DropOldest) => {
                self.queue.pop_front();
                self.dropped += 1;
                self.queue.push_back(item);
                Sent::DroppedOldest
            }
            (false, false, _) => {
                self.queue.push_back(item);
                Sent::Queued
            }
        };
        self.offered += 1;
        self.high_water = self.high_water.max(self.queue.len() as u64);
        Ok(sent)
    }

    fn receive(&mut self) -> Result<u32, TryRecvError> {
        match self.queue.pop_front() {
            Some(item) => {
                self.received += 1;
                Ok(item)
            }
            None if self.closed => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }

    fn drain(&mut self) -> usize {
        let count = self.queue.len();
        self.queue.clear();
        self.drained += count as u64;
        self.dropped += count as u64;
        count
    }

    fn stats(&self) -> ChannelStats {
        ChannelStats {
            capacity: self.capacity as u64,
            overflow: self.overflow,
            offered: self.offered,
            received: self.received,
            dropped: self.dropped,
            drained: self.drained,
            blocked_count: self.blocked_count,
            blocked_ns: self.blocked_ns,
            high_water: self.high_water,
            queued: self.queue.len() as u64,
            closed: self.closed,
        }
    }
}

#[derive(Debug, Clone)]
enum Operation {
    Send,
    Receive,
    Drain,
    Blocked(u64),
    Close,
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        12 => Just(Operation::Send),
        10 => Just(Operation::Receive),
        1 => Just(Operation::Drain),
        1 => (0u64..1_000_000).prop_map(Operation::Blocked),
        1 => Just(Operation::Close),
    ]
}

fn policy() -> impl Strategy<Value = Overflow> {
    prop_oneof![Just(Overflow::Block), Just(Overflow::DropNewest), Just(Overflow::DropOldest)]
}

proptest! {
    /// Every outcome, item and counter equals the model's after every operation,
    /// and `offered == received + dropped + queued` throughout.
    #[test]
    fn the_channel_behaves_as_the_model(
        capacity in 1usize..=9,
        overflow in policy(),
        operations in proptest::collection::vec(operation(), 0..400),
    ) {
        let (sender, receiver) = channel::<u32>(capacity, overflow).unwrap();
        let mut model = Model::new(capacity, overflow);
        let mut next = 0u32;
        for operation in operations {
            match operation {
                Operation::Send => {
                    let result = sender.try_send(next).map_err(|Full(item)| item);
                    prop_assert_eq!(result, model.send(next));
                    next += 1;
                }
                Operation::Receive => prop_assert_eq!(receiver.try_recv(), model.receive()),
                Operation::Drain => prop_assert_eq!(receiver.drain(), model.drain()),
                Operation::Blocked(ns) => {
                    sender.add_blocked_ns(ns);
                    model.blocked_count += 1;
                    model.blocked_ns += ns;
                }
                Operation::Close => {
                    sender.close();
                    model.closed = true;
                }
            }
            let stats = sender.stats();
            prop_assert_eq!(stats, model.stats());
            prop_assert_eq!(receiver.stats(), stats);
            prop_assert_eq!(stats.offered, stats.received + stats.dropped + stats.queued);
            prop_assert_eq!(receiver.is_empty(), model.queue.is_empty());
            prop_assert_eq!(sender.is_full(), model.queue.len() == capacity);
        }
    }

    /// Under `block` nothing is lost: whatever comes back as `Full` is offered
    /// again later, and the receiver gets every item once, in order.
    #[test]
    fn block_loses_nothing(capacity in 1usize..=9, pattern in proptest::collection::vec(0usize..12, 1..60)) {
        let (sender, receiver) = channel::<u32>(capacity, Overflow::Block).unwrap();
        let mut next = 0u32;
        let mut received = Vec::new();
        let mut fulls = 0u64;
        // Alternate bursts of sends (retrying the item that came back) and of receives.
        for (round, burst) in pattern.iter().enumerate() {
            if round % 2 == 0 {
                for _ in 0..*burst {
                    match sender.try_send(next) {
                        Ok(sent) => {
                            prop_assert_eq!(sent, Sent::Queued);
                            next += 1;
                        }
                        Err(Full(item)) => {
                            prop_assert_eq!(item, next);
                            fulls += 1;
                        }
                    }
                }
            } else {
                for _ in 0..*burst {
                    if let Ok(item) = receiver.try_recv() {
                        received.push(item);
                    }
                }
            }
        }
        sender.close();
        while let Ok(item) = receiver.try_recv() {
            received.push(item);
        }
        prop_assert_eq!(receiver.try_recv(), Err(TryRecvError::Closed));
        prop_assert_eq!(received, (0..next).collect::<Vec<_>>());
        let stats = receiver.stats();
        prop_assert_eq!((stats.offered, stats.received, stats.dropped), (next as u64, next as u64, 0));
        prop_assert!(fulls == 0 || stats.high_water == capacity as u64);
    }
}

#[test]
fn policies_are_named_as_serialized_and_parse_back() {
    for policy in Overflow::ALL {
        assert_eq!(Overflow::parse(policy.name()), Some(policy));
        assert_eq!(serde_json::to_value(policy).unwrap(), serde_json::Value::from(policy.name()));
    }
    assert_eq!(Overflow::ALL.map(Overflow::name), ["block", "drop-newest", "drop-oldest"]);
    for text in ["", "Block", "drop_newest", "drop-oldest ", "dropoldest"] {
        assert_eq!(Overflow::parse(text), None, "{text:?}");
    }
}

#[test]
fn capacity_is_checked() {
    for requested in [0, MAX_CAPACITY + 1, usize::MAX] {
        let error = channel::<u8>(requested, Overflow::Block).unwrap_err();
        assert_eq!(error, ChannelError::Capacity { requested, max: 65_536 });
        assert_eq!(error.code(), "bad-capacity");
    }
    assert_eq!(channel::<u8>(0, Overflow::Block).unwrap_err().to_string(), "channel capacity 0 is outside 1..=65536");
    for capacity in [1, 3, 64, MAX_CAPACITY] {
        let (sender, _receiver) = channel::<u8>(capacity, Overflow::DropOldest).unwrap();
        assert_eq!(sender.stats().capacity, capacity as u64);
    }
}

/// A lock-free slot holds the item alone; a drop-oldest slot an `Option` of it and its lock.
#[test]
fn slot_bytes_are_those_of_the_ring_the_policy_uses() {
    for overflow in [Overflow::Block, Overflow::DropNewest] {
        assert_eq!(slot_bytes::<u64>(3, overflow), 24);
        assert_eq!(slot_bytes::<[f32; 1024]>(256, overflow), 1 << 20);
    }
    // `Option<u64>` is 16 bytes, the lock's flag pads to 24.
    assert_eq!(slot_bytes::<u64>(3, Overflow::DropOldest), 72);
    for overflow in Overflow::ALL {
        assert_eq!(slot_bytes::<u64>(usize::MAX, overflow), usize::MAX);
    }
}

#[test]
fn items_arrive_in_order_across_many_wraps_of_an_odd_capacity() {
    let (sender, receiver) = channel::<u32>(5, Overflow::Block).unwrap();
    let mut expected = 0;
    for round in 0..1_000u32 {
        let burst = round % 6;
        for offset in 0..burst.min(5) {
            assert_eq!(sender.try_send(round * 10 + offset), Ok(Sent::Queued));
        }
        for offset in 0..burst.min(5) {
            assert_eq!(receiver.try_recv(), Ok(round * 10 + offset));
            expected += 1;
        }
    }
    assert_eq!(receiver.try_recv(), Err(TryRecvError::Empty));
    let stats = receiver.stats();
    assert_eq!((stats.offered, stats.received, stats.queued, stats.high_water), (expected, expected, 0, 5));
}

#[test]
fn block_hands_the_item_back_and_counts_nothing() {
    let (sender, receiver) = channel::<&str>(2, Overflow::Block).unwrap();
    assert_eq!(sender.try_send("a"), Ok(Sent::Queued));
    assert_eq!(sender.try_send("b"), Ok(Sent::Queued));
    assert_eq!(sender.try_send("c"), Err(Full("c")));
    assert!(sender.is_full());
    sender.add_blocked_ns(1_500);
    sender.add_blocked_ns(500);
    let stats = sender.stats();
    assert_eq!((stats.offered, stats.dropped, stats.queued), (2, 0, 2));
    assert_eq!((stats.blocked_count, stats.blocked_ns), (2, 2_000));
    assert_eq!(receiver.try_recv(), Ok("a"));
    assert_eq!(sender.try_send("c"), Ok(Sent::Queued));
    assert_eq!([receiver.try_recv(), receiver.try_recv()], [Ok("b"), Ok("c")]);
}

/// Ten items into three places: drop-newest keeps the first three, drop-oldest the last three.
#[test]
fn drop_policies_keep_exactly_the_items_the_model_says() {
    for (overflow, outcome, survivors) in
        [(Overflow::DropNewest, Sent::DroppedNewest, [0, 1, 2]), (Overflow::DropOldest, Sent::DroppedOldest, [7, 8, 9])]
    {
        let (sender, receiver) = channel::<u32>(3, overflow).unwrap();
        let outcomes: Vec<Sent> = (0..10).map(|item| sender.try_send(item).unwrap()).collect();
        assert_eq!(outcomes[..3], [Sent::Queued; 3]);
        assert_eq!(outcomes[3..], [outcome; 7]);
        let stats = sender.stats();
        assert_eq!((stats.offered, stats.dropped, stats.queued, stats.high_water), (10, 7, 3, 3));
        let received: Vec<u32> = core::iter::from_fn(|| receiver.try_recv().ok()).collect();
        assert_eq!(received, survivors);
        assert_eq!(receiver.stats().received, 3);
    }
}

#[test]
fn high_water_is_the_deepest_the_queue_was() {
    let (sender, receiver) = channel::<u8>(8, Overflow::Block).unwrap();
    for _ in 0..5 {
        sender.try_send(0).unwrap();
    }
    for _ in 0..4 {
        receiver.try_recv().unwrap();
    }
    assert_eq!(sender.stats().high_water, 5);
    for _ in 0..3 {
        sender.try_send(0).unwrap();
    }
    // Four queued now: below the mark of five.
    assert_eq!((sender.stats().high_water, sender.stats().queued), (5, 4));
    for _ in 0..2 {
        sender.try_send(0).unwrap();
    }
    assert_eq!(sender.stats().high_water, 6);
}

#[test]
fn a_closed_channel_delivers_what_is_queued_then_reports_closed() {
    let (sender, receiver) = channel::<u32>(4, Overflow::Block).unwrap();
    sender.try_send(1).unwrap();
    sender.try_send(2).unwrap();
    assert!(!receiver.is_closed());
    sender.close();
    assert!(receiver.is_closed());
    assert!(sender.stats().closed);
    assert_eq!(receiver.try_recv(), Ok(1));
    // A send after the close is discarded and counted, never queued behind the end.
    assert_eq!(sender.try_send(3), Ok(Sent::DroppedNewest));
    assert_eq!(receiver.try_recv(), Ok(2));
    assert_eq!(receiver.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(receiver.try_recv(), Err(TryRecvError::Closed));
    let stats = receiver.stats();
    assert_eq!((stats.offered, stats.received, stats.dropped, stats.queued), (3, 2, 1, 0));
}

#[test]
fn dropping_the_sender_closes_the_channel() {
    let (sender, receiver) = channel::<u32>(4, Overflow::DropNewest).unwrap();
    sender.try_send(7).unwrap();
    assert_eq!(receiver.try_recv(), Ok(7));
    assert_eq!(receiver.try_recv(), Err(TryRecvError::Empty));
    drop(sender);
    assert_eq!(receiver.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn drain_discards_what_is_queued_and_counts_it_as_dropped() {
    let (sender, receiver) = channel::<u32>(4, Overflow::Block).unwrap();
    for item in 0..4 {
        sender.try_send(item).unwrap();
    }
    assert_eq!(receiver.try_recv(), Ok(0));
    assert_eq!(receiver.drain(), 3);
    assert_eq!(receiver.drain(), 0);
    let stats = receiver.stats();
    assert_eq!((stats.offered, stats.received, stats.dropped, stats.drained, stats.queued), (4, 1, 3, 3, 0));
    assert_eq!(sender.try_send(9), Ok(Sent::Queued));
    assert_eq!(receiver.try_recv(), Ok(9));
}

/// Items that count their drops: every item offered is dropped exactly once,
/// whichever way it leaves (received, discarded, drained, left in the ring).
#[derive(Debug)]
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn dropping_the_receiver_drains_and_disconnects() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (sender, receiver) = channel::<Counted>(2, Overflow::Block).unwrap();
    sender.try_send(Counted(drops.clone())).unwrap();
    sender.try_send(Counted(drops.clone())).unwrap();
    assert!(matches!(sender.try_send(Counted(drops.clone())), Err(Full(_))));
    assert_eq!(drops.load(Ordering::Relaxed), 1);
    assert!(!sender.is_disconnected());
    drop(receiver);
    assert!(sender.is_disconnected());
    assert_eq!(drops.load(Ordering::Relaxed), 3);
    // No receiver: under `block` too the item is discarded rather than handed back forever.
    assert!(matches!(sender.try_send(Counted(drops.clone())), Ok(Sent::DroppedNewest)));
    assert_eq!(drops.load(Ordering::Relaxed), 4);
    let stats = sender.stats();
    assert_eq!((stats.offered, stats.received, stats.dropped, stats.drained, stats.queued), (3, 0, 3, 2, 0));
}

#[test]
fn every_item_is_dropped_exactly_once() {
    for overflow in Overflow::ALL {
        let drops = Arc::new(AtomicUsize::new(0));
        let (sender, receiver) = channel::<Counted>(3, overflow).unwrap();
        let mut given_back = 0;
        for _ in 0..10 {
            match sender.try_send(Counted(drops.clone())) {
                Ok(_) => {}
                Err(Full(item)) => {
                    drop(item);
                    given_back += 1;
                }
            }
        }
        drop(receiver.try_recv().unwrap());
        // Seven handed back or discarded, one received; two still queued.
        assert_eq!(drops.load(Ordering::Relaxed), 8, "{overflow:?}");
        drop(sender);
        assert_eq!(drops.load(Ordering::Relaxed), 8, "{overflow:?}");
        // Dropping the receiver drains the two.
        drop(receiver);
        assert_eq!(drops.load(Ordering::Relaxed), 10, "{overflow:?}");
        assert_eq!(given_back, if overflow == Overflow::Block { 7 } else { 0 });
    }
}

#[test]
fn a_waiter_token_is_handed_out_once() {
    let (sender, receiver) = channel::<u8>(1, Overflow::Block).unwrap();
    assert_eq!(sender.take_waiting_receiver(), None);
    assert!(!receiver.item_or_wait(11));
    assert_eq!(sender.try_send(1), Ok(Sent::Queued));
    assert_eq!(sender.take_waiting_receiver(), Some(11));
    assert_eq!(sender.take_waiting_receiver(), None);

    assert!(!sender.room_or_wait(22));
    assert_eq!(receiver.try_recv(), Ok(1));
    assert_eq!(receiver.take_waiting_sender(), Some(22));
    assert_eq!(receiver.take_waiting_sender(), None);

    // Registered while the wait was already over: the token is still handed out (a spurious wake-up).
    assert!(sender.room_or_wait(33));
    assert_eq!(receiver.take_waiting_sender(), Some(33));
    // Token 0 withdraws a registration.
    receiver.wait_as(44);
    receiver.wait_as(0);
    assert_eq!(sender.take_waiting_receiver(), None);
    // A close ends the consumer's wait.
    sender.close();
    assert!(receiver.item_or_wait(55));
}

#[test]
fn both_ends_are_send() {
    fn is_send<T: Send>() {}
    is_send::<Sender<Vec<f32>>>();
    is_send::<Receiver<Vec<f32>>>();
}
