//! f32 layer loops on the FPU, for the learning agents' network.
//!
//! The kernel is built for the softfloat target: the compiler never emits an
//! FP/SIMD instruction, and every f32 operation is a library call of about 40
//! instructions. The three loops over a layer where the network spends its
//! time (forward pass, backpropagation, SGD step; `sis_ai::VectorUnit` defines
//! them) run on the FPU and its vector unit instead, in inline assembly
//! (`.arch_extension fp, simd`), one call per layer, a group of four rows in
//! the four lanes of a vector:
//!
//! - Each call runs with IRQs masked, so no context switch or interrupt
//!   handler runs in the middle of it. It keeps nothing in FP/SIMD registers
//!   between calls, and no other code uses them (the compiler cannot), so the
//!   kernel still needs no FP context switch.
//! - Each lane of each instruction is one correctly rounded IEEE 754 operation
//!   (`fmul`, `fadd`, `fsub`; never the fused `fmla`), in the order of the Rust loops
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

/// Rows per group of a layer's weights (`sis_ai::LANES`): one 128-bit vector of f32.
const LANES: usize = 4;

/// Whole groups of `group` values that `len` values hold (any number when `group` is 0).
fn whole_groups(len: usize, group: usize) -> usize {
    len.checked_div(group).unwrap_or(usize::MAX)
}

/// A layer's forward pass over the whole groups of rows that `output`, `biases` and `weights` all hold: row
/// `o` of group g gets `Σ_i weights[(g·n + i)·4 + o % 4]·input[i] + biases[o]` (n = `input.len()`, summed in
/// order from −0.0, then the bias), through ReLU (`x > 0 ? x : +0`) when `relu`. A group's four rows are the
/// four lanes of one vector: one `fmul` and one `fadd` per input.
pub fn layer_forward(weights: &[f32], biases: &[f32], input: &[f32], output: &mut [f32], relu: bool) {
    let n = input.len();
    let groups = (output.len() / LANES).min(biases.len() / LANES).min(whole_groups(weights.len(), LANES * n));
    if groups == 0 {
        return;
    }
    // SAFETY: (1) group g reads weights[g·4n..(g + 1)·4n], all of input and
    // biases[4g..4g + 4] and writes output[4g..4g + 4], for g < groups, which
    // every slice holds (4·groups ≤ output and bias lengths, 4n·groups ≤
    // weights.len()). (2) It writes only registers: v0–v5 (which the compiler
    // never allocates on this target, so clobbering them is invisible to it)
    // and the declared operands. (3) IRQs are masked from before the first
    // FP/SIMD instruction to after the last and DAIF is restored as it was, so
    // nothing else runs while v0–v5 are live. (4) FP/SIMD is enabled at boot
    // ([`enable`]).
    unsafe {
        asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "mrs {flags}, daif",
            "msr daifset, #2",
            // −0.0 in every lane: where each row's sum starts.
            "movi v5.4s, #0x80, lsl #24",
            "1:",
            "mov v0.16b, v5.16b",
            "mov {x}, {input}",
            "cbz {n}, 3f",
            "mov {count}, {n}",
            "2:",
            "ld1r {{v2.4s}}, [{x}], #4",
            "ld1 {{v1.4s}}, [{w}], #16",
            "fmul v1.4s, v1.4s, v2.4s",
            "fadd v0.4s, v0.4s, v1.4s",
            "subs {count}, {count}, #1",
            "b.ne 2b",
            "3:",
            "ld1 {{v1.4s}}, [{b}], #16",
            "fadd v0.4s, v0.4s, v1.4s",
            // ReLU: keep the lanes that compare greater than zero (not ±0 or NaN), +0 elsewhere.
            "cbz {relu}, 4f",
            "fcmgt v1.4s, v0.4s, #0.0",
            "and v0.16b, v0.16b, v1.16b",
            "4:",
            "st1 {{v0.4s}}, [{out}], #16",
            "subs {groups}, {groups}, #1",
            "b.ne 1b",
            "msr daif, {flags}",
            w = inout(reg) weights.as_ptr() => _,
            b = inout(reg) biases.as_ptr() => _,
            out = inout(reg) output.as_mut_ptr() => _,
            groups = inout(reg) groups => _,
            input = in(reg) input.as_ptr(),
            n = in(reg) n,
            relu = in(reg) relu as u64,
            x = out(reg) _,
            count = out(reg) _,
            flags = out(reg) _,
            options(nostack),
        );
    }
}

/// Backpropagation through a layer: for each column `i` that `previous` and `input` both hold, when
/// `input[i] > 0`, `previous[i] = Σ_o weights[(o / 4·n + i)·4 + o % 4]·delta[o]` (n = `input.len()`) summed in
/// order from −0.0 over the rows of the whole groups `delta` and `weights` both hold; else +0. Four
/// columns at a time: `ld4` splits a group's 4×4 block of weights into its rows, and each row, times its
/// delta, is added to the four columns' sums in one vector `fmul` and `fadd`; the last columns one by one.
pub fn layer_backward(weights: &[f32], delta: &[f32], input: &[f32], previous: &mut [f32]) {
    let n = input.len();
    let columns = n.min(previous.len());
    if columns == 0 {
        return;
    }
    let groups = (delta.len() / LANES).min(weights.len() / (LANES * n));
    let (blocks, tail) = (columns / LANES, columns % LANES);
    // SAFETY: (1) column i reads input[i] and writes previous[i] (i < columns ≤
    // both lengths; a block covers columns 4k..4k + 4 ≤ columns); for g <
    // groups it reads the weights at (g·n + i)·4..(g·n + i)·4 + 4, below
    // 4n·groups ≤ weights.len(), and delta[4g..4g + 4], within 4·groups ≤
    // delta.len(). (2)–(4) as in [`layer_forward`], with v0–v7.
    unsafe {
        asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "mrs {flags}, daif",
            "msr daifset, #2",
            "cbz {blocks}, 5f",
            // Four columns: their sums in v6, from −0.0.
            "1:",
            "movi v6.4s, #0x80, lsl #24",
            "cbz {groups}, 3f",
            "mov {m}, {column}",
            "mov {d}, {delta}",
            "mov {count}, {groups}",
            "2:",
            "ld4 {{v0.4s, v1.4s, v2.4s, v3.4s}}, [{m}]",
            "add {m}, {m}, {group_stride}",
            "ld1 {{v4.4s}}, [{d}], #16",
            "fmul v5.4s, v0.4s, v4.s[0]",
            "fadd v6.4s, v6.4s, v5.4s",
            "fmul v5.4s, v1.4s, v4.s[1]",
            "fadd v6.4s, v6.4s, v5.4s",
            "fmul v5.4s, v2.4s, v4.s[2]",
            "fadd v6.4s, v6.4s, v5.4s",
            "fmul v5.4s, v3.4s, v4.s[3]",
            "fadd v6.4s, v6.4s, v5.4s",
            "subs {count}, {count}, #1",
            "b.ne 2b",
            "3:",
            // Columns whose input is not greater than zero (±0, negative or NaN): +0.
            "ld1 {{v7.4s}}, [{x}], #16",
            "fcmgt v7.4s, v7.4s, #0.0",
            "and v6.16b, v6.16b, v7.16b",
            "st1 {{v6.4s}}, [{previous}], #16",
            "add {column}, {column}, #64",
            "subs {blocks}, {blocks}, #1",
            "b.ne 1b",
            // The remaining columns, one at a time: a group's four products in one `fmul`, added lane by lane.
            "5:",
            "cbz {tail}, 9f",
            "mov {negative_zero:w}, #0x80000000",
            "6:",
            "ldr s1, [{x}], #4",
            "fmov s0, wzr",
            "fcmp s1, #0.0",
            "b.le 8f",
            "fmov s0, {negative_zero:w}",
            "cbz {groups}, 8f",
            "mov {m}, {column}",
            "mov {d}, {delta}",
            "mov {count}, {groups}",
            "7:",
            "ld1 {{v1.4s}}, [{m}]",
            "add {m}, {m}, {group_stride}",
            "ld1 {{v2.4s}}, [{d}], #16",
            "fmul v1.4s, v1.4s, v2.4s",
            "fadd s0, s0, s1",
            "mov s2, v1.s[1]",
            "fadd s0, s0, s2",
            "mov s2, v1.s[2]",
            "fadd s0, s0, s2",
            "mov s2, v1.s[3]",
            "fadd s0, s0, s2",
            "subs {count}, {count}, #1",
            "b.ne 7b",
            "8:",
            "str s0, [{previous}], #4",
            "add {column}, {column}, #16",
            "subs {tail}, {tail}, #1",
            "b.ne 6b",
            "9:",
            "msr daif, {flags}",
            x = inout(reg) input.as_ptr() => _,
            previous = inout(reg) previous.as_mut_ptr() => _,
            column = inout(reg) weights.as_ptr() => _,
            blocks = inout(reg) blocks => _,
            tail = inout(reg) tail => _,
            delta = in(reg) delta.as_ptr(),
            groups = in(reg) groups,
            group_stride = in(reg) LANES * core::mem::size_of_val(input),
            m = out(reg) _,
            d = out(reg) _,
            count = out(reg) _,
            negative_zero = out(reg) _,
            flags = out(reg) _,
            options(nostack),
        );
    }
}

/// A layer's SGD step over the rows of the whole groups that `weights`, `biases` and `delta` all hold:
/// `weights[(o / 4·n + i)·4 + o % 4] −= rate·(delta[o]·input[i])` (n = `input.len()`) for each row with a
/// non-zero delta (the lanes of the others keep their old weights), and `biases[o] −= rate·delta[o]`.
pub fn layer_update(weights: &mut [f32], biases: &mut [f32], input: &[f32], delta: &[f32], rate: f32) {
    let n = input.len();
    let groups = (delta.len() / LANES).min(biases.len() / LANES).min(whole_groups(weights.len(), LANES * n));
    if groups == 0 {
        return;
    }
    // SAFETY: (1) group g reads delta[4g..4g + 4], reads and writes
    // weights[g·4n..(g + 1)·4n] and biases[4g..4g + 4] and reads all of input,
    // for g < groups, which every slice holds. `weights` and `biases` are
    // borrowed mutably. (2)–(4) as in [`layer_forward`], with v0–v6.
    unsafe {
        asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "mrs {flags}, daif",
            "msr daifset, #2",
            "dup v4.4s, {rate:w}",
            "1:",
            "ld1 {{v3.4s}}, [{d}], #16",
            // Lanes whose delta is zero (either sign) keep their weights.
            "fcmeq v6.4s, v3.4s, #0.0",
            "cbz {n}, 3f",
            "mov {x}, {input}",
            "mov {count}, {n}",
            "2:",
            "ld1r {{v2.4s}}, [{x}], #4",
            "fmul v1.4s, v3.4s, v2.4s",
            "fmul v1.4s, v4.4s, v1.4s",
            "ld1 {{v0.4s}}, [{w}]",
            "fsub v5.4s, v0.4s, v1.4s",
            "bit v5.16b, v0.16b, v6.16b",
            "st1 {{v5.4s}}, [{w}], #16",
            "subs {count}, {count}, #1",
            "b.ne 2b",
            "3:",
            "ld1 {{v0.4s}}, [{b}]",
            "fmul v1.4s, v4.4s, v3.4s",
            "fsub v0.4s, v0.4s, v1.4s",
            "st1 {{v0.4s}}, [{b}], #16",
            "subs {groups}, {groups}, #1",
            "b.ne 1b",
            "msr daif, {flags}",
            w = inout(reg) weights.as_mut_ptr() => _,
            b = inout(reg) biases.as_mut_ptr() => _,
            d = inout(reg) delta.as_ptr() => _,
            groups = inout(reg) groups => _,
            input = in(reg) input.as_ptr(),
            n = in(reg) n,
            rate = in(reg) rate.to_bits(),
            x = out(reg) _,
            count = out(reg) _,
            flags = out(reg) _,
            options(nostack),
        );
    }
}
