//! The red team: seeded attacks against the kernel's real interfaces, each checked for the error it must get.
//!
//! Six classes of attack ([`AttackClass`]) are drawn from one seeded
//! generator, so a seed replays the same inputs. Each attempt goes through a
//! [`RedTeamTarget`], which delivers it to a real interface (the shell's line
//! editor and registry, the filesystem, the thread and memory limits, the
//! network stack's receive path) and says what happened. Around every attempt
//! the engine reads the target's [`Resources`] (a leak is any difference) and
//! asks for a health probe (a failed probe counts as a crash). A protection
//! that lets an attack through is reported as a failure, never hidden. Rules
//! and fields: `docs/stress.md`, "Red team".

mod generate;
pub mod packets;
#[cfg(test)]
mod tests;

use alloc::string::String;
use alloc::vec::Vec;

use serde::Serialize;
use sis_hal::Clock;

use crate::{Status, StressRng};

pub use generate::{Attack, Attempt, Caller, FlagTarget, HostileAgent, NumericTarget, Surface};

/// Schema of the `redteam` JSON object.
pub const REDTEAM_SCHEMA_VERSION: u32 = 1;

/// The attack classes, in the order each round runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttackClass {
    /// Shell lines: overlong, control bytes, invalid UTF-8, injection-looking text, numeric overflow, flag fuzzing.
    ShellInput,
    /// Filesystem paths: traversal, huge names and paths, deep nesting, control characters.
    FilesystemPaths,
    /// Restricted commands run by a caller without the capability.
    PrivilegedCommands,
    /// Huge allocations, thread bombs, huge stacks, deadline over-subscription.
    ResourceExhaustion,
    /// Malformed Ethernet frames delivered into the network stack's receive path.
    MalformedPackets,
    /// The hostile example WebAssembly agents run in a sandbox under seeded limits (docs/agents.md).
    HostileAgents,
}

impl AttackClass {
    /// Every class, in run order.
    pub const ALL: [AttackClass; 6] = [
        AttackClass::ShellInput,
        AttackClass::FilesystemPaths,
        AttackClass::PrivilegedCommands,
        AttackClass::ResourceExhaustion,
        AttackClass::MalformedPackets,
        AttackClass::HostileAgents,
    ];

    /// Kebab-case name, as in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            AttackClass::ShellInput => "shell-input",
            AttackClass::FilesystemPaths => "filesystem-paths",
            AttackClass::PrivilegedCommands => "privileged-commands",
            AttackClass::ResourceExhaustion => "resource-exhaustion",
            AttackClass::MalformedPackets => "malformed-packets",
            AttackClass::HostileAgents => "hostile-agents",
        }
    }
}

/// What a target measured of one delivered attack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The interface refused it with this error code.
    Rejected(&'static str),
    /// The interface did what was asked: the protection failed.
    Accepted,
    /// The interface is absent (e.g. no network device); the reason is reported.
    Skipped(&'static str),
}

/// Resource levels read from the target; any difference across one attempt is a leak.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Resources {
    /// Bytes allocated on the heap.
    pub heap_used_bytes: u64,
    /// Live heap allocations.
    pub heap_allocations: u64,
    /// Free page frames plus pages the heap has claimed: constant while nothing leaks frames.
    pub memory_pages: u64,
    /// Threads that exist.
    pub threads: u64,
    /// Admitted deadline utilization, ppm.
    pub utilization_ppm: u64,
    /// Files and directories in the filesystem.
    pub vfs_nodes: u64,
    /// Bytes of file data in the filesystem.
    pub vfs_bytes: u64,
    /// Network sockets in their idle state (echo sockets listening, nothing queued).
    pub net_idle_sockets: u64,
}

impl Resources {
    /// The fields that leaked from `self` (before) to `after`: name, before, after. The heap's bytes and
    /// allocations leak only by growing: less heap afterwards is memory that another thread of a live kernel held
    /// when the first reading was taken and has freed since (an attack cannot leak by freeing). Every other field
    /// leaks by any difference.
    pub fn differences(&self, after: &Resources) -> Vec<(&'static str, u64, u64)> {
        let pairs = [
            ("heap_used_bytes", self.heap_used_bytes, after.heap_used_bytes),
            ("heap_allocations", self.heap_allocations, after.heap_allocations),
            ("memory_pages", self.memory_pages, after.memory_pages),
            ("threads", self.threads, after.threads),
            ("utilization_ppm", self.utilization_ppm, after.utilization_ppm),
            ("vfs_nodes", self.vfs_nodes, after.vfs_nodes),
            ("vfs_bytes", self.vfs_bytes, after.vfs_bytes),
            ("net_idle_sockets", self.net_idle_sockets, after.net_idle_sockets),
        ];
        pairs
            .into_iter()
            .filter(|(name, before, after)| if name.starts_with("heap_") { after > before } else { before != after })
            .collect()
    }
}

/// The interfaces under attack.
pub trait RedTeamTarget {
    /// What the generator may aim at: line limit, restricted commands, numeric arguments, addresses.
    fn surface(&mut self) -> Surface;
    /// Delivers one attack and reports the interface's answer.
    fn deliver(&mut self, attack: &Attack) -> Verdict;
    /// Current resource levels.
    fn resources(&mut self) -> Resources;
    /// Whether the system still answers (registry, threads, network); `Err` says what failed.
    fn health(&mut self) -> Result<(), String>;
    /// Lets other work run for a moment (the kernel sleeps 5 ms) before resources are read again. Does nothing by
    /// default.
    fn pause(&mut self) {}
}

/// Readings after an attempt, [`RedTeamTarget::pause`] apart, before a difference counts as a leak. Other threads
/// of a live kernel allocate and free while an attack runs (the web server building a metrics push is one): a
/// difference that one of these readings no longer shows was theirs and passed; a leak stays.
pub const SETTLE_READS: u32 = 20;

/// Resources after an attempt: the first of up to [`SETTLE_READS`] readings that shows no leak from `before`,
/// else the last.
fn settled<T: RedTeamTarget + ?Sized>(target: &mut T, before: &Resources) -> Resources {
    let mut after = target.resources();
    for _ in 1..SETTLE_READS {
        if before.differences(&after).is_empty() {
            break;
        }
        target.pause();
        after = target.resources();
    }
    after
}

/// Parameters of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RedTeamConfig {
    /// Run time; rounds of one attempt per class continue until it has passed (at least one round).
    pub duration_ms: u64,
    /// Seed of every attack input.
    pub seed: u64,
}

/// A rejection code and how often it was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodeCount {
    /// The error code.
    pub code: String,
    /// Times seen.
    pub count: u64,
}

/// Figures of one class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassReport {
    /// The class.
    pub class: AttackClass,
    /// Attacks delivered (skipped ones included).
    pub attempts: u64,
    /// Refused with the error code the attack must get.
    pub rejected_expected: u64,
    /// Refused, but with another code: the intended protection did not fire.
    pub rejected_unexpected: u64,
    /// Codes of the unexpected rejections.
    pub unexpected_codes: Vec<CodeCount>,
    /// Done as asked: the protection failed.
    pub accepted: u64,
    /// Attempts after which the health probe failed.
    pub crashed: u64,
    /// Attempts after which some resource was not back to its level before.
    pub leaked: u64,
    /// The resources that differed, over every leaking attempt.
    pub leaked_resources: Vec<&'static str>,
    /// The first leaking attempt: its kind and each differing resource, before -> after.
    pub first_leak: Option<String>,
    /// Attempts the target could not deliver (interface absent).
    pub skipped: u64,
    /// Why, when skipped.
    pub skip_reason: Option<String>,
    /// Error codes this class's attacks must get, over the attempts made.
    pub expected_codes: Vec<&'static str>,
    /// Attempts of each kind of attack.
    pub kinds: Vec<CodeCount>,
    /// The first failed health probe, if any.
    pub first_crash: Option<String>,
    /// The first attack that was accepted or got an unexpected code, described.
    pub first_failure: Option<String>,
    /// FNV-1a digest of every input delivered: equal for a replayed seed, different for another.
    pub input_digest: String,
    /// Attempts > 0, none skipped, every one rejected with its expected code, no crash, no leak.
    pub survived: bool,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedTeamReport {
    /// [`REDTEAM_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The configuration.
    pub config: RedTeamConfig,
    /// Rounds completed.
    pub rounds: u64,
    /// Run time, ns of the clock passed in.
    pub elapsed_ns: u64,
    /// One entry per class, in run order.
    pub classes: Vec<ClassReport>,
    /// Sums over the classes.
    pub totals: Totals,
    /// PASS, PARTIAL PASS (a class skipped), FAIL (a protection failed) or CRITICAL (a crash or leak).
    pub status: Status,
}

/// Sums over every class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Attacks delivered.
    pub attempts: u64,
    /// Refused with the expected code.
    pub rejected_expected: u64,
    /// Refused with another code.
    pub rejected_unexpected: u64,
    /// Let through.
    pub accepted: u64,
    /// Followed by a failed health probe.
    pub crashed: u64,
    /// Followed by a resource difference.
    pub leaked: u64,
    /// Not delivered.
    pub skipped: u64,
    /// Classes that survived.
    pub classes_survived: u64,
}

impl RedTeamReport {
    /// The report of `class`.
    pub fn class(&self, class: AttackClass) -> Option<&ClassReport> {
        self.classes.iter().find(|report| report.class == class)
    }
}

/// The status rules, in order: a crash or a leak is CRITICAL; an accepted attack or an unexpected
/// code is FAIL; a skipped class is PARTIAL PASS (not everything was tested); else PASS.
pub fn status_of(classes: &[ClassReport]) -> Status {
    if classes.iter().any(|class| class.crashed > 0 || class.leaked > 0) {
        Status::Critical
    } else if classes.iter().any(|class| class.accepted > 0 || class.rejected_unexpected > 0) {
        Status::Fail
    } else if classes.iter().any(|class| class.skipped > 0 || class.attempts == 0) {
        Status::PartialPass
    } else {
        Status::Pass
    }
}

/// Runs rounds of one attack per class against `target` until `config.duration_ms` has passed.
pub fn run_redteam(
    config: &RedTeamConfig,
    target: &mut dyn RedTeamTarget,
    clock: &dyn Clock,
    progress: &mut dyn FnMut(&str),
) -> RedTeamReport {
    let surface = target.surface();
    let mut random = StressRng::new(config.seed);
    let mut classes: Vec<ClassTally> = AttackClass::ALL.iter().map(|&class| ClassTally::new(class)).collect();
    let started = clock.now_ns();
    let duration_ns = config.duration_ms.saturating_mul(1_000_000);
    let mut rounds = 0u64;
    let mut next_progress_ns = 1_000_000_000u64;
    loop {
        for tally in classes.iter_mut() {
            let attempt = generate::attempt(tally.class, &surface, &mut random);
            let before = target.resources();
            let verdict = target.deliver(&attempt.attack);
            let after = settled(target, &before);
            let health = target.health();
            tally.record(&attempt, verdict, before.differences(&after), health);
        }
        rounds += 1;
        let elapsed = clock.now_ns().saturating_sub(started);
        if elapsed >= next_progress_ns {
            next_progress_ns = next_progress_ns.saturating_add(1_000_000_000);
            let attempts: u64 = classes.iter().map(|tally| tally.report.attempts).sum();
            let failures: u64 = classes.iter().map(|tally| tally.report.accepted + tally.report.crashed).sum();
            progress(&alloc::format!(
                "[REDTEAM] {} s: {rounds} rounds, {attempts} attacks, {failures} let through or crashed",
                elapsed / 1_000_000_000
            ));
        }
        if elapsed >= duration_ns {
            break;
        }
    }
    let classes: Vec<ClassReport> = classes.into_iter().map(ClassTally::finish).collect();
    let mut totals = Totals::default();
    for class in &classes {
        totals.attempts += class.attempts;
        totals.rejected_expected += class.rejected_expected;
        totals.rejected_unexpected += class.rejected_unexpected;
        totals.accepted += class.accepted;
        totals.crashed += class.crashed;
        totals.leaked += class.leaked;
        totals.skipped += class.skipped;
        totals.classes_survived += u64::from(class.survived);
    }
    RedTeamReport {
        schema_version: REDTEAM_SCHEMA_VERSION,
        config: *config,
        rounds,
        elapsed_ns: clock.now_ns().saturating_sub(started),
        status: status_of(&classes),
        classes,
        totals,
    }
}

/// A class's report while the run goes on.
struct ClassTally {
    class: AttackClass,
    report: ClassReport,
    digest: u64,
}

fn count_in(list: &mut Vec<CodeCount>, code: &str) {
    match list.iter_mut().find(|entry| entry.code == code) {
        Some(entry) => entry.count += 1,
        None => list.push(CodeCount { code: String::from(code), count: 1 }),
    }
}

impl ClassTally {
    fn new(class: AttackClass) -> Self {
        let report = ClassReport {
            class,
            attempts: 0,
            rejected_expected: 0,
            rejected_unexpected: 0,
            unexpected_codes: Vec::new(),
            accepted: 0,
            crashed: 0,
            leaked: 0,
            leaked_resources: Vec::new(),
            first_leak: None,
            skipped: 0,
            skip_reason: None,
            expected_codes: Vec::new(),
            kinds: Vec::new(),
            first_crash: None,
            first_failure: None,
            input_digest: String::new(),
            survived: false,
        };
        ClassTally { class, report, digest: sis_hal::FNV1A64_EMPTY }
    }

    fn record(
        &mut self,
        attempt: &Attempt,
        verdict: Verdict,
        leaked: Vec<(&'static str, u64, u64)>,
        health: Result<(), String>,
    ) {
        let report = &mut self.report;
        report.attempts += 1;
        count_in(&mut report.kinds, attempt.kind);
        if !report.expected_codes.contains(&attempt.expected) {
            report.expected_codes.push(attempt.expected);
        }
        self.digest = sis_hal::fnv1a64_extend(self.digest, &attempt.attack.digest_bytes());
        match verdict {
            Verdict::Rejected(code) if code == attempt.expected => report.rejected_expected += 1,
            Verdict::Rejected(code) => {
                report.rejected_unexpected += 1;
                if report.first_failure.is_none() {
                    report.first_failure = Some(alloc::format!(
                        "{} got {code}, expected {}: {}",
                        attempt.kind,
                        attempt.expected,
                        attempt.attack.describe()
                    ));
                }
                count_in(&mut report.unexpected_codes, code);
            }
            Verdict::Accepted => {
                report.accepted += 1;
                if report.first_failure.is_none() {
                    report.first_failure = Some(alloc::format!(
                        "{} accepted, expected {}: {}",
                        attempt.kind,
                        attempt.expected,
                        attempt.attack.describe()
                    ));
                }
            }
            Verdict::Skipped(reason) => {
                report.skipped += 1;
                report.skip_reason.get_or_insert_with(|| String::from(reason));
            }
        }
        if !leaked.is_empty() {
            report.leaked += 1;
            if report.first_leak.is_none() {
                let changes: Vec<String> =
                    leaked.iter().map(|(name, before, after)| alloc::format!("{name} {before} -> {after}")).collect();
                report.first_leak =
                    Some(alloc::format!("{} ({}): {}", attempt.kind, attempt.attack.describe(), changes.join(", ")));
            }
            for (name, _, _) in leaked {
                if !report.leaked_resources.contains(&name) {
                    report.leaked_resources.push(name);
                }
            }
        }
        if let Err(reason) = health {
            report.crashed += 1;
            report.first_crash.get_or_insert(alloc::format!("after {}: {reason}", attempt.kind));
        }
    }

    fn finish(mut self) -> ClassReport {
        let report = &mut self.report;
        report.input_digest = alloc::format!("{:016x}", self.digest);
        report.survived = report.attempts > 0
            && report.skipped == 0
            && report.rejected_expected == report.attempts
            && report.crashed == 0
            && report.leaked == 0;
        self.report
    }
}
