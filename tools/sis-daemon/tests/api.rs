//! The daemon against a real SIS in QEMU, driven with curl: a run in the background whose status progresses,
//! its history, samples, events and CSV; bad input refused with nothing written; a run whose QEMU is killed
//! becomes `aborted`; a daemon stopped mid-run finds that run aborted at its next start, history intact.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sis_testing::web::{Request, WebClient};

struct Sisd {
    child: Child,
    client: WebClient,
}

impl Sisd {
    /// Starts sisd on a free port with its history in `data_dir`, SIS booted; waits for its URL.
    fn start(data_dir: &std::path::Path) -> Sisd {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sisd"))
            .args(["--port", "0", "--boot", "--data-dir"])
            .arg(data_dir)
            .current_dir(sis_testing::workspace_root())
            .stdout(Stdio::piped())
            .spawn()
            .expect("sisd starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let address = loop {
            let line = lines.next().expect("sisd printed its URL").unwrap();
            if let Some(url) = line.strip_prefix("sisd: dashboard at http://") {
                break url.trim_end_matches('/').parse().expect("sisd's address");
            }
        };
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Sisd { child, client: WebClient::new(address) }
    }

    /// curl: status and body.
    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let mut request = Request::new(method, path);
        if let Some(body) = body {
            request = request.body(body).header("Content-Type: application/json");
        }
        let transfer = self.client.send(&request).unwrap_or_else(|error| panic!("{method} {path}: {error}"));
        (transfer.status, transfer.body)
    }

    fn json(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let (status, text) = self.call(method, path, body);
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: {text:?}")))
    }

    fn get(&self, path: &str) -> Value {
        let (status, value) = self.json("GET", path, None);
        assert_eq!(status, 200, "{path}: {value}");
        value
    }

    fn qemu_pid(&self) -> i32 {
        self.get("/api/system")["kernel"]["qemu_pid"].as_i64().unwrap() as i32
    }

    /// Polls the run's status until it is no longer running; returns every status read.
    fn until_done(&self, id: u64, within: Duration) -> Vec<Value> {
        let started = Instant::now();
        let mut seen = Vec::new();
        loop {
            let status = self.get(&format!("/api/stress/status/{id}"));
            let done = status["status"] != "running";
            seen.push(status);
            if done {
                return seen;
            }
            assert!(started.elapsed() < within, "run {id} still running: {:?}", seen.last());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops sisd with SIGKILL (no chance to tidy up) and QEMU with it.
    fn crash(mut self) {
        let qemu = self.qemu_pid();
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let _ = Command::new("kill").args(["-9", &qemu.to_string()]).status();
    }
}

fn error(value: &Value) -> (&str, Option<&str>) {
    (value["error"]["code"].as_str().unwrap(), value["error"]["field"].as_str())
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn runs_go_to_history_with_their_samples_and_events_and_interrupted_runs_are_aborted() {
    let data = tempfile::tempdir().unwrap();
    let sisd = Sisd::start(data.path());

    // Bad input: refused naming the field, nothing written.
    let refusals = [
        ("/api/stress/start", "{not json", ("malformed-json", None)),
        ("/api/stress/start", r#"{"test_type":"fork"}"#, ("invalid-value", Some("test_type"))),
        ("/api/stress/start", r#"{"test_type":"chaos","duration_ms":0}"#, ("out-of-range", Some("duration_ms"))),
        (
            "/api/stress/start",
            r#"{"test_type":"chaos","config":{"fail_rate":500}}"#,
            ("out-of-range", Some("config.fail_rate")),
        ),
        ("/api/stress/compare", r#"{"test":"memory","runs":100000}"#, ("out-of-range", Some("runs"))),
    ];
    for (path, body, expected) in refusals {
        let (status, reply) = sisd.json("POST", path, Some(body));
        assert_eq!((status, error(&reply)), (400, expected), "{body}");
    }
    let (status, reply) = sisd.json("GET", "/api/stress/history?limit=0", None);
    assert_eq!((status, error(&reply)), (400, ("out-of-range", Some("limit"))));
    let (status, reply) = sisd.json("GET", "/api/stress/77", None);
    assert_eq!((status, error(&reply).0), (404, "unknown-test-id"));
    assert_eq!(sisd.get("/api/stress/history")["runs"], Value::Array(Vec::new()), "nothing was written");

    // A chaos run in the background; a second start is refused while it runs.
    let (status, started) = sisd.json(
        "POST",
        "/api/stress/start",
        Some(r#"{"test_type":"chaos","duration_ms":2500,"config":{"fail_rate":15,"seed":7}}"#),
    );
    assert_eq!(status, 200, "{started}");
    let id = started["test_id"].as_u64().unwrap();
    assert_eq!((started["status"].as_str(), started["seed"].as_str()), (Some("running"), Some("7")));
    let (status, busy) = sisd.json("POST", "/api/stress/start", Some(r#"{"test_type":"memory"}"#));
    assert_eq!((status, error(&busy).0), (409, "busy"));
    let seen = sisd.until_done(id, Duration::from_secs(120));
    let running: Vec<&Value> = seen.iter().filter(|status| status["status"] == "running").collect();
    assert!(running.len() >= 3, "polled while it ran: {seen:?}");
    let events: Vec<u64> = running.iter().map(|status| status["events_so_far"].as_u64().unwrap()).collect();
    assert!(events.windows(2).all(|pair| pair[0] <= pair[1]) && events.last() > events.first(), "{events:?}");
    let percents: Vec<u64> = running.iter().filter_map(|status| status["progress_percent"].as_u64()).collect();
    assert!(percents.windows(2).all(|pair| pair[0] <= pair[1]) && !percents.is_empty(), "{percents:?}");
    assert!(running.iter().any(|status| status["current_metrics"]["workload"].is_object()));

    // The stored run: report, samples and events agree with each other and with the status.
    let full = sisd.get(&format!("/api/stress/{id}"));
    let last = seen.last().unwrap();
    let report = &full["report"];
    assert_eq!(report["command"], "stresstest chaos");
    assert_eq!(last["status"], if report["ok"] == true { "passed" } else { "failed" }, "{last}");
    let stored_events = full["events"].as_array().unwrap();
    assert_eq!(last["events_so_far"].as_u64(), Some(stored_events.len() as u64));
    let kinds = |kind: &str| stored_events.iter().filter(|event| event["kind"] == kind).count() as u64;
    assert_eq!((kinds("stress.started"), kinds("stress.finished")), (1, 1));
    assert_eq!(kinds("chaos.event"), report["chaos"]["total_events"].as_u64().unwrap());
    let kernel_run = full["run"]["kernel_run"].as_u64().unwrap();
    assert!(stored_events
        .iter()
        .filter(|event| event["event"]["run"].is_u64())
        .all(|event| event["event"]["run"] == kernel_run));
    let samples = full["samples"].as_array().unwrap();
    assert!(samples.len() >= 6, "about one per 250 ms of a 2.5 s run: {}", samples.len());
    let times: Vec<u64> = samples.iter().map(|sample| sample["t_ms"].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|pair| pair[0] < pair[1]), "{times:?}");

    // CSV: the header, one row per sample, the same figures.
    let (status, csv) = sisd.call("GET", &format!("/api/stress/{id}/export?format=csv"), None);
    assert_eq!(status, 200);
    let mut rows = csv.lines();
    assert_eq!(rows.next(), Some("t_ms,uptime_ms,pressure_per_mille,heap_used_bytes,oom_events,interventions"));
    let rows: Vec<&str> = rows.collect();
    assert_eq!(rows.len(), samples.len());
    for (row, sample) in rows.iter().zip(samples) {
        let cell = |name: &str| sample[name].as_u64().map_or(String::new(), |value| value.to_string());
        let expected = ["t_ms", "uptime_ms", "pressure_per_mille", "heap_used_bytes", "oom_events", "interventions"]
            .map(cell)
            .join(",");
        assert_eq!(*row, expected);
    }
    let (status, reply) = sisd.json("GET", &format!("/api/stress/{id}/export?format=xml"), None);
    assert_eq!((status, error(&reply)), (400, ("invalid-value", Some("format"))));

    // History lists it as the status says.
    let history = sisd.get("/api/stress/history?limit=5");
    let row = &history["runs"][0];
    assert_eq!(
        (row["test_id"].as_u64(), row["test_type"].as_str(), row["seed"].as_str()),
        (Some(id), Some("chaos"), Some("7"))
    );
    assert_eq!(row["status"], last["status"]);

    // QEMU killed mid-run: the run is aborted with what was collected.
    let (_, memory) = sisd.json(
        "POST",
        "/api/stress/start",
        Some(r#"{"test_type":"memory","duration_ms":20000,"config":{"seed":3}}"#),
    );
    let memory_id = memory["test_id"].as_u64().unwrap();
    let started = Instant::now();
    while sisd.get(&format!("/api/stress/status/{memory_id}"))["events_so_far"].as_u64() < Some(2) {
        assert!(started.elapsed() < Duration::from_secs(30), "the memory run never reported progress");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(1000));
    Command::new("kill").args(["-9", &sisd.qemu_pid().to_string()]).status().unwrap();
    let aborted = sisd.until_done(memory_id, Duration::from_secs(30));
    assert_eq!(aborted.last().unwrap()["status"], "aborted", "{aborted:?}");
    let kept = sisd.get(&format!("/api/stress/{memory_id}"));
    assert!(kept["samples"].as_array().unwrap().len() >= 2, "what was collected is kept: {kept}");
    assert_eq!(kept["report"], Value::Null);

    // The next run boots a fresh SIS; the daemon is killed while it runs.
    let (status, next) = sisd.json("POST", "/api/stress/start", Some(r#"{"test_type":"memory","duration_ms":20000}"#));
    assert_eq!(status, 200, "{next}");
    let next_id = next["test_id"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(sisd.get(&format!("/api/stress/status/{next_id}"))["status"], "running");
    sisd.crash();

    // Restarted on the same history: every run is there, the interrupted one aborted.
    let sisd = Sisd::start(data.path());
    let history = sisd.get("/api/stress/history");
    let statuses: Vec<(u64, String)> = history["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| (run["test_id"].as_u64().unwrap(), run["status"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        statuses,
        [
            (next_id, "aborted".to_string()),
            (memory_id, "aborted".to_string()),
            (id, last["status"].as_str().unwrap().to_string())
        ]
    );
    assert_eq!(sisd.get(&format!("/api/stress/{id}"))["samples"].as_array().unwrap().len(), samples.len());
    sisd.crash();
}
