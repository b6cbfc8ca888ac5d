//! The SIS shell: line editor, tokenizer, typed argument parser, command registry and typed errors.
//!
//! It does no I/O of its own: bytes come in through [`LineEditor::feed`],
//! output leaves through the [`Output`] trait. The same [`Registry`] serves
//! the serial console, boot-argument batch mode and, later, the HTTP API, so
//! every door prints the same thing (DESIGN P6).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod args;
mod capability;
mod editor;
mod error;
mod registry;
mod tokenize;

pub use args::{ArgSpec, ArgValue, ParsedArgs, ValueKind};
pub use capability::Capabilities;
pub use editor::{Echo, EditEvent, LineEditor};
pub use error::{codes, sanitize, ShellError};
pub use registry::{CommandSpec, Handler, Invocation, Outcome, Output, Registry, Reply};
pub use tokenize::{split_commands, tokenize, validate_line};
