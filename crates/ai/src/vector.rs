//! The network's layer loops, and a way to run them on faster hardware that computes the same bits.
//!
//! Forward passes and SGD steps spend their time in three loops over a
//! layer: the forward pass (each row's dot product plus its bias, through
//! ReLU), backpropagation of a delta (each column's dot product where the
//! input was positive) and the SGD step (each row's update, then the
//! biases'). By default they run as plain Rust ([`SOFTWARE`]). The kernel,
//! built for the softfloat target, installs loops that run on the FPU
//! ([`install_vector_unit`]); a unit is accepted only if it gives exactly the
//! software's bits on a seeded set of layers (normal, subnormal, signed-zero
//! and cancelling values, empty and ragged slices), so installing one never
//! changes what an agent learns, only how long it takes.
//!
//! A layer's weights are kept in groups of [`LANES`] rows, interleaved so that
//! the group's weights for one input lie together ([`weight_index`]): a vector
//! unit then computes a group's four rows in one instruction each. The last
//! group is padded with rows of zeros, as are the biases and the outputs.
//! Every loop works on the whole groups that every slice it is given holds:
//! nothing out of range is read or written, whatever the slices.

use alloc::vec::Vec;
use core::fmt;

use crate::Random;

/// Rows per group of a layer's weights.
pub const LANES: usize = 4;

/// Where weight (row `o`, input `i`) of a layer with `inputs` inputs lies: groups of [`LANES`] rows one after
/// another, and in a group, input by input, the rows' weights for that input side by side.
pub fn weight_index(inputs: usize, o: usize, i: usize) -> usize {
    (o / LANES * inputs + i) * LANES + o % LANES
}

/// A layer's forward pass (`weights`, `biases`, `input`, `output`, `relu`): for each row `o` of the whole
/// groups that `output`, `biases` and `weights` all hold, `output[o] = Σ_i w(o, i)·input[i] + biases[o]` with
/// w(o, i) = `weights[weight_index(n, o, i)]` and n = `input.len()`, summed in order from −0.0 then the bias
/// added, and through [`relu`] when `relu` is set.
pub type LayerForward = fn(&[f32], &[f32], &[f32], &mut [f32], bool);
/// Backpropagation through a layer (`weights`, `delta`, `input`, `previous`): for each column `i` of
/// `previous` (at most n = `input.len()`), `previous[i] = Σ_o w(o, i)·delta[o]` summed in order from −0.0 over
/// the rows of the whole groups `delta` and `weights` both hold, when `input[i] > 0`; else +0.
pub type LayerBackward = fn(&[f32], &[f32], &[f32], &mut [f32]);
/// A layer's SGD step (`weights`, `biases`, `input`, `delta`, `rate`), over the rows of the whole groups that
/// `weights`, `biases` and `delta` all hold: `w(o, i) −= rate·(delta[o]·input[i])` (n = `input.len()`) when
/// `delta[o]` is not zero (a zero delta leaves the row as it is), and `biases[o] −= rate·delta[o]`.
pub type LayerUpdate = fn(&mut [f32], &mut [f32], &[f32], &[f32], f32);

/// The three loops, and a name for reports.
#[derive(Clone, Copy)]
pub struct VectorUnit {
    /// Shown by `neuralctl status`.
    pub name: &'static str,
    /// See [`LayerForward`].
    pub forward: LayerForward,
    /// See [`LayerBackward`].
    pub backward: LayerBackward,
    /// See [`LayerUpdate`].
    pub update: LayerUpdate,
}

impl fmt::Debug for VectorUnit {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("VectorUnit").field("name", &self.name).finish_non_exhaustive()
    }
}

/// The loops in plain Rust: the definition every other unit must match bit for bit.
pub const SOFTWARE: VectorUnit =
    VectorUnit { name: "software", forward: software_forward, backward: software_backward, update: software_update };

/// `x > 0.0`, on the bits: one integer comparison instead of a software float comparison
/// (positive subnormals up to +∞ are the bit patterns 1..=0x7f80_0000; zeros and NaNs are not).
pub fn is_positive(x: f32) -> bool {
    x.to_bits().wrapping_sub(1) < 0x7f80_0000
}

/// `x == 0.0` (either sign), on the bits.
pub fn is_zero(x: f32) -> bool {
    x.to_bits() << 1 == 0
}

/// The hidden layers' activation: `x` when `x > 0`, else +0 (NaN included).
pub fn relu(x: f32) -> f32 {
    if is_positive(x) {
        x
    } else {
        0.0
    }
}

/// Whole groups of `group` values that `len` values hold (any number when `group` is 0).
fn whole_groups(len: usize, group: usize) -> usize {
    len.checked_div(group).unwrap_or(usize::MAX)
}

/// Row `o`'s weights of a layer with `n` inputs, input by input (every [`LANES`]th value from its first).
fn row(weights: &[f32], n: usize, o: usize) -> impl Iterator<Item = &f32> {
    weights.get(weight_index(n, o, 0)..).unwrap_or(&[]).iter().step_by(LANES).take(n)
}

fn software_forward(weights: &[f32], biases: &[f32], input: &[f32], output: &mut [f32], activate: bool) {
    let n = input.len();
    let groups = (output.len() / LANES).min(biases.len() / LANES).min(whole_groups(weights.len(), LANES * n));
    for (o, value) in output.iter_mut().enumerate().take(groups * LANES) {
        let sum = row(weights, n, o).zip(input).map(|(w, x)| w * x).sum::<f32>() + biases[o];
        *value = if activate { relu(sum) } else { sum };
    }
}

fn software_backward(weights: &[f32], delta: &[f32], input: &[f32], previous: &mut [f32]) {
    let n = input.len();
    let rows = LANES * (delta.len() / LANES).min(whole_groups(weights.len(), LANES * n));
    for (i, value) in previous.iter_mut().enumerate().take(n) {
        *value = if is_positive(input[i]) {
            (0..rows).map(|o| weights[weight_index(n, o, i)] * delta[o]).sum()
        } else {
            0.0
        };
    }
}

fn software_update(weights: &mut [f32], biases: &mut [f32], input: &[f32], delta: &[f32], rate: f32) {
    let n = input.len();
    let groups = (delta.len() / LANES).min(biases.len() / LANES).min(whole_groups(weights.len(), LANES * n));
    for (o, &d) in delta.iter().enumerate().take(groups * LANES) {
        if !is_zero(d) {
            let row = weights.get_mut(weight_index(n, o, 0)..).unwrap_or(&mut []);
            for (w, x) in row.iter_mut().step_by(LANES).zip(input) {
                *w -= rate * (d * x);
            }
        }
        biases[o] -= rate * d;
    }
}

static INSTALLED: spin::Once<VectorUnit> = spin::Once::new();

/// The unit every network uses: the installed one, else [`SOFTWARE`].
pub fn vector_unit() -> &'static VectorUnit {
    INSTALLED.get().unwrap_or(&SOFTWARE)
}

/// Why a unit was not installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorUnitError {
    /// One of its loops gave other bits than the software's.
    Differs {
        /// Which loop.
        function: &'static str,
        /// The check case (0-based) where it differed.
        case: u32,
        /// The software's result bits, of the first element that differs.
        expected: u32,
        /// The unit's.
        got: u32,
    },
    /// A unit is installed already (only once, so no network ever sees two).
    AlreadyInstalled(&'static str),
}

impl fmt::Display for VectorUnitError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VectorUnitError::Differs { function, case, expected, got } => write!(
                formatter,
                "{function} differs from the software loop in check case {case}: {got:#010x}, expected {expected:#010x}"
            ),
            VectorUnitError::AlreadyInstalled(name) => write!(formatter, "vector unit {name} is installed already"),
        }
    }
}

/// Check cases run by [`check_vector_unit`].
pub const CHECK_CASES: u32 = 256;

/// A finite f32 drawn to cover what the network meets and the corners of the arithmetic: mostly values in
/// 2^-8..2^4, then subnormals, signed zeros and values just above 1 that cancel. Built from bits, so the
/// check at boot spends its software floating point on the loops it checks.
fn check_value(random: &mut Random) -> f32 {
    let sign = if random.below(2) == 0 { 0 } else { 1 << 31 };
    let magnitude = match random.below(16) {
        0 => random.below(1 << 23) as u32,
        1 => 0,
        // 1 + k ulp, k < 4.
        2 => 1f32.to_bits() + random.below(4) as u32,
        _ => ((random.below(12) as u32 + 119) << 23) | random.below(1 << 23) as u32,
    };
    f32::from_bits(sign | magnitude)
}

/// Same bits, NaN with any NaN.
fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// A slice length near `length`: mostly exact, sometimes up to 5 short or long (ragged slices).
fn ragged(random: &mut Random, length: usize) -> usize {
    match random.below(8) {
        0 => length.saturating_sub(1 + random.below(5) as usize),
        1 => length + 1 + random.below(5) as usize,
        _ => length,
    }
}

/// `length` check values.
fn values(random: &mut Random, length: usize) -> Vec<f32> {
    (0..length).map(|_| check_value(random)).collect()
}

/// Check values for a slice of about `length` elements ([`ragged`]).
fn ragged_values(random: &mut Random, length: usize) -> Vec<f32> {
    let length = ragged(random, length);
    values(random, length)
}

/// The first element where `got` differs from `expected`, as an error naming `function`.
fn compare(function: &'static str, case: u32, expected: &[f32], got: &[f32]) -> Result<(), VectorUnitError> {
    match expected.iter().zip(got).find(|(expected, got)| !same(**expected, **got)) {
        None => Ok(()),
        Some((expected, got)) => {
            Err(VectorUnitError::Differs { function, case, expected: expected.to_bits(), got: got.to_bits() })
        }
    }
}

/// Runs `unit`'s loops against [`SOFTWARE`] on [`CHECK_CASES`] seeded layers of up to 9 inputs (two
/// blocks of four columns and every remainder) and 3 groups of rows, with slices of ragged lengths; the
/// first difference is the error. It runs at boot, its software side in software floating point: about
/// 3.4 million instructions (27 ms of deterministic guest time).
pub fn check_vector_unit(unit: &VectorUnit) -> Result<(), VectorUnitError> {
    let mut random = Random::new(0x5645_4354_4f52);
    for case in 0..CHECK_CASES {
        let (inputs, outputs) = (random.below(10) as usize, LANES * random.below(4) as usize);
        let weights = ragged_values(&mut random, inputs * outputs);
        let biases = ragged_values(&mut random, outputs);
        let input = values(&mut random, inputs);
        let delta = ragged_values(&mut random, outputs);
        let rate = check_value(&mut random);
        let activate = random.below(2) == 0;

        let mut expected = ragged_values(&mut random, outputs);
        let mut got = expected.clone();
        (SOFTWARE.forward)(&weights, &biases, &input, &mut expected, activate);
        (unit.forward)(&weights, &biases, &input, &mut got, activate);
        compare("forward", case, &expected, &got)?;

        let mut expected = ragged_values(&mut random, inputs);
        let mut got = expected.clone();
        (SOFTWARE.backward)(&weights, &delta, &input, &mut expected);
        (unit.backward)(&weights, &delta, &input, &mut got);
        compare("backward", case, &expected, &got)?;

        let (mut expected_weights, mut expected_biases) = (weights.clone(), biases.clone());
        let (mut got_weights, mut got_biases) = (weights, biases);
        (SOFTWARE.update)(&mut expected_weights, &mut expected_biases, &input, &delta, rate);
        (unit.update)(&mut got_weights, &mut got_biases, &input, &delta, rate);
        compare("update", case, &expected_weights, &got_weights)?;
        compare("update", case, &expected_biases, &got_biases)?;
    }
    Ok(())
}

/// Makes `unit` the loops of every network, once, after [`check_vector_unit`] found it exact.
pub fn install_vector_unit(unit: VectorUnit) -> Result<(), VectorUnitError> {
    if let Some(installed) = INSTALLED.get() {
        return Err(VectorUnitError::AlreadyInstalled(installed.name));
    }
    check_vector_unit(&unit)?;
    INSTALLED.call_once(|| unit);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_software_unit_passes_its_own_check() {
        assert_eq!(check_vector_unit(&SOFTWARE), Ok(()));
    }

    fn reversed_forward(weights: &[f32], biases: &[f32], input: &[f32], output: &mut [f32], activate: bool) {
        let n = input.len();
        let groups = (output.len() / LANES).min(biases.len() / LANES).min(whole_groups(weights.len(), LANES * n));
        for (o, value) in output.iter_mut().enumerate().take(groups * LANES) {
            let sum = (0..n).rev().map(|i| weights[weight_index(n, o, i)] * input[i]).sum::<f32>() + biases[o];
            *value = if activate { relu(sum) } else { sum };
        }
    }

    fn fused_update(weights: &mut [f32], biases: &mut [f32], input: &[f32], delta: &[f32], rate: f32) {
        let n = input.len();
        let groups = (delta.len() / LANES).min(biases.len() / LANES).min(whole_groups(weights.len(), LANES * n));
        for (o, &d) in delta.iter().enumerate().take(groups * LANES) {
            for (i, x) in input.iter().enumerate() {
                let w = &mut weights[weight_index(n, o, i)];
                *w = (-rate * d).mul_add(*x, *w);
            }
            biases[o] -= rate * d;
        }
    }

    fn positive_zero_backward(weights: &[f32], delta: &[f32], input: &[f32], previous: &mut [f32]) {
        software_backward(weights, delta, input, previous);
        for value in previous.iter_mut().take(input.len()) {
            *value += 0.0;
        }
    }

    #[test]
    fn a_unit_that_sums_in_another_order_or_fuses_or_drops_a_zero_sign_is_refused() {
        let reordered = VectorUnit { name: "reordered", forward: reversed_forward, ..SOFTWARE };
        assert!(matches!(check_vector_unit(&reordered), Err(VectorUnitError::Differs { function: "forward", .. })));
        let fused = VectorUnit { name: "fused", update: fused_update, ..SOFTWARE };
        assert!(matches!(check_vector_unit(&fused), Err(VectorUnitError::Differs { function: "update", .. })));
        let unsigned = VectorUnit { name: "unsigned", backward: positive_zero_backward, ..SOFTWARE };
        assert!(matches!(check_vector_unit(&unsigned), Err(VectorUnitError::Differs { function: "backward", .. })));
    }

    /// A layer of `rows` rows (a multiple of [`LANES`]) and `inputs` inputs laid out from row-major `weights`.
    fn grouped(rows: usize, inputs: usize, weights: &[f32]) -> Vec<f32> {
        let mut laid_out = alloc::vec![0.0; rows * inputs];
        for o in 0..rows {
            for i in 0..inputs {
                laid_out[weight_index(inputs, o, i)] = weights[o * inputs + i];
            }
        }
        laid_out
    }

    #[test]
    fn weights_lie_in_groups_of_rows_input_by_input() {
        // Six rows of two inputs: rows 0–3 in the first group, 4 and 5 in the second.
        let indexes: Vec<usize> = (0..6).flat_map(|o| (0..2).map(move |i| weight_index(2, o, i))).collect();
        assert_eq!(indexes, [0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13]);
    }

    #[test]
    fn the_software_loops_compute_the_layer_over_whole_groups() {
        // Four rows of three inputs, row-major: row o is [3o + 1, 3o + 2, 3o + 3].
        let weights = grouped(4, 3, &(1..=12).map(|w| w as f32).collect::<Vec<_>>());
        let input = [1.0, 10.0, -100.0];
        let biases = [0.5, -0.5, 1.0, 0.0];
        let mut output = [9.0; 5];
        software_forward(&weights, &biases, &input, &mut output, false);
        assert_eq!(
            output,
            [1.0 + 20.0 - 300.0 + 0.5, 4.0 + 50.0 - 600.0 - 0.5, 7.0 + 80.0 - 900.0 + 1.0, 10.0 + 110.0 - 1200.0, 9.0]
        );
        software_forward(&weights, &biases, &input, &mut output, true);
        assert_eq!(output.map(f32::to_bits), [0, 0, 0, 0, 9f32.to_bits()]);
        // Three biases: not a whole group, nothing computed.
        let mut untouched = [9.0; 4];
        software_forward(&weights, &biases[..3], &input, &mut untouched, false);
        assert_eq!(untouched, [9.0; 4]);

        let mut previous = [9.0; 4];
        software_backward(&weights, &[1.0, 10.0, 100.0, 0.0], &input, &mut previous);
        assert_eq!(previous, [1.0 + 40.0 + 700.0 + 0.0, 2.0 + 50.0 + 800.0 + 0.0, 0.0, 9.0]);
        assert_eq!(previous[2].to_bits(), 0, "a negative input gives +0");

        let (mut weights, mut biases) = (grouped(4, 3, &[1.0; 12]), [0.0, 1.0, 2.0, 3.0]);
        software_update(&mut weights, &mut biases, &[1.0, 2.0, 4.0], &[0.0, 2.0, 0.0, -0.0], 0.5);
        let row = |o: usize| (0..3).map(|i| weights[weight_index(3, o, i)]).collect::<Vec<_>>();
        assert_eq!(
            [row(0), row(1), row(2), row(3)],
            [[1.0; 3].to_vec(), alloc::vec![0.0, -1.0, -3.0], [1.0; 3].to_vec(), [1.0; 3].to_vec()]
        );
        assert_eq!(biases, [0.0, 0.0, 2.0, 3.0]);

        let mut empty = [9.0];
        software_forward(&[], &[3.0, 0.0, 0.0, 0.0], &[], &mut [9.0; 4], false);
        software_backward(&[], &[1.0; 4], &[2.0], &mut empty);
        assert_eq!(empty.map(f32::to_bits), [(-0.0f32).to_bits()], "no whole group: the empty sum");
    }

    #[test]
    fn the_bit_predicates_are_the_float_comparisons() {
        let mut random = Random::new(5);
        let special =
            [0.0, -0.0, f32::MIN_POSITIVE, -f32::MIN_POSITIVE, f32::from_bits(1), f32::from_bits(0x8000_0001)];
        let more = [f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -f32::NAN, f32::MAX, 1.0, -1.0];
        let random_bits = (0..100_000).map(|_| f32::from_bits(random.below(1 << 32) as u32));
        for x in special.into_iter().chain(more).chain(random_bits) {
            assert_eq!(is_positive(x), x > 0.0, "{x:e} ({:#010x})", x.to_bits());
            assert_eq!(is_zero(x), x == 0.0, "{x:e}");
            assert_eq!(relu(x).to_bits(), if x > 0.0 { x.to_bits() } else { 0 }, "{x:e}");
        }
    }

    #[test]
    fn installing_twice_is_refused_and_the_first_unit_stays() {
        let fast = VectorUnit { name: "copy", ..SOFTWARE };
        assert_eq!(install_vector_unit(fast), Ok(()));
        assert_eq!(vector_unit().name, "copy");
        assert_eq!(install_vector_unit(SOFTWARE), Err(VectorUnitError::AlreadyInstalled("copy")));
        assert_eq!(vector_unit().name, "copy");
    }
}
