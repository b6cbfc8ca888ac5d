//! Phase 6, Web GUI: a console session of its own that boots SIS with a network device, starts the web server
//! with `webctl start --port 8080` and drives it with clients no one here wrote (`curl`, Python's `websockets`,
//! raw TCP), reading the server's counters on the console between steps.
//!
//! The session ([`observe`]) only records: every HTTP exchange, every WebSocket frame in order (metrics frames
//! reduced to the figures judged, [`digest_metrics`]), every console reply. The judge ([`judge`]) reads the record
//! and gives each of the fifteen tests its verdict, so it is tested on the host against a recorded session
//! (`phase6_observations.json`). No verdict reads the host's clock: intervals and silences are judged on the
//! kernel's own timestamps (`now_ns` of each frame, `uptime`), so real time and `-icount` are judged alike.

mod judge;
mod observe;
mod record;
mod stream;

use super::Verdict;
use crate::QemuConfig;

pub use judge::judge;
#[cfg(test)]
pub(super) use record::Observations;

/// The guest port the session starts the server on (the seed's `webctl start --port 8080`).
pub const GUEST_PORT: u16 = 8080;

/// The fifteen tests, in the catalog's order.
pub const TESTS: [&str; 15] = [
    "Server startup",
    "HTTP requests",
    "Server shutdown",
    "WebSocket connection",
    "Message exchange",
    "Metric subscription",
    "GET /api/metrics",
    "POST /api/command",
    "Token required",
    "Invalid token refused",
    "Role enforced",
    "Metrics stream",
    "Event stream",
    "Update interval",
    "Reconnection",
];

/// Phase 6's verdicts from a boot of `config` (a network device is added to it).
pub fn web_gui(config: &QemuConfig) -> Vec<Verdict> {
    match observe::observe(config) {
        Ok(observations) => judge(&observations),
        Err(reason) => TESTS.iter().map(|test| (*test, Err(reason.clone()))).collect(),
    }
}
