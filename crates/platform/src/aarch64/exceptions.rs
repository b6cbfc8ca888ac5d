//! Exception vectors: every trap saves a full register frame on the current stack; IRQs and `svc` may switch threads.

use core::arch::global_asm;

use super::profile::{self, Layer};
use super::registers::{isb, read_sysreg, write_sysreg};
use super::{console, crash, gic, thread, time, virtio};

/// Registers saved on every exception, in the order the vector code stores them.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct TrapFrame {
    /// x0..x30.
    pub registers: [u64; 31],
    /// Exception link register: where execution resumes.
    pub elr: u64,
    /// Saved program status: PSTATE to restore on `eret`.
    pub spsr: u64,
    /// Keeps the frame a multiple of 16 bytes.
    pub padding: u64,
}

/// Bytes of a [`TrapFrame`]; the vector assembly uses the same number.
pub const TRAP_FRAME_BYTES: usize = 272;
const _: () = assert!(core::mem::size_of::<TrapFrame>() == TRAP_FRAME_BYTES);

global_asm!(
    r#"
    .macro SIS_VECTOR kind
    .balign 0x80
    sub     sp, sp, #272
    stp     x0, x1, [sp, #0]
    mov     x1, #\kind
    b       sis_trap_common
    .endm

    .section .text.vectors, "ax"
    .balign 2048
    .global sis_vectors
sis_vectors:
    SIS_VECTOR 0
    SIS_VECTOR 1
    SIS_VECTOR 2
    SIS_VECTOR 3
    SIS_VECTOR 4
    SIS_VECTOR 5
    SIS_VECTOR 6
    SIS_VECTOR 7
    SIS_VECTOR 8
    SIS_VECTOR 9
    SIS_VECTOR 10
    SIS_VECTOR 11
    SIS_VECTOR 12
    SIS_VECTOR 13
    SIS_VECTOR 14
    SIS_VECTOR 15

sis_trap_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, elr_el1
    mrs     x3, spsr_el1
    stp     x30, x2, [sp, #240]
    str     x3, [sp, #256]
    mov     x0, sp
    bl      sis_trap_dispatch
    mov     sp, x0
    ldp     x30, x2, [sp, #240]
    ldr     x3, [sp, #256]
    msr     elr_el1, x2
    msr     spsr_el1, x3
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    add     sp, sp, #272
    eret
"#
);

extern "C" {
    static sis_vectors: u8;
}

/// The sixteen vector slots, in table order.
const VECTOR_NAMES: [&str; 16] = [
    "synchronous (EL1, SP_EL0)",
    "IRQ (EL1, SP_EL0)",
    "FIQ (EL1, SP_EL0)",
    "SError (EL1, SP_EL0)",
    "synchronous (EL1)",
    "IRQ (EL1)",
    "FIQ (EL1)",
    "SError (EL1)",
    "synchronous (EL0, AArch64)",
    "IRQ (EL0, AArch64)",
    "FIQ (EL0, AArch64)",
    "SError (EL0, AArch64)",
    "synchronous (EL0, AArch32)",
    "IRQ (EL0, AArch32)",
    "FIQ (EL0, AArch32)",
    "SError (EL0, AArch32)",
];

const KIND_SYNC_CURRENT: u64 = 4;
const KIND_IRQ_CURRENT: u64 = 5;
/// ESR exception class of `svc` from AArch64.
const EC_SVC64: u64 = 0x15;

/// Points VBAR_EL1 at the vector table.
pub fn install() {
    // SAFETY: only the address of the assembly table is taken.
    let table = unsafe { &sis_vectors as *const u8 as u64 };
    write_sysreg!("vbar_el1", table);
    isb();
}

#[no_mangle]
extern "C" fn sis_trap_dispatch(frame: *mut TrapFrame, kind: u64) -> *mut TrapFrame {
    match kind {
        KIND_IRQ_CURRENT => {
            let interrupted = profile::enter(Layer::Interrupt);
            handle_interrupts();
            profile::enter(Layer::Scheduler);
            thread::on_trap(frame, thread::TrapReason::Interrupt, interrupted)
        }
        KIND_SYNC_CURRENT if (read_sysreg!("esr_el1") >> 26) & 0x3f == EC_SVC64 => {
            let interrupted = profile::enter(Layer::Scheduler);
            thread::on_trap(frame, thread::TrapReason::Yield, interrupted)
        }
        _ => {
            // SAFETY: the vector code just stored this frame on the stack.
            let saved = unsafe { *frame };
            let name = VECTOR_NAMES.get(kind as usize).copied().unwrap_or("unknown vector");
            crash::unexpected_exception(name, &saved, frame as u64 + TRAP_FRAME_BYTES as u64)
        }
    }
}

fn handle_interrupts() {
    loop {
        let intid = gic::acknowledge();
        if intid >= gic::SPURIOUS_FIRST {
            break;
        }
        if intid == time::intid() {
            // Level-triggered: disarm before EOI; the scheduler re-arms it.
            time::disarm();
        } else if virtio::on_interrupt(intid) {
            // Acknowledged at the device; its waiter was woken.
        } else {
            console::on_uart_interrupt();
        }
        gic::end_of_interrupt(intid);
    }
}
