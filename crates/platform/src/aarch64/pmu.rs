//! The PMU's instruction counter, to measure what a piece of kernel code costs in instructions and time.
//!
//! [`measure`] counts event 0x08 (INST_RETIRED, instructions architecturally executed) in event counter 0
//! around a closure run with IRQs masked, so nothing else runs in between and the count is the closure's.
//! QEMU implements that event only in deterministic mode (`-icount`), where it counts exactly; elsewhere
//! PMCEID0_EL0 says so and [`measure`] reports no count rather than a wrong one. Nothing else in the kernel
//! uses the PMU.

use super::irq_lock::{mask_irqs, restore_irqs};
use super::registers::{isb, read_sysreg, write_sysreg};

/// The architectural event number of INST_RETIRED.
const INST_RETIRED: u64 = 0x08;
/// PMCR_EL0.E: enables the event counters.
const PMCR_ENABLE: u64 = 1;

/// What a measured closure returned and what it cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured<R> {
    /// The closure's value.
    pub value: R,
    /// Time it took (the generic timer), ns.
    pub ns: u64,
    /// Instructions it executed, when the PMU counts them (QEMU: only with `-icount`).
    pub instructions: Option<u64>,
}

/// Whether the CPU has a PMU with at least one event counter that can count INST_RETIRED.
pub fn counts_instructions() -> bool {
    // ID_AA64DFR0_EL1.PMUVer, bits 11:8: 0 no PMU, 0xF an implementation-defined one; reading the PMU's
    // registers without an architected PMU would trap.
    let version = (read_sysreg!("id_aa64dfr0_el1") >> 8) & 0xF;
    if version == 0 || version == 0xF {
        return false;
    }
    let counters = (read_sysreg!("pmcr_el0") >> 11) & 0x1F;
    counters > 0 && read_sysreg!("pmceid0_el0") & (1 << INST_RETIRED) != 0
}

/// Runs `body` with IRQs masked and measures its time and, when the PMU counts them, its instructions.
pub fn measure<R>(body: impl FnOnce() -> R) -> Measured<R> {
    let saved = mask_irqs();
    let counting = counts_instructions();
    if counting {
        // Counter 0 counts INST_RETIRED at every exception level (all filter bits clear), enabled.
        write_sysreg!("pmevtyper0_el0", INST_RETIRED);
        write_sysreg!("pmcntenset_el0", 1);
        write_sysreg!("pmcr_el0", read_sysreg!("pmcr_el0") | PMCR_ENABLE);
        isb();
    }
    let start_ns = super::time::now_ns();
    let start = if counting { read_sysreg!("pmevcntr0_el0") } else { 0 };
    let value = body();
    let end = if counting { read_sysreg!("pmevcntr0_el0") } else { 0 };
    let end_ns = super::time::now_ns();
    restore_irqs(saved);
    Measured {
        value,
        ns: end_ns.saturating_sub(start_ns),
        // The counter is 32 bits wide: a wrapping difference (a closure of 4 G instructions would wrap it).
        instructions: counting.then(|| (end.wrapping_sub(start)) & 0xFFFF_FFFF),
    }
}
