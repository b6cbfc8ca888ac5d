//! `meminfo`: RAM from the device tree, page frames and heap from allocator state.

use alloc::vec::Vec;

use serde_json::json;
use sis_platform::memory;
use sis_shell::{CommandSpec, Invocation, Reply, ShellError};

use super::Kernel;
use crate::format;

/// `meminfo`.
pub static MEMINFO: CommandSpec<Kernel> = CommandSpec {
    name: "meminfo",
    summary: "Show RAM, page frames and heap, read from the allocators",
    description: "total_bytes is the sum of the device tree's memory regions. Every frame is free, allocated or reserved (kernel image, frame metadata, device tree). The heap grows by blocks taken from the frame allocator.",
    args: &[],
    subcommands: &[],
    handler: Some(meminfo),
};

fn meminfo(kernel: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let stats = memory::stats();
    let frames = stats.frames;
    let layout = stats.layout;
    let page_size = sis_mm::PAGE_SIZE;
    let total_bytes: u64 = kernel.memory_regions.iter().map(|region| region.size).sum();
    let span = |(start, end): (u64, u64)| end.saturating_sub(start);
    let largest_free_block_bytes = frames.largest_free_order.map_or(0, |order| page_size << order);
    let regions: Vec<_> =
        kernel.memory_regions.iter().map(|region| json!({ "base": region.base, "size": region.size })).collect();

    let mut human = alloc::format!("RAM     {} in {} region(s):", format::bytes(total_bytes), regions.len());
    for region in &kernel.memory_regions {
        human.push_str(&alloc::format!(" {:#x}..{:#x}", region.base, region.end()));
    }
    human.push_str(&alloc::format!(
        "\nFrames  {} of {}: {} free, {} allocated, {} reserved\n        reserved: kernel image {}, frame metadata {}, device tree {}\n        largest free block {}\nHeap    {} claimed, {} used in {} allocations",
        format::thousands(frames.frame_count as u64),
        format::bytes(page_size),
        format::thousands(frames.free_frames as u64),
        format::thousands(frames.allocated_frames as u64),
        format::thousands(frames.reserved_frames as u64),
        format::bytes(span(layout.kernel_image)),
        format::bytes(span(layout.frame_metadata)),
        format::bytes(span(layout.device_tree)),
        format::bytes(largest_free_block_bytes),
        format::bytes(stats.heap_claimed_bytes),
        format::bytes(stats.heap_used_bytes),
        format::thousands(stats.heap_allocation_count),
    ));

    Ok(Reply::new(
        human,
        json!({
            "total_bytes": total_bytes,
            "regions": regions,
            "page_size": page_size,
            "frames_total": frames.frame_count,
            "frames_free": frames.free_frames,
            "frames_allocated": frames.allocated_frames,
            "frames_reserved": frames.reserved_frames,
            "free_blocks_by_order": frames.free_blocks_by_order,
            "largest_free_block_bytes": largest_free_block_bytes,
            "kernel_image_bytes": span(layout.kernel_image),
            "frame_metadata_bytes": span(layout.frame_metadata),
            "device_tree_bytes": span(layout.device_tree),
            "heap_claimed_bytes": stats.heap_claimed_bytes,
            "heap_used_bytes": stats.heap_used_bytes,
            "heap_allocations": stats.heap_allocation_count,
        }),
    ))
}
