//! Red-team host tests: a target built on the real shell registry, line editor, filesystem, buddy allocator,
//! memory pool, CBS admission and smoltcp stack; weakened protections must show as failures.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::Cell;

use sis_hal::Clock;
use sis_mm::{FrameAllocator, MemoryKind, Pool, PoolError};
use sis_net::fake::{Wire, WireEnd};
use sis_net::{FaultInjector, NetConfig, NetStack};
use sis_sched::{CbsEdf, ServerParams};
use sis_shell::{ArgSpec, Capabilities, CommandSpec, EditEvent, Invocation, LineEditor, Outcome, Registry, Reply};
use sis_shell::{Echo, Output, ShellError, ValueKind};
use sis_vfs::Vfs;

use super::*;

#[derive(Debug)]
struct Context {
    files: Vfs,
    shutdown_requested: bool,
}

fn ok(_: &mut Context, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    Ok(Reply::new("ok", serde_json::json!({})))
}

fn echo(_: &mut Context, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    Ok(Reply::new(invocation.args.rest().join(" "), serde_json::json!({})))
}

fn shutdown(context: &mut Context, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    context.shutdown_requested = true;
    Ok(Reply::new("powering off", serde_json::json!({})))
}

fn vfs_error(error: sis_vfs::VfsError) -> ShellError {
    ShellError::new(error.code(), error.to_string())
}

fn path(invocation: &Invocation<'_>) -> String {
    String::from(invocation.args.str("path").unwrap_or("/"))
}

fn ls(context: &mut Context, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    context.files.list(&path(invocation)).map_err(vfs_error)?;
    Ok(Reply::default())
}

fn cat(context: &mut Context, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    context.files.read(&path(invocation)).map_err(vfs_error)?;
    Ok(Reply::default())
}

fn mkdir(context: &mut Context, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let parents = invocation.args.switch("parents");
    context.files.mkdir(&path(invocation), parents).map_err(vfs_error)?;
    Ok(Reply::default())
}

fn rm(context: &mut Context, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let recursive = invocation.args.switch("recursive");
    context.files.remove(&path(invocation), recursive).map_err(vfs_error)?;
    Ok(Reply::default())
}

const PATH: ArgSpec = ArgSpec::positional("path", ValueKind::Str, "path").required();

static COMMANDS: [CommandSpec<Context>; 8] = [
    CommandSpec { name: "version", summary: "", description: "", args: &[], subcommands: &[], handler: Some(ok) },
    CommandSpec {
        name: "echo",
        summary: "",
        description: "",
        args: &[ArgSpec::rest("text", "words")],
        subcommands: &[],
        handler: Some(echo),
    },
    CommandSpec {
        name: "sleep",
        summary: "",
        description: "",
        args: &[ArgSpec::positional("ms", ValueKind::U64 { min: 1, max: 3_600_000 }, "ms").required()],
        subcommands: &[],
        handler: Some(ok),
    },
    CommandSpec {
        name: "ping",
        summary: "",
        description: "",
        args: &[ArgSpec::flag("count", ValueKind::U64 { min: 1, max: 100 }, "n").default("4")],
        subcommands: &[],
        handler: Some(ok),
    },
    CommandSpec { name: "ls", summary: "", description: "", args: &[PATH], subcommands: &[], handler: Some(ls) },
    CommandSpec { name: "cat", summary: "", description: "", args: &[PATH], subcommands: &[], handler: Some(cat) },
    CommandSpec {
        name: "mkdir",
        summary: "",
        description: "",
        args: &[ArgSpec::flag("parents", ValueKind::Switch, "parents"), PATH],
        subcommands: &[],
        handler: Some(mkdir),
    },
    CommandSpec {
        name: "rm",
        summary: "",
        description: "",
        args: &[ArgSpec::flag("recursive", ValueKind::Switch, "recursive"), PATH],
        subcommands: &[],
        handler: Some(rm),
    },
];

static SHUTDOWN: CommandSpec<Context> = CommandSpec {
    name: "shutdown",
    summary: "",
    description: "",
    args: &[],
    subcommands: &[],
    handler: Some(shutdown),
};

const LINE_LIMIT: usize = 256;
const MAX_THREADS: u64 = 64;
const RAM_BYTES: u64 = 128 << 20;
const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

struct Sink;

impl Output for Sink {
    fn write_str(&mut self, _: &str) {}
}

impl Echo for Sink {
    fn echo(&mut self, _: &[u8]) {}
}

/// The protections a test may switch off.
#[derive(Clone, Copy, Default)]
struct Weakened {
    /// `shutdown` is not restricted (though the surface still lists it as restricted).
    shutdown_unrestricted: bool,
    /// The line editor has no real limit (though the surface claims one).
    no_line_limit: bool,
    /// The thread bomb's threads are not all ended.
    threads_leak: bool,
    /// The health probe fails from this attempt on.
    dies_after: Option<u64>,
    /// No network device.
    no_network: bool,
    /// After each attempt, this many readings show one thread more (another thread's, ending by itself).
    transient_reads: u32,
    /// The sandbox enforces no limit: every hostile agent runs to its end.
    agents_unlimited: bool,
}

struct FakeTarget {
    registry: Registry<Context>,
    context: Context,
    weakened: Weakened,
    frames: FrameAllocator<'static>,
    threads: u64,
    policy: CbsEdf,
    stack: NetStack<FaultInjector<WireEnd>>,
    _peer: WireEnd,
    now_ns: u64,
    deliveries: u64,
    /// Readings left that show the transient thread.
    transient_left: u32,
    /// Pauses asked for.
    pauses: u64,
}

impl FakeTarget {
    fn new(weakened: Weakened) -> Self {
        let mut registry = Registry::new();
        for command in COMMANDS.iter().chain([&SHUTDOWN]) {
            registry.register(command).unwrap();
        }
        registry.restrict("mkdir", Capabilities::FILES).unwrap();
        registry.restrict("rm", Capabilities::FILES).unwrap();
        if !weakened.shutdown_unrestricted {
            registry.restrict("shutdown", Capabilities::ADMIN).unwrap();
        }
        let (ours, peer) = Wire::new();
        FakeTarget {
            registry,
            context: Context { files: Vfs::new(1 << 20), shutdown_requested: false },
            weakened,
            frames: crate::test_support::frames(),
            threads: 3,
            policy: CbsEdf::new(950_000, 10_000_000, MAX_THREADS as usize),
            stack: NetStack::new(FaultInjector::new(ours), NetConfig::qemu_user(MAC), 0),
            _peer: peer,
            now_ns: 0,
            deliveries: 0,
            transient_left: 0,
            pauses: 0,
        }
    }

    fn outcome(outcome: Outcome) -> Verdict {
        match outcome {
            Outcome::Ok => Verdict::Accepted,
            Outcome::Failed { code } => Verdict::Rejected(code),
            Outcome::Empty => Verdict::Rejected("empty"),
        }
    }

    /// Delivers `frame` and polls the stack; whether anything it sent answers the attacker.
    fn answered(&mut self, frame: Vec<u8>) -> bool {
        self.now_ns += 1_000_000;
        let faults = self.stack.io_mut();
        faults.inject_received(frame);
        faults.start_capture();
        self.stack.poll(self.now_ns);
        self.stack.io_mut().take_captured().iter().any(|sent| packets::is_reply(sent))
    }
}

impl RedTeamTarget for FakeTarget {
    fn surface(&mut self) -> Surface {
        Surface {
            line_limit: LINE_LIMIT,
            restricted: alloc::vec![String::from("shutdown"), String::from("mkdir"), String::from("rm")],
            plain_commands: alloc::vec!["version"],
            numeric: alloc::vec![
                NumericTarget { prefix: "sleep", min: 1, max: 3_600_000 },
                NumericTarget { prefix: "ping --count", min: 1, max: 100 },
            ],
            flags: alloc::vec![FlagTarget { command: "ping", flag: "count", value: "3" }],
            ram_bytes: RAM_BYTES,
            max_threads: MAX_THREADS,
            max_order: sis_mm::MAX_ORDER as u32,
            mac: MAC,
            ipv4: [10, 0, 2, 15],
        }
    }

    fn deliver(&mut self, attack: &Attack) -> Verdict {
        self.deliveries += 1;
        // The reading before the attack is already taken: the transient thread shows from the reading after it.
        self.transient_left = self.weakened.transient_reads;
        match attack {
            Attack::Typed { bytes } => {
                let limit = if self.weakened.no_line_limit { usize::MAX } else { LINE_LIMIT };
                let mut editor = LineEditor::new(limit);
                let event = bytes.iter().chain(b"\r").find_map(|&byte| editor.feed(byte, &mut Sink));
                match event {
                    Some(EditEvent::TooLong { length }) => Verdict::Rejected(editor.too_long_error(length).code()),
                    Some(EditEvent::Line(line)) => {
                        Self::outcome(self.registry.execute_as(&mut self.context, &line, &mut Sink, Capabilities::NONE))
                    }
                    _ => Verdict::Rejected("cancelled"),
                }
            }
            Attack::Line { caller, bytes } => {
                let capabilities = match caller {
                    Caller::Nobody => Capabilities::NONE,
                    Caller::Files => Capabilities::FILES,
                };
                Self::outcome(self.registry.execute_as(&mut self.context, bytes, &mut Sink, capabilities))
            }
            Attack::HeapAllocation { bytes } if *bytes > RAM_BYTES => Verdict::Rejected("out-of-memory"),
            Attack::HeapAllocation { .. } => Verdict::Accepted,
            Attack::FrameAllocation { order } => match self.frames.allocate(*order as usize) {
                Ok(address) => {
                    self.frames.free(address, *order as usize).unwrap();
                    Verdict::Accepted
                }
                Err(_) => Verdict::Rejected("out-of-memory"),
            },
            Attack::PoolAllocation { budget_bytes, bytes } => {
                let mut pool = Pool::new(*budget_bytes);
                match pool.allocate(&mut self.frames, *bytes, MemoryKind::Unreclaimable) {
                    Ok(handle) => {
                        pool.free(&mut self.frames, handle).unwrap();
                        Verdict::Accepted
                    }
                    Err(PoolError::InvalidSize { .. }) => Verdict::Rejected("invalid-size"),
                    Err(error) if error.is_out_of_memory() => Verdict::Rejected("out-of-memory"),
                    Err(_) => Verdict::Rejected("pool-error"),
                }
            }
            Attack::ThreadBomb { threads } => {
                let before = self.threads;
                let mut started = 0;
                let verdict = loop {
                    if started == *threads {
                        break Verdict::Accepted;
                    }
                    if self.threads >= MAX_THREADS {
                        break Verdict::Rejected("thread-limit");
                    }
                    self.threads += 1;
                    started += 1;
                };
                self.threads = if self.weakened.threads_leak { before + 1 } else { before };
                verdict
            }
            Attack::HugeStack { bytes } => match sis_mm::order_for_pages(bytes.div_ceil(sis_mm::PAGE_SIZE)) {
                Some(_) => Verdict::Accepted,
                None => Verdict::Rejected("stack-too-large"),
            },
            Attack::DeadlineFlood { servers, budget_ns, period_ns } => {
                let params = ServerParams { budget_ns: *budget_ns, period_ns: *period_ns, deadline_ns: *period_ns };
                let mut admitted = Vec::new();
                let mut verdict = Verdict::Accepted;
                for id in 0..*servers as u32 {
                    match self.policy.admit(1000 + id, params, self.now_ns) {
                        Ok(()) => admitted.push(1000 + id),
                        Err(_) => {
                            verdict = Verdict::Rejected("admission-refused");
                            break;
                        }
                    }
                }
                for id in admitted {
                    self.policy.release(id, self.now_ns);
                }
                verdict
            }
            Attack::Agent { .. } if self.weakened.agents_unlimited => Verdict::Accepted,
            // The fake models the sandbox's documented stops; the kernel runs the real modules (QEMU test).
            Attack::Agent { agent, .. } => Verdict::Rejected(agent.expected_stop()),
            Attack::Frame { .. } if self.weakened.no_network => Verdict::Skipped("no network device"),
            Attack::Frame { bytes } => {
                if self.answered(bytes.clone()) {
                    Verdict::Accepted
                } else {
                    Verdict::Rejected("dropped")
                }
            }
        }
    }

    fn resources(&mut self) -> Resources {
        let transient = u64::from(self.transient_left > 0);
        self.transient_left = self.transient_left.saturating_sub(1);
        Resources {
            memory_pages: self.frames.stats().free_frames as u64,
            threads: self.threads + transient,
            utilization_ppm: self.policy.utilization_ppm(),
            vfs_nodes: self.context.files.node_count(),
            vfs_bytes: self.context.files.used_bytes(),
            net_idle_sockets: self.stack.idle_echo_sockets(),
            ..Resources::default()
        }
    }

    fn pause(&mut self) {
        self.pauses += 1;
    }

    fn health(&mut self) -> Result<(), String> {
        if self.weakened.dies_after.is_some_and(|after| self.deliveries > after) {
            return Err(String::from("the registry stopped answering"));
        }
        let version = self.registry.execute_as(&mut self.context, b"version", &mut Sink, Capabilities::NONE);
        if version != Outcome::Ok {
            return Err(alloc::format!("version: {version:?}"));
        }
        if self.context.shutdown_requested {
            return Err(String::from("a shutdown was requested"));
        }
        if self.weakened.no_network {
            return Ok(());
        }
        if !self.answered(packets::arp_request([10, 0, 2, 15])) {
            return Err(String::from("no ARP reply"));
        }
        if !self.answered(packets::echo_request(MAC, [10, 0, 2, 15], 1, 1, b"probe")) {
            return Err(String::from("no echo reply"));
        }
        Ok(())
    }
}

/// A clock that moves 1 ms at every reading.
struct StepClock(Cell<u64>);

impl Clock for StepClock {
    fn now_ns(&self) -> u64 {
        self.0.set(self.0.get() + 1_000_000);
        self.0.get()
    }
}

fn run(seed: u64, weakened: Weakened) -> RedTeamReport {
    run_with_target(seed, weakened).0
}

fn run_with_target(seed: u64, weakened: Weakened) -> (RedTeamReport, FakeTarget) {
    let mut target = FakeTarget::new(weakened);
    let report =
        run_redteam(&RedTeamConfig { duration_ms: 400, seed }, &mut target, &StepClock(Cell::new(0)), &mut |_| {});
    (report, target)
}

#[test]
fn a_difference_that_passes_within_the_settle_reads_is_not_a_leak_and_one_that_stays_is() {
    let (report, target) = run_with_target(7, Weakened { transient_reads: SETTLE_READS - 1, ..Weakened::default() });
    assert_eq!(report.totals.leaked, 0, "{:?}", report.totals);
    assert_eq!(report.status, Status::Pass);
    assert_eq!(target.pauses, report.totals.attempts * u64::from(SETTLE_READS - 1));
    let report = run(7, Weakened { transient_reads: SETTLE_READS, ..Weakened::default() });
    assert_eq!(report.totals.leaked, report.totals.attempts);
    assert_eq!(report.status, Status::Critical);
    // Without a difference no pause is asked for.
    let (_, target) = run_with_target(7, Weakened::default());
    assert_eq!(target.pauses, 0);
}

#[test]
fn every_class_is_rejected_with_its_expected_error_and_nothing_leaks() {
    let report = run(7, Weakened::default());
    for class in &report.classes {
        assert!(class.attempts > 20, "{class:?}");
        assert_eq!(class.rejected_expected, class.attempts, "{class:?}");
        assert_eq!((class.accepted, class.crashed, class.leaked, class.skipped), (0, 0, 0, 0), "{class:?}");
        assert!(class.survived);
    }
    assert_eq!(report.status, Status::Pass);
    assert_eq!(report.totals.classes_survived, 6);
    assert_eq!(report.totals.attempts, report.rounds * 6);
    let kinds = |class| report.class(class).unwrap().kinds.len();
    assert!(kinds(AttackClass::ShellInput) >= 10, "{:?}", report.class(AttackClass::ShellInput));
    assert_eq!(kinds(AttackClass::FilesystemPaths), 7);
    assert_eq!(kinds(AttackClass::ResourceExhaustion), 6);
    assert_eq!(kinds(AttackClass::MalformedPackets), 10);
    assert_eq!(kinds(AttackClass::HostileAgents), 4);
}

#[test]
fn a_seed_replays_exactly_and_another_seed_draws_other_inputs() {
    let first = run(11, Weakened::default());
    assert_eq!(first, run(11, Weakened::default()));
    let other = run(12, Weakened::default());
    for (a, b) in first.classes.iter().zip(&other.classes) {
        assert_ne!(a.input_digest, b.input_digest, "{:?}", a.class);
    }
}

#[test]
fn a_command_missing_its_restriction_is_a_failed_protection() {
    let report = run(7, Weakened { shutdown_unrestricted: true, ..Weakened::default() });
    let privileged = report.class(AttackClass::PrivilegedCommands).unwrap();
    assert!(privileged.accepted > 0, "{privileged:?}");
    assert!(!privileged.survived);
    assert!(privileged.first_failure.as_deref().unwrap().contains("shutdown"), "{privileged:?}");
    // The shutdown it let through also fails the next health probe: counted as a crash, CRITICAL.
    assert!(privileged.crashed > 0);
    assert_eq!(report.status, Status::Critical);
}

#[test]
fn a_line_editor_without_its_limit_is_a_failed_protection() {
    let report = run(7, Weakened { no_line_limit: true, ..Weakened::default() });
    let shell = report.class(AttackClass::ShellInput).unwrap();
    let overlong = shell.kinds.iter().find(|kind| kind.code == "overlong-line").unwrap().count;
    assert!(overlong > 0);
    assert_eq!(shell.accepted, overlong, "every overlong echo line ran: {shell:?}");
    assert!(!shell.survived);
    assert_eq!(report.status, Status::Fail);
    assert_eq!(report.totals.crashed + report.totals.leaked, 0);
}

#[test]
fn leaks_and_crashes_are_counted_and_critical() {
    let report = run(7, Weakened { threads_leak: true, ..Weakened::default() });
    let exhaustion = report.class(AttackClass::ResourceExhaustion).unwrap();
    let bombs = exhaustion.kinds.iter().find(|kind| kind.code == "thread-bomb").unwrap().count;
    assert_eq!(exhaustion.leaked, bombs);
    assert_eq!(exhaustion.leaked_resources, ["threads"]);
    assert_eq!(report.status, Status::Critical);

    let report = run(7, Weakened { dies_after: Some(10), ..Weakened::default() });
    assert_eq!(report.totals.crashed, report.totals.attempts - 10);
    assert_eq!(report.status, Status::Critical);
}

#[test]
fn without_a_network_device_the_packet_class_is_skipped_not_passed() {
    let report = run(7, Weakened { no_network: true, ..Weakened::default() });
    let packets = report.class(AttackClass::MalformedPackets).unwrap();
    assert_eq!(packets.skipped, packets.attempts);
    assert_eq!(packets.skip_reason.as_deref(), Some("no network device"));
    assert!(!packets.survived);
    assert_eq!(report.totals.classes_survived, 5);
    assert_eq!(report.status, Status::PartialPass);
}

#[test]
fn a_sandbox_without_limits_is_a_failed_protection() {
    let report = run(7, Weakened { agents_unlimited: true, ..Weakened::default() });
    let agents = report.class(AttackClass::HostileAgents).unwrap();
    assert_eq!(agents.accepted, agents.attempts);
    assert!(!agents.survived);
    assert_eq!(report.totals.classes_survived, 5);
    assert_eq!(report.status, Status::Fail);
}

#[test]
fn the_stack_answers_well_formed_frames_so_silence_means_dropped() {
    let mut target = FakeTarget::new(Weakened::default());
    assert!(target.answered(packets::arp_request([10, 0, 2, 15])));
    assert!(target.answered(packets::echo_request(MAC, [10, 0, 2, 15], 9, 9, &[7; 100])));
    // Oversize: smoltcp would answer this frame; the device layer drops it first.
    assert!(!target.answered(packets::echo_request(MAC, [10, 0, 2, 15], 9, 10, &[7; 1600])));
    assert_eq!(target.stack.oversize_dropped(), 1);
    assert_eq!(target.stack.io().stats().injected_frames, 3);
}

#[test]
fn the_heap_leaks_only_by_growing_and_every_other_resource_by_any_change() {
    let before =
        Resources { heap_used_bytes: 1_000, heap_allocations: 10, threads: 3, vfs_nodes: 2, ..Resources::default() };
    let freed = Resources { heap_used_bytes: 900, heap_allocations: 9, ..before };
    assert_eq!(before.differences(&freed), []);
    let grown = Resources { heap_used_bytes: 1_001, ..before };
    assert_eq!(before.differences(&grown), [("heap_used_bytes", 1_000, 1_001)]);
    let fewer_threads = Resources { threads: 2, vfs_nodes: 3, ..before };
    assert_eq!(before.differences(&fewer_threads), [("threads", 3, 2), ("vfs_nodes", 2, 3)]);
}
