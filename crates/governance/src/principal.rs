//! Who asks: the serial console, a web token, or an agent.

use core::fmt;

use serde::{Serialize, Serializer};

/// A party that policies, counters and audit entries are kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Principal {
    /// The serial console (and boot-argument batch mode).
    Console,
    /// A web API bearer token, by its id.
    Token(u32),
    /// An agent, by its id.
    Agent(u32),
}

impl Principal {
    /// Reads `console`, `token:ID` or `agent:ID` (ID in decimal, no sign, no leading zeros).
    pub fn parse(text: &str) -> Option<Principal> {
        if text == "console" {
            return Some(Principal::Console);
        }
        let (kind, id) = text.split_once(':')?;
        if id.is_empty() || !id.bytes().all(|byte| byte.is_ascii_digit()) || id.len() > 1 && id.starts_with('0') {
            return None;
        }
        let id = id.parse::<u32>().ok()?;
        match kind {
            "token" => Some(Principal::Token(id)),
            "agent" => Some(Principal::Agent(id)),
            _ => None,
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Console => formatter.write_str("console"),
            Principal::Token(id) => write!(formatter, "token:{id}"),
            Principal::Agent(id) => write!(formatter, "agent:{id}"),
        }
    }
}

impl Serialize for Principal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_parse_and_print_the_same_text() {
        for (text, principal) in
            [("console", Principal::Console), ("token:7", Principal::Token(7)), ("agent:0", Principal::Agent(0))]
        {
            assert_eq!(Principal::parse(text), Some(principal));
            assert_eq!(principal.to_string(), text);
        }
        assert_eq!(Principal::parse("agent:4294967295"), Some(Principal::Agent(u32::MAX)));
        for bad in ["", "Console", "token", "token:", "token:-1", "token:07", "agent:4294967296", "user:1", "token:1 "]
        {
            assert_eq!(Principal::parse(bad), None, "{bad:?}");
        }
    }
}
