//! WebSocket (RFC 6455): the opening handshake, server frames, close codes and the client-frame decoder.

use alloc::string::String;
use alloc::vec::Vec;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha1::{Digest, Sha1};

use crate::limits::MAX_WS_FRAME_HEADER_BYTES;
use crate::request::{Method, Request, Version};
use crate::response::Response;

/// The GUID RFC 6455 appends to the client's key before hashing.
pub const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The only protocol version accepted (`Sec-WebSocket-Version`).
pub const WEBSOCKET_VERSION: &str = "13";
/// Largest payload of a control frame (ping, pong, close).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Close codes this server sends or reports (RFC 6455 section 7.4.1).
pub mod close_code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// The server is going away (`webctl stop`).
    pub const GOING_AWAY: u16 = 1001;
    /// A frame broke the protocol: unmasked, reserved bits or opcode, bad control frame, bad fragmentation,
    /// non-minimal length, invalid close code.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// Reported (never sent) when the peer's close frame carried no code.
    pub const NO_STATUS: u16 = 1005;
    /// A text message (or close reason) that is not UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// Policy: the connection's token was revoked.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// A message larger than `Limits::max_ws_message_bytes`.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &str) -> String {
    let mut hasher = Sha1::new();
    hasher.update(key.as_bytes());
    hasher.update(WEBSOCKET_GUID.as_bytes());
    STANDARD.encode(hasher.finalize())
}

/// Why an upgrade request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// No `Upgrade: websocket` with `Connection: upgrade` (426).
    NotAnUpgrade,
    /// Not `GET` over HTTP/1.1 (400).
    WrongMethodOrVersion,
    /// `Sec-WebSocket-Key` absent, or not base64 of 16 bytes (400).
    BadKey,
    /// `Sec-WebSocket-Version` absent or not 13 (426, with `Sec-WebSocket-Version: 13`).
    UnsupportedVersion,
}

impl HandshakeError {
    /// The status code of the refusal.
    pub fn status(self) -> u16 {
        match self {
            HandshakeError::NotAnUpgrade | HandshakeError::UnsupportedVersion => 426,
            HandshakeError::WrongMethodOrVersion | HandshakeError::BadKey => 400,
        }
    }

    /// Stable error code in the JSON body.
    pub fn code(self) -> &'static str {
        match self {
            HandshakeError::NotAnUpgrade => "websocket-upgrade-required",
            HandshakeError::WrongMethodOrVersion => "websocket-bad-request",
            HandshakeError::BadKey => "websocket-bad-key",
            HandshakeError::UnsupportedVersion => "websocket-unsupported-version",
        }
    }

    /// The refusal as a response; the connection stays usable for HTTP.
    pub fn response(self) -> Response {
        let message = match self {
            HandshakeError::NotAnUpgrade => "this path speaks WebSocket: send Upgrade: websocket",
            HandshakeError::WrongMethodOrVersion => "a WebSocket upgrade is a GET over HTTP/1.1",
            HandshakeError::BadKey => "Sec-WebSocket-Key must be base64 of 16 bytes",
            HandshakeError::UnsupportedVersion => "only Sec-WebSocket-Version 13 is supported",
        };
        let response = Response::error(self.status(), self.code(), message);
        match self {
            HandshakeError::NotAnUpgrade => response.with_header("Upgrade", "websocket"),
            HandshakeError::UnsupportedVersion => response.with_header("Sec-WebSocket-Version", WEBSOCKET_VERSION),
            _ => response,
        }
    }
}

/// Checks an upgrade request and returns its `Sec-WebSocket-Accept` value.
pub fn check_handshake(request: &Request) -> Result<String, HandshakeError> {
    if !request.is_websocket_upgrade() {
        return Err(HandshakeError::NotAnUpgrade);
    }
    if request.method != Method::Get || request.version != Version::Http11 {
        return Err(HandshakeError::WrongMethodOrVersion);
    }
    if request.header("sec-websocket-version").map(str::trim) != Some(WEBSOCKET_VERSION) {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let key = request.header("sec-websocket-key").map(str::trim).ok_or(HandshakeError::BadKey)?;
    match STANDARD.decode(key) {
        Ok(decoded) if decoded.len() == 16 => Ok(accept_key(key)),
        _ => Err(HandshakeError::BadKey),
    }
}

/// Frame opcodes (RFC 6455 section 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// Continues a fragmented message.
    Continuation = 0x0,
    /// A UTF-8 text message.
    Text = 0x1,
    /// A binary message.
    Binary = 0x2,
    /// Close.
    Close = 0x8,
    /// Ping.
    Ping = 0x9,
    /// Pong.
    Pong = 0xA,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    fn is_control(self) -> bool {
        self as u8 >= 0x8
    }
}

/// One unfragmented, unmasked server frame.
pub fn encode_frame(opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload.len() + 10);
    frame.push(0x80 | opcode as u8);
    match payload.len() {
        length @ 0..=125 => frame.push(length as u8),
        length @ 126..=0xFFFF => {
            frame.push(126);
            frame.extend_from_slice(&(length as u16).to_be_bytes());
        }
        length => {
            frame.push(127);
            frame.extend_from_slice(&(length as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    frame
}

/// A close frame carrying `code` (no reason text).
pub fn encode_close(code: u16) -> Vec<u8> {
    encode_frame(Opcode::Close, &code.to_be_bytes())
}

/// Whether `code` may appear in a close frame (RFC 6455 section 7.4).
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

/// What the decoder made of the bytes at the front of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// Not a whole frame yet.
    Incomplete,
    /// A frame was consumed that completes nothing (a fragment, a pong).
    Nothing,
    /// A complete text message.
    Text(String),
    /// A complete binary message.
    Binary(Vec<u8>),
    /// A ping with its payload (to echo in a pong).
    Ping(Vec<u8>),
    /// The peer's close, with its code ([`close_code::NO_STATUS`] without one).
    Close(u16),
    /// The frame broke the protocol; close with this code.
    Fail(u16),
}

/// Client-frame decoder: unmasking, fragment reassembly and the protocol's rules.
#[derive(Debug, Clone)]
pub(crate) struct Decoder {
    /// Opcode and bytes of a fragmented message in progress.
    fragments: Option<(Opcode, Vec<u8>)>,
    max_message_bytes: usize,
}

impl Decoder {
    pub(crate) fn new(max_message_bytes: usize) -> Decoder {
        Decoder { fragments: None, max_message_bytes }
    }

    /// Decodes the frame at the front of `input`; returns the bytes consumed and what it was.
    pub(crate) fn decode(&mut self, input: &[u8]) -> (usize, Decoded) {
        if input.len() < 2 {
            return (0, Decoded::Incomplete);
        }
        let (first, second) = (input[0], input[1]);
        let fin = first & 0x80 != 0;
        let Some(opcode) = Opcode::from_bits(first & 0x0F).filter(|_| first & 0x70 == 0) else {
            return (0, Decoded::Fail(close_code::PROTOCOL_ERROR));
        };
        if second & 0x80 == 0 {
            return (0, Decoded::Fail(close_code::PROTOCOL_ERROR));
        }
        let (length, length_bytes) = match second & 0x7F {
            126 => match input.get(2..4) {
                None => return (0, Decoded::Incomplete),
                Some(bytes) => (u64::from(u16::from_be_bytes([bytes[0], bytes[1]])), 2),
            },
            127 => match input.get(2..10) {
                None => return (0, Decoded::Incomplete),
                Some(bytes) => {
                    let mut array = [0u8; 8];
                    array.copy_from_slice(bytes);
                    (u64::from_be_bytes(array), 8)
                }
            },
            short => (u64::from(short), 0),
        };
        let minimal = match length_bytes {
            2 => length >= 126,
            8 => length > 0xFFFF && length >> 63 == 0,
            _ => true,
        };
        if !minimal {
            return (0, Decoded::Fail(close_code::PROTOCOL_ERROR));
        }
        if opcode.is_control() && (!fin || length > MAX_CONTROL_PAYLOAD as u64) {
            return (0, Decoded::Fail(close_code::PROTOCOL_ERROR));
        }
        match (opcode, &self.fragments) {
            (Opcode::Continuation, None) => return (0, Decoded::Fail(close_code::PROTOCOL_ERROR)),
            (Opcode::Text | Opcode::Binary, Some(_)) => return (0, Decoded::Fail(close_code::PROTOCOL_ERROR)),
            _ => {}
        }
        if !opcode.is_control() {
            let already = self.fragments.as_ref().map_or(0, |(_, bytes)| bytes.len()) as u64;
            if already.saturating_add(length) > self.max_message_bytes as u64 {
                return (0, Decoded::Fail(close_code::MESSAGE_TOO_BIG));
            }
        }
        // The length fits in the message limit (or is at most 125), so it fits in usize.
        let length = length as usize;
        let header = 2 + length_bytes + 4;
        debug_assert!(header <= MAX_WS_FRAME_HEADER_BYTES);
        let Some(total) = header.checked_add(length).filter(|total| *total <= input.len()) else {
            return (0, Decoded::Incomplete);
        };
        let mask = [input[header - 4], input[header - 3], input[header - 2], input[header - 1]];
        let payload: Vec<u8> =
            input[header..total].iter().enumerate().map(|(index, byte)| byte ^ mask[index % 4]).collect();
        (total, self.complete(opcode, fin, payload))
    }

    fn complete(&mut self, opcode: Opcode, fin: bool, payload: Vec<u8>) -> Decoded {
        match opcode {
            Opcode::Ping => Decoded::Ping(payload),
            Opcode::Pong => Decoded::Nothing,
            Opcode::Close => close_frame(&payload),
            Opcode::Text | Opcode::Binary if fin => message(opcode, payload),
            Opcode::Text | Opcode::Binary => {
                self.fragments = Some((opcode, payload));
                Decoded::Nothing
            }
            Opcode::Continuation => {
                let Some((first, mut bytes)) = self.fragments.take() else {
                    return Decoded::Fail(close_code::PROTOCOL_ERROR);
                };
                bytes.extend_from_slice(&payload);
                if fin {
                    message(first, bytes)
                } else {
                    self.fragments = Some((first, bytes));
                    Decoded::Nothing
                }
            }
        }
    }
}

fn message(opcode: Opcode, payload: Vec<u8>) -> Decoded {
    match opcode {
        Opcode::Text => match String::from_utf8(payload) {
            Ok(text) => Decoded::Text(text),
            Err(_) => Decoded::Fail(close_code::INVALID_PAYLOAD),
        },
        _ => Decoded::Binary(payload),
    }
}

fn close_frame(payload: &[u8]) -> Decoded {
    match payload {
        [] => Decoded::Close(close_code::NO_STATUS),
        [_] => Decoded::Fail(close_code::PROTOCOL_ERROR),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            if !is_valid_close_code(code) {
                Decoded::Fail(close_code::PROTOCOL_ERROR)
            } else if core::str::from_utf8(reason).is_err() {
                Decoded::Fail(close_code::INVALID_PAYLOAD)
            } else {
                Decoded::Close(code)
            }
        }
    }
}
