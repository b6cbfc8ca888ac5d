//! The SIS network layer: a frame-device trait, a seeded fault injector in front of it, and a smoltcp stack on top.
//!
//! The kernel's stack is `NetStack<FaultInjector<virtio-net>>`: the driver
//! moves Ethernet frames ([`FrameIo`]), the fault injector sits where the wire
//! is (drops, corrupts, partitions), and [`NetStack`] runs smoltcp over it with
//! the TCP echo service, ICMP ping, listeners for TCP services
//! ([`NetStack::listen`], [`TcpService`]: the web server is one) and outgoing connections ([`NetStack::connect`]:
//! the OTLP exporter's). Time is passed into every call (the
//! kernel clock in the kernel, a number in tests), so everything here is safe,
//! portable code tested on the host over [`fake::Wire`].
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod client;
mod device;
pub mod fake;
mod fault;
mod listener;
mod reflect;
mod stack;

pub use client::{
    ClientId, ClientState, ConnectError, UnknownClient, FIRST_CLIENT_PORT, MAX_CLIENTS, MAX_CLIENT_BUFFER_BYTES,
    MIN_CLIENT_BUFFER_BYTES,
};
pub use device::{tcp_payload_bytes, FrameCounts, SmolDevice};
pub use fault::{FaultInjector, FaultState, FaultStats, MAX_CAPTURED_FRAMES, MAX_PERCENT};
pub use listener::{
    ListenError, ListenerConfig, ListenerId, ListenerStats, TcpService, KEEP_ALIVE_S, MAX_LISTENER_BUFFER_BYTES,
    MAX_LISTENER_SOCKETS, MIN_LISTENER_BUFFER_BYTES, UNACKNOWLEDGED_TIMEOUT_S,
};
pub use reflect::reflect_udp;
pub use stack::{EchoStats, NetConfig, NetStack, PingError, PingReply, ECHO_PORT, ECHO_SOCKETS};

use alloc::vec::Vec;

/// Largest Ethernet frame the stack sends or accepts, header included (1500-byte MTU + 14).
pub const MAX_FRAME_BYTES: usize = 1514;

/// Where the stack's instructions go, for an instruction profiler ([`NetStack::set_layer_hook`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetLayer {
    /// smoltcp's interface poll outside the processing of one frame.
    SmoltcpPoll,
    /// smoltcp processing one received frame (and any reply it sends at once, which is egress).
    SmoltcpIngress,
    /// smoltcp building one frame to send.
    SmoltcpEgress,
    /// Payload moved between TCP sockets and the services above them.
    SocketCopy,
    /// The device below taking one received frame.
    DeviceReceive,
    /// The device below sending one frame.
    DeviceTransmit,
}

/// Called at every change of [`NetLayer`] (the kernel charges guest instructions to layers). The stack never
/// marks its way back to its caller's layer: the caller does that when the call returns.
pub type LayerHook = fn(NetLayer);

/// A device that moves whole Ethernet frames (no FCS). `now_ns` is the caller's clock.
pub trait FrameIo {
    /// The next received frame, if one is waiting.
    fn receive(&mut self, now_ns: u64) -> Option<Vec<u8>>;
    /// Sends one frame; false when the device could not take it (the frame is lost, as on a wire).
    fn transmit(&mut self, now_ns: u64, frame: &[u8]) -> bool;
    /// Whether a frame sent now would be taken without waiting. While it is false smoltcp is not offered a
    /// transmit token (its data waits in the sockets) and no received frame is taken, so the caller can sleep
    /// until the device reports frames sent instead of waiting in [`transmit`](Self::transmit).
    fn can_transmit(&mut self) -> bool {
        true
    }
    /// Puts the next received frame in `frame` (replacing its contents, reusing its allocation); false when none
    /// is waiting. The default goes through [`receive`](Self::receive); a device overrides it to skip the
    /// allocation.
    fn receive_into(&mut self, now_ns: u64, frame: &mut Vec<u8>) -> bool {
        match self.receive(now_ns) {
            Some(received) => {
                *frame = received;
                true
            }
            None => false,
        }
    }
    /// Sends one frame of `length` bytes that `fill` writes (called exactly once, whatever happens), so a device
    /// can have it written straight into its own buffer; false as for [`transmit`](Self::transmit). The default
    /// fills a new buffer and calls [`transmit`](Self::transmit).
    fn transmit_with(&mut self, now_ns: u64, length: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool {
        let mut frame = alloc::vec![0u8; length];
        fill(&mut frame);
        self.transmit(now_ns, &frame)
    }
}

impl<F: FrameIo + ?Sized> FrameIo for &mut F {
    fn receive(&mut self, now_ns: u64) -> Option<Vec<u8>> {
        (**self).receive(now_ns)
    }

    fn transmit(&mut self, now_ns: u64, frame: &[u8]) -> bool {
        (**self).transmit(now_ns, frame)
    }

    fn can_transmit(&mut self) -> bool {
        (**self).can_transmit()
    }

    fn receive_into(&mut self, now_ns: u64, frame: &mut Vec<u8>) -> bool {
        (**self).receive_into(now_ns, frame)
    }

    fn transmit_with(&mut self, now_ns: u64, length: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool {
        (**self).transmit_with(now_ns, length, fill)
    }
}
