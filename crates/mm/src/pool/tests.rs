//! Pool tests against the real buddy allocator: budget, slabs, cache, compaction, baseline.

use super::*;
use crate::{FrameAllocator, FrameMeta};
use alloc::boxed::Box;
use alloc::vec;

const BASE: u64 = 0x4000_0000;

pub(super) fn frames(count: usize) -> FrameAllocator<'static> {
    let metadata = Box::leak(vec![FrameMeta::default(); count].into_boxed_slice());
    let mut allocator = FrameAllocator::new(BASE, count, metadata).unwrap();
    allocator.free_range(BASE, BASE + count as u64 * PAGE_SIZE).unwrap();
    allocator
}

#[test]
fn small_objects_share_slab_pages() {
    let mut source = frames(64);
    let mut pool = Pool::new(16 * PAGE_SIZE);
    let handles: Vec<_> = (0..64).map(|_| pool.allocate(&mut source, 60, MemoryKind::Unreclaimable).unwrap()).collect();
    let stats = pool.stats();
    assert_eq!(stats.charged_pages, 1, "64 objects of 64 B fill exactly one page");
    assert_eq!(stats.live_bytes, 64 * 60);
    let mut addresses: Vec<u64> = handles.iter().map(|handle| handle.address).collect();
    addresses.sort_unstable();
    addresses.dedup();
    assert_eq!(addresses.len(), 64);
    pool.allocate(&mut source, 1, MemoryKind::Unreclaimable).unwrap();
    assert_eq!(pool.stats().charged_pages, 2);
}

#[test]
fn the_limit_is_an_oom_event_and_changes_nothing() {
    let mut source = frames(64);
    let mut pool = Pool::new(4 * PAGE_SIZE);
    let block = pool.allocate(&mut source, 3 * PAGE_SIZE, MemoryKind::Unreclaimable).unwrap();
    assert_eq!(pool.stats().charged_pages, 4, "three pages round up to an order-2 block");
    assert_eq!(pool.stats().pressure_per_mille(), 1000);
    let before = (pool.stats(), source.stats());
    let error = pool.allocate(&mut source, 100, MemoryKind::Unreclaimable).unwrap_err();
    assert_eq!(error, PoolError::LimitReached { needed_pages: 1, available_pages: 0 });
    assert!(error.is_out_of_memory());
    assert_eq!((pool.stats(), source.stats()), before);
    pool.free(&mut source, block).unwrap();
    assert_eq!(pool.stats().charged_pages, 0);
}

#[test]
fn exhausted_ram_is_an_oom_event_too() {
    let mut source = frames(4);
    let mut pool = Pool::new(64 * PAGE_SIZE);
    pool.allocate(&mut source, 4 * PAGE_SIZE, MemoryKind::Unreclaimable).unwrap();
    assert_eq!(
        pool.allocate(&mut source, 64, MemoryKind::Unreclaimable).unwrap_err(),
        PoolError::FramesExhausted { order: 0 }
    );
}

#[test]
fn compaction_drops_cache_and_empty_slabs_and_reports_real_bytes() {
    let mut source = frames(256);
    let free_at_start = source.stats().free_frames;
    let mut pool = Pool::new(128 * PAGE_SIZE);
    let cache: Vec<_> =
        (0..3).map(|_| pool.allocate(&mut source, 2 * PAGE_SIZE, MemoryKind::Reclaimable).unwrap()).collect();
    let small: Vec<_> = (0..40).map(|_| pool.allocate(&mut source, 512, MemoryKind::Unreclaimable).unwrap()).collect();
    assert_eq!(pool.stats().slab_pages, 5, "8 objects of 512 B a page");
    // Free the first 32 small objects: four slab pages become empty.
    for handle in &small[..32] {
        pool.free(&mut source, *handle).unwrap();
    }
    assert_eq!(pool.stats().empty_slab_pages, 4);
    let report = pool.compact(&mut source).unwrap();
    assert_eq!(
        report,
        CompactionReport {
            slabs_released: 4,
            cache_objects_dropped: 3,
            bytes_recovered: (4 + 6) * PAGE_SIZE,
            idle_bytes_released: 0
        }
    );
    assert_eq!(source.stats().free_frames, free_at_start - 1, "only the one live slab page is still out");
    // A dropped cache object's handle frees as "already reclaimed", not as an error.
    assert_eq!(pool.free(&mut source, cache[0]), Ok(false));
    for handle in &small[32..] {
        pool.free(&mut source, *handle).unwrap();
    }
    pool.compact(&mut source).unwrap();
    assert_eq!(pool.stats(), PoolStats { limit_pages: 128, ..PoolStats::default() });
    assert_eq!(source.stats().free_frames, free_at_start, "back to baseline");
}

#[test]
fn bad_handles_and_sizes_are_refused() {
    let mut source = frames(16);
    let mut pool = Pool::new(16 * PAGE_SIZE);
    assert_eq!(pool.allocate(&mut source, 0, MemoryKind::Unreclaimable), Err(PoolError::InvalidSize { size: 0 }));
    assert_eq!(
        pool.allocate(&mut source, LARGEST_OBJECT_BYTES + 1, MemoryKind::Unreclaimable),
        Err(PoolError::InvalidSize { size: LARGEST_OBJECT_BYTES + 1 })
    );
    let handle = pool.allocate(&mut source, 100, MemoryKind::Unreclaimable).unwrap();
    pool.free(&mut source, handle).unwrap();
    assert_eq!(pool.free(&mut source, handle), Err(PoolError::UnknownObject { address: handle.address }));
    assert_eq!(pool.stats().live_objects, 0);
}

#[test]
fn after_compaction_allocations_fill_the_remaining_partial_slabs_most_recent_first() {
    let mut source = frames(64);
    let mut pool = Pool::new(64 * PAGE_SIZE);
    let small: Vec<_> = (0..40).map(|_| pool.allocate(&mut source, 512, MemoryKind::Unreclaimable).unwrap()).collect();
    assert_eq!(pool.stats().charged_pages, 5, "five full slabs of 8 objects");
    // Slabs become partial in the order 1, 0, 3, 2; slabs 0 and 2 end up empty, slab 4 stays full.
    pool.free(&mut source, small[8]).unwrap();
    for handle in &small[0..8] {
        pool.free(&mut source, *handle).unwrap();
    }
    pool.free(&mut source, small[24]).unwrap();
    pool.free(&mut source, small[25]).unwrap();
    for handle in &small[16..24] {
        pool.free(&mut source, *handle).unwrap();
    }
    let report = pool.compact(&mut source).unwrap();
    assert_eq!(report.slabs_released, 2);
    assert_eq!(pool.stats().charged_pages, 3);
    let refill: Vec<u64> =
        (0..3).map(|_| pool.allocate(&mut source, 512, MemoryKind::Unreclaimable).unwrap().address).collect();
    assert_eq!(refill, vec![small[24].address, small[25].address, small[8].address], "slab 3, then slab 1");
    assert_eq!(pool.stats().charged_pages, 3, "no page was taken while partial slabs had room");
    pool.allocate(&mut source, 512, MemoryKind::Unreclaimable).unwrap();
    assert_eq!(pool.stats().charged_pages, 4, "a full set of slabs takes a new page");
    assert_eq!(pool.stats().slab_pages, 4);
}

#[test]
fn cache_pages_are_counted_as_objects_come_and_go() {
    let mut source = frames(64);
    let mut pool = Pool::new(64 * PAGE_SIZE);
    // 100 B rounds to one page, 3 pages to an order-2 block (4), 5 pages to order 3 (8).
    let sizes = [100, 3 * PAGE_SIZE, 5 * PAGE_SIZE];
    let handles: Vec<_> =
        sizes.iter().map(|&size| pool.allocate(&mut source, size, MemoryKind::Reclaimable).unwrap()).collect();
    pool.allocate(&mut source, 2 * PAGE_SIZE, MemoryKind::Unreclaimable).unwrap();
    assert_eq!(pool.cache_pages(), 13);
    assert_eq!(pool.stats().cache_pages, 13);
    assert_eq!(pool.free(&mut source, handles[1]), Ok(true));
    assert_eq!(pool.cache_pages(), 9);
    pool.compact(&mut source).unwrap();
    assert_eq!((pool.cache_pages(), pool.stats().cache_pages), (0, 0));
    assert_eq!(pool.free(&mut source, handles[2]), Ok(false), "dropped by compaction");
    assert_eq!(pool.cache_pages(), 0);
}

#[test]
fn a_freed_block_stays_idle_charged_but_not_in_use_and_is_reused_first() {
    let mut source = frames(64);
    let mut pool = Pool::new(32 * PAGE_SIZE);
    let keep = pool.allocate(&mut source, 100, MemoryKind::Unreclaimable).unwrap();
    let block = pool.allocate(&mut source, 3 * PAGE_SIZE, MemoryKind::Unreclaimable).unwrap();
    pool.free(&mut source, block).unwrap();
    let stats = pool.stats();
    assert_eq!((stats.charged_pages, stats.idle_block_pages), (5, 4), "one slab page, one idle order-2 block");
    assert_eq!(pool.pressure_per_mille(), 1000 / 32, "pressure counts the slab page only");
    assert_eq!(stats.pressure_per_mille(), pool.pressure_per_mille());
    assert_eq!(source.stats().allocated_frames, 5, "the idle block is still out of the frame allocator");
    let frames_before = source.stats();
    let again = pool.allocate(&mut source, 4 * PAGE_SIZE, MemoryKind::Unreclaimable).unwrap();
    assert_eq!(again.address, block.address, "the idle block of that order comes back");
    assert_eq!(source.stats(), frames_before, "without asking the frame allocator");
    assert_eq!((pool.stats().charged_pages, pool.stats().idle_block_pages), (5, 0));
    pool.free(&mut source, again).unwrap();
    pool.free(&mut source, keep).unwrap();
    assert_eq!(pool.stats().idle_block_pages, 0, "the last free returns every idle block");
    assert_eq!(pool.stats().charged_pages, 1, "the empty slab page waits for compaction, as before");
}

#[test]
fn idle_blocks_make_room_at_the_limit_and_the_limit_counts_pages_in_use() {
    let mut source = frames(64);
    let mut pool = Pool::new(4 * PAGE_SIZE);
    let live = pool.allocate(&mut source, 2 * PAGE_SIZE, MemoryKind::Unreclaimable).unwrap();
    let freed = pool.allocate(&mut source, 2 * PAGE_SIZE, MemoryKind::Unreclaimable).unwrap();
    pool.free(&mut source, freed).unwrap();
    assert_eq!((pool.stats().charged_pages, pool.stats().idle_block_pages), (4, 2), "at the limit, half of it idle");
    let before = (pool.stats(), source.stats());
    assert_eq!(
        pool.allocate(&mut source, 3 * PAGE_SIZE, MemoryKind::Unreclaimable),
        Err(PoolError::LimitReached { needed_pages: 4, available_pages: 2 }),
        "available counts idle pages as free"
    );
    assert_eq!((pool.stats(), source.stats()), before, "a refused allocation changes nothing");
    pool.allocate(&mut source, PAGE_SIZE, MemoryKind::Reclaimable).unwrap();
    assert_eq!((pool.stats().charged_pages, pool.stats().idle_block_pages), (3, 0), "the idle block went back first");
    assert_eq!(source.stats().allocated_frames, 3);
    pool.free(&mut source, live).unwrap();
}

#[test]
fn idle_blocks_go_back_when_ram_runs_out_and_the_allocation_is_retried() {
    let mut source = frames(4);
    let mut pool = Pool::new(64 * PAGE_SIZE);
    let live = pool.allocate(&mut source, 2 * PAGE_SIZE, MemoryKind::Unreclaimable).unwrap();
    let freed = pool.allocate(&mut source, 2 * PAGE_SIZE, MemoryKind::Unreclaimable).unwrap();
    pool.free(&mut source, freed).unwrap();
    assert_eq!(source.stats().free_frames, 0, "RAM is full, two pages of it idle");
    let small = pool.allocate(&mut source, 100, MemoryKind::Unreclaimable).unwrap();
    assert_eq!(small.address, freed.address, "the slab page comes from the returned block");
    assert_eq!((pool.stats().charged_pages, pool.stats().idle_block_pages), (3, 0));
    assert_eq!(
        pool.allocate(&mut source, 2 * PAGE_SIZE, MemoryKind::Unreclaimable).unwrap_err(),
        PoolError::FramesExhausted { order: 1 }
    );
    pool.free(&mut source, live).unwrap();
}

#[test]
fn compaction_returns_idle_blocks_and_reports_them_apart_from_recovered_bytes() {
    let mut source = frames(256);
    let free_at_start = source.stats().free_frames;
    let mut pool = Pool::new(128 * PAGE_SIZE);
    let keep = pool.allocate(&mut source, 8 * PAGE_SIZE, MemoryKind::Unreclaimable).unwrap();
    let blocks: Vec<_> = [PAGE_SIZE, 16 * PAGE_SIZE, 5000]
        .map(|size| pool.allocate(&mut source, size, MemoryKind::Unreclaimable).unwrap())
        .into();
    for block in blocks {
        pool.free(&mut source, block).unwrap();
    }
    assert_eq!(pool.stats().idle_block_pages, 1 + 16 + 2);
    let pressure = pool.pressure_per_mille();
    let report = pool.compact(&mut source).unwrap();
    assert_eq!(report, CompactionReport { idle_bytes_released: 19 * PAGE_SIZE, ..CompactionReport::default() });
    assert_eq!(pool.pressure_per_mille(), pressure, "idle blocks were never in the pressure");
    assert_eq!((pool.stats().charged_pages, source.stats().free_frames), (8, free_at_start - 8));
    pool.free(&mut source, keep).unwrap();
    assert_eq!(source.stats().free_frames, free_at_start);
}
