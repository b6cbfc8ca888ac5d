//! Boot arguments: `sis_proto::bootargs::parse` and `find` on arbitrary text.
//!
//! Invariants: keys hold no whitespace and no `=`; `find` agrees with the last
//! matching word of `parse`; and `run_argument` (the host's quoting) round-trips
//! any command text, also after other arguments that parse.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use sis_proto::bootargs::{find, parse, run_argument, BootArgument, BootArgumentError, RUN};

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    let parsed = parse(&text);
    match &parsed {
        Ok(arguments) => {
            for argument in arguments {
                assert!(!argument.key.contains(|c: char| c.is_whitespace() || c == '='), "key {:?}", argument.key);
            }
            let last_run = arguments.iter().rev().find(|argument| argument.key == RUN).map(|a| a.value.clone());
            assert_eq!(find(&text, RUN), Ok(last_run));
        }
        Err(BootArgumentError::UnterminatedQuote { key }) => {
            assert!(text.contains('"'), "unterminated quote without a quote in {text:?}");
            assert!(!key.contains(char::is_whitespace));
            assert!(find(&text, RUN).is_err());
        }
    }

    // The same bytes as commands: the host quotes them, the kernel must read back exactly them.
    let quoted = run_argument(&text);
    assert_eq!(find(&quoted, RUN), Ok(Some(text.clone().into_owned())), "round trip of {text:?}");
    if let Ok(arguments) = parsed {
        let combined = format!("{text} {quoted}");
        let mut expected = arguments;
        expected.push(BootArgument { key: RUN.into(), value: text.clone().into_owned() });
        assert_eq!(parse(&combined), Ok(expected), "{quoted:?} after {text:?}");
    }
});
