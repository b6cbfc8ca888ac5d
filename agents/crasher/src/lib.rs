//! Logs once and panics (a trap): for the supervisor's restart policy. Capability `log`.
#![no_std]

use sis_agent_sdk::{agent_main, Host, Level};

agent_main!(main);

fn main() -> i32 {
    let mut host = Host::new();
    let _ = host.log(Level::Error, "crasher: about to fail");
    panic!("crasher fails on purpose")
}
