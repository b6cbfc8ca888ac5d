//! The run under way, fed by the kernel's frames: which events and samples belong to it, its progress, and its
//! latest figures. Pure: the daemon stores what [`Current::take`] returns.

use serde::Serialize;
use serde_json::Value;

use crate::db::{Sample, StoredEvent};
use crate::kernel::Frame;

/// What a frame adds to the run.
#[derive(Debug, Clone, PartialEq)]
pub enum Taken {
    /// The kernel's `stress.started` for this run: its run number (the event is stored too).
    Started(u64, StoredEvent),
    /// An event of the run.
    Event(StoredEvent),
    /// A sample of the run.
    Sample(Sample),
}

/// The run under way.
#[derive(Debug, Clone, Serialize)]
pub struct Current {
    /// Its ID in the history.
    pub id: i64,
    /// `memory`, ..., `compare`.
    pub test_type: String,
    /// The kernel's run number, from its `stress.started`.
    pub kernel_run: Option<u64>,
    /// Kernel uptime at `stress.started`, ms.
    pub started_uptime_ms: Option<u64>,
    /// The last `stress.progress` percent.
    pub progress_percent: Option<u64>,
    /// Kernel time since the run started, ms, as of the last frame.
    pub elapsed_ms: u64,
    /// Events stored for the run.
    pub events_so_far: u64,
    /// The last metrics the kernel pushed.
    pub current_metrics: Option<Value>,
    /// The run's `stress.finished`, once it came.
    pub finished: Option<Value>,
}

fn at(value: &Value, pointer: &str) -> Option<u64> {
    value.pointer(pointer).and_then(Value::as_u64)
}

/// The sample in a metrics push at `now_ns`, `started_uptime_ms` being the run's start.
pub fn sample(now_ns: u64, metrics: &Value, started_uptime_ms: u64) -> Sample {
    let uptime_ms = now_ns / 1_000_000;
    let attached = metrics.pointer("/workload/port/attached").and_then(Value::as_bool) == Some(true);
    Sample {
        t_ms: uptime_ms.saturating_sub(started_uptime_ms),
        uptime_ms,
        pressure_per_mille: at(metrics, "/workload/port/pressure_per_mille").filter(|_| attached),
        heap_used_bytes: at(metrics, "/memory/heap_used_bytes"),
        oom_events: at(metrics, "/workload/port/oom_events").filter(|_| attached),
        interventions: at(metrics, "/autonomy/metrics/total_interventions"),
    }
}

impl Current {
    /// Run `id` of `test_type` starts (nothing heard from the kernel yet).
    pub fn new(id: i64, test_type: &str) -> Self {
        Current {
            id,
            test_type: test_type.to_string(),
            kernel_run: None,
            started_uptime_ms: None,
            progress_percent: None,
            elapsed_ms: 0,
            events_so_far: 0,
            current_metrics: None,
            finished: None,
        }
    }

    /// What `frame` adds to the run. The first `stress.started` of the run's test makes the kernel's run number
    /// this run's; then its events (those carrying its number, interventions and missed-event notices) and the
    /// samples pushed after it belong to it. Frames before that belong to nothing.
    pub fn take(&mut self, frame: &Frame) -> Option<Taken> {
        match frame {
            Frame::Metrics { now_ns, metrics } => {
                self.current_metrics = Some(metrics.clone());
                let started = self.started_uptime_ms?;
                if self.finished.is_some() {
                    return None;
                }
                let sample = sample(*now_ns, metrics, started);
                self.elapsed_ms = self.elapsed_ms.max(sample.t_ms);
                Some(Taken::Sample(sample))
            }
            Frame::Event(event) => {
                let kind = event["kind"].as_str().unwrap_or_default().to_string();
                let stored = StoredEvent {
                    seq: at(event, "/seq").unwrap_or(0),
                    at_ms: at(event, "/at_ms").unwrap_or(0),
                    kind: kind.clone(),
                    event: event.clone(),
                };
                match self.kernel_run {
                    None if kind == "stress.started" && event["test"] == self.test_type.as_str() => {
                        let run = at(event, "/run")?;
                        self.kernel_run = Some(run);
                        self.started_uptime_ms = Some(stored.at_ms);
                        self.events_so_far += 1;
                        Some(Taken::Started(run, stored))
                    }
                    Some(run) if self.finished.is_none() => {
                        let ours = at(event, "/run") == Some(run)
                            || kind == "autonomy.intervention"
                            || kind == "events.missed";
                        if !ours {
                            return None;
                        }
                        if let Some(started) = self.started_uptime_ms {
                            self.elapsed_ms = self.elapsed_ms.max(stored.at_ms.saturating_sub(started));
                        }
                        match kind.as_str() {
                            "stress.progress" => {
                                if let Some(percent) = at(event, "/percent") {
                                    self.progress_percent = Some(percent);
                                }
                            }
                            "stress.finished" => self.finished = Some(event.clone()),
                            _ => {}
                        }
                        self.events_so_far += 1;
                        Some(Taken::Event(stored))
                    }
                    _ => None,
                }
            }
            Frame::Closed(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn metrics(pressure: u64, attached: bool) -> Value {
        json!({
            "memory": { "heap_used_bytes": 1000 },
            "workload": { "port": { "attached": attached, "pressure_per_mille": pressure, "oom_events": 3 } },
            "autonomy": { "metrics": { "total_interventions": 7 } }
        })
    }

    #[test]
    fn frames_belong_to_the_run_from_its_started_event_to_its_finished_event() {
        let mut current = Current::new(4, "memory");
        // Before the kernel announced the run: nothing is the run's.
        assert_eq!(current.take(&Frame::Metrics { now_ns: 900_000_000, metrics: metrics(10, true) }), None);
        let other = json!({ "seq": 1, "at_ms": 950, "kind": "stress.started", "run": 2, "test": "chaos" });
        assert_eq!(current.take(&Frame::Event(other)), None);
        let started = json!({ "seq": 2, "at_ms": 1000, "kind": "stress.started", "run": 3, "test": "memory" });
        assert!(matches!(current.take(&Frame::Event(started)), Some(Taken::Started(3, _))));
        let taken = current.take(&Frame::Metrics { now_ns: 1_250_000_000, metrics: metrics(400, true) });
        assert_eq!(
            taken,
            Some(Taken::Sample(Sample {
                t_ms: 250,
                uptime_ms: 1250,
                pressure_per_mille: Some(400),
                heap_used_bytes: Some(1000),
                oom_events: Some(3),
                interventions: Some(7)
            }))
        );
        let progress = json!({ "seq": 3, "at_ms": 1500, "kind": "stress.progress", "run": 3, "percent": 50 });
        assert!(matches!(current.take(&Frame::Event(progress)), Some(Taken::Event(_))));
        assert_eq!((current.progress_percent, current.elapsed_ms), (Some(50), 500));
        let foreign = json!({ "seq": 4, "at_ms": 1600, "kind": "stress.progress", "run": 9, "percent": 90 });
        assert_eq!(current.take(&Frame::Event(foreign)), None);
        let intervention = json!({ "seq": 5, "at_ms": 1700, "kind": "autonomy.intervention", "decision": 1 });
        assert!(matches!(current.take(&Frame::Event(intervention)), Some(Taken::Event(_))));
        let finished = json!({ "seq": 6, "at_ms": 2000, "kind": "stress.finished", "run": 3, "status": "passed" });
        assert!(matches!(current.take(&Frame::Event(finished)), Some(Taken::Event(_))));
        assert_eq!((current.events_so_far, current.elapsed_ms), (4, 1000));
        // After the end: no more samples or events.
        assert_eq!(current.take(&Frame::Metrics { now_ns: 2_250_000_000, metrics: metrics(0, false) }), None);
        let late = json!({ "seq": 7, "at_ms": 2100, "kind": "autonomy.intervention", "decision": 2 });
        assert_eq!(current.take(&Frame::Event(late)), None);
    }

    #[test]
    fn a_detached_pool_has_no_pressure() {
        let sample = sample(2_000_000_000, &metrics(500, false), 1500);
        assert_eq!((sample.t_ms, sample.pressure_per_mille, sample.oom_events), (500, None, None));
        assert_eq!(sample.heap_used_bytes, Some(1000));
    }
}
