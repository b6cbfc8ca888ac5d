//! A stand-in for QEMU running SIS that speaks the console protocol, so the harness can be tested without a kernel.
//!
//! It takes QEMU's command line (it reads `-m` and `-append` and ignores the
//! rest), prints boot lines and the prompt, and runs a few commands with the
//! shell's echo, error and JSON rules, including `sis.run` batch mode and its
//! exit statuses. Boot arguments starting `fake.` make it misbehave on purpose:
//!
//! - `fake.pid_file=PATH`: write the process ID there first.
//! - `fake.boot=silent`: print nothing and never prompt; `fake.boot=exit`: print a line and exit with status 7.
//! - `fake.boot_delay_ms=N`: wait N ms between the first boot line and the prompt.
//!
//! Commands beyond the kernel's: `flood N` prints N numbered lines, `hang`
//! stops reading and answering for good, `sleep MS` answers after MS ms,
//! `badjson two-objects|not-json|old-schema` prints malformed `--json` output,
//! `write-stderr N` prints N bytes on standard error.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sis_proto::{bootargs, exit, PROMPT, SCHEMA_VERSION};

/// The shell's line limit in bytes.
const LINE_LIMIT_BYTES: usize = 1024;
/// Status of `fake.boot=exit`: neither QEMU's nor the kernel's.
const BOOT_EXIT_STATUS: u8 = 7;
const CTRL_C: u8 = 0x03;
const ESC: u8 = 0x1b;

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let memory_mib =
        value_after(&arguments, "-m").and_then(|text| text.strip_suffix('M')?.parse::<u64>().ok()).unwrap_or(128);
    let bootargs_text = value_after(&arguments, "-append").unwrap_or_default();
    let boot_arguments = match bootargs::parse(&bootargs_text) {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!("sis-fake-shell: {error}");
            return ExitCode::FAILURE;
        }
    };
    let setting = |key: &str| {
        boot_arguments.iter().rev().find(|argument| argument.key == key).map(|argument| argument.value.clone())
    };
    if let Some(path) = setting("fake.pid_file") {
        if let Err(error) = std::fs::write(&path, std::process::id().to_string()) {
            eprintln!("sis-fake-shell: cannot write {path}: {error}");
            return ExitCode::FAILURE;
        }
    }
    let mut shell = Shell { console: std::io::stdout(), started_at: Instant::now(), memory_mib };
    match setting("fake.boot").as_deref() {
        Some("silent") => idle_forever(),
        Some("exit") => {
            shell.print("SIS fake kernel: exiting during boot\r\n");
            return ExitCode::from(BOOT_EXIT_STATUS);
        }
        _ => {}
    }
    shell.print("SIS fake kernel (console protocol test double)\r\n");
    if let Some(delay_ms) = setting("fake.boot_delay_ms").and_then(|text| text.parse().ok()) {
        std::thread::sleep(Duration::from_millis(delay_ms));
    }
    shell.print(&format!("memory: {memory_mib} MiB\r\n"));
    match setting(bootargs::RUN) {
        Some(commands) => shell.batch(&commands),
        None => shell.interactive(),
    }
}

/// The text after `flag` on the command line.
fn value_after(arguments: &[String], flag: &str) -> Option<String> {
    arguments.iter().position(|argument| argument == flag).and_then(|index| arguments.get(index + 1)).cloned()
}

/// What real QEMU does once the guest stops: nothing, until it is killed.
fn idle_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// How a command ended.
enum Outcome {
    Success,
    Failure,
}

struct Shell {
    console: std::io::Stdout,
    started_at: Instant,
    memory_mib: u64,
}

impl Shell {
    /// Writes and flushes at once, as a UART would.
    fn print(&mut self, text: &str) {
        self.print_bytes(text.as_bytes());
    }

    fn print_bytes(&mut self, bytes: &[u8]) {
        // A closed console means the harness is gone; nothing left to do.
        if self.console.write_all(bytes).and_then(|()| self.console.flush()).is_err() {
            std::process::exit(0);
        }
    }

    /// The prompt, in two writes so the harness sees it split across reads.
    fn prompt(&mut self) {
        let (first, second) = PROMPT.split_at(2);
        self.print(first);
        self.print(second);
    }

    fn batch(&mut self, commands: &str) -> ! {
        let mut failed = false;
        for command in commands.split(';').map(str::trim).filter(|command| !command.is_empty()) {
            self.print(&format!("{PROMPT}{command}\r\n"));
            match self.execute(command.as_bytes()) {
                Outcome::Success => {}
                Outcome::Failure => failed = true,
            }
        }
        std::process::exit(if failed { exit::FAIL } else { exit::PASS })
    }

    fn interactive(&mut self) -> ! {
        self.prompt();
        let mut input = std::io::stdin().lock();
        let mut editor = Editor::default();
        let mut buffer = [0u8; 4096];
        loop {
            let count = match input.read(&mut buffer) {
                Ok(0) | Err(_) => idle_forever(),
                Ok(count) => count,
            };
            for &byte in &buffer[..count] {
                match editor.feed(byte) {
                    Event::Echo(bytes) => self.print_bytes(&bytes),
                    Event::Nothing => {}
                    Event::Cancelled => {
                        self.print("^C\r\n");
                        self.prompt();
                    }
                    Event::Line { bytes, typed } => {
                        self.print("\r\n");
                        if typed > LINE_LIMIT_BYTES {
                            let message = format!("line of {typed} bytes; the limit is {LINE_LIMIT_BYTES}");
                            self.error(false, "line-too-long", &message);
                        } else {
                            self.execute(&bytes);
                        }
                        self.prompt();
                    }
                }
            }
        }
    }

    fn error(&mut self, as_json: bool, code: &str, message: &str) -> Outcome {
        if as_json {
            let error = json!({"code": code, "message": message});
            let object = json!({"schema_version": SCHEMA_VERSION, "command": null, "ok": false, "error": error});
            self.print(&format!("{object}\r\n"));
        } else {
            self.print(&format!("error[{code}]: {message}\r\n"));
        }
        Outcome::Failure
    }

    fn execute(&mut self, line: &[u8]) -> Outcome {
        let as_json = line.ends_with(b" --json");
        if let Some(byte) = line.iter().find(|&&byte| byte < 0x20 || byte == 0x7f) {
            return self.error(as_json, "control-byte", &format!("control byte 0x{byte:02x} in the line"));
        }
        let Ok(text) = std::str::from_utf8(line) else {
            return self.error(as_json, "invalid-utf8", "the line is not valid UTF-8");
        };
        if text.matches('"').count() % 2 == 1 {
            return self.error(as_json, "unterminated-quote", "a double quote is never closed");
        }
        let words: Vec<&str> = text.split_whitespace().filter(|word| *word != "--json").collect();
        let Some((&name, arguments)) = words.split_first() else {
            return Outcome::Success;
        };
        let reply = |fields: Value| {
            let mut object = json!({"schema_version": SCHEMA_VERSION, "command": name, "ok": true});
            if let (Some(object), Value::Object(fields)) = (object.as_object_mut(), fields) {
                object.extend(fields);
            }
            object
        };
        let number = |default| arguments.first().and_then(|text| text.parse::<u64>().ok()).unwrap_or(default);
        let text = match name {
            "echo" => {
                let joined = arguments.join(" ");
                if as_json {
                    reply(json!({"text": joined})).to_string()
                } else {
                    joined
                }
            }
            "version" => {
                if as_json {
                    reply(json!({"name": "SIS", "version": "0.1.0"})).to_string()
                } else {
                    "SIS 0.1.0".into()
                }
            }
            "uptime" => {
                let uptime_ns = u64::try_from(self.started_at.elapsed().as_nanos()).unwrap_or(u64::MAX);
                if as_json {
                    reply(json!({"uptime_ns": uptime_ns})).to_string()
                } else {
                    format!("up {uptime_ns} ns")
                }
            }
            "meminfo" => {
                let total_bytes = self.memory_mib << 20;
                if as_json {
                    reply(json!({"total_bytes": total_bytes})).to_string()
                } else {
                    format!("total {total_bytes} bytes")
                }
            }
            "flood" => {
                let count = number(0);
                (1..=count).map(|index| format!("flood line {index} of {count}")).collect::<Vec<_>>().join("\r\n")
            }
            "write-stderr" => {
                let count = number(0);
                // Ignored failure: the harness may already be gone.
                let _ = std::io::stderr().write_all(&vec![b'e'; usize::try_from(count).unwrap_or(0)]);
                format!("wrote {count} bytes to stderr")
            }
            "sleep" => {
                let milliseconds = number(0);
                std::thread::sleep(Duration::from_millis(milliseconds));
                format!("slept {milliseconds} ms")
            }
            "hang" => idle_forever(),
            "badjson" => match arguments.first().copied() {
                Some("two-objects") => format!("{}\r\n{}", reply(json!({})), reply(json!({}))),
                Some("old-schema") => json!({"schema_version": 0, "command": "badjson", "ok": true}).to_string(),
                _ => "this is not json".into(),
            },
            "shutdown" => {
                self.print("powering off\r\n");
                std::process::exit(0);
            }
            "fault" if arguments.first() == Some(&"panic") => {
                self.print("KERNEL PANIC: fault panic requested from the shell\r\n");
                std::process::exit(exit::PANIC);
            }
            _ => return self.error(as_json, "unknown-command", &format!("unknown command '{name}'")),
        };
        if !text.is_empty() {
            self.print(&format!("{text}\r\n"));
        }
        Outcome::Success
    }
}

/// What one input byte did.
enum Event {
    Nothing,
    Echo(Vec<u8>),
    Cancelled,
    Line { bytes: Vec<u8>, typed: usize },
}

/// The shell's line editor, reduced to what the protocol promises.
#[derive(Default)]
struct Editor {
    line: Vec<u8>,
    typed: usize,
    after_carriage_return: bool,
    in_escape: bool,
}

impl Editor {
    fn feed(&mut self, byte: u8) -> Event {
        let after_carriage_return = std::mem::replace(&mut self.after_carriage_return, byte == b'\r');
        if byte < 0x20 && byte != ESC {
            // A C0 control ends any escape sequence, so Enter and Ctrl-C always work.
            self.in_escape = false;
        } else if self.in_escape {
            self.in_escape = byte == b'[' || !(0x40..=0x7e).contains(&byte);
            return Event::Nothing;
        }
        match byte {
            b'\n' if after_carriage_return => Event::Nothing,
            b'\r' | b'\n' => {
                let typed = std::mem::take(&mut self.typed);
                Event::Line { bytes: std::mem::take(&mut self.line), typed }
            }
            CTRL_C => {
                self.line.clear();
                self.typed = 0;
                Event::Cancelled
            }
            ESC => {
                self.in_escape = true;
                Event::Nothing
            }
            _ => {
                self.typed += 1;
                if self.typed > LINE_LIMIT_BYTES {
                    return Event::Nothing;
                }
                self.line.push(byte);
                match byte {
                    0x00..=0x1f => Event::Echo(vec![b'^', byte + 0x40]),
                    0x7f => Event::Echo(b"^?".to_vec()),
                    _ => Event::Echo(vec![byte]),
                }
            }
        }
    }
}
