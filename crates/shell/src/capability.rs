//! Capabilities: what a caller may do, checked by the registry before any handler runs.
//!
//! A command (or subcommand) may be restricted to callers holding a set of
//! capabilities ([`Registry::restrict`](crate::Registry::restrict)); a
//! subcommand needs everything its parents need. The console and batch mode
//! execute lines holding [`Capabilities::ALL`]; a caller without what a command
//! needs gets `permission-denied` and the handler never runs.

use core::fmt;

/// A set of capabilities (a bit set; the empty set may run only unrestricted commands).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(u32);

impl Capabilities {
    /// No capability.
    pub const NONE: Capabilities = Capabilities(0);
    /// Change the in-memory filesystem (`mkdir`, `rm`).
    pub const FILES: Capabilities = Capabilities(1 << 0);
    /// Change kernel state, start work or power off: threads, scheduling, autonomy, agents, devices, faults, stress runs.
    pub const ADMIN: Capabilities = Capabilities(1 << 1);
    /// Generate with a language model (`llmctl infer`), charged to the caller's own governance principal: what a
    /// WebAssembly agent's COMMAND_RUN holds.
    pub const INFER: Capabilities = Capabilities(1 << 2);
    /// Every capability: the serial console and boot-argument batch mode.
    pub const ALL: Capabilities = Capabilities(Self::FILES.0 | Self::ADMIN.0 | Self::INFER.0);
    /// What lines from the serial console and boot-argument batch mode run with ([`crate::Registry::execute`]).
    pub const CONSOLE: Capabilities = Self::ALL;

    const NAMES: [(Capabilities, &'static str); 3] =
        [(Self::FILES, "files"), (Self::ADMIN, "admin"), (Self::INFER, "infer")];

    /// Both sets together.
    pub const fn union(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 | other.0)
    }

    /// Whether every capability of `needed` is in this set.
    pub const fn contains(self, needed: Capabilities) -> bool {
        self.0 & needed.0 == needed.0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The capabilities of `needed` this set lacks.
    pub const fn missing(self, needed: Capabilities) -> Capabilities {
        Capabilities(needed.0 & !self.0)
    }

    /// Names of the capabilities in the set, in a fixed order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES.into_iter().filter(move |(capability, _)| self.contains(*capability)).map(|(_, name)| name)
    }
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, formatter)
    }
}

impl fmt::Display for Capabilities {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return formatter.write_str("none");
        }
        for (index, name) in self.names().enumerate() {
            if index > 0 {
                formatter.write_str(",")?;
            }
            formatter.write_str(name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn set_operations_and_names() {
        assert!(Capabilities::ALL.contains(Capabilities::ADMIN));
        assert!(Capabilities::ALL.contains(Capabilities::NONE));
        assert!(!Capabilities::FILES.contains(Capabilities::ADMIN));
        assert!(!Capabilities::NONE.contains(Capabilities::FILES));
        assert_eq!(Capabilities::FILES.missing(Capabilities::ALL), Capabilities::ADMIN.union(Capabilities::INFER));
        assert_eq!(Capabilities::ALL.to_string(), "files,admin,infer");
        assert_eq!(Capabilities::INFER.to_string(), "infer");
        assert!(!Capabilities::ADMIN.contains(Capabilities::INFER));
        assert_eq!(Capabilities::NONE.to_string(), "none");
        assert_eq!(Capabilities::FILES.union(Capabilities::ADMIN).union(Capabilities::INFER), Capabilities::ALL);
    }
}
