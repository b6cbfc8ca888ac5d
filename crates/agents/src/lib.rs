//! SIS WebAssembly agents: capabilities, the host-call protocol, the sandbox and the supervisor.
//!
//! Agents are untrusted WebAssembly modules run by the `wasmi` interpreter. Each runs in a [`sandbox::Sandbox`]
//! with a memory limit and fuel budgets, reaches the kernel only through the [`protocol`] messages of one host
//! function, and every call is checked against its [`caps::CapabilitySet`] before the [`host::Host`] sees it
//! and leaves an [`audit::AuditRecord`]. See `docs/agents.md`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod audit;
pub mod bench;
mod calls;
pub use calls::serve_once;
pub mod caps;
pub mod host;
pub mod path;
pub mod protocol;
pub mod sandbox;
pub mod supervisor;
