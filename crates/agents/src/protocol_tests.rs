//! Protocol round trips and every malformed case, plus random bytes that must never panic.

use super::*;
use alloc::string::ToString;
use alloc::vec;
use proptest::prelude::*;

fn all_requests() -> Vec<Request> {
    vec![
        Request::FsList { path: "/tmp".into() },
        Request::FsRead { path: "/tmp/a".into() },
        Request::FsWrite { path: "/tmp/out/x".into(), data: vec![0, 1, 255] },
        Request::MetricsRead { prefix: "mem.".into() },
        Request::CommandRun { line: "stresstest memory".into() },
        Request::Log { level: LogLevel::Warn, message: "héllo".into() },
        Request::Sleep { duration_ms: 250 },
        Request::ProposeAction { action: "reclaim".into(), reason: "pressure 91%".into() },
    ]
}

#[test]
fn every_request_round_trips() {
    for (id, request) in all_requests().into_iter().enumerate() {
        let bytes = encode_request(id as u32, &request);
        let (header, decoded) = decode_request(&bytes).unwrap();
        assert_eq!(decoded, request);
        assert_eq!(header.call_id, id as u32);
        assert_eq!(header.kind, request.call() as u16);
        assert_eq!(header.payload_len as usize, bytes.len() - HEADER_LEN);
    }
}

#[test]
fn wire_layout_is_little_endian_as_documented() {
    let bytes = encode_request(0x0102_0304, &Request::Sleep { duration_ms: 5 });
    assert_eq!(bytes, [1, 0, 7, 0, 4, 3, 2, 1, 4, 0, 0, 0, 5, 0, 0, 0]);
    let response = encode_response(ErrorCode::Denied, 9, b"x");
    assert_eq!(response, [1, 0, 9, 0, 9, 0, 0, 0, 1, 0, 0, 0, b'x']);
}

#[test]
fn each_malformed_case_has_its_error_and_code() {
    let good = encode_request(1, &Request::FsList { path: "/tmp".into() });
    let mut cases: Vec<(Vec<u8>, DecodeError, ErrorCode)> = Vec::new();
    cases.push((good[..5].to_vec(), DecodeError::Truncated { needed: 12, available: 5 }, ErrorCode::Truncated));
    let mut version = good.clone();
    version[0] = 2;
    cases.push((version, DecodeError::BadVersion(2), ErrorCode::BadVersion));
    let mut call = good.clone();
    call[2] = 99;
    cases.push((call, DecodeError::UnknownCall(99), ErrorCode::UnknownCall));
    let mut past = good.clone();
    past[8] = 40;
    cases.push((past, DecodeError::LengthPastEnd { declared: 40, available: 4 }, ErrorCode::LengthPastEnd));
    let mut trailing = good.clone();
    trailing.push(b'!');
    cases.push((trailing, DecodeError::TrailingBytes { extra: 1 }, ErrorCode::TrailingBytes));
    let mut huge = good.clone();
    huge[8..12].copy_from_slice(&(MAX_PAYLOAD as u32 + 1).to_le_bytes());
    cases.push((huge, DecodeError::Oversized { length: MAX_PAYLOAD + 1 }, ErrorCode::Oversized));
    let mut utf8 = good.clone();
    utf8[HEADER_LEN + 1] = 0xff;
    cases.push((utf8, DecodeError::BadUtf8, ErrorCode::BadUtf8));
    let level = frame(Call::Log as u16, 1, &[7, b'x']);
    cases.push((level, DecodeError::BadLogLevel(7), ErrorCode::InvalidArgument));
    let short_sleep = frame(Call::Sleep as u16, 1, &[1, 2]);
    cases.push((short_sleep, DecodeError::Truncated { needed: 4, available: 2 }, ErrorCode::Truncated));
    let long_sleep = frame(Call::Sleep as u16, 1, &[1, 2, 3, 4, 5]);
    cases.push((long_sleep, DecodeError::TrailingBytes { extra: 1 }, ErrorCode::TrailingBytes));
    let field = frame(Call::FsWrite as u16, 1, &[9, 0, 0, 0, b'/']);
    cases.push((field, DecodeError::LengthPastEnd { declared: 9, available: 1 }, ErrorCode::LengthPastEnd));
    let no_prefix = frame(Call::ProposeAction as u16, 1, &[1]);
    cases.push((no_prefix, DecodeError::Truncated { needed: 4, available: 1 }, ErrorCode::Truncated));
    let too_long = vec![0u8; MAX_MESSAGE + 1];
    cases.push((too_long, DecodeError::Oversized { length: MAX_MESSAGE + 1 }, ErrorCode::Oversized));
    for (bytes, error, code) in cases {
        assert_eq!(decode_request(&bytes), Err(error.clone()), "{error}");
        assert_eq!(error.code(), code);
        assert!(!error.to_string().is_empty());
    }
}

#[test]
fn error_codes_are_stable() {
    let codes = [
        (ErrorCode::Ok, 0),
        (ErrorCode::BadVersion, 1),
        (ErrorCode::Truncated, 2),
        (ErrorCode::LengthPastEnd, 3),
        (ErrorCode::TrailingBytes, 4),
        (ErrorCode::BadUtf8, 5),
        (ErrorCode::Oversized, 6),
        (ErrorCode::UnknownCall, 7),
        (ErrorCode::InvalidArgument, 8),
        (ErrorCode::Denied, 9),
        (ErrorCode::RateLimited, 10),
        (ErrorCode::NotFound, 11),
        (ErrorCode::HostFailed, 12),
        (ErrorCode::ResponseTooLarge, 13),
    ];
    for (code, wire) in codes {
        assert_eq!(code.wire(), wire, "{}", code.name());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20000))]

    #[test]
    fn random_bytes_never_panic_and_success_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok((header, request)) = decode_request(&bytes) {
            prop_assert_eq!(encode_request(header.call_id, &request), bytes);
        }
    }

    #[test]
    fn mutated_valid_messages_never_panic(index in 0usize..8, position in 0usize..40, value in any::<u8>()) {
        let mut bytes = encode_request(3, &all_requests()[index]);
        let at = position % bytes.len();
        bytes[at] = value;
        let _ = decode_request(&bytes);
        bytes.truncate(at);
        prop_assert!(decode_request(&bytes).is_err());
    }
}
