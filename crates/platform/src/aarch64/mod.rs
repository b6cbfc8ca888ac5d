//! The aarch64 QEMU `virt` platform.

mod boot;
pub mod console;
mod crash;
mod exceptions;
pub mod fpu;
mod gic;
mod heap;
pub mod irq_lock;
pub mod memory;
mod mmu;
pub mod pmu;
pub mod power;
pub mod profile;
mod registers;
pub mod thread;
pub mod time;
mod uart;
pub mod virtio;
mod virtio_blk;
mod virtio_net;
mod virtio_transport;

pub use boot::Platform;

/// Diagnostics that deliberately break the machine, to test the crash paths.
pub mod diagnostics {
    /// Reads an address outside every mapping: the CPU takes a data abort,
    /// which the exception handler reports with a register dump and ends QEMU
    /// with the panic status.
    pub fn trigger_data_abort() -> ! {
        // An address beyond the 39-bit space TTBR0 translates: a level-0
        // translation fault, never a mapped byte.
        const UNMAPPED: usize = 0x0000_7f00_0000_0000;
        // SAFETY: the read is meant to fault; the fault handler never returns
        // to this code, so no value is ever produced from it.
        let value = unsafe { core::ptr::read_volatile(UNMAPPED as *const u64) };
        panic!("read of unmapped address {UNMAPPED:#x} returned {value:#x}");
    }
}
