//! Matrix product, computed by the installed vector unit (the FPU in the kernel) with the reference's bits.
//!
//! The definition is the plain loop: `c[i][j] = acc` where `acc` starts at +0.0 and, for `k` ascending,
//! `acc = acc + a[i][k] * b[k][j]` (rounded after the product and after the sum, never fused).
//!
//! [`sis_ai::vector_unit`]'s layer forward pass computes, for each row `o` of a weight matrix,
//! `(−0.0 + w(o, 0)·x[0] + w(o, 1)·x[1] + …) + bias[o]`, in that order, bit-identical on every unit. With
//! `w(j, k) = b[k][j]`, `x = a[i]` and zero biases that is `c[i]`, bit for bit:
//! - the products are the same (IEEE multiplication commutes);
//! - a sum that starts at −0.0 equals one that starts at +0.0 as soon as a term is not −0.0, since
//!   `±0.0 + t = t` for every other `t`; when every term is −0.0 it stays −0.0 where the reference's is +0.0;
//! - the reference's sum is never −0.0 (from +0.0, round-to-nearest gives −0.0 only for −0.0 + −0.0), so
//!   adding a +0.0 bias leaves it unchanged, and turns the all-−0.0 case's −0.0 into the reference's +0.0.

use alloc::vec::Vec;

use sis_ai::{vector_unit, weight_index, LANES};

use super::layout::Layout;
use super::{bytes_of, Tensor, TensorError};

impl Tensor {
    /// The matrix product of `[m, k]` by `[k, n]`, shape `[m, n]`, as the plain loop above computes it.
    ///
    /// While it runs it also charges its scratch: `b` repacked for the vector unit (`n` rounded up to a
    /// multiple of 4, times `k`), a row of `a`, and the unit's bias and output rows; all of it is charged
    /// with the result in one charge, so a refusal leaves the budget as it was.
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor, TensorError> {
        let (&[rows, inner], &[other_inner, columns]) = (self.shape(), other.shape()) else {
            let not_matrix = if self.layout.rank() != 2 { self } else { other };
            return Err(TensorError::NotAMatrix { shape: not_matrix.shape().to_vec() });
        };
        if inner != other_inner {
            return Err(TensorError::InnerDimensionMismatch {
                left: self.shape().to_vec(),
                right: other.shape().to_vec(),
            });
        }
        let layout = Layout::contiguous(&[rows, columns])?;
        // `columns` and `inner` are lengths of a valid tensor (at most MAX_ELEMENTS each, product included),
        // so none of this overflows; checked anyway, as it is cheap.
        let too_large = || TensorError::TooLarge { shape: [rows, columns].to_vec() };
        let padded_columns = columns.div_ceil(LANES).checked_mul(LANES).ok_or_else(too_large)?;
        let packed_length = padded_columns.checked_mul(inner).ok_or_else(too_large)?;
        let scratch_elements = packed_length
            .checked_add(2 * padded_columns)
            .and_then(|elements| elements.checked_add(inner))
            .ok_or_else(too_large)?;
        let scratch_bytes = bytes_of(scratch_elements);
        let total_bytes = bytes_of(layout.len()).checked_add(scratch_bytes).ok_or_else(too_large)?;

        let mut reservation = self.budget().reserve(total_bytes)?;
        let scratch = reservation.split_off(scratch_bytes);
        let out_of_memory = || TensorError::OutOfMemory { bytes: scratch.bytes() };
        let mut packed = try_zeros(packed_length).ok_or_else(out_of_memory)?;
        let mut row = try_zeros(inner).ok_or_else(out_of_memory)?;
        let mut output_row = try_zeros(padded_columns).ok_or_else(out_of_memory)?;
        let biases = try_zeros(padded_columns).ok_or_else(out_of_memory)?;

        let (left, right) = (&self.storage.data, &other.storage.data);
        let (left_strides, right_strides) = (self.strides(), other.strides());
        for k in 0..inner {
            for j in 0..columns {
                packed[weight_index(inner, j, k)] = right[k * right_strides[0] + j * right_strides[1]];
            }
        }
        let forward = vector_unit().forward;
        // The buffers drop before `scratch` (declared first), so the budget never counts less than is held.
        Tensor::build_reserved(reservation, layout, |output| {
            for i in 0..rows {
                for (k, value) in row.iter_mut().enumerate() {
                    *value = left[i * left_strides[0] + k * left_strides[1]];
                }
                forward(&packed, &biases, &row, &mut output_row, false);
                output.extend_from_slice(&output_row[..columns]);
            }
        })
    }
}

/// `length` values of +0.0, or `None` when the heap refuses.
fn try_zeros(length: usize) -> Option<Vec<f32>> {
    let mut values = Vec::new();
    values.try_reserve_exact(length).ok()?;
    values.resize(length, 0.0);
    Some(values)
}
