//! The smoltcp interface over a [`FrameIo`], with the TCP echo service and an ICMP echo (ping) socket.
//!
//! The echo service keeps [`ECHO_SOCKETS`] sockets listening on
//! [`ECHO_PORT`]; each takes one connection at a time, returns exactly the
//! bytes it receives, closes when the peer has closed and everything was
//! sent back, then listens again. Connections are served in sequence (and
//! up to [`ECHO_SOCKETS`] at once).

use alloc::vec;
use alloc::vec::Vec;

use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::{icmp, tcp};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, Icmpv4Packet, Icmpv4Repr, IpAddress, IpCidr, Ipv4Address};

use crate::client::{self, Client, ClientId, ClientState, ConnectError, UnknownClient};
use crate::device::{FrameCounts, SmolDevice};
use crate::listener::{ListenError, Listener, ListenerConfig, ListenerId, ListenerStats, TcpService};
use crate::{FrameIo, LayerHook, NetLayer};

/// TCP port of the echo service (RFC 862).
pub const ECHO_PORT: u16 = 7;
/// Echo connections served at once.
pub const ECHO_SOCKETS: usize = 4;
/// Receive and send buffer of each echo socket.
const ECHO_BUFFER_BYTES: usize = 64 * 1024;
/// Bytes moved from an echo socket's receive to its send buffer per step.
const ECHO_CHUNK_BYTES: usize = 16 * 1024;
/// ICMP packets buffered each way, and their payload room.
const ICMP_PACKETS: usize = 8;
const ICMP_PAYLOAD_BYTES: usize = 8 * 1024;
/// Most interface polls one [`NetStack::serve`] call makes (each sends at most one segment per socket).
const SERVE_ROUNDS: usize = 8;
/// Identifier in every echo request this stack sends.
const PING_IDENT: u16 = 0x5153;

/// Addresses of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetConfig {
    /// The device's MAC address.
    pub mac: [u8; 6],
    /// The interface's IPv4 address.
    pub address: [u8; 4],
    /// Network prefix length.
    pub prefix_len: u8,
    /// Default gateway.
    pub gateway: [u8; 4],
}

impl NetConfig {
    /// QEMU user networking: 10.0.2.15/24, gateway 10.0.2.2.
    pub fn qemu_user(mac: [u8; 6]) -> Self {
        NetConfig { mac, address: [10, 0, 2, 15], prefix_len: 24, gateway: [10, 0, 2, 2] }
    }
}

/// Echo service counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EchoStats {
    /// Connections accepted since boot.
    pub connections: u64,
    /// Connections open now.
    pub active: u64,
    /// Bytes received and queued back.
    pub bytes_echoed: u64,
}

/// An echo reply to one of this stack's requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingReply {
    /// Who answered.
    pub from: [u8; 4],
    /// The request's sequence number.
    pub sequence: u16,
    /// The reply's payload.
    pub payload: Vec<u8>,
}

/// Why an echo request could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingError {
    /// The ICMP send buffer is full.
    BufferFull,
    /// The address cannot be sent to (unspecified).
    Unaddressable,
    /// The payload is larger than the socket's room.
    TooLarge,
}

impl core::fmt::Display for PingError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.write_str(match self {
            PingError::BufferFull => "the ICMP send buffer is full",
            PingError::Unaddressable => "the address cannot be sent to",
            PingError::TooLarge => "the payload is too large",
        })
    }
}

/// smoltcp plus SIS's services over one frame device.
pub struct NetStack<F: FrameIo> {
    device: SmolDevice<F>,
    interface: Interface,
    sockets: SocketSet<'static>,
    echo: [SocketHandle; ECHO_SOCKETS],
    echo_was_active: [bool; ECHO_SOCKETS],
    echo_stats: EchoStats,
    icmp: SocketHandle,
    config: NetConfig,
    scratch: Vec<u8>,
    polls: u64,
    /// TCP services' listeners, by [`ListenerId`] (a closed one leaves `None`).
    listeners: Vec<Option<Listener>>,
    /// Client connections, by [`ClientId`] (a released one leaves `None`).
    clients: Vec<Option<Client>>,
    /// The local port of the next client connection.
    next_client_port: u16,
}

impl<F: FrameIo> core::fmt::Debug for NetStack<F> {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("NetStack")
            .field("config", &self.config)
            .field("echo_stats", &self.echo_stats)
            .field("polls", &self.polls)
            .finish_non_exhaustive()
    }
}

fn instant(now_ns: u64) -> Instant {
    Instant::from_micros((now_ns / 1_000).min(i64::MAX as u64) as i64)
}

fn echo_socket() -> tcp::Socket<'static> {
    let mut socket = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; ECHO_BUFFER_BYTES]),
        tcp::SocketBuffer::new(vec![0; ECHO_BUFFER_BYTES]),
    );
    // An echo is a request/response exchange: send each reply at once.
    socket.set_nagle_enabled(false);
    socket.set_ack_delay(None);
    socket
}

impl<F: FrameIo> NetStack<F> {
    /// The interface on `io` with `config`, the echo service listening and the ping socket bound.
    pub fn new(io: F, config: NetConfig, now_ns: u64) -> Self {
        let mut device = SmolDevice::new(io);
        let hardware = HardwareAddress::Ethernet(EthernetAddress(config.mac));
        let mut interface = Interface::new(Config::new(hardware), &mut device, instant(now_ns));
        let [a, b, c, d] = config.address;
        interface.update_ip_addrs(|addresses| {
            // One address on an empty list cannot overflow it.
            let _ = addresses.push(IpCidr::new(IpAddress::v4(a, b, c, d), config.prefix_len));
        });
        let [a, b, c, d] = config.gateway;
        // The route table has room for this one default route.
        let _ = interface.routes_mut().add_default_ipv4_route(Ipv4Address::new(a, b, c, d));
        let mut sockets = SocketSet::new(Vec::new());
        let echo = core::array::from_fn(|_| {
            let mut socket = echo_socket();
            // Listening on a fresh socket with a non-zero port cannot fail.
            let _ = socket.listen(ECHO_PORT);
            sockets.add(socket)
        });
        let mut icmp_socket = icmp::Socket::new(
            icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; ICMP_PACKETS], vec![0; ICMP_PAYLOAD_BYTES]),
            icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; ICMP_PACKETS], vec![0; ICMP_PAYLOAD_BYTES]),
        );
        // Binding an unbound socket to a non-zero identifier cannot fail.
        let _ = icmp_socket.bind(icmp::Endpoint::Ident(PING_IDENT));
        let icmp = sockets.add(icmp_socket);
        NetStack {
            device,
            interface,
            sockets,
            echo,
            echo_was_active: [false; ECHO_SOCKETS],
            echo_stats: EchoStats::default(),
            icmp,
            config,
            scratch: vec![0; ECHO_CHUNK_BYTES],
            polls: 0,
            listeners: Vec::new(),
            clients: Vec::new(),
            next_client_port: client::FIRST_CLIENT_PORT,
        }
    }

    /// Starts listening on `config.port` with `config.sockets` sockets for a [`TcpService`] that
    /// [`serve`](Self::serve) drives. Refused for a port in use (the echo's or another listener's) or a
    /// configuration out of bounds.
    pub fn listen(&mut self, config: ListenerConfig) -> Result<ListenerId, ListenError> {
        config.validate()?;
        let in_use = config.port == ECHO_PORT
            || self.listeners.iter().flatten().any(|listener| listener.config.port == config.port);
        if in_use {
            return Err(ListenError::PortInUse { port: config.port });
        }
        let handles = (0..config.sockets).map(|_| self.sockets.add(config.socket())).collect();
        let listener = Listener::new(config, handles);
        let id = match self.listeners.iter().position(Option::is_none) {
            Some(free) => {
                self.listeners[free] = Some(listener);
                free
            }
            None => {
                self.listeners.push(Some(listener));
                self.listeners.len() - 1
            }
        };
        Ok(ListenerId(id))
    }

    /// Stops a listener: its connections are aborted (a reset goes out at the next poll), `service` (if given)
    /// sees each open one end, and its sockets are freed.
    pub fn close_listener(
        &mut self,
        id: ListenerId,
        service: Option<&mut dyn TcpService>,
        now_ns: u64,
    ) -> Result<ListenerStats, ListenError> {
        let mut listener = self.listeners.get_mut(id.0).and_then(Option::take).ok_or(ListenError::Unknown)?;
        for &handle in &listener.handles {
            self.sockets.get_mut::<tcp::Socket>(handle).abort();
        }
        // Send the resets before the sockets go.
        self.interface.poll(instant(now_ns), &mut self.device, &mut self.sockets);
        for &handle in &listener.handles {
            self.sockets.remove(handle);
        }
        listener.end_all(service, now_ns);
        Ok(listener.stats)
    }

    /// Serves listener `id` with `service` at `now_ns`: accepts connections, hands received bytes over, sends
    /// its output, closes what it closes, and polls the interface until nothing more moves (bounded). Returns
    /// whether anything moved.
    pub fn serve(&mut self, id: ListenerId, now_ns: u64, service: &mut dyn TcpService) -> Result<bool, ListenError> {
        let timestamp = instant(now_ns);
        let mut any = false;
        for _ in 0..SERVE_ROUNDS {
            // A socket sends one segment per interface poll: keep polling while segments go out, so a response of
            // several segments leaves in this call rather than one segment per turn of the network thread.
            self.device.mark(NetLayer::SmoltcpPoll);
            let polled = self.interface.poll(timestamp, &mut self.device, &mut self.sockets);
            self.device.mark(NetLayer::SocketCopy);
            let listener = self.listeners.get_mut(id.0).and_then(Option::as_mut).ok_or(ListenError::Unknown)?;
            let mut moved = false;
            for slot in 0..listener.handles.len() {
                let socket = self.sockets.get_mut::<tcp::Socket>(listener.handles[slot]);
                moved |= listener.serve_slot(slot, socket, service, &mut self.scratch, now_ns);
            }
            listener.refresh_open();
            any |= moved;
            if !moved && polled == PollResult::None {
                break;
            }
        }
        Ok(any)
    }

    /// A listener's counters.
    pub fn listener_stats(&self, id: ListenerId) -> Result<ListenerStats, ListenError> {
        self.listeners.get(id.0).and_then(Option::as_ref).map(|listener| listener.stats).ok_or(ListenError::Unknown)
    }

    /// TCP state of each of a listener's sockets, lower case.
    pub fn listener_states(&self, id: ListenerId) -> Result<Vec<&'static str>, ListenError> {
        let listener = self.listeners.get(id.0).and_then(Option::as_ref).ok_or(ListenError::Unknown)?;
        Ok(listener.handles.iter().map(|&handle| state_name(self.sockets.get::<tcp::Socket>(handle).state())).collect())
    }

    /// Opens a client connection to `address:port` with `buffer_bytes` each way: the SYN leaves at the next poll,
    /// and the connection moves along with every poll after. Release it with [`Self::client_release`].
    pub fn connect(&mut self, address: [u8; 4], port: u16, buffer_bytes: usize) -> Result<ClientId, ConnectError> {
        if !(client::MIN_CLIENT_BUFFER_BYTES..=client::MAX_CLIENT_BUFFER_BYTES).contains(&buffer_bytes) {
            return Err(ConnectError::BufferOutOfRange { buffer_bytes });
        }
        let slot = match self.clients.iter().position(Option::is_none) {
            Some(free) => free,
            None if self.clients.len() < client::MAX_CLIENTS => {
                self.clients.push(None);
                self.clients.len() - 1
            }
            None => return Err(ConnectError::TooManyClients),
        };
        let local_port = self.next_client_port;
        self.next_client_port = local_port.checked_add(1).unwrap_or(client::FIRST_CLIENT_PORT);
        let mut socket = client::client_socket(buffer_bytes);
        let [a, b, c, d] = address;
        let remote = (IpAddress::v4(a, b, c, d), port);
        socket.connect(self.interface.context(), remote, local_port).map_err(|_| ConnectError::Unaddressable)?;
        let handle = self.sockets.add(socket);
        self.clients[slot] = Some(Client { handle, established: false });
        Ok(ClientId(slot))
    }

    /// Where client connection `id` is.
    pub fn client_state(&mut self, id: ClientId) -> Result<ClientState, UnknownClient> {
        let entry = self.clients.get_mut(id.0).and_then(Option::as_mut).ok_or(UnknownClient)?;
        Ok(client::state_of(self.sockets.get::<tcp::Socket>(entry.handle), &mut entry.established))
    }

    /// Queues as much of `data` as the send buffer takes (0 when the connection cannot send); returns how much.
    pub fn client_send(&mut self, id: ClientId, data: &[u8]) -> Result<usize, UnknownClient> {
        let entry = self.clients.get(id.0).and_then(Option::as_ref).ok_or(UnknownClient)?;
        let socket = self.sockets.get_mut::<tcp::Socket>(entry.handle);
        if !socket.can_send() {
            return Ok(0);
        }
        Ok(socket.send_slice(data).unwrap_or(0))
    }

    /// Bytes not yet acknowledged or not yet sent on client connection `id`.
    pub fn client_send_queue(&self, id: ClientId) -> Result<usize, UnknownClient> {
        let entry = self.clients.get(id.0).and_then(Option::as_ref).ok_or(UnknownClient)?;
        Ok(self.sockets.get::<tcp::Socket>(entry.handle).send_queue())
    }

    /// Appends up to `max` received bytes to `into`; returns how many.
    pub fn client_receive(&mut self, id: ClientId, into: &mut Vec<u8>, max: usize) -> Result<usize, UnknownClient> {
        let entry = self.clients.get(id.0).and_then(Option::as_ref).ok_or(UnknownClient)?;
        let socket = self.sockets.get_mut::<tcp::Socket>(entry.handle);
        let mut total = 0;
        while total < max && socket.can_recv() {
            let taken = socket
                .recv(|data| {
                    let take = data.len().min(max - total);
                    into.extend_from_slice(&data[..take]);
                    (take, take)
                })
                .unwrap_or(0);
            if taken == 0 {
                break;
            }
            total += taken;
        }
        Ok(total)
    }

    /// Closes this side of client connection `id` once what was queued is sent (a FIN follows it).
    pub fn client_close(&mut self, id: ClientId) -> Result<(), UnknownClient> {
        let entry = self.clients.get(id.0).and_then(Option::as_ref).ok_or(UnknownClient)?;
        self.sockets.get_mut::<tcp::Socket>(entry.handle).close();
        Ok(())
    }

    /// Ends client connection `id` and frees its socket: a connection still open is reset (the reset leaves at
    /// this call's poll).
    pub fn client_release(&mut self, id: ClientId, now_ns: u64) -> Result<(), UnknownClient> {
        let entry = self.clients.get_mut(id.0).and_then(Option::take).ok_or(UnknownClient)?;
        let socket = self.sockets.get_mut::<tcp::Socket>(entry.handle);
        if socket.is_open() {
            socket.abort();
            self.interface.poll(instant(now_ns), &mut self.device, &mut self.sockets);
        }
        self.sockets.remove(entry.handle);
        Ok(())
    }

    /// Client connections open now (not yet released).
    pub fn clients_open(&self) -> usize {
        self.clients.iter().flatten().count()
    }

    /// Moves frames and serves the echo sockets until nothing more happens at `now_ns`.
    pub fn poll(&mut self, now_ns: u64) {
        let timestamp = instant(now_ns);
        self.polls += 1;
        // Echoing queues data; the next interface poll sends it. Bounded so one call cannot run forever.
        for _ in 0..8 {
            self.device.mark(NetLayer::SmoltcpPoll);
            self.interface.poll(timestamp, &mut self.device, &mut self.sockets);
            self.device.mark(NetLayer::SocketCopy);
            if !self.serve_echo() {
                break;
            }
        }
    }

    /// How long until the stack needs polling again (`None`: only when a frame arrives).
    pub fn poll_delay_ns(&mut self, now_ns: u64) -> Option<u64> {
        self.device.mark(NetLayer::SmoltcpPoll);
        self.interface.poll_delay(instant(now_ns), &self.sockets).map(|delay| delay.total_micros() * 1_000)
    }

    /// Returns true when bytes were moved (so the interface has something to send).
    fn serve_echo(&mut self) -> bool {
        let mut moved = false;
        let mut active = 0;
        for (index, &handle) in self.echo.iter().enumerate() {
            let socket = self.sockets.get_mut::<tcp::Socket>(handle);
            let is_active = socket.is_active();
            if is_active && !self.echo_was_active[index] {
                self.echo_stats.connections += 1;
            }
            while socket.can_recv() {
                let room = socket.send_capacity() - socket.send_queue();
                let chunk = room.min(self.scratch.len());
                if chunk == 0 {
                    break;
                }
                let Ok(received) = socket.recv_slice(&mut self.scratch[..chunk]) else { break };
                if received == 0 {
                    break;
                }
                // `room` bytes were free, so all of them fit.
                let _ = socket.send_slice(&self.scratch[..received]);
                self.echo_stats.bytes_echoed += received as u64;
                moved = true;
            }
            if socket.state() == tcp::State::CloseWait && socket.send_queue() == 0 {
                socket.close();
                moved = true;
            }
            if socket.state() == tcp::State::Closed {
                // Closed by the peer, a reset or a timeout: take the next connection.
                let _ = socket.listen(ECHO_PORT);
            }
            self.echo_was_active[index] = socket.is_active();
            active += u64::from(socket.is_active());
        }
        self.echo_stats.active = active;
        moved
    }

    /// Queues an ICMP echo request to `target`; it leaves at the next poll.
    pub fn ping_send(&mut self, target: [u8; 4], sequence: u16, payload: &[u8]) -> Result<(), PingError> {
        if payload.len() + 8 > ICMP_PAYLOAD_BYTES {
            return Err(PingError::TooLarge);
        }
        let [a, b, c, d] = target;
        let socket = self.sockets.get_mut::<icmp::Socket>(self.icmp);
        let repr = Icmpv4Repr::EchoRequest { ident: PING_IDENT, seq_no: sequence, data: payload };
        let buffer = socket.send(repr.buffer_len(), IpAddress::v4(a, b, c, d)).map_err(|error| match error {
            icmp::SendError::BufferFull => PingError::BufferFull,
            icmp::SendError::Unaddressable => PingError::Unaddressable,
        })?;
        repr.emit(&mut Icmpv4Packet::new_unchecked(buffer), &ChecksumCapabilities::default());
        Ok(())
    }

    /// The next echo reply addressed to this stack's requests (other ICMP is discarded).
    pub fn ping_receive(&mut self) -> Option<PingReply> {
        let socket = self.sockets.get_mut::<icmp::Socket>(self.icmp);
        while let Ok((data, from)) = socket.recv() {
            let Ok(packet) = Icmpv4Packet::new_checked(data) else { continue };
            let Ok(Icmpv4Repr::EchoReply { ident, seq_no, data }) =
                Icmpv4Repr::parse(&packet, &ChecksumCapabilities::default())
            else {
                continue;
            };
            let IpAddress::Ipv4(from) = from;
            if ident == PING_IDENT {
                return Some(PingReply { from: from.octets(), sequence: seq_no, payload: data.to_vec() });
            }
        }
        None
    }

    /// Drops replies that arrived for earlier pings.
    pub fn ping_discard(&mut self) {
        while self.ping_receive().is_some() {}
    }

    /// The addresses.
    pub fn config(&self) -> NetConfig {
        self.config
    }

    /// Echo counters.
    pub fn echo_stats(&self) -> EchoStats {
        self.echo_stats
    }

    /// TCP state of each echo socket, lower case (`listen`, `established`, ...).
    pub fn echo_states(&self) -> [&'static str; ECHO_SOCKETS] {
        core::array::from_fn(|index| state_name(self.sockets.get::<tcp::Socket>(self.echo[index]).state()))
    }

    /// Received frames longer than the MTU allows, dropped before smoltcp parsed them.
    pub fn oversize_dropped(&self) -> u64 {
        self.device.oversize_dropped()
    }

    /// Echo sockets idle: listening for a connection, nothing queued.
    pub fn idle_echo_sockets(&self) -> u64 {
        self.echo
            .iter()
            .filter(|&&handle| {
                let socket = self.sockets.get::<tcp::Socket>(handle);
                socket.state() == tcp::State::Listen && socket.send_queue() == 0 && socket.recv_queue() == 0
            })
            .count() as u64
    }

    /// Frames and TCP payload segments through the adapter below smoltcp so far.
    pub fn frame_counts(&self) -> FrameCounts {
        self.device.counts()
    }

    /// Installs (or with `None` removes) the hook told of every change of [`NetLayer`] inside the stack.
    pub fn set_layer_hook(&mut self, hook: Option<LayerHook>) {
        self.device.set_layer_hook(hook);
    }

    /// Times [`poll`](Self::poll) ran.
    pub fn polls(&self) -> u64 {
        self.polls
    }

    /// The frame device under the stack.
    pub fn io(&self) -> &F {
        self.device.io()
    }

    /// The frame device under the stack, mutably.
    pub fn io_mut(&mut self) -> &mut F {
        self.device.io_mut()
    }
}

fn state_name(state: tcp::State) -> &'static str {
    match state {
        tcp::State::Closed => "closed",
        tcp::State::Listen => "listen",
        tcp::State::SynSent => "syn-sent",
        tcp::State::SynReceived => "syn-received",
        tcp::State::Established => "established",
        tcp::State::FinWait1 => "fin-wait-1",
        tcp::State::FinWait2 => "fin-wait-2",
        tcp::State::CloseWait => "close-wait",
        tcp::State::Closing => "closing",
        tcp::State::LastAck => "last-ack",
        tcp::State::TimeWait => "time-wait",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{Wire, WireEnd};
    use crate::{FaultInjector, ListenError, ListenerConfig, ListenerId, TcpService, UNACKNOWLEDGED_TIMEOUT_S};
    use sis_hal::SeededRandom;

    const CLIENT_MAC: [u8; 6] = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];
    const SERVER_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    /// Fake time advanced per step.
    const STEP_NS: u64 = 1_000_000;

    /// The peer at 10.0.2.2: a bare smoltcp interface with one client socket.
    struct Client {
        device: SmolDevice<WireEnd>,
        interface: Interface,
        sockets: SocketSet<'static>,
        tcp: SocketHandle,
        next_port: u16,
    }

    impl Client {
        fn new(end: WireEnd, now_ns: u64) -> Self {
            let mut device = SmolDevice::new(end);
            let hardware = HardwareAddress::Ethernet(EthernetAddress(CLIENT_MAC));
            let mut interface = Interface::new(Config::new(hardware), &mut device, instant(now_ns));
            interface.update_ip_addrs(|addresses| {
                addresses.push(IpCidr::new(IpAddress::v4(10, 0, 2, 2), 24)).unwrap();
            });
            let mut sockets = SocketSet::new(Vec::new());
            let tcp = sockets.add(echo_socket());
            Client { device, interface, sockets, tcp, next_port: 40_000 }
        }

        fn poll(&mut self, now_ns: u64) {
            self.interface.poll(instant(now_ns), &mut self.device, &mut self.sockets);
        }

        fn socket(&mut self) -> &mut tcp::Socket<'static> {
            self.sockets.get_mut::<tcp::Socket>(self.tcp)
        }

        fn connect(&mut self) {
            self.connect_to(ECHO_PORT);
        }

        fn connect_to(&mut self, server_port: u16) {
            self.next_port += 1;
            let port = self.next_port;
            let context = self.interface.context();
            let socket = self.sockets.get_mut::<tcp::Socket>(self.tcp);
            socket.connect(context, (IpAddress::v4(10, 0, 2, 15), server_port), port).unwrap();
        }
    }

    /// Polls both sides, advancing time, until `done` or `max_steps` steps; returns the time reached.
    fn run<F: FrameIo>(
        server: &mut NetStack<F>,
        client: &mut Client,
        mut now_ns: u64,
        max_steps: u32,
        mut done: impl FnMut(&mut NetStack<F>, &mut Client) -> bool,
    ) -> (u64, bool) {
        for _ in 0..max_steps {
            client.poll(now_ns);
            server.poll(now_ns);
            if done(server, client) {
                return (now_ns, true);
            }
            now_ns += STEP_NS;
        }
        (now_ns, false)
    }

    /// Sends `payload` on the client's connection and reads it all back; returns what came back and the time.
    fn round_trip<F: FrameIo>(
        server: &mut NetStack<F>,
        client: &mut Client,
        now_ns: u64,
        payload: &[u8],
    ) -> (Vec<u8>, u64) {
        let mut sent = 0;
        let mut back = Vec::new();
        let (now_ns, _) = run(server, client, now_ns, 200_000, |_, client| {
            let socket = client.socket();
            if sent < payload.len() && socket.can_send() {
                sent += socket.send_slice(&payload[sent..]).unwrap();
            }
            while socket.can_recv() {
                socket.recv(|data| (data.len(), back.extend_from_slice(data))).unwrap();
            }
            back.len() >= payload.len()
        });
        (back, now_ns)
    }

    fn pair(now_ns: u64) -> (NetStack<FaultInjector<WireEnd>>, Client) {
        let (server_end, client_end) = Wire::new();
        let server = NetStack::new(FaultInjector::new(server_end), NetConfig::qemu_user(SERVER_MAC), now_ns);
        (server, Client::new(client_end, now_ns))
    }

    fn payload(random: &mut SeededRandom, bytes: usize) -> Vec<u8> {
        (0..bytes).map(|_| random.next_u64() as u8).collect()
    }

    fn close(server: &mut NetStack<FaultInjector<WireEnd>>, client: &mut Client, now_ns: u64) -> u64 {
        client.socket().close();
        let (now_ns, closed) = run(server, client, now_ns, 100_000, |server, client| {
            client.socket().state() == tcp::State::TimeWait && server.echo_stats().active == 0
        });
        assert!(closed, "client {:?}, server {:?}", client.socket().state(), server.echo_states());
        client.socket().abort();
        client.poll(now_ns);
        now_ns
    }

    /// Marks per layer, counted by [`count_marks`] (one test uses it).
    static MARKS: [std::sync::atomic::AtomicU64; 6] = [const { std::sync::atomic::AtomicU64::new(0) }; 6];

    fn count_marks(layer: NetLayer) {
        MARKS[layer as usize].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    #[test]
    fn frame_counts_see_every_payload_byte_and_the_hook_sees_every_layer() {
        let (mut server, mut client) = pair(0);
        server.set_layer_hook(Some(count_marks));
        let mut random = SeededRandom::new(5);
        client.connect();
        let sent = payload(&mut random, 50_000);
        let (back, now_ns) = round_trip(&mut server, &mut client, 0, &sent);
        assert_eq!(back, sent);
        let counts = server.frame_counts();
        // No drops on this wire: every byte arrives once and is echoed once.
        assert_eq!(counts.received_payload_bytes, 50_000);
        assert_eq!(counts.transmitted_payload_bytes, 50_000);
        // At most 1,460 bytes (the MSS) a segment.
        assert!(counts.received_payload_segments > 50_000 / 1_460, "{counts:?}");
        assert!(counts.transmitted_payload_segments > 50_000 / 1_460, "{counts:?}");
        // Every frame counts; the handshake and the acknowledgements carry none.
        assert!(counts.received_frames > counts.received_payload_segments, "{counts:?}");
        assert!(counts.transmitted_frames > counts.transmitted_payload_segments, "{counts:?}");
        let marks: Vec<u64> = MARKS.iter().map(|m| m.load(std::sync::atomic::Ordering::Relaxed)).collect();
        // Each received frame enters the device, ingress and its copy; each sent one egress and the device.
        assert!(marks[NetLayer::DeviceReceive as usize] >= counts.received_frames, "{marks:?}");
        assert!(marks[NetLayer::SmoltcpIngress as usize] >= counts.received_frames, "{marks:?}");
        assert!(marks[NetLayer::SmoltcpEgress as usize] >= counts.transmitted_frames, "{marks:?}");
        assert!(marks[NetLayer::DeviceTransmit as usize] >= counts.transmitted_frames, "{marks:?}");
        assert!(marks[NetLayer::SocketCopy as usize] > 0, "{marks:?}");
        server.set_layer_hook(None);
        close(&mut server, &mut client, now_ns);
        assert_eq!(
            MARKS[NetLayer::DeviceTransmit as usize].load(std::sync::atomic::Ordering::Relaxed),
            marks[NetLayer::DeviceTransmit as usize],
            "no marks once the hook is gone"
        );
        assert_eq!(counts.transmit_refusals, 0, "the fake wire always has room");
    }

    #[test]
    fn payload_length_is_read_from_the_ip_and_tcp_headers() {
        let mut frame = vec![0u8; 14 + 20 + 32 + 100];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        frame[14] = 0x45;
        frame[16..18].copy_from_slice(&(20u16 + 32 + 100).to_be_bytes());
        frame[14 + 9] = 6;
        frame[14 + 20 + 12] = 8 << 4;
        assert_eq!(crate::tcp_payload_bytes(&frame), 100);
        frame[14 + 9] = 17;
        assert_eq!(crate::tcp_payload_bytes(&frame), 0, "UDP");
        frame[14 + 9] = 6;
        frame[12] = 0x86;
        assert_eq!(crate::tcp_payload_bytes(&frame), 0, "not IPv4");
        frame[12] = 0x08;
        assert_eq!(crate::tcp_payload_bytes(&frame[..20]), 0, "truncated");
    }

    #[test]
    fn three_connections_in_sequence_get_back_exactly_what_they_sent() {
        let (mut server, mut client) = pair(0);
        let mut random = SeededRandom::new(11);
        let mut now_ns = 0;
        let mut total = 0u64;
        for connection in 1..=3u64 {
            client.connect();
            for size in [1usize, 100, 1460, 1461, 20_000, 150_000] {
                let sent = payload(&mut random, size);
                let (back, later) = round_trip(&mut server, &mut client, now_ns, &sent);
                assert_eq!(back, sent, "connection {connection}, {size} bytes");
                now_ns = later;
                total += size as u64;
            }
            assert_eq!(server.echo_stats().connections, connection);
            assert_eq!(server.echo_stats().active, 1);
            now_ns = close(&mut server, &mut client, now_ns);
            assert_eq!(server.echo_states(), ["listen"; ECHO_SOCKETS], "every socket listens again");
        }
        assert_eq!(server.echo_stats(), EchoStats { connections: 3, active: 0, bytes_echoed: total });
    }

    #[test]
    fn drops_and_corruption_on_the_wire_cost_retransmissions_never_bytes() {
        let (mut server, mut client) = pair(0);
        server.io_mut().set_drop_percent(10, 3).unwrap();
        server.io_mut().set_corrupt_percent(10, 4).unwrap();
        let mut random = SeededRandom::new(5);
        client.connect();
        let mut now_ns = 0;
        for size in [10usize, 3_000, 60_000] {
            let sent = payload(&mut random, size);
            let (back, later) = round_trip(&mut server, &mut client, now_ns, &sent);
            assert_eq!(back, sent, "{size} bytes");
            now_ns = later;
        }
        let stats = server.io().stats();
        assert!(stats.dropped_random > 0 && stats.corrupted > 0, "{stats:?}");
        assert_eq!(stats.dropped_partition, 0);
    }

    #[test]
    fn a_partition_stops_the_echo_and_it_resumes_on_the_same_connection_after() {
        let (mut server, mut client) = pair(0);
        client.connect();
        let (back, now_ns) = round_trip(&mut server, &mut client, 0, b"before");
        assert_eq!(back, b"before");
        let until = server.io_mut().partition_for(now_ns, 2_000_000_000);
        client.socket().send_slice(b"during").unwrap();
        let (now_ns, answered) = run(&mut server, &mut client, now_ns, 1_990, |_, client| client.socket().can_recv());
        assert!(!answered && now_ns < until, "no reply inside the partition");
        assert_eq!(server.echo_stats().bytes_echoed, 6);
        assert!(server.io().stats().dropped_partition > 0);
        let mut back = Vec::new();
        let (_, answered) = run(&mut server, &mut client, now_ns, 100_000, |_, client| {
            let socket = client.socket();
            while socket.can_recv() {
                socket.recv(|data| (data.len(), back.extend_from_slice(data))).unwrap();
            }
            back.len() == 6
        });
        assert!(answered, "the retransmission after the partition got its echo");
        assert_eq!(back, b"during");
        assert_eq!(server.echo_stats().connections, 1, "the same connection");
    }

    #[test]
    fn ping_gets_the_peers_echo_reply_with_the_payload_and_sequence() {
        let (mut server, mut client) = pair(0);
        server.ping_send([10, 0, 2, 2], 7, b"sis ping").unwrap();
        let mut reply = None;
        let (_, answered) = run(&mut server, &mut client, 0, 1_000, |server, _| {
            reply = server.ping_receive();
            reply.is_some()
        });
        assert!(answered);
        assert_eq!(reply, Some(PingReply { from: [10, 0, 2, 2], sequence: 7, payload: b"sis ping".to_vec() }));
        assert_eq!(server.ping_send([0, 0, 0, 0], 1, b""), Err(PingError::Unaddressable));
        assert_eq!(server.ping_send([10, 0, 2, 2], 1, &[0; ICMP_PAYLOAD_BYTES]), Err(PingError::TooLarge));
    }

    #[test]
    fn garbage_frames_are_ignored_and_the_echo_keeps_working() {
        let (server_end, client_end) = Wire::new();
        let injector = server_end.clone();
        let mut server = NetStack::new(FaultInjector::new(server_end), NetConfig::qemu_user(SERVER_MAC), 0);
        let mut client = Client::new(client_end, 0);
        let mut random = SeededRandom::new(9);
        for size in [0usize, 1, 13, 14, 60, 1514, 9000] {
            injector.inject(payload(&mut random, size));
        }
        server.poll(0);
        assert_eq!(injector.pending(), 0, "all consumed");
        client.connect();
        let (back, _) = round_trip(&mut server, &mut client, 0, b"still here");
        assert_eq!(back, b"still here");
    }

    /// A line service for the listener tests: answers each received byte upper-cased, ends the connection after
    /// `bye`, takes at most `room` bytes at a time, and records what it saw.
    #[derive(Default)]
    struct Upper {
        room: usize,
        output: Vec<Vec<u8>>,
        received: Vec<Vec<u8>>,
        closing: Vec<bool>,
        events: Vec<(&'static str, usize)>,
    }

    impl Upper {
        fn new(slots: usize, room: usize) -> Self {
            Upper {
                room,
                output: vec![Vec::new(); slots],
                received: vec![Vec::new(); slots],
                closing: vec![false; slots],
                events: Vec::new(),
            }
        }
    }

    impl TcpService for Upper {
        fn opened(&mut self, slot: usize, _now_ns: u64) {
            self.events.push(("opened", slot));
        }

        fn room(&self, _slot: usize) -> usize {
            self.room
        }

        fn received(&mut self, slot: usize, data: &[u8], _now_ns: u64) {
            self.received[slot].extend_from_slice(data);
            self.output[slot].extend(data.iter().map(u8::to_ascii_uppercase));
            if self.received[slot].ends_with(b"bye") {
                self.closing[slot] = true;
            }
        }

        fn output(&self, slot: usize) -> &[u8] {
            &self.output[slot]
        }

        fn sent(&mut self, slot: usize, count: usize) {
            self.output[slot].drain(..count);
        }

        fn peer_closed(&mut self, slot: usize, _now_ns: u64) {
            self.events.push(("peer_closed", slot));
            self.output[slot].extend_from_slice(b"; served");
            self.closing[slot] = true;
        }

        fn closing(&self, slot: usize) -> bool {
            self.closing[slot]
        }

        fn closed(&mut self, slot: usize, _now_ns: u64) {
            self.events.push(("closed", slot));
            self.received[slot].clear();
            self.closing[slot] = false;
        }
    }

    const SERVICE_PORT: u16 = 8080;

    fn listening(server: &mut NetStack<FaultInjector<WireEnd>>, sockets: usize) -> ListenerId {
        server.listen(ListenerConfig { port: SERVICE_PORT, sockets, buffer_bytes: 16 * 1024 }).unwrap()
    }

    /// Polls the client and serves the listener, advancing time, until `done` or `max_steps`.
    fn serve_until(
        server: &mut NetStack<FaultInjector<WireEnd>>,
        id: ListenerId,
        service: &mut Upper,
        client: &mut Client,
        mut now_ns: u64,
        max_steps: u32,
        mut done: impl FnMut(&mut Upper, &mut Client) -> bool,
    ) -> (u64, bool) {
        for _ in 0..max_steps {
            client.poll(now_ns);
            server.serve(id, now_ns, service).unwrap();
            if done(service, client) {
                return (now_ns, true);
            }
            now_ns += STEP_NS;
        }
        (now_ns, false)
    }

    /// Connects the client to the service from `now_ns` and serves until the connection is established; returns
    /// the time it was.
    fn established(
        server: &mut NetStack<FaultInjector<WireEnd>>,
        id: ListenerId,
        service: &mut Upper,
        client: &mut Client,
        now_ns: u64,
    ) -> u64 {
        client.connect_to(SERVICE_PORT);
        let (now_ns, open) = serve_until(server, id, service, client, now_ns, 1_000, |_, client| {
            client.socket().state() == tcp::State::Established
        });
        assert!(open, "the connection was established");
        now_ns
    }

    fn take_received(client: &mut Client, into: &mut Vec<u8>) {
        let socket = client.socket();
        while socket.can_recv() {
            socket.recv(|data| (data.len(), into.extend_from_slice(data))).unwrap();
        }
    }

    #[test]
    fn a_service_sees_its_connections_open_receive_and_end_and_each_slot_listens_again() {
        let (mut server, mut client) = pair(0);
        let id = listening(&mut server, 2);
        let mut service = Upper::new(2, usize::MAX);
        let mut now_ns = 0;
        for connection in 1..=2u64 {
            client.connect_to(SERVICE_PORT);
            client.poll(now_ns);
            let mut back = Vec::new();
            let mut sent = false;
            let (later, done) = serve_until(&mut server, id, &mut service, &mut client, now_ns, 10_000, |_, client| {
                if !sent && client.socket().can_send() {
                    client.socket().send_slice(b"hello, bye").unwrap();
                    sent = true;
                }
                take_received(client, &mut back);
                // The service closes after `bye`: the client sees the FIN once everything arrived.
                client.socket().state() == tcp::State::CloseWait
            });
            assert!(done, "connection {connection}: client {:?}", client.socket().state());
            assert_eq!(back, b"HELLO, BYE");
            client.socket().close();
            let (later, ended) =
                serve_until(&mut server, id, &mut service, &mut client, later, 10_000, |service, _| {
                    service.events.iter().filter(|event| event.0 == "closed").count() as u64 == connection
                });
            assert!(ended);
            client.socket().abort();
            client.poll(later);
            now_ns = later + STEP_NS;
            let stats = server.listener_stats(id).unwrap();
            assert_eq!((stats.accepted, stats.ended, stats.open), (connection, connection, 0));
            assert_eq!((stats.bytes_in, stats.bytes_out), (10 * connection, 10 * connection));
        }
        assert_eq!(service.events, [("opened", 0), ("closed", 0), ("opened", 0), ("closed", 0)]);
        assert_eq!(server.listener_states(id).unwrap(), ["listen", "listen"]);
        assert_eq!(server.echo_stats().connections, 0, "the echo service saw nothing");
    }

    #[test]
    fn a_reply_of_several_segments_leaves_in_one_serve_call() {
        let (mut server, mut client) = pair(0);
        let id = listening(&mut server, 1);
        let mut service = Upper::new(1, usize::MAX);
        client.connect_to(SERVICE_PORT);
        let (now_ns, established) =
            serve_until(&mut server, id, &mut service, &mut client, 0, 1_000, |service, client| {
                client.socket().state() == tcp::State::Established && service.events == [("opened", 0)]
            });
        assert!(established);
        // Three full segments and a part: before, one serve call sent one or two of them.
        let reply = vec![b'x'; 3 * 1460 + 100];
        service.output[0] = reply.clone();
        server.serve(id, now_ns, &mut service).unwrap();
        client.poll(now_ns);
        let mut back = Vec::new();
        take_received(&mut client, &mut back);
        assert_eq!(back.len(), reply.len());
        assert_eq!(back, reply);
    }

    #[test]
    fn bytes_wait_in_the_socket_until_the_service_has_room() {
        let (mut server, mut client) = pair(0);
        let id = listening(&mut server, 1);
        let mut service = Upper::new(1, 0);
        client.connect_to(SERVICE_PORT);
        let sent: Vec<u8> = (0..10_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut offset = 0;
        let (now_ns, _) = serve_until(&mut server, id, &mut service, &mut client, 0, 2_000, |_, client| {
            if client.socket().can_send() && offset < sent.len() {
                offset += client.socket().send_slice(&sent[offset..]).unwrap();
            }
            false
        });
        assert_eq!(offset, sent.len());
        assert!(service.received[0].is_empty(), "a service without room is handed nothing");
        assert_eq!(server.listener_stats(id).unwrap().bytes_in, 0);
        service.room = 1_000;
        let (_, all) = serve_until(&mut server, id, &mut service, &mut client, now_ns, 10_000, |service, _| {
            service.received[0].len() == sent.len()
        });
        assert!(all);
        assert_eq!(service.received[0], sent, "every byte, in order");
    }

    #[test]
    fn a_peer_that_closes_first_still_gets_the_services_reply() {
        let (mut server, mut client) = pair(0);
        let id = listening(&mut server, 1);
        let mut service = Upper::new(1, usize::MAX);
        client.connect_to(SERVICE_PORT);
        let mut back = Vec::new();
        let mut stage = 0;
        let (_, done) = serve_until(&mut server, id, &mut service, &mut client, 0, 10_000, |_, client| {
            if stage == 0 && client.socket().can_send() {
                client.socket().send_slice(b"ask").unwrap();
                client.socket().close();
                stage = 1;
            }
            take_received(client, &mut back);
            client.socket().state() == tcp::State::TimeWait
        });
        assert!(done, "client {:?}", client.socket().state());
        assert_eq!(back, b"ASK; served");
        assert_eq!(service.events, [("opened", 0), ("peer_closed", 0), ("closed", 0)]);
    }

    #[test]
    fn a_connection_the_server_closed_ends_within_the_timeout_though_the_peer_never_closes_its_side() {
        // Regression: keep-alive probes, which the half-closed peer acknowledges, kept a connection the server had
        // closed (a slowloris client answered 408) in FIN-WAIT-2 for as long as the peer stayed, holding the slot.
        let (mut server, mut client) = pair(0);
        let id = listening(&mut server, 1);
        let mut service = Upper::new(1, usize::MAX);
        let mut now_ns = established(&mut server, id, &mut service, &mut client, 0);
        service.closing[0] = true;
        let closed_at = now_ns;
        let timeout_ns = UNACKNOWLEDGED_TIMEOUT_S * 1_000_000_000;
        while service.events.len() < 2 && now_ns < closed_at + 4 * timeout_ns {
            client.poll(now_ns);
            server.serve(id, now_ns, &mut service).unwrap();
            now_ns += 100_000_000;
        }
        // The peer saw the FIN and keeps its own side open (CLOSE-WAIT) without a word.
        assert_eq!(service.events, [("opened", 0), ("closed", 0)]);
        assert!(now_ns <= closed_at + timeout_ns + 200_000_000, "ended {} ms after", (now_ns - closed_at) / 1_000_000);
        // The slot listens again, with keep-alive for its next connection.
        let mut next = Upper::new(1, usize::MAX);
        client.socket().abort();
        client.poll(now_ns);
        established(&mut server, id, &mut next, &mut client, now_ns);
    }

    #[test]
    fn an_idle_connection_outlives_the_timeout_and_one_whose_peer_vanished_does_not() {
        // Regression: the timeout counts from the peer's last segment, so an idle connection (a WebSocket
        // waiting for events, a keep-alive HTTP connection) was aborted after 30 s of silence although its peer
        // was there. Keep-alive probes, which a live peer acknowledges, keep it open.
        let (mut server, mut client) = pair(0);
        let id = listening(&mut server, 1);
        let mut service = Upper::new(1, usize::MAX);
        let mut now_ns = established(&mut server, id, &mut service, &mut client, 0);
        let timeout_ns = UNACKNOWLEDGED_TIMEOUT_S * 1_000_000_000;
        let idle_until = now_ns + 4 * timeout_ns;
        while now_ns < idle_until {
            client.poll(now_ns);
            server.serve(id, now_ns, &mut service).unwrap();
            now_ns += 100_000_000;
        }
        assert_eq!(service.events, [("opened", 0)], "still open after four timeouts of silence");
        assert_eq!(client.socket().state(), tcp::State::Established);
        let mut back = Vec::new();
        let mut sent = false;
        let (later, answered) = serve_until(&mut server, id, &mut service, &mut client, now_ns, 1_000, |_, client| {
            if !sent {
                sent = client.socket().send_slice(b"still there").unwrap() > 0;
            }
            take_received(client, &mut back);
            back.len() == 11
        });
        assert!(answered);
        assert_eq!(back, b"STILL THERE");
        // The peer vanishes: nothing reaches it, nothing comes back; the connection ends within the timeout.
        let vanished_at = later;
        server.io_mut().partition_for(vanished_at, 4 * timeout_ns);
        now_ns = vanished_at;
        while service.events.len() < 2 && now_ns < vanished_at + 2 * timeout_ns {
            server.serve(id, now_ns, &mut service).unwrap();
            now_ns += 100_000_000;
        }
        assert_eq!(service.events, [("opened", 0), ("closed", 0)]);
        assert!(
            now_ns <= vanished_at + timeout_ns + 100_000_000,
            "ended {} ms after",
            (now_ns - vanished_at) / 1_000_000
        );
        assert_eq!(server.listener_stats(id).unwrap().ended, 1);
    }

    #[test]
    fn ports_in_use_and_bounds_are_refused_and_closing_a_listener_resets_its_connections() {
        let (mut server, mut client) = pair(0);
        let config = |port, sockets, buffer_bytes| ListenerConfig { port, sockets, buffer_bytes };
        assert_eq!(server.listen(config(ECHO_PORT, 1, 4096)), Err(ListenError::PortInUse { port: ECHO_PORT }));
        assert_eq!(server.listen(config(0, 1, 4096)), Err(ListenError::PortZero));
        assert_eq!(server.listen(config(80, 0, 4096)), Err(ListenError::SocketsOutOfRange { sockets: 0 }));
        assert_eq!(server.listen(config(80, 257, 4096)), Err(ListenError::SocketsOutOfRange { sockets: 257 }));
        assert_eq!(server.listen(config(80, 1, 1023)), Err(ListenError::BufferOutOfRange { buffer_bytes: 1023 }));
        let id = listening(&mut server, 1);
        assert_eq!(server.listen(config(SERVICE_PORT, 1, 4096)), Err(ListenError::PortInUse { port: SERVICE_PORT }));
        let mut service = Upper::new(1, usize::MAX);
        let now_ns = established(&mut server, id, &mut service, &mut client, 0);
        assert_eq!(server.listener_stats(id).unwrap().open, 1);
        let stats = server.close_listener(id, Some(&mut service), now_ns).unwrap();
        assert_eq!((stats.accepted, stats.ended, stats.open), (1, 1, 0));
        assert_eq!(service.events, [("opened", 0), ("closed", 0)]);
        client.poll(now_ns);
        assert_eq!(client.socket().state(), tcp::State::Closed, "the reset reached the client");
        assert_eq!(server.listener_stats(id), Err(ListenError::Unknown));
        assert_eq!(server.serve(id, now_ns, &mut service), Err(ListenError::Unknown));
        // The port and the slot are free again.
        assert_eq!(listening(&mut server, 1), id);
    }
}
