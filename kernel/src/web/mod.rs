//! The kernel's web server: the `sis-web` app over the network stack's listener, served by two threads.
//!
//! Three threads and three locks. The network thread serves the listener's sockets into the I/O table
//! ([`io::IO`]) and never calls the app. The web thread ([`thread`]) owns request handling: it moves bytes and
//! events between the I/O table and the app ([`SERVER`]), runs timeouts and metric pushes, and sleeps until the
//! app's next deadline or a wake. A command worker runs `POST /api/command` lines through the shell registry, so a
//! long stress test never holds up the web thread, and registers `POST /api/models` artifacts as `llmctl register`
//! does (the governor's lock yields and its audit entry goes to the disk, neither allowed under [`SERVER`]). Lock order: [`SERVER`], then the network slot, then [`io::IO`];
//! the kernel's event log is a leaf taken under [`SERVER`] (the web thread follows it and is woken by each publish).
//!
//! No registry handler runs under [`SERVER`], which masks interrupts: command lines run on the worker, and
//! metrics (whose handlers take the network slot, the scheduler's and the allocators' locks, about a millisecond
//! in all) are read by the web thread between two holds of [`SERVER`] with no lock held. The app defers every
//! `GET /api/metrics` and due push until that reading ([`sis_web::App::supply_metrics`]), so one reading answers
//! every request that arrived before it.

pub mod io;
mod thread;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;

use sha2::{Digest, Sha256};
use sis_metrics::{LatencyHistogram, LatencySummary};
use sis_net::{ListenerConfig, ListenerId, ListenerStats, MAX_LISTENER_SOCKETS};
use sis_platform::irq_lock::IrqMutex;
use sis_platform::{console, time};
use sis_proto::bootargs;
use sis_sched::ThreadId;
use sis_shell::ShellError;
use sis_web::token::{decode_hex32, SECRET_BYTES};
use sis_web::{
    App, AppConfig, CommandReply, ConnectionId, Counters, MetricsSupplied, ModelReply, Role, TokenId, TokenInfo,
};

use crate::commands::net::link;
use crate::commands::Kernel;

/// Boot argument: start the server at boot on this port.
pub const WEB_ARGUMENT: &str = "sis.web";
/// Boot argument: an admin token (64 hex digits) the host chose.
pub const WEB_TOKEN_ARGUMENT: &str = "sis.web_token";
/// Boot argument: 32 bytes of entropy from the host (64 hex digits), the only source tokens are derived from.
pub const ENTROPY_ARGUMENT: &str = "sis.entropy";
/// Default port of `webctl start`.
pub const DEFAULT_PORT: u16 = 80;
/// Sockets of the listener by default (`webctl start --sockets N` chooses): connections served at once; one more
/// is refused with a TCP reset (smoltcp answers a SYN no socket listens for with RST).
///
/// Measured (meminfo before and after `webctl start`; `netctl stats` polls against the network thread's CPU time
/// in deterministic mode): a socket costs 32,814 bytes of heap, its two [`LISTENER_BUFFER_BYTES`] buffers and
/// smoltcp's bookkeeping, so 64 take 2,100,096 bytes (0.4 % of the default 512 MiB); an idle poll of the network
/// thread visits every socket: 39 µs of guest time with 16 sockets, 85 µs with 64, 157 µs with 128, 300 µs with
/// 256. 64 keeps the poll cheap and serves more connections than the app's clients open (the dashboard, the
/// daemon, a benchmark's 64); `--sockets 256` serves hundreds at once for 8.5 MB.
pub const LISTENER_SOCKETS: usize = decimal(LISTENER_SOCKETS_TEXT);
/// [`LISTENER_SOCKETS`] as the `webctl start` flag's default text.
pub const LISTENER_SOCKETS_TEXT: &str = "64";
/// Receive and send buffer of each socket.
pub const LISTENER_BUFFER_BYTES: usize = 16 * 1024;

/// Error code: the server already runs.
pub const ALREADY_RUNNING: &str = "already-running";
/// Error code: the server does not run.
pub const NOT_RUNNING: &str = "not-running";
/// Error code: no `sis.entropy` boot argument, so no token can be made.
pub const NO_ENTROPY: &str = "no-entropy";
/// Error code: a boot argument of the web server is malformed.
pub const BAD_BOOTARG: &str = "bad-bootargs";
/// Error code: the listener was refused.
pub const LISTEN_FAILED: &str = "listen-failed";

/// A running server.
#[derive(Debug, Clone, Copy)]
pub struct Running {
    /// TCP port.
    pub port: u16,
    /// Sockets of the listener: connections served at once.
    pub sockets: usize,
    /// The stack's listener.
    pub listener: ListenerId,
    /// When it started, ns since boot.
    pub started_ns: u64,
}

/// One slot's connection as the web thread knows it.
#[derive(Debug)]
struct Link {
    generation: u64,
    id: ConnectionId,
    /// Received bytes the app could not take yet.
    leftover: Vec<u8>,
    peer_closed: bool,
    closing: bool,
}

/// A reply of the command worker for the web thread.
#[derive(Debug)]
enum Completed {
    /// A command line's.
    Command(CommandReply),
    /// An uploaded model's registration.
    Model(ModelReply),
}

/// The server's state: the app (tokens and counters live as long as the kernel), and the running listener.
#[derive(Debug)]
pub struct Server {
    app: App,
    running: Option<Running>,
    links: BTreeMap<usize, Link>,
    /// Replies of the worker for the web thread.
    completed: VecDeque<(ConnectionId, Completed)>,
    tokens_made: u64,
    web_thread: Option<ThreadId>,
    /// Counters of listeners that were stopped.
    stopped_listeners: ListenerStats,
    /// The next kernel event to push to events subscribers (the log's `next_seq` when the server was made, so a
    /// subscriber never gets events from before the server existed).
    event_cursor: u64,
    /// The web thread's metrics readings.
    metrics: MetricsReadings,
}

/// The web thread's metrics readings: how long each took (read with no lock held) and what it answered.
#[derive(Debug, Clone, Default)]
struct MetricsReadings {
    duration: LatencyHistogram,
    answered: u64,
    pushed: u64,
}

impl MetricsReadings {
    fn record(&mut self, duration_ns: u64, supplied: MetricsSupplied) {
        self.duration.record(duration_ns);
        self.answered += supplied.answered;
        self.pushed += supplied.pushed;
    }
}

/// What `webctl status` reports of the metrics readings.
#[derive(Debug, Clone, Copy)]
pub struct MetricsStatus {
    /// Time each reading took (its count is the number of readings).
    pub duration: LatencySummary,
    /// `GET /api/metrics` requests they answered.
    pub answered: u64,
    /// WebSocket pushes they sent.
    pub pushed: u64,
}

/// The kernel's server (created by the first `webctl` command that needs it).
static SERVER: IrqMutex<Option<Server>> = IrqMutex::new(None);

/// What `webctl status` reports.
#[derive(Debug, Clone)]
pub struct Status {
    /// The running listener.
    pub running: Option<Running>,
    /// The app's counters.
    pub counters: Counters,
    /// The listener's counters (stopped listeners' included).
    pub listener: ListenerStats,
    /// Tokens held.
    pub tokens: usize,
    /// Commands the worker has queued or runs.
    pub commands_waiting: usize,
    /// Metrics readings.
    pub metrics: MetricsStatus,
}

fn with_server<T>(body: impl FnOnce(&mut Server) -> T) -> T {
    let mut guard = SERVER.lock();
    let server = guard.get_or_insert_with(|| Server {
        app: App::new(AppConfig {
            max_connections: MAX_LISTENER_SOCKETS,
            events_published: true,
            ..AppConfig::default()
        }),
        running: None,
        links: BTreeMap::new(),
        completed: VecDeque::new(),
        tokens_made: 0,
        web_thread: None,
        stopped_listeners: ListenerStats::default(),
        event_cursor: crate::events::with_log(|log| log.next_seq()),
        metrics: MetricsReadings::default(),
    });
    body(server)
}

/// Starts the server on `port`: needs the network device; refused when it already runs.
pub fn start(kernel: &Kernel, port: u16, sockets: usize) -> Result<Running, ShellError> {
    if !link::attached() {
        return Err(link::no_device());
    }
    if port == 0 {
        return Err(ShellError::new(sis_shell::codes::INVALID_VALUE, "port 0 cannot be listened on"));
    }
    if let Some(running) = with_server(|server| server.running) {
        return Err(ShellError::new(
            ALREADY_RUNNING,
            alloc::format!("the web server already runs on port {}; webctl stop first", running.port),
        ));
    }
    let web_thread = match with_server(|server| server.web_thread) {
        Some(id) => id,
        None => {
            let id = thread::spawn_threads(kernel)?;
            with_server(|server| server.web_thread = Some(id));
            id
        }
    };
    with_server(|server| {
        if let Some(running) = server.running {
            return Err(ShellError::new(
                ALREADY_RUNNING,
                alloc::format!("the web server runs on port {}", running.port),
            ));
        }
        let config = ListenerConfig { port, sockets, buffer_bytes: LISTENER_BUFFER_BYTES };
        let listener = link::with_net(|net| {
            let listener = net.stack.listen(config).map_err(|error| {
                ShellError::new(LISTEN_FAILED, alloc::format!("cannot listen on port {port}: {error}"))
            })?;
            io::IO.lock().reset(sockets, listener, web_thread);
            Ok(listener)
        })?;
        let running = Running { port, sockets, listener, started_ns: time::now_ns() };
        server.running = Some(running);
        Ok(running)
    })
    .inspect(|_| link::kick())
}

/// Stops the server: the listener closes, its connections are reset, and the web thread forgets them.
/// Returns the port it ran on.
pub fn stop() -> Result<Running, ShellError> {
    let stopped = with_server(|server| {
        let running =
            server.running.take().ok_or_else(|| ShellError::new(NOT_RUNNING, "the web server does not run"))?;
        let stats = link::with_net(|net| {
            let mut io = io::IO.lock();
            io.listener = None;
            net.stack
                .close_listener(running.listener, Some(&mut *io), time::now_ns())
                .map_err(|error| ShellError::new(LISTEN_FAILED, alloc::format!("cannot close the listener: {error}")))
        })?;
        server.stopped_listeners = server.stopped_listeners.plus(&stats);
        Ok((running, server.web_thread))
    })?;
    let (running, web_thread) = stopped;
    if let Some(id) = web_thread {
        sis_platform::thread::wake(id);
    }
    Ok(running)
}

/// The server's figures, read now.
pub fn status() -> Status {
    with_server(|server| {
        let mut listener = server.stopped_listeners;
        if let Some(running) = server.running {
            if let Ok(stats) = link::with_net(|net| Ok(net.stack.listener_stats(running.listener))) {
                listener = listener.plus(&stats.unwrap_or_default());
            }
        }
        Status {
            running: server.running,
            counters: server.app.counters(),
            listener,
            tokens: server.app.tokens().len(),
            commands_waiting: server.app.awaiting_commands(),
            metrics: MetricsStatus {
                duration: server.metrics.duration.summary(),
                answered: server.metrics.answered,
                pushed: server.metrics.pushed,
            },
        }
    })
}

/// Creates a token for `role` from the boot entropy; returns its record and its secret (shown once).
pub fn create_token(kernel: &Kernel, role: Role) -> Result<(TokenInfo, String), ShellError> {
    let entropy = boot_entropy(kernel)?;
    with_server(|server| {
        server.tokens_made += 1;
        let now = time::now_ns();
        let mut hasher = Sha256::new();
        hasher.update(entropy);
        hasher.update(server.tokens_made.to_le_bytes());
        hasher.update(now.to_le_bytes());
        let secret: [u8; SECRET_BYTES] = hasher.finalize().into();
        server.app.create_token(role, secret, now).map_err(|error| ShellError::new(error.code(), error.message()))
    })
}

/// Installs a token whose secret the host chose (64 hex digits).
pub fn install_token(role: Role, hex: &str) -> Result<TokenInfo, ShellError> {
    let secret = decode_hex32(hex).ok_or_else(|| {
        ShellError::new(BAD_BOOTARG, alloc::format!("{WEB_TOKEN_ARGUMENT} must be 64 hexadecimal digits"))
    })?;
    with_server(|server| {
        server
            .app
            .create_token(role, secret, time::now_ns())
            .map(|(info, _)| info)
            .map_err(|error| ShellError::new(error.code(), error.message()))
    })
}

/// Every token's record (never a secret).
pub fn tokens() -> Vec<TokenInfo> {
    with_server(|server| server.app.tokens().list())
}

/// Revokes a token at once; returns it and how many WebSockets it had open (they are closed with 1008).
pub fn revoke_token(id: u32) -> Result<(TokenInfo, usize), ShellError> {
    let (result, web_thread) = with_server(|server| {
        let result = server
            .app
            .revoke_token(TokenId(id))
            .map(|(info, closed)| (info, closed.len()))
            .map_err(|error| ShellError::new(error.code(), error.message()));
        (result, server.web_thread)
    });
    if let Some(id) = web_thread {
        sis_platform::thread::wake(id);
    }
    result
}

/// The 32 bytes of `sis.entropy`, or the error that names the boot argument.
fn boot_entropy(kernel: &Kernel) -> Result<[u8; 32], ShellError> {
    let value = bootargs::find(&kernel.bootargs, ENTROPY_ARGUMENT)
        .map_err(|error| ShellError::new(BAD_BOOTARG, alloc::format!("{error}")))?
        .ok_or_else(|| {
            ShellError::new(
                NO_ENTROPY,
                alloc::format!(
                    "no entropy for tokens: boot with {ENTROPY_ARGUMENT}=<64 hex digits from the host's random source> (cargo xtask run and the harness pass it); SIS has no hardware random number generator"
                ),
            )
        })?;
    decode_hex32(&value)
        .ok_or_else(|| ShellError::new(BAD_BOOTARG, alloc::format!("{ENTROPY_ARGUMENT} must be 64 hexadecimal digits")))
}

/// Starts the server at boot when `sis.web=PORT` is given, installing `sis.web_token` or printing a new admin
/// token once on the console. Problems are printed and boot goes on without the server.
pub fn boot(kernel: &Kernel) {
    let port = match bootargs::find(&kernel.bootargs, WEB_ARGUMENT) {
        Ok(Some(text)) => match text.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => {
                console::write_str(&alloc::format!("web: {WEB_ARGUMENT}={text}: not a port 1-65535; not started\n"));
                return;
            }
        },
        Ok(None) => return,
        Err(error) => {
            console::write_str(&alloc::format!("web: {error}; not started\n"));
            return;
        }
    };
    let token = match bootargs::find(&kernel.bootargs, WEB_TOKEN_ARGUMENT) {
        Ok(Some(hex)) => install_token(Role::Admin, &hex)
            .map(|info| alloc::format!("admin token id {} from {WEB_TOKEN_ARGUMENT}", info.id.0)),
        Ok(None) => create_token(kernel, Role::Admin).map(|(_, secret)| alloc::format!("admin token {secret}")),
        Err(error) => Err(ShellError::new(BAD_BOOTARG, alloc::format!("{error}"))),
    };
    match token {
        Ok(line) => console::write_str(&alloc::format!("web: {line}\n")),
        Err(error) => {
            console::write_str(&alloc::format!("web: no admin token: {error}; not started\n"));
            return;
        }
    }
    match start(kernel, port, LISTENER_SOCKETS) {
        Ok(running) => console::write_str(&alloc::format!("web: serving HTTP on port {}\n", running.port)),
        Err(error) => console::write_str(&alloc::format!("web: not started: {error}\n")),
    }
}

/// The value of a decimal literal, at compile time (a flag's default is text; the number it stands for is one).
const fn decimal(text: &str) -> usize {
    let digits = text.as_bytes();
    let mut value = 0;
    let mut index = 0;
    while index < digits.len() {
        value = value * 10 + (digits[index] - b'0') as usize;
        index += 1;
    }
    value
}
