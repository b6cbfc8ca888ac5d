//! QEMU tests of `otelctl`: every command run while telemetry is on becomes one span, whose ids are the seed's;
//! the file `otelctl file` writes is read back with `cat` and checked by the host collector against the official
//! OpenTelemetry schema, and what it read must equal what the commands did and what `otelctl status` counts.
//! Bad input changes nothing.

mod common;

use std::collections::BTreeMap;

use common::{error_code, number, ok};
use serde_json::{json, Value};
use sis_otel::IdGenerator;
use sis_testing::otel::check_lines;
use sis_testing::{QemuConfig, Sis};

fn boot() -> Sis {
    Sis::boot(&QemuConfig::new()).unwrap_or_else(|error| panic!("boot: {error}"))
}

/// The collector's summary of the file at `path`, read back with `cat`.
fn collected(sis: &mut Sis, path: &str) -> Value {
    let file = ok(sis, &format!("cat {path}"));
    let content = file["content"].as_str().unwrap();
    check_lines(content).unwrap_or_else(|error| panic!("{path}: {error}\n{content}"))
}

/// The value of the `sis.shell.commands` point for `path` and `outcome` in the collector's metrics.
fn runs(summary: &Value, path: &str, outcome: &str) -> Option<i64> {
    let metrics = summary["metrics"].as_array().unwrap();
    let commands = metrics.iter().find(|metric| metric["name"] == "sis.shell.commands").unwrap();
    commands["points"].as_array().unwrap().iter().find_map(|point| {
        let attributes = &point["attributes"];
        (attributes["sis.command.path"] == path && attributes["sis.command.outcome"] == outcome)
            .then(|| point["value"].as_i64().unwrap())
    })
}

fn metric<'a>(summary: &'a Value, name: &str) -> &'a Value {
    let metrics = summary["metrics"].as_array().unwrap();
    metrics.iter().find(|metric| metric["name"] == name).unwrap_or_else(|| panic!("no {name} in {summary}"))
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn each_command_is_a_span_and_the_file_passes_the_official_schema_with_the_kernels_counts() {
    let mut sis = boot();
    let status = ok(&mut sis, "otelctl status");
    assert_eq!((status["enabled"].clone(), status["files_written"].clone()), (json!(false), json!(0)));
    // Nothing to export yet: refused, and no file or directory appears.
    assert_eq!(error_code(&mut sis, "otelctl file /otel/commands.jsonl"), "not-enabled");
    assert_eq!(error_code(&mut sis, "ls /otel"), "not-found");
    assert_eq!(error_code(&mut sis, "otelctl disable"), "not-enabled");

    let enabled = ok(&mut sis, "otelctl enable --seed 7");
    assert_eq!((enabled["seed"].clone(), enabled["resumed"].clone()), (json!(7), json!(false)));
    assert_eq!(error_code(&mut sis, "otelctl enable"), "already-enabled");
    ok(&mut sis, "meminfo");
    ok(&mut sis, "echo hi");
    assert_eq!(error_code(&mut sis, "nosuchcommand"), "unknown-command");
    ok(&mut sis, "threads");
    ok(&mut sis, "uptime");
    ok(&mut sis, "otelctl status");
    // The commands since the enable, in order, with their outcomes (a span is recorded once its command ran, so
    // the enable is the first and the file command below is not in its own file).
    let expected: [(&str, Option<&str>); 8] = [
        ("otelctl enable", None),
        ("otelctl enable", Some("already-enabled")),
        ("meminfo", None),
        ("echo", None),
        ("unknown", Some("unknown-command")),
        ("threads", None),
        ("uptime", None),
        ("otelctl status", None),
    ];
    let written = ok(&mut sis, "otelctl file /otel/commands.jsonl");
    assert_eq!(
        (written["spans"].clone(), written["trace_lines"].clone(), written["metrics"].clone()),
        (json!(8), json!(1), json!(7))
    );
    assert_eq!(written["exported_total"], 8);

    let summary = collected(&mut sis, "/otel/commands.jsonl");
    let size = ok(&mut sis, "cat /otel/commands.jsonl")["size"].clone();
    assert_eq!(size, written["bytes"]);
    assert_eq!(summary["requests"], json!({ "traces": 1, "metrics": 1 }));
    assert_eq!(summary["service_names"], json!(["sis-kernel"]));
    assert_eq!(summary["spans"], 8);
    assert_eq!((summary["traces"].clone(), summary["roots"].clone()), (json!(8), json!(8)));
    assert_eq!(summary["orphans"], json!([]));
    assert_eq!(summary["duplicate_span_ids"], json!([]));
    // Each span: the seed's ids in order, the command's path, outcome and error code, times that do not go back.
    let spans = summary["span_list"].as_array().unwrap();
    let mut ids = IdGenerator::new(7);
    let mut previous_end = 0;
    for (span, (path, error)) in spans.iter().zip(expected) {
        let (trace_id, span_id) = (ids.trace_id(), ids.span_id());
        assert_eq!(span["trace_id"], trace_id.to_string(), "{span}");
        assert_eq!(span["span_id"], span_id.to_string(), "{span}");
        assert_eq!(span["parent_span_id"], "", "{span}");
        assert_eq!((span["name"].as_str(), span["kind"].as_u64()), (Some(path), Some(2)), "{span}");
        assert_eq!(span["attributes"]["sis.command.path"], path);
        assert_eq!(span["attributes"]["sis.command.outcome"], if error.is_some() { "failed" } else { "ok" });
        assert_eq!(span["attributes"].get("sis.command.error_code").and_then(Value::as_str), error, "{span}");
        assert_eq!(span["status_code"], if error.is_some() { 2 } else { 1 }, "{span}");
        assert_eq!(span["status_message"], error.unwrap_or(""), "{span}");
        let (start, end) = (number(span, "/start_time_unix_nano"), number(span, "/end_time_unix_nano"));
        assert!(previous_end <= start && start <= end, "{span}");
        previous_end = end;
    }

    // The metrics are the kernel's own counts.
    let mut counts: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for (path, error) in expected {
        *counts.entry((path, if error.is_some() { "failed" } else { "ok" })).or_default() += 1;
    }
    for ((path, outcome), count) in &counts {
        assert_eq!(runs(&summary, path, outcome), Some(*count), "{path} {outcome}");
    }
    let points = metric(&summary, "sis.shell.commands")["points"].as_array().unwrap().len();
    assert_eq!(points, counts.len());
    let latency = &metric(&summary, "sis.shell.command.duration")["points"][0];
    assert_eq!(latency["count"], 8);
    let durations: Vec<u64> =
        spans.iter().map(|span| number(span, "/end_time_unix_nano") - number(span, "/start_time_unix_nano")).collect();
    assert_eq!(latency["sum"].as_f64(), Some(durations.iter().sum::<u64>() as f64));
    assert_eq!(latency["min"].as_f64(), durations.iter().min().map(|min| *min as f64));
    assert_eq!(latency["max"].as_f64(), durations.iter().max().map(|max| *max as f64));
    assert_eq!(metric(&summary, "sis.otel.spans.exported")["points"][0]["value"], 8);
    assert_eq!(metric(&summary, "sis.otel.spans.enqueued")["points"][0]["value"], 8);
    assert_eq!(metric(&summary, "sis.otel.spans.dropped")["points"][0]["value"], 0);
    assert_eq!(metric(&summary, "sis.otel.spans.failed")["points"][0]["value"], 0);
    assert_eq!(metric(&summary, "sis.otel.spans.held")["points"][0]["value"], 0);

    // The file command itself was then recorded (and the two cats): three spans held, none exported twice.
    let status = ok(&mut sis, "otelctl status");
    assert_eq!(
        status["spans"],
        json!({ "enqueued": 11, "exported": 8, "dropped_full": 0, "dropped_after_retries": 0, "retries": 0,
                "batches": 1, "batches_dropped": 0, "held": 3 })
    );
    assert_eq!(status["commands"]["otelctl enable"], json!({ "ok": 1, "failed": 1 }));
    assert_eq!(status["commands"]["cat"], json!({ "ok": 2, "failed": 0 }));
    assert_eq!(status["files_written"], 1);

    // A path that cannot be written: refused, nothing exported; the first file is unchanged.
    assert_eq!(error_code(&mut sis, "otelctl file /"), "is-a-directory");
    assert_eq!(error_code(&mut sis, "otelctl file relative.jsonl"), "invalid-path");
    let status = ok(&mut sis, "otelctl status");
    assert_eq!((number(&status, "/spans/exported"), number(&status, "/files_written")), (8, 1));
    assert_eq!(number(&status, "/spans/held"), 6);
    assert_eq!(ok(&mut sis, "cat /otel/commands.jsonl")["size"], written["bytes"]);

    // Off: commands are not recorded (the disable neither: it ends with telemetry off); the seed stays until
    // reboot; on again resumes.
    ok(&mut sis, "otelctl disable");
    ok(&mut sis, "echo not recorded");
    assert_eq!(error_code(&mut sis, "otelctl enable --seed 8"), "seed-fixed");
    let status = ok(&mut sis, "otelctl status");
    assert_eq!((status["enabled"].clone(), number(&status, "/spans/enqueued")), (json!(false), 16));
    let resumed = ok(&mut sis, "otelctl enable --seed 7");
    assert_eq!((resumed["seed"].clone(), resumed["resumed"].clone()), (json!(7), json!(true)));
    let second = ok(&mut sis, "otelctl file /otel/second.jsonl");
    assert_eq!(second["spans"], 9);
    let summary = collected(&mut sis, "/otel/second.jsonl");
    let names: Vec<&str> =
        summary["span_list"].as_array().unwrap().iter().map(|span| span["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "otelctl file",
            "cat",
            "cat",
            "otelctl status",
            "otelctl file",
            "otelctl file",
            "otelctl status",
            "cat",
            "otelctl enable"
        ]
    );
    assert_eq!(metric(&summary, "sis.otel.spans.exported")["points"][0]["value"], 17);
    // Neither the disable nor what ran while off was recorded.
    assert_eq!(ok(&mut sis, "otelctl status")["commands"]["otelctl disable"], Value::Null);
}
