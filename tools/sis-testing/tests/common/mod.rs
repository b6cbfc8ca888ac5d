//! Helpers shared by the device tests: a reply that must succeed, one that must fail, a number by JSON pointer.

use serde_json::Value;
use sis_testing::Sis;

/// The JSON reply of `line`, which must succeed.
pub fn ok(sis: &mut Sis, line: &str) -> Value {
    let reply = sis.run_json(line).unwrap();
    assert_eq!(reply["ok"], true, "{line}: {reply}");
    reply
}

/// The error code of `line`, which must fail.
pub fn error_code(sis: &mut Sis, line: &str) -> String {
    let reply = sis.run_json(line).unwrap();
    assert_eq!(reply["ok"], false, "{line}: {reply}");
    reply["error"]["code"].as_str().unwrap_or_else(|| panic!("{line}: no error code in {reply}")).to_string()
}

/// The unsigned integer at `pointer` in `value`.
pub fn number(value: &Value, pointer: &str) -> u64 {
    value.pointer(pointer).and_then(Value::as_u64).unwrap_or_else(|| panic!("{pointer} missing in {value}"))
}
