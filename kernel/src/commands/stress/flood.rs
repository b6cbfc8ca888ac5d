//! `stresstest commands`: producer and consumer threads around a bounded queue, the consumer running lines through the real registry.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::AtomicBool;
use core::sync::atomic::Ordering::Relaxed;

use serde_json::json;
use sis_platform::irq_lock::IrqMutex;
use sis_platform::thread::{self, spawn_joinable};
use sis_platform::time;
use sis_sched::ThreadId;
use sis_shell::{ArgValue, Invocation, Outcome, Output, Reply, ShellError};
use sis_stress::{next_interval_ns, next_line, rate_text, FloodConfig, FloodRecorder, FloodReport, Rate};

use super::with_status;
use super::{latency_lines, seed};
use crate::commands::{self, Kernel};
use crate::format;

const PRODUCER_STACK_BYTES: u64 = 32 * 1024;
const CONSUMER_STACK_BYTES: u64 = 64 * 1024;

/// Parses `--rate`: a number of lines per second or `max`.
pub fn parse_rate(text: &str) -> Result<ArgValue, String> {
    if text == "max" {
        return Ok(ArgValue::Str(String::from("max")));
    }
    match text.parse::<u64>() {
        Ok(rate) if (1..=1_000_000).contains(&rate) => Ok(ArgValue::U64(rate)),
        Ok(_) => Err(String::from("rate must be 1..=1000000 lines per second, or max")),
        Err(_) => Err(String::from("expected a number of lines per second or max")),
    }
}

struct Request {
    command: usize,
    line: String,
    offered_ns: u64,
}

struct Shared {
    queue: VecDeque<Request>,
    producer_done: bool,
    consumer_waiter: Option<ThreadId>,
    producer_waiter: Option<ThreadId>,
    recorder: FloodRecorder,
    finished_ns: u64,
}

type SharedState = Arc<IrqMutex<Shared>>;

/// Counts the bytes commands print instead of printing them.
struct CountingSink(u64);

impl Output for CountingSink {
    fn write_str(&mut self, text: &str) {
        self.0 += text.len() as u64;
    }
}

/// The flood configuration from the flags.
pub fn flood_config(args: &sis_shell::ParsedArgs, seed: u64) -> FloodConfig {
    let rate = match args.value("rate") {
        Some(ArgValue::U64(rate)) => Rate::PerSecond(*rate),
        _ => Rate::Max,
    };
    FloodConfig {
        duration_ms: args.u64("duration").unwrap_or(10_000),
        seed,
        rate,
        queue_capacity: args.u64("queue").unwrap_or(64),
        expect_failures: args.switch("expect-failures"),
    }
}

/// `stresstest commands`.
pub fn commands(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let config = flood_config(&invocation.args, seed(&invocation.args));
    let rate = config.rate;
    invocation.progress("=== Command Flood Stress Test ===");
    let offered = match rate {
        Rate::PerSecond(rate) => alloc::format!("{rate} /sec (jitter ±25%)"),
        Rate::Max => String::from("max (as fast as the consumer takes lines)"),
    };
    invocation.progress(&alloc::format!(
        "Duration: {} ms\nRate: {offered}\nQueue: {} lines\nSeed: {}",
        config.duration_ms,
        config.queue_capacity,
        config.seed
    ));
    crate::events::stress_run("commands", config.seed, Some(config.duration_ms), |stress| {
        let report = run(config, kernel.clone(), &mut |line| {
            invocation.progress(line);
            stress.progress();
        })?;
        let human = human(&report);
        let reply = Reply::new(human, json!({ "commands": report }));
        Ok(with_status(reply, report.status, config.expect_failures, || {
            alloc::format!("{} of {} lines dropped, {} failed", report.dropped, report.sent, report.failed)
        }))
    })
}

/// A flood in progress.
pub struct FloodRun {
    config: FloodConfig,
    shared: SharedState,
    start: u64,
    producer: thread::JoinHandle,
    consumer: thread::JoinHandle,
    stop: Arc<AtomicBool>,
}

impl FloodRun {
    /// Starts the producer and consumer threads.
    pub fn start(config: FloodConfig, kernel: Kernel) -> Result<FloodRun, ShellError> {
        let shared: SharedState = Arc::new(IrqMutex::new(Shared {
            queue: VecDeque::with_capacity(config.queue_capacity as usize),
            producer_done: false,
            consumer_waiter: None,
            producer_waiter: None,
            recorder: FloodRecorder::default(),
            finished_ns: 0,
        }));
        let start = time::now_ns();
        let stop = Arc::new(AtomicBool::new(false));
        let producer_stop = Arc::clone(&stop);
        let spawn_error =
            |error| ShellError::new("spawn-failed", alloc::format!("cannot start the flood threads: {error}"));
        let producer_state = Arc::clone(&shared);
        let producer = spawn_joinable("flood-producer", PRODUCER_STACK_BYTES, move || {
            produce(config, &producer_state, start, &producer_stop)
        })
        .map_err(spawn_error)?;
        let consumer_state = Arc::clone(&shared);
        let consumer = spawn_joinable("flood-consumer", CONSUMER_STACK_BYTES, move || consume(&consumer_state, kernel))
            .map_err(spawn_error)?;
        super::FLOOD_PORT.attach(consumer.id as u64);
        Ok(FloodRun { config, shared, start, producer, consumer, stop })
    }

    /// When the flood started.
    pub fn start_ns(&self) -> u64 {
        self.start
    }

    /// Lines sent, processed and dropped so far, and the queue depth.
    pub fn counts(&self) -> (u64, u64, u64, usize) {
        let state = self.shared.lock();
        (state.recorder.sent, state.recorder.processed, state.recorder.dropped, state.queue.len())
    }

    /// Tells the producer to stop offering now, before its duration is up.
    pub fn stop(&self) {
        self.stop.store(true, Relaxed);
    }

    /// Whether both threads have finished (the queue drained).
    pub fn is_finished(&self) -> bool {
        self.producer.is_finished() && self.consumer.is_finished()
    }

    /// Waits for both threads and returns the report.
    pub fn finish(self) -> FloodReport {
        self.producer.join();
        self.consumer.join();
        super::FLOOD_PORT.detach();
        let state = self.shared.lock();
        state.recorder.finish(self.config, state.finished_ns.saturating_sub(self.start))
    }
}

/// Sleeps until `start + duration * tenth / 10`.
pub fn sleep_until_tenth(start: u64, duration_ms: u64, tenth: u64) {
    let due = start + duration_ms.saturating_mul(1_000_000) / 10 * tenth;
    let now = time::now_ns();
    if now < due {
        thread::sleep_ns(due - now);
    }
}

/// Seconds since `start` as `1.2s`.
pub fn elapsed_text(start: u64) -> String {
    let elapsed = time::now_ns().saturating_sub(start);
    alloc::format!("{}.{}s", elapsed / 1_000_000_000, elapsed / 100_000_000 % 10)
}

/// Runs the flood and waits for both threads; prints progress every tenth of the duration.
pub fn run(config: FloodConfig, kernel: Kernel, progress: &mut dyn FnMut(&str)) -> Result<FloodReport, ShellError> {
    let flood = FloodRun::start(config, kernel)?;
    progress("[COMMANDS] Flooding the registry...");
    for tenth in 1..=9u64 {
        sleep_until_tenth(flood.start_ns(), config.duration_ms, tenth);
        let (sent, processed, dropped, depth) = flood.counts();
        progress(&alloc::format!(
            "[COMMANDS] Sent: {} | Processed: {} | Dropped: {} | Queue: {} | Elapsed: {}",
            format::thousands(sent),
            format::thousands(processed),
            format::thousands(dropped),
            depth,
            elapsed_text(flood.start_ns())
        ));
    }
    Ok(flood.finish())
}

fn produce(config: FloodConfig, shared: &SharedState, start: u64, stop: &AtomicBool) {
    let mut rng = sis_stress::StressRng::new(config.seed);
    let end = start + config.duration_ms.saturating_mul(1_000_000);
    let capacity = config.queue_capacity as usize;
    let mut next_offer = start;
    let mut last_offer = 0u64;
    loop {
        let now = time::now_ns();
        if now >= end || stop.load(Relaxed) {
            break;
        }
        // A rate limit set through the flood's port (the meta-agent's output rate limiting).
        let limit = super::FLOOD_PORT.rate_limit();
        if limit > 0 && last_offer > 0 {
            let earliest = last_offer + 1_000_000_000 / limit as u64;
            if now < earliest {
                thread::sleep_ns(earliest.min(end) - now);
                continue;
            }
        }
        if let Rate::PerSecond(_) = config.rate {
            if now < next_offer {
                thread::sleep_ns(next_offer - now);
                continue;
            }
        }
        let (command, line) = next_line(&mut rng);
        if config.rate == Rate::Max {
            // Closed loop: wait for room instead of dropping.
            thread::block_current_until(|| {
                let mut state = shared.lock();
                if state.queue.len() < capacity || time::now_ns() >= end {
                    true
                } else {
                    state.producer_waiter = Some(thread::current_id());
                    false
                }
            });
        }
        let waiter = {
            let mut state = shared.lock();
            state.recorder.sent += 1;
            last_offer = time::now_ns();
            if state.queue.len() < capacity {
                state.queue.push_back(Request { command, line, offered_ns: last_offer });
                state.recorder.max_queue_depth = state.recorder.max_queue_depth.max(state.queue.len() as u64);
            } else {
                state.recorder.dropped += 1;
            }
            state.consumer_waiter.take()
        };
        if let Some(waiter) = waiter {
            thread::wake(waiter);
        }
        if let Rate::PerSecond(rate) = config.rate {
            next_offer += next_interval_ns(&mut rng, rate);
        }
    }
    let waiter = {
        let mut state = shared.lock();
        state.producer_done = true;
        state.consumer_waiter.take()
    };
    if let Some(waiter) = waiter {
        thread::wake(waiter);
    }
}

fn consume(shared: &SharedState, mut kernel: Kernel) {
    let registry = commands::registry();
    let mut sink = CountingSink(0);
    loop {
        thread::block_current_until(|| {
            let mut state = shared.lock();
            if !state.queue.is_empty() || state.producer_done {
                true
            } else {
                state.consumer_waiter = Some(thread::current_id());
                false
            }
        });
        let (request, producer) = {
            let mut state = shared.lock();
            match state.queue.pop_front() {
                Some(request) => (request, state.producer_waiter.take()),
                None => break,
            }
        };
        if let Some(producer) = producer {
            thread::wake(producer);
        }
        let started = time::now_ns();
        let outcome = registry.execute(&mut kernel, request.line.as_bytes(), &mut sink);
        let finished = time::now_ns();
        let mut state = shared.lock();
        let recorder = &mut state.recorder;
        recorder.processed += 1;
        recorder.per_command[request.command] += 1;
        recorder.service.record(finished - started);
        recorder.latency.record(finished - request.offered_ns);
        recorder.output_bytes = sink.0;
        if matches!(outcome, Outcome::Failed { .. }) {
            recorder.failed += 1;
        }
        super::FLOOD_PORT.publish(state.queue.len() as u32, finished - request.offered_ns);
    }
    shared.lock().finished_ns = time::now_ns();
}

/// The human report of a flood.
pub fn human(report: &FloodReport) -> String {
    let offered = match report.config.rate {
        Rate::PerSecond(rate) => alloc::format!("{rate}/s offered"),
        Rate::Max => String::from("max"),
    };
    let mix: alloc::vec::Vec<String> = report
        .mix
        .iter()
        .map(|entry| alloc::format!("{} {}", entry.command, format::thousands(entry.processed)))
        .collect();
    alloc::format!(
        "\n[STRESS TEST] Command flood complete (seed {})\n  Commands sent: {} (accepted {}, dropped {})\n  Commands processed: {} (failed {})\n  Achieved rate: {} ({offered})\n  Max queue depth: {} of {}\n  Output: {}\n\n{}\n{}\n\n  Mix: {}\n\n  Status: {}",
        report.config.seed,
        format::thousands(report.sent),
        format::thousands(report.accepted),
        format::thousands(report.dropped),
        format::thousands(report.processed),
        format::thousands(report.failed),
        rate_text(report.achieved_rate_milli_per_s),
        report.max_queue_depth,
        report.config.queue_capacity,
        format::bytes(report.output_bytes),
        latency_lines("Command (offer to completion)", &report.latency),
        latency_lines("Service", &report.service_time),
        mix.join(", "),
        report.status.label()
    )
}
