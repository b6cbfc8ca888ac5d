//! What a client may ask for: `POST /api/stress/start` and `POST /api/stress/compare` bodies, checked field by
//! field into the shell line the kernel runs. Every refusal names the field.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// The `stresstest` subcommands a run can be.
pub const TEST_TYPES: [&str; 6] = ["memory", "commands", "multi", "chaos", "redteam", "learning"];
/// What `compare` can compare (the kernel's `stresstest compare` targets).
pub const COMPARE_TARGETS: [&str; 4] = ["memory", "commands", "multi", "chaos"];
/// Shortest run, ms.
pub const MIN_DURATION_MS: u64 = 100;
/// Longest run, ms (10 minutes: the daemon is for watching runs, soaks belong to the console).
pub const MAX_DURATION_MS: u64 = 600_000;
/// Default run time, ms.
pub const DEFAULT_DURATION_MS: u64 = 10_000;
/// Learning episodes accepted (the kernel's bounds).
pub const EPISODES: (u64, u64) = (10, 1_000);
/// Pairs a comparison may run.
pub const COMPARE_RUNS: (u64, u64) = (2, 40);
/// Longest comparison run, ms (each pair runs twice).
pub const MAX_COMPARE_DURATION_MS: u64 = 30_000;

/// A checked run: what to store and the line the kernel runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunSpec {
    /// `memory`, ..., or `compare`.
    pub test_type: String,
    /// The run's seed (chosen by the daemon when the client gave none, and always passed to the kernel).
    pub seed: u64,
    /// The run time the kernel was given, ms (`None` for learning, whose length is its episodes).
    pub duration_ms: Option<u64>,
    /// The checked configuration, as stored (`fail_rate`, `episodes`, `runs`, `test`).
    pub config: Map<String, Value>,
    /// The shell line, with `--json`.
    pub command: String,
}

fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request("malformed-json", None, format!("the body is not JSON: {error}")))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::bad_request("malformed-json", None, "the body must be a JSON object".into())),
    }
}

fn refuse_unknown(map: &Map<String, Value>, known: &[&str], prefix: &str) -> Result<(), ApiError> {
    match map.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err(ApiError::bad_request(
            "unknown-field",
            Some(format!("{prefix}{key}")),
            format!("known fields: {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

/// An integer field in `min..=max`, or `None` when absent.
fn integer(map: &Map<String, Value>, name: &str, prefix: &str, min: u64, max: u64) -> Result<Option<u64>, ApiError> {
    let Some(value) = map.get(name) else { return Ok(None) };
    let field = Some(format!("{prefix}{name}"));
    let number = value.as_u64().ok_or_else(|| {
        ApiError::bad_request("invalid-value", field.clone(), "must be a non-negative integer".into())
    })?;
    if !(min..=max).contains(&number) {
        return Err(ApiError::bad_request("out-of-range", field, format!("must be in {min}..={max}, got {number}")));
    }
    Ok(Some(number))
}

fn string<'a>(map: &'a Map<String, Value>, name: &str, choices: &[&str]) -> Result<&'a str, ApiError> {
    let field = Some(name.to_string());
    let value =
        map.get(name).ok_or_else(|| ApiError::bad_request("missing-field", field.clone(), "required".into()))?;
    let text = value
        .as_str()
        .ok_or_else(|| ApiError::bad_request("invalid-value", field.clone(), "must be a string".into()))?;
    if !choices.contains(&text) {
        return Err(ApiError::bad_request(
            "invalid-value",
            field,
            format!("one of {}, got {text:?}", choices.join(", ")),
        ));
    }
    Ok(text)
}

/// `{"test_type":"chaos","duration_ms":60000,"config":{"fail_rate":15,"seed":7}}`; `seed_if_absent` is used when
/// the client gave no seed. `fail_rate` applies to memory and chaos, `episodes` to learning (which takes no
/// `duration_ms`). A chaos run with a fail rate above 0 is run with `--expect-failures`: injected failures are
/// what it asked for, so a partial pass counts as passed.
pub fn start(body: &[u8], seed_if_absent: u64) -> Result<RunSpec, ApiError> {
    let map = object(body)?;
    refuse_unknown(&map, &["test_type", "duration_ms", "config"], "")?;
    let test_type = string(&map, "test_type", &TEST_TYPES)?.to_string();
    let empty = Map::new();
    let config = match map.get("config") {
        None => &empty,
        Some(Value::Object(config)) => config,
        Some(_) => {
            return Err(ApiError::bad_request("invalid-value", Some("config".into()), "must be an object".into()))
        }
    };
    let learning = test_type == "learning";
    let fail_rate_applies = test_type == "memory" || test_type == "chaos";
    let mut known = vec!["seed"];
    if fail_rate_applies {
        known.push("fail_rate");
    }
    if learning {
        known.push("episodes");
    }
    refuse_unknown(config, &known, "config.")?;
    let seed = match config.get("seed") {
        None => seed_if_absent,
        Some(value) => value.as_u64().ok_or_else(|| {
            ApiError::bad_request(
                "invalid-value",
                Some("config.seed".into()),
                "must be an integer in 0..=2^64-1".into(),
            )
        })?,
    };
    let mut stored = Map::new();
    let mut command = format!("stresstest {test_type}");
    let duration_ms = if learning {
        if map.contains_key("duration_ms") {
            return Err(ApiError::bad_request(
                "unknown-field",
                Some("duration_ms".into()),
                "learning runs for config.episodes, not a duration".into(),
            ));
        }
        let episodes = integer(config, "episodes", "config.", EPISODES.0, EPISODES.1)?.unwrap_or(20);
        stored.insert("episodes".into(), episodes.into());
        command.push_str(&format!(" --episodes {episodes}"));
        None
    } else {
        let duration =
            integer(&map, "duration_ms", "", MIN_DURATION_MS, MAX_DURATION_MS)?.unwrap_or(DEFAULT_DURATION_MS);
        command.push_str(&format!(" --duration {duration}"));
        Some(duration)
    };
    if fail_rate_applies {
        let fail_rate = integer(config, "fail_rate", "config.", 0, 100)?.unwrap_or(0);
        stored.insert("fail_rate".into(), fail_rate.into());
        command.push_str(&format!(" --fail-rate {fail_rate}"));
        if test_type == "chaos" && fail_rate > 0 {
            command.push_str(" --expect-failures");
        }
    }
    stored.insert("seed".into(), seed.into());
    command.push_str(&format!(" --seed {seed} --json"));
    Ok(RunSpec { test_type, seed, duration_ms, config: stored, command })
}

/// `{"test":"memory","runs":4,"duration_ms":2000,"seed":7}`: the paired autonomy comparison.
pub fn compare(body: &[u8], seed_if_absent: u64) -> Result<RunSpec, ApiError> {
    let map = object(body)?;
    refuse_unknown(&map, &["test", "runs", "duration_ms", "seed"], "")?;
    let test = string(&map, "test", &COMPARE_TARGETS)?.to_string();
    let runs = integer(&map, "runs", "", COMPARE_RUNS.0, COMPARE_RUNS.1)?.unwrap_or(4);
    let duration = integer(&map, "duration_ms", "", MIN_DURATION_MS, MAX_COMPARE_DURATION_MS)?.unwrap_or(2_000);
    let seed = match map.get("seed") {
        None => seed_if_absent,
        Some(value) => value.as_u64().ok_or_else(|| {
            ApiError::bad_request("invalid-value", Some("seed".into()), "must be an integer in 0..=2^64-1".into())
        })?,
    };
    let mut config = Map::new();
    config.insert("test".into(), test.clone().into());
    config.insert("runs".into(), runs.into());
    config.insert("seed".into(), seed.into());
    let command = format!("stresstest compare {test} --runs {runs} --duration {duration} --seed {seed} --json");
    Ok(RunSpec { test_type: "compare".into(), seed, duration_ms: Some(duration), config, command })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(result: Result<RunSpec, ApiError>) -> (u16, &'static str, Option<String>) {
        let error = result.unwrap_err();
        (error.status, error.code, error.field)
    }

    #[test]
    fn the_seeds_example_becomes_the_kernels_line() {
        let body = json!({ "test_type": "chaos", "duration_ms": 60000, "config": { "fail_rate": 15, "seed": 7 } });
        let spec = start(body.to_string().as_bytes(), 99).unwrap();
        assert_eq!(spec.command, "stresstest chaos --duration 60000 --fail-rate 15 --expect-failures --seed 7 --json");
        assert_eq!((spec.seed, spec.duration_ms), (7, Some(60_000)));
        assert_eq!(Value::Object(spec.config), json!({ "fail_rate": 15, "seed": 7 }));
    }

    #[test]
    fn defaults_fill_in_and_the_daemons_seed_is_used_and_kept() {
        let spec = start(br#"{"test_type":"memory"}"#, 1234).unwrap();
        assert_eq!(spec.command, "stresstest memory --duration 10000 --fail-rate 0 --seed 1234 --json");
        let spec = start(br#"{"test_type":"learning","config":{"episodes":30}}"#, 5).unwrap();
        assert_eq!(spec.command, "stresstest learning --episodes 30 --seed 5 --json");
        assert_eq!(spec.duration_ms, None);
        let spec = start(br#"{"test_type":"redteam","duration_ms":100}"#, 5).unwrap();
        assert_eq!(spec.command, "stresstest redteam --duration 100 --seed 5 --json");
    }

    /// A body and the status, code and field it is refused with.
    type Case = (&'static str, (u16, &'static str, Option<&'static str>));

    #[test]
    fn bad_bodies_are_refused_naming_the_field() {
        let cases: [Case; 12] = [
            ("not json", (400, "malformed-json", None)),
            ("[1]", (400, "malformed-json", None)),
            (r#"{}"#, (400, "missing-field", Some("test_type"))),
            (r#"{"test_type":"fork-bomb"}"#, (400, "invalid-value", Some("test_type"))),
            (r#"{"test_type":7}"#, (400, "invalid-value", Some("test_type"))),
            (r#"{"test_type":"memory","duration_ms":99}"#, (400, "out-of-range", Some("duration_ms"))),
            (r#"{"test_type":"memory","duration_ms":600001}"#, (400, "out-of-range", Some("duration_ms"))),
            (r#"{"test_type":"memory","duration_ms":-5}"#, (400, "invalid-value", Some("duration_ms"))),
            (r#"{"test_type":"chaos","config":{"fail_rate":101}}"#, (400, "out-of-range", Some("config.fail_rate"))),
            (r#"{"test_type":"commands","config":{"fail_rate":1}}"#, (400, "unknown-field", Some("config.fail_rate"))),
            (r#"{"test_type":"memory","colour":"red"}"#, (400, "unknown-field", Some("colour"))),
            (r#"{"test_type":"learning","duration_ms":1000}"#, (400, "unknown-field", Some("duration_ms"))),
        ];
        for (body, (status, code, field)) in cases {
            assert_eq!(refused(start(body.as_bytes(), 1)), (status, code, field.map(String::from)), "{body}");
        }
        assert_eq!(
            refused(start(br#"{"test_type":"memory","config":{"seed":"seven"}}"#, 1)),
            (400, "invalid-value", Some("config.seed".into()))
        );
    }

    #[test]
    fn a_comparison_is_checked_and_becomes_stresstest_compare() {
        let spec = compare(br#"{"test":"memory","runs":4,"duration_ms":2000,"seed":7}"#, 1).unwrap();
        assert_eq!(spec.command, "stresstest compare memory --runs 4 --duration 2000 --seed 7 --json");
        assert_eq!(spec.test_type, "compare");
        assert_eq!(refused(compare(br#"{"test":"disk"}"#, 1)), (400, "invalid-value", Some("test".into())));
        assert_eq!(refused(compare(br#"{"test":"memory","runs":1}"#, 1)), (400, "out-of-range", Some("runs".into())));
        assert_eq!(
            refused(compare(br#"{"test":"memory","duration_ms":30001}"#, 1)),
            (400, "out-of-range", Some("duration_ms".into()))
        );
    }
}
