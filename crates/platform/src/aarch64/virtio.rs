//! virtio over MMIO: the `virtio-drivers` HAL on SIS's identity map, discovery from the device tree, and the
//! interrupt lines the block (`virtio_blk`) and network (`virtio_net`) drivers wait on.
//!
//! Memory: RAM is identity-mapped normal write-back memory, so a physical
//! address is its virtual address and buffers on a stack or the heap can be
//! handed to the device as they are. QEMU `virt` marks its transports
//! `dma-coherent`, so no cache maintenance is needed around DMA. DMA rings
//! come from the page-frame allocator. The transport windows lie in a
//! gigabyte the MMU maps as device memory (see `mmu::enable`).
//!
//! Completion: a request is submitted without waiting, then the calling
//! thread blocks until the device has used its descriptor chain. The
//! transport's SPI (from the node's `interrupts`) is enabled at the GIC; the
//! handler acknowledges the device (InterruptStatus → InterruptACK, so the
//! level drops before EOI), counts the interrupt and wakes the waiting thread.

use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use virtio_drivers::transport::mmio::{MmioError, MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

use super::registers::{mmio_read32, mmio_write32};
pub use super::virtio_blk::{BlockDriverStats, VirtioBlock, MAX_QUEUE_DEPTH};
pub use super::virtio_net::{NetDriverStats, NetWaker, VirtioNet};
use super::{memory, thread};
use crate::bootinfo::BootInfo;

/// virtio-mmio register offsets (virtio 1.2, section 4.2.2).
const INTERRUPT_STATUS: u64 = 0x60;
const INTERRUPT_ACK: u64 = 0x64;
/// Interrupt lines the platform can route to a driver at once.
const MAX_INTERRUPT_LINES: usize = 4;

/// The [`Hal`] of SIS: DMA pages from the frame allocator, identity translation.
#[derive(Debug)]
pub struct SisHal;

/// Buddy order of the smallest block holding `pages` pages.
fn order_for(pages: usize) -> usize {
    pages.max(1).next_power_of_two().trailing_zeros() as usize
}

// SAFETY: (1) `dma_alloc` returns a block the frame allocator handed out to
// no one else, identity-mapped (virtual = physical), page aligned and zeroed
// before it is returned, and it stays allocated until `dma_dealloc` frees it
// with the same order; (2) `share` returns the buffer's own address, which
// is its physical address under the identity map, and the device reaches all
// RAM; (3) the transports are DMA-coherent, so `unshare` has nothing to copy
// or clean.
unsafe impl Hal for SisHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let Some(address) = memory::allocate_frames(order_for(pages)) else {
            // `Dma::new` turns physical address 0 into `Error::DmaError`.
            return (0, NonNull::dangling());
        };
        let bytes = pages * virtio_drivers::PAGE_SIZE;
        // SAFETY: the block is at least `bytes` long, freshly allocated, and
        // identity-mapped normal memory that nothing else references.
        unsafe { core::ptr::write_bytes(address as *mut u8, 0, bytes) };
        match NonNull::new(address as *mut u8) {
            Some(pointer) => (address, pointer),
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, pages: usize) -> i32 {
        match memory::try_free_frames(paddr, order_for(pages)) {
            Ok(()) => 0,
            Err(_) => -1,
        }
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        // Identity map; only the PCI transport calls this, and SIS uses MMIO.
        NonNull::new(paddr as *mut u8).unwrap_or(NonNull::dangling())
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.as_ptr() as *mut u8 as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

/// One interrupt line a driver waits on: which device to acknowledge and whom to wake.
pub(super) struct InterruptLine {
    intid: AtomicU32,
    base: AtomicU64,
    /// Thread ID + 1 of the thread waiting for a completion; 0 when none.
    pub(super) waiter: AtomicU32,
    pub(super) interrupts: AtomicU64,
}

impl InterruptLine {
    /// Only used to initialise `LINES`, each element a fresh copy.
    #[allow(clippy::declare_interior_mutable_const)]
    const UNUSED: InterruptLine = InterruptLine {
        intid: AtomicU32::new(u32::MAX),
        base: AtomicU64::new(0),
        waiter: AtomicU32::new(0),
        interrupts: AtomicU64::new(0),
    };
}

pub(super) static LINES: [InterruptLine; MAX_INTERRUPT_LINES] = [InterruptLine::UNUSED; MAX_INTERRUPT_LINES];
static PROBED: AtomicBool = AtomicBool::new(false);

/// Claims a free line for `intid` and the transport at `base`; `None` when all are taken.
pub(super) fn claim_line(intid: u32, base: u64) -> Option<usize> {
    let index = LINES.iter().position(|line| line.intid.load(Ordering::Relaxed) == u32::MAX)?;
    LINES[index].base.store(base, Ordering::Relaxed);
    LINES[index].intid.store(intid, Ordering::Release);
    Some(index)
}

/// Handles `intid` if it belongs to a virtio transport: acknowledges the device, wakes its waiter.
/// Returns false for any other interrupt.
pub(super) fn on_interrupt(intid: u32) -> bool {
    let Some(line) = LINES.iter().find(|line| line.intid.load(Ordering::Acquire) == intid) else {
        return false;
    };
    let base = line.base.load(Ordering::Relaxed);
    // SAFETY: `base` is a virtio-mmio window from the device tree, mapped as
    // device memory; reading InterruptStatus and writing the same bits to
    // InterruptACK is the acknowledgement the virtio spec defines, and it
    // touches no queue state the driver owns.
    unsafe {
        let status = mmio_read32(base + INTERRUPT_STATUS);
        mmio_write32(base + INTERRUPT_ACK, status);
    }
    line.interrupts.fetch_add(1, Ordering::Relaxed);
    let waiter = line.waiter.swap(0, Ordering::AcqRel);
    if waiter != 0 {
        thread::wake(waiter - 1);
    }
    true
}

/// What one transport slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportInfo {
    /// Register window base.
    pub base: u64,
    /// Its interrupt ID.
    pub intid: u32,
    /// virtio device ID (1 network, 2 block, ...).
    pub device_id: u32,
    /// virtio-mmio version (1 legacy, 2 modern).
    pub version: u32,
}

/// What probing found.
#[derive(Debug)]
pub struct Probe {
    /// Every transport with a device behind it (device ID 0, an empty slot, is left out).
    pub devices: Vec<TransportInfo>,
    /// Transports that answered with something unusable, and why.
    pub failures: Vec<(u64, &'static str)>,
    /// The first block device, driven.
    pub block: Option<VirtioBlock>,
    /// The first network device, driven.
    pub net: Option<VirtioNet>,
}

/// Probes every `virtio,mmio` transport in the device tree once; later calls find nothing.
///
/// The first block device and the first network device are initialised and their interrupts enabled; other
/// devices are listed and reset (a transport is reset when dropped).
pub fn probe(boot: &BootInfo<'_>) -> Probe {
    let mut probe = Probe { devices: Vec::new(), failures: Vec::new(), block: None, net: None };
    if PROBED.swap(true, Ordering::AcqRel) {
        return probe;
    }
    for slot in boot.virtio_mmio_slots() {
        let Some(header) = NonNull::new(slot.base as *mut VirtIOHeader) else { continue };
        // SAFETY: the window comes from a `virtio,mmio` node of the device
        // tree, is mapped as device memory for the life of the kernel, and
        // this is the only transport ever made for it (`PROBED` guards it).
        let transport = match unsafe { MmioTransport::new(header, slot.size as usize) } {
            Ok(transport) => transport,
            Err(MmioError::InvalidDeviceID(_)) => continue,
            Err(MmioError::BadMagic(_)) => {
                probe.failures.push((slot.base, "bad magic value"));
                continue;
            }
            Err(MmioError::UnsupportedVersion(_)) => {
                probe.failures.push((slot.base, "unsupported virtio-mmio version"));
                continue;
            }
            Err(_) => {
                probe.failures.push((slot.base, "unusable transport"));
                continue;
            }
        };
        let device_type = transport.device_type();
        probe.devices.push(TransportInfo {
            base: slot.base,
            intid: slot.intid,
            device_id: device_type as u32,
            version: transport.version() as u32,
        });
        if device_type == DeviceType::Block && probe.block.is_none() {
            match VirtioBlock::new(transport, slot.base, slot.intid) {
                Ok(block) => probe.block = Some(block),
                Err(reason) => probe.failures.push((slot.base, reason)),
            }
        } else if device_type == DeviceType::Network && probe.net.is_none() {
            match VirtioNet::new(transport, slot.base, slot.intid) {
                Ok(net) => probe.net = Some(net),
                Err(reason) => probe.failures.push((slot.base, reason)),
            }
        }
    }
    probe
}
