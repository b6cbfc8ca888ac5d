//! One source's rate limit: its window, what it printed and suppressed, and the suppression report it owes.

use alloc::string::String;

use serde::Serialize;

use crate::{KlogError, MAX_BURST, MAX_INTERVAL_NS, MAX_NAME_BYTES};

/// At most `burst` messages of a source are printed per window of `interval_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    interval_ns: u64,
    burst: u32,
}

impl RateLimit {
    /// A limit with a window of `interval_ns` (1 ns..=[`MAX_INTERVAL_NS`]) and a burst of 1..=[`MAX_BURST`].
    pub fn new(interval_ns: u64, burst: u32) -> Result<Self, KlogError> {
        if interval_ns == 0 {
            return Err(KlogError::ZeroInterval);
        }
        if interval_ns > MAX_INTERVAL_NS {
            return Err(KlogError::IntervalTooLong { interval_ns });
        }
        if burst == 0 {
            return Err(KlogError::ZeroBurst);
        }
        if burst > MAX_BURST {
            return Err(KlogError::BurstTooLarge { burst });
        }
        Ok(RateLimit { interval_ns, burst })
    }

    /// A limit from parts already known to be in range (the default).
    pub(crate) const fn from_parts(interval_ns: u64, burst: u32) -> Self {
        RateLimit { interval_ns, burst }
    }

    /// The window, ns.
    pub fn interval_ns(&self) -> u64 {
        self.interval_ns
    }

    /// Messages printed per window at most.
    pub fn burst(&self) -> u32 {
        self.burst
    }
}

/// What a source (or the whole log) did with its messages.
///
/// `emitted == printed + suppressed` always; `suppressed_reported` is the sum
/// of N over the `klog: <source>: <N> messages suppressed` lines, so after a
/// flush it equals `suppressed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Messages submitted.
    pub emitted: u64,
    /// Messages printed.
    pub printed: u64,
    /// Messages suppressed by the rate limit.
    pub suppressed: u64,
    /// Suppression lines printed.
    pub suppression_reports: u64,
    /// Sum of N over the suppression lines.
    pub suppressed_reported: u64,
}

impl Counters {
    /// Suppressed messages no line has reported yet.
    pub fn pending_suppressed(&self) -> u64 {
        self.suppressed - self.suppressed_reported
    }

    pub(crate) fn add(&mut self, other: &Counters) {
        self.emitted += other.emitted;
        self.printed += other.printed;
        self.suppressed += other.suppressed;
        self.suppression_reports += other.suppression_reports;
        self.suppressed_reported += other.suppressed_reported;
    }
}

/// Checks a source name: 1..=[`MAX_NAME_BYTES`] bytes of ASCII letters, digits, `-` and `_`.
pub fn check_name(name: &str) -> Result<(), KlogError> {
    if name.is_empty() {
        return Err(KlogError::EmptyName);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(KlogError::NameTooLong { length: name.len() });
    }
    match name.bytes().position(|byte| !(byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')) {
        Some(offset) => Err(KlogError::BadNameCharacter { offset }),
        None => Ok(()),
    }
}

/// The window in progress: when it began and how many messages it printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) start_ns: u64,
    pub(crate) printed: u32,
}

/// A named source's state.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) name: String,
    /// Its own limit; `None` follows the log's default.
    pub(crate) own_limit: Option<RateLimit>,
    /// Its own on/off switch; `None` follows the log's default.
    pub(crate) own_limiting: Option<bool>,
    pub(crate) window: Option<Window>,
    pub(crate) counters: Counters,
}

/// What one message of a source became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Suppressed messages to report before the message (a new window began, or limiting is off).
    pub(crate) report: Option<u64>,
    /// The message is printed.
    pub(crate) print: bool,
}

impl Source {
    pub(crate) fn new(name: &str) -> Self {
        Source {
            name: String::from(name),
            own_limit: None,
            own_limiting: None,
            window: None,
            counters: Counters::default(),
        }
    }

    /// Decides one message at `now_ns` under `limit`, limiting on or off, and counts it.
    ///
    /// A window begins with the first message at or after the end of the previous
    /// one (as Linux's `___ratelimit` does): it spans `[start, start + interval)`,
    /// so a message exactly `interval` after the start opens the next window.
    pub(crate) fn decide(&mut self, now_ns: u64, limit: RateLimit, limiting: bool) -> Decision {
        self.counters.emitted += 1;
        if !limiting {
            let report = self.take_report();
            self.counters.printed += 1;
            return Decision { report, print: true };
        }
        let open = self.window.filter(|window| now_ns.saturating_sub(window.start_ns) < limit.interval_ns());
        let (mut window, report) = match open {
            Some(window) => (window, None),
            None => (Window { start_ns: now_ns, printed: 0 }, self.take_report()),
        };
        let print = window.printed < limit.burst();
        if print {
            window.printed += 1;
            self.counters.printed += 1;
        } else {
            self.counters.suppressed += 1;
        }
        self.window = Some(window);
        Decision { report, print }
    }

    /// The count for a suppression line, if any is owed; counts the line as printed.
    pub(crate) fn take_report(&mut self) -> Option<u64> {
        let pending = self.counters.pending_suppressed();
        if pending == 0 {
            return None;
        }
        self.counters.suppression_reports += 1;
        self.counters.suppressed_reported += pending;
        Some(pending)
    }
}
