//! `stresstest redteam`: the red-team engine against the kernel's real interfaces.
//!
//! Lines go through the kernel's own command table (`commands::registry()`)
//! run as a caller without capabilities (or with only `files` for path
//! attacks); overlong lines through the console's line editor; allocations to
//! the heap, the frame allocator and a budgeted pool; thread bombs and
//! deadline floods to `thread::spawn` and CBS admission; malformed frames into
//! the network stack's receive path at the fault injector; the hostile example
//! WebAssembly agents into a sandbox of their own under seeded limits. Health after every
//! attempt: the registry answers `version`, the idle, shell and network
//! threads exist, no shutdown is pending, and the stack answers an ARP request
//! and a ping from the attacker.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;
use sis_mm::{MemoryKind, Pool, PoolError};
use sis_platform::memory::{self, KernelFrames};
use sis_platform::thread::{self, JoinHandle, SpawnError};
use sis_platform::time::{self, PlatformClock};
use sis_sched::ServerParams;
use sis_shell::{Capabilities, EditEvent, Invocation, LineEditor, Outcome, Registry, Reply, ShellError};
use sis_stress::redteam::{
    packets, run_redteam, Attack, Caller, FlagTarget, HostileAgent, NumericTarget, RedTeamConfig, RedTeamReport,
    RedTeamTarget, Resources, Surface, Verdict,
};

use super::super::files::FILES;
use super::super::net::link::{self, with_net};
use super::super::Kernel;
use super::Discard;
use crate::format;

/// Stack of the threads a thread bomb or deadline flood starts.
const BOMB_STACK_BYTES: u64 = 16 * 1024;
/// Yields to wait for ended threads to be reaped before giving up (the leak check then reports them).
const REAP_YIELDS: u32 = 1_000;

/// `stresstest redteam`.
pub(super) fn redteam(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let config = RedTeamConfig {
        duration_ms: invocation.args.u64("duration").unwrap_or(5_000),
        seed: super::seed(&invocation.args),
    };
    let expect_failures = invocation.args.switch("expect-failures");
    invocation.progress(&alloc::format!(
        "=== Red Team ===\nDuration: {} ms\nSeed: {}\nNetwork device: {}",
        config.duration_ms,
        config.seed,
        if link::attached() { "attached" } else { "none (malformed-packets is skipped)" }
    ));
    crate::events::stress_run("redteam", config.seed, Some(config.duration_ms), |stress| {
        let mut target = KernelTarget { registry: super::super::registry(), kernel };
        let report = run_redteam(&config, &mut target, &PlatformClock, &mut |line| {
            invocation.progress(line);
            stress.progress();
        });
        let human = human(&report);
        let reply = Reply::new(human, json!({ "redteam": report }));
        Ok(super::with_status(reply, report.status, expect_failures, || {
            alloc::format!(
                "{} accepted, {} wrong error, {} crashed, {} leaked, {} skipped of {} attacks",
                report.totals.accepted,
                report.totals.rejected_unexpected,
                report.totals.crashed,
                report.totals.leaked,
                report.totals.skipped,
                report.totals.attempts
            )
        }))
    })
}

struct KernelTarget<'a> {
    registry: Registry<Kernel>,
    kernel: &'a mut Kernel,
}

fn rejected(code: &'static str) -> Verdict {
    Verdict::Rejected(code)
}

fn spawn_code(error: SpawnError) -> &'static str {
    match error {
        SpawnError::TooManyThreads => "thread-limit",
        SpawnError::OutOfMemory => "out-of-memory",
        SpawnError::StackTooLarge => "stack-too-large",
        SpawnError::Admission(_) => "admission-refused",
    }
}

impl KernelTarget<'_> {
    fn run_line(&mut self, line: &[u8], caller: Capabilities) -> Verdict {
        match self.registry.execute_as(self.kernel, line, &mut Discard, caller) {
            Outcome::Ok => Verdict::Accepted,
            Outcome::Failed { code } => rejected(code),
            Outcome::Empty => rejected("empty"),
        }
    }

    /// Starts threads that wait for `stop` until one is refused or `count` run; ends them all.
    fn flood(&mut self, count: u64, server: Option<ServerParams>) -> Verdict {
        let before = thread::snapshot().len();
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles: Vec<JoinHandle> = Vec::new();
        let mut verdict = Verdict::Accepted;
        for _ in 0..count {
            let flag = Arc::clone(&stop);
            let body = move || thread::block_current_until(|| flag.load(Ordering::Acquire));
            let spawned = match server {
                Some(params) => thread::spawn_joinable_deadline("redteam", BOMB_STACK_BYTES, params, body),
                None => thread::spawn_joinable("redteam", BOMB_STACK_BYTES, body),
            };
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(error) => {
                    verdict = rejected(spawn_code(error));
                    break;
                }
            }
        }
        stop.store(true, Ordering::Release);
        for handle in &handles {
            thread::wake(handle.id);
        }
        for handle in handles {
            handle.join();
        }
        wait_for_threads(before);
        verdict
    }

    /// Delivers `frame` at the fault injector and polls the stack; whether anything it sent answers the attacker.
    fn answered(frame: Vec<u8>) -> Result<bool, ShellError> {
        let sent = with_net(|net| {
            net.faults().inject_received(frame);
            net.faults().start_capture();
            net.stack.poll(time::now_ns());
            Ok(net.faults().take_captured())
        })?;
        Ok(sent.iter().any(|frame| packets::is_reply(frame)))
    }
}

/// Yields until at most `threads` threads exist (ended ones are reaped by the snapshot).
fn wait_for_threads(threads: usize) {
    for _ in 0..REAP_YIELDS {
        if thread::snapshot().len() <= threads {
            return;
        }
        thread::yield_now();
    }
}

impl RedTeamTarget for KernelTarget<'_> {
    fn surface(&mut self) -> Surface {
        let (mac, ipv4) = with_net(|net| {
            let config = net.stack.config();
            Ok((config.mac, config.address))
        })
        .unwrap_or(([0; 6], [0; 4]));
        Surface {
            line_limit: crate::shell::MAX_LINE_BYTES,
            restricted: self.registry.restrictions().map(|(path, _)| String::from(path)).collect(),
            plain_commands: alloc::vec!["version", "uptime", "meminfo"],
            numeric: alloc::vec![
                NumericTarget { prefix: "sleep", min: 1, max: 3_600_000 },
                NumericTarget { prefix: "netctl ping 10.0.2.2 --count", min: 1, max: 100 },
                NumericTarget { prefix: "netctl ping 10.0.2.2 --size", min: 0, max: 1024 },
            ],
            flags: alloc::vec![
                FlagTarget { command: "netctl ping 10.0.2.2", flag: "count", value: "1" },
                FlagTarget { command: "netctl ping 10.0.2.2", flag: "timeout-ms", value: "10" },
            ],
            ram_bytes: self.kernel.memory_regions.iter().map(|region| region.size).sum(),
            max_threads: thread::MAX_THREADS as u64,
            max_order: sis_mm::MAX_ORDER as u32,
            mac,
            ipv4,
        }
    }

    fn deliver(&mut self, attack: &Attack) -> Verdict {
        match attack {
            Attack::Typed { bytes } => {
                let mut editor = LineEditor::new(crate::shell::MAX_LINE_BYTES);
                match bytes.iter().chain(b"\r").find_map(|&byte| editor.feed(byte, &mut Discard)) {
                    Some(EditEvent::TooLong { length }) => rejected(editor.too_long_error(length).code()),
                    Some(EditEvent::Line(line)) => self.run_line(&line, Capabilities::NONE),
                    Some(EditEvent::Cancelled) | None => rejected("cancelled"),
                }
            }
            Attack::Line { caller, bytes } => {
                let capabilities = match caller {
                    Caller::Nobody => Capabilities::NONE,
                    Caller::Files => Capabilities::FILES,
                };
                self.run_line(bytes, capabilities)
            }
            Attack::HeapAllocation { bytes } => {
                let mut buffer: Vec<u8> = Vec::new();
                match usize::try_from(*bytes).ok().map(|bytes| buffer.try_reserve_exact(bytes)) {
                    Some(Ok(())) => Verdict::Accepted,
                    _ => rejected("out-of-memory"),
                }
            }
            Attack::FrameAllocation { order } => match memory::allocate_frames(*order as usize) {
                Some(address) => {
                    memory::free_frames(address, *order as usize);
                    Verdict::Accepted
                }
                None => rejected("out-of-memory"),
            },
            Attack::PoolAllocation { budget_bytes, bytes } => {
                let mut pool = Pool::new(*budget_bytes);
                match pool.allocate(&mut KernelFrames, *bytes, MemoryKind::Unreclaimable) {
                    Ok(handle) => {
                        // A handle just handed out by this pool is always freed.
                        let _ = pool.free(&mut KernelFrames, handle);
                        Verdict::Accepted
                    }
                    Err(PoolError::InvalidSize { .. }) => rejected("invalid-size"),
                    Err(error) if error.is_out_of_memory() => rejected("out-of-memory"),
                    Err(_) => rejected("pool-error"),
                }
            }
            Attack::ThreadBomb { threads } => self.flood(*threads, None),
            Attack::HugeStack { bytes } => {
                let before = thread::snapshot().len();
                match thread::spawn("redteam", *bytes, || {}) {
                    Ok(_) => {
                        wait_for_threads(before);
                        Verdict::Accepted
                    }
                    Err(error) => rejected(spawn_code(error)),
                }
            }
            Attack::DeadlineFlood { servers, budget_ns, period_ns } => {
                let params = ServerParams { budget_ns: *budget_ns, period_ns: *period_ns, deadline_ns: *period_ns };
                self.flood(*servers, Some(params))
            }
            Attack::Agent { agent, limit } => {
                let limit_u32 = u32::try_from(*limit).unwrap_or(u32::MAX);
                let defaults = sis_agents::sandbox::Limits::default();
                let limits = match agent {
                    HostileAgent::Spin => sis_agents::sandbox::Limits { fuel_total: *limit, ..defaults },
                    HostileAgent::MemoryBomb => sis_agents::sandbox::Limits { memory_pages: limit_u32, ..defaults },
                    HostileAgent::CapViolator => sis_agents::sandbox::Limits { max_denials: limit_u32, ..defaults },
                    HostileAgent::Malformed => {
                        sis_agents::sandbox::Limits { max_protocol_errors: limit_u32, ..defaults }
                    }
                };
                match super::super::agentsys::hostile_run(agent.name(), limits, self.kernel) {
                    "finished" | "still-running" => Verdict::Accepted,
                    code => rejected(code),
                }
            }
            Attack::Frame { bytes } => {
                if !link::attached() {
                    return Verdict::Skipped("no network device attached");
                }
                match Self::answered(bytes.clone()) {
                    Ok(true) => Verdict::Accepted,
                    Ok(false) => rejected("dropped"),
                    Err(error) => Verdict::Rejected(error.code()),
                }
            }
        }
    }

    fn resources(&mut self) -> Resources {
        let threads = thread::snapshot().len() as u64;
        let (utilization_ppm, _) = thread::utilization();
        let (vfs_nodes, vfs_bytes) = {
            let files = FILES.lock();
            (files.node_count(), files.used_bytes())
        };
        let net_idle_sockets = with_net(|net| Ok(net.stack.idle_echo_sockets())).unwrap_or(0);
        let stats = memory::stats();
        Resources {
            heap_used_bytes: stats.heap_used_bytes,
            heap_allocations: stats.heap_allocation_count,
            memory_pages: stats.frames.free_frames as u64 + stats.heap_claimed_bytes / sis_mm::PAGE_SIZE,
            threads,
            utilization_ppm,
            vfs_nodes,
            vfs_bytes,
            net_idle_sockets,
        }
    }

    fn pause(&mut self) {
        thread::sleep_ns(5_000_000);
    }

    fn health(&mut self) -> Result<(), String> {
        let version = self.registry.execute_as(self.kernel, b"version", &mut Discard, Capabilities::NONE);
        if version != Outcome::Ok {
            return Err(alloc::format!("the registry did not answer version: {version:?}"));
        }
        if self.kernel.shutdown_requested {
            return Err(String::from("a shutdown is pending"));
        }
        let names: Vec<String> = thread::snapshot().into_iter().map(|info| info.name).collect();
        let attached = link::attached();
        for needed in ["idle", "shell", "net"] {
            if (needed != "net" || attached) && !names.iter().any(|name| name == needed) {
                return Err(alloc::format!("the {needed} thread is gone"));
            }
        }
        if !attached {
            return Ok(());
        }
        let ipv4 = with_net(|net| Ok(net.stack.config().address)).map_err(|error| String::from(error.message()))?;
        let mac = with_net(|net| Ok(net.stack.config().mac)).map_err(|error| String::from(error.message()))?;
        if !Self::answered(packets::arp_request(ipv4)).unwrap_or(false) {
            return Err(String::from("the network stack did not answer an ARP request"));
        }
        if !Self::answered(packets::echo_request(mac, ipv4, 0x5254, 1, b"red team health probe")).unwrap_or(false) {
            return Err(String::from("the network stack did not answer a ping"));
        }
        Ok(())
    }
}

/// One line of the table: name, the seven counts, and the survival column.
fn row(name: &str, counts: [u64; 7], survived: &str) -> String {
    let [attempts, rejected, wrong, accepted, crashed, leaked, skipped] = counts.map(format::thousands);
    alloc::format!(
        "\n  {name:20} {attempts:>8} {rejected:>9} {wrong:>11} {accepted:>8} {crashed:>7} {leaked:>6} {skipped:>7}  {survived}"
    )
}

fn human(report: &RedTeamReport) -> String {
    let mut text = alloc::format!(
        "\n[STRESS TEST] Red team complete (seed {})\n  Rounds: {} in {}\n\n  {:20} {:>8} {:>9} {:>11} {:>8} {:>7} {:>6} {:>7}  SURVIVED",
        report.config.seed,
        format::thousands(report.rounds),
        format::milliseconds(report.elapsed_ns),
        "CLASS",
        "ATTEMPTS",
        "REJECTED",
        "WRONG ERROR",
        "ACCEPTED",
        "CRASHED",
        "LEAKED",
        "SKIPPED"
    );
    for class in &report.classes {
        let counts = [
            class.attempts,
            class.rejected_expected,
            class.rejected_unexpected,
            class.accepted,
            class.crashed,
            class.leaked,
            class.skipped,
        ];
        text.push_str(&row(class.class.name(), counts, if class.survived { "yes" } else { "NO" }));
    }
    let totals = &report.totals;
    let counts = [
        totals.attempts,
        totals.rejected_expected,
        totals.rejected_unexpected,
        totals.accepted,
        totals.crashed,
        totals.leaked,
        totals.skipped,
    ];
    text.push_str(&row("total", counts, &alloc::format!("{} of {}", totals.classes_survived, report.classes.len())));
    text.push('\n');
    for class in &report.classes {
        let kinds: Vec<String> =
            class.kinds.iter().map(|kind| alloc::format!("{} {}", kind.code, kind.count)).collect();
        text.push_str(&alloc::format!("\n  {}: {}", class.class.name(), kinds.join(", ")));
        text.push_str(&alloc::format!("\n    expected errors: {}", class.expected_codes.join(", ")));
        if let Some(reason) = &class.skip_reason {
            text.push_str(&alloc::format!("\n    SKIPPED: {reason}"));
        }
        if let Some(failure) = &class.first_failure {
            text.push_str(&alloc::format!("\n    FAILED PROTECTION: {failure}"));
        }
        if let Some(crash) = &class.first_crash {
            text.push_str(&alloc::format!("\n    CRASH: {crash}"));
        }
        if let Some(leak) = &class.first_leak {
            text.push_str(&alloc::format!("\n    LEAKED: {leak}"));
        }
    }
    text.push_str(&alloc::format!(
        "\n\n  A class survives when every attempt was rejected with its expected error, the health probe\n  passed after each, and no resource differed across any attempt (docs/stress.md).\n\n  Status: {}",
        report.status.label()
    ));
    text
}
