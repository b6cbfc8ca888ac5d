//! Why the harness could not do what was asked, with the end of QEMU's output attached.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Bytes of output kept at the end of an error message.
pub const TAIL_BYTES: usize = 2000;

/// Why the harness could not do what was asked.
///
/// Every variant that involves a running QEMU carries the end of what it
/// printed, so a failing test says where the kernel was.
#[derive(Debug)]
pub enum HarnessError {
    /// The kernel image does not exist (build it with `cargo xtask build`).
    KernelMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The emulator could not be started.
    Spawn {
        /// The program that was started.
        program: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// Reading from or writing to QEMU failed.
    Io {
        /// What the harness was doing.
        action: &'static str,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A line given to [`Sis::run`](crate::Sis::run) contains a byte that would end or cancel it early.
    LineBreakInLine {
        /// The line.
        line: Vec<u8>,
        /// Offset of the first `\r`, `\n` or Ctrl-C.
        offset: usize,
    },
    /// The awaited output did not arrive in time; QEMU has been killed.
    Timeout {
        /// What was awaited.
        waiting_for: String,
        /// How long the harness waited.
        waited: Duration,
        /// The end of the console output.
        output_tail: String,
        /// The end of QEMU's standard error.
        stderr_tail: String,
    },
    /// QEMU exited while the harness was waiting for output.
    Exited {
        /// What was awaited.
        waiting_for: String,
        /// Exit status (`None` when killed by a signal).
        status: Option<i32>,
        /// The end of the console output.
        output_tail: String,
        /// The end of QEMU's standard error.
        stderr_tail: String,
    },
    /// A line was to be run while the console did not end with a prompt (after
    /// [`Sis::send_raw`](crate::Sis::send_raw), call [`Sis::sync`](crate::Sis::sync) first).
    NotAtPrompt {
        /// The end of the console output.
        output_tail: String,
    },
    /// The line echoed by the shell is not the line that was sent: the console is out of step.
    EchoMismatch {
        /// What was sent.
        sent: String,
        /// What came back as the first line.
        echoed: String,
    },
    /// `--json` output that is not exactly one line holding one JSON object of this schema.
    NotJson {
        /// What is wrong with it.
        reason: String,
        /// The whole output of the command.
        output: String,
    },
}

impl fmt::Display for HarnessError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HarnessError::KernelMissing { path } => {
                write!(formatter, "no kernel image at {} (build it with `cargo xtask build`)", path.display())
            }
            HarnessError::Spawn { program, source } => {
                write!(formatter, "cannot start {}: {source}", program.display())
            }
            HarnessError::Io { action, source } => write!(formatter, "{action} failed: {source}"),
            HarnessError::LineBreakInLine { line, offset } => write!(
                formatter,
                "line {:?} has a line break or Ctrl-C at byte {offset}; send it with send_raw",
                String::from_utf8_lossy(line)
            ),
            HarnessError::Timeout { waiting_for, waited, output_tail, stderr_tail } => {
                write!(
                    formatter,
                    "timed out after {:.1} s waiting for {waiting_for}; QEMU killed",
                    waited.as_secs_f64()
                )?;
                write_tails(formatter, output_tail, stderr_tail)
            }
            HarnessError::Exited { waiting_for, status, output_tail, stderr_tail } => {
                match status {
                    Some(code) => write!(
                        formatter,
                        "QEMU exited with status {code} ({}) while waiting for {waiting_for}",
                        sis_proto::exit::describe(*code)
                    )?,
                    None => write!(formatter, "QEMU was killed by a signal while waiting for {waiting_for}")?,
                }
                write_tails(formatter, output_tail, stderr_tail)
            }
            HarnessError::NotAtPrompt { output_tail } => write!(
                formatter,
                "the console is not at a prompt (call sync after send_raw); output ends with:\n{output_tail}"
            ),
            HarnessError::EchoMismatch { sent, echoed } => {
                write!(formatter, "sent {sent:?} but the shell echoed {echoed:?}: console out of step (call sync)")
            }
            HarnessError::NotJson { reason, output } => write!(formatter, "not one JSON object ({reason}): {output:?}"),
        }
    }
}

impl std::error::Error for HarnessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HarnessError::Spawn { source, .. } | HarnessError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn write_tails(formatter: &mut fmt::Formatter<'_>, output_tail: &str, stderr_tail: &str) -> fmt::Result {
    write!(formatter, "\n--- console output ends with ---\n{output_tail}")?;
    if !stderr_tail.is_empty() {
        write!(formatter, "\n--- QEMU stderr ends with ---\n{stderr_tail}")?;
    }
    Ok(())
}

/// The last [`TAIL_BYTES`] of `bytes` as text, `\r\n` shown as `\n`.
pub fn tail_of(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(TAIL_BYTES);
    String::from_utf8_lossy(&bytes[start..]).replace("\r\n", "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_only_the_end_and_normalises_line_ends() {
        let mut bytes = vec![b'a'; TAIL_BYTES + 10];
        bytes.extend_from_slice(b"\r\nlast\r\n");
        let tail = tail_of(&bytes);
        assert_eq!(tail.len(), TAIL_BYTES - 2);
        assert!(tail.ends_with("a\nlast\n"), "{tail:?}");
    }

    #[test]
    fn timeout_message_names_the_wait_and_shows_both_tails() {
        let error = HarnessError::Timeout {
            waiting_for: "the first prompt".into(),
            waited: Duration::from_millis(1500),
            output_tail: "booting\n".into(),
            stderr_tail: "qemu: warning\n".into(),
        };
        assert_eq!(
            error.to_string(),
            "timed out after 1.5 s waiting for the first prompt; QEMU killed\n\
             --- console output ends with ---\nbooting\n\n--- QEMU stderr ends with ---\nqemu: warning\n"
        );
    }

    #[test]
    fn exit_message_describes_the_status() {
        let error = HarnessError::Exited {
            waiting_for: "the prompt".into(),
            status: Some(sis_proto::exit::PANIC),
            output_tail: "KERNEL PANIC\n".into(),
            stderr_tail: String::new(),
        };
        assert_eq!(
            error.to_string(),
            format!(
                "QEMU exited with status {} (panic) while waiting for the prompt\n--- console output ends with ---\nKERNEL PANIC\n",
                sis_proto::exit::PANIC
            )
        );
    }
}
