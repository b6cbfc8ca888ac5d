//! WebSocket messages: subscriptions to metrics and events, and the frames pushed to subscribers.

use alloc::string::{String, ToString};

use serde_json::{json, Value};

use super::{MetricsSubscription, Session};

/// Shortest metrics push interval accepted, ms.
pub const MIN_INTERVAL_MS: u64 = 50;
/// Longest metrics push interval accepted, ms.
pub const MAX_INTERVAL_MS: u64 = 60_000;
/// Interval when a subscription names none, ms.
pub const DEFAULT_INTERVAL_MS: u64 = 1000;

/// Handles one text message from a client and returns the reply frame.
///
/// Accepted: `{"subscribe":"metrics","interval_ms":N}` (N in 50..=60000, default 1000; the first push is due at
/// once), `{"subscribe":"events"}`, `{"unsubscribe":"metrics"}`, `{"unsubscribe":"events"}`, and
/// `{"clock":"now"}`, answered `{"type":"clock","now_ns":T}` with `clock_ns()` read while answering (a client
/// correlates its clock with the server's from the round trip: T was read between its send and its receipt).
/// Anything else gets `{"type":"error","error":{"code":...,"message":...}}` and changes nothing. While the
/// kernel publishes no events (`events_published` false), an events subscription is refused with
/// `not-implemented` rather than acknowledged and left silent.
pub(super) fn handle_text(
    session: &mut Session,
    text: &str,
    now_ns: u64,
    events_published: bool,
    clock_ns: impl FnOnce() -> u64,
) -> String {
    match apply(session, text, now_ns, events_published, clock_ns) {
        Ok(reply) => reply.to_string(),
        Err((code, message)) => error_frame(code, message),
    }
}

fn apply(
    session: &mut Session,
    text: &str,
    now_ns: u64,
    events_published: bool,
    clock_ns: impl FnOnce() -> u64,
) -> Result<Value, (&'static str, &'static str)> {
    let value: Value = serde_json::from_str(text).map_err(|_| ("bad-json", "messages are JSON objects"))?;
    let object = value.as_object().ok_or(("bad-json", "messages are JSON objects"))?;
    let known = ["subscribe", "unsubscribe", "interval_ms", "clock"];
    if object.keys().any(|key| !known.contains(&key.as_str())) {
        return Err(("unknown-field", "fields are subscribe, unsubscribe, interval_ms and clock"));
    }
    if let Some(clock) = object.get("clock") {
        if object.len() != 1 || clock.as_str() != Some("now") {
            return Err(("unknown-message", "the clock is asked for with {\"clock\":\"now\"} alone"));
        }
        return Ok(json!({ "type": "clock", "now_ns": clock_ns() }));
    }
    match (object.get("subscribe"), object.get("unsubscribe")) {
        (Some(topic), None) => {
            let topic = topic.as_str().ok_or(("unknown-topic", "topics are \"metrics\" and \"events\""))?;
            match topic {
                "metrics" => {
                    let interval_ms = match object.get("interval_ms") {
                        None => DEFAULT_INTERVAL_MS,
                        Some(value) => value
                            .as_u64()
                            .filter(|ms| (MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(ms))
                            .ok_or(("interval-out-of-range", "interval_ms must be an integer in 50..=60000"))?,
                    };
                    session.metrics =
                        Some(MetricsSubscription { interval_ns: interval_ms * 1_000_000, next_due_ns: now_ns });
                    Ok(json!({ "type": "subscribed", "topic": "metrics", "interval_ms": interval_ms }))
                }
                "events" if !events_published => {
                    Err(("not-implemented", "the kernel publishes no events yet; metrics can be subscribed to"))
                }
                "events" if !object.contains_key("interval_ms") => {
                    session.events = true;
                    Ok(json!({ "type": "subscribed", "topic": "events" }))
                }
                "events" => Err(("unknown-field", "interval_ms applies to metrics only")),
                _ => Err(("unknown-topic", "topics are \"metrics\" and \"events\"")),
            }
        }
        (None, Some(topic)) if !object.contains_key("interval_ms") => match topic.as_str() {
            Some("metrics") => {
                session.metrics = None;
                Ok(json!({ "type": "unsubscribed", "topic": "metrics" }))
            }
            Some("events") => {
                session.events = false;
                session.events_missed = 0;
                Ok(json!({ "type": "unsubscribed", "topic": "events" }))
            }
            _ => Err(("unknown-topic", "topics are \"metrics\" and \"events\"")),
        },
        _ => Err(("unknown-message", "send one of subscribe, unsubscribe or clock")),
    }
}

/// `{"type":"error","error":{"code":CODE,"message":MESSAGE}}`.
pub(super) fn error_frame(code: &str, message: &str) -> String {
    json!({ "type": "error", "error": { "code": code, "message": message } }).to_string()
}

/// `{"type":"metrics","now_ns":NOW,"metrics":{...}}`.
pub(super) fn metrics_frame(now_ns: u64, metrics: &Value) -> String {
    json!({ "type": "metrics", "now_ns": now_ns, "metrics": metrics }).to_string()
}

/// `{"type":"event","event":{...}}`.
pub(super) fn event_frame(event: &Value) -> String {
    json!({ "type": "event", "event": event }).to_string()
}
