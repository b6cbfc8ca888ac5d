//! The client side of HTTP/1.1, for the kernel's own requests (the OTLP exporter's `POST /v1/traces`): a request
//! written with its framing, and a reader of the response that uses the server's own parts — `httparse` for the
//! head and the connection's body framing (`Content-Length`, chunked) for the body — so there is one HTTP parser
//! in SIS, not two.
//!
//! A response without `Content-Length` or `Transfer-Encoding` runs until the server closes
//! ([`ResponseReader::peer_closed`]); 1xx, 204 and 304 have no body; an interim 1xx is skipped.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::connection::body::{BodyProgress, ChunkPhase, Framing};
use crate::limits::Limits;

/// A `POST` of `body` to `path` at `host` (the `Host` header: `A.B.C.D:PORT`), asking the server to close after
/// its response. `host`, `path` or `content_type` holding CR, LF or NUL are refused (`None`): no caller can
/// split the request.
pub fn post_request(host: &str, path: &str, content_type: &str, body: &[u8]) -> Option<Vec<u8>> {
    let unsafe_byte = |text: &str| text.bytes().any(|byte| matches!(byte, b'\r' | b'\n' | 0));
    if [host, path, content_type].iter().any(|text| text.is_empty() || unsafe_byte(text)) || !path.starts_with('/') {
        return None;
    }
    let head = alloc::format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sis-kernel\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut request = Vec::with_capacity(head.len() + body.len());
    request.extend_from_slice(head.as_bytes());
    request.extend_from_slice(body);
    Some(request)
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientResponse {
    /// Status code.
    pub status: u16,
    /// Header fields in arrival order, values trimmed.
    pub headers: Vec<(String, String)>,
    /// The body, after chunked decoding.
    pub body: Vec<u8>,
}

impl ClientResponse {
    /// The value of the first header named `name` (ASCII case ignored).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

/// Why a response could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    /// The status line, a header or the chunked framing does not parse, or the framing is contradictory.
    Malformed,
    /// The head is longer than [`Limits::max_head_bytes`] or has more than [`Limits::max_headers`] fields.
    HeadTooLarge,
    /// The body is longer than the reader's limit.
    BodyTooLarge,
    /// The server closed before the response was complete.
    Incomplete,
    /// The heap cannot hold the body.
    OutOfMemory,
}

impl ResponseError {
    /// A stable code.
    pub fn code(self) -> &'static str {
        match self {
            ResponseError::Malformed => "malformed-response",
            ResponseError::HeadTooLarge => "response-head-too-large",
            ResponseError::BodyTooLarge => "response-too-large",
            ResponseError::Incomplete => "incomplete-response",
            ResponseError::OutOfMemory => "out-of-memory",
        }
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            ResponseError::Malformed => "the response does not parse as HTTP/1.x",
            ResponseError::HeadTooLarge => "the response's head is too large",
            ResponseError::BodyTooLarge => "the response's body is too large",
            ResponseError::Incomplete => "the server closed before its response was complete",
            ResponseError::OutOfMemory => "the heap cannot hold the response",
        })
    }
}

/// Where the reader is.
#[derive(Debug)]
enum Phase {
    Head,
    Body { status: u16, headers: Vec<(String, String)>, framing: BodyFraming },
    Done,
}

#[derive(Debug)]
enum BodyFraming {
    Framed(Framing),
    UntilClose,
}

/// Reads one response from bytes as they arrive.
#[derive(Debug)]
pub struct ResponseReader {
    limits: Limits,
    body_limit: usize,
    input: Vec<u8>,
    body: Vec<u8>,
    phase: Phase,
}

impl ResponseReader {
    /// A reader with the server's head limits ([`Limits::default`]) and a body of at most `body_limit` bytes.
    pub fn new(body_limit: usize) -> ResponseReader {
        ResponseReader {
            limits: Limits::default(),
            body_limit,
            input: Vec::new(),
            body: Vec::new(),
            phase: Phase::Head,
        }
    }

    /// Takes received bytes; `Some` once the response is complete (bytes after it are ignored).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<ClientResponse>, ResponseError> {
        if matches!(self.phase, Phase::Done) {
            return Ok(None);
        }
        self.input.try_reserve(bytes.len()).map_err(|_| ResponseError::OutOfMemory)?;
        self.input.extend_from_slice(bytes);
        loop {
            match &mut self.phase {
                Phase::Head => match parse_head(&self.input, &self.limits)? {
                    None => return Ok(None),
                    Some((consumed, status, _)) if (100..200).contains(&status) => {
                        // An interim response (100 Continue): the real one follows.
                        self.input.drain(..consumed);
                    }
                    Some((consumed, status, headers)) => {
                        self.input.drain(..consumed);
                        let framing = framing(status, &headers, self.body_limit)?;
                        self.phase = Phase::Body { status, headers, framing };
                    }
                },
                Phase::Body { framing: BodyFraming::UntilClose, .. } => {
                    if self.body.len().saturating_add(self.input.len()) > self.body_limit {
                        return Err(ResponseError::BodyTooLarge);
                    }
                    self.body.try_reserve(self.input.len()).map_err(|_| ResponseError::OutOfMemory)?;
                    self.body.append(&mut self.input);
                    return Ok(None);
                }
                Phase::Body { framing: BodyFraming::Framed(framing), .. } => {
                    let progress = framing
                        .read(&mut self.input, &mut self.body, &self.limits, self.body_limit)
                        .map_err(http_error)?;
                    if progress == BodyProgress::Pending {
                        return Ok(None);
                    }
                    return Ok(Some(self.complete()));
                }
                Phase::Done => return Ok(None),
            }
        }
    }

    /// The server closed the connection: the response read until then, if its framing allows it to end here.
    pub fn peer_closed(&mut self) -> Result<ClientResponse, ResponseError> {
        match self.phase {
            Phase::Body { framing: BodyFraming::UntilClose, .. } => Ok(self.complete()),
            _ => Err(ResponseError::Incomplete),
        }
    }

    fn complete(&mut self) -> ClientResponse {
        match core::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Body { status, headers, .. } => {
                ClientResponse { status, headers, body: core::mem::take(&mut self.body) }
            }
            // Only called from the body phase.
            Phase::Head | Phase::Done => ClientResponse { status: 0, headers: Vec::new(), body: Vec::new() },
        }
    }
}

type Head = (usize, u16, Vec<(String, String)>);

fn parse_head(input: &[u8], limits: &Limits) -> Result<Option<Head>, ResponseError> {
    let mut headers = alloc::vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut parsed = httparse::Response::new(&mut headers);
    let window = &input[..input.len().min(limits.max_head_bytes.saturating_add(1))];
    let consumed = match parsed.parse(window) {
        Ok(httparse::Status::Complete(consumed)) if consumed <= limits.max_head_bytes => consumed,
        Ok(httparse::Status::Partial) if window.len() <= limits.max_head_bytes => return Ok(None),
        Ok(_) | Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::HeadTooLarge),
        Err(_) => return Err(ResponseError::Malformed),
    };
    let status = parsed.code.ok_or(ResponseError::Malformed)?;
    let mut owned = Vec::with_capacity(parsed.headers.len());
    for header in parsed.headers.iter() {
        let value = core::str::from_utf8(header.value).map_err(|_| ResponseError::Malformed)?;
        owned.push((String::from(header.name), String::from(value.trim())));
    }
    Ok(Some((consumed, status, owned)))
}

fn framing(status: u16, headers: &[(String, String)], body_limit: usize) -> Result<BodyFraming, ResponseError> {
    if status == 204 || status == 304 {
        return Ok(BodyFraming::Framed(Framing::Length(0)));
    }
    let mut length: Option<u64> = None;
    let mut codings = Vec::new();
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("content-length") {
            if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(ResponseError::Malformed);
            }
            let parsed = value.parse::<u64>().map_err(|_| ResponseError::BodyTooLarge)?;
            if length.is_some_and(|earlier| earlier != parsed) {
                return Err(ResponseError::Malformed);
            }
            length = Some(parsed);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            codings.extend(value.split(',').map(str::trim).filter(|coding| !coding.is_empty()));
        }
    }
    if !codings.is_empty() {
        // Both framings, or a coding other than chunked alone, is not something this reader guesses at.
        if length.is_some() || codings.len() != 1 || !codings[0].eq_ignore_ascii_case("chunked") {
            return Err(ResponseError::Malformed);
        }
        return Ok(BodyFraming::Framed(Framing::Chunked(ChunkPhase::Size)));
    }
    match length {
        None => Ok(BodyFraming::UntilClose),
        Some(length) => match usize::try_from(length) {
            Ok(length) if length <= body_limit => Ok(BodyFraming::Framed(Framing::Length(length))),
            _ => Err(ResponseError::BodyTooLarge),
        },
    }
}

fn http_error(error: crate::HttpError) -> ResponseError {
    match error {
        crate::HttpError::BodyTooLarge => ResponseError::BodyTooLarge,
        crate::HttpError::HeadTooLarge | crate::HttpError::TooManyHeaders => ResponseError::HeadTooLarge,
        crate::HttpError::OutOfMemory => ResponseError::OutOfMemory,
        _ => ResponseError::Malformed,
    }
}

#[cfg(test)]
mod tests;
