//! Compare tests on the host: paired statistics over records, and twenty real governed pairs.

use super::*;
use crate::governor::Governor;
use crate::learning::workload_seed;
use crate::test_support::governed_run;

fn record(seed: u64, oom_events: u64) -> RunRecord {
    let mut values = alloc::vec![0; MEMORY_FIGURES.len()];
    values[0] = oom_events;
    values[4] = 1_000;
    RunRecord { seed, values, interventions: 0 }
}

#[test]
fn targets_parse_and_unknown_ones_are_refused() {
    assert_eq!(CompareTarget::parse("multi"), Ok(CompareTarget::Multi));
    assert_eq!(
        CompareTarget::parse("disk"),
        Err(String::from("unknown test type \"disk\": expected memory, commands, multi or chaos"))
    );
    assert_eq!(figures(CompareTarget::Multi).len(), MEMORY_FIGURES.len() + COMMAND_FIGURES.len());
}

#[test]
fn ten_pairs_all_better_are_significant_and_identical_pairs_are_not() {
    let off: Vec<RunRecord> = (0..10).map(|seed| record(seed, 10 + seed)).collect();
    let on: Vec<RunRecord> = (0..10).map(|seed| record(seed, seed % 3)).collect();
    let report = compare_report(
        CompareTarget::Memory,
        1,
        100,
        (off.clone(), AutonomySnapshot::default()),
        (on, Default::default()),
    );
    // Ten differences of one sign: exact two-sided p = 2 / 2^10.
    assert_eq!(report.oom_p_value, Some(2.0 / 1024.0));
    assert!(report.oom_reduction_significant);
    assert_eq!(report.comparisons[0].verdict, "better");
    assert_eq!(report.figures_differing, 1, "only the OOM events changed");
    assert_eq!(report.comparisons[4].verdict, "no difference");
    let same = compare_report(
        CompareTarget::Memory,
        1,
        100,
        (off.clone(), AutonomySnapshot::default()),
        (off, AutonomySnapshot::default()),
    );
    assert_eq!((same.oom_p_value, same.oom_reduction_significant, same.figures_differing), (None, false, 0));
    assert_eq!(same.oom_reduction_percent, Some(0.0));
}

#[test]
fn twenty_governed_pairs_cut_oom_events_significantly_and_report_the_costs() {
    let mut off = (Vec::new(), AutonomySnapshot::default());
    let mut on = (Vec::new(), AutonomySnapshot::default());
    for index in 0..DEFAULT_RUNS as u64 {
        let seed = workload_seed(7, index);
        let (report, counted) = governed_run(seed, None);
        assert_eq!(counted.total_interventions, 0, "autonomy off intervenes never");
        off.0.push(RunRecord { seed, values: memory_values(&report), interventions: 0 });
        let (report, counted) = governed_run(seed, Some(Governor::heuristic().unwrap()));
        on.0.push(RunRecord { seed, values: memory_values(&report), interventions: counted.total_interventions });
        on.1.total_interventions += counted.total_interventions;
    }
    let report = compare_report(CompareTarget::Memory, 7, 1_000, off, on);
    let oom = &report.comparisons[0];
    std::println!(
        "OOM {} -> {} ({:?} %), p {:?}, differing {}",
        oom.off_mean,
        oom.on_mean,
        report.oom_reduction_percent,
        report.oom_p_value,
        report.figures_differing
    );
    for comparison in &report.comparisons {
        std::println!(
            "  {:<28} {:>12.1} {:>12.1} {:?} p {:?} {}",
            comparison.figure.label,
            comparison.off_mean,
            comparison.on_mean,
            comparison.change_percent,
            comparison.paired.wilcoxon.as_ref().map(|test| test.p_value),
            comparison.verdict
        );
    }
    assert!(report.oom_reduction_percent.unwrap() >= 75.0);
    assert!(report.oom_reduction_significant);
    assert!(report.figures_differing >= 5);
    assert!(report.autonomy_on.interventions.total > 0);
    assert_eq!(report.autonomy_off.interventions.total, 0);
}
