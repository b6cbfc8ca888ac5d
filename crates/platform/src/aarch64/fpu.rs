//! f32 vector loops on the FPU, for the learning agents' network.
//!
//! The kernel is built for the softfloat target: the compiler never emits an
//! FP/SIMD instruction, and every f32 operation is a library call of about 40
//! instructions. These three loops, where the network spends its time, run on
//! the FPU instead, in inline assembly (`.arch_extension fp`):
//!
//! - Each loop runs with IRQs masked, so no context switch or interrupt
//!   handler runs in the middle of it. It keeps nothing in FP registers
//!   between calls, and no other code uses them (the compiler cannot), so the
//!   kernel still needs no FP context switch.
//! - Each instruction is one correctly rounded IEEE 754 operation (`fmul`,
//!   `fadd`, `fsub`; never the fused `fmadd`), in the order of the Rust loops
//!   they replace, with round to nearest and subnormals kept (FPCR = 0, its
//!   reset value, which nothing changes). The results are the software
//!   library's, bit for bit: `sis_ai::install_vector_unit` checks this at
//!   boot, and a QEMU test compares a whole training run with the host's.
//! - [`enable`] must have run first (the boot code calls it): with
//!   CPACR_EL1.FPEN clear, the first FP instruction traps.

use core::arch::asm;

/// Lets EL1 execute FP/SIMD instructions (CPACR_EL1.FPEN = 0b11). Called once at boot.
pub(crate) fn enable() {
    const FPEN_NO_TRAP: u64 = 0b11 << 20;
    // SAFETY: CPACR_EL1 only controls trapping of FP/SIMD and SVE instructions;
    // allowing FP at EL1 changes nothing for code that does not execute them,
    // and the ISB makes the change visible to the instructions that follow.
    unsafe {
        asm!("msr cpacr_el1, {value}", "isb", value = in(reg) FPEN_NO_TRAP, options(nostack, preserves_flags));
    }
}

/// `Σ a[i]·b[i]` over the shorter slice, summed in order from −0.0 (as `Iterator::sum` does), then `+ bias`.
pub fn dot_plus(a: &[f32], b: &[f32], bias: f32) -> f32 {
    let count = a.len().min(b.len());
    let result: u32;
    // SAFETY: (1) the loop reads `count` f32 values from each slice, which both
    // have. (2) It writes only registers: s0–s2 (which the compiler never
    // allocates on this target, so clobbering them is invisible to it) and the
    // declared operands. (3) IRQs are masked from before the first FP
    // instruction to after the last and DAIF is restored as it was, so nothing
    // else runs while s0–s2 are live. (4) FP is enabled at boot ([`enable`]).
    unsafe {
        asm!(
            ".arch_extension fp",
            "mrs {flags}, daif",
            "msr daifset, #2",
            "mov {bits:w}, #0x80000000",
            "fmov s0, {bits:w}",
            "cbz {count}, 2f",
            "1:",
            "ldr s1, [{a}], #4",
            "ldr s2, [{b}], #4",
            "fmul s1, s1, s2",
            "fadd s0, s0, s1",
            "subs {count}, {count}, #1",
            "b.ne 1b",
            "2:",
            "fmov s1, {bias:w}",
            "fadd s0, s0, s1",
            "fmov {bits:w}, s0",
            "msr daif, {flags}",
            a = inout(reg) a.as_ptr() => _,
            b = inout(reg) b.as_ptr() => _,
            count = inout(reg) count => _,
            bias = in(reg) bias.to_bits(),
            bits = out(reg) result,
            flags = out(reg) _,
            options(nostack, readonly),
        );
    }
    f32::from_bits(result)
}

/// `Σ matrix[o·stride + column]·b[o]` for `o` in `0..b.len()`, summed in order from −0.0: one column of a
/// row-major matrix with `stride` columns against `b`. Rows past the end of `matrix` are not read.
pub fn column_dot(matrix: &[f32], stride: usize, column: usize, b: &[f32]) -> f32 {
    let rows = if column < stride { (matrix.len().saturating_sub(column)).div_ceil(stride) } else { 0 };
    let count = rows.min(b.len());
    let start = matrix.as_ptr().wrapping_add(if count == 0 { 0 } else { column });
    let result: u32;
    // SAFETY: (1) the loop reads `matrix[column + o·stride]` for o < count, all
    // in bounds: count ≤ ⌈(len − column) / stride⌉; and `b[o]` for o < count ≤
    // b.len(). (2)–(4) as in [`dot_plus`].
    unsafe {
        asm!(
            ".arch_extension fp",
            "mrs {flags}, daif",
            "msr daifset, #2",
            "mov {bits:w}, #0x80000000",
            "fmov s0, {bits:w}",
            "cbz {count}, 2f",
            "1:",
            "ldr s1, [{m}]",
            "add {m}, {m}, {step}",
            "ldr s2, [{b}], #4",
            "fmul s1, s1, s2",
            "fadd s0, s0, s1",
            "subs {count}, {count}, #1",
            "b.ne 1b",
            "2:",
            "fmov {bits:w}, s0",
            "msr daif, {flags}",
            m = inout(reg) start => _,
            step = in(reg) stride * core::mem::size_of::<f32>(),
            b = inout(reg) b.as_ptr() => _,
            count = inout(reg) count => _,
            bits = out(reg) result,
            flags = out(reg) _,
            options(nostack, readonly),
        );
    }
    f32::from_bits(result)
}

/// `row[i] -= rate · (scale · x[i])` over the shorter slice: one row's SGD step.
pub fn subtract_scaled(row: &mut [f32], x: &[f32], scale: f32, rate: f32) {
    let count = row.len().min(x.len());
    // SAFETY: (1) the loop reads and writes `count` f32 values of `row`, which
    // it borrows mutably, and reads `count` of `x`. (2)–(4) as in [`dot_plus`].
    unsafe {
        asm!(
            ".arch_extension fp",
            "mrs {flags}, daif",
            "msr daifset, #2",
            "cbz {count}, 2f",
            "fmov s3, {scale:w}",
            "fmov s4, {rate:w}",
            "1:",
            "ldr s1, [{x}], #4",
            "fmul s1, s3, s1",
            "fmul s1, s4, s1",
            "ldr s2, [{row}]",
            "fsub s2, s2, s1",
            "str s2, [{row}], #4",
            "subs {count}, {count}, #1",
            "b.ne 1b",
            "2:",
            "msr daif, {flags}",
            row = inout(reg) row.as_mut_ptr() => _,
            x = inout(reg) x.as_ptr() => _,
            count = inout(reg) count => _,
            scale = in(reg) scale.to_bits(),
            rate = in(reg) rate.to_bits(),
            flags = out(reg) _,
            options(nostack),
        );
    }
}
