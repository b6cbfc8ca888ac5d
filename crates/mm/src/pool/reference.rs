//! The pool before block classes joined the slab classes, kept as the model the differential test compares with.
//!
//! A copy of `Pool` as it was at commit e973a45, with its own handle type.

use alloc::vec::Vec;

use super::{CompactionReport, FrameSource, MemoryKind, PoolError, PoolStats, LARGEST_OBJECT_BYTES, SLAB_CLASSES};
use crate::{order_for_pages, PAGE_SIZE};

/// A handle of the reference pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReferenceHandle {
    pub address: u64,
    pub size: u32,
    pub id: u64,
    placement: ReferencePlacement,
}

impl ReferenceHandle {
    pub fn is_reclaimable(&self) -> bool {
        matches!(self.placement, ReferencePlacement::Cache { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReferencePlacement {
    Slab { class: u8, slab: u32, slot: u8 },
    Block { order: u8 },
    Cache { order: u8 },
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
    page: u64,
    /// Bit set = slot free.
    free_slots: u64,
    /// The next slab of this class with a free slot, or [`NO_SLAB`]; meaningful only while this one has one.
    next_partial: u32,
    slots: u8,
}

/// End of a class's list of partial slabs.
const NO_SLAB: u32 = u32::MAX;

/// The pool as it was before idle blocks: every freed block went straight back to the frame source.
#[derive(Debug)]
pub struct ReferencePool {
    limit_pages: u64,
    charged_pages: u64,
    /// Per class: slabs (`None` once released; indices in handles stay valid).
    slabs: [Vec<Option<Slab>>; SLAB_CLASSES.len()],
    /// Per class: the first slab with at least one free slot ([`NO_SLAB`] if none); the
    /// others follow through [`Slab::next_partial`], most recently listed first. Kept in the
    /// pool itself so an allocation reaches its slab with one load less than through a stack.
    partial_head: [u32; SLAB_CLASSES.len()],
    /// Per class: indices of released slabs, reused before the table grows.
    vacant: [Vec<u32>; SLAB_CLASSES.len()],
    /// Live cache objects.
    cache: Vec<CacheEntry>,
    /// Pages they hold.
    cache_pages: u64,
    live_objects: u64,
    live_bytes: u64,
    next_id: u64,
}

impl ReferencePool {
    /// A pool that may charge at most `limit_bytes` (rounded down to pages).
    pub fn new(limit_bytes: u64) -> Self {
        ReferencePool {
            limit_pages: limit_bytes / PAGE_SIZE,
            charged_pages: 0,
            slabs: Default::default(),
            partial_head: [NO_SLAB; SLAB_CLASSES.len()],
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
    ) -> Result<ReferenceHandle, PoolError> {
        if size == 0 || size > LARGEST_OBJECT_BYTES {
            return Err(PoolError::InvalidSize { size });
        }
        let id = self.next_id;
        if kind == MemoryKind::Unreclaimable {
            if let Some(class) = slab_class(size) {
                let (slab, slot, address) = self.allocate_slot(source, class)?;
                return Ok(self.handed_out(
                    address,
                    size,
                    id,
                    ReferencePlacement::Slab { class: class as u8, slab, slot },
                ));
            }
        }
        let order = order_for_pages(size.div_ceil(PAGE_SIZE)).ok_or(PoolError::InvalidSize { size })?;
        let address = self.charge_block(source, order)?;
        let placement = match kind {
            MemoryKind::Reclaimable => {
                self.cache.push(CacheEntry { id, address, order: order as u8, size });
                self.cache_pages += 1 << order;
                ReferencePlacement::Cache { order: order as u8 }
            }
            MemoryKind::Unreclaimable => ReferencePlacement::Block { order: order as u8 },
        };
        Ok(self.handed_out(address, size, id, placement))
    }

    fn handed_out(&mut self, address: u64, size: u64, id: u64, placement: ReferencePlacement) -> ReferenceHandle {
        self.next_id += 1;
        self.live_objects += 1;
        self.live_bytes += size;
        ReferenceHandle { address, size: size as u32, id, placement }
    }

    /// Takes a block of 2^`order` pages from the source within the budget.
    fn charge_block<S: FrameSource + ?Sized>(&mut self, source: &mut S, order: usize) -> Result<u64, PoolError> {
        let needed_pages = 1u64 << order;
        let available_pages = self.limit_pages.saturating_sub(self.charged_pages);
        if needed_pages > available_pages {
            return Err(PoolError::LimitReached { needed_pages, available_pages });
        }
        let address = source.allocate_frames(order).map_err(|_| PoolError::FramesExhausted { order })?;
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

    /// Takes a page for a new slab of `class` and lists it as partial (kept out of the hot path).
    #[cold]
    #[inline(never)]
    fn new_slab<S: FrameSource + ?Sized>(&mut self, source: &mut S, class: usize) -> Result<usize, PoolError> {
        let page = self.charge_block(source, 0)?;
        let slots = (PAGE_SIZE / SLAB_CLASSES[class] as u64) as u8;
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

    fn allocate_slot<S: FrameSource + ?Sized>(
        &mut self,
        source: &mut S,
        class: usize,
    ) -> Result<(u32, u8, u64), PoolError> {
        let object_bytes = SLAB_CLASSES[class] as u64;
        let index = match self.partial_head[class] {
            NO_SLAB => self.new_slab(source, class)?,
            index => index as usize,
        };
        let Some(slab) = self.slabs[class][index].as_mut() else {
            return Err(PoolError::UnknownObject { address: 0 });
        };
        let slot = slab.free_slots.trailing_zeros() as u8;
        slab.free_slots &= !(1u64 << slot);
        if slab.free_slots == 0 {
            self.partial_head[class] = slab.next_partial;
        }
        Ok((index as u32, slot, slab.page + slot as u64 * object_bytes))
    }

    /// Whether `handle`'s object is still there: false only for a cache object compaction dropped.
    pub fn is_live(&self, handle: &ReferenceHandle) -> bool {
        !handle.is_reclaimable() || self.cache.iter().any(|entry| entry.id == handle.id)
    }

    /// Frees an object. A cache object the pool already dropped is not an error: it returns `Ok(false)`.
    pub fn free<S: FrameSource + ?Sized>(
        &mut self,
        source: &mut S,
        handle: ReferenceHandle,
    ) -> Result<bool, PoolError> {
        let unknown = PoolError::UnknownObject { address: handle.address };
        match handle.placement {
            ReferencePlacement::Slab { class, slab, slot } => {
                let entry = self
                    .slabs
                    .get_mut(class as usize)
                    .and_then(|slabs| slabs.get_mut(slab as usize))
                    .and_then(Option::as_mut)
                    .ok_or(unknown)?;
                let bit = 1u64 << slot;
                let address = entry.page + slot as u64 * SLAB_CLASSES[class as usize] as u64;
                if slot >= entry.slots || entry.free_slots & bit != 0 || address != handle.address {
                    return Err(unknown);
                }
                if entry.free_slots == 0 {
                    entry.next_partial = self.partial_head[class as usize];
                    self.partial_head[class as usize] = slab;
                }
                entry.free_slots |= bit;
            }
            ReferencePlacement::Block { order } => {
                self.uncharge_block(source, handle.address, order as usize)?;
            }
            ReferencePlacement::Cache { order } => {
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
        Ok(true)
    }

    /// Drops every cache object and releases every empty slab page.
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
        for class in 0..SLAB_CLASSES.len() {
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
        Ok(report)
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

    /// Charged pages over the limit, in per-mille (O(1); [`stats`](Self::stats) walks every slab).
    pub fn pressure_per_mille(&self) -> u32 {
        PoolStats { limit_pages: self.limit_pages, charged_pages: self.charged_pages, ..PoolStats::default() }
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
            live_objects: self.live_objects,
            live_bytes: self.live_bytes,
            cache_pages: self.cache_pages,
            ..PoolStats::default()
        };
        for (class, slabs) in self.slabs.iter().enumerate() {
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

/// The slab class for `size` (1 ..= 2048 bytes), computed rather than searched.
#[inline]
fn slab_class(size: u64) -> Option<usize> {
    if size > SLAB_CLASSES[SLAB_CLASSES.len() - 1] as u64 {
        return None;
    }
    // Classes are 64 << class: the class is ceil(log2(size)) - 6, at least 0.
    let bits = u64::BITS - size.max(1).saturating_sub(1).leading_zeros();
    Some((bits as usize).saturating_sub(6))
}

/// Free-slot mask with every one of `slots` slots free.
fn all_slots(slots: u8) -> u64 {
    if slots >= 64 {
        u64::MAX
    } else {
        (1u64 << slots) - 1
    }
}
