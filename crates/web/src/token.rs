//! Bearer tokens: random secrets tied to a role, stored only as SHA-256 hashes and checked in constant time.
//!
//! A token's secret is 32 random bytes from the caller (the kernel's entropy source); the store never
//! generates randomness itself. The secret is shown once, as 64 lowercase hex digits; its 43-character
//! base64url form (no padding) is accepted too. The store keeps the SHA-256 of the secret bytes with an id, a
//! role and the creation time, so neither `list` nor a memory dump gives a usable token back.

use alloc::string::String;
use alloc::vec::Vec;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sis_shell::Capabilities;
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// Tokens a store holds at most by default.
pub const DEFAULT_MAX_TOKENS: usize = 64;
/// Bytes of a token's secret.
pub const SECRET_BYTES: usize = 32;

/// What a token may do.
///
/// Roles map onto the shell registry's capabilities, so the HTTP door enforces exactly what the registry
/// enforces: `Viewer` holds none (only unrestricted commands: status, listings, `--help`), `Operator` holds
/// `FILES` (it may also change the in-memory filesystem) and `Admin` holds `ALL` (also threads, scheduling,
/// autonomy, faults and stress runs, like the serial console).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Reads metrics and runs unrestricted commands.
    Viewer,
    /// A viewer that may also change files.
    Operator,
    /// Everything the console may do.
    Admin,
}

impl Role {
    /// The capabilities the role holds.
    pub fn capabilities(self) -> Capabilities {
        match self {
            Role::Viewer => Capabilities::NONE,
            Role::Operator => Capabilities::FILES,
            Role::Admin => Capabilities::ALL,
        }
    }

    /// Its lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The role named `name` (`viewer`, `operator`, `admin`).
    pub fn parse(name: &str) -> Option<Role> {
        [Role::Viewer, Role::Operator, Role::Admin].into_iter().find(|role| role.name() == name)
    }
}

/// Names a token; ids are never reused by a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TokenId(pub u32);

/// What the store says about a token: never the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// Its id.
    pub id: TokenId,
    /// Its role.
    pub role: Role,
    /// When it was created (the caller's clock).
    pub created_ns: u64,
}

/// Why a token operation did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// The store holds its maximum number of tokens.
    Full,
    /// A token with the same secret exists (a broken entropy source would show up here).
    DuplicateSecret,
    /// No token has this id.
    UnknownId,
}

impl TokenError {
    /// Stable code for `webctl --json`.
    pub fn code(self) -> &'static str {
        match self {
            TokenError::Full => "too-many-tokens",
            TokenError::DuplicateSecret => "duplicate-token",
            TokenError::UnknownId => "unknown-token",
        }
    }

    /// A message for people.
    pub fn message(self) -> &'static str {
        match self {
            TokenError::Full => "the token store is full: revoke a token first",
            TokenError::DuplicateSecret => "a token with this secret exists: the entropy source repeated itself",
            TokenError::UnknownId => "no token has this id",
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    info: TokenInfo,
    hash: [u8; 32],
}

/// The tokens the server accepts.
#[derive(Debug, Clone)]
pub struct TokenStore {
    entries: Vec<Entry>,
    next_id: u32,
    max_tokens: usize,
}

impl Default for TokenStore {
    fn default() -> Self {
        TokenStore::new(DEFAULT_MAX_TOKENS)
    }
}

impl TokenStore {
    /// An empty store holding at most `max_tokens`.
    pub fn new(max_tokens: usize) -> TokenStore {
        TokenStore { entries: Vec::new(), next_id: 1, max_tokens }
    }

    /// Creates a token from 32 random bytes; returns its record and the secret as 64 hex digits, to show once.
    pub fn create(
        &mut self,
        role: Role,
        secret: [u8; SECRET_BYTES],
        now_ns: u64,
    ) -> Result<(TokenInfo, String), TokenError> {
        if self.entries.len() >= self.max_tokens {
            return Err(TokenError::Full);
        }
        let hash = hash_secret(&secret);
        if self.find(&hash).is_some() {
            return Err(TokenError::DuplicateSecret);
        }
        let info = TokenInfo { id: TokenId(self.next_id), role, created_ns: now_ns };
        self.next_id = self.next_id.saturating_add(1);
        self.entries.push(Entry { info, hash });
        Ok((info, hex(&secret)))
    }

    /// The token a presented string (hex or base64url) belongs to, or `None`. Every stored hash is compared,
    /// each in constant time, whatever matches.
    pub fn verify(&self, presented: &str) -> Option<TokenInfo> {
        let secret = decode_secret(presented.trim())?;
        self.find(&hash_secret(&secret)).map(|index| self.entries[index].info)
    }

    /// Removes a token at once; later verifications of it fail.
    pub fn revoke(&mut self, id: TokenId) -> Result<TokenInfo, TokenError> {
        let index = self.entries.iter().position(|entry| entry.info.id == id).ok_or(TokenError::UnknownId)?;
        Ok(self.entries.remove(index).info)
    }

    /// Every token's id, role and creation time, oldest first.
    pub fn list(&self) -> Vec<TokenInfo> {
        self.entries.iter().map(|entry| entry.info).collect()
    }

    /// Tokens held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Most tokens held.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    fn find(&self, hash: &[u8; 32]) -> Option<usize> {
        let mut found = 0u32;
        let mut index_plus_one = 0u32;
        for (index, entry) in self.entries.iter().enumerate() {
            let equal = entry.hash.ct_eq(hash);
            index_plus_one.conditional_assign(&(index as u32 + 1), equal);
            found |= u32::from(equal.unwrap_u8());
        }
        (found == 1).then(|| index_plus_one as usize - 1)
    }
}

/// SHA-256 of the secret bytes.
fn hash_secret(secret: &[u8; SECRET_BYTES]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

/// 32 bytes written as 64 hex digits (either case), as tokens, and the kernel's boot entropy, are written.
pub fn decode_hex32(text: &str) -> Option<[u8; SECRET_BYTES]> {
    if text.len() != 2 * SECRET_BYTES {
        return None;
    }
    let mut bytes = [0u8; SECRET_BYTES];
    for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks(2)) {
        *byte = hex_digit(pair[0])? << 4 | hex_digit(pair[1])?;
    }
    Some(bytes)
}

/// The secret in a presented token: 64 hex digits or 43 base64url characters.
fn decode_secret(presented: &str) -> Option<[u8; SECRET_BYTES]> {
    let mut secret = [0u8; SECRET_BYTES];
    match presented.len() {
        64 => decode_hex32(presented),
        43 => {
            let decoded = URL_SAFE_NO_PAD.decode(presented).ok()?;
            secret.copy_from_slice(decoded.get(..SECRET_BYTES).filter(|_| decoded.len() == SECRET_BYTES)?);
            Some(secret)
        }
        _ => None,
    }
}

fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xF)] as char);
    }
    out
}

/// The base64url form (no padding) of a secret, the other accepted spelling of a token.
pub fn secret_base64url(secret: &[u8; SECRET_BYTES]) -> String {
    URL_SAFE_NO_PAD.encode(secret)
}
