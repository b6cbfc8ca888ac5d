//! An in-memory filesystem: absolute paths, directories and byte files, with a size budget.
//!
//! It holds what the kernel writes for people and programs to read back,
//! such as stress reports (`stresstest all --output-json /incidents/report.json`).
//! Every operation checks its path and either does all it says or nothing.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Longest path accepted, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;
/// Longest name of one path component, in bytes.
pub const MAX_NAME_BYTES: usize = 255;
/// Most components a path may reach while `.` and `..` are resolved: bounds the tree's depth, and so the
/// recursion of every walk over it (dropping, counting).
pub const MAX_DEPTH: usize = 64;

/// What went wrong, with the path concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VfsError {
    /// Not an absolute, well-formed path.
    InvalidPath {
        /// The path.
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// Nothing at this path.
    NotFound {
        /// The path.
        path: String,
    },
    /// A component that should be a directory is a file.
    NotADirectory {
        /// The path.
        path: String,
    },
    /// A file operation named a directory.
    IsADirectory {
        /// The path.
        path: String,
    },
    /// Something already exists there.
    AlreadyExists {
        /// The path.
        path: String,
    },
    /// Removing a directory that still has entries without `recursive`.
    NotEmpty {
        /// The path.
        path: String,
    },
    /// The write would exceed the filesystem's byte budget.
    NoSpace {
        /// Bytes needed.
        needed: u64,
        /// Bytes left.
        available: u64,
    },
}

impl VfsError {
    /// Stable kebab-case code for shell errors.
    pub fn code(&self) -> &'static str {
        match self {
            VfsError::InvalidPath { .. } => "invalid-path",
            VfsError::NotFound { .. } => "not-found",
            VfsError::NotADirectory { .. } => "not-a-directory",
            VfsError::IsADirectory { .. } => "is-a-directory",
            VfsError::AlreadyExists { .. } => "already-exists",
            VfsError::NotEmpty { .. } => "not-empty",
            VfsError::NoSpace { .. } => "no-space",
        }
    }
}

impl fmt::Display for VfsError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VfsError::InvalidPath { path, reason } => write!(formatter, "invalid path {path:?}: {reason}"),
            VfsError::NotFound { path } => write!(formatter, "{path}: no such file or directory"),
            VfsError::NotADirectory { path } => write!(formatter, "{path}: not a directory"),
            VfsError::IsADirectory { path } => write!(formatter, "{path}: is a directory"),
            VfsError::AlreadyExists { path } => write!(formatter, "{path}: already exists"),
            VfsError::NotEmpty { path } => write!(formatter, "{path}: directory not empty (use --recursive)"),
            VfsError::NoSpace { needed, available } => {
                write!(formatter, "no space: {needed} bytes needed, {available} available")
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Node {
    File(Vec<u8>),
    Directory(BTreeMap<String, Node>),
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Name within the directory.
    pub name: String,
    /// Whether it is a directory.
    pub is_directory: bool,
    /// File size in bytes (0 for directories).
    pub size: u64,
}

/// The filesystem.
#[derive(Debug, Clone)]
pub struct Vfs {
    root: BTreeMap<String, Node>,
    used_bytes: u64,
    capacity_bytes: u64,
}

/// Splits an absolute path into its components, resolving `.` and `..`.
pub fn components(path: &str) -> Result<Vec<&str>, VfsError> {
    let invalid = |reason| VfsError::InvalidPath { path: String::from(path), reason };
    if !path.starts_with('/') {
        return Err(invalid("paths are absolute and start with /"));
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(invalid("longer than 1024 bytes"));
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name if name.len() > MAX_NAME_BYTES => return Err(invalid("a name is longer than 255 bytes")),
            name if name.chars().any(|c| c.is_control()) => return Err(invalid("control character in a name")),
            name => parts.push(name),
        }
        if parts.len() > MAX_DEPTH {
            return Err(invalid("deeper than 64 levels"));
        }
    }
    Ok(parts)
}

fn join(parts: &[&str]) -> String {
    let mut path = String::new();
    for part in parts {
        path.push('/');
        path.push_str(part);
    }
    if path.is_empty() {
        path.push('/');
    }
    path
}

impl Vfs {
    /// An empty filesystem holding at most `capacity_bytes` of file data.
    pub const fn new(capacity_bytes: u64) -> Self {
        Vfs { root: BTreeMap::new(), used_bytes: 0, capacity_bytes }
    }

    /// Bytes of file data stored.
    pub fn used_bytes(&self) -> u64 {
        self.used_bytes
    }

    /// The byte budget.
    pub fn capacity_bytes(&self) -> u64 {
        self.capacity_bytes
    }

    /// Files and directories, the root not counted.
    pub fn node_count(&self) -> u64 {
        nodes_in(&self.root)
    }

    fn directory(&self, parts: &[&str]) -> Result<&BTreeMap<String, Node>, VfsError> {
        let mut directory = &self.root;
        for (depth, part) in parts.iter().enumerate() {
            match directory.get(*part) {
                Some(Node::Directory(entries)) => directory = entries,
                Some(Node::File(_)) => return Err(VfsError::NotADirectory { path: join(&parts[..=depth]) }),
                None => return Err(VfsError::NotFound { path: join(&parts[..=depth]) }),
            }
        }
        Ok(directory)
    }

    fn directory_mut(&mut self, parts: &[&str], create: bool) -> Result<&mut BTreeMap<String, Node>, VfsError> {
        let mut directory = &mut self.root;
        for (depth, part) in parts.iter().enumerate() {
            if create && !directory.contains_key(*part) {
                directory.insert(String::from(*part), Node::Directory(BTreeMap::new()));
            }
            match directory.get_mut(*part) {
                Some(Node::Directory(entries)) => directory = entries,
                Some(Node::File(_)) => return Err(VfsError::NotADirectory { path: join(&parts[..=depth]) }),
                None => return Err(VfsError::NotFound { path: join(&parts[..=depth]) }),
            }
        }
        Ok(directory)
    }

    /// Creates a directory; with `parents`, missing parents too and no error if it exists.
    pub fn mkdir(&mut self, path: &str, parents: bool) -> Result<(), VfsError> {
        let parts = components(path)?;
        let Some((name, parent)) = parts.split_last() else {
            return if parents { Ok(()) } else { Err(VfsError::AlreadyExists { path: String::from("/") }) };
        };
        // Check first so a failure changes nothing.
        if !parents {
            self.directory(parent)?;
        } else {
            self.check_creatable(parent)?;
        }
        let directory = self.directory_mut(parent, parents)?;
        match directory.get(*name) {
            Some(Node::Directory(_)) if parents => Ok(()),
            Some(_) => Err(VfsError::AlreadyExists { path: join(&parts) }),
            None => {
                directory.insert(String::from(*name), Node::Directory(BTreeMap::new()));
                Ok(())
            }
        }
    }

    /// Fails if some existing component of `parts` is a file (so creating parents cannot succeed).
    fn check_creatable(&self, parts: &[&str]) -> Result<(), VfsError> {
        let mut directory = &self.root;
        for (depth, part) in parts.iter().enumerate() {
            match directory.get(*part) {
                Some(Node::Directory(entries)) => directory = entries,
                Some(Node::File(_)) => return Err(VfsError::NotADirectory { path: join(&parts[..=depth]) }),
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// Writes a whole file, replacing any previous content; with `parents`, creates missing directories.
    pub fn write(&mut self, path: &str, bytes: &[u8], parents: bool) -> Result<(), VfsError> {
        let parts = components(path)?;
        let Some((name, parent)) = parts.split_last() else {
            return Err(VfsError::IsADirectory { path: String::from("/") });
        };
        let old_size = match self.directory(parent).ok().and_then(|directory| directory.get(*name)) {
            Some(Node::Directory(_)) => return Err(VfsError::IsADirectory { path: join(&parts) }),
            Some(Node::File(content)) => content.len() as u64,
            None => 0,
        };
        let available = self.capacity_bytes - (self.used_bytes - old_size);
        if bytes.len() as u64 > available {
            return Err(VfsError::NoSpace { needed: bytes.len() as u64, available });
        }
        if parents {
            self.check_creatable(parent)?;
        } else {
            self.directory(parent)?;
        }
        let directory = self.directory_mut(parent, parents)?;
        directory.insert(String::from(*name), Node::File(bytes.to_vec()));
        self.used_bytes = self.used_bytes - old_size + bytes.len() as u64;
        Ok(())
    }

    /// A file's bytes.
    pub fn read(&self, path: &str) -> Result<&[u8], VfsError> {
        let parts = components(path)?;
        let Some((name, parent)) = parts.split_last() else {
            return Err(VfsError::IsADirectory { path: String::from("/") });
        };
        match self.directory(parent)?.get(*name) {
            Some(Node::File(content)) => Ok(content),
            Some(Node::Directory(_)) => Err(VfsError::IsADirectory { path: join(&parts) }),
            None => Err(VfsError::NotFound { path: join(&parts) }),
        }
    }

    /// Entries of a directory in name order, or the file itself when `path` names a file.
    pub fn list(&self, path: &str) -> Result<Vec<Entry>, VfsError> {
        let parts = components(path)?;
        if let Some((name, parent)) = parts.split_last() {
            if let Some(Node::File(content)) = self.directory(parent)?.get(*name) {
                return Ok(alloc::vec![Entry {
                    name: String::from(*name),
                    is_directory: false,
                    size: content.len() as u64
                }]);
            }
        }
        Ok(self
            .directory(&parts)?
            .iter()
            .map(|(name, node)| match node {
                Node::File(content) => Entry { name: name.clone(), is_directory: false, size: content.len() as u64 },
                Node::Directory(_) => Entry { name: name.clone(), is_directory: true, size: 0 },
            })
            .collect())
    }

    /// Removes a file, or a directory (non-empty ones only with `recursive`).
    pub fn remove(&mut self, path: &str, recursive: bool) -> Result<(), VfsError> {
        let parts = components(path)?;
        let Some((name, parent)) = parts.split_last() else {
            return Err(VfsError::InvalidPath { path: String::from(path), reason: "the root cannot be removed" });
        };
        let directory = self.directory_mut(parent, false)?;
        let freed = match directory.get(*name) {
            None => return Err(VfsError::NotFound { path: join(&parts) }),
            Some(Node::Directory(entries)) if !entries.is_empty() && !recursive => {
                return Err(VfsError::NotEmpty { path: join(&parts) })
            }
            Some(node) => bytes_in(node),
        };
        directory.remove(*name);
        self.used_bytes -= freed;
        Ok(())
    }
}

fn nodes_in(directory: &BTreeMap<String, Node>) -> u64 {
    directory
        .values()
        .map(|node| match node {
            Node::File(_) => 1,
            Node::Directory(entries) => 1 + nodes_in(entries),
        })
        .sum()
}

fn bytes_in(node: &Node) -> u64 {
    match node {
        Node::File(content) => content.len() as u64,
        Node::Directory(entries) => entries.values().map(bytes_in).sum(),
    }
}

#[cfg(test)]
mod tests;
