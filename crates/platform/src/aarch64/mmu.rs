//! Identity-mapped translation with 1 GiB blocks: RAM normal write-back cacheable, devices (PL011, GIC, virtio-mmio) nGnRE.

use super::registers::{dsb_ish, isb, read_sysreg, write_sysreg};
use crate::bootinfo::BootInfo;

const GIB: u64 = 1 << 30;
/// Entries in the level-1 table; with a 39-bit space each maps 1 GiB.
const ENTRIES: usize = 512;

#[repr(C, align(4096))]
struct Table([u64; ENTRIES]);

/// The level-1 table, filled once at boot before the MMU is on.
static mut LEVEL1: Table = Table([0; ENTRIES]);

const BLOCK: u64 = 0b01;
const ATTR_DEVICE: u64 = 0 << 2;
const ATTR_NORMAL: u64 = 1 << 2;
const INNER_SHAREABLE: u64 = 0b11 << 8;
const ACCESS_FLAG: u64 = 1 << 10;
const PRIVILEGED_EXECUTE_NEVER: u64 = 1 << 53;
const UNPRIVILEGED_EXECUTE_NEVER: u64 = 1 << 54;

/// MAIR: attribute 0 Device-nGnRE, attribute 1 Normal inner/outer write-back RA/WA.
const MAIR: u64 = 0x04 | (0xff << 8);
/// TCR: T0SZ=25 (39-bit), walks WB-WA inner shareable, 4 KiB granule, TTBR1 walks off.
const TCR_BASE: u64 = 25 | (0b01 << 8) | (0b01 << 10) | (0b11 << 12) | (1 << 23);
const SCTLR_MMU: u64 = 1 << 0;
const SCTLR_ALIGNMENT_CHECK: u64 = 1 << 1;
const SCTLR_DATA_CACHE: u64 = 1 << 2;
const SCTLR_INSTRUCTION_CACHE: u64 = 1 << 12;

/// Builds the identity map from the device tree and turns on MMU and caches.
///
/// Every gigabyte that holds RAM is normal memory; every gigabyte that holds
/// a device the platform drives is device memory; everything else faults.
pub fn enable(boot: &BootInfo<'_>) {
    let mut entries = [0u64; ENTRIES];
    for region in boot.memory_regions() {
        let mut gigabyte = region.base / GIB;
        while gigabyte * GIB < region.end() && (gigabyte as usize) < ENTRIES {
            entries[gigabyte as usize] =
                (gigabyte * GIB) | BLOCK | ATTR_NORMAL | INNER_SHAREABLE | ACCESS_FLAG | UNPRIVILEGED_EXECUTE_NEVER;
            gigabyte += 1;
        }
    }
    let virtio_windows = boot.virtio_mmio_slots().iter().map(|slot| slot.base);
    for device in [boot.uart_base, boot.gicd_base, boot.gicr_base].into_iter().chain(virtio_windows) {
        let gigabyte = (device / GIB) as usize;
        if gigabyte < ENTRIES && entries[gigabyte] == 0 {
            entries[gigabyte] = (gigabyte as u64 * GIB)
                | BLOCK
                | ATTR_DEVICE
                | ACCESS_FLAG
                | PRIVILEGED_EXECUTE_NEVER
                | UNPRIVILEGED_EXECUTE_NEVER;
        }
    }

    // SAFETY: runs once, on the boot CPU, before anything else reads LEVEL1
    // and while translation is off; the raw pointer avoids a reference to a
    // `static mut`.
    let table = unsafe {
        let table = &raw mut LEVEL1;
        (*table).0 = entries;
        table as u64
    };

    let physical_range = (read_sysreg!("id_aa64mmfr0_el1") & 0xf).min(5);
    dsb_ish();
    // SAFETY (all writes below): MAIR/TCR/TTBR0 describe the table just built,
    // which identity-maps the running code, its stack and the device tree, so
    // execution continues at the same addresses once SCTLR.M is set.
    write_sysreg!("mair_el1", MAIR);
    write_sysreg!("tcr_el1", TCR_BASE | (physical_range << 32));
    write_sysreg!("ttbr0_el1", table);
    isb();
    // SAFETY: invalidating stale EL1 TLB entries is always sound.
    unsafe { core::arch::asm!("tlbi vmalle1", "dsb ish", "isb", options(nostack, preserves_flags)) };
    let sctlr = read_sysreg!("sctlr_el1");
    write_sysreg!(
        "sctlr_el1",
        (sctlr | SCTLR_MMU | SCTLR_DATA_CACHE | SCTLR_INSTRUCTION_CACHE) & !SCTLR_ALIGNMENT_CHECK
    );
    isb();
}
