//! SIS WebAssembly agents: capabilities, the host-call protocol, the sandbox and the supervisor.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod caps;
pub mod path;
pub mod protocol;
