//! virtio over MMIO: the `virtio-drivers` HAL on SIS's identity map, discovery from the device tree,
//! and a block driver whose requests complete by interrupt.
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

use super::virtio_transport::{Notifications, SisTransport};
use sis_blk::{check_request, BlockDevice, BlockError, Operation};
use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk};
use virtio_drivers::transport::mmio::{MmioError, MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

use super::profile::{self, Layer};
use super::registers::{mmio_read32, mmio_write32};
pub use super::virtio_net::{NetDriverStats, NetWaker, VirtioNet};
use super::{gic, memory, thread};
use crate::bootinfo::BootInfo;

/// virtio-mmio register offsets (virtio 1.2, section 4.2.2).
const INTERRUPT_STATUS: u64 = 0x60;
const INTERRUPT_ACK: u64 = 0x64;
const QUEUE_NOTIFY: u64 = 0x50;
/// Most block requests [`VirtioBlock`] keeps in flight (the queue has 16 descriptors; with indirect descriptors a
/// request takes one).
pub const MAX_QUEUE_DEPTH: usize = 16;
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

/// Queue notifications of the block and the network device (the first of each kind is driven).
static BLOCK_NOTIFICATIONS: Notifications = Notifications::new();
pub(super) static NET_NOTIFICATIONS: Notifications = Notifications::new();

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

/// Driver counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockDriverStats {
    /// Requests completed (read, write, flush).
    pub requests: u64,
    /// Requests the device answered with an error.
    pub device_errors: u64,
    /// Interrupts taken on the device's line.
    pub interrupts: u64,
    /// Times the requesting thread blocked waiting for a completion.
    pub blocked_waits: u64,
    /// Queue notifications written to the device (one register write each; the device suppresses most while it
    /// works through the queue).
    pub notifications: u64,
}

/// A virtio-blk device: `virtio-drivers` underneath, SIS's [`BlockDevice`] on top.
pub struct VirtioBlock {
    driver: VirtIOBlk<SisHal, SisTransport>,
    line: usize,
    base: u64,
    intid: u32,
    stats: BlockDriverStats,
}

impl core::fmt::Debug for VirtioBlock {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("VirtioBlock")
            .field("base", &self.base)
            .field("intid", &self.intid)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// A driver error as a [`BlockError`].
fn device_error(operation: Operation, error: virtio_drivers::Error) -> BlockError {
    let reason = match error {
        virtio_drivers::Error::IoError => "I/O error reported by the device",
        virtio_drivers::Error::Unsupported => "request not supported by the device",
        virtio_drivers::Error::NotReady => "device not ready",
        virtio_drivers::Error::QueueFull => "virtqueue full",
        virtio_drivers::Error::DmaError => "no memory for DMA",
        _ => "virtio driver error",
    };
    BlockError::Device { operation, reason }
}

impl VirtioBlock {
    fn new(transport: MmioTransport<'static>, base: u64, intid: u32) -> Result<Self, &'static str> {
        let transport = SisTransport::new(transport, &BLOCK_NOTIFICATIONS, false);
        let mut driver = VirtIOBlk::<SisHal, _>::new(transport).map_err(|_| "virtio-blk initialisation failed")?;
        // Claimed only for a working driver; without a line the driver is dropped, which resets the device.
        let line = claim_line(intid, base).ok_or("no free interrupt line")?;
        driver.enable_interrupts();
        gic::enable_interrupt(intid);
        Ok(VirtioBlock { driver, line, base, intid, stats: BlockDriverStats::default() })
    }

    /// Register window base.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Interrupt ID.
    pub fn intid(&self) -> u32 {
        self.intid
    }

    /// Whether the device refuses writes.
    pub fn read_only(&self) -> bool {
        self.driver.readonly()
    }

    /// Counters, interrupts included.
    pub fn stats(&self) -> BlockDriverStats {
        BlockDriverStats {
            interrupts: LINES[self.line].interrupts.load(Ordering::Relaxed),
            notifications: BLOCK_NOTIFICATIONS.written(),
            ..self.stats
        }
    }

    /// Blocks the calling thread until the device has used some chain; returns its token.
    fn wait_for_any(&mut self) -> u16 {
        let line = &LINES[self.line];
        let driver = &mut self.driver;
        let mut checks = 0u64;
        let mut used = 0;
        thread::block_current_until(|| {
            checks += 1;
            match driver.peek_used() {
                Some(token) => {
                    line.waiter.store(0, Ordering::Release);
                    used = token;
                    true
                }
                None => {
                    line.waiter.store(thread::current_id() + 1, Ordering::Release);
                    false
                }
            }
        });
        self.stats.blocked_waits += checks - 1;
        used
    }

    /// Runs `chunks` requests of one kind with up to `depth` in flight: `submit(driver, slot, chunk)` queues
    /// chunk `chunk` with slot `slot`'s request and response, `complete(driver, slot, chunk, token)` takes it back.
    /// Completions may come in any order. Every request submitted is taken back before this returns, error or not.
    fn run(
        &mut self,
        operation: Operation,
        chunks: usize,
        depth: usize,
        mut submit: impl FnMut(&mut VirtIOBlk<SisHal, SisTransport>, usize, usize) -> Result<u16, virtio_drivers::Error>,
        mut complete: impl FnMut(
            &mut VirtIOBlk<SisHal, SisTransport>,
            usize,
            usize,
            u16,
        ) -> Result<(), virtio_drivers::Error>,
    ) -> Result<(), BlockError> {
        let depth = depth.clamp(1, MAX_QUEUE_DEPTH);
        let caller = profile::enter(Layer::BlockDevice);
        // Per slot: the chunk in flight and its token.
        let mut in_flight: [Option<(usize, u16)>; MAX_QUEUE_DEPTH] = [None; MAX_QUEUE_DEPTH];
        let mut next = 0;
        let mut first_error = None;
        loop {
            // Every request that fits is queued before the device is told, once, of all of them: QEMU then takes
            // them in one pass (and merges neighbours) instead of one trap and one pass per request.
            BLOCK_NOTIFICATIONS.hold();
            while first_error.is_none() && next < chunks {
                let Some(slot) = in_flight[..depth].iter().position(Option::is_none) else { break };
                match submit(&mut self.driver, slot, next) {
                    Ok(token) => {
                        in_flight[slot] = Some((next, token));
                        next += 1;
                    }
                    // The ring is full: wait for a completion, unless nothing is in flight to complete.
                    Err(virtio_drivers::Error::QueueFull) if in_flight.iter().any(Option::is_some) => break,
                    Err(error) => first_error = Some(device_error(operation, error)),
                }
            }
            if BLOCK_NOTIFICATIONS.release() {
                self.notify_queue();
            }
            if in_flight.iter().all(Option::is_none) {
                break;
            }
            profile::enter(caller);
            let mut used = Some(self.wait_for_any());
            profile::enter(Layer::BlockDevice);
            // Every completion already there is taken back before queueing again.
            while let Some(token) = used {
                let Some(slot) = in_flight.iter().position(|entry| entry.is_some_and(|(_, t)| t == token)) else {
                    // A token this driver never handed out: the queue is beyond repair; the requests in flight stay
                    // with the device (their buffers are the caller's, borrowed until it returns: leak-free only if
                    // the device never completes them, which a broken device may not).
                    self.stats.device_errors += 1;
                    profile::enter(caller);
                    return Err(BlockError::Device { operation, reason: "the device completed an unknown request" });
                };
                if let Some((chunk, _)) = in_flight[slot].take() {
                    self.stats.requests += 1;
                    if let Err(error) = complete(&mut self.driver, slot, chunk, token) {
                        self.stats.device_errors += 1;
                        first_error.get_or_insert(device_error(operation, error));
                    }
                }
                used = self.driver.peek_used();
            }
        }
        profile::enter(caller);
        first_error.map_or(Ok(()), Err)
    }

    /// Tells the device that its queue has new requests (the notification [`Notifications::hold`] kept back).
    fn notify_queue(&self) {
        // The ring's new index is in memory before the device is told.
        core::sync::atomic::fence(Ordering::SeqCst);
        // SAFETY: `base` is this device's virtio-mmio window (mapped as device memory); writing the index of its
        // only queue, 0, to QueueNotify is the notification the virtio specification defines, as the transport's
        // own `notify` writes it.
        unsafe { mmio_write32(self.base + QUEUE_NOTIFY, 0) };
        BLOCK_NOTIFICATIONS.count();
    }

    /// Blocks the calling thread until the device has used the chain `token`.
    fn wait_for(&mut self, token: u16) {
        let line = &LINES[self.line];
        let driver = &mut self.driver;
        let mut checks = 0u64;
        thread::block_current_until(|| {
            checks += 1;
            if driver.peek_used() == Some(token) {
                line.waiter.store(0, Ordering::Release);
                true
            } else {
                line.waiter.store(thread::current_id() + 1, Ordering::Release);
                false
            }
        });
        self.stats.blocked_waits += checks - 1;
    }

    fn finish(&mut self, operation: Operation, result: Result<(), virtio_drivers::Error>) -> Result<(), BlockError> {
        self.stats.requests += 1;
        result.map_err(|error| {
            self.stats.device_errors += 1;
            device_error(operation, error)
        })
    }
}

impl BlockDevice for VirtioBlock {
    fn capacity_sectors(&self) -> u64 {
        self.driver.capacity()
    }

    fn read_sectors(&mut self, lba: u64, buffer: &mut [u8]) -> Result<(), BlockError> {
        check_request(self.capacity_sectors(), lba, buffer.len())?;
        let mut request = BlkReq::default();
        let mut response = BlkResp::default();
        // SAFETY: `request`, `buffer` and `response` stay borrowed by this
        // function and untouched until `complete_read_blocks` below has
        // taken the chain back from the device.
        let token = unsafe { self.driver.read_blocks_nb(lba as usize, &mut request, buffer, &mut response) }
            .map_err(|error| device_error(Operation::Read, error))?;
        self.wait_for(token);
        // SAFETY: the same three buffers that were submitted with `token`.
        let result = unsafe { self.driver.complete_read_blocks(token, &request, buffer, &mut response) };
        self.finish(Operation::Read, result)
    }

    fn write_sectors(&mut self, lba: u64, data: &[u8]) -> Result<(), BlockError> {
        check_request(self.capacity_sectors(), lba, data.len())?;
        if self.read_only() {
            return Err(BlockError::Device { operation: Operation::Write, reason: "the device is read-only" });
        }
        let mut request = BlkReq::default();
        let mut response = BlkResp::default();
        // SAFETY: as for reads: the buffers outlive the request and are not
        // touched until `complete_write_blocks` has taken the chain back.
        let token = unsafe { self.driver.write_blocks_nb(lba as usize, &mut request, data, &mut response) }
            .map_err(|error| device_error(Operation::Write, error))?;
        self.wait_for(token);
        // SAFETY: the same three buffers that were submitted with `token`.
        let result = unsafe { self.driver.complete_write_blocks(token, &request, data, &mut response) };
        self.finish(Operation::Write, result)
    }

    /// Up to `depth` requests in flight (at most [`MAX_QUEUE_DEPTH`]); QEMU then works on several at once and
    /// merges neighbours.
    fn write_run(&mut self, lba: u64, data: &[u8], request_bytes: usize, depth: usize) -> Result<(), BlockError> {
        sis_blk::check_run(self.capacity_sectors(), lba, data.len(), request_bytes)?;
        if self.read_only() {
            return Err(BlockError::Device { operation: Operation::Write, reason: "the device is read-only" });
        }
        let chunks: Vec<&[u8]> = data.chunks(request_bytes).collect();
        let sectors_per_request = request_bytes / sis_blk::SECTOR_SIZE;
        let mut requests: [BlkReq; MAX_QUEUE_DEPTH] = core::array::from_fn(|_| BlkReq::default());
        let mut responses: [BlkResp; MAX_QUEUE_DEPTH] = core::array::from_fn(|_| BlkResp::default());
        let (requests, responses) = (core::cell::RefCell::new(&mut requests), core::cell::RefCell::new(&mut responses));
        // SAFETY: each slot's request and response and each chunk stay borrowed by this function, untouched, from
        // `write_blocks_nb` until `complete_write_blocks` took the chain back; `run` takes back every chain it
        // submitted before returning, and a slot is reused only after its chain came back.
        self.run(
            Operation::Write,
            chunks.len(),
            depth,
            |driver, slot, chunk| unsafe {
                let sector = lba as usize + chunk * sectors_per_request;
                driver.write_blocks_nb(
                    sector,
                    &mut requests.borrow_mut()[slot],
                    chunks[chunk],
                    &mut responses.borrow_mut()[slot],
                )
            },
            |driver, slot, chunk, token| unsafe {
                driver.complete_write_blocks(
                    token,
                    &requests.borrow()[slot],
                    chunks[chunk],
                    &mut responses.borrow_mut()[slot],
                )
            },
        )
    }

    /// As [`write_run`](Self::write_run), reading.
    fn read_run(&mut self, lba: u64, buffer: &mut [u8], request_bytes: usize, depth: usize) -> Result<(), BlockError> {
        sis_blk::check_run(self.capacity_sectors(), lba, buffer.len(), request_bytes)?;
        let mut chunks: Vec<&mut [u8]> = buffer.chunks_mut(request_bytes).collect();
        let count = chunks.len();
        let sectors_per_request = request_bytes / sis_blk::SECTOR_SIZE;
        let mut requests: [BlkReq; MAX_QUEUE_DEPTH] = core::array::from_fn(|_| BlkReq::default());
        let mut responses: [BlkResp; MAX_QUEUE_DEPTH] = core::array::from_fn(|_| BlkResp::default());
        let chunks = core::cell::RefCell::new(&mut chunks);
        let (requests, responses) = (core::cell::RefCell::new(&mut requests), core::cell::RefCell::new(&mut responses));
        // SAFETY: as for `write_run`: buffers stay put and untouched between submission and completion.
        self.run(
            Operation::Read,
            count,
            depth,
            |driver, slot, chunk| unsafe {
                let sector = lba as usize + chunk * sectors_per_request;
                driver.read_blocks_nb(
                    sector,
                    &mut requests.borrow_mut()[slot],
                    chunks.borrow_mut()[chunk],
                    &mut responses.borrow_mut()[slot],
                )
            },
            |driver, slot, chunk, token| unsafe {
                driver.complete_read_blocks(
                    token,
                    &requests.borrow()[slot],
                    chunks.borrow_mut()[chunk],
                    &mut responses.borrow_mut()[slot],
                )
            },
        )
    }

    /// A virtio FLUSH request (QEMU then flushes the image file); it waits by polling the queue (virtio-drivers
    /// 0.13 has no non-blocking flush).
    fn flush(&mut self) -> Result<(), BlockError> {
        let result = self.driver.flush();
        self.finish(Operation::Flush, result)
    }
}
