//! The tests' reference: row-major vectors and the operations written as plain index loops from their
//! definitions, sharing no code with the tensor implementation.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use super::{Budget, Tensor};

/// A row-major tensor.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Reference {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Reference {
    pub fn new(shape: &[usize], data: Vec<f32>) -> Reference {
        assert_eq!(shape.iter().product::<usize>(), data.len());
        Reference { shape: shape.to_vec(), data }
    }

    /// The tensor holding these values; `transposed` builds it as the transpose view of a tensor of the
    /// reversed shape, so that it is strided.
    pub fn tensor(&self, budget: &Arc<Budget>, transposed: bool) -> Tensor {
        if transposed {
            let base = self.transpose();
            Tensor::from_vec(budget, &base.shape, base.data).unwrap().transpose().unwrap()
        } else {
            Tensor::from_vec(budget, &self.shape, self.data.clone()).unwrap()
        }
    }

    fn at(&self, index: &[usize]) -> f32 {
        self.data[flatten(index, &self.shape)]
    }

    pub fn map(&self, operation: impl Fn(f32) -> f32) -> Reference {
        Reference { shape: self.shape.clone(), data: self.data.iter().map(|&x| operation(x)).collect() }
    }

    /// numpy broadcasting: `None` when the shapes do not broadcast.
    pub fn zip_with(&self, other: &Reference, operation: impl Fn(f32, f32) -> f32) -> Option<Reference> {
        let rank = self.shape.len().max(other.shape.len());
        let padded = |shape: &[usize]| [vec![1; rank - shape.len()], shape.to_vec()].concat();
        let (left_shape, right_shape) = (padded(&self.shape), padded(&other.shape));
        let mut shape = Vec::new();
        for (&l, &r) in left_shape.iter().zip(&right_shape) {
            shape.push(if l == r || r == 1 {
                l
            } else if l == 1 {
                r
            } else {
                return None;
            });
        }
        let count = shape.iter().product();
        let data = (0..count)
            .map(|flat| {
                let index = unflatten(flat, &shape);
                let pick = |lengths: &[usize]| -> Vec<usize> {
                    index.iter().zip(lengths).map(|(&i, &n)| if n == 1 { 0 } else { i }).collect()
                };
                let left = self.data[flatten(&pick(&left_shape), &left_shape)];
                let right = other.data[flatten(&pick(&right_shape), &right_shape)];
                operation(left, right)
            })
            .collect();
        Some(Reference { shape, data })
    }

    /// The triple loop: from +0.0, `k` ascending, `acc = acc + a * b`.
    pub fn matmul(&self, other: &Reference) -> Reference {
        let (m, k, n) = (self.shape[0], self.shape[1], other.shape[1]);
        assert_eq!(other.shape[0], k);
        let mut data = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0f32;
                for p in 0..k {
                    acc += self.data[i * k + p] * other.data[p * n + j];
                }
                data[i * n + j] = acc;
            }
        }
        Reference { shape: vec![m, n], data }
    }

    pub fn softmax(&self) -> Reference {
        let width = *self.shape.last().unwrap();
        let mut data = Vec::new();
        for row in self.data.chunks(width) {
            let mut max = row[0];
            for &x in &row[1..] {
                if x > max {
                    max = x;
                }
            }
            let exps: Vec<f32> = row.iter().map(|&x| libm::expf(x - max)).collect();
            let mut sum = 0.0f32;
            for &e in &exps {
                sum += e;
            }
            data.extend(exps.iter().map(|&e| e / sum));
        }
        Reference { shape: self.shape.clone(), data }
    }

    /// Sum (or mean when `mean`) of all elements, or along `axis`.
    pub fn reduce(&self, axis: Option<usize>, mean: bool) -> Reference {
        let finish = |sum: f32, count: usize| if mean { sum / count as f32 } else { sum };
        let Some(axis) = axis else {
            let mut sum = 0.0f32;
            for &x in &self.data {
                sum += x;
            }
            return Reference { shape: vec![1], data: vec![finish(sum, self.data.len())] };
        };
        let mut shape = self.shape.clone();
        let length = shape.remove(axis);
        let count = shape.iter().product();
        let data = (0..count)
            .map(|flat| {
                let mut index = unflatten(flat, &shape);
                index.insert(axis, 0);
                let mut sum = 0.0f32;
                for j in 0..length {
                    index[axis] = j;
                    sum += self.at(&index);
                }
                finish(sum, length)
            })
            .collect();
        if shape.is_empty() {
            shape.push(1);
        }
        Reference { shape, data }
    }

    /// The axes reversed: `out[i_0, …, i_r] = self[i_r, …, i_0]`.
    pub fn transpose(&self) -> Reference {
        let shape: Vec<usize> = self.shape.iter().rev().copied().collect();
        let data = (0..self.data.len())
            .map(|flat| {
                let index: Vec<usize> = unflatten(flat, &shape).into_iter().rev().collect();
                self.at(&index)
            })
            .collect();
        Reference { shape, data }
    }
}

fn flatten(index: &[usize], shape: &[usize]) -> usize {
    index.iter().zip(shape).fold(0, |flat, (&i, &n)| flat * n + i)
}

fn unflatten(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (slot, &n) in index.iter_mut().zip(shape).rev() {
        *slot = flat % n;
        flat /= n;
    }
    index
}

/// Same bits, or both NaN (a NaN's payload is not specified).
pub(super) fn same(left: f32, right: f32) -> bool {
    left.to_bits() == right.to_bits() || (left.is_nan() && right.is_nan())
}

/// Asserts `tensor` has the reference's shape and, element by element, its bits.
pub(super) fn assert_matches(tensor: &Tensor, reference: &Reference) {
    assert_eq!(tensor.shape(), &reference.shape[..]);
    let values = tensor.to_vec();
    assert_eq!(values.len(), reference.data.len());
    for (position, (&got, &expected)) in values.iter().zip(&reference.data).enumerate() {
        assert!(
            same(got, expected),
            "element {position}: {got:e} ({:#010x}), expected {expected:e} ({:#010x})",
            got.to_bits(),
            expected.to_bits()
        );
    }
}
