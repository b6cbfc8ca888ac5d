//! Capabilities: what an agent may do, parsed from text like `fs.read:/tmp/**` and matched before every host call.
//!
//! Syntax (one capability; a set is a comma-separated list):
//! - `fs.read:PATTERN`, `fs.write:PATTERN`, `fs.list:PATTERN`: file access on paths matching `PATTERN`;
//! - `metrics.read`, `log`, `propose`: reading metrics, writing to the log, proposing an action;
//! - `command:NAME`: running the shell command `NAME` (any arguments).
//!
//! A `PATTERN` is an absolute path whose segments are literal text, may contain `*` (any run of characters
//! within one segment, never `/`), or are exactly `**` (zero or more whole segments). So `/tmp/*` grants the
//! entries directly in `/tmp`, `/tmp/**` grants `/tmp` itself and everything below it, and `/tmp` grants only
//! `/tmp`. Patterns must already be normal (no `.`, `..`, empty segments or trailing `/`), and paths are
//! normalized ([`crate::path::normalize`]) before they are matched, so `/tmp/../etc` is `/etc` and never
//! matches `/tmp/**`.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// One parsed capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// `fs.read:PATTERN`
    FsRead(PathPattern),
    /// `fs.write:PATTERN`
    FsWrite(PathPattern),
    /// `fs.list:PATTERN`
    FsList(PathPattern),
    /// `metrics.read`
    MetricsRead,
    /// `command:NAME`
    Command(String),
    /// `log`
    Log,
    /// `propose`
    Propose,
}

/// What a single host call needs, with paths already normalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access<'a> {
    /// Read the file at this normalized path.
    FsRead(&'a str),
    /// Write the file at this normalized path.
    FsWrite(&'a str),
    /// List the directory at this normalized path.
    FsList(&'a str),
    /// Read metrics.
    MetricsRead,
    /// Run the command with this name (the first word of the line).
    Command(&'a str),
    /// Write to the log.
    Log,
    /// Propose an action.
    Propose,
}

/// Why a capability string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapabilityError {
    /// The kind before `:` is not one of the known kinds.
    UnknownKind(String),
    /// A kind that takes an argument (`fs.*`, `command`) has none.
    MissingArgument(String),
    /// A kind that takes no argument was given one.
    UnexpectedArgument(String),
    /// The path pattern is not absolute and normal, or uses `**` inside a segment.
    BadPattern(String),
    /// The command name is empty or has characters other than `a-z 0-9 - _`.
    BadCommandName(String),
}

impl CapabilityError {
    /// The stable code for `--json` output.
    pub fn code(&self) -> &'static str {
        "bad-capability"
    }
}

impl fmt::Display for CapabilityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownKind(kind) => write!(
                f,
                "unknown capability kind '{kind}' (expected fs.read, fs.write, fs.list, metrics.read, command, log, propose)"
            ),
            Self::MissingArgument(kind) => write!(f, "capability '{kind}' needs an argument after ':'"),
            Self::UnexpectedArgument(kind) => write!(f, "capability '{kind}' takes no argument"),
            Self::BadPattern(pattern) => write!(
                f,
                "bad path pattern '{pattern}': it must be absolute and normal (no '.', '..', '//' or trailing '/'), with '**' only as a whole segment"
            ),
            Self::BadCommandName(name) => write!(f, "bad command name '{name}' (letters a-z, digits, '-', '_')"),
        }
    }
}

impl Capability {
    /// Parses one capability such as `fs.read:/tmp/**` or `metrics.read`.
    pub fn parse(text: &str) -> Result<Self, CapabilityError> {
        let text = text.trim();
        let (kind, argument) = match text.split_once(':') {
            Some((kind, argument)) => (kind, Some(argument)),
            None => (text, None),
        };
        let path = |argument: Option<&str>| match argument {
            Some(pattern) => PathPattern::parse(pattern),
            None => Err(CapabilityError::MissingArgument(kind.to_string())),
        };
        let bare = |capability: Capability| match argument {
            None => Ok(capability),
            Some(_) => Err(CapabilityError::UnexpectedArgument(kind.to_string())),
        };
        match kind {
            "fs.read" => Ok(Self::FsRead(path(argument)?)),
            "fs.write" => Ok(Self::FsWrite(path(argument)?)),
            "fs.list" => Ok(Self::FsList(path(argument)?)),
            "metrics.read" => bare(Self::MetricsRead),
            "log" => bare(Self::Log),
            "propose" => bare(Self::Propose),
            "command" => {
                let name = argument.ok_or_else(|| CapabilityError::MissingArgument(kind.to_string()))?;
                let valid = !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
                if valid {
                    Ok(Self::Command(name.to_string()))
                } else {
                    Err(CapabilityError::BadCommandName(name.to_string()))
                }
            }
            other => Err(CapabilityError::UnknownKind(other.to_string())),
        }
    }

    /// Whether this capability grants `access`.
    pub fn grants(&self, access: &Access<'_>) -> bool {
        match (self, access) {
            (Self::FsRead(pattern), Access::FsRead(path))
            | (Self::FsWrite(pattern), Access::FsWrite(path))
            | (Self::FsList(pattern), Access::FsList(path)) => pattern.matches(path),
            (Self::MetricsRead, Access::MetricsRead) | (Self::Log, Access::Log) | (Self::Propose, Access::Propose) => {
                true
            }
            (Self::Command(name), Access::Command(wanted)) => name == wanted,
            _ => false,
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FsRead(pattern) => write!(f, "fs.read:{pattern}"),
            Self::FsWrite(pattern) => write!(f, "fs.write:{pattern}"),
            Self::FsList(pattern) => write!(f, "fs.list:{pattern}"),
            Self::MetricsRead => f.write_str("metrics.read"),
            Self::Command(name) => write!(f, "command:{name}"),
            Self::Log => f.write_str("log"),
            Self::Propose => f.write_str("propose"),
        }
    }
}

/// An agent's capabilities. Empty grants nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapabilitySet {
    capabilities: Vec<Capability>,
}

impl CapabilitySet {
    /// Parses a comma-separated list; an empty or all-blank string is the empty set.
    pub fn parse(list: &str) -> Result<Self, CapabilityError> {
        let capabilities = list
            .split(',')
            .filter(|item| !item.trim().is_empty())
            .map(Capability::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { capabilities })
    }

    /// Whether any capability in the set grants `access`.
    pub fn allows(&self, access: &Access<'_>) -> bool {
        self.capabilities.iter().any(|capability| capability.grants(access))
    }

    /// The capabilities in the order given.
    pub fn iter(&self) -> impl Iterator<Item = &Capability> {
        self.capabilities.iter()
    }
}

impl fmt::Display for CapabilitySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, capability) in self.capabilities.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{capability}")?;
        }
        Ok(())
    }
}

/// A parsed path pattern (see the module documentation for the syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`: zero or more whole segments.
    AnyDepth,
    /// Literal text with `*` wildcards inside one segment.
    Glob(String),
}

impl PathPattern {
    /// Parses an absolute, normal pattern.
    pub fn parse(pattern: &str) -> Result<Self, CapabilityError> {
        let bad = || CapabilityError::BadPattern(pattern.to_string());
        if !pattern.starts_with('/') || pattern.contains('\0') {
            return Err(bad());
        }
        if pattern == "/" {
            return Ok(Self { text: pattern.to_string(), segments: Vec::new() });
        }
        let mut segments = Vec::new();
        for segment in pattern[1..].split('/') {
            match segment {
                "" | "." | ".." => return Err(bad()),
                "**" => segments.push(Segment::AnyDepth),
                other if other.contains("**") => return Err(bad()),
                other => segments.push(Segment::Glob(other.to_string())),
            }
        }
        Ok(Self { text: pattern.to_string(), segments })
    }

    /// Whether the path matches; the path is normalized first, so a path that normalizes outside the pattern
    /// never matches. A relative path never matches.
    pub fn matches(&self, path: &str) -> bool {
        if !path.starts_with('/') || path.contains('\0') {
            return false;
        }
        let segments = crate::path::normalized_segments(path);
        match_segments(&self.segments, &segments)
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Whether the path's segments match the pattern's, in O(pattern × path) steps: `reachable[j]` says the pattern
/// segments seen so far match the first `j` path segments. (A backtracking matcher takes exponential time on
/// patterns with many `**`, found by fuzzing; an agent chooses the path.)
fn match_segments(pattern: &[Segment], path: &[&str]) -> bool {
    let mut reachable = alloc::vec![false; path.len() + 1];
    reachable[0] = true;
    for segment in pattern {
        let mut next = alloc::vec![false; path.len() + 1];
        match segment {
            Segment::AnyDepth => {
                let mut any = false;
                for (j, slot) in next.iter_mut().enumerate() {
                    any |= reachable[j];
                    *slot = any;
                }
            }
            Segment::Glob(glob) => {
                for (j, text) in path.iter().enumerate() {
                    next[j + 1] = reachable[j] && glob_matches(glob.as_bytes(), text.as_bytes());
                }
            }
        }
        reachable = next;
    }
    reachable[path.len()]
}

/// `*` matches any run of bytes (the caller guarantees no `/` in `text`); everything else is literal. Greedy with
/// one backtrack point (the last `*`), O(glob × text) at worst.
fn glob_matches(glob: &[u8], text: &[u8]) -> bool {
    let (mut g, mut t) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while t < text.len() {
        match glob.get(g) {
            Some(b'*') => {
                last_star = Some((g, t));
                g += 1;
            }
            Some(&literal) if literal == text[t] => {
                g += 1;
                t += 1;
            }
            _ => match last_star {
                // Let the last `*` take one more byte and retry from there.
                Some((star, taken)) => {
                    g = star + 1;
                    t = taken + 1;
                    last_star = Some((star, taken + 1));
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|&byte| byte == b'*')
}

#[cfg(test)]
#[path = "caps_tests.rs"]
mod tests;
