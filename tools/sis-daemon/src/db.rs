//! Run history in one SQLite file: runs, their samples and events, their reports. The schema is versioned
//! (`PRAGMA user_version`) and migrated forward at open; a run found `running` at open was interrupted by a crash
//! of the daemon and becomes `aborted`, keeping what was collected.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;

use crate::request::RunSpec;

/// Each migration takes the schema from its index to the next version.
const MIGRATIONS: [&str; 1] = ["
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        test_type TEXT NOT NULL,
        seed TEXT NOT NULL,
        duration_ms INTEGER,
        config TEXT NOT NULL,
        command TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        finished_ms INTEGER,
        status TEXT NOT NULL,
        kernel_run INTEGER,
        summary TEXT,
        report TEXT
    );
    CREATE TABLE samples (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        t_ms INTEGER NOT NULL,
        uptime_ms INTEGER NOT NULL,
        pressure_per_mille INTEGER,
        heap_used_bytes INTEGER,
        oom_events INTEGER,
        interventions INTEGER
    );
    CREATE INDEX samples_by_run ON samples(run_id, t_ms);
    CREATE TABLE events (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        seq INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX events_by_run ON events(run_id, seq);
"];

/// The schema version this daemon writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Statuses of a run.
pub mod status {
    /// The kernel runs it now.
    pub const RUNNING: &str = "running";
    /// It ended and its status counts as success.
    pub const PASSED: &str = "passed";
    /// It ended and reported a failing status.
    pub const FAILED: &str = "failed";
    /// The kernel refused or stopped it with an error.
    pub const ERROR: &str = "error";
    /// The kernel or the daemon went away before it ended; what was collected is kept.
    pub const ABORTED: &str = "aborted";
}

/// One sample of the kernel's live figures during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// Kernel time since the run started, ms.
    pub t_ms: u64,
    /// Kernel uptime, ms.
    pub uptime_ms: u64,
    /// The memory workload pool's pressure, per mille (`memctl status`), when a workload is attached.
    pub pressure_per_mille: Option<u64>,
    /// Kernel heap in use, bytes (`meminfo`).
    pub heap_used_bytes: Option<u64>,
    /// The workload's OOM events so far (`memctl status`), when a workload is attached.
    pub oom_events: Option<u64>,
    /// The meta-agent's interventions since its counters were reset (`autoctl status`).
    pub interventions: Option<u64>,
}

/// The CSV columns of [`Sample`], in order.
pub const SAMPLE_COLUMNS: [&str; 6] =
    ["t_ms", "uptime_ms", "pressure_per_mille", "heap_used_bytes", "oom_events", "interventions"];

/// One stored event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    /// The kernel's sequence number.
    pub seq: u64,
    /// Kernel uptime when published, ms.
    pub at_ms: u64,
    /// Its kind.
    pub kind: String,
    /// The whole event as the kernel sent it.
    pub event: Value,
}

/// A run as history lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    /// Its ID.
    pub test_id: i64,
    /// `memory`, ..., `compare`.
    pub test_type: String,
    /// Its seed (a decimal string: seeds use all 64 bits).
    pub seed: String,
    /// Its configured run time, ms.
    pub duration_ms: Option<u64>,
    /// Its checked configuration.
    pub config: Value,
    /// The shell line the kernel ran.
    pub command: String,
    /// When it was started, ms since the Unix epoch.
    pub timestamp_ms: i64,
    /// When it ended, ms since the Unix epoch.
    pub finished_ms: Option<i64>,
    /// See [`status`].
    pub status: String,
    /// The kernel's run number (`stress.started`), once known.
    pub kernel_run: Option<u64>,
    /// One line: the report's key figures, or why it ended without one.
    pub summary: Option<String>,
}

/// The database.
pub struct Db {
    connection: Connection,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as i64)
}

impl Db {
    /// Opens (or creates) `path`, migrates it to [`SCHEMA_VERSION`] and marks runs left `running` as aborted.
    /// Returns the database and how many runs it aborted.
    pub fn open(path: &Path) -> rusqlite::Result<(Db, usize)> {
        let connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "foreign_keys", true)?;
        let mut db = Db { connection };
        db.migrate()?;
        let aborted = db.connection.execute(
            "UPDATE runs SET status = ?1, finished_ms = ?2, summary = ?3 WHERE status = ?4",
            params![status::ABORTED, now_ms(), "the daemon stopped while the run was under way", status::RUNNING],
        )?;
        Ok((db, aborted))
    }

    fn migrate(&mut self) -> rusqlite::Result<()> {
        let version: i64 = self.connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(rusqlite::Error::InvalidParameterName(format!(
                "the database has schema version {version}, newer than this daemon's {SCHEMA_VERSION}"
            )));
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let transaction = self.connection.transaction()?;
            transaction.execute_batch(migration)?;
            transaction.pragma_update(None, "user_version", index as i64 + 1)?;
            transaction.commit()?;
        }
        Ok(())
    }

    /// The schema version in the file.
    pub fn schema_version(&self) -> rusqlite::Result<i64> {
        self.connection.pragma_query_value(None, "user_version", |row| row.get(0))
    }

    /// Records a run that starts now; returns its ID.
    pub fn insert_run(&self, spec: &RunSpec) -> rusqlite::Result<i64> {
        self.connection.execute(
            "INSERT INTO runs (test_type, seed, duration_ms, config, command, created_ms, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                spec.test_type,
                spec.seed.to_string(),
                spec.duration_ms,
                Value::Object(spec.config.clone()).to_string(),
                spec.command,
                now_ms(),
                status::RUNNING
            ],
        )?;
        Ok(self.connection.last_insert_rowid())
    }

    /// Notes the kernel's run number of run `id`.
    pub fn set_kernel_run(&self, id: i64, kernel_run: u64) -> rusqlite::Result<()> {
        self.connection.execute("UPDATE runs SET kernel_run = ?1 WHERE id = ?2", params![kernel_run, id])?;
        Ok(())
    }

    /// Stores a sample of run `id`.
    pub fn add_sample(&self, id: i64, sample: &Sample) -> rusqlite::Result<()> {
        self.connection.execute(
            "INSERT INTO samples VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                sample.t_ms,
                sample.uptime_ms,
                sample.pressure_per_mille,
                sample.heap_used_bytes,
                sample.oom_events,
                sample.interventions
            ],
        )?;
        Ok(())
    }

    /// Stores an event of run `id`.
    pub fn add_event(&self, id: i64, event: &StoredEvent) -> rusqlite::Result<()> {
        self.connection.execute(
            "INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, event.seq, event.at_ms, event.kind, event.event.to_string()],
        )?;
        Ok(())
    }

    /// Ends run `id` with `status`, a summary and the kernel's reply (if any).
    pub fn finish(&self, id: i64, status: &str, summary: &str, report: Option<&Value>) -> rusqlite::Result<()> {
        self.connection.execute(
            "UPDATE runs SET status = ?1, finished_ms = ?2, summary = ?3, report = ?4 WHERE id = ?5",
            params![status, now_ms(), summary, report.map(Value::to_string), id],
        )?;
        Ok(())
    }

    fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
        let config: String = row.get(4)?;
        Ok(RunRow {
            test_id: row.get(0)?,
            test_type: row.get(1)?,
            seed: row.get(2)?,
            duration_ms: row.get(3)?,
            config: serde_json::from_str(&config).unwrap_or(Value::Null),
            command: row.get(5)?,
            timestamp_ms: row.get(6)?,
            finished_ms: row.get(7)?,
            status: row.get(8)?,
            kernel_run: row.get(9)?,
            summary: row.get(10)?,
        })
    }

    const COLUMNS: &'static str =
        "id, test_type, seed, duration_ms, config, command, created_ms, finished_ms, status, kernel_run, summary";

    /// The last `limit` runs, newest first.
    pub fn history(&self, limit: u64) -> rusqlite::Result<Vec<RunRow>> {
        let mut statement =
            self.connection.prepare(&format!("SELECT {} FROM runs ORDER BY id DESC LIMIT ?1", Self::COLUMNS))?;
        let rows = statement.query_map(params![limit], Self::row)?;
        rows.collect()
    }

    /// Run `id`, with its report.
    pub fn run(&self, id: i64) -> rusqlite::Result<Option<(RunRow, Option<Value>)>> {
        self.connection
            .query_row(&format!("SELECT {}, report FROM runs WHERE id = ?1", Self::COLUMNS), params![id], |row| {
                let report: Option<String> = row.get(11)?;
                Ok((Self::row(row)?, report.and_then(|text| serde_json::from_str(&text).ok())))
            })
            .optional()
    }

    /// The samples of run `id`, in time order.
    pub fn samples(&self, id: i64) -> rusqlite::Result<Vec<Sample>> {
        let mut statement = self.connection.prepare(
            "SELECT t_ms, uptime_ms, pressure_per_mille, heap_used_bytes, oom_events, interventions
             FROM samples WHERE run_id = ?1 ORDER BY t_ms, rowid",
        )?;
        let rows = statement.query_map(params![id], |row| {
            Ok(Sample {
                t_ms: row.get(0)?,
                uptime_ms: row.get(1)?,
                pressure_per_mille: row.get(2)?,
                heap_used_bytes: row.get(3)?,
                oom_events: row.get(4)?,
                interventions: row.get(5)?,
            })
        })?;
        rows.collect()
    }

    /// The events of run `id`, in sequence order.
    pub fn events(&self, id: i64) -> rusqlite::Result<Vec<StoredEvent>> {
        let mut statement =
            self.connection.prepare("SELECT seq, at_ms, kind, body FROM events WHERE run_id = ?1 ORDER BY seq")?;
        let rows = statement.query_map(params![id], |row| {
            let body: String = row.get(3)?;
            Ok(StoredEvent {
                seq: row.get(0)?,
                at_ms: row.get(1)?,
                kind: row.get(2)?,
                event: serde_json::from_str(&body).unwrap_or(Value::Null),
            })
        })?;
        rows.collect()
    }
}

/// The samples as CSV: a header of [`SAMPLE_COLUMNS`], then one row per sample (empty cells for absent values).
pub fn samples_csv(samples: &[Sample]) -> String {
    let mut text = SAMPLE_COLUMNS.join(",");
    text.push('\n');
    let cell = |value: Option<u64>| value.map_or(String::new(), |value| value.to_string());
    for sample in samples {
        text.push_str(&format!(
            "{},{},{},{},{},{}\n",
            sample.t_ms,
            sample.uptime_ms,
            cell(sample.pressure_per_mille),
            cell(sample.heap_used_bytes),
            cell(sample.oom_events),
            cell(sample.interventions)
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RunSpec {
        crate::request::start(br#"{"test_type":"chaos","duration_ms":2000,"config":{"seed":18446744073709551615}}"#, 0)
            .unwrap()
    }

    fn sample(t_ms: u64) -> Sample {
        Sample {
            t_ms,
            uptime_ms: 1000 + t_ms,
            pressure_per_mille: Some(t_ms % 1000),
            heap_used_bytes: Some(4096),
            oom_events: None,
            interventions: Some(2),
        }
    }

    #[test]
    fn a_run_its_samples_events_and_report_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite");
        let id = {
            let (db, aborted) = Db::open(&path).unwrap();
            assert_eq!((aborted, db.schema_version().unwrap()), (0, SCHEMA_VERSION));
            let id = db.insert_run(&spec()).unwrap();
            db.set_kernel_run(id, 3).unwrap();
            db.add_sample(id, &sample(250)).unwrap();
            db.add_sample(id, &sample(0)).unwrap();
            let event = serde_json::json!({ "seq": 9, "at_ms": 5, "kind": "chaos.event", "index": 1 });
            db.add_event(id, &StoredEvent { seq: 9, at_ms: 5, kind: "chaos.event".into(), event }).unwrap();
            db.finish(id, status::PASSED, "1 of 1 events recovered", Some(&serde_json::json!({ "ok": true }))).unwrap();
            id
        };
        let (db, aborted) = Db::open(&path).unwrap();
        assert_eq!(aborted, 0);
        let (row, report) = db.run(id).unwrap().unwrap();
        assert_eq!(
            (row.status.as_str(), row.seed.as_str(), row.kernel_run),
            ("passed", "18446744073709551615", Some(3))
        );
        assert_eq!(report, Some(serde_json::json!({ "ok": true })));
        assert_eq!(db.samples(id).unwrap(), [sample(0), sample(250)]);
        assert_eq!(db.events(id).unwrap()[0].event["index"], 1);
        assert_eq!(db.history(20).unwrap().len(), 1);
        assert_eq!(db.run(id + 1).unwrap(), None);
    }

    #[test]
    fn a_run_left_running_is_aborted_at_the_next_open_with_what_was_collected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite");
        let id = {
            let (db, _) = Db::open(&path).unwrap();
            let id = db.insert_run(&spec()).unwrap();
            db.add_sample(id, &sample(0)).unwrap();
            id
        };
        let (db, aborted) = Db::open(&path).unwrap();
        assert_eq!(aborted, 1);
        let (row, report) = db.run(id).unwrap().unwrap();
        assert_eq!((row.status.as_str(), report), ("aborted", None));
        assert!(row.finished_ms.is_some());
        assert_eq!(db.samples(id).unwrap().len(), 1);
    }

    #[test]
    fn a_newer_schema_is_refused_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite");
        Connection::open(&path).unwrap().pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        assert!(Db::open(&path).is_err());
    }

    #[test]
    fn csv_has_the_columns_and_one_row_per_sample() {
        let text = samples_csv(&[sample(0), sample(250)]);
        assert_eq!(
            text,
            "t_ms,uptime_ms,pressure_per_mille,heap_used_bytes,oom_events,interventions\n\
             0,1000,0,4096,,2\n250,1250,250,4096,,2\n"
        );
    }
}
