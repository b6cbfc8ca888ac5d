//! [`FrameIo`] as a smoltcp `phy::Device`: frames are copied in and out, and the poll's timestamp reaches the device.

use alloc::vec::Vec;

use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::Instant;

use crate::{FrameIo, MAX_FRAME_BYTES};

/// A [`FrameIo`] seen by smoltcp.
#[derive(Debug)]
pub struct SmolDevice<F> {
    io: F,
    oversize_dropped: u64,
}

impl<F: FrameIo> SmolDevice<F> {
    /// Wraps `io`.
    pub fn new(io: F) -> Self {
        SmolDevice { io, oversize_dropped: 0 }
    }

    /// The frame device.
    pub fn io(&self) -> &F {
        &self.io
    }

    /// The frame device, mutably.
    pub fn io_mut(&mut self) -> &mut F {
        &mut self.io
    }

    /// Received frames longer than [`MAX_FRAME_BYTES`], dropped before smoltcp saw them.
    pub fn oversize_dropped(&self) -> u64 {
        self.oversize_dropped
    }
}

/// smoltcp timestamps are microseconds; the layers below count nanoseconds.
fn nanoseconds(timestamp: Instant) -> u64 {
    (timestamp.total_micros().max(0) as u64).saturating_mul(1_000)
}

/// A received frame.
#[derive(Debug)]
pub struct FrameRx(Vec<u8>);

/// Permission to send one frame now.
#[derive(Debug)]
pub struct FrameTx<'a, F> {
    io: &'a mut F,
    now_ns: u64,
}

impl RxToken for FrameRx {
    fn consume<R, G: FnOnce(&[u8]) -> R>(self, f: G) -> R {
        f(&self.0)
    }
}

impl<F: FrameIo> TxToken for FrameTx<'_, F> {
    fn consume<R, G: FnOnce(&mut [u8]) -> R>(self, len: usize, f: G) -> R {
        let mut frame = alloc::vec![0u8; len];
        let result = f(&mut frame);
        self.io.transmit(self.now_ns, &frame);
        result
    }
}

impl<F: FrameIo> Device for SmolDevice<F> {
    type RxToken<'a>
        = FrameRx
    where
        Self: 'a;
    type TxToken<'a>
        = FrameTx<'a, F>
    where
        Self: 'a;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let now_ns = nanoseconds(timestamp);
        // A frame longer than the wire's MTU cannot be a real one: drop it before smoltcp parses it.
        let frame = loop {
            let frame = self.io.receive(now_ns)?;
            if frame.len() <= MAX_FRAME_BYTES {
                break frame;
            }
            self.oversize_dropped += 1;
        };
        Some((FrameRx(frame), FrameTx { io: &mut self.io, now_ns }))
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        Some(FrameTx { io: &mut self.io, now_ns: nanoseconds(timestamp) })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut capabilities = DeviceCapabilities::default();
        capabilities.medium = Medium::Ethernet;
        capabilities.max_transmission_unit = MAX_FRAME_BYTES;
        capabilities.max_burst_size = None;
        capabilities
    }
}
