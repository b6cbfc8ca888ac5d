//! System-register and barrier helpers used across the platform.

use core::arch::asm;

/// Reads a system register by name or `S3_...` encoding.
macro_rules! read_sysreg {
    ($name:tt) => {{
        let value: u64;
        // SAFETY: reading this system register has no side effects at EL1.
        unsafe { core::arch::asm!(concat!("mrs {}, ", $name), out(reg) value, options(nomem, nostack, preserves_flags)) };
        value
    }};
}

/// Writes a system register by name or `S3_...` encoding.
macro_rules! write_sysreg {
    ($name:tt, $value:expr) => {{
        let value: u64 = $value;
        // SAFETY: callers write only values valid for this register at this
        // point of boot; each call site says why the value is right.
        unsafe { core::arch::asm!(concat!("msr ", $name, ", {}"), in(reg) value, options(nostack, preserves_flags)) };
    }};
}

pub(crate) use read_sysreg;
pub(crate) use write_sysreg;

/// Instruction synchronization barrier.
#[inline(always)]
pub fn isb() {
    // SAFETY: a barrier has no memory-safety effect.
    unsafe { asm!("isb", options(nostack, preserves_flags)) };
}

/// Data synchronization barrier, inner shareable.
#[inline(always)]
pub fn dsb_ish() {
    // SAFETY: a barrier has no memory-safety effect.
    unsafe { asm!("dsb ish", options(nostack, preserves_flags)) };
}

/// Writes a 32-bit device register.
///
/// # Safety
/// `address` must be a mapped device register that accepts this write.
#[inline(always)]
pub unsafe fn mmio_write32(address: u64, value: u32) {
    // SAFETY: the caller guarantees `address` is a valid device register.
    unsafe { core::ptr::write_volatile(address as *mut u32, value) }
}

/// Reads a 32-bit device register.
///
/// # Safety
/// `address` must be a mapped device register that may be read.
#[inline(always)]
pub unsafe fn mmio_read32(address: u64) -> u32 {
    // SAFETY: the caller guarantees `address` is a valid device register.
    unsafe { core::ptr::read_volatile(address as *const u32) }
}

/// Writes a 64-bit device register.
///
/// # Safety
/// `address` must be a mapped 64-bit device register that accepts this write.
#[inline(always)]
pub unsafe fn mmio_write64(address: u64, value: u64) {
    // SAFETY: the caller guarantees `address` is a valid device register.
    unsafe { core::ptr::write_volatile(address as *mut u64, value) }
}

/// Writes an 8-bit device register.
///
/// # Safety
/// `address` must be a mapped byte-accessible device register.
#[inline(always)]
pub unsafe fn mmio_write8(address: u64, value: u8) {
    // SAFETY: the caller guarantees `address` is a valid device register.
    unsafe { core::ptr::write_volatile(address as *mut u8, value) }
}
