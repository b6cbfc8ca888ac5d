//! The dashboard in a real browser: headless Chromium, driven over WebDriver, against sisd and SIS in QEMU. It
//! submits bad input and reads the API's refusal on the page, starts a chaos run from the form and watches the
//! chart and the timeline grow while it runs, then checks what the page shows against what the API stored: the
//! chart's points against the run's samples, the timeline against its events, the run's figures against the
//! kernel's report, the history row against /api/stress/history, the CSV the page links against the export,
//! the replay of the run from the history, and a comparison's table against its report.

mod processes;
mod webdriver;

use std::time::{Duration, Instant};

use processes::{Browser, Daemon};
use serde_json::{json, Value};
use webdriver::Session;

/// Longest wait for anything the page should show.
const PAGE_WAIT: Duration = Duration::from_secs(60);
/// The chaos run's length, ms: long enough for a dozen samples at 250 ms.
const CHAOS_MS: u64 = 4_000;
/// How often the page is read while waiting.
const POLL: Duration = Duration::from_millis(150);

/// What the page shows, read in one go: the run section, the chart's data, the timeline, the figures.
const SNAPSHOT: &str = r#"
const byId = (id) => document.getElementById(id);
const dashboard = window.sisDashboard;
const section = byId('run');
const data = dashboard && dashboard.charts ? dashboard.charts.pressure.data : null;
const figures = (id) => Object.fromEntries([...byId(id).querySelectorAll('dd')].map((dd) => [dd.dataset.key, dd.textContent]));
const live = dashboard ? dashboard.live : null;
return {
  stream: byId('stream-state').textContent,
  kernel: byId('kernel-state').textContent,
  test_id: section.dataset.testId ? Number(section.dataset.testId) : null,
  mode: section.dataset.mode ?? null,
  status: section.dataset.status ?? null,
  chart_t_ms: data ? data[0].map((x) => Math.round(x * 1000)) : null,
  chart_pressure: data ? data[1] : null,
  chart_label: byId('chart-points').textContent,
  live_last_uptime_ms: live && live.samples.length ? Number(live.samples[live.samples.length - 1].uptime_ms) : null,
  timeline: [...document.querySelectorAll('#timeline li')].map((li) => ({ seq: li.dataset.seq, kind: li.dataset.kind, text: li.textContent })),
  run_figures: figures('run-metrics'),
  kernel_figures: figures('kernel-metrics'),
  csv_href: byId('export-csv').getAttribute('href'),
  json_href: byId('export-json').getAttribute('href'),
};
"#;

/// The error line of a form: `{hidden, status, code, field, message, invalid: [input names]}`.
const ERROR_LINE: &str = r#"
const line = document.getElementById(arguments[0]);
const form = document.getElementById(arguments[1]);
const text = (selector) => { const node = line.querySelector(selector); return node ? node.textContent : null; };
return {
  hidden: line.hidden, status: text('.error-status'), code: text('.error-code'), field: text('.error-field'),
  message: text('.error-message'), invalid: [...form.querySelectorAll('.invalid')].map((input) => input.name),
};
"#;

/// A history row's cells by key, and its links: `null` when the run has no row.
const HISTORY_ROW: &str = r#"
const row = document.querySelector(`#history-table tbody tr[data-test-id="${arguments[0]}"]`);
if (!row) return null;
return {
  cells: Object.fromEntries([...row.querySelectorAll('td[data-key]')].map((td) => [td.dataset.key, td.textContent])),
  links: [...row.querySelectorAll('a')].map((a) => a.getAttribute('href')),
};
"#;

/// The comparison view: its summary, and per figure row its cells by key.
const COMPARISON: &str = r#"
const table = document.getElementById('compare-table');
const summary = document.getElementById('compare-summary');
return {
  test_id: summary.dataset.testId ? Number(summary.dataset.testId) : null,
  summary: summary.textContent,
  hidden: table.hidden,
  rows: [...table.tBodies[0].rows].map((row) => ({
    figure: row.dataset.figure,
    cells: Object.fromEntries([...row.cells].map((cell) => [cell.dataset.key, cell.textContent])),
  })),
};
"#;

/// The daemon's API, for what the page is checked against.
struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    async fn get(&self, path: &str) -> Value {
        let response = self.http.get(format!("{}{path}", self.url)).send().await.unwrap();
        assert!(response.status().is_success(), "GET {path}: {}", response.status());
        response.json().await.unwrap()
    }

    async fn text(&self, path: &str) -> String {
        self.http.get(format!("{}{path}", self.url)).send().await.unwrap().text().await.unwrap()
    }

    /// POSTs `body`; the status and the JSON answer.
    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self.http.post(format!("{}{path}", self.url)).json(body).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }
}

async fn snapshot(session: &Session) -> Value {
    session.execute(SNAPSHOT, vec![]).await.unwrap()
}

/// Reads `script` until `done` accepts its value, at most [`PAGE_WAIT`].
async fn wait_for(
    session: &Session,
    what: &str,
    script: &str,
    args: Vec<Value>,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        let value = session.execute(script, args.clone()).await.unwrap();
        if done(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "waited {PAGE_WAIT:?} for {what}; the page shows {value}");
        tokio::time::sleep(POLL).await;
    }
}

/// Types `text` into the input `name` of the form `form` (emptied first).
async fn fill(session: &Session, form: &str, name: &str, text: &str) {
    let input = session.find(&format!("#{form} [name=\"{name}\"]")).await.unwrap();
    session.type_into(&input, text).await.unwrap();
}

async fn choose(session: &Session, form: &str, name: &str, option: &str) {
    let path = format!("//form[@id='{form}']//select[@name='{name}']/option[.='{option}']");
    session.click(&session.find_xpath(&path).await.unwrap()).await.unwrap();
}

async fn click(session: &Session, selector: &str) {
    session.click(&session.find(selector).await.unwrap()).await.unwrap();
}

/// Text as the page writes figures ("1,234", "12.5 %", "4,000 ms") to a number.
fn shown_number(text: &str) -> f64 {
    let digits: String = text.chars().filter(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | 'e')).collect();
    digits.parse().unwrap_or_else(|_| panic!("{text:?} is not a number"))
}

/// Asserts that `text` is `value` rounded to `decimals` decimals (thousands separated, a unit after), or the dash
/// when the API gave null.
fn assert_shows(text: &str, value: &Value, decimals: i32, what: &str) {
    match value.as_f64() {
        None => assert!(text.starts_with('—'), "{what}: the API gave {value}, the page shows {text:?}"),
        Some(value) => {
            let shown = shown_number(text);
            let tolerance = 0.5 * 10f64.powi(-decimals) * (1.0 + 1e-9);
            assert!((shown - value).abs() <= tolerance, "{what}: the API gave {value}, the page shows {text:?}");
        }
    }
}

/// Asserts that `text` is the p-value `value` as the page writes it: four decimals, or three significant digits
/// in exponent form below 0.001.
fn assert_shows_p(text: &str, value: &Value, what: &str) {
    match value.as_f64() {
        None => assert!(text.starts_with('—'), "{what}: the API gave {value}, the page shows {text:?}"),
        Some(value) => {
            let shown: f64 = text.parse().unwrap_or_else(|_| panic!("{what}: {text:?} is not a p-value"));
            let tolerance = match text.split_once('e') {
                Some((_, exponent)) => 0.5 * 10f64.powi(exponent.parse::<i32>().unwrap() - 2),
                None => 0.5e-4,
            };
            assert!(
                (shown - value).abs() <= tolerance * (1.0 + 1e-9),
                "{what}: the API gave {value}, the page shows {text:?}"
            );
        }
    }
}

fn random_seed() -> u64 {
    let bytes = sis_testing::host_random_bytes().unwrap();
    // Above 2^53: a seed a JavaScript number cannot hold, so the page must keep its digits.
    u64::from_le_bytes(bytes[..8].try_into().unwrap()) | (1 << 63)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "boots QEMU; run by cargo xtask test"]
async fn the_dashboard_shows_what_the_api_holds() {
    let started = Instant::now();
    let daemon = Daemon::start();
    let browser = Browser::start();
    let api = Api { http: reqwest::Client::new(), url: daemon.url.clone() };
    let session = Session::new(&browser.driver_url, browser.capabilities.clone()).await.unwrap();
    session.goto(&format!("{}/", daemon.url)).await.unwrap();
    let page = wait_for(&session, "the stream and the kernel", SNAPSHOT, vec![], |page| {
        page["stream"] == "connected" && page["kernel"].as_str().is_some_and(|text| text.starts_with("running at"))
    })
    .await;
    assert_eq!(page["chart_t_ms"], json!([]), "no run yet, the chart is empty");

    // Bad input: the page shows the API's own refusal, naming the field, and starts nothing.
    let cases = [
        (vec![("duration_ms", "50")], json!({ "test_type": "chaos", "duration_ms": 50 })),
        (
            vec![("duration_ms", "4000"), ("fail_rate", "101")],
            json!({ "test_type": "chaos", "duration_ms": 4000, "config": { "fail_rate": 101 } }),
        ),
    ];
    choose(&session, "start-form", "test_type", "chaos").await;
    for (inputs, body) in cases {
        for name in ["duration_ms", "seed", "fail_rate"] {
            let text = inputs.iter().find(|(input, _)| *input == name).map_or("", |(_, text)| *text);
            fill(&session, "start-form", name, text).await;
        }
        click(&session, "#start-button").await;
        let shown =
            wait_for(&session, "the refusal", ERROR_LINE, vec![json!("start-error"), json!("start-form")], |line| {
                line["hidden"] == false && line["status"].is_string()
            })
            .await;
        let (status, answer) = api.post("/api/stress/start", &body).await;
        assert_eq!(status, 400, "{answer}");
        let error = &answer["error"];
        assert_eq!(shown["status"], status.to_string());
        assert_eq!(
            (&shown["code"], &shown["field"], &shown["message"]),
            (&error["code"], &error["field"], &error["message"])
        );
        let input = error["field"].as_str().unwrap().trim_start_matches("config.");
        assert_eq!(shown["invalid"], json!([input]), "the refused field's input is marked");
    }
    assert_eq!(api.get("/api/stress/history").await["runs"], json!([]), "a refused start stores nothing");

    // A chaos run started from the form.
    let seed = random_seed();
    fill(&session, "start-form", "duration_ms", &CHAOS_MS.to_string()).await;
    fill(&session, "start-form", "seed", &seed.to_string()).await;
    fill(&session, "start-form", "fail_rate", "20").await;
    click(&session, "#start-button").await;
    let reply = wait_for(
        &session,
        "the start reply",
        "const line = document.getElementById('start-reply'); return line.hidden ? null : line.dataset.testId;",
        vec![],
        Value::is_string,
    )
    .await;
    let id: i64 = reply.as_str().unwrap().parse().unwrap();
    wait_for(&session, "the run under way on the page", SNAPSHOT, vec![], |page| {
        page["test_id"] == id && page["status"] == "running"
    })
    .await;
    let status = api.get(&format!("/api/stress/status/{id}")).await;
    assert_eq!((&status["test_type"], &status["status"]), (&json!("chaos"), &json!("running")), "{status}");

    // While it runs, a second start is refused with the API's 409.
    click(&session, "#start-button").await;
    let shown =
        wait_for(&session, "the busy refusal", ERROR_LINE, vec![json!("start-error"), json!("start-form")], |line| {
            line["status"] == "409"
        })
        .await;
    let (status, answer) = api.post("/api/stress/start", &json!({ "test_type": "memory" })).await;
    assert_eq!((status, &answer["error"]["code"]), (409, &json!("busy")), "{answer}");
    assert_eq!((&shown["code"], &shown["message"]), (&answer["error"]["code"], &answer["error"]["message"]));

    // The chart gains points and the timeline gains events while the run is under way; one reading of the
    // kernel panel is kept to check against the stored sample of the same instant.
    let mut readings: Vec<(usize, usize)> = Vec::new();
    let mut kernel_reading: Option<Value> = None;
    let mut screenshot = None;
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        let page = snapshot(&session).await;
        if page["status"] != "running" {
            break;
        }
        assert_eq!((page["test_id"].as_i64(), page["mode"].as_str()), (Some(id), Some("live")), "{page}");
        let points = page["chart_t_ms"].as_array().unwrap().len();
        let events = page["timeline"].as_array().unwrap().len();
        assert_eq!(page["chart_label"], points.to_string(), "the caption counts the chart's points");
        if readings.last() != Some(&(points, events)) {
            readings.push((points, events));
        }
        let uptime = page["kernel_figures"]["uptime_ms"].as_str().map(|text| shown_number(text) as u64);
        if points >= 4 && uptime.is_some() && uptime == page["live_last_uptime_ms"].as_u64() {
            kernel_reading.get_or_insert(page["kernel_figures"].clone());
        }
        if points >= 10 && screenshot.is_none() {
            let page = session.find("body").await.unwrap();
            screenshot = Some(session.screenshot(&page).await.unwrap());
        }
        assert!(Instant::now() < deadline, "the run did not end within {PAGE_WAIT:?}");
        tokio::time::sleep(POLL).await;
    }
    let (first, last) = (readings.first().copied().unwrap(), readings.last().copied().unwrap());
    assert!(first.0 < last.0 && first.1 < last.1, "points and events grew while it ran: {readings:?}");
    let kernel_reading = kernel_reading.expect("a reading of the kernel panel during the run");
    let screenshot = screenshot.expect("a screenshot during the run");
    let directory = sis_testing::workspace_root().join("target/dashboard");
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join("browser-test.png");
    std::fs::write(&path, &screenshot).unwrap();
    println!("screenshot of the run under way: {}", path.display());

    // Finished: the page shows what the API stored, as it streamed it.
    let page = wait_for(&session, "the run's end", SNAPSHOT, vec![], |page| {
        page["status"] != "running" && page["run_figures"]["events"].is_string()
    })
    .await;
    let full = api.get(&format!("/api/stress/{id}")).await;
    let run = &full["run"];
    let samples = full["samples"].as_array().unwrap();
    let events = full["events"].as_array().unwrap();
    assert_eq!((&page["mode"], &page["status"]), (&json!("streamed"), &run["status"]), "{page}");
    let stored_t: Vec<u64> = samples.iter().map(|sample| sample["t_ms"].as_u64().unwrap()).collect();
    let stored_pressure: Vec<&Value> = samples.iter().map(|sample| &sample["pressure_per_mille"]).collect();
    assert!(stored_t.len() >= 8, "a {CHAOS_MS} ms run has a sample every ~250 ms: {}", stored_t.len());
    assert_eq!(page["chart_t_ms"], json!(stored_t), "the chart has one point per stored sample, at its time");
    assert_eq!(page["chart_pressure"], json!(stored_pressure), "and its pressure");
    let timeline = page["timeline"].as_array().unwrap();
    let stored_seqs: Vec<String> = events.iter().rev().map(|event| event["seq"].to_string()).collect();
    let shown_seqs: Vec<String> = timeline.iter().map(|item| item["seq"].as_str().unwrap().to_string()).collect();
    assert_eq!(shown_seqs, stored_seqs, "the timeline lists the stored events, newest first");
    for (item, event) in timeline.iter().zip(events.iter().rev()) {
        let body = &event["event"];
        if event["kind"] == "chaos.event" {
            let text = item["text"].as_str().unwrap();
            let name = body["event"].as_str().unwrap();
            let outcome = match body["recovery_us"].as_u64() {
                Some(us) => format!("{name}: recovered in {}.{:03} ms", us / 1000, us % 1000),
                None => format!("{name}: FAILED ({}", body["failure"].as_str().unwrap()),
            };
            assert!(text.contains(&outcome), "chaos event {body} shown as {text:?}");
        }
    }
    // The run's figures, counted over the streamed events, equal the kernel's report.
    let chaos = &full["report"]["chaos"];
    let figures = &page["run_figures"];
    assert_eq!(shown_number(figures["chaos_recovered"].as_str().unwrap()), chaos["recovered"].as_f64().unwrap());
    assert_eq!(shown_number(figures["chaos_failed"].as_str().unwrap()), chaos["failed"].as_f64().unwrap());
    let interventions = events.iter().filter(|event| event["kind"] == "autonomy.intervention").count();
    assert_eq!(shown_number(figures["interventions"].as_str().unwrap()), interventions as f64);
    assert_eq!(shown_number(figures["events"].as_str().unwrap()), events.len() as f64);
    // The kernel panel read during the run shows the stored sample of its instant.
    let uptime = shown_number(kernel_reading["uptime_ms"].as_str().unwrap()) as u64;
    let sample = samples
        .iter()
        .find(|sample| sample["uptime_ms"].as_u64() == Some(uptime))
        .unwrap_or_else(|| panic!("no stored sample at uptime {uptime} ms: {kernel_reading}"));
    for key in ["heap_used_bytes", "pressure_per_mille", "oom_events", "interventions"] {
        assert_shows(kernel_reading[key].as_str().unwrap(), &sample[key], 0, key);
    }

    // Only the kinds checked are listed.
    click(&session, "#timeline-kinds input[value=\"stress.progress\"]").await;
    let page = snapshot(&session).await;
    let without_progress = events.iter().filter(|event| event["kind"] != "stress.progress").count();
    assert_eq!(page["timeline"].as_array().unwrap().len(), without_progress);
    assert!(without_progress < events.len(), "the run had progress events");
    click(&session, "#timeline-kinds input[value=\"stress.progress\"]").await;

    // Its history row is /api/stress/history's.
    let history = api.get("/api/stress/history").await;
    let row = history["runs"].as_array().unwrap().iter().find(|row| row["test_id"] == id).unwrap().clone();
    let shown = wait_for(&session, "the history row", HISTORY_ROW, vec![json!(id)], |row| {
        row["cells"]["status"].as_str().is_some_and(|status| status != "running")
    })
    .await;
    let cells = &shown["cells"];
    assert_eq!(cells["test_id"], id.to_string());
    for key in ["test_type", "seed", "status", "summary"] {
        assert_eq!(cells[key], row[key], "history {key}");
    }
    assert_eq!(row["seed"], seed.to_string(), "the 64-bit seed typed is the seed run");
    assert_shows(cells["duration_ms"].as_str().unwrap(), &row["duration_ms"], 0, "duration");
    let csv_path = format!("/api/stress/{id}/export?format=csv");
    assert_eq!(shown["links"], json!([csv_path, format!("/api/stress/{id}/export?format=json")]));
    assert_eq!((&page["csv_href"], &page["json_href"]), (&shown["links"][0], &shown["links"][1]));

    // The CSV the page links, fetched by the browser, is the export: a header and one row per sample.
    let fetched = session
        .execute_async("fetch(arguments[0]).then((r) => r.text()).then(arguments[1]);", vec![json!(csv_path)])
        .await
        .unwrap();
    let csv = api.text(&csv_path).await;
    assert_eq!(fetched.as_str(), Some(csv.as_str()));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "t_ms,uptime_ms,pressure_per_mille,heap_used_bytes,oom_events,interventions");
    assert_eq!(lines.len(), samples.len() + 1);
    assert_eq!(lines[1].split(',').next(), Some(samples[0]["t_ms"].to_string().as_str()));

    // Replay: a click on the row shows the stored run.
    click(&session, &format!("#history-table tbody tr[data-test-id=\"{id}\"] td[data-key=\"summary\"]")).await;
    let page = wait_for(&session, "the replay", SNAPSHOT, vec![], |page| page["mode"] == "stored").await;
    assert_eq!(page["test_id"], id);
    assert_eq!(page["chart_t_ms"], json!(stored_t));
    assert_eq!(page["chart_pressure"], json!(stored_pressure));
    assert_eq!(page["timeline"].as_array().unwrap().len(), events.len());
    // With the report at hand, each chaos event shows its parameters from the report.
    let parameters = chaos["events"].as_array().unwrap();
    let mut chaos_items = 0;
    for item in page["timeline"].as_array().unwrap().iter().filter(|item| item["kind"] == "chaos.event") {
        let text = item["text"].as_str().unwrap();
        let index: u64 = text.split('#').nth(1).and_then(|rest| rest.split(' ').next()).unwrap().parse().unwrap();
        let event = &parameters.iter().find(|event| event["index"] == index).unwrap()["event"];
        let words: Vec<String> = event
            .as_object()
            .unwrap()
            .iter()
            .filter(|(key, _)| key.as_str() != "type")
            .map(|(key, value)| format!("{} {value}", key.replace('_', " ")))
            .collect();
        assert!(text.contains(&format!("{}:", event["type"].as_str().unwrap())), "{text:?} names {event}");
        if !words.is_empty() {
            assert!(text.ends_with(&format!(" · {}", words.join(", "))), "{text:?} shows {event}");
        }
        chaos_items += 1;
    }
    assert_eq!(chaos_items, parameters.len(), "one timeline line per event of the report");

    // A comparison from its form: the table is the report's, figure by figure.
    let compare_seed = random_seed();
    choose(&session, "compare-form", "test", "memory").await;
    fill(&session, "compare-form", "runs", "2").await;
    fill(&session, "compare-form", "duration_ms", "300").await;
    fill(&session, "compare-form", "seed", &compare_seed.to_string()).await;
    click(&session, "#compare-button").await;
    let view = wait_for(&session, "the comparison", COMPARISON, vec![], |view| {
        view["hidden"] == false && view["summary"].as_str().is_some_and(|text| !text.contains("under way"))
    })
    .await;
    let compare_id = view["test_id"].as_i64().unwrap();
    let full = api.get(&format!("/api/stress/{compare_id}")).await;
    assert_eq!(full["run"]["test_type"], "compare");
    assert_eq!(full["run"]["seed"], compare_seed.to_string());
    let report = &full["report"]["compare"];
    let summary = view["summary"].as_str().unwrap();
    assert!(summary.contains(&format!("seed {compare_seed},")), "{summary}");
    let totals = format!(
        "Interventions: {} with autonomy off, {} on.",
        report["autonomy_off"]["interventions"]["total"], report["autonomy_on"]["interventions"]["total"]
    );
    assert!(summary.contains(&totals), "{summary} lacks {totals}");
    let comparisons = report["comparisons"].as_array().unwrap();
    let rows = view["rows"].as_array().unwrap();
    assert_eq!(rows.len(), comparisons.len());
    assert!(!rows.is_empty());
    for (row, comparison) in rows.iter().zip(comparisons) {
        let key = comparison["figure"]["key"].as_str().unwrap();
        let cells = &row["cells"];
        assert_eq!(row["figure"], key);
        assert_eq!(cells["label"], comparison["figure"]["label"]);
        assert_eq!(cells["verdict"], comparison["verdict"]);
        assert_shows(cells["off_mean"].as_str().unwrap(), &comparison["off_mean"], 2, key);
        assert_shows(cells["on_mean"].as_str().unwrap(), &comparison["on_mean"], 2, key);
        assert_shows(cells["change_percent"].as_str().unwrap(), &comparison["change_percent"], 1, key);
        assert_shows_p(cells["p_value"].as_str().unwrap(), &comparison["p_value"], key);
        assert_shows_p(cells["p_value_adjusted"].as_str().unwrap(), &comparison["p_value_adjusted"], key);
        let t_test = &comparison["paired"]["t_test"];
        let difference = cells["mean_difference"].as_str().unwrap();
        if t_test.is_null() {
            assert!(difference.starts_with('—'), "{key}: {difference:?}");
        } else {
            let mean = difference.split(" [").next().unwrap();
            assert_shows(mean, &t_test["mean_difference"], 2, key);
        }
        assert_shows(cells["effect_size_dz"].as_str().unwrap(), &comparison["effect_size_dz"], 2, key);
        let pairs = format!("{} of {}", comparison["informative_pairs"], comparison["paired"]["pairs"]);
        assert_eq!(cells["informative_pairs"], pairs);
    }

    session.close().await.unwrap();
    println!("browser test: {:.1} s", started.elapsed().as_secs_f64());
}
