//! The buddy allocator: free lists per order threaded through a per-frame metadata array.

use core::fmt;

use crate::{order_for_pages, MAX_ORDER, PAGE_SIZE};

/// "No frame" in a free-list link.
const NONE: u32 = u32::MAX;

/// Per-frame bookkeeping. All-zero is the valid initial state ("reserved"),
/// so the platform may zero-fill raw memory and hand it over.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct FrameMeta {
    next: u32,
    prev: u32,
    order: u8,
    state: u8,
    _padding: [u8; 2],
}

/// Never handed out (kernel image, metadata, holes, device tree).
const RESERVED: u8 = 0;
/// First frame of a free block on the free list of `order`.
const FREE_HEAD: u8 = 1;
/// Any other frame of a free block.
const FREE_BODY: u8 = 2;
/// First frame of an allocated block of `order`.
const ALLOCATED_HEAD: u8 = 3;

/// What went wrong, with the figures a person needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmError {
    /// The managed range does not start on a page boundary.
    MisalignedBase {
        /// The base given.
        base: u64,
    },
    /// The metadata slice has fewer entries than frames.
    MetadataTooShort {
        /// Entries needed.
        needed: usize,
        /// Entries given.
        given: usize,
    },
    /// More frames than a u32 index can name.
    TooManyFrames {
        /// Frames requested.
        frames: usize,
    },
    /// An address outside the managed range.
    OutOfRange {
        /// The address.
        address: u64,
    },
    /// An address not aligned to its block size.
    Misaligned {
        /// The address.
        address: u64,
        /// The order it was given with.
        order: usize,
    },
    /// An order above [`MAX_ORDER`].
    OrderTooLarge {
        /// The order.
        order: usize,
    },
    /// No free block of this order or larger.
    OutOfMemory {
        /// The order requested.
        order: usize,
    },
    /// Freeing a block that is already free.
    DoubleFree {
        /// The address.
        address: u64,
    },
    /// Freeing with a different order than allocated.
    WrongOrder {
        /// The address.
        address: u64,
        /// The order it was allocated with.
        allocated: usize,
        /// The order given to `free`.
        given: usize,
    },
    /// Freeing an address that is not the start of an allocated block.
    NotAllocated {
        /// The address.
        address: u64,
    },
    /// Handing over memory that is already usable (free or allocated).
    AlreadyUsable {
        /// The first such address.
        address: u64,
    },
}

impl fmt::Display for MmError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MmError::MisalignedBase { base } => write!(formatter, "base {base:#x} is not page aligned"),
            MmError::MetadataTooShort { needed, given } => {
                write!(formatter, "frame metadata has {given} entries, {needed} needed")
            }
            MmError::TooManyFrames { frames } => write!(formatter, "{frames} frames exceed the u32 index"),
            MmError::OutOfRange { address } => write!(formatter, "address {address:#x} is outside managed RAM"),
            MmError::Misaligned { address, order } => {
                write!(formatter, "address {address:#x} is not aligned to an order-{order} block")
            }
            MmError::OrderTooLarge { order } => write!(formatter, "order {order} exceeds the maximum {MAX_ORDER}"),
            MmError::OutOfMemory { order } => write!(formatter, "no free block of order {order} or larger"),
            MmError::DoubleFree { address } => write!(formatter, "block at {address:#x} is already free"),
            MmError::WrongOrder { address, allocated, given } => {
                write!(formatter, "block at {address:#x} was allocated with order {allocated}, freed with {given}")
            }
            MmError::NotAllocated { address } => {
                write!(formatter, "address {address:#x} is not the start of an allocated block")
            }
            MmError::AlreadyUsable { address } => write!(formatter, "frame {address:#x} is already free or allocated"),
        }
    }
}

/// A reading of the allocator's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// Frames in the managed range.
    pub frame_count: usize,
    /// Frames in free blocks.
    pub free_frames: usize,
    /// Frames in allocated blocks.
    pub allocated_frames: usize,
    /// Frames never handed to the allocator.
    pub reserved_frames: usize,
    /// Free blocks on each order's list.
    pub free_blocks_by_order: [usize; MAX_ORDER + 1],
    /// Order of the largest free block, if any.
    pub largest_free_order: Option<usize>,
}

impl FrameStats {
    /// Fragmentation in per-mille: how far the largest free block falls
    /// short of the largest block free memory could form, which is the
    /// total free memory capped at one maximal buddy block. 0 when free
    /// memory is as contiguous as the allocator can make it (or none is
    /// free), towards 1000 as it splinters into single pages.
    pub fn fragmentation_per_mille(&self) -> u32 {
        match self.largest_free_order {
            Some(order) if self.free_frames > 0 => {
                let possible = self.free_frames.min(1 << MAX_ORDER);
                let largest = (1usize << order).min(possible);
                (1000 - largest * 1000 / possible) as u32
            }
            _ => 0,
        }
    }
}

/// The buddy page-frame allocator.
#[derive(Debug)]
pub struct FrameAllocator<'m> {
    base: u64,
    metadata: &'m mut [FrameMeta],
    heads: [u32; MAX_ORDER + 1],
    /// Bit `order` set when that order's free list is not empty (one instruction finds the smallest fit).
    nonempty: u32,
    free_blocks: [usize; MAX_ORDER + 1],
    free_frames: usize,
    allocated_frames: usize,
}

impl<'m> FrameAllocator<'m> {
    /// Manages `frame_count` frames from `base`; every frame starts reserved.
    pub fn new(base: u64, frame_count: usize, metadata: &'m mut [FrameMeta]) -> Result<Self, MmError> {
        if !base.is_multiple_of(PAGE_SIZE) {
            return Err(MmError::MisalignedBase { base });
        }
        if frame_count >= NONE as usize {
            return Err(MmError::TooManyFrames { frames: frame_count });
        }
        if metadata.len() < frame_count {
            return Err(MmError::MetadataTooShort { needed: frame_count, given: metadata.len() });
        }
        let metadata = &mut metadata[..frame_count];
        metadata.fill(FrameMeta::default());
        Ok(FrameAllocator {
            base,
            metadata,
            heads: [NONE; MAX_ORDER + 1],
            nonempty: 0,
            free_blocks: [0; MAX_ORDER + 1],
            free_frames: 0,
            allocated_frames: 0,
        })
    }

    /// Hands `[start, end)` to the allocator (rounded inward to pages), merging with free neighbours.
    pub fn free_range(&mut self, start: u64, end: u64) -> Result<(), MmError> {
        let start = start.div_ceil(PAGE_SIZE) * PAGE_SIZE;
        let end = end / PAGE_SIZE * PAGE_SIZE;
        if end <= start {
            return Ok(());
        }
        let first = self.index_of(start)?;
        let last = self.index_of(end - PAGE_SIZE)?;
        if let Some(index) = (first..=last).find(|&index| self.metadata[index].state != RESERVED) {
            return Err(MmError::AlreadyUsable { address: self.address_of(index) });
        }
        let mut index = first;
        while index <= last {
            let mut order = MAX_ORDER;
            while order > 0 && (!index.is_multiple_of(1 << order) || index + (1 << order) > last + 1) {
                order -= 1;
            }
            for frame in &mut self.metadata[index..index + (1 << order)] {
                frame.state = FREE_BODY;
            }
            self.free_frames += 1 << order;
            self.insert_free(index, order);
            index += 1 << order;
        }
        Ok(())
    }

    /// Allocates a block of 2^`order` frames; returns its address.
    #[inline(always)]
    pub fn allocate(&mut self, order: usize) -> Result<u64, MmError> {
        if order > MAX_ORDER {
            return Err(MmError::OrderTooLarge { order });
        }
        let fitting = self.nonempty >> order;
        if fitting == 0 {
            return Err(MmError::OutOfMemory { order });
        }
        let found = order + fitting.trailing_zeros() as usize;
        let index = self.pop(found);
        if found > order {
            self.split(index, found, order);
        }
        let head = &mut self.metadata[index];
        head.state = ALLOCATED_HEAD;
        head.order = order as u8;
        self.free_frames -= 1 << order;
        self.allocated_frames += 1 << order;
        Ok(self.address_of(index))
    }

    /// Allocates at least `count` contiguous frames (rounded up to a power of two).
    pub fn allocate_pages(&mut self, count: u64) -> Result<(u64, usize), MmError> {
        let order = order_for_pages(count).ok_or(MmError::OrderTooLarge { order: MAX_ORDER + 1 })?;
        self.allocate(order).map(|address| (address, order))
    }

    /// Returns a block from [`allocate`](Self::allocate); bad input is refused and changes nothing.
    pub fn free(&mut self, address: u64, order: usize) -> Result<(), MmError> {
        if order > MAX_ORDER {
            return Err(MmError::OrderTooLarge { order });
        }
        let index = self.index_of(address)?;
        if !address.is_multiple_of(PAGE_SIZE) || !index.is_multiple_of(1 << order) {
            return Err(MmError::Misaligned { address, order });
        }
        let head = self.metadata[index];
        match head.state {
            ALLOCATED_HEAD if head.order as usize == order => {}
            ALLOCATED_HEAD => {
                return Err(MmError::WrongOrder { address, allocated: head.order as usize, given: order })
            }
            FREE_HEAD => return Err(MmError::DoubleFree { address }),
            FREE_BODY if self.enclosing_head_state(index) == Some(FREE_HEAD) => {
                return Err(MmError::DoubleFree { address })
            }
            _ => return Err(MmError::NotAllocated { address }),
        }
        self.metadata[index].state = FREE_BODY;
        self.allocated_frames -= 1 << order;
        self.free_frames += 1 << order;
        self.insert_free(index, order);
        Ok(())
    }

    /// Current figures.
    pub fn stats(&self) -> FrameStats {
        let frame_count = self.metadata.len();
        FrameStats {
            frame_count,
            free_frames: self.free_frames,
            allocated_frames: self.allocated_frames,
            reserved_frames: frame_count - self.free_frames - self.allocated_frames,
            free_blocks_by_order: self.free_blocks,
            largest_free_order: (0..=MAX_ORDER).rev().find(|&order| self.free_blocks[order] > 0),
        }
    }

    /// Puts a free block on its list after merging it with free buddies.
    fn insert_free(&mut self, mut index: usize, mut order: usize) {
        while order < MAX_ORDER {
            let buddy = index ^ (1 << order);
            let mergeable =
                self.metadata.get(buddy).is_some_and(|meta| meta.state == FREE_HEAD && meta.order as usize == order);
            if !mergeable {
                break;
            }
            self.unlink(buddy, order);
            self.metadata[buddy].state = FREE_BODY;
            self.metadata[index].state = FREE_BODY;
            index = index.min(buddy);
            order += 1;
        }
        self.push(index, order);
    }

    /// State of the head of the block that contains `index` (free or allocated), if any.
    ///
    /// Only block heads carry an accurate state; frames inside a block keep
    /// whatever they had, so the enclosing head is found by trying each
    /// aligned candidate, smallest order first.
    fn enclosing_head_state(&self, index: usize) -> Option<u8> {
        (0..=MAX_ORDER).find_map(|order| {
            let head = index & !((1 << order) - 1);
            let meta = self.metadata[head];
            let covers = head + (1usize << meta.order) > index;
            (matches!(meta.state, FREE_HEAD | ALLOCATED_HEAD) && covers).then_some(meta.state)
        })
    }

    /// Takes the first block off the (non-empty) list of `order`, without a branch on what follows it.
    #[inline(always)]
    fn pop(&mut self, order: usize) -> usize {
        let index = self.heads[order] as usize;
        let next = self.metadata[index].next;
        let last = next == NONE;
        self.heads[order] = next;
        // The new head's back link is cleared; when there is none, the popped block's own
        // (unused while it is allocated) is written instead, so no branch is needed.
        let new_head = if last { index } else { next as usize };
        self.metadata[new_head].prev = NONE;
        self.nonempty &= !((last as u32) << order);
        self.free_blocks[order] -= 1;
        index
    }

    /// Puts the upper halves of block `index` of order `found` back on the lists until order `order` remains.
    #[cold]
    #[inline(never)]
    fn split(&mut self, index: usize, mut found: usize, order: usize) {
        while found > order {
            found -= 1;
            let upper = index + (1 << found);
            self.push(upper, found);
        }
    }

    fn push(&mut self, index: usize, order: usize) {
        let old_head = self.heads[order];
        let meta = &mut self.metadata[index];
        meta.state = FREE_HEAD;
        meta.order = order as u8;
        meta.prev = NONE;
        meta.next = old_head;
        if old_head != NONE {
            self.metadata[old_head as usize].prev = index as u32;
        }
        self.heads[order] = index as u32;
        self.nonempty |= 1 << order;
        self.free_blocks[order] += 1;
    }

    fn unlink(&mut self, index: usize, order: usize) {
        let FrameMeta { next, prev, .. } = self.metadata[index];
        if prev == NONE {
            self.heads[order] = next;
            if next == NONE {
                self.nonempty &= !(1 << order);
            }
        } else {
            self.metadata[prev as usize].next = next;
        }
        if next != NONE {
            self.metadata[next as usize].prev = prev;
        }
        self.free_blocks[order] -= 1;
    }

    fn index_of(&self, address: u64) -> Result<usize, MmError> {
        let offset = address.checked_sub(self.base).ok_or(MmError::OutOfRange { address })?;
        let index = (offset / PAGE_SIZE) as usize;
        if index >= self.metadata.len() {
            return Err(MmError::OutOfRange { address });
        }
        Ok(index)
    }

    fn address_of(&self, index: usize) -> u64 {
        self.base + index as u64 * PAGE_SIZE
    }
}

#[cfg(test)]
mod tests;
