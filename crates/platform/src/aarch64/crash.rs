//! The crash paths: panic handler and unexpected-exception register dump, both ending QEMU with the panic status.

use core::fmt::Write;

use super::console::CrashConsole;
use super::exceptions::TrapFrame;
use super::irq_lock::mask_irqs;
use super::power::exit_with_status;
use super::registers::read_sysreg;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    mask_irqs();
    let mut console = CrashConsole;
    let _ = write!(console, "\nKERNEL PANIC: {}", info.message());
    if let Some(location) = info.location() {
        let _ = write!(console, "\n  at {}:{}:{}", location.file(), location.line(), location.column());
    }
    let _ = write!(console, "\n  thread: ");
    super::thread::write_current_name_on_crash(&mut console);
    let _ = writeln!(console);
    exit_with_status(sis_proto::exit::PANIC)
}

/// Prints a readable dump of an exception nobody handles, then exits with the panic status.
pub fn unexpected_exception(vector: &str, frame: &TrapFrame, stack_pointer: u64) -> ! {
    mask_irqs();
    let esr = read_sysreg!("esr_el1");
    let far = read_sysreg!("far_el1");
    let class = (esr >> 26) & 0x3f;
    let mut console = CrashConsole;
    let _ = write!(
        console,
        "\nUNEXPECTED EXCEPTION: {vector}: {}\n  ESR_EL1  {esr:#018x} (class {class:#04x}, ISS {:#x})\n  FAR_EL1  {far:#018x}\n  ELR_EL1  {:#018x}\n  SPSR_EL1 {:#018x}\n  SP       {stack_pointer:#018x}\n  thread   ",
        class_name(class),
        esr & 0x1ff_ffff,
        frame.elr,
        frame.spsr,
    );
    super::thread::write_current_name_on_crash(&mut console);
    let _ = writeln!(console);
    for (index, pair) in frame.registers.chunks(2).enumerate() {
        let _ = write!(console, "  x{:<2} {:#018x}", index * 2, pair[0]);
        if let Some(second) = pair.get(1) {
            let _ = write!(console, "   x{:<2} {:#018x}", index * 2 + 1, second);
        }
        let _ = writeln!(console);
    }
    exit_with_status(sis_proto::exit::PANIC)
}

fn class_name(class: u64) -> &'static str {
    match class {
        0x00 => "unknown reason",
        0x01 => "WFI/WFE trapped",
        0x07 => "FP/SIMD access trapped",
        0x0e => "illegal execution state",
        0x15 => "SVC",
        0x18 => "system register access trapped",
        0x20 | 0x21 => "instruction abort",
        0x22 => "PC alignment fault",
        0x24 | 0x25 => "data abort",
        0x26 => "SP alignment fault",
        0x2f => "SError",
        0x3c => "BRK instruction",
        _ => "other",
    }
}
