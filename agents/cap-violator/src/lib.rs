//! Hostile: with capabilities `log` and `fs.read:/tmp/**`, tries calls outside them over and over (a path that
//! escapes `/tmp` through `..`, a write, a listing, metrics, a command, a proposal). The sandbox denies each and
//! stops the agent after too many. Exit code 99 would mean one was allowed.
#![no_std]

use sis_agent_sdk::{agent_main, Host, Status};

agent_main!(main);

fn main() -> i32 {
    let mut host = Host::new();
    let mut buffer = [0u8; 256];
    for _ in 0..1000 {
        let attempts = [
            host.fs_read("/etc/passwd", &mut buffer).map(|_| ()),
            host.fs_read("/tmp/../etc/passwd", &mut buffer).map(|_| ()),
            host.fs_write("/tmp/owned", b"x"),
            host.fs_list("/", &mut buffer).map(|_| ()),
            host.metrics_read("", &mut buffer).map(|_| ()),
            host.command_run("reboot", &mut buffer).map(|_| ()),
            host.propose("memory_reclaim", "because").map(|_| ()),
        ];
        if attempts.iter().any(|attempt| *attempt != Err(Status::DENIED)) {
            return 99;
        }
    }
    0
}
