//! The SIS kernel: wires the platform, scheduler and shell together.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

use alloc::boxed::Box;
use core::fmt::Write;

use sis_platform::{console, thread, Platform};

sis_platform::entry!(main);

fn main(platform: Platform) -> ! {
    let mut out = console::Console;
    let _ = writeln!(out, "SIS booting: {} bytes RAM, bootargs {:?}", platform.boot.total_memory_bytes(), platform.boot.bootargs);
    thread::init(Box::new(sis_sched::RoundRobin::with_capacity(10_000_000, thread::MAX_THREADS)));
    thread::spawn("shell", 64 * 1024, || loop {
        console::write_str(sis_proto::PROMPT);
        let mut buffer = [0u8; 64];
        let count = console::read(&mut buffer);
        console::write_bytes(&buffer[..count]);
        console::write_str("\n");
    })
    .expect("spawn shell");
    thread::run_idle()
}
