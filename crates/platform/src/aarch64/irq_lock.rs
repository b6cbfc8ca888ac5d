//! Locks that mask IRQs while held: on SIS's single CPU that is full mutual exclusion.
//!
//! Only plain loads and stores are used (no exclusive monitors), so the locks
//! work before the MMU makes RAM cacheable. Taking a lock that is already held
//! can only mean re-entry on the same CPU (an exception handler reaching code
//! that was interrupted holding it), which is a kernel bug: it panics loudly
//! rather than deadlocking silently.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::registers::{read_sysreg, write_sysreg};

/// DAIF bit for IRQs.
const DAIF_IRQ: u64 = 1 << 7;

/// Masks IRQs and returns the previous DAIF value.
#[inline(always)]
pub fn mask_irqs() -> u64 {
    let saved = read_sysreg!("daif");
    // SAFETY: masking IRQs at EL1 cannot break memory safety.
    unsafe { core::arch::asm!("msr daifset, #2", options(nostack, preserves_flags)) };
    saved
}

/// Restores a DAIF value returned by [`mask_irqs`].
#[inline(always)]
pub fn restore_irqs(saved: u64) {
    write_sysreg!("daif", saved);
}

/// Whether IRQs are currently masked.
pub fn irqs_masked() -> bool {
    read_sysreg!("daif") & DAIF_IRQ != 0
}

/// Unmasks IRQs (used once threads start).
pub fn unmask_irqs() {
    // SAFETY: unmasking IRQs is sound once vectors and the GIC are set up,
    // which is the only time the platform calls this.
    unsafe { core::arch::asm!("msr daifclr, #2", options(nostack, preserves_flags)) };
}

/// A mutex that masks IRQs while held.
pub struct IrqMutex<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: SIS runs on one CPU and the lock masks IRQs while held, so at most
// one context can reach `value` at a time; `T: Send` lets it move between
// thread contexts.
unsafe impl<T: Send> Sync for IrqMutex<T> {}

impl<T> core::fmt::Debug for IrqMutex<T> {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.write_str("IrqMutex")
    }
}

impl<T> IrqMutex<T> {
    /// Creates an unlocked mutex.
    pub const fn new(value: T) -> Self {
        IrqMutex { locked: AtomicBool::new(false), value: UnsafeCell::new(value) }
    }

    /// Masks IRQs and takes the lock.
    pub fn lock(&self) -> IrqMutexGuard<'_, T> {
        let saved = mask_irqs();
        if self.locked.load(Ordering::Acquire) {
            restore_irqs(saved);
            panic!("IrqMutex re-entered on the only CPU (a handler reached code it interrupted)");
        }
        self.locked.store(true, Ordering::Release);
        IrqMutexGuard { mutex: self, saved_daif: saved }
    }

    /// Takes the lock unless it is held; used on crash paths that must not panic again.
    pub fn try_lock(&self) -> Option<IrqMutexGuard<'_, T>> {
        let saved = mask_irqs();
        if self.locked.load(Ordering::Acquire) {
            restore_irqs(saved);
            return None;
        }
        self.locked.store(true, Ordering::Release);
        Some(IrqMutexGuard { mutex: self, saved_daif: saved })
    }
}

/// Holds an [`IrqMutex`]; unlocks and restores the IRQ mask on drop.
#[derive(Debug)]
pub struct IrqMutexGuard<'a, T> {
    mutex: &'a IrqMutex<T>,
    saved_daif: u64,
}

impl<T> Deref for IrqMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves exclusive access (see `Sync` impl).
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T> DerefMut for IrqMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves exclusive access (see `Sync` impl).
        unsafe { &mut *self.mutex.value.get() }
    }
}

impl<T> Drop for IrqMutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.locked.store(false, Ordering::Release);
        restore_irqs(self.saved_daif);
    }
}

/// Raw IRQ-masking lock for `lock_api` users (the talc heap).
#[derive(Debug)]
pub struct RawIrqLock {
    locked: AtomicBool,
    saved_daif: AtomicU64,
}

// SAFETY: `lock` masks IRQs before taking the flag and `unlock` releases the
// flag before restoring them, so on one CPU no two contexts hold it at once;
// re-entry panics instead of returning a second guard.
unsafe impl lock_api::RawMutex for RawIrqLock {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = RawIrqLock { locked: AtomicBool::new(false), saved_daif: AtomicU64::new(0) };
    type GuardMarker = lock_api::GuardNoSend;

    fn lock(&self) {
        let saved = mask_irqs();
        if self.locked.load(Ordering::Acquire) {
            restore_irqs(saved);
            panic!("heap lock re-entered (allocation from a handler that interrupted the heap)");
        }
        self.locked.store(true, Ordering::Release);
        self.saved_daif.store(saved, Ordering::Relaxed);
    }

    fn try_lock(&self) -> bool {
        let saved = mask_irqs();
        if self.locked.load(Ordering::Acquire) {
            restore_irqs(saved);
            return false;
        }
        self.locked.store(true, Ordering::Release);
        self.saved_daif.store(saved, Ordering::Relaxed);
        true
    }

    unsafe fn unlock(&self) {
        let saved = self.saved_daif.load(Ordering::Relaxed);
        self.locked.store(false, Ordering::Release);
        restore_irqs(saved);
    }
}
