//! The SIS platform: everything that touches aarch64 hardware on QEMU `virt`, and the only crate with `unsafe`.
//!
//! Mechanism lives here (boot, exception vectors, MMU, GICv3, generic timer,
//! PL011, PSCI, semihosting exit, context switch, global heap); policy lives
//! in safe crates (`sis-sched` decides which thread runs, `sis-mm` keeps the
//! page-frame books). SIS runs on one CPU: every lock here masks IRQs, which on
//! a single core is full mutual exclusion.
//!
//! The architecture is chosen in this one place (CONVENTIONS S6): on aarch64
//! bare metal the real platform is built; on any other target the crate is an
//! empty shell so the workspace builds and tests on the host. The lock-free
//! SPSC ring ([`spsc`]) is portable and built on both.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod aarch64;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub use aarch64::*;

#[cfg(not(target_os = "none"))]
pub mod host_arena;

mod bootinfo;
pub mod mem;
pub mod spsc;
pub use bootinfo::{
    parse_device_tree, BootInfo, DeviceTreeError, MemoryRegion, PsciMethod, VirtioMmioSlot, MAX_MEMORY_REGIONS,
    MAX_VIRTIO_MMIO,
};
