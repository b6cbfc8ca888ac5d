//! A person's feedback on the meta-agent's decisions: stored with what the decision was, aggregated, and
//! encoded for the disk.
//!
//! Feedback names a decision by its trace id, but a trace is kept only for a while and ids start again when
//! the meta-agent is replaced (`autoctl policy`) or the kernel boots. So an entry carries its decision's own
//! figures, taken from the trace when the feedback is given: the id, the decision's time, the policy, the
//! action and what became of it. An entry is therefore meaningful on its own, after the trace is gone and
//! after a reboot. `session` numbers the store's openings (one per boot that used it), so entries of
//! different boots are told apart.
//!
//! One person (principal) judges a decision once: a second verdict from the same principal on the same
//! decision is refused, so `stats` counts people's judgements, not repetitions.
//!
//! # Encoding (the disk region)
//! ```text
//! header (16 bytes): "SISFEEDB" | u32 format version (1) | u32 sessions opened so far
//! record:            u16 payload length L (1..=MAX_RECORD_BYTES) | L bytes payload | u64 FNV-1a of the payload
//! payload:           u64 sequence | u32 session | u64 at_ns | u8 verdict (1 good, 2 bad) | u64 decision
//!                    | u64 decision_at_ns | then principal, policy, action, disposition, comment,
//!                    each u16 length + UTF-8
//! ```
//! Integers are little-endian. The records end at a length of 0 (a zero-filled region needs no length of
//! its own). A record cut short by the end of the bytes, or whose checksum does not match, ends the log: it
//! and every byte after it up to the last nonzero one are reported as [`Decoded::dropped_bytes`], so the
//! caller can clear them and append after [`Decoded::end_offset`]. The checksum finds writes torn by a
//! crash; it is not a defence against tampering (the governance audit log is the tamper-evident one).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::Serialize;

/// The longest comment, in bytes.
pub const MAX_COMMENT_BYTES: usize = 256;
/// The longest principal, policy, action or disposition name kept, in bytes (longer ones are cut).
pub const MAX_NAME_BYTES: usize = 48;
/// The first 8 bytes of an encoded store.
pub const MAGIC: [u8; 8] = *b"SISFEEDB";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes of the header.
pub const HEADER_BYTES: usize = 16;
/// The largest payload a record may have (fixed fields, four names and a comment at their limits).
pub const MAX_RECORD_BYTES: usize = 37 + 5 * 2 + 4 * MAX_NAME_BYTES + MAX_COMMENT_BYTES;

/// A person's judgement of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The decision was right.
    Good,
    /// The decision was wrong.
    Bad,
}

impl Verdict {
    /// `good` or `bad`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Good => "good",
            Verdict::Bad => "bad",
        }
    }

    /// The verdict named `text` (`good` or `bad`).
    pub fn parse(text: &str) -> Option<Verdict> {
        [Verdict::Good, Verdict::Bad].into_iter().find(|verdict| verdict.name() == text)
    }

    fn code(self) -> u8 {
        match self {
            Verdict::Good => 1,
            Verdict::Bad => 2,
        }
    }

    fn from_code(code: u8) -> Option<Verdict> {
        match code {
            1 => Some(Verdict::Good),
            2 => Some(Verdict::Bad),
            _ => None,
        }
    }
}

/// The decision feedback is about, as its trace described it when the feedback was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subject {
    /// The trace id.
    pub decision: u64,
    /// When the decision was made (ns of the kernel's clock, this boot).
    pub decision_at_ns: u64,
    /// The policy that made it.
    pub policy: String,
    /// The action it chose (`none`, `proactive_reclaim`, ...).
    pub action: String,
    /// What became of it (`acted`, `held`, `no_action`, ...).
    pub disposition: String,
}

/// One stored judgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Feedback {
    /// 0 for the store's first entry ever, then +1 per entry.
    pub sequence: u64,
    /// The store opening (boot) it was given in, from 1.
    pub session: u32,
    /// When it was given (ns of the kernel's clock in that session).
    pub at_ns: u64,
    /// Who gave it (`console`, `token:ID`).
    pub principal: String,
    /// Good or bad.
    pub verdict: Verdict,
    /// The person's words (may be empty).
    pub comment: String,
    /// The decision judged.
    #[serde(flatten)]
    pub subject: Subject,
}

/// Why feedback was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedbackError {
    /// The comment is longer than [`MAX_COMMENT_BYTES`].
    CommentTooLong {
        /// Its length.
        bytes: usize,
    },
    /// The comment holds a control character (a newline, an escape, ...).
    ControlCharacter {
        /// Byte offset of the first one.
        offset: usize,
    },
    /// This principal judged this decision already.
    Duplicate {
        /// The decision.
        decision: u64,
        /// The earlier entry's sequence number.
        sequence: u64,
    },
    /// The store holds `capacity` entries.
    Full {
        /// Entries it holds at most.
        capacity: usize,
    },
}

impl FeedbackError {
    /// A stable code for JSON.
    pub fn code(&self) -> &'static str {
        match self {
            FeedbackError::CommentTooLong { .. } => "comment-too-long",
            FeedbackError::ControlCharacter { .. } => "bad-comment",
            FeedbackError::Duplicate { .. } => "duplicate-feedback",
            FeedbackError::Full { .. } => "feedback-full",
        }
    }
}

impl fmt::Display for FeedbackError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeedbackError::CommentTooLong { bytes } => {
                write!(formatter, "the comment has {bytes} bytes; at most {MAX_COMMENT_BYTES} are kept")
            }
            FeedbackError::ControlCharacter { offset } => {
                write!(formatter, "the comment has a control character at byte {offset}")
            }
            FeedbackError::Duplicate { decision, sequence } => {
                write!(formatter, "you judged decision {decision} already (feedback #{sequence})")
            }
            FeedbackError::Full { capacity } => {
                write!(formatter, "the feedback store holds {capacity} entries, its most")
            }
        }
    }
}

/// Good and bad counts of one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Good verdicts.
    pub good: u64,
    /// Bad verdicts.
    pub bad: u64,
    /// `bad / (good + bad)`, per mille rounded down (none without verdicts).
    pub bad_per_mille: Option<u16>,
}

impl Counts {
    fn add(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Good => self.good += 1,
            Verdict::Bad => self.bad += 1,
        }
        self.bad_per_mille = Some((self.bad * 1000 / (self.good + self.bad)) as u16);
    }
}

/// The counts of the entries with one key (an action or a policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// The action or policy.
    pub key: String,
    /// Its verdicts.
    #[serde(flatten)]
    pub counts: Counts,
}

/// The counts of the entries given in one time window of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    /// The session.
    pub session: u32,
    /// Start of the window (a multiple of the window length, ns of that session's clock).
    pub start_ns: u64,
    /// Its verdicts.
    #[serde(flatten)]
    pub counts: Counts,
}

/// Feedback aggregated by action, policy and time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Entries counted.
    pub total: u64,
    /// All of them.
    #[serde(flatten)]
    pub counts: Counts,
    /// By the action judged, sorted by action.
    pub by_action: Vec<Group>,
    /// By the policy that decided, sorted by policy.
    pub by_policy: Vec<Group>,
    /// Length of the windows of `by_window`, ns.
    pub window_ns: u64,
    /// By the window the feedback was given in, oldest first (windows without feedback left out).
    pub by_window: Vec<Window>,
}

/// Which entries a query returns.
#[derive(Debug, Clone, Default)]
pub struct Filter<'a> {
    /// Only about this decision id.
    pub decision: Option<u64>,
    /// Only with this verdict.
    pub verdict: Option<Verdict>,
    /// Only from this principal.
    pub principal: Option<&'a str>,
}

impl Filter<'_> {
    fn matches(&self, entry: &Feedback) -> bool {
        self.decision.is_none_or(|decision| entry.subject.decision == decision)
            && self.verdict.is_none_or(|verdict| entry.verdict == verdict)
            && self.principal.is_none_or(|principal| entry.principal == principal)
    }
}

/// Every judgement given, in order, up to a capacity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    entries: Vec<Feedback>,
    capacity: usize,
    session: u32,
}

impl Store {
    /// An empty store for `capacity` entries, in session `session`.
    pub fn new(capacity: usize, session: u32) -> Self {
        Store { entries: Vec::new(), capacity, session }
    }

    /// The session new entries get.
    pub fn session(&self) -> u32 {
        self.session
    }

    /// Entries it holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> &[Feedback] {
        &self.entries
    }

    /// Stores `principal`'s `verdict` on `subject` at `now_ns`; nothing is stored on an error.
    pub fn record(
        &mut self,
        subject: Subject,
        verdict: Verdict,
        comment: &str,
        principal: &str,
        now_ns: u64,
    ) -> Result<&Feedback, FeedbackError> {
        if comment.len() > MAX_COMMENT_BYTES {
            return Err(FeedbackError::CommentTooLong { bytes: comment.len() });
        }
        if let Some((offset, _)) = comment.char_indices().find(|(_, character)| character.is_control()) {
            return Err(FeedbackError::ControlCharacter { offset });
        }
        let principal = cut(principal);
        let subject = Subject {
            policy: String::from(cut(&subject.policy)),
            action: String::from(cut(&subject.action)),
            disposition: String::from(cut(&subject.disposition)),
            ..subject
        };
        if let Some(earlier) = self.entries.iter().find(|entry| {
            entry.session == self.session
                && entry.principal == principal
                && entry.subject.decision == subject.decision
                && entry.subject.decision_at_ns == subject.decision_at_ns
        }) {
            return Err(FeedbackError::Duplicate { decision: subject.decision, sequence: earlier.sequence });
        }
        if self.entries.len() >= self.capacity {
            return Err(FeedbackError::Full { capacity: self.capacity });
        }
        let sequence = self.entries.len() as u64;
        self.entries.push(Feedback {
            sequence,
            session: self.session,
            at_ns: now_ns,
            principal: String::from(principal),
            verdict,
            comment: String::from(comment),
            subject,
        });
        Ok(&self.entries[self.entries.len() - 1])
    }

    /// The entries `filter` selects, oldest first.
    pub fn query<'a>(&'a self, filter: &'a Filter<'a>) -> impl Iterator<Item = &'a Feedback> + 'a {
        self.entries.iter().filter(move |entry| filter.matches(entry))
    }

    /// The entries `filter` selects, counted by action, by policy and by windows of `window_ns` (at least 1).
    pub fn stats(&self, filter: &Filter<'_>, window_ns: u64) -> Stats {
        let window_ns = window_ns.max(1);
        let mut counts = Counts::default();
        let mut by_action: BTreeMap<&str, Counts> = BTreeMap::new();
        let mut by_policy: BTreeMap<&str, Counts> = BTreeMap::new();
        let mut by_window: BTreeMap<(u32, u64), Counts> = BTreeMap::new();
        let mut total = 0;
        for entry in self.query(filter) {
            total += 1;
            counts.add(entry.verdict);
            by_action.entry(&entry.subject.action).or_default().add(entry.verdict);
            by_policy.entry(&entry.subject.policy).or_default().add(entry.verdict);
            let start_ns = entry.at_ns / window_ns * window_ns;
            by_window.entry((entry.session, start_ns)).or_default().add(entry.verdict);
        }
        let groups = |map: BTreeMap<&str, Counts>| {
            map.into_iter().map(|(key, counts)| Group { key: String::from(key), counts }).collect()
        };
        Stats {
            total,
            counts,
            by_action: groups(by_action),
            by_policy: groups(by_policy),
            window_ns,
            by_window: by_window
                .into_iter()
                .map(|((session, start_ns), counts)| Window { session, start_ns, counts })
                .collect(),
        }
    }
}

/// `text` cut to at most [`MAX_NAME_BYTES`] at a character boundary.
fn cut(text: &str) -> &str {
    let mut end = text.len().min(MAX_NAME_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// 64-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The header of a store whose latest session is `session`.
pub fn header(session: u32) -> [u8; HEADER_BYTES] {
    let mut bytes = [0u8; HEADER_BYTES];
    bytes[..8].copy_from_slice(&MAGIC);
    bytes[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes[12..16].copy_from_slice(&session.to_le_bytes());
    bytes
}

/// The record of `entry`, to append after the header and the records before it.
pub fn record(entry: &Feedback) -> Vec<u8> {
    let mut payload = Vec::with_capacity(64 + entry.comment.len());
    payload.extend_from_slice(&entry.sequence.to_le_bytes());
    payload.extend_from_slice(&entry.session.to_le_bytes());
    payload.extend_from_slice(&entry.at_ns.to_le_bytes());
    payload.push(entry.verdict.code());
    payload.extend_from_slice(&entry.subject.decision.to_le_bytes());
    payload.extend_from_slice(&entry.subject.decision_at_ns.to_le_bytes());
    for text in
        [&entry.principal, &entry.subject.policy, &entry.subject.action, &entry.subject.disposition, &entry.comment]
    {
        payload.extend_from_slice(&(text.len() as u16).to_le_bytes());
        payload.extend_from_slice(text.as_bytes());
    }
    let mut bytes = Vec::with_capacity(payload.len() + 10);
    bytes.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    bytes.extend_from_slice(&payload);
    bytes.extend_from_slice(&fnv1a(&payload).to_le_bytes());
    bytes
}

/// A store read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The entries read, in a store whose session is the header's plus one (this opening).
    pub store: Store,
    /// Where the next record goes: after the last whole record.
    pub end_offset: usize,
    /// Bytes from `end_offset` to the last nonzero byte, when a record there was cut short or failed its
    /// checksum (0 when the log ended cleanly).
    pub dropped_bytes: usize,
}

/// Why bytes are not a feedback store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Every byte is zero: nothing was ever written here.
    Empty,
    /// The first bytes are not the magic.
    NotAStore,
    /// A format version this code does not read.
    Version(u32),
    /// A whole record whose fields do not decode, or whose sequence number is not its position (checksum
    /// right, content wrong): written by other code.
    BadRecord {
        /// Its offset.
        offset: usize,
    },
    /// More records than the capacity.
    TooMany {
        /// The capacity.
        capacity: usize,
    },
}

impl DecodeError {
    /// A stable code for JSON.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty",
            DecodeError::NotAStore => "not-a-feedback-store",
            DecodeError::Version(_) => "unknown-version",
            DecodeError::BadRecord { .. } => "bad-record",
            DecodeError::TooMany { .. } => "too-many-records",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => formatter.write_str("the region is all zeros"),
            DecodeError::NotAStore => formatter.write_str("the region does not start with the feedback store's magic"),
            DecodeError::Version(version) => {
                write!(formatter, "feedback store format {version} is not {FORMAT_VERSION}")
            }
            DecodeError::BadRecord { offset } => write!(formatter, "the record at byte {offset} does not decode"),
            DecodeError::TooMany { capacity } => write!(formatter, "the region holds more than {capacity} records"),
        }
    }
}

/// Reads a store from `bytes` (a header, records, zeros), opening session header + 1 with room for `capacity`.
pub fn decode(bytes: &[u8], capacity: usize) -> Result<Decoded, DecodeError> {
    if bytes.iter().all(|&byte| byte == 0) {
        return Err(DecodeError::Empty);
    }
    if bytes.len() < HEADER_BYTES || bytes[..8] != MAGIC {
        return Err(DecodeError::NotAStore);
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != FORMAT_VERSION {
        return Err(DecodeError::Version(version));
    }
    let sessions = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    let mut store = Store::new(capacity, sessions.saturating_add(1));
    let mut offset = HEADER_BYTES;
    while let Some(length) =
        bytes.get(offset..offset + 2).map(|length| u16::from_le_bytes([length[0], length[1]]) as usize)
    {
        if length == 0 {
            break;
        }
        let whole = length <= MAX_RECORD_BYTES && offset + 2 + length + 8 <= bytes.len();
        let payload = &bytes[(offset + 2).min(bytes.len())..(offset + 2 + length).min(bytes.len())];
        let checksum_ok = whole && {
            let stored = &bytes[offset + 2 + length..offset + 2 + length + 8];
            u64::from_le_bytes(stored.try_into().unwrap_or_default()) == fnv1a(payload)
        };
        if !checksum_ok {
            break;
        }
        let entry = parse(payload)
            .filter(|entry| entry.sequence == store.entries.len() as u64)
            .ok_or(DecodeError::BadRecord { offset })?;
        if store.entries.len() >= capacity {
            return Err(DecodeError::TooMany { capacity });
        }
        store.entries.push(entry);
        offset += 2 + length + 8;
    }
    let last_nonzero = bytes.iter().rposition(|&byte| byte != 0).map_or(0, |position| position + 1);
    Ok(Decoded { store, end_offset: offset, dropped_bytes: last_nonzero.saturating_sub(offset) })
}

/// A payload's fields; `None` when they do not fill it exactly.
fn parse(payload: &[u8]) -> Option<Feedback> {
    let mut reader = Reader { bytes: payload };
    let sequence = reader.u64()?;
    let session = reader.u32()?;
    let at_ns = reader.u64()?;
    let verdict = Verdict::from_code(reader.take(1)?[0])?;
    let decision = reader.u64()?;
    let decision_at_ns = reader.u64()?;
    let principal = reader.text(MAX_NAME_BYTES)?;
    let policy = reader.text(MAX_NAME_BYTES)?;
    let action = reader.text(MAX_NAME_BYTES)?;
    let disposition = reader.text(MAX_NAME_BYTES)?;
    let comment = reader.text(MAX_COMMENT_BYTES)?;
    if !reader.bytes.is_empty() {
        return None;
    }
    Some(Feedback {
        sequence,
        session,
        at_ns,
        principal,
        verdict,
        comment,
        subject: Subject { decision, decision_at_ns, policy, action, disposition },
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.bytes.split_at_checked(count)?;
        self.bytes = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn text(&mut self, max: usize) -> Option<String> {
        let length = u16::from_le_bytes(self.take(2)?.try_into().ok()?) as usize;
        if length > max {
            return None;
        }
        core::str::from_utf8(self.take(length)?).ok().map(String::from)
    }
}

#[cfg(test)]
mod tests;
