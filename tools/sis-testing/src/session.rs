//! A booted SIS at its prompt: send lines, get exactly the output that belongs to each, with deadlines.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use sis_proto::{PROMPT, SCHEMA_VERSION};

use crate::config::QemuConfig;
use crate::console::{self, ErrorLine};
use crate::error::{tail_of, HarnessError};
use crate::process::{Input, QemuProcess};

/// Ctrl-C: the shell discards the line typed so far and prints a fresh prompt.
const CTRL_C: u8 = 0x03;

/// Makes every [`Sis::sync`] nonce unique within this process.
static SYNC_COUNTER: AtomicU64 = AtomicU64::new(0);

/// What one command printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// The echo of the line as the shell printed it (without its `\r\n`).
    pub echo: Vec<u8>,
    /// The output exactly as received: after the echo line, before the prompt (`\r\n` line ends).
    pub bytes: Vec<u8>,
    /// The output as text: invalid UTF-8 replaced, `\r\n` turned into `\n`.
    pub text: String,
    /// Wall time from sending the line to the arrival of the prompt that ended the output.
    pub latency: Duration,
}

impl CommandOutput {
    /// The `error[<code>]: <message>` line, if the output is exactly one.
    pub fn error(&self) -> Option<ErrorLine<'_>> {
        console::parse_error_line(&self.text)
    }

    /// The error code, if the output is exactly one error line.
    pub fn error_code(&self) -> Option<&str> {
        self.error().map(|error| error.code)
    }
}

impl PartialEq<&str> for CommandOutput {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl fmt::Display for CommandOutput {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

/// A running SIS, booted to its prompt. QEMU is killed when this is dropped.
#[derive(Debug)]
pub struct Sis {
    process: QemuProcess,
    timeout: Duration,
    boot_time: Duration,
    first_output_time: Duration,
}

impl Sis {
    /// Starts QEMU and waits for the first prompt (at the start of a line).
    pub fn boot(config: &QemuConfig) -> Result<Sis, HarnessError> {
        let process = QemuProcess::spawn(config, Input::Piped)?;
        let mut sis =
            Sis { process, timeout: config.timeout, boot_time: Duration::ZERO, first_output_time: Duration::ZERO };
        let prompt_start = sis
            .process
            .wait_for(0, "the first prompt", config.timeout, |bytes| console::prompt_at_line_start(bytes, 0))?;
        let started_at = sis.process.started_at();
        let received = sis.process.console().lock();
        let since_start = |offset| received.arrival_of(offset).map_or(Duration::ZERO, |at: Instant| at - started_at);
        let boot_time = since_start(prompt_start + PROMPT.len() - 1);
        let first_output_time = since_start(0);
        drop(received);
        sis.boot_time = boot_time;
        sis.first_output_time = first_output_time;
        Ok(sis)
    }

    /// Wall time from spawning QEMU to the arrival of the first prompt.
    pub fn boot_time(&self) -> Duration {
        self.boot_time
    }

    /// Wall time from spawning QEMU to its first byte of console output.
    pub fn first_output_time(&self) -> Duration {
        self.first_output_time
    }

    /// QEMU's process ID.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Everything QEMU printed on the console so far.
    pub fn raw_output(&self) -> Vec<u8> {
        self.process.console().lock().bytes.clone()
    }

    /// Everything QEMU printed on its standard error so far.
    pub fn stderr_output(&self) -> Vec<u8> {
        self.process.stderr().lock().bytes.clone()
    }

    /// Writes raw bytes to the console, waiting (within the timeout) until QEMU has taken them.
    ///
    /// Nothing is read back: call [`sync`](Self::sync) before the next [`run`](Self::run).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), HarnessError> {
        self.process.write(bytes, self.timeout)
    }

    /// Sends `line` and returns its output: after the echo line, up to the next prompt.
    pub fn run(&mut self, line: &str) -> Result<CommandOutput, HarnessError> {
        self.run_bytes(line.as_bytes())
    }

    /// Like [`run`](Self::run) for arbitrary bytes (invalid UTF-8, control bytes).
    ///
    /// The line must not contain `\r`, `\n` or Ctrl-C, which would end or cancel
    /// it early ([`HarnessError::LineBreakInLine`]). The console must be at a
    /// prompt ([`HarnessError::NotAtPrompt`] otherwise), and output that arrived
    /// before the line was sent is never part of the answer. A printable ASCII
    /// line must come back as its own echo ([`HarnessError::EchoMismatch`]).
    pub fn run_bytes(&mut self, line: &[u8]) -> Result<CommandOutput, HarnessError> {
        if let Some(offset) = console::first_line_break(line) {
            return Err(HarnessError::LineBreakInLine { line: line.to_vec(), offset });
        }
        let from = {
            let received = self.process.console().lock();
            if !received.bytes.ends_with(PROMPT.as_bytes()) {
                return Err(HarnessError::NotAtPrompt { output_tail: tail_of(&received.bytes) });
            }
            received.bytes.len()
        };
        let mut submitted = line.to_vec();
        submitted.push(b'\r');
        let sent_at = Instant::now();
        self.send_raw(&submitted)?;
        let waiting_for = format!("the prompt after {:?}", String::from_utf8_lossy(line));
        let end = self.process.wait_for(from, &waiting_for, self.timeout, |after| {
            console::reply_bounds(after).map(|bounds| bounds.end())
        })?;
        let received = self.process.console().lock();
        let after = &received.bytes[from..end];
        let bounds = console::reply_bounds(after).ok_or_else(|| HarnessError::Io {
            action: "reading a reply",
            source: std::io::Error::other("reply bounds vanished"),
        })?;
        let echo = after[..bounds.output_start - 2].to_vec();
        let bytes = after[bounds.output_start..bounds.prompt_start].to_vec();
        let latency = received.arrival_of(end - 1).map_or(Duration::ZERO, |at| at.saturating_duration_since(sent_at));
        drop(received);
        if console::echoes_verbatim(line) && echo != line {
            return Err(HarnessError::EchoMismatch {
                sent: String::from_utf8_lossy(line).into_owned(),
                echoed: String::from_utf8_lossy(&echo).into_owned(),
            });
        }
        let text = String::from_utf8_lossy(&bytes).replace("\r\n", "\n");
        Ok(CommandOutput { echo, bytes, text, latency })
    }

    /// Runs `line --json` and returns its one JSON object.
    ///
    /// The output must be exactly one line holding one object whose
    /// `schema_version` is [`SCHEMA_VERSION`] and which has `command` and `ok`
    /// (see [`parse_json_reply`]). A command that failed still gives `Ok`,
    /// with `"ok": false` and the `error` object in it.
    pub fn run_json(&mut self, line: &str) -> Result<Value, HarnessError> {
        let output = self.run(&format!("{line} --json"))?;
        parse_json_reply(&output.text)
    }

    /// Sends every line, each ended by `\r`, in one write, then [`sync`](Self::sync)s; returns the raw console
    /// bytes from before the send to the end of the sync.
    ///
    /// The shell runs the lines one after another as it reads them, so a
    /// command can be answered while an earlier one's threads are still at work.
    /// Read the replies with [`console::json_replies`]. The console must be at a
    /// prompt ([`HarnessError::NotAtPrompt`]), and no line may hold `\r`, `\n`
    /// or Ctrl-C ([`HarnessError::LineBreakInLine`]); nothing is sent otherwise.
    pub fn run_raw_lines(&mut self, lines: &[&str]) -> Result<Vec<u8>, HarnessError> {
        for line in lines {
            if let Some(offset) = console::first_line_break(line.as_bytes()) {
                return Err(HarnessError::LineBreakInLine { line: line.as_bytes().to_vec(), offset });
            }
        }
        let from = {
            let received = self.process.console().lock();
            if !received.bytes.ends_with(PROMPT.as_bytes()) {
                return Err(HarnessError::NotAtPrompt { output_tail: tail_of(&received.bytes) });
            }
            received.bytes.len()
        };
        let mut submitted = Vec::new();
        for line in lines {
            submitted.extend_from_slice(line.as_bytes());
            submitted.push(b'\r');
        }
        self.send_raw(&submitted)?;
        let end = self.sync_end()?;
        Ok(self.process.console().lock().bytes[from..end].to_vec())
    }

    /// Resynchronises after raw input: cancels any half-typed line with Ctrl-C,
    /// sends `echo <unique nonce>` and waits for the nonce line and the prompt after it.
    pub fn sync(&mut self) -> Result<(), HarnessError> {
        self.sync_end().map(|_| ())
    }

    /// [`sync`](Self::sync), returning the offset in the console output just after the prompt that ended it.
    fn sync_end(&mut self) -> Result<usize, HarnessError> {
        let nonce = format!("sync-{}-{}", std::process::id(), SYNC_COUNTER.fetch_add(1, Ordering::Relaxed));
        let from = self.process.console().lock().bytes.len();
        let mut bytes = vec![CTRL_C];
        bytes.extend_from_slice(format!("echo {nonce}\r").as_bytes());
        self.send_raw(&bytes)?;
        // The echo line ends `echo <nonce>\r\n`, so `\n<nonce>\r\n` can only be the output line.
        let expected = format!("\n{nonce}\r\n{PROMPT}");
        self.process.wait_for(from, &format!("the answer to sync {nonce}"), self.timeout, |after| {
            console::find(after, expected.as_bytes()).map(|at| at + expected.len())
        })
    }

    /// Waits (within the timeout) for QEMU to exit by itself; returns its exit code (`None`: killed by a signal).
    pub fn wait_exit(mut self) -> Result<Option<i32>, HarnessError> {
        let status = self.process.wait_exit(self.timeout)?;
        Ok(status.code())
    }

    /// Whether QEMU is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.try_status().is_none()
    }

    /// Kills QEMU now (also done on drop).
    pub fn kill(&mut self) {
        self.process.kill();
    }
}

/// Checks that `text` is exactly one line holding one JSON object of this schema.
pub fn parse_json_reply(text: &str) -> Result<Value, HarnessError> {
    let not_json = |reason: String| HarnessError::NotJson { reason, output: text.to_string() };
    let Some(line) = text.strip_suffix('\n') else {
        return Err(not_json("no complete line".into()));
    };
    if line.contains('\n') {
        return Err(not_json(format!("{} lines, not one", text.lines().count())));
    }
    let value: Value = serde_json::from_str(line).map_err(|error| not_json(error.to_string()))?;
    let Some(object) = value.as_object() else {
        return Err(not_json("not an object".into()));
    };
    if object.get("schema_version").and_then(Value::as_u64) != Some(u64::from(SCHEMA_VERSION)) {
        return Err(not_json(format!("schema_version is not {SCHEMA_VERSION}")));
    }
    // `null` when the line was refused before a command was recognised.
    if !object.get("command").is_some_and(|command| command.is_string() || command.is_null()) {
        return Err(not_json("no \"command\" (a string, or null before a command is recognised)".into()));
    }
    if !object.get("ok").is_some_and(Value::is_boolean) {
        return Err(not_json("no \"ok\" boolean".into()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &str) -> String {
        match parse_json_reply(text) {
            Err(HarnessError::NotJson { reason, .. }) => reason,
            other => panic!("expected NotJson for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn one_object_of_this_schema_is_accepted() {
        let value =
            parse_json_reply("{\"schema_version\":1,\"command\":\"echo\",\"ok\":true,\"text\":\"a b\"}\n").unwrap();
        assert_eq!(value["text"], "a b");
        let refused =
            "{\"command\":null,\"error\":{\"code\":\"unknown-command\",\"message\":\"m\"},\"ok\":false,\"schema_version\":1}\n";
        assert_eq!(parse_json_reply(refused).unwrap()["error"]["code"], "unknown-command");
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        let no_command = "no \"command\" (a string, or null before a command is recognised)";
        assert_eq!(reason(""), "no complete line");
        assert_eq!(reason("{}\n{}\n"), "2 lines, not one");
        assert_eq!(reason("[1]\n"), "not an object");
        assert_eq!(reason("{oops}\n"), "key must be a string at line 1 column 2");
        assert_eq!(reason("{\"command\":\"x\",\"ok\":true}\n"), "schema_version is not 1");
        assert_eq!(reason("{\"schema_version\":1,\"ok\":true}\n"), no_command);
        assert_eq!(reason("{\"schema_version\":1,\"command\":7,\"ok\":true}\n"), no_command);
        assert_eq!(reason("{\"schema_version\":1,\"command\":\"x\"}\n"), "no \"ok\" boolean");
    }

    #[test]
    fn command_output_reads_error_lines() {
        let output = CommandOutput {
            echo: b"frob".to_vec(),
            bytes: b"error[unknown-command]: no command 'frob'\r\n".to_vec(),
            text: "error[unknown-command]: no command 'frob'\n".into(),
            latency: Duration::ZERO,
        };
        assert_eq!(output.error_code(), Some("unknown-command"));
        assert_eq!(output.error().map(|error| error.message), Some("no command 'frob'"));
        assert_eq!(output, "error[unknown-command]: no command 'frob'\n");
    }
}
