//! `sis-testing`: boot SIS in QEMU from the command line: measure boot time or run a batch.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use sis_testing::validate::{validate, Thresholds};
use sis_testing::{measure_boot_times, run_batch, QemuConfig};

#[derive(Parser)]
#[command(name = "sis-testing", about = "Boot SIS in QEMU: measure boot time or run commands in batch mode")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Boot N times and print time to first output and to the prompt.
    BootTime {
        /// Number of boots.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
        runs: u32,
        /// Guest RAM in MiB.
        #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(128..=8192))]
        memory: u32,
    },
    /// Boot in deterministic mode, run `stresstest all`, write its JSON report on the host.
    Stress {
        /// Run time of each test in milliseconds (guest time).
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
        duration: u64,
        /// Where to write the report.
        #[arg(long)]
        output: std::path::PathBuf,
        /// PRNG seed (default: from the host clock; always printed).
        #[arg(long)]
        seed: Option<u64>,
        /// A PARTIAL PASS counts as success.
        #[arg(long)]
        expect_failures: bool,
        /// Guest RAM in MiB.
        #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(128..=8192))]
        memory: u32,
    },
    /// Apply the seed's validate_stress_results.py rules to a report; exit non-zero listing each failure.
    Validate {
        /// The JSON report.
        file: std::path::PathBuf,
        /// Most OOM events allowed (memory.oom_events).
        #[arg(long, default_value_t = 10)]
        max_oom_events: u64,
        /// Fewest autonomy interventions (compare.autonomy_on.interventions.total).
        #[arg(long, default_value_t = 5)]
        min_autonomy_interventions: u64,
        /// Largest p99 latency in ms (percentiles.p99, ns in the file).
        #[arg(long, default_value_t = 5.0)]
        max_p99_latency_ms: f64,
        /// Smallest learning improvement, percent (learning.episodes[].reward).
        #[arg(long, default_value_t = 15.0)]
        min_learning_improvement_pct: f64,
    },
    /// Run seed 002's phase suites: print the table, a line per failing test, and optionally a JSON report.
    ///
    /// Exit status 1 when any test fails (pending phases included: see docs/phases.md).
    Phases {
        /// Run only this phase (repeatable: --phase 3 --phase 8); every phase by default.
        #[arg(long = "phase", value_parser = clap::value_parser!(u8).range(1..=9))]
        phases: Vec<u8>,
        /// Write the versioned JSON report here.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
        /// QEMU -icount: exact, replayable figures (real time otherwise).
        #[arg(long)]
        deterministic: bool,
        /// With --deterministic, also run every probe once in real time and report its verdicts beside the
        /// deterministic ones (they never change the exit status).
        #[arg(long, requires = "deterministic")]
        real_time: bool,
    },
    /// Boot with boot arguments that end the run by themselves; print the output and the exit status.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["commands", "append"])))]
    Run {
        /// Commands separated by `;`, run as `sis.run="COMMANDS"`.
        commands: Option<String>,
        /// Boot arguments as they are, e.g. 'sis.run="echo hi; version"'.
        #[arg(long, conflicts_with = "commands")]
        append: Option<String>,
        /// Guest RAM in MiB.
        #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(128..=8192))]
        memory: u32,
        /// QEMU -icount: guest time follows instructions, output replays exactly.
        #[arg(long)]
        deterministic: bool,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout_seconds: u64,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::BootTime { runs, memory } => boot_time(runs, memory),
        Command::Stress { duration, output, seed, expect_failures, memory } => {
            stress(duration, &output, seed, expect_failures, memory)
        }
        Command::Phases { phases, json, deterministic, real_time } => {
            run_phases(&phases, json.as_deref(), deterministic, real_time)
        }
        Command::Validate {
            file,
            max_oom_events,
            min_autonomy_interventions,
            max_p99_latency_ms,
            min_learning_improvement_pct,
        } => {
            let text = match std::fs::read_to_string(&file) {
                Ok(text) => text,
                Err(error) => {
                    eprintln!("[FAIL] cannot read {}: {error}", file.display());
                    return ExitCode::FAILURE;
                }
            };
            let thresholds = Thresholds {
                max_oom_events,
                min_autonomy_interventions,
                max_p99_latency_ms,
                min_learning_improvement_pct,
            };
            let verdict = validate(&text, &thresholds);
            for note in &verdict.notes {
                println!("  {note}");
            }
            if verdict.passed() {
                println!("[PASS] All stress test validations passed ({})", verdict.checked.join(", "));
                ExitCode::SUCCESS
            } else {
                println!("[FAIL] Stress test validation failed:");
                for failure in &verdict.failures {
                    println!("  ✗ {failure}");
                }
                ExitCode::FAILURE
            }
        }
        Command::Run { commands, append, memory, deterministic, timeout_seconds } => {
            let mut config = QemuConfig::new().memory_mib(memory).timeout(Duration::from_secs(timeout_seconds));
            config = match (commands, append) {
                (Some(commands), _) => config.batch(&commands),
                (None, Some(append)) => config.bootargs(append),
                (None, None) => config,
            };
            if deterministic {
                config = config.deterministic();
            }
            match run_batch(&config) {
                Ok(result) => {
                    print!("{}", result.output);
                    match result.status {
                        Some(status) => println!("[exit status {status}: {}]", result.describe_status()),
                        None => println!("[{}]", result.describe_status()),
                    }
                    if result.status == Some(sis_proto::exit::PASS) {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(error) => {
                    eprintln!("{error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Boots `runs` times; prints each run's figures and the medians.
fn boot_time(runs: u32, memory: u32) -> ExitCode {
    let config = QemuConfig::new().memory_mib(memory);
    let milliseconds = |duration: Duration| duration.as_secs_f64() * 1e3;
    let measured = measure_boot_times(&config, runs, |run, sample| {
        println!(
            "run {run:>3}: first output {:8.1} ms, prompt {:8.1} ms",
            milliseconds(sample.first_output),
            milliseconds(sample.prompt)
        );
    });
    match measured {
        Ok(times) => {
            let (Some(prompt), Some(first_output)) = (times.median_prompt(), times.median_first_output()) else {
                eprintln!("no runs");
                return ExitCode::FAILURE;
            };
            println!(
                "median over {runs} runs: first output {:.1} ms, prompt {:.1} ms",
                milliseconds(first_output),
                milliseconds(prompt)
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn run_phases(numbers: &[u8], json: Option<&std::path::Path>, deterministic: bool, real_time: bool) -> ExitCode {
    use sis_testing::phases;
    if let Some(unknown) = numbers.iter().find(|number| !phases::PHASES.iter().any(|phase| phase.number == **number)) {
        eprintln!("no phase {unknown} in seed 002 (phases: 1, 2, 3, 5, 6, 7, 8, 9)");
        return ExitCode::FAILURE;
    }
    let mode = if deterministic { "deterministic mode" } else { "real time" };
    println!("seed 002 phase suite, {mode}");
    let mut report = phases::run(numbers, deterministic, &mut |line| println!("{line}"));
    if real_time {
        println!("the same probes once in real time, reported beside (never failing the run)");
        report.real_time = phases::run(numbers, false, &mut |line| println!("{line}")).phases;
    }
    print!("{}", phases::table(&report));
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        if let Err(error) = std::fs::write(path, text + "\n") {
            eprintln!("cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
        println!("report written to {}", path.display());
    }
    if report.passed == report.total {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn stress(duration: u64, output: &std::path::Path, seed: Option<u64>, expect_failures: bool, memory: u32) -> ExitCode {
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos() as u64)
    });
    println!("stresstest all: seed {seed}, {duration} ms per test, deterministic mode");
    let expect = if expect_failures { " --expect-failures" } else { "" };
    let commands = format!("stresstest all --duration {duration} --seed {seed}{expect} --json");
    // Guest time runs faster than wall time in deterministic mode; allow generously for a busy host.
    let timeout = Duration::from_secs(120 + duration.saturating_mul(4) / 1000);
    let config = QemuConfig::new().memory_mib(memory).batch(&commands).deterministic().timeout(timeout);
    let result = match run_batch(&config) {
        Ok(result) => result,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let Some(line) = result.output.lines().find(|line| line.starts_with('{')) else {
        eprintln!("no JSON report in the output:\n{}", result.output);
        return ExitCode::FAILURE;
    };
    let report: serde_json::Value = match serde_json::from_str(line) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("the report is not JSON ({error}): {line}");
            return ExitCode::FAILURE;
        }
    };
    let text = serde_json::to_string_pretty(&report).unwrap_or_else(|_| line.to_string());
    if let Err(error) = std::fs::write(output, text + "\n") {
        eprintln!("cannot write {}: {error}", output.display());
        return ExitCode::FAILURE;
    }
    if let Some(tests) = report["tests"].as_array() {
        for test in tests {
            println!("  {:10} {}", test["name"].as_str().unwrap_or("?"), test["status"].as_str().unwrap_or("?"));
        }
    }
    println!("status {}; report written to {}", report["status"].as_str().unwrap_or("unknown"), output.display());
    if result.status == Some(sis_proto::exit::PASS) {
        ExitCode::SUCCESS
    } else {
        println!("[exit status {:?}: {}]", result.status, sis_proto::exit::describe(result.status.unwrap_or(-1)));
        ExitCode::FAILURE
    }
}
