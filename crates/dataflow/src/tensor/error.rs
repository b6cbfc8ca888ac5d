//! Why a tensor was not made: a bad shape, a shape that does not fit the operation, or no memory for it.

use alloc::vec::Vec;
use core::fmt;

use super::{MAX_ELEMENTS, MAX_RANK};

/// A refused tensor operation; nothing was charged to the budget (a refusal is only counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TensorError {
    /// A shape with no axes or more than [`MAX_RANK`].
    RankOutOfRange {
        /// The number of axes asked for.
        rank: usize,
    },
    /// A shape with an axis of length 0 (tensors always hold at least one element).
    EmptyDimension {
        /// The shape asked for.
        shape: Vec<usize>,
    },
    /// A shape of more than [`MAX_ELEMENTS`] elements (or one whose count overflows).
    TooLarge {
        /// The shape asked for.
        shape: Vec<usize>,
    },
    /// `from_vec` got a number of values other than the shape's element count.
    LengthMismatch {
        /// The shape asked for.
        shape: Vec<usize>,
        /// How many values came.
        length: usize,
    },
    /// Two shapes that do not broadcast (an axis differs and neither length is 1).
    ShapeMismatch {
        /// The left operand's shape.
        left: Vec<usize>,
        /// The right operand's shape.
        right: Vec<usize>,
    },
    /// `matmul` on an operand that does not have exactly two axes.
    NotAMatrix {
        /// That operand's shape.
        shape: Vec<usize>,
    },
    /// `matmul` of `[m, k]` by `[k2, n]` with `k != k2`.
    InnerDimensionMismatch {
        /// The left operand's shape.
        left: Vec<usize>,
        /// The right operand's shape.
        right: Vec<usize>,
    },
    /// `reshape` to a shape with another element count.
    ReshapeMismatch {
        /// The tensor's shape.
        from: Vec<usize>,
        /// The shape asked for.
        to: Vec<usize>,
    },
    /// An axis at or past the tensor's rank.
    InvalidAxis {
        /// The axis asked for.
        axis: usize,
        /// The tensor's number of axes.
        rank: usize,
    },
    /// The budget has fewer bytes left than the operation needs.
    BudgetExceeded {
        /// Bytes the operation needed.
        requested_bytes: u64,
        /// Bytes the budget had left.
        available_bytes: u64,
    },
    /// The budget allowed the bytes but the heap could not provide them; they were released again (the
    /// budget's peak keeps them).
    OutOfMemory {
        /// Bytes asked of the heap.
        bytes: u64,
    },
}

impl TensorError {
    /// A stable kebab-case code for programs (the shell's `error.code`).
    pub fn code(&self) -> &'static str {
        match self {
            TensorError::RankOutOfRange { .. } => "rank-out-of-range",
            TensorError::EmptyDimension { .. } => "empty-dimension",
            TensorError::TooLarge { .. } => "too-large",
            TensorError::LengthMismatch { .. } => "length-mismatch",
            TensorError::ShapeMismatch { .. } => "shape-mismatch",
            TensorError::NotAMatrix { .. } => "not-a-matrix",
            TensorError::InnerDimensionMismatch { .. } => "inner-dimension-mismatch",
            TensorError::ReshapeMismatch { .. } => "reshape-mismatch",
            TensorError::InvalidAxis { .. } => "invalid-axis",
            TensorError::BudgetExceeded { .. } => "budget-exceeded",
            TensorError::OutOfMemory { .. } => "out-of-memory",
        }
    }
}

impl fmt::Display for TensorError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TensorError::RankOutOfRange { rank } => {
                write!(formatter, "a tensor has 1 to {MAX_RANK} axes; this shape has {rank}")
            }
            TensorError::EmptyDimension { shape } => {
                write!(formatter, "shape {shape:?} has an axis of length 0; every axis needs at least 1")
            }
            TensorError::TooLarge { shape } => {
                write!(formatter, "shape {shape:?} has more than the {MAX_ELEMENTS} elements a tensor may hold")
            }
            TensorError::LengthMismatch { shape, length } => {
                write!(formatter, "shape {shape:?} needs {} values, got {length}", Elements(shape))
            }
            TensorError::ShapeMismatch { left, right } => write!(
                formatter,
                "shapes {left:?} and {right:?} do not broadcast: aligned from the last axis, each pair of lengths \
                 must be equal or one of them 1"
            ),
            TensorError::NotAMatrix { shape } => {
                write!(formatter, "matmul needs two matrices (2 axes each); one operand has shape {shape:?}")
            }
            TensorError::InnerDimensionMismatch { left, right } => {
                write!(formatter, "matmul of {left:?} by {right:?}: the left's columns must equal the right's rows")
            }
            TensorError::ReshapeMismatch { from, to } => write!(
                formatter,
                "cannot reshape {from:?} ({} elements) to {to:?} ({} elements)",
                Elements(from),
                Elements(to)
            ),
            TensorError::InvalidAxis { axis, rank } => {
                write!(formatter, "axis {axis} does not exist in a tensor of {rank} axes")
            }
            TensorError::BudgetExceeded { requested_bytes, available_bytes } => write!(
                formatter,
                "the tensor budget has {available_bytes} bytes left; this operation needs {requested_bytes}"
            ),
            TensorError::OutOfMemory { bytes } => {
                write!(formatter, "the heap could not provide {bytes} bytes for a tensor")
            }
        }
    }
}

/// A shape's element count for messages: the errors are public, so a shape need not have been validated.
struct Elements<'a>(&'a [usize]);

impl fmt::Display for Elements<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.iter().try_fold(1usize, |product, &length| product.checked_mul(length)) {
            Some(count) => write!(formatter, "{count}"),
            None => formatter.write_str("more than usize::MAX"),
        }
    }
}
