//! Phase 1's judge against the replies of one deterministic boot, and against those replies changed the way a
//! broken kernel would change them: each test fails, with expected against got.

use std::time::Duration;

use serde_json::{json, Value};

use super::super::dataflow::{self, steps, DATAFLOW_COMMANDS};
use super::super::{phase_result, Status, PHASES};

/// The replies of [`DATAFLOW_COMMANDS`], as one deterministic boot printed them (`cargo xtask run
/// --deterministic` with those commands, 2026-12-07).
fn recorded() -> Vec<Value> {
    include_str!("../phase1_replies.jsonl").lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

/// Test `test`'s verdict after `change` to the recorded replies.
fn verdict(test: &str, change: impl FnOnce(&mut Vec<Value>)) -> Result<(), String> {
    let mut replies = recorded();
    change(&mut replies);
    dataflow::dataflow(&replies).into_iter().find(|(name, _)| *name == test).unwrap().1
}

/// The reply of the step labelled `label`.
fn at<'a>(replies: &'a mut [Value], label: &str) -> &'a mut Value {
    let index = steps().iter().position(|step| step.label == label).unwrap_or_else(|| panic!("step {label}"));
    &mut replies[index]
}

/// Operator `name` of a status or stats reply.
fn op<'a>(reply: &'a mut Value, name: &str) -> &'a mut Value {
    reply["ops"].as_array_mut().unwrap().iter_mut().find(|op| op["name"] == name).unwrap()
}

/// The counters of channel `from -> to` of a stats reply.
fn channel<'a>(reply: &'a mut Value, from: &str, to: &str) -> &'a mut Value {
    let edges = reply["edges"].as_array_mut().unwrap();
    &mut edges.iter_mut().find(|edge| edge["from"] == from && edge["to"] == to).unwrap()["stats"]
}

fn add(value: &mut Value, amount: i64) {
    *value = Value::from(value.as_u64().unwrap().checked_add_signed(amount).unwrap());
}

#[test]
fn every_step_has_a_unique_label_and_asks_for_json() {
    let steps = steps();
    let mut labels: Vec<&str> = steps.iter().map(|step| step.label.as_str()).collect();
    labels.sort_unstable();
    labels.dedup();
    assert_eq!(labels.len(), steps.len(), "labels are unique");
    assert!(steps.iter().all(|step| step.command.ends_with(" --json") && step.command.starts_with(&step.name)));
    assert!(!DATAFLOW_COMMANDS.contains('"'), "the batch is quoted in one boot argument");
    assert_eq!(DATAFLOW_COMMANDS.split("; ").count(), steps.len());
}

#[test]
fn the_probe_runs_every_kind_map_operation_aggregate_and_overflow_policy() {
    let commands = DATAFLOW_COMMANDS.as_str();
    for kind in sis_dataflow::graph::OpKind::NAMES {
        assert!(commands.contains(&format!(" {kind} --name ")), "kind {kind}");
    }
    for operation in ["add-scalar", "mul-scalar", "relu", "softmax", "transpose", "reshape", "matmul", "sum", "mean"] {
        assert!(commands.contains(&format!("--op {operation} ")), "map {operation}");
    }
    for operation in ["add", "sub", "mul"] {
        assert!(commands.contains(&format!("--op {operation} --json")), "map {operation}");
    }
    for aggregate in ["sum", "mean", "max"] {
        assert!(commands.contains(&format!("--aggregate {aggregate} ")), "window {aggregate}");
    }
    for policy in ["drop-newest", "drop-oldest"] {
        assert!(commands.contains(&format!("--overflow {policy} ")), "overflow {policy}");
    }
    assert!(commands.contains(" --shape 4x8 --count 64 ") && commands.contains(" --count 200 --seed 3 --json"));
}

#[test]
fn phase_1_judged_on_real_replies_passes_all_thirteen() {
    let verdicts = dataflow::dataflow(&recorded());
    assert_eq!(verdicts.len(), 13);
    for (test, verdict) in &verdicts {
        assert_eq!(verdict, &Ok(()), "{test}");
    }
    let result = phase_result(&PHASES[0], &verdicts, Duration::from_millis(20_000));
    assert_eq!((result.passed, result.total, result.pending_issue), (13, 13, None), "phase 1 is off the pending list");
    assert!(result.tests.iter().all(|test| test.status == Status::Passed && test.duration_ms == 20_000));
}

#[test]
fn a_missing_reply_fails_every_test_with_the_count_and_a_reply_out_of_place_is_named() {
    let replies = recorded();
    let verdicts = dataflow::dataflow(&replies[..replies.len() - 1]);
    assert_eq!(verdicts.len(), 13);
    let expected = format!("{} JSON replies, expected {}", replies.len() - 1, replies.len());
    assert!(verdicts.iter().all(|(_, verdict)| verdict == &Err(expected.clone())));
    let swapped = verdict("Graph creation", |replies| {
        let listed = at(replies, "list building").clone();
        *at(replies, "g1 status building") = listed;
    });
    assert!(swapped
        .unwrap_err()
        .starts_with("the reply of `graphctl status g1 --json`, got {\"command\":\"graphctl list\""));
}

#[test]
fn a_connection_shown_otherwise_than_built_fails_graph_creation() {
    let reason = verdict("Graph creation", |replies| {
        channel_spec(at(replies, "g1 status building"), 0)["capacity"] = Value::from(9);
    });
    assert_eq!(
        reason,
        Err(String::from(
            "g1: connection {\"capacity\":8,\"from\":\"src\",\"overflow\":\"block\",\"port\":0,\"to\":\"proj\"}: capacity 8, got 9"
        ))
    );
    let reason = verdict("Graph creation", |replies| {
        op(at(replies, "g1 status building"), "proj")["schedule"]["budget_ns"] = Value::from(1_000_000);
    });
    assert!(reason.unwrap_err().starts_with("g1: operator proj: schedule {\"budget_ns\":2000000,"));
}

fn channel_spec(reply: &mut Value, index: usize) -> &mut Value {
    &mut reply["edges"][index]
}

#[test]
fn a_wrong_checksum_or_counter_fails_graph_execution() {
    let reason = verdict("Graph execution", |replies| {
        op(at(replies, "g1 stats"), "out2")["sink"]["checksum"] = Value::from(9_488_696_581_643_123_873u64);
    });
    assert_eq!(
        reason,
        Err(String::from(
            "g1: sink out2 gets 64 items with checksum 9488696581643123872 (the reference run), got 64 items with \
             checksum 9488696581643123873"
        ))
    );
    let reason =
        verdict("Graph execution", |replies| add(&mut op(at(replies, "g1 stats"), "keep")["counters"]["filtered"], 1));
    assert!(reason.unwrap_err().starts_with("g1: keep's counters {"));
}

#[test]
fn an_item_lost_uncounted_or_a_slow_query_fails_graph_queries() {
    // What a stop did before it offered the item in hand: the source counted an output no channel was offered.
    let reason =
        verdict("Graph queries", |replies| add(&mut op(at(replies, "share stats"), "a-src")["counters"]["outputs"], 1));
    assert_eq!(reason, Err(String::from("share: channel a-src -> a-soft offered each of a-src's 42 outputs, got 41")));
    let reason = verdict("Graph queries", |replies| {
        add(&mut channel(at(replies, "share stats"), "b-src", "b-soft")["dropped"], -1)
    });
    assert_eq!(
        reason,
        Err(String::from(
            "share: channel b-src -> b-soft: offered = received + dropped + queued, got 63 != 30 + 32 + 0"
        ))
    );
    // Status and stats disagreeing; then both showing a channel that delivered an item more than was offered.
    let reason =
        verdict("Graph queries", |replies| add(&mut channel(at(replies, "g1 stats"), "tot", "win")["received"], 1));
    assert!(reason.unwrap_err().starts_with("g1 finished: status and stats show the same figures, got {"));
    let reason = verdict("Graph queries", |replies| {
        let mut stats = at(replies, "g1 stats").clone();
        add(&mut channel(&mut stats, "tot", "win")["received"], 1);
        *at(replies, "g1 stats") = stats.clone();
        stats["command"] = Value::from("graphctl status");
        *at(replies, "g1 status finished") = stats;
    });
    assert_eq!(
        reason,
        Err(String::from("g1: channel tot -> win: offered = received + dropped + queued, got 64 != 65 + 0 + 0"))
    );
    // The wait a reader had for an operator's lock while its thread, preempted, held it for an item's work.
    let reason = verdict("Graph queries", |replies| {
        add(&mut at(replies, "share uptime after query")["uptime_ns"], 1_300_000_000)
    });
    assert_eq!(reason, Err(String::from("share running: stats answered within 100000000 ns, got 1305391648 ns")));
}

#[test]
fn memory_not_given_back_or_a_thread_left_fails_graph_cleanup() {
    let reason = verdict("Graph cleanup", |replies| add(&mut at(replies, "memory after")["heap_used_bytes"], 64));
    assert_eq!(reason, Err(String::from("meminfo after destroy: heap_used_bytes 137564 (before create), got 137628")));
    let reason = verdict("Graph cleanup", |replies| {
        at(replies, "threads after")["threads"].as_array_mut().unwrap().push(json!({"id": 25, "name": "src"}));
    });
    assert!(reason.unwrap_err().starts_with("no operator thread of g1 ([Number(25), "));
    let reason = verdict("Graph cleanup", |replies| {
        at(replies, "g1 destroy")["destroyed"]["budget"]["used_bytes"] = Value::from(96)
    });
    assert_eq!(reason, Err(String::from("g1 destroy: used_bytes 0, got 96")));
}

#[test]
fn a_wrong_result_or_a_misnamed_refusal_fails_operator_types() {
    let reason =
        verdict("Operator types", |replies| add(&mut op(at(replies, "tb stats"), "k-inf")["sink"]["checksum"], 1));
    assert!(reason.unwrap_err().starts_with("tb: sink k-inf gets 12 items with checksum "));
    let reason =
        verdict("Operator types", |replies| at(replies, "ta unknown kind")["error"]["code"] = Value::from("bad-kind"));
    assert!(reason
        .unwrap_err()
        .starts_with("ta unknown kind: refused with invalid-value \"KIND must be one of source, map, "));
}

#[test]
fn shares_away_from_priority_or_budget_fail_operator_priorities() {
    // Priorities ignored: over the window both softmaxes grow by the same CPU time.
    let reason = verdict("Operator priorities", |replies| {
        let cpu =
            |replies: &mut [Value], label: &str, name: &str| op(at(replies, label), name)["cpu_ns"].as_u64().unwrap();
        let low = cpu(replies, "share stats late", "a-soft") - cpu(replies, "share stats running", "a-soft");
        let high_start = cpu(replies, "share stats running", "b-soft");
        op(at(replies, "share stats late"), "b-soft")["cpu_ns"] = Value::from(high_start + low);
    });
    assert!(reason.unwrap_err().contains("within 3.8..=4.2, got 1.000 ("));
    // A server that gave its softmax 300 per mille.
    let reason = verdict("Operator priorities", |replies| {
        let first = at(replies, "share stats running").clone();
        let late = at(replies, "share stats late");
        let window = late["elapsed_ns"].as_u64().unwrap() - first["elapsed_ns"].as_u64().unwrap();
        let start =
            first["ops"].as_array().unwrap().iter().find(|op| op["name"] == "c-soft").unwrap()["cpu_ns"].clone();
        op(late, "c-soft")["cpu_ns"] = Value::from(start.as_u64().unwrap() + window * 3 / 10);
    });
    assert!(reason
        .unwrap_err()
        .starts_with("share: the CBS softmax uses 196..=204 per mille of the 2049436432 ns window"));
}

#[test]
fn an_accepted_wrong_connection_or_a_changed_graph_fails_operator_connections() {
    let reason = verdict("Operator connections", |replies| {
        *at(replies, "conn self loop") = json!({"command": "graphctl connect", "ok": true, "port": 0});
    });
    assert_eq!(
        reason,
        Err(String::from(
            "conn self loop: refused with self-loop \"m cannot feed itself\", got {\"command\":\"graphctl connect\",\"ok\":true,\"port\":0}"
        ))
    );
    let reason = verdict("Operator connections", |replies| {
        channel_spec(at(replies, "conn status after"), 1)["capacity"] = Value::from(4)
    });
    assert!(reason.unwrap_err().starts_with("conn: status unchanged and building, got {"));
    let reason = verdict("Operator connections", |replies| {
        at(replies, "cyc start refused")["error"]["message"] = Value::from("cycle")
    });
    assert!(reason.unwrap_err().starts_with("cyc start refused: refused with cycle \"cycle: "));
}

#[test]
fn a_rate_off_its_definition_fails_basic_throughput() {
    let reason = verdict("Basic throughput", |replies| add(&mut op(at(replies, "thr stats"), "out")["items_per_s"], 1));
    assert_eq!(
        reason,
        Err(String::from("thr: items_per_s = 20000 items over 397207760 ns = 50351, above 0, got 50352"))
    );
}

#[test]
fn graphs_one_after_the_other_or_a_lost_copy_fail_concurrent_channels() {
    let reason = verdict("Concurrent channels", |replies| {
        at(replies, "list concurrent")["graphs"][1]["state"] = Value::from("finished");
    });
    assert!(reason.unwrap_err().starts_with("fan and chain running at once, got {"));
    let reason = verdict("Concurrent channels", |replies| {
        let stats = at(replies, "fan stats");
        add(&mut channel(stats, "src", "neg")["received"], -1);
        add(&mut channel(stats, "src", "neg")["dropped"], 1);
        add(&mut op(stats, "neg")["counters"]["inputs"], -1);
        add(&mut op(stats, "neg")["counters"]["outputs"], -1);
        add(&mut channel(stats, "neg", "k-neg")["offered"], -1);
        add(&mut channel(stats, "neg", "k-neg")["received"], -1);
        add(&mut op(stats, "k-neg")["counters"]["inputs"], -1);
        add(&mut op(stats, "k-neg")["sink"]["items"], -1);
    });
    assert_eq!(reason, Err(String::from("fan: sink k-neg gets 300 items with checksum 10014327782308414287 (the reference run), got 299 items with checksum 10014327782308414287")));
}

#[test]
fn no_wait_behind_a_full_channel_or_an_uncounted_drop_fails_backpressure() {
    let reason = verdict("Backpressure", |replies| {
        channel(at(replies, "bpb stats"), "src", "soft")["blocked_count"] = Value::from(0)
    });
    assert!(reason.unwrap_err().starts_with("bpb: the source waited for room (blocked_count, blocked_ns > 0), got {"));
    // One drop the counters miss: received + dropped no longer the 200 offered.
    let reason = verdict("Backpressure", |replies| {
        let stats = at(replies, "bpo stats");
        add(&mut channel(stats, "src", "soft")["dropped"], -1);
        add(&mut channel(stats, "src", "soft")["offered"], -1);
    });
    assert_eq!(reason, Err(String::from("bpo: channel src -> soft offered each of src's 200 outputs, got 199")));
}

#[test]
fn a_value_or_budget_unlike_the_hosts_fails_tensor_creation() {
    let reason = verdict("Tensor creation", |replies| {
        let value = &mut at(replies, "create r")["values"][1];
        *value = Value::from(f64::from(f32::from_bits((value.as_f64().unwrap() as f32).to_bits() + 1)));
    });
    assert!(reason.unwrap_err().starts_with("create r: values [0.48312974, -0.68017924, "));
    let reason = verdict("Tensor creation", |replies| add(&mut at(replies, "create f")["budget"]["used_bytes"], 4));
    assert!(reason.unwrap_err().starts_with("create f: budget {\"allocations\":2,"));
    // A shape too large accepted.
    let reason = verdict("Tensor creation", |replies| *at(replies, "create huge") = at(replies, "create z").clone());
    assert!(reason.unwrap_err().starts_with(
        "create huge: refused with too-large \"shape [100000, 100000] has more than the 4194304 elements a tensor may hold\", got {"
    ));
}

#[test]
fn a_result_unlike_the_hosts_fails_tensor_operations() {
    let reason = verdict("Tensor operations", |replies| {
        at(replies, "op o-matmul")["checksum"] = Value::from("a82d868d2fda659e")
    });
    assert_eq!(reason, Err(String::from("op o-matmul: checksum \"a82d868d2fda659f\", got \"a82d868d2fda659e\"")));
    let reason = verdict("Tensor operations", |replies| at(replies, "op o-tr")["contiguous"] = Value::from(true));
    assert_eq!(reason, Err(String::from("op o-tr: contiguous false, got true")));
    let reason = verdict("Tensor operations", |replies| add(&mut at(replies, "free all")["freed"], -1));
    assert_eq!(reason, Err(String::from("free --all: freed 23, got 22")));
}

#[test]
fn a_pipeline_short_of_an_item_fails_tensor_pipelines() {
    let reason =
        verdict("Tensor pipelines", |replies| add(&mut op(at(replies, "tp stats"), "out")["sink"]["items"], -1));
    assert_eq!(
        reason,
        Err(String::from(
            "tp: sink out gets 50 items with checksum 319153781110467826 (the reference run), got 49 items with checksum 319153781110467826"
        ))
    );
}

#[test]
fn zz_dump_commands() {
    std::fs::write("/tmp/dfp_commands.txt", DATAFLOW_COMMANDS.as_str()).unwrap();
}
