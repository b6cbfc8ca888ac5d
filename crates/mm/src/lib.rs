//! SIS memory management: the buddy page-frame allocator over all RAM.
//!
//! A buddy allocator because the stress framework needs honest coalescing
//! and fragmentation figures: freeing a block merges it with its free buddy
//! at once, and the free lists per order say exactly how fragmented free
//! memory is. The allocator only keeps books by frame number in a metadata
//! array the platform hands over; it never touches the memory it manages, so
//! it is entirely safe code and is tested on the host.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod buddy;
mod pool;

pub use buddy::{FrameAllocator, FrameMeta, FrameStats, MmError};
pub use pool::{
    CompactionReport, CountedFrames, FrameSource, MemoryKind, ObjectHandle, Pool, PoolError, PoolStats,
    LARGEST_OBJECT_BYTES, SLAB_CLASSES,
};

/// Bytes in one page frame.
pub const PAGE_SIZE: u64 = 4096;
/// Largest block order: 2^10 frames (4 MiB).
pub const MAX_ORDER: usize = 10;

/// Smallest order whose block holds `pages` frames (`None` above [`MAX_ORDER`]).
#[inline]
pub fn order_for_pages(pages: u64) -> Option<usize> {
    let order = (u64::BITS - pages.max(1).saturating_sub(1).leading_zeros()) as usize;
    (order <= MAX_ORDER).then_some(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_for_pages_rounds_up_to_a_power_of_two() {
        assert_eq!(order_for_pages(0), Some(0));
        assert_eq!(order_for_pages(1), Some(0));
        assert_eq!(order_for_pages(2), Some(1));
        assert_eq!(order_for_pages(3), Some(2));
        assert_eq!(order_for_pages(1024), Some(10));
        assert_eq!(order_for_pages(1025), None);
    }
}
