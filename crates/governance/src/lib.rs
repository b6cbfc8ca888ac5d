//! Model governance: signed model artifacts, a versioned registry, per-principal budgets and rate limits, a
//! hash-chained audit log and compliance checks.
//!
//! - [`artifact`]: the signed artifact format (SHA-256 digest, Ed25519 signature), built on the host and
//!   verified by the kernel with strict bounds.
//! - [`keys`]: signing keys from a 32-byte seed, key ids, the set of trusted public keys.
//! - [`registry`]: verified models by name and semantic version, loaded or not, with their weights.
//! - [`policy`]: per-principal token budgets, rate limits (token buckets), model size limits, exact counters.
//! - [`audit`]: the hash-chained audit log, its queries and its on-disk records.
//! - [`compliance`]: loaded models verified again, size limits, the audit chain, budgets, the agent's source.
//! - [`lifecycle`]: registered → shadow → canary → production → retired for the meta-agent's policy versions,
//!   with rollback.
//! - [`Governor`]: all of it behind one object for `llmctl` and `neuralctl install`: each operation checks, acts
//!   and leaves exactly one audit entry, refusals included.
//!
//! Everything takes time as an argument (nanoseconds of the caller's clock), so the rules are tested on the
//! host with made-up clocks and the kernel passes its uptime. docs/governance.md has the formats and rules.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod artifact;
pub mod audit;
pub mod compliance;
mod governor;
pub mod hex;
pub mod keys;
pub mod lifecycle;
pub mod policy;
mod principal;
pub mod registry;
#[cfg(test)]
mod testing;

pub use governor::{GovernanceError, Governor, Inference, InstallError, Refusal};
pub use principal::Principal;
