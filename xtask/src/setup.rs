//! Installs what the project needs when it is missing: QEMU through apt-get, the kernel target through rustup.

use std::process::{Command, Stdio};

use crate::{run_step, KERNEL_TARGET};

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    run_step(&format!("{program} {}", args.join(" ")), Command::new(program).args(args))
}

/// Installs the Debian package `qemu-system-arm` when `qemu-system-aarch64` is absent.
pub fn ensure_qemu() -> Result<(), String> {
    if succeeds("qemu-system-aarch64", &["--version"]) {
        return Ok(());
    }
    println!("qemu-system-aarch64 not found: installing the Debian package qemu-system-arm");
    let root = Command::new("id").arg("-u").output().is_ok_and(|output| output.stdout.starts_with(b"0"));
    let (program, prefix): (&str, &[&str]) = if root { ("apt-get", &[]) } else { ("sudo", &["apt-get"]) };
    let with_prefix = |args: &[&str]| -> Vec<String> { prefix.iter().chain(args).map(|a| a.to_string()).collect() };
    let update = with_prefix(&["update", "-qq"]);
    let install = with_prefix(&["install", "-y", "-qq", "--no-install-recommends", "qemu-system-arm"]);
    run(program, &update.iter().map(String::as_str).collect::<Vec<_>>())?;
    run(program, &install.iter().map(String::as_str).collect::<Vec<_>>())?;
    if succeeds("qemu-system-aarch64", &["--version"]) {
        Ok(())
    } else {
        Err("qemu-system-arm installed but qemu-system-aarch64 still does not run".into())
    }
}

/// Adds the kernel target when rustup did not install it from `rust-toolchain.toml`
/// (it does not when `RUSTUP_AUTO_INSTALL=0`).
pub fn ensure_target() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(sis_testing::workspace_root())
        .output()
        .map_err(|error| format!("cannot run rustup: {error}"))?;
    if String::from_utf8_lossy(&installed.stdout).lines().any(|line| line.trim() == KERNEL_TARGET) {
        return Ok(());
    }
    println!("Rust target {KERNEL_TARGET} missing: adding it with rustup");
    run_step(
        &format!("rustup target add {KERNEL_TARGET}"),
        Command::new("rustup").args(["target", "add", KERNEL_TARGET]).current_dir(sis_testing::workspace_root()),
    )
}
