//! The I/O table between the network thread and the web thread: bounded byte buffers and connection events per
//! listener slot, behind their own lock, so the network thread serves sockets without ever calling the web app.
//!
//! The network thread calls [`serve`] after each poll, with its stack locked (lock order: network slot, then
//! this table). The web thread takes events and inbound bytes out, and puts the app's output and closing flags
//! in. A slot's connection carries a generation: output for a connection that ended is dropped, never sent to
//! the next connection on the same slot.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use sis_net::{ListenerId, TcpService};
use sis_platform::irq_lock::IrqMutex;
use sis_sched::ThreadId;

use crate::commands::net::link::Stack;

/// Received bytes a slot holds for the web thread before the socket keeps the rest (backpressure).
pub const INBOUND_BYTES: usize = 64 * 1024;
/// Bytes of the app's output a slot holds for the socket.
pub const OUTBOUND_BYTES: usize = 64 * 1024;

/// What happened on a slot.
#[derive(Debug)]
pub enum IoKind {
    /// A connection was accepted.
    Opened,
    /// Bytes arrived.
    Data(Vec<u8>),
    /// The peer closed its side.
    PeerClosed,
    /// The connection ended.
    Closed,
}

/// One event of one slot's connection.
#[derive(Debug)]
pub struct IoEvent {
    /// The listener slot.
    pub slot: usize,
    /// The connection's generation.
    pub generation: u64,
    /// What happened.
    pub kind: IoKind,
}

#[derive(Debug, Default)]
struct IoSlot {
    generation: u64,
    open: bool,
    /// Received bytes not yet taken by the app.
    inbound_queued: usize,
    outbound: Vec<u8>,
    closing: bool,
}

/// The table.
#[derive(Debug)]
pub struct IoTable {
    slots: Vec<IoSlot>,
    events: VecDeque<IoEvent>,
    next_generation: u64,
    /// The listener the network thread serves, while the server runs.
    pub listener: Option<ListenerId>,
    /// The thread to wake when something moved.
    pub web_thread: Option<ThreadId>,
}

/// The kernel's table.
pub static IO: IrqMutex<IoTable> = IrqMutex::new(IoTable::new());

/// Serves the web listener, if one runs, after the network thread's poll (the stack is locked by the caller).
/// Returns the web thread to wake when anything moved.
pub fn serve(stack: &mut Stack, now_ns: u64) -> Option<ThreadId> {
    let mut io = IO.lock();
    let listener = io.listener?;
    match stack.serve(listener, now_ns, &mut *io) {
        Ok(true) => io.web_thread,
        _ => None,
    }
}

impl IoTable {
    const fn new() -> IoTable {
        IoTable { slots: Vec::new(), events: VecDeque::new(), next_generation: 1, listener: None, web_thread: None }
    }

    /// Prepares `sockets` slots for a new listener (events of the old one stay queued for the web thread).
    pub fn reset(&mut self, sockets: usize, listener: ListenerId, web_thread: ThreadId) {
        self.slots = (0..sockets).map(|_| IoSlot::default()).collect();
        self.listener = Some(listener);
        self.web_thread = Some(web_thread);
    }

    /// Whether events wait for the web thread.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Takes every queued event, oldest first.
    pub fn take_events(&mut self) -> VecDeque<IoEvent> {
        core::mem::take(&mut self.events)
    }

    fn current(&mut self, slot: usize, generation: u64) -> Option<&mut IoSlot> {
        self.slots.get_mut(slot).filter(|io| io.open && io.generation == generation)
    }

    /// The app took `count` received bytes of the connection: that much room again.
    pub fn release(&mut self, slot: usize, generation: u64, count: usize) {
        if let Some(io) = self.current(slot, generation) {
            io.inbound_queued = io.inbound_queued.saturating_sub(count);
        }
    }

    /// Copies as much of `bytes` as fits into the connection's outbound buffer; returns how many were taken
    /// (all of them for a connection that ended: its output has nowhere to go).
    pub fn push_output(&mut self, slot: usize, generation: u64, bytes: &[u8]) -> usize {
        let Some(io) = self.current(slot, generation) else { return bytes.len() };
        let count = OUTBOUND_BYTES.saturating_sub(io.outbound.len()).min(bytes.len());
        io.outbound.extend_from_slice(&bytes[..count]);
        count
    }

    /// Asks the network thread to close the connection once its outbound bytes are sent.
    pub fn set_closing(&mut self, slot: usize, generation: u64) {
        if let Some(io) = self.current(slot, generation) {
            io.closing = true;
        }
    }

    fn push(&mut self, slot: usize, kind: IoKind) {
        let generation = self.slots.get(slot).map_or(0, |io| io.generation);
        self.events.push_back(IoEvent { slot, generation, kind });
    }
}

impl TcpService for IoTable {
    fn opened(&mut self, slot: usize, _now_ns: u64) {
        let generation = self.next_generation;
        self.next_generation += 1;
        if let Some(io) = self.slots.get_mut(slot) {
            *io = IoSlot { generation, open: true, ..IoSlot::default() };
            self.push(slot, IoKind::Opened);
        }
    }

    fn room(&self, slot: usize) -> usize {
        self.slots.get(slot).filter(|io| io.open).map_or(0, |io| INBOUND_BYTES.saturating_sub(io.inbound_queued))
    }

    fn received(&mut self, slot: usize, data: &[u8], _now_ns: u64) {
        let Some(io) = self.slots.get_mut(slot).filter(|io| io.open) else { return };
        io.inbound_queued = io.inbound_queued.saturating_add(data.len());
        let generation = io.generation;
        if let Some(IoEvent { slot: last_slot, generation: last_generation, kind: IoKind::Data(bytes) }) =
            self.events.back_mut()
        {
            if *last_slot == slot && *last_generation == generation {
                bytes.extend_from_slice(data);
                return;
            }
        }
        self.push(slot, IoKind::Data(data.to_vec()));
    }

    fn output(&self, slot: usize) -> &[u8] {
        self.slots.get(slot).map_or(&[], |io| io.outbound.as_slice())
    }

    fn sent(&mut self, slot: usize, count: usize) {
        if let Some(io) = self.slots.get_mut(slot) {
            let count = count.min(io.outbound.len());
            io.outbound.drain(..count);
            if io.outbound.is_empty() {
                // Sent: the buffer's memory goes back, so the heap returns to its level after a burst.
                io.outbound = Vec::new();
            }
        }
    }

    fn peer_closed(&mut self, slot: usize, _now_ns: u64) {
        self.push(slot, IoKind::PeerClosed);
    }

    fn closing(&self, slot: usize) -> bool {
        self.slots.get(slot).is_some_and(|io| io.closing)
    }

    fn closed(&mut self, slot: usize, _now_ns: u64) {
        if let Some(io) = self.slots.get_mut(slot) {
            io.open = false;
            io.inbound_queued = 0;
            io.outbound = Vec::new();
            io.closing = false;
            self.push(slot, IoKind::Closed);
        }
    }
}
