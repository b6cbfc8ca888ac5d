//! The agent host-call protocol (`sis_agents::protocol::decode_request`) and capability lists
//! (`sis_agents::caps::CapabilitySet::parse`) on arbitrary bytes: what an untrusted WebAssembly agent sends, and
//! what an operator types after `--caps`.
//!
//! Invariants: no panic; a refusal maps to one of the published malformed-message codes (1-8); an accepted
//! request re-encodes to exactly the input (the format is canonical) and its header's call id is echoed; a
//! capability list that parses prints back to a list that parses to the same set, and a path pattern never grants
//! a path it does not match after normalization.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use sis_agents::caps::{Access, CapabilitySet};
use sis_agents::path::normalize;
use sis_agents::protocol::{decode_header, decode_request, encode_request};

fuzz_target!(|data: &[u8]| {
    match decode_request(data) {
        Ok((header, request)) => {
            assert_eq!(encode_request(header.call_id, &request), data, "an accepted request is not canonical");
            assert_eq!(header.kind, request.call() as u16);
        }
        Err(error) => {
            let code = error.code().wire();
            assert!((1..=8).contains(&code), "unpublished code {code} for {error}");
            if data.len() >= 12 {
                assert!(decode_header(data).is_ok());
            }
        }
    }

    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(set) = CapabilitySet::parse(text) {
            let printed = set.to_string();
            assert_eq!(CapabilitySet::parse(&printed).as_ref(), Ok(&set), "{printed:?} does not parse back");
            // Any path in the input, checked as an agent's FS_READ would be: granted only in normal form.
            for word in text.split(|c: char| c == ',' || c == ':' || c.is_whitespace()) {
                if let Ok(normal) = normalize(word) {
                    assert_eq!(
                        set.allows(&Access::FsRead(word)),
                        set.allows(&Access::FsRead(&normal)),
                        "{word:?} and its normal form {normal:?} are judged differently by {printed}"
                    );
                }
            }
        }
    }
});
