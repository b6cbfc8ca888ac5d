//! The SIS instance the daemon owns: booted in QEMU with its web server forwarded to a free local port, driven
//! through `POST /api/command` and followed through `/ws` (metrics every [`METRICS_INTERVAL_MS`] and events).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sis_testing::{free_local_port, hex, host_random_bytes, QemuConfig, Sis};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Interval of the metrics the daemon subscribes to, ms.
pub const METRICS_INTERVAL_MS: u64 = 250;

/// What the kernel pushes over `/ws`.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A metrics push: the kernel's time and its figures.
    Metrics {
        /// Kernel uptime, ns.
        now_ns: u64,
        /// `GET /api/metrics`'s object.
        metrics: Value,
    },
    /// A kernel event (docs/commands.md, `eventctl`).
    Event(Value),
    /// The link to the kernel ended (QEMU exited or the connection broke).
    Closed(String),
}

/// A booted SIS.
pub struct Kernel {
    sis: Mutex<Sis>,
    /// The kernel's web server, forwarded to the host.
    pub address: SocketAddr,
    token: String,
    http: reqwest::Client,
}

/// Why a command did not come back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkError(pub String);

impl Kernel {
    /// Boots SIS (`kernel` or the workspace's release build) with the web server and an admin token of the
    /// host's random bytes. Blocks until its shell answers.
    pub fn boot(kernel: Option<PathBuf>) -> Result<Kernel, String> {
        let token = hex(&host_random_bytes().map_err(|error| format!("no host randomness: {error}"))?);
        let port = free_local_port().map_err(|error| format!("no free local port: {error}"))?;
        let mut config = QemuConfig::new().web_server(port, Some(token.clone())).timeout(Duration::from_secs(120));
        if let Some(kernel) = kernel {
            config = config.kernel(kernel);
        }
        let address = config.forwarded_address().ok_or("the web server's port is not forwarded")?;
        let sis = Sis::boot(&config).map_err(|error| format!("SIS did not boot: {error}"))?;
        let http = reqwest::Client::builder().build().map_err(|error| format!("HTTP client: {error}"))?;
        Ok(Kernel { sis: Mutex::new(sis), address, token, http })
    }

    /// Whether QEMU still runs.
    pub fn running(&self) -> bool {
        self.sis.lock().map(|mut sis| sis.is_running()).unwrap_or(false)
    }

    /// QEMU's process ID.
    pub fn pid(&self) -> Option<u32> {
        self.sis.lock().ok().map(|sis| sis.pid())
    }

    /// Runs `line` through `POST /api/command` and returns the kernel's JSON reply (whatever its `ok`); waits at
    /// most `timeout`.
    pub async fn command(&self, line: &str, timeout: Duration) -> Result<Value, LinkError> {
        let response = self
            .http
            .post(format!("http://{}/api/command", self.address))
            .bearer_auth(&self.token)
            .json(&json!({ "command": line }))
            .timeout(timeout)
            .send()
            .await
            .map_err(|error| LinkError(format!("the kernel did not answer: {error}")))?;
        let status = response.status();
        let body: Value =
            response.json().await.map_err(|error| LinkError(format!("unreadable reply ({status}): {error}")))?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(LinkError(format!("the kernel answered {status}: {body}")))
        }
    }

    /// Follows `/ws` (metrics and events) into `frames` until the connection ends; the last frame is
    /// [`Frame::Closed`].
    pub async fn follow(&self, frames: mpsc::Sender<Frame>) {
        let reason = match self.follow_inner(&frames).await {
            Ok(()) => String::from("the kernel closed the WebSocket"),
            Err(error) => error,
        };
        let _ = frames.send(Frame::Closed(reason)).await;
    }

    async fn follow_inner(&self, frames: &mpsc::Sender<Frame>) -> Result<(), String> {
        let url = format!("ws://{}/ws?token={}", self.address, self.token);
        let (mut socket, _) =
            tokio_tungstenite::connect_async(&url).await.map_err(|error| format!("WebSocket: {error}"))?;
        for subscription in
            [json!({ "subscribe": "events" }), json!({ "subscribe": "metrics", "interval_ms": METRICS_INTERVAL_MS })]
        {
            socket
                .send(Message::text(subscription.to_string()))
                .await
                .map_err(|error| format!("WebSocket send: {error}"))?;
        }
        while let Some(message) = socket.next().await {
            let message = message.map_err(|error| format!("WebSocket: {error}"))?;
            let Message::Text(text) = message else { continue };
            let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else { continue };
            let frame = match value["type"].as_str() {
                Some("metrics") => {
                    Frame::Metrics { now_ns: value["now_ns"].as_u64().unwrap_or(0), metrics: value["metrics"].clone() }
                }
                Some("event") => Frame::Event(value["event"].clone()),
                Some("error") => return Err(format!("the kernel refused a subscription: {value}")),
                _ => continue,
            };
            if frames.send(frame).await.is_err() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Stops QEMU.
    pub fn kill(&self) {
        if let Ok(mut sis) = self.sis.lock() {
            sis.kill();
        }
    }
}
