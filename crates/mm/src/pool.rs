//! Memory pools: a cgroup-like budget of page frames with sized objects, reclaimable cache and compaction.
//!
//! A pool takes page blocks from a [`FrameSource`] (the kernel's buddy
//! allocator) on demand and charges them to its limit, so a stress test can
//! drive its pool to 100 % without starving the kernel. Objects of up to
//! 2 KiB share pages in per-size-class slabs; larger ones get whole buddy
//! blocks. Reclaimable objects (a cache) can be dropped by the pool. Pressure,
//! OOM events, bytes recovered and fragmentation are all read from this
//! bookkeeping and from the frame allocator: nothing is estimated.
//!
//! Slab classes and block orders are one range of classes: class `c` holds
//! objects of `64 << c` bytes, a block being a slab of one slot. So every
//! unreclaimable allocation runs the same instructions whatever its size
//! (with random sizes, a branch choosing between a slab and a block path was
//! mispredicted about half the time). A freed block therefore stays with the
//! pool, idle, for the next object of its order. Idle blocks stay charged
//! (they are frames taken from the source) but are not in use: pressure and
//! the limit count only pages in use, an allocation that would not fit with
//! them returns them first, compaction returns them, and so does the free of
//! the last live object. Pressure, limit errors, live and slab figures and
//! the bytes compaction recovers are the same as before idle blocks, bit for
//! bit; charged pages now include idle ones, and which frames back a block
//! differs (so do the frame allocator's own figures while blocks are idle).

use alloc::vec::Vec;
use core::fmt;
use core::hint::select_unpredictable;

use crate::{order_for_pages, FrameAllocator, MmError, MAX_ORDER, PAGE_SIZE};

/// Object sizes served from slabs; each slab is one page.
pub const SLAB_CLASSES: [u32; 6] = [64, 128, 256, 512, 1024, 2048];
/// Largest object: one maximal buddy block.
pub const LARGEST_OBJECT_BYTES: u64 = PAGE_SIZE << MAX_ORDER;

/// Where pools get their pages.
pub trait FrameSource {
    /// A block of 2^`order` frames.
    fn allocate_frames(&mut self, order: usize) -> Result<u64, MmError>;
    /// Returns a block.
    fn free_frames(&mut self, address: u64, order: usize) -> Result<(), MmError>;
    /// The frame allocator's current figures (leak checks and fragmentation).
    fn frame_stats(&self) -> crate::FrameStats;
}

impl FrameSource for FrameAllocator<'_> {
    #[inline(always)]
    fn allocate_frames(&mut self, order: usize) -> Result<u64, MmError> {
        self.allocate(order)
    }

    #[inline]
    fn free_frames(&mut self, address: u64, order: usize) -> Result<(), MmError> {
        self.free(address, order)
    }

    fn frame_stats(&self) -> crate::FrameStats {
        self.stats()
    }
}

impl<S: FrameSource + ?Sized> FrameSource for &mut S {
    #[inline]
    fn allocate_frames(&mut self, order: usize) -> Result<u64, MmError> {
        (**self).allocate_frames(order)
    }

    #[inline]
    fn free_frames(&mut self, address: u64, order: usize) -> Result<(), MmError> {
        (**self).free_frames(address, order)
    }

    fn frame_stats(&self) -> crate::FrameStats {
        (**self).frame_stats()
    }
}

/// A frame source that counts the frames taken through it and returned through it, so a workload can prove it gave
/// back what it took while the rest of the machine allocates beside it (the whole allocator's free count cannot: the
/// heap grows by 1 MiB blocks it never returns, and other threads hold frames for a while).
#[derive(Debug, Default)]
pub struct CountedFrames<S> {
    inner: S,
    taken: u64,
    returned: u64,
}

impl<S> CountedFrames<S> {
    /// Counts what passes through `inner` from now on.
    pub fn new(inner: S) -> Self {
        Self { inner, taken: 0, returned: 0 }
    }

    /// Frames taken through this source.
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// Frames returned through this source.
    pub fn returned(&self) -> u64 {
        self.returned
    }

    /// Frames taken and not yet returned (saturating: returning more than was taken shows as `returned > taken`).
    pub fn outstanding(&self) -> u64 {
        self.taken.saturating_sub(self.returned)
    }
}

impl<S: FrameSource> FrameSource for CountedFrames<S> {
    fn allocate_frames(&mut self, order: usize) -> Result<u64, MmError> {
        let address = self.inner.allocate_frames(order)?;
        self.taken += 1 << order;
        Ok(address)
    }

    fn free_frames(&mut self, address: u64, order: usize) -> Result<(), MmError> {
        self.inner.free_frames(address, order)?;
        self.returned += 1 << order;
        Ok(())
    }

    fn frame_stats(&self) -> crate::FrameStats {
        self.inner.frame_stats()
    }
}

/// Whether the pool may drop an object under pressure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryKind {
    /// Held until its owner frees it.
    Unreclaimable,
    /// A cache: whole pages the pool may drop during compaction.
    Reclaimable,
}

/// An allocated object; give it back to [`Pool::free`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectHandle {
    /// Physical address of the object.
    pub address: u64,
    /// Bytes requested.
    pub size: u32,
    /// Unique per pool, so a handle to a dropped cache object is never confused with a reused address.
    pub id: u64,
    placement: Placement,
}

impl ObjectHandle {
    /// Whether the pool may drop this object during compaction.
    pub fn is_reclaimable(&self) -> bool {
        matches!(self.placement, Placement::Cache { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// Slot `slot` of entry `slab` of `class` (for a block class, the block itself).
    Slab {
        class: u8,
        slab: u32,
        slot: u8,
    },
    Cache {
        order: u8,
    },
}

/// Why an allocation or free failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// Size 0 or above [`LARGEST_OBJECT_BYTES`].
    InvalidSize {
        /// Bytes requested.
        size: u64,
    },
    /// The pool's budget is spent: an OOM event.
    LimitReached {
        /// Pages the allocation needed.
        needed_pages: u64,
        /// Pages still within the limit.
        available_pages: u64,
    },
    /// The frame allocator had no block: an OOM event of the whole machine.
    FramesExhausted {
        /// Order requested.
        order: usize,
    },
    /// A handle this pool did not hand out, or freed twice.
    UnknownObject {
        /// Its address.
        address: u64,
    },
    /// The frame allocator refused a block the pool returned (a bookkeeping bug).
    Frames(MmError),
}

impl PoolError {
    /// Whether this failure is an out-of-memory event.
    pub fn is_out_of_memory(&self) -> bool {
        matches!(self, PoolError::LimitReached { .. } | PoolError::FramesExhausted { .. })
    }
}

impl fmt::Display for PoolError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::InvalidSize { size } => {
                write!(formatter, "object size {size} is outside 1..={LARGEST_OBJECT_BYTES} bytes")
            }
            PoolError::LimitReached { needed_pages, available_pages } => {
                write!(formatter, "pool limit reached: {needed_pages} pages needed, {available_pages} left")
            }
            PoolError::FramesExhausted { order } => write!(formatter, "no free block of order {order} in RAM"),
            PoolError::UnknownObject { address } => write!(formatter, "no live object at {address:#x}"),
            PoolError::Frames(error) => write!(formatter, "frame allocator: {error}"),
        }
    }
}

/// What a compaction gave back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Empty slab pages returned to the frame allocator.
    pub slabs_released: u64,
    /// Cache objects dropped.
    pub cache_objects_dropped: u64,
    /// Bytes of pages in use returned to the frame allocator: dropped cache and empty slabs.
    pub bytes_recovered: u64,
    /// Bytes of idle blocks returned to the frame allocator (charged, but never in use or in pressure).
    pub idle_bytes_released: u64,
}

/// Figures read from the pool's books.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Budget in pages.
    pub limit_pages: u64,
    /// Pages taken from the frame allocator and charged (idle blocks included).
    pub charged_pages: u64,
    /// Charged pages in idle blocks: freed, kept for the next object of their order, not in use.
    pub idle_block_pages: u64,
    /// Live objects (cache included).
    pub live_objects: u64,
    /// Bytes requested by live objects.
    pub live_bytes: u64,
    /// Charged pages holding cache objects.
    pub cache_pages: u64,
    /// Slab pages.
    pub slab_pages: u64,
    /// Slab pages with no object left (what compaction releases first).
    pub empty_slab_pages: u64,
    /// Free bytes inside slab pages (internal fragmentation).
    pub slab_free_bytes: u64,
}

impl PoolStats {
    /// Charged pages in use (idle blocks left out) over the limit, in per-mille.
    pub fn pressure_per_mille(&self) -> u32 {
        if self.limit_pages == 0 {
            return 0;
        }
        let in_use = self.charged_pages.saturating_sub(self.idle_block_pages);
        (in_use.saturating_mul(1000) / self.limit_pages).min(u32::MAX as u64) as u32
    }
}

#[derive(Debug, Clone, Copy)]
struct CacheEntry {
    id: u64,
    address: u64,
    order: u8,
    size: u64,
}

#[derive(Debug, Clone, Copy)]
struct Slab {
    /// First page (for a block class, the block).
    page: u64,
    /// Bit set = slot free.
    free_slots: u64,
    /// The next slab of this class with a free slot, or [`NO_SLAB`]; meaningful only while this one has one.
    next_partial: u32,
    slots: u8,
}

/// End of a class's list of partial slabs.
const NO_SLAB: u32 = u32::MAX;
/// Objects of class `c` are `64 << c` bytes: this is log2 of the smallest.
const OBJECT_SHIFT: usize = 6;
/// Classes up to here share pages; from here on class `c` is a block of order `c - BLOCK_CLASS`.
const BLOCK_CLASS: usize = SLAB_CLASSES.len();
/// Slab classes and block orders.
const CLASSES: usize = BLOCK_CLASS + MAX_ORDER + 1;

/// A memory pool with a page budget.
#[derive(Debug)]
pub struct Pool {
    limit_pages: u64,
    charged_pages: u64,
    /// Charged pages in idle blocks (free slots of block classes).
    idle_pages: u64,
    /// Per class: slabs (`None` once released; indices in handles stay valid).
    slabs: [Vec<Option<Slab>>; CLASSES],
    /// Per class: the first slab with at least one free slot ([`NO_SLAB`] if none); the
    /// others follow through [`Slab::next_partial`], most recently listed first. Kept in the
    /// pool itself so an allocation reaches its slab with one load less than through a stack.
    /// For a block class these are its idle blocks.
    partial_head: [u32; CLASSES],
    /// Per class: indices of released slabs, reused before the table grows.
    vacant: [Vec<u32>; CLASSES],
    /// Live cache objects.
    cache: Vec<CacheEntry>,
    /// Pages they hold.
    cache_pages: u64,
    live_objects: u64,
    live_bytes: u64,
    next_id: u64,
}

impl Pool {
    /// A pool that may charge at most `limit_bytes` (rounded down to pages).
    pub fn new(limit_bytes: u64) -> Self {
        Pool {
            limit_pages: limit_bytes / PAGE_SIZE,
            charged_pages: 0,
            idle_pages: 0,
            slabs: Default::default(),
            partial_head: [NO_SLAB; CLASSES],
            vacant: Default::default(),
            cache: Vec::new(),
            cache_pages: 0,
            live_objects: 0,
            live_bytes: 0,
            next_id: 1,
        }
    }

    /// Allocates `size` bytes of `kind` memory.
    pub fn allocate<S: FrameSource + ?Sized>(
        &mut self,
        source: &mut S,
        size: u64,
        kind: MemoryKind,
    ) -> Result<ObjectHandle, PoolError> {
        if size == 0 || size > LARGEST_OBJECT_BYTES {
            return Err(PoolError::InvalidSize { size });
        }
        let id = self.next_id;
        if kind == MemoryKind::Reclaimable {
            let order = order_for_pages(size.div_ceil(PAGE_SIZE)).ok_or(PoolError::InvalidSize { size })?;
            let address = self.charge_block(source, order)?;
            self.cache.push(CacheEntry { id, address, order: order as u8, size });
            self.cache_pages += 1 << order;
            return Ok(self.handed_out(address, size, id, Placement::Cache { order: order as u8 }));
        }
        let class = object_class(size);
        let index = match self.partial_head[class] {
            NO_SLAB => self.new_slab(source, class)?,
            index => index as usize,
        };
        let Some(slab) = self.slabs[class][index].as_mut() else {
            return Err(PoolError::UnknownObject { address: 0 });
        };
        let slot = slab.free_slots.trailing_zeros() as u8;
        slab.free_slots &= !(1u64 << slot);
        // A block class's one slot always fills its slab, a slab class's rarely: selected, not branched on.
        self.partial_head[class] = select_unpredictable(slab.free_slots == 0, slab.next_partial, index as u32);
        let address = slab.page + ((slot as u64) << (class + OBJECT_SHIFT));
        self.idle_pages -= block_pages(class);
        Ok(self.handed_out(address, size, id, Placement::Slab { class: class as u8, slab: index as u32, slot }))
    }

    fn handed_out(&mut self, address: u64, size: u64, id: u64, placement: Placement) -> ObjectHandle {
        self.next_id += 1;
        self.live_objects += 1;
        self.live_bytes += size;
        ObjectHandle { address, size: size as u32, id, placement }
    }

    /// Takes a block of 2^`order` pages from the source within the budget, returning idle blocks first if need be.
    fn charge_block<S: FrameSource + ?Sized>(&mut self, source: &mut S, order: usize) -> Result<u64, PoolError> {
        let needed_pages = 1u64 << order;
        let in_use = self.charged_pages - self.idle_pages;
        let available_pages = self.limit_pages.saturating_sub(in_use);
        if needed_pages > available_pages {
            return Err(PoolError::LimitReached { needed_pages, available_pages });
        }
        if needed_pages > self.limit_pages.saturating_sub(self.charged_pages) {
            self.release_idle_blocks(source)?;
        }
        let address = match source.allocate_frames(order) {
            Ok(address) => address,
            Err(_) if self.idle_pages > 0 => {
                self.release_idle_blocks(source)?;
                source.allocate_frames(order).map_err(|_| PoolError::FramesExhausted { order })?
            }
            Err(_) => return Err(PoolError::FramesExhausted { order }),
        };
        self.charged_pages += needed_pages;
        Ok(address)
    }

    fn uncharge_block<S: FrameSource + ?Sized>(
        &mut self,
        source: &mut S,
        address: u64,
        order: usize,
    ) -> Result<(), PoolError> {
        source.free_frames(address, order).map_err(PoolError::Frames)?;
        self.charged_pages -= 1 << order;
        Ok(())
    }

    /// Takes a page (a block, for a block class) for a new slab of `class` and lists it as partial (kept out of the hot path).
    #[cold]
    #[inline(never)]
    fn new_slab<S: FrameSource + ?Sized>(&mut self, source: &mut S, class: usize) -> Result<usize, PoolError> {
        let page = self.charge_block(source, class.saturating_sub(BLOCK_CLASS))?;
        let slots = (PAGE_SIZE >> (class + OBJECT_SHIFT).min(12)) as u8;
        self.idle_pages += block_pages(class);
        let slab = Slab { page, free_slots: all_slots(slots), next_partial: self.partial_head[class], slots };
        let index = match self.vacant[class].pop() {
            Some(vacant) => {
                self.slabs[class][vacant as usize] = Some(slab);
                vacant as usize
            }
            None => {
                self.slabs[class].push(Some(slab));
                self.slabs[class].len() - 1
            }
        };
        self.partial_head[class] = index as u32;
        Ok(index)
    }

    /// Whether `handle`'s object is still there: false only for a cache object compaction dropped.
    pub fn is_live(&self, handle: &ObjectHandle) -> bool {
        !handle.is_reclaimable() || self.cache.iter().any(|entry| entry.id == handle.id)
    }

    /// Frees an object. A cache object the pool already dropped is not an error: it returns `Ok(false)`.
    pub fn free<S: FrameSource + ?Sized>(&mut self, source: &mut S, handle: ObjectHandle) -> Result<bool, PoolError> {
        let unknown = PoolError::UnknownObject { address: handle.address };
        match handle.placement {
            Placement::Slab { class, slab, slot } => {
                let entry = self
                    .slabs
                    .get_mut(class as usize)
                    .and_then(|slabs| slabs.get_mut(slab as usize))
                    .and_then(Option::as_mut)
                    .ok_or(unknown)?;
                let bit = 1u64 << slot;
                let address = entry.page + ((slot as u64) << (class as usize + OBJECT_SHIFT));
                if slot >= entry.slots || entry.free_slots & bit != 0 || address != handle.address {
                    return Err(unknown);
                }
                // A full slab (always, for a block) goes back on the partial list: selected, as in `allocate`.
                let was_full = entry.free_slots == 0;
                let head = &mut self.partial_head[class as usize];
                entry.next_partial = select_unpredictable(was_full, *head, entry.next_partial);
                *head = select_unpredictable(was_full, slab, *head);
                entry.free_slots |= bit;
                self.idle_pages += block_pages(class as usize);
            }
            Placement::Cache { order } => {
                let Some(position) = self.cache.iter().position(|entry| entry.id == handle.id) else {
                    return if handle.id < self.next_id { Ok(false) } else { Err(unknown) };
                };
                self.cache.swap_remove(position);
                self.cache_pages -= 1 << order;
                self.uncharge_block(source, handle.address, order as usize)?;
            }
        }
        self.live_objects -= 1;
        self.live_bytes -= handle.size as u64;
        if self.live_objects == 0 && self.idle_pages > 0 {
            // An empty pool holds no idle block, so dropping it after its last free leaks none.
            self.release_idle_blocks(source)?;
        }
        Ok(true)
    }

    /// Drops every cache object and releases every empty slab page and idle block.
    pub fn compact<S: FrameSource + ?Sized>(&mut self, source: &mut S) -> Result<CompactionReport, PoolError> {
        let mut report = CompactionReport::default();
        while let Some(entry) = self.cache.pop() {
            self.cache_pages -= 1 << entry.order;
            self.uncharge_block(source, entry.address, entry.order as usize)?;
            report.cache_objects_dropped += 1;
            report.bytes_recovered += PAGE_SIZE << entry.order;
            self.live_objects -= 1;
            self.live_bytes -= entry.size;
        }
        for class in 0..BLOCK_CLASS {
            self.unlist_empty_slabs(class);
            for index in 0..self.slabs[class].len() {
                let Some(slab) = self.slabs[class][index] else { continue };
                if slab.free_slots == all_slots(slab.slots) {
                    self.uncharge_block(source, slab.page, 0)?;
                    self.slabs[class][index] = None;
                    self.vacant[class].push(index as u32);
                    report.slabs_released += 1;
                    report.bytes_recovered += PAGE_SIZE;
                }
            }
        }
        report.idle_bytes_released = self.idle_pages * PAGE_SIZE;
        self.release_idle_blocks(source)?;
        Ok(report)
    }

    /// Returns every idle block to the source: they are exactly the partial lists of the block classes.
    #[cold]
    fn release_idle_blocks<S: FrameSource + ?Sized>(&mut self, source: &mut S) -> Result<(), PoolError> {
        for class in BLOCK_CLASS..CLASSES {
            while self.partial_head[class] != NO_SLAB {
                let index = self.partial_head[class];
                let Some(slab) = self.slabs[class][index as usize].take() else { break };
                self.partial_head[class] = slab.next_partial;
                self.vacant[class].push(index);
                self.idle_pages -= block_pages(class);
                self.uncharge_block(source, slab.page, class - BLOCK_CLASS)?;
            }
        }
        Ok(())
    }

    /// Takes the slabs compaction will release (those with every slot free) off the partial list, keeping the others' order.
    fn unlist_empty_slabs(&mut self, class: usize) {
        let slabs = &mut self.slabs[class];
        let mut previous: Option<usize> = None;
        let mut current = self.partial_head[class];
        while current != NO_SLAB {
            let Some(slab) = slabs[current as usize] else { break };
            if slab.free_slots == all_slots(slab.slots) {
                match previous {
                    None => self.partial_head[class] = slab.next_partial,
                    Some(previous) => {
                        if let Some(previous) = slabs[previous].as_mut() {
                            previous.next_partial = slab.next_partial;
                        }
                    }
                }
            } else {
                previous = Some(current as usize);
            }
            current = slab.next_partial;
        }
    }

    /// Charged pages in use over the limit, in per-mille (O(1); [`stats`](Self::stats) walks every slab).
    pub fn pressure_per_mille(&self) -> u32 {
        PoolStats {
            limit_pages: self.limit_pages,
            charged_pages: self.charged_pages,
            idle_block_pages: self.idle_pages,
            ..PoolStats::default()
        }
        .pressure_per_mille()
    }

    /// Pages held by reclaimable cache (O(1)).
    pub fn cache_pages(&self) -> u64 {
        self.cache_pages
    }

    /// Current figures.
    pub fn stats(&self) -> PoolStats {
        let mut stats = PoolStats {
            limit_pages: self.limit_pages,
            charged_pages: self.charged_pages,
            idle_block_pages: self.idle_pages,
            live_objects: self.live_objects,
            live_bytes: self.live_bytes,
            cache_pages: self.cache_pages,
            ..PoolStats::default()
        };
        for (class, slabs) in self.slabs[..BLOCK_CLASS].iter().enumerate() {
            for slab in slabs.iter().flatten() {
                stats.slab_pages += 1;
                let free = slab.free_slots.count_ones() as u64;
                if free == slab.slots as u64 {
                    stats.empty_slab_pages += 1;
                }
                stats.slab_free_bytes += free * SLAB_CLASSES[class] as u64;
            }
        }
        stats
    }
}

/// The class of an unreclaimable object of `size` (1 ..= [`LARGEST_OBJECT_BYTES`]) bytes, computed rather than searched.
///
/// The class is ceil(log2(size)) - 6, at least 0: a slab class up to 2 KiB, above it
/// [`BLOCK_CLASS`] plus the order of the block, as ceil(log2(ceil(size / 4096))) is
/// ceil(log2(size)) - 12 there. No branch tells the two apart.
#[inline]
fn object_class(size: u64) -> usize {
    let bits = u64::BITS - size.max(1).saturating_sub(1).leading_zeros();
    (bits as usize).saturating_sub(OBJECT_SHIFT)
}

/// Pages of one block of `class`, 0 for a slab class (arithmetic, so counting idle pages takes no branch).
#[inline]
fn block_pages(class: usize) -> u64 {
    ((class >= BLOCK_CLASS) as u64) << class.saturating_sub(BLOCK_CLASS)
}

/// Free-slot mask with every one of `slots` slots free.
fn all_slots(slots: u8) -> u64 {
    if slots >= 64 {
        u64::MAX
    } else {
        (1u64 << slots) - 1
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod differential;
#[cfg(test)]
mod reference;

#[cfg(test)]
mod class_tests {
    use super::*;

    #[test]
    fn computed_class_is_the_smallest_slab_class_or_block_that_fits() {
        for size in (1..=8192u64).chain([LARGEST_OBJECT_BYTES / 2, LARGEST_OBJECT_BYTES / 2 + 1, LARGEST_OBJECT_BYTES])
        {
            let class = object_class(size);
            match SLAB_CLASSES.iter().position(|&bytes| bytes as u64 >= size) {
                Some(slab) => assert_eq!(class, slab, "size {size}"),
                None => assert_eq!(Some(class - BLOCK_CLASS), order_for_pages(size.div_ceil(PAGE_SIZE)), "size {size}"),
            }
            assert!(64u64 << class >= size && (class == 0 || 64u64 << (class - 1) < size), "size {size}");
        }
        assert_eq!(object_class(LARGEST_OBJECT_BYTES), CLASSES - 1);
        assert_eq!(block_pages(BLOCK_CLASS - 1), 0);
        assert_eq!(block_pages(BLOCK_CLASS + 3), 8);
    }
}
