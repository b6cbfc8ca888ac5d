use alloc::string::String;
use alloc::vec::Vec;

use super::*;

fn subject(decision: u64, policy: &str, action: &str) -> Subject {
    Subject {
        decision,
        decision_at_ns: 1_000 + decision,
        policy: String::from(policy),
        action: String::from(action),
        disposition: String::from("acted"),
    }
}

/// A store of four entries over two actions, two policies and two windows of 1 s.
fn sample() -> Store {
    let mut store = Store::new(16, 1);
    store.record(subject(0, "heuristic", "proactive_reclaim"), Verdict::Good, "freed in time", "console", 100).unwrap();
    store.record(subject(1, "heuristic", "throttle_allocations"), Verdict::Bad, "", "console", 900_000_000).unwrap();
    store.record(subject(1, "heuristic", "throttle_allocations"), Verdict::Bad, "", "token:3", 1_000_000_000).unwrap();
    store
        .record(subject(2, "learned", "proactive_reclaim"), Verdict::Bad, "too late", "console", 2_500_000_000)
        .unwrap();
    store
}

#[test]
fn entries_keep_the_decision_figures_and_number_from_zero() {
    let store = sample();
    let entries = store.entries();
    assert_eq!(entries.len(), 4);
    assert_eq!(entries.iter().map(|entry| entry.sequence).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(entries[0].subject, subject(0, "heuristic", "proactive_reclaim"));
    assert_eq!(entries[3].comment, "too late");
    assert_eq!(entries[2].principal, "token:3");
    assert!(entries.iter().all(|entry| entry.session == 1));
}

#[test]
fn stats_count_by_action_policy_and_window() {
    let stats = sample().stats(&Filter::default(), 1_000_000_000);
    assert_eq!(stats.total, 4);
    assert_eq!(stats.counts, Counts { good: 1, bad: 3, bad_per_mille: Some(750) });
    let group = |groups: &[Group], key: &str| groups.iter().find(|group| group.key == key).unwrap().counts;
    assert_eq!(
        stats.by_action.iter().map(|group| group.key.as_str()).collect::<Vec<_>>(),
        ["proactive_reclaim", "throttle_allocations"]
    );
    assert_eq!(group(&stats.by_action, "proactive_reclaim"), Counts { good: 1, bad: 1, bad_per_mille: Some(500) });
    assert_eq!(group(&stats.by_action, "throttle_allocations"), Counts { good: 0, bad: 2, bad_per_mille: Some(1000) });
    assert_eq!(group(&stats.by_policy, "heuristic"), Counts { good: 1, bad: 2, bad_per_mille: Some(666) });
    assert_eq!(group(&stats.by_policy, "learned"), Counts { good: 0, bad: 1, bad_per_mille: Some(1000) });
    let windows: Vec<(u32, u64, u64, u64)> = stats
        .by_window
        .iter()
        .map(|window| (window.session, window.start_ns, window.counts.good, window.counts.bad))
        .collect();
    assert_eq!(windows, [(1, 0, 1, 1), (1, 1_000_000_000, 0, 1), (1, 2_000_000_000, 0, 1)]);
}

#[test]
fn filters_select_by_decision_verdict_and_principal() {
    let store = sample();
    let sequences = |filter: Filter<'_>| store.query(&filter).map(|entry| entry.sequence).collect::<Vec<_>>();
    assert_eq!(sequences(Filter { decision: Some(1), ..Filter::default() }), [1, 2]);
    assert_eq!(sequences(Filter { verdict: Some(Verdict::Good), ..Filter::default() }), [0]);
    assert_eq!(
        sequences(Filter { principal: Some("console"), verdict: Some(Verdict::Bad), ..Filter::default() }),
        [1, 3]
    );
    let stats = store.stats(&Filter { principal: Some("token:3"), ..Filter::default() }, 0);
    assert_eq!((stats.total, stats.window_ns, stats.counts.bad), (1, 1, 1));
    let empty = store.stats(&Filter { decision: Some(9), ..Filter::default() }, 10);
    assert_eq!((empty.total, empty.counts.bad_per_mille, empty.by_action.len()), (0, None, 0));
}

#[test]
fn refusals_store_nothing() {
    let mut store = sample();
    let before = store.clone();
    let long = "x".repeat(MAX_COMMENT_BYTES + 1);
    assert_eq!(
        store.record(subject(5, "heuristic", "none"), Verdict::Good, &long, "console", 0).unwrap_err(),
        FeedbackError::CommentTooLong { bytes: MAX_COMMENT_BYTES + 1 }
    );
    assert_eq!(
        store.record(subject(5, "heuristic", "none"), Verdict::Good, "ok\nthen", "console", 0).unwrap_err(),
        FeedbackError::ControlCharacter { offset: 2 }
    );
    assert_eq!(
        store.record(subject(1, "heuristic", "throttle_allocations"), Verdict::Good, "", "token:3", 0).unwrap_err(),
        FeedbackError::Duplicate { decision: 1, sequence: 2 }
    );
    assert_eq!(store, before);
    // A comment of exactly the limit is kept; the same decision id at another time is another decision.
    let exact = "y".repeat(MAX_COMMENT_BYTES);
    let other_time = Subject { decision_at_ns: 7, ..subject(1, "heuristic", "throttle_allocations") };
    assert_eq!(store.record(other_time, Verdict::Good, &exact, "token:3", 0).unwrap().sequence, 4);

    let mut full = Store::new(1, 1);
    full.record(subject(0, "heuristic", "none"), Verdict::Good, "", "console", 0).unwrap();
    assert_eq!(
        full.record(subject(1, "heuristic", "none"), Verdict::Good, "", "console", 0).unwrap_err(),
        FeedbackError::Full { capacity: 1 }
    );
    assert_eq!(full.entries().len(), 1);
}

#[test]
fn long_names_are_cut_at_a_character_boundary() {
    let mut store = Store::new(4, 1);
    let name = "é".repeat(MAX_NAME_BYTES); // two bytes each
    let entry = store.record(subject(0, &name, "none"), Verdict::Good, "", &name, 0).unwrap();
    assert_eq!(entry.principal.len(), MAX_NAME_BYTES);
    assert_eq!(entry.subject.policy, "é".repeat(MAX_NAME_BYTES / 2));
}

/// The header and every record of `store`, in a region of `size` bytes.
fn region(store: &Store, size: usize) -> Vec<u8> {
    let mut bytes = header(store.session()).to_vec();
    for entry in store.entries() {
        bytes.extend_from_slice(&record(entry));
    }
    bytes.resize(size, 0);
    bytes
}

#[test]
fn a_region_reads_back_as_the_next_session() {
    let store = sample();
    let bytes = region(&store, 4096);
    let decoded = decode(&bytes, 16).unwrap();
    assert_eq!(decoded.store.entries(), store.entries());
    assert_eq!(decoded.store.session(), 2);
    assert_eq!(decoded.dropped_bytes, 0);
    let used: usize = HEADER_BYTES + store.entries().iter().map(|entry| record(entry).len()).sum::<usize>();
    assert_eq!(decoded.end_offset, used);
    // Appending after end_offset and reading again gives the new entry in the new session.
    let mut next = decoded.store;
    next.record(subject(9, "learned", "none"), Verdict::Good, "", "console", 5).unwrap();
    let mut bytes = bytes;
    let appended = record(&next.entries()[4]);
    bytes[used..used + appended.len()].copy_from_slice(&appended);
    let again = decode(&bytes, 16).unwrap();
    assert_eq!(again.store.entries()[4].session, 2);
    assert_eq!(again.store.entries(), next.entries());
}

#[test]
fn a_torn_or_corrupt_last_record_ends_the_log() {
    let store = sample();
    let bytes = region(&store, 2048);
    let last_start = HEADER_BYTES + store.entries()[..3].iter().map(|entry| record(entry).len()).sum::<usize>();
    let last_length = record(&store.entries()[3]).len();
    // Cut short: its last 8 bytes (the checksum) never reached the disk.
    let mut torn = bytes.clone();
    torn[last_start + last_length - 8..last_start + last_length].fill(0);
    let decoded = decode(&torn, 16).unwrap();
    assert_eq!(decoded.store.entries(), &store.entries()[..3]);
    assert_eq!(decoded.end_offset, last_start);
    let last_nonzero = torn.iter().rposition(|&byte| byte != 0).unwrap() + 1;
    assert_eq!(decoded.dropped_bytes, last_nonzero - last_start);
    // A flipped payload bit: the checksum no longer matches.
    let mut flipped = bytes.clone();
    flipped[last_start + 20] ^= 1;
    let decoded = decode(&flipped, 16).unwrap();
    assert_eq!(decoded.store.entries().len(), 3);
    assert_eq!(decoded.dropped_bytes, last_length);
    // The region ends exactly after the last record: no length field to read.
    let exact = &bytes[..last_start + last_length];
    assert_eq!(decode(exact, 16).unwrap().store.entries().len(), 4);
}

#[test]
fn foreign_bytes_are_not_a_store() {
    assert_eq!(decode(&[0u8; 512], 16).unwrap_err(), DecodeError::Empty);
    assert_eq!(decode(b"SISAUDIT\x01\0\0\0", 16).unwrap_err(), DecodeError::NotAStore);
    let mut bytes = region(&sample(), 1024);
    bytes[8] = 2;
    assert_eq!(decode(&bytes, 16).unwrap_err(), DecodeError::Version(2));
    assert_eq!(decode(&region(&sample(), 1024), 3).unwrap_err(), DecodeError::TooMany { capacity: 3 });
    // A record with a valid checksum whose verdict code is unknown was written by other code.
    let mut entry_bytes = record(&sample().entries()[0]);
    entry_bytes[2 + 20] = 7; // the verdict byte: after u64 sequence, u32 session, u64 at_ns
    let payload_length = entry_bytes.len() - 10;
    let checksum = fnv1a(&entry_bytes[2..2 + payload_length]).to_le_bytes();
    entry_bytes[2 + payload_length..].copy_from_slice(&checksum);
    let mut bytes = header(1).to_vec();
    bytes.extend_from_slice(&entry_bytes);
    assert_eq!(decode(&bytes, 16).unwrap_err(), DecodeError::BadRecord { offset: HEADER_BYTES });
    // A sequence number out of place, too.
    let mut second = sample().entries()[1].clone();
    second.sequence = 0;
    let mut bytes = header(1).to_vec();
    bytes.extend_from_slice(&record(&second));
    bytes.extend_from_slice(&record(&second));
    assert_eq!(
        decode(&bytes, 16).unwrap_err(),
        DecodeError::BadRecord { offset: HEADER_BYTES + record(&second).len() }
    );
}

#[test]
fn the_largest_record_fits_the_limit() {
    let mut store = Store::new(1, 1);
    let name = "n".repeat(MAX_NAME_BYTES);
    let subject = Subject {
        decision: u64::MAX,
        decision_at_ns: u64::MAX,
        policy: name.clone(),
        action: name.clone(),
        disposition: name.clone(),
    };
    let entry = store.record(subject, Verdict::Bad, &"c".repeat(MAX_COMMENT_BYTES), &name, u64::MAX).unwrap().clone();
    assert_eq!(record(&entry).len(), 2 + MAX_RECORD_BYTES + 8);
    let mut bytes = header(1).to_vec();
    bytes.extend_from_slice(&record(&entry));
    assert_eq!(decode(&bytes, 1).unwrap().store.entries(), [entry]);
}
