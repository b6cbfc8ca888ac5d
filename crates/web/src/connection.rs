//! One connection's state machine: HTTP/1.1 requests, then optionally WebSocket frames, over a bounded output queue.
//!
//! The kernel owns the socket. It hands received bytes to [`Connection::feed`], takes events from
//! [`Connection::poll`] (which also reports timeouts), answers requests with [`Connection::respond`] or
//! [`Connection::accept_websocket`], and sends what [`Connection::pending_output`] holds, reporting what went out
//! with [`Connection::consume`]. When [`Connection::should_close`] says so it closes the socket.
//!
//! Requests are handed out one at a time: the next one (pipelined in the same read or not) is parsed only after
//! the current one was answered, so responses leave in request order. While the output queue holds half its
//! bound or more, no new request is started, so a client that pipelines without reading is slowed down by TCP
//! rather than closed.
//!
//! A request to the upload route ([`UPLOAD_ROUTE`](crate::UPLOAD_ROUTE)), whose body may be up to
//! `max_upload_bytes`, is announced by its head first ([`Event::BodyAdmission`]); its body is read only after
//! [`Connection::admit_body`], so the application can refuse it (a missing token) before buffering any of it.
//! Bodies grow fallibly: a heap that cannot hold one is answered 503 `out-of-memory`, never a panic.

pub(crate) mod body;

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use serde::Serialize;

use crate::limits::Limits;
use crate::output::OutputQueue;
use crate::request::Request;
use crate::response::Response;
use crate::ws::{self, close_code, Decoded, Decoder, Opcode};

use body::{parse_head, BodyProgress, Framing};

/// Names a connection inside an [`App`](crate::App).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ConnectionId(pub u64);

/// What a connection has for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete request; answer it with [`Connection::respond`] or [`Connection::accept_websocket`].
    Request(Request),
    /// The head of a request to [`UPLOAD_ROUTE`](crate::UPLOAD_ROUTE) (its body empty, none of it read yet): let
    /// the body be read with [`Connection::admit_body`] (a [`Event::Request`] follows once it is complete), or
    /// refuse it unread with [`Connection::respond`] (the connection closes after that answer). Until one of the
    /// two, the body timeout runs and no body byte is buffered beyond the input buffer.
    BodyAdmission(Request),
    /// The request broke a rule; its error response is queued and the connection closes after it.
    HttpError(HttpError),
    /// A timeout: 408 queued for [`Timeout::Head`] and [`Timeout::Body`]; [`Timeout::Idle`] closes without a
    /// response (a client racing a new request with a 408 would take it for its answer).
    TimedOut(Timeout),
    /// A complete WebSocket text message.
    WsText(String),
    /// A complete WebSocket binary message.
    WsBinary(Vec<u8>),
    /// The WebSocket is closing: the peer closed with `code` (`by_peer`, its code echoed) or a frame broke the
    /// protocol and the server closes with `code` (1002, 1007, 1009). The connection closes after the close frame.
    WsClosed {
        /// The close code.
        code: u16,
        /// Whether the peer sent the close frame.
        by_peer: bool,
    },
}

/// Why a request was refused before it reached the application (each closes the connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HttpError {
    /// A request line, header or chunked framing that does not parse, a missing `Host` on HTTP/1.1, a bad or
    /// conflicting `Content-Length`, a target that is not a path (400).
    Malformed,
    /// Request line and headers longer than `max_head_bytes` (431).
    HeadTooLarge,
    /// More header fields than `max_headers` (431).
    TooManyHeaders,
    /// A body longer than its limit, `max_body_bytes` or for the upload route `max_upload_bytes` (413).
    BodyTooLarge,
    /// The heap could not hold the body (503).
    OutOfMemory,
    /// A method this server does not know (501).
    UnsupportedMethod,
    /// A transfer coding other than `chunked` (501).
    UnsupportedTransferEncoding,
    /// An HTTP version other than 1.0 and 1.1 (505).
    UnsupportedVersion,
}

impl HttpError {
    /// The status code of the error response.
    pub fn status(self) -> u16 {
        match self {
            HttpError::Malformed => 400,
            HttpError::HeadTooLarge | HttpError::TooManyHeaders => 431,
            HttpError::BodyTooLarge => 413,
            HttpError::UnsupportedMethod | HttpError::UnsupportedTransferEncoding => 501,
            HttpError::UnsupportedVersion => 505,
            HttpError::OutOfMemory => 503,
        }
    }

    /// Stable code in the JSON error body.
    pub fn code(self) -> &'static str {
        match self {
            HttpError::Malformed => "malformed-request",
            HttpError::HeadTooLarge => "head-too-large",
            HttpError::TooManyHeaders => "too-many-headers",
            HttpError::BodyTooLarge => "body-too-large",
            HttpError::UnsupportedMethod => "unsupported-method",
            HttpError::UnsupportedTransferEncoding => "unsupported-transfer-encoding",
            HttpError::UnsupportedVersion => "unsupported-version",
            HttpError::OutOfMemory => "out-of-memory",
        }
    }

    fn message(self) -> &'static str {
        match self {
            HttpError::Malformed => "the request does not parse as HTTP/1.1",
            HttpError::HeadTooLarge => "request line and headers exceed the server's limit",
            HttpError::TooManyHeaders => "more header fields than the server accepts",
            HttpError::BodyTooLarge => "the body exceeds the server's limit",
            HttpError::UnsupportedMethod => "unknown request method",
            HttpError::UnsupportedTransferEncoding => "only the chunked transfer coding is supported",
            HttpError::UnsupportedVersion => "only HTTP/1.0 and HTTP/1.1 are supported",
            HttpError::OutOfMemory => "the server has no memory for the body now",
        }
    }

    /// The error response (closing the connection).
    pub fn response(self) -> Response {
        Response::error(self.status(), self.code(), self.message()).closing()
    }
}

/// Which timeout fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Timeout {
    /// The head did not end within `head_timeout_ns` of its first byte (408).
    Head,
    /// The body did not end within `body_timeout_ns` of the head's end (408).
    Body,
    /// No request began within `idle_timeout_ns` of the last response or of the connection's start (plain close).
    Idle,
    /// Queued output waited `send_timeout_ns` without any of it being sent: closed at once ([`State::Closed`]).
    Send,
}

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Reading or answering HTTP requests.
    Http,
    /// Upgraded to WebSocket.
    WebSocket,
    /// Its last bytes are queued; close once they are sent.
    Closing,
    /// Closed at once (output overflow): close the socket now, nothing more will be sent.
    Closed,
}

/// Per-connection figures, summed by the [`App`](crate::App) into its counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ConnectionStats {
    /// Bytes taken by [`Connection::feed`].
    pub bytes_in: u64,
    /// Bytes reported sent by [`Connection::consume`].
    pub bytes_out: u64,
    /// WebSocket frames refused because the output queue was full (pushes and automatic pongs).
    pub pushes_refused: u64,
    /// Responses that would have overflowed the output queue (the connection was closed).
    pub output_overflows: u64,
}

/// Why [`Connection::respond`] or [`Connection::accept_websocket`] did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespondError {
    /// No request is waiting for an answer.
    NoRequest,
    /// The response did not fit in the output queue: the connection is now [`State::Closed`].
    OutputOverflow,
}

/// Why a WebSocket frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The connection is not an open WebSocket.
    NotOpen,
    /// The frame does not fit in the output queue (counted in [`ConnectionStats::pushes_refused`]).
    Full,
}

#[derive(Debug)]
enum Phase {
    /// Waiting for a request head; `started_ns` is when its first byte arrived.
    Head {
        started_ns: Option<u64>,
    },
    /// The head of an upload, waiting for [`Connection::admit_body`] or a refusal.
    Admission {
        request: Request,
        framing: Framing,
        head_done_ns: u64,
    },
    /// Reading the body of `request`.
    Body {
        request: Request,
        framing: Framing,
        head_done_ns: u64,
    },
    /// A request was handed out; waiting for its answer.
    Awaiting {
        keep_alive: bool,
    },
    WebSocket {
        decoder: Decoder,
    },
    Closing,
    Closed,
}

/// One client connection.
#[derive(Debug)]
pub struct Connection {
    id: ConnectionId,
    limits: Limits,
    phase: Phase,
    input: Vec<u8>,
    output: OutputQueue,
    events: VecDeque<Event>,
    /// Latest time seen by `feed` or `poll`.
    now_ns: u64,
    /// Since when the connection has waited for a request (idle timeout).
    idle_since_ns: u64,
    /// Since when queued output has waited without progress (send timeout).
    send_waiting_since_ns: Option<u64>,
    stats: ConnectionStats,
}

impl Connection {
    /// A new connection accepted at `now_ns`.
    pub fn new(id: ConnectionId, now_ns: u64, limits: Limits) -> Connection {
        Connection {
            id,
            limits,
            phase: Phase::Head { started_ns: None },
            input: Vec::new(),
            output: OutputQueue::new(limits.max_output_bytes),
            events: VecDeque::new(),
            now_ns,
            idle_since_ns: now_ns,
            send_waiting_since_ns: None,
            stats: ConnectionStats::default(),
        }
    }

    /// Its id.
    pub fn id(&self) -> ConnectionId {
        self.id
    }

    /// Its limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Takes received bytes; returns how many were taken. Fewer than `bytes.len()` only while a request waits
    /// for its answer and the input buffer ([`Limits::input_capacity`]) is full: leave the rest in the socket
    /// and offer it again after answering. Bytes arriving after the connection began closing are taken and
    /// dropped.
    pub fn feed(&mut self, now_ns: u64, bytes: &[u8]) -> usize {
        self.now_ns = self.now_ns.max(now_ns);
        if matches!(self.phase, Phase::Closing | Phase::Closed) {
            return bytes.len();
        }
        let capacity = self.limits.input_capacity();
        let mut taken = 0;
        while taken < bytes.len() {
            let room = capacity.saturating_sub(self.input.len()).min(bytes.len() - taken);
            if room == 0 {
                break;
            }
            if let Phase::Head { started_ns: started @ None } = &mut self.phase {
                *started = Some(self.now_ns);
            }
            self.input.extend_from_slice(&bytes[taken..taken + room]);
            taken += room;
            self.stats.bytes_in += room as u64;
            self.advance();
        }
        taken
    }

    /// The next event, or a timeout that has fired by `now_ns`, or `None`.
    pub fn poll(&mut self, now_ns: u64) -> Option<Event> {
        self.now_ns = self.now_ns.max(now_ns);
        self.advance();
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        if self.output.len() == 0 || matches!(self.phase, Phase::Closed) {
            self.send_waiting_since_ns = None;
        } else {
            let since = *self.send_waiting_since_ns.get_or_insert(self.now_ns);
            if self.now_ns.saturating_sub(since) > self.limits.send_timeout_ns {
                self.output.clear();
                self.input = Vec::new();
                self.phase = Phase::Closed;
                self.send_waiting_since_ns = None;
                return Some(Event::TimedOut(Timeout::Send));
            }
        }
        let timeout = match &self.phase {
            Phase::Head { started_ns: Some(started) } => {
                (self.now_ns.saturating_sub(*started) > self.limits.head_timeout_ns).then_some(Timeout::Head)
            }
            Phase::Head { started_ns: None } => {
                (self.now_ns.saturating_sub(self.idle_since_ns) > self.limits.idle_timeout_ns).then_some(Timeout::Idle)
            }
            Phase::Admission { head_done_ns, .. } | Phase::Body { head_done_ns, .. } => {
                (self.now_ns.saturating_sub(*head_done_ns) > self.limits.body_timeout_ns).then_some(Timeout::Body)
            }
            _ => None,
        }?;
        self.input = Vec::new();
        if timeout == Timeout::Idle {
            self.phase = Phase::Closing;
        } else {
            let response = Response::error(408, "request-timeout", "the request did not arrive in time").closing();
            self.queue_last(&response.serialize(false));
        }
        Some(Event::TimedOut(timeout))
    }

    /// The earliest time at which [`Connection::poll`] may report a timeout, if one is armed.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        let send = self.send_waiting_since_ns.map(|since| since.saturating_add(self.limits.send_timeout_ns + 1));
        let phase = match &self.phase {
            Phase::Head { started_ns: Some(started) } => Some(started.saturating_add(self.limits.head_timeout_ns + 1)),
            Phase::Head { started_ns: None } => {
                Some(self.idle_since_ns.saturating_add(self.limits.idle_timeout_ns + 1))
            }
            Phase::Admission { head_done_ns, .. } | Phase::Body { head_done_ns, .. } => {
                Some(head_done_ns.saturating_add(self.limits.body_timeout_ns + 1))
            }
            _ => None,
        };
        [send, phase].into_iter().flatten().min()
    }

    /// Answers the request handed out last. The connection stays open when the request allowed keep-alive and
    /// the response is not [`Response::closing`]. An upload refused at its [`Event::BodyAdmission`] closes the
    /// connection after the answer: its body was never read.
    pub fn respond(&mut self, response: &Response) -> Result<(), RespondError> {
        let keep_alive = match self.phase {
            Phase::Awaiting { keep_alive } => keep_alive,
            Phase::Admission { .. } => false,
            _ => return Err(RespondError::NoRequest),
        };
        let keep_alive = keep_alive && !response.close;
        if !self.output.push(&response.serialize(keep_alive)) {
            return Err(self.overflow());
        }
        if keep_alive {
            self.phase = Phase::Head { started_ns: (!self.input.is_empty()).then_some(self.now_ns) };
            self.idle_since_ns = self.now_ns;
        } else {
            self.input = Vec::new();
            self.phase = Phase::Closing;
        }
        Ok(())
    }

    /// Lets the body of the upload announced by [`Event::BodyAdmission`] be read: with `Content-Length`, its
    /// bytes are reserved at once (a heap that cannot hold them answers 503 `out-of-memory` and closes), and
    /// `100 Continue` goes out if the client asked for it. Refused when no upload waits for admission.
    pub fn admit_body(&mut self) -> Result<(), RespondError> {
        let Phase::Admission { mut request, framing, head_done_ns } =
            core::mem::replace(&mut self.phase, Phase::Closed)
        else {
            return Err(RespondError::NoRequest);
        };
        if let Framing::Length(length) = framing {
            if request.body.try_reserve_exact(length).is_err() {
                self.fail(HttpError::OutOfMemory);
                return Ok(());
            }
        }
        if framing.expects_continue(&request) {
            self.output.push(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        self.phase = Phase::Body { request, framing, head_done_ns };
        self.advance();
        Ok(())
    }

    /// Answers the request handed out last with `101 Switching Protocols` and `Sec-WebSocket-Accept: accept_key`
    /// (see [`ws::check_handshake`]); from now on bytes are WebSocket frames.
    pub fn accept_websocket(&mut self, accept_key: &str) -> Result<(), RespondError> {
        if !matches!(self.phase, Phase::Awaiting { .. }) {
            return Err(RespondError::NoRequest);
        }
        let response =
            Response::new(101).with_header("Upgrade", "websocket").with_header("Sec-WebSocket-Accept", accept_key);
        let mut bytes = response.serialize(true);
        // `serialize` leaves framing headers to itself; the upgrade's `Connection: Upgrade` goes in by hand.
        let blank = bytes.len() - 2;
        bytes.splice(blank..blank, b"Connection: Upgrade\r\n".iter().copied());
        if !self.output.push(&bytes) {
            return Err(self.overflow());
        }
        self.phase = Phase::WebSocket { decoder: Decoder::new(self.limits.max_ws_message_bytes) };
        Ok(())
    }

    /// Queues a text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.send_frame(Opcode::Text, text.as_bytes())
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, bytes: &[u8]) -> Result<(), SendError> {
        self.send_frame(Opcode::Binary, bytes)
    }

    /// Queues a ping (payload at most 125 bytes, longer ones are cut).
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.send_frame(Opcode::Ping, &payload[..payload.len().min(ws::MAX_CONTROL_PAYLOAD)])
    }

    /// Closes an open WebSocket with `code`: the close frame is queued (when the queue is full, what it holds is
    /// dropped to make room) and the connection closes after it. Does nothing unless the WebSocket is open.
    pub fn close_websocket(&mut self, code: u16) -> bool {
        if !matches!(self.phase, Phase::WebSocket { .. }) {
            return false;
        }
        self.input = Vec::new();
        let frame = ws::encode_close(code);
        if !self.output.fits(frame.len()) {
            self.output.clear();
        }
        self.queue_last(&frame);
        true
    }

    /// Bytes waiting to be sent, at most `Limits::max_output_bytes`.
    pub fn pending_output(&self) -> &[u8] {
        self.output.pending()
    }

    /// Reports `count` bytes of [`Connection::pending_output`] as sent.
    pub fn consume(&mut self, count: usize) {
        let taken = self.output.consume(count);
        self.stats.bytes_out += taken as u64;
        if taken > 0 {
            self.send_waiting_since_ns = (self.output.len() > 0).then_some(self.now_ns);
        }
        // A request parse paused for output room may go on now.
        self.advance();
    }

    /// Where the connection is.
    pub fn state(&self) -> State {
        match self.phase {
            Phase::Head { .. } | Phase::Admission { .. } | Phase::Body { .. } | Phase::Awaiting { .. } => State::Http,
            Phase::WebSocket { .. } => State::WebSocket,
            Phase::Closing => State::Closing,
            Phase::Closed => State::Closed,
        }
    }

    /// Whether the kernel should close the socket now: closed at once, or closing with nothing left to send.
    pub fn should_close(&self) -> bool {
        match self.phase {
            Phase::Closed => true,
            Phase::Closing => self.output.len() == 0,
            _ => false,
        }
    }

    /// Its figures.
    pub fn stats(&self) -> ConnectionStats {
        self.stats
    }

    fn send_frame(&mut self, opcode: Opcode, payload: &[u8]) -> Result<(), SendError> {
        if !matches!(self.phase, Phase::WebSocket { .. }) {
            return Err(SendError::NotOpen);
        }
        if self.output.push(&ws::encode_frame(opcode, payload)) {
            Ok(())
        } else {
            self.stats.pushes_refused += 1;
            Err(SendError::Full)
        }
    }

    fn overflow(&mut self) -> RespondError {
        self.stats.output_overflows += 1;
        self.output.clear();
        self.input = Vec::new();
        self.phase = Phase::Closed;
        RespondError::OutputOverflow
    }

    /// Queues the connection's last bytes and starts closing; closes at once if they do not fit.
    fn queue_last(&mut self, bytes: &[u8]) {
        if self.output.push(bytes) {
            self.phase = Phase::Closing;
        } else {
            self.overflow();
        }
    }

    fn fail(&mut self, error: HttpError) {
        self.input = Vec::new();
        self.events.push_back(Event::HttpError(error));
        self.queue_last(&error.response().serialize(false));
    }

    /// Parses as far as the buffered input and the phase allow.
    fn advance(&mut self) {
        while self.step() {}
    }

    /// One step of parsing; `false` when nothing more can be done now.
    fn step(&mut self) -> bool {
        match core::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Head { started_ns } => {
                self.phase = Phase::Head { started_ns };
                if self.input.is_empty() || self.output.len() >= self.limits.max_output_bytes / 2 {
                    return false;
                }
                match parse_head(&self.input, &self.limits) {
                    Ok(None) => false,
                    Ok(Some((consumed, request, framing))) => {
                        self.input.drain(..consumed);
                        if Limits::is_upload(request.method, &request.path) {
                            // Its body may be large: the application decides first whether to read it at all.
                            self.events.push_back(Event::BodyAdmission(request.clone()));
                            self.phase = Phase::Admission { request, framing, head_done_ns: self.now_ns };
                            return true;
                        }
                        if framing.expects_continue(&request) {
                            // Best effort: a client that gets no 100 sends its body after a delay anyway.
                            self.output.push(b"HTTP/1.1 100 Continue\r\n\r\n");
                        }
                        self.phase = Phase::Body { request, framing, head_done_ns: self.now_ns };
                        true
                    }
                    Err(error) => {
                        self.fail(error);
                        true
                    }
                }
            }
            Phase::Body { mut request, mut framing, head_done_ns } => {
                let body_limit = self.limits.body_limit(&request);
                match framing.read(&mut self.input, &mut request.body, &self.limits, body_limit) {
                    Ok(BodyProgress::Pending) => {
                        self.phase = Phase::Body { request, framing, head_done_ns };
                        false
                    }
                    Ok(BodyProgress::Done) => {
                        self.phase = Phase::Awaiting { keep_alive: request.keep_alive };
                        self.events.push_back(Event::Request(request));
                        true
                    }
                    Err(error) => {
                        self.fail(error);
                        true
                    }
                }
            }
            Phase::WebSocket { mut decoder } => {
                let (consumed, decoded) = decoder.decode(&self.input);
                self.input.drain(..consumed);
                self.phase = Phase::WebSocket { decoder };
                self.websocket_frame(decoded)
            }
            other => {
                self.phase = other;
                false
            }
        }
    }

    fn websocket_frame(&mut self, decoded: Decoded) -> bool {
        match decoded {
            Decoded::Incomplete => return false,
            Decoded::Nothing => {}
            Decoded::Text(text) => self.events.push_back(Event::WsText(text)),
            Decoded::Binary(bytes) => self.events.push_back(Event::WsBinary(bytes)),
            Decoded::Ping(payload) => {
                // A refused pong is counted; the peer's next ping gets another chance.
                let _ = self.send_frame(Opcode::Pong, &payload);
            }
            Decoded::Close(code) => {
                let echo = if code == close_code::NO_STATUS {
                    ws::encode_frame(Opcode::Close, &[])
                } else {
                    ws::encode_close(code)
                };
                self.input = Vec::new();
                self.queue_last(&echo);
                self.events.push_back(Event::WsClosed { code, by_peer: true });
            }
            Decoded::Fail(code) => {
                self.close_websocket(code);
                self.events.push_back(Event::WsClosed { code, by_peer: false });
            }
        }
        true
    }
}
