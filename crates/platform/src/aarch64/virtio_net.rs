//! virtio-net through `virtio-drivers`: Ethernet frames in and out as a [`FrameIo`], arrivals signalled by interrupt.
//!
//! The driver owns [`NET_QUEUE_SIZE`] receive buffers that stay posted to the
//! device; a received frame is copied out and its buffer posted again at
//! once. A send is queued and not waited for: frames are copied into
//! [`NET_QUEUE_SIZE`] transmit buffers allocated once (so the heap does not
//! change with traffic) and are in flight until the device reports them used
//! (read at the next send or receive); only a send that finds every descriptor
//! in flight waits for the oldest. QEMU's virtio-net transmits from a bottom half
//! of its main loop, not within the guest's notify, so waiting for each frame
//! (what `VirtIONet::send` does) cost the network thread a main-loop wake-up per
//! segment: measured with `cargo xtask bench web`, 600-860 µs of its CPU per
//! `GET /api/metrics`, most of it spinning. The transport's interrupt wakes
//! whichever thread registered through [`NetWaker`] (the kernel's network thread).

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use sis_net::FrameIo;
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::mmio::MmioTransport;

use super::virtio_transport::SisTransport;

use super::gic;
use super::profile::{self, Layer};
use super::virtio::{claim_line, SisHal, LINES};

/// Receive and transmit queue size, and so the receive buffers posted to the device and the most frames in flight.
pub const NET_QUEUE_SIZE: usize = 32;
/// Bytes of one receive buffer: the virtio-net header and a full Ethernet frame fit.
const RECEIVE_BUFFER_BYTES: usize = 2048;
/// Bytes of one transmit buffer: the virtio-net header (12 bytes, 10 with the legacy one) and a full frame fit.
/// The same as a receive buffer, so that [`VirtioNet::reflect`] can swap their roles.
const TRANSMIT_BUFFER_BYTES: usize = RECEIVE_BUFFER_BYTES;

/// Notifications written to the network device (the first one is driven).
static NET_NOTIFICATIONS: AtomicU64 = AtomicU64::new(0);

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
    /// Queue notifications written to the device (one register write each; the device suppresses most while it
    /// has receive buffers or a transmission pending).
    pub notifications: u64,
}

/// A virtio-net device.
pub struct VirtioNet {
    driver: VirtIONetRaw<SisHal, SisTransport, NET_QUEUE_SIZE>,
    /// Receive buffers posted to the device, by the token `receive_begin` gave them.
    receiving: [Option<Vec<u8>>; NET_QUEUE_SIZE],
    /// Frames handed to the device and not yet reported used, by token: the buffer (header in front) and the
    /// length handed over.
    sending: [Option<(Vec<u8>, usize)>; NET_QUEUE_SIZE],
    /// Transmit buffers not in flight.
    idle: Vec<Vec<u8>>,
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
        let transport = SisTransport::new(transport, &NET_NOTIFICATIONS, true);
        let mut driver = VirtIONetRaw::<SisHal, _, NET_QUEUE_SIZE>::new(transport)
            .map_err(|_| "virtio-net initialisation failed")?;
        let mut receiving: [Option<Vec<u8>>; NET_QUEUE_SIZE] = core::array::from_fn(|_| None);
        for _ in 0..NET_QUEUE_SIZE {
            let mut buffer = alloc::vec![0u8; RECEIVE_BUFFER_BYTES];
            // SAFETY: the buffer's heap block is kept in `receiving` under the returned token and not touched
            // until the device reports it used (`receive`); moving the `Vec` does not move the block. On failure
            // the driver (and with it the device, reset) goes before the buffers it may hold.
            let posted = unsafe { driver.receive_begin(&mut buffer) };
            match posted.map(|token| receiving.get_mut(usize::from(token))) {
                Ok(Some(slot)) => *slot = Some(buffer),
                _ => {
                    drop(driver);
                    return Err("virtio-net refused a receive buffer");
                }
            }
        }
        let line = claim_line(intid, base).ok_or("no free interrupt line")?;
        driver.enable_interrupts();
        gic::enable_interrupt(intid);
        let sending = core::array::from_fn(|_| None);
        let idle = (0..NET_QUEUE_SIZE).map(|_| alloc::vec![0u8; TRANSMIT_BUFFER_BYTES]).collect();
        Ok(VirtioNet { driver, receiving, sending, idle, line, base, intid, stats: NetDriverStats::default() })
    }

    /// Takes back the buffers of every frame the device has reported sent.
    fn reclaim_sent(&mut self) {
        while let Some(token) = self.driver.poll_transmit() {
            let Some((buffer, length)) = self.sending.get_mut(usize::from(token)).and_then(Option::take) else {
                // A token this driver never handed out: nothing to take back, and it stays at the ring's head.
                self.stats.transmit_errors += 1;
                return;
            };
            // SAFETY: `buffer[..length]` is what was passed to `transmit_begin` for `token`, untouched since.
            if unsafe { self.driver.transmit_complete(token, &buffer[..length]) }.is_err() {
                self.stats.transmit_errors += 1;
            }
            self.idle.push(buffer);
        }
    }

    /// The emulation-ceiling loop: every received frame that `turn` rewrites in place (returning true) is sent back
    /// from the very buffer it arrived in, and a spare buffer is posted for receiving in its place; other frames'
    /// buffers become spares. No copy, no allocation: what this moves is what QEMU's device and backend can carry
    /// with a guest that does almost nothing. Stops when nothing is waiting or every descriptor is in flight;
    /// returns the frames sent and their bytes (headers included).
    pub fn reflect(&mut self, mut turn: impl FnMut(&mut [u8]) -> bool) -> (u64, u64) {
        let (mut frames, mut bytes) = (0u64, 0u64);
        self.reclaim_sent();
        while self.driver.can_send() {
            let Some(token) = self.driver.poll_receive() else { break };
            // A spare to post in its place: without one, leave the frame on the ring for the next turn.
            let Some(mut spare) = self.idle.pop() else { break };
            let Some(mut buffer) = self.receiving.get_mut(usize::from(token)).and_then(Option::take) else {
                self.idle.push(spare);
                self.stats.receive_errors += 1;
                break;
            };
            // SAFETY: `buffer` is the one passed to `receive_begin` for `token`, untouched since.
            let received = unsafe { self.driver.receive_complete(token, &mut buffer) };
            // SAFETY: as in `new`: the spare's block stays in `receiving` until the device reports it used.
            match unsafe { self.driver.receive_begin(&mut spare) } {
                Ok(posted) => match self.receiving.get_mut(usize::from(posted)) {
                    Some(slot) => *slot = Some(spare),
                    None => {
                        core::mem::forget(spare);
                        self.stats.receive_errors += 1;
                    }
                },
                Err(_) => {
                    self.idle.push(spare);
                    self.stats.receive_errors += 1;
                }
            }
            let Ok((header, length)) = received else {
                self.idle.push(buffer);
                self.stats.receive_errors += 1;
                continue;
            };
            self.stats.received_frames += 1;
            let end = header.saturating_add(length).min(buffer.len());
            if !turn(&mut buffer[header..end]) || self.driver.fill_buffer_header(&mut buffer) != Ok(header) {
                self.idle.push(buffer);
                continue;
            }
            // SAFETY: as in `transmit`: the block is kept in `sending` under the token until `reclaim_sent`.
            match unsafe { self.driver.transmit_begin(&buffer[..end]) } {
                Ok(sent) => match self.sending.get_mut(usize::from(sent)) {
                    Some(slot) => {
                        *slot = Some((buffer, end));
                        self.stats.transmitted_frames += 1;
                        frames += 1;
                        bytes += (end - header) as u64;
                    }
                    None => {
                        core::mem::forget(buffer);
                        self.stats.transmit_errors += 1;
                    }
                },
                Err(_) => {
                    self.idle.push(buffer);
                    self.stats.transmit_errors += 1;
                }
            }
        }
        (frames, bytes)
    }

    /// Frames handed to the device and not yet reported sent.
    pub fn frames_in_flight(&self) -> usize {
        self.sending.iter().filter(|slot| slot.is_some()).count()
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
        NetDriverStats {
            interrupts: LINES[self.line].interrupts.load(Ordering::Relaxed),
            notifications: NET_NOTIFICATIONS.load(Ordering::Relaxed),
            ..self.stats
        }
    }
}

impl FrameIo for VirtioNet {
    fn receive(&mut self, now_ns: u64) -> Option<Vec<u8>> {
        let mut frame = Vec::new();
        self.receive_into(now_ns, &mut frame).then_some(frame)
    }

    /// The frame is copied out of the device's buffer into `frame` (no allocation once `frame` has grown to a
    /// full frame) and the buffer is posted again at once.
    fn receive_into(&mut self, _now_ns: u64, frame: &mut Vec<u8>) -> bool {
        self.reclaim_sent();
        let Some(token) = self.driver.poll_receive() else { return false };
        let Some(mut buffer) = self.receiving.get_mut(usize::from(token)).and_then(Option::take) else {
            self.stats.receive_errors += 1;
            return false;
        };
        // SAFETY: `buffer` is the one passed to `receive_begin` for `token`, untouched since.
        let copied = match unsafe { self.driver.receive_complete(token, &mut buffer) } {
            Ok((header, length)) => match buffer.get(header..header.saturating_add(length)) {
                Some(received) => {
                    let caller = profile::enter(Layer::FrameCopy);
                    frame.clear();
                    frame.extend_from_slice(received);
                    profile::enter(caller);
                    true
                }
                None => false,
            },
            Err(_) => false,
        };
        // SAFETY: as in `new`: the block stays in `receiving` until the device reports it used.
        match unsafe { self.driver.receive_begin(&mut buffer) } {
            Ok(token) => match self.receiving.get_mut(usize::from(token)) {
                Some(slot) => *slot = Some(buffer),
                // As for sending: leaked rather than freed under the device.
                None => {
                    core::mem::forget(buffer);
                    self.stats.receive_errors += 1;
                }
            },
            Err(_) => self.stats.receive_errors += 1,
        }
        if copied {
            self.stats.received_frames += 1;
        } else {
            self.stats.receive_errors += 1;
        }
        copied
    }

    fn can_transmit(&mut self) -> bool {
        self.reclaim_sent();
        self.driver.can_send() && !self.idle.is_empty()
    }

    fn transmit(&mut self, now_ns: u64, frame: &[u8]) -> bool {
        self.transmit_with(now_ns, frame.len(), &mut |buffer| {
            let caller = profile::enter(Layer::FrameCopy);
            buffer.copy_from_slice(frame);
            profile::enter(caller);
        })
    }

    /// `fill` writes the frame straight into a transmit buffer, behind the virtio-net header: no copy.
    fn transmit_with(&mut self, _now_ns: u64, length: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool {
        // The contract: `fill` runs once whatever happens; when the frame cannot go, into a scratch buffer.
        let refuse = |stats: &mut NetDriverStats, fill: &mut dyn FnMut(&mut [u8])| {
            fill(&mut alloc::vec![0u8; length]);
            stats.transmit_errors += 1;
            false
        };
        self.reclaim_sent();
        while !self.driver.can_send() {
            // Every descriptor is in flight (the stack asks `can_transmit` first, so this is rare): wait for the
            // device to finish the oldest.
            if self.frames_in_flight() == 0 {
                return refuse(&mut self.stats, fill);
            }
            core::hint::spin_loop();
            self.reclaim_sent();
        }
        let Some(mut buffer) = self.idle.pop() else { return refuse(&mut self.stats, fill) };
        let header = match self.driver.fill_buffer_header(&mut buffer) {
            Ok(header) if header + length <= buffer.len() => header,
            _ => {
                self.idle.push(buffer);
                return refuse(&mut self.stats, fill);
            }
        };
        let end = header + length;
        fill(&mut buffer[header..end]);
        // SAFETY: the buffer's heap block is kept in `sending` under the returned token and not touched until the
        // device reports it used (`reclaim_sent`); moving the `Vec` does not move the block.
        match unsafe { self.driver.transmit_begin(&buffer[..end]) } {
            // A token is a descriptor index, below the queue size: `sending` has a slot for every one. Were it not,
            // the buffer is leaked rather than reused under the device.
            Ok(token) => match self.sending.get_mut(usize::from(token)) {
                Some(slot) => {
                    *slot = Some((buffer, end));
                    self.stats.transmitted_frames += 1;
                    true
                }
                None => {
                    core::mem::forget(buffer);
                    self.stats.transmit_errors += 1;
                    false
                }
            },
            Err(_) => {
                self.idle.push(buffer);
                self.stats.transmit_errors += 1;
                false
            }
        }
    }
}
