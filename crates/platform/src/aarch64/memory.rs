//! Physical memory: the buddy page-frame allocator over all RAM the device tree reports.
//!
//! The allocator's per-frame metadata is carved from RAM right after the
//! kernel image; the image, the metadata and the device tree stay reserved.

use sis_mm::{FrameAllocator, FrameMeta, FrameStats, PAGE_SIZE};

use super::irq_lock::IrqMutex;
use crate::bootinfo::BootInfo;

static FRAMES: IrqMutex<Option<FrameAllocator<'static>>> = IrqMutex::new(None);
static LAYOUT: IrqMutex<MemoryLayout> = IrqMutex::new(MemoryLayout::EMPTY);

/// Where boot put things in RAM.
#[derive(Debug, Clone, Copy)]
pub struct MemoryLayout {
    /// First byte of the lowest RAM region.
    pub ram_base: u64,
    /// Frames from `ram_base` to the end of the highest region.
    pub frame_count: u64,
    /// Kernel image, boot stack included.
    pub kernel_image: (u64, u64),
    /// Frame metadata array.
    pub frame_metadata: (u64, u64),
    /// Flattened device tree.
    pub device_tree: (u64, u64),
}

impl MemoryLayout {
    const EMPTY: MemoryLayout =
        MemoryLayout { ram_base: 0, frame_count: 0, kernel_image: (0, 0), frame_metadata: (0, 0), device_tree: (0, 0) };
}

/// Memory figures read from allocator state.
#[derive(Debug, Clone, Copy)]
pub struct MemoryStats {
    /// Page-frame allocator state.
    pub frames: FrameStats,
    /// Boot layout.
    pub layout: MemoryLayout,
    /// Bytes the heap has claimed from the frame allocator.
    pub heap_claimed_bytes: u64,
    /// Bytes currently allocated on the heap.
    pub heap_used_bytes: u64,
    /// Live heap allocations.
    pub heap_allocation_count: u64,
}

const fn align_up(value: u64, alignment: u64) -> u64 {
    (value + alignment - 1) & !(alignment - 1)
}

const fn align_down(value: u64, alignment: u64) -> u64 {
    value & !(alignment - 1)
}

/// Builds the frame allocator from the device tree's memory regions.
pub fn init(boot: &BootInfo<'_>, device_tree: (u64, u64), kernel_image: (u64, u64)) {
    let regions = boot.memory_regions();
    let ram_base = regions.iter().map(|region| region.base).min().unwrap_or(0);
    let ram_end = regions.iter().map(|region| region.end()).max().unwrap_or(0);
    let frame_count = (ram_end - ram_base) / PAGE_SIZE;

    let metadata_start = align_up(kernel_image.1, PAGE_SIZE);
    let metadata_bytes = frame_count * core::mem::size_of::<FrameMeta>() as u64;
    let metadata_end = align_up(metadata_start + metadata_bytes, PAGE_SIZE);
    if metadata_end > ram_end {
        panic!("RAM too small for frame metadata ({metadata_bytes} bytes)");
    }
    // SAFETY: [metadata_start, metadata_end) lies in RAM above the kernel
    // image, is identity-mapped normal memory, and is reserved below so the
    // allocator never hands it out; zero bytes are a valid `FrameMeta` (its
    // documented all-zero state), so the slice is initialised.
    let metadata: &'static mut [FrameMeta] = unsafe {
        let pointer = metadata_start as *mut FrameMeta;
        core::ptr::write_bytes(pointer as *mut u8, 0, (metadata_end - metadata_start) as usize);
        core::slice::from_raw_parts_mut(pointer, frame_count as usize)
    };

    let mut allocator = match FrameAllocator::new(ram_base, frame_count as usize, metadata) {
        Ok(allocator) => allocator,
        Err(error) => panic!("frame allocator: {error}"),
    };
    let reserved = [
        (align_down(kernel_image.0, PAGE_SIZE), metadata_end),
        (align_down(device_tree.0, PAGE_SIZE), align_up(device_tree.1, PAGE_SIZE)),
    ];
    for region in regions {
        free_excluding(
            &mut allocator,
            align_up(region.base, PAGE_SIZE),
            align_down(region.end(), PAGE_SIZE),
            &reserved,
        );
    }
    *FRAMES.lock() = Some(allocator);
    *LAYOUT.lock() = MemoryLayout {
        ram_base,
        frame_count,
        kernel_image,
        frame_metadata: (metadata_start, metadata_end),
        device_tree,
    };
}

/// Frees `[start, end)` minus every reserved range.
fn free_excluding(allocator: &mut FrameAllocator<'_>, start: u64, end: u64, reserved: &[(u64, u64)]) {
    let mut cursor = start;
    while cursor < end {
        // The nearest reserved range that overlaps [cursor, end).
        let next = reserved.iter().filter(|(low, high)| *high > cursor && *low < end).min_by_key(|(low, _)| *low);
        match next {
            Some(&(low, high)) if low <= cursor => cursor = high,
            Some(&(low, high)) => {
                free_range(allocator, cursor, low);
                cursor = high;
            }
            None => {
                free_range(allocator, cursor, end);
                cursor = end;
            }
        }
    }
}

fn free_range(allocator: &mut FrameAllocator<'_>, start: u64, end: u64) {
    if let Err(error) = allocator.free_range(start, end) {
        panic!("freeing RAM [{start:#x}, {end:#x}): {error}");
    }
}

/// Allocates a block of 2^`order` frames; returns its physical (= virtual) address.
pub fn allocate_frames(order: usize) -> Option<u64> {
    FRAMES.lock().as_mut()?.allocate(order).ok()
}

/// Returns a block from [`allocate_frames`]; a bad block is a kernel bug and panics.
pub fn free_frames(address: u64, order: usize) {
    if let Err(error) = try_free_frames(address, order) {
        panic!("freeing frames at {address:#x} order {order}: {error}");
    }
}

/// Returns a block, reporting a refused free instead of panicking (for pools that check themselves).
pub fn try_free_frames(address: u64, order: usize) -> Result<(), sis_mm::MmError> {
    match FRAMES.lock().as_mut() {
        Some(allocator) => allocator.free(address, order),
        None => Err(sis_mm::MmError::OutOfRange { address }),
    }
}

/// The frame allocator's figures alone (cheaper than [`stats`]).
pub fn frame_stats() -> FrameStats {
    FRAMES.lock().as_ref().map(|allocator| allocator.stats()).unwrap_or_default()
}

/// The kernel's frame allocator as a pool's [`sis_mm::FrameSource`].
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelFrames;

impl sis_mm::FrameSource for KernelFrames {
    fn allocate_frames(&mut self, order: usize) -> Result<u64, sis_mm::MmError> {
        match FRAMES.lock().as_mut() {
            Some(allocator) => allocator.allocate(order),
            None => Err(sis_mm::MmError::OutOfMemory { order }),
        }
    }

    fn free_frames(&mut self, address: u64, order: usize) -> Result<(), sis_mm::MmError> {
        try_free_frames(address, order)
    }

    fn frame_stats(&self) -> FrameStats {
        frame_stats()
    }
}

/// Current memory figures.
pub fn stats() -> MemoryStats {
    let frames = frame_stats();
    let heap = super::heap::counters();
    MemoryStats {
        frames,
        layout: *LAYOUT.lock(),
        heap_claimed_bytes: heap.claimed_bytes as u64,
        heap_used_bytes: heap.allocated_bytes as u64,
        heap_allocation_count: heap.allocation_count as u64,
    }
}
