//! A WebSocket client: Python's `websockets` package, driven line by line from Rust.
//!
//! The driver is a small Python program on a pipe: each request is one JSON line (`connect`, `send`, `binary`,
//! `ping`, `receive`, `close`) and each answer one JSON line with the request's `id`. Once connected, a task of
//! its own reads every frame as it arrives (no queue limit, so the server never meets back-pressure from a client
//! that is busy elsewhere) and notes its arrival time; `receive` hands them out in order.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{WebError, CLIENT_TIMEOUT, PYTHON};

/// The driver (ping_interval off: the client sends nothing it was not asked to, so the server's counters move
/// by exactly what was sent).
const DRIVER: &str = r#"
import asyncio, json, sys, time
import websockets

def handshake_status(error):
    status = getattr(error, "status_code", None)
    response = getattr(error, "response", None)
    if status is None and response is not None:
        status = getattr(response, "status_code", None)
    return status

async def pump(ws, queue):
    while True:
        try:
            message = await ws.recv()
        except websockets.exceptions.ConnectionClosed as error:
            received = error.rcvd
            queue.put_nowait({"closed": {"code": received.code if received else None,
                                         "reason": received.reason if received else None}})
            return
        at = time.monotonic()
        if isinstance(message, str):
            queue.put_nowait({"text": message, "at": at})
        else:
            queue.put_nowait({"binary": message.hex(), "at": at})

async def main():
    loop = asyncio.get_running_loop()
    ws, queue, ended = None, asyncio.Queue(), None
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        request = json.loads(line)
        op, wait = request["op"], request.get("wait_s", 10)
        try:
            if op == "connect":
                try:
                    ws = await websockets.connect(request["url"], ping_interval=None, max_queue=None,
                                                  open_timeout=wait, close_timeout=wait)
                    asyncio.ensure_future(pump(ws, queue))
                    reply = {"connected": True}
                except websockets.exceptions.InvalidHandshake as error:
                    reply = {"connected": False, "status": handshake_status(error), "message": str(error)}
            elif op == "send":
                await ws.send(request["text"])
                reply = {"sent": True}
            elif op == "binary":
                await ws.send(bytes.fromhex(request["hex"]))
                reply = {"sent": True}
            elif op == "ping":
                waiter = await ws.ping()
                await asyncio.wait_for(waiter, wait)
                reply = {"pong": True}
            elif op == "receive":
                if ended is not None:
                    reply = ended
                else:
                    try:
                        reply = await asyncio.wait_for(queue.get(), wait)
                        if "closed" in reply:
                            ended = reply
                    except asyncio.TimeoutError:
                        reply = {"silent": True}
            elif op == "close":
                await ws.close(code=request["code"])
                unread = 0
                while ended is None:
                    item = await asyncio.wait_for(queue.get(), wait)
                    if "closed" in item:
                        ended = item
                    else:
                        unread += 1
                reply = dict(ended, unread=unread)
            else:
                reply = {"error": "unknown op " + op}
        except Exception as error:
            reply = {"error": type(error).__name__ + ": " + str(error)}
        reply["id"] = request["id"]
        print(json.dumps(reply), flush=True)

asyncio.run(main())
"#;

/// How a WebSocket ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    /// The code of the server's close frame; `None` when the connection ended without one (reset: 1006).
    pub code: Option<u16>,
    /// Its reason.
    pub reason: Option<String>,
}

/// The answer to a connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Connected {
    /// The server switched protocols.
    Open,
    /// The server answered the handshake with this HTTP status.
    Refused {
        /// The status.
        status: u16,
    },
}

/// What [`WebSocket::receive`] got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WsEvent {
    /// A text message, and when it arrived (seconds on the host's monotonic clock).
    Text {
        /// The message.
        text: String,
        /// Arrival time.
        at: f64,
    },
    /// A binary message.
    Binary {
        /// The message.
        bytes: Vec<u8>,
        /// Arrival time.
        at: f64,
    },
    /// Nothing arrived within the wait.
    Silent,
    /// The connection ended (every later receive says the same).
    Closed(Closed),
}

impl WsEvent {
    /// A text message as JSON, if it is one.
    pub fn json(&self) -> Option<Value> {
        match self {
            WsEvent::Text { text, .. } => serde_json::from_str(text).ok(),
            _ => None,
        }
    }
}

/// One WebSocket client (a Python process); killed on drop.
#[derive(Debug)]
pub struct WebSocket {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<String>,
    next_id: u64,
}

impl WebSocket {
    /// Starts the driver.
    pub fn spawn() -> Result<WebSocket, WebError> {
        let mut child = Command::new(PYTHON)
            .args(["-c", DRIVER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| WebError::Spawn { program: PYTHON, source })?;
        let (stdin, stdout) = match (child.stdin.take(), child.stdout.take()) {
            (Some(stdin), Some(stdout)) => (stdin, stdout),
            _ => {
                let _ = child.kill();
                return Err(WebError::Client(String::from("the driver's pipes are missing")));
            }
        };
        let (sender, replies) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Ok(WebSocket { child, stdin, replies, next_id: 1 })
    }

    /// Opens the WebSocket at `url` (`ws://...`).
    pub fn connect(&mut self, url: &str) -> Result<Connected, WebError> {
        let reply = self.request(json!({ "op": "connect", "url": url }), CLIENT_TIMEOUT)?;
        if reply["connected"] == true {
            return Ok(Connected::Open);
        }
        match reply["status"].as_u64().and_then(|status| u16::try_from(status).ok()) {
            Some(status) => Ok(Connected::Refused { status }),
            None => Err(WebError::Client(format!("the handshake failed without a status: {reply}"))),
        }
    }

    /// Sends a text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), WebError> {
        self.request(json!({ "op": "send", "text": text }), CLIENT_TIMEOUT).map(|_| ())
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, bytes: &[u8]) -> Result<(), WebError> {
        self.request(json!({ "op": "binary", "hex": crate::hex(bytes) }), CLIENT_TIMEOUT).map(|_| ())
    }

    /// Sends a ping and waits for its pong.
    pub fn ping(&mut self) -> Result<(), WebError> {
        self.request(json!({ "op": "ping", "wait_s": CLIENT_TIMEOUT.as_secs() }), CLIENT_TIMEOUT).map(|_| ())
    }

    /// The next message, waiting at most `wait` for it.
    pub fn receive(&mut self, wait: Duration) -> Result<WsEvent, WebError> {
        let reply = self.request(json!({ "op": "receive", "wait_s": wait.as_secs_f64() }), wait)?;
        let at = reply["at"].as_f64().unwrap_or(0.0);
        if let Some(text) = reply["text"].as_str() {
            return Ok(WsEvent::Text { text: text.to_string(), at });
        }
        if let Some(hex) = reply["binary"].as_str() {
            return Ok(WsEvent::Binary { bytes: decode_hex(hex)?, at });
        }
        if reply["silent"] == true {
            return Ok(WsEvent::Silent);
        }
        closed(&reply).map(WsEvent::Closed)
    }

    /// Closes with `code` and waits for the server's close frame; returns it and how many messages arrived
    /// before it that were never received.
    pub fn close(&mut self, code: u16) -> Result<(Closed, u64), WebError> {
        let reply = self.request(json!({ "op": "close", "code": code, "wait_s": 10 }), CLIENT_TIMEOUT)?;
        let unread = reply["unread"].as_u64().ok_or_else(|| unreadable(&reply))?;
        Ok((closed(&reply)?, unread))
    }

    /// Sends one request and waits (the wait plus a margin for the driver) for its answer.
    fn request(&mut self, mut request: Value, wait: Duration) -> Result<Value, WebError> {
        let id = self.next_id;
        self.next_id += 1;
        request["id"] = json!(id);
        let line = format!("{request}\n");
        self.stdin
            .write_all(line.as_bytes())
            .and_then(|()| self.stdin.flush())
            .map_err(|source| WebError::Io { action: "writing to the WebSocket driver", source })?;
        let waited = wait + Duration::from_secs(10);
        let deadline = std::time::Instant::now() + waited;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = match self.replies.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(WebError::Timeout { waiting_for: format!("answer to {request}"), waited })
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(WebError::Client(String::from("the WebSocket driver exited")))
                }
            };
            let reply: Value =
                serde_json::from_str(&line).map_err(|_| WebError::Unreadable { what: "driver reply", output: line })?;
            // An answer to an earlier request that timed out is stale.
            if reply["id"] != json!(id) {
                continue;
            }
            if let Some(error) = reply["error"].as_str() {
                return Err(WebError::Client(error.to_string()));
            }
            return Ok(reply);
        }
    }
}

impl Drop for WebSocket {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn closed(reply: &Value) -> Result<Closed, WebError> {
    let closed = reply.get("closed").ok_or_else(|| unreadable(reply))?;
    Ok(Closed {
        code: closed["code"].as_u64().and_then(|code| u16::try_from(code).ok()),
        reason: closed["reason"].as_str().map(String::from),
    })
}

fn unreadable(reply: &Value) -> WebError {
    WebError::Unreadable { what: "driver reply", output: reply.to_string() }
}

fn decode_hex(hex: &str) -> Result<Vec<u8>, WebError> {
    let bad = || WebError::Unreadable { what: "hex", output: hex.to_string() };
    if !hex.len().is_multiple_of(2) {
        return Err(bad());
    }
    (0..hex.len()).step_by(2).map(|at| u8::from_str_radix(&hex[at..at + 2], 16).map_err(|_| bad())).collect()
}
