//! GICv3: distributor, CPU 0's redistributor and the system-register CPU interface.

use core::sync::atomic::{AtomicU64, Ordering};

use super::registers::{isb, mmio_read32, mmio_write32, mmio_write64, mmio_write8, read_sysreg, write_sysreg};
use crate::bootinfo::BootInfo;

static DISTRIBUTOR: AtomicU64 = AtomicU64::new(0);
static REDISTRIBUTOR: AtomicU64 = AtomicU64::new(0);

const GICD_CTLR: u64 = 0x0000;
const GICD_IGROUPR: u64 = 0x0080;
const GICD_ISENABLER: u64 = 0x0100;
const GICD_IPRIORITYR: u64 = 0x0400;
const GICD_IROUTER: u64 = 0x6000;
const CTLR_ENABLE_GROUP0: u32 = 1 << 0;
const CTLR_ENABLE_GROUP1: u32 = 1 << 1;
const CTLR_AFFINITY_ROUTING: u32 = 1 << 4;
const CTLR_REGISTER_WRITE_PENDING: u32 = 1 << 31;

const GICR_WAKER: u64 = 0x0014;
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
/// SGI/PPI frame follows the RD frame.
const GICR_SGI_FRAME: u64 = 0x1_0000;
const GICR_IGROUPR0: u64 = GICR_SGI_FRAME + 0x0080;
const GICR_ISENABLER0: u64 = GICR_SGI_FRAME + 0x0100;
const GICR_IPRIORITYR: u64 = GICR_SGI_FRAME + 0x0400;

const DEFAULT_PRIORITY: u8 = 0x80;
/// INTIDs from this value up are "no interrupt pending".
pub const SPURIOUS_FIRST: u32 = 1020;

/// Brings up the distributor and CPU 0's redistributor and CPU interface.
pub fn init(boot: &BootInfo<'_>) {
    DISTRIBUTOR.store(boot.gicd_base, Ordering::Relaxed);
    REDISTRIBUTOR.store(boot.gicr_base, Ordering::Relaxed);
    // SAFETY: the bases come from the device tree's arm,gic-v3 node and are
    // mapped as device memory; register offsets are from the GICv3 spec.
    unsafe {
        mmio_write32(boot.gicd_base + GICD_CTLR, CTLR_AFFINITY_ROUTING | CTLR_ENABLE_GROUP1 | CTLR_ENABLE_GROUP0);
        while mmio_read32(boot.gicd_base + GICD_CTLR) & CTLR_REGISTER_WRITE_PENDING != 0 {}
        let waker = mmio_read32(boot.gicr_base + GICR_WAKER);
        mmio_write32(boot.gicr_base + GICR_WAKER, waker & !WAKER_PROCESSOR_SLEEP);
        while mmio_read32(boot.gicr_base + GICR_WAKER) & WAKER_CHILDREN_ASLEEP != 0 {}
        mmio_write32(boot.gicr_base + GICR_IGROUPR0, u32::MAX);
    }
    // ICC_SRE_EL1.SRE: use the system-register interface.
    write_sysreg!("S3_0_C12_C12_5", read_sysreg!("S3_0_C12_C12_5") | 1);
    isb();
    // ICC_PMR_EL1: let every priority through; ICC_BPR1_EL1: no sub-priority grouping.
    write_sysreg!("S3_0_C4_C6_0", 0xff);
    write_sysreg!("S3_0_C12_C12_3", 0);
    // ICC_IGRPEN1_EL1: signal group 1 interrupts.
    write_sysreg!("S3_0_C12_C12_7", 1);
    isb();
}

/// Enables `intid` (PPI at the redistributor, SPI at the distributor routed to CPU 0).
pub fn enable_interrupt(intid: u32) {
    let distributor = DISTRIBUTOR.load(Ordering::Relaxed);
    let redistributor = REDISTRIBUTOR.load(Ordering::Relaxed);
    let word = (intid / 32) as u64 * 4;
    let bit = 1u32 << (intid % 32);
    // SAFETY: GIC registers set up in `init`; `intid` is below 1020, so every
    // offset stays inside the distributor / redistributor frames.
    unsafe {
        if intid < 32 {
            mmio_write8(redistributor + GICR_IPRIORITYR + intid as u64, DEFAULT_PRIORITY);
            mmio_write32(redistributor + GICR_ISENABLER0, bit);
        } else if intid < SPURIOUS_FIRST {
            let group = mmio_read32(distributor + GICD_IGROUPR + word);
            mmio_write32(distributor + GICD_IGROUPR + word, group | bit);
            mmio_write8(distributor + GICD_IPRIORITYR + intid as u64, DEFAULT_PRIORITY);
            mmio_write64(distributor + GICD_IROUTER + intid as u64 * 8, 0);
            mmio_write32(distributor + GICD_ISENABLER + word, bit);
        }
    }
}

/// Acknowledges the highest-priority pending interrupt (ICC_IAR1_EL1).
pub fn acknowledge() -> u32 {
    (read_sysreg!("S3_0_C12_C12_0") & 0xff_ffff) as u32
}

/// Signals the end of handling `intid` (ICC_EOIR1_EL1).
pub fn end_of_interrupt(intid: u32) {
    write_sysreg!("S3_0_C12_C12_1", intid as u64);
}
