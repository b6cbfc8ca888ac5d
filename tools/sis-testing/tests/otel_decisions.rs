//! QEMU tests of the decision-trace export: the meta-agent's traces (a ring of the newest 256) read through
//! cursors as JSON lines in files (`otelctl decisions file`), from the web API (`GET /api/decisions`) and as OTLP
//! span events at the host collector. Across batches the ids are consecutive, none twice, and traces the ring
//! overwrote before a cursor reached them are reported as a count, exactly the ones missing.

mod common;
#[path = "otel_export/mod.rs"]
mod otel_export;

use std::time::{Duration, Instant};

use common::{error_code, number, ok};
use otel_export::stop_export;
use serde_json::{json, Value};
use sis_testing::otel::{Collector, CollectorOptions};
use sis_testing::web::WebClient;
use sis_testing::{free_local_port, hex, host_random_bytes, QemuConfig, Sis};

/// The ids of the JSON lines in `text` (each line one trace).
fn line_ids(text: &str) -> Vec<u64> {
    text.lines()
        .map(|line| {
            let trace: Value = serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}"));
            trace["id"].as_u64().unwrap_or_else(|| panic!("no id: {line}"))
        })
        .collect()
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn decision_traces_leave_through_file_web_and_otlp_cursors_each_once_with_evictions_counted() {
    let collector = Collector::start(CollectorOptions::default()).unwrap();
    let token = hex(&host_random_bytes().unwrap());
    let config = QemuConfig::new().web_server(free_local_port().unwrap(), Some(token.clone()));
    let web = WebClient::new(config.forwarded_address().unwrap());
    let mut sis = Sis::boot(&config).unwrap_or_else(|error| panic!("boot: {error}"));

    let status = ok(&mut sis, "otelctl decisions status");
    assert_eq!((status["next_id"].clone(), status["oldest_id"].clone()), (json!(0), json!(0)));
    let read = ok(&mut sis, "otelctl decisions read");
    assert_eq!(
        (read["traces"].clone(), read["next_cursor"].clone(), read["evicted"].clone()),
        (json!([]), json!(0), json!(0))
    );
    assert_eq!(error_code(&mut sis, "otelctl decisions read --max 0"), "out-of-range");
    assert_eq!(error_code(&mut sis, "otelctl decisions read --max 257"), "out-of-range");
    assert_eq!(error_code(&mut sis, "otelctl decisions file relative.jsonl"), "invalid-path");

    // A short run: fewer traces than the ring holds. The file gets them all, from 0, in order.
    ok(&mut sis, "autoctl on");
    ok(&mut sis, "stresstest memory --duration 300 --pool-mib 16 --seed 4");
    // A trace is read only once its outcome is final; off, autonomy stops watching, so every trace is.
    let watching = ok(&mut sis, "otelctl decisions status");
    assert!(number(&watching, "/settled_until") <= number(&watching, "/next_id"), "{watching}");
    ok(&mut sis, "autoctl off");
    let status = ok(&mut sis, "otelctl decisions status");
    let first_run = number(&status, "/next_id");
    assert_eq!(number(&status, "/settled_until"), first_run, "{status}");
    assert!((10..256).contains(&first_run), "{first_run} decisions");
    let written = ok(&mut sis, "otelctl decisions file /decisions/1.jsonl");
    assert_eq!(
        (number(&written, "/first_id"), number(&written, "/count"), number(&written, "/evicted")),
        (0, first_run, 0)
    );
    assert_eq!(number(&written, "/next_cursor"), first_run);
    let file = ok(&mut sis, "cat /decisions/1.jsonl");
    assert_eq!(line_ids(file["content"].as_str().unwrap()), (0..first_run).collect::<Vec<_>>());
    assert_eq!(file["size"], written["bytes"]);
    // The same trace as `autoctl explain` shows it.
    let explained = ok(&mut sis, "autoctl explain 3");
    let line3: Value = serde_json::from_str(file["content"].as_str().unwrap().lines().nth(3).unwrap()).unwrap();
    assert_eq!(line3["disposition"], explained["trace"]["disposition"], "{explained}");
    assert_eq!(line3["at_ns"], explained["trace"]["at_ns"]);
    // Nothing new: an empty file, the cursor where it was. A write that fails moves nothing.
    let empty = ok(&mut sis, "otelctl decisions file /decisions/empty.jsonl");
    assert_eq!((number(&empty, "/count"), number(&empty, "/next_cursor")), (0, first_run));
    assert_eq!(error_code(&mut sis, "otelctl decisions file /"), "is-a-directory");

    // A long run with a 1 ms interval: the ring wraps. The next file starts at the oldest trace kept and says
    // exactly how many it never saw.
    ok(&mut sis, "autoctl interval 1");
    ok(&mut sis, "autoctl on");
    ok(&mut sis, "stresstest memory --duration 5000 --pool-mib 16 --seed 5");
    ok(&mut sis, "autoctl off");
    let status = ok(&mut sis, "otelctl decisions status");
    let (next_id, oldest_id) = (number(&status, "/next_id"), number(&status, "/oldest_id"));
    assert_eq!(next_id - oldest_id, 256, "{status}");
    assert!(oldest_id > first_run, "{status}");
    let written = ok(&mut sis, "otelctl decisions file /decisions/2.jsonl");
    assert_eq!(
        (number(&written, "/first_id"), number(&written, "/count"), number(&written, "/evicted")),
        (oldest_id, 256, oldest_id - first_run)
    );
    let file = ok(&mut sis, "cat /decisions/2.jsonl");
    assert_eq!(line_ids(file["content"].as_str().unwrap()), (oldest_id..next_id).collect::<Vec<_>>());
    let totals = &written["totals"];
    assert_eq!(
        (number(totals, "/exported") + number(totals, "/evicted"), number(totals, "/cursor")),
        (next_id, next_id)
    );
    println!(
        "{next_id} decisions: {first_run} in the first file, {} evicted, 256 in the second",
        oldest_id - first_run
    );

    // The web API: a client follows its own cursor from 0 in pages of 100.
    let mut cursor = 0;
    let mut ids = Vec::new();
    let mut evicted = 0;
    loop {
        let page = web.get(&format!("/api/decisions?cursor={cursor}&max=100"), Some(&token)).unwrap();
        assert_eq!(page.status, 200);
        let page = page.json().unwrap();
        evicted += number(&page, "/evicted");
        let traces = page["traces"].as_array().unwrap();
        ids.extend(traces.iter().map(|trace| trace["id"].as_u64().unwrap()));
        let next = number(&page, "/next_cursor");
        if traces.is_empty() {
            assert_eq!(next, cursor);
            break;
        }
        cursor = next;
    }
    assert_eq!((evicted, ids), (oldest_id, (oldest_id..next_id).collect::<Vec<_>>()));
    for query in ["cursor=x", "max=0", "max=300", "cursor=1&cursor=2", "other=1"] {
        let refused = web.get(&format!("/api/decisions?{query}"), Some(&token)).unwrap();
        assert_eq!((refused.status, refused.json().unwrap()["error"]["code"].clone()), (400, json!("bad-query")));
    }
    assert_eq!(web.get("/api/decisions", None).unwrap().status, 401);

    // OTLP: the traces' span events reach the collector from the OTLP cursor, which started at 0.
    ok(&mut sis, "otelctl enable --seed 9");
    let port = collector.address().port();
    ok(&mut sis, &format!("otelctl export --to http://10.0.2.2:{port}/v1/traces"));
    // A line through the web door is recorded as a console line is.
    assert_eq!(web.get("/api/decisions?cursor=0&max=1", Some(&token)).unwrap().status, 200);
    ok(&mut sis, "otelctl disable");
    let start = Instant::now();
    let status = loop {
        let status = ok(&mut sis, "otelctl decisions status");
        let held = number(&ok(&mut sis, "otelctl status"), "/spans/held");
        if number(&status, "/otlp/cursor") == next_id && held == 0 {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{status}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let stopped = stop_export(&mut sis, "traces");
    assert_eq!((number(&status, "/otlp/exported"), number(&status, "/otlp/evicted")), (next_id - oldest_id, oldest_id));
    assert_eq!(number(&stopped, "/decisions_sent"), next_id - oldest_id);
    let summary = collector.summary().unwrap();
    let decision_spans: Vec<&Value> = summary["span_list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|span| span["name"] == "sis.autonomy.decisions")
        .collect();
    assert_eq!(decision_spans.len() as u64, number(&status, "/otlp/batches"));
    let mut event_ids = Vec::new();
    let mut span_evicted = 0;
    for span in &decision_spans {
        assert_eq!((span["scope"].as_str(), span["parent_span_id"].as_str()), (Some("sis.autonomy"), Some("")));
        let events = span["events"].as_array().unwrap();
        assert_eq!(span["attributes"]["sis.records.count"], events.len() as u64, "{span}");
        span_evicted += span["attributes"]["sis.records.evicted"].as_u64().unwrap();
        let first = span["attributes"]["sis.records.first_seq"].as_u64().unwrap();
        for (offset, event) in events.iter().enumerate() {
            assert_eq!(event["name"], "decision");
            assert_eq!(event["attributes"]["sis.record.seq"], first + offset as u64);
            assert_eq!(event["attributes"]["sis.decision.id"], first + offset as u64);
            assert!(event["attributes"]["sis.decision.disposition"].is_string(), "{event}");
            event_ids.push(first + offset as u64);
        }
        // The span covers its events.
        let (span_start, span_end) = (number(span, "/start_time_unix_nano"), number(span, "/end_time_unix_nano"));
        assert!(events.iter().all(|event| {
            let at = number(event, "/time_unix_nano");
            span_start <= at && at <= span_end
        }));
    }
    assert_eq!((span_evicted, event_ids), (oldest_id, (oldest_id..next_id).collect::<Vec<_>>()));
    assert_eq!((summary["orphans"].clone(), summary["rejected"].clone()), (json!([]), json!(0)));
    // A fresh meta-agent (`autoctl policy`) numbers its traces from 0 again; the export's `seq` runs on, so the
    // file cursor (at the old agent's end) takes the new traces next, none skipped, none counted twice.
    ok(&mut sis, "autoctl policy never-act");
    let fresh = ok(&mut sis, "otelctl decisions status");
    assert_eq!((number(&fresh, "/next_id"), number(&fresh, "/oldest_id")), (next_id, next_id));
    ok(&mut sis, "autoctl on");
    // With a policy that never acts the run may end in OOM events (`stress-failed`): it decides all the same.
    let run = sis.run_json("stresstest memory --duration 300 --pool-mib 16 --seed 6").unwrap();
    assert_eq!(run["command"], "stresstest memory", "{run}");
    ok(&mut sis, "autoctl off");
    let after = number(&ok(&mut sis, "otelctl decisions status"), "/next_id");
    assert!(after > next_id, "no decisions by the new agent");
    let written = ok(&mut sis, "otelctl decisions file /decisions/3.jsonl");
    assert_eq!(
        (number(&written, "/first_id"), number(&written, "/count"), number(&written, "/evicted")),
        (next_id, after - next_id, 0)
    );
    let file = ok(&mut sis, "cat /decisions/3.jsonl");
    let lines: Vec<Value> =
        file["content"].as_str().unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let seqs: Vec<u64> = lines.iter().map(|line| line["seq"].as_u64().unwrap()).collect();
    let ids: Vec<u64> = lines.iter().map(|line| line["id"].as_u64().unwrap()).collect();
    assert_eq!((seqs, ids), ((next_id..after).collect::<Vec<_>>(), (0..after - next_id).collect::<Vec<_>>()));
    assert_eq!(lines[0]["policy"], "never-act");
    let names = &summary["span_names"];
    assert_eq!(
        (names["otelctl decisions read"].clone(), names["otelctl export"].clone()),
        (json!(1), json!(1)),
        "{names}"
    );
}
