//! `bench ai`, shadow: what a shadow costs the meta-agent in the guest. The same memory run is measured without a
//! shadow and with `builtin:memory-agent` shadowing the heuristic: production's decision cost (`autoctl status`,
//! timed without the shadow's step) in both, and the shadow's step apart (`aiopsctl shadow report`).

use serde_json::Value;
use sis_testing::QemuConfig;

use crate::bench::{batch_replies, median_of};

/// The memory run both sides decide on.
const RUN: &str = "stresstest memory --duration 2000 --pool-mib 6 --target-pressure 85 --oom-threshold 90 --seed 7 \
                   --expect-failures --json";

/// Decision cost (mean, p50, p99 ns, decisions) of the run, and the shadow step's (mean, p50, p99 ns, steps).
type Figures = ([u64; 4], Option<[u64; 4]>);

fn figures(config: QemuConfig, shadowed: bool) -> Result<Figures, String> {
    let commands = if shadowed {
        format!(
            "llmctl register builtin:memory-agent --json; aiopsctl shadow start memory-agent --json; autoctl on --json; \
             {RUN}; autoctl off --json; autoctl status --json; aiopsctl shadow report --json"
        )
    } else {
        format!("autoctl on --json; {RUN}; autoctl off --json; autoctl status --json")
    };
    let replies = batch_replies(&config.batch(&commands))?;
    let status_index = if shadowed { 5 } else { 3 };
    let summary = |value: &Value, pointer: &str| -> Result<[u64; 4], String> {
        let field = |name: &str| {
            value
                .pointer(&format!("{pointer}/{name}"))
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("no {pointer}/{name} in {value}"))
        };
        Ok([field("mean_ns")?, field("p50_ns")?, field("p99_ns")?, field("count")?])
    };
    let status = replies.get(status_index).ok_or("missing autoctl status reply")?;
    let decision = summary(status, "/decision_cost")?;
    let shadow = match shadowed {
        true => Some(summary(replies.get(status_index + 1).ok_or("missing shadow report")?, "/cost/shadow_step")?),
        false => None,
    };
    Ok((decision, shadow))
}

/// Prints the shadow's cost in deterministic mode (instructions) and in `repetitions` wall-clock runs.
pub fn run(repetitions: u32) -> Result<(), String> {
    let shift = sis_testing::DEFAULT_ICOUNT_SHIFT;
    println!("\nshadow mode: `{RUN}` with autonomy on (heuristic), without and with builtin:memory-agent shadowing it");
    let (alone, _) = figures(QemuConfig::new().deterministic(), false)?;
    let (beside, shadow) = figures(QemuConfig::new().deterministic(), true)?;
    let shadow = shadow.ok_or("no shadow figures")?;
    let line = |name: &str, [mean, p50, p99, count]: [u64; 4]| {
        println!(
            "  {name:<34} mean {:>7} instructions, p50 {:>7}, p99 {:>7} over {count}",
            mean >> shift,
            p50 >> shift,
            p99 >> shift
        )
    };
    println!("  deterministic mode (-icount shift={shift}):");
    line("production decision, no shadow", alone);
    line("production decision, shadowed", beside);
    line("shadow step (apart, reported)", shadow);
    println!(
        "  production's decision with a shadow / without: {:.3} (mean); the shadow's step adds {:.2} % of the 10 ms interval",
        beside[0] as f64 / alone[0].max(1) as f64,
        shadow[0] as f64 / 10_000_000.0 * 100.0
    );
    println!("  normal mode (wall clock), {repetitions} runs each:");
    let mut runs = Vec::new();
    for run in 1..=repetitions {
        let (alone, _) = figures(QemuConfig::new(), false)?;
        let (beside, shadow) = figures(QemuConfig::new(), true)?;
        let shadow = shadow.ok_or("no shadow figures")?;
        println!(
            "    run {run:>2}: decision mean {} ns alone, {} ns shadowed; shadow step mean {} ns, p99 {} ns",
            alone[0], beside[0], shadow[0], shadow[2]
        );
        runs.push((alone[0] as f64, beside[0] as f64, shadow[0] as f64));
    }
    println!(
        "    median decision mean {:.0} ns alone, {:.0} ns shadowed; median shadow step mean {:.0} ns",
        median_of(&runs, |run| run.0),
        median_of(&runs, |run| run.1),
        median_of(&runs, |run| run.2)
    );
    Ok(())
}
