//! Installs what the project needs when it is missing: QEMU, the web clients the tests use (curl, Debian's
//! Python with the `websockets` package) and the browser of the dashboard's test (Chromium and its WebDriver)
//! through apt-get, the kernel target through rustup, the dashboard's charting library with `npm ci`, checked
//! against its package-lock.json, and the OTLP collector's Python packages (the official `opentelemetry-proto`
//! and `protobuf`, which Debian does not package) with pip into a virtual environment, checked against the hashes
//! in its requirements.txt.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use sis_testing::otel::{collector_python, COLLECTOR_REQUIREMENTS_RELATIVE_PATH, COLLECTOR_VENV_RELATIVE_PATH};
use sis_testing::{workspace_root, DASHBOARD_VENDOR_RELATIVE_PATH};

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

/// Installs the Debian packages `chromium` and `chromium-driver` when either program is missing: the headless
/// browser and WebDriver server of the dashboard's browser test.
pub fn ensure_browser() -> Result<(), String> {
    let present = || succeeds("chromium", &["--version"]) && succeeds("chromedriver", &["--version"]);
    if present() {
        return Ok(());
    }
    println!("chromium or chromedriver not found: installing the Debian packages chromium, chromium-driver");
    apt_install(&["chromium", "chromium-driver"])?;
    if present() {
        Ok(())
    } else {
        Err("chromium and chromium-driver installed but chromium or chromedriver still does not run".into())
    }
}

/// The dashboard's npm project: package.json and package-lock.json (the packages it serves, each pinned with its
/// sha512 integrity).
const DASHBOARD_NPM_PROJECT: &str = "tools/sis-daemon";
/// The npm packages the dashboard serves and, of each, the files it needs (paths inside the package).
const DASHBOARD_FILES: [(&str, &[&str]); 1] = [("uplot", &["dist/uPlot.iife.min.js", "dist/uPlot.min.css", "LICENSE"])];
/// Kept beside a package's copied files: the lock's integrity of the tarball they came from.
const INTEGRITY_STAMP: &str = ".integrity";

/// One package as package-lock.json pins it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LockedPackage {
    version: String,
    /// `sha512-` and the base64 of the tarball's SHA-512.
    integrity: String,
}

/// Package `name` in a package-lock.json (lockfileVersion 2 or 3: `packages["node_modules/NAME"]`); refused unless
/// its integrity is a sha512.
fn locked_package(lock: &Value, name: &str) -> Result<LockedPackage, String> {
    let entry = lock
        .pointer(&format!("/packages/node_modules~1{name}"))
        .ok_or_else(|| format!("the dashboard's package-lock.json has no package {name}"))?;
    let field = |key: &str| {
        entry[key].as_str().map(String::from).ok_or_else(|| format!("package-lock.json: {name} has no {key}"))
    };
    let package = LockedPackage { version: field("version")?, integrity: field("integrity")? };
    if !package.integrity.starts_with("sha512-") {
        return Err(format!("package-lock.json: {name}'s integrity {} is not a sha512", package.integrity));
    }
    Ok(package)
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
    serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |error| format!("{}: {error}", path.display())
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Puts the dashboard's third-party files into the vendor directory (`target/dashboard/vendor/NAME/`) when they
/// are absent or came from another tarball than package-lock.json pins: installs npm with apt-get if it is
/// missing, runs `npm ci` in the dashboard's npm project (npm fetches each tarball and refuses one whose sha512
/// differs from the lock's integrity), checks the installed version against the lock, and copies the files the
/// page needs. Returns the vendor directory.
pub fn ensure_dashboard_assets() -> Result<PathBuf, String> {
    let root = workspace_root();
    let vendor = root.join(DASHBOARD_VENDOR_RELATIVE_PATH);
    let project = root.join(DASHBOARD_NPM_PROJECT);
    let lock = read_json(&project.join("package-lock.json"))?;
    let mut installed = false;
    for (name, files) in DASHBOARD_FILES {
        let package = locked_package(&lock, name)?;
        let directory = vendor.join(name);
        let stamp = std::fs::read_to_string(directory.join(INTEGRITY_STAMP)).unwrap_or_default();
        if stamp == package.integrity && files.iter().all(|file| directory.join(file_name(file)).is_file()) {
            continue;
        }
        if !installed {
            npm_ci(&project)?;
            installed = true;
        }
        let source = project.join("node_modules").join(name);
        let version = read_json(&source.join("package.json"))?["version"].as_str().map(String::from);
        if version.as_deref() != Some(package.version.as_str()) {
            return Err(format!("npm ci installed {name} {version:?}, the lock pins {}", package.version));
        }
        if directory.exists() {
            std::fs::remove_dir_all(&directory).map_err(io_error(&directory))?;
        }
        std::fs::create_dir_all(&directory).map_err(io_error(&directory))?;
        for file in files {
            let target = directory.join(file_name(file));
            std::fs::copy(source.join(file), &target).map_err(io_error(&target))?;
        }
        let stamp = directory.join(INTEGRITY_STAMP);
        std::fs::write(&stamp, &package.integrity).map_err(io_error(&stamp))?;
        println!("dashboard: {name} {} copied into {}", package.version, directory.display());
    }
    Ok(vendor)
}

/// `npm ci` in `project` (npm installed with apt-get first if absent); no install scripts run.
fn npm_ci(project: &Path) -> Result<(), String> {
    if !succeeds("npm", &["--version"]) {
        println!("npm not found: installing the Debian package npm");
        apt_install(&["npm"])?;
    }
    println!("dashboard: npm ci in {} (tarballs checked against package-lock.json)", project.display());
    run_step(
        "npm ci (the dashboard's charting library)",
        Command::new("npm")
            .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel", "warn"])
            .current_dir(project),
    )
}

/// Kept in the collector's virtual environment: the requirements.txt its packages were installed from.
const REQUIREMENTS_STAMP: &str = ".requirements";
/// What the collector imports; the environment is made again when this fails.
const COLLECTOR_IMPORTS: &str = "import google.protobuf.json_format, \
opentelemetry.proto.collector.trace.v1.trace_service_pb2, opentelemetry.proto.collector.metrics.v1.metrics_service_pb2";

/// Makes the OTLP collector's virtual environment (`target/otel-collector-venv`) when it is absent, cannot import
/// the collector's packages, or was installed from another requirements.txt: Debian's Python makes it (the
/// Debian package `python3-venv` installed first if `venv` cannot), then its pip installs the pinned packages,
/// refusing any whose hash differs from the file's (`--require-hashes`).
pub fn ensure_otel_collector() -> Result<(), String> {
    let root = workspace_root();
    let requirements_path = root.join(COLLECTOR_REQUIREMENTS_RELATIVE_PATH);
    let requirements = std::fs::read_to_string(&requirements_path).map_err(io_error(&requirements_path))?;
    let venv = root.join(COLLECTOR_VENV_RELATIVE_PATH);
    let stamp_path = venv.join(REQUIREMENTS_STAMP);
    let python = collector_python();
    let python = python.to_str().ok_or("the workspace path is not UTF-8")?;
    let stamp = std::fs::read_to_string(&stamp_path).unwrap_or_default();
    if stamp == requirements && succeeds(python, &["-c", COLLECTOR_IMPORTS]) {
        return Ok(());
    }
    if !succeeds(TEST_PYTHON, &["-c", "import ensurepip, venv"]) {
        println!("{TEST_PYTHON} cannot make a virtual environment: installing the Debian package python3-venv");
        apt_install(&["python3-venv"])?;
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv).map_err(io_error(&venv))?;
    }
    let venv_text = venv.to_str().ok_or("the workspace path is not UTF-8")?;
    println!("otel collector: making {venv_text} and installing {}", COLLECTOR_REQUIREMENTS_RELATIVE_PATH);
    run(TEST_PYTHON, &["-m", "venv", venv_text])?;
    let requirements_text = requirements_path.to_str().ok_or("the workspace path is not UTF-8")?;
    run(python, &pip_install_arguments(requirements_text))?;
    if !succeeds(python, &["-c", COLLECTOR_IMPORTS]) {
        return Err(format!("{python} still cannot import the collector's packages"));
    }
    std::fs::write(&stamp_path, requirements).map_err(io_error(&stamp_path))
}

/// The arguments to the environment's Python that install `requirements`: only hashed, pinned packages.
fn pip_install_arguments(requirements: &str) -> [&str; 8] {
    ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--require-hashes", "-r", requirements]
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

/// Adds the kernel's and the example agents' targets when rustup did not install them from `rust-toolchain.toml`
/// (it does not when `RUSTUP_AUTO_INSTALL=0`, nor for a toolchain installed before the target was listed).
pub fn ensure_target() -> Result<(), String> {
    ensure_rust_target(KERNEL_TARGET)?;
    ensure_rust_target(crate::AGENT_TARGET)
}

/// Adds a Rust target with rustup when the toolchain lacks it.
fn ensure_rust_target(target: &str) -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(sis_testing::workspace_root())
        .output()
        .map_err(|error| format!("cannot run rustup: {error}"))?;
    if String::from_utf8_lossy(&installed.stdout).lines().any(|line| line.trim() == target) {
        return Ok(());
    }
    println!("Rust target {target} missing: adding it with rustup");
    run_step(
        &format!("rustup target add {target}"),
        Command::new("rustup").args(["target", "add", target]).current_dir(sis_testing::workspace_root()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_pins_the_charting_library_with_a_sha512_and_package_json_agrees() {
        let project = workspace_root().join(DASHBOARD_NPM_PROJECT);
        let lock = read_json(&project.join("package-lock.json")).unwrap();
        let package = locked_package(&lock, "uplot").unwrap();
        // 64 bytes of SHA-512 are 88 base64 characters.
        assert_eq!(package.integrity.len(), "sha512-".len() + 88);
        let manifest = read_json(&project.join("package.json")).unwrap();
        assert_eq!(manifest["dependencies"]["uplot"], package.version.as_str());
        assert_eq!(manifest["dependencies"].as_object().unwrap().len(), DASHBOARD_FILES.len());
        let sha1 = serde_json::json!({ "packages": { "node_modules/uplot": {
            "version": "1.6.32", "integrity": "sha1-AAAA" } } });
        assert!(locked_package(&sha1, "uplot").unwrap_err().contains("is not a sha512"));
        assert!(locked_package(&lock, "react").is_err());
    }

    #[test]
    fn the_collectors_packages_are_pinned_with_hashes_and_installed_only_with_them() {
        let path = workspace_root().join(COLLECTOR_REQUIREMENTS_RELATIVE_PATH);
        let requirements = std::fs::read_to_string(path).unwrap();
        let logical: Vec<String> = requirements
            .replace("\\\n", " ")
            .lines()
            .filter(|line| !line.trim_start().starts_with('#') && !line.trim().is_empty())
            .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(logical.len(), 2, "{logical:?}");
        for (line, package) in logical.iter().zip(["opentelemetry-proto==", "protobuf=="]) {
            assert!(line.starts_with(package), "{line}");
            let hash = line.split("--hash=sha256:").nth(1).unwrap();
            assert_eq!(hash.len(), 64, "{line}");
            assert!(hash.chars().all(|character| character.is_ascii_hexdigit()), "{line}");
        }
        assert_eq!(pip_install_arguments("r.txt")[5..], ["--require-hashes", "-r", "r.txt"]);
    }

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
