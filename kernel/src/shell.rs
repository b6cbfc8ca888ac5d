//! The shell thread: batch mode from `sis.run`, otherwise the interactive console loop.

use alloc::string::String;

use sis_platform::{console, power, time};
use sis_proto::{bootargs, exit, PROMPT};
use sis_shell::{split_commands, Echo, EditEvent, LineEditor, Outcome, Output, Registry};

use crate::commands::{self, Kernel};
use crate::{format, otel};

/// Longest line the editor accepts.
pub const MAX_LINE_BYTES: usize = 1024;

/// Bytes read from the console at a time.
const READ_CHUNK_BYTES: usize = 256;

/// Command output, line-buffered: each complete line (up to and including `\n`) is one console write, so a
/// log line from another thread can land between two lines of a reply but never inside one.
#[derive(Default)]
struct ConsoleOutput {
    /// Text after the last `\n` written so far.
    pending: String,
}

impl ConsoleOutput {
    /// Writes whatever is pending (an unfinished line): before a prompt, and at the end of every command.
    fn flush(&mut self) {
        if !self.pending.is_empty() {
            console::write_str(&self.pending);
            self.pending = String::new();
        }
    }
}

impl Output for ConsoleOutput {
    fn write_str(&mut self, text: &str) {
        self.pending.push_str(text);
        let mut written = 0;
        while let Some(offset) = self.pending[written..].find('\n') {
            let end = written + offset + 1;
            console::write_str(&self.pending[written..end]);
            written = end;
        }
        // A fresh string rather than `drain`: a reply line can be megabytes (a chaos report in JSON), and its
        // buffer must not stay allocated between commands.
        if written > 0 {
            self.pending = String::from(&self.pending[written..]);
        }
    }
}

/// The line editor's echo: unbuffered, so typed characters show at once.
struct ConsoleEcho;

impl Echo for ConsoleEcho {
    fn echo(&mut self, bytes: &[u8]) {
        console::write_bytes(bytes);
    }
}

/// Runs the shell; never returns.
pub fn run(mut kernel: Kernel) -> ! {
    let registry = commands::registry();
    match bootargs::find(&kernel.bootargs, bootargs::RUN) {
        Ok(Some(commands)) => run_batch(&mut kernel, &registry, &commands),
        Ok(None) => {}
        Err(error) => {
            console::write_str(&alloc::format!("error[bad-bootargs]: {error}\n"));
            power::exit_with_status(exit::FAIL);
        }
    }
    console::write_str(&alloc::format!(
        "SIS {} ready in {} (guest time). Type 'help'; every command takes --help and --json.\n",
        env!("CARGO_PKG_VERSION"),
        format::milliseconds(time::now_ns())
    ));
    interactive(&mut kernel, &registry)
}

/// Runs `sis.run` commands in order, echoing each after a prompt, then exits QEMU with pass or fail.
fn run_batch(kernel: &mut Kernel, registry: &Registry<Kernel>, commands: &str) -> ! {
    let mut out = ConsoleOutput::default();
    let commands = match split_commands(commands) {
        Ok(commands) => commands,
        Err(error) => {
            out.write_str(&alloc::format!("{error}\n"));
            out.flush();
            power::exit_with_status(exit::FAIL);
        }
    };
    // Batch commands come from the boot arguments, not the console: no line arrival time.
    kernel.line_received_ns = None;
    let mut failures = 0;
    for command in &commands {
        out.write_str(&alloc::format!("{PROMPT}{command}\n"));
        let start_ns = time::now_ns();
        let outcome = registry.execute(kernel, command.as_bytes(), &mut out);
        otel::record_command(registry, command.as_bytes(), start_ns, time::now_ns(), &outcome);
        if let Outcome::Failed { .. } = outcome {
            failures += 1;
        }
        out.flush();
        if kernel.shutdown_requested {
            power::system_off();
        }
    }
    out.write_str(&alloc::format!("batch: {} of {} commands succeeded\n", commands.len() - failures, commands.len()));
    out.flush();
    power::exit_with_status(if failures == 0 { exit::PASS } else { exit::FAIL })
}

/// The console loop. A completed line records when its last byte arrived (`Kernel::line_received_ns`), so a
/// command can tell how long the line waited for its answer.
fn interactive(kernel: &mut Kernel, registry: &Registry<Kernel>) -> ! {
    let mut out = ConsoleOutput::default();
    let mut editor = LineEditor::new(MAX_LINE_BYTES);
    let mut buffer = [0u8; READ_CHUNK_BYTES];
    let mut arrivals_ns = [0u64; READ_CHUNK_BYTES];
    console::write_str(PROMPT);
    loop {
        let count = console::read_timed(&mut buffer, &mut arrivals_ns);
        for (&byte, &arrival_ns) in buffer[..count].iter().zip(&arrivals_ns[..count]) {
            let Some(event) = editor.feed(byte, &mut ConsoleEcho) else {
                continue;
            };
            match event {
                EditEvent::Line(line) => {
                    kernel.line_received_ns = Some(arrival_ns);
                    let start_ns = time::now_ns();
                    let outcome = registry.execute(kernel, &line, &mut out);
                    otel::record_command(registry, &line, start_ns, time::now_ns(), &outcome);
                    out.flush();
                    if kernel.shutdown_requested {
                        power::system_off();
                    }
                }
                EditEvent::Cancelled => {}
                EditEvent::TooLong { length } => {
                    out.write_str(&alloc::format!("{}\n", editor.too_long_error(length)));
                }
            }
            out.flush();
            console::write_str(PROMPT);
        }
    }
}
