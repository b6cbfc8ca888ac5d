//! [`FrameIo`] as a smoltcp `phy::Device`: frames are copied in and out, and the poll's timestamp reaches the device.

use alloc::vec::Vec;

use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, TcpPacket};

use crate::{FrameIo, LayerHook, NetLayer, MAX_FRAME_BYTES};

/// Frames through the adapter, and the TCP segments among them that carried payload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// Frames handed to smoltcp.
    pub received_frames: u64,
    /// Frames smoltcp sent.
    pub transmitted_frames: u64,
    /// Received IPv4 TCP segments with payload.
    pub received_payload_segments: u64,
    /// Sent IPv4 TCP segments with payload.
    pub transmitted_payload_segments: u64,
    /// TCP payload bytes received.
    pub received_payload_bytes: u64,
    /// TCP payload bytes sent.
    pub transmitted_payload_bytes: u64,
    /// Times smoltcp was refused a token because the device could not take a frame then.
    pub transmit_refusals: u64,
}

/// TCP payload bytes of an Ethernet frame carrying IPv4 TCP (0 for anything else or a malformed frame), read with
/// smoltcp's own checked views of the headers.
pub fn tcp_payload_bytes(frame: &[u8]) -> usize {
    let Ok(ethernet) = EthernetFrame::new_checked(frame) else { return 0 };
    if ethernet.ethertype() != EthernetProtocol::Ipv4 {
        return 0;
    }
    let Ok(ip) = Ipv4Packet::new_checked(ethernet.payload()) else { return 0 };
    if ip.next_header() != IpProtocol::Tcp {
        return 0;
    }
    TcpPacket::new_checked(ip.payload()).map_or(0, |tcp| tcp.payload().len())
}

impl FrameCounts {
    fn count(frame: &[u8], frames: &mut u64, segments: &mut u64, bytes: &mut u64) {
        *frames += 1;
        let payload = tcp_payload_bytes(frame) as u64;
        if payload > 0 {
            *segments += 1;
            *bytes += payload;
        }
    }
}

/// A [`FrameIo`] seen by smoltcp.
#[derive(Debug)]
pub struct SmolDevice<F> {
    io: F,
    oversize_dropped: u64,
    counts: FrameCounts,
    hook: Option<LayerHook>,
    /// The frame being received, reused from one to the next.
    received: Vec<u8>,
}

/// Tells the hook (if any) that the stack enters `layer`.
fn mark(hook: Option<LayerHook>, layer: NetLayer) {
    if let Some(hook) = hook {
        hook(layer);
    }
}

impl<F: FrameIo> SmolDevice<F> {
    /// Wraps `io`.
    pub fn new(io: F) -> Self {
        SmolDevice {
            io,
            oversize_dropped: 0,
            counts: FrameCounts::default(),
            hook: None,
            received: Vec::with_capacity(MAX_FRAME_BYTES),
        }
    }

    /// Frames and payload segments through the adapter so far.
    pub fn counts(&self) -> FrameCounts {
        self.counts
    }

    /// Installs (or removes) the layer hook.
    pub fn set_layer_hook(&mut self, hook: Option<LayerHook>) {
        self.hook = hook;
    }

    /// Tells the hook that the stack enters `layer`.
    pub fn mark(&self, layer: NetLayer) {
        mark(self.hook, layer);
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

/// A received frame, in the adapter's receive buffer.
#[derive(Debug)]
pub struct FrameRx<'a> {
    frame: &'a [u8],
    hook: Option<LayerHook>,
}

/// Permission to send one frame now.
#[derive(Debug)]
pub struct FrameTx<'a, F> {
    io: &'a mut F,
    counts: &'a mut FrameCounts,
    now_ns: u64,
    hook: Option<LayerHook>,
    /// The layer smoltcp is in when it sends (processing a received frame, or its poll).
    returns_to: NetLayer,
}

impl RxToken for FrameRx<'_> {
    fn consume<R, G: FnOnce(&[u8]) -> R>(self, f: G) -> R {
        mark(self.hook, NetLayer::SmoltcpIngress);
        let result = f(self.frame);
        mark(self.hook, NetLayer::SmoltcpPoll);
        result
    }
}

impl<F: FrameIo> TxToken for FrameTx<'_, F> {
    /// smoltcp writes the frame straight into the device's buffer ([`FrameIo::transmit_with`]).
    fn consume<R, G: FnOnce(&mut [u8]) -> R>(self, len: usize, f: G) -> R {
        let hook = self.hook;
        let counts = &mut *self.counts;
        let mut build = Some(f);
        let mut result = None;
        mark(hook, NetLayer::DeviceTransmit);
        self.io.transmit_with(self.now_ns, len, &mut |frame| {
            let Some(build) = build.take() else { return };
            mark(hook, NetLayer::SmoltcpEgress);
            result = Some(build(frame));
            FrameCounts::count(
                frame,
                &mut counts.transmitted_frames,
                &mut counts.transmitted_payload_segments,
                &mut counts.transmitted_payload_bytes,
            );
            mark(hook, NetLayer::DeviceTransmit);
        });
        // A device that broke the contract and never called `fill`: smoltcp still gets its result (the frame is
        // lost, as on a wire).
        let result = match (result, build) {
            (Some(result), _) => result,
            (None, Some(build)) => build(&mut alloc::vec![0u8; len]),
            (None, None) => unreachable!("`fill` took the builder and stored its result"),
        };
        mark(hook, self.returns_to);
        result
    }
}

impl<F: FrameIo> Device for SmolDevice<F> {
    type RxToken<'a>
        = FrameRx<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = FrameTx<'a, F>
    where
        Self: 'a;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let now_ns = nanoseconds(timestamp);
        mark(self.hook, NetLayer::DeviceReceive);
        // A received frame may need an answer at once: take none while the device cannot send.
        if !self.io.can_transmit() {
            self.counts.transmit_refusals += 1;
            mark(self.hook, NetLayer::SmoltcpPoll);
            return None;
        }
        // A frame longer than the wire's MTU cannot be a real one: drop it before smoltcp parses it.
        loop {
            if !self.io.receive_into(now_ns, &mut self.received) {
                mark(self.hook, NetLayer::SmoltcpPoll);
                return None;
            }
            if self.received.len() <= MAX_FRAME_BYTES {
                break;
            }
            self.oversize_dropped += 1;
            // The buffer keeps exactly one full frame's room: an oversize frame does not leave it grown.
            if self.received.capacity() > MAX_FRAME_BYTES {
                self.received = Vec::with_capacity(MAX_FRAME_BYTES);
            }
        }
        let counts = &mut self.counts;
        FrameCounts::count(
            &self.received,
            &mut counts.received_frames,
            &mut counts.received_payload_segments,
            &mut counts.received_payload_bytes,
        );
        mark(self.hook, NetLayer::SmoltcpPoll);
        let hook = self.hook;
        Some((
            FrameRx { frame: &self.received, hook },
            FrameTx { io: &mut self.io, counts: &mut self.counts, now_ns, hook, returns_to: NetLayer::SmoltcpIngress },
        ))
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        mark(self.hook, NetLayer::DeviceTransmit);
        let room = self.io.can_transmit();
        mark(self.hook, NetLayer::SmoltcpPoll);
        if !room {
            self.counts.transmit_refusals += 1;
            return None;
        }
        Some(FrameTx {
            io: &mut self.io,
            counts: &mut self.counts,
            now_ns: nanoseconds(timestamp),
            hook: self.hook,
            returns_to: NetLayer::SmoltcpPoll,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut capabilities = DeviceCapabilities::default();
        capabilities.medium = Medium::Ethernet;
        capabilities.max_transmission_unit = MAX_FRAME_BYTES;
        capabilities.max_burst_size = None;
        capabilities
    }
}

#[cfg(test)]
mod tests {
    use smoltcp::phy::Device;

    use super::*;
    use crate::fake::Wire;
    use crate::FaultInjector;

    /// The red team's oversize frames are injected through the fault layer: the adapter drops them, and its
    /// receive buffer keeps one full frame's room, neither the injected allocation nor a grown one (a heap that
    /// grew across an attack reads as a leak).
    #[test]
    fn the_receive_buffer_keeps_one_frames_room_through_injected_and_oversize_frames() {
        let (near, _far) = Wire::new();
        let mut faults = FaultInjector::new(near);
        faults.inject_received(alloc::vec![1; MAX_FRAME_BYTES + 4_000]);
        faults.inject_received(alloc::vec![2; 60]);
        let mut device = SmolDevice::new(faults);
        let received = device.receive(Instant::from_micros(0)).map(|(rx, _)| rx.frame.to_vec());
        assert_eq!(received, Some(alloc::vec![2; 60]), "the oversize frame dropped, the runt passed on");
        assert_eq!(device.oversize_dropped(), 1);
        assert_eq!(device.received.capacity(), MAX_FRAME_BYTES);
    }
}
