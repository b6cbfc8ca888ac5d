//! Shapes and strides: validation, broadcasting, and the walk over a tensor's storage in logical order.

use super::{TensorError, MAX_ELEMENTS, MAX_RANK};

/// A shape and the storage stride of each axis, in elements. Public layouts have 1 to [`MAX_RANK`] axes,
/// none of length 0, at most [`MAX_ELEMENTS`] elements; rank 0 is used inside, for the single walk over
/// no axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Layout {
    dims: [usize; MAX_RANK],
    strides: [usize; MAX_RANK],
    rank: usize,
}

impl Layout {
    /// The row-major layout of `shape`, validated: rank first, then empty axes, then size.
    pub(super) fn contiguous(shape: &[usize]) -> Result<Layout, TensorError> {
        if shape.is_empty() || shape.len() > MAX_RANK {
            return Err(TensorError::RankOutOfRange { rank: shape.len() });
        }
        if shape.contains(&0) {
            return Err(TensorError::EmptyDimension { shape: shape.to_vec() });
        }
        let too_large = || TensorError::TooLarge { shape: shape.to_vec() };
        let mut layout = Layout { dims: [1; MAX_RANK], strides: [1; MAX_RANK], rank: shape.len() };
        let mut elements = 1usize;
        for (axis, &length) in shape.iter().enumerate().rev() {
            layout.dims[axis] = length;
            layout.strides[axis] = elements;
            elements = elements.checked_mul(length).filter(|&count| count <= MAX_ELEMENTS).ok_or_else(too_large)?;
        }
        Ok(layout)
    }

    pub(super) fn shape(&self) -> &[usize] {
        &self.dims[..self.rank]
    }

    pub(super) fn strides(&self) -> &[usize] {
        &self.strides[..self.rank]
    }

    pub(super) fn rank(&self) -> usize {
        self.rank
    }

    /// Elements (1 for rank 0); validation keeps it at most [`MAX_ELEMENTS`].
    pub(super) fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// Whether the storage holds the elements in logical order from its start.
    pub(super) fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for axis in (0..self.rank).rev() {
            if self.dims[axis] != 1 && self.strides[axis] != expected {
                return false;
            }
            expected *= self.dims[axis];
        }
        true
    }

    /// The same storage with the axes in reverse order.
    pub(super) fn transposed(&self) -> Layout {
        let mut reversed = *self;
        reversed.dims[..self.rank].reverse();
        reversed.strides[..self.rank].reverse();
        reversed
    }

    /// This layout without `axis` (the caller checked it exists); rank 0 when it was the only axis.
    pub(super) fn without_axis(&self, axis: usize) -> Layout {
        let mut removed = Layout { dims: [1; MAX_RANK], strides: [1; MAX_RANK], rank: self.rank - 1 };
        let kept = (0..self.rank).filter(|&other| other != axis);
        for (slot, other) in kept.enumerate() {
            removed.dims[slot] = self.dims[other];
            removed.strides[slot] = self.strides[other];
        }
        removed
    }

    /// Storage offset of `index`, when it has one coordinate per axis, each in range.
    pub(super) fn offset_of(&self, index: &[usize]) -> Option<usize> {
        if index.len() != self.rank {
            return None;
        }
        let mut offset = 0;
        for ((&coordinate, &length), &stride) in index.iter().zip(self.shape()).zip(self.strides()) {
            if coordinate >= length {
                return None;
            }
            offset += coordinate * stride;
        }
        Some(offset)
    }

    /// Storage offsets of the elements in logical (row-major) order.
    pub(super) fn offsets(&self) -> Offsets {
        Offsets { layout: *self, index: [0; MAX_RANK], offset: 0, remaining: self.len() }
    }

    /// This operand's layout stretched to `shape` (which [`broadcast`] made from it): its axes aligned to the
    /// last, missing and length-1 axes read with stride 0.
    pub(super) fn broadcast_to(&self, shape: &Layout) -> Layout {
        let mut stretched = Layout { dims: shape.dims, strides: [0; MAX_RANK], rank: shape.rank };
        let skipped = shape.rank - self.rank;
        for axis in 0..self.rank {
            if self.dims[axis] != 1 {
                stretched.strides[skipped + axis] = self.strides[axis];
            }
        }
        stretched
    }
}

/// The shape two operands broadcast to (numpy's rule: align the last axes; each pair of lengths is equal or
/// one of them is 1, which stretches; a missing axis counts as 1), validated as a tensor shape.
pub(super) fn broadcast(left: &Layout, right: &Layout) -> Result<Layout, TensorError> {
    let rank = left.rank.max(right.rank);
    let mut shape = [1; MAX_RANK];
    for from_last in 1..=rank {
        let length = |layout: &Layout| layout.rank.checked_sub(from_last).map_or(1, |axis| layout.dims[axis]);
        let (left_length, right_length) = (length(left), length(right));
        shape[rank - from_last] = match (left_length, right_length) {
            _ if left_length == right_length => left_length,
            (1, other) | (other, 1) => other,
            _ => return Err(mismatch(left, right)),
        };
    }
    Layout::contiguous(&shape[..rank])
}

fn mismatch(left: &Layout, right: &Layout) -> TensorError {
    TensorError::ShapeMismatch { left: left.shape().to_vec(), right: right.shape().to_vec() }
}

/// Walks a layout's storage offsets in logical order, like an odometer: the last axis turns fastest.
#[derive(Debug)]
pub(super) struct Offsets {
    layout: Layout,
    index: [usize; MAX_RANK],
    offset: usize,
    remaining: usize,
}

impl Iterator for Offsets {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        self.remaining = self.remaining.checked_sub(1)?;
        let current = self.offset;
        for axis in (0..self.layout.rank).rev() {
            self.index[axis] += 1;
            self.offset += self.layout.strides[axis];
            if self.index[axis] < self.layout.dims[axis] {
                break;
            }
            self.offset -= self.layout.strides[axis] * self.layout.dims[axis];
            self.index[axis] = 0;
        }
        Some(current)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Offsets {}
