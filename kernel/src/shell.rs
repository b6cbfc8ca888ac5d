//! The shell thread: batch mode from `sis.run`, otherwise the interactive console loop.

use sis_platform::{console, power, time};
use sis_proto::{bootargs, exit, PROMPT};
use sis_shell::{split_commands, Echo, EditEvent, LineEditor, Outcome, Output, Registry};

use crate::commands::{self, Kernel};
use crate::format;

/// Longest line the editor accepts.
pub const MAX_LINE_BYTES: usize = 1024;

struct ConsoleOutput;

impl Output for ConsoleOutput {
    fn write_str(&mut self, text: &str) {
        console::write_str(text);
    }
}

impl Echo for ConsoleOutput {
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
    let mut out = ConsoleOutput;
    let commands = match split_commands(commands) {
        Ok(commands) => commands,
        Err(error) => {
            out.write_str(&alloc::format!("{error}\n"));
            power::exit_with_status(exit::FAIL);
        }
    };
    let mut failures = 0;
    for command in &commands {
        out.write_str(&alloc::format!("{PROMPT}{command}\n"));
        if let Outcome::Failed { .. } = registry.execute(kernel, command.as_bytes(), &mut out) {
            failures += 1;
        }
        if kernel.shutdown_requested {
            power::system_off();
        }
    }
    out.write_str(&alloc::format!("batch: {} of {} commands succeeded\n", commands.len() - failures, commands.len()));
    power::exit_with_status(if failures == 0 { exit::PASS } else { exit::FAIL })
}

fn interactive(kernel: &mut Kernel, registry: &Registry<Kernel>) -> ! {
    let mut out = ConsoleOutput;
    let mut editor = LineEditor::new(MAX_LINE_BYTES);
    let mut buffer = [0u8; 256];
    out.write_str(PROMPT);
    loop {
        let count = console::read(&mut buffer);
        for &byte in &buffer[..count] {
            let Some(event) = editor.feed(byte, &mut ConsoleOutput) else {
                continue;
            };
            match event {
                EditEvent::Line(line) => {
                    registry.execute(kernel, &line, &mut out);
                    if kernel.shutdown_requested {
                        power::system_off();
                    }
                }
                EditEvent::Cancelled => {}
                EditEvent::TooLong { length } => {
                    out.write_str(&alloc::format!("{}\n", editor.too_long_error(length)));
                }
            }
            out.write_str(PROMPT);
        }
    }
}
