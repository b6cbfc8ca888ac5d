//! Facts shared by the SIS kernel and the host tools: exit codes, prompt, JSON schema version.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

/// The shell prompt, printed at the start of a line after boot and after every
/// processed or cancelled line.
pub const PROMPT: &str = "sis> ";

/// Version of every `--json` object the kernel prints (`schema_version` field).
pub const SCHEMA_VERSION: u32 = 1;

/// QEMU exit statuses set through semihosting `SYS_EXIT`.
///
/// 0 and 1 are avoided on purpose: QEMU itself exits 0 on PSCI `SYSTEM_OFF`
/// and 1 on its own errors, so neither can say anything about the kernel.
pub mod exit {
    /// Batch mode: every command succeeded.
    pub const PASS: i32 = 33;
    /// Batch mode: at least one command returned an error.
    pub const FAIL: i32 = 34;
    /// The kernel panicked or took an unexpected exception.
    pub const PANIC: i32 = 35;

    /// Names an exit status for people reading test output.
    pub fn describe(status: i32) -> &'static str {
        match status {
            PASS => "pass",
            FAIL => "fail",
            PANIC => "panic",
            0 => "powered off (PSCI SYSTEM_OFF)",
            _ => "unknown",
        }
    }
}

pub mod bootargs;

#[cfg(test)]
mod tests {
    use super::exit;

    #[test]
    fn exit_codes_are_distinct_and_avoid_qemu_own_statuses() {
        let codes = [exit::PASS, exit::FAIL, exit::PANIC];
        for (i, a) in codes.iter().enumerate() {
            assert!(*a > 1, "code {a} collides with QEMU's own statuses");
            for b in &codes[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(exit::describe(exit::FAIL), "fail");
    }
}
