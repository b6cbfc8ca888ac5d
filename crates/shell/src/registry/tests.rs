//! Registry tests with a small fake context: every error class, help, JSON shape, and random input.

use super::*;
use crate::editor::{Echo, EditEvent, LineEditor};
use alloc::string::ToString;
use proptest::prelude::*;

#[derive(Default)]
struct Fake {
    calls: u32,
}

#[derive(Default)]
struct Captured(String);

impl Output for Captured {
    fn write_str(&mut self, text: &str) {
        self.0.push_str(text);
    }
}

impl Echo for Captured {
    fn echo(&mut self, bytes: &[u8]) {
        self.0.push_str(&String::from_utf8_lossy(bytes));
    }
}

fn echo(context: &mut Fake, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    context.calls += 1;
    let text = invocation.args.rest().join(" ");
    Ok(Reply::new(text.clone(), serde_json::json!({ "text": text })))
}

fn count(_: &mut Fake, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let n = invocation.args.u64("n").unwrap_or(0);
    invocation.progress("counting");
    Ok(Reply::new(n.to_string(), serde_json::json!({ "n": n })))
}

fn fail(_: &mut Fake, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    Err(ShellError::new("spawn-failed", "no memory"))
}

static ECHO: CommandSpec<Fake> = CommandSpec {
    name: "echo",
    summary: "Print the arguments",
    description: "",
    args: &[ArgSpec::rest("text", "words to print")],
    subcommands: &[],
    handler: Some(echo),
};

static THREADS: CommandSpec<Fake> = CommandSpec {
    name: "threads",
    summary: "Threads",
    description: "",
    args: &[],
    subcommands: &[
        CommandSpec {
            name: "count",
            summary: "Count",
            description: "",
            args: &[ArgSpec::flag("n", ValueKind::U64 { min: 1, max: 32 }, "how many").default("1")],
            subcommands: &[],
            handler: Some(count),
        },
        CommandSpec {
            name: "fail",
            summary: "Fail",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(fail),
        },
    ],
    handler: Some(count),
};

fn registry() -> Registry<Fake> {
    let mut registry = Registry::new();
    registry.register(&ECHO).unwrap();
    registry.register(&THREADS).unwrap();
    registry
}

fn run(registry: &Registry<Fake>, context: &mut Fake, line: &[u8]) -> (Outcome, String) {
    let mut out = Captured::default();
    let outcome = registry.execute(context, line, &mut out);
    (outcome, out.0)
}

fn json(registry: &Registry<Fake>, line: &str) -> Value {
    let (_, text) = run(registry, &mut Fake::default(), line.as_bytes());
    assert_eq!(text.matches('\n').count(), 1, "one line: {text:?}");
    serde_json::from_str(text.trim_end()).unwrap()
}

#[test]
fn a_lines_command_path_is_as_deep_as_its_words_name_commands() {
    let registry = registry();
    assert_eq!(registry.command_path(b"threads count --n 3").as_deref(), Some("threads count"));
    assert_eq!(registry.command_path(b"  threads   fail").as_deref(), Some("threads fail"));
    assert_eq!(registry.command_path(b"threads nosuch --json").as_deref(), Some("threads"));
    assert_eq!(registry.command_path(b"echo count").as_deref(), Some("echo"));
    assert_eq!(registry.command_path(b"help threads").as_deref(), Some("help"));
    assert_eq!(registry.command_path(b"nosuch"), None);
    assert_eq!(registry.command_path(b"   "), None);
    assert_eq!(registry.command_path(b"echo \"unclosed"), None);
    assert_eq!(registry.command_path(b"echo \xff"), None);
}

#[test]
fn every_error_class_has_its_code_and_the_next_line_works() {
    let registry = registry();
    let mut context = Fake::default();
    let cases: &[(&[u8], &str)] = &[
        (b"nosuch", codes::UNKNOWN_COMMAND),
        (b"threads nosuch", codes::UNKNOWN_SUBCOMMAND),
        (b"threads count --bogus", codes::UNKNOWN_FLAG),
        (b"threads count --n", codes::MISSING_VALUE),
        (b"threads count --n x", codes::INVALID_VALUE),
        (b"threads count --n 33", codes::OUT_OF_RANGE),
        (b"threads count --n 1 --n 2", codes::DUPLICATE_FLAG),
        (b"echo \"open", codes::UNTERMINATED_QUOTE),
        (b"echo a\\", codes::BAD_ESCAPE),
        (b"echo \xff\xfe", codes::INVALID_UTF8),
        (b"echo a\x01b", codes::CONTROL_BYTE),
        (b"threads fail", "spawn-failed"),
    ];
    for (line, code) in cases {
        let (outcome, text) = run(&registry, &mut context, line);
        assert_eq!(outcome, Outcome::Failed { code }, "{}", String::from_utf8_lossy(line));
        assert!(text.starts_with(&alloc::format!("error[{code}]: ")), "{text:?}");
        assert!(!text.trim_end().contains('\n'), "one line: {text:?}");
        let (outcome, text) = run(&registry, &mut context, b"echo ok");
        assert_eq!((outcome, text.as_str()), (Outcome::Ok, "ok\n"));
    }
}

#[test]
fn json_success_and_error_objects() {
    let registry = registry();
    let value = json(&registry, "threads count --n=7 --json");
    assert_eq!(value, serde_json::json!({"schema_version": 1, "command": "threads count", "ok": true, "n": 7}));
    let value = json(&registry, "threads count --n 99 --json");
    assert_eq!(value["ok"], false);
    assert_eq!(value["command"], "threads count");
    assert_eq!(value["error"]["code"], codes::OUT_OF_RANGE);
    let value = json(&registry, "nosuch --json");
    assert_eq!(value["command"], Value::Null);
    assert_eq!(value["error"]["code"], codes::UNKNOWN_COMMAND);
}

/// An output that takes JSON objects as values (as the web server does) and text as text.
#[derive(Default)]
struct Values {
    text: String,
    values: Vec<Value>,
}

impl Output for Values {
    fn write_str(&mut self, text: &str) {
        self.text.push_str(text);
    }

    fn write_json(&mut self, value: Value) {
        self.values.push(value);
    }
}

#[test]
fn an_output_taking_json_values_gets_the_objects_the_console_prints_and_the_same_text() {
    let registry = registry();
    let lines: [&[u8]; 8] = [
        b"echo hi --json",
        b"threads count --n 3 --json",
        b"threads fail --json",
        b"nosuch --json",
        b"echo \"open --json",
        b"threads --help --json",
        b"echo hi",
        b"threads fail",
    ];
    for line in lines {
        let (printed_outcome, printed) = run(&registry, &mut Fake::default(), line);
        let mut taken = Values::default();
        let taken_outcome = registry.execute(&mut Fake::default(), line, &mut taken);
        let name = String::from_utf8_lossy(line);
        assert_eq!(taken_outcome, printed_outcome, "{name}");
        let printed_values: Vec<Value> =
            printed.lines().filter_map(|text| serde_json::from_str::<Value>(text).ok()).collect();
        assert_eq!(taken.values, printed_values, "{name}");
        let wants_json = line.ends_with(b"--json");
        assert_eq!(taken.values.len(), usize::from(wants_json), "{name}");
        if !wants_json {
            assert_eq!(taken.text, printed, "{name}");
        }
    }
}

fn partial(_: &mut Fake, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    Ok(Reply::new("results", serde_json::json!({ "figure": 7 })).failing(ShellError::new("test-failed", "status FAIL")))
}

static PARTIAL: CommandSpec<Fake> =
    CommandSpec { name: "partial", summary: "", description: "", args: &[], subcommands: &[], handler: Some(partial) };

#[test]
fn a_failing_reply_keeps_its_results_and_fails_the_line() {
    let mut registry = registry();
    registry.register(&PARTIAL).unwrap();
    let (outcome, text) = run(&registry, &mut Fake::default(), b"partial");
    assert_eq!(outcome, Outcome::Failed { code: "test-failed" });
    assert_eq!(text, "results\nerror[test-failed]: status FAIL\n");
    let value = json(&registry, "partial --json");
    assert_eq!(value["ok"], false);
    assert_eq!(value["figure"], 7);
    assert_eq!(value["error"]["code"], "test-failed");
}

#[test]
fn progress_is_printed_only_for_people() {
    let registry = registry();
    let (_, text) = run(&registry, &mut Fake::default(), b"threads count --n 2");
    assert_eq!(text, "counting\n2\n");
    assert_eq!(json(&registry, "threads count --json")["n"], 1);
}

#[test]
fn help_lists_every_command_in_order() {
    let registry = registry();
    let value = json(&registry, "help --json");
    let names: Vec<&str> = value["commands"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["help", "echo", "threads"]);
    assert_eq!(value["commands"][2]["subcommands"], serde_json::json!(["count", "fail"]));
    assert_eq!(registry.names(), names);
}

#[test]
fn usage_comes_from_the_declaration() {
    let registry = registry();
    let (outcome, text) = run(&registry, &mut Fake::default(), b"threads count --help");
    assert_eq!(outcome, Outcome::Ok);
    assert!(text.starts_with("usage: threads count [--n N] [--json] [--help]"), "{text}");
    assert!(text.contains("--n     how many [integer 1..=32] (default 1)"), "{text}");
    let (_, via_help) = run(&registry, &mut Fake::default(), b"help threads count");
    assert_eq!(text, via_help);
    let (outcome, _) = run(&registry, &mut Fake::default(), b"help --help");
    assert_eq!(outcome, Outcome::Ok);
}

#[test]
fn unknown_command_suggests_a_close_name() {
    let registry = registry();
    let (_, text) = run(&registry, &mut Fake::default(), b"ehco hi");
    assert!(text.contains("did you mean 'echo'?"), "{text}");
}

#[test]
fn duplicate_registration_is_refused() {
    let mut registry = registry();
    assert!(registry.register(&ECHO).is_err());
}

#[test]
fn blank_lines_are_empty() {
    let registry = registry();
    assert_eq!(run(&registry, &mut Fake::default(), b"   \t ").0, Outcome::Empty);
}

fn garbage_line() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        6 => 0x20u8..0x7f,
        1 => 0u8..0x20,
        1 => 0x7fu8..=0xff,
    ];
    prop_oneof![
        8 => proptest::collection::vec(byte.clone(), 0..64),
        1 => proptest::collection::vec(byte, 0..8192),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn random_bytes_never_break_the_shell(lines in proptest::collection::vec(garbage_line(), 1..20)) {
        let registry = registry();
        let mut context = Fake::default();
        let mut editor = LineEditor::new(1024);
        let mut screen = Captured::default();
        let mut results = Captured::default();
        for line in &lines {
            for &byte in line.iter().chain(b"\r") {
                match editor.feed(byte, &mut screen) {
                    Some(EditEvent::Line(bytes)) => {
                        let before = results.0.len();
                        let outcome = registry.execute(&mut context, &bytes, &mut results);
                        // A failure always says why, on its own line.
                        if let Outcome::Failed { code } = outcome {
                            let printed = &results.0[before..];
                            prop_assert!(printed.starts_with(&alloc::format!("error[{code}]: ")), "{:?}", printed);
                        }
                    }
                    Some(EditEvent::Cancelled) | Some(EditEvent::TooLong { .. }) | None => {}
                }
            }
        }
        // Echo may move the cursor back (\x08) but never emits other C0 controls raw.
        prop_assert!(!screen.0.chars().any(|c| (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\x08')), "raw control byte in echo");
        // Command output quotes input through `sanitize`: no control character at all but newlines.
        prop_assert!(!results.0.chars().any(|c| c.is_control() && c != '\n'), "control character in output");
        // Whatever came before, a clean line still works.
        let mut out = Captured::default();
        editor.feed(0x15, &mut out);
        for &byte in b"echo hello\r" {
            if let Some(EditEvent::Line(bytes)) = editor.feed(byte, &mut out) {
                let mut result = Captured::default();
                prop_assert_eq!(registry.execute(&mut context, &bytes, &mut result), Outcome::Ok);
                prop_assert_eq!(result.0, "hello\n");
            }
        }
    }
}

fn restricted_registry() -> Registry<Fake> {
    let mut registry = registry();
    registry.restrict("threads fail", Capabilities::FILES).unwrap();
    registry.restrict("echo", Capabilities::ADMIN).unwrap();
    registry
}

fn run_as(registry: &Registry<Fake>, context: &mut Fake, line: &str, caller: Capabilities) -> (Outcome, String) {
    let mut out = Captured::default();
    let outcome = registry.execute_as(context, line.as_bytes(), &mut out, caller);
    (outcome, out.0)
}

#[test]
fn a_caller_without_the_capability_is_denied_before_the_handler_runs() {
    let mut registry = restricted_registry();
    registry.restrict("threads", Capabilities::ADMIN).unwrap();
    let mut context = Fake::default();
    let denied = Outcome::Failed { code: codes::PERMISSION_DENIED };
    for line in [
        "echo hi",
        "echo --bogus-flag",
        "echo --json",
        "threads fail",
        "threads fail --n 99999999999999999999",
        "threads nosuchsubcommand",
    ] {
        assert_eq!(run_as(&registry, &mut context, line, Capabilities::NONE).0, denied, "{line}");
    }
    assert_eq!(context.calls, 0, "the handler never ran");
    let (outcome, text) = run_as(&registry, &mut context, "echo hi --json", Capabilities::FILES);
    assert_eq!(outcome, denied);
    let value: Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(value["error"]["code"], "permission-denied");
    assert_eq!(value["command"], "echo");
    assert!(value["error"]["message"].as_str().unwrap().contains("needs the admin capability"), "{value}");
    // Unrestricted commands, help, and --help of a restricted one work for everybody.
    assert_eq!(run_as(&registry, &mut context, "threads count --n 3", Capabilities::ADMIN).0, Outcome::Ok);
    assert_eq!(run_as(&registry, &mut context, "echo --help", Capabilities::NONE).0, Outcome::Ok);
    assert_eq!(run_as(&registry, &mut context, "help echo", Capabilities::NONE).0, Outcome::Ok);
    // Holding the capability (or all of them, as the console does) runs the handler.
    assert_eq!(run_as(&registry, &mut context, "echo hi", Capabilities::ADMIN).0, Outcome::Ok);
    assert_eq!(run(&registry, &mut context, b"echo hi").0, Outcome::Ok);
    assert_eq!(context.calls, 2);
}

#[test]
fn restrictions_are_inherited_and_checked_when_declared() {
    let mut registry = restricted_registry();
    registry.restrict("threads", Capabilities::ADMIN).unwrap();
    assert_eq!(registry.required("threads fail"), Capabilities::FILES.union(Capabilities::ADMIN));
    assert_eq!(registry.required("threads count"), Capabilities::ADMIN);
    assert_eq!(registry.required("threadsx"), Capabilities::NONE);
    let mut context = Fake::default();
    assert_eq!(
        run_as(&registry, &mut context, "threads fail", Capabilities::ADMIN).0,
        Outcome::Failed { code: codes::PERMISSION_DENIED }
    );
    assert_eq!(registry.restrict("nope", Capabilities::ADMIN).unwrap_err().code(), codes::UNKNOWN_COMMAND);
    assert_eq!(registry.restrict("threads nope", Capabilities::ADMIN).unwrap_err().code(), codes::UNKNOWN_COMMAND);
    assert_eq!(registry.restrict("", Capabilities::ADMIN).unwrap_err().code(), codes::UNKNOWN_COMMAND);
    let declared: Vec<(&str, Capabilities)> = registry.restrictions().collect();
    assert_eq!(
        declared,
        [("threads fail", Capabilities::FILES), ("echo", Capabilities::ADMIN), ("threads", Capabilities::ADMIN)]
    );
}
