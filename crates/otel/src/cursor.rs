//! Exporting a sequence-numbered source (such as the meta-agent's decision traces) with a cursor: every entry
//! is exported exactly once or counted as evicted, never sent twice nor skipped in silence.
//!
//! The exporter keeps a cursor: the number of the next entry it has not exported. [`CursorExporter::next_batch`]
//! reads from the cursor without moving it; only [`CursorExporter::commit`], called once the batch was
//! accepted, moves it past the batch. A failed export is simply read again. Entries the source evicted before
//! the exporter got to them are reported as a count in the batch and added to the counters on commit.

use alloc::vec::Vec;

/// Entries numbered consecutively, of which the source keeps only the newest.
pub trait SequencedSource {
    /// What an entry is (copied out of the source).
    type Entry;

    /// The number the next entry will get: one past the newest.
    fn next_seq(&self) -> u64;

    /// The number of the oldest entry still held (equal to [`Self::next_seq`] when none is).
    fn oldest_seq(&self) -> u64;

    /// Entry number `seq`, when still held.
    fn get(&self, seq: u64) -> Option<Self::Entry>;
}

/// What [`CursorExporter::next_batch`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorBatch<E> {
    /// Entries between the cursor and `first_seq` that the source evicted before they were read.
    pub evicted: u64,
    /// The number of `entries[0]` (the cursor moved past evicted entries).
    pub first_seq: u64,
    /// Consecutive entries from `first_seq`, oldest first.
    pub entries: Vec<E>,
    /// The cursor after this batch: `first_seq + entries.len()`.
    pub next_cursor: u64,
    /// The cursor the batch was read at.
    read_at: u64,
}

impl<E> CursorBatch<E> {
    /// The same batch with each entry converted by `convert` (it still commits as the batch it was read as).
    pub fn map<F>(self, convert: impl FnMut(E) -> F) -> CursorBatch<F> {
        CursorBatch {
            evicted: self.evicted,
            first_seq: self.first_seq,
            entries: self.entries.into_iter().map(convert).collect(),
            next_cursor: self.next_cursor,
            read_at: self.read_at,
        }
    }
}

/// The exporter's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CursorCounters {
    /// The next entry to export.
    pub cursor: u64,
    /// Entries exported (in committed batches).
    pub exported: u64,
    /// Entries evicted by the source before they were exported.
    pub evicted: u64,
    /// Committed batches that had entries.
    pub batches: u64,
}

/// [`CursorExporter::commit`] was given a batch that was not read at the current cursor (read before another
/// commit, or by another exporter); nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaleBatch {
    /// The cursor the batch was read at.
    pub read_at: u64,
    /// The exporter's cursor.
    pub cursor: u64,
}

/// Follows a [`SequencedSource`] with a cursor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CursorExporter {
    counters: CursorCounters,
}

impl CursorExporter {
    /// An exporter whose first entry is number `cursor` (0: everything the source ever held).
    pub const fn starting_at(cursor: u64) -> Self {
        CursorExporter { counters: CursorCounters { cursor, exported: 0, evicted: 0, batches: 0 } }
    }

    /// Its counters, cursor included.
    pub fn counters(&self) -> CursorCounters {
        self.counters
    }

    /// Reads up to `max` entries from the cursor, without moving it. When the source no longer holds the
    /// cursor's entry, the batch starts at its oldest and says how many were evicted. A cursor past the
    /// source's newest (a source that started again) reads nothing.
    pub fn next_batch<S: SequencedSource>(&self, source: &S, max: usize) -> CursorBatch<S::Entry> {
        let cursor = self.counters.cursor;
        let next_seq = source.next_seq();
        let first_seq = cursor.max(source.oldest_seq().min(next_seq));
        let evicted = first_seq - cursor;
        let available = next_seq.saturating_sub(first_seq);
        let mut entries = Vec::with_capacity(available.min(max as u64) as usize);
        for seq in first_seq..first_seq + available.min(max as u64) {
            match source.get(seq) {
                Some(entry) => entries.push(entry),
                // The source holds a consecutive run; a hole ends the batch rather than skip an entry.
                None => break,
            }
        }
        let next_cursor = first_seq + entries.len() as u64;
        CursorBatch { evicted, first_seq, entries, next_cursor, read_at: cursor }
    }

    /// Moves the cursor past `batch`, once it was exported, and counts its entries and evictions.
    pub fn commit<E>(&mut self, batch: &CursorBatch<E>) -> Result<(), StaleBatch> {
        if batch.read_at != self.counters.cursor {
            return Err(StaleBatch { read_at: batch.read_at, cursor: self.counters.cursor });
        }
        self.counters.cursor = batch.next_cursor;
        self.counters.exported += batch.entries.len() as u64;
        self.counters.evicted += batch.evicted;
        self.counters.batches += u64::from(!batch.entries.is_empty());
        Ok(())
    }
}

#[cfg(test)]
mod tests;
