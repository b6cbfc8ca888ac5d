//! Asks the kernel's language model for text a few times and logs what each request got: capabilities
//! `command:llmctl` and `log`. The requests run as the agent's own governance principal (`agent:ID`), so its token
//! budget and rate limit decide how many tokens it gets; a request cut or refused by them is an outcome, not a
//! failure. It exits 1 when a call fails in a way its capabilities or the protocol explain (`denied`, ...).
#![no_std]

use core::fmt::Write;
use sis_agent_sdk::{agent_main, Host, Level, Status, Text};

agent_main!(main);

/// The model the image ships (`llmctl register builtin:shakespeare-lm`; docs/lm.md).
const MODEL: &str = "shakespeare-lm";
/// The prompt of every request.
const PROMPT: &str = "ROMEO:";
/// Tokens each request asks for.
const MAX_TOKENS: u32 = 40;
/// Requests made, with seeds 1, 2, ...
const REQUESTS: u32 = 4;

fn main() -> i32 {
    let mut host = Host::new();
    let mut answered = 0u32;
    let mut tokens_total = 0u64;
    for request in 1..=REQUESTS {
        let mut line = Text::<128>::new();
        let _ = write!(line, "llmctl infer {MODEL} \"{PROMPT}\" --max-tokens {MAX_TOKENS} --seed {request}");
        let mut output = [0u8; 2048];
        let mut message = Text::<160>::new();
        match host.command_run(line.as_str(), &mut output) {
            Ok(text) => match tokens_line(text) {
                Some(summary) => {
                    answered += 1;
                    tokens_total += summary.tokens;
                    let _ = write!(message, "infer {request}: {} of {MAX_TOKENS} tokens", summary.tokens);
                    if summary.cut {
                        let _ = write!(message, " (cut by the budget)");
                    }
                }
                None => {
                    let _ = write!(message, "infer {request}: an answer without its tokens line");
                    let _ = host.log(Level::Error, message.as_str());
                    return 1;
                }
            },
            // The command failed: refused by the budget or the rate limit (llmctl audit says which).
            Err(Status::HOST_FAILED) => {
                let _ = write!(message, "infer {request}: refused ({})", Status::HOST_FAILED.name());
            }
            Err(status) => {
                let _ = write!(message, "infer {request}: {}", status.name());
                let _ = host.log(Level::Error, message.as_str());
                return 1;
            }
        }
        if host.log(Level::Info, message.as_str()).is_err() {
            return 1;
        }
    }
    let mut summary = Text::<96>::new();
    let _ = write!(summary, "{answered} of {REQUESTS} requests answered, {tokens_total} tokens");
    if host.log(Level::Info, summary.as_str()).is_err() {
        return 1;
    }
    0
}

/// What `llmctl infer`'s last line says: `-- N tokens[ (cut from M by the budget)] from ...`.
struct Summary {
    tokens: u64,
    cut: bool,
}

/// Reads the summary line `llmctl infer` prints after the generated text.
fn tokens_line(output: &[u8]) -> Option<Summary> {
    let text = core::str::from_utf8(output).ok()?;
    let (_, line) = text.rsplit_once("\n-- ")?;
    let (count, rest) = line.split_once(" tokens")?;
    Some(Summary { tokens: count.parse().ok()?, cut: rest.starts_with(" (cut from") })
}
