//! Request heads (through `httparse`) and body framing: `Content-Length` or `Transfer-Encoding: chunked`.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::HttpError;
use crate::limits::{Limits, MAX_CHUNK_LINE_BYTES};
use crate::request::{Method, Request, Version};

/// How the body of a request is delimited, and how far it has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Content-Length` (0 without a body): bytes still to read.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked(ChunkPhase),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkPhase {
    /// Expecting a chunk-size line.
    Size,
    /// Bytes of the current chunk still to read.
    Data(usize),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty line; bytes of trailers read so far.
    Trailers(usize),
}

/// Whether a body read finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyProgress {
    /// More bytes are needed.
    Pending,
    /// The body is complete.
    Done,
}

impl Framing {
    /// Whether to send `100 Continue` before the body: HTTP/1.1, `Expect: 100-continue`, a body to come.
    pub(super) fn expects_continue(&self, request: &Request) -> bool {
        let body_follows = !matches!(self, Framing::Length(0));
        body_follows
            && request.version == Version::Http11
            && request.header("expect").is_some_and(|value| value.trim().eq_ignore_ascii_case("100-continue"))
    }

    /// Moves body bytes from `input` into `body`, as far as they go; a body over `body_limit` (the request's,
    /// [`Limits::body_limit`]) is refused.
    pub(crate) fn read(
        &mut self,
        input: &mut Vec<u8>,
        body: &mut Vec<u8>,
        limits: &Limits,
        body_limit: usize,
    ) -> Result<BodyProgress, HttpError> {
        loop {
            match self {
                Framing::Length(remaining) => {
                    let take = (*remaining).min(input.len());
                    move_bytes(input, take, body)?;
                    *remaining -= take;
                    return Ok(if *remaining == 0 { BodyProgress::Done } else { BodyProgress::Pending });
                }
                Framing::Chunked(phase) => {
                    if read_chunked(phase, input, body, limits, body_limit)? == BodyProgress::Pending {
                        return Ok(BodyProgress::Pending);
                    }
                    if matches!(phase, ChunkPhase::Trailers(usize::MAX)) {
                        return Ok(BodyProgress::Done);
                    }
                }
            }
        }
    }
}

/// Moves the first `count` bytes of `input` to the end of `body`, growing it fallibly: a heap that cannot hold
/// the body is [`HttpError::OutOfMemory`], never a panic.
fn move_bytes(input: &mut Vec<u8>, count: usize, body: &mut Vec<u8>) -> Result<(), HttpError> {
    body.try_reserve(count).map_err(|_| HttpError::OutOfMemory)?;
    body.extend(input.drain(..count));
    Ok(())
}

/// One step of chunked decoding; `Pending` when input ran out. The end is signalled as `Trailers(usize::MAX)`.
fn read_chunked(
    phase: &mut ChunkPhase,
    input: &mut Vec<u8>,
    body: &mut Vec<u8>,
    limits: &Limits,
    body_limit: usize,
) -> Result<BodyProgress, HttpError> {
    match *phase {
        ChunkPhase::Size => match httparse::parse_chunk_size(input) {
            Ok(httparse::Status::Complete((consumed, size))) => {
                input.drain(..consumed);
                let size = usize::try_from(size).map_err(|_| HttpError::BodyTooLarge)?;
                if size == 0 {
                    *phase = ChunkPhase::Trailers(0);
                } else if body.len().checked_add(size).is_none_or(|total| total > body_limit) {
                    return Err(HttpError::BodyTooLarge);
                } else {
                    *phase = ChunkPhase::Data(size);
                }
                Ok(BodyProgress::Done)
            }
            Ok(httparse::Status::Partial) if input.len() <= MAX_CHUNK_LINE_BYTES => Ok(BodyProgress::Pending),
            Ok(httparse::Status::Partial) | Err(_) => Err(HttpError::Malformed),
        },
        ChunkPhase::Data(remaining) => {
            let take = remaining.min(input.len());
            move_bytes(input, take, body)?;
            *phase = if take == remaining { ChunkPhase::DataEnd } else { ChunkPhase::Data(remaining - take) };
            Ok(if take == remaining { BodyProgress::Done } else { BodyProgress::Pending })
        }
        ChunkPhase::DataEnd => match input.get(..2) {
            None if input.first().is_none_or(|byte| *byte == b'\r') => Ok(BodyProgress::Pending),
            Some(b"\r\n") => {
                input.drain(..2);
                *phase = ChunkPhase::Size;
                Ok(BodyProgress::Done)
            }
            _ => Err(HttpError::Malformed),
        },
        ChunkPhase::Trailers(read) => {
            let Some(end) = input.windows(2).position(|pair| pair == b"\r\n") else {
                return if read.saturating_add(input.len()) > limits.max_head_bytes {
                    Err(HttpError::HeadTooLarge)
                } else {
                    Ok(BodyProgress::Pending)
                };
            };
            let read = read.saturating_add(end + 2);
            if read > limits.max_head_bytes {
                return Err(HttpError::HeadTooLarge);
            }
            input.drain(..end + 2);
            // Trailer fields are read and dropped: nothing here uses them.
            *phase = ChunkPhase::Trailers(if end == 0 { usize::MAX } else { read });
            Ok(BodyProgress::Done)
        }
    }
}

/// Parses a request head at the front of `input`: `Ok(None)` while incomplete, else the bytes it took, the
/// request (body still empty) and how its body is framed.
pub(super) fn parse_head(input: &[u8], limits: &Limits) -> Result<Option<(usize, Request, Framing)>, HttpError> {
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut parsed = httparse::Request::new(&mut headers);
    // Only the bytes a head may hold (and one more, to see it is too long) are parsed, so the verdict never
    // depends on how much of what follows has arrived: the same bytes give the same error in any pieces.
    let window = &input[..input.len().min(limits.max_head_bytes.saturating_add(1))];
    let consumed = match parsed.parse(window) {
        Ok(httparse::Status::Complete(consumed)) if consumed <= limits.max_head_bytes => consumed,
        Ok(httparse::Status::Complete(_)) => return Err(HttpError::HeadTooLarge),
        Ok(httparse::Status::Partial) if window.len() > limits.max_head_bytes => return Err(HttpError::HeadTooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooManyHeaders),
        Err(httparse::Error::Version) => return Err(HttpError::UnsupportedVersion),
        Err(_) => return Err(HttpError::Malformed),
    };
    let (Some(method), Some(target), Some(version)) = (parsed.method, parsed.path, parsed.version) else {
        return Err(HttpError::Malformed);
    };
    let method = Method::parse(method).ok_or(HttpError::UnsupportedMethod)?;
    let version = match version {
        0 => Version::Http10,
        1 => Version::Http11,
        _ => return Err(HttpError::UnsupportedVersion),
    };
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(String::from(query))),
        None => (target, None),
    };
    if !(path.starts_with('/') || (path == "*" && method == Method::Options)) {
        return Err(HttpError::Malformed);
    }
    let mut owned = Vec::with_capacity(parsed.headers.len());
    for header in parsed.headers.iter() {
        let value = core::str::from_utf8(header.value).map_err(|_| HttpError::Malformed)?;
        owned.push((String::from(header.name), String::from(value.trim())));
    }
    let mut request = Request {
        method,
        path: String::from(path),
        query,
        version,
        headers: owned,
        body: Vec::new(),
        keep_alive: false,
    };
    if version == Version::Http11 && request.header("host").is_none() {
        return Err(HttpError::Malformed);
    }
    request.keep_alive = match version {
        Version::Http11 => !request.header_has_token("connection", "close"),
        Version::Http10 => request.header_has_token("connection", "keep-alive"),
    };
    let framing = framing(&request, limits)?;
    Ok(Some((consumed, request, framing)))
}

fn framing(request: &Request, limits: &Limits) -> Result<Framing, HttpError> {
    let mut length: Option<u64> = None;
    let mut transfer_codings = 0usize;
    let mut chunked = false;
    for (name, value) in &request.headers {
        if name.eq_ignore_ascii_case("content-length") {
            if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(HttpError::Malformed);
            }
            // Digits only, so the only parse failure is overflow: too large for any limit.
            let parsed = value.parse::<u64>().map_err(|_| HttpError::BodyTooLarge)?;
            if length.is_some_and(|earlier| earlier != parsed) {
                return Err(HttpError::Malformed);
            }
            length = Some(parsed);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            for coding in value.split(',').map(str::trim).filter(|coding| !coding.is_empty()) {
                transfer_codings += 1;
                chunked = coding.eq_ignore_ascii_case("chunked");
            }
        }
    }
    if transfer_codings > 0 {
        // Both framings at once is how requests get smuggled; HTTP/1.0 has no transfer codings.
        if length.is_some() || request.version == Version::Http10 {
            return Err(HttpError::Malformed);
        }
        if transfer_codings != 1 || !chunked {
            return Err(HttpError::UnsupportedTransferEncoding);
        }
        return Ok(Framing::Chunked(ChunkPhase::Size));
    }
    let length = length.unwrap_or(0);
    match usize::try_from(length) {
        Ok(length) if length <= limits.body_limit(request) => Ok(Framing::Length(length)),
        _ => Err(HttpError::BodyTooLarge),
    }
}
