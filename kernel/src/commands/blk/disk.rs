//! The attached disk: the block stack over virtio-blk, handed to one command at a time.
//!
//! The stack is taken out of its slot while a command uses it and put back
//! afterwards, so no lock is held while a request sleeps on a stall or
//! blocks for its completion interrupt (locks here mask IRQs, and a thread
//! must never hold one across a switch).

use alloc::boxed::Box;

use sis_blk::{BlockCache, BlockError, FaultInjector};
use sis_platform::irq_lock::IrqMutex;
use sis_platform::time::PlatformClock;
use sis_platform::virtio::VirtioBlock;
use sis_shell::ShellError;

/// Sectors the cache holds (32 KiB).
pub const CACHE_SECTORS: usize = 64;

/// The kernel's block stack: cache, then fault injector, then the device.
pub type Stack = BlockCache<FaultInjector<VirtioBlock, PlatformClock>>;

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
    Busy,
}

static SLOT: IrqMutex<Slot> = IrqMutex::new(Slot::Absent);

/// Error code: QEMU has no virtio-blk device.
pub const NO_DEVICE: &str = "no-device";
/// Error code: another thread is using the disk.
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

/// Runs `body` with the disk; refuses with `no-device` or `device-busy`.
pub fn with_disk<T>(body: impl FnOnce(&mut Disk) -> Result<T, ShellError>) -> Result<T, ShellError> {
    let mut disk = {
        let mut slot = SLOT.lock();
        match core::mem::replace(&mut *slot, Slot::Busy) {
            Slot::Idle(disk) => disk,
            Slot::Absent => {
                *slot = Slot::Absent;
                return Err(no_device());
            }
            Slot::Busy => {
                return Err(ShellError::new(DEVICE_BUSY, "the block device is in use by another thread; try again"))
            }
        }
    };
    let result = body(&mut disk);
    *SLOT.lock() = Slot::Idle(disk);
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
