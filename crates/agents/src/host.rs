//! The kernel side of the host calls: a trait the kernel implements, and a fake for tests.

use crate::protocol::{ErrorCode, LogLevel};
use alloc::string::String;
use alloc::vec::Vec;

/// Why the host could not carry out an allowed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    /// The file, directory or metric does not exist.
    NotFound,
    /// The argument is well-formed but the host refuses its value.
    InvalidArgument,
    /// The host failed (a device error, a command that failed).
    Failed,
}

impl HostError {
    /// The status returned to the agent.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::NotFound => ErrorCode::NotFound,
            Self::InvalidArgument => ErrorCode::InvalidArgument,
            Self::Failed => ErrorCode::HostFailed,
        }
    }
}

/// What the guardrails said about a proposed action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The guardrails allowed it.
    Accepted,
    /// The guardrails blocked it.
    Blocked,
}

/// The services an agent reaches through host calls. The sandbox calls a method only after the agent's
/// capabilities allowed the call; paths arrive normalized.
pub trait Host {
    /// The names in a directory.
    fn fs_list(&mut self, path: &str) -> Result<Vec<String>, HostError>;
    /// A file's contents.
    fn fs_read(&mut self, path: &str) -> Result<Vec<u8>, HostError>;
    /// Replaces a file's contents.
    fn fs_write(&mut self, path: &str, data: &[u8]) -> Result<(), HostError>;
    /// Metrics whose names start with `prefix`, as (name, value).
    fn metrics_read(&mut self, prefix: &str) -> Result<Vec<(String, i64)>, HostError>;
    /// Runs a shell command line and returns its output.
    fn command_run(&mut self, agent: &str, line: &str) -> Result<String, HostError>;
    /// Writes a log line attributed to `agent`.
    fn log(&mut self, agent: &str, level: LogLevel, message: &str);
    /// Passes a proposed action to the guardrails.
    fn propose(&mut self, agent: &str, action: &str, reason: &str) -> Result<Verdict, HostError>;
}

/// An in-memory host for tests: a file map, metrics, and a record of everything the agents did.
pub mod fake {
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::format;
    use alloc::string::ToString;

    /// Files by normalized path; directories are implied by the paths.
    #[derive(Debug, Default)]
    pub struct FakeHost {
        /// File contents by absolute path.
        pub files: BTreeMap<String, Vec<u8>>,
        /// Metric values by name.
        pub metrics: BTreeMap<String, i64>,
        /// Log lines as `agent level message`.
        pub logs: Vec<String>,
        /// Proposals as `agent action reason`.
        pub proposals: Vec<String>,
        /// Command lines run.
        pub commands: Vec<String>,
        /// Every host method entered, in order (`fs_list /tmp`, ...).
        pub entered: Vec<String>,
        /// Actions the fake guardrails block.
        pub blocked_actions: Vec<String>,
    }

    impl FakeHost {
        /// A host holding these files.
        pub fn with_files(files: &[(&str, &str)]) -> Self {
            let mut host = Self::default();
            for (path, contents) in files {
                host.files.insert(path.to_string(), contents.as_bytes().to_vec());
            }
            host
        }
    }

    impl Host for FakeHost {
        fn fs_list(&mut self, path: &str) -> Result<Vec<String>, HostError> {
            self.entered.push(format!("fs_list {path}"));
            let prefix = if path == "/" { String::from("/") } else { format!("{path}/") };
            let mut names: Vec<String> = self
                .files
                .keys()
                .filter_map(|file| file.strip_prefix(prefix.as_str()))
                .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
                .collect();
            names.dedup();
            if names.is_empty() {
                Err(HostError::NotFound)
            } else {
                Ok(names)
            }
        }

        fn fs_read(&mut self, path: &str) -> Result<Vec<u8>, HostError> {
            self.entered.push(format!("fs_read {path}"));
            self.files.get(path).cloned().ok_or(HostError::NotFound)
        }

        fn fs_write(&mut self, path: &str, data: &[u8]) -> Result<(), HostError> {
            self.entered.push(format!("fs_write {path}"));
            self.files.insert(path.to_string(), data.to_vec());
            Ok(())
        }

        fn metrics_read(&mut self, prefix: &str) -> Result<Vec<(String, i64)>, HostError> {
            self.entered.push(format!("metrics_read {prefix}"));
            Ok(self
                .metrics
                .iter()
                .filter(|(name, _)| name.starts_with(prefix))
                .map(|(name, value)| (name.clone(), *value))
                .collect())
        }

        fn command_run(&mut self, agent: &str, line: &str) -> Result<String, HostError> {
            self.entered.push(format!("command_run {line}"));
            self.commands.push(format!("{agent} {line}"));
            Ok(format!("ran {line}"))
        }

        fn log(&mut self, agent: &str, level: LogLevel, message: &str) {
            self.entered.push(String::from("log"));
            self.logs.push(format!("{agent} {level:?} {message}"));
        }

        fn propose(&mut self, agent: &str, action: &str, reason: &str) -> Result<Verdict, HostError> {
            self.entered.push(format!("propose {action}"));
            self.proposals.push(format!("{agent} {action} {reason}"));
            if self.blocked_actions.iter().any(|blocked| blocked == action) {
                Ok(Verdict::Blocked)
            } else {
                Ok(Verdict::Accepted)
            }
        }
    }
}
