//! Elementwise arithmetic with broadcasting, ReLU, softmax and sum/mean reductions.

use super::layout::{broadcast, Layout};
use super::{Tensor, TensorError};

impl Tensor {
    /// `self + other` elementwise, the shapes broadcast by numpy's rules.
    pub fn add(&self, other: &Tensor) -> Result<Tensor, TensorError> {
        self.zip_with(other, |left, right| left + right)
    }

    /// `self - other` elementwise, the shapes broadcast by numpy's rules.
    pub fn sub(&self, other: &Tensor) -> Result<Tensor, TensorError> {
        self.zip_with(other, |left, right| left - right)
    }

    /// `self * other` elementwise, the shapes broadcast by numpy's rules.
    pub fn mul(&self, other: &Tensor) -> Result<Tensor, TensorError> {
        self.zip_with(other, |left, right| left * right)
    }

    /// `x + value` for every element.
    pub fn add_scalar(&self, value: f32) -> Result<Tensor, TensorError> {
        self.map(|x| x + value)
    }

    /// `x * value` for every element.
    pub fn mul_scalar(&self, value: f32) -> Result<Tensor, TensorError> {
        self.map(|x| x * value)
    }

    /// `x` where `x > 0`, else +0.0 (so −0.0 and NaN give +0.0, as in the kernel's networks).
    pub fn relu(&self) -> Result<Tensor, TensorError> {
        // `x > 0` on the bits: positive subnormals up to +∞ are 1..=0x7f80_0000; one integer comparison
        // instead of a software float comparison.
        self.map(|x| if x.to_bits().wrapping_sub(1) < 0x7f80_0000 { x } else { 0.0 })
    }

    /// Softmax over the last axis. For each row: `max` is its first element, replaced by each later one
    /// that is `> max`; `e_i = libm::expf(x_i - max)`; `sum = 0.0 + e_0 + e_1 + …` in order; the result
    /// is `e_i / sum`.
    pub fn softmax(&self) -> Result<Tensor, TensorError> {
        let rank = self.layout.rank();
        let row_length = self.shape()[rank - 1];
        let row_stride = self.strides()[rank - 1];
        let data = &self.storage.data;
        self.build_like(self.shape(), |output| {
            for base in self.layout.without_axis(rank - 1).offsets() {
                let row = (0..row_length).map(|j| data[base + j * row_stride]);
                let max = row.clone().fold(data[base], |max, x| if x > max { x } else { max });
                let start = output.len();
                let mut sum = 0.0f32;
                for x in row {
                    let e = libm::expf(x - max);
                    sum += e;
                    output.push(e);
                }
                for e in &mut output[start..] {
                    *e /= sum;
                }
            }
        })
    }

    /// Sum from +0.0 in ascending index order. `None`: of all elements, in logical order, giving shape
    /// `[1]`. `Some(axis)`: along that axis, which is removed from the shape (shape `[1]` when it was the
    /// only one).
    pub fn sum(&self, axis: Option<usize>) -> Result<Tensor, TensorError> {
        self.reduce(axis, |sum, _| sum)
    }

    /// The [`Tensor::sum`] divided by the number of elements summed (`sum / (count as f32)`, exact count).
    pub fn mean(&self, axis: Option<usize>) -> Result<Tensor, TensorError> {
        self.reduce(axis, |sum, count| sum / count as f32)
    }

    /// Sums as [`Tensor::sum`] describes, each passed with its count through `finish`.
    fn reduce(&self, axis: Option<usize>, finish: impl Fn(f32, usize) -> f32) -> Result<Tensor, TensorError> {
        let data = &self.storage.data;
        let Some(axis) = axis else {
            let sum = self.values().fold(0.0f32, |sum, x| sum + x);
            return self.build_like(&[1], |output| output.push(finish(sum, self.len())));
        };
        let rank = self.layout.rank();
        if axis >= rank {
            return Err(TensorError::InvalidAxis { axis, rank });
        }
        let kept = self.layout.without_axis(axis);
        let (length, stride) = (self.shape()[axis], self.strides()[axis]);
        let shape = if kept.rank() == 0 { &[1][..] } else { kept.shape() };
        self.build_like(shape, |output| {
            output.extend(kept.offsets().map(|base| {
                let sum = (0..length).fold(0.0f32, |sum, j| sum + data[base + j * stride]);
                finish(sum, length)
            }))
        })
    }

    /// `operation` on each element, into a contiguous tensor of the same shape.
    fn map(&self, operation: impl Fn(f32) -> f32) -> Result<Tensor, TensorError> {
        self.build_like(self.shape(), |output| output.extend(self.values().map(operation)))
    }

    /// `operation` on each pair of elements of the two operands broadcast to one shape.
    fn zip_with(&self, other: &Tensor, operation: impl Fn(f32, f32) -> f32) -> Result<Tensor, TensorError> {
        let shape: Layout = broadcast(&self.layout, &other.layout)?;
        let (left, right) = (&self.storage.data, &other.storage.data);
        let left_offsets = self.layout.broadcast_to(&shape).offsets();
        let right_offsets = other.layout.broadcast_to(&shape).offsets();
        self.build_like(shape.shape(), |output| {
            output.extend(left_offsets.zip(right_offsets).map(|(i, j)| operation(left[i], right[j])))
        })
    }
}
