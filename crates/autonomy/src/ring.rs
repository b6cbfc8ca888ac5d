//! A fixed-capacity ring that keeps the newest entries, for histories and traces.
//!
//! Its slots are on the heap, claimed in full when the ring is made (and never again), so a large ring, such
//! as the meta-agent's 256 traces, is never built on a thread's stack, and a ring that fills up later does
//! not look like a leak to a heap check.

use alloc::vec::Vec;

/// Keeps the last `N` values pushed; older ones are overwritten.
#[derive(Debug, Clone)]
pub struct Ring<T: Copy, const N: usize> {
    /// Values in slot order: value number `i` is in slot `i % N`.
    slots: Vec<T>,
    /// Values ever pushed; the next one goes to slot `pushed % N`.
    pushed: u64,
}

impl<T: Copy, const N: usize> Default for Ring<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy, const N: usize> Ring<T, N> {
    /// An empty ring, its `N` slots allocated.
    pub fn new() -> Self {
        Ring { slots: Vec::with_capacity(N), pushed: 0 }
    }

    /// Adds a value, overwriting the oldest when full (a ring of capacity 0 keeps nothing).
    pub fn push(&mut self, value: T) {
        if self.slots.len() < N {
            self.slots.push(value);
        } else if N > 0 {
            self.slots[(self.pushed % N as u64) as usize] = value;
        }
        self.pushed += 1;
    }

    /// Values ever pushed, including overwritten ones.
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// Values held now (at most `N`).
    pub fn len(&self) -> usize {
        self.pushed.min(N as u64) as usize
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Index (in push order, from 0) of the oldest value still held.
    pub fn oldest_index(&self) -> u64 {
        self.pushed - self.len() as u64
    }

    /// The value pushed as number `index` (from 0), if it is still held.
    pub fn get(&self, index: u64) -> Option<&T> {
        if index < self.oldest_index() || index >= self.pushed {
            return None;
        }
        self.slots.get((index % N as u64) as usize)
    }

    /// Mutable access to the value pushed as number `index`, if it is still held.
    pub fn get_mut(&mut self, index: u64) -> Option<&mut T> {
        if index < self.oldest_index() || index >= self.pushed {
            return None;
        }
        self.slots.get_mut((index % N as u64) as usize)
    }

    /// The last `count` values held (fewer if fewer are held), oldest first.
    pub fn last(&self, count: usize) -> impl Iterator<Item = &T> + '_ {
        let count = count.min(self.len()) as u64;
        (self.pushed - count..self.pushed).filter_map(move |index| self.get(index))
    }

    /// Every value held, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.last(N)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_in_order() {
        let mut ring: Ring<u32, 3> = Ring::new();
        assert!(ring.is_empty());
        for value in 10..15 {
            ring.push(value);
        }
        assert_eq!(ring.pushed(), 5);
        assert_eq!(ring.len(), 3);
        assert_eq!(ring.oldest_index(), 2);
        assert_eq!(ring.iter().copied().collect::<Vec<_>>(), vec![12, 13, 14]);
        assert_eq!(ring.last(2).copied().collect::<Vec<_>>(), vec![13, 14]);
        assert_eq!(ring.last(9).copied().collect::<Vec<_>>(), vec![12, 13, 14]);
        assert_eq!((ring.get(1), ring.get(2), ring.get(4), ring.get(5)), (None, Some(&12), Some(&14), None));
        *ring.get_mut(3).unwrap() = 99;
        assert_eq!(ring.iter().copied().collect::<Vec<_>>(), vec![12, 99, 14]);
    }

    #[test]
    fn capacity_zero_keeps_nothing() {
        let mut ring: Ring<u8, 0> = Ring::new();
        ring.push(1);
        assert_eq!((ring.pushed(), ring.len(), ring.get(0)), (1, 0, None));
    }
}
