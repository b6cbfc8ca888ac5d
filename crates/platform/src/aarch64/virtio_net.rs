//! virtio-net through `virtio-drivers`: Ethernet frames in and out as a [`FrameIo`], arrivals signalled by interrupt.
//!
//! The driver owns [`NET_QUEUE_SIZE`] receive buffers that stay posted to the
//! device; a received frame is copied out and its buffer posted again at
//! once. A send waits for the device to take the frame (QEMU completes it
//! within the notify). The transport's interrupt wakes whichever thread
//! registered through [`NetWaker`] (the kernel's network thread).

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use sis_net::FrameIo;
use virtio_drivers::device::net::VirtIONet;
use virtio_drivers::transport::mmio::MmioTransport;

use super::gic;
use super::virtio::{claim_line, SisHal, LINES};

/// Receive and transmit queue size, and so the receive buffers posted to the device.
pub const NET_QUEUE_SIZE: usize = 32;
/// Bytes of one receive buffer: the virtio-net header and a full Ethernet frame fit.
const RECEIVE_BUFFER_BYTES: usize = 2048;

/// Driver counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetDriverStats {
    /// Frames taken from the receive queue.
    pub received_frames: u64,
    /// Frames the device accepted for sending.
    pub transmitted_frames: u64,
    /// Receive-queue errors (a buffer that could not be taken or posted again).
    pub receive_errors: u64,
    /// Sends the device refused.
    pub transmit_errors: u64,
    /// Interrupts taken on the device's line.
    pub interrupts: u64,
}

/// A virtio-net device.
pub struct VirtioNet {
    driver: VirtIONet<SisHal, MmioTransport<'static>, NET_QUEUE_SIZE>,
    line: usize,
    base: u64,
    intid: u32,
    stats: NetDriverStats,
}

impl core::fmt::Debug for VirtioNet {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("VirtioNet")
            .field("base", &self.base)
            .field("intid", &self.intid)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// The network device's interrupt line, for the thread that sleeps until a frame arrives.
#[derive(Debug, Clone, Copy)]
pub struct NetWaker {
    line: usize,
}

impl NetWaker {
    /// Interrupts taken so far; a change since the last look means the device has news.
    pub fn interrupts(&self) -> u64 {
        LINES[self.line].interrupts.load(Ordering::Acquire)
    }

    /// The next interrupt wakes thread `id` (once); call with IRQs masked, just before sleeping.
    pub fn wake_on_interrupt(&self, id: sis_sched::ThreadId) {
        LINES[self.line].waiter.store(id + 1, Ordering::Release);
    }
}

impl VirtioNet {
    pub(super) fn new(transport: MmioTransport<'static>, base: u64, intid: u32) -> Result<Self, &'static str> {
        let mut driver = VirtIONet::<SisHal, _, NET_QUEUE_SIZE>::new(transport, RECEIVE_BUFFER_BYTES)
            .map_err(|_| "virtio-net initialisation failed")?;
        let line = claim_line(intid, base).ok_or("no free interrupt line")?;
        driver.enable_interrupts();
        gic::enable_interrupt(intid);
        Ok(VirtioNet { driver, line, base, intid, stats: NetDriverStats::default() })
    }

    /// The device's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.driver.mac_address()
    }

    /// Register window base.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Interrupt ID.
    pub fn intid(&self) -> u32 {
        self.intid
    }

    /// The interrupt line, for waiting on arrivals.
    pub fn waker(&self) -> NetWaker {
        NetWaker { line: self.line }
    }

    /// Counters, interrupts included.
    pub fn stats(&self) -> NetDriverStats {
        NetDriverStats { interrupts: LINES[self.line].interrupts.load(Ordering::Relaxed), ..self.stats }
    }
}

impl FrameIo for VirtioNet {
    fn receive(&mut self, _now_ns: u64) -> Option<Vec<u8>> {
        let buffer = match self.driver.receive() {
            Ok(buffer) => buffer,
            Err(virtio_drivers::Error::NotReady) => return None,
            Err(_) => {
                self.stats.receive_errors += 1;
                return None;
            }
        };
        let frame = buffer.packet().to_vec();
        if self.driver.recycle_rx_buffer(buffer).is_err() {
            self.stats.receive_errors += 1;
        }
        self.stats.received_frames += 1;
        Some(frame)
    }

    fn transmit(&mut self, _now_ns: u64, frame: &[u8]) -> bool {
        let mut buffer = self.driver.new_tx_buffer(frame.len());
        buffer.packet_mut().copy_from_slice(frame);
        match self.driver.send(buffer) {
            Ok(()) => {
                self.stats.transmitted_frames += 1;
                true
            }
            Err(_) => {
                self.stats.transmit_errors += 1;
                false
            }
        }
    }
}
