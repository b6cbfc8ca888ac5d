//! What the device tree says about the machine: RAM, boot arguments, PSCI method, device addresses.
//!
//! Parsing is safe, portable code over a byte slice, so it is tested on the
//! host against device trees dumped from QEMU (`tests/fixtures/`). Nothing the
//! tree gives is hard-coded anywhere else in the platform.

use fdt::Fdt;

/// Most memory regions the platform keeps from the tree (QEMU `virt` has one).
pub const MAX_MEMORY_REGIONS: usize = 8;

/// Most virtio-mmio transports the platform keeps from the tree (QEMU `virt` has 32).
pub const MAX_VIRTIO_MMIO: usize = 32;

/// One `virtio,mmio` transport window: where its registers are and which interrupt it raises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VirtioMmioSlot {
    /// Physical address of the register window.
    pub base: u64,
    /// Length of the window in bytes.
    pub size: u64,
    /// GIC interrupt ID (an SPI).
    pub intid: u32,
}

/// One range of RAM from a `/memory` node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryRegion {
    /// Physical start address.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl MemoryRegion {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }
}

/// How PSCI calls reach the firmware (`/psci` `method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciMethod {
    /// `hvc #0` (QEMU without EL2/EL3 firmware).
    Hvc,
    /// `smc #0`.
    Smc,
}

/// Everything the platform needs from the device tree.
#[derive(Clone, Copy, Debug)]
pub struct BootInfo<'dt> {
    /// Total size of the flattened tree in bytes (header `totalsize`).
    pub dtb_size: u64,
    /// RAM regions; only the first `memory_region_count` are valid.
    pub memory: [MemoryRegion; MAX_MEMORY_REGIONS],
    /// Number of valid entries in `memory`.
    pub memory_region_count: usize,
    /// `/chosen/bootargs`, empty when absent.
    pub bootargs: &'dt str,
    /// `/chosen/rng-seed` folded to 64 bits, when the loader provides one.
    pub rng_seed: Option<u64>,
    /// PSCI conduit.
    pub psci: PsciMethod,
    /// Console PL011 base address (from `/chosen/stdout-path`, else the first `arm,pl011`).
    pub uart_base: u64,
    /// Console PL011 interrupt ID (GIC INTID).
    pub uart_intid: u32,
    /// GICv3 distributor base.
    pub gicd_base: u64,
    /// GICv3 redistributor region base (CPU 0's frames first).
    pub gicr_base: u64,
    /// EL1 virtual timer interrupt ID (GIC INTID).
    pub virtual_timer_intid: u32,
    /// `virtio,mmio` transports by ascending address; only the first `virtio_mmio_count` are valid.
    pub virtio_mmio: [VirtioMmioSlot; MAX_VIRTIO_MMIO],
    /// Number of valid entries in `virtio_mmio`.
    pub virtio_mmio_count: usize,
}

impl BootInfo<'_> {
    /// The valid memory regions.
    pub fn memory_regions(&self) -> &[MemoryRegion] {
        &self.memory[..self.memory_region_count]
    }

    /// The valid virtio-mmio transports, lowest address first.
    pub fn virtio_mmio_slots(&self) -> &[VirtioMmioSlot] {
        &self.virtio_mmio[..self.virtio_mmio_count]
    }

    /// Sum of all RAM region sizes in bytes.
    pub fn total_memory_bytes(&self) -> u64 {
        self.memory_regions().iter().map(|region| region.size).sum()
    }
}

/// Why a device tree could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceTreeError {
    /// The header or structure is malformed.
    Malformed,
    /// A node or property the platform needs is missing.
    Missing(&'static str),
    /// A property has a value the platform cannot use.
    Invalid(&'static str),
}

impl core::fmt::Display for DeviceTreeError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DeviceTreeError::Malformed => write!(formatter, "device tree is malformed"),
            DeviceTreeError::Missing(what) => write!(formatter, "device tree has no {what}"),
            DeviceTreeError::Invalid(what) => write!(formatter, "device tree has an unusable {what}"),
        }
    }
}

/// GIC interrupt specifier type cell: shared peripheral interrupt.
const GIC_SPI: u32 = 0;
/// GIC interrupt specifier type cell: private peripheral interrupt.
const GIC_PPI: u32 = 1;
/// Index of the EL1 virtual timer in the `arm,armv8-timer` `interrupts` list.
const TIMER_VIRTUAL_INDEX: usize = 2;

/// Parses the flattened device tree in `bytes`.
pub fn parse_device_tree(bytes: &[u8]) -> Result<BootInfo<'_>, DeviceTreeError> {
    let tree = Fdt::new(bytes).map_err(|_| DeviceTreeError::Malformed)?;

    let mut memory = [MemoryRegion::default(); MAX_MEMORY_REGIONS];
    let mut memory_region_count = 0;
    for region in tree.memory().regions() {
        let size = region.size.ok_or(DeviceTreeError::Invalid("memory region size"))? as u64;
        if size == 0 {
            continue;
        }
        if memory_region_count == MAX_MEMORY_REGIONS {
            return Err(DeviceTreeError::Invalid("memory region count"));
        }
        memory[memory_region_count] = MemoryRegion { base: region.starting_address as u64, size };
        memory_region_count += 1;
    }
    if memory_region_count == 0 {
        return Err(DeviceTreeError::Missing("memory region"));
    }

    let chosen = tree.find_node("/chosen");
    let bootargs =
        chosen.and_then(|node| node.property("bootargs")).and_then(|property| property.as_str()).unwrap_or("");
    let rng_seed = chosen.and_then(|node| node.property("rng-seed")).and_then(|property| {
        let mut folded = 0u64;
        for chunk in property.value.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            folded ^= u64::from_be_bytes(word);
        }
        (!property.value.is_empty()).then_some(folded)
    });

    let psci =
        match tree.find_node("/psci").and_then(|node| node.property("method")).and_then(|property| property.as_str()) {
            Some("hvc") => PsciMethod::Hvc,
            Some("smc") => PsciMethod::Smc,
            Some(_) => return Err(DeviceTreeError::Invalid("PSCI method")),
            None => return Err(DeviceTreeError::Missing("/psci method")),
        };

    let stdout_path = chosen
        .and_then(|node| node.property("stdout-path"))
        .and_then(|property| property.as_str())
        .map(|path| path.split(':').next().unwrap_or(path));
    let uart = stdout_path
        .and_then(|path| tree.find_node(path))
        .filter(|node| node.compatible().is_some_and(|list| list.all().any(|c| c == "arm,pl011")))
        .or_else(|| tree.find_compatible(&["arm,pl011"]))
        .ok_or(DeviceTreeError::Missing("arm,pl011 console"))?;
    let uart_base = first_reg(&uart).ok_or(DeviceTreeError::Missing("PL011 reg"))?;
    let uart_intid = interrupt_id(interrupt_cells(&uart, 0).ok_or(DeviceTreeError::Missing("PL011 interrupts"))?)
        .ok_or(DeviceTreeError::Invalid("PL011 interrupt"))?;

    let gic = tree.find_compatible(&["arm,gic-v3"]).ok_or(DeviceTreeError::Missing("arm,gic-v3"))?;
    let mut gic_regs = gic.reg().ok_or(DeviceTreeError::Missing("GICv3 reg"))?;
    let gicd_base = gic_regs.next().ok_or(DeviceTreeError::Missing("GICv3 distributor"))?.starting_address as u64;
    let gicr_base = gic_regs.next().ok_or(DeviceTreeError::Missing("GICv3 redistributor"))?.starting_address as u64;

    let timer = tree
        .find_compatible(&["arm,armv8-timer", "arm,armv7-timer"])
        .ok_or(DeviceTreeError::Missing("arm,armv8-timer"))?;
    let virtual_timer_intid = interrupt_id(
        interrupt_cells(&timer, TIMER_VIRTUAL_INDEX).ok_or(DeviceTreeError::Missing("virtual timer interrupt"))?,
    )
    .ok_or(DeviceTreeError::Invalid("virtual timer interrupt"))?;

    let (virtio_mmio, virtio_mmio_count) = virtio_mmio_slots(&tree);

    Ok(BootInfo {
        dtb_size: tree.total_size() as u64,
        memory,
        memory_region_count,
        bootargs,
        rng_seed,
        psci,
        uart_base,
        uart_intid,
        gicd_base,
        gicr_base,
        virtual_timer_intid,
        virtio_mmio,
        virtio_mmio_count,
    })
}

/// Every `virtio,mmio` node with a usable window and SPI, sorted by address.
///
/// A transport the platform cannot use is left out rather than failing the
/// boot: the machine runs without that device. Past [`MAX_VIRTIO_MMIO`], the
/// rest are left out too.
fn virtio_mmio_slots(tree: &Fdt<'_>) -> ([VirtioMmioSlot; MAX_VIRTIO_MMIO], usize) {
    let mut slots = [VirtioMmioSlot::default(); MAX_VIRTIO_MMIO];
    let mut count = 0;
    for node in tree.all_nodes() {
        if count == MAX_VIRTIO_MMIO {
            break;
        }
        if !node.compatible().is_some_and(|list| list.all().any(|c| c == "virtio,mmio")) {
            continue;
        }
        let Some(region) = node.reg().and_then(|mut regions| regions.next()) else { continue };
        let Some(size) = region.size.filter(|&size| size > 0) else { continue };
        let Some(intid) = interrupt_cells(&node, 0).filter(|cells| cells[0] == GIC_SPI).and_then(interrupt_id) else {
            continue;
        };
        slots[count] = VirtioMmioSlot { base: region.starting_address as u64, size: size as u64, intid };
        count += 1;
    }
    slots[..count].sort_unstable_by_key(|slot| slot.base);
    (slots, count)
}

fn first_reg(node: &fdt::node::FdtNode<'_, '_>) -> Option<u64> {
    node.reg()?.next().map(|region| region.starting_address as u64)
}

/// The `index`-th three-cell GIC interrupt specifier of `node` (type, number, flags).
fn interrupt_cells(node: &fdt::node::FdtNode<'_, '_>, index: usize) -> Option<[u32; 3]> {
    let value = node.property("interrupts")?.value;
    let start = index.checked_mul(12)?;
    let cells = value.get(start..start.checked_add(12)?)?;
    let cell = |i: usize| u32::from_be_bytes([cells[i * 4], cells[i * 4 + 1], cells[i * 4 + 2], cells[i * 4 + 3]]);
    Some([cell(0), cell(1), cell(2)])
}

/// GIC INTID of a three-cell specifier: SPIs start at 32, PPIs at 16.
fn interrupt_id(cells: [u32; 3]) -> Option<u32> {
    match cells[0] {
        GIC_SPI => cells[1].checked_add(32).filter(|&id| id < 1020),
        GIC_PPI => cells[1].checked_add(16).filter(|&id| id < 32),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIRT_512M: &[u8] = include_bytes!("../tests/fixtures/virt512.dtb");
    const VIRT_1G: &[u8] = include_bytes!("../tests/fixtures/virt1g.dtb");

    #[test]
    fn qemu_virt_512m_tree_gives_the_machine() {
        let info = parse_device_tree(VIRT_512M).expect("fixture parses");
        assert_eq!(info.memory_regions(), &[MemoryRegion { base: 0x4000_0000, size: 512 << 20 }]);
        assert_eq!(info.total_memory_bytes(), 536_870_912);
        assert_eq!(info.bootargs, "sis.run=\"echo hi; version\"");
        assert_eq!(info.psci, PsciMethod::Hvc);
        assert_eq!(info.uart_base, 0x0900_0000);
        assert_eq!(info.uart_intid, 33);
        assert_eq!(info.gicd_base, 0x0800_0000);
        assert_eq!(info.gicr_base, 0x080a_0000);
        assert_eq!(info.virtual_timer_intid, 27);
        assert!(info.rng_seed.is_some());
        let virtio = info.virtio_mmio_slots();
        assert_eq!(virtio.len(), 32);
        for (index, slot) in virtio.iter().enumerate() {
            assert_eq!(
                *slot,
                VirtioMmioSlot { base: 0x0a00_0000 + index as u64 * 0x200, size: 0x200, intid: 48 + index as u32 }
            );
        }
    }

    #[test]
    fn qemu_virt_1g_tree_reports_one_gibibyte_and_no_bootargs() {
        let info = parse_device_tree(VIRT_1G).expect("fixture parses");
        assert_eq!(info.total_memory_bytes(), 1 << 30);
        assert_eq!(info.bootargs, "");
    }

    #[test]
    fn garbage_is_rejected_not_panicked_on() {
        assert_eq!(parse_device_tree(&[0u8; 64]).unwrap_err(), DeviceTreeError::Malformed);
        let mut truncated = VIRT_512M.to_vec();
        truncated.truncate(200);
        assert!(parse_device_tree(&truncated).is_err());
    }

    #[test]
    fn interrupt_specifiers_map_to_gic_ids() {
        assert_eq!(interrupt_id([GIC_SPI, 1, 4]), Some(33));
        assert_eq!(interrupt_id([GIC_PPI, 11, 4]), Some(27));
        assert_eq!(interrupt_id([GIC_PPI, 20, 4]), None);
        assert_eq!(interrupt_id([7, 1, 4]), None);
    }
}
