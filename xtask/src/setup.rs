//! Installs what the project needs when it is missing: QEMU and the web clients the tests use (curl, Debian's
//! Python with the `websockets` package) through apt-get, the kernel target through rustup.

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
    apt_install(&["qemu-system-arm"])?;
    if succeeds("qemu-system-aarch64", &["--version"]) {
        Ok(())
    } else {
        Err("qemu-system-arm installed but qemu-system-aarch64 still does not run".into())
    }
}

/// The Python that runs the tests' WebSocket client: Debian's, where `python3-websockets` installs.
pub const TEST_PYTHON: &str = sis_testing::web::PYTHON;

/// Installs `curl` and Debian's Python with the `websockets` package when either is missing: the clients the
/// QEMU tests of the web server use.
pub fn ensure_web_clients() -> Result<(), String> {
    let mut missing = Vec::new();
    if !succeeds("curl", &["--version"]) {
        missing.push("curl");
    }
    if !succeeds(TEST_PYTHON, &["-c", "import websockets"]) {
        missing.extend(["python3", "python3-websockets"]);
    }
    if missing.is_empty() {
        return Ok(());
    }
    println!("web test clients missing: installing the Debian packages {}", missing.join(", "));
    apt_install(&missing)?;
    if succeeds("curl", &["--version"]) && succeeds(TEST_PYTHON, &["-c", "import websockets"]) {
        Ok(())
    } else {
        Err(format!("{} installed but curl or {TEST_PYTHON} with websockets still does not run", missing.join(", ")))
    }
}

/// Installs Debian packages: `apt-get` directly as root, through `sudo` otherwise.
fn apt_install(packages: &[&str]) -> Result<(), String> {
    let root = Command::new("id").arg("-u").output().is_ok_and(|output| output.stdout.trim_ascii() == b"0");
    for command in apt_install_commands(root, packages) {
        let (program, args) = command.split_first().ok_or("empty install command")?;
        run(program, args)?;
    }
    Ok(())
}

/// The commands that install `packages`: `apt-get` directly as root, through `sudo` otherwise.
fn apt_install_commands<'a>(root: bool, packages: &[&'a str]) -> [Vec<&'a str>; 2] {
    let prefix: &[&'static str] = if root { &["apt-get"] } else { &["sudo", "apt-get"] };
    let with_prefix = |args: &[&'a str]| prefix.iter().copied().chain(args.iter().copied()).collect::<Vec<_>>();
    let install: Vec<&str> =
        ["install", "-y", "-qq", "--no-install-recommends"].into_iter().chain(packages.iter().copied()).collect();
    [with_prefix(&["update", "-qq"]), with_prefix(&install)]
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
    fn packages_are_installed_with_apt_get_and_sudo_only_when_not_root() {
        assert_eq!(
            apt_install_commands(true, &["curl", "python3-websockets"])[1],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "curl", "python3-websockets"]
        );
        assert_eq!(
            apt_install_commands(true, &["qemu-system-arm"]),
            [
                vec!["apt-get", "update", "-qq"],
                vec!["apt-get", "install", "-y", "-qq", "--no-install-recommends", "qemu-system-arm"]
            ]
        );
        assert_eq!(
            apt_install_commands(false, &["qemu-system-arm"]),
            [
                vec!["sudo", "apt-get", "update", "-qq"],
                vec!["sudo", "apt-get", "install", "-y", "-qq", "--no-install-recommends", "qemu-system-arm"]
            ]
        );
    }
}
