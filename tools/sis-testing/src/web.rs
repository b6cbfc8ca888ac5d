//! Clients of SIS's web server that no one here wrote: `curl` for HTTP, Python's `websockets` for WebSocket, and
//! raw TCP bytes for what neither sends. The web QEMU tests and phase 6 of the phase suite both drive the server
//! through these.
//!
//! ```no_run
//! use sis_testing::web::{Request, WebClient};
//! let client = WebClient::new("127.0.0.1:8080".parse().unwrap());
//! let reply = client.send(&Request::get("/api/metrics").bearer("0123"))?;
//! assert_eq!(reply.status, 401);
//! # Ok::<(), sis_testing::web::WebError>(())
//! ```

mod curl;
mod websocket;

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub use curl::{Request, Transfer};
pub use websocket::{Closed, Connected, WebSocket, WsEvent};

/// Debian's Python, where the `python3-websockets` package installs (`cargo xtask test` installs both).
pub const PYTHON: &str = "/usr/bin/python3";

/// How long a client waits for one step (a transfer, a connect, a reply of the WebSocket driver) at most.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a client could not do what was asked.
#[derive(Debug)]
pub enum WebError {
    /// The client program could not be started.
    Spawn {
        /// The program.
        program: &'static str,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// Talking to the client or the server failed.
    Io {
        /// What was being done.
        action: &'static str,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The client printed something that is not what it prints.
    Unreadable {
        /// What was being read.
        what: &'static str,
        /// The text.
        output: String,
    },
    /// The client did not answer in time.
    Timeout {
        /// What was awaited.
        waiting_for: String,
        /// How long.
        waited: Duration,
    },
    /// The client reported a failure (its own words).
    Client(String),
}

impl fmt::Display for WebError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebError::Spawn { program, source } => write!(formatter, "cannot start {program}: {source}"),
            WebError::Io { action, source } => write!(formatter, "{action} failed: {source}"),
            WebError::Unreadable { what, output } => write!(formatter, "unreadable {what}: {output:?}"),
            WebError::Timeout { waiting_for, waited } => {
                write!(formatter, "no {waiting_for} within {:.1} s", waited.as_secs_f64())
            }
            WebError::Client(message) => write!(formatter, "the client failed: {message}"),
        }
    }
}

impl std::error::Error for WebError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WebError::Spawn { source, .. } | WebError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// How a raw TCP exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// The first line of a response arrived (reading stopped there).
    StatusLine,
    /// The peer closed the connection (end of stream).
    Closed,
    /// The connection was reset (on the write or the read).
    Reset,
    /// Nothing more came within the wait.
    TimedOut,
    /// The host refused the connect itself (nothing listens on the host port).
    ConnectRefused,
}

/// What came back for raw bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RawReply {
    /// Bytes received before the ending.
    pub received: Vec<u8>,
    /// How it ended.
    pub ending: Ending,
}

impl RawReply {
    /// The status code of the response's first line, when one arrived.
    pub fn status(&self) -> Option<u16> {
        let text = String::from_utf8_lossy(&self.received);
        text.lines().next()?.split(' ').nth(1)?.parse().ok()
    }
}

/// The web server behind a forwarded host port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebClient {
    address: SocketAddr,
}

impl WebClient {
    /// A client of the server at `address` (the host side of QEMU's port forward).
    pub fn new(address: SocketAddr) -> WebClient {
        WebClient { address }
    }

    /// The server's address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://ADDRESS{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// `ws://ADDRESS/ws`, with `?token=TOKEN` (how a browser authenticates a WebSocket) when given.
    pub fn websocket_url(&self, token: Option<&str>) -> String {
        match token {
            Some(token) => format!("ws://{}/ws?token={token}", self.address),
            None => format!("ws://{}/ws", self.address),
        }
    }

    /// Sends `requests` in order from one `curl` process, which reuses its connection while the server keeps it
    /// alive; returns one transfer for each.
    pub fn transfers(&self, requests: &[Request]) -> Result<Vec<Transfer>, WebError> {
        curl::run(self, requests)
    }

    /// Sends one request with `curl`.
    pub fn send(&self, request: &Request) -> Result<Transfer, WebError> {
        let mut transfers = self.transfers(std::slice::from_ref(request))?;
        transfers.pop().ok_or_else(|| WebError::Unreadable { what: "curl output", output: String::new() })
    }

    /// `GET path`, with a bearer token when given.
    pub fn get(&self, path: &str, token: Option<&str>) -> Result<Transfer, WebError> {
        let request = Request::get(path);
        self.send(&match token {
            Some(token) => request.bearer(token),
            None => request,
        })
    }

    /// `POST /api/command` with `{"command": line}` and a bearer token.
    pub fn command(&self, token: &str, line: &str) -> Result<Transfer, WebError> {
        self.send(&Request::command(line).bearer(token))
    }

    /// Opens a WebSocket to `/ws` (the token as a query parameter, when given) through the Python driver.
    pub fn websocket(&self, token: Option<&str>) -> Result<(WebSocket, Connected), WebError> {
        let mut socket = WebSocket::spawn()?;
        let connected = socket.connect(&self.websocket_url(token))?;
        Ok((socket, connected))
    }

    /// Connects, writes `bytes` and reads until the response's first line, the end of the stream, a reset, or
    /// `wait` without a byte.
    pub fn raw(&self, bytes: &[u8], wait: Duration) -> Result<RawReply, WebError> {
        let mut stream = match TcpStream::connect_timeout(&self.address, Duration::from_secs(10)) {
            Ok(stream) => stream,
            Err(error) if error.kind() == ErrorKind::ConnectionRefused => {
                return Ok(RawReply { received: Vec::new(), ending: Ending::ConnectRefused })
            }
            Err(source) => return Err(WebError::Io { action: "connecting", source }),
        };
        stream.set_read_timeout(Some(wait)).map_err(|source| WebError::Io { action: "setting a timeout", source })?;
        let mut received = Vec::new();
        if let Err(error) = stream.write_all(bytes) {
            return match error.kind() {
                ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => Ok(RawReply { received, ending: Ending::Reset }),
                _ => Err(WebError::Io { action: "writing a request", source: error }),
            };
        }
        let mut buffer = [0u8; 4096];
        loop {
            if received.windows(2).any(|window| window == b"\r\n") {
                return Ok(RawReply { received, ending: Ending::StatusLine });
            }
            match stream.read(&mut buffer) {
                Ok(0) => return Ok(RawReply { received, ending: Ending::Closed }),
                Ok(count) => received.extend_from_slice(&buffer[..count]),
                Err(error) => {
                    let ending = match error.kind() {
                        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => Ending::Reset,
                        ErrorKind::WouldBlock | ErrorKind::TimedOut => Ending::TimedOut,
                        _ => return Err(WebError::Io { action: "reading a response", source: error }),
                    };
                    return Ok(RawReply { received, ending });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_reply_reads_its_status_line() {
        let reply = RawReply {
            received: b"HTTP/1.1 431 Request Header Fields Too Large\r\n".to_vec(),
            ending: Ending::StatusLine,
        };
        assert_eq!(reply.status(), Some(431));
        assert_eq!(RawReply { received: Vec::new(), ending: Ending::Reset }.status(), None);
    }

    #[test]
    fn urls_name_the_forwarded_address() {
        let client = WebClient::new("127.0.0.1:4000".parse().unwrap());
        assert_eq!(client.url("/api/metrics"), "http://127.0.0.1:4000/api/metrics");
        assert_eq!(client.websocket_url(Some("ab")), "ws://127.0.0.1:4000/ws?token=ab");
        assert_eq!(client.websocket_url(None), "ws://127.0.0.1:4000/ws");
    }
}
