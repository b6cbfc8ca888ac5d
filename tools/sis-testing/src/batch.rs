//! Boot-argument runs that end by themselves: batch mode (`sis.run`) and crash paths.

use std::time::Duration;

use crate::config::QemuConfig;
use crate::error::HarnessError;
use crate::process::{Input, QemuProcess};

/// The result of a run that ended by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchResult {
    /// QEMU's exit code (`None` if killed by a signal); see [`sis_proto::exit`].
    pub status: Option<i32>,
    /// Everything printed on the console, `\r\n` turned into `\n`.
    pub output: String,
    /// Wall time from spawning QEMU to its exit.
    pub wall_time: Duration,
}

impl BatchResult {
    /// Every output line that is a JSON object (the replies of commands run with `--json`), in order;
    /// a line that starts with `{` but does not parse is an error naming it.
    pub fn json_lines(&self) -> Result<Vec<serde_json::Value>, String> {
        self.output
            .lines()
            .filter(|line| line.starts_with('{'))
            .map(|line| serde_json::from_str(line).map_err(|error| format!("{error}: {line}")))
            .collect()
    }

    /// The exit status in words (`pass`, `fail`, `panic`, ...).
    pub fn describe_status(&self) -> &'static str {
        match self.status {
            Some(code) => sis_proto::exit::describe(code),
            None => "killed by a signal",
        }
    }
}

/// Boots with `config` (which should carry `sis.run` or otherwise end by
/// itself) with standard input closed and waits for QEMU to exit.
///
/// After `config.timeout` QEMU is killed and the error carries the end of its output.
pub fn run_batch(config: &QemuConfig) -> Result<BatchResult, HarnessError> {
    let mut process = QemuProcess::spawn(config, Input::Closed)?;
    let status = process.wait_exit(config.timeout)?;
    let wall_time = process.started_at().elapsed();
    process.wait_for_end_of_output();
    let output = String::from_utf8_lossy(&process.console().lock().bytes).replace("\r\n", "\n");
    Ok(BatchResult { status: status.code(), output, wall_time })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_described_in_words() {
        let result = |status| BatchResult { status, output: String::new(), wall_time: Duration::ZERO };
        assert_eq!(result(Some(sis_proto::exit::PASS)).describe_status(), "pass");
        assert_eq!(result(Some(sis_proto::exit::PANIC)).describe_status(), "panic");
        assert_eq!(result(None).describe_status(), "killed by a signal");
    }

    #[test]
    fn json_lines_are_the_object_lines_in_order_and_a_broken_one_is_named() {
        let result = |output: &str| BatchResult { status: None, output: output.into(), wall_time: Duration::ZERO };
        let lines = result("sis> x\n{\"a\":1}\ntext\n{\"b\":2}\n").json_lines().unwrap();
        assert_eq!(lines, [serde_json::json!({"a": 1}), serde_json::json!({"b": 2})]);
        let error = result("{\"a\":\n").json_lines().unwrap_err();
        assert!(error.ends_with(": {\"a\":"), "{error}");
    }
}
