//! `sis-testing`: boot SIS in QEMU from the command line: measure boot time or run a batch.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use sis_testing::{run_batch, QemuConfig, Sis};

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
    /// Boot with `sis.run="COMMANDS"`, print the output and the exit status.
    Run {
        /// Commands separated by `;`.
        commands: String,
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
        Command::BootTime { runs, memory } => {
            let config = QemuConfig::new().memory_mib(memory);
            let mut prompt_ms = Vec::new();
            for run in 1..=runs {
                match Sis::boot(&config) {
                    Ok(sis) => {
                        let first = sis.first_output_time().as_secs_f64() * 1e3;
                        let prompt = sis.boot_time().as_secs_f64() * 1e3;
                        println!("run {run:>3}: first output {first:8.1} ms, prompt {prompt:8.1} ms");
                        prompt_ms.push(prompt);
                    }
                    Err(error) => {
                        eprintln!("run {run}: {error}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            prompt_ms.sort_by(f64::total_cmp);
            println!("median boot-to-prompt: {:.1} ms over {runs} runs", prompt_ms[prompt_ms.len() / 2]);
            ExitCode::SUCCESS
        }
        Command::Run { commands, memory, deterministic, timeout_seconds } => {
            let mut config =
                QemuConfig::new().memory_mib(memory).batch(&commands).timeout(Duration::from_secs(timeout_seconds));
            if deterministic {
                config = config.deterministic();
            }
            match run_batch(&config) {
                Ok(result) => {
                    print!("{}", result.output);
                    let status = result.status.unwrap_or(-1);
                    println!("[exit status {status}: {}]", sis_proto::exit::describe(status));
                    if status == sis_proto::exit::PASS {
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
