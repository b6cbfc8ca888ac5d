//! Capability parsing and matching, against a character-level reference matcher.

use super::*;
use crate::path::normalize;
use proptest::prelude::*;

fn set(list: &str) -> CapabilitySet {
    CapabilitySet::parse(list).unwrap()
}

#[test]
fn parses_every_kind_and_round_trips() {
    let text = "fs.read:/tmp/**,fs.write:/tmp/out/*,fs.list:/tmp,metrics.read,command:stresstest,log,propose";
    let parsed = set(text);
    assert_eq!(parsed.iter().count(), 7);
    assert_eq!(parsed.to_string(), text);
}

#[test]
fn refuses_malformed_capabilities() {
    assert_eq!(Capability::parse("fs.exec:/tmp"), Err(CapabilityError::UnknownKind("fs.exec".into())));
    assert_eq!(Capability::parse("fs.read"), Err(CapabilityError::MissingArgument("fs.read".into())));
    assert_eq!(Capability::parse("log:x"), Err(CapabilityError::UnexpectedArgument("log".into())));
    assert_eq!(Capability::parse("command:rm -rf"), Err(CapabilityError::BadCommandName("rm -rf".into())));
    for pattern in ["tmp/**", "/tmp/", "/tmp//a", "/tmp/../etc", "/tmp/./a", "/tmp/a**", ""] {
        assert_eq!(
            Capability::parse(&alloc::format!("fs.read:{pattern}")),
            Err(CapabilityError::BadPattern(pattern.into())),
            "{pattern}"
        );
    }
}

#[test]
fn glob_semantics() {
    let tree = set("fs.read:/tmp/**");
    assert!(tree.allows(&Access::FsRead("/tmp")));
    assert!(tree.allows(&Access::FsRead("/tmp/a/b/c")));
    assert!(!tree.allows(&Access::FsRead("/tmpx")));
    assert!(!tree.allows(&Access::FsRead("/tmp/../etc/passwd")));
    assert!(!tree.allows(&Access::FsWrite("/tmp/a")), "read does not grant write");

    let children = set("fs.write:/tmp/out/*");
    assert!(children.allows(&Access::FsWrite("/tmp/out/x")));
    assert!(!children.allows(&Access::FsWrite("/tmp/out")));
    assert!(!children.allows(&Access::FsWrite("/tmp/out/x/y")));
    assert!(children.allows(&Access::FsWrite("/tmp/out/./x")));

    let exact = set("fs.list:/tmp");
    assert!(exact.allows(&Access::FsList("/tmp")));
    assert!(exact.allows(&Access::FsList("//tmp/")));
    assert!(!exact.allows(&Access::FsList("/tmp/a")));

    let suffix = set("fs.read:/var/*.log");
    assert!(suffix.allows(&Access::FsRead("/var/kern.log")));
    assert!(!suffix.allows(&Access::FsRead("/var/kern.txt")));

    let command = set("command:stresstest");
    assert!(command.allows(&Access::Command("stresstest")));
    assert!(!command.allows(&Access::Command("stress")));
    assert!(!set("").allows(&Access::Log));
}

/// The reference: the pattern and the normalized path as strings, matched character by character.
fn reference_matches(pattern: &str, path: &str) -> bool {
    let Ok(path) = normalize(path) else { return false };
    let root = |s: &str| if s == "/" { String::new() } else { s.to_string() };
    reference(root(pattern).as_bytes(), root(&path).as_bytes())
}

fn reference(pattern: &[u8], path: &[u8]) -> bool {
    if pattern.starts_with(b"/**") && (pattern.len() == 3 || pattern[3] == b'/') {
        let rest = &pattern[3..];
        if reference(rest, path) {
            return true;
        }
        // Consume one whole segment `/name` and try again.
        if path.first() == Some(&b'/') {
            let end = path[1..].iter().position(|&b| b == b'/').map_or(path.len(), |i| i + 1);
            return end > 1 && reference(pattern, &path[end..]);
        }
        return false;
    }
    match pattern.first() {
        None => path.is_empty(),
        Some(b'*') => {
            let run = path.iter().take_while(|&&b| b != b'/').count();
            (0..=run).any(|take| reference(&pattern[1..], &path[take..]))
        }
        Some(&literal) => path.first() == Some(&literal) && reference(&pattern[1..], &path[1..]),
    }
}

/// The literal directory a pattern names: its segments before the first wildcard.
fn literal_prefix(pattern: &str) -> Vec<&str> {
    pattern.split('/').filter(|s| !s.is_empty()).take_while(|s| !s.contains('*')).collect()
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("ab".to_string()),
        Just("*".to_string()),
        Just("a*".to_string()),
        Just("*b".to_string()),
        Just("**".to_string()),
    ]
}

fn path_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("ab".to_string()),
        Just("ba".to_string()),
        Just("..".to_string()),
        Just(".".to_string()),
        Just(String::new()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn matcher_agrees_with_reference_and_never_grants_outside_the_named_directory(
        pattern_segments in proptest::collection::vec(segment(), 0..5),
        path_segments in proptest::collection::vec(path_segment(), 0..7),
    ) {
        let pattern = alloc::format!("/{}", pattern_segments.join("/"));
        let path = alloc::format!("/{}", path_segments.join("/"));
        let parsed = PathPattern::parse(&pattern).unwrap();
        let matched = parsed.matches(&path);
        prop_assert_eq!(matched, reference_matches(&pattern, &path), "pattern {} path {}", pattern, path);
        if matched {
            let normal = normalize(&path).unwrap();
            let normal_segments: Vec<&str> = normal.split('/').filter(|s| !s.is_empty()).collect();
            let prefix = literal_prefix(&pattern);
            prop_assert!(normal_segments.starts_with(&prefix), "{} escapes {}", path, pattern);
            if !pattern.contains('*') {
                prop_assert_eq!(normal, pattern.clone(), "a literal pattern grants exactly one path");
            }
        }
    }

    #[test]
    fn dot_dot_never_escapes_a_tree(tail in proptest::collection::vec(path_segment(), 0..6)) {
        let path = alloc::format!("/tmp/{}", tail.join("/"));
        let inside = normalize(&path).unwrap().starts_with("/tmp");
        prop_assert_eq!(set("fs.read:/tmp/**").allows(&Access::FsRead(&path)), inside);
    }
}

/// Regression (found by the `agent_protocol` fuzz target): a pattern of many `**` and `*` against a long path took
/// exponential time in a backtracking matcher; the path is the agent's choice.
#[test]
fn many_wildcards_match_in_polynomial_time() {
    let pattern = alloc::format!("/{}x", "**/*a*a*a*/".repeat(12));
    let caps = set(&alloc::format!("fs.read:{pattern}"));
    let long: alloc::string::String = (0..40).map(|_| "/aaaaaaaaaaaaaaaaaaaaaaaa").collect();
    let started = std::time::Instant::now();
    assert!(!caps.allows(&Access::FsRead(&alloc::format!("{long}/y"))));
    assert!(caps.allows(&Access::FsRead(&alloc::format!("{long}/x"))));
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "{:?}", started.elapsed());
    // Glob backtracking inside one segment: `*a*a*...b` against a run of `a`.
    let caps = set(&alloc::format!("fs.read:/{}b", "*a".repeat(20)));
    assert!(!caps.allows(&Access::FsRead(&alloc::format!("/{}", "a".repeat(200)))));
    assert!(caps.allows(&Access::FsRead(&alloc::format!("/{}b", "a".repeat(200)))));
}
