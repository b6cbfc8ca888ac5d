//! `cargo xtask fuzz`: builds the libFuzzer targets in `fuzz/` with coverage instrumentation and runs them.
//!
//! The instrumentation uses stable rustc flags only (LLVM's SanitizerCoverage
//! pass through `-Cpasses` and `-Cllvm-args`), and libFuzzer comes from the
//! `libfuzzer-sys` crate, so no nightly toolchain is needed. The build has its
//! own target directory, `target/fuzz`, so it never invalidates the normal
//! build's cache. Committed seed inputs in `fuzz/corpus/<target>/` are read,
//! never written: new inputs go to a working corpus under `target/fuzz/`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use sis_testing::workspace_root;

use crate::Counts;

/// The fuzz targets, in the order they run.
pub const TARGETS: [&str; 8] =
    ["tokenize", "args", "bootargs", "validate", "http_request", "ws_frame", "governance", "agent_protocol"];

/// Inputs each target runs in `cargo xtask test`'s fixed-seed pass.
pub const TEST_RUNS: u64 = 200_000;

/// Seed of `cargo xtask test`'s pass, so it replays the same inputs every time.
const TEST_SEED: u32 = 1;

/// Seconds per target when neither `--seconds` nor `--runs` is given.
const DEFAULT_SECONDS: u64 = 60;

/// Coverage instrumentation for libFuzzer with stable rustc flags: 8-bit edge
/// counters and a PC table for coverage feedback, comparison tracing so the
/// fuzzer learns the words the parsers compare against, and `--cfg fuzzing`.
const RUSTFLAGS: &str = "-Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    --cfg fuzzing";

/// Options of `cargo xtask fuzz`.
#[derive(clap::Args, Debug)]
pub struct FuzzArgs {
    /// Seconds each target runs (libFuzzer -max_total_time). Default 60 when --runs is not given either.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub seconds: Option<u64>,
    /// Run only this target (default: every target, one after the other).
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(TARGETS))]
    pub target: Option<String>,
    /// libFuzzer's random seed (-seed); the same seed, limits and corpus replay the same inputs.
    /// Default: libFuzzer picks one from the clock and it is printed.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub seed: Option<u32>,
    /// Inputs each target runs (libFuzzer -runs); with --seconds, whichever limit comes first ends the run.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub runs: Option<u64>,
}

/// What one target's run came to.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetRun {
    /// Target name.
    pub target: &'static str,
    /// Figures read from libFuzzer's output.
    pub stats: Stats,
    /// Wall time of the run, seconds.
    pub seconds: f64,
    /// Whether libFuzzer exited with status 0.
    pub exited_ok: bool,
    /// The full libFuzzer output.
    pub log: PathBuf,
}

impl TargetRun {
    fn passed(&self) -> bool {
        self.exited_ok && self.stats.crash_artifact.is_none() && self.stats.executions.is_some()
    }

    fn execs_per_second(&self) -> f64 {
        self.stats.executions.unwrap_or(0) as f64 / self.seconds.max(1e-9)
    }
}

/// `cargo xtask fuzz`: build, run each target, print the figures; `Err` names every target that failed.
pub fn run(args: FuzzArgs) -> Result<(), String> {
    let seconds = args.seconds.or(if args.runs.is_none() { Some(DEFAULT_SECONDS) } else { None });
    let targets: Vec<&'static str> = match &args.target {
        Some(name) => TARGETS.iter().copied().filter(|target| target == name).collect(),
        None => TARGETS.to_vec(),
    };
    let binaries = build()?;
    let limits = Limits { seconds, runs: args.runs, seed: args.seed };
    let mut runs = Vec::new();
    for target in targets {
        println!("== {target}: {}", limits.describe());
        let corpus = binaries.root.join("corpus").join(target);
        runs.push(run_target(&binaries, target, &limits, &corpus, true)?);
    }
    print_summary(&runs);
    failures(&binaries, &runs)
}

/// `cargo xtask test`'s pass: every target for [`TEST_RUNS`] inputs from seed [`TEST_SEED`], starting from the
/// committed seed corpus alone; one passed test per target that ran them without a failure.
pub fn test_pass(counts: &mut Counts) -> Result<(), String> {
    let started = Instant::now();
    let binaries = build()?;
    println!("fuzz build: {:.1} s", started.elapsed().as_secs_f64());
    let limits = Limits { seconds: None, runs: Some(TEST_RUNS), seed: Some(TEST_SEED) };
    let mut runs = Vec::new();
    for target in TARGETS {
        let corpus = binaries.root.join("test-corpus").join(target);
        if corpus.exists() {
            std::fs::remove_dir_all(&corpus).map_err(|error| format!("{}: {error}", corpus.display()))?;
        }
        let run = run_target(&binaries, target, &limits, &corpus, false)?;
        println!(
            "fuzz {target} ... {} ({} inputs, {:.1} s)",
            if run.passed() { "ok" } else { "FAILED" },
            thousands(run.stats.executions.unwrap_or(0)),
            run.seconds
        );
        runs.push(run);
    }
    let passed = runs.iter().filter(|run| run.passed()).count() as u64;
    let failed = runs.len() as u64 - passed;
    println!("fuzz result: {passed} passed; {failed} failed");
    counts.passed += passed;
    counts.failed += failed;
    failures(&binaries, &runs)
}

/// Clippy on the fuzz crate, which the workspace's clippy run does not reach. It shares `target/fuzz`
/// with the instrumented build (checking and building are separate units there, so neither undoes the other).
pub fn clippy() -> Result<(), String> {
    let host = host_triple()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    crate::run_step(
        "clippy (fuzz targets)",
        Command::new(cargo)
            .args(["clippy", "--quiet", "--locked", "--all-targets", "--target", &host, "--target-dir"])
            .arg(workspace_root().join("target").join("fuzz"))
            .args(["--", "-D", "warnings"])
            .current_dir(workspace_root().join("fuzz")),
    )
}

/// Where the instrumented binaries and their working files live.
struct Binaries {
    /// `target/fuzz`.
    root: PathBuf,
    /// The directory holding one executable per target.
    directory: PathBuf,
    /// Targets run under `setarch --addr-no-randomize`. With comparison tracing,
    /// heap addresses the code compares reach libFuzzer's dictionary, so with
    /// address randomization the same seed gives slightly different inputs.
    fixed_addresses: bool,
}

struct Limits {
    seconds: Option<u64>,
    runs: Option<u64>,
    seed: Option<u32>,
}

impl Limits {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(seconds) = self.seconds {
            parts.push(format!("{seconds} s"));
        }
        if let Some(runs) = self.runs {
            parts.push(format!("{} inputs", thousands(runs)));
        }
        parts.push(match self.seed {
            Some(seed) => format!("seed {seed}"),
            None => String::from("seed from the clock"),
        });
        parts.join(", ")
    }
}

/// Builds every target, release with debug assertions and overflow checks (the fuzz crate's profile).
fn build() -> Result<Binaries, String> {
    let root = workspace_root();
    let host = host_triple()?;
    let target_dir = root.join("target").join("fuzz");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    crate::run_step(
        "fuzz build",
        Command::new(cargo)
            .args(["build", "--quiet", "--release", "--locked", "--bins", "--target", &host, "--target-dir"])
            .arg(&target_dir)
            .env("RUSTFLAGS", RUSTFLAGS)
            .current_dir(root.join("fuzz")),
    )?;
    let fixed_addresses = Command::new("setarch")
        .args([std::env::consts::ARCH, "--addr-no-randomize", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !fixed_addresses {
        println!("note: setarch --addr-no-randomize does not run here; a seed replays its inputs only approximately");
    }
    Ok(Binaries { directory: target_dir.join(&host).join("release"), root: target_dir, fixed_addresses })
}

/// The host's target triple. Naming it makes cargo apply RUSTFLAGS to the
/// targets only, not to build scripts and proc macros, which need no coverage.
fn host_triple() -> Result<String, String> {
    let output = Command::new("rustc")
        .arg("-vV")
        .current_dir(workspace_root())
        .output()
        .map_err(|error| format!("cannot run rustc: {error}"))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| String::from("rustc -vV printed no host line"))
}

/// Runs one target with `corpus` as its writable corpus and the committed seeds read-only beside it.
fn run_target(
    binaries: &Binaries,
    target: &'static str,
    limits: &Limits,
    corpus: &Path,
    show_progress: bool,
) -> Result<TargetRun, String> {
    let artifacts = binaries.root.join("artifacts").join(target);
    let logs = binaries.root.join("logs");
    for directory in [corpus, &artifacts, &logs] {
        std::fs::create_dir_all(directory).map_err(|error| format!("{}: {error}", directory.display()))?;
    }
    let seeds = workspace_root().join("fuzz").join("corpus").join(target);
    let binary = binaries.directory.join(target);
    let mut command = if binaries.fixed_addresses {
        let mut command = Command::new("setarch");
        command.args([std::env::consts::ARCH, "--addr-no-randomize"]).arg(&binary);
        command
    } else {
        Command::new(&binary)
    };
    command
        .arg(corpus)
        .arg(&seeds)
        // Shell lines are at most 1,024 bytes (the line editor's limit); boot
        // arguments and reports get more room.
        .arg(format!("-max_len={}", if matches!(target, "tokenize" | "args") { 1024 } else { 4096 }))
        .arg("-timeout=10")
        // Rereading the corpus directory on a timer only serves fuzzers sharing it; it would make runs depend on time.
        .arg("-reload=0")
        .arg("-print_final_stats=1")
        // libFuzzer joins the prefix and the file name as they are: the trailing slash makes it a directory.
        .arg(format!("-artifact_prefix={}/", artifacts.display()));
    if let Some(seconds) = limits.seconds {
        command.arg(format!("-max_total_time={seconds}"));
    }
    if let Some(runs) = limits.runs {
        command.arg(format!("-runs={runs}"));
    }
    if let Some(seed) = limits.seed {
        command.arg(format!("-seed={seed}"));
    }
    let log_path = logs.join(format!("{target}.log"));
    let mut log = std::fs::File::create(&log_path).map_err(|error| format!("{}: {error}", log_path.display()))?;
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("fuzz {target}: cannot start: {error}"))?;
    let stderr = child.stderr.take().ok_or_else(|| format!("fuzz {target}: no stderr"))?;
    let mut stats = Stats::default();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        writeln!(log, "{line}").map_err(|error| format!("{}: {error}", log_path.display()))?;
        stats.read_line(&line);
        if show_progress && is_progress(&line) {
            println!("  {line}");
        }
    }
    let status = child.wait().map_err(|error| format!("fuzz {target}: {error}"))?;
    let seconds = started.elapsed().as_secs_f64();
    let run = TargetRun { target, stats, seconds, exited_ok: status.success(), log: log_path };
    if !run.passed() {
        if let Some(panic) = &run.stats.panic {
            println!("  {target}: {panic}");
        }
        println!("  {target}: libFuzzer {status}; full output in {}", run.log.display());
    }
    Ok(run)
}

/// libFuzzer's periodic lines (at powers of two of inputs run) and its last one.
fn is_progress(line: &str) -> bool {
    line.starts_with('#') && (line.contains("\tpulse ") || line.contains("\tDONE "))
}

fn print_summary(runs: &[TargetRun]) {
    println!();
    println!(
        "{:<10} {:>15} {:>9} {:>11} {:>8} {:>7} {:>11}  result",
        "target", "executions", "seconds", "execs/s", "corpus", "cov", "seed"
    );
    for run in runs {
        let optional = |value: Option<u64>| value.map_or_else(|| String::from("-"), thousands);
        println!(
            "{:<10} {:>15} {:>9.1} {:>11} {:>8} {:>7} {:>11}  {}",
            run.target,
            thousands(run.stats.executions.unwrap_or(0)),
            run.seconds,
            thousands(run.execs_per_second().round() as u64),
            optional(run.stats.corpus),
            optional(run.stats.coverage),
            run.stats.seed.map_or_else(|| String::from("-"), |seed| seed.to_string()),
            if run.passed() { "ok" } else { "FAILED" }
        );
    }
    let executions: u64 = runs.iter().map(|run| run.stats.executions.unwrap_or(0)).sum();
    let seconds: f64 = runs.iter().map(|run| run.seconds).sum();
    println!(
        "{:<10} {:>15} {:>9.1} {:>11}",
        "total",
        thousands(executions),
        seconds,
        thousands((executions as f64 / seconds.max(1e-9)).round() as u64)
    );
}

/// `Err` naming each failed target, its crash input and how to replay it.
fn failures(binaries: &Binaries, runs: &[TargetRun]) -> Result<(), String> {
    let failed: Vec<String> = runs
        .iter()
        .filter(|run| !run.passed())
        .map(|run| match &run.stats.crash_artifact {
            Some(artifact) => format!(
                "fuzz target {} failed on {artifact} (replay: {} {artifact})",
                run.target,
                binaries.directory.join(run.target).display()
            ),
            None => format!("fuzz target {} failed without a crash input; see {}", run.target, run.log.display()),
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("\n"))
    }
}

/// Figures read from libFuzzer's output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// `stat::number_of_executed_units`: inputs run.
    pub executions: Option<u64>,
    /// `corp: N/...` on the last status line: inputs in the corpus.
    pub corpus: Option<u64>,
    /// `cov: N` on the last status line: coverage points reached (instrumented edges).
    pub coverage: Option<u64>,
    /// `INFO: Seed: N`.
    pub seed: Option<u64>,
    /// The input that crashed the target (`Test unit written to PATH`).
    pub crash_artifact: Option<String>,
    /// The first panic: where, and the message's first line.
    pub panic: Option<String>,
    /// The line before was the panic's location; its message follows.
    panic_message_next: bool,
}

impl Stats {
    /// Takes what one line of libFuzzer's output says.
    pub fn read_line(&mut self, line: &str) {
        if std::mem::take(&mut self.panic_message_next) {
            if let Some(panic) = &mut self.panic {
                panic.push(' ');
                panic.push_str(line.trim());
            }
            return;
        }
        if let Some(value) = line.strip_prefix("stat::number_of_executed_units:") {
            self.executions = value.trim().parse().ok();
        } else if let Some(value) = line.strip_prefix("INFO: Seed:") {
            self.seed = value.trim().parse().ok();
        } else if let Some((_, path)) = line.split_once("Test unit written to ") {
            self.crash_artifact = Some(path.trim().to_owned());
        } else if line.starts_with('#') {
            let field = |name: &str| -> Option<u64> {
                let rest = &line[line.find(name)? + name.len()..];
                let digits: String = rest.trim_start().chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            };
            if let Some(corpus) = field(" corp:") {
                self.corpus = Some(corpus);
            }
            if let Some(coverage) = field(" cov:") {
                self.coverage = Some(coverage);
            }
        } else if line.contains("panicked at ") && self.panic.is_none() {
            self.panic = Some(line.trim().to_owned());
            self.panic_message_next = true;
        }
    }
}

/// `1234567` as `1,234,567`.
fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(lines: &[&str]) -> Stats {
        let mut stats = Stats::default();
        for line in lines {
            stats.read_line(line);
        }
        stats
    }

    #[test]
    fn final_stats_of_a_clean_run() {
        // The args target's output from `cargo xtask fuzz --seconds 5 --seed 3` (libfuzzer-sys 0.4.13).
        let stats = read(&[
            "INFO: Seed: 3",
            "#7\tINITED cov: 825 ft: 1277 corp: 6/218b exec/s: 0 rss: 28Mb",
            "#262144\tpulse  cov: 1432 ft: 3352 corp: 476/27Kb lim: 330 exec/s: 131072 rss: 29Mb",
            "#458475\tDONE   cov: 1443 ft: 3564 corp: 563/47Kb lim: 685 exec/s: 76412 rss: 29Mb",
            "Done 458475 runs in 6 second(s)",
            "stat::number_of_executed_units: 458475",
            "stat::average_exec_per_sec:     76412",
            "stat::new_units_added:          2456",
        ]);
        assert_eq!(
            stats,
            Stats {
                executions: Some(458_475),
                corpus: Some(563),
                coverage: Some(1443),
                seed: Some(3),
                crash_artifact: None,
                panic: None,
                panic_message_next: false
            }
        );
    }

    #[test]
    fn a_crash_names_its_input_and_panic() {
        // The tokenize target on the split_commands bug (`cargo xtask fuzz --target tokenize --seed 1`),
        // with the artifact path and the mutation list shortened.
        let stats = read(&[
            "#1376\tREDUCE cov: 314 ft: 999 corp: 69/2049b lim: 53 exec/s: 0 rss: 27Mb L: 13/53 MS: 4 CrossOver-",
            "",
            "thread '<unnamed>' (26495) panicked at fuzz_targets/tokenize.rs:52:21:",
            r#"piece "veoub back\\" of "meminfo; threads D vs ; veoub back\\ " does not tokenize"#,
            "stack backtrace:",
            "==26495== ERROR: libFuzzer: deadly signal",
            "artifact_prefix='/w/target/fuzz/artifacts/tokenize/'; Test unit written to \
             /w/target/fuzz/artifacts/tokenize/crash-4e412d2d41f5ad0297cdce02f1182f863c66a3c1",
            "stat::number_of_executed_units: 1377",
        ]);
        assert_eq!(stats.executions, Some(1377));
        assert_eq!((stats.corpus, stats.coverage), (Some(69), Some(314)));
        assert_eq!(
            stats.crash_artifact.as_deref(),
            Some("/w/target/fuzz/artifacts/tokenize/crash-4e412d2d41f5ad0297cdce02f1182f863c66a3c1")
        );
        assert_eq!(
            stats.panic.as_deref(),
            Some(
                r#"thread '<unnamed>' (26495) panicked at fuzz_targets/tokenize.rs:52:21: piece "veoub back\\" of "meminfo; threads D vs ; veoub back\\ " does not tokenize"#
            )
        );
    }

    #[test]
    fn a_run_without_final_stats_has_no_executions_and_does_not_pass() {
        let stats = read(&["INFO: Seed: 9", "ERROR: the control file has no lines"]);
        assert_eq!(stats.executions, None);
        let run = TargetRun { target: "args", stats, seconds: 0.1, exited_ok: true, log: PathBuf::from("log") };
        assert!(!run.passed());
    }

    #[test]
    fn progress_lines_are_pulses_and_the_last_one() {
        assert!(is_progress("#262144\tpulse  cov: 1432 ft: 3352 corp: 476/27Kb lim: 330 exec/s: 131072 rss: 29Mb"));
        assert!(is_progress("#458475\tDONE   cov: 1443 ft: 3564 corp: 563/47Kb lim: 685 exec/s: 76412 rss: 29Mb"));
        assert!(!is_progress(
            "#1380\tNEW    cov: 874 ft: 1440 corp: 40/1065b lim: 21 exec/s: 0 rss: 28Mb L: 17/62 MS: 1"
        ));
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(12_345_678), "12,345,678");
    }
}
