//! The command registry: lookup with subcommands, `--help` and `--json` for every command, one output path.

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{Map, Value};

use crate::args::{parse, ArgSpec, ParsedArgs, ValueKind};
use crate::capability::Capabilities;
use crate::error::{codes, sanitize, ShellError};
use crate::tokenize::{tokenize, validate_line};

/// Where command output goes (console, batch log, HTTP body).
pub trait Output {
    /// Writes text; lines end with `\n`.
    fn write_str(&mut self, text: &str);

    /// Writes a command's JSON object (its `--json` reply, or its error) as one line. An output that wants the
    /// value itself (the web server, which answers with it) overrides this and skips printing and re-parsing it.
    fn write_json(&mut self, value: Value) {
        match serde_json::to_string(&value) {
            Ok(text) => self.write_str(&text),
            Err(_) => {
                self.write_str("{\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":\"JSON encoding failed\"}}")
            }
        }
        self.write_str("\n");
    }
}

/// A command handler.
pub type Handler<C> = fn(&mut C, &mut Invocation<'_>) -> Result<Reply, ShellError>;

/// A command (or subcommand) declaration.
#[derive(Debug)]
pub struct CommandSpec<C: 'static> {
    /// The word that selects it.
    pub name: &'static str,
    /// One line for `help`.
    pub summary: &'static str,
    /// Longer text for `<command> --help`.
    pub description: &'static str,
    /// Flags and positionals (`--json` and `--help` are implicit).
    pub args: &'static [ArgSpec],
    /// Subcommands, selected by the next word.
    pub subcommands: &'static [CommandSpec<C>],
    /// Runs when no subcommand word follows; `None` means a subcommand is required.
    pub handler: Option<Handler<C>>,
}

/// What a handler returns: the same result for people and for programs.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    /// Human text (no trailing newline needed).
    pub human: String,
    /// Fields of the JSON object, beside `schema_version`, `command` and `ok`.
    pub json: Map<String, Value>,
    /// Set when the command ran and reports its results but did not succeed
    /// (a stress test whose status fails): printed after the results, and the
    /// line counts as failed.
    pub failure: Option<ShellError>,
}

impl Reply {
    /// A reply from human text and a JSON object (`fields` other than an object are ignored).
    pub fn new(human: impl Into<String>, fields: Value) -> Self {
        let json = match fields {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Reply { human: human.into(), json, failure: None }
    }

    /// The same reply, marked as a failure with `error`.
    pub fn failing(mut self, error: ShellError) -> Self {
        self.failure = Some(error);
        self
    }
}

/// What a handler sees of one command line.
pub struct Invocation<'a> {
    /// Parsed, typed arguments.
    pub args: ParsedArgs,
    /// Command path, e.g. `threads spawn`.
    pub path: String,
    out: &'a mut dyn Output,
}

impl core::fmt::Debug for Invocation<'_> {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Invocation").field("args", &self.args).field("path", &self.path).finish()
    }
}

impl Invocation<'_> {
    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        self.args.json
    }

    /// Writes a progress line for people; suppressed in JSON mode so the output stays one object.
    pub fn progress(&mut self, line: &str) {
        if !self.args.json {
            self.out.write_str(line);
            self.out.write_str("\n");
        }
    }
}

/// The result of executing one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing but whitespace.
    Empty,
    /// The command succeeded.
    Ok,
    /// The line or command failed with this code.
    Failed {
        /// The error's stable code.
        code: &'static str,
    },
}

/// Every registered command.
#[derive(Debug)]
pub struct Registry<C: 'static> {
    commands: Vec<&'static CommandSpec<C>>,
    /// Command paths (`schedctl spawn`) and what a caller must hold to run them.
    restrictions: Vec<(String, Capabilities)>,
}

const HELP_ARGS: &[ArgSpec] = &[ArgSpec::rest("command", "command (and subcommand) to describe")];

impl<C: 'static> Default for Registry<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: 'static> Registry<C> {
    /// A registry holding only the built-in `help`.
    pub fn new() -> Self {
        Registry { commands: Vec::new(), restrictions: Vec::new() }
    }

    /// Adds a command; a second command with the same name is refused.
    pub fn register(&mut self, command: &'static CommandSpec<C>) -> Result<(), ShellError> {
        if command.name == "help" || self.commands.iter().any(|existing| existing.name == command.name) {
            return Err(ShellError::new(
                "duplicate-command",
                alloc::format!("command {} registered twice", command.name),
            ));
        }
        self.commands.push(command);
        Ok(())
    }

    /// Names of every command, `help` first, then in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        core::iter::once("help").chain(self.commands.iter().map(|command| command.name)).collect()
    }

    /// Restricts the registered command at `path` (e.g. `schedctl spawn`), and everything under it,
    /// to callers holding `needed`; a path that names no registered command is refused.
    pub fn restrict(&mut self, path: &str, needed: Capabilities) -> Result<(), ShellError> {
        let words: Vec<String> = path.split_whitespace().map(String::from).collect();
        let unknown =
            || ShellError::new(codes::UNKNOWN_COMMAND, alloc::format!("cannot restrict '{path}': no such command"));
        if words.is_empty() {
            return Err(unknown());
        }
        let (_, resolved, consumed) = self.resolve(&words).map_err(|_| unknown())?;
        if consumed != words.len() {
            return Err(unknown());
        }
        match self.restrictions.iter_mut().find(|(existing, _)| *existing == resolved) {
            Some((_, capabilities)) => *capabilities = capabilities.union(needed),
            None => self.restrictions.push((resolved, needed)),
        }
        Ok(())
    }

    /// What a caller must hold to run the command at `path`: its own restriction and its parents'.
    pub fn required(&self, path: &str) -> Capabilities {
        self.restrictions
            .iter()
            .filter(|(restricted, _)| {
                path == restricted || path.strip_prefix(restricted.as_str()).is_some_and(|rest| rest.starts_with(' '))
            })
            .fold(Capabilities::NONE, |needed, (_, capabilities)| needed.union(*capabilities))
    }

    /// Every restricted command path with its capabilities, in the order they were declared.
    pub fn restrictions(&self) -> impl Iterator<Item = (&str, Capabilities)> {
        self.restrictions.iter().map(|(path, capabilities)| (path.as_str(), *capabilities))
    }

    /// Runs one submitted line on behalf of the console or batch mode ([`Capabilities::CONSOLE`]: every capability).
    pub fn execute(&self, context: &mut C, line: &[u8], out: &mut dyn Output) -> Outcome {
        self.execute_as(context, line, out, Capabilities::CONSOLE)
    }

    /// Runs one submitted line on behalf of a caller holding `caller`, and writes its output.
    ///
    /// A command needing a capability the caller lacks fails with `permission-denied`
    /// whatever its arguments, before its handler runs; only its `--help` is answered.
    pub fn execute_as(&self, context: &mut C, line: &[u8], out: &mut dyn Output, caller: Capabilities) -> Outcome {
        let wants_json = line.windows(6).any(|window| window == b"--json");
        let words = match validate_line(line).and_then(tokenize) {
            Ok(words) => words,
            Err(error) => return report_error(out, wants_json, None, &error),
        };
        if words.is_empty() {
            return Outcome::Empty;
        }
        let wants_json = words.iter().any(|word| word == "--json");
        if words[0] == "help" {
            return self.help(&words[1..], wants_json, out);
        }
        let (command, path, consumed) = match self.resolve(&words) {
            Ok(found) => found,
            Err(error) => {
                // A restricted command answers a caller without the capability the same whatever follows it.
                if let Some(denied) = self.deepest_path(&words).and_then(|path| self.denial(&path, caller)) {
                    return report_error(out, wants_json, None, &denied);
                }
                return report_error(out, wants_json, None, &error);
            }
        };
        let parsed = parse(&path, command.args, &words[consumed..]);
        if let Some(denied) = self.denial(&path, caller).filter(|_| !matches!(&parsed, Ok(args) if args.help)) {
            return report_error(out, wants_json, Some(&path), &denied);
        }
        let args = match parsed {
            Ok(args) => args,
            Err(error) => return report_error(out, wants_json, Some(&path), &error),
        };
        if args.help {
            let usage = usage(command, &path);
            let reply = Reply::new(usage.clone(), serde_json::json!({ "usage": usage }));
            return report_reply(out, args.json, &path, reply);
        }
        let Some(handler) = command.handler else {
            let error = missing_subcommand(command, &path);
            return report_error(out, wants_json, Some(&path), &error);
        };
        let json = args.json;
        let mut invocation = Invocation { args, path: path.clone(), out };
        match handler(context, &mut invocation) {
            Ok(reply) => report_reply(out, json, &path, reply),
            Err(error) => report_error(out, json, Some(&path), &error),
        }
    }

    /// The `permission-denied` error when `caller` lacks what the command at `path` needs.
    fn denial(&self, path: &str, caller: Capabilities) -> Option<ShellError> {
        let needed = self.required(path);
        (!caller.contains(needed)).then(|| {
            ShellError::new(
                codes::PERMISSION_DENIED,
                alloc::format!("'{path}' needs the {} capability; this caller holds {caller}", caller.missing(needed)),
            )
        })
    }

    /// The path of the command a line names (`otelctl file`, `help`), as far as its words name registered
    /// commands; `None` for a line that does not tokenize, is empty, or names no command.
    pub fn command_path(&self, line: &[u8]) -> Option<String> {
        let words = validate_line(line).and_then(tokenize).ok()?;
        match words.first()?.as_str() {
            "help" => Some(String::from("help")),
            _ => self.deepest_path(&words),
        }
    }

    /// The path of the deepest registered command that `words` name, however the rest of them fails.
    fn deepest_path(&self, words: &[String]) -> Option<String> {
        let mut command = *self.commands.iter().find(|command| command.name == words[0])?;
        let mut path = String::from(command.name);
        for word in &words[1..] {
            let Some(sub) = command.subcommands.iter().find(|sub| sub.name == word.as_str()) else { break };
            command = sub;
            path.push(' ');
            path.push_str(sub.name);
        }
        Some(path)
    }

    /// Finds the command for `words`, descending into subcommands; returns it, its path and the words consumed.
    fn resolve(&self, words: &[String]) -> Result<(&'static CommandSpec<C>, String, usize), ShellError> {
        let mut command = *self.commands.iter().find(|command| command.name == words[0]).ok_or_else(|| {
            let mut message = alloc::format!("unknown command '{}'", sanitize(&words[0]));
            if let Some(closest) = closest_name(&words[0], &self.names()) {
                message.push_str(&alloc::format!("; did you mean '{closest}'?"));
            }
            message.push_str(" (type 'help' for the list)");
            ShellError::new(codes::UNKNOWN_COMMAND, message)
        })?;
        let mut path = String::from(command.name);
        let mut consumed = 1;
        while !command.subcommands.is_empty() {
            let Some(word) = words.get(consumed).filter(|word| !word.starts_with("--")) else { break };
            match command.subcommands.iter().find(|sub| sub.name == word.as_str()) {
                Some(sub) => {
                    command = sub;
                    path.push(' ');
                    path.push_str(sub.name);
                    consumed += 1;
                }
                None if command.handler.is_none() || command.args.iter().all(|spec| !spec.positional) => {
                    let names: Vec<&str> = command.subcommands.iter().map(|sub| sub.name).collect();
                    return Err(ShellError::new(
                        codes::UNKNOWN_SUBCOMMAND,
                        alloc::format!(
                            "'{path}' has no subcommand '{}'; accepted: {}",
                            sanitize(word),
                            names.join(", ")
                        ),
                    ));
                }
                None => break,
            }
        }
        Ok((command, path, consumed))
    }

    fn help(&self, words: &[String], json: bool, out: &mut dyn Output) -> Outcome {
        let topic: Vec<String> = words.iter().filter(|word| !word.starts_with("--")).cloned().collect();
        if words.iter().any(|word| word.starts_with("--") && word != "--json" && word != "--help") {
            let flag = words.iter().find(|word| word.starts_with("--") && *word != "--json" && *word != "--help");
            let error = ShellError::new(
                codes::UNKNOWN_FLAG,
                alloc::format!(
                    "unknown flag {} for 'help'; accepted: --json, --help",
                    sanitize(flag.map_or("", |f| f))
                ),
            );
            return report_error(out, json, Some("help"), &error);
        }
        if words.iter().any(|word| word == "--help") || topic.len() == 1 && topic[0] == "help" {
            let spec: CommandSpec<C> = CommandSpec {
                name: "help",
                summary: "List commands or describe one",
                description:
                    "Without an argument, lists every command; with a command (and subcommand), prints its usage.",
                args: HELP_ARGS,
                subcommands: &[],
                handler: None,
            };
            let text = usage(&spec, "help");
            return report_reply(out, json, "help", Reply::new(text.clone(), serde_json::json!({ "usage": text })));
        }
        if topic.is_empty() {
            let width = self.names().iter().map(|name| name.len()).max().unwrap_or(4);
            let mut human = String::from("Commands (each accepts --help and --json):\n");
            let mut list = Vec::new();
            human.push_str(&alloc::format!("  {:width$}  {}\n", "help", "List commands or describe one"));
            list.push(
                serde_json::json!({"name": "help", "summary": "List commands or describe one", "subcommands": []}),
            );
            for command in &self.commands {
                human.push_str(&alloc::format!("  {:width$}  {}\n", command.name, command.summary));
                let subcommands: Vec<&str> = command.subcommands.iter().map(|sub| sub.name).collect();
                list.push(
                    serde_json::json!({"name": command.name, "summary": command.summary, "subcommands": subcommands}),
                );
            }
            return report_reply(
                out,
                json,
                "help",
                Reply::new(human.trim_end(), serde_json::json!({ "commands": list })),
            );
        }
        match self.resolve(&topic) {
            Ok((command, path, consumed)) if consumed == topic.len() => {
                let usage = usage(command, &path);
                report_reply(out, json, "help", Reply::new(usage.clone(), serde_json::json!({ "usage": usage })))
            }
            Ok((_, path, consumed)) => {
                let error = ShellError::new(
                    codes::UNKNOWN_SUBCOMMAND,
                    alloc::format!("'{path}' has no subcommand '{}'", sanitize(&topic[consumed])),
                );
                report_error(out, json, Some("help"), &error)
            }
            Err(error) => report_error(out, json, Some("help"), &error),
        }
    }
}

/// Usage text generated from a command's declaration.
fn usage<C>(command: &CommandSpec<C>, path: &str) -> String {
    let mut synopsis = String::from(path);
    if !command.subcommands.is_empty() {
        let names: Vec<&str> = command.subcommands.iter().map(|sub| sub.name).collect();
        synopsis.push_str(&alloc::format!(" [{}]", names.join("|")));
    }
    for spec in command.args {
        synopsis.push(' ');
        synopsis.push_str(&spec.synopsis());
    }
    synopsis.push_str(" [--json] [--help]");
    let mut text = alloc::format!("usage: {synopsis}\n\n{}", command.summary);
    if !command.description.is_empty() {
        text.push_str("\n\n");
        text.push_str(command.description);
    }
    if !command.subcommands.is_empty() {
        text.push_str("\n\nsubcommands:");
        for sub in command.subcommands {
            text.push_str(&alloc::format!("\n  {:14} {}", sub.name, sub.summary));
        }
    }
    let mut rows: Vec<(String, String)> = command
        .args
        .iter()
        .map(|spec| {
            let name = if spec.positional { spec.name.to_uppercase() } else { alloc::format!("--{}", spec.name) };
            let mut detail = String::from(spec.help);
            if !matches!(spec.kind, ValueKind::Switch | ValueKind::Str) {
                detail.push_str(&alloc::format!(" [{}]", spec.kind.describe()));
            }
            if let Some(default) = spec.default {
                detail.push_str(&alloc::format!(" (default {default})"));
            }
            if spec.required {
                detail.push_str(" (required)");
            }
            (name, detail)
        })
        .collect();
    rows.push((String::from("--json"), String::from("print one JSON object instead of text")));
    rows.push((String::from("--help"), String::from("print this help")));
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    text.push_str("\n\narguments:");
    for (name, detail) in rows {
        text.push_str(&alloc::format!("\n  {name:width$}  {detail}"));
    }
    text
}

fn missing_subcommand<C>(command: &CommandSpec<C>, path: &str) -> ShellError {
    let names: Vec<&str> = command.subcommands.iter().map(|sub| sub.name).collect();
    ShellError::new(codes::MISSING_ARGUMENT, alloc::format!("'{path}' needs a subcommand: {}", names.join(", ")))
}

fn report_reply(out: &mut dyn Output, json: bool, path: &str, reply: Reply) -> Outcome {
    if json {
        let mut object = Map::new();
        object.insert(String::from("schema_version"), Value::from(sis_proto::SCHEMA_VERSION));
        object.insert(String::from("command"), Value::from(path));
        object.insert(String::from("ok"), Value::from(reply.failure.is_none()));
        if let Some(error) = &reply.failure {
            object
                .insert(String::from("error"), serde_json::json!({ "code": error.code(), "message": error.message() }));
        }
        for (key, value) in reply.json {
            object.entry(key).or_insert(value);
        }
        out.write_json(Value::Object(object));
    } else {
        if !reply.human.is_empty() {
            out.write_str(&reply.human);
            if !reply.human.ends_with('\n') {
                out.write_str("\n");
            }
        }
        if let Some(error) = &reply.failure {
            out.write_str(&alloc::format!("{error}\n"));
        }
    }
    match reply.failure {
        Some(error) => Outcome::Failed { code: error.code() },
        None => Outcome::Ok,
    }
}

fn report_error(out: &mut dyn Output, json: bool, path: Option<&str>, error: &ShellError) -> Outcome {
    if json {
        let object = serde_json::json!({
            "schema_version": sis_proto::SCHEMA_VERSION,
            "command": path,
            "ok": false,
            "error": { "code": error.code(), "message": error.message() },
        });
        out.write_json(object);
    } else {
        out.write_str(&alloc::format!("{error}\n"));
    }
    Outcome::Failed { code: error.code() }
}

/// The registered name closest to `word` within edit distance 2.
fn closest_name(word: &str, names: &[&'static str]) -> Option<&'static str> {
    names
        .iter()
        .map(|name| (edit_distance(word, name), *name))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate().take(64) {
        let mut current = alloc::vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests;
