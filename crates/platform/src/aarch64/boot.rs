//! Entry from QEMU: stack, BSS, device tree, MMU, console, memory, interrupts, then the kernel's main.

use core::arch::global_asm;

use super::{console, exceptions, fpu, gic, memory, mmu, time, uart};
use crate::bootinfo::{parse_device_tree, BootInfo};

global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
_start:
    // x0 holds the device tree address when the loader passes one.
    mov     x19, x0
    msr     daifset, #0xf
    mrs     x1, CurrentEL
    lsr     x1, x1, #2
    cmp     x1, #2
    b.ne    1f
    // Entered at EL2: give EL1 the timer and drop to EL1h with DAIF masked.
    mov     x1, #3
    msr     cnthctl_el2, x1
    msr     cntvoff_el2, xzr
    mov     x1, #(1 << 31)
    msr     hcr_el2, x1
    mov     x1, #0x3c5
    msr     spsr_el2, x1
    adr     x1, 1f
    msr     elr_el2, x1
    eret
1:
    ldr     x1, =__boot_stack_top
    mov     sp, x1
    ldr     x1, =__bss_start
    ldr     x2, =__bss_end
2:
    cmp     x1, x2
    b.hs    3f
    str     xzr, [x1], #8
    b       2b
3:
    mov     x0, x19
    bl      sis_platform_rust_start
4:
    wfe
    b       4b
"#
);

/// Where QEMU `virt` places the device tree when it does not pass its address
/// in x0 (ELF kernels linked 2 MiB or more above the start of RAM): the first
/// byte of RAM. The one address the tree cannot give about itself.
const QEMU_VIRT_DEVICE_TREE_ADDRESS: u64 = 0x4000_0000;
/// Flattened device tree magic, big endian.
const FDT_MAGIC: u32 = 0xd00d_feed;
/// Largest device tree the platform accepts.
const FDT_MAX_BYTES: u32 = 2 << 20;

extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
}

extern "Rust" {
    /// The kernel binary's main, defined through [`crate::entry!`].
    fn sis_kernel_main(platform: Platform) -> !;
}

/// What the platform hands to the kernel once the machine is up.
#[derive(Debug)]
pub struct Platform {
    /// Facts from the device tree.
    pub boot: BootInfo<'static>,
    /// Physical address of the device tree.
    pub device_tree_address: u64,
    /// Physical range of the kernel image, boot stack included.
    pub kernel_image: (u64, u64),
    /// Counter reading, in nanoseconds, when Rust code first ran.
    pub rust_entry_ns: u64,
}

/// Defines the kernel's main function, called once the platform is up.
///
/// `entry!(main)` where `main: fn(Platform) -> !`. The export lives in this
/// macro so the kernel crate itself stays free of unsafe attributes: the
/// `unsafe_code` lint does not look into another crate's macro expansions,
/// so the kernel can `forbid` it (an `allow` here would be refused there).
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[export_name = "sis_kernel_main"]
        extern "Rust" fn __sis_kernel_main(platform: $crate::Platform) -> ! {
            let main: fn($crate::Platform) -> ! = $main;
            main(platform)
        }
    };
}

fn device_tree_header(address: u64) -> Option<u32> {
    // SAFETY: `address` is either the loader's x0 (checked to be inside the
    // kernel's first RAM gigabyte below) or the first byte of RAM; both are
    // readable with the MMU off, and the magic is checked before the size is
    // trusted.
    let (magic, size) = unsafe {
        let header = address as *const u32;
        (u32::from_be(header.read_volatile()), u32::from_be(header.add(1).read_volatile()))
    };
    (magic == FDT_MAGIC && (40..=FDT_MAX_BYTES).contains(&size)).then_some(size)
}

#[no_mangle]
extern "C" fn sis_platform_rust_start(loader_x0: u64) -> ! {
    exceptions::install();
    fpu::enable();
    let rust_entry_ns = time::now_ns();
    // SAFETY: linker-script symbols; only their addresses are taken.
    let kernel_image = unsafe { (&__kernel_start as *const u8 as u64, &__kernel_end as *const u8 as u64) };

    let kernel_gigabyte = kernel_image.0 & !((1 << 30) - 1);
    let plausible = |address: u64| address.is_multiple_of(8) && address >= kernel_gigabyte && address < kernel_image.0;
    let (device_tree_address, device_tree_size) = [loader_x0, QEMU_VIRT_DEVICE_TREE_ADDRESS]
        .into_iter()
        .filter(|&address| plausible(address))
        .find_map(|address| device_tree_header(address).map(|size| (address, size)))
        .unwrap_or_else(|| super::power::exit_with_status(sis_proto::exit::PANIC));

    // SAFETY: the header checks above found a device tree of this size at
    // this address; the range is reserved from the page allocator below and
    // never written, so a shared 'static view is sound.
    let tree: &'static [u8] =
        unsafe { core::slice::from_raw_parts(device_tree_address as *const u8, device_tree_size as usize) };
    let boot = match parse_device_tree(tree) {
        Ok(boot) => boot,
        Err(_) => super::power::exit_with_status(sis_proto::exit::PANIC),
    };

    mmu::enable(&boot);
    // RAM is normal memory now: the kernel's memcpy may use unaligned 16-byte accesses.
    crate::mem::allow_unaligned();
    uart::init(boot.uart_base);
    memory::init(&boot, (device_tree_address, device_tree_address + device_tree_size as u64), kernel_image);
    super::power::init(boot.psci);
    gic::init(&boot);
    time::init(boot.virtual_timer_intid);
    gic::enable_interrupt(boot.uart_intid);
    uart::enable_receive_interrupt();
    // Input typed before the UART was programmed sits in its FIFO, and QEMU
    // feeds no more until the guest reads: drain it once now.
    console::drain_receive_fifo();

    let platform = Platform { boot, device_tree_address, kernel_image, rust_entry_ns };
    // SAFETY: `sis_kernel_main` is defined exactly once, by `entry!` in the
    // kernel binary, with this signature.
    unsafe { sis_kernel_main(platform) }
}
