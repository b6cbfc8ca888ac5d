//! Typed arguments: commands declare flags and positionals; the parser checks types, ranges and presence.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::error::{codes, sanitize, ShellError};

/// The type of a flag's or positional's value.
#[derive(Clone, Copy)]
pub enum ValueKind {
    /// A flag without a value: present or absent.
    Switch,
    /// Unsigned integer in `min..=max` (decimal or `0x` hex, `_` separators).
    U64 {
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
    /// Signed integer in `min..=max`.
    I64 {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// Any text.
    Str,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// Parsed by a command-specific function; `Err` is the reason, shown to the user.
    Custom {
        /// Shown in help, e.g. `N|max`.
        value_name: &'static str,
        /// The parser.
        parse: fn(&str) -> Result<ArgValue, String>,
    },
}

impl core::fmt::Debug for ValueKind {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.write_str(&self.describe())
    }
}

impl ValueKind {
    /// Human description of the accepted values.
    pub fn describe(&self) -> String {
        match self {
            ValueKind::Switch => String::from("switch"),
            ValueKind::U64 { min, max } => alloc::format!("integer {min}..={max}"),
            ValueKind::I64 { min, max } => alloc::format!("integer {min}..={max}"),
            ValueKind::Str => String::from("text"),
            ValueKind::Choice(words) => words.join("|"),
            ValueKind::Custom { value_name, .. } => String::from(*value_name),
        }
    }

    fn value_name(&self) -> String {
        match self {
            ValueKind::Switch => String::new(),
            ValueKind::U64 { .. } | ValueKind::I64 { .. } => String::from("N"),
            ValueKind::Str => String::from("TEXT"),
            ValueKind::Choice(words) => words.join("|"),
            ValueKind::Custom { value_name, .. } => String::from(*value_name),
        }
    }
}

/// A parsed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgValue {
    /// A switch that was given.
    Switch,
    /// An unsigned integer.
    U64(u64),
    /// A signed integer.
    I64(i64),
    /// Text (also the chosen word of a `Choice`).
    Str(String),
}

/// One declared flag or positional argument.
#[derive(Debug, Clone, Copy)]
pub struct ArgSpec {
    /// Flag name without `--`, or the positional's name.
    pub name: &'static str,
    /// Value type.
    pub kind: ValueKind,
    /// One-line help.
    pub help: &'static str,
    /// Positional (true) or `--flag` (false).
    pub positional: bool,
    /// Must be given.
    pub required: bool,
    /// Takes every remaining positional word (last positional only).
    pub variadic: bool,
    /// Value used when absent, parsed like user input.
    pub default: Option<&'static str>,
}

impl ArgSpec {
    /// An optional `--name` flag.
    pub const fn flag(name: &'static str, kind: ValueKind, help: &'static str) -> Self {
        ArgSpec { name, kind, help, positional: false, required: false, variadic: false, default: None }
    }

    /// An optional positional argument.
    pub const fn positional(name: &'static str, kind: ValueKind, help: &'static str) -> Self {
        ArgSpec { name, kind, help, positional: true, required: false, variadic: false, default: None }
    }

    /// Every remaining word, as text.
    pub const fn rest(name: &'static str, help: &'static str) -> Self {
        ArgSpec { name, kind: ValueKind::Str, help, positional: true, required: false, variadic: true, default: None }
    }

    /// Marks the argument required.
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Gives the argument a default.
    pub const fn default(mut self, value: &'static str) -> Self {
        self.default = Some(value);
        self
    }

    /// Synopsis fragment, e.g. `[--duration N]`.
    pub fn synopsis(&self) -> String {
        let body = if self.positional {
            let dots = if self.variadic { "..." } else { "" };
            alloc::format!("{}{dots}", self.name.to_uppercase())
        } else if matches!(self.kind, ValueKind::Switch) {
            alloc::format!("--{}", self.name)
        } else {
            alloc::format!("--{} {}", self.name, self.kind.value_name())
        };
        if self.required {
            body
        } else {
            alloc::format!("[{body}]")
        }
    }
}

/// Arguments after parsing, with typed getters.
#[derive(Debug, Clone, Default)]
pub struct ParsedArgs {
    values: Vec<(&'static str, ArgValue)>,
    rest: Vec<String>,
    /// `--json` was given.
    pub json: bool,
    /// `--help` was given.
    pub help: bool,
}

impl ParsedArgs {
    fn get(&self, name: &str) -> Option<&ArgValue> {
        self.values.iter().find(|(key, _)| *key == name).map(|(_, value)| value)
    }

    /// Whether a switch was given.
    pub fn switch(&self, name: &str) -> bool {
        matches!(self.get(name), Some(ArgValue::Switch))
    }

    /// An unsigned value (given or default).
    pub fn u64(&self, name: &str) -> Option<u64> {
        match self.get(name) {
            Some(ArgValue::U64(value)) => Some(*value),
            _ => None,
        }
    }

    /// A signed value (given or default).
    pub fn i64(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(ArgValue::I64(value)) => Some(*value),
            _ => None,
        }
    }

    /// A text value (given or default).
    pub fn str(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(ArgValue::Str(value)) => Some(value),
            _ => None,
        }
    }

    /// Any value by name, for custom kinds.
    pub fn value(&self, name: &str) -> Option<&ArgValue> {
        self.get(name)
    }

    /// Words taken by a variadic positional.
    pub fn rest(&self) -> &[String] {
        &self.rest
    }
}

/// Parses `words` against `specs` for the command at `path` (used in messages).
pub(crate) fn parse(path: &str, specs: &[ArgSpec], words: &[String]) -> Result<ParsedArgs, ShellError> {
    let mut parsed = ParsedArgs::default();
    let mut positionals = specs.iter().filter(|spec| spec.positional);
    let mut flags_ended = false;
    // Flags are still recognised between the words of a variadic positional;
    // `--` makes everything after it a word.
    let mut variadic_started = false;
    let mut index = 0;
    while index < words.len() {
        let word = &words[index];
        index += 1;
        if !flags_ended && word == "--" {
            flags_ended = true;
            continue;
        }
        if !flags_ended && word.len() > 2 && word.starts_with("--") {
            let (name, inline) = match word[2..].split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (&word[2..], None),
            };
            if name == "json" || name == "help" {
                if inline.is_some() {
                    return Err(ShellError::new(codes::INVALID_VALUE, alloc::format!("--{name} takes no value")));
                }
                if name == "json" {
                    parsed.json = true;
                } else {
                    parsed.help = true;
                }
                continue;
            }
            let spec = specs.iter().find(|spec| !spec.positional && spec.name == name).ok_or_else(|| {
                let accepted: Vec<String> = specs
                    .iter()
                    .filter(|spec| !spec.positional)
                    .map(|spec| alloc::format!("--{}", spec.name))
                    .chain(["--json".to_string(), "--help".to_string()])
                    .collect();
                ShellError::new(
                    codes::UNKNOWN_FLAG,
                    alloc::format!("unknown flag --{} for '{path}'; accepted: {}", sanitize(name), accepted.join(", ")),
                )
            })?;
            if parsed.get(spec.name).is_some() {
                return Err(ShellError::new(codes::DUPLICATE_FLAG, alloc::format!("--{} given twice", spec.name)));
            }
            let value = if matches!(spec.kind, ValueKind::Switch) {
                if inline.is_some() {
                    return Err(ShellError::new(
                        codes::INVALID_VALUE,
                        alloc::format!("--{} is a switch and takes no value", spec.name),
                    ));
                }
                ArgValue::Switch
            } else {
                let text = match inline {
                    Some(text) => text,
                    None => match words.get(index) {
                        Some(next) if !(next.starts_with("--") && next.len() > 2) => {
                            index += 1;
                            next.as_str()
                        }
                        _ => {
                            return Err(ShellError::new(
                                codes::MISSING_VALUE,
                                alloc::format!("--{} needs a value ({})", spec.name, spec.kind.describe()),
                            ))
                        }
                    },
                };
                parse_value(spec, text)?
            };
            parsed.values.push((spec.name, value));
            continue;
        }
        if variadic_started {
            parsed.rest.push(word.clone());
            continue;
        }
        match positionals.next() {
            Some(spec) if spec.variadic => {
                variadic_started = true;
                parsed.rest.push(word.clone());
            }
            Some(spec) => {
                let value = parse_value(spec, word)?;
                parsed.values.push((spec.name, value));
            }
            None => {
                return Err(ShellError::new(
                    codes::UNEXPECTED_ARGUMENT,
                    alloc::format!("'{path}' takes no further argument, got '{}'", sanitize(word)),
                ))
            }
        }
    }
    if parsed.help {
        return Ok(parsed);
    }
    for spec in specs {
        if spec.variadic || parsed.get(spec.name).is_some() {
            continue;
        }
        if let Some(default) = spec.default {
            let value = parse_value(spec, default)?;
            parsed.values.push((spec.name, value));
        } else if spec.required {
            let what = if spec.positional { spec.name.to_uppercase() } else { alloc::format!("--{}", spec.name) };
            return Err(ShellError::new(
                codes::MISSING_ARGUMENT,
                alloc::format!("'{path}' needs {what} ({}): {}", spec.kind.describe(), spec.help),
            ));
        }
    }
    Ok(parsed)
}

fn label(spec: &ArgSpec) -> String {
    if spec.positional {
        spec.name.to_uppercase()
    } else {
        alloc::format!("--{}", spec.name)
    }
}

fn parse_value(spec: &ArgSpec, text: &str) -> Result<ArgValue, ShellError> {
    match spec.kind {
        ValueKind::Switch => Ok(ArgValue::Switch),
        ValueKind::Str => Ok(ArgValue::Str(String::from(text))),
        ValueKind::Choice(words) => {
            if words.contains(&text) {
                Ok(ArgValue::Str(String::from(text)))
            } else {
                Err(ShellError::new(
                    codes::INVALID_VALUE,
                    alloc::format!("{} must be one of {}, got '{}'", label(spec), words.join(", "), sanitize(text)),
                ))
            }
        }
        ValueKind::U64 { min, max } => {
            let value = parse_unsigned(text).map_err(|kind| number_error(spec, text, kind))?;
            if value < min || value > max {
                return Err(range_error(spec, text));
            }
            Ok(ArgValue::U64(value))
        }
        ValueKind::I64 { min, max } => {
            let (negative, digits) = match text.strip_prefix('-') {
                Some(digits) => (true, digits),
                None => (false, text),
            };
            let magnitude = parse_unsigned(digits).map_err(|kind| number_error(spec, text, kind))?;
            let value = if negative { 0i64.checked_sub_unsigned(magnitude) } else { i64::try_from(magnitude).ok() }
                .ok_or_else(|| range_error(spec, text))?;
            if value < min || value > max {
                return Err(range_error(spec, text));
            }
            Ok(ArgValue::I64(value))
        }
        ValueKind::Custom { parse, .. } => parse(text).map_err(|reason| {
            ShellError::new(
                codes::INVALID_VALUE,
                alloc::format!("{}: {reason} (got '{}')", label(spec), sanitize(text)),
            )
        }),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum NumberProblem {
    NotANumber,
    Overflow,
}

fn parse_unsigned(text: &str) -> Result<u64, NumberProblem> {
    let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (text, 10),
    };
    let mut value: u64 = 0;
    let mut any_digit = false;
    for c in digits.chars() {
        if c == '_' && any_digit {
            continue;
        }
        let digit = c.to_digit(radix).ok_or(NumberProblem::NotANumber)?;
        any_digit = true;
        value = value
            .checked_mul(radix as u64)
            .and_then(|value| value.checked_add(digit as u64))
            .ok_or(NumberProblem::Overflow)?;
    }
    if any_digit {
        Ok(value)
    } else {
        Err(NumberProblem::NotANumber)
    }
}

fn number_error(spec: &ArgSpec, text: &str, problem: NumberProblem) -> ShellError {
    match problem {
        NumberProblem::Overflow => range_error(spec, text),
        NumberProblem::NotANumber => ShellError::new(
            codes::INVALID_VALUE,
            alloc::format!("{} expects an {}, got '{}'", label(spec), spec.kind.describe(), sanitize(text)),
        ),
    }
}

fn range_error(spec: &ArgSpec, text: &str) -> ShellError {
    ShellError::new(
        codes::OUT_OF_RANGE,
        alloc::format!("{} = {} is out of range; accepted: {}", label(spec), sanitize(text), spec.kind.describe()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const SPECS: &[ArgSpec] = &[
        ArgSpec::flag("duration", ValueKind::U64 { min: 1, max: 100 }, "run time").default("10"),
        ArgSpec::flag("offset", ValueKind::I64 { min: -5, max: 5 }, "offset"),
        ArgSpec::flag("mode", ValueKind::Choice(&["fast", "slow"]), "mode"),
        ArgSpec::flag("spin", ValueKind::Switch, "spin"),
        ArgSpec::positional("target", ValueKind::Str, "what").required(),
        ArgSpec::rest("extra", "more words"),
    ];

    fn run(words: &[&str]) -> Result<ParsedArgs, ShellError> {
        let words: Vec<String> = words.iter().map(|word| String::from(*word)).collect();
        parse("test", SPECS, &words)
    }

    fn code(words: &[&str]) -> &'static str {
        run(words).unwrap_err().code()
    }

    #[test]
    fn space_and_equals_forms_agree() {
        let a = run(&["--duration", "42", "x"]).unwrap();
        let b = run(&["--duration=42", "x"]).unwrap();
        assert_eq!(a.u64("duration"), Some(42));
        assert_eq!(b.u64("duration"), Some(42));
    }

    #[test]
    fn defaults_switches_and_rest() {
        let parsed = run(&["x", "--spin", "a", "b"]).unwrap();
        assert_eq!(parsed.u64("duration"), Some(10));
        assert!(parsed.switch("spin"));
        assert_eq!(parsed.str("target"), Some("x"));
        assert_eq!(parsed.rest(), ["a", "b"]);
        assert_eq!(parsed.u64("nonexistent"), None);
    }

    #[test]
    fn range_boundaries() {
        assert_eq!(run(&["--duration", "1", "x"]).unwrap().u64("duration"), Some(1));
        assert_eq!(run(&["--duration", "100", "x"]).unwrap().u64("duration"), Some(100));
        assert_eq!(code(&["--duration", "101", "x"]), codes::OUT_OF_RANGE);
        assert_eq!(code(&["--duration", "0", "x"]), codes::OUT_OF_RANGE);
        assert_eq!(code(&["--duration", "18446744073709551616", "x"]), codes::OUT_OF_RANGE);
        assert_eq!(run(&["--duration", "0x10", "x"]).unwrap().u64("duration"), Some(16));
        assert_eq!(run(&["--duration", "1_0", "x"]).unwrap().u64("duration"), Some(10));
        assert_eq!(run(&["--offset", "-5", "x"]).unwrap().i64("offset"), Some(-5));
        assert_eq!(code(&["--offset", "-6", "x"]), codes::OUT_OF_RANGE);
        assert_eq!(code(&["--offset", "-9223372036854775809", "x"]), codes::OUT_OF_RANGE);
    }

    #[test]
    fn each_error_class_has_its_code() {
        assert_eq!(code(&["--durtion", "5", "x"]), codes::UNKNOWN_FLAG);
        assert_eq!(code(&["x", "--duration"]), codes::MISSING_VALUE);
        assert_eq!(code(&["--duration", "--spin", "x"]), codes::MISSING_VALUE);
        assert_eq!(code(&["--duration", "abc", "x"]), codes::INVALID_VALUE);
        assert_eq!(code(&["--duration", "", "x"]), codes::INVALID_VALUE);
        assert_eq!(code(&["--mode", "medium", "x"]), codes::INVALID_VALUE);
        assert_eq!(code(&["--spin=yes", "x"]), codes::INVALID_VALUE);
        assert_eq!(code(&["--spin", "--spin", "x"]), codes::DUPLICATE_FLAG);
        assert_eq!(code(&["--spin"]), codes::MISSING_ARGUMENT);
    }

    #[test]
    fn unknown_flag_lists_accepted_flags() {
        let error = run(&["--durtion=5", "x"]).unwrap_err();
        assert!(error.message().contains("accepted: --duration, --offset, --mode, --spin, --json, --help"));
    }

    #[test]
    fn help_skips_required_checks_and_double_dash_ends_flags() {
        assert!(run(&["--help"]).unwrap().help);
        let parsed = run(&["--", "--spin"]).unwrap();
        assert_eq!(parsed.str("target"), Some("--spin"));
        assert!(!parsed.switch("spin"));
    }

    #[test]
    fn flags_after_variadic_words_are_still_flags() {
        let parsed = run(&["x", "a", "--spin", "b"]).unwrap();
        assert!(parsed.switch("spin"));
        assert_eq!(parsed.rest(), ["a", "b"]);
        let parsed = run(&["x", "a", "--", "--spin"]).unwrap();
        assert!(!parsed.switch("spin"));
        assert_eq!(parsed.rest(), ["a", "--spin"]);
    }

    #[test]
    fn extra_positional_is_rejected_without_variadic() {
        let specs = [ArgSpec::positional("one", ValueKind::Str, "x")];
        let words = vec![String::from("a"), String::from("b")];
        assert_eq!(parse("t", &specs, &words).unwrap_err().code(), codes::UNEXPECTED_ARGUMENT);
    }
}
