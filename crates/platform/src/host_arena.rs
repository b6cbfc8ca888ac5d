//! Host-only arenas for benchmarks: talc and `buddy_system_allocator::Heap` over owned memory, behind sound handles.
//!
//! Both allocators need `unsafe` to be handed memory and to free; here that
//! is wrapped once: a [`Block`] can only come from `allocate`, is not
//! `Clone`, and carries its arena's ID, so it is freed at most once and only
//! by the arena that made it.

use alloc::vec::Vec;
use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use talc::{ErrOnOom, Span, Talc};

static NEXT_ARENA: AtomicU64 = AtomicU64::new(1);

/// An allocation from one of the arenas.
#[derive(Debug)]
pub struct Block {
    pointer: NonNull<u8>,
    layout: Layout,
    arena: u64,
}

impl Block {
    /// Address of the allocation.
    pub fn address(&self) -> usize {
        self.pointer.as_ptr() as usize
    }
}

/// Why a free was refused.
#[derive(Debug)]
pub struct ForeignBlock(pub Block);

/// talc over an owned buffer.
pub struct TalcArena {
    id: u64,
    talc: Talc<ErrOnOom>,
    _memory: Vec<u64>,
}

impl core::fmt::Debug for TalcArena {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("TalcArena").field("id", &self.id).finish()
    }
}

impl TalcArena {
    /// An arena of `bytes` (rounded down to 8), every page written once so
    /// that first-touch page faults are not charged to the allocator.
    pub fn new(bytes: usize) -> Self {
        let mut memory = alloc::vec![u64::MAX; bytes / 8];
        let mut talc = Talc::new(ErrOnOom);
        let span = Span::from_base_size(memory.as_mut_ptr().cast::<u8>(), memory.len() * 8);
        // SAFETY: `memory` is owned by the arena, never touched through the
        // Vec again, and its heap buffer does not move while the arena lives
        // (moving the Vec moves only its pointer), so talc has sole use of it.
        let _ = unsafe { talc.claim(span) };
        TalcArena { id: NEXT_ARENA.fetch_add(1, Ordering::Relaxed), talc, _memory: memory }
    }

    /// Allocates `size` bytes aligned to `align`.
    pub fn allocate(&mut self, size: usize, align: usize) -> Option<Block> {
        let layout = Layout::from_size_align(size.max(1), align).ok()?;
        // SAFETY: the layout's size is non-zero.
        let pointer = unsafe { self.talc.malloc(layout) }.ok()?;
        Some(Block { pointer, layout, arena: self.id })
    }

    /// Frees a block of this arena; a block of another arena is handed back.
    pub fn free(&mut self, block: Block) -> Result<(), ForeignBlock> {
        if block.arena != self.id {
            return Err(ForeignBlock(block));
        }
        // SAFETY: the block came from `allocate` of this arena (ID checked)
        // with this layout, and is consumed, so it is freed exactly once.
        unsafe { self.talc.free(block.pointer, block.layout) };
        Ok(())
    }
}

/// `buddy_system_allocator::Heap` over an owned buffer.
pub struct BuddyHeapArena {
    id: u64,
    heap: buddy_system_allocator::Heap<32>,
    _memory: Vec<u64>,
}

impl core::fmt::Debug for BuddyHeapArena {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("BuddyHeapArena").field("id", &self.id).finish()
    }
}

impl BuddyHeapArena {
    /// An arena of `bytes` (rounded down to 8), pre-faulted like [`TalcArena::new`].
    pub fn new(bytes: usize) -> Self {
        let mut memory = alloc::vec![u64::MAX; bytes / 8];
        let mut heap = buddy_system_allocator::Heap::<32>::new();
        let start = memory.as_mut_ptr() as usize;
        // SAFETY: as for `TalcArena::new`: the buffer is owned, unused
        // elsewhere and does not move while the arena lives.
        unsafe { heap.add_to_heap(start, start + memory.len() * 8) };
        BuddyHeapArena { id: NEXT_ARENA.fetch_add(1, Ordering::Relaxed), heap, _memory: memory }
    }

    /// Allocates `size` bytes aligned to `align`.
    pub fn allocate(&mut self, size: usize, align: usize) -> Option<Block> {
        let layout = Layout::from_size_align(size.max(1), align).ok()?;
        let pointer = self.heap.alloc(layout).ok()?;
        Some(Block { pointer, layout, arena: self.id })
    }

    /// Frees a block of this arena; a block of another arena is handed back.
    pub fn free(&mut self, block: Block) -> Result<(), ForeignBlock> {
        if block.arena != self.id {
            return Err(ForeignBlock(block));
        }
        // SAFETY: the block came from `allocate` of this arena with this
        // layout and is consumed, so it is freed exactly once.
        unsafe { self.heap.dealloc(block.pointer, block.layout) };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_distinct_and_go_back_only_to_their_arena() {
        let mut talc = TalcArena::new(1 << 20);
        let mut buddy = BuddyHeapArena::new(1 << 20);
        let a = talc.allocate(100, 8).unwrap();
        let b = talc.allocate(100, 8).unwrap();
        assert_ne!(a.address(), b.address());
        let c = buddy.allocate(100, 8).unwrap();
        let refused = talc.free(c).unwrap_err();
        buddy.free(refused.0).unwrap();
        talc.free(a).unwrap();
        talc.free(b).unwrap();
        assert!(talc.allocate(2 << 20, 8).is_none());
    }
}
