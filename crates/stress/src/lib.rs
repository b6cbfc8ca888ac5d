//! The SIS stress engine: seeded workloads against real kernel subsystems, statuses with documented rules, reports.
//!
//! Every randomized choice comes from one [`StressRng`] seeded from the
//! configuration, and time comes from a [`sis_hal::Clock`] passed in, so the
//! same seed in deterministic mode replays the same events and figures.
//! Workloads only measure: every number in a report is read from the
//! subsystem under test or counted as it happens.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod aiops;
pub mod chaos;
pub mod compare;
mod config;
mod flood;
pub mod governor;
pub mod isolation;
pub mod learning;
mod memory;
mod multi;
pub mod port;
pub mod redteam;
mod status;
mod suite;
#[cfg(test)]
mod test_support;

pub use config::{ConfigError, StressTestConfig, DEFAULT_LATENCY_SAMPLE_EVERY, DEFAULT_POOL_MIB};
pub use flood::{next_interval_ns, next_line, rate_text, FloodConfig, FloodRecorder, FloodReport, Rate, COMMAND_MIX};
pub use memory::{percent_text, run_memory_test, LeakCheck, MemoryReport, RunOptions, WorkloadProfile};
pub use multi::{flood_seed, CrossEffect, MultiReport};
/// The workloads' generator ([`sis_hal::SeededRandom`]).
pub type StressRng = sis_hal::SeededRandom;
pub use status::Status;
pub use suite::{Percentiles, SuiteReport, TestOutcome, SUITE_SCHEMA_VERSION};
