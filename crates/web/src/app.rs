//! The application: connections, routes, authentication, WebSocket subscriptions and counters, over a
//! [`Backend`] the kernel implements.
//!
//! The kernel owns the sockets and calls, from its polling loop: [`App::open`] for an accepted socket,
//! [`App::receive`] with received bytes, [`App::poll`] on every turn (timeouts and due metric pushes), then for
//! each connection [`App::pending_output`] / [`App::consume`] to send, and [`App::should_close`] /
//! [`App::close`] to end it. [`App::next_deadline_ns`] says when the next turn is needed at the latest.

mod messages;
mod models;
mod routes;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use serde::Serialize;
use serde_json::Value;
use sis_shell::Capabilities;

use crate::connection::{Connection, ConnectionId, Event, State};
use crate::counters::{add_stats, Counters, Tally};
use crate::limits::Limits;
use crate::token::{Role, TokenError, TokenId, TokenInfo, TokenStore, DEFAULT_MAX_TOKENS, SECRET_BYTES};
use crate::ws::close_code;

pub use messages::{MAX_INTERVAL_MS, MIN_INTERVAL_MS};
pub use models::{refusal_status, ModelReply, MODEL_CONTENT_TYPE, UPLOAD_CAPABILITY};
pub use routes::{MAX_COMMAND_BYTES, ROUTES};

/// What the kernel provides: live figures, the command registry and a clock for latencies.
pub trait Backend {
    /// The kernel's live figures (memory, pools, scheduler, autonomy, network, block, uptime), read now. `None`
    /// defers them: the kernel reads them elsewhere (outside the lock it holds the app under, since reading them
    /// takes other subsystems' locks and time) and hands one reading to [`App::supply_metrics`], which answers
    /// every `GET /api/metrics` waiting and every push due. Until then the requests wait, as a deferred command does,
    /// and [`App::wants_metrics`] is true.
    fn metrics(&mut self, now_ns: u64) -> Option<Value>;
    /// Runs `line` through the shell registry holding `capabilities`, on behalf of token `token` (the principal
    /// whose budgets and audit entries it counts against), as the console would with `--json`, for connection
    /// `connection`. `None` defers it: the kernel runs the line elsewhere (a long stress test must
    /// not hold up the server) and answers later with [`App::complete_command`]; until then the connection
    /// waits, and its pipelined requests wait behind it.
    fn command(
        &mut self,
        connection: ConnectionId,
        line: &str,
        token: TokenId,
        capabilities: Capabilities,
    ) -> Option<CommandReply>;
    /// Verifies and registers `artifact`, the body of a `POST /api/models`, on behalf of token `token` (the
    /// principal the registration and its audit entry count against), as `llmctl register` does, for connection
    /// `connection`. The token holds the admin capability. `None` defers it, as a command is deferred: the kernel
    /// verifies elsewhere and answers later with [`App::complete_model`].
    fn register_model(&mut self, connection: ConnectionId, artifact: Vec<u8>, token: TokenId) -> Option<ModelReply>;
    /// The monotonic clock, read before and after handling a request to time it.
    fn now_ns(&mut self) -> u64;
}

/// The registry's answer to a command line.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandReply {
    /// The JSON object the shell printed.
    pub json: Value,
    /// Whether the registry refused the line with `permission-denied` (the reply becomes a 403).
    pub permission_denied: bool,
}

/// Server-wide settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AppConfig {
    /// Limits of every connection.
    pub limits: Limits,
    /// Connections open at once (default 64); [`App::open`] refuses more.
    pub max_connections: usize,
    /// Tokens held at once (default 64).
    pub max_tokens: usize,
    /// Whether the kernel publishes events ([`App::publish_event`]); without them an events subscription is
    /// refused with `not-implemented` (default false).
    pub events_published: bool,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            limits: Limits::default(),
            max_connections: 64,
            max_tokens: DEFAULT_MAX_TOKENS,
            events_published: false,
        }
    }
}

/// Why the app refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppError {
    /// `max_connections` are open: close the new socket.
    TooManyConnections,
    /// No open connection has this id.
    UnknownConnection,
    /// The connection waits for no deferred command.
    NotAwaiting,
}

/// A metrics subscription of one WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MetricsSubscription {
    /// Push interval.
    pub interval_ns: u64,
    /// When the next push is due.
    pub next_due_ns: u64,
}

/// Per-connection state beside the protocol: who is behind a WebSocket and what it subscribed to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Session {
    /// The token that opened the WebSocket.
    pub token: Option<TokenId>,
    /// Its metrics subscription.
    pub metrics: Option<MetricsSubscription>,
    /// Whether it receives kernel events.
    pub events: bool,
    /// Events it missed (its output queue was full, or the kernel's log dropped them before the server read
    /// them) and has not been told of yet: an `events.missed` event with the count goes out before its next one.
    pub events_missed: u64,
}

/// How an event fan-out went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Fanout {
    /// Subscribers the event was queued for.
    pub queued: u64,
    /// Subscribers whose output queue was full (they miss this event).
    pub refused: u64,
}

/// How a request was answered.
enum Answered {
    /// This status was queued.
    Status(u16),
    /// The answer did not fit in the output queue (the connection closes).
    Overflow,
    /// The answer comes later: [`App::complete_command`] or [`App::supply_metrics`].
    Deferred(Awaited),
}

/// What a connection whose answer was deferred waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaited {
    /// Its command's reply ([`App::complete_command`]).
    Command,
    /// Its uploaded model's registration ([`App::complete_model`]).
    Model,
    /// A metrics reading ([`App::supply_metrics`]).
    Metrics,
}

/// A deferred answer: what it waits for and when its request's handling began (for the latency).
#[derive(Debug, Clone, Copy)]
struct Waiting {
    awaited: Awaited,
    started_ns: u64,
}

/// What one [`App::supply_metrics`] did with its reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MetricsSupplied {
    /// `GET /api/metrics` requests answered (200 queued).
    pub answered: u64,
    /// WebSockets whose due push was queued.
    pub pushed: u64,
}

#[derive(Debug)]
struct Slot {
    connection: Connection,
    session: Session,
}

/// The web server's state.
#[derive(Debug)]
pub struct App {
    config: AppConfig,
    tokens: TokenStore,
    connections: BTreeMap<ConnectionId, Slot>,
    /// Connections waiting for a deferred answer.
    awaiting: BTreeMap<ConnectionId, Waiting>,
    /// A metrics push fell due while the backend deferred metrics: the next [`App::supply_metrics`] sends it.
    push_deferred: bool,
    next_connection: u64,
    tally: Tally,
}

impl App {
    /// A server with no connection and no token.
    pub fn new(config: AppConfig) -> App {
        App {
            config,
            tokens: TokenStore::new(config.max_tokens),
            connections: BTreeMap::new(),
            awaiting: BTreeMap::new(),
            push_deferred: false,
            next_connection: 1,
            tally: Tally::default(),
        }
    }

    /// Its settings.
    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    /// The token store (read-only: create and revoke through the app, so revocation reaches open WebSockets).
    pub fn tokens(&self) -> &TokenStore {
        &self.tokens
    }

    /// Creates a token from 32 random bytes; returns its record and the secret to show once.
    pub fn create_token(
        &mut self,
        role: Role,
        secret: [u8; SECRET_BYTES],
        now_ns: u64,
    ) -> Result<(TokenInfo, String), TokenError> {
        self.tokens.create(role, secret, now_ns)
    }

    /// Revokes a token at once and closes its open WebSockets with 1008; returns the token and those connections.
    pub fn revoke_token(&mut self, id: TokenId) -> Result<(TokenInfo, Vec<ConnectionId>), TokenError> {
        let info = self.tokens.revoke(id)?;
        let mut closed = Vec::new();
        for (connection_id, slot) in &mut self.connections {
            if slot.session.token == Some(id) && slot.connection.close_websocket(close_code::POLICY_VIOLATION) {
                self.tally.counters.websocket.closed_by_server += 1;
                closed.push(*connection_id);
            }
        }
        Ok((info, closed))
    }

    /// Closes every open WebSocket with 1001 (going away), for `webctl stop`; returns how many.
    pub fn close_websockets(&mut self) -> usize {
        let mut count = 0;
        for slot in self.connections.values_mut() {
            if slot.connection.close_websocket(close_code::GOING_AWAY) {
                count += 1;
            }
        }
        self.tally.counters.websocket.closed_by_server += count as u64;
        count
    }

    /// Registers a newly accepted socket; refused when `max_connections` are open.
    pub fn open(&mut self, now_ns: u64) -> Result<ConnectionId, AppError> {
        if self.connections.len() >= self.config.max_connections {
            self.tally.counters.connections_refused += 1;
            return Err(AppError::TooManyConnections);
        }
        let id = ConnectionId(self.next_connection);
        self.next_connection += 1;
        let connection = Connection::new(id, now_ns, self.config.limits);
        self.connections.insert(id, Slot { connection, session: Session::default() });
        self.tally.counters.connections_accepted += 1;
        Ok(id)
    }

    /// Hands received bytes to a connection and handles what they complete; returns the bytes taken (fewer
    /// than given only when the connection's input buffer is full: offer the rest on the next turn).
    pub fn receive(
        &mut self,
        backend: &mut dyn Backend,
        id: ConnectionId,
        now_ns: u64,
        bytes: &[u8],
    ) -> Result<usize, AppError> {
        let mut slot = self.connections.remove(&id).ok_or(AppError::UnknownConnection)?;
        let mut taken = 0;
        loop {
            let step = slot.connection.feed(now_ns, &bytes[taken..]);
            taken += step;
            self.handle_events(backend, &mut slot, now_ns);
            if step == 0 || taken == bytes.len() {
                break;
            }
        }
        self.connections.insert(id, slot);
        Ok(taken)
    }

    /// One turn for every connection: timeouts, then due metric pushes.
    pub fn poll(&mut self, backend: &mut dyn Backend, now_ns: u64) {
        let ids: Vec<ConnectionId> = self.connections.keys().copied().collect();
        for id in ids {
            if let Some(mut slot) = self.connections.remove(&id) {
                self.handle_events(backend, &mut slot, now_ns);
                self.connections.insert(id, slot);
            }
        }
        self.push_metrics(backend, now_ns);
    }

    /// WebSockets whose metrics push is due at `now_ns`.
    pub fn due_pushes(&self, now_ns: u64) -> Vec<ConnectionId> {
        self.connections
            .iter()
            .filter(|(_, slot)| slot.connection.state() == State::WebSocket)
            .filter(|(_, slot)| slot.session.metrics.is_some_and(|metrics| metrics.next_due_ns <= now_ns))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Sends one metrics frame (read once from the backend) to every WebSocket whose push is due, and schedules
    /// each one's next push an interval later (or an interval from now, when it fell more than one behind).
    /// Returns the connections that got the frame queued; none when the backend deferred the reading (the
    /// pushes then go out with the next [`App::supply_metrics`]).
    pub fn push_metrics(&mut self, backend: &mut dyn Backend, now_ns: u64) -> Vec<ConnectionId> {
        if self.due_pushes(now_ns).is_empty() {
            return Vec::new();
        }
        match backend.metrics(now_ns) {
            Some(metrics) => self.push_reading(&metrics, now_ns),
            None => {
                self.push_deferred = true;
                Vec::new()
            }
        }
    }

    /// Whether the app waits for a metrics reading: a `GET /api/metrics` or a push was deferred by the backend.
    pub fn wants_metrics(&self) -> bool {
        self.push_deferred || self.awaiting.values().any(|waiting| waiting.awaited == Awaited::Metrics)
    }

    /// Answers every `GET /api/metrics` waiting for a reading with `metrics` (serialized once), then sends it to
    /// every WebSocket whose push is due. Each answered connection then goes on with what it sent behind its
    /// request (a pipelined `GET /api/metrics` waits for the next reading: every answer is read after its
    /// request arrived). `now_ns` is when the reading began: pushed frames carry it as their `now_ns`, so a
    /// frame's figures were read at or after it, and pushes due only after it wait for the next reading.
    pub fn supply_metrics(&mut self, backend: &mut dyn Backend, metrics: &Value, now_ns: u64) -> MetricsSupplied {
        let waiting: Vec<(ConnectionId, u64)> = self
            .awaiting
            .iter()
            .filter(|(_, waiting)| waiting.awaited == Awaited::Metrics)
            .map(|(id, waiting)| (*id, waiting.started_ns))
            .collect();
        let mut supplied = MetricsSupplied::default();
        if !waiting.is_empty() {
            let response = crate::Response::json(200, metrics);
            for (id, started_ns) in waiting {
                self.awaiting.remove(&id);
                let Some(mut slot) = self.connections.remove(&id) else { continue };
                if slot.connection.respond(&response).is_ok() {
                    self.tally.status(response.status);
                    supplied.answered += 1;
                }
                self.tally.latency.record(backend.now_ns().saturating_sub(started_ns));
                self.handle_events(backend, &mut slot, now_ns);
                self.connections.insert(id, slot);
            }
        }
        self.push_deferred = false;
        if !self.due_pushes(now_ns).is_empty() {
            supplied.pushed = self.push_reading(metrics, now_ns).len() as u64;
        }
        supplied
    }

    /// Queues one metrics frame for every WebSocket whose push is due and schedules each one's next push.
    fn push_reading(&mut self, metrics: &Value, now_ns: u64) -> Vec<ConnectionId> {
        let due = self.due_pushes(now_ns);
        let frame = messages::metrics_frame(now_ns, metrics);
        let mut queued = Vec::new();
        for id in due {
            let Some(slot) = self.connections.get_mut(&id) else { continue };
            if let Some(metrics) = &mut slot.session.metrics {
                let next = metrics.next_due_ns.saturating_add(metrics.interval_ns);
                metrics.next_due_ns = if next <= now_ns { now_ns.saturating_add(metrics.interval_ns) } else { next };
            }
            if slot.connection.send_text(&frame).is_ok() {
                self.tally.counters.websocket.messages_out += 1;
                queued.push(id);
            }
        }
        queued
    }

    /// Queues a kernel event (`{"type":"event","event":EVENT}`) to every events subscriber. A subscriber that
    /// missed events first gets `{"type":"event","event":{"kind":"events.missed","count":N}}`; one whose queue
    /// is full misses this event too (counted toward its next notice).
    pub fn publish_event(&mut self, event: &Value) -> Fanout {
        let frame = messages::event_frame(event);
        let mut fanout = Fanout::default();
        for slot in self.connections.values_mut().filter(|slot| slot.session.events) {
            let told = tell_missed(slot, &mut self.tally.counters.websocket.messages_out);
            if told && slot.connection.send_text(&frame).is_ok() {
                fanout.queued += 1;
            } else {
                slot.session.events_missed += 1;
                fanout.refused += 1;
            }
        }
        self.tally.counters.websocket.messages_out += fanout.queued;
        fanout
    }

    /// Whether any connection is subscribed to events.
    pub fn has_event_subscribers(&self) -> bool {
        self.connections.values().any(|slot| slot.session.events)
    }

    /// Every events subscriber missed `count` events (the kernel's log dropped them before the server read them);
    /// each is told at once if its queue has room, else before its next event.
    pub fn events_missed(&mut self, count: u64) {
        if count == 0 {
            return;
        }
        for slot in self.connections.values_mut().filter(|slot| slot.session.events) {
            slot.session.events_missed += count;
            tell_missed(slot, &mut self.tally.counters.websocket.messages_out);
        }
    }

    /// Bytes a connection has to send (empty for an unknown id).
    pub fn pending_output(&self, id: ConnectionId) -> &[u8] {
        self.connections.get(&id).map_or(&[], |slot| slot.connection.pending_output())
    }

    /// Reports `count` bytes of a connection's output as sent.
    pub fn consume(&mut self, backend: &mut dyn Backend, id: ConnectionId, now_ns: u64, count: usize) {
        if let Some(mut slot) = self.connections.remove(&id) {
            slot.connection.consume(count);
            // Room in the queue may let a paused pipelined request through.
            self.handle_events(backend, &mut slot, now_ns);
            self.connections.insert(id, slot);
        }
    }

    /// Whether the kernel should close this socket now (true for an unknown id).
    pub fn should_close(&self, id: ConnectionId) -> bool {
        self.connections.get(&id).is_none_or(|slot| slot.connection.should_close())
    }

    /// Answers the deferred command of connection `id` with `reply` (200, or 403 for a permission denial), then
    /// goes on with what the connection sent behind it. A connection closed meanwhile is unknown.
    pub fn complete_command(
        &mut self,
        backend: &mut dyn Backend,
        id: ConnectionId,
        reply: CommandReply,
        now_ns: u64,
    ) -> Result<(), AppError> {
        self.complete(backend, id, Awaited::Command, now_ns, || routes::command_response(reply))
    }

    /// Answers the deferred upload of connection `id` with `reply` (201 with the model, or the refusal's status,
    /// [`refusal_status`]), then goes on with what the connection sent behind it. A connection closed meanwhile
    /// is unknown.
    pub fn complete_model(
        &mut self,
        backend: &mut dyn Backend,
        id: ConnectionId,
        reply: ModelReply,
        now_ns: u64,
    ) -> Result<(), AppError> {
        self.complete(backend, id, Awaited::Model, now_ns, || models::response(reply))
    }

    /// Answers a connection waiting for `awaited` with the response `answer` makes.
    fn complete(
        &mut self,
        backend: &mut dyn Backend,
        id: ConnectionId,
        awaited: Awaited,
        now_ns: u64,
        answer: impl FnOnce() -> crate::Response,
    ) -> Result<(), AppError> {
        let started_ns = match self.awaiting.get(&id) {
            Some(waiting) if waiting.awaited == awaited => waiting.started_ns,
            _ if self.connections.contains_key(&id) => return Err(AppError::NotAwaiting),
            _ => return Err(AppError::UnknownConnection),
        };
        self.awaiting.remove(&id);
        let mut slot = self.connections.remove(&id).ok_or(AppError::UnknownConnection)?;
        let response = answer();
        if slot.connection.respond(&response).is_ok() {
            self.tally.status(response.status);
        }
        self.tally.latency.record(backend.now_ns().saturating_sub(started_ns));
        self.handle_events(backend, &mut slot, now_ns);
        self.connections.insert(id, slot);
        Ok(())
    }

    /// Connections waiting for a deferred command.
    pub fn awaiting_commands(&self) -> usize {
        self.awaiting.values().filter(|waiting| waiting.awaited == Awaited::Command).count()
    }

    /// Whether connection `id` waits for a deferred command.
    pub fn awaits_command(&self, id: ConnectionId) -> bool {
        self.awaiting.get(&id).is_some_and(|waiting| waiting.awaited == Awaited::Command)
    }

    /// Connections waiting for a deferred upload's registration.
    pub fn awaiting_models(&self) -> usize {
        self.awaiting.values().filter(|waiting| waiting.awaited == Awaited::Model).count()
    }

    /// Whether connection `id` waits for a deferred answer of any kind (a command's reply, an upload's
    /// registration or a metrics reading): its socket should stay open for it even when the peer has closed its side.
    pub fn awaits_answer(&self, id: ConnectionId) -> bool {
        self.awaiting.contains_key(&id)
    }

    /// Forgets a connection whose socket is closed (by either side); its figures join the totals.
    pub fn close(&mut self, id: ConnectionId) -> Result<(), AppError> {
        let slot = self.connections.remove(&id).ok_or(AppError::UnknownConnection)?;
        self.awaiting.remove(&id);
        add_stats(&mut self.tally.closed, &slot.connection.stats());
        self.tally.counters.connections_closed += 1;
        Ok(())
    }

    /// Open connections, in id order.
    pub fn connection_ids(&self) -> Vec<ConnectionId> {
        self.connections.keys().copied().collect()
    }

    /// A connection, to inspect.
    pub fn connection(&self, id: ConnectionId) -> Option<&Connection> {
        self.connections.get(&id).map(|slot| &slot.connection)
    }

    /// A connection's session (token and subscriptions).
    pub fn session(&self, id: ConnectionId) -> Option<&Session> {
        self.connections.get(&id).map(|slot| &slot.session)
    }

    /// The earliest time a turn of [`App::poll`] has something to do: a timeout or a metrics push.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        self.connections
            .values()
            .flat_map(|slot| {
                let push = slot.session.metrics.filter(|_| slot.connection.state() == State::WebSocket);
                [slot.connection.next_deadline_ns(), push.map(|metrics| metrics.next_due_ns)]
            })
            .flatten()
            .min()
    }

    /// The figures of `webctl status`, live connections included.
    pub fn counters(&self) -> Counters {
        let mut counters = self.tally.counters.clone();
        let mut stats = self.tally.closed;
        for slot in self.connections.values() {
            add_stats(&mut stats, &slot.connection.stats());
        }
        counters.connections_open = self.connections.len() as u64;
        counters.bytes_in = stats.bytes_in;
        counters.bytes_out = stats.bytes_out;
        counters.websocket.pushes_refused = stats.pushes_refused;
        counters.protocol_errors.output_overflows = stats.output_overflows;
        counters.websocket.open =
            self.connections.values().filter(|slot| slot.connection.state() == State::WebSocket).count() as u64;
        counters.latency = self.tally.latency.summary();
        counters
    }

    fn handle_events(&mut self, backend: &mut dyn Backend, slot: &mut Slot, now_ns: u64) {
        while let Some(event) = slot.connection.poll(now_ns) {
            match event {
                Event::Request(mut request) => {
                    let started_ns = backend.now_ns();
                    match self.answer(backend, slot, &mut request, now_ns) {
                        Answered::Status(status) => {
                            let finished_ns = backend.now_ns();
                            self.tally.latency.record(finished_ns.saturating_sub(started_ns));
                            self.tally.status(status);
                        }
                        Answered::Overflow => {
                            let finished_ns = backend.now_ns();
                            self.tally.latency.record(finished_ns.saturating_sub(started_ns));
                        }
                        Answered::Deferred(awaited) => {
                            // The connection stays in its awaiting phase: nothing more comes out of `poll` until
                            // `complete_command` or `supply_metrics` answers.
                            self.awaiting.insert(slot.connection.id(), Waiting { awaited, started_ns });
                            return;
                        }
                    }
                }
                Event::BodyAdmission(head) => self.admit(backend, slot, &head),
                Event::HttpError(error) => self.tally.http_error(error),
                Event::TimedOut(timeout) => self.tally.timeout(timeout),
                Event::WsText(text) => {
                    self.tally.counters.websocket.messages_in += 1;
                    let events = self.config.events_published;
                    let reply = messages::handle_text(&mut slot.session, &text, now_ns, events, || backend.now_ns());
                    self.send_reply(slot, &reply);
                }
                Event::WsBinary(_) => {
                    self.tally.counters.websocket.messages_in += 1;
                    let reply = messages::error_frame("binary-unsupported", "messages are JSON text frames");
                    self.send_reply(slot, &reply);
                }
                Event::WsClosed { code, by_peer } => self.tally.ws_closed(code, by_peer),
            }
        }
    }

    /// Reads an upload's body when its head passes the checks made before a body ([`routes::admit`]), else
    /// answers the refusal (timed and counted as a request) and the connection closes with the body unread.
    fn admit(&mut self, backend: &mut dyn Backend, slot: &mut Slot, head: &crate::Request) {
        let started_ns = backend.now_ns();
        match routes::admit(&self.tokens, head) {
            Ok(()) => {
                // Only a connection in admission can be admitted, and this one just announced its head.
                let _ = slot.connection.admit_body();
            }
            Err(response) => {
                if slot.connection.respond(&response).is_ok() {
                    self.tally.status(response.status);
                }
                self.tally.latency.record(backend.now_ns().saturating_sub(started_ns));
            }
        }
    }

    fn send_reply(&mut self, slot: &mut Slot, frame: &str) {
        if slot.connection.send_text(frame).is_ok() {
            self.tally.counters.websocket.messages_out += 1;
        }
    }

    /// Routes a request and queues the answer: the status sent, an output overflow, or a deferred command or
    /// upload.
    fn answer(
        &mut self,
        backend: &mut dyn Backend,
        slot: &mut Slot,
        request: &mut crate::Request,
        now_ns: u64,
    ) -> Answered {
        let sent =
            |result: Result<(), _>, status| if result.is_ok() { Answered::Status(status) } else { Answered::Overflow };
        match routes::route(&self.tokens, backend, request, now_ns) {
            routes::Routed::Response(response) => sent(slot.connection.respond(&response), response.status),
            routes::Routed::Metrics => Answered::Deferred(Awaited::Metrics),
            routes::Routed::Command { line, token, capabilities } => {
                match backend.command(slot.connection.id(), &line, token, capabilities) {
                    Some(reply) => {
                        let response = routes::command_response(reply);
                        sent(slot.connection.respond(&response), response.status)
                    }
                    None => Answered::Deferred(Awaited::Command),
                }
            }
            routes::Routed::Model { artifact, token } => {
                match backend.register_model(slot.connection.id(), artifact, token) {
                    Some(reply) => {
                        let response = models::response(reply);
                        sent(slot.connection.respond(&response), response.status)
                    }
                    None => Answered::Deferred(Awaited::Model),
                }
            }
            routes::Routed::Upgrade { token, accept_key } => {
                if slot.connection.accept_websocket(&accept_key).is_err() {
                    return Answered::Overflow;
                }
                slot.session = Session { token: Some(token), ..Session::default() };
                self.tally.counters.websocket.upgrades += 1;
                Answered::Status(101)
            }
            routes::Routed::BadUpgrade(error) => {
                self.tally.counters.protocol_errors.ws_bad_handshake += 1;
                let response = error.response();
                sent(slot.connection.respond(&response), response.status)
            }
        }
    }

    /// Answers one request without a connection (no upgrade): the router on its own, for tests and tools.
    pub fn handle_request(
        &mut self,
        backend: &mut dyn Backend,
        request: &crate::Request,
        now_ns: u64,
    ) -> crate::Response {
        let mut request = request.clone();
        match routes::route(&self.tokens, backend, &mut request, now_ns) {
            routes::Routed::Response(response) => response,
            routes::Routed::Metrics => crate::Response::error(
                503,
                "deferred",
                "the metrics are read elsewhere; only a connection can wait for them",
            ),
            routes::Routed::Command { line, token, capabilities } => {
                match backend.command(ConnectionId(0), &line, token, capabilities) {
                    Some(reply) => routes::command_response(reply),
                    None => crate::Response::error(
                        503,
                        "deferred",
                        "the command runs elsewhere; only a connection can wait for it",
                    ),
                }
            }
            routes::Routed::Model { artifact, token } => {
                match backend.register_model(ConnectionId(0), artifact, token) {
                    Some(reply) => models::response(reply),
                    None => crate::Response::error(
                        503,
                        "deferred",
                        "the model is registered elsewhere; only a connection can wait for it",
                    ),
                }
            }
            routes::Routed::Upgrade { .. } => crate::Response::new(101),
            routes::Routed::BadUpgrade(error) => error.response(),
        }
    }
}

/// Queues the `events.missed` notice a subscriber is owed, if any (counted in `messages_out`); returns whether it
/// owes nothing now.
fn tell_missed(slot: &mut Slot, messages_out: &mut u64) -> bool {
    if slot.session.events_missed == 0 {
        return true;
    }
    let notice =
        messages::event_frame(&serde_json::json!({ "kind": "events.missed", "count": slot.session.events_missed }));
    let sent = slot.connection.send_text(&notice).is_ok();
    if sent {
        slot.session.events_missed = 0;
        *messages_out += 1;
    }
    sent
}
