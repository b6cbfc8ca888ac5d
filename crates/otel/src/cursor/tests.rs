use alloc::collections::VecDeque;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;

/// A ring of the last `capacity` entries numbered from 0; entry `n` is `n * 10`.
#[derive(Debug)]
struct Ring {
    held: VecDeque<u64>,
    next: u64,
    capacity: usize,
}

impl Ring {
    fn new(capacity: usize) -> Self {
        Ring { held: VecDeque::new(), next: 0, capacity }
    }

    fn append(&mut self) {
        if self.held.len() == self.capacity {
            self.held.pop_front();
        }
        self.held.push_back(self.next * 10);
        self.next += 1;
    }
}

impl SequencedSource for Ring {
    type Entry = u64;

    fn next_seq(&self) -> u64 {
        self.next
    }

    fn oldest_seq(&self) -> u64 {
        self.next - self.held.len() as u64
    }

    fn get(&self, seq: u64) -> Option<u64> {
        let index = seq.checked_sub(self.oldest_seq())?;
        self.held.get(usize::try_from(index).ok()?).copied()
    }
}

#[test]
fn a_batch_is_read_from_the_cursor_and_only_a_commit_moves_it() {
    let mut ring = Ring::new(8);
    for _ in 0..5 {
        ring.append();
    }
    let mut exporter = CursorExporter::starting_at(0);
    let batch = exporter.next_batch(&ring, 3);
    assert_eq!((batch.evicted, batch.first_seq, batch.next_cursor), (0, 0, 3));
    assert_eq!(batch.entries, [0, 10, 20]);
    // The export failed: reading again gives the same batch.
    assert_eq!(exporter.next_batch(&ring, 3), batch);
    exporter.commit(&batch).unwrap();
    // Committing it twice is refused and changes nothing.
    assert_eq!(exporter.commit(&batch), Err(StaleBatch { read_at: 0, cursor: 3 }));
    let rest = exporter.next_batch(&ring, 10);
    assert_eq!((rest.first_seq, rest.entries.as_slice()), (3, &[30, 40][..]));
    exporter.commit(&rest).unwrap();
    let empty = exporter.next_batch(&ring, 10);
    assert_eq!((empty.evicted, empty.entries.len(), empty.next_cursor), (0, 0, 5));
    exporter.commit(&empty).unwrap();
    assert_eq!(exporter.counters(), CursorCounters { cursor: 5, exported: 5, evicted: 0, batches: 2 });
}

#[test]
fn entries_evicted_before_they_were_read_are_counted_not_skipped_in_silence() {
    let mut ring = Ring::new(4);
    let mut exporter = CursorExporter::starting_at(0);
    for _ in 0..10 {
        ring.append();
    }
    // Held: 6..=9; 0..=5 are gone.
    let batch = exporter.next_batch(&ring, 3);
    assert_eq!((batch.evicted, batch.first_seq, batch.next_cursor), (6, 6, 9));
    assert_eq!(batch.entries, [60, 70, 80]);
    // Two more arrive (evicting 6 and 7) while the batch is out, and its export fails: read again, the
    // eviction count includes them and nothing is sent that the first attempt had not.
    ring.append();
    ring.append();
    let again = exporter.next_batch(&ring, 3);
    assert_eq!((again.evicted, again.first_seq, again.entries.as_slice()), (8, 8, &[80, 90, 100][..]));
    exporter.commit(&again).unwrap();
    assert_eq!(exporter.counters(), CursorCounters { cursor: 11, exported: 3, evicted: 8, batches: 1 });
}

#[test]
fn a_cursor_past_the_source_reads_nothing_and_stays() {
    let mut ring = Ring::new(4);
    ring.append();
    let exporter = CursorExporter::starting_at(7);
    let batch = exporter.next_batch(&ring, 3);
    assert_eq!((batch.evicted, batch.first_seq, batch.entries.len(), batch.next_cursor), (0, 7, 0, 7));
    assert_eq!(CursorExporter::starting_at(0).next_batch(&ring, 0).entries.len(), 0);
}

#[derive(Debug, Clone)]
enum Step {
    Append(u8),
    Export { max: usize, succeed: bool },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u8..6).prop_map(Step::Append),
        ((0usize..6), any::<bool>()).prop_map(|(max, succeed)| Step::Export { max, succeed }),
    ]
}

proptest! {
    /// Random interleavings of appends (which evict), and exports that succeed or fail: at the end, after a
    /// final drain, every entry ever appended was exported exactly once, in order, or counted as evicted, and
    /// the evicted ones were really gone when the exporter reached them.
    #[test]
    fn every_entry_is_exported_exactly_once_or_counted_as_evicted(
        capacity in 1usize..8,
        steps in proptest::collection::vec(step(), 0..200),
    ) {
        let mut ring = Ring::new(capacity);
        let mut exporter = CursorExporter::starting_at(0);
        let mut received: Vec<u64> = Vec::new();
        let mut evicted_seqs: Vec<u64> = Vec::new();
        let export = |ring: &Ring, exporter: &mut CursorExporter, max: usize, succeed: bool,
                          received: &mut Vec<u64>, evicted_seqs: &mut Vec<u64>| -> Result<(), TestCaseError> {
            let batch = exporter.next_batch(ring, max);
            prop_assert!(batch.entries.len() <= max);
            prop_assert_eq!(batch.first_seq, exporter.counters().cursor + batch.evicted);
            for seq in exporter.counters().cursor..batch.first_seq {
                prop_assert!(seq < ring.oldest_seq(), "entry {} was held but skipped", seq);
            }
            if succeed {
                evicted_seqs.extend(exporter.counters().cursor..batch.first_seq);
                received.extend(batch.entries.iter().copied());
                exporter.commit(&batch).unwrap();
            }
            Ok(())
        };
        for step in steps {
            match step {
                Step::Append(count) => (0..count).for_each(|_| ring.append()),
                Step::Export { max, succeed } => {
                    export(&ring, &mut exporter, max, succeed, &mut received, &mut evicted_seqs)?
                }
            }
        }
        export(&ring, &mut exporter, usize::MAX, true, &mut received, &mut evicted_seqs)?;
        let exported_seqs: Vec<u64> = received.iter().map(|entry| entry / 10).collect();
        prop_assert!(exported_seqs.windows(2).all(|pair| pair[0] < pair[1]), "out of order or twice");
        let mut all: Vec<u64> = exported_seqs.iter().chain(&evicted_seqs).copied().collect();
        all.sort_unstable();
        prop_assert_eq!(all, (0..ring.next_seq()).collect::<Vec<_>>());
        let counters = exporter.counters();
        prop_assert_eq!(counters.exported, exported_seqs.len() as u64);
        prop_assert_eq!(counters.evicted, evicted_seqs.len() as u64);
        prop_assert_eq!(counters.cursor, ring.next_seq());
    }
}
