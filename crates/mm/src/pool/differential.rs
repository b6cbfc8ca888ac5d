//! The pool against the reference (the pool before idle blocks) over seeded operations: same answers, same figures.
//!
//! Only which frames back an object may differ (an idle block is reused where the
//! reference took a block from the frame allocator), so addresses are not compared;
//! instead the pool's live objects must never overlap and its frames must add up.

use alloc::vec::Vec;

use super::reference::{ReferenceHandle, ReferencePool};
use super::tests::frames;
use super::*;

/// xorshift64*: enough randomness for a seeded operation stream, no dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    /// Roughly log-uniform in 1 ..= 2^`max_bits`.
    fn size(&mut self, max_bits: u64) -> u64 {
        let bits = self.below(max_bits) + 1;
        (1u64 << (bits - 1)) + self.below(1u64 << (bits - 1))
    }
}

/// Asserts every figure the two pools give is the same; the pool's own books must add up too.
fn assert_same_figures(pool: &Pool, reference: &ReferencePool, source: &FrameAllocator<'_>, step: u64) {
    let (ours, theirs) = (pool.stats(), reference.stats());
    assert_eq!(
        PoolStats { charged_pages: ours.charged_pages - ours.idle_block_pages, idle_block_pages: 0, ..ours },
        theirs,
        "step {step}"
    );
    assert_eq!(pool.pressure_per_mille(), reference.pressure_per_mille(), "step {step}");
    assert_eq!(ours.pressure_per_mille(), theirs.pressure_per_mille(), "step {step}");
    assert_eq!(pool.cache_pages(), reference.cache_pages(), "step {step}");
    assert_eq!(source.stats().allocated_frames as u64, ours.charged_pages, "step {step}: charged = frames taken");
    assert!(ours.charged_pages <= ours.limit_pages, "step {step}: idle blocks stay within the limit");
}

/// The pool's live objects occupy disjoint memory.
fn assert_disjoint(live: &[(ObjectHandle, ReferenceHandle)], pool: &Pool) {
    let mut extents: Vec<(u64, u64)> = live
        .iter()
        .filter(|(ours, _)| pool.is_live(ours))
        .map(|(ours, _)| (ours.address, ours.address + ours.size as u64))
        .collect();
    extents.sort_unstable();
    for pair in extents.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "objects overlap: {:x?} and {:x?}", pair[0], pair[1]);
    }
}

fn run(seed: u64, operations: u64, limit_pages: u64) {
    let (mut source, mut reference_source) = (frames(8192), frames(8192));
    let baseline = source.stats();
    let mut pool = Pool::new(limit_pages * PAGE_SIZE);
    let mut reference = ReferencePool::new(limit_pages * PAGE_SIZE);
    let mut random = Random(seed);
    let mut live: Vec<(ObjectHandle, ReferenceHandle)> = Vec::new();
    let mut counts = [0u64; 4];
    for step in 0..operations {
        let action = random.below(100);
        if action == 0 {
            let idle_bytes = pool.stats().idle_block_pages * PAGE_SIZE;
            let ours = pool.compact(&mut source).unwrap();
            let theirs = reference.compact(&mut reference_source).unwrap();
            assert_eq!(ours, CompactionReport { idle_bytes_released: idle_bytes, ..theirs }, "step {step}");
            assert_eq!(pool.stats().idle_block_pages, 0);
            counts[0] += 1;
        } else if action < 45 && !live.is_empty() {
            let (ours, theirs) = live.swap_remove(random.below(live.len() as u64) as usize);
            assert_eq!(pool.is_live(&ours), reference.is_live(&theirs), "step {step}");
            assert_eq!(pool.free(&mut source, ours), reference.free(&mut reference_source, theirs), "step {step}");
            counts[1] += 1;
        } else {
            let size = match random.below(50) {
                0 => 0,
                1 => LARGEST_OBJECT_BYTES + 1,
                _ => random.size(20),
            };
            let kind = if random.below(5) == 0 { MemoryKind::Reclaimable } else { MemoryKind::Unreclaimable };
            match (pool.allocate(&mut source, size, kind), reference.allocate(&mut reference_source, size, kind)) {
                (Ok(ours), Ok(theirs)) => {
                    assert_eq!(
                        (ours.id, ours.size, ours.is_reclaimable()),
                        (theirs.id, theirs.size, theirs.is_reclaimable())
                    );
                    live.push((ours, theirs));
                    counts[2] += 1;
                }
                (Err(ours), Err(theirs)) => {
                    assert_eq!(ours, theirs, "step {step}");
                    counts[3] += 1;
                }
                (ours, theirs) => panic!("step {step}: {ours:?} against {theirs:?}"),
            }
        }
        assert_same_figures(&pool, &reference, &source, step);
        if step % 256 == 0 {
            assert_disjoint(&live, &pool);
        }
    }
    assert!(counts.iter().all(|&count| count > 0), "every kind of operation happened: {counts:?}");
    for (ours, theirs) in live {
        assert_eq!(pool.free(&mut source, ours), reference.free(&mut reference_source, theirs));
    }
    assert_eq!(
        pool.compact(&mut source).map(|report| report.bytes_recovered),
        reference.compact(&mut reference_source).map(|report| report.bytes_recovered)
    );
    assert_eq!(pool.stats(), PoolStats { limit_pages, ..PoolStats::default() });
    assert_eq!(source.stats(), baseline, "every frame back");
}

#[test]
fn the_pool_gives_the_same_answers_and_figures_as_before_idle_blocks() {
    // Tight limits make LimitReached common (and idle blocks go back to make room); a loose one lets idle blocks pile up.
    for (seed, limit_pages) in [(1, 64), (2, 256), (3, 1024), (4, 4096)] {
        run(seed, 40_000, limit_pages);
    }
}
