//! `otelctl stop` as the export tests use it (included by otel_http.rs and otel_decisions.rs only).

use std::time::{Duration, Instant};

use serde_json::Value;
use sis_testing::Sis;

use crate::common::ok;

/// `otelctl stop SIGNAL`, then waits until the export has stopped (its attempt in progress, if any, ended); its
/// final status.
pub fn stop_export(sis: &mut Sis, signal: &str) -> Value {
    let stopping = ok(sis, &format!("otelctl stop {signal}"));
    assert_eq!(stopping["state"], "stopping", "{stopping}");
    let start = Instant::now();
    loop {
        let status = ok(sis, "otelctl status");
        if status["exports"][signal].is_null() {
            let stopped = status["stopped"][signal].clone();
            assert_eq!((stopped["state"].as_str(), stopped["url"].clone()), (Some("stopped"), stopping["url"].clone()));
            return stopped;
        }
        assert_eq!(status["exports"][signal]["state"], "stopping", "{status}");
        assert!(start.elapsed() < Duration::from_secs(70), "{signal} never stopped: {status}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
