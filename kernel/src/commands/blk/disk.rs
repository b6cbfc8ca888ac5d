//! The attached disk: the block stack over virtio-blk, handed to one command at a time.
//!
//! The stack is taken out of its slot while a command uses it and put back
//! afterwards, so no lock is held while a request sleeps on a stall or
//! blocks for its completion interrupt (locks here mask IRQs, and a thread
//! must never hold one across a switch). A thread that finds the disk in use
//! waits for it (blocked, woken when it is put back): during a stall every
//! writer waits, none is refused.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use sis_blk::{BlockCache, BlockError, FaultInjector};
use sis_platform::irq_lock::IrqMutex;
use sis_platform::thread;
use sis_platform::time::PlatformClock;
use sis_platform::virtio::VirtioBlock;
use sis_sched::ThreadId;
use sis_shell::ShellError;

/// Sectors the cache holds (32 KiB).
pub const CACHE_SECTORS: usize = 64;

/// The fault layer between the cache and the device.
pub type FaultLayer = FaultInjector<VirtioBlock, PlatformClock>;

/// The kernel's block stack: cache, then fault injector, then the device.
pub type Stack = BlockCache<FaultLayer>;

/// The disk and its layers.
#[derive(Debug)]
pub struct Disk {
    /// Cache over faults over virtio-blk.
    pub stack: Stack,
}

impl Disk {
    /// The virtio driver at the bottom.
    pub fn driver(&self) -> &VirtioBlock {
        self.stack.device().device()
    }

    /// The fault injector.
    pub fn faults(&mut self) -> &mut FaultInjector<VirtioBlock, PlatformClock> {
        self.stack.device_mut()
    }
}

enum Slot {
    Absent,
    Idle(Box<Disk>),
    /// In use by this thread.
    Busy(ThreadId),
}

static SLOT: IrqMutex<Slot> = IrqMutex::new(Slot::Absent);
/// Threads waiting for the disk.
static WAITERS: IrqMutex<Vec<ThreadId>> = IrqMutex::new(Vec::new());
/// Times a command found the disk in use and waited for it.
static WAITS: AtomicU64 = AtomicU64::new(0);

/// Error code: QEMU has no virtio-blk device.
pub const NO_DEVICE: &str = "no-device";
/// Error code: the thread already holds the disk (a nested use would wait for itself).
pub const DEVICE_BUSY: &str = "device-busy";

/// Installs the probed device (called once at boot).
pub fn attach(device: Option<VirtioBlock>) {
    if let Some(device) = device {
        let stack = BlockCache::new(FaultInjector::new(device, PlatformClock), CACHE_SECTORS);
        *SLOT.lock() = Slot::Idle(Box::new(Disk { stack }));
    }
}

/// Whether a disk is attached.
pub fn attached() -> bool {
    !matches!(*SLOT.lock(), Slot::Absent)
}

/// Times a command found the disk in use and waited for it, since boot.
pub fn waits() -> u64 {
    WAITS.load(Relaxed)
}

/// Runs `body` with the disk, waiting while another thread uses it; refuses with `no-device`, or
/// `device-busy` if this thread already holds it.
pub fn with_disk<T>(body: impl FnOnce(&mut Disk) -> Result<T, ShellError>) -> Result<T, ShellError> {
    let me = thread::current_id();
    let mut taken: Option<Result<Box<Disk>, ShellError>> = None;
    let mut waited = false;
    thread::block_current_until(|| {
        let mut slot = SLOT.lock();
        match core::mem::replace(&mut *slot, Slot::Busy(me)) {
            Slot::Idle(disk) => taken = Some(Ok(disk)),
            Slot::Absent => {
                *slot = Slot::Absent;
                taken = Some(Err(no_device()));
            }
            Slot::Busy(holder) if holder == me => {
                taken = Some(Err(ShellError::new(DEVICE_BUSY, "this thread already holds the block device")));
            }
            Slot::Busy(holder) => {
                *slot = Slot::Busy(holder);
                let mut waiters = WAITERS.lock();
                if !waiters.contains(&me) {
                    waiters.push(me);
                }
                waited = true;
                return false;
            }
        }
        true
    });
    if waited {
        WAITS.fetch_add(1, Relaxed);
    }
    let mut disk = match taken {
        Some(Ok(disk)) => disk,
        Some(Err(error)) => return Err(error),
        None => return Err(ShellError::new("internal", "the disk slot was left without an answer")),
    };
    let result = body(&mut disk);
    *SLOT.lock() = Slot::Idle(disk);
    let waiters = core::mem::take(&mut *WAITERS.lock());
    for waiter in waiters {
        thread::wake(waiter);
    }
    result
}

/// The error every command but `status` gives without a disk.
pub fn no_device() -> ShellError {
    ShellError::new(
        NO_DEVICE,
        "no block device: QEMU was started without a virtio-blk drive (-drive file=IMG,if=none,format=raw,id=hd0 -device virtio-blk-device,drive=hd0)",
    )
}

/// A block-layer error as a shell error (same code, same message).
pub fn shell_error(error: BlockError) -> ShellError {
    ShellError::new(error.code(), alloc::format!("{error}"))
}
