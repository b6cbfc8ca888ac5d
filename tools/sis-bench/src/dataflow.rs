//! `bench dataflow`: channel hop cost and throughput, sis-dataflow's channel against rtrb in the same run.
//!
//! Both queues are used the same way: a full or empty queue is retried with
//! a spin-loop hint, and after 64 misses the thread yields. The two threads
//! are pinned, either to two cores (the queue's cache lines travel between
//! them) or both to one (they take turns, as kernel threads on SIS's single
//! CPU do). Every message is checked on arrival (its sequence number), so
//! nothing is measured that did not arrive in order.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

use core_affinity::CoreId;
use sis_dataflow::channel::{channel, Full, Overflow, Receiver, Sender};

use crate::median;

/// Places in every channel of small messages.
const CAPACITY: usize = 1024;
/// Places in every channel of 4 KiB payloads (1 MiB of ring).
const PAYLOAD_CAPACITY: usize = 256;
/// Floats in a payload message: 4 KiB.
const PAYLOAD_FLOATS: usize = 1024;
/// Payload messages per run, against small messages per run.
const PAYLOAD_SHARE: u64 = 8;
/// Target from the dataflow issue: at most the peer's cost.
const RATIO_TARGET: f64 = 1.0;

/// A 4 KiB payload, copied by value into the ring and out of it; its first float is its sequence number.
type Payload = [f32; PAYLOAD_FLOATS];

/// The sending half of a queue under test.
trait Push<T>: Send {
    fn offer(&mut self, item: T) -> Result<(), T>;
}

/// The receiving half of a queue under test.
///
/// `take` hands the item to `consume` inside the match on the queue's own
/// result, the way a consumer uses it: converting each queue's result to a
/// common `Option<T>` first would copy a large item once more wherever the
/// two layouts differ (sis-dataflow's error has two variants, rtrb's one),
/// which measures the adapter, not the queue.
trait Pop<T>: Send {
    fn take<R>(&mut self, consume: impl FnOnce(T) -> R) -> Option<R>;
}

impl<T: Send> Push<T> for Sender<T> {
    #[inline]
    fn offer(&mut self, item: T) -> Result<(), T> {
        self.try_send(item).map(drop).map_err(|Full(item)| item)
    }
}

impl<T: Send> Pop<T> for Receiver<T> {
    #[inline]
    fn take<R>(&mut self, consume: impl FnOnce(T) -> R) -> Option<R> {
        match self.try_recv() {
            Ok(item) => Some(consume(item)),
            Err(_) => None,
        }
    }
}

/// sis-dataflow's channel with the waiting protocol's checks after every
/// send and receive, as kernel threads run it (here nobody ever registers).
struct Waking<E>(E);

impl<T: Send> Push<T> for Waking<Sender<T>> {
    #[inline]
    fn offer(&mut self, item: T) -> Result<(), T> {
        let result = self.0.offer(item);
        black_box(self.0.take_waiting_receiver());
        result
    }
}

impl<T: Send> Pop<T> for Waking<Receiver<T>> {
    #[inline]
    fn take<R>(&mut self, consume: impl FnOnce(T) -> R) -> Option<R> {
        let taken = self.0.take(consume);
        black_box(self.0.take_waiting_sender());
        taken
    }
}

impl<T: Send> Push<T> for rtrb::Producer<T> {
    #[inline]
    fn offer(&mut self, item: T) -> Result<(), T> {
        self.push(item).map_err(|rtrb::PushError::Full(item)| item)
    }
}

impl<T: Send> Pop<T> for rtrb::Consumer<T> {
    #[inline]
    fn take<R>(&mut self, consume: impl FnOnce(T) -> R) -> Option<R> {
        match self.pop() {
            Ok(item) => Some(consume(item)),
            Err(_) => None,
        }
    }
}

/// Retries with a spin-loop hint, then by yielding.
struct Backoff(u32);

impl Backoff {
    #[inline]
    fn snooze(&mut self) {
        self.0 += 1;
        if self.0 < 64 {
            std::hint::spin_loop();
        } else {
            self.0 = 0;
            thread::yield_now();
        }
    }
}

/// A message type: how to make message `sequence` and read its sequence number back.
trait Message: Send + 'static {
    fn make(sequence: u64) -> Self;
    fn sequence(&self) -> u64;
}

impl Message for u64 {
    #[inline]
    fn make(sequence: u64) -> Self {
        sequence
    }
    #[inline]
    fn sequence(&self) -> u64 {
        *self
    }
}

impl Message for Payload {
    #[inline]
    fn make(sequence: u64) -> Self {
        let mut payload = [1.0; PAYLOAD_FLOATS];
        // Exact: runs send fewer than 2^24 payloads.
        payload[0] = sequence as f32;
        payload
    }
    #[inline]
    fn sequence(&self) -> u64 {
        self[0] as u64
    }
}

/// Where the two threads run: the producer's core and the consumer's (this thread's).
#[derive(Clone, Copy)]
struct Placement {
    producer: CoreId,
    consumer: CoreId,
}

/// Nanoseconds per message for `messages` messages from a producer thread to
/// this thread, timed from both threads starting to the last arrival.
fn cross_thread<T: Message>(
    placement: Placement,
    mut producer: impl Push<T> + 'static,
    mut consumer: impl Pop<T>,
    messages: u64,
) -> f64 {
    pin(placement.consumer);
    let start = Arc::new(Barrier::new(2));
    let producer_start = Arc::clone(&start);
    let sending = thread::spawn(move || {
        pin(placement.producer);
        producer_start.wait();
        let mut backoff = Backoff(0);
        for sequence in 0..messages {
            let mut item = T::make(sequence);
            while let Err(back) = producer.offer(item) {
                item = back;
                backoff.snooze();
            }
        }
    });
    start.wait();
    let started = Instant::now();
    let mut backoff = Backoff(0);
    let mut expected = 0;
    while expected < messages {
        // `black_box`: the whole item exists in the consumer's memory. A consumer that read only its first
        // field would let the compiler skip copying the rest out of the ring, for one queue and not the
        // other, depending on inlining.
        match consumer.take(|item| black_box(item).sequence()) {
            Some(sequence) => {
                assert_eq!(sequence, expected, "a message arrived out of order");
                expected += 1;
            }
            None => backoff.snooze(),
        }
    }
    let elapsed = started.elapsed();
    sending.join().expect("the producer thread");
    elapsed.as_nanos() as f64 / messages as f64
}

/// Pins the calling thread to `core`; a figure measured elsewhere would be mislabelled.
fn pin(core: CoreId) {
    if !core_affinity::set_for_current(core) {
        panic!("could not pin a thread to core {}", core.id);
    }
}

/// Nanoseconds per message sent and received by one thread, one message in the queue at a time.
fn same_thread<T: Message>(mut producer: impl Push<T>, mut consumer: impl Pop<T>, messages: u64) -> f64 {
    let started = Instant::now();
    for sequence in 0..messages {
        let sent = producer.offer(black_box(T::make(sequence))).is_ok();
        let received = consumer.take(|item| black_box(item).sequence());
        if !sent || received != Some(sequence) {
            panic!("an uncontended queue lost message {sequence}");
        }
    }
    started.elapsed().as_nanos() as f64 / messages as f64
}

fn sis<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    channel(capacity, Overflow::Block).expect("a valid capacity")
}

/// One measurement: its name, and one run of it for SIS and for the peer.
struct Case {
    name: &'static str,
    unit_bytes: Option<usize>,
    sis: Box<dyn Fn() -> f64>,
    peer: Box<dyn Fn() -> f64>,
}

/// Runs every measurement `repetitions` times, SIS and rtrb alternately first.
pub fn run(repetitions: u32, messages: u64) {
    let payloads = (messages / PAYLOAD_SHARE).max(1);
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let (Some(&first), Some(&second)) = (cores.first(), cores.get(1)) else {
        println!("bench dataflow needs two cores to pin its threads to; found {}", cores.len());
        return;
    };
    let two_cores = Placement { producer: second, consumer: first };
    let one_core = Placement { producer: first, consumer: first };
    let cases = [
        Case {
            name: "two cores, u64",
            unit_bytes: None,
            sis: Box::new(move || {
                let (sender, receiver) = sis::<u64>(CAPACITY);
                cross_thread(two_cores, sender, receiver, messages)
            }),
            peer: Box::new(move || {
                let (producer, consumer) = rtrb::RingBuffer::<u64>::new(CAPACITY);
                cross_thread(two_cores, producer, consumer, messages)
            }),
        },
        Case {
            name: "two cores, u64, wake checks",
            unit_bytes: None,
            sis: Box::new(move || {
                let (sender, receiver) = sis::<u64>(CAPACITY);
                cross_thread(two_cores, Waking(sender), Waking(receiver), messages)
            }),
            peer: Box::new(move || {
                let (producer, consumer) = rtrb::RingBuffer::<u64>::new(CAPACITY);
                cross_thread(two_cores, producer, consumer, messages)
            }),
        },
        Case {
            name: "two cores, 4 KiB",
            unit_bytes: Some(size_of::<Payload>()),
            sis: Box::new(move || {
                let (sender, receiver) = sis::<Payload>(PAYLOAD_CAPACITY);
                cross_thread(two_cores, sender, receiver, payloads)
            }),
            peer: Box::new(move || {
                let (producer, consumer) = rtrb::RingBuffer::<Payload>::new(PAYLOAD_CAPACITY);
                cross_thread(two_cores, producer, consumer, payloads)
            }),
        },
        Case {
            name: "one core, u64",
            unit_bytes: None,
            sis: Box::new(move || {
                let (sender, receiver) = sis::<u64>(CAPACITY);
                cross_thread(one_core, sender, receiver, messages)
            }),
            peer: Box::new(move || {
                let (producer, consumer) = rtrb::RingBuffer::<u64>::new(CAPACITY);
                cross_thread(one_core, producer, consumer, messages)
            }),
        },
        Case {
            name: "one thread, u64",
            unit_bytes: None,
            sis: Box::new(move || {
                let (sender, receiver) = sis::<u64>(CAPACITY);
                same_thread::<u64>(sender, receiver, messages)
            }),
            peer: Box::new(move || {
                let (producer, consumer) = rtrb::RingBuffer::<u64>::new(CAPACITY);
                same_thread(producer, consumer, messages)
            }),
        },
    ];
    println!(
        "channel hop cost: sis-dataflow channel (block) vs rtrb 0.4, {messages} u64 messages per run \
         ({payloads} of 4 KiB), {repetitions} repetitions"
    );
    println!(
        "(capacity {CAPACITY}, {PAYLOAD_CAPACITY} for 4 KiB payloads, which are [f32; {PAYLOAD_FLOATS}] copied into and out of the ring; \
         \"one core\": both threads pinned to one core, taking turns; \"one thread\": send then receive, one message queued; \
         \"wake checks\": SIS also takes the waiter token after every send and receive, as kernel threads do)"
    );
    let mut results: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); cases.len()];
    for repetition in 1..=repetitions {
        println!("  run {repetition:>2}:");
        for (case, (sis_runs, peer_runs)) in cases.iter().zip(results.iter_mut()) {
            // Alternate which queue goes first, so drift on a shared machine hits both.
            let (sis_ns, peer_ns) = if repetition % 2 == 1 {
                let sis_ns = (case.sis)();
                (sis_ns, (case.peer)())
            } else {
                let peer_ns = (case.peer)();
                ((case.sis)(), peer_ns)
            };
            println!(
                "    {:<30} sis {sis_ns:8.2} ns/msg   rtrb {peer_ns:8.2} ns/msg   ratio {:.2}",
                case.name,
                sis_ns / peer_ns
            );
            sis_runs.push(sis_ns);
            peer_runs.push(peer_ns);
        }
    }
    println!(
        "\n  {:<30} {:>12} {:>12} {:>12} {:>12} {:>7}",
        "median", "sis ns/msg", "rtrb ns/msg", "sis", "rtrb", "ratio"
    );
    for (case, (sis_runs, peer_runs)) in cases.iter().zip(results.iter_mut()) {
        let (sis_ns, peer_ns) = (median(sis_runs), median(peer_runs));
        let rate = |ns: f64| match case.unit_bytes {
            Some(bytes) => format!("{:.0} MiB/s", bytes as f64 / ns * 1e9 / (1 << 20) as f64),
            None => format!("{:.1} M/s", 1e3 / ns),
        };
        let ratio = sis_ns / peer_ns;
        println!(
            "  {:<30} {sis_ns:>12.2} {peer_ns:>12.2} {:>12} {:>12} {ratio:>7.2}",
            case.name,
            rate(sis_ns),
            rate(peer_ns)
        );
    }
    let verdicts: Vec<String> = cases
        .iter()
        .zip(results.iter_mut())
        .map(|(case, (sis_runs, peer_runs))| {
            let ratio = median(sis_runs) / median(peer_runs);
            format!("{} {}", case.name, if ratio <= RATIO_TARGET { "met" } else { "NOT met" })
        })
        .collect();
    println!("target ratio <= {RATIO_TARGET:.1}: {}", verdicts.join(", "));
}
