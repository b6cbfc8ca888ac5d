//! QEMU tests of `feedback`: a verdict is stored with its decision's figures as the trace gave them, refusals store
//! nothing, stats count exactly, a web token is its own principal, and the store on the disk is read back after a
//! reboot as the host decodes it.

use serde_json::Value;
use sis_autonomy::feedback::{decode, HEADER_BYTES};
use sis_testing::web::{Request, WebClient};
use sis_testing::{free_local_port, hex, host_random_bytes, QemuConfig, ScratchDisk, Sis, DEFAULT_DISK_BYTES};

/// The feedback region: the 2,048 sectors before the audit log's last 4,096 (kernel/src/disk_region.rs).
const REGION_FROM_END: u64 = 6144;
const REGION_SECTORS: u64 = 2048;

fn ok(json: &Value) -> &Value {
    assert_eq!(json["ok"], true, "{json}");
    json
}

fn error_code(json: &Value) -> String {
    assert_eq!(json["ok"], false, "{json}");
    json["error"]["code"].as_str().unwrap().to_string()
}

/// Runs a short memory workload with autonomy on, so the meta-agent has decisions; returns the last `count` traces.
fn decisions(sis: &mut Sis, count: u64) -> Vec<Value> {
    ok(&sis.run_json("autoctl on --json").unwrap());
    // The run's verdict depends on timing (an OOM or two under pressure makes it a partial pass); it ran either way.
    let run = sis.run_json("stresstest memory --duration 300 --seed 3 --json").unwrap();
    assert!(run["memory"]["steps"].as_u64().unwrap() > 0, "{run}");
    ok(&sis.run_json("autoctl off --json").unwrap());
    let audit = sis.run_json(&format!("autoctl audit last {count} --json")).unwrap();
    let traces = ok(&audit)["traces"].as_array().unwrap().clone();
    assert_eq!(traces.len() as u64, count, "{audit}");
    traces
}

/// The (sequence, principal, verdict, decision) of each stored entry.
fn listed(sis: &mut Sis) -> Vec<(u64, String, String, u64)> {
    let list = sis.run_json("feedback list --limit 4096 --json").unwrap();
    ok(&list)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["sequence"].as_u64().unwrap(),
                entry["principal"].as_str().unwrap().to_string(),
                entry["verdict"].as_str().unwrap().to_string(),
                entry["decision"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn entry(sequence: u64, principal: &str, verdict: &str, decision: u64) -> (u64, String, String, u64) {
    (sequence, principal.to_string(), verdict.to_string(), decision)
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn verdicts_keep_their_decisions_figures_count_exactly_and_survive_a_reboot() {
    let disk = ScratchDisk::create(DEFAULT_DISK_BYTES).unwrap();
    let config = QemuConfig::new().disk_image(disk.path());
    let mut sis = Sis::boot(&config).unwrap();
    let traces = decisions(&mut sis, 2);
    let (first, second) = (&traces[0], &traces[1]);
    let id = |trace: &Value| trace["id"].as_u64().unwrap();

    let given =
        sis.run_json(&format!("feedback {} good --comment \"freed memory in time\" --json", id(first))).unwrap();
    let stored = &ok(&given)["feedback"];
    assert_eq!(stored["sequence"], 0);
    assert_eq!(stored["session"], 1);
    assert_eq!(stored["principal"], "console");
    assert_eq!(stored["verdict"], "good");
    assert_eq!(stored["comment"], "freed memory in time");
    // The decision's figures are the trace's own.
    assert_eq!(stored["decision"], first["id"]);
    assert_eq!(stored["decision_at_ns"], first["at_ns"]);
    assert_eq!(stored["policy"], first["policy"]);
    assert_eq!(stored["action"], first["directive"]["directive"]);
    assert_eq!(stored["disposition"], first["disposition"]);
    assert_eq!(given["persistence"]["state"], "persisting");
    ok(&sis.run_json(&format!("feedback {} bad --json", id(second))).unwrap());

    // Refusals store nothing.
    let before = listed(&mut sis);
    assert_eq!(error_code(&sis.run_json(&format!("feedback {} bad --json", id(first))).unwrap()), "duplicate-feedback");
    let long = "x".repeat(257);
    assert_eq!(
        error_code(&sis.run_json(&format!("feedback {} good --comment {long} --json", id(second))).unwrap()),
        "comment-too-long"
    );
    assert_eq!(error_code(&sis.run_json("feedback 100000 good --json").unwrap()), "not-found");
    assert_eq!(error_code(&sis.run_json("feedback 0 maybe --json").unwrap()), "invalid-value");
    assert_eq!(listed(&mut sis), before);
    assert_eq!(before, [entry(0, "console", "good", id(first)), entry(1, "console", "bad", id(second))]);

    let stats = sis.run_json("feedback stats --json").unwrap();
    let stats = &ok(&stats)["stats"];
    assert_eq!((stats["total"].as_u64(), stats["good"].as_u64(), stats["bad"].as_u64()), (Some(2), Some(1), Some(1)));
    assert_eq!(stats["bad_per_mille"], 500);
    let policy_total: u64 = stats["by_policy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| group["good"].as_u64().unwrap() + group["bad"].as_u64().unwrap())
        .sum();
    assert_eq!(policy_total, 2);
    let only_bad = sis.run_json("feedback stats --verdict bad --json").unwrap();
    assert_eq!((ok(&only_bad)["stats"]["total"].as_u64(), only_bad["stats"]["good"].as_u64()), (Some(1), Some(0)));
    drop(sis);

    // The host decodes the region the guest wrote: the same two entries.
    let start_lba = DEFAULT_DISK_BYTES / 512 - REGION_FROM_END;
    let region = disk.read_sectors(start_lba, REGION_SECTORS).unwrap();
    let decoded = decode(&region, 4096).unwrap();
    assert_eq!(decoded.dropped_bytes, 0);
    let host: Vec<_> = decoded
        .store
        .entries()
        .iter()
        .map(|entry| {
            (entry.sequence, entry.principal.clone(), entry.verdict.name().to_string(), entry.subject.decision)
        })
        .collect();
    assert_eq!(host, before);
    assert_eq!(decoded.store.entries()[0].comment, "freed memory in time");
    assert!(decoded.end_offset > HEADER_BYTES);

    // The next boot reads them back as session 2; a new verdict continues the sequence.
    let mut sis = Sis::boot(&config).unwrap();
    let status = sis.run_json("feedback status --json").unwrap();
    assert_eq!(
        (
            ok(&status)["entries"].as_u64(),
            status["session"].as_u64(),
            status["persistence"]["recovered_entries"].as_u64()
        ),
        (Some(2), Some(2), Some(2))
    );
    assert_eq!(status["persistence"]["start_lba"], start_lba);
    assert_eq!(listed(&mut sis), before);
    let traces = decisions(&mut sis, 1);
    let given = sis.run_json(&format!("feedback {} bad --json", id(&traces[0]))).unwrap();
    assert_eq!(
        (ok(&given)["feedback"]["sequence"].as_u64(), given["feedback"]["session"].as_u64()),
        (Some(2), Some(2))
    );
    drop(sis);
    let region = disk.read_sectors(start_lba, REGION_SECTORS).unwrap();
    assert_eq!(decode(&region, 4096).unwrap().store.entries().len(), 3);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn a_web_token_gives_feedback_as_itself() {
    let admin = hex(&host_random_bytes().unwrap());
    let config = QemuConfig::new().web_server(free_local_port().unwrap(), Some(admin));
    let client = WebClient::new(config.forwarded_address().unwrap());
    let mut sis = Sis::boot(&config).unwrap();
    let traces = decisions(&mut sis, 1);
    let decision = traces[0]["id"].as_u64().unwrap();
    let created = sis.run_json("webctl token create --role viewer --json").unwrap();
    let (token, secret) =
        (ok(&created)["token"]["id"].as_u64().unwrap(), created["secret"].as_str().unwrap().to_string());

    let line = format!("feedback {decision} bad --comment \"too eager\"");
    let transfer = client.send(&Request::command(&line).bearer(&secret)).unwrap();
    let reply = transfer.json().unwrap();
    assert_eq!(transfer.status, 200, "{reply}");
    assert_eq!(ok(&reply)["feedback"]["principal"], format!("token:{token}"));
    // The console judges the same decision separately; the token cannot judge it twice.
    ok(&sis.run_json(&format!("feedback {decision} good --json")).unwrap());
    let again = client.send(&Request::command(&line).bearer(&secret)).unwrap().json().unwrap();
    assert_eq!(error_code(&again), "duplicate-feedback");
    assert_eq!(
        listed(&mut sis),
        [entry(0, &format!("token:{token}"), "bad", decision), entry(1, "console", "good", decision)]
    );
    let by_token = sis.run_json(&format!("feedback stats --principal token:{token} --json")).unwrap();
    assert_eq!((ok(&by_token)["stats"]["total"].as_u64(), by_token["stats"]["bad"].as_u64()), (Some(1), Some(1)));
    let status = sis.run_json("feedback status --json").unwrap();
    assert_eq!(ok(&status)["persistence"]["state"], "no-disk");
}
