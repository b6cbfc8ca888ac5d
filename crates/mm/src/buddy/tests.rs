//! Buddy allocator tests: exact counts, coalescing back to the start state, refused bad frees, random sequences.

use super::*;
use proptest::prelude::*;

const BASE: u64 = 0x4000_0000;

fn allocator(frames: usize) -> FrameAllocator<'static> {
    let metadata = Box::leak(vec![FrameMeta::default(); frames].into_boxed_slice());
    FrameAllocator::new(BASE, frames, metadata).unwrap()
}

fn page(index: u64) -> u64 {
    BASE + index * PAGE_SIZE
}

/// Checks the invariants the stress framework relies on.
fn check_invariants(allocator: &FrameAllocator<'_>) {
    let stats = allocator.stats();
    assert_eq!(stats.free_frames + stats.allocated_frames + stats.reserved_frames, stats.frame_count);
    let listed: usize = (0..=MAX_ORDER).map(|order| stats.free_blocks_by_order[order] << order).sum();
    assert_eq!(listed, stats.free_frames, "free lists hold exactly the free frames");
    for order in 0..=MAX_ORDER {
        let mut cursor = allocator.heads[order];
        let mut count = 0;
        while cursor != NONE {
            let index = cursor as usize;
            let meta = allocator.metadata[index];
            assert_eq!((meta.state, meta.order as usize), (FREE_HEAD, order));
            assert_eq!(index % (1 << order), 0, "free block aligned to its order");
            if order < MAX_ORDER {
                let buddy = allocator.metadata.get(index ^ (1 << order));
                assert!(
                    !buddy.is_some_and(|b| b.state == FREE_HEAD && b.order as usize == order),
                    "two free buddies of order {order} left unmerged at {index}"
                );
            }
            cursor = meta.next;
            count += 1;
        }
        assert_eq!(count, stats.free_blocks_by_order[order]);
    }
}

#[test]
fn odd_ranges_become_maximal_aligned_blocks() {
    let mut allocator = allocator(2048);
    allocator.free_range(page(3), page(1030)).unwrap();
    let stats = allocator.stats();
    assert_eq!(stats.free_frames, 1027);
    assert_eq!(stats.reserved_frames, 2048 - 1027);
    // 3, 4..8, 8..16, ..., 512..1024 then 1024..1030: 1024 + 4 + 2
    assert_eq!(stats.free_blocks_by_order, [1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 0]);
    assert_eq!(stats.largest_free_order, Some(9));
    check_invariants(&allocator);
}

#[test]
fn adjacent_ranges_merge_across_the_boundary() {
    let mut allocator = allocator(1024);
    allocator.free_range(page(0), page(300)).unwrap();
    allocator.free_range(page(300), page(1024)).unwrap();
    assert_eq!(allocator.stats().free_blocks_by_order[MAX_ORDER], 1);
    check_invariants(&allocator);
}

#[test]
fn allocate_everything_then_free_in_random_order_restores_the_start() {
    let mut allocator = allocator(4096);
    allocator.free_range(page(1), page(4000)).unwrap();
    let start = allocator.stats();
    let mut pages: Vec<u64> = (0..start.free_frames).map(|_| allocator.allocate(0).unwrap()).collect();
    assert_eq!(allocator.allocate(0), Err(MmError::OutOfMemory { order: 0 }));
    assert_eq!(allocator.stats().allocated_frames, 3999);
    // Seeded Fisher-Yates shuffle (xorshift), reproducible.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..pages.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        pages.swap(i, (state % (i as u64 + 1)) as usize);
    }
    for address in pages {
        allocator.free(address, 0).unwrap();
    }
    assert_eq!(allocator.stats(), start);
    check_invariants(&allocator);
}

#[test]
fn bad_frees_are_refused_and_change_nothing() {
    let mut allocator = allocator(64);
    allocator.free_range(page(0), page(64)).unwrap();
    let block = allocator.allocate(2).unwrap();
    let before = allocator.stats();
    assert_eq!(allocator.free(block, 1), Err(MmError::WrongOrder { address: block, allocated: 2, given: 1 }));
    assert_eq!(allocator.free(block + PAGE_SIZE, 0), Err(MmError::NotAllocated { address: block + PAGE_SIZE }));
    assert_eq!(allocator.free(block + 1, 0), Err(MmError::Misaligned { address: block + 1, order: 0 }));
    assert_eq!(allocator.free(page(64), 0), Err(MmError::OutOfRange { address: page(64) }));
    assert_eq!(allocator.free(BASE - PAGE_SIZE, 0), Err(MmError::OutOfRange { address: BASE - PAGE_SIZE }));
    assert_eq!(allocator.free(block, MAX_ORDER + 1), Err(MmError::OrderTooLarge { order: MAX_ORDER + 1 }));
    assert_eq!(allocator.stats(), before);
    allocator.free(block, 2).unwrap();
    assert_eq!(allocator.free(block, 2), Err(MmError::DoubleFree { address: block }));
    assert_eq!(allocator.free(block + PAGE_SIZE, 0), Err(MmError::DoubleFree { address: block + PAGE_SIZE }));
    check_invariants(&allocator);
}

#[test]
fn reserved_frames_never_merge_or_get_handed_out() {
    let mut allocator = allocator(16);
    allocator.free_range(page(0), page(7)).unwrap();
    allocator.free_range(page(8), page(16)).unwrap();
    let stats = allocator.stats();
    assert_eq!(stats.reserved_frames, 1);
    assert_eq!(stats.largest_free_order, Some(3));
    let mut handed_out = Vec::new();
    while let Ok(address) = allocator.allocate(0) {
        handed_out.push(address);
    }
    assert_eq!(handed_out.len(), 15);
    assert!(!handed_out.contains(&page(7)));
    assert_eq!(allocator.free_range(page(6), page(8)), Err(MmError::AlreadyUsable { address: page(6) }));
}

#[test]
fn constructor_checks_its_input() {
    let metadata = Box::leak(vec![FrameMeta::default(); 4].into_boxed_slice());
    assert_eq!(FrameAllocator::new(BASE + 1, 4, metadata).unwrap_err(), MmError::MisalignedBase { base: BASE + 1 });
    let metadata = Box::leak(vec![FrameMeta::default(); 4].into_boxed_slice());
    assert_eq!(FrameAllocator::new(BASE, 5, metadata).unwrap_err(), MmError::MetadataTooShort { needed: 5, given: 4 });
}

#[test]
fn fragmentation_reflects_the_largest_block() {
    let mut allocator = allocator(16);
    allocator.free_range(page(0), page(16)).unwrap();
    assert_eq!(allocator.stats().fragmentation_per_mille(), 0);
    let blocks: Vec<u64> = (0..16).map(|_| allocator.allocate(0).unwrap()).collect();
    for (i, address) in blocks.iter().enumerate() {
        if i % 2 == 0 {
            allocator.free(*address, 0).unwrap();
        }
    }
    // Eight single free pages, none adjacent: the largest is 1 of 8.
    assert_eq!(allocator.stats().fragmentation_per_mille(), 875);
}

#[test]
fn plenty_of_maximal_blocks_is_not_fragmentation() {
    let mut allocator = allocator(8 * 1024);
    allocator.free_range(page(0), page(8 * 1024)).unwrap();
    assert_eq!(allocator.stats().fragmentation_per_mille(), 0);
    let single = allocator.allocate(0).unwrap();
    // One maximal block was split, seven remain: still as contiguous as possible.
    assert_eq!(allocator.stats().fragmentation_per_mille(), 0);
    allocator.free(single, 0).unwrap();
}

#[derive(Debug, Clone)]
enum Step {
    Allocate(usize),
    Free(usize),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(
        prop_oneof![(0usize..=4).prop_map(Step::Allocate), (0usize..64).prop_map(Step::Free)],
        1..300,
    )
}

proptest! {
    #[test]
    fn random_sequences_keep_every_invariant(steps in steps()) {
        let mut allocator = allocator(512);
        allocator.free_range(page(5), page(500)).unwrap();
        let start = allocator.stats();
        let mut live: Vec<(u64, usize)> = Vec::new();
        for step in steps {
            match step {
                Step::Allocate(order) => {
                    if let Ok(address) = allocator.allocate(order) {
                        let end = address + (PAGE_SIZE << order);
                        for &(other, other_order) in &live {
                            let other_end = other + (PAGE_SIZE << other_order);
                            prop_assert!(end <= other || other_end <= address, "overlap");
                        }
                        live.push((address, order));
                    }
                }
                Step::Free(pick) if !live.is_empty() => {
                    let (address, order) = live.swap_remove(pick % live.len());
                    allocator.free(address, order).unwrap();
                }
                Step::Free(_) => {}
            }
            check_invariants(&allocator);
        }
        for (address, order) in live {
            allocator.free(address, order).unwrap();
        }
        prop_assert_eq!(allocator.stats(), start);
    }
}
