//! PL011 UART: polled transmit, interrupt-driven receive.

use core::sync::atomic::{AtomicU64, Ordering};

use super::registers::{mmio_read32, mmio_write32};

const DATA: u64 = 0x00;
const FLAGS: u64 = 0x18;
const LINE_CONTROL: u64 = 0x2c;
const CONTROL: u64 = 0x30;
const INTERRUPT_MASK: u64 = 0x38;
const INTERRUPT_CLEAR: u64 = 0x44;

const FLAG_RECEIVE_EMPTY: u32 = 1 << 4;
const FLAG_TRANSMIT_FULL: u32 = 1 << 5;
/// 8 data bits, FIFOs on.
const LINE_8N1_FIFO: u32 = (0b11 << 5) | (1 << 4);
const CONTROL_ENABLE_RX_TX: u32 = (1 << 0) | (1 << 8) | (1 << 9);
const INTERRUPT_RECEIVE: u32 = 1 << 4;
const INTERRUPT_RECEIVE_TIMEOUT: u32 = 1 << 6;

/// Base address of the console PL011, from the device tree.
static BASE: AtomicU64 = AtomicU64::new(0);

/// Programs the UART found in the device tree at `base`.
pub fn init(base: u64) {
    BASE.store(base, Ordering::Relaxed);
    // SAFETY: `base` is the PL011 the device tree names, mapped as device
    // memory by the MMU setup; these are its documented registers.
    unsafe {
        mmio_write32(base + CONTROL, 0);
        mmio_write32(base + INTERRUPT_MASK, 0);
        mmio_write32(base + INTERRUPT_CLEAR, 0x7ff);
        mmio_write32(base + LINE_CONTROL, LINE_8N1_FIFO);
        mmio_write32(base + CONTROL, CONTROL_ENABLE_RX_TX);
    }
}

/// Sends one byte, waiting while the transmit FIFO is full.
pub fn put_byte(byte: u8) {
    let base = BASE.load(Ordering::Relaxed);
    if base == 0 {
        return;
    }
    // SAFETY: `base` was set by `init` to the device-tree PL011.
    unsafe {
        while mmio_read32(base + FLAGS) & FLAG_TRANSMIT_FULL != 0 {
            core::hint::spin_loop();
        }
        mmio_write32(base + DATA, byte as u32);
    }
}

/// Takes one received byte from the FIFO, if any.
pub fn take_byte() -> Option<u8> {
    let base = BASE.load(Ordering::Relaxed);
    // SAFETY: `base` was set by `init` to the device-tree PL011.
    unsafe {
        if base == 0 || mmio_read32(base + FLAGS) & FLAG_RECEIVE_EMPTY != 0 {
            return None;
        }
        Some(mmio_read32(base + DATA) as u8)
    }
}

/// Lets received bytes raise the UART interrupt.
pub fn enable_receive_interrupt() {
    set_receive_interrupt(true);
}

/// Masks or unmasks the receive interrupts. Masked, bytes stay in the FIFO
/// and QEMU stops reading its input: nothing is lost while the kernel is busy.
pub fn set_receive_interrupt(enabled: bool) {
    let base = BASE.load(Ordering::Relaxed);
    if base == 0 {
        return;
    }
    let mask = if enabled { INTERRUPT_RECEIVE | INTERRUPT_RECEIVE_TIMEOUT } else { 0 };
    // The receive interrupt is a level that falls when the FIFO is read
    // empty, so it is never cleared here: bytes that arrived while it was
    // masked raise it as soon as it is unmasked.
    // SAFETY: `base` was set by `init` to the device-tree PL011.
    unsafe { mmio_write32(base + INTERRUPT_MASK, mask) }
}
