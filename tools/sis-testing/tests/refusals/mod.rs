//! Checking a run of refused commands (included by aiops.rs and safety.rs only).

use serde_json::Value;

/// Each reply failed with its expected code and, where one is given, exactly its expected message.
pub fn assert_refusals(replies: &[Value], expected: &[(&str, Option<&str>)]) {
    for (reply, (code, message)) in replies.iter().zip(expected) {
        assert_eq!(reply["ok"], false, "{reply}");
        assert_eq!(reply["error"]["code"], *code, "{reply}");
        if let Some(message) = message {
            assert_eq!(reply["error"]["message"], *message, "{reply}");
        }
    }
}
