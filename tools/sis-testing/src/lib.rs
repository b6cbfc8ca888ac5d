//! Host harness for SIS: boots the kernel in QEMU, drives its shell, returns each command's own output and JSON.
//!
//! QEMU's console is drained by a reader thread into a shared buffer, so QEMU
//! never blocks on output; input goes through a writer thread, so a guest
//! that stops reading cannot block the harness. A command's output is what
//! arrives after its line is sent, between the echo of that line and the next
//! prompt at the start of a line: output that was already there is never
//! mistaken for the answer. Every wait has a deadline; on a timeout, and on
//! drop, QEMU is killed.
//!
//! ```no_run
//! use sis_testing::{QemuConfig, Sis};
//! let mut sis = Sis::boot(&QemuConfig::new().memory_mib(1024))?;
//! assert_eq!(sis.run("echo hi")?, "hi\n");
//! let meminfo = sis.run_json("meminfo")?;
//! assert_eq!(meminfo["total_bytes"], 1u64 << 30);
//! # Ok::<(), sis_testing::HarnessError>(())
//! ```
#![forbid(unsafe_code)]

mod batch;
mod boot_time;
mod config;
pub mod console;
mod disk;
mod error;
pub mod otel;
pub mod phases;
mod process;
mod session;
pub mod validate;
pub mod web;

pub use batch::{run_batch, BatchResult};
pub use boot_time::{measure_boot_times, median, BootSample, BootTimes};
pub use config::{
    dashboard_vendor_dir, default_kernel_path, free_local_port, hex, host_random_bytes, workspace_root, PortForward,
    QemuConfig, WebBoot, DASHBOARD_VENDOR_RELATIVE_PATH, DEFAULT_ICOUNT_SHIFT, DEFAULT_MEMORY_MIB, DEFAULT_TIMEOUT,
    KERNEL_ENV, KERNEL_RELATIVE_PATH, QEMU_PROGRAM, WEB_GUEST_PORT,
};
pub use disk::{ScratchDisk, DEFAULT_DISK_BYTES, SECTOR_BYTES};
pub use error::{HarnessError, TAIL_BYTES};
pub use session::{parse_json_reply, CommandOutput, Sis};
