//! Watches memory pressure and proposes a reclaim above a threshold: capabilities `metrics.read`, `propose`, `log`.
#![no_std]

use core::fmt::Write;
use sis_agent_sdk::{agent_main, Host, Level, Text};

agent_main!(main);

/// The metric watched (percent of memory in use).
pub const METRIC: &str = "memory.pressure_percent";
/// Pressure at or above which the watcher proposes [`ACTION`].
pub const THRESHOLD_PERCENT: i64 = 70;
/// The action proposed.
pub const ACTION: &str = "memory_reclaim";
/// Readings taken before the agent exits.
pub const ROUNDS: u32 = 3;
/// Sleep between readings.
pub const PERIOD_MS: u32 = 100;

fn main() -> i32 {
    let mut host = Host::new();
    for round in 1..=ROUNDS {
        let mut response = [0u8; 2048];
        let pressure = match host.metrics_read(METRIC, &mut response) {
            Ok(lines) => find(lines, METRIC),
            Err(status) => {
                let mut line = Text::<96>::new();
                let _ = write!(line, "cannot read {METRIC}: {}", status.name());
                let _ = host.log(Level::Error, line.as_str());
                return 1;
            }
        };
        let mut line = Text::<160>::new();
        match pressure {
            Some(percent) if percent >= THRESHOLD_PERCENT => {
                let mut reason = Text::<96>::new();
                let _ = write!(reason, "{METRIC} {percent} >= {THRESHOLD_PERCENT}");
                let verdict = match host.propose(ACTION, reason.as_str()) {
                    Ok(true) => "accepted",
                    Ok(false) => "blocked",
                    Err(status) => status.name(),
                };
                let _ = write!(line, "round {round}: pressure {percent}%, proposed {ACTION}: {verdict}");
            }
            Some(percent) => {
                let _ = write!(line, "round {round}: pressure {percent}%, below {THRESHOLD_PERCENT}%");
            }
            None => {
                let _ = write!(line, "round {round}: {METRIC} not reported");
            }
        }
        let _ = host.log(Level::Info, line.as_str());
        if round < ROUNDS && host.sleep(PERIOD_MS).is_err() {
            return 2;
        }
    }
    0
}

/// The value of `name` in `name value` lines.
fn find(lines: &[u8], name: &str) -> Option<i64> {
    let text = core::str::from_utf8(lines).ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        if key == name {
            value.trim().parse().ok()
        } else {
            None
        }
    })
}
