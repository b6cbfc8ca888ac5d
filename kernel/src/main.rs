//! The SIS kernel: wires the platform, the scheduling policy and the shell together.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

mod commands;
mod dataflow;
mod det;
mod disk_region;
mod events;
mod feedback;
mod format;
mod governance;
mod klog;
mod otel;
mod shell;
mod sync;
mod web;

use alloc::boxed::Box;

use sis_platform::{thread, Platform};

/// Round-robin time slice of best-effort threads.
const TIME_SLICE_NS: u64 = 10_000_000;
/// Stack of the shell thread: stress tests keep 19.5 KB latency histograms on it.
const SHELL_STACK_BYTES: u64 = 256 * 1024;

sis_platform::entry!(main);

fn main(platform: Platform) -> ! {
    // CBS+EDF: deadline threads by their servers, everything else round robin in the leftover time.
    thread::init(Box::new(sis_sched::CbsEdf::new(sis_sched::DEFAULT_BOUND_PPM, TIME_SLICE_NS, thread::MAX_THREADS)));
    commands::neural::install_fpu_loops();
    let mut probe = sis_platform::virtio::probe(&platform.boot);
    let kernel = commands::Kernel::new(&platform, &probe);
    // The event log takes its memory now, so a leak check around a run that publishes sees a steady heap.
    events::with_log(|_| ());
    commands::blk::disk::attach(probe.block.take());
    if let Err(error) = commands::net::link::attach(probe.net.take()) {
        panic!("cannot start the network thread: {error}");
    }
    web::boot(&kernel);
    governance::boot(&kernel.bootargs);
    if let Err(error) = thread::spawn("shell", SHELL_STACK_BYTES, move || shell::run(kernel)) {
        panic!("cannot start the shell thread: {error}");
    }
    thread::run_idle()
}
