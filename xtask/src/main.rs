//! `cargo xtask`: build, run, test and benchmark SIS; what CI runs is what a developer runs.
#![forbid(unsafe_code)]

mod bench;
mod bench_aiops;
mod bench_blk;
mod bench_dataflow;
mod bench_llm;
mod bench_net;
mod bench_net_profile;
mod bench_web;
mod fuzz;
mod linux_peer;
mod model;
mod model_agent;
mod model_lm;
mod setup;

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};

use clap::{Parser, Subcommand};
use sis_testing::{workspace_root, QemuConfig};

/// The kernel's target triple.
pub const KERNEL_TARGET: &str = "aarch64-unknown-none-softfloat";
/// The example agents' target triple.
pub const AGENT_TARGET: &str = "wasm32-unknown-unknown";

#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", about = "Build, run, test and benchmark SIS")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what is missing (QEMU, the kernel target, the tests' web clients and browser, the dashboard's
    /// charting library); `test` does this first.
    Setup,
    /// Build the kernel image (release) for QEMU virt, and the example agents.
    Build,
    /// Build the example WebAssembly agents (agents/, their own workspace) to wasm32-unknown-unknown, release:
    /// agents/target/wasm32-unknown-unknown/release/*.wasm. docs/agents.md.
    Agents,
    /// Build, then boot SIS in QEMU with the console on this terminal (quit: Ctrl-A X).
    Run {
        /// Guest RAM in MiB.
        #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(128..=8192))]
        memory: u32,
        /// Boot arguments, e.g. 'sis.run="meminfo; threads"'.
        #[arg(long)]
        append: Option<String>,
        /// QEMU -icount: guest time follows instructions, runs replay exactly.
        #[arg(long)]
        deterministic: bool,
        /// Attach this raw disk image as a virtio-blk drive (created, zero-filled, with --disk-mib if absent).
        #[arg(long)]
        disk: Option<std::path::PathBuf>,
        /// Size of a disk image --disk creates, MiB.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
        disk_mib: u64,
        /// Attach virtio-net on QEMU user networking and forward 127.0.0.1:PORT to SIS's TCP echo (port 7).
        #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
        net: Option<u16>,
        /// Attach virtio-net, start SIS's web server at boot and forward 127.0.0.1:PORT to it (guest port 80).
        #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..), conflicts_with = "net")]
        web: Option<u16>,
        /// With --web: install this admin token (64 hex digits) instead of letting SIS print a new one at boot.
        #[arg(long, value_name = "TOKEN", requires = "web")]
        web_token: Option<String>,
    },
    /// Everything CI checks: formatting, clippy, host tests, a fixed-seed fuzz pass, kernel build, QEMU integration tests.
    Test,
    /// Coverage-guided fuzzing (libFuzzer) of the tokenizer, argument parser, boot arguments, JSON report paths,
    /// HTTP and WebSocket decoders, model artifacts and audit logs, agent protocol messages and capability lists.
    ///
    /// Builds `fuzz/` with coverage instrumentation (stable rustc flags) into target/fuzz, runs each target,
    /// then prints executions, seconds, execs/s and corpus size per target and in total. New inputs go to
    /// target/fuzz/corpus/<target>/ (kept between runs); the committed seeds in fuzz/corpus/<target>/ are
    /// only read. A crashing input is written to target/fuzz/artifacts/<target>/ and named in the error.
    Fuzz(fuzz::FuzzArgs),
    /// Build, then run seed 002's phase suites in QEMU (`sis-testing phases`): the table, every failing test.
    Phases {
        /// Run only this phase (repeatable); every phase by default.
        #[arg(long = "phase")]
        phases: Vec<u8>,
        /// Write the versioned JSON report here.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
        /// QEMU -icount: exact, replayable figures.
        #[arg(long)]
        deterministic: bool,
        /// With --deterministic, also run every probe once in real time, reported beside.
        #[arg(long)]
        real_time: bool,
    },
    /// Build SIS and the daemon, then start `sisd`: it boots SIS in QEMU and serves the dashboard and the
    /// `/api/stress/*` endpoints on 127.0.0.1 (the URL is printed; stop with Ctrl-C). docs/dashboard.md.
    Dashboard {
        /// Port on 127.0.0.1.
        #[arg(long, default_value_t = 8600)]
        port: u16,
        /// Directory of the run history (SQLite), kept between runs.
        #[arg(long, default_value = "target/sisd")]
        data_dir: std::path::PathBuf,
    },
    /// Models: signing keys and signed artifacts (docs/governance.md); the language model's training and
    /// generation (docs/lm.md).
    Model {
        #[command(subcommand)]
        task: model::ModelTask,
    },
    /// Benchmarks that print figures and a ratio against a peer measured in the same run.
    Bench {
        #[command(subcommand)]
        which: bench::Benchmark,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Task::Setup => setup(),
        Task::Build => setup::ensure_target().and_then(|()| build_agents()).and_then(|()| build_kernel()),
        Task::Agents => setup::ensure_target().and_then(|()| build_agents()),
        Task::Run { memory, append, deterministic, disk, disk_mib, net, web, web_token } => {
            run(memory, append, deterministic, disk, disk_mib, net, web.map(|port| (port, web_token)))
        }
        Task::Test => test(),
        Task::Fuzz(args) => fuzz::run(args),
        Task::Model { task } => model::run(task),
        Task::Bench { which } => bench::run(which),
        Task::Dashboard { port, data_dir } => dashboard(port, &data_dir),
        Task::Phases { phases, json, deterministic, real_time } => run_phases(&phases, json, deterministic, real_time),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `command` to completion; `Err` names the `step` that failed.
pub fn run_step(step: &str, command: &mut Command) -> Result<(), String> {
    let status = command.status().map_err(|error| format!("{step}: cannot start: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{step} failed ({status})"))
    }
}

/// Runs a cargo command at the workspace root.
pub fn cargo(step: &str, args: &[&str], envs: &[(&str, &str)]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run_step(step, Command::new(cargo).args(args).envs(envs.iter().copied()).current_dir(workspace_root()))
}

/// `cargo xtask dashboard`: the kernel and the daemon built, then `sisd` in the foreground.
fn dashboard(port: u16, data_dir: &std::path::Path) -> Result<(), String> {
    setup::ensure_qemu()?;
    setup::ensure_target()?;
    setup::ensure_dashboard_assets()?;
    build_kernel()?;
    let kernel = workspace_root().join("target").join(KERNEL_TARGET).join("release").join("sis-kernel");
    let (port, data_dir, kernel) = (port.to_string(), data_dir.display().to_string(), kernel.display().to_string());
    cargo(
        "sisd",
        &[
            "run",
            "--quiet",
            "--release",
            "-p",
            "sis-daemon",
            "--",
            "--port",
            &port,
            "--data-dir",
            &data_dir,
            "--kernel",
            &kernel,
            "--boot",
        ],
        &[],
    )
}

/// `cargo xtask phases`: the kernel built, then `sis-testing phases` with the same flags.
fn run_phases(
    numbers: &[u8],
    json: Option<std::path::PathBuf>,
    deterministic: bool,
    real_time: bool,
) -> Result<(), String> {
    // The probes use the test suite's clients (phase 6 the web clients, phase 7 the OTLP collector).
    setup()?;
    build_kernel()?;
    let mut args = vec![String::from("run"), "--quiet".into(), "-p".into(), "sis-testing".into(), "--".into()];
    args.push("phases".into());
    for number in numbers {
        args.extend(["--phase".into(), number.to_string()]);
    }
    if let Some(path) = json {
        args.extend(["--json".into(), path.display().to_string()]);
    }
    if deterministic {
        args.push("--deterministic".into());
    }
    if real_time {
        args.push("--real-time".into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cargo("phases", &args, &[])
}

/// Builds the kernel image in release mode.
pub fn build_kernel() -> Result<(), String> {
    cargo("kernel build", &["build", "--quiet", "--release", "-p", "sis-kernel", "--target", KERNEL_TARGET], &[])
}

/// Builds the example agents (release, wasm32-unknown-unknown). Cargo runs in agents/ so that it reads
/// agents/.cargo/config.toml (the agents' stack size).
pub fn build_agents() -> Result<(), String> {
    agents_cargo("example agents build", &["build", "--quiet", "--locked", "--release", "--target", AGENT_TARGET])
}

/// Runs cargo in agents/ (their own workspace and config).
fn agents_cargo(step: &str, args: &[&str]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run_step(step, Command::new(cargo).args(args).current_dir(workspace_root().join("agents")))
}

fn run(
    memory: u32,
    append: Option<String>,
    deterministic: bool,
    disk: Option<std::path::PathBuf>,
    disk_mib: u64,
    net: Option<u16>,
    web: Option<(u16, Option<String>)>,
) -> Result<(), String> {
    if let Some((_, Some(token))) = &web {
        if token.len() != 64 || !token.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(format!(
                "--web-token must be 64 hexadecimal digits (32 bytes), got {} characters",
                token.len()
            ));
        }
    }
    setup::ensure_qemu()?;
    setup::ensure_target()?;
    build_kernel()?;
    let mut config = QemuConfig::new().memory_mib(memory);
    if let Some(path) = disk {
        if !path.exists() {
            let file = std::fs::File::create(&path).map_err(|error| format!("{}: {error}", path.display()))?;
            file.set_len(disk_mib << 20).map_err(|error| format!("{}: {error}", path.display()))?;
            println!("created {} ({disk_mib} MiB, zero-filled)", path.display());
        }
        config = config.disk_image(path);
    }
    if let Some(port) = net {
        println!("SIS's TCP echo will be at 127.0.0.1:{port}");
        config = config.user_network(port, 7);
    }
    if let Some((port, token)) = web {
        println!("SIS's web server will be at http://127.0.0.1:{port}/ (GET /api/metrics, POST /api/command, GET /ws)");
        match &token {
            Some(_) => println!("admin token: the one given with --web-token (send it as Authorization: Bearer TOKEN)"),
            None => println!("admin token: printed once on the console at boot, on the line 'web: admin token TOKEN'"),
        }
        config = config.web_server(port, token);
    }
    if let Some(append) = append {
        config = config.bootargs(append);
    }
    if deterministic {
        config = config.deterministic();
    }
    let status = config.interactive_command().status().map_err(|error| format!("cannot start QEMU: {error}"))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => {
            println!("QEMU exited with status {code} ({})", sis_proto::exit::describe(code));
            if code == sis_proto::exit::PASS {
                Ok(())
            } else {
                Err(format!("exit status {code}"))
            }
        }
        None => Err("QEMU was killed by a signal".into()),
    }
}

/// Test counts summed from cargo's `test result:` lines.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    passed: u64,
    failed: u64,
}

/// Reads one libtest summary line:
/// `test result: ok. 28 passed; 0 failed; 3 ignored; 0 measured; 0 filtered out; finished in 0.01s`.
fn parse_test_result(line: &str) -> Option<Counts> {
    let result = line.strip_prefix("test result: ")?;
    let (_verdict, figures) = result.split_once(". ")?;
    let count_of =
        |word: &str| figures.split(';').find_map(|part| part.trim().strip_suffix(word)?.trim().parse::<u64>().ok());
    Some(Counts { passed: count_of(" passed")?, failed: count_of(" failed")? })
}

/// Runs `cargo test ...`, echoing its output and summing its `test result:` lines.
fn cargo_test(step: &str, args: &[&str], envs: &[(&str, &str)], counts: &mut Counts) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut child = Command::new(cargo)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(workspace_root())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|error| format!("{step}: cannot run cargo: {error}"))?;
    let stdout = child.stdout.take().ok_or_else(|| format!("{step}: no stdout"))?;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        println!("{line}");
        if let Some(result) = parse_test_result(&line) {
            counts.passed += result.passed;
            counts.failed += result.failed;
        }
    }
    let status = child.wait().map_err(|error| format!("{step}: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{step} failed ({status})"))
    }
}

/// Everything `test` needs that may be missing.
fn setup() -> Result<(), String> {
    setup::ensure_qemu()?;
    setup::ensure_target()?;
    setup::ensure_web_clients()?;
    setup::ensure_browser()?;
    setup::ensure_otel_collector()?;
    setup::ensure_dashboard_assets().map(|_| ())
}

fn test() -> Result<(), String> {
    setup()?;
    let kernel = QemuConfig::new().kernel.to_string_lossy().into_owned();
    let mut counts = Counts::default();
    let result = (|| {
        println!("== formatting (rustfmt.toml)");
        cargo("formatting", &["fmt", "--all", "--check"], &[])?;
        cargo("formatting (fuzz targets)", &["fmt", "--check", "--manifest-path", "fuzz/Cargo.toml"], &[])?;
        agents_cargo("formatting (example agents)", &["fmt", "--all", "--check"])?;
        println!("== clippy (host crates)");
        cargo("clippy (host crates)", &["clippy", "--quiet", "--all-targets", "--", "-D", "warnings"], &[])?;
        println!("== clippy (kernel and platform for aarch64)");
        cargo(
            "clippy (kernel and platform for aarch64)",
            &[
                "clippy",
                "--quiet",
                "--release",
                "--target",
                KERNEL_TARGET,
                "-p",
                "sis-kernel",
                "-p",
                "sis-platform",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        )?;
        println!("== clippy (fuzz targets)");
        fuzz::clippy()?;
        println!("== clippy (example agents, {AGENT_TARGET})");
        agents_cargo(
            "clippy (example agents)",
            &["clippy", "--quiet", "--locked", "--release", "--target", AGENT_TARGET, "--", "-D", "warnings"],
        )?;
        println!("== host tests");
        cargo_test("host tests", &["test", "--quiet"], &[], &mut counts)?;
        println!("== fuzz targets ({} inputs each, seed 1)", fuzz::TEST_RUNS);
        fuzz::test_pass(&mut counts)?;
        println!("== kernel build");
        build_kernel()?;
        println!("== QEMU integration tests");
        cargo_test(
            "QEMU integration tests",
            &["test", "--quiet", "-p", "sis-testing", "-p", "sis-daemon", "--tests", "--", "--ignored"],
            &[("SIS_KERNEL_ELF", &kernel)],
            &mut counts,
        )
    })();
    println!("tests: {} passed, {} failed", counts.passed, counts.failed);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every crate root outside `crates/platform`: libraries, binaries, fuzz targets.
    fn crate_roots(root: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut roots = vec![root.join("kernel/src/main.rs"), root.join("xtask/src/main.rs")];
        let children = |dir: &str| -> Vec<std::path::PathBuf> {
            let mut paths: Vec<_> =
                std::fs::read_dir(root.join(dir)).unwrap().map(|entry| entry.unwrap().path()).collect();
            paths.sort();
            paths
        };
        for dir in children("crates").into_iter().chain(children("tools")) {
            for file in ["src/lib.rs", "src/main.rs"] {
                roots.push(dir.join(file));
            }
            if let Ok(bins) = std::fs::read_dir(dir.join("src/bin")) {
                roots.extend(bins.map(|entry| entry.unwrap().path()));
            }
        }
        roots.extend(children("fuzz/fuzz_targets"));
        roots.retain(|path| path.is_file() && !path.starts_with(root.join("crates/platform")));
        roots
    }

    #[test]
    fn every_crate_but_the_platform_forbids_unsafe_code() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let roots = crate_roots(root);
        assert!(roots.len() >= 20, "{roots:?}");
        let without: Vec<_> = roots
            .iter()
            .filter(|path| {
                !std::fs::read_to_string(path).unwrap().lines().any(|line| line == "#![forbid(unsafe_code)]")
            })
            .collect();
        assert!(without.is_empty(), "crate roots without #![forbid(unsafe_code)]: {without:?}");
    }

    #[test]
    fn libtest_summaries_give_passed_and_failed_counts() {
        assert_eq!(
            parse_test_result(
                "test result: ok. 28 passed; 0 failed; 3 ignored; 0 measured; 0 filtered out; finished in 0.01s"
            ),
            Some(Counts { passed: 28, failed: 0 })
        );
        assert_eq!(
            parse_test_result(
                "test result: FAILED. 24 passed; 1 failed; 0 ignored; 0 measured; 1 filtered out; finished in 12.69s"
            ),
            Some(Counts { passed: 24, failed: 1 })
        );
        assert_eq!(parse_test_result("test qemu::boots ... ok"), None);
        assert_eq!(parse_test_result("test result: garbled"), None);
    }
}
