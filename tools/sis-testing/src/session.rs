//! A running SIS: send lines, read exactly the output that belongs to them, with deadlines.

use std::fmt;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sis_proto::PROMPT;

use crate::config::QemuConfig;

/// Why the harness could not do what was asked.
#[derive(Debug)]
pub enum HarnessError {
    /// QEMU could not be started.
    Spawn(std::io::Error),
    /// Writing to QEMU failed.
    Io(std::io::Error),
    /// The awaited text did not arrive in time.
    Timeout {
        /// What was awaited.
        waiting_for: String,
        /// The end of the output so far.
        tail: String,
    },
    /// QEMU exited while the harness was waiting.
    Exited {
        /// What was awaited.
        waiting_for: String,
        /// Exit status, if known.
        status: Option<i32>,
        /// The end of the output.
        tail: String,
    },
    /// The output was not exactly one JSON object.
    Json {
        /// Parser message.
        error: String,
        /// The text that failed to parse.
        text: String,
    },
}

impl fmt::Display for HarnessError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HarnessError::Spawn(error) => write!(formatter, "cannot start qemu-system-aarch64: {error}"),
            HarnessError::Io(error) => write!(formatter, "talking to QEMU failed: {error}"),
            HarnessError::Timeout { waiting_for, tail } => {
                write!(formatter, "timed out waiting for {waiting_for}; output ends with:\n{tail}")
            }
            HarnessError::Exited { waiting_for, status, tail } => write!(
                formatter,
                "QEMU exited (status {status:?}) while waiting for {waiting_for}; output ends with:\n{tail}"
            ),
            HarnessError::Json { error, text } => write!(formatter, "not one JSON object ({error}): {text:?}"),
        }
    }
}

impl std::error::Error for HarnessError {}

/// Output shared between the reader thread and the harness.
#[derive(Default)]
struct Shared {
    bytes: Vec<u8>,
    closed: bool,
    first_byte_at: Option<Instant>,
}

type SharedOutput = Arc<(Mutex<Shared>, Condvar)>;

/// A booted SIS at its prompt.
pub struct Sis {
    child: Child,
    stdin: ChildStdin,
    output: SharedOutput,
    reader: Option<JoinHandle<()>>,
    timeout: Duration,
    boot_time: Duration,
    first_output_time: Duration,
}

impl fmt::Debug for Sis {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("Sis").field("pid", &self.child.id()).field("boot_time", &self.boot_time).finish()
    }
}

static NONCE: AtomicU64 = AtomicU64::new(0);

fn spawn(config: &QemuConfig) -> Result<(Child, SharedOutput, JoinHandle<()>, Instant), HarnessError> {
    let started = Instant::now();
    let mut child = config
        .headless_command()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(HarnessError::Spawn)?;
    let mut stdout = child.stdout.take().ok_or_else(|| HarnessError::Io(std::io::Error::other("no stdout pipe")))?;
    let output: SharedOutput = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
    let sink = Arc::clone(&output);
    let reader = std::thread::spawn(move || {
        let mut buffer = [0u8; 8192];
        loop {
            let count = stdout.read(&mut buffer).unwrap_or(0);
            let (lock, signal) = &*sink;
            let mut shared = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if count == 0 {
                shared.closed = true;
                signal.notify_all();
                return;
            }
            shared.first_byte_at.get_or_insert_with(Instant::now);
            shared.bytes.extend_from_slice(&buffer[..count]);
            signal.notify_all();
        }
    });
    Ok((child, output, reader, started))
}

fn tail_of(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(2000);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

impl Sis {
    /// Starts QEMU and waits for the first prompt.
    pub fn boot(config: &QemuConfig) -> Result<Sis, HarnessError> {
        let (mut child, output, reader, started) = spawn(config)?;
        let stdin = child.stdin.take().ok_or_else(|| HarnessError::Io(std::io::Error::other("no stdin pipe")))?;
        let mut sis = Sis {
            child,
            stdin,
            output,
            reader: Some(reader),
            timeout: config.timeout,
            boot_time: Duration::ZERO,
            first_output_time: Duration::ZERO,
        };
        sis.wait_for(0, "the first prompt", |bytes| find(bytes, PROMPT.as_bytes()).map(|at| at + PROMPT.len()))?;
        sis.boot_time = started.elapsed();
        let first = sis.lock().first_byte_at;
        sis.first_output_time = first.map_or(sis.boot_time, |at| at.duration_since(started));
        Ok(sis)
    }

    /// Wall time from spawning QEMU to the first prompt.
    pub fn boot_time(&self) -> Duration {
        self.boot_time
    }

    /// Wall time from spawning QEMU to its first byte of output.
    pub fn first_output_time(&self) -> Duration {
        self.first_output_time
    }

    /// Everything QEMU printed so far.
    pub fn raw_output(&self) -> Vec<u8> {
        self.lock().bytes.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.output.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until `matcher` finds its end in the output after `from`; returns that absolute end.
    fn wait_for(
        &mut self,
        from: usize,
        waiting_for: &str,
        matcher: impl Fn(&[u8]) -> Option<usize>,
    ) -> Result<usize, HarnessError> {
        let deadline = Instant::now() + self.timeout;
        let (lock, signal) = &*self.output;
        let mut shared = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        loop {
            if let Some(end) = matcher(&shared.bytes[from.min(shared.bytes.len())..]) {
                return Ok(from + end);
            }
            if shared.closed {
                let tail = tail_of(&shared.bytes);
                drop(shared);
                let status = self.child.wait().ok().and_then(|status| status.code());
                return Err(HarnessError::Exited { waiting_for: waiting_for.into(), status, tail });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(HarnessError::Timeout { waiting_for: waiting_for.into(), tail: tail_of(&shared.bytes) });
            }
            shared = signal.wait_timeout(shared, deadline - now).unwrap_or_else(|poisoned| poisoned.into_inner()).0;
        }
    }

    /// Writes raw bytes to the console.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), HarnessError> {
        self.stdin.write_all(bytes).and_then(|()| self.stdin.flush()).map_err(HarnessError::Io)
    }

    /// Sends `line` and returns its output (echo removed, `\r\n` turned into `\n`).
    pub fn run(&mut self, line: &str) -> Result<String, HarnessError> {
        self.run_bytes(line.as_bytes())
    }

    /// Like [`run`](Self::run) for arbitrary bytes (invalid UTF-8, control bytes).
    ///
    /// The line must not contain `\r`, `\n` or Ctrl-C: each would end or
    /// cancel it early.
    pub fn run_bytes(&mut self, line: &[u8]) -> Result<String, HarnessError> {
        let from = self.lock().bytes.len();
        let mut bytes = line.to_vec();
        bytes.push(b'\r');
        self.send_raw(&bytes)?;
        let prompt = format!("\n{PROMPT}");
        let waiting_for = format!("the prompt after {:?}", String::from_utf8_lossy(line));
        let end = self.wait_for(from, &waiting_for, |after| {
            let echo_end = find(after, b"\r\n")? + 2;
            find(&after[echo_end - 1..], prompt.as_bytes()).map(|at| echo_end - 1 + at + prompt.len())
        })?;
        let shared = self.lock();
        let after = &shared.bytes[from..end];
        let echo_end = find(after, b"\r\n").map_or(0, |at| at + 2);
        let body = &after[echo_end..after.len() - PROMPT.len()];
        Ok(String::from_utf8_lossy(body).replace("\r\n", "\n"))
    }

    /// Runs `line --json` and parses its one JSON object.
    pub fn run_json(&mut self, line: &str) -> Result<serde_json::Value, HarnessError> {
        let text = self.run(&format!("{line} --json"))?;
        let trimmed = text.strip_suffix('\n').unwrap_or(&text);
        if trimmed.contains('\n') {
            return Err(HarnessError::Json { error: "more than one line".into(), text });
        }
        match serde_json::from_str::<serde_json::Value>(trimmed) {
            Ok(value) if value.is_object() => Ok(value),
            Ok(_) => Err(HarnessError::Json { error: "not an object".into(), text }),
            Err(error) => Err(HarnessError::Json { error: error.to_string(), text }),
        }
    }

    /// Cancels any half-typed line and waits until the shell answers a fresh `echo`.
    pub fn sync(&mut self) -> Result<(), HarnessError> {
        let nonce = format!("sync-{}-{}", std::process::id(), NONCE.fetch_add(1, Ordering::Relaxed));
        let from = self.lock().bytes.len();
        self.send_raw(format!("\x03echo {nonce}\r").as_bytes())?;
        let expected = format!("\r\n{nonce}\r\n{PROMPT}");
        self.wait_for(from, &format!("sync {nonce}"), |after| find(after, expected.as_bytes()).map(|at| at + expected.len()))?;
        Ok(())
    }

    /// Waits for QEMU to exit by itself; returns its status.
    pub fn wait_exit(mut self) -> Result<ExitStatus, HarnessError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(status) = self.child.try_wait().map_err(HarnessError::Io)? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::Timeout { waiting_for: "QEMU to exit".into(), tail: tail_of(&self.raw_output()) });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether QEMU is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Sis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// The result of a boot-argument batch run.
#[derive(Debug, Clone)]
pub struct BatchResult {
    /// QEMU's exit code (`None` if killed by a signal).
    pub status: Option<i32>,
    /// Everything printed, `\r\n` turned into `\n`.
    pub output: String,
    /// Wall time from spawn to exit.
    pub wall_time: Duration,
}

/// Boots with `config` (which should carry `sis.run`) and waits for QEMU to exit.
pub fn run_batch(config: &QemuConfig) -> Result<BatchResult, HarnessError> {
    let (mut child, output, reader, started) = spawn(config)?;
    drop(child.stdin.take());
    let deadline = started + config.timeout;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(HarnessError::Io)? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = reader.join();
            let shared = output.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            return Err(HarnessError::Timeout { waiting_for: "the batch run to exit".into(), tail: tail_of(&shared.bytes) });
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = reader.join();
    let shared = output.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    Ok(BatchResult {
        status: status.code(),
        output: String::from_utf8_lossy(&shared.bytes).replace("\r\n", "\n"),
        wall_time: started.elapsed(),
    })
}
