//! Links the kernel with its own layout for the bare-metal target, records the source commit for `version`, and
//! builds the example WebAssembly agents (agents/) that the image carries (`agentsys examples`).

use std::path::Path;
use std::process::Command;

/// The example agents the image carries, as their crate names.
const EXAMPLE_AGENTS: &[&str] = &[
    "file-lister",
    "metrics-watcher",
    "chatty",
    "crasher",
    "spin",
    "memory-bomb",
    "cap-violator",
    "malformed",
    "inferrer",
    "compute",
    "pinger",
];

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{manifest}/linker.ld");
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(&manifest)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|text| text.trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=SIS_GIT_COMMIT={commit}");
    build_agents(Path::new(&manifest).parent().expect("the kernel is in the workspace").join("agents").as_path());
    println!("cargo:rerun-if-changed=linker.ld");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/refs/heads");
}

/// Builds agents/ (its own workspace and target directory, so no lock is shared with this build) for
/// wasm32-unknown-unknown, release, as `cargo xtask agents` does, and tells the kernel where the modules are.
fn build_agents(agents: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--quiet", "--locked", "--release", "--target", "wasm32-unknown-unknown"])
        .current_dir(agents);
    // This build's flags, target and wrappers (clippy's too) are for the kernel, not for the agents.
    for variable in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MAKEFLAGS",
    ] {
        command.env_remove(variable);
    }
    let status = command.status().expect("cargo runs");
    assert!(
        status.success(),
        "building the example agents in {} failed (the wasm32-unknown-unknown target: `cargo xtask setup`)",
        agents.display()
    );
    let modules = agents.join("target/wasm32-unknown-unknown/release");
    for name in EXAMPLE_AGENTS {
        let module = modules.join(format!("{}.wasm", name.replace('-', "_")));
        assert!(module.is_file(), "{} missing after the agents' build", module.display());
        println!("cargo:rerun-if-changed={}", agents.join(name).display());
    }
    for path in ["Cargo.toml", "Cargo.lock", "sdk", ".cargo/config.toml", "../crates/agents/src/bench.rs"] {
        println!("cargo:rerun-if-changed={}", agents.join(path).display());
    }
    println!("cargo:rustc-env=SIS_AGENT_MODULES={}", modules.display());
}
