//! Typed argument parser and registry: arbitrary lines through `Registry::execute`.
//!
//! The test registry declares every value kind (ranged `U64` and `I64`, text,
//! choice, switch, custom, a variadic rest) and subcommands, with handlers that
//! check the values they receive lie in the declared ranges. Invariants: a
//! failure carries a published code; a line with a `--json` flag prints
//! exactly one line that the host's reply reader (`sis_testing::parse_json_reply`)
//! accepts, whose `ok` and `error.code` match the outcome, however the handler
//! filled its fields; progress text never leaks into JSON; a line without a
//! `--json` word prints no JSON.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use sis_shell::{
    codes, tokenize, validate_line, ArgSpec, ArgValue, CommandSpec, Invocation, Outcome, Output, Registry, Reply,
    ShellError, ValueKind,
};

/// Codes the test handlers return, beside the shell's own.
const HANDLER_ERROR: &str = "handler-error";
const HANDLER_FAILURE: &str = "handler-failure";
const PROGRESS: &str = "progress line for people";

const KNOWN_CODES: &[&str] = &[
    codes::UNKNOWN_COMMAND,
    codes::UNKNOWN_SUBCOMMAND,
    codes::UNKNOWN_FLAG,
    codes::MISSING_VALUE,
    codes::INVALID_VALUE,
    codes::OUT_OF_RANGE,
    codes::MISSING_ARGUMENT,
    codes::UNEXPECTED_ARGUMENT,
    codes::DUPLICATE_FLAG,
    codes::UNTERMINATED_QUOTE,
    codes::BAD_ESCAPE,
    codes::INVALID_UTF8,
    codes::CONTROL_BYTE,
    HANDLER_ERROR,
    HANDLER_FAILURE,
];

#[derive(Default)]
struct Context {
    calls: u64,
}

#[derive(Default)]
struct Captured(String);

impl Output for Captured {
    fn write_str(&mut self, text: &str) {
        self.0.push_str(text);
    }
}

fn size(text: &str) -> Result<ArgValue, String> {
    match text {
        "max" => Ok(ArgValue::U64(4096)),
        _ => match text.parse::<u64>() {
            Ok(value) if (1..=4096).contains(&value) => Ok(ArgValue::U64(value)),
            _ => Err(String::from("expected 1..=4096 or max")),
        },
    }
}

const RUN_ARGS: &[ArgSpec] = &[
    ArgSpec::flag("duration", ValueKind::U64 { min: 1, max: 60_000 }, "run time, ms").default("100"),
    ArgSpec::flag("seed", ValueKind::U64 { min: 0, max: u64::MAX }, "seed"),
    ArgSpec::flag("offset", ValueKind::I64 { min: -1000, max: 1000 }, "offset"),
    ArgSpec::flag("wide", ValueKind::I64 { min: i64::MIN, max: i64::MAX }, "any signed value"),
    ArgSpec::flag("mode", ValueKind::Choice(&["fast", "slow"]), "mode"),
    ArgSpec::flag("label", ValueKind::Str, "label"),
    ArgSpec::flag("verbose", ValueKind::Switch, "verbose"),
    ArgSpec::flag("size", ValueKind::Custom { value_name: "N|max", parse: size }, "size"),
    ArgSpec::positional("target", ValueKind::Str, "target").required(),
    ArgSpec::rest("extra", "more words"),
];

fn run(context: &mut Context, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    context.calls += 1;
    let args = &invocation.args;
    let duration = args.u64("duration").expect("--duration has a default");
    assert!((1..=60_000).contains(&duration), "duration {duration} outside its range");
    if let Some(offset) = args.i64("offset") {
        assert!((-1000..=1000).contains(&offset), "offset {offset} outside its range");
    }
    if let Some(mode) = args.str("mode") {
        assert!(mode == "fast" || mode == "slow", "mode {mode:?}");
    }
    if let Some(size) = args.u64("size") {
        assert!((1..=4096).contains(&size), "size {size}");
    }
    let target = args.str("target").expect("TARGET is required").to_owned();
    let fields = json!({
        "target": target,
        "duration_ms": duration,
        "seed": args.u64("seed"),
        "wide": args.i64("wide"),
        "label": args.str("label"),
        "verbose": args.switch("verbose"),
        "extra": args.rest(),
        // A handler cannot overwrite the envelope.
        "ok": "spoofed",
        "command": "spoofed",
        "schema_version": 0,
    });
    invocation.progress(PROGRESS);
    Ok(Reply::new(format!("run: {target} for {duration} ms"), fields))
}

fn level(_: &mut Context, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let percent = invocation.args.u64("percent").expect("PERCENT is required");
    assert!(percent <= 100, "percent {percent}");
    Ok(Reply::new(format!("level: {percent} %"), json!({ "percent": percent })))
}

fn status(_: &mut Context, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let name = invocation.args.str("name").map(str::to_owned);
    Ok(Reply::new("status: fine", json!({ "name": name })))
}

fn error(_: &mut Context, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    Err(ShellError::new(HANDLER_ERROR, "the handler refused"))
}

fn failure(_: &mut Context, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    invocation.progress(PROGRESS);
    Ok(Reply::new("results: none", json!({ "results": [] }))
        .failing(ShellError::new(HANDLER_FAILURE, "ran, but did not succeed")))
}

static RUN: CommandSpec<Context> = CommandSpec {
    name: "run",
    summary: "Every value kind",
    description: "",
    args: RUN_ARGS,
    subcommands: &[],
    handler: Some(run),
};

/// Subcommands required (no handler of its own).
static CTL: CommandSpec<Context> = CommandSpec {
    name: "ctl",
    summary: "Subcommands only",
    description: "Needs a subcommand.",
    args: &[],
    subcommands: &[
        CommandSpec {
            name: "level",
            summary: "Ranged positional",
            description: "",
            args: &[ArgSpec::positional("percent", ValueKind::U64 { min: 0, max: 100 }, "percent").required()],
            subcommands: &[],
            handler: Some(level),
        },
        CommandSpec {
            name: "error",
            summary: "Fails",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(error),
        },
        CommandSpec {
            name: "failure",
            summary: "Runs and fails",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(failure),
        },
    ],
    handler: None,
};

/// A handler, a positional and subcommands: an unknown word is the positional.
static MIXED: CommandSpec<Context> = CommandSpec {
    name: "mixed",
    summary: "Positional or subcommand",
    description: "",
    args: &[ArgSpec::positional("name", ValueKind::Str, "name")],
    subcommands: &[CommandSpec {
        name: "status",
        summary: "Status",
        description: "",
        args: &[],
        subcommands: &[],
        handler: Some(status),
    }],
    handler: Some(status),
};

fn registry() -> Registry<Context> {
    let mut registry = Registry::new();
    for command in [&RUN, &CTL, &MIXED] {
        registry.register(command).expect("names are distinct");
    }
    registry
}

fuzz_target!(|line: &[u8]| {
    let registry = registry();
    let mut context = Context::default();
    let mut out = Captured::default();
    let outcome = registry.execute(&mut context, line, &mut out);
    let output = out.0;

    if let Outcome::Failed { code } = outcome {
        assert!(KNOWN_CODES.contains(&code), "unpublished code {code}");
    }
    if outcome == Outcome::Empty {
        assert!(output.is_empty(), "empty line printed {output:?}");
        return;
    }
    // `--json` is a flag up to a `--` word; after it, the word still asks for
    // JSON errors but a handler's reply is printed for people.
    let (json_flag, json_word) = match validate_line(line).and_then(tokenize) {
        Ok(words) => (
            words.iter().take_while(|word| *word != "--").any(|word| word == "--json"),
            words.iter().any(|word| word == "--json"),
        ),
        Err(_) => {
            let bytes = line.windows(6).any(|window| window == b"--json");
            (bytes, bytes)
        }
    };
    if json_flag {
        let reply = sis_testing::parse_json_reply(&output)
            .unwrap_or_else(|error| panic!("JSON line refused by the host: {error:?}\n{output}"));
        assert_eq!(reply["ok"], outcome == Outcome::Ok, "ok in {output}");
        match outcome {
            Outcome::Failed { code } => assert_eq!(reply["error"]["code"], code, "error code in {output}"),
            _ => assert!(reply.get("error").is_none(), "error on success in {output}"),
        }
        assert!(!output.contains(PROGRESS), "progress inside JSON");
    } else if !json_word {
        assert!(!output.starts_with('{'), "JSON without --json: {output}");
    }
    assert!(output.ends_with('\n'), "output not ended by a newline: {output:?}");
});
