//! The seed's `validate_stress_results.py` rules, applied to the sections a report has.

use serde_json::Value;

/// Thresholds, with the seed script's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Most OOM events allowed in `memory`.
    pub max_oom_events: u64,
    /// Fewest autonomy interventions required in `compare.autonomy_on`.
    pub min_autonomy_interventions: u64,
    /// Largest `percentiles.p99`, in milliseconds.
    pub max_p99_latency_ms: f64,
    /// Smallest reward improvement from the first to the last learning episode, percent.
    pub min_learning_improvement_pct: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_oom_events: 10,
            min_autonomy_interventions: 5,
            max_p99_latency_ms: 5.0,
            min_learning_improvement_pct: 15.0,
        }
    }
}

/// What validation found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// Sections checked, by name.
    pub checked: Vec<&'static str>,
    /// One message per failed rule.
    pub failures: Vec<String>,
    /// Figures printed beside the verdict: the learning section's held-out means, baselines included.
    pub notes: Vec<String>,
}

impl Verdict {
    /// Whether every rule held and at least one section was checked.
    pub fn passed(&self) -> bool {
        self.failures.is_empty() && !self.checked.is_empty()
    }
}

fn number(report: &Value, path: &[&str]) -> Result<f64, String> {
    let mut value = report;
    for key in path {
        value = value.get(*key).ok_or_else(|| format!("{} missing", path.join(".")))?;
    }
    value.as_f64().ok_or_else(|| format!("{} is not a number", path.join(".")))
}

/// Validates a report's text.
pub fn validate(text: &str, thresholds: &Thresholds) -> Verdict {
    let mut verdict = Verdict::default();
    let report: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(error) => {
            verdict.failures.push(format!("not valid JSON: {error}"));
            return verdict;
        }
    };
    if !report.is_object() {
        verdict.failures.push("the report is not a JSON object".into());
        return verdict;
    }
    if report.get("memory").is_some() {
        verdict.checked.push("memory");
        match number(&report, &["memory", "oom_events"]) {
            Ok(events) if events > thresholds.max_oom_events as f64 => {
                verdict.failures.push(format!("Too many OOM events: {events} > {}", thresholds.max_oom_events))
            }
            Ok(_) => {}
            Err(error) => verdict.failures.push(error),
        }
    }
    if report.get("compare").is_some() {
        verdict.checked.push("compare");
        match number(&report, &["compare", "autonomy_on", "interventions", "total"]) {
            Ok(total) if total < thresholds.min_autonomy_interventions as f64 => verdict
                .failures
                .push(format!("Too few autonomy interventions: {total} < {}", thresholds.min_autonomy_interventions)),
            Ok(_) => {}
            Err(error) => verdict.failures.push(error),
        }
    }
    if report.get("percentiles").is_some() {
        verdict.checked.push("percentiles");
        match number(&report, &["percentiles", "p99"]) {
            Ok(p99_ns) if p99_ns / 1e6 > thresholds.max_p99_latency_ms => verdict.failures.push(format!(
                "p99 latency too high: {:.2}ms > {}ms",
                p99_ns / 1e6,
                thresholds.max_p99_latency_ms
            )),
            Ok(_) => {}
            Err(error) => verdict.failures.push(error),
        }
    }
    if report.get("learning").is_some() {
        verdict.checked.push("learning");
        let episodes = report["learning"].get("episodes").and_then(Value::as_array);
        match episodes {
            Some(episodes) if !episodes.is_empty() => {
                let reward = |episode: &Value| episode.get("reward").and_then(Value::as_f64);
                match (reward(&episodes[0]), reward(&episodes[episodes.len() - 1])) {
                    (Some(first), Some(last)) if first > 0.0 => {
                        let improvement = (last - first) / first * 100.0;
                        if improvement < thresholds.min_learning_improvement_pct {
                            verdict.failures.push(format!(
                                "Insufficient learning improvement: {improvement:.1}% < {}%",
                                thresholds.min_learning_improvement_pct
                            ));
                        }
                    }
                    (Some(first), Some(_)) => verdict
                        .failures
                        .push(format!("learning.episodes[0].reward is {first}, not positive: improvement undefined")),
                    _ => verdict.failures.push("learning.episodes[].reward missing".into()),
                }
            }
            _ => verdict.failures.push("learning.episodes missing or empty".into()),
        }
        // SIS's own rule beside the seed's: the learned policy beats the best baseline on held-out seeds.
        if let Some(held_out) = report["learning"].get("held_out") {
            verdict
                .notes
                .push(format!("learning: learned policy on held-out seeds: mean {}", held_out["learned_mean"]));
            for baseline in held_out.get("baselines").and_then(Value::as_array).into_iter().flatten() {
                let name = baseline["name"].as_str().unwrap_or("?");
                verdict.notes.push(format!("learning: baseline {name}: mean {}", baseline["mean"]));
            }
            match held_out.get("beats_best_baseline").and_then(Value::as_bool) {
                Some(true) => {}
                Some(false) => verdict.failures.push(format!(
                    "Learned policy does not beat the best baseline ({}) on held-out seeds: {} against {}, Wilcoxon p {}",
                    held_out["best_baseline"].as_str().unwrap_or("?"),
                    held_out["learned_mean"],
                    held_out["best_baseline_mean"],
                    held_out["test"]["wilcoxon"]["p_value"]
                )),
                None => verdict.failures.push("learning.held_out.beats_best_baseline missing".into()),
            }
        }
    }
    if verdict.checked.is_empty() && verdict.failures.is_empty() {
        verdict.failures.push("no section to validate (memory, compare, percentiles or learning)".into());
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Verdict {
        validate(text, &Thresholds::default())
    }

    const GOOD: &str = r#"{"memory":{"oom_events":2},"percentiles":{"p99":1200000}}"#;

    #[test]
    fn a_good_file_passes() {
        let verdict = check(GOOD);
        assert!(verdict.passed(), "{verdict:?}");
        assert_eq!(verdict.checked, ["memory", "percentiles"]);
    }

    #[test]
    fn each_rule_fails_with_its_message() {
        assert_eq!(check(r#"{"memory":{"oom_events":11}}"#).failures, ["Too many OOM events: 11 > 10"]);
        assert_eq!(check(r#"{"percentiles":{"p99":6000000}}"#).failures, ["p99 latency too high: 6.00ms > 5ms"]);
        assert_eq!(
            check(r#"{"compare":{"autonomy_on":{"interventions":{"total":3}}}}"#).failures,
            ["Too few autonomy interventions: 3 < 5"]
        );
        assert_eq!(
            check(r#"{"learning":{"episodes":[{"reward":100},{"reward":110}]}}"#).failures,
            ["Insufficient learning improvement: 10.0% < 15%"]
        );
        assert!(check(r#"{"learning":{"episodes":[{"reward":100},{"reward":120}]}}"#).passed());
        // The seed divides by the first episode's reward: a negative one cannot show improvement.
        assert_eq!(
            check(r#"{"learning":{"episodes":[{"reward":-100},{"reward":120}]}}"#).failures,
            ["learning.episodes[0].reward is -100, not positive: improvement undefined"]
        );
        let held_out = |beats: bool| {
            format!(
                r#"{{"learning":{{"episodes":[{{"reward":100}},{{"reward":120}}],"held_out":{{"beats_best_baseline":{beats},"best_baseline":"heuristic","learned_mean":2900.5,"best_baseline_mean":2300.0,"test":{{"wilcoxon":{{"p_value":0.02}}}}}}}}}}"#
            )
        };
        assert!(check(&held_out(true)).passed());
        assert_eq!(check(&held_out(true)).notes, ["learning: learned policy on held-out seeds: mean 2900.5"]);
        let with_baselines = r#"{"learning":{"episodes":[{"reward":100},{"reward":120}],"held_out":{"beats_best_baseline":true,"learned_mean":3.5,"baselines":[{"name":"nothing","mean":1.0},{"name":"random","mean":-2.5}]}}}"#;
        assert_eq!(
            check(with_baselines).notes,
            [
                "learning: learned policy on held-out seeds: mean 3.5",
                "learning: baseline nothing: mean 1.0",
                "learning: baseline random: mean -2.5"
            ]
        );
        assert_eq!(
            check(&held_out(false)).failures,
            ["Learned policy does not beat the best baseline (heuristic) on held-out seeds: 2900.5 against 2300.0, Wilcoxon p 0.02"]
        );
        assert_eq!(
            check(r#"{"learning":{"episodes":[{"reward":100},{"reward":120}],"held_out":{}}}"#).failures,
            ["learning.held_out.beats_best_baseline missing"]
        );
    }

    #[test]
    fn missing_fields_and_bad_json_fail_clearly() {
        assert_eq!(check(r#"{"memory":{"peak":3}}"#).failures, ["memory.oom_events missing"]);
        assert_eq!(check(r#"{"percentiles":{"p99":"fast"}}"#).failures, ["percentiles.p99 is not a number"]);
        assert!(check("{not json").failures[0].starts_with("not valid JSON: "));
        assert_eq!(check("[1,2]").failures, ["the report is not a JSON object"]);
        assert_eq!(check("{}").failures, ["no section to validate (memory, compare, percentiles or learning)"]);
    }

    #[test]
    fn thresholds_are_honoured() {
        let loose = Thresholds { max_oom_events: 20, ..Thresholds::default() };
        assert!(validate(r#"{"memory":{"oom_events":11}}"#, &loose).passed());
    }
}
