//! QEMU tests of `otelctl export`: the kernel posts OTLP/JSON over its own TCP/IP stack (smoltcp over virtio-net,
//! QEMU user networking, where the host is 10.0.2.2) to the host collector on 127.0.0.1, which parses every
//! request with the official OpenTelemetry definitions. What it received must equal what the kernel counts; a
//! collector that fails or goes away costs counted retries and drops, and the shell keeps answering; bad URLs
//! change nothing.

mod common;
#[path = "otel_export/mod.rs"]
mod otel_export;

use std::time::{Duration, Instant};

use common::{error_code, number, ok};
use otel_export::stop_export;
use serde_json::{json, Value};
use sis_otel::IdGenerator;
use sis_testing::otel::{Collector, CollectorOptions};
use sis_testing::{QemuConfig, Sis};

fn boot() -> Sis {
    let config = QemuConfig::new().user_network_free_port(7).unwrap();
    Sis::boot(&config).unwrap_or_else(|error| panic!("boot: {error}"))
}

/// Runs `otelctl status` until `done` says yes (at most `limit`); the last status.
fn wait_status(sis: &mut Sis, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let status = ok(sis, "otelctl status");
        if done(&status) {
            return status;
        }
        assert!(start.elapsed() < limit, "not reached in {limit:?}: {status}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn spans_and_metrics_reach_the_collector_over_http_with_the_kernels_counts() {
    let collector = Collector::start(CollectorOptions::default()).unwrap();
    let port = collector.address().port();
    let traces_url = format!("http://10.0.2.2:{port}/v1/traces");
    let metrics_url = format!("http://10.0.2.2:{port}/v1/metrics");
    let mut sis = boot();

    // Before any enable there is nothing to export; bad URLs are refused whatever the state.
    assert_eq!(error_code(&mut sis, &format!("otelctl export --to {traces_url}")), "not-enabled");
    ok(&mut sis, "otelctl enable --seed 11");
    for (url, code) in [
        (format!("https://10.0.2.2:{port}/v1/traces"), "unsupported-scheme"),
        (format!("http://localhost:{port}/v1/traces"), "host-not-ipv4"),
        (format!("http://10.0.2.2:{port}/v1/logs"), "bad-path"),
        (String::from("http://10.0.2.2:70000/v1/traces"), "bad-port"),
        (String::from("http://0.0.0.0:4318/v1/traces"), "unaddressable"),
        (format!("http://10.0.2.2:{port}/v1/traces?x"), "bad-url"),
    ] {
        assert_eq!(error_code(&mut sis, &format!("otelctl export --to {url}")), code, "{url}");
    }
    assert_eq!(error_code(&mut sis, &format!("otelctl export --to {traces_url} --timeout-ms 99")), "out-of-range");
    assert_eq!(error_code(&mut sis, &format!("otelctl export --to {traces_url} --interval-ms 500")), "invalid-value");
    assert_eq!(error_code(&mut sis, "otelctl stop traces"), "not-exporting");
    let status = ok(&mut sis, "otelctl status");
    assert_eq!(status["exports"], json!({ "traces": null, "metrics": null }));

    let started = ok(&mut sis, &format!("otelctl export --to {traces_url}"));
    assert_eq!((started["url"].as_str(), started["signal"].as_str()), (Some(traces_url.as_str()), Some("traces")));
    assert_eq!((started["timeout_ms"].clone(), started["interval_ms"].clone()), (json!(2000), Value::Null));
    assert_eq!(error_code(&mut sis, &format!("otelctl export --to {traces_url}")), "already-exporting");
    let metrics = ok(&mut sis, &format!("otelctl export --to {metrics_url} --interval-ms 300"));
    assert_eq!(metrics["interval_ms"], 300);
    // While spans go over HTTP a file would race them for the queue.
    assert_eq!(error_code(&mut sis, "otelctl file /otel/x.jsonl"), "exporting");
    for index in 0..100 {
        ok(&mut sis, &format!("echo {index}"));
    }
    // Stop recording, then wait until every span recorded was sent.
    ok(&mut sis, "otelctl disable");
    let status = wait_status(&mut sis, Duration::from_secs(30), |status| {
        number(status, "/spans/held") == 0 && number(status, "/exports/metrics/items_sent") >= 3
    });
    let traces = stop_export(&mut sis, "traces");
    let metrics = stop_export(&mut sis, "metrics");
    assert_eq!(error_code(&mut sis, "otelctl stop traces"), "not-exporting");

    let summary = collector.summary().unwrap();
    let spans = &status["spans"];
    // Every span recorded was exported once, none dropped: the collector holds exactly the kernel's count.
    let enqueued = number(spans, "/enqueued");
    // enable, 6 bad URLs, 2 bad flags, stop, status, export, export again, metrics export, file, 100 echoes.
    assert_eq!(enqueued, 1 + 6 + 2 + 1 + 1 + 1 + 1 + 1 + 1 + 100, "{status}");
    assert_eq!(number(spans, "/exported"), enqueued);
    assert_eq!((number(spans, "/dropped_full"), number(spans, "/dropped_after_retries")), (0, 0));
    assert_eq!(summary["spans"], enqueued);
    assert_eq!(number(&traces, "/items_sent"), enqueued);
    assert_eq!(summary["requests"]["traces"], traces["attempts"]["succeeded"]);
    assert_eq!(summary["requests"]["traces"], spans["batches"]);
    assert_eq!(summary["requests"]["metrics"], metrics["attempts"]["succeeded"]);
    assert_eq!(number(&metrics, "/items_sent"), number(&metrics, "/attempts/succeeded"));
    for export in [&traces, &metrics] {
        assert_eq!(export["attempts"]["attempts"], export["attempts"]["succeeded"], "{export}");
        assert_eq!(export["attempts"]["last_status"], 200, "{export}");
    }
    assert_eq!((summary["rejected"].clone(), summary["refused"].clone()), (json!(0), json!(0)), "{summary}");
    assert_eq!(summary["service_names"], json!(["sis-kernel"]));
    assert_eq!((summary["orphans"].clone(), summary["duplicate_span_ids"].clone()), (json!([]), json!([])));
    // In the order they were recorded, with the seed's ids (the collector checked 32 and 16 hex characters).
    let span_list = summary["span_list"].as_array().unwrap();
    let mut ids = IdGenerator::new(11);
    for span in span_list {
        assert_eq!(span["trace_id"], ids.trace_id().to_string(), "{span}");
        assert_eq!(span["span_id"], ids.span_id().to_string(), "{span}");
    }
    let names: Vec<&str> = span_list.iter().map(|span| span["name"].as_str().unwrap()).collect();
    assert_eq!(&names[..3], ["otelctl enable", "otelctl export", "otelctl export"]);
    assert_eq!(names.iter().filter(|name| **name == "echo").count(), 100);
    assert_eq!(names.last(), Some(&"echo"));
    // The last metrics snapshot counts the commands the kernel counted.
    let collected_metrics = summary["metrics"].as_array().unwrap();
    let commands = collected_metrics.iter().rev().find(|metric| metric["name"] == "sis.shell.commands").unwrap();
    let echo = commands["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|point| point["attributes"]["sis.command.path"] == "echo")
        .unwrap();
    assert_eq!(echo["value"], 100);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn failing_and_vanished_collectors_cost_counted_retries_and_drops_while_the_shell_answers() {
    // The first two requests are answered 503: the batch is retried and then accepted, nothing is lost.
    let collector = Collector::start(CollectorOptions { fail_first: 2, fail_status: 503 }).unwrap();
    let port = collector.address().port();
    let mut sis = boot();
    ok(&mut sis, "otelctl enable --seed 3");
    ok(&mut sis, &format!("otelctl export --to http://10.0.2.2:{port}/v1/traces"));
    ok(&mut sis, "otelctl disable");
    let status = wait_status(&mut sis, Duration::from_secs(20), |status| number(status, "/spans/held") == 0);
    let attempts = &status["exports"]["traces"]["attempts"];
    assert_eq!((number(attempts, "/http_errors"), number(attempts, "/refused")), (2, 0), "{status}");
    assert!(number(&status, "/spans/retries") >= 2, "{status}");
    let summary = collector.summary().unwrap();
    assert_eq!(summary["refused"], 2);
    assert_eq!(summary["spans"], status["exports"]["traces"]["items_sent"]);
    assert_eq!(summary["spans"], 2);
    assert_eq!(status["spans"]["dropped_after_retries"], 0);

    // The collector goes away: every attempt is refused, each batch is dropped after its fourth, counted, and
    // the shell keeps answering all along.
    drop(collector);
    ok(&mut sis, "otelctl enable");
    let before = ok(&mut sis, "otelctl status");
    let start = Instant::now();
    let mut answered = 0;
    let status = loop {
        ok(&mut sis, &format!("echo while the collector is gone {answered}"));
        answered += 1;
        let status = ok(&mut sis, "otelctl status");
        if number(&status, "/spans/dropped_after_retries") > 0 {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "nothing dropped: {status}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let spans = &status["spans"];
    let attempts = &status["exports"]["traces"]["attempts"];
    assert!(number(attempts, "/refused") >= 4, "{status}");
    assert_eq!(number(attempts, "/succeeded"), number(&before, "/exports/traces/attempts/succeeded"));
    assert_eq!(number(spans, "/batches_dropped") * 4, number(attempts, "/refused") - number(attempts, "/refused") % 4);
    assert_eq!(
        number(spans, "/enqueued"),
        number(spans, "/exported") + number(spans, "/dropped_after_retries") + number(spans, "/held")
    );
    assert!(answered >= 2, "{answered}");
    assert_eq!(attempts["last_error"], "refused");
    // Stopped, and exported again to a new collector: the spans held since go there.
    stop_export(&mut sis, "traces");
    let collector = Collector::start(CollectorOptions::default()).unwrap();
    let port = collector.address().port();
    ok(&mut sis, &format!("otelctl export --to http://10.0.2.2:{port}/v1/traces --timeout-ms 1000"));
    ok(&mut sis, "otelctl disable");
    let status = wait_status(&mut sis, Duration::from_secs(30), |status| number(status, "/spans/held") == 0);
    let after = stop_export(&mut sis, "traces");
    assert_eq!(collector.summary().unwrap()["spans"], after["items_sent"]);
    let spans = &status["spans"];
    assert_eq!(number(spans, "/enqueued"), number(spans, "/exported") + number(spans, "/dropped_after_retries"));
}

/// A TCP server on 127.0.0.1 that accepts connections and never answers (held open for at most 60 s, then the
/// thread ends by itself); its port.
fn silent_server() -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut held = Vec::new();
        while start.elapsed() < Duration::from_secs(60) {
            if let Ok((stream, _)) = listener.accept() {
                held.push(stream);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    port
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn a_collector_that_never_answers_times_out_while_the_shell_keeps_answering_at_once() {
    let port = silent_server();
    let mut sis = boot();
    ok(&mut sis, "otelctl enable --seed 5");
    ok(&mut sis, &format!("otelctl export --to http://10.0.2.2:{port}/v1/traces --timeout-ms 3000"));
    // The first attempt waits 3 s for an answer that never comes; commands run meanwhile answer as fast as ever.
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut commands = 0;
    while start.elapsed() < Duration::from_millis(2500) {
        let sent = Instant::now();
        ok(&mut sis, &format!("echo {commands}"));
        slowest = slowest.max(sent.elapsed());
        commands += 1;
    }
    let status = ok(&mut sis, "otelctl status");
    assert_eq!(status["exports"]["traces"]["attempts"]["attempts"], 0, "{status}");
    let status = wait_status(&mut sis, Duration::from_secs(10), |status| {
        status["exports"]["traces"]["attempts"]["timeouts"].as_u64() >= Some(1)
    });
    let attempts = &status["exports"]["traces"]["attempts"];
    assert_eq!((attempts["attempts"].clone(), attempts["last_error"].clone()), (json!(1), json!("timeout")));
    assert_eq!(status["spans"]["retries"], 0);
    eprintln!("{commands} commands answered during a 3 s export attempt; slowest round trip {slowest:?}");
    assert!(slowest < Duration::from_millis(1000), "a command took {slowest:?} while the export waited");
    assert!(commands >= 10, "{commands}");
    // Stopping while the retry waits or runs: an attempt in progress is not cut short, so the export is
    // `stopping` until it ends (at most its 3 s deadline).
    let stopping = ok(&mut sis, "otelctl stop traces");
    assert_eq!(stopping["state"], "stopping");
    let stopped = wait_status(&mut sis, Duration::from_secs(10), |status| status["exports"]["traces"].is_null());
    let attempts = &stopped["stopped"]["traces"]["attempts"];
    assert!(number(attempts, "/timeouts") >= 1, "{stopped}");
    assert_eq!(number(attempts, "/attempts"), number(attempts, "/timeouts"), "{stopped}");

    // An address on the guest's network that nobody has: no connection, each attempt ends at its deadline.
    ok(&mut sis, "otelctl export --to http://10.0.2.99:4318/v1/metrics --timeout-ms 500 --interval-ms 60000");
    let status = wait_status(&mut sis, Duration::from_secs(10), |status| {
        status["exports"]["metrics"]["attempts"]["timeouts"].as_u64() >= Some(2)
    });
    let attempts = &status["exports"]["metrics"]["attempts"];
    assert_eq!(
        (attempts["succeeded"].clone(), attempts["last_error"].clone()),
        (json!(0), json!("timeout")),
        "{status}"
    );
    assert_eq!(number(attempts, "/attempts"), number(attempts, "/timeouts"), "{status}");
    let stopped = stop_export(&mut sis, "metrics");
    assert_eq!(stopped["items_sent"], 0);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn stress_phases_inferences_and_decision_latencies_reach_the_collector_with_nested_times() {
    let collector = Collector::start(CollectorOptions::default()).unwrap();
    let port = collector.address().port();
    let mut sis = boot();
    ok(&mut sis, "otelctl enable --seed 13");
    ok(&mut sis, &format!("otelctl export --to http://10.0.2.2:{port}/v1/traces"));
    ok(&mut sis, "autoctl on");
    // A suite that ends in Fail is still a run (error `stress-failed`): its span says which.
    let suite = sis.run_json("stresstest all --duration 200 --episodes 10 --seed 3").unwrap();
    let suite_error = suite["error"]["code"].as_str().map(String::from);
    ok(&mut sis, "llmctl register builtin");
    ok(&mut sis, "llmctl load shakespeare-lm");
    let inference = ok(&mut sis, "llmctl infer shakespeare-lm \"ROMEO:\" --max-tokens 20 --seed 4");
    assert_eq!(error_code(&mut sis, "llmctl infer no-such-model \"a\""), "unknown-model");
    ok(&mut sis, "autoctl off");
    ok(&mut sis, &format!("otelctl export --to http://10.0.2.2:{port}/v1/metrics --interval-ms 200"));
    ok(&mut sis, "otelctl disable");
    let status = wait_status(&mut sis, Duration::from_secs(30), |status| {
        number(status, "/spans/held") == 0 && number(status, "/exports/metrics/items_sent") >= 1
    });
    // The decision traces go as span events too: wait until their cursor reached the last one.
    let start = Instant::now();
    while {
        let decisions = ok(&mut sis, "otelctl decisions status");
        number(&decisions, "/otlp/cursor") < number(&decisions, "/next_id")
    } {
        assert!(start.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(200));
    }
    let traces = stop_export(&mut sis, "traces");
    stop_export(&mut sis, "metrics");
    let summary = collector.summary().unwrap();
    // Every span the queue exported plus one per decision batch: exactly what the export counts as sent.
    assert_eq!(summary["spans"], traces["items_sent"]);
    assert!(number(&traces, "/items_sent") > number(&status, "/spans/exported"), "{traces}");
    assert_eq!(number(&traces, "/attempts/attempts"), number(&traces, "/attempts/succeeded"));
    assert_eq!(
        (summary["orphans"].clone(), summary["unnested"].clone(), summary["rejected"].clone()),
        (json!([]), json!([]), json!(0)),
        "{}",
        summary["errors"]
    );
    let spans = summary["span_list"].as_array().unwrap();
    let named = |name: &str| spans.iter().filter(|span| span["name"] == name).collect::<Vec<_>>();

    // The suite: one root with its seed and outcome, a child per phase in order, each ending where the next begins.
    let roots = named("stress.all");
    assert_eq!(roots.len(), 1);
    let root = roots[0];
    assert_eq!(
        (root["parent_span_id"].as_str(), root["attributes"]["sis.stress.seed"].as_str()),
        (Some(""), Some("3"))
    );
    match &suite_error {
        None => assert_eq!((root["status_code"].as_u64(), suite["ok"].as_bool()), (Some(1), Some(true))),
        Some(code) => {
            assert_eq!((root["status_code"].as_u64(), root["status_message"].as_str()), (Some(2), Some(code.as_str())))
        }
    }
    let mut phases: Vec<&Value> = spans.iter().filter(|span| span["parent_span_id"] == root["span_id"]).collect();
    phases.sort_by_key(|span| span["attributes"]["sis.stress.part"].as_u64());
    let names: Vec<&str> = phases.iter().map(|span| span["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["memory", "commands", "multi", "learning"]);
    let mut boundary = number(root, "/start_time_unix_nano");
    for phase in &phases {
        assert_eq!(phase["trace_id"], root["trace_id"]);
        assert_eq!(number(phase, "/start_time_unix_nano"), boundary, "{phase}");
        boundary = number(phase, "/end_time_unix_nano");
        assert_eq!(phase["attributes"]["sis.stress.parts"], 4);
    }
    assert!(boundary <= number(root, "/end_time_unix_nano"));
    // The suite's tests run inside `all`: only `all` is a run of its own.
    assert_eq!(named("stress.memory").len(), 0);
    // The command that ran it is a span of its own, in its own trace.
    assert_eq!(named("stresstest all").len(), 1);

    // The inferences: one that generated, with the command's figures, and one refused with its code.
    let inferences = named("sis.llm.inference");
    assert_eq!(inferences.len(), 2);
    let generated = inferences[0];
    assert_eq!(generated["attributes"]["sis.llm.tokens"], inference["tokens"]);
    assert_eq!(generated["attributes"]["sis.llm.generation_ns"], inference["generation_ns"]);
    assert_eq!(generated["attributes"]["sis.llm.grant_ns"], inference["grant_ns"]);
    assert_eq!(
        (generated["attributes"]["sis.llm.seed"].as_str(), generated["status_code"].as_u64()),
        (Some("4"), Some(1))
    );
    let span_ns = number(generated, "/end_time_unix_nano") - number(generated, "/start_time_unix_nano");
    assert!(span_ns >= inference["generation_ns"].as_u64().unwrap() + inference["grant_ns"].as_u64().unwrap());
    assert_eq!(
        (inferences[1]["status_code"].as_u64(), inferences[1]["status_message"].as_str()),
        (Some(2), Some("unknown-model"))
    );

    // The meta-agent's decision times as an exact histogram: as many as `autoctl status` counted.
    let autonomy = ok(&mut sis, "autoctl status");
    let metrics = summary["metrics"].as_array().unwrap();
    let decisions = metrics.iter().rev().find(|metric| metric["name"] == "sis.autonomy.decision.duration").unwrap();
    let point = &decisions["points"][0];
    assert_eq!(decisions["type"], "histogram");
    assert_eq!(point["count"], autonomy["decision_cost"]["count"], "{autonomy}");
    assert_eq!(point["min"].as_f64(), autonomy["decision_cost"]["min_ns"].as_f64());
    assert_eq!(point["max"].as_f64(), autonomy["decision_cost"]["max_ns"].as_f64());
    assert!(point["count"].as_u64().unwrap() > 0);
}
