//! QEMU tests of the meta-agent: `autoctl`, `memctl` and `stresstest compare`, in deterministic mode.

use serde_json::Value;
use sis_proto::exit;
use sis_testing::{run_batch, QemuConfig};

/// Runs `commands` in deterministic batch mode; returns the exit status and every JSON line printed.
///
/// A comparison prints nothing until it ends (about 7 s of wall time at its defaults on an idle 2-core host),
/// so a step may wait far longer than the default 30 s on a loaded host: 120 s.
fn batch_json(commands: &str) -> (Option<i32>, Vec<Value>) {
    let config = QemuConfig::new().batch(commands).deterministic().timeout(std::time::Duration::from_secs(120));
    let result = run_batch(&config).unwrap();
    (result.status, result.json_lines().unwrap())
}

fn f64_at(value: &Value, key: &str) -> f64 {
    value[key].as_f64().unwrap_or_else(|| panic!("{key} missing in {value}"))
}

/// Checks a comparison's statistics against its own raw figures: each figure's informative pairs are its non-zero
/// differences, its smallest reachable p is 2/2^n (exact Wilcoxon), its adjusted p is Holm's over the family
/// (recomputed here without sorting, untestable figures as p = 1), its verdict follows from the adjusted p and
/// the figure's direction, and the report's counts are those of the verdicts.
fn check_corrected_statistics(compare: &Value) {
    let comparisons = compare["comparisons"].as_array().unwrap();
    let family = comparisons.len();
    assert_eq!(compare["correction"], "holm");
    assert_eq!(compare["family_size"].as_u64(), Some(family as u64));
    let column = |side: &str, index: usize| -> Vec<u64> {
        compare[side]["runs"].as_array().unwrap().iter().map(|run| run["values"][index].as_u64().unwrap()).collect()
    };
    let raw: Vec<f64> = comparisons.iter().map(|c| c["p_value"].as_f64().unwrap_or(1.0)).collect();
    let mut counts = std::collections::BTreeMap::new();
    for (index, comparison) in comparisons.iter().enumerate() {
        let informative = column("autonomy_off", index)
            .iter()
            .zip(column("autonomy_on", index))
            .filter(|(off, on)| **off != *on)
            .count();
        assert_eq!(comparison["informative_pairs"].as_u64(), Some(informative as u64), "{comparison}");
        let floor = if informative == 0 { 1.0 } else { (2.0 / 2f64.powi(informative as i32)).min(1.0) };
        assert_eq!(comparison["min_reachable_p"].as_f64(), Some(floor), "{comparison}");
        assert_eq!(comparison["p_value"], comparison["paired"]["wilcoxon"]["p_value"], "{comparison}");
        let p = raw[index];
        assert!(p >= floor, "{comparison}");
        let holm = raw
            .iter()
            .filter(|other| **other <= p)
            .map(|other| ((family - raw.iter().filter(|smaller| **smaller < *other).count()) as f64 * other).min(1.0))
            .fold(0.0, f64::max);
        let adjusted = comparison["p_value_adjusted"].as_f64().unwrap();
        assert!((adjusted - holm).abs() <= 1e-12 * holm, "{comparison}: Holm {holm}");
        let differs = adjusted < 0.05;
        assert_eq!(comparison["differs"], differs, "{comparison}");
        let (off, on) = (comparison["off_mean"].as_f64().unwrap(), comparison["on_mean"].as_f64().unwrap());
        let expected = match (differs, comparison["figure"]["better"].as_str().unwrap()) {
            (false, _) => "no difference",
            (true, "neither") => "changed",
            (true, "lower") if on < off => "better",
            (true, "higher") if on > off => "better",
            (true, _) => "worse",
        };
        assert_eq!(comparison["verdict"], expected, "{comparison}");
        *counts.entry(expected).or_insert(0u64) += 1;
    }
    let count = |verdict: &str| counts.get(verdict).copied().unwrap_or(0);
    assert_eq!(compare["figures_better"].as_u64(), Some(count("better")));
    assert_eq!(compare["figures_worse"].as_u64(), Some(count("worse")));
    assert_eq!(compare["figures_changed"].as_u64(), Some(count("changed")));
    assert_eq!(compare["figures_unchanged"].as_u64(), Some(count("no difference")));
    assert_eq!(compare["figures_differing"].as_u64(), Some(family as u64 - count("no difference")));
    let oom = &comparisons[0];
    assert_eq!(oom["figure"]["key"], "oom_events");
    assert_eq!(compare["oom_p_value"], oom["p_value"]);
    assert_eq!(compare["oom_p_value_adjusted"], oom["p_value_adjusted"]);
    assert_eq!(compare["oom_informative_pairs"], oom["informative_pairs"]);
    assert_eq!(compare["oom_min_reachable_p"], oom["min_reachable_p"]);
    let significant = oom["p_value_adjusted"].as_f64().unwrap() < 0.01
        && compare["oom_reduction_percent"].as_f64().is_some_and(|reduction| reduction > 0.0);
    assert_eq!(compare["oom_reduction_significant"], significant);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn compare_memory_cuts_oom_events_significantly_and_off_never_intervenes() {
    // The default 20 pairs in the default 6 MiB pool: nearly every workload meets the pool's limit, so nearly
    // every pair gives the Wilcoxon test an informative OOM difference.
    let (status, replies) = batch_json("stresstest compare memory --seed 7 --json");
    assert_eq!(status, Some(exit::PASS));
    let compare = &replies[0]["compare"];
    assert_eq!(compare["test"], "memory");
    assert_eq!(compare["runs"], 20);
    assert_eq!(compare["autonomy_off"]["interventions"]["total"], 0, "autonomy off never intervenes");
    let off_runs = compare["autonomy_off"]["runs"].as_array().unwrap();
    assert!(off_runs.iter().all(|run| run["interventions"] == 0));
    let interventions = compare["autonomy_on"]["interventions"]["total"].as_u64().unwrap();
    let per_run: u64 = compare["autonomy_on"]["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["interventions"].as_u64().unwrap())
        .sum();
    assert_eq!(interventions, per_run, "the total is the sum of the runs");
    assert!(interventions > 0);
    // The bar: OOM events down by at least 50 % with p < 0.01 after Holm's correction over the nine
    // figures (improvements only are counted better: costs and changes are counted apart).
    check_corrected_statistics(compare);
    let reduction = f64_at(compare, "oom_reduction_percent");
    let p = f64_at(compare, "oom_p_value_adjusted");
    println!(
        "compare memory, 20 pairs: OOM events -{reduction:.1} %, p {} (Holm {p:.5}, {} informative pairs); {} better, \
         {} worse, {} changed, {} unchanged",
        compare["oom_p_value"],
        compare["oom_informative_pairs"],
        compare["figures_better"],
        compare["figures_worse"],
        compare["figures_changed"],
        compare["figures_unchanged"]
    );
    assert!(reduction >= 50.0, "OOM reduction {reduction:.1} %");
    assert!(p < 0.01, "Holm p {p}");
    assert_eq!(compare["oom_reduction_significant"], true);
    // The improvements that hold on every build: fewer OOM events, failed allocations and compactions, and more
    // workload steps. Allocation p99 falls too (-12 %) but not robustly: better on the kernel of issue 18 (Holm
    // p < 0.05), no difference after the kernel log joined (raw p 0.18, 18 informative pairs), as instruction
    // counts shift its samples. The seed's "5+ measurable differences" is asserted on compare multi.
    let verdict = |key: &str| {
        compare["comparisons"].as_array().unwrap().iter().find(|c| c["figure"]["key"] == key).unwrap()["verdict"]
            .clone()
    };
    for key in ["oom_events", "failed_allocations", "compaction_triggers", "steps"] {
        assert_eq!(verdict(key), "better", "{key}");
    }
    assert!(compare["figures_better"].as_u64().unwrap() >= 4, "{}", compare["figures_better"]);
    // Means are those of the runs.
    let oom_off: f64 = off_runs.iter().map(|run| run["values"][0].as_f64().unwrap()).sum::<f64>() / 20.0;
    assert_eq!(compare["comparisons"][0]["off_mean"].as_f64().unwrap(), oom_off);
    // The meta-agent's thread costs little: under 2 % of the on runs' time.
    assert!(
        compare["autonomy_cpu_share_per_mille"].as_u64().unwrap() < 20,
        "{}",
        compare["autonomy_cpu_share_per_mille"]
    );
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn compare_memory_at_its_defaults_has_the_power_to_show_its_effect_on_seeds_the_docs_do_not_quote() {
    // At the former default pool (16 MiB) only 3 to 12 of 20 pairs met an OOM event, and seed 3's comparison
    // could not reach p < 0.01 however large the effect; at 6 MiB the floor is far below the bar.
    let seeds = [3u64, 11, 31337];
    let commands: Vec<String> =
        seeds.iter().map(|seed| format!("stresstest compare memory --seed {seed} --json")).collect();
    let (status, replies) = batch_json(&commands.join("; "));
    assert_eq!(status, Some(exit::PASS));
    assert_eq!(replies.len(), seeds.len());
    for (seed, reply) in seeds.iter().zip(&replies) {
        let compare = &reply["compare"];
        assert_eq!(compare["seed"].as_u64(), Some(*seed));
        check_corrected_statistics(compare);
        let informative = compare["oom_informative_pairs"].as_u64().unwrap();
        let p = f64_at(compare, "oom_p_value_adjusted");
        println!("seed {seed}: {informative} informative pairs, OOM Holm p {p:.2e}");
        assert!(informative >= 15, "seed {seed}: {informative} informative pairs");
        assert!(p < 0.01, "seed {seed}: Holm p {p}");
        assert_eq!(compare["oom_reduction_significant"], true, "seed {seed}");
    }
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn a_meta_agent_that_never_acts_gives_the_results_of_autonomy_off() {
    // Runs of a fixed number of steps: deciding costs the meta-agent's thread CPU time, so in runs of a fixed
    // duration even a policy that never acts leaves the workload fewer steps. At a 95 % target, above the
    // Balanced strategy's 85 % cap: an earlier governor set that cap on every run without counting it.
    let (_, replies) = batch_json(
        "autoctl policy never-act --json; \
         stresstest compare memory --runs 3 --seed 11 --steps 60000 --target-pressure 95 --oom-threshold 98 --json",
    );
    let compare = &replies[1]["compare"];
    assert_eq!(compare["autonomy_on"]["interventions"]["total"], 0);
    let keys: Vec<&str> = compare["figures"].as_array().unwrap().iter().map(|f| f["key"].as_str().unwrap()).collect();
    let latency = keys.iter().position(|key| *key == "allocation_p99_ns").unwrap();
    let values = |side: &str| -> Vec<Vec<Value>> {
        compare[side]["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|run| {
                let mut values = run["values"].as_array().unwrap().clone();
                // Timed by the clock: a decision that preempts a timed operation lengthens it.
                values.remove(latency);
                values
            })
            .collect()
    };
    assert_eq!(values("autonomy_off"), values("autonomy_on"), "identical runs, figure for figure");
    // The workload meets the pressure a cap would have relieved: OOM events in most runs, peak pressure above
    // the Balanced cap of 85 %.
    let column = |key: &str| -> Vec<u64> {
        let index = keys.iter().position(|name| *name == key).unwrap();
        compare["autonomy_off"]["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|run| run["values"][index].as_u64().unwrap())
            .collect()
    };
    let (ooms, peaks) = (column("oom_events"), column("peak_pressure_per_mille"));
    assert!(ooms.iter().filter(|ooms| **ooms > 0).count() >= 2 && ooms.iter().sum::<u64>() >= 50, "{ooms:?}");
    assert!(peaks.iter().filter(|peak| **peak > 850).count() >= 2, "{peaks:?}");
    assert_eq!(values("autonomy_on")[0][keys.iter().position(|key| *key == "steps").unwrap() - 1], 60_000);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn autoctl_decides_traces_and_explains_and_bad_values_change_nothing() {
    let (_, replies) = batch_json(
        "autoctl status --json; autoctl on --json; \
         stresstest memory --duration 300 --pool-mib 16 --seed 6 --json; \
         autoctl status --json; autoctl audit last 5 --json; autoctl explain 0 --json; \
         memctl status --json; memctl strategy status --json; memctl strategy history --json; \
         autoctl interval 0 --json; autoctl conf-threshold 1001 --json; autoctl policy learned --json; \
         autoctl explain 99999 --json; autoctl audit first 3 --json; stresstest compare disk --json; \
         stresstest compare memory --runs 0 --json; stresstest compare chaos --steps 5 --json; autoctl status --json",
    );
    let before = &replies[0];
    assert_eq!((before["enabled"].as_bool(), before["decisions"].as_u64()), (Some(false), Some(0)));
    let status = &replies[3];
    // 300 ms at one decision per 10 ms.
    let decisions = status["decisions"].as_u64().unwrap();
    assert!((28..=31).contains(&decisions), "{decisions} decisions");
    assert_eq!(status["decision_cost"]["count"], decisions);
    let audit = replies[4]["traces"].as_array().unwrap();
    assert_eq!(audit.len(), 5);
    let ids: Vec<u64> = audit.iter().map(|trace| trace["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (decisions - 5..decisions).collect::<Vec<_>>());
    let first = &replies[5]["trace"];
    assert_eq!(first["id"], 0);
    assert_eq!(first["policy"], "heuristic");
    assert!(first["inputs"]["pressure_per_mille"].is_u64());
    // The run is over: the port is detached and shows the run's last figures.
    let port = &replies[6]["port"];
    assert_eq!(port["attached"], false);
    assert_eq!(port["steps"], replies[2]["memory"]["steps"]);
    assert_eq!(port["oom_events"], replies[2]["memory"]["oom_events"]);
    assert!(replies[7]["strategy"].is_string());
    let switches = replies[8]["switches"].as_array().unwrap().len() as u64;
    assert_eq!(switches, replies[7]["stats"]["switches"].as_u64().unwrap().min(32));
    for (reply, code) in replies[9..17].iter().zip([
        "out-of-range",
        "out-of-range",
        "no-agent",
        "not-found",
        "invalid-value",
        "invalid-value",
        "out-of-range",
        "invalid-value",
    ]) {
        assert_eq!(reply["ok"], false, "{reply}");
        assert_eq!(reply["error"]["code"], code, "{reply}");
    }
    // Nothing the refused commands asked for took effect.
    let after = &replies[17];
    assert_eq!(after["interval_ms"], 10);
    assert_eq!(after["confidence_threshold_per_mille"], 600);
    assert_eq!(after["policy"], "heuristic");
    assert_eq!(after["enabled"], true);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn multi_compare_cuts_oom_events_significantly_and_the_learned_policy_drives_the_meta_agent() {
    let (_, replies) = batch_json(
        "stresstest compare multi --seed 7 --json; \
         stresstest learning --episodes 20 --seed 1 --json; autoctl policy learned --json; \
         stresstest compare memory --runs 4 --seed 7 --json; autoctl audit last 3 --json; autoctl status --json",
    );
    let multi = &replies[0]["compare"];
    check_corrected_statistics(multi);
    assert_eq!(multi["family_size"], 13);
    let reduction = f64_at(multi, "oom_reduction_percent");
    let p = f64_at(multi, "oom_p_value_adjusted");
    println!(
        "compare multi, 20 pairs: OOM events -{reduction:.1} %, Holm p {p:.5}; {} better, {} worse",
        multi["figures_better"], multi["figures_worse"]
    );
    assert!(reduction >= 50.0 && p < 0.01, "{reduction} % Holm p {p}");
    assert!(multi["figures_better"].as_u64().unwrap() >= 5);
    assert!(multi["autonomy_cpu_share_per_mille"].as_u64().unwrap() < 20);
    // Slow commands beside the memory thread get their consumer boosted: median latency falls, nothing is lost.
    let figure = |key: &str| {
        multi["comparisons"].as_array().unwrap().iter().find(|c| c["figure"]["key"] == key).unwrap().clone()
    };
    let p50 = figure("command_p50_ns");
    assert_eq!(p50["verdict"], "better", "{p50}");
    assert!(p50["change_percent"].as_f64().unwrap() < -50.0, "{p50}");
    // Within 1 % either way. Exactly "no difference" held until netctl joined the command table: `help` (a tenth
    // of the flood's lines) got longer, and with it seed 7 gives on 198.55 against off 199.45 (-0.45 %, p 0.0003).
    let processed = figure("commands_processed");
    assert!(processed["change_percent"].as_f64().unwrap().abs() < 1.0, "{processed}");
    assert!(multi["autonomy_on"]["interventions"]["counters"]["priority_boosts"].as_u64().unwrap() >= 10);
    // The learned policy: its decisions are traced as learned; what they change is measured, whichever way
    // it goes. It learns online: one training step every 4 transitions (a run of n decisions has n - 1).
    assert_eq!(replies[2]["policy"], "learned");
    let learned = &replies[3]["compare"];
    assert_eq!(learned["runs"], 4);
    // Four pairs: no figure can reach a Wilcoxon p below 2/16 = 0.125, so none can differ, whatever the policy did.
    check_corrected_statistics(learned);
    assert_eq!(learned["figures_unchanged"], 9);
    assert!(learned["comparisons"].as_array().unwrap().iter().all(|c| c["min_reachable_p"].as_f64().unwrap() >= 0.125));
    println!(
        "learned policy, 4 pairs: OOM events {} -> {}, interventions {}",
        learned["comparisons"][0]["off_mean"],
        learned["comparisons"][0]["on_mean"],
        learned["autonomy_on"]["interventions"]["total"]
    );
    let traces = replies[4]["traces"].as_array().unwrap();
    assert!(!traces.is_empty());
    for trace in traces {
        assert_eq!(trace["policy"], "learned");
        assert_eq!(trace["reason"]["reason"], "learned");
        assert!(["exploitation", "exploration"].contains(&trace["selection"].as_str().unwrap()), "{trace}");
    }
    let last_run = &replies[5];
    let decisions = last_run["decisions"].as_u64().unwrap();
    assert!(decisions > 50, "{last_run}");
    assert_eq!(last_run["metrics"]["policy_updates"].as_u64(), Some((decisions - 1) / 4), "{last_run}");
    assert!(learned["autonomy_on"]["interventions"]["counters"]["policy_updates"].as_u64().unwrap() >= 4 * 12);
}

#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn strategy_switches_stay_bounded_where_a_naive_threshold_policy_flaps() {
    // Held near 70 % by the Conservative cap, pressure hovers on the naive policy's Balanced threshold.
    let (_, replies) = batch_json(
        "autoctl on --json; stresstest memory --duration 2000 --pool-mib 16 --seed 2 --json; \
         memctl strategy status --json; memctl strategy history --json",
    );
    let status = &replies[2];
    let switches = status["stats"]["switches"].as_u64().unwrap();
    let naive = status["naive_switches"].as_u64().unwrap();
    println!("2 s of seed 2: {switches} strategy switches, a naive threshold policy {naive}");
    assert!(switches <= 8, "the controller allows at most 4 switches a second: {switches}");
    assert!(naive >= 10 * switches.max(1), "naive {naive}, governed {switches}");
    assert_eq!(replies[3]["switches"].as_array().unwrap().len() as u64, switches);
}

/// The chaos run's deadline thread publishes its misses on a port; with autonomy on, the meta-agent relaxes its
/// deadline through the scheduler and it misses fewer jobs of the same event than with autonomy off.
#[test]
#[ignore = "boots QEMU; run by cargo xtask test"]
fn deadline_misses_reach_the_meta_agent_which_relaxes_the_deadline_only_when_on() {
    // Event 15 of seed 42: the periodic thread's 2 ms budget cut to 1.272 ms for 179 ms, below its 1.5 ms of
    // work. One event, so every decision of the run stays in the audit (the last 256 are kept).
    let replay = "stresstest chaos --replay 42 --only 15 --json";
    let (status, replies) = batch_json(&format!(
        "{replay}; autoctl status --json; autoctl on --json; {replay}; autoctl status --json; \
         autoctl audit last 256 --json"
    ));
    assert_eq!(status, Some(exit::PASS));
    let (off, off_status, on, on_status, audit) =
        (&replies[0]["chaos"], &replies[1], &replies[3]["chaos"], &replies[4], &replies[5]["traces"]);
    let event = |report: &Value| report["events"][0].clone();
    assert_eq!(event(off)["event"], event(on)["event"], "the same event both times");
    assert_eq!(event(off)["event"]["type"], "deadline_pressure");
    assert!(event(off)["event"]["tight_per_mille"].as_u64().unwrap() < 750, "the cut budget is below the work");
    for report in [off, on] {
        assert!(event(report)["failure"].is_null(), "recovered: the budget and the deadline are back: {report}");
        assert_eq!(report["integrity"]["passed"], true);
    }
    // Off: nothing decided, nothing adjusted.
    assert_eq!((off_status["enabled"].as_bool(), off_status["decisions"].as_u64()), (Some(false), Some(0)));
    assert_eq!(off_status["metrics"]["deadline_adjustments"], 0);
    // On: every adjustment counted is an acted adjust_deadline trace that saw a miss, and each one went through.
    let traces = audit.as_array().unwrap();
    assert_eq!(traces.len() as u64, on_status["decisions"].as_u64().unwrap(), "the audit holds the whole run");
    let acted: Vec<&Value> = traces
        .iter()
        .filter(|trace| trace["directive"]["directive"] == "adjust_deadline" && trace["disposition"] == "acted")
        .collect();
    let adjustments = on_status["metrics"]["deadline_adjustments"].as_u64().unwrap();
    assert!(adjustments > 0);
    assert_eq!(acted.len() as u64, adjustments);
    assert_eq!(on_status["metrics"]["total_interventions"].as_u64(), Some(adjustments), "no other intervention");
    assert_eq!(on_status["deadline_adjustments_refused"], 0, "{}", on_status["last_deadline_error"]);
    for trace in &acted {
        assert_eq!(trace["directive"]["relax_per_mille"], 250);
        assert_eq!(trace["prediction"]["kind"], "deadline_miss");
        assert!(trace["inputs"]["deadline_misses"].as_u64().unwrap() >= 1, "{trace}");
        assert!(trace["confidence_per_mille"].as_u64().unwrap() >= trace["threshold_per_mille"].as_u64().unwrap());
    }
    // Each outcome is measured: failed on a further miss within the horizon, succeeded without one, or pending.
    let outcome = |name: &str| acted.iter().filter(|trace| trace["outcome"] == name).count() as u64;
    let metrics = &on_status["metrics"];
    assert_eq!(outcome("failed"), metrics["interventions_failed"].as_u64().unwrap());
    assert_eq!(outcome("succeeded"), metrics["interventions_succeeded"].as_u64().unwrap());
    assert_eq!(outcome("pending"), metrics["interventions_pending"].as_u64().unwrap());
    assert_eq!(outcome("failed") + outcome("succeeded") + outcome("pending"), adjustments);
    // What it bought: fewer of the event's jobs missed than in the run without it.
    let misses = |report: &Value| event(report)["figures"]["deadline_misses"].as_u64().unwrap();
    let jobs = |report: &Value| event(report)["figures"]["deadline_jobs"].as_u64().unwrap();
    println!(
        "deadline pressure, seed 42 event 15: off {} of {} jobs missed, on {} of {} ({adjustments} relaxations)",
        misses(off),
        jobs(off),
        misses(on),
        jobs(on)
    );
    assert!(misses(off) > 0 && misses(off) <= jobs(off));
    assert!(misses(on) < misses(off), "on {} misses, off {}", misses(on), misses(off));
}
