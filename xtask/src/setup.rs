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
    let root = Command::new("id").arg("-u").output().is_ok_and(|output| output.stdout.trim_ascii() == b"0");
    for command in qemu_install_commands(root) {
        let (program, args) = command.split_first().ok_or("empty install command")?;
        run(program, args)?;
    }
    if succeeds("qemu-system-aarch64", &["--version"]) {
        Ok(())
    } else {
        Err("qemu-system-arm installed but qemu-system-aarch64 still does not run".into())
    }
}

/// The commands that install QEMU: `apt-get` directly as root, through `sudo` otherwise.
fn qemu_install_commands(root: bool) -> [Vec<&'static str>; 2] {
    let prefix: &[&'static str] = if root { &["apt-get"] } else { &["sudo", "apt-get"] };
    let with_prefix = |args: &[&'static str]| prefix.iter().chain(args).copied().collect::<Vec<_>>();
    [
        with_prefix(&["update", "-qq"]),
        with_prefix(&["install", "-y", "-qq", "--no-install-recommends", "qemu-system-arm"]),
    ]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_is_installed_with_apt_get_and_sudo_only_when_not_root() {
        assert_eq!(
            qemu_install_commands(true),
            [
                vec!["apt-get", "update", "-qq"],
                vec!["apt-get", "install", "-y", "-qq", "--no-install-recommends", "qemu-system-arm"]
            ]
        );
        assert_eq!(
            qemu_install_commands(false),
            [
                vec!["sudo", "apt-get", "update", "-qq"],
                vec!["sudo", "apt-get", "install", "-y", "-qq", "--no-install-recommends", "qemu-system-arm"]
            ]
        );
    }
}
