//! Outgoing TCP connections (the OTLP exporter's, say): a few client sockets beside the listeners, each opened by
//! [`crate::NetStack::connect`], moved along by the stack's ordinary polls, and released by their owner.
//!
//! The stack knows nothing of what flows over them: a client writes bytes, reads bytes and watches the state.

use smoltcp::socket::tcp;

/// Client connections open at once, at most.
pub const MAX_CLIENTS: usize = 8;
/// Smallest and largest receive and send buffer of a client socket.
pub const MIN_CLIENT_BUFFER_BYTES: usize = 1024;
/// See [`MIN_CLIENT_BUFFER_BYTES`].
pub const MAX_CLIENT_BUFFER_BYTES: usize = 256 * 1024;
/// First local port of client connections; they count up to 65535 and start again here (IANA's dynamic range).
pub const FIRST_CLIENT_PORT: u16 = 49_152;

/// A client connection of a [`crate::NetStack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId(pub(crate) usize);

/// Where a client connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// The SYN is out; no answer yet.
    Connecting,
    /// Established: bytes go both ways.
    Open,
    /// The peer closed its side (everything it sent can still be read); bytes can still be sent.
    PeerClosed,
    /// This side closed (after [`crate::NetStack::client_close`]); waiting for the peer.
    Closing,
    /// Over: closed by both sides, reset, refused or timed out. `established` says whether it ever was.
    Closed {
        /// The connection was established before it ended (false: refused, reset or unanswered).
        established: bool,
    },
}

/// Why a client connection could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectError {
    /// [`MAX_CLIENTS`] are open.
    TooManyClients,
    /// A buffer outside [`MIN_CLIENT_BUFFER_BYTES`]..=[`MAX_CLIENT_BUFFER_BYTES`].
    BufferOutOfRange {
        /// Asked for.
        buffer_bytes: usize,
    },
    /// Port 0 or an address nothing can be sent to.
    Unaddressable,
}

impl core::fmt::Display for ConnectError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ConnectError::TooManyClients => write!(formatter, "{MAX_CLIENTS} client connections are open already"),
            ConnectError::BufferOutOfRange { buffer_bytes } => {
                write!(formatter, "{buffer_bytes}-byte buffers: {MIN_CLIENT_BUFFER_BYTES} to {MAX_CLIENT_BUFFER_BYTES}")
            }
            ConnectError::Unaddressable => formatter.write_str("the address or port cannot be connected to"),
        }
    }
}

/// No client connection with that id (released already).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownClient;

/// A client socket and what the stack knows of it.
#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) handle: smoltcp::iface::SocketHandle,
    pub(crate) established: bool,
}

/// A client socket with `buffer_bytes` each way, sending each write at once.
pub(crate) fn client_socket(buffer_bytes: usize) -> tcp::Socket<'static> {
    let mut socket = tcp::Socket::new(
        tcp::SocketBuffer::new(alloc::vec![0; buffer_bytes]),
        tcp::SocketBuffer::new(alloc::vec![0; buffer_bytes]),
    );
    socket.set_nagle_enabled(false);
    socket.set_ack_delay(None);
    socket
}

/// The state of `socket`, given whether it was ever established (updated here).
pub(crate) fn state_of(socket: &tcp::Socket<'static>, established: &mut bool) -> ClientState {
    let state = match socket.state() {
        tcp::State::SynSent | tcp::State::SynReceived => ClientState::Connecting,
        tcp::State::Established => ClientState::Open,
        tcp::State::CloseWait => ClientState::PeerClosed,
        tcp::State::FinWait1 | tcp::State::FinWait2 | tcp::State::Closing | tcp::State::LastAck => ClientState::Closing,
        // Both sides have closed: over, as far as the client's bytes go.
        tcp::State::TimeWait | tcp::State::Closed | tcp::State::Listen => ClientState::Closed { established: false },
    };
    if !matches!(state, ClientState::Connecting | ClientState::Closed { .. }) {
        *established = true;
    }
    match state {
        ClientState::Closed { .. } => ClientState::Closed { established: *established },
        other => other,
    }
}

#[cfg(test)]
mod tests;
