//! The kernel log: named sources, each with its own rate limit, and exact accounting of what was suppressed.
//!
//! Like Linux's `printk_ratelimit`, a source prints at most `burst` messages
//! per window of `interval_ns`; the rest are suppressed and counted. When the
//! source next prints in a later window, the log first owes the line
//! `klog: <source>: <N> messages suppressed`; [`Log::flush`] pays it at once
//! (when a flood ends), so the suppression lines always add up to exactly the
//! number suppressed. One source's messages never touch another's budget.
//!
//! The log prints nothing itself: [`Log::emit`] returns the lines to print and
//! takes the time as an argument, so the rules are tested on the host with a
//! fake clock and the kernel decides how lines reach the console.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod error;
pub mod flood;
mod source;

use alloc::string::String;
use alloc::vec::Vec;

use serde::Serialize;

pub use error::KlogError;
use source::Source;
pub use source::{check_name, Counters, RateLimit};

/// Sources the log keeps at most; a message from a new source beyond them is refused ([`KlogError::TooManySources`]).
pub const MAX_SOURCES: usize = 32;
/// Longest source name, bytes.
pub const MAX_NAME_BYTES: usize = 16;
/// Longest message text kept, bytes; longer text is cut at a character boundary and ends with `...`.
pub const MAX_MESSAGE_BYTES: usize = 256;
/// Default window: 1 s.
pub const DEFAULT_INTERVAL_NS: u64 = 1_000_000_000;
/// Default burst: 10 messages per window.
pub const DEFAULT_BURST: u32 = 10;
/// Longest window accepted: 1 hour.
pub const MAX_INTERVAL_NS: u64 = 3_600 * 1_000_000_000;
/// Largest burst accepted.
pub const MAX_BURST: u32 = 1_000_000;

/// The lines one call asks to print, in order: the suppression report a source owed, then the message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Emission {
    /// `klog: <source>: <N> messages suppressed`, when a window ended with messages suppressed.
    pub suppression_report: Option<String>,
    /// The message, unless the rate limit suppressed it.
    pub message: Option<String>,
}

impl Emission {
    /// The lines to print, in order (0, 1 or 2), without line ends.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.suppression_report.iter().chain(self.message.iter()).map(String::as_str)
    }
}

/// A source as [`Log::sources`] shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceSnapshot {
    /// Its name.
    pub name: String,
    /// The limit in force (its own, or the default).
    pub limit: RateLimit,
    /// Whether the limit is its own (`false`: it follows the default).
    pub own_limit: bool,
    /// Whether rate limiting is on for it.
    pub limiting: bool,
    /// Whether the on/off switch is its own (`false`: it follows the default).
    pub own_limiting: bool,
    /// Start of its current window, ns (`None` before its first limited message).
    pub window_start_ns: Option<u64>,
    /// Messages printed in the current window.
    pub printed_in_window: u32,
    /// Suppressed messages not reported by a line yet.
    pub pending_suppressed: u64,
    /// Its counters.
    pub counters: Counters,
}

/// Every source's counters summed, with the messages refused before reaching a source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Sums over the sources.
    #[serde(flatten)]
    pub counters: Counters,
    /// Suppressed messages not reported by a line yet, over every source.
    pub pending_suppressed: u64,
    /// Messages refused because their source name was bad or the table was full (counted nowhere else).
    pub rejected: u64,
    /// Sources in the table.
    pub sources: usize,
}

/// The log: the default limit and switch, and the sources.
#[derive(Debug, Clone)]
pub struct Log {
    default_limit: RateLimit,
    default_limiting: bool,
    sources: Vec<Source>,
    rejected: u64,
}

impl Default for Log {
    fn default() -> Self {
        Log::new()
    }
}

impl Log {
    /// An empty log: burst [`DEFAULT_BURST`] per [`DEFAULT_INTERVAL_NS`], limiting on.
    pub const fn new() -> Self {
        Log { default_limit: RateLimit::DEFAULT, default_limiting: true, sources: Vec::new(), rejected: 0 }
    }

    /// Submits one message of `source` at `now_ns`; returns what to print.
    ///
    /// An unknown source is added (a refused name or a full table is an error,
    /// and the message is counted in [`Totals::rejected`]). Control characters
    /// in `text` are escaped so a message is always one line.
    pub fn emit(&mut self, now_ns: u64, source: &str, text: &str) -> Result<Emission, KlogError> {
        let index = match self.register(source) {
            Ok(index) => index,
            Err(error) => {
                self.rejected += 1;
                return Err(error);
            }
        };
        let (limit, limiting) = self.effective(&self.sources[index]);
        let source = &mut self.sources[index];
        let decision = source.decide(now_ns, limit, limiting);
        Ok(Emission {
            suppression_report: decision.report.map(|count| suppression_line(&source.name, count)),
            message: decision.print.then(|| one_line(text)),
        })
    }

    /// The suppression line `source` owes now, if any (used when a flood ends).
    pub fn flush(&mut self, source: &str) -> Result<Option<String>, KlogError> {
        let index = self.find(source)?;
        let source = &mut self.sources[index];
        Ok(source.take_report().map(|count| suppression_line(&source.name, count)))
    }

    /// Every suppression line owed, in source order.
    pub fn flush_all(&mut self) -> Vec<String> {
        self.sources
            .iter_mut()
            .filter_map(|source| source.take_report().map(|count| suppression_line(&source.name, count)))
            .collect()
    }

    /// Adds `source` (no message) unless it is there; returns its index.
    pub fn register(&mut self, source: &str) -> Result<usize, KlogError> {
        if let Some(index) = self.sources.iter().position(|existing| existing.name == source) {
            return Ok(index);
        }
        check_name(source)?;
        if self.sources.len() >= MAX_SOURCES {
            return Err(KlogError::TooManySources { limit: MAX_SOURCES });
        }
        self.sources.push(Source::new(source));
        Ok(self.sources.len() - 1)
    }

    /// Sets the limit of `source` (added if new), or with `None` the default every source without its own follows.
    /// The current window keeps its start and count; the new limit applies from the next message.
    pub fn set_limit(&mut self, source: Option<&str>, limit: RateLimit) -> Result<(), KlogError> {
        match source {
            Some(name) => {
                let index = self.register(name)?;
                self.sources[index].own_limit = Some(limit);
            }
            None => self.default_limit = limit,
        }
        Ok(())
    }

    /// Turns rate limiting on or off for `source` (added if new), or with `None` for every source without its own
    /// switch. The next message after a switch starts a fresh window.
    pub fn set_limiting(&mut self, source: Option<&str>, limiting: bool) -> Result<(), KlogError> {
        match source {
            Some(name) => {
                let index = self.register(name)?;
                self.sources[index].own_limiting = Some(limiting);
                self.sources[index].window = None;
            }
            None => {
                self.default_limiting = limiting;
                for source in self.sources.iter_mut().filter(|source| source.own_limiting.is_none()) {
                    source.window = None;
                }
            }
        }
        Ok(())
    }

    /// The default limit.
    pub fn default_limit(&self) -> RateLimit {
        self.default_limit
    }

    /// Whether limiting is on by default.
    pub fn default_limiting(&self) -> bool {
        self.default_limiting
    }

    /// One source's state; [`KlogError::UnknownSource`] when it is not in the table.
    pub fn source(&self, name: &str) -> Result<SourceSnapshot, KlogError> {
        self.find(name).map(|index| self.snapshot(&self.sources[index]))
    }

    /// Every source's state, in the order they were added.
    pub fn sources(&self) -> Vec<SourceSnapshot> {
        self.sources.iter().map(|source| self.snapshot(source)).collect()
    }

    /// Counters summed over every source.
    pub fn totals(&self) -> Totals {
        let mut counters = Counters::default();
        for source in &self.sources {
            counters.add(&source.counters);
        }
        Totals {
            counters,
            pending_suppressed: counters.pending_suppressed(),
            rejected: self.rejected,
            sources: self.sources.len(),
        }
    }

    fn find(&self, name: &str) -> Result<usize, KlogError> {
        check_name(name)?;
        self.sources.iter().position(|source| source.name == name).ok_or(KlogError::UnknownSource)
    }

    fn effective(&self, source: &Source) -> (RateLimit, bool) {
        (source.own_limit.unwrap_or(self.default_limit), source.own_limiting.unwrap_or(self.default_limiting))
    }

    fn snapshot(&self, source: &Source) -> SourceSnapshot {
        let (limit, limiting) = self.effective(source);
        SourceSnapshot {
            name: source.name.clone(),
            limit,
            own_limit: source.own_limit.is_some(),
            limiting,
            own_limiting: source.own_limiting.is_some(),
            window_start_ns: source.window.map(|window| window.start_ns),
            printed_in_window: source.window.map_or(0, |window| window.printed),
            pending_suppressed: source.counters.pending_suppressed(),
            counters: source.counters,
        }
    }
}

impl RateLimit {
    /// Burst [`DEFAULT_BURST`] per [`DEFAULT_INTERVAL_NS`].
    pub const DEFAULT: RateLimit = RateLimit::from_parts(DEFAULT_INTERVAL_NS, DEFAULT_BURST);
}

/// The line that reports `count` suppressed messages of `source`.
pub fn suppression_line(source: &str, count: u64) -> String {
    alloc::format!("klog: {source}: {count} messages suppressed")
}

/// `text` as one line: control characters escaped (`\n` becomes the two characters `\` `n`), cut to
/// [`MAX_MESSAGE_BYTES`] at a character boundary with `...` appended when longer.
pub fn one_line(text: &str) -> String {
    let mut line = String::with_capacity(text.len().min(MAX_MESSAGE_BYTES + 3));
    for character in text.chars() {
        let before = line.len();
        if character.is_control() {
            line.extend(character.escape_default());
        } else {
            line.push(character);
        }
        if line.len() > MAX_MESSAGE_BYTES {
            line.truncate(before);
            line.push_str("...");
            break;
        }
    }
    line
}

#[cfg(test)]
mod tests;
