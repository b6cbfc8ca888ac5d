//! Test statuses and the rules that assign them (documented in `docs/stress.md`).

use serde::Serialize;

/// Outcome of a stress test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No operation failed.
    Pass,
    /// Some operations failed, fewer than half of those attempted.
    PartialPass,
    /// Half or more of the attempted operations failed.
    Fail,
    /// The system under test lost integrity: a leak or a bookkeeping error.
    Critical,
}

impl Status {
    /// Applies the rules: integrity first, then the share of failed operations.
    pub fn from_counts(failed: u64, attempted: u64, integrity_ok: bool) -> Status {
        if !integrity_ok {
            Status::Critical
        } else if failed == 0 {
            Status::Pass
        } else if failed.saturating_mul(2) < attempted {
            Status::PartialPass
        } else {
            Status::Fail
        }
    }

    /// Upper-case label for people (`PARTIAL PASS`).
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::PartialPass => "PARTIAL PASS",
            Status::Fail => "FAIL",
            Status::Critical => "CRITICAL",
        }
    }

    /// Whether the command succeeds: Pass always; PartialPass only when failures were expected.
    pub fn is_success(self, expect_failures: bool) -> bool {
        match self {
            Status::Pass => true,
            Status::PartialPass => expect_failures,
            Status::Fail | Status::Critical => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_in_order() {
        assert_eq!(Status::from_counts(0, 10, false), Status::Critical);
        assert_eq!(Status::from_counts(0, 10, true), Status::Pass);
        assert_eq!(Status::from_counts(4, 10, true), Status::PartialPass);
        assert_eq!(Status::from_counts(5, 10, true), Status::Fail);
        assert_eq!(Status::from_counts(0, 0, true), Status::Pass);
        assert!(Status::PartialPass.is_success(true));
        assert!(!Status::PartialPass.is_success(false));
        assert!(!Status::Critical.is_success(true));
    }
}
