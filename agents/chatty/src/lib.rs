//! Logs as fast as it can until the kernel's per-slice rate limit answers `rate_limited`, then sleeps once and
//! logs how many calls got through: capability `log`. Being limited is not a failure: it exits 0.
#![no_std]

use core::fmt::Write;
use sis_agent_sdk::{agent_main, Host, Level, Status, Text};

agent_main!(main);

/// Attempts before giving up on ever being limited.
const MAX_ATTEMPTS: i32 = 100_000;

fn main() -> i32 {
    let mut host = Host::new();
    let mut accepted = 0i32;
    loop {
        let mut line = Text::<64>::new();
        let _ = write!(line, "chatter {accepted}");
        match host.log(Level::Debug, line.as_str()) {
            Ok(()) => accepted += 1,
            Err(Status::RATE_LIMITED) => break,
            Err(_) => return -1,
        }
        if accepted >= MAX_ATTEMPTS {
            return -2;
        }
    }
    // SLEEP is never rate-limited, and the next slice has a fresh allowance.
    if host.sleep(10).is_err() {
        return -3;
    }
    let mut line = Text::<96>::new();
    let _ = write!(line, "rate limited after {accepted} calls in one slice");
    if host.log(Level::Warn, line.as_str()).is_err() {
        return -4;
    }
    0
}
