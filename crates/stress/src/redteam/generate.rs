//! Seeded attack inputs: for each class, a kind of attack with random parameters and the error it must get.

use alloc::string::String;
use alloc::vec::Vec;

use super::packets;
use super::AttackClass;
use crate::StressRng;

/// What the attacker holds when a line is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// No capability.
    Nobody,
    /// Only the capability to change the filesystem (so path checks, not permissions, are what refuses).
    Files,
}

/// One attack as the target receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attack {
    /// Bytes typed into the console's line editor, then Enter.
    Typed {
        /// The bytes, without the Enter.
        bytes: Vec<u8>,
    },
    /// A line run through the command registry.
    Line {
        /// Who runs it.
        caller: Caller,
        /// The line.
        bytes: Vec<u8>,
    },
    /// One heap allocation of this many bytes (fallible).
    HeapAllocation {
        /// Bytes.
        bytes: u64,
    },
    /// One block of 2^order page frames from the frame allocator.
    FrameAllocation {
        /// Buddy order.
        order: u32,
    },
    /// One object from a fresh memory pool with a page budget.
    PoolAllocation {
        /// The pool's budget.
        budget_bytes: u64,
        /// The object's size.
        bytes: u64,
    },
    /// Start this many threads that wait, stopping at the first refusal; then end them all.
    ThreadBomb {
        /// Threads asked for.
        threads: u64,
    },
    /// One thread with this stack size.
    HugeStack {
        /// Stack bytes.
        bytes: u64,
    },
    /// Admit this many deadline servers, stopping at the first refusal; then release them all.
    DeadlineFlood {
        /// Servers asked for.
        servers: u64,
        /// Budget of each, ns.
        budget_ns: u64,
        /// Period (and deadline) of each, ns.
        period_ns: u64,
    },
    /// One Ethernet frame delivered as if received from the wire.
    Frame {
        /// The frame, header included, no FCS.
        bytes: Vec<u8>,
    },
    /// One hostile example agent run in a fresh sandbox until it stops.
    Agent {
        /// Which one.
        agent: HostileAgent,
        /// The limit it runs into: total fuel (spin), memory pages (memory bomb), denials (capability
        /// violator) or malformed messages (malformed) allowed before the stop.
        limit: u64,
    },
}

/// The hostile example agents of `agents/` (docs/agents.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostileAgent {
    /// An endless loop without host calls.
    Spin,
    /// Grows its memory a page at a time.
    MemoryBomb,
    /// Calls outside its capabilities over and over.
    CapViolator,
    /// Sends malformed messages.
    Malformed,
}

impl HostileAgent {
    /// The example's name (its module is `NAME.wasm`).
    pub fn name(self) -> &'static str {
        match self {
            HostileAgent::Spin => "spin",
            HostileAgent::MemoryBomb => "memory-bomb",
            HostileAgent::CapViolator => "cap-violator",
            HostileAgent::Malformed => "malformed",
        }
    }

    /// The stop kind the sandbox must give it (`agentsys status`'s `last_stop.kind`).
    pub fn expected_stop(self) -> &'static str {
        match self {
            HostileAgent::Spin => "out-of-fuel",
            HostileAgent::MemoryBomb => "memory-limit",
            HostileAgent::CapViolator => "capability-violation",
            HostileAgent::Malformed => "protocol-violation",
        }
    }
}

/// An unrestricted command with a numeric argument: the line is `prefix VALUE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumericTarget {
    /// Everything before the value, e.g. `sleep` or `netctl ping 10.0.2.2 --count`.
    pub prefix: &'static str,
    /// Smallest accepted value.
    pub min: u64,
    /// Largest accepted value.
    pub max: u64,
}

/// An unrestricted command and one of its flags with a valid value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagTarget {
    /// The command and its required arguments, e.g. `netctl ping 10.0.2.2`.
    pub command: &'static str,
    /// A flag it takes, without `--`.
    pub flag: &'static str,
    /// A value the flag accepts.
    pub value: &'static str,
}

/// What the attacks may aim at, described by the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Surface {
    /// The line editor's limit in bytes.
    pub line_limit: usize,
    /// Command paths a caller without capabilities may not run.
    pub restricted: Vec<String>,
    /// Unrestricted commands that take no positional argument (`version`).
    pub plain_commands: Vec<&'static str>,
    /// Unrestricted numeric arguments.
    pub numeric: Vec<NumericTarget>,
    /// Unrestricted flags.
    pub flags: Vec<FlagTarget>,
    /// Bytes of RAM (a heap request above it cannot be served).
    pub ram_bytes: u64,
    /// Most threads that may exist.
    pub max_threads: u64,
    /// Largest block order of the frame allocator.
    pub max_order: u32,
    /// The network interface's MAC and IPv4 address (frames are aimed at them).
    pub mac: [u8; 6],
    /// The interface's IPv4 address.
    pub ipv4: [u8; 4],
}

/// One generated attack: its class, its kind, the input, and the error code it must get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The class.
    pub class: AttackClass,
    /// Kebab-case kind (`overlong-line`, `thread-bomb`, ...).
    pub kind: &'static str,
    /// The input.
    pub attack: Attack,
    /// The code a working protection answers with.
    pub expected: &'static str,
}

impl Attack {
    /// Bytes that identify the input, for the replay digest.
    pub fn digest_bytes(&self) -> Vec<u8> {
        let numbers = |values: &[u64]| values.iter().flat_map(|value| value.to_le_bytes()).collect::<Vec<u8>>();
        match self {
            Attack::Typed { bytes } | Attack::Frame { bytes } => bytes.clone(),
            Attack::Line { caller, bytes } => {
                let mut all = alloc::vec![*caller as u8];
                all.extend_from_slice(bytes);
                all
            }
            Attack::HeapAllocation { bytes } | Attack::HugeStack { bytes } => numbers(&[*bytes]),
            Attack::FrameAllocation { order } => numbers(&[u64::from(*order)]),
            Attack::PoolAllocation { budget_bytes, bytes } => numbers(&[*budget_bytes, *bytes]),
            Attack::ThreadBomb { threads } => numbers(&[*threads]),
            Attack::DeadlineFlood { servers, budget_ns, period_ns } => numbers(&[*servers, *budget_ns, *period_ns]),
            Attack::Agent { agent, limit } => numbers(&[*agent as u64, *limit]),
        }
    }

    /// A short description for reports: the input, escaped and cut to 80 characters.
    pub fn describe(&self) -> String {
        match self {
            Attack::Typed { bytes } => alloc::format!("{} bytes typed", bytes.len()),
            Attack::Line { bytes, .. } => {
                let mut text = String::new();
                for &byte in bytes.iter().take(80) {
                    match byte {
                        0x20..=0x7e => text.push(byte as char),
                        _ => text.push_str(&alloc::format!("\\x{byte:02x}")),
                    }
                }
                if bytes.len() > 80 {
                    text.push_str(&alloc::format!("... ({} bytes)", bytes.len()));
                }
                text
            }
            Attack::HeapAllocation { bytes } => alloc::format!("heap allocation of {bytes} bytes"),
            Attack::FrameAllocation { order } => alloc::format!("frame block of order {order}"),
            Attack::PoolAllocation { budget_bytes, bytes } => {
                alloc::format!("{bytes}-byte object in a pool of {budget_bytes} bytes")
            }
            Attack::ThreadBomb { threads } => alloc::format!("{threads} threads"),
            Attack::HugeStack { bytes } => alloc::format!("thread with a {bytes}-byte stack"),
            Attack::DeadlineFlood { servers, budget_ns, period_ns } => {
                alloc::format!("{servers} deadline servers of {budget_ns} ns every {period_ns} ns")
            }
            Attack::Frame { bytes } => alloc::format!("{}-byte frame", bytes.len()),
            Attack::Agent { agent, limit } => alloc::format!("agent {} with limit {limit}", agent.name()),
        }
    }
}

/// Draws the next attack of `class`.
pub fn attempt(class: AttackClass, surface: &Surface, random: &mut StressRng) -> Attempt {
    let (kind, attack, expected) = match class {
        AttackClass::ShellInput => shell_input(surface, random),
        AttackClass::FilesystemPaths => filesystem_path(random),
        AttackClass::PrivilegedCommands => privileged(surface, random),
        AttackClass::ResourceExhaustion => exhaustion(surface, random),
        AttackClass::MalformedPackets => {
            let (kind, bytes) = packets::malformed(surface.mac, surface.ipv4, random);
            (kind, Attack::Frame { bytes }, "dropped")
        }
        AttackClass::HostileAgents => hostile_agent(random),
    };
    Attempt { class, kind, attack, expected }
}

type Drawn = (&'static str, Attack, &'static str);

fn pick<'a, T>(items: &'a [T], random: &mut StressRng) -> Option<&'a T> {
    if items.is_empty() {
        None
    } else {
        items.get(random.below(items.len() as u64) as usize)
    }
}

/// A word of lowercase letters and digits, `length` long.
fn word(random: &mut StressRng, length: u64) -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..length).map(|_| LETTERS[random.below(LETTERS.len() as u64) as usize] as char).collect()
}

fn line(caller: Caller, text: &str) -> Attack {
    Attack::Line { caller, bytes: text.as_bytes().to_vec() }
}

fn shell_input(surface: &Surface, random: &mut StressRng) -> Drawn {
    let plain = pick(&surface.plain_commands, random).copied().unwrap_or("version");
    match random.below(9) {
        0 => {
            let limit = surface.line_limit as u64;
            let length = random.range(limit + 1, limit.saturating_mul(4));
            // `echo` and words: a line that would run if the length check let it through.
            let mut bytes = b"echo ".to_vec();
            while (bytes.len() as u64) < length {
                bytes.push(if random.chance_percent(15) { b' ' } else { b'a' + random.below(26) as u8 });
            }
            ("overlong-line", Attack::Typed { bytes }, "line-too-long")
        }
        1 => {
            let mut bytes = plain.as_bytes().to_vec();
            let control = match random.below(33) {
                32 => 0x7f,
                9 => 0x0a,
                other => other as u8,
            };
            bytes.insert(random.below(bytes.len() as u64 + 1) as usize, control);
            ("control-byte", Attack::Line { caller: Caller::Nobody, bytes }, "control-byte")
        }
        2 => {
            const INVALID: [&[u8]; 7] = [
                b"\xff",
                b"\x80",
                b"\xc0\xaf",
                b"\xed\xa0\x80",
                b"\xf8\x88\x80\x80\x80",
                b"\xe2\x82",
                b"\xf4\x90\x80\x80",
            ];
            let mut bytes = plain.as_bytes().to_vec();
            let at = random.below(bytes.len() as u64 + 1) as usize;
            let sequence = pick(&INVALID, random).copied().unwrap_or(b"\xff");
            bytes.splice(at..at, sequence.iter().copied());
            ("invalid-utf8", Attack::Line { caller: Caller::Nobody, bytes }, "invalid-utf8")
        }
        3 => {
            const SEPARATORS: [&str; 6] = [";", "&&", "||", "|", "$(", "`"];
            let separator = pick(&SEPARATORS, random).copied().unwrap_or(";");
            let payload = pick(&surface.restricted, random).cloned().unwrap_or_else(|| String::from("shutdown"));
            let text = alloc::format!("{plain} {separator} {payload}");
            ("injection-separated", line(Caller::Nobody, &text), "unexpected-argument")
        }
        4 => {
            const SEPARATORS: [&str; 5] = [";", "&&", "|", "$(", "`"];
            let separator = pick(&SEPARATORS, random).copied().unwrap_or(";");
            let payload = pick(&surface.restricted, random).cloned().unwrap_or_else(|| String::from("shutdown"));
            let text = alloc::format!("{plain}{separator}{payload}");
            ("injection-glued", line(Caller::Nobody, &text), "unknown-command")
        }
        5 => numeric(surface, random),
        _ => flag_fuzz(surface, random),
    }
}

fn numeric(surface: &Surface, random: &mut StressRng) -> Drawn {
    let Some(target) = pick(&surface.numeric, random).copied() else {
        return ("numeric-overflow", line(Caller::Nobody, "sleep 99999999999999999999999"), "out-of-range");
    };
    let prefix = target.prefix;
    match random.below(5) {
        0 => {
            // 21 to 40 digits: always above u64::MAX.
            let digits = random.range(21, 40);
            let mut value = alloc::format!("{}", random.range(1, 9));
            for _ in 1..digits {
                value.push(char::from(b'0' + random.below(10) as u8));
            }
            ("numeric-overflow", line(Caller::Nobody, &alloc::format!("{prefix} {value}")), "out-of-range")
        }
        1 => {
            let digits = random.range(17, 32);
            let value: String = (0..digits)
                .map(|index| if index == 0 { 'f' } else { b"0123456789abcdef"[random.below(16) as usize] as char })
                .collect();
            ("hex-overflow", line(Caller::Nobody, &alloc::format!("{prefix} 0x{value}")), "out-of-range")
        }
        2 if target.max < u64::MAX => {
            let value = random.range(target.max + 1, u64::MAX);
            ("above-maximum", line(Caller::Nobody, &alloc::format!("{prefix} {value}")), "out-of-range")
        }
        3 if target.min > 0 => {
            let value = random.below(target.min);
            ("below-minimum", line(Caller::Nobody, &alloc::format!("{prefix} {value}")), "out-of-range")
        }
        _ => {
            let value = random.range(1, u64::MAX);
            ("negative-number", line(Caller::Nobody, &alloc::format!("{prefix} -{value}")), "invalid-value")
        }
    }
}

fn flag_fuzz(surface: &Surface, random: &mut StressRng) -> Drawn {
    let Some(target) = pick(&surface.flags, random).copied() else {
        return ("unknown-flag", line(Caller::Nobody, "version --zz"), "unknown-flag");
    };
    let FlagTarget { command, flag, value } = target;
    match random.below(3) {
        0 => {
            // No command declares a flag starting with `zz`.
            let length = random.range(1, 40);
            let name = word(random, length);
            ("unknown-flag", line(Caller::Nobody, &alloc::format!("{command} --zz{name}")), "unknown-flag")
        }
        1 => {
            let text = alloc::format!("{command} --{flag} {value} --{flag} {value}");
            ("duplicate-flag", line(Caller::Nobody, &text), "duplicate-flag")
        }
        _ => ("missing-value", line(Caller::Nobody, &alloc::format!("{command} --{flag}")), "missing-value"),
    }
}

fn filesystem_path(random: &mut StressRng) -> Drawn {
    let climb = |random: &mut StressRng| "../".repeat(random.range(1, 32) as usize);
    match random.below(7) {
        0 => {
            let command = if random.chance_percent(50) { "cat" } else { "ls" };
            let name = word(random, 12);
            let text = alloc::format!("{command} /{}redteam-{name}", climb(random));
            ("traversal-above-root", line(Caller::Files, &text), "not-found")
        }
        1 => {
            let text = alloc::format!("rm --recursive /{}", climb(random));
            ("traversal-remove-root", line(Caller::Files, &text), "invalid-path")
        }
        2 => {
            let command = pick(&["cat", "ls", "mkdir"], random).copied().unwrap_or("cat");
            let text = alloc::format!("{command} {}redteam", climb(random));
            ("relative-path", line(Caller::Files, &text), "invalid-path")
        }
        3 => {
            let length = random.range(sis_vfs_limits::MAX_NAME_BYTES + 1, 1000);
            let command = pick(&["cat", "ls", "mkdir"], random).copied().unwrap_or("mkdir");
            let text = alloc::format!("{command} /{}", word(random, length));
            ("huge-name", line(Caller::Files, &text), "invalid-path")
        }
        4 => {
            let mut path = String::new();
            while path.len() <= sis_vfs_limits::MAX_PATH_BYTES as usize {
                let length = random.range(1, 200);
                path.push('/');
                path.push_str(&word(random, length));
            }
            ("huge-path", line(Caller::Files, &alloc::format!("mkdir --parents {path}")), "invalid-path")
        }
        5 => {
            let depth = random.range(sis_vfs_limits::MAX_DEPTH + 1, 500);
            let path = "/d".repeat(depth as usize);
            ("deep-nesting", line(Caller::Files, &alloc::format!("mkdir --parents {path}")), "invalid-path")
        }
        _ => {
            let escape = pick(&["\\n", "\\t", "\t"], random).copied().unwrap_or("\\n");
            let text = alloc::format!("mkdir \"/redteam{escape}{}\"", word(random, 6));
            ("control-in-name", line(Caller::Files, &text), "invalid-path")
        }
    }
}

/// The filesystem's limits (sis-vfs), repeated here so the engine does not depend on the filesystem crate.
mod sis_vfs_limits {
    /// Longest name of one component.
    pub const MAX_NAME_BYTES: u64 = 255;
    /// Longest path.
    pub const MAX_PATH_BYTES: u64 = 1024;
    /// Most components in a path.
    pub const MAX_DEPTH: u64 = 64;
}

fn privileged(surface: &Surface, random: &mut StressRng) -> Drawn {
    let path = pick(&surface.restricted, random).cloned().unwrap_or_else(|| String::from("shutdown"));
    const SUFFIXES: [&str; 7] = ["", "--json", "1", "/", "--count 1", "on", "--seed 7"];
    let suffix = pick(&SUFFIXES, random).copied().unwrap_or("");
    let text = if suffix.is_empty() { path } else { alloc::format!("{path} {suffix}") };
    ("without-capability", line(Caller::Nobody, &text), "permission-denied")
}

fn exhaustion(surface: &Surface, random: &mut StressRng) -> Drawn {
    match random.below(6) {
        0 => {
            let bytes = random.log_uniform(surface.ram_bytes.saturating_add(1), 1 << 47);
            ("huge-heap-allocation", Attack::HeapAllocation { bytes }, "out-of-memory")
        }
        1 => {
            let order = random.range(u64::from(surface.max_order) + 1, 63) as u32;
            ("huge-frame-block", Attack::FrameAllocation { order }, "out-of-memory")
        }
        2 => {
            let budget_bytes = random.range(1, 16) << 20;
            let bytes = random.log_uniform(budget_bytes + 1, 1 << 40);
            // Objects above the pool's largest block size are invalid whatever the budget.
            let expected = if bytes > sis_mm::LARGEST_OBJECT_BYTES { "invalid-size" } else { "out-of-memory" };
            ("over-budget-pool-object", Attack::PoolAllocation { budget_bytes, bytes }, expected)
        }
        3 => {
            let threads = random.range(surface.max_threads + 1, surface.max_threads * 2);
            ("thread-bomb", Attack::ThreadBomb { threads }, "thread-limit")
        }
        4 => {
            let bytes = random.log_uniform(8 << 20, 1 << 40);
            ("huge-stack", Attack::HugeStack { bytes }, "stack-too-large")
        }
        _ => {
            // Each server between 5 % and 50 % of a CPU, enough of them for over 100 %.
            let period_ns = random.range(1_000_000, 100_000_000);
            let share_percent = random.range(5, 50);
            let budget_ns = period_ns * share_percent / 100;
            let servers = 100 / share_percent + random.range(1, 8);
            ("deadline-oversubscription", Attack::DeadlineFlood { servers, budget_ns, period_ns }, "admission-refused")
        }
    }
}

/// A hostile agent with a seeded limit it must be stopped at. Every limit is one the agent exceeds: the spinner
/// never stops by itself, the bomb grows without end, the violator makes 7,000 denied calls, the malformed sender
/// sends 6 malformed messages.
fn hostile_agent(random: &mut StressRng) -> Drawn {
    let (kind, agent, limit) = match random.below(4) {
        0 => ("endless-loop", HostileAgent::Spin, random.range(10_000, 1_000_000)),
        1 => ("memory-bomb", HostileAgent::MemoryBomb, random.range(2, 16)),
        2 => ("capability-probe", HostileAgent::CapViolator, random.range(0, 16)),
        _ => ("malformed-messages", HostileAgent::Malformed, random.range(0, 5)),
    };
    (kind, Attack::Agent { agent, limit }, agent.expected_stop())
}
