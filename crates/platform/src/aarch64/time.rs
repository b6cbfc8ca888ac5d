//! The EL1 virtual generic timer: monotonic time in nanoseconds and one programmable deadline.

use core::sync::atomic::{AtomicU32, Ordering};

use super::registers::{isb, read_sysreg, write_sysreg};

static TIMER_INTID: AtomicU32 = AtomicU32::new(u32::MAX);

const CONTROL_ENABLE: u64 = 1;

/// Records the timer's interrupt ID and enables it at the GIC, timer disarmed.
pub fn init(intid: u32) {
    TIMER_INTID.store(intid, Ordering::Relaxed);
    disarm();
    super::gic::enable_interrupt(intid);
}

/// The timer's interrupt ID.
pub fn intid() -> u32 {
    TIMER_INTID.load(Ordering::Relaxed)
}

/// Counter frequency in Hz (CNTFRQ_EL0).
pub fn frequency_hz() -> u64 {
    read_sysreg!("cntfrq_el0").max(1)
}

/// Raw virtual counter (CNTVCT_EL0).
pub fn counter() -> u64 {
    isb();
    read_sysreg!("cntvct_el0")
}

/// Nanoseconds since the counter started (QEMU start).
pub fn now_ns() -> u64 {
    ticks_to_ns(counter())
}

fn ticks_to_ns(ticks: u64) -> u64 {
    (ticks as u128 * 1_000_000_000 / frequency_hz() as u128).min(u64::MAX as u128) as u64
}

fn ns_to_ticks(nanoseconds: u64) -> u64 {
    (nanoseconds as u128 * frequency_hz() as u128).div_ceil(1_000_000_000).min(u64::MAX as u128) as u64
}

/// Raises the timer interrupt when the clock reaches `deadline_ns` (at once if already past).
pub fn arm_at_ns(deadline_ns: u64) {
    write_sysreg!("cntv_cval_el0", ns_to_ticks(deadline_ns));
    write_sysreg!("cntv_ctl_el0", CONTROL_ENABLE);
    isb();
}

/// Stops the timer from raising interrupts.
pub fn disarm() {
    write_sysreg!("cntv_ctl_el0", 0);
    isb();
}

/// The generic timer as a [`sis_hal::Clock`], for portable crates.
#[derive(Debug, Default, Clone, Copy)]
pub struct PlatformClock;

impl sis_hal::Clock for PlatformClock {
    fn now_ns(&self) -> u64 {
        now_ns()
    }
}

impl sis_hal::Sleep for PlatformClock {
    /// Sleeps the calling thread (other threads run meanwhile).
    fn sleep_until_ns(&self, deadline_ns: u64) {
        super::thread::sleep_until_ns(deadline_ns);
    }
}
