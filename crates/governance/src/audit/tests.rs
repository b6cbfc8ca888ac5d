//! Chain verification, tamper detection at the right index, queries, and the on-disk round trip.

use alloc::string::String;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;
use crate::artifact::Version;
use crate::registry::ModelId;

fn model(name: &str, minor: u32) -> Option<ModelId> {
    Some(ModelId { name: String::from(name), version: Version::new(1, minor, 0).unwrap() })
}

/// Event `n` of a varied history: every action, principals, models, refusals and figures.
fn event(n: u64) -> Event {
    let action = Action::ALL[(n % 9) as usize];
    let principal = match n % 3 {
        0 => Principal::Console,
        1 => Principal::Token(n as u32),
        _ => Principal::Agent(7),
    };
    let outcome = if n % 4 == 3 { Outcome::refused("rate-limited") } else { Outcome::Ok };
    let figures = Figures {
        requested_tokens: Some(n * 10),
        granted_tokens: n.is_multiple_of(2).then_some(n),
        retry_after_ns: (n % 4 == 3).then_some(500_000_000),
        ..Figures::default()
    };
    Event {
        time_ns: 1_000 * n,
        principal,
        action,
        model: if n.is_multiple_of(5) {
            None
        } else {
            model(if n.is_multiple_of(2) { "lm" } else { "agent" }, (n % 3) as u32)
        },
        target: (action == Action::SetBudget).then_some(Principal::Token(2)),
        outcome,
        figures,
    }
}

fn log_of(count: u64, capacity: usize) -> AuditLog {
    let mut log = AuditLog::new(capacity);
    for n in 0..count {
        log.append(event(n));
    }
    log
}

#[test]
fn entries_are_numbered_and_chained_from_zero() {
    let log = log_of(3, 10);
    let entries: Vec<&Entry> = log.entries().collect();
    assert_eq!(entries.iter().map(|entry| entry.sequence).collect::<Vec<_>>(), [0, 1, 2]);
    let first = chain(&[0; 32], &entry::encode_content(0, &event(0)));
    assert_eq!(entries[0].hash, first);
    assert_eq!(entries[1].hash, chain(&first, &entry::encode_content(1, &event(1))));
    assert_eq!(log.head_hash(), entries[2].hash);
    assert_eq!((log.next_sequence(), log.dropped()), (3, 0));
    assert_eq!(log.verify(), Ok(()));
}

#[test]
fn a_modified_entry_is_detected_at_its_index() {
    for index in 0..6 {
        let mut log = log_of(6, 10);
        log.entries_mut()[index].event.figures.granted_tokens = Some(1_000_000);
        assert_eq!(log.verify(), Err(ChainError { index: index as u64, kind: ChainErrorKind::Hash }));
        // Re-hashing the modified entry moves the break to the next one (or hides it, if it was the last:
        // only a head hash kept elsewhere catches that).
        let mut rehashed = log_of(6, 10);
        let previous = if index == 0 { [0; 32] } else { rehashed.entries_mut()[index - 1].hash };
        let entry = &mut rehashed.entries_mut()[index];
        entry.event.principal = Principal::Agent(666);
        entry.hash = chain(&previous, &entry::encode_content(entry.sequence, &entry.event));
        let expected =
            if index == 5 { Ok(()) } else { Err(ChainError { index: index as u64 + 1, kind: ChainErrorKind::Hash }) };
        assert_eq!(rehashed.verify(), expected);
        if index == 5 {
            assert_ne!(rehashed.head_hash(), log_of(6, 10).head_hash());
        }
    }
}

#[test]
fn a_deleted_reordered_or_inserted_entry_is_detected_at_its_index() {
    for index in 0..5u64 {
        let mut deleted = log_of(6, 10);
        deleted.entries_mut().remove(index as usize);
        assert_eq!(
            deleted.verify(),
            Err(ChainError { index, kind: ChainErrorKind::Sequence { expected: index, found: index + 1 } })
        );

        let mut reordered = log_of(6, 10);
        reordered.entries_mut().swap(index as usize, index as usize + 1);
        assert_eq!(
            reordered.verify(),
            Err(ChainError { index, kind: ChainErrorKind::Sequence { expected: index, found: index + 1 } })
        );

        // An inserted entry that takes the right number and a plausible hash still breaks the chain.
        let mut inserted = log_of(6, 10);
        let forged = inserted.entries_mut()[index as usize].clone();
        inserted.entries_mut().insert(index as usize, Entry { event: event(99), ..forged });
        assert_eq!(inserted.verify(), Err(ChainError { index, kind: ChainErrorKind::Hash }));
    }
    // Deleting the newest entry leaves a valid shorter chain whose head hash differs.
    let mut truncated = log_of(6, 10);
    truncated.entries_mut().pop_back();
    assert_eq!(truncated.verify(), Ok(()));
    assert_ne!(truncated.head_hash(), log_of(6, 10).head_hash());
}

#[test]
fn memory_is_bounded_and_what_is_held_still_verifies() {
    let log = log_of(25, 10);
    assert_eq!((log.len(), log.dropped(), log.next_sequence()), (10, 15, 25));
    assert_eq!(log.entries().next().unwrap().sequence, 15);
    assert_eq!(log.verify(), Ok(()));
    assert_eq!(log.head_hash(), log_of(25, 100).head_hash(), "dropping entries does not change the chain");
    assert_eq!(AuditLog::new(0).capacity(), 1);
}

#[test]
fn queries_filter_by_principal_action_model_time_and_limit() {
    let log = log_of(40, 100);
    let sequences = |filter: Filter| log.query(&filter).iter().map(|entry| entry.sequence).collect::<Vec<_>>();
    assert_eq!(
        sequences(Filter { principal: Some(Principal::Agent(7)), limit: Some(3), ..Filter::default() }),
        [32, 35, 38]
    );
    assert_eq!(sequences(Filter { action: Some(Action::Infer), ..Filter::default() }), [3, 12, 21, 30, 39]);
    assert_eq!(
        sequences(Filter {
            model: Some(ModelRef::parse("lm@1.2.0").unwrap()),
            since_ns: Some(20_000),
            ..Filter::default()
        }),
        [26, 32, 38]
    );
    assert_eq!(
        sequences(Filter { model: Some(ModelRef::parse("lm").unwrap()), limit: Some(2), ..Filter::default() }),
        [36, 38]
    );
    assert_eq!(sequences(Filter { since_ns: Some(37_000), ..Filter::default() }), [37, 38, 39]);
    assert_eq!(sequences(Filter { limit: Some(0), ..Filter::default() }), Vec::<u64>::new());
    assert_eq!(log.query(&Filter::default()).len(), 40);
    assert_eq!(Action::parse("set-budget"), Some(Action::SetBudget));
    assert_eq!(Action::parse("Register"), None);
}

#[test]
fn long_names_and_codes_are_cut_at_a_character_boundary() {
    let mut log = AuditLog::new(4);
    let mut long = event(1);
    long.model = Some(ModelId { name: "é".repeat(40), version: Version::new(1, 0, 0).unwrap() });
    long.outcome = Outcome::Refused { code: "x".repeat(100) };
    let entry = log.append(long).clone();
    assert_eq!(entry.event.model.as_ref().unwrap().name, "é".repeat(32));
    assert_eq!(entry.event.outcome, Outcome::Refused { code: "x".repeat(MAX_CODE_BYTES) });
    let decoded = decode(&log.encode(), 4).unwrap();
    assert_eq!(decoded.log.entries().next(), Some(&entry));
}

#[test]
fn the_log_round_trips_through_its_encoding() {
    let log = log_of(30, 100);
    let bytes = log.encode();
    let decoded = decode(&bytes, 100).unwrap();
    assert_eq!((decoded.records, decoded.end_offset, decoded.torn_tail), (30, bytes.len() as u64, None));
    assert!(decoded.log.entries().eq(log.entries()));
    assert_eq!(decoded.log.head_hash(), log.head_hash());
    // Header then appended records give the same bytes as encoding the whole log.
    let mut appended = AuditLog::new(100).encode();
    assert_eq!(appended.len(), LOG_HEADER_BYTES);
    for entry in log.entries() {
        appended.extend_from_slice(&record(entry));
    }
    assert_eq!(appended, bytes);
    // A smaller capacity keeps the newest entries; appending after a reboot continues the chain.
    let mut rebooted = decode(&bytes, 8).unwrap().log;
    assert_eq!((rebooted.len(), rebooted.dropped(), rebooted.next_sequence()), (8, 22, 30));
    let mut continued = log.clone();
    assert_eq!(rebooted.append(event(30)), continued.append(event(30)));
    // A zero-filled disk after the log reads as its end.
    let mut on_disk = bytes.clone();
    on_disk.resize(bytes.len() + 4096, 0);
    let decoded = decode(&on_disk, 100).unwrap();
    assert_eq!((decoded.records, decoded.end_offset, decoded.torn_tail), (30, bytes.len() as u64, None));
    // A log encoded after dropping entries starts where memory starts and still verifies.
    let held = log_of(30, 5).encode();
    let decoded = decode(&held, 100).unwrap();
    assert_eq!(
        (decoded.records, decoded.log.next_sequence(), decoded.log.entries().next().unwrap().sequence),
        (5, 30, 25)
    );
}

#[test]
fn a_torn_last_record_is_reported_and_the_rest_kept() {
    let log = log_of(5, 100);
    let bytes = log.encode();
    let last = record(log.entries().last().unwrap());
    let last_start = bytes.len() - last.len();
    for cut in 1..last.len() {
        let torn = &bytes[..last_start + cut];
        let decoded = decode(torn, 100).unwrap();
        assert_eq!(decoded.records, 4, "cut {cut}");
        assert_eq!(decoded.end_offset, last_start as u64);
        assert_eq!(decoded.torn_tail, Some(TornTail { offset: last_start as u64, bytes: cut as u64 }));
        assert_eq!(decoded.log.head_hash(), log.entries().nth(3).unwrap().hash);
    }
}

#[test]
fn tampering_on_disk_is_detected_at_the_right_record() {
    let log = log_of(6, 100);
    let records: Vec<Vec<u8>> = log.entries().map(record).collect();
    let header = AuditLog::new(1).encode();
    let file = |records: &[Vec<u8>]| [header.clone(), records.concat()].concat();
    assert_eq!(decode(&file(&records), 100).unwrap().records, 6);
    for index in 0..5usize {
        let mut deleted = records.clone();
        deleted.remove(index);
        assert_eq!(
            decode(&file(&deleted), 100).unwrap_err(),
            DecodeError::Chain(ChainError {
                index: index as u64,
                kind: ChainErrorKind::Sequence { expected: index as u64, found: index as u64 + 1 }
            })
        );
        let mut swapped = records.clone();
        swapped.swap(index, index + 1);
        assert_eq!(decode(&file(&swapped), 100).unwrap_err().code(), "audit-sequence-broken");
        // A byte of the time field changed: the record still parses, its hash no longer matches.
        let mut modified = records.clone();
        modified[index][4 + 8] ^= 0x01;
        assert_eq!(
            decode(&file(&modified), 100).unwrap_err(),
            DecodeError::Chain(ChainError { index: index as u64, kind: ChainErrorKind::Hash })
        );
    }
    let mut long = records.clone();
    long[2][..4].copy_from_slice(&513u32.to_le_bytes());
    let offset = (LOG_HEADER_BYTES + records[0].len() + records[1].len()) as u64;
    assert_eq!(decode(&file(&long), 100).unwrap_err(), DecodeError::BadRecordLength { index: 2, offset, length: 513 });
    let mut garbled = records.clone();
    garbled[1][4 + 16 + 5] = 200;
    assert_eq!(
        decode(&file(&garbled), 100).unwrap_err(),
        DecodeError::BadRecord { index: 1, offset: (LOG_HEADER_BYTES + records[0].len()) as u64 }
    );
}

#[test]
fn headers_that_are_not_a_log_are_refused() {
    assert_eq!(decode(&[], 10).unwrap_err(), DecodeError::NoLog);
    assert_eq!(decode(&[0; 4096], 10).unwrap_err(), DecodeError::NoLog);
    let header = AuditLog::new(1).encode();
    assert_eq!(decode(&header[..51], 10).unwrap_err(), DecodeError::TruncatedHeader { length: 51 });
    let mut magic = header.clone();
    magic[0] = b'X';
    assert_eq!(decode(&magic, 10).unwrap_err(), DecodeError::BadMagic);
    let mut version = header.clone();
    version[8] = 2;
    assert_eq!(decode(&version, 10).unwrap_err(), DecodeError::UnsupportedFormatVersion { version: 2 });
    assert_eq!(decode(&header, 10).unwrap().records, 0);
}

#[test]
fn entries_serialize_for_json() {
    let log = log_of(4, 10);
    let json = serde_json::to_value(log.entries().nth(3).unwrap()).unwrap();
    assert_eq!(json["sequence"], 3);
    assert_eq!(json["time_ns"], 3_000);
    assert_eq!(json["principal"], "console");
    assert_eq!(json["action"], "infer");
    assert_eq!(json["model"]["name"], "agent");
    assert_eq!(json["model"]["version"], "1.0.0");
    assert_eq!(json["outcome"], serde_json::json!({"status": "refused", "code": "rate-limited"}));
    assert_eq!(json["figures"], serde_json::json!({"requested_tokens": 30, "retry_after_ns": 500_000_000}));
    assert_eq!(json["hash"].as_str().unwrap().len(), 64);
}

#[test]
fn the_largest_entry_fits_a_record() {
    let mut log = AuditLog::new(1);
    let all = Some(u64::MAX);
    let largest = Event {
        time_ns: u64::MAX,
        principal: Principal::Agent(u32::MAX),
        action: Action::TrustKey,
        model: Some(ModelId { name: "n".repeat(64), version: Version::new(1, 2, 3).unwrap() }),
        target: Some(Principal::Token(u32::MAX)),
        outcome: Outcome::refused(&"c".repeat(48)),
        figures: Figures {
            bytes: all,
            requested_tokens: all,
            granted_tokens: all,
            used_tokens: all,
            remaining_tokens: all,
            window_reset_ns: all,
            retry_after_ns: all,
            budget_tokens: all,
            window_ns: all,
            rate_per_second: all,
            burst: all,
            max_model_bytes: all,
        },
    };
    let entry = log.append(largest).clone();
    assert_eq!(record(&entry).len(), 4 + 254 + 32);
    assert_eq!(decode(&log.encode(), 1).unwrap().log.entries().next(), Some(&entry));
}

proptest! {
    #[test]
    fn arbitrary_bytes_after_a_header_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut bytes = AuditLog::new(1).encode();
        bytes.extend_from_slice(&tail);
        let _ = decode(&bytes, 4);
    }

    #[test]
    fn a_flipped_bit_in_any_record_is_refused_or_cuts_the_log(position in 0usize..2_000, bit in 0u8..8) {
        let log = log_of(8, 100);
        let mut bytes = log.encode();
        let position = LOG_HEADER_BYTES + position % (bytes.len() - LOG_HEADER_BYTES);
        bytes[position] ^= 1 << bit;
        // A flip can only make decoding fail, or (in a length field) end the log early as a torn tail or a
        // zero length: never yield 8 verified records.
        if let Ok(decoded) = decode(&bytes, 100) {
            prop_assert!(decoded.records < 8);
        }
    }
}

#[test]
fn the_install_action_is_code_10_and_reads_back_from_its_content() {
    let install = Event {
        action: Action::Install,
        model: model("memory-agent", 0),
        outcome: Outcome::refused("shape-mismatch"),
        figures: Figures::default(),
        ..event(1)
    };
    let mut content = entry::encode_content(4, &install);
    // Sequence, time and principal (tag and id) come first.
    assert_eq!(content[8 + 8 + 5], 10);
    assert_eq!(entry::decode_content(&content), Some((4, install)));
    assert_eq!((Action::parse("install"), Action::Install.name()), (Some(Action::Install), "install"));
    content[8 + 8 + 5] = 16;
    assert_eq!(entry::decode_content(&content), None);
}

#[test]
fn the_lifecycle_actions_are_codes_11_to_15_and_read_back() {
    let names = ["promote", "demote", "rollback", "force-promote", "canary-rollback"];
    for (offset, name) in names.into_iter().enumerate() {
        let action = Action::parse(name).unwrap();
        assert_eq!(action.name(), name);
        let lifecycle = Event { action, outcome: Outcome::refused("reward-drop"), ..event(1) };
        let content = entry::encode_content(7, &lifecycle);
        assert_eq!(content[8 + 8 + 5], 11 + offset as u8);
        assert_eq!(entry::decode_content(&content), Some((7, lifecycle)));
    }
    // The first ten codes are unchanged: logs written before the lifecycle read back as they were.
    assert_eq!(Action::ALL[9], Action::Install);
}
