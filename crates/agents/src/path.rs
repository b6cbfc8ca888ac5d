//! Path normalization: the one form in which paths are matched against capabilities and handed to the host.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Why a path cannot be normalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// The path does not start with `/`.
    NotAbsolute,
    /// The path contains a NUL byte.
    ContainsNul,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAbsolute => f.write_str("path must be absolute (start with '/')"),
            Self::ContainsNul => f.write_str("path contains a NUL byte"),
        }
    }
}

/// Normalizes an absolute path: collapses duplicate slashes, drops `.` segments and resolves `..` against the
/// segment before it (`..` at the root stays at the root, as POSIX resolves `/..`). The result is `/` or
/// `/seg/seg` with no trailing slash. The sandbox matches and forwards only this form, so `/tmp/../etc` is
/// `/etc` both when it is checked and when it is used.
pub fn normalize(path: &str) -> Result<String, PathError> {
    if path.contains('\0') {
        return Err(PathError::ContainsNul);
    }
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let segments = normalized_segments(path);
    let mut out = String::with_capacity(path.len());
    if segments.is_empty() {
        out.push('/');
    }
    for segment in segments {
        out.push('/');
        out.push_str(segment);
    }
    Ok(out)
}

/// The segments of an absolute path after `.`, `..` and empty segments are resolved.
pub(crate) fn normalized_segments(path: &str) -> Vec<&str> {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_dots_and_slashes() {
        assert_eq!(normalize("/tmp/../etc").unwrap(), "/etc");
        assert_eq!(normalize("//tmp//a/./b/").unwrap(), "/tmp/a/b");
        assert_eq!(normalize("/../../tmp").unwrap(), "/tmp");
        assert_eq!(normalize("/").unwrap(), "/");
        assert_eq!(normalize("/a/b/../..").unwrap(), "/");
    }

    #[test]
    fn rejects_relative_and_nul() {
        assert_eq!(normalize("tmp/a"), Err(PathError::NotAbsolute));
        assert_eq!(normalize(""), Err(PathError::NotAbsolute));
        assert_eq!(normalize("/tmp/\0x"), Err(PathError::ContainsNul));
    }
}
