//! Phase 9, agentic platform: one deterministic boot installs the example WebAssembly agents, runs the seed's
//! `agentsys test-fs-list` inside and outside its capability, runs a lister, a chatty agent, a capability violator,
//! a sender of malformed messages and a crasher under an on-failure policy together, then reads status, audit and
//! capabilities. The judge reads exact figures: every stop reason, every call counted, every refused call audited.

use serde_json::Value;

use super::judge::{ok, refused};
use super::Verdict;

/// The probe's commands, one JSON reply each ([`REPLIES`] of them).
pub const AGENTIC_COMMANDS: &str = "mkdir /tmp --json; agentsys examples install --dir /tmp --json; \
     agentsys test-fs-list /tmp --json; agentsys test-fs-list /tmp/../etc --json; \
     agentsys load /tmp/file-lister.wasm --caps fs.list:/tmp,fs.read:/tmp/*,log --json; \
     agentsys load /tmp/cap-violator.wasm --caps log,fs.read:/tmp/** --json; \
     agentsys load /tmp/malformed.wasm --caps log --json; \
     agentsys load /tmp/crasher.wasm --caps log --restart on-failure --backoff-ms 50 --max-restarts 2 --json; \
     agentsys load /tmp/chatty.wasm --caps log --json; agentsys load /tmp/spin.wasm --caps fs.read:tmp --json; \
     agentsys start file-lister --json; agentsys start cap-violator --json; agentsys start malformed --json; \
     agentsys start crasher --json; agentsys start chatty --json; sleep 2000 --json; agentsys status --json; \
     agentsys audit --agent cap-violator --denied --json; agentsys audit --agent file-lister --limit 2048 --json; \
     agentsys audit --agent test-fs-list --json; agentsys caps cap-violator --json; agentsys stop nobody --json";

/// Replies [`AGENTIC_COMMANDS`] prints.
const REPLIES: usize = 22;

/// The phase's tests: all four.
const JUDGED: [&str; 4] = ["Protocol tests", "Capability tests", "Audit tests", "ASM supervision tests"];

/// What `agentsys examples install --dir /tmp` puts in `/tmp`, as FS_LIST names it (sorted): one file per example
/// agent in `agents/`.
pub const TMP_ENTRIES: [&str; 9] = [
    "cap-violator.wasm",
    "chatty.wasm",
    "crasher.wasm",
    "file-lister.wasm",
    "inferrer.wasm",
    "malformed.wasm",
    "memory-bomb.wasm",
    "metrics-watcher.wasm",
    "spin.wasm",
];

/// The file lister's calls: a list, a read and a log for each entry of `/tmp`, a summary.
const LISTER_CALLS: u64 = 2 + 2 * TMP_ENTRIES.len() as u64;

/// The calls the capability violator makes, in order, until its ninth denial stops it.
const VIOLATOR_CALLS: [&str; 9] = [
    "FS_READ",
    "FS_READ",
    "FS_WRITE",
    "FS_LIST",
    "METRICS_READ",
    "COMMAND_RUN",
    "PROPOSE_ACTION",
    "FS_READ",
    "FS_READ",
];

/// Phase 9 from [`AGENTIC_COMMANDS`]'s replies.
pub fn agentic(replies: &[Value]) -> Vec<Verdict> {
    if replies.len() != REPLIES {
        let got = format!("{} JSON replies, expected {REPLIES}", replies.len());
        return JUDGED.iter().map(|test| (*test, Err(got.clone()))).collect();
    }
    let status = &replies[16];
    vec![
        ("Protocol tests", protocol(&replies[2], status)),
        ("Capability tests", capabilities(replies, status)),
        ("Audit tests", audit(&replies[1], &replies[17], &replies[18], &replies[19])),
        ("ASM supervision tests", supervision(replies, status)),
    ]
}

fn agent<'a>(status: &'a Value, name: &str) -> Result<&'a Value, String> {
    ok(status)?["agents"]
        .as_array()
        .and_then(|agents| agents.iter().find(|agent| agent["name"] == name))
        .ok_or_else(|| format!("agent {name} in agentsys status, got {status}"))
}

/// The agent's state, last stop kind and reason against the expected ones.
fn stopped(status: &Value, name: &str, state: &str, kind: &str, reason: &str) -> Result<(), String> {
    let agent = agent(status, name)?;
    let got = (&agent["state"], &agent["last_stop"]["kind"], &agent["last_stop"]["reason"]);
    if got.0 != state || got.1 != kind || got.2 != reason {
        return Err(format!("{name}: {state} / {kind} / {reason}, got {} / {} / {}", got.0, got.1, got.2));
    }
    Ok(())
}

fn at(value: &Value, pointer: &str) -> Result<u64, String> {
    value.pointer(pointer).and_then(Value::as_u64).ok_or_else(|| format!("{pointer} a number in {value}"))
}

fn usage(status: &Value, name: &str, field: &str) -> Result<u64, String> {
    at(agent(status, name)?, &format!("/usage/{field}"))
}

fn equal(what: &str, got: u64, expected: u64) -> Result<(), String> {
    if got == expected {
        Ok(())
    } else {
        Err(format!("{what}: {expected}, got {got}"))
    }
}

/// Messages both ways: the seed's test-fs-list answered `ok` with the listing; the lister's 20 well-formed calls
/// (a list, 9 reads, 9 logs, a summary) served and its run finished; the sender of malformed messages answered
/// until its fourth, then stopped with that message's decode error.
fn protocol(listing: &Value, status: &Value) -> Result<(), String> {
    let listing = ok(listing)?;
    if listing["entries"] != serde_json::json!(TMP_ENTRIES) || listing["status"] != 0 || listing["outcome"] != "ok" {
        return Err(format!("test-fs-list /tmp: status 0, ok, {TMP_ENTRIES:?}, got {listing}"));
    }
    stopped(status, "file-lister", "stopped", "finished", "finished with exit code 0")?;
    equal("file-lister calls", usage(status, "file-lister", "calls")?, LISTER_CALLS)?;
    stopped(
        status,
        "malformed",
        "crashed",
        "protocol-violation",
        "protocol violation: too many malformed messages (last: declared length 100 past the end (2 bytes left))",
    )?;
    equal("malformed protocol errors", usage(status, "malformed", "protocol_errors")?, 4)?;
    equal("malformed calls", usage(status, "malformed", "calls")?, 4)
}

/// Capabilities checked before anything runs: a `..` escape from `/tmp` denied to test-fs-list, the violator's
/// ninth denied call stopping it, the lister never denied, a malformed capability refused at load, the set as given.
fn capabilities(replies: &[Value], status: &Value) -> Result<(), String> {
    refused(&replies[3], "capability-denied")?;
    stopped(status, "cap-violator", "crashed", "capability-violation", "capability violation: 9 denied calls")?;
    equal("cap-violator denials", usage(status, "cap-violator", "denials")?, 9)?;
    equal("file-lister denials", usage(status, "file-lister", "denials")?, 0)?;
    refused(&replies[9], "bad-capability")?;
    let caps = ok(&replies[20])?;
    if caps["capabilities"] != serde_json::json!(["log", "fs.read:/tmp/**"]) {
        return Err(format!("cap-violator's capabilities [log, fs.read:/tmp/**], got {caps}"));
    }
    Ok(())
}

/// Every call audited: the violator's nine denials in the order it made them; the lister's 20 calls in order, each
/// with its outcome (a read of a module larger than the lister's buffer answered `response_too_large`) and a
/// SHA-256 digest; test-fs-list's allowed and denied calls.
fn audit(installed: &Value, violator: &Value, lister: &Value, self_test: &Value) -> Result<(), String> {
    let violator = ok(violator)?;
    let records = violator["records"].as_array().ok_or_else(|| format!("records in {violator}"))?;
    let calls: Vec<&str> = records.iter().filter_map(|record| record["call"].as_str()).collect();
    if calls != VIOLATOR_CALLS || records.iter().any(|record| record["outcome"] != "denied") {
        return Err(format!("cap-violator's denied calls {VIOLATOR_CALLS:?}, got {violator}"));
    }
    let lister = ok(lister)?;
    equal("file-lister audit records", at(lister, "/matching")?, LISTER_CALLS)?;
    let records = lister["records"].as_array().ok_or_else(|| format!("records in {lister}"))?;
    let got: Vec<(String, String)> = records
        .iter()
        .map(|record| (record["call"].as_str().unwrap_or("-").into(), record["outcome"].as_str().unwrap_or("-").into()))
        .collect();
    let expected = lister_calls(installed)?;
    if got != expected {
        return Err(format!("file-lister's calls and outcomes {expected:?}, got {got:?}"));
    }
    let digests_ok = records.iter().all(|record| {
        record["digest"]
            .as_str()
            .is_some_and(|digest| digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    if !digests_ok {
        return Err(format!("64-digit SHA-256 digests, got {lister}"));
    }
    let self_test = ok(self_test)?;
    let outcomes: Vec<&str> = self_test["records"]
        .as_array()
        .map(|records| records.iter().filter_map(|record| record["outcome"].as_str()).collect())
        .unwrap_or_default();
    if outcomes != ["ok", "denied"] {
        return Err(format!("test-fs-list's records ok then denied, got {self_test}"));
    }
    Ok(())
}

/// The agent supervisor: every start answered `running`; the crasher under on-failure with at most 2 restarts
/// ran 3 times and gave up; chatty hit its rate limit once in 67 calls and finished; no agent holds a thread or
/// memory once stopped; an unknown agent is refused.
fn supervision(replies: &[Value], status: &Value) -> Result<(), String> {
    for reply in &replies[10..15] {
        let reply = ok(reply)?;
        if reply["state"] != "running" {
            return Err(format!("a started agent running, got {reply}"));
        }
    }
    stopped(status, "crasher", "gave-up", "trap", "trap: wasm `unreachable` instruction executed")?;
    let crasher = agent(status, "crasher")?;
    equal("crasher restarts", at(crasher, "/restarts")?, 2)?;
    equal("crasher slices", usage(status, "crasher", "slices")?, 3)?;
    stopped(status, "chatty", "stopped", "finished", "finished with exit code 0")?;
    equal("chatty calls", usage(status, "chatty", "calls")?, 67)?;
    equal("chatty rate-limited calls", usage(status, "chatty", "rate_limited")?, 1)?;
    for name in ["file-lister", "cap-violator", "malformed", "crasher", "chatty"] {
        let agent = agent(status, name)?;
        if agent["thread"] != false || agent["usage"]["memory_bytes"] != 0 {
            return Err(format!("{name} stopped without a thread or memory, got {agent}"));
        }
    }
    refused(&replies[21], "unknown-agent").map(|_| ())
}

/// Payload bytes the file lister's 4,096-byte response buffer holds after the 12-byte header.
const LISTER_PAYLOAD_BYTES: u64 = 4096 - 12;

/// The lister's calls with their outcomes, from the sizes `examples install` reported: FS_LIST, then FS_READ
/// and LOG for each entry in listing order, then the summary LOG.
fn lister_calls(installed: &Value) -> Result<Vec<(String, String)>, String> {
    let installed = ok(installed)?["installed"].as_array().ok_or_else(|| format!("installed in {installed}"))?;
    let mut calls = vec![("FS_LIST".to_string(), "ok".to_string())];
    for entry in TMP_ENTRIES {
        let path = format!("/tmp/{entry}");
        let file = installed
            .iter()
            .find(|file| file["path"] == path.as_str())
            .ok_or_else(|| format!("{path} installed, got {installed:?}"))?;
        let outcome = if at(file, "/bytes")? > LISTER_PAYLOAD_BYTES { "response_too_large" } else { "ok" };
        calls.push(("FS_READ".to_string(), outcome.to_string()));
        calls.push(("LOG".to_string(), "ok".to_string()));
    }
    calls.push(("LOG".to_string(), "ok".to_string()));
    Ok(calls)
}
