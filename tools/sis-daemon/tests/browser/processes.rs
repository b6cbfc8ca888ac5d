//! The processes the browser test owns: sisd (which boots SIS in QEMU) and headless Chromium with chromedriver,
//! each on 127.0.0.1 and a free port, each ended by its process ID when the test ends, passes or not.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sis_testing::{dashboard_vendor_dir, free_local_port};

/// How long sisd may take to boot SIS and listen.
const DAEMON_START: Duration = Duration::from_secs(180);
/// How long Chromium and chromedriver may take to listen.
const BROWSER_START: Duration = Duration::from_secs(30);
/// How long a process may take to end after it was asked to.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// Sends `signal` to process `pid`.
fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill").args([signal, &pid.to_string()]).stderr(Stdio::null()).status();
}

/// Asks `child` to end with `polite` (a `kill` signal option), kills it after [`STOP_GRACE`]; whether it ended
/// when asked.
fn stop(child: &mut Child, polite: &str) -> bool {
    signal(child.id(), polite);
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// sisd with a fresh history, SIS booted.
pub struct Daemon {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    qemu_pid: Option<u32>,
    _data: tempfile::TempDir,
}

impl Daemon {
    /// Starts sisd on a free port with a history in a temporary directory, the page from this crate's `web/` and
    /// the charting library from the workspace's vendor directory, and boots SIS (`SIS_KERNEL_ELF` or the
    /// release build).
    pub fn start() -> Daemon {
        let vendor = dashboard_vendor_dir();
        assert!(
            vendor.join("uplot/uPlot.iife.min.js").is_file(),
            "{} has no uPlot: run cargo xtask setup",
            vendor.display()
        );
        let data = tempfile::tempdir().unwrap();
        let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sisd"))
            .args(["--port", "0", "--boot", "--data-dir"])
            .arg(data.path())
            .arg("--web-dir")
            .arg(&web)
            .arg("--vendor-dir")
            .arg(&vendor)
            .stdout(Stdio::piped())
            .spawn()
            .expect("sisd starts");
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("{line}");
                if let Some(url) = line.strip_prefix("sisd: dashboard at ") {
                    let _ = sender.send(url.trim_end_matches('/').to_string());
                }
            }
        });
        let url = match receiver.recv_timeout(DAEMON_START) {
            Ok(url) => url,
            Err(_) => {
                stop(&mut child, "-INT");
                panic!("sisd did not print its URL within {DAEMON_START:?}");
            }
        };
        let mut daemon = Daemon { child, url, qemu_pid: None, _data: data };
        let system: Value = curl_json(&format!("{}/api/system", daemon.url));
        daemon.qemu_pid = system["kernel"]["qemu_pid"].as_u64().and_then(|pid| u32::try_from(pid).ok());
        assert_eq!(system["kernel"]["running"], true, "{system}");
        daemon
    }
}

impl Drop for Daemon {
    /// SIGINT: sisd stops serving and kills its QEMU. If it does not end, it and its QEMU are killed by ID.
    fn drop(&mut self) {
        if !stop(&mut self.child, "-INT") {
            if let Some(pid) = self.qemu_pid {
                signal(pid, "-KILL");
            }
        }
    }
}

/// Headless Chromium with a DevTools port, and chromedriver attached to it.
pub struct Browser {
    chromium: Child,
    driver: Child,
    /// chromedriver's URL.
    pub driver_url: String,
    /// The session capabilities that attach to this Chromium.
    pub capabilities: Value,
    _profile: tempfile::TempDir,
}

fn answers(url: &str) -> bool {
    Command::new("curl")
        .args(["-sf", "--max-time", "2", "-o", "/dev/null", url])
        .status()
        .is_ok_and(|status| status.success())
}

impl Browser {
    /// Starts Chromium (a fresh profile, a 1400×1700 window) and chromedriver, each on a free port of 127.0.0.1.
    pub fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let devtools = free_local_port().unwrap();
        let chromium = Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--window-size=1400,1700",
                "--remote-debugging-address=127.0.0.1",
                &format!("--remote-debugging-port={devtools}"),
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts (cargo xtask setup installs it)");
        let port = free_local_port().unwrap();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts (cargo xtask setup installs it)");
        let driver_url = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            chromium,
            driver,
            driver_url,
            capabilities: json!({
                "browserName": "chrome",
                "goog:chromeOptions": { "debuggerAddress": format!("127.0.0.1:{devtools}") }
            }),
            _profile: profile,
        };
        let deadline = Instant::now() + BROWSER_START;
        let devtools_url = format!("http://127.0.0.1:{devtools}/json/version");
        let status_url = format!("{}/status", browser.driver_url);
        while !(answers(&devtools_url) && answers(&status_url)) {
            if Instant::now() > deadline {
                let _ = browser.chromium.try_wait();
                panic!("chromium or chromedriver did not listen within {BROWSER_START:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        browser
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        stop(&mut self.driver, "-TERM");
        stop(&mut self.chromium, "-TERM");
    }
}

/// GETs `url` with curl (outside the async test body) and parses the JSON it answers.
fn curl_json(url: &str) -> Value {
    let output = Command::new("curl").args(["-sf", "--max-time", "10", url]).output().expect("curl runs");
    assert!(output.status.success(), "GET {url}: {:?}", output.status);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("GET {url}: {error}"))
}
