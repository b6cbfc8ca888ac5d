//! Phase 2, AI governance: one boot registers the image's signed model under a size limit, versions it, loads it,
//! generates under a token budget and a rate limit, and queries and verifies the audit log. The judge reads exact
//! figures from the replies.

use serde_json::Value;

use super::judge::{expect, number, ok, refused};
use super::Verdict;

/// The probe's commands, one JSON reply each ([`REPLIES`] of them).
pub const GOVERNANCE_COMMANDS: &str = "llmctl sizelimit 100000 --json; llmctl register builtin --json; \
     llmctl list --json; llmctl sizelimit 1048576 --json; llmctl register builtin --json; \
     llmctl register builtin --json; llmctl versions shakespeare-lm --json; llmctl info shakespeare-lm@2.0.0 --json; \
     llmctl info shakespeare-lm@1.0.0 --json; llmctl load shakespeare-lm --json; llmctl budget set 100 --json; \
     llmctl infer shakespeare-lm \"ROMEO:\" --max-tokens 60 --temperature 0 --json; \
     llmctl infer shakespeare-lm \"ROMEO:\" --max-tokens 60 --temperature 0 --json; \
     llmctl infer shakespeare-lm \"ROMEO:\" --max-tokens 1 --temperature 0 --json; llmctl budget set 1000 --json; \
     llmctl ratelimit set 1 --burst 1 --json; \
     llmctl infer shakespeare-lm \"ROMEO:\" --max-tokens 5 --temperature 0.8 --seed 3 --json; \
     llmctl infer shakespeare-lm \"ROMEO:\" --max-tokens 5 --temperature 0.8 --seed 3 --json; \
     llmctl ratelimit show --json; llmctl audit --json; llmctl audit --action infer --json; \
     llmctl audit --model shakespeare-lm@1.0.0 --limit 2 --json; llmctl audit verify --json; llmctl compliance --json";

/// Replies [`GOVERNANCE_COMMANDS`] prints.
const REPLIES: usize = 24;
/// The image's artifact (models/shakespeare-lm.sismodel).
const ARTIFACT_BYTES: u64 = 200_262;
const WEIGHTS_BYTES: u64 = 199_882;
/// SHA-256 of models/shakespeare.txt.
const TRAINING_DATA_SHA256: &str = "4df169ca6cd55cd979550bb47c3a82c896ab55deda057d846eba370bbc7334e9";
/// The audit log's actions and outcomes, in order, for the whole probe.
const AUDIT: [(&str, &str); AUDITED] = [
    ("set-model-limit", "ok"),
    ("register", "model-too-large"),
    ("set-model-limit", "ok"),
    ("register", "ok"),
    ("register", "version-exists"),
    ("load", "ok"),
    ("set-budget", "ok"),
    ("infer", "ok"),
    ("complete", "ok"),
    ("infer", "ok"),
    ("complete", "ok"),
    ("infer", "budget-exhausted"),
    ("set-budget", "ok"),
    ("set-rate", "ok"),
    ("infer", "ok"),
    ("complete", "ok"),
    ("infer", "rate-limited"),
];
/// Entries in the audit log: every command but the reads (list, versions, info, show, audit).
const AUDITED: usize = 17;

/// The phase's tests: all nine.
const JUDGED: [&str; 9] = [
    "Model registration",
    "Model versioning",
    "Model metadata",
    "Size limit enforcement",
    "Budget enforcement",
    "Rate limiting",
    "Audit logging",
    "Compliance checks",
    "Audit queries",
];

/// Phase 2 from [`GOVERNANCE_COMMANDS`]'s replies.
pub fn governance(replies: &[Value]) -> Vec<Verdict> {
    if replies.len() != REPLIES {
        let got = format!("{} JSON replies, expected {REPLIES}", replies.len());
        return JUDGED.iter().map(|test| (*test, Err(got.clone()))).collect();
    }
    vec![
        ("Model registration", registration(replies)),
        ("Model versioning", versioning(replies)),
        ("Model metadata", metadata(&replies[8])),
        ("Size limit enforcement", size_limit(replies)),
        ("Budget enforcement", budget(replies)),
        ("Rate limiting", rate_limit(replies)),
        ("Audit logging", audit_logging(&replies[19])),
        ("Compliance checks", compliance(&replies[22], &replies[23])),
        ("Audit queries", audit_queries(&replies[20], &replies[21])),
    ]
}

/// The signed artifact is verified and kept, loaded, and generates.
fn registration(replies: &[Value]) -> Result<(), String> {
    let registered = ok(&replies[4])?;
    expect_str(registered, "name", "shakespeare-lm")?;
    expect(registered, "artifact_bytes", ARTIFACT_BYTES)?;
    expect_str(registered, "registered_by", "console")?;
    let loaded = ok(&replies[9])?;
    if loaded["loaded"] != true {
        return Err(format!("loaded true, got {loaded}"));
    }
    expect(ok(&replies[11])?, "tokens", 60)
}

/// One version, a second registration of it refused, an unknown version refused, the known one resolved.
fn versioning(replies: &[Value]) -> Result<(), String> {
    refused(&replies[5], "version-exists")?;
    let versions = ok(&replies[6])?;
    if versions["versions"] != serde_json::json!(["1.0.0"]) {
        return Err(format!("versions [\"1.0.0\"], got {}", versions["versions"]));
    }
    refused(&replies[7], "unknown-version")?;
    expect_str(ok(&replies[8])?, "version", "1.0.0")
}

/// Every signed metadata field, as signed.
fn metadata(info: &Value) -> Result<(), String> {
    let info = ok(info)?;
    expect_str(info, "kind", "language-model")?;
    expect_str(info, "author", "SIS project")?;
    expect_str(info, "training_data_sha256", TRAINING_DATA_SHA256)?;
    expect(info, "weights_bytes", WEIGHTS_BYTES)?;
    expect(info, "created_unix_s", 1_796_601_600)?;
    if (&info["input_shape"], &info["output_shape"]) != (&serde_json::json!([8]), &serde_json::json!([62])) {
        return Err(format!("shapes [8] -> [62], got {} -> {}", info["input_shape"], info["output_shape"]));
    }
    Ok(())
}

/// Over the limit: refused and nothing registered; under it: registered.
fn size_limit(replies: &[Value]) -> Result<(), String> {
    expect(&ok(&replies[0])?["limits"], "max_model_bytes", 100_000)?;
    refused(&replies[1], "model-too-large")?;
    expect(ok(&replies[2])?, "count", 0)?;
    expect(ok(&replies[4])?, "artifact_bytes", ARTIFACT_BYTES)
}

/// Budget 100: 60 granted, then 60 cut to the 40 left, then refused with 0 left and the reset time.
fn budget(replies: &[Value]) -> Result<(), String> {
    for (reply, tokens, cut, remaining) in [(&replies[11], 60, false, 40), (&replies[12], 40, true, 0)] {
        let reply = ok(reply)?;
        expect(reply, "tokens", tokens)?;
        expect(reply, "remaining_tokens", remaining)?;
        if reply["cut"] != cut {
            return Err(format!("cut {cut}, got {reply}"));
        }
    }
    let exhausted = refused(&replies[13], "budget-exhausted")?;
    expect(exhausted, "remaining_tokens", 0)?;
    number(exhausted, "window_reset_ns").map(|_| ())
}

/// One request a second with a burst of one: the first passes, the next is refused with a retry-after within the
/// second; the counters say so exactly.
fn rate_limit(replies: &[Value]) -> Result<(), String> {
    expect(ok(&replies[16])?, "tokens", 5)?;
    let limited = refused(&replies[17], "rate-limited")?;
    let retry_after_ns = number(limited, "retry_after_ns")?;
    if retry_after_ns == 0 || retry_after_ns > 1_000_000_000 {
        return Err(format!("retry_after_ns in 1..=1e9, got {retry_after_ns}"));
    }
    let counters = &ok(&replies[18])?["principals"][0]["counters"];
    for (key, value) in [("requests", 5), ("allowed", 3), ("cut", 1), ("refused_rate", 1), ("refused_budget", 1)] {
        expect(counters, key, value)?;
    }
    expect(counters, "tokens_used", 105)
}

/// Every operation left one entry, refusals included, in order.
fn audit_logging(audit: &Value) -> Result<(), String> {
    let audit = ok(audit)?;
    let entries = audit["entries"].as_array().ok_or_else(|| format!("entries, got {audit}"))?;
    let got: Vec<(String, String)> = entries.iter().map(action_outcome).collect();
    let expected: Vec<(String, String)> =
        AUDIT.iter().map(|(action, outcome)| (action.to_string(), outcome.to_string())).collect();
    if got != expected {
        return Err(format!("audit {expected:?}, got {got:?}"));
    }
    Ok(())
}

/// The chain verifies over every entry; nothing is out of compliance.
fn compliance(verify: &Value, compliance: &Value) -> Result<(), String> {
    let verify = ok(verify)?;
    if verify["verified"] != true {
        return Err(format!("verified, got {verify}"));
    }
    expect(verify, "entries", AUDITED as u64)?;
    let compliance = ok(compliance)?;
    if compliance["compliant"] != true || compliance["violations"] != serde_json::json!([]) {
        return Err(format!("compliant with no violations, got {compliance}"));
    }
    expect(compliance, "loaded_models", 1)
}

/// Filters by action and by model with a limit select exactly the entries they name.
fn audit_queries(by_action: &Value, by_model: &Value) -> Result<(), String> {
    let by_action = ok(by_action)?;
    expect(by_action, "matched", 5)?;
    let actions: Vec<(String, String)> =
        by_action["entries"].as_array().map(|entries| entries.iter().map(action_outcome).collect()).unwrap_or_default();
    let infers = ["ok", "ok", "budget-exhausted", "ok", "rate-limited"];
    if actions.iter().map(|(action, outcome)| (action.as_str(), outcome.as_str())).ne(infers.map(|o| ("infer", o))) {
        return Err(format!("the five infer entries, got {actions:?}"));
    }
    let by_model = ok(by_model)?;
    expect(by_model, "matched", 2)?;
    let sequences: Vec<u64> = by_model["entries"]
        .as_array()
        .map(|entries| entries.iter().filter_map(|entry| entry["sequence"].as_u64()).collect())
        .unwrap_or_default();
    if sequences != [15, 16] {
        return Err(format!("the model's newest two entries, sequences [15, 16], got {sequences:?}"));
    }
    Ok(())
}

fn action_outcome(entry: &Value) -> (String, String) {
    let action = entry["action"].as_str().unwrap_or_default().to_string();
    let outcome = match entry["outcome"]["status"].as_str() {
        Some("ok") => String::from("ok"),
        _ => entry["outcome"]["code"].as_str().unwrap_or("?").to_string(),
    };
    (action, outcome)
}

fn expect_str(value: &Value, key: &str, expected: &str) -> Result<(), String> {
    match value[key].as_str() {
        Some(got) if got == expected => Ok(()),
        _ => Err(format!("{key} {expected:?}, got {}", value[key])),
    }
}
