//! The daemon's state: the history, the run under way, the kernel it owns, and the live stream to browsers.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use crate::db::{self, status, Db};
use crate::error::ApiError;
use crate::kernel::{Frame, Kernel};
use crate::live::{Current, Taken};
use crate::request::RunSpec;

/// How long after the kernel's reply the daemon waits for the run's `stress.finished` event.
const FINISHED_GRACE: Duration = Duration::from_secs(3);
/// Time a command may take beyond its run time before the daemon gives up on it.
const COMMAND_SLACK: Duration = Duration::from_secs(300);

/// One message of the live stream: an SSE event name and its JSON data.
#[derive(Debug, Clone)]
pub struct LiveMessage {
    /// `sample`, `event`, `run` or `kernel`.
    pub name: &'static str,
    /// Its data.
    pub data: Value,
}

/// The daemon.
pub struct Daemon {
    /// Run history.
    db: Mutex<Db>,
    /// The run under way.
    current: Mutex<Option<Current>>,
    /// The live stream (samples, events, run changes) to every browser.
    pub live: broadcast::Sender<LiveMessage>,
    kernel: tokio::sync::Mutex<Option<Arc<Kernel>>>,
    kernel_path: Option<PathBuf>,
    /// Where the history lives.
    pub data_dir: PathBuf,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Daemon {
    /// A daemon over `db`, booting `kernel_path` (or the workspace's build) when a run needs it.
    pub fn new(db: Db, kernel_path: Option<PathBuf>, data_dir: PathBuf) -> Arc<Daemon> {
        let (live, _) = broadcast::channel(1024);
        Arc::new(Daemon {
            db: Mutex::new(db),
            current: Mutex::new(None),
            live,
            kernel: tokio::sync::Mutex::new(None),
            kernel_path,
            data_dir,
        })
    }

    /// The kernel, booted now if none runs (a QEMU that exited is replaced).
    pub async fn kernel(self: &Arc<Self>) -> Result<Arc<Kernel>, ApiError> {
        let mut guard = self.kernel.lock().await;
        if let Some(kernel) = guard.as_ref().filter(|kernel| kernel.running()) {
            return Ok(kernel.clone());
        }
        let path = self.kernel_path.clone();
        let kernel = tokio::task::spawn_blocking(move || Kernel::boot(path))
            .await
            .map_err(|error| ApiError::new(503, "kernel-down", error.to_string()))?
            .map_err(|error| ApiError::new(503, "kernel-down", error))?;
        let kernel = Arc::new(kernel);
        let (frames, mut received) = mpsc::channel(1024);
        let follower = kernel.clone();
        tokio::spawn(async move { follower.follow(frames).await });
        let daemon = self.clone();
        tokio::spawn(async move {
            while let Some(frame) = received.recv().await {
                daemon.on_frame(&frame);
            }
        });
        self.publish("kernel", json!({ "running": true, "address": kernel.address.to_string() }));
        *guard = Some(kernel.clone());
        Ok(kernel)
    }

    /// The kernel if one was booted (running or not).
    pub async fn kernel_if_booted(&self) -> Option<Arc<Kernel>> {
        self.kernel.lock().await.clone()
    }

    fn publish(&self, name: &'static str, data: Value) {
        let _ = self.live.send(LiveMessage { name, data });
    }

    /// Takes a frame from the kernel: stores what belongs to the run under way and relays it to browsers.
    fn on_frame(&self, frame: &Frame) {
        let (run_id, taken) = {
            let mut current = lock(&self.current);
            match current.as_mut() {
                Some(current) => (Some(current.id), current.take(frame)),
                None => (None, None),
            }
        };
        if let (Some(id), Some(taken)) = (run_id, &taken) {
            let db = lock(&self.db);
            let stored = match taken {
                Taken::Started(run, event) => db.set_kernel_run(id, *run).and_then(|()| db.add_event(id, event)),
                Taken::Event(event) => db.add_event(id, event),
                Taken::Sample(sample) => db.add_sample(id, sample),
            };
            if let Err(error) = stored {
                eprintln!("sisd: run {id}: not stored: {error}");
            }
        }
        match frame {
            Frame::Metrics { now_ns, metrics } => {
                let sample = match &taken {
                    Some(Taken::Sample(sample)) => *sample,
                    _ => crate::live::sample(*now_ns, metrics, 0),
                };
                let run = if matches!(taken, Some(Taken::Sample(_))) { run_id } else { None };
                self.publish("sample", json!({ "run_id": run, "sample": sample, "metrics": metrics }));
            }
            Frame::Event(event) => {
                let run = if taken.is_some() { run_id } else { None };
                self.publish("event", json!({ "run_id": run, "event": event }));
            }
            Frame::Closed(reason) => self.publish("kernel", json!({ "running": false, "reason": reason })),
        }
    }

    /// Starts `spec` in the background; refused while another run is under way.
    pub async fn start(self: &Arc<Self>, spec: RunSpec) -> Result<Value, ApiError> {
        if let Some(current) = lock(&self.current).as_ref() {
            return Err(ApiError::new(
                409,
                "busy",
                format!("run {} ({}) is under way; one run at a time", current.id, current.test_type),
            ));
        }
        let kernel = self.kernel().await?;
        let id = {
            let mut current = lock(&self.current);
            if let Some(current) = current.as_ref() {
                return Err(ApiError::new(409, "busy", format!("run {} started meanwhile", current.id)));
            }
            let id = lock(&self.db).insert_run(&spec).map_err(ApiError::database)?;
            *current = Some(Current::new(id, &spec.test_type));
            id
        };
        self.publish("run", json!({ "test_id": id, "status": status::RUNNING, "test_type": spec.test_type }));
        let daemon = self.clone();
        let command = spec.command.clone();
        let timeout = Duration::from_millis(spec.duration_ms.unwrap_or(0)).saturating_mul(2) + COMMAND_SLACK;
        tokio::spawn(async move {
            let reply = kernel.command(&command, timeout).await;
            daemon.finish(id, &kernel, reply).await;
        });
        Ok(json!({ "test_id": id, "status": status::RUNNING, "seed": spec.seed.to_string(), "command": spec.command }))
    }

    async fn finish(&self, id: i64, kernel: &Kernel, reply: Result<Value, crate::kernel::LinkError>) {
        if reply.is_ok() {
            // The kernel publishes stress.finished before it replies; the WebSocket may bring it a moment later.
            let deadline = tokio::time::Instant::now() + FINISHED_GRACE;
            while tokio::time::Instant::now() < deadline
                && lock(&self.current).as_ref().is_some_and(|current| current.finished.is_none())
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let (status, summary, report) = match &reply {
            Ok(value) => {
                let code = value.pointer("/error/code").and_then(Value::as_str);
                let status = match (value["ok"].as_bool(), code) {
                    (Some(true), _) => status::PASSED,
                    (_, Some("stress-failed")) => status::FAILED,
                    _ => status::ERROR,
                };
                (status, summary(value), Some(value))
            }
            Err(error) if !kernel.running() => {
                (status::ABORTED, format!("QEMU exited during the run ({})", error.0), None)
            }
            Err(error) => (status::ABORTED, error.0.clone(), None),
        };
        if let Err(error) = lock(&self.db).finish(id, status, &summary, report) {
            eprintln!("sisd: run {id}: end not stored: {error}");
        }
        *lock(&self.current) = None;
        self.publish("run", json!({ "test_id": id, "status": status, "summary": summary }));
    }

    /// `GET /api/stress/status/{id}`.
    pub fn status(&self, id: i64) -> Result<Value, ApiError> {
        if let Some(current) = lock(&self.current).as_ref().filter(|current| current.id == id) {
            return Ok(json!({
                "test_id": id,
                "test_type": current.test_type,
                "status": status::RUNNING,
                "progress_percent": current.progress_percent,
                "elapsed_ms": current.elapsed_ms,
                "events_so_far": current.events_so_far,
                "current_metrics": current.current_metrics,
            }));
        }
        let db = lock(&self.db);
        let (row, _) = db.run(id).map_err(ApiError::database)?.ok_or_else(|| ApiError::unknown_run(&id.to_string()))?;
        let events = db.events(id).map_err(ApiError::database)?;
        let last = |kind: &str| events.iter().rev().find(|event| event.kind == kind).map(|event| event.event.clone());
        Ok(json!({
            "test_id": id,
            "test_type": row.test_type,
            "status": row.status,
            "progress_percent": last("stress.progress").and_then(|event| event["percent"].as_u64()),
            "elapsed_ms": last("stress.finished").and_then(|event| event["elapsed_ms"].as_u64()),
            "events_so_far": events.len(),
            "current_metrics": Value::Null,
            "summary": row.summary,
        }))
    }

    /// `GET /api/stress/{id}` and its JSON export: the run, its report, samples and events.
    pub fn full(&self, id: i64) -> Result<Value, ApiError> {
        let db = lock(&self.db);
        let (row, report) =
            db.run(id).map_err(ApiError::database)?.ok_or_else(|| ApiError::unknown_run(&id.to_string()))?;
        let samples = db.samples(id).map_err(ApiError::database)?;
        let events = db.events(id).map_err(ApiError::database)?;
        Ok(json!({ "run": row, "report": report, "samples": samples, "events": events }))
    }

    /// `GET /api/stress/history`: the last `limit` runs, newest first.
    pub fn history(&self, limit: u64) -> Result<Value, ApiError> {
        let runs = lock(&self.db).history(limit).map_err(ApiError::database)?;
        Ok(json!({ "runs": runs }))
    }

    /// The history's schema version and the run under way.
    pub fn state(&self) -> Result<(i64, Option<i64>), ApiError> {
        let schema = lock(&self.db).schema_version().map_err(ApiError::database)?;
        Ok((schema, lock(&self.current).as_ref().map(|current| current.id)))
    }

    /// The CSV export of run `id`.
    pub fn csv(&self, id: i64) -> Result<String, ApiError> {
        let db = lock(&self.db);
        db.run(id).map_err(ApiError::database)?.ok_or_else(|| ApiError::unknown_run(&id.to_string()))?;
        Ok(db::samples_csv(&db.samples(id).map_err(ApiError::database)?))
    }
}

/// One line from the kernel's reply: the test's status and the message of a failure.
fn summary(reply: &Value) -> String {
    let status = reply
        .as_object()
        .and_then(|object| object.values().find_map(|value| value.get("status").and_then(Value::as_str)))
        .unwrap_or(if reply["ok"] == true { "ok" } else { "not ok" });
    match reply.pointer("/error/message").and_then(Value::as_str) {
        Some(message) => format!("{status}: {message}"),
        None => status.to_string(),
    }
}
