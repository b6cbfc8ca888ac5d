//! The SPSC ring on one thread (exact outcomes) and on two (order, and every item dropped exactly once).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::vec::Vec;

use super::*;

/// Counts its drops, to catch an item dropped twice or never.
#[derive(Debug)]
struct Counted {
    value: u64,
    drops: Arc<AtomicUsize>,
}

impl Counted {
    fn new(value: u64, drops: &Arc<AtomicUsize>) -> Self {
        Counted { value, drops: Arc::clone(drops) }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn items_come_out_in_order_across_many_wraps_of_an_odd_capacity() {
    let (producer, consumer) = ring::<u32, ()>(5, ()).unwrap();
    let mut next_in = 0;
    let mut next_out = 0;
    for round in 0..if cfg!(miri) { 100 } else { 1_000u32 } {
        for _ in 0..round % 7 {
            match producer.push(next_in) {
                Ok(()) => next_in += 1,
                Err(back) => {
                    assert_eq!(back, next_in);
                    assert_eq!(next_in - next_out, 5);
                }
            }
        }
        for _ in 0..round % 5 {
            match consumer.pop() {
                Some(item) => {
                    assert_eq!(item, next_out);
                    next_out += 1;
                }
                None => assert_eq!(next_in, next_out),
            }
        }
        assert_eq!((producer.pushed(), consumer.popped()), (next_in as usize, next_out as usize));
    }
    assert!(next_out > if cfg!(miri) { 100 } else { 1_000 });
}

#[test]
fn a_full_ring_hands_the_item_back_and_an_empty_one_gives_none() {
    let (producer, consumer) = ring::<&str, ()>(2, ()).unwrap();
    assert_eq!(consumer.pop(), None);
    assert!(consumer.is_empty() && !producer.is_full() && producer.has_room());
    assert_eq!(producer.push("a"), Ok(()));
    assert_eq!(producer.push("b"), Ok(()));
    assert!(!producer.has_room());
    assert_eq!(producer.push("c"), Err("c"));
    assert!(producer.is_full() && !consumer.is_empty());
    assert_eq!(consumer.pop(), Some("a"));
    // The producer's cached head still says full; `has_room` reads it again.
    assert_eq!(producer.popped_at_least(), 0);
    assert!(producer.has_room() && !producer.is_full());
    assert_eq!(producer.popped_at_least(), 1);
    assert_eq!(producer.push("c"), Ok(()));
    assert_eq!([consumer.pop(), consumer.pop(), consumer.pop()], [Some("b"), Some("c"), None]);
    assert!(consumer.is_empty());
}

#[test]
fn the_indices_count_what_went_in_and_out() {
    let (producer, consumer) = ring::<u8, u32>(4, 7).unwrap();
    assert_eq!((*producer.shared(), *consumer.shared(), producer.ring().shared()), (7, 7, &7));
    for value in 0..3 {
        producer.push(value).unwrap();
    }
    assert_eq!(consumer.pop(), Some(0));
    let ring = Arc::clone(consumer.ring());
    assert_eq!((ring.capacity(), ring.pushed(), ring.popped()), (4, 3, 1));
    assert_eq!((producer.pushed(), consumer.popped(), consumer.pushed()), (3, 1, 3));
    // The producer's copy of `head` is refreshed only when read.
    assert_eq!(producer.popped_at_least(), 0);
    assert_eq!(producer.popped(), 1);
    assert_eq!(producer.popped_at_least(), 1);
}

#[test]
fn a_ring_of_capacity_zero_is_full_and_empty() {
    let (producer, consumer) = ring::<u64, ()>(0, ()).unwrap();
    assert_eq!(producer.push(9), Err(9));
    assert_eq!(consumer.pop(), None);
    assert!(producer.is_full() && consumer.is_empty());
}

#[test]
fn zero_sized_items_are_counted() {
    let (producer, consumer) = ring::<(), ()>(3, ()).unwrap();
    for _ in 0..3 {
        producer.push(()).unwrap();
    }
    assert_eq!(producer.push(()), Err(()));
    assert_eq!([consumer.pop(), consumer.pop(), consumer.pop(), consumer.pop()], [Some(()), Some(()), Some(()), None]);
}

#[test]
fn a_ring_the_heap_cannot_hold_is_refused() {
    // More bytes than `isize::MAX`: refused by the fallible reservation, not an abort.
    assert!(ring::<[u64; 1024], ()>(usize::MAX / 1024, ()).is_none());
    assert_eq!(slot_bytes::<[u64; 1024]>(16), 16 * 8192);
    assert_eq!(slot_bytes::<[u64; 1024]>(usize::MAX), usize::MAX);
}

#[test]
fn every_item_is_dropped_exactly_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (producer, consumer) = ring::<Counted, ()>(3, ()).unwrap();
    // Wrap once so the queued items straddle the end of the slots.
    for value in 0..2 {
        producer.push(Counted::new(value, &drops)).unwrap();
    }
    for value in 0..2 {
        assert_eq!(consumer.pop().map(|item| item.value), Some(value));
    }
    assert_eq!(drops.load(Ordering::Relaxed), 2);
    for value in 2..5 {
        producer.push(Counted::new(value, &drops)).unwrap();
    }
    // Handed back, not kept: dropped by the caller.
    let back = producer.push(Counted::new(5, &drops)).unwrap_err();
    assert_eq!(back.value, 5);
    drop(back);
    assert_eq!(drops.load(Ordering::Relaxed), 3);
    assert_eq!(consumer.pop().map(|item| item.value), Some(2));
    assert_eq!(drops.load(Ordering::Relaxed), 4);
    // Two queued (3 and 4, in slots 0 and 1 after the wrap); the ring drops them with its last end.
    let ring = Arc::clone(producer.ring());
    drop(producer);
    drop(consumer);
    assert_eq!(drops.load(Ordering::Relaxed), 4);
    drop(ring);
    assert_eq!(drops.load(Ordering::Relaxed), 6);
}

#[test]
fn both_ends_are_send_and_the_ring_is_sync() {
    fn is_send<T: Send>() {}
    fn is_sync<T: Sync>() {}
    is_send::<Producer<Vec<f32>, AtomicUsize>>();
    is_send::<Consumer<Vec<f32>, AtomicUsize>>();
    is_sync::<Ring<Vec<f32>, AtomicUsize>>();
    is_send::<Arc<Ring<Vec<f32>, AtomicUsize>>>();
}

/// A producer and a consumer thread, each yielding on full or empty (the machine may have one free core): every
/// item arrives once and in order, and every item is dropped exactly once,
/// including those left in the ring at the end.
#[test]
fn two_threads_move_every_item_once_and_in_order() {
    const COUNT: u64 = if cfg!(miri) { 500 } else { 200_000 };
    const LEFT: u64 = 5;
    for capacity in [1, 2, 7, 64] {
        let drops = Arc::new(AtomicUsize::new(0));
        let (producer, consumer) = ring::<Counted, ()>(capacity, ()).unwrap();
        let producer_drops = Arc::clone(&drops);
        let sending = thread::spawn(move || {
            for value in 0..COUNT {
                let mut item = Counted::new(value, &producer_drops);
                while let Err(back) = producer.push(item) {
                    item = back;
                    thread::yield_now();
                }
            }
            producer
        });
        let stop = COUNT - LEFT.min(capacity as u64);
        let mut expected = 0;
        while expected < stop {
            match consumer.pop() {
                Some(item) => {
                    assert_eq!(item.value, expected, "capacity {capacity}");
                    expected += 1;
                }
                None => thread::yield_now(),
            }
        }
        let producer = sending.join().unwrap();
        let left = COUNT - stop;
        assert_eq!(drops.load(Ordering::Relaxed) as u64, stop, "capacity {capacity}");
        assert_eq!((producer.pushed() as u64, consumer.popped() as u64), (COUNT, stop));
        drop((producer, consumer));
        assert_eq!(drops.load(Ordering::Relaxed) as u64, stop + left, "capacity {capacity}");
    }
}

/// Large items are copied whole: a reader never sees a slot half written.
#[test]
fn two_threads_move_large_items_intact() {
    const COUNT: u64 = if cfg!(miri) { 200 } else { 50_000 };
    let (producer, consumer) = ring::<[u64; 64], ()>(4, ()).unwrap();
    let sending = thread::spawn(move || {
        for value in 0..COUNT {
            let mut item = [value; 64];
            while let Err(back) = producer.push(item) {
                item = back;
                thread::yield_now();
            }
        }
    });
    let mut expected = 0;
    while expected < COUNT {
        match consumer.pop() {
            Some(item) => {
                assert_eq!(item, [expected; 64]);
                expected += 1;
            }
            None => thread::yield_now(),
        }
    }
    sending.join().unwrap();
    assert_eq!(consumer.pop(), None);
}
