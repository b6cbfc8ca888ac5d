//! f32 layer loops on the FPU, for the learning agents' network.
//!
//! The kernel is built for the softfloat target: the compiler never emits an
//! FP/SIMD instruction, and every f32 operation is a library call of about 40
//! instructions. The three loops over a layer where the network spends its
//! time (forward pass, backpropagation, SGD step; `sis_ai::VectorUnit` defines
//! them) run on the FPU instead, in inline assembly (`.arch_extension fp`), one
//! call per layer:
//!
//! - Each call runs with IRQs masked, so no context switch or interrupt
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

/// Rows of `stride` values that `len` values hold in full (any number when `stride` is 0).
fn whole_rows(len: usize, stride: usize) -> usize {
    len.checked_div(stride).unwrap_or(usize::MAX)
}

/// A layer's forward pass: `output[o] = Σ_i weights[o·n + i]·input[i] + biases[o]` (n = `input.len()`, summed
/// in order from −0.0, then the bias), through ReLU (`x > 0 ? x : +0`) when `relu`, for the rows that
/// `output`, `biases` and `weights` all hold.
pub fn layer_forward(weights: &[f32], biases: &[f32], input: &[f32], output: &mut [f32], relu: bool) {
    let n = input.len();
    let rows = output.len().min(biases.len()).min(whole_rows(weights.len(), n));
    if rows == 0 {
        return;
    }
    // SAFETY: (1) row o reads weights[o·n..(o + 1)·n], all of input, biases[o] and
    // writes output[o], for o < rows, which every slice holds (rows ≤ their
    // lengths, rows·n ≤ weights.len()). (2) It writes only registers: s0–s4
    // (which the compiler never allocates on this target, so clobbering them is
    // invisible to it) and the declared operands. (3) IRQs are masked from
    // before the first FP instruction to after the last and DAIF is restored
    // as it was, so nothing else runs while s0–s4 are live. (4) FP is enabled
    // at boot ([`enable`]).
    unsafe {
        asm!(
            ".arch_extension fp",
            "mrs {flags}, daif",
            "msr daifset, #2",
            "mov {negative_zero:w}, #0x80000000",
            // A row: the sum in s0, two products per step, then the odd one.
            "1:",
            "fmov s0, {negative_zero:w}",
            "mov {x}, {input}",
            "lsr {count}, {n}, #1",
            "cbz {count}, 3f",
            "2:",
            "ldp s1, s3, [{w}], #8",
            "ldp s2, s4, [{x}], #8",
            "fmul s1, s1, s2",
            "fadd s0, s0, s1",
            "fmul s3, s3, s4",
            "fadd s0, s0, s3",
            "subs {count}, {count}, #1",
            "b.ne 2b",
            "3:",
            "tbz {n}, #0, 4f",
            "ldr s1, [{w}], #4",
            "ldr s2, [{x}]",
            "fmul s1, s1, s2",
            "fadd s0, s0, s1",
            "4:",
            "ldr s1, [{b}], #4",
            "fadd s0, s0, s1",
            // ReLU: keep s0 only if it compares greater than zero (not for ±0 or NaN).
            "cbz {relu}, 5f",
            "fcmp s0, #0.0",
            "b.gt 5f",
            "fmov s0, wzr",
            "5:",
            "str s0, [{out}], #4",
            "subs {rows}, {rows}, #1",
            "b.ne 1b",
            "msr daif, {flags}",
            w = inout(reg) weights.as_ptr() => _,
            b = inout(reg) biases.as_ptr() => _,
            out = inout(reg) output.as_mut_ptr() => _,
            rows = inout(reg) rows => _,
            input = in(reg) input.as_ptr(),
            n = in(reg) n,
            relu = in(reg) relu as u64,
            x = out(reg) _,
            count = out(reg) _,
            negative_zero = out(reg) _,
            flags = out(reg) _,
            options(nostack),
        );
    }
}

/// Backpropagation through a layer: `previous[i] = Σ_o weights[o·n + i]·delta[o]` (n = `input.len()`, summed in
/// order from −0.0) when `input[i] > 0`, else +0, for the columns `previous` and `input` both hold, over the
/// rows `delta` and `weights` both hold.
pub fn layer_backward(weights: &[f32], delta: &[f32], input: &[f32], previous: &mut [f32]) {
    let n = input.len();
    let columns = n.min(previous.len());
    if columns == 0 {
        return;
    }
    let rows = delta.len().min(weights.len() / n);
    // SAFETY: (1) column i reads input[i], writes previous[i] (i < columns ≤
    // both lengths) and reads weights[o·n + i] and delta[o] for o < rows:
    // o·n + i < rows·n ≤ weights.len() and rows ≤ delta.len(). (2)–(4) as in
    // [`layer_forward`], with s0–s2.
    unsafe {
        asm!(
            ".arch_extension fp",
            "mrs {flags}, daif",
            "msr daifset, #2",
            "mov {negative_zero:w}, #0x80000000",
            "1:",
            "ldr s1, [{x}], #4",
            "fmov s0, wzr",
            // Not greater than zero (±0, negative or NaN): +0.
            "fcmp s1, #0.0",
            "b.le 3f",
            "fmov s0, {negative_zero:w}",
            "mov {m}, {column}",
            "mov {d}, {delta}",
            "mov {count}, {rows}",
            "cbz {count}, 3f",
            "2:",
            "ldr s1, [{m}]",
            "add {m}, {m}, {stride}",
            "ldr s2, [{d}], #4",
            "fmul s1, s1, s2",
            "fadd s0, s0, s1",
            "subs {count}, {count}, #1",
            "b.ne 2b",
            "3:",
            "str s0, [{previous}], #4",
            "add {column}, {column}, #4",
            "subs {columns}, {columns}, #1",
            "b.ne 1b",
            "msr daif, {flags}",
            x = inout(reg) input.as_ptr() => _,
            previous = inout(reg) previous.as_mut_ptr() => _,
            column = inout(reg) weights.as_ptr() => _,
            columns = inout(reg) columns => _,
            delta = in(reg) delta.as_ptr(),
            rows = in(reg) rows,
            stride = in(reg) core::mem::size_of_val(input),
            m = out(reg) _,
            d = out(reg) _,
            count = out(reg) _,
            negative_zero = out(reg) _,
            flags = out(reg) _,
            options(nostack),
        );
    }
}

/// A layer's SGD step: `weights[o·n + i] −= rate·(delta[o]·input[i])` (n = `input.len()`) for each row with a
/// non-zero delta that `delta` and `weights` both hold, then `biases[o] −= rate·delta[o]` for each bias
/// `delta` covers.
pub fn layer_update(weights: &mut [f32], biases: &mut [f32], input: &[f32], delta: &[f32], rate: f32) {
    let n = input.len();
    let rows = weights.len().checked_div(n).map_or(0, |rows| rows.min(delta.len()));
    let bias_rows = biases.len().min(delta.len());
    // SAFETY: (1) row o reads delta[o] and reads and writes weights[o·n..(o + 1)·n]
    // for o < rows (rows ≤ delta.len(), rows·n ≤ weights.len()), reading all of
    // input; bias o reads delta[o] and reads and writes biases[o] for o <
    // bias_rows ≤ both lengths. `weights` and `biases` are borrowed mutably.
    // (2)–(4) as in [`layer_forward`], with s1–s4.
    unsafe {
        asm!(
            ".arch_extension fp",
            "mrs {flags}, daif",
            "msr daifset, #2",
            "fmov s4, {rate:w}",
            "mov {d}, {delta}",
            "cbz {rows}, 4f",
            "1:",
            "ldr s3, [{d}], #4",
            // A zero delta (either sign) leaves the row as it is.
            "fcmp s3, #0.0",
            "b.eq 3f",
            "mov {x}, {input}",
            "mov {wp}, {w}",
            "mov {count}, {n}",
            "2:",
            "ldr s1, [{x}], #4",
            "fmul s1, s3, s1",
            "fmul s1, s4, s1",
            "ldr s2, [{wp}]",
            "fsub s2, s2, s1",
            "str s2, [{wp}], #4",
            "subs {count}, {count}, #1",
            "b.ne 2b",
            "3:",
            "add {w}, {w}, {n}, lsl #2",
            "subs {rows}, {rows}, #1",
            "b.ne 1b",
            "4:",
            "cbz {bias_rows}, 6f",
            "mov {d}, {delta}",
            "5:",
            "ldr s3, [{d}], #4",
            "fmul s3, s4, s3",
            "ldr s2, [{b}]",
            "fsub s2, s2, s3",
            "str s2, [{b}], #4",
            "subs {bias_rows}, {bias_rows}, #1",
            "b.ne 5b",
            "6:",
            "msr daif, {flags}",
            w = inout(reg) weights.as_mut_ptr() => _,
            b = inout(reg) biases.as_mut_ptr() => _,
            rows = inout(reg) rows => _,
            bias_rows = inout(reg) bias_rows => _,
            input = in(reg) input.as_ptr(),
            delta = in(reg) delta.as_ptr(),
            n = in(reg) n,
            rate = in(reg) rate.to_bits(),
            d = out(reg) _,
            x = out(reg) _,
            wp = out(reg) _,
            count = out(reg) _,
            flags = out(reg) _,
            options(nostack),
        );
    }
}
