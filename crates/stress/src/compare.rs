//! `stresstest compare`: the same seeded workloads with autonomy off and on, paired, and what differs.
//!
//! Each pair runs one workload seed twice, autonomy off then on; nothing in
//! the workload knows which (see [`crate::port`]). For every figure the
//! report gives both means, the change, and a paired test over the runs:
//! Wilcoxon signed-rank (exact p for up to 50 non-zero differences) and a
//! paired t-test with a 95 % confidence interval of the mean difference
//! (on − off). The figures of one comparison are one family: their Wilcoxon
//! p-values are adjusted together by Holm–Bonferroni ([`holm_adjusted`]), a
//! figure whose test cannot be computed (every difference zero) entering as
//! p = 1. A figure "differs" when its adjusted p is below [`DIFFERS_P`], so
//! the chance that any unchanged figure is reported as differing stays
//! below 5 %; the OOM reduction is "significant" when the OOM events'
//! adjusted p is below [`SIGNIFICANT_P`]. Costs are figures like any other:
//! fewer allocations or lower throughput with autonomy on are reported as
//! worse, and counted apart from the improvements. Beside each p-value the
//! report gives the informative pairs (non-zero differences) and the
//! smallest p the test could reach with them, so an underpowered figure
//! shows as one.

use alloc::string::String;
use alloc::vec::Vec;

use serde::Serialize;
use sis_autonomy::AutonomySnapshot;
use sis_metrics::{compare_paired, holm_adjusted, PairedComparison};

use crate::chaos::{ChaosReport, EventFigures};
use crate::{FloodReport, MemoryReport, MultiReport};

/// Most pairs a comparison runs.
pub const MAX_RUNS: u32 = 100;
/// Default pairs: enough that half the seeds reaching memory pressure still gives ten informative pairs.
pub const DEFAULT_RUNS: u32 = 20;
/// Default run length of each run of a pair, ms.
pub const DEFAULT_DURATION_MS: u64 = 1_000;
/// Default pool budget of `compare memory` and `compare multi`, MiB: the OOM figure the comparison exists for
/// then varies in nearly every pair. On the host (compare/power.rs), seeds 1 to 100 at 20 pairs: OOM events in
/// 1,896 of 2,000 off runs, at least 15 informative pairs per seed, the OOM reduction significant (Holm
/// p < 0.01) on all 100, the largest Holm p 3.1e-4. At the former 16 MiB: 3 of 10 seeds.
pub const DEFAULT_POOL_MIB: u64 = 6;
/// A figure differs measurably below this Holm-adjusted Wilcoxon p-value (family-wise error 5 %).
pub const DIFFERS_P: f64 = 0.05;
/// The OOM reduction is significant below this Holm-adjusted Wilcoxon p-value (the bar).
pub const SIGNIFICANT_P: f64 = 0.01;

/// The family-wise correction applied across the figures of one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// Holm–Bonferroni step-down adjusted p-values ([`holm_adjusted`]).
    Holm,
}

/// What a figure's comparison concludes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// Differs, in the figure's better direction.
    #[serde(rename = "better")]
    Better,
    /// Differs, in the figure's worse direction (a cost).
    #[serde(rename = "worse")]
    Worse,
    /// Differs, for a figure that is neither better higher nor lower (a description of the run).
    #[serde(rename = "changed")]
    Changed,
    /// Does not differ measurably (adjusted p not below [`DIFFERS_P`], or no test possible).
    #[serde(rename = "no difference")]
    NoDifference,
}

impl Verdict {
    /// Its text, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::Changed => "changed",
            Verdict::NoDifference => "no difference",
        }
    }
}

/// What a comparison runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareTarget {
    /// `stresstest memory`.
    Memory,
    /// `stresstest commands`.
    Commands,
    /// `stresstest multi`.
    Multi,
    /// `stresstest chaos`, without autonomy flips (autonomy is what the comparison varies).
    Chaos,
}

impl CompareTarget {
    /// Parses a test name.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "memory" => Ok(CompareTarget::Memory),
            "commands" => Ok(CompareTarget::Commands),
            "multi" => Ok(CompareTarget::Multi),
            "chaos" => Ok(CompareTarget::Chaos),
            _ => Err(alloc::format!("unknown test type {name:?}: expected memory, commands, multi or chaos")),
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            CompareTarget::Memory => "memory",
            CompareTarget::Commands => "commands",
            CompareTarget::Multi => "multi",
            CompareTarget::Chaos => "chaos",
        }
    }
}

/// Which way a figure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// Fewer is better (OOM events, latency).
    Lower,
    /// More is better (allocations served, commands processed).
    Higher,
    /// Neither: a description of the run (pressure).
    Neither,
}

/// A figure the comparison reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Figure {
    /// JSON key.
    pub key: &'static str,
    /// Text label.
    pub label: &'static str,
    /// Which way is better.
    pub better: Better,
}

const fn figure(key: &'static str, label: &'static str, better: Better) -> Figure {
    Figure { key, label, better }
}

const MEMORY_FIGURES: [Figure; 9] = [
    figure("oom_events", "OOM events", Better::Lower),
    figure("failed_allocations", "Failed allocations", Better::Lower),
    figure("peak_pressure_per_mille", "Peak pressure (per mille)", Better::Neither),
    figure("average_pressure_per_mille", "Average pressure (per mille)", Better::Neither),
    figure("allocations", "Allocations served", Better::Higher),
    figure("throttled_requests", "Requests throttled", Better::Lower),
    figure("compaction_triggers", "Compactions", Better::Lower),
    figure("allocation_p99_ns", "Allocation p99 (ns)", Better::Lower),
    figure("steps", "Workload steps", Better::Higher),
];

const COMMAND_FIGURES: [Figure; 4] = [
    figure("commands_processed", "Commands processed", Better::Higher),
    figure("commands_dropped", "Commands dropped", Better::Lower),
    figure("command_p50_ns", "Command latency p50 (ns)", Better::Lower),
    figure("command_p99_ns", "Command latency p99 (ns)", Better::Lower),
];

const CHAOS_FIGURES: [Figure; 11] = [
    figure("oom_events", "OOM events", Better::Lower),
    figure("oom_not_recovered", "OOM not recovered", Better::Lower),
    figure("failed_events", "Events failed", Better::Lower),
    figure("recovered_events", "Events recovered", Better::Higher),
    figure("total_events", "Events run", Better::Neither),
    figure("recovery_p50_ns", "Recovery p50 (ns)", Better::Lower),
    figure("recovery_p95_ns", "Recovery p95 (ns)", Better::Lower),
    figure("recovery_max_ns", "Recovery max (ns)", Better::Lower),
    figure("throttled_requests", "Requests throttled", Better::Lower),
    figure("directed_reclaims", "Reclaims directed", Better::Neither),
    figure("deadline_misses", "Deadline misses", Better::Lower),
];

/// The figures of `target`, in report order.
pub fn figures(target: CompareTarget) -> Vec<Figure> {
    match target {
        CompareTarget::Memory => MEMORY_FIGURES.to_vec(),
        CompareTarget::Commands => COMMAND_FIGURES.to_vec(),
        CompareTarget::Multi => MEMORY_FIGURES.iter().chain(&COMMAND_FIGURES).copied().collect(),
        CompareTarget::Chaos => CHAOS_FIGURES.to_vec(),
    }
}

/// A memory run's figures, in [`MEMORY_FIGURES`] order.
pub fn memory_values(report: &MemoryReport) -> Vec<u64> {
    alloc::vec![
        report.oom_events,
        report.failed_allocations,
        report.peak_pressure_per_mille as u64,
        report.average_pressure_per_mille as u64,
        report.allocations,
        report.throttled_requests,
        report.compaction_triggers,
        report.allocation_latency.p99_ns,
        report.steps,
    ]
}

/// A flood's figures, in [`COMMAND_FIGURES`] order.
pub fn command_values(report: &FloodReport) -> Vec<u64> {
    alloc::vec![report.processed, report.dropped, report.latency.p50_ns, report.latency.p99_ns]
}

/// A multi run's figures: its memory part, then its loaded flood.
pub fn multi_values(report: &MultiReport) -> Vec<u64> {
    let mut values = memory_values(&report.memory);
    values.extend(command_values(&report.commands));
    values
}

/// A chaos run's figures, in [`CHAOS_FIGURES`] order: its events' counts summed, and its recovery times.
pub fn chaos_values(report: &ChaosReport) -> Vec<u64> {
    let sum = |figure: fn(&EventFigures) -> u64| report.events.iter().map(|event| figure(&event.figures)).sum();
    alloc::vec![
        sum(|figures| figures.oom_events),
        sum(|figures| figures.oom_unrecovered),
        report.failed,
        report.recovered,
        report.total_events,
        report.recovery.p50_ns,
        report.recovery.p95_ns,
        report.recovery.max_ns,
        sum(|figures| figures.throttled),
        sum(|figures| figures.directed_reclaims),
        sum(|figures| figures.deadline_misses),
    ]
}

/// One run of a pair.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// The workload seed.
    pub seed: u64,
    /// Figures in the report's `figures` order.
    pub values: Vec<u64>,
    /// Interventions counted during the run.
    pub interventions: u64,
}

/// Interventions of one side, summed over its runs.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Interventions {
    /// All interventions (`compare.autonomy_on.interventions.total`).
    pub total: u64,
    /// The counters, summed.
    pub counters: AutonomySnapshot,
}

/// One side (autonomy off or on).
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// Every run, in pair order.
    pub runs: Vec<RunRecord>,
    /// Mean of each figure over the runs, in `figures` order.
    pub means: Vec<f64>,
    /// Interventions over all runs.
    pub interventions: Interventions,
}

/// One figure, off against on.
#[derive(Debug, Clone, Serialize)]
pub struct FigureComparison {
    /// The figure.
    pub figure: Figure,
    /// Mean with autonomy off.
    pub off_mean: f64,
    /// Mean with autonomy on.
    pub on_mean: f64,
    /// (on − off) / off × 100; null when the off mean is 0.
    pub change_percent: Option<f64>,
    /// Paired tests of on − off over the runs.
    pub paired: PairedComparison,
    /// Standardized effect size d_z: the mean of on − off over its standard deviation (`paired.t_test`); null
    /// without a t-test or when every difference is the same.
    pub effect_size_dz: Option<f64>,
    /// Pairs whose difference is not zero: the only pairs the Wilcoxon test can use.
    pub informative_pairs: usize,
    /// The Wilcoxon p-value, before correction (`paired.wilcoxon.p_value`); null when it cannot be computed.
    pub p_value: Option<f64>,
    /// The smallest Wilcoxon p-value the informative pairs could give, whatever the effect (1 with none).
    pub min_reachable_p: f64,
    /// The Wilcoxon p-value adjusted by Holm–Bonferroni over the report's figures (1 when it cannot be computed).
    pub p_value_adjusted: f64,
    /// Adjusted p below [`DIFFERS_P`].
    pub differs: bool,
    /// Better or worse by [`Figure::better`] when it differs, changed for figures that are neither, else no
    /// difference.
    pub verdict: Verdict,
}

/// Everything `stresstest compare` measured.
#[derive(Debug, Clone, Serialize)]
pub struct CompareReport {
    /// What ran.
    pub test: CompareTarget,
    /// Pairs.
    pub runs: u32,
    /// The seed the workload seeds derive from.
    pub seed: u64,
    /// Duration of each run, ms.
    pub duration_ms: u64,
    /// Figures in the order of every `values` and `means`.
    pub figures: Vec<Figure>,
    /// Autonomy off.
    pub autonomy_off: Side,
    /// Autonomy on.
    pub autonomy_on: Side,
    /// Each figure compared.
    pub comparisons: Vec<FigureComparison>,
    /// The family-wise correction across `comparisons`.
    pub correction: Correction,
    /// Figures in the family (every figure of the report, tested or not).
    pub family_size: u32,
    /// [`DIFFERS_P`]: a figure differs below this adjusted p.
    pub differs_level: f64,
    /// [`SIGNIFICANT_P`]: the OOM reduction is significant below this adjusted p.
    pub significant_level: f64,
    /// Figures that differ measurably, in any direction: better + worse + changed.
    pub figures_differing: u32,
    /// Figures that differ in their better direction: the improvements, the count the seed's "5+ measurable
    /// differences" asks for.
    pub figures_better: u32,
    /// Figures that differ in their worse direction (costs).
    pub figures_worse: u32,
    /// Figures that differ and are neither better higher nor lower.
    pub figures_changed: u32,
    /// Figures that do not differ measurably.
    pub figures_unchanged: u32,
    /// OOM events, (off − on) / off × 100; null without OOM figures or when off had none.
    pub oom_reduction_percent: Option<f64>,
    /// Wilcoxon p-value of the OOM events, before correction; null when it cannot be computed (e.g. no
    /// differences).
    pub oom_p_value: Option<f64>,
    /// Holm-adjusted p-value of the OOM events; null without OOM figures.
    pub oom_p_value_adjusted: Option<f64>,
    /// Pairs whose OOM events differ; null without OOM figures.
    pub oom_informative_pairs: Option<usize>,
    /// The smallest p the OOM test could reach with them; null without OOM figures.
    pub oom_min_reachable_p: Option<f64>,
    /// OOM events reduced with adjusted p below [`SIGNIFICANT_P`].
    pub oom_reduction_significant: bool,
}

fn side(runs: Vec<RunRecord>, counters: AutonomySnapshot, figures: usize) -> Side {
    let means = (0..figures)
        .map(|index| runs.iter().map(|run| run.values[index] as f64).sum::<f64>() / runs.len().max(1) as f64)
        .collect();
    Side { runs, means, interventions: Interventions { total: counters.total_interventions, counters } }
}

/// Builds the report from the paired runs (`off[i]` and `on[i]` ran the same seed).
pub fn compare_report(
    test: CompareTarget,
    seed: u64,
    duration_ms: u64,
    off: (Vec<RunRecord>, AutonomySnapshot),
    on: (Vec<RunRecord>, AutonomySnapshot),
) -> CompareReport {
    let figures = figures(test);
    let off = side(off.0, off.1, figures.len());
    let on = side(on.0, on.1, figures.len());
    let tests: Vec<PairedComparison> = (0..figures.len())
        .map(|index| {
            let column = |side: &Side| side.runs.iter().map(|run| run.values[index] as f64).collect::<Vec<f64>>();
            compare_paired(&column(&off), &column(&on))
        })
        .collect();
    let p_values: Vec<Option<f64>> =
        tests.iter().map(|paired| paired.wilcoxon.as_ref().map(|test| test.p_value)).collect();
    let adjusted = holm_adjusted(&p_values.iter().map(|p| p.unwrap_or(1.0)).collect::<Vec<f64>>());
    let comparisons: Vec<FigureComparison> = figures
        .iter()
        .zip(tests)
        .enumerate()
        .map(|(index, (figure, paired))| {
            let differs = adjusted[index] < DIFFERS_P;
            let (off_mean, on_mean) = (off.means[index], on.means[index]);
            let verdict = match (differs, figure.better) {
                (false, _) => Verdict::NoDifference,
                (true, Better::Neither) => Verdict::Changed,
                (true, Better::Lower) if on_mean < off_mean => Verdict::Better,
                (true, Better::Higher) if on_mean > off_mean => Verdict::Better,
                (true, _) => Verdict::Worse,
            };
            let wilcoxon = paired.wilcoxon.as_ref();
            FigureComparison {
                figure: *figure,
                off_mean,
                on_mean,
                change_percent: (off_mean != 0.0).then(|| (on_mean - off_mean) / off_mean * 100.0),
                informative_pairs: wilcoxon.map_or(0, |test| test.n_used),
                p_value: p_values[index],
                min_reachable_p: wilcoxon.map_or(1.0, |test| test.min_reachable_p),
                p_value_adjusted: adjusted[index],
                effect_size_dz: paired
                    .t_test
                    .as_ref()
                    .filter(|t| t.std_dev > 0.0)
                    .map(|t| t.mean_difference / t.std_dev),
                paired,
                differs,
                verdict,
            }
        })
        .collect();
    let count = |verdict: Verdict| comparisons.iter().filter(|comparison| comparison.verdict == verdict).count() as u32;
    let oom = comparisons.iter().find(|comparison| comparison.figure.key == "oom_events");
    let oom_reduction_percent = oom.and_then(|oom| oom.change_percent).map(|change| -change);
    CompareReport {
        test,
        runs: off.runs.len() as u32,
        seed,
        duration_ms,
        correction: Correction::Holm,
        family_size: comparisons.len() as u32,
        differs_level: DIFFERS_P,
        significant_level: SIGNIFICANT_P,
        figures_differing: comparisons.iter().filter(|comparison| comparison.differs).count() as u32,
        figures_better: count(Verdict::Better),
        figures_worse: count(Verdict::Worse),
        figures_changed: count(Verdict::Changed),
        figures_unchanged: count(Verdict::NoDifference),
        oom_reduction_significant: oom.is_some_and(|oom| oom.p_value_adjusted < SIGNIFICANT_P)
            && oom_reduction_percent.is_some_and(|reduction| reduction > 0.0),
        oom_reduction_percent,
        oom_p_value: oom.and_then(|oom| oom.p_value),
        oom_p_value_adjusted: oom.map(|oom| oom.p_value_adjusted),
        oom_informative_pairs: oom.map(|oom| oom.informative_pairs),
        oom_min_reachable_p: oom.map(|oom| oom.min_reachable_p),
        figures,
        autonomy_off: off,
        autonomy_on: on,
        comparisons,
    }
}

#[cfg(test)]
mod power;
#[cfg(test)]
mod tests;
