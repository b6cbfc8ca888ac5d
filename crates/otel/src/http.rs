//! One OTLP/HTTP export attempt as a state machine: the request goes out as the connection takes it, the response
//! is read with the web server's parser, and the attempt ends in a status or a failure with its reason — or at
//! its deadline, so a collector that never answers costs one timeout, never a blocked kernel.
//!
//! The caller owns the TCP connection: it reports where the connection is ([`Link`]) and what arrived, and sends
//! what [`Exchange::unsent`] holds. Nothing here touches a socket or a clock.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use sis_web::client::{post_request, ResponseError, ResponseReader};

use crate::Endpoint;

/// Largest response body read from a collector (an OTLP answer is a small JSON object).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// Where the caller's connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Not established yet.
    Connecting,
    /// Established.
    Open,
    /// The collector closed its side.
    PeerClosed,
    /// Over; `established` says whether it ever was.
    Closed {
        /// Whether the connection was established before it ended.
        established: bool,
    },
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportError {
    /// The connection was refused or reset before it was established (nothing listens there).
    Refused,
    /// No answer by the deadline; `connected` says whether the connection was ever established.
    Timeout {
        /// The connection was established (the collector did not answer in time) or not (nobody answered).
        connected: bool,
    },
    /// The connection ended before a whole response arrived.
    Reset,
    /// The collector answered with a status other than 2xx.
    Status(u16),
    /// The response could not be read.
    BadResponse(ResponseError),
    /// The attempt could not start: the kernel's side refused (no device, no free connection...), with its code.
    Local(String),
}

impl ExportError {
    /// A stable code: `refused`, `timeout`, `reset`, `http-status`, the response error's code, or the local one.
    pub fn code(&self) -> &str {
        match self {
            ExportError::Refused => "refused",
            ExportError::Timeout { .. } => "timeout",
            ExportError::Reset => "reset",
            ExportError::Status(_) => "http-status",
            ExportError::BadResponse(error) => error.code(),
            ExportError::Local(code) => code,
        }
    }
}

impl fmt::Display for ExportError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportError::Refused => formatter.write_str("the collector refused the connection (nothing listens there)"),
            ExportError::Timeout { connected: true } => formatter.write_str("the collector did not answer in time"),
            ExportError::Timeout { connected: false } => formatter.write_str("no connection by the deadline"),
            ExportError::Reset => formatter.write_str("the connection ended before the whole response arrived"),
            ExportError::Status(status) => write!(formatter, "the collector answered HTTP {status}"),
            ExportError::BadResponse(error) => write!(formatter, "{error}"),
            ExportError::Local(code) => write!(formatter, "the attempt could not start: {code}"),
        }
    }
}

/// What the attempts at one endpoint came to, by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AttemptCounters {
    /// Attempts ended (each is one of the outcomes below).
    pub attempts: u64,
    /// Answered 2xx.
    pub succeeded: u64,
    /// Connection refused or reset before it was established.
    pub refused: u64,
    /// No answer by the deadline.
    pub timeouts: u64,
    /// Ended before a whole response.
    pub resets: u64,
    /// Answered with a status other than 2xx.
    pub http_errors: u64,
    /// Answered with something that is not an HTTP response.
    pub bad_responses: u64,
    /// Could not start on the kernel's side.
    pub local_errors: u64,
    /// Request bytes of the attempts (sent or not).
    pub request_bytes: u64,
    /// The last status a collector answered, if any.
    pub last_status: Option<u16>,
    /// The last failure's code, if any.
    pub last_error: Option<String>,
}

impl AttemptCounters {
    /// Counts one ended attempt of `request_bytes` bytes.
    pub fn record(&mut self, request_bytes: usize, result: &Result<u16, ExportError>) {
        self.attempts += 1;
        self.request_bytes = self.request_bytes.saturating_add(request_bytes as u64);
        let counter = match result {
            Ok(status) => {
                self.last_status = Some(*status);
                &mut self.succeeded
            }
            Err(error) => {
                self.last_error = Some(String::from(error.code()));
                match error {
                    ExportError::Refused => &mut self.refused,
                    ExportError::Timeout { .. } => &mut self.timeouts,
                    ExportError::Reset => &mut self.resets,
                    ExportError::Status(status) => {
                        self.last_status = Some(*status);
                        &mut self.http_errors
                    }
                    ExportError::BadResponse(_) => &mut self.bad_responses,
                    ExportError::Local(_) => &mut self.local_errors,
                }
            }
        };
        *counter += 1;
    }
}

/// One `POST` of an OTLP/JSON body and the wait for its answer.
#[derive(Debug)]
pub struct Exchange {
    request: Vec<u8>,
    sent: usize,
    reader: ResponseReader,
    deadline_ns: u64,
    connected: bool,
}

impl Exchange {
    /// The `POST` of `body` to `endpoint`'s path, started at `now_ns`, given up `timeout_ns` later.
    pub fn new(endpoint: &Endpoint, body: &str, now_ns: u64, timeout_ns: u64) -> Exchange {
        // Host and path come from a parsed endpoint: no line breaks, so the request is always written.
        let request =
            post_request(&endpoint.host_header(), endpoint.signal.path(), "application/json", body.as_bytes())
                .unwrap_or_default();
        Exchange {
            request,
            sent: 0,
            reader: ResponseReader::new(MAX_RESPONSE_BYTES),
            deadline_ns: now_ns.saturating_add(timeout_ns),
            connected: false,
        }
    }

    /// The request's bytes not yet handed to the connection.
    pub fn unsent(&self) -> &[u8] {
        &self.request[self.sent..]
    }

    /// The connection took `count` more bytes of [`Self::unsent`].
    pub fn sent(&mut self, count: usize) {
        self.sent = self.sent.saturating_add(count).min(self.request.len());
    }

    /// The request's size, bytes.
    pub fn request_bytes(&self) -> usize {
        self.request.len()
    }

    /// When it gives up.
    pub fn deadline_ns(&self) -> u64 {
        self.deadline_ns
    }

    /// Takes what arrived and where the connection is at `now_ns`; `Some` once the attempt is over: the 2xx
    /// status, or why it failed.
    pub fn step(&mut self, now_ns: u64, link: Link, received: &[u8]) -> Option<Result<u16, ExportError>> {
        if matches!(link, Link::Open | Link::PeerClosed | Link::Closed { established: true }) {
            self.connected = true;
        }
        match self.reader.feed(received) {
            Ok(Some(response)) => return Some(verdict(response.status)),
            Ok(None) => {}
            Err(error) => return Some(Err(ExportError::BadResponse(error))),
        }
        match link {
            Link::Closed { established: false } => return Some(Err(ExportError::Refused)),
            Link::PeerClosed | Link::Closed { established: true } => {
                return Some(match self.reader.peer_closed() {
                    Ok(response) => verdict(response.status),
                    Err(ResponseError::Incomplete) => Err(ExportError::Reset),
                    Err(error) => Err(ExportError::BadResponse(error)),
                });
            }
            Link::Connecting | Link::Open => {}
        }
        (now_ns >= self.deadline_ns).then_some(Err(ExportError::Timeout { connected: self.connected }))
    }
}

fn verdict(status: u16) -> Result<u16, ExportError> {
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(ExportError::Status(status))
    }
}

#[cfg(test)]
mod tests;
