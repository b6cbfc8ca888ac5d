//! Host harness for SIS: boots the kernel in QEMU, drives its shell, returns each command's own output and JSON.
//!
//! QEMU's stdout is drained by a reader thread into a shared buffer, so QEMU
//! never blocks on output. A command's output is what arrives after the line
//! is sent, between the echo of that line and the next prompt: output that
//! was already there is never mistaken for the answer. Every wait has a
//! deadline; QEMU is killed on drop.

mod config;
mod session;
pub mod validate;

pub use config::{workspace_root, QemuConfig, DEFAULT_ICOUNT_SHIFT};
pub use session::{run_batch, BatchResult, HarnessError, Sis};
