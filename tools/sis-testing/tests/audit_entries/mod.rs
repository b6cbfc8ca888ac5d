//! Reading governance audit entries (`llmctl audit --json`; included by aiops.rs and agent_models.rs only).

use serde_json::Value;

/// An entry's model as `name@version` (`-` for none) and its outcome (`ok` or the error code).
pub fn model_and_outcome(entry: &Value) -> (String, String) {
    let model = match &entry["model"] {
        Value::Null => String::from("-"),
        model => format!("{}@{}", model["name"].as_str().unwrap(), model["version"].as_str().unwrap()),
    };
    let outcome = match entry["outcome"]["status"].as_str() {
        Some("ok") => String::from("ok"),
        _ => entry["outcome"]["code"].as_str().unwrap().to_string(),
    };
    (model, outcome)
}
