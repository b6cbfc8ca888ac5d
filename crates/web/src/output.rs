//! The bounded queue of bytes a connection has for its peer, drained by the kernel.

use alloc::vec::Vec;

/// Bytes waiting to be sent, never more than `bound`.
#[derive(Debug, Clone)]
pub(crate) struct OutputQueue {
    bytes: Vec<u8>,
    /// Bytes at the front already drained.
    start: usize,
    bound: usize,
}

impl OutputQueue {
    pub(crate) fn new(bound: usize) -> OutputQueue {
        OutputQueue { bytes: Vec::new(), start: 0, bound }
    }

    /// Bytes waiting.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len() - self.start
    }

    /// Whether `extra` more bytes fit under the bound.
    pub(crate) fn fits(&self, extra: usize) -> bool {
        self.len().checked_add(extra).is_some_and(|total| total <= self.bound)
    }

    /// Appends `data` when it fits whole; `false` (and nothing queued) when it does not.
    pub(crate) fn push(&mut self, data: &[u8]) -> bool {
        if !self.fits(data.len()) {
            return false;
        }
        if self.start > 0 && self.start >= self.bytes.len() / 2 {
            self.bytes.drain(..self.start);
            self.start = 0;
        }
        self.bytes.extend_from_slice(data);
        true
    }

    pub(crate) fn pending(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    /// Marks `count` bytes as sent (at most what is waiting); returns how many were.
    pub(crate) fn consume(&mut self, count: usize) -> usize {
        let taken = count.min(self.len());
        self.start += taken;
        if self.start == self.bytes.len() {
            // Emptied: the memory goes back too, so an idle connection holds none and the kernel's heap returns to
            // its level before a burst (leak checks compare it).
            self.bytes = Vec::new();
            self.start = 0;
        }
        taken
    }

    pub(crate) fn clear(&mut self) {
        self.bytes = Vec::new();
        self.start = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emptied_queue_gives_its_memory_back_and_a_partly_drained_one_keeps_order() {
        let mut queue = OutputQueue::new(64);
        assert!(queue.push(b"hello world"));
        assert!(!queue.push(&[0; 60]), "over the bound: refused whole");
        assert_eq!(queue.consume(6), 6);
        assert_eq!(queue.len(), 5);
        assert!(queue.bytes.capacity() >= 11);
        assert_eq!(queue.consume(100), 5);
        assert_eq!((queue.len(), queue.bytes.capacity()), (0, 0));
    }
}
