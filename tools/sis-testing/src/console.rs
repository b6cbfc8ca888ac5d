//! Reading the shell's console protocol: prompts, echo lines, a command's reply, error lines.
//!
//! The shell echoes a submitted line, ends the echo with `\r\n`, prints the
//! command's output (lines ending `\r\n`) and then the prompt `sis> ` at the
//! start of a line, with nothing after it. Everything here works on the bytes
//! that arrived after the line was sent, so nothing older can be mistaken for
//! the reply.

use sis_proto::PROMPT;

/// Longest line the shell accepts, in bytes; longer lines are refused with `line-too-long`.
pub const LINE_LIMIT_BYTES: usize = 1024;

/// Where a command's reply lies in the bytes that arrived after its line was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyBounds {
    /// End of the echo line, after its `\r\n`: the output starts here.
    pub output_start: usize,
    /// Start of the prompt that ends the reply: the output ends here.
    pub prompt_start: usize,
}

impl ReplyBounds {
    /// End of the prompt: everything up to here belongs to the command.
    pub fn end(&self) -> usize {
        self.prompt_start + PROMPT.len()
    }
}

/// Offset of the first `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// Offset of the first prompt that starts a line (at `from`, or right after a `\n`), searching from `from`.
pub fn prompt_at_line_start(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..)?;
    if rest.starts_with(PROMPT.as_bytes()) {
        return Some(from);
    }
    let mut marker = Vec::with_capacity(PROMPT.len() + 1);
    marker.push(b'\n');
    marker.extend_from_slice(PROMPT.as_bytes());
    find(rest, &marker).map(|at| from + at + 1)
}

/// Finds a command's reply in the bytes that arrived after its line was sent.
///
/// The first line is the echo; the reply ends at the first prompt that starts
/// a line after it. `None` while the reply is incomplete.
pub fn reply_bounds(after_send: &[u8]) -> Option<ReplyBounds> {
    let output_start = find(after_send, b"\r\n")? + 2;
    let prompt_start = prompt_at_line_start(after_send, output_start)?;
    Some(ReplyBounds { output_start, prompt_start })
}

/// Whether the shell echoes `line` byte for byte: printable ASCII within the line limit.
///
/// Control bytes come back in caret notation, escape sequences are swallowed
/// and bytes past the limit are not echoed, so only such lines can be compared.
pub fn echoes_verbatim(line: &[u8]) -> bool {
    line.len() <= LINE_LIMIT_BYTES && line.iter().all(|byte| (0x20..0x7f).contains(byte))
}

/// Offset of the first byte that would end or cancel a line early (`\r`, `\n`, Ctrl-C).
pub fn first_line_break(line: &[u8]) -> Option<usize> {
    line.iter().position(|byte| matches!(byte, b'\r' | b'\n' | 0x03))
}

/// The lines of raw console output: split on `\r\n`, an unfinished last line included.
pub fn raw_lines(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(raw);
    std::iter::from_fn(move || {
        let current = rest?;
        match find(current, b"\r\n") {
            Some(at) => {
                rest = Some(&current[at + 2..]);
                Some(&current[..at])
            }
            None => {
                rest = None;
                (!current.is_empty()).then_some(current)
            }
        }
    })
}

/// The lines of raw console output holding `text`, each from `text` on (a kernel log line is one write ending in
/// `\r\n`, so a line holds at most one, possibly after a prompt or part of an echo).
pub fn lines_with<'a>(raw: &'a [u8], text: &str) -> Vec<&'a str> {
    raw_lines(raw)
        .filter_map(|line| std::str::from_utf8(line).ok())
        .filter_map(|line| line.find(text).map(|at| &line[at..]))
        .collect()
}

/// The sum of N over the kernel log's `klog: <source>: <N> messages suppressed` lines in raw console output, or
/// the first such line that does not read so.
pub fn klog_suppressed(raw: &[u8], source: &str) -> Result<u64, String> {
    let prefix = format!("klog: {source}: ");
    lines_with(raw, &prefix)
        .iter()
        .map(|line| {
            line[prefix.len()..]
                .strip_suffix(" messages suppressed")
                .and_then(|count| count.parse::<u64>().ok())
                .ok_or_else(|| format!("a suppression line, got {line:?}"))
        })
        .sum()
}

/// Every line of raw console output that is a JSON reply object (as [`parse_json_reply`](crate::parse_json_reply)
/// accepts), in order.
///
/// The shell writes a command's output a whole line at a time, so a reply line
/// starts at a line start even when log lines from other threads arrive between
/// the lines of a reply, or split an echo; such lines, echoes and prompts are skipped.
pub fn json_replies(raw: &[u8]) -> Vec<serde_json::Value> {
    raw_lines(raw)
        .filter(|line| line.starts_with(b"{"))
        .filter_map(|line| std::str::from_utf8(line).ok())
        .filter_map(|line| crate::parse_json_reply(&format!("{line}\n")).ok())
        .collect()
}

/// A human-form shell error: one line `error[<code>]: <message>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorLine<'a> {
    /// The stable code, such as `unknown-command`.
    pub code: &'a str,
    /// The message for people.
    pub message: &'a str,
}

/// Reads `text` as exactly one error line (a trailing `\n` allowed, nothing else).
pub fn parse_error_line(text: &str) -> Option<ErrorLine<'_>> {
    let line = text.strip_suffix('\n').unwrap_or(text);
    if line.contains('\n') {
        return None;
    }
    let rest = line.strip_prefix("error[")?;
    let (code, message) = rest.split_once("]: ")?;
    let code_is_word =
        !code.is_empty() && code.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
    code_is_word.then_some(ErrorLine { code, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four lines sent at once while a flood logs: log lines after a prompt, inside an echo, between replies.
    const INTERLEAVED: &[u8] = b"logctl flood --source noisy --count 5 --duration 10 --json\r\n\
{\"schema_version\":1,\"command\":\"logctl flood\",\"ok\":true,\"id\":1}\r\n\
sis> flood noisy message 1 of 5\r\n\
logctl stflood noisy message 2 of 5\r\n\
atus --json\r\n\
flood noisy message 3 of 5\r\n\
{\"schema_version\":1,\"command\":\"logctl status\",\"ok\":true,\"floods\":[{\"sent\":3}]}\r\n\
sis> {\"schema_version\":1,\"command\":\"not at a line start\",\"ok\":true}\r\n\
{\"a\":1}\r\n\
{\"schema_version\":1,\"command\":\"cut\",\r\n\
klog: noisy: 2 messages suppressed\r\n\
{\"schema_version\":1,\"command\":null,\"ok\":false,\"error\":{\"code\":\"unknown-command\",\"message\":\"m\"}}\r\n\
sis> ^C\r\n\
sis> echo sync-1\r\n\
sync-1\r\n\
sis> ";

    #[test]
    fn json_replies_are_the_reply_objects_that_start_a_line() {
        let replies = json_replies(INTERLEAVED);
        let commands: Vec<&serde_json::Value> = replies.iter().map(|reply| &reply["command"]).collect();
        assert_eq!(
            commands,
            [&serde_json::json!("logctl flood"), &serde_json::json!("logctl status"), &serde_json::Value::Null]
        );
        assert_eq!(replies[1]["floods"][0]["sent"], 3);
        assert_eq!(replies[2]["error"]["code"], "unknown-command");
    }

    #[test]
    fn raw_lines_split_on_crlf_and_keep_an_unfinished_last_line() {
        let lines: Vec<&[u8]> = raw_lines(INTERLEAVED).collect();
        assert_eq!(lines.len(), 16);
        assert_eq!(lines[3], b"logctl stflood noisy message 2 of 5");
        assert_eq!(lines[15], b"sis> ");
        let log_lines = lines.iter().filter(|line| find(line, b"flood noisy message ").is_some()).count();
        assert_eq!(log_lines, 3);
        assert_eq!(raw_lines(b"").count(), 0);
        assert_eq!(raw_lines(b"a\r\n\r\nb").collect::<Vec<_>>(), [&b"a"[..], b"", b"b"]);
    }

    #[test]
    fn reply_is_between_the_echo_and_the_next_line_start_prompt() {
        let bytes = b"echo a b\r\na b\r\nsis> ";
        let bounds = reply_bounds(bytes).unwrap();
        assert_eq!(&bytes[bounds.output_start..bounds.prompt_start], b"a b\r\n");
        assert_eq!(bounds.end(), bytes.len());
    }

    #[test]
    fn empty_output_puts_the_prompt_right_after_the_echo() {
        let bytes = b"\r\nsis> ";
        assert_eq!(reply_bounds(bytes), Some(ReplyBounds { output_start: 2, prompt_start: 2 }));
    }

    #[test]
    fn a_prompt_inside_a_line_does_not_end_the_reply() {
        let bytes = b"echo x\r\nsay sis> here\r\nsis> ";
        let bounds = reply_bounds(bytes).unwrap();
        assert_eq!(&bytes[bounds.output_start..bounds.prompt_start], b"say sis> here\r\n");
    }

    #[test]
    fn the_echo_line_is_never_taken_for_the_prompt() {
        // The echo of `sis> x` contains the prompt text but ends before the output starts.
        let bytes = b"sis> x\r\nerror[unknown-command]: x\r\nsis> ";
        let bounds = reply_bounds(bytes).unwrap();
        assert_eq!(bounds.output_start, 8);
        assert_eq!(&bytes[bounds.output_start..bounds.prompt_start], b"error[unknown-command]: x\r\n");
    }

    #[test]
    fn incomplete_replies_are_not_found() {
        assert_eq!(reply_bounds(b"echo a"), None);
        assert_eq!(reply_bounds(b"echo a\r\na\r\n"), None);
        assert_eq!(reply_bounds(b"echo a\r\na\r\nsis"), None);
    }

    #[test]
    fn first_prompt_must_start_a_line() {
        assert_eq!(prompt_at_line_start(b"boot\r\nsis> ", 0), Some(6));
        assert_eq!(prompt_at_line_start(b"sis> ", 0), Some(0));
        assert_eq!(prompt_at_line_start(b"xsis> ", 0), None);
        assert_eq!(prompt_at_line_start(b"ab", 5), None);
    }

    #[test]
    fn only_printable_ascii_lines_within_the_limit_echo_verbatim() {
        assert!(echoes_verbatim(b"echo hello --json"));
        assert!(echoes_verbatim(&[b'x'; LINE_LIMIT_BYTES]));
        assert!(!echoes_verbatim(&[b'x'; LINE_LIMIT_BYTES + 1]));
        assert!(!echoes_verbatim(b"echo a\x07b"));
        assert!(!echoes_verbatim(b"echo \xff"));
        assert!(!echoes_verbatim(b"echo \x7f"));
    }

    #[test]
    fn line_breaks_and_ctrl_c_are_found() {
        assert_eq!(first_line_break(b"echo ok"), None);
        assert_eq!(first_line_break(b"a\rb"), Some(1));
        assert_eq!(first_line_break(b"ab\n"), Some(2));
        assert_eq!(first_line_break(b"\x03"), Some(0));
    }

    #[test]
    fn error_lines_parse_into_code_and_message() {
        assert_eq!(
            parse_error_line("error[unknown-command]: no command 'x'\n"),
            Some(ErrorLine { code: "unknown-command", message: "no command 'x'" })
        );
        assert_eq!(
            parse_error_line("error[line-too-long]: 4096 bytes"),
            Some(ErrorLine { code: "line-too-long", message: "4096 bytes" })
        );
        assert_eq!(parse_error_line("error[x]: a\nmore\n"), None, "two lines");
        assert_eq!(parse_error_line("warning[x]: a\n"), None);
        assert_eq!(parse_error_line("error[Bad Code]: a\n"), None);
        assert_eq!(parse_error_line("error[]: a\n"), None);
    }
}
