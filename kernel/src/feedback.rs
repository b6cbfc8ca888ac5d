//! Feedback on the meta-agent's decisions (`feedback`): the store of `sis_autonomy::feedback`, kept in memory and,
//! with a virtio-blk disk attached, in the disk's feedback region (`disk_region::FEEDBACK`), read back after a
//! reboot.
//!
//! The store is opened on first use (from a thread, since reading the disk blocks). A region of zeros is a fresh
//! disk: the header is written. A region holding something that is not a feedback store is left as it is and the
//! store stays in memory, with the reason in `feedback status`. A record torn by a crash is dropped and its bytes
//! zeroed. Each session (opening) rewrites the header's session count, so entries of different boots are told
//! apart.

use serde::Serialize;
use sis_autonomy::feedback::{decode, header, record, DecodeError, Feedback, FeedbackError, Store, Subject, Verdict};

use crate::disk_region::{Region, RegionStatus, FEEDBACK};

/// Entries kept in memory at most (the region holds at least 2,000 of the largest and about 10,000 typical ones).
pub const CAPACITY: usize = 4096;

/// The store and its copy on the disk.
pub struct State {
    /// The entries.
    pub store: Store,
    region: Region,
    /// Entries read back from the disk when the store was opened.
    recovered_entries: u64,
    /// Bytes of a torn or corrupt last record dropped (and zeroed) when the store was opened.
    dropped_bytes: u64,
}

/// Where the store is kept.
#[derive(Debug, Clone, Serialize)]
pub struct Persistence {
    /// The region: `state`, `start_lba`, `bytes`, `capacity_bytes`, `reason`.
    #[serde(flatten)]
    pub region: RegionStatus,
    /// Entries read back from the disk when the store was opened.
    pub recovered_entries: u64,
    /// Bytes of a torn or corrupt last record dropped when the store was opened.
    pub dropped_bytes: u64,
}

static STATE: spin::Mutex<Option<State>> = spin::Mutex::new(None);

impl State {
    fn open() -> State {
        let (mut region, bytes) = match Region::read(FEEDBACK) {
            Ok(Some(read)) => read,
            Ok(None) => return State::in_memory(Region::no_disk(FEEDBACK)),
            Err(refused) => return State::in_memory(refused),
        };
        match decode(&bytes, CAPACITY) {
            Err(DecodeError::Empty) => {
                let store = Store::new(CAPACITY, 1);
                let image = header(store.session()).to_vec();
                let end = image.len();
                region.set_image(image);
                region.write(0, end);
                State { store, region, recovered_entries: 0, dropped_bytes: 0 }
            }
            Ok(decoded) => {
                region.set_image(bytes.get(..decoded.end_offset).map(<[u8]>::to_vec).unwrap_or_default());
                // This opening is a new session: the header says so before anything else is written.
                region.overwrite(0, &header(decoded.store.session()));
                if decoded.dropped_bytes > 0 {
                    region.write(decoded.end_offset, decoded.end_offset + decoded.dropped_bytes);
                }
                State {
                    recovered_entries: decoded.store.entries().len() as u64,
                    store: decoded.store,
                    region,
                    dropped_bytes: decoded.dropped_bytes as u64,
                }
            }
            Err(error) => {
                region.refuse(error.code(), alloc::format!("{error}; the disk's feedback region is left untouched"));
                State::in_memory(region)
            }
        }
    }

    fn in_memory(region: Region) -> State {
        State { store: Store::new(CAPACITY, 1), region, recovered_entries: 0, dropped_bytes: 0 }
    }

    /// Stores a verdict and writes its record to the disk.
    pub fn record(
        &mut self,
        subject: Subject,
        verdict: Verdict,
        comment: &str,
        principal: &str,
        now_ns: u64,
    ) -> Result<Feedback, FeedbackError> {
        let entry = self.store.record(subject, verdict, comment, principal, now_ns)?.clone();
        self.region.append(&record(&entry));
        Ok(entry)
    }

    /// Where the store is kept.
    pub fn persistence(&self) -> Persistence {
        Persistence {
            region: self.region.status(),
            recovered_entries: self.recovered_entries,
            dropped_bytes: self.dropped_bytes,
        }
    }
}

/// Runs `body` with the store, opening it first if this is its first use.
pub fn with<T>(body: impl FnOnce(&mut State) -> T) -> T {
    let mut guard = crate::sync::lock(&STATE);
    let state = match guard.as_mut() {
        Some(state) => state,
        None => guard.insert(State::open()),
    };
    body(state)
}
