//! The global heap: talc, growing by blocks taken from the page-frame allocator when it runs out.

use core::alloc::Layout;

use talc::{OomHandler, Span, Talc, Talck};

use super::irq_lock::RawIrqLock;
use super::memory;

/// Largest block the heap asks for at once: 2^10 frames (4 MiB), the buddy maximum.
const MAX_GROW_ORDER: usize = sis_mm::MAX_ORDER;
/// Smallest growth step: 2^8 frames (1 MiB), so small allocations do not claim page by page.
const MIN_GROW_ORDER: usize = 8;
/// Room talc needs beside an allocation in a fresh heap (tags and alignment).
const GROW_SLACK_BYTES: usize = 256;

/// Claims page blocks from the frame allocator whenever talc runs out.
#[derive(Debug)]
pub struct GrowFromFrames;

impl OomHandler for GrowFromFrames {
    fn handle_oom(talc: &mut Talc<Self>, layout: Layout) -> Result<(), ()> {
        let needed =
            layout.size().checked_add(layout.align()).and_then(|n| n.checked_add(GROW_SLACK_BYTES)).ok_or(())?;
        let pages = (needed as u64).div_ceil(sis_mm::PAGE_SIZE);
        let order = sis_mm::order_for_pages(pages).ok_or(())?.clamp(MIN_GROW_ORDER, MAX_GROW_ORDER);
        let base = memory::allocate_frames(order).ok_or(())?;
        let bytes = (sis_mm::PAGE_SIZE as usize) << order;
        // SAFETY: the frame allocator handed out [base, base + bytes) for good:
        // it is identity-mapped normal RAM that nothing else references.
        unsafe { talc.claim(Span::from_base_size(base as *mut u8, bytes)) }.map(|_| ())
    }
}

#[global_allocator]
static HEAP: Talck<RawIrqLock, GrowFromFrames> = Talc::new(GrowFromFrames).lock();

/// Heap counters kept by talc.
pub fn counters() -> talc::Counters {
    *HEAP.lock().get_counters()
}
