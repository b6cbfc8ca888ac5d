//! Leaving the machine: PSCI `SYSTEM_OFF` and semihosting `SYS_EXIT` with a status.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::bootinfo::PsciMethod;

const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;
const SEMIHOSTING_SYS_EXIT: u64 = 0x18;
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x2_0026;

static PSCI_USES_SMC: AtomicBool = AtomicBool::new(false);

/// Records the PSCI conduit named by the device tree.
pub fn init(method: PsciMethod) {
    PSCI_USES_SMC.store(method == PsciMethod::Smc, Ordering::Relaxed);
}

/// Powers the machine off through PSCI `SYSTEM_OFF` (QEMU exits with status 0).
pub fn system_off() -> ! {
    // SAFETY: SYSTEM_OFF does not return on success; if the firmware refuses,
    // x0 comes back with an error code and the CPU parks below.
    unsafe {
        if PSCI_USES_SMC.load(Ordering::Relaxed) {
            core::arch::asm!("smc #0", inout("x0") PSCI_SYSTEM_OFF => _, options(nostack));
        } else {
            core::arch::asm!("hvc #0", inout("x0") PSCI_SYSTEM_OFF => _, options(nostack));
        }
    }
    park()
}

/// Ends QEMU with `status` through semihosting `SYS_EXIT`.
///
/// Needs `-semihosting-config enable=on,target=native`; every SIS launcher
/// passes it. Without it QEMU treats the call as a debug halt.
pub fn exit_with_status(status: i32) -> ! {
    let block = [ADP_STOPPED_APPLICATION_EXIT, status as u32 as u64];
    // SAFETY: `hlt #0xf000` is the AArch64 semihosting trap; x1 points at a
    // two-word parameter block that lives on this stack for the whole call.
    unsafe {
        core::arch::asm!(
            "hlt #0xf000",
            in("x0") SEMIHOSTING_SYS_EXIT,
            in("x1") block.as_ptr(),
            options(nostack)
        );
    }
    park()
}

/// Stops this CPU for good.
pub fn park() -> ! {
    loop {
        // SAFETY: waiting for an event has no memory effect.
        unsafe { core::arch::asm!("msr daifset, #0xf", "wfi", options(nostack)) };
    }
}
