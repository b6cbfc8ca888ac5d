//! Tokens: creation, both spellings, hashing, revocation, bounds, roles.

use crate::token::{secret_base64url, SECRET_BYTES};
use crate::{Role, TokenError, TokenId, TokenInfo, TokenStore};
use sis_shell::Capabilities;

fn secret(seed: u8) -> [u8; SECRET_BYTES] {
    core::array::from_fn(|index| seed.wrapping_mul(31).wrapping_add(index as u8))
}

#[test]
fn create_shows_hex_once_and_verifies_both_spellings() {
    let mut store = TokenStore::new(4);
    let (info, token) = store.create(Role::Operator, [0xAB; SECRET_BYTES], 77).unwrap();
    assert_eq!(info, TokenInfo { id: TokenId(1), role: Role::Operator, created_ns: 77 });
    assert_eq!(token, "ab".repeat(32));
    assert_eq!(store.verify(&token), Some(info));
    assert_eq!(store.verify(&token.to_uppercase()), Some(info));
    assert_eq!(store.verify(&secret_base64url(&[0xAB; SECRET_BYTES])), Some(info));
    assert_eq!(secret_base64url(&[0xAB; SECRET_BYTES]).len(), 43);
    // One digit off, one digit short, not hex, empty.
    let mut wrong = token.clone();
    wrong.replace_range(63..64, "c");
    for presented in [wrong.as_str(), &token[1..], &"zz".repeat(32), ""] {
        assert_eq!(store.verify(presented), None, "{presented}");
    }
}

#[test]
fn the_store_keeps_only_hashes() {
    let mut store = TokenStore::default();
    let (_, token) = store.create(Role::Admin, secret(1), 0).unwrap();
    let dump = alloc::format!("{store:?}");
    assert!(!dump.contains(&token));
    let listed = serde_json::to_value(store.list()).unwrap();
    assert_eq!(listed, serde_json::json!([{ "id": 1, "role": "admin", "created_ns": 0 }]));
}

#[test]
fn revoke_takes_effect_at_once_and_ids_are_not_reused() {
    let mut store = TokenStore::new(4);
    let (first, first_token) = store.create(Role::Viewer, secret(1), 10).unwrap();
    let (second, second_token) = store.create(Role::Admin, secret(2), 20).unwrap();
    assert_eq!(store.revoke(first.id), Ok(first));
    assert_eq!(store.verify(&first_token), None);
    assert_eq!(store.verify(&second_token), Some(second));
    assert_eq!(store.revoke(first.id), Err(TokenError::UnknownId));
    assert_eq!(store.list(), [second]);
    let (third, _) = store.create(Role::Viewer, secret(3), 30).unwrap();
    assert_eq!(third.id, TokenId(3));
}

#[test]
fn the_store_is_bounded_and_refuses_a_repeated_secret() {
    let mut store = TokenStore::new(2);
    store.create(Role::Viewer, secret(1), 0).unwrap();
    assert_eq!(store.create(Role::Admin, secret(1), 0), Err(TokenError::DuplicateSecret));
    store.create(Role::Viewer, secret(2), 0).unwrap();
    assert_eq!(store.create(Role::Viewer, secret(3), 0), Err(TokenError::Full));
    assert_eq!(store.len(), 2);
    assert_eq!(TokenError::Full.code(), "too-many-tokens");
}

#[test]
fn roles_map_to_capabilities() {
    assert_eq!(Role::Viewer.capabilities(), Capabilities::NONE);
    assert_eq!(Role::Operator.capabilities(), Capabilities::FILES);
    assert_eq!(Role::Admin.capabilities(), Capabilities::ALL);
    assert_eq!(Role::parse("operator"), Some(Role::Operator));
    assert_eq!(Role::parse("root"), None);
}
