//! QEMU tests of `agentsys`: the example WebAssembly agents run on their own kernel threads; each hostile one is
//! stopped with its exact reason while the shell answers and the others do their work; every host call is
//! audited; a crashing agent restarts with backoff and gives up; after unloading, heap and frames are back; under
//! real memory pressure the metrics watcher's proposals pass through the guardrails.

mod common;

use std::time::{Duration, Instant};

use common::{error_code, number, ok};
use serde_json::{json, Value};
use sis_testing::phases::agentic::TMP_ENTRIES;
use sis_testing::{QemuConfig, Sis};

/// The example agents, the capabilities each is loaded with, and extra `load` flags.
const AGENTS: [(&str, &str, &str); 8] = [
    ("file-lister", "fs.list:/tmp,fs.read:/tmp/*,log", ""),
    ("metrics-watcher", "metrics.read,propose,log", ""),
    ("chatty", "log", ""),
    ("crasher", "log", ""),
    ("spin", "", " --fuel-total 5000000"),
    ("memory-bomb", "", ""),
    ("cap-violator", "log,fs.read:/tmp/**", ""),
    ("malformed", "log", ""),
];

fn boot() -> Sis {
    Sis::boot(&QemuConfig::new().timeout(Duration::from_secs(300))).unwrap_or_else(|error| panic!("boot: {error}"))
}

fn install(sis: &mut Sis) {
    ok(sis, "mkdir /tmp");
    let installed = ok(sis, "agentsys examples install --dir /tmp");
    assert_eq!(installed["installed"].as_array().unwrap().len(), TMP_ENTRIES.len());
}

fn load_and_start_all(sis: &mut Sis) {
    for (name, caps, extra) in AGENTS {
        let caps = if caps.is_empty() { String::new() } else { format!(" --caps {caps}") };
        let loaded = ok(sis, &format!("agentsys load /tmp/{name}.wasm{caps}{extra}"));
        assert_eq!((loaded["name"].as_str(), loaded["state"].as_str()), (Some(name), Some("loaded")));
    }
    for (name, _, _) in AGENTS {
        let started = ok(sis, &format!("agentsys start {name}"));
        assert_eq!(started["state"], "running", "{started}");
    }
}

/// Polls `agentsys status` (the shell must answer `echo` between polls) until no agent is running, sleeping or
/// due to restart; returns the last status.
fn wait_until_settled(sis: &mut Sis, timeout: Duration) -> Value {
    let started = Instant::now();
    loop {
        assert_eq!(sis.run("echo alive").unwrap(), "alive\n", "the shell answers while agents run");
        let status = ok(sis, "agentsys status");
        let busy = status["agents"].as_array().unwrap().iter().any(|agent| {
            matches!(agent["state"].as_str(), Some("running" | "sleeping")) || !agent["due_at_ms"].is_null()
        });
        if !busy {
            return status;
        }
        assert!(started.elapsed() < timeout, "agents still busy after {timeout:?}: {status}");
        ok(sis, "sleep 200");
    }
}

fn agent<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["agents"].as_array().unwrap().iter().find(|agent| agent["name"] == name).unwrap_or_else(|| panic!("{name}"))
}

/// (state, last stop kind, last stop reason) of `name`.
fn stop(status: &Value, name: &str) -> (String, String, String) {
    let agent = agent(status, name);
    let text = |value: &Value| value.as_str().unwrap_or_else(|| panic!("{name}: {agent}")).to_string();
    (text(&agent["state"]), text(&agent["last_stop"]["kind"]), text(&agent["last_stop"]["reason"]))
}

fn triple(state: &str, kind: &str, reason: &str) -> (String, String, String) {
    (state.into(), kind.into(), reason.into())
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn hostile_agents_stop_with_their_reason_while_the_shell_and_the_others_go_on() {
    let mut sis = boot();
    assert_eq!(ok(&mut sis, "agentsys status")["agents"], json!([]));
    // Bad input is refused and changes nothing.
    assert_eq!(error_code(&mut sis, "agentsys start nobody"), "unknown-agent");
    assert_eq!(error_code(&mut sis, "agentsys load /nothing.wasm"), "not-found");
    install(&mut sis);
    assert_eq!(error_code(&mut sis, "agentsys load /tmp/spin.wasm --caps fs.read:tmp"), "bad-capability");
    assert_eq!(error_code(&mut sis, "agentsys load /tmp/spin.wasm --name Bad!"), "bad-agent-name");
    assert_eq!(error_code(&mut sis, "agentsys load /tmp/spin.wasm --memory-pages 0"), "out-of-range");
    assert_eq!(ok(&mut sis, "agentsys status")["agents"], json!([]));

    // The seed's test-fs-list: one FS_LIST through the protocol, the capability check and the audit.
    let listed = ok(&mut sis, "agentsys test-fs-list /tmp");
    assert_eq!(listed["entries"], json!(TMP_ENTRIES));
    assert_eq!((listed["status"].clone(), listed["outcome"].clone()), (json!(0), json!("ok")));
    assert_eq!(error_code(&mut sis, "agentsys test-fs-list /tmp/../etc"), "capability-denied");
    let denied = ok(&mut sis, "agentsys audit --agent test-fs-list --denied");
    assert_eq!(denied["matching"], 1);
    assert_eq!(
        (denied["records"][0]["call"].clone(), denied["records"][0]["outcome"].clone()),
        (json!("FS_LIST"), json!("denied"))
    );

    // An operator stops a running agent; a second start of a running one is refused.
    ok(&mut sis, "agentsys load /tmp/spin.wasm --name spinner");
    ok(&mut sis, "agentsys start spinner");
    assert_eq!(error_code(&mut sis, "agentsys start spinner"), "already-running");
    let stopped = ok(&mut sis, "agentsys stop spinner");
    assert_eq!(
        (stopped["state"].clone(), stopped["last_stop"].clone()),
        (json!("stopped"), json!({"kind": "operator", "reason": "stopped by operator"}))
    );
    ok(&mut sis, "agentsys unload spinner");

    load_and_start_all(&mut sis);
    let status = wait_until_settled(&mut sis, Duration::from_secs(120));

    assert_eq!(stop(&status, "file-lister"), triple("stopped", "finished", "finished with exit code 0"));
    assert_eq!(stop(&status, "metrics-watcher"), triple("stopped", "finished", "finished with exit code 0"));
    assert_eq!(stop(&status, "chatty"), triple("stopped", "finished", "finished with exit code 0"));
    assert_eq!(stop(&status, "crasher"), triple("crashed", "trap", "trap: wasm `unreachable` instruction executed"));
    assert_eq!(stop(&status, "spin"), triple("crashed", "out-of-fuel", "out of fuel"));
    assert_eq!(stop(&status, "memory-bomb"), triple("crashed", "memory-limit", "memory limit"));
    assert_eq!(
        stop(&status, "cap-violator"),
        triple("crashed", "capability-violation", "capability violation: 9 denied calls")
    );
    assert_eq!(
        stop(&status, "malformed"),
        triple(
            "crashed",
            "protocol-violation",
            "protocol violation: too many malformed messages (last: declared length 100 past the end (2 bytes left))"
        )
    );

    // Resource accounting, call by call: the lister listed once, then read and logged each of the 9 files and
    // logged a summary; the watcher read and logged 3 times with 2 sleeps between; chatty logged 64 times, got
    // rate_limited, slept, logged once more.
    let usage = |name: &str, field: &str| number(agent(&status, name), &format!("/usage/{field}"));
    assert_eq!((usage("file-lister", "calls"), usage("file-lister", "denials")), (20, 0));
    assert_eq!((usage("metrics-watcher", "calls"), usage("metrics-watcher", "denials")), (8, 0));
    assert_eq!((usage("chatty", "calls"), usage("chatty", "rate_limited")), (67, 1));
    assert_eq!((usage("cap-violator", "calls"), usage("cap-violator", "denials")), (9, 9));
    assert_eq!((usage("malformed", "calls"), usage("malformed", "protocol_errors")), (4, 4));
    assert_eq!((usage("spin", "fuel_used"), usage("spin", "calls")), (5_000_000, 0));
    for (name, _, _) in AGENTS {
        assert_eq!(usage(name, "memory_bytes"), 0, "{name}: a stopped agent holds no instance");
        assert_eq!(agent(&status, name)["thread"], false, "{name}: its thread ended");
    }

    // Every call is in the audit log, the refused ones flagged.
    let violator = ok(&mut sis, "agentsys audit --agent cap-violator --denied");
    assert_eq!(violator["matching"], 9);
    assert!(violator["records"].as_array().unwrap().iter().all(|record| record["outcome"] == "denied"));
    let lister = ok(&mut sis, "agentsys audit --agent file-lister --limit 2048");
    assert_eq!(lister["matching"], 20);
    assert_eq!(lister["records"][0]["call"], "FS_LIST");
    let chatty = ok(&mut sis, "agentsys audit --agent chatty --denied");
    assert_eq!(
        (chatty["matching"].clone(), chatty["records"][0]["outcome"].clone()),
        (json!(1), json!("rate_limited"))
    );
    let caps = ok(&mut sis, "agentsys caps cap-violator");
    assert_eq!(caps["capabilities"], json!(["log", "fs.read:/tmp/**"]));
    // Nothing the violator tried happened.
    assert_eq!(error_code(&mut sis, "cat /tmp/owned"), "not-found");
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn a_crashing_agent_restarts_with_backoff_and_gives_up() {
    let mut sis = boot();
    install(&mut sis);
    ok(
        &mut sis,
        "agentsys load /tmp/crasher.wasm --caps log --restart on-failure --backoff-ms 100 --max-backoff-ms 1000 \
         --max-restarts 3 --window-ms 60000",
    );
    let before = ok(&mut sis, "agentsys status crasher");
    assert_eq!((before["state"].clone(), before["policy"]["kind"].clone()), (json!("loaded"), json!("on-failure")));
    ok(&mut sis, "agentsys start crasher");
    let started_ms = number(&before, "/now_ms");
    let status = wait_until_settled(&mut sis, Duration::from_secs(60));
    let crasher = agent(&status, "crasher");
    assert_eq!(crasher["state"], "gave-up");
    assert_eq!(crasher["last_stop"]["kind"], "trap");
    assert_eq!((number(crasher, "/restarts"), number(crasher, "/usage/slices")), (3, 4));
    // Waits of 100, 200 and 400 ms lie between the four runs.
    assert!(number(&status, "/now_ms") - started_ms >= 700, "{status}");
    assert_eq!(ok(&mut sis, "agentsys audit --agent crasher")["matching"], 4, "one LOG per run");
    // An operator start clears the window: it runs (and crashes) again.
    ok(&mut sis, "agentsys start crasher");
    let again = wait_until_settled(&mut sis, Duration::from_secs(60));
    assert_eq!(number(agent(&again, "crasher"), "/usage/slices"), 8);
}

/// Runs every example to its end, unloads them all, clears the audit log and reads `meminfo` (after `threads`,
/// which frees the stacks of ended threads).
fn round(sis: &mut Sis) -> Value {
    load_and_start_all(sis);
    wait_until_settled(sis, Duration::from_secs(120));
    for (name, _, _) in AGENTS {
        ok(sis, &format!("agentsys unload {name}"));
    }
    assert_eq!(ok(sis, "agentsys status")["agents"], json!([]));
    ok(sis, "agentsys audit clear");
    ok(sis, "threads");
    ok(sis, "meminfo")
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn after_unloading_every_agent_heap_and_frames_return_to_baseline() {
    let mut sis = boot();
    install(&mut sis);
    // The first round creates what lives on by design (the supervisor, the audit log's buffer, the kernel log's
    // state for each agent's source), so the next two compare like with like.
    round(&mut sis);
    let before = round(&mut sis);
    let after = round(&mut sis);
    for field in ["/heap_used_bytes", "/heap_allocations", "/frames_allocated"] {
        assert_eq!(number(&after, field), number(&before, field), "{field}: {before} / {after}");
    }
}

/// The memory_reclaim effector's counters in `safetyctl status`: (checked, allowed, blocked).
fn reclaim_counters(sis: &mut Sis) -> (u64, u64, u64) {
    let status = ok(sis, "safetyctl status");
    let effector = status["effectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|effector| effector["effector"] == "memory_reclaim")
        .unwrap_or_else(|| panic!("no memory_reclaim in {status}"))
        .clone();
    (number(&effector, "/checked"), number(&effector, "/allowed"), number(&effector, "/blocked"))
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn the_metrics_watcher_proposes_reclaims_through_the_guardrails_under_real_pressure() {
    let mut sis = Sis::boot(&QemuConfig::new().memory_mib(128).timeout(Duration::from_secs(300)))
        .unwrap_or_else(|error| panic!("boot: {error}"));
    // 100 MB of tensors in 128 MiB of RAM: the frames in use pass the watcher's 70 %.
    ok(&mut sis, "tensorctl budget 102400");
    for index in 0..25 {
        ok(&mut sis, &format!("tensorctl create t{index} --shape 1000,1000"));
    }
    let memory = ok(&mut sis, "meminfo");
    let (allocated, free) = (number(&memory, "/frames_allocated"), number(&memory, "/frames_free"));
    assert!(allocated * 100 / (allocated + free) >= 70, "{memory}");
    install(&mut sis);
    ok(&mut sis, "agentsys load /tmp/metrics-watcher.wasm --caps metrics.read,propose,log");
    assert_eq!(reclaim_counters(&mut sis), (0, 0, 0));

    ok(&mut sis, "agentsys start metrics-watcher");
    let status = wait_until_settled(&mut sis, Duration::from_secs(60));
    assert_eq!(stop(&status, "metrics-watcher"), triple("stopped", "finished", "finished with exit code 0"));
    // Three rounds: read, propose, log, and a sleep between rounds.
    let calls: Vec<Value> = ok(&mut sis, "agentsys audit --agent metrics-watcher")["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| json!([record["call"], record["outcome"]]))
        .collect();
    let round = [json!(["METRICS_READ", "ok"]), json!(["PROPOSE_ACTION", "ok"]), json!(["LOG", "ok"])];
    let sleep = [json!(["SLEEP", "ok"])];
    let expected: Vec<Value> = [&round[..], &sleep[..], &round[..], &sleep[..], &round[..]].concat();
    assert_eq!(calls, expected);
    assert_eq!(reclaim_counters(&mut sis), (3, 3, 0), "each proposal checked and allowed by the guardrails");

    // With no reclaim allowed in the window the same proposals are blocked (and the agent told so).
    ok(&mut sis, "safetyctl set reclaim.max_per_window 0");
    ok(&mut sis, "agentsys start metrics-watcher");
    wait_until_settled(&mut sis, Duration::from_secs(60));
    assert_eq!(reclaim_counters(&mut sis), (6, 3, 3));
}

/// Tokens the inferrer asks for in each of its 4 requests (agents/inferrer).
const INFERRER_MAX_TOKENS: u64 = 40;

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn an_agents_inferences_are_charged_to_its_own_principal() {
    let mut sis = boot();
    ok(&mut sis, "llmctl register builtin:shakespeare-lm");
    ok(&mut sis, "llmctl load shakespeare-lm");
    install(&mut sis);
    // Ids come from the supervisor, from 1, never reused: the spinner's 1 is not given again after its unload.
    let spinner = ok(&mut sis, "agentsys load /tmp/spin.wasm --name spinner");
    assert_eq!(spinner["id"], 1);
    ok(&mut sis, "agentsys unload spinner");
    let loaded = ok(&mut sis, "agentsys load /tmp/inferrer.wasm --caps command:llmctl,log");
    assert_eq!(loaded["id"], 2);
    let id = number(&loaded, "/id");
    let principal = format!("agent:{id}");
    assert_eq!(ok(&mut sis, "agentsys status inferrer")["id"], 2);

    // A budget of 100 tokens against 4 requests of 40: 40, 40, then cut to 20, then refused with 0 left.
    let set = ok(&mut sis, &format!("llmctl budget set 100 --principal {principal}"));
    assert_eq!((set["principal"].clone(), set["limits"]["budget_tokens"].clone()), (json!(principal), json!(100)));
    ok(&mut sis, "agentsys start inferrer");
    let status = wait_until_settled(&mut sis, Duration::from_secs(120));
    assert_eq!(stop(&status, "inferrer"), triple("stopped", "finished", "finished with exit code 0"));
    // 4 COMMAND_RUN, a LOG after each and a summary LOG.
    let usage = |field: &str| number(agent(&status, "inferrer"), &format!("/usage/{field}"));
    assert_eq!((usage("calls"), usage("denials")), (9, 0));
    let calls = ok(&mut sis, "agentsys audit --agent inferrer");
    let commands: Vec<&str> = calls["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|record| record["call"] == "COMMAND_RUN")
        .map(|record| record["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(commands, ["ok", "ok", "ok", "host_failed"]);

    // The agent's principal was charged, exactly.
    let shown = ok(&mut sis, &format!("llmctl budget show --principal {principal}"));
    let agent_status = &shown["principals"][0];
    assert_eq!(agent_status["principal"], principal.as_str());
    assert_eq!((number(agent_status, "/window_used_tokens"), number(agent_status, "/remaining_tokens")), (100, 0));
    let counters = &agent_status["counters"];
    assert_eq!(
        [
            number(counters, "/requests"),
            number(counters, "/allowed"),
            number(counters, "/cut"),
            number(counters, "/refused_budget"),
            number(counters, "/tokens_granted"),
            number(counters, "/tokens_used"),
            number(counters, "/completed"),
        ],
        [4, 3, 1, 1, 100, 100, 3]
    );

    // Its audit entries: three grants with their completions, then the refusal with the remaining budget.
    let audit = ok(&mut sis, &format!("llmctl audit --principal {principal}"));
    let entries = audit["entries"].as_array().unwrap();
    let summary: Vec<(String, String, Value, Value, Value)> = entries
        .iter()
        .map(|entry| {
            let outcome = match entry["outcome"]["status"].as_str().unwrap() {
                "ok" => String::from("ok"),
                _ => format!("refused {}", entry["outcome"]["code"].as_str().unwrap()),
            };
            let figures = &entry["figures"];
            let figure = |name: &str| {
                if entry["action"] == "complete" {
                    figures["used_tokens"].clone()
                } else {
                    figures[name].clone()
                }
            };
            (
                entry["action"].as_str().unwrap().to_string(),
                outcome,
                figures["requested_tokens"].clone(),
                figure("granted_tokens"),
                figures["remaining_tokens"].clone(),
            )
        })
        .collect();
    let infer = |granted: u64, remaining: u64| {
        (String::from("infer"), String::from("ok"), json!(INFERRER_MAX_TOKENS), json!(granted), json!(remaining))
    };
    let complete = |used: u64| (String::from("complete"), String::from("ok"), Value::Null, json!(used), Value::Null);
    assert_eq!(
        summary,
        [
            infer(40, 60),
            complete(40),
            infer(40, 20),
            complete(40),
            infer(20, 0),
            complete(20),
            (
                String::from("infer"),
                String::from("refused budget-exhausted"),
                json!(INFERRER_MAX_TOKENS),
                Value::Null,
                json!(0)
            ),
        ],
        "{audit}"
    );
    assert!(entries.iter().all(|entry| entry["principal"] == principal.as_str()));

    // The console's own budget is untouched: only its register, load and set-budget are in its audit.
    let console = ok(&mut sis, "llmctl budget show --principal console");
    assert_eq!(
        (
            number(&console["principals"][0], "/window_used_tokens"),
            number(&console["principals"][0], "/counters/requests")
        ),
        (0, 0)
    );
    let console_audit = ok(&mut sis, "llmctl audit --principal console");
    let actions: Vec<&str> =
        console_audit["entries"].as_array().unwrap().iter().map(|entry| entry["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["register", "load", "set-budget"]);
    // The principal is the agent's only while it runs a command: the console's own line is the console's.
    let own = ok(&mut sis, "llmctl infer shakespeare-lm \"ROMEO:\" --max-tokens 5 --seed 1");
    assert_eq!((own["principal"].clone(), own["tokens"].clone()), (json!("console"), json!(5)));
}
