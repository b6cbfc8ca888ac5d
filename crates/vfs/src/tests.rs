//! Filesystem tests: paths, each error, all-or-nothing operations, the byte budget.

use super::*;

fn names(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|entry| entry.name.as_str()).collect()
}

#[test]
fn write_read_list_remove() {
    let mut vfs = Vfs::new(1 << 20);
    vfs.write("/incidents/stress_report.json", b"{}", true).unwrap();
    assert_eq!(vfs.read("/incidents/stress_report.json").unwrap(), b"{}");
    assert_eq!(names(&vfs.list("/").unwrap()), ["incidents"]);
    assert_eq!(
        vfs.list("/incidents").unwrap(),
        [Entry { name: "stress_report.json".into(), is_directory: false, size: 2 }]
    );
    assert_eq!(vfs.used_bytes(), 2);
    vfs.write("/incidents/stress_report.json", b"{\"a\":1}", false).unwrap();
    assert_eq!(vfs.used_bytes(), 7);
    assert_eq!(vfs.remove("/incidents", false).unwrap_err().code(), "not-empty");
    vfs.remove("/incidents", true).unwrap();
    assert_eq!(vfs.used_bytes(), 0);
    assert!(vfs.list("/").unwrap().is_empty());
}

#[test]
fn paths_are_normalised_and_checked() {
    assert_eq!(components("/a//b/./c/../d/").unwrap(), ["a", "b", "d"]);
    assert_eq!(components("/../..").unwrap(), Vec::<&str>::new());
    assert_eq!(components("relative").unwrap_err().code(), "invalid-path");
    assert_eq!(components("/a\u{7}b").unwrap_err().code(), "invalid-path");
    let long = alloc::format!("/{}", "x".repeat(256));
    assert_eq!(components(&long).unwrap_err().code(), "invalid-path");
    let deepest = "/d".repeat(MAX_DEPTH);
    assert_eq!(components(&deepest).unwrap().len(), MAX_DEPTH);
    let too_deep = alloc::format!("{deepest}/d");
    assert_eq!(components(&too_deep).unwrap_err().code(), "invalid-path");
    let mut vfs = Vfs::new(10);
    assert_eq!(vfs.mkdir(&too_deep, true).unwrap_err().code(), "invalid-path");
    assert_eq!(vfs.node_count(), 0, "a refused mkdir created nothing");
    vfs.mkdir(&deepest, true).unwrap();
    assert_eq!(vfs.node_count(), MAX_DEPTH as u64);
}

#[test]
fn each_error_and_nothing_changes() {
    let mut vfs = Vfs::new(10);
    vfs.mkdir("/d", false).unwrap();
    vfs.write("/d/f", b"12345", false).unwrap();
    let before = alloc::format!("{vfs:?}");
    assert_eq!(vfs.mkdir("/d", false).unwrap_err().code(), "already-exists");
    assert_eq!(vfs.mkdir("/x/y", false).unwrap_err().code(), "not-found");
    assert_eq!(vfs.mkdir("/d/f/g", true).unwrap_err().code(), "not-a-directory");
    assert_eq!(vfs.write("/d", b"x", false).unwrap_err().code(), "is-a-directory");
    assert_eq!(vfs.write("/e/f", b"x", false).unwrap_err().code(), "not-found");
    assert_eq!(vfs.write("/d/g", b"123456", false).unwrap_err(), VfsError::NoSpace { needed: 6, available: 5 });
    assert_eq!(vfs.read("/d").unwrap_err().code(), "is-a-directory");
    assert_eq!(vfs.read("/nope").unwrap_err().code(), "not-found");
    assert_eq!(vfs.list("/d/f/x").unwrap_err().code(), "not-a-directory");
    assert_eq!(vfs.remove("/", true).unwrap_err().code(), "invalid-path");
    assert_eq!(vfs.remove("/zz", false).unwrap_err().code(), "not-found");
    assert_eq!(alloc::format!("{vfs:?}"), before);
    // Replacing a file counts only the difference against the budget.
    vfs.write("/d/f", b"1234567890", false).unwrap();
    assert_eq!(vfs.used_bytes(), 10);
}

#[test]
fn mkdir_parents_is_idempotent() {
    let mut vfs = Vfs::new(0);
    vfs.mkdir("/a/b/c", true).unwrap();
    vfs.mkdir("/a/b/c", true).unwrap();
    vfs.mkdir("/", true).unwrap();
    assert_eq!(names(&vfs.list("/a/b").unwrap()), ["c"]);
    assert!(vfs.list("/a/b/c").unwrap()[..].is_empty());
}
