//! The network's inner loops, and a way to run them on faster hardware that computes the same bits.
//!
//! Forward passes and SGD steps spend their time in three loops: a row's dot
//! product plus its bias, a column's dot product (backpropagating a delta),
//! and a row's update. By default they run as plain Rust ([`SOFTWARE`]). The
//! kernel, built for the softfloat target, installs loops that run on the FPU
//! ([`install_vector_unit`]); a unit is accepted only if it gives exactly the
//! software's bits on a seeded set of vectors (normal, subnormal, signed-zero
//! and cancelling values, empty and ragged slices), so installing one never
//! changes what an agent learns, only how long it takes.

use core::fmt;

use crate::Random;

/// A row's dot product plus a bias: `Σ a[i]·b[i] + bias` over the shorter slice, summed in order.
pub type DotPlus = fn(&[f32], &[f32], f32) -> f32;
/// `Σ matrix[o·stride + column]·b[o]` over the rows `matrix` has and `b` covers, summed in order.
pub type ColumnDot = fn(&[f32], usize, usize, &[f32]) -> f32;
/// `row[i] -= rate · (scale · x[i])` over the shorter slice.
pub type SubtractScaled = fn(&mut [f32], &[f32], f32, f32);

/// The three loops, and a name for reports.
#[derive(Clone, Copy)]
pub struct VectorUnit {
    /// Shown by `neuralctl status`.
    pub name: &'static str,
    /// See [`DotPlus`].
    pub dot_plus: DotPlus,
    /// See [`ColumnDot`].
    pub column_dot: ColumnDot,
    /// See [`SubtractScaled`].
    pub subtract_scaled: SubtractScaled,
}

impl fmt::Debug for VectorUnit {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("VectorUnit").field("name", &self.name).finish_non_exhaustive()
    }
}

/// The loops in plain Rust: the definition every other unit must match bit for bit.
pub const SOFTWARE: VectorUnit = VectorUnit {
    name: "software",
    dot_plus: software_dot_plus,
    column_dot: software_column_dot,
    subtract_scaled: software_subtract_scaled,
};

fn software_dot_plus(a: &[f32], b: &[f32], bias: f32) -> f32 {
    a.iter().zip(b).map(|(w, x)| w * x).sum::<f32>() + bias
}

fn software_column_dot(matrix: &[f32], stride: usize, column: usize, b: &[f32]) -> f32 {
    let from_column = if column < stride { matrix.get(column..).unwrap_or(&[]) } else { &[] };
    from_column.iter().step_by(stride.max(1)).zip(b).map(|(w, d)| w * d).sum()
}

fn software_subtract_scaled(row: &mut [f32], x: &[f32], scale: f32, rate: f32) {
    for (w, x) in row.iter_mut().zip(x) {
        *w -= rate * (scale * x);
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
        /// The software's result bits (for `subtract_scaled`, of the first differing element).
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

/// Runs `unit`'s loops against [`SOFTWARE`] on [`CHECK_CASES`] seeded cases; the first difference is the error.
pub fn check_vector_unit(unit: &VectorUnit) -> Result<(), VectorUnitError> {
    let mut random = Random::new(0x5645_4354_4f52);
    let mut a = alloc::vec::Vec::new();
    let mut b = alloc::vec::Vec::new();
    for case in 0..CHECK_CASES {
        let (length_a, length_b) = (random.below(40) as usize, random.below(40) as usize);
        a.clear();
        a.extend((0..length_a).map(|_| check_value(&mut random)));
        b.clear();
        b.extend((0..length_b).map(|_| check_value(&mut random)));
        let (scale, rate) = (check_value(&mut random), check_value(&mut random));
        let differs = |function, expected: f32, got: f32| VectorUnitError::Differs {
            function,
            case,
            expected: expected.to_bits(),
            got: got.to_bits(),
        };

        let (expected, got) = ((SOFTWARE.dot_plus)(&a, &b, scale), (unit.dot_plus)(&a, &b, scale));
        if !same(expected, got) {
            return Err(differs("dot_plus", expected, got));
        }
        let stride = random.below(8) as usize;
        let column = random.below(9) as usize;
        let (expected, got) =
            ((SOFTWARE.column_dot)(&a, stride, column, &b), (unit.column_dot)(&a, stride, column, &b));
        if !same(expected, got) {
            return Err(differs("column_dot", expected, got));
        }
        let mut expected_row = a.clone();
        let mut row = a.clone();
        (SOFTWARE.subtract_scaled)(&mut expected_row, &b, scale, rate);
        (unit.subtract_scaled)(&mut row, &b, scale, rate);
        if let Some((expected, got)) = expected_row.iter().zip(&row).find(|(expected, got)| !same(**expected, **got)) {
            return Err(differs("subtract_scaled", *expected, *got));
        }
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

    fn reversed_dot_plus(a: &[f32], b: &[f32], bias: f32) -> f32 {
        a.iter().zip(b).rev().map(|(w, x)| w * x).sum::<f32>() + bias
    }

    fn fused_subtract_scaled(row: &mut [f32], x: &[f32], scale: f32, rate: f32) {
        for (w, x) in row.iter_mut().zip(x) {
            *w = (-rate * scale).mul_add(*x, *w);
        }
    }

    fn positive_zero_column_dot(matrix: &[f32], stride: usize, column: usize, b: &[f32]) -> f32 {
        0.0 + software_column_dot(matrix, stride, column, b)
    }

    #[test]
    fn a_unit_that_sums_in_another_order_or_fuses_or_drops_a_zero_sign_is_refused() {
        let reordered = VectorUnit { name: "reordered", dot_plus: reversed_dot_plus, ..SOFTWARE };
        assert!(matches!(check_vector_unit(&reordered), Err(VectorUnitError::Differs { function: "dot_plus", .. })));
        let fused = VectorUnit { name: "fused", subtract_scaled: fused_subtract_scaled, ..SOFTWARE };
        assert!(matches!(check_vector_unit(&fused), Err(VectorUnitError::Differs { function: "subtract_scaled", .. })));
        let unsigned = VectorUnit { name: "unsigned", column_dot: positive_zero_column_dot, ..SOFTWARE };
        assert!(matches!(check_vector_unit(&unsigned), Err(VectorUnitError::Differs { function: "column_dot", .. })));
    }

    #[test]
    fn the_software_column_is_the_strided_sum_and_stops_at_the_matrix() {
        let matrix = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        assert_eq!(software_column_dot(&matrix, 3, 1, &[1.0, 10.0, 100.0]), 2.0 + 50.0);
        assert_eq!(software_column_dot(&matrix, 3, 0, &[1.0, 10.0, 100.0]), 1.0 + 40.0 + 700.0);
        assert_eq!(software_column_dot(&matrix, 3, 3, &[1.0]).to_bits(), (-0.0f32).to_bits());
        assert_eq!(software_column_dot(&matrix, 0, 0, &[1.0]).to_bits(), (-0.0f32).to_bits());
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
