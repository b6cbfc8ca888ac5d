//! Compare tests on the host: paired statistics over records, and twenty real governed pairs.

use super::*;
use crate::test_support::{frames, governed_pairs};
use crate::StressTestConfig;

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
fn eleven_pairs_all_better_are_significant_and_identical_pairs_are_not() {
    let off: Vec<RunRecord> = (0..11).map(|seed| record(seed, 10 + seed)).collect();
    let on: Vec<RunRecord> = (0..11).map(|seed| record(seed, seed % 3)).collect();
    let report = compare_report(
        CompareTarget::Memory,
        1,
        100,
        (off.clone(), AutonomySnapshot::default()),
        (on, Default::default()),
    );
    // Eleven differences of one sign: exact two-sided p = 2 / 2^11; alone in a family of nine, Holm p = 9 × that,
    // 0.0088 < 0.01. (Ten pairs would give 9 × 2/1024 = 0.0176: a difference, but not significant at 0.01.)
    assert_eq!(report.oom_p_value, Some(2.0 / 2048.0));
    assert_eq!(report.oom_p_value_adjusted, Some(18.0 / 2048.0));
    assert!(report.oom_reduction_significant);
    assert_eq!(report.comparisons[0].verdict, Verdict::Better);
    assert_eq!(report.figures_differing, 1, "only the OOM events changed");
    assert_eq!(report.comparisons[4].verdict, Verdict::NoDifference);
    // d_z: the mean difference over its sample standard deviation, straight from the pairs.
    let differences: Vec<f64> = (0..11).map(|seed| (seed % 3) as f64 - (10 + seed) as f64).collect();
    let mean = differences.iter().sum::<f64>() / 11.0;
    let sd = (differences.iter().map(|d| (d - mean) * (d - mean)).sum::<f64>() / 10.0).sqrt();
    let dz = report.comparisons[0].effect_size_dz.unwrap();
    assert!((dz - mean / sd).abs() < 1e-12, "d_z {dz} against {}", mean / sd);
    assert!(dz < -3.0, "a large reduction: {dz}");
    assert_eq!(report.comparisons[4].effect_size_dz, None, "no spread: every difference is 0");
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
    let config = StressTestConfig { duration_ms: 1_000, pool_bytes: 16 << 20, ..StressTestConfig::with_seed(7) };
    let (off, on) = governed_pairs(7, u64::from(DEFAULT_RUNS), &config, &mut frames());
    assert_eq!(off.1.total_interventions, 0, "autonomy off intervenes never");
    let report = compare_report(CompareTarget::Memory, 7, 1_000, off, on);
    let oom = &report.comparisons[0];
    std::println!(
        "OOM {} -> {} ({:?} %), p {:?}, Holm p {:?}, {:?} informative pairs; {} better, {} worse, {} changed, {} unchanged",
        oom.off_mean,
        oom.on_mean,
        report.oom_reduction_percent,
        report.oom_p_value,
        report.oom_p_value_adjusted,
        report.oom_informative_pairs,
        report.figures_better,
        report.figures_worse,
        report.figures_changed,
        report.figures_unchanged
    );
    for comparison in &report.comparisons {
        std::println!(
            "  {:<28} {:>12.1} {:>12.1} {:?} p {:?} Holm {:.6} pairs {} min p {:.6} {}",
            comparison.figure.label,
            comparison.off_mean,
            comparison.on_mean,
            comparison.change_percent,
            comparison.p_value,
            comparison.p_value_adjusted,
            comparison.informative_pairs,
            comparison.min_reachable_p,
            comparison.verdict.as_str()
        );
    }
    assert!(report.oom_reduction_percent.unwrap() >= 75.0);
    assert!(report.oom_reduction_significant);
    // After Holm over the nine figures, four improvements on the host's fake clock: OOM events, failed allocations,
    // compactions, workload steps. Allocations served fall (a cost), pressure changes; the throttled requests' rise
    // (0 -> 263 a run) has 2 informative pairs and so cannot reach p < 0.5 at all; the p99 never differs here.
    use Verdict::{Better, Changed, NoDifference, Worse};
    let verdicts: Vec<Verdict> = report.comparisons.iter().map(|comparison| comparison.verdict).collect();
    assert_eq!(verdicts, [Better, Better, Changed, Changed, Worse, NoDifference, Better, NoDifference, Better]);
    assert_eq!(
        (report.figures_better, report.figures_worse, report.figures_changed, report.figures_unchanged),
        (4, 1, 2, 2)
    );
    assert!(report.autonomy_on.interventions.total > 0);
    assert_eq!(report.autonomy_off.interventions.total, 0);
}

/// A memory record whose figures are `values` (in [`MEMORY_FIGURES`] order).
fn values_record(seed: u64, values: [u64; 9]) -> RunRecord {
    RunRecord { seed, values: values.to_vec(), interventions: 0 }
}

fn memory_report(off: Vec<RunRecord>, on: Vec<RunRecord>) -> CompareReport {
    compare_report(CompareTarget::Memory, 1, 100, (off, AutonomySnapshot::default()), (on, AutonomySnapshot::default()))
}

#[test]
fn nine_figures_each_at_p_0_031_uncorrected_differ_none_after_holm() {
    // Six pairs, every figure up by 1..=6 with autonomy on: each Wilcoxon p = 2/64 = 0.03125 < 0.05, but over a
    // family of nine, Holm multiplies the smallest by 9 (0.28) and every later one is at least that.
    let off: Vec<RunRecord> = (0..6).map(|seed| values_record(seed, [100; 9])).collect();
    let on: Vec<RunRecord> = (0..6).map(|seed| values_record(seed, [101 + seed; 9])).collect();
    let report = memory_report(off, on);
    for comparison in &report.comparisons {
        assert_eq!(comparison.paired.wilcoxon.as_ref().unwrap().p_value, 2.0 / 64.0);
        assert!(!comparison.differs, "{}", comparison.figure.key);
        assert_eq!(comparison.verdict, Verdict::NoDifference);
    }
    assert_eq!(report.figures_differing, 0);
    assert!(!report.oom_reduction_significant);
}

#[test]
fn the_oom_reduction_is_significant_only_when_its_holm_p_is_below_0_01() {
    // Nine pairs of fewer OOM events, nothing else changes: raw p = 2/512 = 0.0039 < 0.01, Holm p = 9 × 2/512 =
    // 0.035: the OOM events differ (below 0.05, better) but the reduction is not significant at 0.01.
    let off: Vec<RunRecord> = (0..9).map(|seed| record(seed, 10 + seed)).collect();
    let on: Vec<RunRecord> = (0..9).map(|seed| record(seed, 0)).collect();
    let report = memory_report(off, on);
    assert_eq!(report.oom_p_value, Some(2.0 / 512.0));
    assert_eq!(report.oom_reduction_percent, Some(100.0));
    assert!(!report.oom_reduction_significant);
    assert_eq!(report.comparisons[0].verdict, Verdict::Better);
    assert_eq!(report.figures_differing, 1);
}

#[test]
fn improvements_costs_and_descriptions_are_counted_apart() {
    // Ten pairs. With autonomy on: OOM events down and allocations up (better), requests throttled up (worse, a
    // cost), average pressure down (changed: neither direction is better); the other five figures equal. Four
    // p-values of 2/1024 and five untestable figures (p = 1) in a family of nine: Holm p = 9 × 2/1024 each.
    let base = |seed: u64| [20 + seed, 5, 900, 600, 1_000, 0, 50, 3_000, 10_000];
    let off: Vec<RunRecord> = (0..10).map(|seed| values_record(seed, base(seed))).collect();
    let on: Vec<RunRecord> = (0..10)
        .map(|seed| {
            let mut values = base(seed);
            values[0] = seed % 2;
            values[3] -= 10 + seed;
            values[4] += 1 + seed;
            values[5] += 100 + seed;
            values_record(seed, values)
        })
        .collect();
    let report = memory_report(off, on);
    let verdicts: Vec<Verdict> = report.comparisons.iter().map(|comparison| comparison.verdict).collect();
    use Verdict::{Better, Changed, NoDifference, Worse};
    assert_eq!(
        verdicts,
        [Better, NoDifference, NoDifference, Changed, Better, Worse, NoDifference, NoDifference, NoDifference]
    );
    assert_eq!(
        (
            report.figures_better,
            report.figures_worse,
            report.figures_changed,
            report.figures_unchanged,
            report.figures_differing
        ),
        (2, 1, 1, 5, 4)
    );
    assert_eq!((report.correction, report.family_size), (Correction::Holm, 9));
    let oom = &report.comparisons[0];
    assert_eq!((oom.p_value, oom.p_value_adjusted), (Some(2.0 / 1024.0), 9.0 * 2.0 / 1024.0));
    assert_eq!((oom.informative_pairs, oom.min_reachable_p), (10, 2.0 / 1024.0));
    // 0.0176 < 0.05: the OOM events differ; not below 0.01, so the reduction is not significant.
    assert_eq!(report.oom_p_value_adjusted, Some(9.0 * 2.0 / 1024.0));
    assert!(!report.oom_reduction_significant);
    let unchanged = &report.comparisons[1];
    assert_eq!(
        (unchanged.p_value, unchanged.p_value_adjusted, unchanged.informative_pairs, unchanged.min_reachable_p),
        (None, 1.0, 0, 1.0)
    );
}

#[test]
fn a_comparison_with_four_informative_pairs_reports_that_it_cannot_reach_0_05() {
    // Twenty pairs of which four show OOM events with autonomy off and none with it on (the case: -100 %,
    // yet the test cannot go below 2/16 = 0.125 with four non-zero differences).
    let off: Vec<RunRecord> = (0..20).map(|seed| record(seed, if seed < 4 { 5 + seed } else { 0 })).collect();
    let on: Vec<RunRecord> = (0..20).map(|seed| record(seed, 0)).collect();
    let report = memory_report(off, on);
    assert_eq!(report.oom_reduction_percent, Some(100.0));
    assert_eq!(
        (report.oom_informative_pairs, report.oom_min_reachable_p, report.oom_p_value, report.oom_p_value_adjusted),
        (Some(4), Some(0.125), Some(0.125), Some(1.0))
    );
    assert_eq!(report.comparisons[0].verdict, Verdict::NoDifference);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["comparisons"][0]["informative_pairs"], 4);
    assert_eq!(json["comparisons"][0]["min_reachable_p"], 0.125);
    assert_eq!(json["comparisons"][0]["verdict"], "no difference");
    assert_eq!(json["correction"], "holm");
    assert_eq!(json["figures_unchanged"], 9);
}
