//! Phase 6's judge, WebSocket side: connections, messages, metric subscriptions and their timing (on the
//! kernel's own `now_ns`), kernel events, reconnection.

use serde_json::{json, Value};

use super::judge::{at, check_sections, equals, moved};
use super::record::*;
use crate::web::{Closed, Connected};

/// How far a metrics push may be from its place on the schedule set at subscription (first push + k ×
/// interval), ns. The server schedules each push an interval after the previous one's due time, so lateness
/// does not add up; 100 ms leaves room for a loaded host in real time (in deterministic mode the pushes are
/// on time to the microsecond).
pub const SCHEDULE_TOLERANCE_NS: u64 = 100_000_000;
/// The default push interval of a subscription that names none, ms.
pub const DEFAULT_INTERVAL_MS: u64 = 1000;
/// Pushes the metrics subscription's silence must span at least (its interval is 250 ms).
pub const SILENT_INTERVALS: u64 = 4;
/// The exchange's replies, one per message of `observe::EXCHANGED` and the binary one: an error code, or
/// (for the unsubscription) the acknowledgement.
const EXCHANGE_REPLIES: [&str; 6] =
    ["bad-json", "unknown-topic", "interval-out-of-range", "unknown-field", "unsubscribed", "binary-unsupported"];

fn subscribed(interval_ms: u64) -> Value {
    json!({ "type": "subscribed", "topic": "metrics", "interval_ms": interval_ms })
}

fn unsubscribed() -> Value {
    json!({ "type": "unsubscribed", "topic": "metrics" })
}

/// The `now_ns` of the metrics frames in `seen`, in order.
fn push_times(seen: &[Seen]) -> Vec<u64> {
    metrics_frames(seen).filter_map(|frame| frame["now_ns"].as_u64()).collect()
}

fn metrics_frames(seen: &[Seen]) -> impl Iterator<Item = &Value> + Clone {
    seen.iter().filter_map(Seen::frame).filter(|frame| frame["type"] == "metrics")
}

/// `seen` is the acknowledgement of a subscription at `interval_ms` followed by `count` metrics frames, each with
/// every section; returns their push times.
fn subscription_frames(seen: &[Seen], interval_ms: u64, count: usize, what: &str) -> Result<Vec<u64>, String> {
    let expected = subscribed(interval_ms);
    if seen.first().and_then(Seen::frame) != Some(&expected) {
        return Err(format!("{what}: the subscription acknowledged with {expected}, got {:?}", seen.first()));
    }
    let frames: Vec<&Value> = seen[1..].iter().filter_map(Seen::frame).collect();
    if frames.len() != count || seen.len() != count + 1 || frames.iter().any(|frame| frame["type"] != "metrics") {
        return Err(format!("{what}: {count} metrics frames after the acknowledgement, got {:?}", &seen[1..]));
    }
    for frame in &frames {
        check_sections(&frame["metrics"])?;
    }
    let times = push_times(seen);
    if times.len() != count {
        return Err(format!("{what}: every frame has now_ns, got {times:?}"));
    }
    Ok(times)
}

/// `times` are increasing.
fn increasing(times: &[u64], what: &str) -> Result<(), String> {
    if times.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(format!("{what}: push times increase, got {times:?}"));
    }
    Ok(())
}

/// An admin token's handshake is accepted (101, checked by the client's own accept-key validation); while it is
/// open the server counts one upgrade, one 1xx response and exactly one open WebSocket; the client's close 1000 is
/// answered with 1000, and the server counts it closed by the peer and forgets the connection.
pub(super) fn websocket_connection(connection: &WsConnection) -> Result<(), String> {
    if connection.connected != Connected::Open {
        return Err(format!("the handshake with an admin token succeeds, got {:?}", connection.connected));
    }
    let (before, open, after) = (&connection.before, &connection.open, &connection.after);
    moved(before, open, "/app/websocket/upgrades", 1)?;
    moved(before, open, "/app/responses/informational", 1)?;
    equals(open, "/app/websocket/open", json!(1))?;
    equals(open, "/app/connections_open", json!(1))?;
    if connection.closed.code != Some(1000) {
        return Err(format!("the server answers close 1000 with 1000, got {:?}", connection.closed));
    }
    moved(before, after, "/app/websocket/closed_by_peer", 1)?;
    moved(before, after, "/app/connections_closed", 1)?;
    equals(after, "/app/websocket/open", json!(0))
}

/// Each message gets exactly one reply, in order: not JSON → `bad-json`, an unknown topic → `unknown-topic`, a
/// 10 ms interval → `interval-out-of-range`, an unknown field → `unknown-field`, an unsubscription →
/// `{"type":"unsubscribed","topic":"metrics"}`, a binary message → `binary-unsupported`; a ping is answered with
/// a pong; the server counts six messages in and six out.
pub(super) fn message_exchange(exchange: &Exchange) -> Result<(), String> {
    if exchange.replies.len() != EXCHANGE_REPLIES.len() {
        return Err(format!("{} replies, got {:?}", EXCHANGE_REPLIES.len(), exchange.replies));
    }
    for ((sent, seen), expected) in exchange.replies.iter().zip(EXCHANGE_REPLIES) {
        let frame = seen.frame().ok_or_else(|| format!("{sent}: a reply, got {seen:?}"))?;
        let matches = match expected {
            "unsubscribed" => *frame == unsubscribed(),
            code => frame["type"] == "error" && frame["error"]["code"] == code && frame["error"]["message"].is_string(),
        };
        if !matches {
            return Err(format!("{sent}: answered with {expected}, got {frame}"));
        }
    }
    exchange.pong.clone().map_err(|error| format!("a ping answered with a pong, got {error}"))?;
    moved(&exchange.before, &exchange.after, "/app/websocket/messages_in", 6)?;
    moved(&exchange.before, &exchange.after, "/app/websocket/messages_out", 6)
}

/// `{"subscribe":"metrics","interval_ms":250}` is acknowledged exactly, then metrics frames come with every
/// section; `{"unsubscribe":"metrics"}` is acknowledged, and from then on nothing comes: the next frame is the
/// acknowledgement of a new subscription made after the guest's uptime passed the last push by 1.5 s, and that
/// subscription's first push (due at once) is at least four 250 ms intervals after the last one. The server
/// counts four messages in, and out exactly the frames the client received.
pub(super) fn metric_subscription(subscription: &Subscription) -> Result<(), String> {
    let times = subscription_frames(&subscription.subscribed, 250, 4, "a 250 ms subscription")?;
    increasing(&times, "the 250 ms subscription")?;
    let after_unsubscribe = &subscription.unsubscribed;
    if after_unsubscribe.last().and_then(Seen::frame) != Some(&unsubscribed())
        || metrics_frames(after_unsubscribe).count() + 1 != after_unsubscribe.len()
    {
        return Err(format!(
            "metrics frames then the acknowledgement of the unsubscription, got {after_unsubscribe:?}"
        ));
    }
    let last_push =
        push_times(&subscription.subscribed).into_iter().chain(push_times(after_unsubscribe)).max().unwrap_or(0);
    if subscription.silence_until_ns < last_push + super::observe::SILENCE_NS {
        return Err(format!(
            "the silence lasts 1.5 s of guest time after the last push at {last_push} ns, got until {}",
            subscription.silence_until_ns
        ));
    }
    let resumed =
        subscription_frames(&subscription.resubscribed, 60_000, 1, "the next subscription (nothing in the silence)")?;
    let silence = resumed[0].saturating_sub(last_push);
    if silence < SILENT_INTERVALS * 250_000_000 {
        return Err(format!("no push for at least {SILENT_INTERVALS} intervals of 250 ms after unsubscribing, got the next {silence} ns later"));
    }
    if subscription.unsubscribed_again != [Seen::Frame(unsubscribed())] {
        return Err(format!(
            "a 60 s subscription pushes once, then is unsubscribed, got {:?}",
            subscription.unsubscribed_again
        ));
    }
    let received = subscription.subscribed.len()
        + subscription.unsubscribed.len()
        + subscription.resubscribed.len()
        + subscription.unsubscribed_again.len();
    moved(&subscription.before, &subscription.after, "/app/websocket/messages_in", 4)?;
    moved(&subscription.before, &subscription.after, "/app/websocket/messages_out", received as u64)
}

/// Frames at 100 ms follow the kernel's state as it changes: the meta-agent's confidence threshold reads 600
/// in every frame before `autoctl conf-threshold 700` on the console, 700 from some frame on, and 600 again
/// after `autoctl conf-threshold 600`: the values run 600, 700, 600 and nothing else. Every frame is read at
/// push time: its uptime is at or after its `now_ns`, push times increase, and the network's poll count never
/// goes back.
pub(super) fn metrics_stream(stream: &Stream) -> Result<(), String> {
    let before = subscription_frames(&stream.before, 100, 3, "a 100 ms subscription")?;
    for (reply, what) in
        [(&stream.raise, "autoctl conf-threshold 700"), (&stream.restore, "autoctl conf-threshold 600")]
    {
        if reply["ok"] != true {
            return Err(format!("{what} succeeds, got {reply}"));
        }
    }
    let all: Vec<Seen> = stream.before.iter().chain(&stream.raised).chain(&stream.restored).cloned().collect();
    if all[1..].iter().any(|seen| seen.frame().is_none_or(|frame| frame["type"] != "metrics")) {
        return Err(format!("only metrics frames while subscribed, got {:?}", &all[1..]));
    }
    let frames: Vec<&Value> = metrics_frames(&all).collect();
    let thresholds: Vec<u64> = frames
        .iter()
        .map(|frame| at(&frame["metrics"], "/confidence_threshold_per_mille"))
        .collect::<Result<_, _>>()?;
    if thresholds[..before.len()].iter().any(|threshold| *threshold != 600) {
        return Err(format!("600 before the change, got {:?}", &thresholds[..before.len()]));
    }
    let mut runs = thresholds.clone();
    runs.dedup();
    if runs != [600, 700, 600] {
        return Err(format!("the threshold runs 600, 700, 600 over the stream, got runs {runs:?}"));
    }
    let times = push_times(&all);
    increasing(&times, "the 100 ms stream")?;
    let mut polls = 0;
    for frame in &frames {
        let (now, uptime) = (at(frame, "/now_ns")?, at(&frame["metrics"], "/uptime_ns")?);
        if uptime < now {
            return Err(format!("figures read at push time (uptime_ns >= now_ns), got {uptime} < {now}"));
        }
        let frame_polls = at(&frame["metrics"], "/network_polls")?;
        if frame_polls < polls {
            return Err(format!("the network's poll count never goes back, got {polls} then {frame_polls}"));
        }
        polls = frame_polls;
    }
    Ok(())
}

/// Pushes follow the interval asked for, on the kernel's clock (`now_ns`): at 200 ms, nine frames, frame k
/// within 100 ms of first + k × 200 ms; without an interval, the acknowledgement says 1000 ms and three frames
/// keep that schedule within the same tolerance.
pub(super) fn update_interval(interval: &Interval) -> Result<(), String> {
    for (seen, interval_ms, count) in [(&interval.fast, 200, 9), (&interval.default, DEFAULT_INTERVAL_MS, 3)] {
        let what = format!("a {interval_ms} ms subscription");
        let times = subscription_frames(seen, interval_ms, count, &what)?;
        let first = times[0];
        for (k, time) in times.iter().enumerate() {
            let due = first + k as u64 * interval_ms * 1_000_000;
            if time.abs_diff(due) > SCHEDULE_TOLERANCE_NS {
                let offsets: Vec<i128> = times
                    .iter()
                    .enumerate()
                    .map(|(k, time)| *time as i128 - (first + k as u64 * interval_ms * 1_000_000) as i128)
                    .collect();
                return Err(format!(
                    "{what}: push k within {} ms of first + k x {interval_ms} ms, got offsets {offsets:?} ns",
                    SCHEDULE_TOLERANCE_NS / 1_000_000
                ));
            }
        }
    }
    Ok(())
}

/// A WebSocket closed by its client (1000, answered with 1000) is forgotten (nothing open); a new one with the
/// same token starts with no subscription (its unsubscription is acknowledged with no metrics frame before it),
/// and a new subscription pushes frames later than the old connection's last. After `webctl stop` reset a
/// subscribed WebSocket and `webctl start` brought the server back, the same token connects again and
/// subscribes, with frames later than the last before the stop.
pub(super) fn reconnection(reconnection: &Reconnection, shutdown: &Shutdown) -> Result<(), String> {
    let first = subscription_frames(&reconnection.first, 100, 3, "the first connection")?;
    if reconnection.first_closed != (Closed { code: Some(1000), reason: Some(String::new()) }) {
        return Err(format!("the first connection closes with 1000, got {:?}", reconnection.first_closed));
    }
    equals(&reconnection.between, "/app/websocket/open", json!(0))?;
    equals(&reconnection.between, "/app/connections_open", json!(0))?;
    if reconnection.second_unsubscribe != [Seen::Frame(unsubscribed())] {
        return Err(format!(
            "the second connection starts unsubscribed (only the acknowledgement), got {:?}",
            reconnection.second_unsubscribe
        ));
    }
    let second = subscription_frames(&reconnection.second, 100, 3, "the second connection")?;
    if second[0] <= first[2] {
        return Err(format!("the second connection's frames come after the first's, got {second:?} after {first:?}"));
    }
    moved(&reconnection.between, &reconnection.after, "/app/websocket/upgrades", 1)?;
    moved(&reconnection.between, &reconnection.after, "/app/websocket/closed_by_peer", 1)?;
    let before_stop = push_times(&shutdown.open_before);
    let restarted = subscription_frames(&shutdown.reconnected, 100, 2, "a connection after the restart")?;
    match before_stop.last() {
        Some(last) if restarted[0] > *last => Ok(()),
        _ => Err(format!(
            "frames after the restart come after the last before the stop, got {restarted:?} after {before_stop:?}"
        )),
    }
}

/// The events contract (docs/phases.md): `{"subscribe":"events"}` is acknowledged with
/// `{"type":"subscribed","topic":"events"}`; a stress test run through `POST /api/command` then pushes event
/// frames whose `seq` goes up by one (or by one plus the count of an `events.missed` notice) and whose `at_ms`
/// never goes back; the run has a `stress.started` (test memory, the report's seed, duration 1500 ms), at least
/// one `stress.progress` (percent 0..=100, never decreasing) and a `stress.finished` (elapsed at least the
/// duration, the report's outcome as its status), in that order.
pub(super) fn event_stream(events: &Events) -> Result<(), String> {
    let expected = json!({ "type": "subscribed", "topic": "events" });
    if events.reply.frame() != Some(&expected) {
        let got = events.reply.frame().map_or_else(|| format!("{:?}", events.reply), Value::to_string);
        return Err(format!("{{\"subscribe\":\"events\"}} acknowledged with {expected}, got {got}"));
    }
    let stress = events.stress.as_ref().ok_or("the stress test's reply, got none")?;
    if stress.status != 200 || stress.body["command"] != "stresstest memory" || !stress.body["ok"].is_boolean() {
        return Err(format!("{}: 200 with its report, got {} {}", super::observe::STRESS, stress.status, stress.body));
    }
    let seed = at(&stress.body, "/memory/config/seed")?;
    // The report's outcome as the event names it (docs/commands.md): passed when its status counts as success.
    let outcome = if stress.body["ok"] == true { "passed" } else { "failed" };
    let mut published = Vec::new();
    let (mut previous, mut skipped): (Option<(u64, u64)>, u64) = (None, 0);
    for seen in &events.frames {
        let frame = seen.frame().filter(|frame| frame["type"] == "event");
        let event =
            &frame.ok_or_else(|| format!("event frames up to the run's stress.finished, got {seen:?}"))?["event"];
        if event["kind"] == "events.missed" {
            skipped += at(event, "/count")?;
            continue;
        }
        let (seq, at_ms) = (at(event, "/seq")?, at(event, "/at_ms")?);
        if !event["kind"].is_string() {
            return Err(format!("every event has a kind, got {event}"));
        }
        if let Some((previous_seq, previous_at_ms)) = previous {
            if seq != previous_seq + 1 + skipped {
                return Err(format!(
                    "seq {} after {previous_seq} ({skipped} missed), got {seq}",
                    previous_seq + 1 + skipped
                ));
            }
            if at_ms < previous_at_ms {
                return Err(format!("at_ms never goes back, got {at_ms} after {previous_at_ms}"));
            }
        }
        (previous, skipped) = (Some((seq, at_ms)), 0);
        published.push(event);
    }
    let started = published
        .iter()
        .find(|event| event["kind"] == "stress.started" && event["test"] == "memory")
        .ok_or_else(|| format!("a stress.started event of the memory test, got kinds {:?}", kinds(&published)))?;
    let run = at(started, "/run")?;
    equals(started, "/seed", json!(seed))?;
    equals(started, "/duration_ms", json!(1500))?;
    let of_run: Vec<&&Value> = published
        .iter()
        .filter(|event| event["run"] == run && event["kind"].as_str().is_some_and(|kind| kind.starts_with("stress.")))
        .collect();
    let kinds_of_run = kinds(&of_run.iter().map(|event| **event).collect::<Vec<_>>());
    let progress_count = kinds_of_run.len().saturating_sub(2);
    if kinds_of_run.len() < 3
        || kinds_of_run[0] != "stress.started"
        || kinds_of_run[kinds_of_run.len() - 1] != "stress.finished"
        || kinds_of_run[1..=progress_count].iter().any(|kind| kind != "stress.progress")
    {
        return Err(format!(
            "run {run}: started, progress at least once, finished, in that order, got {kinds_of_run:?}"
        ));
    }
    let mut percent = 0;
    for event in &of_run[1..=progress_count] {
        equals(event, "/test", json!("memory"))?;
        at(event, "/elapsed_ms")?;
        let now = at(event, "/percent")?;
        if now > 100 || now < percent {
            return Err(format!("run {run}: percent within 0..=100 and never decreasing, got {now} after {percent}"));
        }
        percent = now;
    }
    let finished = of_run[of_run.len() - 1];
    equals(finished, "/test", json!("memory"))?;
    equals(finished, "/status", json!(outcome))?;
    let elapsed = at(finished, "/elapsed_ms")?;
    if elapsed < 1500 {
        return Err(format!("run {run}: finished after at least 1500 ms, got elapsed_ms {elapsed}"));
    }
    Ok(())
}

fn kinds(events: &[&Value]) -> Vec<String> {
    events.iter().map(|event| event["kind"].as_str().unwrap_or("?").to_string()).collect()
}
