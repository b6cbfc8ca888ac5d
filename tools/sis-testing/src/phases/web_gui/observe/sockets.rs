//! The session's WebSocket steps: connection, messages, subscriptions, the stop and restart, events.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::super::record::*;
use super::{Session, MESSAGE_WAIT, PLAIN_REQUEST, REFUSED_WAIT};
use crate::phases::web_gui::GUEST_PORT;
use crate::web::{Connected, WebSocket};

/// Guest time the metrics subscription stays silent after unsubscribing, at least (six 250 ms intervals).
pub const SILENCE_NS: u64 = 1_500_000_000;
/// Most frames read while waiting for one that shows a change.
const MAX_FRAMES: usize = 1_000;

impl Session {
    pub(super) fn connection(&mut self) -> Step<WsConnection> {
        let before = self.settled()?;
        let (mut socket, connected) =
            self.client.websocket(Some(&self.admin)).map_err(|error| format!("a WebSocket: {error}"))?;
        if connected != Connected::Open {
            return Err(format!("the handshake with an admin token succeeds, got {connected:?}"));
        }
        let open = self.console("webctl status")?;
        let (closed, _) = socket.close(1000).map_err(|error| format!("closing: {error}"))?;
        drop(socket);
        let after = self.settled()?;
        Ok(WsConnection { before, connected, open, closed, after })
    }

    pub(super) fn exchange(&mut self) -> Step<Exchange> {
        self.settled()?;
        let mut socket = self.websocket(&self.admin.clone())?;
        let before = self.console("webctl status")?;
        let mut replies = Vec::new();
        for message in EXCHANGED {
            send(&mut socket, message)?;
            replies.push((message.to_string(), receive(&mut socket)?));
        }
        socket.send_binary(&BINARY).map_err(|error| format!("a binary message: {error}"))?;
        replies.push((format!("binary:{}", crate::hex(&BINARY)), receive(&mut socket)?));
        let pong = socket.ping().map_err(|error| format!("a ping: {error}"));
        let after = self.console("webctl status")?;
        close(socket)?;
        Ok(Exchange { before, replies, pong, after })
    }

    pub(super) fn subscription(&mut self) -> Step<Subscription> {
        self.settled()?;
        let mut socket = self.websocket(&self.admin.clone())?;
        let before = self.console("webctl status")?;
        send(&mut socket, r#"{"subscribe":"metrics","interval_ms":250}"#)?;
        let subscribed = receive_count(&mut socket, 5)?;
        send(&mut socket, r#"{"unsubscribe":"metrics"}"#)?;
        let unsubscribed = receive_until(&mut socket, |frame| frame["type"] == "unsubscribed")?;
        let last_push =
            subscribed.iter().chain(&unsubscribed).filter_map(Seen::frame).filter_map(|f| f["now_ns"].as_u64()).max();
        let silence_until_ns = self.wait_guest(last_push.unwrap_or(0) + SILENCE_NS)?;
        send(&mut socket, r#"{"subscribe":"metrics","interval_ms":60000}"#)?;
        let resubscribed = receive_count(&mut socket, 2)?;
        send(&mut socket, r#"{"unsubscribe":"metrics"}"#)?;
        let unsubscribed_again = receive_until(&mut socket, |frame| frame["type"] == "unsubscribed")?;
        let after = self.console("webctl status")?;
        close(socket)?;
        Ok(Subscription { before, subscribed, unsubscribed, silence_until_ns, resubscribed, unsubscribed_again, after })
    }

    /// Waits until the guest's uptime reaches `until_ns`; returns the uptime read then.
    fn wait_guest(&mut self, until_ns: u64) -> Step<u64> {
        let deadline = Instant::now() + MESSAGE_WAIT;
        loop {
            let uptime = self.uptime_ns()?;
            if uptime >= until_ns {
                return Ok(uptime);
            }
            if Instant::now() > deadline {
                return Err(format!("guest uptime {until_ns} ns within {} s, got {uptime}", MESSAGE_WAIT.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(super) fn stream(&mut self) -> Step<Stream> {
        self.settled()?;
        let mut socket = self.websocket(&self.admin.clone())?;
        send(&mut socket, r#"{"subscribe":"metrics","interval_ms":100}"#)?;
        let before = receive_count(&mut socket, 4)?;
        let shows =
            |per_mille: u64| move |frame: &Value| frame["metrics"]["confidence_threshold_per_mille"] == per_mille;
        let raise = self.console("autoctl conf-threshold 700")?;
        let raised = receive_until(&mut socket, shows(700))?;
        let restore = self.console("autoctl conf-threshold 600")?;
        let restored = receive_until(&mut socket, shows(600))?;
        close(socket)?;
        Ok(Stream { before, raise, raised, restore, restored })
    }

    pub(super) fn interval(&mut self) -> Step<Interval> {
        self.settled()?;
        let mut socket = self.websocket(&self.admin.clone())?;
        send(&mut socket, r#"{"subscribe":"metrics","interval_ms":200}"#)?;
        let fast = receive_count(&mut socket, 10)?;
        send(&mut socket, r#"{"unsubscribe":"metrics"}"#)?;
        receive_until(&mut socket, |frame| frame["type"] == "unsubscribed")?;
        send(&mut socket, r#"{"subscribe":"metrics"}"#)?;
        let default = receive_count(&mut socket, 4)?;
        close(socket)?;
        Ok(Interval { fast, default })
    }

    pub(super) fn reconnection(&mut self) -> Step<Reconnection> {
        self.settled()?;
        let admin = self.admin.clone();
        let mut socket = self.websocket(&admin)?;
        send(&mut socket, r#"{"subscribe":"metrics","interval_ms":100}"#)?;
        let first = receive_count(&mut socket, 4)?;
        let (first_closed, _) = socket.close(1000).map_err(|error| format!("closing: {error}"))?;
        drop(socket);
        let between = self.settled()?;
        let mut socket = self.websocket(&admin)?;
        send(&mut socket, r#"{"unsubscribe":"metrics"}"#)?;
        let second_unsubscribe = receive_until(&mut socket, |frame| frame["type"] == "unsubscribed")?;
        send(&mut socket, r#"{"subscribe":"metrics","interval_ms":100}"#)?;
        let second = receive_count(&mut socket, 4)?;
        close(socket)?;
        let after = self.settled()?;
        Ok(Reconnection { first, first_closed, between, second_unsubscribe, second, after })
    }

    pub(super) fn shutdown(&mut self) -> Step<Shutdown> {
        self.settled()?;
        let admin = self.admin.clone();
        let mut socket = self.websocket(&admin)?;
        send(&mut socket, r#"{"subscribe":"metrics","interval_ms":100}"#)?;
        let open_before = receive_count(&mut socket, 3)?;
        let stop = self.console("webctl stop")?;
        let websocket_end = receive_end(&mut socket)?;
        drop(socket);
        let stopped = self.settled()?;
        let stop_again = self.console("webctl stop")?;
        let net_before = self.console("netctl stats")?;
        let refused = self
            .client
            .raw(PLAIN_REQUEST, REFUSED_WAIT)
            .map_err(|error| format!("a request while stopped: {error}"))?;
        let net_after = self.console("netctl stats")?;
        let status_refused = self.console("webctl status")?;
        let start = self.console(&format!("webctl start --port {GUEST_PORT}"))?;
        let back = self.metrics(&admin)?;
        let status_back = self.settled()?;
        let mut socket = self.websocket(&admin)?;
        send(&mut socket, r#"{"subscribe":"metrics","interval_ms":100}"#)?;
        let reconnected = receive_count(&mut socket, 3)?;
        close(socket)?;
        Ok(Shutdown {
            open_before,
            stop,
            websocket_end,
            stopped,
            stop_again,
            net_before,
            refused,
            net_after,
            status_refused,
            start,
            back,
            status_back,
            reconnected,
        })
    }

    pub(super) fn events(&mut self) -> Step<Events> {
        self.settled()?;
        let admin = self.admin.clone();
        let mut socket = self.websocket(&admin)?;
        send(&mut socket, r#"{"subscribe":"events"}"#)?;
        let reply = receive(&mut socket)?;
        if reply.frame().is_none_or(|frame| frame["type"] != "subscribed") {
            close(socket)?;
            return Ok(Events { reply, stress: None, frames: Vec::new() });
        }
        let stress = self.post(&admin, STRESS)?;
        let frames = receive_until(&mut socket, |frame| frame["event"]["kind"] == "stress.finished")?;
        close(socket)?;
        Ok(Events { reply, stress: Some(stress), frames })
    }
}

/// Text messages of the exchange, each answered by one frame.
pub const EXCHANGED: [&str; 5] = [
    "hello",
    r#"{"subscribe":"weather"}"#,
    r#"{"subscribe":"metrics","interval_ms":10}"#,
    r#"{"subscribe":"metrics","every":1}"#,
    r#"{"unsubscribe":"metrics"}"#,
];
/// The binary message of the exchange.
pub const BINARY: [u8; 3] = [1, 2, 3];
/// The stress test the event stream follows: a fixed seed, so its events and report replay (a seed from the
/// clock once met five refused allocations in a deterministic run and reported a partial pass).
pub const STRESS: &str = "stresstest memory --duration 1500 --seed 6";

fn send(socket: &mut WebSocket, text: &str) -> Step<()> {
    socket.send_text(text).map_err(|error| format!("sending {text}: {error}"))
}

pub(super) fn receive(socket: &mut WebSocket) -> Step<Seen> {
    socket.receive(MESSAGE_WAIT).map(Seen::from_event).map_err(|error| format!("receiving: {error}"))
}

/// `count` messages, or fewer when the connection ends or falls silent (the last one then says which).
fn receive_count(socket: &mut WebSocket, count: usize) -> Step<Vec<Seen>> {
    let mut seen = Vec::new();
    while seen.len() < count {
        let next = receive(socket)?;
        let done = next.frame().is_none();
        seen.push(next);
        if done {
            break;
        }
    }
    Ok(seen)
}

/// Messages up to and including the first frame for which `until` holds, or up to the end, a silence or
/// [`MAX_FRAMES`].
fn receive_until(socket: &mut WebSocket, until: impl Fn(&Value) -> bool) -> Step<Vec<Seen>> {
    let mut seen = Vec::new();
    while seen.len() < MAX_FRAMES {
        let next = receive(socket)?;
        let done = next.frame().is_none_or(&until);
        seen.push(next);
        if done {
            break;
        }
    }
    Ok(seen)
}

/// Reads until the connection ends (or falls silent); returns that last event.
fn receive_end(socket: &mut WebSocket) -> Step<Seen> {
    for _ in 0..MAX_FRAMES * 10 {
        let next = receive(socket)?;
        if next.frame().is_none() {
            return Ok(next);
        }
    }
    Err(format!("the end of a WebSocket within {} messages", MAX_FRAMES * 10))
}

fn close(mut socket: WebSocket) -> Step<()> {
    socket.close(1000).map(|_| ()).map_err(|error| format!("closing: {error}"))
}
