//! The host-call protocol: versioned, length-checked binary messages between an agent and the kernel.
//!
//! Every message, both ways, is a 12-byte little-endian header followed by a payload:
//!
//! | offset | size | request           | response          |
//! |--------|------|-------------------|-------------------|
//! | 0      | 2    | version (1)       | version (1)       |
//! | 2      | 2    | call ([`Call`])   | status ([`ErrorCode`], 0 = ok) |
//! | 4      | 4    | call id           | the request's call id |
//! | 8      | 4    | payload length    | payload length    |
//!
//! The message must be exactly header plus payload; the payload is at most [`MAX_PAYLOAD`] bytes. Request
//! payloads (strings are UTF-8; `u32` fields little-endian):
//! - FS_LIST, FS_READ: the path; METRICS_READ: a name prefix (empty = all); COMMAND_RUN: the command line;
//! - FS_WRITE: `u32` path length, the path, then the data;
//! - LOG: `u8` level (0 error, 1 warn, 2 info, 3 debug), then the message;
//! - SLEEP: `u32` duration in ms (exactly 4 bytes);
//! - PROPOSE_ACTION: `u32` action length, the action, then the reason.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The protocol version this kernel speaks.
pub const VERSION: u16 = 1;
/// Bytes in a request or response header.
pub const HEADER_LEN: usize = 12;
/// The largest payload accepted in a request or sent in a response.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// The largest whole message.
pub const MAX_MESSAGE: usize = HEADER_LEN + MAX_PAYLOAD;

/// The host functions an agent can call, with their wire numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u16)]
pub enum Call {
    /// List a directory.
    FsList = 1,
    /// Read a file.
    FsRead = 2,
    /// Write a file.
    FsWrite = 3,
    /// Read metrics.
    MetricsRead = 4,
    /// Run a shell command.
    CommandRun = 5,
    /// Write a log line.
    Log = 6,
    /// Yield for a duration.
    Sleep = 7,
    /// Propose an action to the guardrails.
    ProposeAction = 8,
}

impl Call {
    /// The call with this wire number.
    pub fn from_wire(number: u16) -> Option<Self> {
        Some(match number {
            1 => Self::FsList,
            2 => Self::FsRead,
            3 => Self::FsWrite,
            4 => Self::MetricsRead,
            5 => Self::CommandRun,
            6 => Self::Log,
            7 => Self::Sleep,
            8 => Self::ProposeAction,
            _ => return None,
        })
    }

    /// The protocol name, as in the documentation and the audit log.
    pub fn name(self) -> &'static str {
        match self {
            Self::FsList => "FS_LIST",
            Self::FsRead => "FS_READ",
            Self::FsWrite => "FS_WRITE",
            Self::MetricsRead => "METRICS_READ",
            Self::CommandRun => "COMMAND_RUN",
            Self::Log => "LOG",
            Self::Sleep => "SLEEP",
            Self::ProposeAction => "PROPOSE_ACTION",
        }
    }
}

/// Stable status codes returned to the agent in the response header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum ErrorCode {
    /// The call succeeded.
    Ok = 0,
    /// The header's version is not [`VERSION`].
    BadVersion = 1,
    /// The message is shorter than its header or a payload field.
    Truncated = 2,
    /// A declared length reaches past the end of the message.
    LengthPastEnd = 3,
    /// Bytes follow the declared payload.
    TrailingBytes = 4,
    /// A string field is not UTF-8.
    BadUtf8 = 5,
    /// The message or payload is larger than the protocol allows.
    Oversized = 6,
    /// The call number is unknown.
    UnknownCall = 7,
    /// A field has a value outside its range (a relative path, an unknown log level).
    InvalidArgument = 8,
    /// The agent's capabilities do not allow the call.
    Denied = 9,
    /// The agent made more calls in this slice than it may.
    RateLimited = 10,
    /// The file, directory or metric does not exist.
    NotFound = 11,
    /// The host could not carry the call out.
    HostFailed = 12,
    /// The response does not fit the agent's buffer; the header's length says how much is needed.
    ResponseTooLarge = 13,
}

impl ErrorCode {
    /// The code on the wire.
    pub fn wire(self) -> u16 {
        self as u16
    }

    /// A stable lower-case name for logs and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::BadVersion => "bad_version",
            Self::Truncated => "truncated",
            Self::LengthPastEnd => "length_past_end",
            Self::TrailingBytes => "trailing_bytes",
            Self::BadUtf8 => "bad_utf8",
            Self::Oversized => "oversized",
            Self::UnknownCall => "unknown_call",
            Self::InvalidArgument => "invalid_argument",
            Self::Denied => "denied",
            Self::RateLimited => "rate_limited",
            Self::NotFound => "not_found",
            Self::HostFailed => "host_failed",
            Self::ResponseTooLarge => "response_too_large",
        }
    }
}

/// Log levels carried by LOG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// 0
    Error,
    /// 1
    Warn,
    /// 2
    Info,
    /// 3
    Debug,
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// FS_LIST
    FsList { path: String },
    /// FS_READ
    FsRead { path: String },
    /// FS_WRITE
    FsWrite { path: String, data: Vec<u8> },
    /// METRICS_READ
    MetricsRead { prefix: String },
    /// COMMAND_RUN
    CommandRun { line: String },
    /// LOG
    Log { level: LogLevel, message: String },
    /// SLEEP
    Sleep { duration_ms: u32 },
    /// PROPOSE_ACTION
    ProposeAction { action: String, reason: String },
}

impl Request {
    /// Which host function this request calls.
    pub fn call(&self) -> Call {
        match self {
            Self::FsList { .. } => Call::FsList,
            Self::FsRead { .. } => Call::FsRead,
            Self::FsWrite { .. } => Call::FsWrite,
            Self::MetricsRead { .. } => Call::MetricsRead,
            Self::CommandRun { .. } => Call::CommandRun,
            Self::Log { .. } => Call::Log,
            Self::Sleep { .. } => Call::Sleep,
            Self::ProposeAction { .. } => Call::ProposeAction,
        }
    }
}

/// Why a request could not be decoded. Each maps to one [`ErrorCode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the header or a fixed-size field needs.
    Truncated { needed: usize, available: usize },
    /// The header's version is not [`VERSION`].
    BadVersion(u16),
    /// The header's call number is unknown.
    UnknownCall(u16),
    /// The message or a declared payload is larger than [`MAX_MESSAGE`] / [`MAX_PAYLOAD`].
    Oversized { length: usize },
    /// A declared length reaches past the end of the message.
    LengthPastEnd { declared: usize, available: usize },
    /// Bytes follow the declared payload (or a fixed-size payload).
    TrailingBytes { extra: usize },
    /// A string field is not UTF-8.
    BadUtf8,
    /// A LOG level other than 0-3.
    BadLogLevel(u8),
}

impl DecodeError {
    /// The status code returned to the agent.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Truncated { .. } => ErrorCode::Truncated,
            Self::BadVersion(_) => ErrorCode::BadVersion,
            Self::UnknownCall(_) => ErrorCode::UnknownCall,
            Self::Oversized { .. } => ErrorCode::Oversized,
            Self::LengthPastEnd { .. } => ErrorCode::LengthPastEnd,
            Self::TrailingBytes { .. } => ErrorCode::TrailingBytes,
            Self::BadUtf8 => ErrorCode::BadUtf8,
            Self::BadLogLevel(_) => ErrorCode::InvalidArgument,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, available } => write!(f, "truncated: needed {needed} bytes, {available} left"),
            Self::BadVersion(version) => write!(f, "protocol version {version} (this kernel speaks {VERSION})"),
            Self::UnknownCall(number) => write!(f, "unknown call number {number}"),
            Self::Oversized { length } => write!(f, "message of {length} bytes exceeds the limit"),
            Self::LengthPastEnd { declared, available } => {
                write!(f, "declared length {declared} past the end ({available} bytes left)")
            }
            Self::TrailingBytes { extra } => write!(f, "{extra} bytes after the payload"),
            Self::BadUtf8 => f.write_str("string field is not UTF-8"),
            Self::BadLogLevel(level) => write!(f, "log level {level} (expected 0-3)"),
        }
    }
}

/// A request header as read from the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Protocol version.
    pub version: u16,
    /// Call number (request) or status (response).
    pub kind: u16,
    /// The agent's call id, echoed in the response.
    pub call_id: u32,
    /// Payload length in bytes.
    pub payload_len: u32,
}

/// Reads the header alone; the call id of a request whose payload is malformed is still known.
pub fn decode_header(message: &[u8]) -> Result<Header, DecodeError> {
    if message.len() < HEADER_LEN {
        return Err(DecodeError::Truncated { needed: HEADER_LEN, available: message.len() });
    }
    let u16_at = |at: usize| u16::from_le_bytes([message[at], message[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes([message[at], message[at + 1], message[at + 2], message[at + 3]]);
    Ok(Header { version: u16_at(0), kind: u16_at(2), call_id: u32_at(4), payload_len: u32_at(8) })
}

/// Decodes a whole request message.
pub fn decode_request(message: &[u8]) -> Result<(Header, Request), DecodeError> {
    if message.len() > MAX_MESSAGE {
        return Err(DecodeError::Oversized { length: message.len() });
    }
    let header = decode_header(message)?;
    if header.version != VERSION {
        return Err(DecodeError::BadVersion(header.version));
    }
    let call = Call::from_wire(header.kind).ok_or(DecodeError::UnknownCall(header.kind))?;
    let declared = header.payload_len as usize;
    if declared > MAX_PAYLOAD {
        return Err(DecodeError::Oversized { length: declared });
    }
    let available = message.len() - HEADER_LEN;
    if declared > available {
        return Err(DecodeError::LengthPastEnd { declared, available });
    }
    if declared < available {
        return Err(DecodeError::TrailingBytes { extra: available - declared });
    }
    let payload = &message[HEADER_LEN..];
    let request = match call {
        Call::FsList => Request::FsList { path: utf8(payload)? },
        Call::FsRead => Request::FsRead { path: utf8(payload)? },
        Call::MetricsRead => Request::MetricsRead { prefix: utf8(payload)? },
        Call::CommandRun => Request::CommandRun { line: utf8(payload)? },
        Call::FsWrite => {
            let (path, data) = length_prefixed(payload)?;
            Request::FsWrite { path: utf8(path)?, data: data.to_vec() }
        }
        Call::ProposeAction => {
            let (action, reason) = length_prefixed(payload)?;
            Request::ProposeAction { action: utf8(action)?, reason: utf8(reason)? }
        }
        Call::Log => {
            let (&level, message) = payload.split_first().ok_or(DecodeError::Truncated { needed: 1, available: 0 })?;
            let level = match level {
                0 => LogLevel::Error,
                1 => LogLevel::Warn,
                2 => LogLevel::Info,
                3 => LogLevel::Debug,
                other => return Err(DecodeError::BadLogLevel(other)),
            };
            Request::Log { level, message: utf8(message)? }
        }
        Call::Sleep => {
            if payload.len() < 4 {
                return Err(DecodeError::Truncated { needed: 4, available: payload.len() });
            }
            if payload.len() > 4 {
                return Err(DecodeError::TrailingBytes { extra: payload.len() - 4 });
            }
            Request::Sleep { duration_ms: u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) }
        }
    };
    Ok((header, request))
}

/// Encodes a request (used by tests and host-side tools; agents carry their own encoder).
pub fn encode_request(call_id: u32, request: &Request) -> Vec<u8> {
    let mut payload = Vec::new();
    match request {
        Request::FsList { path } | Request::FsRead { path } => payload.extend_from_slice(path.as_bytes()),
        Request::MetricsRead { prefix } => payload.extend_from_slice(prefix.as_bytes()),
        Request::CommandRun { line } => payload.extend_from_slice(line.as_bytes()),
        Request::FsWrite { path, data } => {
            payload.extend_from_slice(&(path.len() as u32).to_le_bytes());
            payload.extend_from_slice(path.as_bytes());
            payload.extend_from_slice(data);
        }
        Request::ProposeAction { action, reason } => {
            payload.extend_from_slice(&(action.len() as u32).to_le_bytes());
            payload.extend_from_slice(action.as_bytes());
            payload.extend_from_slice(reason.as_bytes());
        }
        Request::Log { level, message } => {
            payload.push(*level as u8);
            payload.extend_from_slice(message.as_bytes());
        }
        Request::Sleep { duration_ms } => payload.extend_from_slice(&duration_ms.to_le_bytes()),
    }
    frame(request.call() as u16, call_id, &payload)
}

/// Encodes a response: the header with `status`, then the payload.
pub fn encode_response(status: ErrorCode, call_id: u32, payload: &[u8]) -> Vec<u8> {
    frame(status.wire(), call_id, payload)
}

fn frame(kind: u16, call_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(HEADER_LEN + payload.len());
    message.extend_from_slice(&VERSION.to_le_bytes());
    message.extend_from_slice(&kind.to_le_bytes());
    message.extend_from_slice(&call_id.to_le_bytes());
    message.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    message.extend_from_slice(payload);
    message
}

fn utf8(bytes: &[u8]) -> Result<String, DecodeError> {
    core::str::from_utf8(bytes).map(String::from).map_err(|_| DecodeError::BadUtf8)
}

/// Splits `u32 length, field, rest`.
fn length_prefixed(payload: &[u8]) -> Result<(&[u8], &[u8]), DecodeError> {
    if payload.len() < 4 {
        return Err(DecodeError::Truncated { needed: 4, available: payload.len() });
    }
    let declared = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize;
    let rest = &payload[4..];
    if declared > rest.len() {
        return Err(DecodeError::LengthPastEnd { declared, available: rest.len() });
    }
    Ok(rest.split_at(declared))
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
