//! TCP services beside the echo: a listener is a set of sockets on one port, each taking one connection at a
//! time, driven by a [`TcpService`] that sees connections open, bytes arrive and connections end, and says
//! what to send and when to close. The web server is one; the stack knows nothing of HTTP.

use alloc::vec;
use alloc::vec::Vec;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;

/// Most sockets one listener may hold.
pub const MAX_LISTENER_SOCKETS: usize = 256;
/// Smallest and largest receive and send buffer of a listener's socket.
pub const MIN_LISTENER_BUFFER_BYTES: usize = 1024;
/// See [`MIN_LISTENER_BUFFER_BYTES`].
pub const MAX_LISTENER_BUFFER_BYTES: usize = 1024 * 1024;
/// Seconds without any segment from the peer before the connection is given up (a peer that vanished without a
/// FIN or a reset).
pub const UNACKNOWLEDGED_TIMEOUT_S: u64 = 30;
/// Seconds of silence after which a keep-alive probe goes out; a live peer acknowledges it, so an idle connection
/// stays open (well inside [`UNACKNOWLEDGED_TIMEOUT_S`], so a probe or two can be lost).
pub const KEEP_ALIVE_S: u64 = 10;
/// Bytes moved per socket per step, each way.
const CHUNK_BYTES: usize = 16 * 1024;

/// A listener of a [`crate::NetStack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(pub(crate) usize);

/// What a listener is asked to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerConfig {
    /// TCP port (1..=65535).
    pub port: u16,
    /// Connections served at once: one socket each.
    pub sockets: usize,
    /// Receive and send buffer of each socket.
    pub buffer_bytes: usize,
}

/// Why a listener was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenError {
    /// Port 0.
    PortZero,
    /// The echo service or another listener has the port.
    PortInUse {
        /// The port.
        port: u16,
    },
    /// Sockets outside 1..=[`MAX_LISTENER_SOCKETS`].
    SocketsOutOfRange {
        /// Asked for.
        sockets: usize,
    },
    /// A buffer outside [`MIN_LISTENER_BUFFER_BYTES`]..=[`MAX_LISTENER_BUFFER_BYTES`].
    BufferOutOfRange {
        /// Asked for.
        buffer_bytes: usize,
    },
    /// No listener with that id (closed already).
    Unknown,
}

impl core::fmt::Display for ListenError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ListenError::PortZero => formatter.write_str("port 0 cannot be listened on"),
            ListenError::PortInUse { port } => write!(formatter, "port {port} is in use"),
            ListenError::SocketsOutOfRange { sockets } => {
                write!(formatter, "{sockets} sockets: a listener has 1 to {MAX_LISTENER_SOCKETS}")
            }
            ListenError::BufferOutOfRange { buffer_bytes } => write!(
                formatter,
                "{buffer_bytes}-byte buffers: {MIN_LISTENER_BUFFER_BYTES} to {MAX_LISTENER_BUFFER_BYTES}"
            ),
            ListenError::Unknown => formatter.write_str("no such listener"),
        }
    }
}

/// The service behind a listener. A *slot* is one of its sockets, `0..sockets`; a slot's connection is opened,
/// fed, drained and closed, then the slot listens for the next one.
pub trait TcpService {
    /// A connection was accepted on `slot`.
    fn opened(&mut self, slot: usize, now_ns: u64);
    /// How many more received bytes `slot` takes now (0 holds them in the socket: backpressure).
    fn room(&self, slot: usize) -> usize;
    /// Bytes received on `slot` (at most its room).
    fn received(&mut self, slot: usize, data: &[u8], now_ns: u64);
    /// Bytes waiting to be sent on `slot`.
    fn output(&self, slot: usize) -> &[u8];
    /// The first `count` bytes of [`output`](Self::output) were queued on the socket.
    fn sent(&mut self, slot: usize, count: usize);
    /// The peer closed its side of `slot`'s connection (nothing more will arrive); output can still be sent.
    fn peer_closed(&mut self, slot: usize, now_ns: u64);
    /// Whether `slot`'s connection should end once its output is sent.
    fn closing(&self, slot: usize) -> bool;
    /// `slot`'s connection ended: closed by either side, reset, or timed out. Its state can go.
    fn closed(&mut self, slot: usize, now_ns: u64);
}

/// A listener's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections open now.
    pub open: u64,
    /// Connections ended.
    pub ended: u64,
    /// Bytes handed to the service.
    pub bytes_in: u64,
    /// Bytes queued for sending.
    pub bytes_out: u64,
}

impl ListenerStats {
    /// The counters of two listeners together (one stopped, one running): totals add; `open` adds too, and a
    /// stopped listener has none open.
    pub fn plus(&self, other: &ListenerStats) -> ListenerStats {
        ListenerStats {
            accepted: self.accepted + other.accepted,
            open: self.open + other.open,
            ended: self.ended + other.ended,
            bytes_in: self.bytes_in + other.bytes_in,
            bytes_out: self.bytes_out + other.bytes_out,
        }
    }
}

/// A listener's sockets and what it knows of them.
#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) config: ListenerConfig,
    pub(crate) handles: Vec<SocketHandle>,
    open: Vec<bool>,
    /// The peer's close was reported to the service.
    peer_done: Vec<bool>,
    pub(crate) stats: ListenerStats,
}

impl ListenerConfig {
    /// Checks the bounds (the port's use is checked by the stack).
    pub fn validate(&self) -> Result<(), ListenError> {
        if self.port == 0 {
            return Err(ListenError::PortZero);
        }
        if !(1..=MAX_LISTENER_SOCKETS).contains(&self.sockets) {
            return Err(ListenError::SocketsOutOfRange { sockets: self.sockets });
        }
        if !(MIN_LISTENER_BUFFER_BYTES..=MAX_LISTENER_BUFFER_BYTES).contains(&self.buffer_bytes) {
            return Err(ListenError::BufferOutOfRange { buffer_bytes: self.buffer_bytes });
        }
        Ok(())
    }

    /// One listening socket of this configuration.
    pub(crate) fn socket(&self) -> tcp::Socket<'static> {
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; self.buffer_bytes]),
            tcp::SocketBuffer::new(vec![0; self.buffer_bytes]),
        );
        // Requests and replies: send each at once.
        socket.set_nagle_enabled(false);
        socket.set_ack_delay(None);
        // A peer that vanished without a FIN or a reset ends the connection once nothing came from it for this long.
        // smoltcp counts the timeout from the peer's last segment whether or not data waits, so an idle connection
        // needs the keep-alive probes for its live peer to answer.
        socket.set_timeout(Some(smoltcp::time::Duration::from_secs(UNACKNOWLEDGED_TIMEOUT_S)));
        socket.set_keep_alive(Some(smoltcp::time::Duration::from_secs(KEEP_ALIVE_S)));
        // Listening on a fresh socket with a non-zero port cannot fail.
        let _ = socket.listen(self.port);
        socket
    }
}

impl Listener {
    pub(crate) fn new(config: ListenerConfig, handles: Vec<SocketHandle>) -> Self {
        let open = vec![false; handles.len()];
        let peer_done = vec![false; handles.len()];
        Listener { config, handles, open, peer_done, stats: ListenerStats::default() }
    }

    /// Serves one socket: accept, move bytes both ways, close, end. Returns whether anything moved.
    pub(crate) fn serve_slot(
        &mut self,
        slot: usize,
        socket: &mut tcp::Socket<'static>,
        service: &mut dyn TcpService,
        scratch: &mut [u8],
        now_ns: u64,
    ) -> bool {
        let mut moved = false;
        if socket.is_active() && !self.open[slot] {
            self.open[slot] = true;
            self.peer_done[slot] = false;
            self.stats.accepted += 1;
            service.opened(slot, now_ns);
            moved = true;
        }
        if self.open[slot] {
            while socket.can_recv() {
                let room = service.room(slot).min(scratch.len());
                if room == 0 {
                    break;
                }
                let Ok(received) = socket.recv_slice(&mut scratch[..room]) else { break };
                if received == 0 {
                    break;
                }
                service.received(slot, &scratch[..received], now_ns);
                self.stats.bytes_in += received as u64;
                moved = true;
            }
            loop {
                let output = service.output(slot);
                if output.is_empty() || !socket.can_send() {
                    break;
                }
                let Ok(queued) = socket.send_slice(&output[..output.len().min(CHUNK_BYTES)]) else { break };
                if queued == 0 {
                    break;
                }
                service.sent(slot, queued);
                self.stats.bytes_out += queued as u64;
                moved = true;
            }
            let peer_finished =
                matches!(socket.state(), tcp::State::CloseWait | tcp::State::LastAck | tcp::State::Closing);
            if peer_finished && !socket.can_recv() && !self.peer_done[slot] {
                self.peer_done[slot] = true;
                service.peer_closed(slot, now_ns);
                moved = true;
            }
            let drained = service.output(slot).is_empty() && socket.send_queue() == 0;
            if socket.may_send() && service.closing(slot) && drained {
                socket.close();
                // No more keep-alive probes: a peer that never closes its side (its connection half-closed and
                // silent) is dropped by the timeout instead of holding the slot for as long as it acknowledges.
                socket.set_keep_alive(None);
                moved = true;
            }
            if !socket.is_active() {
                // Ended by either side, a reset or a timeout.
                self.open[slot] = false;
                self.stats.ended += 1;
                service.closed(slot, now_ns);
                moved = true;
            }
        }
        if socket.state() == tcp::State::TimeWait {
            // Both sides have closed. smoltcp would hold the socket 10 s; a slot is a connection the service can
            // take, so it takes the next one now (stray segments of the old connection meet a listener, which
            // resets them).
            socket.abort();
        }
        if socket.state() == tcp::State::Closed {
            socket.set_keep_alive(Some(smoltcp::time::Duration::from_secs(KEEP_ALIVE_S)));
            let _ = socket.listen(self.config.port);
        }
        moved
    }

    /// Connections open now.
    pub(crate) fn refresh_open(&mut self) {
        self.stats.open = self.open.iter().filter(|open| **open).count() as u64;
    }

    /// Ends every open connection's state in the service (the listener is going).
    pub(crate) fn end_all(&mut self, service: Option<&mut dyn TcpService>, now_ns: u64) {
        let mut service = service;
        for slot in 0..self.open.len() {
            if self.open[slot] {
                self.open[slot] = false;
                self.stats.ended += 1;
                if let Some(service) = service.as_deref_mut() {
                    service.closed(slot, now_ns);
                }
            }
        }
        self.refresh_open();
    }
}
