//! virtio-blk: SIS's own request handling on `virtio-drivers`' virtqueue, with completions by interrupt.
//!
//! `virtio-drivers`' `VirtIOBlk` fixes its queue at 16 descriptors, notifies the device after every request it
//! queues, and flushes by spinning on the queue (its request header is private, so no flush can be queued
//! without waiting). This driver builds the requests itself (virtio 1.2, section 5.2.6: a 16-byte header the
//! device reads, the data, and a status byte the device writes) on the library's `VirtQueue`, with indirect
//! descriptors so that each request takes one descriptor of the ring:
//! - [`MAX_QUEUE_DEPTH`] requests in flight;
//! - a run of requests is queued whole and the device told once (QEMU's virtio-blk takes every queued request in
//!   the trapping vCPU, under its global lock, so one notification for sixteen requests is one trap and one pass
//!   instead of sixteen);
//! - every wait, the flush's included, blocks the calling thread until the device's interrupt.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use sis_blk::{check_request, BlockDevice, BlockError, Operation};
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::mmio::MmioTransport;
use virtio_drivers::transport::{DeviceStatus, Transport};

use super::profile::{self, Layer};
use super::virtio::{claim_line, SisHal, LINES};
use super::virtio_transport::SisTransport;
use super::{gic, thread};

/// Most block requests [`VirtioBlock`] keeps in flight: the queue's size, a request taking one descriptor.
pub const MAX_QUEUE_DEPTH: usize = 64;
/// The device's only queue.
const QUEUE: u16 = 0;

/// Feature bits (virtio 1.2, sections 5.2.3 and 6).
const FEATURE_READ_ONLY: u64 = 1 << 5;
const FEATURE_FLUSH: u64 = 1 << 9;
const FEATURE_INDIRECT_DESCRIPTORS: u64 = 1 << 28;
const FEATURE_EVENT_INDEX: u64 = 1 << 29;
const FEATURE_VERSION_1: u64 = 1 << 32;
const SUPPORTED_FEATURES: u64 =
    FEATURE_READ_ONLY | FEATURE_FLUSH | FEATURE_INDIRECT_DESCRIPTORS | FEATURE_EVENT_INDEX | FEATURE_VERSION_1;

/// Request types and status values (virtio 1.2, section 5.2.6).
const REQUEST_IN: u32 = 0;
const REQUEST_OUT: u32 = 1;
const REQUEST_FLUSH: u32 = 4;
const STATUS_OK: u8 = 0;
const STATUS_UNSUPPORTED: u8 = 2;
/// What the status byte holds until the device writes it.
const STATUS_UNWRITTEN: u8 = 0xff;

/// Notifications written to the block device (the first one is driven).
static NOTIFICATIONS: AtomicU64 = AtomicU64::new(0);

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
    /// Queue notifications written to the device (one register write each, for every run of requests queued
    /// together).
    pub notifications: u64,
}

/// One request's header and status: what the device reads before the data and writes after it.
#[derive(Debug, Clone, Copy)]
struct Slot {
    header: [u8; 16],
    status: [u8; 1],
}

impl Slot {
    const EMPTY: Slot = Slot { header: [0; 16], status: [STATUS_UNWRITTEN] };

    fn prepare(&mut self, kind: u32, sector: u64) {
        self.header[..4].copy_from_slice(&kind.to_le_bytes());
        self.header[4..8].fill(0);
        self.header[8..].copy_from_slice(&sector.to_le_bytes());
        self.status = [STATUS_UNWRITTEN];
    }
}

/// A request's data.
enum Data<'a> {
    /// Read into: the device writes it.
    Into(&'a mut [u8]),
    /// Written from: the device reads it.
    From(&'a [u8]),
    /// A flush has none.
    None,
}

/// The transport and the queue, without the driver's bookkeeping.
struct Queue {
    // Dropped before `ring`: the transport's drop resets the device, so it no longer touches the ring's memory.
    transport: SisTransport,
    ring: VirtQueue<SisHal, MAX_QUEUE_DEPTH>,
}

impl Queue {
    /// Queues `slot`'s request with `data`, without telling the device.
    ///
    /// # Safety
    /// `slot` and `data` must stay in place and untouched until [`Queue::take`] took the returned token back with
    /// the same `slot` and `data`.
    unsafe fn add(&mut self, slot: &mut Slot, data: &mut Data<'_>) -> Result<u16, virtio_drivers::Error> {
        // SAFETY: the caller keeps the buffers in place until `take`.
        unsafe {
            match data {
                Data::Into(buffer) => self.ring.add(&[&slot.header[..]], &mut [&mut **buffer, &mut slot.status[..]]),
                Data::From(buffer) => self.ring.add(&[&slot.header[..], *buffer], &mut [&mut slot.status[..]]),
                Data::None => self.ring.add(&[&slot.header[..]], &mut [&mut slot.status[..]]),
            }
        }
    }

    /// Tells the device of the requests queued since the last time, if it asks to be told.
    fn notify(&mut self) {
        if self.ring.should_notify() {
            self.transport.notify(QUEUE);
        }
    }

    /// Takes back the request `token` (next in the used ring) and reads its status.
    ///
    /// # Safety
    /// `slot` and `data` must be those [`Queue::add`] queued with `token`.
    unsafe fn take(&mut self, token: u16, slot: &mut Slot, data: &mut Data<'_>) -> Result<(), virtio_drivers::Error> {
        // SAFETY: the same buffers as were added with `token`.
        unsafe {
            match data {
                Data::Into(buffer) => {
                    self.ring.pop_used(token, &[&slot.header[..]], &mut [&mut **buffer, &mut slot.status[..]])
                }
                Data::From(buffer) => {
                    self.ring.pop_used(token, &[&slot.header[..], *buffer], &mut [&mut slot.status[..]])
                }
                Data::None => self.ring.pop_used(token, &[&slot.header[..]], &mut [&mut slot.status[..]]),
            }
        }?;
        match slot.status[0] {
            STATUS_OK => Ok(()),
            STATUS_UNSUPPORTED => Err(virtio_drivers::Error::Unsupported),
            // VIRTIO_BLK_S_IOERR (1), or a status the specification does not define.
            _ => Err(virtio_drivers::Error::IoError),
        }
    }
}

/// A virtio-blk device with SIS's [`BlockDevice`] on top.
pub struct VirtioBlock {
    queue: Queue,
    capacity_sectors: u64,
    read_only: bool,
    can_flush: bool,
    line: usize,
    base: u64,
    intid: u32,
    stats: BlockDriverStats,
}

impl Drop for VirtioBlock {
    fn drop(&mut self) {
        // The device lets go of the ring before its memory is freed.
        self.queue.transport.queue_unset(QUEUE);
    }
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
    pub(super) fn new(transport: MmioTransport<'static>, base: u64, intid: u32) -> Result<Self, &'static str> {
        let mut transport = SisTransport::new(transport, &NOTIFICATIONS, false);
        // Device initialisation (virtio 1.2, section 3.1.1), as the library's `begin_init` does it.
        transport.set_status(DeviceStatus::empty());
        transport.set_status(DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER);
        let features = transport.read_device_features() & SUPPORTED_FEATURES;
        transport.write_driver_features(features);
        transport.set_status(DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER | DeviceStatus::FEATURES_OK);
        transport.set_guest_page_size(virtio_drivers::PAGE_SIZE as u32);
        if features & FEATURE_INDIRECT_DESCRIPTORS == 0 {
            // Without them a request takes three descriptors and the depth above would not fit.
            return Err("virtio-blk device without indirect descriptors");
        }
        // The capacity in sectors: the configuration space's first field (two 32-bit halves in virtio-mmio).
        let capacity_sectors = transport
            .read_consistent(|| {
                let low: u32 = transport.read_config_space(0)?;
                let high: u32 = transport.read_config_space(4)?;
                Ok(u64::from(low) | (u64::from(high) << 32))
            })
            .map_err(|_| "virtio-blk configuration unreadable")?;
        let ring = VirtQueue::new(&mut transport, QUEUE, true, features & FEATURE_EVENT_INDEX != 0)
            .map_err(|_| "virtio-blk queue set-up failed")?;
        transport.finish_init();
        let mut queue = Queue { transport, ring };
        // Claimed only for a working driver; without a line the queue is dropped, which resets the device.
        let line = claim_line(intid, base).ok_or("no free interrupt line")?;
        queue.ring.set_dev_notify(true);
        gic::enable_interrupt(intid);
        Ok(VirtioBlock {
            queue,
            capacity_sectors,
            read_only: features & FEATURE_READ_ONLY != 0,
            can_flush: features & FEATURE_FLUSH != 0,
            line,
            base,
            intid,
            stats: BlockDriverStats::default(),
        })
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
        self.read_only
    }

    /// Counters, interrupts included.
    pub fn stats(&self) -> BlockDriverStats {
        BlockDriverStats {
            interrupts: LINES[self.line].interrupts.load(Ordering::Relaxed),
            notifications: NOTIFICATIONS.load(Ordering::Relaxed),
            ..self.stats
        }
    }

    /// Blocks the calling thread until the device has used some request; returns its token.
    fn wait_for_any(&mut self) -> u16 {
        let line = &LINES[self.line];
        let ring = &self.queue.ring;
        let mut checks = 0u64;
        let mut used = 0;
        thread::block_current_until(|| {
            checks += 1;
            match ring.peek_used() {
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

    /// Runs the requests `data` of one kind, each `request_sectors` long from `lba` on, with up to `depth` in
    /// flight. Every request that fits is queued before the device is told, once; every completion already there
    /// is taken back before queueing again; completions may come in any order. Every request queued is taken back
    /// before this returns, error or not.
    fn run(
        &mut self,
        operation: Operation,
        kind: u32,
        lba: u64,
        request_sectors: u64,
        data: &mut [Data<'_>],
        depth: usize,
    ) -> Result<(), BlockError> {
        let depth = depth.clamp(1, MAX_QUEUE_DEPTH);
        let caller = profile::enter(Layer::BlockDevice);
        let mut slots = [Slot::EMPTY; MAX_QUEUE_DEPTH];
        // Per slot: the request in flight and its token.
        let mut in_flight: [Option<(usize, u16)>; MAX_QUEUE_DEPTH] = [None; MAX_QUEUE_DEPTH];
        let mut next = 0;
        let mut first_error = None;
        loop {
            let mut queued = false;
            while first_error.is_none() && next < data.len() {
                let Some(slot) = in_flight[..depth].iter().position(Option::is_none) else { break };
                slots[slot].prepare(kind, lba + next as u64 * request_sectors);
                // SAFETY: `slots` and `data` live until this function returns, and the entry stays untouched
                // until `take` below took its token back: a slot is reused only after that, and every request
                // queued is taken back before the function returns (the one exit before that is a broken device,
                // below).
                match unsafe { self.queue.add(&mut slots[slot], &mut data[next]) } {
                    Ok(token) => {
                        in_flight[slot] = Some((next, token));
                        next += 1;
                        queued = true;
                    }
                    // The ring is full: wait for a completion, unless nothing is in flight to complete.
                    Err(virtio_drivers::Error::QueueFull) if in_flight.iter().any(Option::is_some) => break,
                    Err(error) => first_error = Some(device_error(operation, error)),
                }
            }
            if queued {
                self.queue.notify();
            }
            if in_flight.iter().all(Option::is_none) {
                break;
            }
            profile::enter(caller);
            let mut used = Some(self.wait_for_any());
            profile::enter(Layer::BlockDevice);
            while let Some(token) = used {
                let Some(slot) = in_flight.iter().position(|entry| entry.is_some_and(|(_, t)| t == token)) else {
                    // A token this driver never handed out: the queue is beyond repair; the requests in flight stay
                    // with the device (their buffers are the caller's, borrowed until it returns: leak-free only if
                    // the device never completes them, which a broken device may not).
                    self.stats.device_errors += 1;
                    profile::enter(caller);
                    return Err(BlockError::Device { operation, reason: "the device completed an unknown request" });
                };
                if let Some((index, _)) = in_flight[slot].take() {
                    self.stats.requests += 1;
                    // SAFETY: the slot and data queued with `token`.
                    if let Err(error) = unsafe { self.queue.take(token, &mut slots[slot], &mut data[index]) } {
                        self.stats.device_errors += 1;
                        first_error.get_or_insert(device_error(operation, error));
                    }
                }
                used = self.queue.ring.peek_used();
            }
        }
        profile::enter(caller);
        first_error.map_or(Ok(()), Err)
    }
}

impl BlockDevice for VirtioBlock {
    fn capacity_sectors(&self) -> u64 {
        self.capacity_sectors
    }

    fn read_sectors(&mut self, lba: u64, buffer: &mut [u8]) -> Result<(), BlockError> {
        check_request(self.capacity_sectors, lba, buffer.len())?;
        self.run(Operation::Read, REQUEST_IN, lba, 0, &mut [Data::Into(buffer)], 1)
    }

    fn write_sectors(&mut self, lba: u64, data: &[u8]) -> Result<(), BlockError> {
        check_request(self.capacity_sectors, lba, data.len())?;
        if self.read_only {
            return Err(BlockError::Device { operation: Operation::Write, reason: "the device is read-only" });
        }
        self.run(Operation::Write, REQUEST_OUT, lba, 0, &mut [Data::From(data)], 1)
    }

    /// Up to `depth` requests in flight (at most [`MAX_QUEUE_DEPTH`]); QEMU then works on several at once and
    /// merges neighbours.
    fn write_run(&mut self, lba: u64, data: &[u8], request_bytes: usize, depth: usize) -> Result<(), BlockError> {
        sis_blk::check_run(self.capacity_sectors, lba, data.len(), request_bytes)?;
        if self.read_only {
            return Err(BlockError::Device { operation: Operation::Write, reason: "the device is read-only" });
        }
        let mut requests: Vec<Data<'_>> = data.chunks(request_bytes).map(Data::From).collect();
        let request_sectors = (request_bytes / sis_blk::SECTOR_SIZE) as u64;
        self.run(Operation::Write, REQUEST_OUT, lba, request_sectors, &mut requests, depth)
    }

    /// As [`write_run`](Self::write_run), reading.
    fn read_run(&mut self, lba: u64, buffer: &mut [u8], request_bytes: usize, depth: usize) -> Result<(), BlockError> {
        sis_blk::check_run(self.capacity_sectors, lba, buffer.len(), request_bytes)?;
        let mut requests: Vec<Data<'_>> = buffer.chunks_mut(request_bytes).map(Data::Into).collect();
        let request_sectors = (request_bytes / sis_blk::SECTOR_SIZE) as u64;
        self.run(Operation::Read, REQUEST_IN, lba, request_sectors, &mut requests, depth)
    }

    /// A virtio FLUSH request (QEMU then flushes the image file), waited for like any other: the thread blocks
    /// until the device's interrupt. A device without the flush feature has no volatile cache to flush.
    fn flush(&mut self) -> Result<(), BlockError> {
        if !self.can_flush {
            return Ok(());
        }
        self.run(Operation::Flush, REQUEST_FLUSH, 0, 0, &mut [Data::None], 1)
    }
}
