//! An audit entry: what happened, to which model, for whom, with what outcome and figures; and its encoding.

use alloc::string::String;
use alloc::vec::Vec;

use serde::Serialize;

use crate::artifact::Version;
use crate::principal::Principal;
use crate::registry::ModelId;

/// Bytes of a model name in an entry at most (longer names are cut at a character boundary).
pub const MAX_ENTRY_NAME_BYTES: usize = 64;
/// Bytes of a refusal code in an entry at most (longer codes are cut at a character boundary).
pub const MAX_CODE_BYTES: usize = 48;

/// What was done or attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// A model artifact was registered (or refused).
    Register,
    /// A model was loaded.
    Load,
    /// A model was unloaded.
    Unload,
    /// An inference request was granted tokens (or refused).
    Infer,
    /// An inference finished and reported the tokens it used.
    Complete,
    /// A principal's token budget was set.
    SetBudget,
    /// A principal's rate limit was set.
    SetRate,
    /// A principal's model size limit was set.
    SetModelLimit,
    /// A public key was trusted.
    TrustKey,
    /// A loaded agent-network model was installed into the kernel's learning agent (or refused).
    Install,
    /// A lifecycle promotion one stage forward (or refused), with a passing shadow report where one is needed.
    Promote,
    /// A lifecycle demotion one stage back (or refused).
    Demote,
    /// Production handed back to the previous production version (or refused).
    Rollback,
    /// A promotion to canary or production without a passing shadow report, forced by the operator.
    ForcePromote,
    /// A canary rolled back automatically; the outcome is `refused` with the reason (`guardrail-block`,
    /// `reward-drop`).
    CanaryRollback,
}

impl Action {
    /// Every action, in code order.
    pub const ALL: [Action; 15] = [
        Action::Register,
        Action::Load,
        Action::Unload,
        Action::Infer,
        Action::Complete,
        Action::SetBudget,
        Action::SetRate,
        Action::SetModelLimit,
        Action::TrustKey,
        Action::Install,
        Action::Promote,
        Action::Demote,
        Action::Rollback,
        Action::ForcePromote,
        Action::CanaryRollback,
    ];

    /// Its name (`register`, `set-budget`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Action::Register => "register",
            Action::Load => "load",
            Action::Unload => "unload",
            Action::Infer => "infer",
            Action::Complete => "complete",
            Action::SetBudget => "set-budget",
            Action::SetRate => "set-rate",
            Action::SetModelLimit => "set-model-limit",
            Action::TrustKey => "trust-key",
            Action::Install => "install",
            Action::Promote => "promote",
            Action::Demote => "demote",
            Action::Rollback => "rollback",
            Action::ForcePromote => "force-promote",
            Action::CanaryRollback => "canary-rollback",
        }
    }

    /// The action named `name`.
    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|action| action.name() == name)
    }

    fn code(self) -> u8 {
        match self {
            Action::Register => 1,
            Action::Load => 2,
            Action::Unload => 3,
            Action::Infer => 4,
            Action::Complete => 5,
            Action::SetBudget => 6,
            Action::SetRate => 7,
            Action::SetModelLimit => 8,
            Action::TrustKey => 9,
            Action::Install => 10,
            Action::Promote => 11,
            Action::Demote => 12,
            Action::Rollback => 13,
            Action::ForcePromote => 14,
            Action::CanaryRollback => 15,
        }
    }

    fn from_code(code: u8) -> Option<Action> {
        Action::ALL.into_iter().find(|action| action.code() == code)
    }
}

/// Whether it was done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Outcome {
    /// Done.
    Ok,
    /// Refused, with the refusal's stable code.
    Refused {
        /// The error's `code()`.
        code: String,
    },
}

impl Outcome {
    /// A refusal with `code` (cut to [`MAX_CODE_BYTES`]).
    pub fn refused(code: &str) -> Outcome {
        Outcome::Refused { code: String::from(cut(code, MAX_CODE_BYTES)) }
    }
}

/// The numbers that go with an entry; only those that apply are set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    /// Artifact bytes (register).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Tokens asked for (infer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_tokens: Option<u64>,
    /// Tokens granted (infer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub granted_tokens: Option<u64>,
    /// Tokens used (complete).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_tokens: Option<u64>,
    /// Tokens left in the window (infer, and budget refusals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_tokens: Option<u64>,
    /// When the window resets (budget refusals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_reset_ns: Option<u64>,
    /// Nanoseconds to wait (rate refusals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ns: Option<u64>,
    /// A budget set (set-budget).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u64>,
    /// A window set (set-budget).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_ns: Option<u64>,
    /// A rate set (set-rate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<u64>,
    /// A burst set (set-rate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    /// A model size limit set (set-model-limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_model_bytes: Option<u64>,
}

impl Figures {
    fn fields(&self) -> [Option<u64>; 12] {
        [
            self.bytes,
            self.requested_tokens,
            self.granted_tokens,
            self.used_tokens,
            self.remaining_tokens,
            self.window_reset_ns,
            self.retry_after_ns,
            self.budget_tokens,
            self.window_ns,
            self.rate_per_second,
            self.burst,
            self.max_model_bytes,
        ]
    }

    fn from_fields(fields: [Option<u64>; 12]) -> Figures {
        let [bytes, requested_tokens, granted_tokens, used_tokens, remaining_tokens, window_reset_ns, retry_after_ns, budget_tokens, window_ns, rate_per_second, burst, max_model_bytes] =
            fields;
        Figures {
            bytes,
            requested_tokens,
            granted_tokens,
            used_tokens,
            remaining_tokens,
            window_reset_ns,
            retry_after_ns,
            budget_tokens,
            window_ns,
            rate_per_second,
            burst,
            max_model_bytes,
        }
    }
}

/// What is recorded, before the log gives it a sequence number and a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// When (the caller's clock, ns).
    pub time_ns: u64,
    /// Who acted.
    pub principal: Principal,
    /// What.
    pub action: Action,
    /// The model concerned, if any.
    pub model: Option<ModelId>,
    /// The principal whose limits were set (policy changes).
    pub target: Option<Principal>,
    /// Done or refused.
    pub outcome: Outcome,
    /// The figures.
    pub figures: Figures,
}

/// An entry of the log: an event, its sequence number and its chained hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// 0 for the log's first entry ever, then +1 per entry.
    pub sequence: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
    /// SHA-256 of the previous entry's hash followed by this entry's encoded content.
    #[serde(serialize_with = "serialize_hash")]
    pub hash: [u8; 32],
}

fn serialize_hash<S: serde::Serializer>(hash: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&crate::hex::encode(hash))
}

/// `text` cut to at most `max` bytes at a character boundary.
pub(super) fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The content encoding of an entry (docs/governance.md): what its hash covers and what a record holds.
pub(super) fn encode_content(sequence: u64, event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&sequence.to_le_bytes());
    out.extend_from_slice(&event.time_ns.to_le_bytes());
    put_principal(&mut out, event.principal);
    out.push(event.action.code());
    match &event.model {
        Some(model) => {
            out.push(1);
            let name = cut(&model.name, MAX_ENTRY_NAME_BYTES);
            out.push(name.len() as u8);
            out.extend_from_slice(name.as_bytes());
            for value in [model.version.major, model.version.minor, model.version.patch] {
                out.extend_from_slice(&value.to_le_bytes());
            }
        }
        None => out.push(0),
    }
    match event.target {
        Some(target) => {
            out.push(1);
            put_principal(&mut out, target);
        }
        None => out.push(0),
    }
    match &event.outcome {
        Outcome::Ok => out.push(0),
        Outcome::Refused { code } => {
            out.push(1);
            let code = cut(code, MAX_CODE_BYTES);
            out.push(code.len() as u8);
            out.extend_from_slice(code.as_bytes());
        }
    }
    let fields = event.figures.fields();
    let mask = fields.iter().enumerate().fold(0u16, |mask, (bit, field)| mask | u16::from(field.is_some()) << bit);
    out.extend_from_slice(&mask.to_le_bytes());
    for value in fields.into_iter().flatten() {
        out.extend_from_slice(&value.to_le_bytes());
    }
    out
}

/// Reads content written by [`encode_content`]; `None` if it is not exactly one well-formed entry.
pub(super) fn decode_content(bytes: &[u8]) -> Option<(u64, Event)> {
    let mut reader = Reader { bytes };
    let sequence = reader.u64()?;
    let time_ns = reader.u64()?;
    let principal = reader.principal()?;
    let action = Action::from_code(reader.u8()?)?;
    let model = match reader.u8()? {
        0 => None,
        1 => {
            let length = usize::from(reader.u8()?);
            if length > MAX_ENTRY_NAME_BYTES {
                return None;
            }
            let name = String::from(core::str::from_utf8(reader.take(length)?).ok()?);
            let version = Version { major: reader.u32()?, minor: reader.u32()?, patch: reader.u32()? };
            Some(ModelId { name, version })
        }
        _ => return None,
    };
    let target = match reader.u8()? {
        0 => None,
        1 => Some(reader.principal()?),
        _ => return None,
    };
    let outcome = match reader.u8()? {
        0 => Outcome::Ok,
        1 => {
            let length = usize::from(reader.u8()?);
            if length > MAX_CODE_BYTES {
                return None;
            }
            Outcome::Refused { code: String::from(core::str::from_utf8(reader.take(length)?).ok()?) }
        }
        _ => return None,
    };
    let mask = u16::from_le_bytes(reader.take(2)?.try_into().ok()?);
    if mask >> 12 != 0 {
        return None;
    }
    let mut fields = [None; 12];
    for (bit, field) in fields.iter_mut().enumerate() {
        if mask & (1 << bit) != 0 {
            *field = Some(reader.u64()?);
        }
    }
    if !reader.bytes.is_empty() {
        return None;
    }
    let figures = Figures::from_fields(fields);
    Some((sequence, Event { time_ns, principal, action, model, target, outcome, figures }))
}

fn put_principal(out: &mut Vec<u8>, principal: Principal) {
    let (tag, id) = match principal {
        Principal::Console => (0u8, 0u32),
        Principal::Token(id) => (1, id),
        Principal::Agent(id) => (2, id),
    };
    out.push(tag);
    out.extend_from_slice(&id.to_le_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < count {
            return None;
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Some(taken)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn principal(&mut self) -> Option<Principal> {
        let tag = self.u8()?;
        let id = self.u32()?;
        match tag {
            0 if id == 0 => Some(Principal::Console),
            1 => Some(Principal::Token(id)),
            2 => Some(Principal::Agent(id)),
            _ => None,
        }
    }
}
