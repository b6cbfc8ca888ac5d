//! `fault`: deliberate crashes that test the panic and exception paths.

use sis_shell::{CommandSpec, Invocation, Reply, ShellError};

use super::Kernel;

/// `fault panic|data-abort`.
pub static FAULT: CommandSpec<Kernel> = CommandSpec {
    name: "fault",
    summary: "Crash the kernel on purpose, to test the crash paths",
    description: "Both end QEMU with the panic status (35) after printing what happened.",
    args: &[],
    subcommands: &[
        CommandSpec {
            name: "panic",
            summary: "Call panic!: message, location and thread are printed",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(panic),
        },
        CommandSpec {
            name: "data-abort",
            summary: "Read an unmapped address: the exception handler prints a register dump",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(data_abort),
        },
    ],
    handler: None,
};

fn panic(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    panic!("fault panic requested from the shell");
}

fn data_abort(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    sis_platform::diagnostics::trigger_data_abort()
}
