//! The OTLP/JSON collector of the tests (`tools/otel-collector/collector.py`): started on a port of its choosing,
//! sent payloads through `curl`, asked what it received; and its `check` mode, for files.
//!
//! It runs on the Python of a virtual environment under `target/` that `cargo xtask setup` (and `cargo xtask
//! test`) fills with the official `opentelemetry-proto` and `protobuf` from `tools/otel-collector/requirements.txt`.
//!
//! ```no_run
//! use sis_testing::otel::{Collector, CollectorOptions};
//! let collector = Collector::start(CollectorOptions::default())?;
//! let reply = collector.post("/v1/traces", r#"{"resourceSpans":[]}"#)?;
//! assert_eq!((reply.status, reply.body.as_str()), (200, "{}"));
//! assert_eq!(collector.summary()?["requests"]["traces"], 1);
//! # Ok::<(), sis_testing::otel::CollectorError>(())
//! ```

use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::web::{Request, Transfer, WebClient, WebError};
use crate::workspace_root;

/// The collector script, from the workspace root.
pub const COLLECTOR_SCRIPT_RELATIVE_PATH: &str = "tools/otel-collector/collector.py";
/// The pinned, hashed Python packages the collector needs, from the workspace root.
pub const COLLECTOR_REQUIREMENTS_RELATIVE_PATH: &str = "tools/otel-collector/requirements.txt";
/// The virtual environment holding them, from the workspace root.
pub const COLLECTOR_VENV_RELATIVE_PATH: &str = "target/otel-collector-venv";
/// How long the collector may take to start listening (Python importing protobuf).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The Python of the collector's virtual environment.
pub fn collector_python() -> PathBuf {
    workspace_root().join(COLLECTOR_VENV_RELATIVE_PATH).join("bin/python")
}

/// Why the collector could not do what was asked.
#[derive(Debug)]
pub enum CollectorError {
    /// The collector's Python could not be started (is the virtual environment there?).
    Spawn(std::io::Error),
    /// It did not print `listening PORT` within [`START_TIMEOUT`]; what it printed instead.
    NotListening(String),
    /// Talking to it failed.
    Web(WebError),
    /// `collector.py check` failed to run, or printed something that is not its JSON.
    Check(String),
}

impl fmt::Display for CollectorError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CollectorError::Spawn(error) => write!(
                formatter,
                "cannot start {} ({error}): run `cargo xtask setup` to create it",
                collector_python().display()
            ),
            CollectorError::NotListening(output) => write!(formatter, "the collector did not start: {output:?}"),
            CollectorError::Web(error) => write!(formatter, "talking to the collector: {error}"),
            CollectorError::Check(message) => write!(formatter, "collector.py check: {message}"),
        }
    }
}

impl std::error::Error for CollectorError {}

impl From<WebError> for CollectorError {
    fn from(error: WebError) -> Self {
        CollectorError::Web(error)
    }
}

/// How the collector answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectorOptions {
    /// Requests answered `fail_status` without being read, before it accepts any.
    pub fail_first: u32,
    /// The status of those answers.
    pub fail_status: u16,
}

impl Default for CollectorOptions {
    fn default() -> Self {
        CollectorOptions { fail_first: 0, fail_status: 503 }
    }
}

/// A running collector on 127.0.0.1; killed on drop.
#[derive(Debug)]
pub struct Collector {
    child: Child,
    client: WebClient,
}

impl Collector {
    /// Starts `collector.py serve` on a port it picks and waits until it listens.
    pub fn start(options: CollectorOptions) -> Result<Collector, CollectorError> {
        let mut child = Command::new(collector_python())
            .arg(workspace_root().join(COLLECTOR_SCRIPT_RELATIVE_PATH))
            .args(["serve", "--port", "0"])
            .args(["--fail-first", &options.fail_first.to_string()])
            .args(["--fail-status", &options.fail_status.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(CollectorError::Spawn)?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CollectorError::NotListening(String::from("no stdout")));
        };
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = receiver.recv_timeout(START_TIMEOUT).unwrap_or_default();
        let port = line.trim().strip_prefix("listening ").and_then(|port| port.parse::<u16>().ok());
        match port {
            Some(port) => {
                let address = SocketAddr::from(([127, 0, 0, 1], port));
                Ok(Collector { child, client: WebClient::new(address) })
            }
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(CollectorError::NotListening(line))
            }
        }
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.client.address()
    }

    /// `POST path` with `body` as `application/json`.
    pub fn post(&self, path: &str, body: &str) -> Result<Transfer, CollectorError> {
        let request = Request::new("POST", path).body(body).header("Content-Type: application/json");
        Ok(self.client.send(&request)?)
    }

    /// Sends a request as given (for the tests of what it refuses).
    pub fn send(&self, request: &Request) -> Result<Transfer, CollectorError> {
        Ok(self.client.send(request)?)
    }

    /// `GET /summary`: everything it received and its checks across requests.
    pub fn summary(&self) -> Result<Value, CollectorError> {
        Ok(self.client.get("/summary", None)?.json()?)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `collector.py check` on `text` (OTLP/JSON requests, one a line): the summary when every line passes,
/// else the collector's error message as [`CollectorError::Check`].
pub fn check_lines(text: &str) -> Result<Value, CollectorError> {
    let directory = tempfile::tempdir().map_err(|error| CollectorError::Check(error.to_string()))?;
    let path = directory.path().join("otlp.jsonl");
    std::fs::write(&path, text).map_err(|error| CollectorError::Check(error.to_string()))?;
    let output = Command::new(collector_python())
        .arg(workspace_root().join(COLLECTOR_SCRIPT_RELATIVE_PATH))
        .arg("check")
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .map_err(CollectorError::Spawn)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let reply: Value = serde_json::from_str(stdout.trim()).map_err(|_| {
        CollectorError::Check(format!(
            "unreadable output {stdout:?}, stderr {:?}",
            String::from_utf8_lossy(&output.stderr)
        ))
    })?;
    match (output.status.success(), reply["error"].as_str()) {
        (true, None) => Ok(reply),
        (_, Some(message)) => Err(CollectorError::Check(message.to_string())),
        (false, None) => Err(CollectorError::Check(format!("exited with {}", output.status))),
    }
}
