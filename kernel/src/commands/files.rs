//! `ls`, `cat`, `mkdir`, `rm`: the in-memory filesystem that holds reports.

use alloc::vec::Vec;

use serde_json::json;
use sis_platform::irq_lock::IrqMutex;
use sis_shell::{ArgSpec, CommandSpec, Invocation, Reply, ShellError, ValueKind};
use sis_vfs::{Vfs, VfsError};

use super::Kernel;
use crate::format;

/// Bytes of file data the filesystem may hold.
pub const CAPACITY_BYTES: u64 = 16 << 20;

/// The kernel's one filesystem.
pub static FILES: IrqMutex<Vfs> = IrqMutex::new(Vfs::new(CAPACITY_BYTES));

/// A filesystem error as a shell error with the same code.
pub fn shell_error(error: VfsError) -> ShellError {
    ShellError::new(error.code(), alloc::format!("{error}"))
}

const PATH: ArgSpec = ArgSpec::positional("path", ValueKind::Str, "absolute path");

/// `ls [PATH]`.
pub static LS: CommandSpec<Kernel> = CommandSpec {
    name: "ls",
    summary: "List a directory of the in-memory filesystem",
    description: "Directories end with /. Sizes are in bytes.",
    args: &[ArgSpec::positional("path", ValueKind::Str, "absolute path").default("/")],
    subcommands: &[],
    handler: Some(ls),
};

fn ls(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let path = invocation.args.str("path").unwrap_or("/");
    let entries = FILES.lock().list(path).map_err(shell_error)?;
    let mut human = Vec::new();
    for entry in &entries {
        if entry.is_directory {
            human.push(alloc::format!("{:>12}  {}/", "-", entry.name));
        } else {
            human.push(alloc::format!("{:>12}  {}", format::thousands(entry.size), entry.name));
        }
    }
    let list: Vec<_> = entries
        .iter()
        .map(|entry| json!({"name": entry.name, "directory": entry.is_directory, "size": entry.size}))
        .collect();
    Ok(Reply::new(human.join("\n"), json!({ "path": path, "entries": list })))
}

/// `cat PATH`.
pub static CAT: CommandSpec<Kernel> = CommandSpec {
    name: "cat",
    summary: "Print a file of the in-memory filesystem",
    description: "The file must be UTF-8 text (reports are JSON). In --json the content is in \"content\".",
    args: &[PATH.required()],
    subcommands: &[],
    handler: Some(cat),
};

fn cat(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let path = invocation.args.str("path").unwrap_or("/");
    let files = FILES.lock();
    let bytes = files.read(path).map_err(shell_error)?;
    let text = core::str::from_utf8(bytes)
        .map_err(|_| ShellError::new("not-text", alloc::format!("{path} is not UTF-8 text")))?;
    Ok(Reply::new(text, json!({ "path": path, "content": text, "size": bytes.len() })))
}

/// `mkdir [-p] PATH`.
pub static MKDIR: CommandSpec<Kernel> = CommandSpec {
    name: "mkdir",
    summary: "Create a directory in the in-memory filesystem",
    description: "",
    args: &[
        ArgSpec::flag("parents", ValueKind::Switch, "create missing parents; no error if it exists"),
        PATH.required(),
    ],
    subcommands: &[],
    handler: Some(mkdir),
};

fn mkdir(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let path = invocation.args.str("path").unwrap_or("/");
    FILES.lock().mkdir(path, invocation.args.switch("parents")).map_err(shell_error)?;
    Ok(Reply::new(alloc::format!("created {path}"), json!({ "path": path })))
}

/// `rm [--recursive] PATH`.
pub static RM: CommandSpec<Kernel> = CommandSpec {
    name: "rm",
    summary: "Remove a file or directory from the in-memory filesystem",
    description: "",
    args: &[ArgSpec::flag("recursive", ValueKind::Switch, "remove a directory and everything in it"), PATH.required()],
    subcommands: &[],
    handler: Some(rm),
};

fn rm(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let path = invocation.args.str("path").unwrap_or("/");
    FILES.lock().remove(path, invocation.args.switch("recursive")).map_err(shell_error)?;
    Ok(Reply::new(alloc::format!("removed {path}"), json!({ "path": path })))
}
