//! f32 tensors with shape and strides whose bytes are charged to a [`Budget`]; every operation is defined
//! down to the order of its additions, so its result equals a plain reference loop bit for bit.
//!
//! - A tensor has 1 to [`MAX_RANK`] axes, each of length at least 1 (a 0-length axis is refused with
//!   [`TensorError::EmptyDimension`]), and at most [`MAX_ELEMENTS`] elements. Sizes are computed with
//!   checked arithmetic, so any shape, however large, gets a typed error and never a panic.
//! - Its storage (elements × 4 bytes) is charged to a budget before it is allocated and released when the
//!   last tensor using it is dropped. A result is charged to the budget of `self`. A refused operation
//!   leaves the budget as it was (a refusal by the budget is counted): shapes are checked first, then
//!   everything the operation needs is charged at once.
//! - Tensors are immutable, so [`Tensor::transpose`] and the [`Tensor::reshape`] of a contiguous tensor are
//!   views sharing the storage (charged once); a reshape of a non-contiguous tensor copies.
//! - Arithmetic is plain IEEE f32 (`+`, `-`, `*`, `/`, never fused) and [`libm::expf`], the same routines on
//!   the host and in the softfloat kernel. Sums start from +0.0 and add in ascending index order. A NaN
//!   result is a NaN, but which NaN (its payload) may differ between platforms.
//! - [`Tensor::matmul`] runs on the installed [`sis_ai::VectorUnit`] (the FPU in the kernel), whose layer
//!   loop gives the reference loop's bits; `matmul.rs` shows why.

#[cfg(test)]
mod accounting;
mod budget;
mod error;
mod layout;
mod matmul;
mod ops;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

pub use budget::{Budget, BudgetStats, Reservation};
pub use error::TensorError;
use layout::Layout;

/// The most axes a tensor has.
pub const MAX_RANK: usize = 4;
/// The most elements one tensor holds (16 MiB of data); a larger shape is [`TensorError::TooLarge`].
pub const MAX_ELEMENTS: usize = 1 << 22;

/// An f32 tensor: a shape, the stride of each axis in its storage, and the storage, charged to a budget.
///
/// Not `Clone`, since a copy is charged: see [`Tensor::try_clone`].
pub struct Tensor {
    storage: Arc<Storage>,
    layout: Layout,
}

/// Elements shared by a tensor and its views, and the charge that pays for them.
struct Storage {
    data: Vec<f32>,
    reservation: Reservation,
}

impl Tensor {
    /// A tensor of +0.0.
    pub fn zeros(budget: &Arc<Budget>, shape: &[usize]) -> Result<Tensor, TensorError> {
        Tensor::full(budget, shape, 0.0)
    }

    /// A tensor with every element `value`.
    pub fn full(budget: &Arc<Budget>, shape: &[usize], value: f32) -> Result<Tensor, TensorError> {
        let layout = Layout::contiguous(shape)?;
        Tensor::build(budget, layout, |data| data.resize(layout.len(), value))
    }

    /// A tensor holding `data` in row-major order; `data.len()` must be the shape's element count.
    pub fn from_vec(budget: &Arc<Budget>, shape: &[usize], data: Vec<f32>) -> Result<Tensor, TensorError> {
        let layout = Layout::contiguous(shape)?;
        if data.len() != layout.len() {
            return Err(TensorError::LengthMismatch { shape: shape.to_vec(), length: data.len() });
        }
        let reservation = budget.reserve(bytes_of(layout.len()))?;
        Ok(Tensor::with_storage(data, reservation, layout))
    }

    /// Uniform values in [-1, 1), the same on every platform for a seed. The generator is splitmix64 with
    /// state `seed`: per element, `state += 0x9e37_79b9_7f4a_7c15`, `z = (state ^ state >> 30) *
    /// 0xbf58_476d_1ce4_e5b9`, `z = (z ^ z >> 27) * 0x94d0_49bb_1331_11eb`, `z ^= z >> 31` (wrapping); the
    /// element is `(z >> 40) as f32 * 2^-23 - 1.0`, exact: a multiple of 2^-23.
    pub fn random(budget: &Arc<Budget>, shape: &[usize], seed: u64) -> Result<Tensor, TensorError> {
        let layout = Layout::contiguous(shape)?;
        let mut state = seed;
        Tensor::build(budget, layout, |data| {
            data.extend((0..layout.len()).map(|_| {
                let bits = splitmix64(&mut state) >> 40;
                bits as f32 * (1.0 / (1u32 << 23) as f32) - 1.0
            }))
        })
    }

    /// Element `i` (row-major) is `start + (i as f32) * step`.
    pub fn arange(budget: &Arc<Budget>, shape: &[usize], start: f32, step: f32) -> Result<Tensor, TensorError> {
        let layout = Layout::contiguous(shape)?;
        Tensor::build(budget, layout, |data| data.extend((0..layout.len()).map(|i| start + i as f32 * step)))
    }

    /// The length of each axis.
    pub fn shape(&self) -> &[usize] {
        self.layout.shape()
    }

    /// How many storage elements apart neighbours along each axis are (row-major unless a view).
    pub fn strides(&self) -> &[usize] {
        self.layout.strides()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.layout.len()
    }

    /// Always false: every axis has length at least 1.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The size of the elements, 4 bytes each (a view's storage is charged once, by the tensor that made it).
    pub fn bytes(&self) -> u64 {
        bytes_of(self.len())
    }

    /// Whether the storage holds the elements in row-major order (false for most transposed views).
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// The elements in logical row-major order, whatever the strides. The vector is not charged to the budget.
    pub fn to_vec(&self) -> Vec<f32> {
        self.values().collect()
    }

    /// The element at `index` (one coordinate per axis), or `None` when out of range.
    pub fn get(&self, index: &[usize]) -> Option<f32> {
        self.storage.data.get(self.layout.offset_of(index)?).copied()
    }

    /// A contiguous copy, charged to the same budget.
    pub fn try_clone(&self) -> Result<Tensor, TensorError> {
        self.build_like(self.layout.shape(), |data| data.extend(self.values()))
    }

    /// The same elements in row-major order under `shape` (same element count): a view sharing the storage
    /// when this tensor is contiguous, else a contiguous copy charged to the budget.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor, TensorError> {
        let layout = Layout::contiguous(shape)?;
        if layout.len() != self.len() {
            return Err(TensorError::ReshapeMismatch { from: self.shape().to_vec(), to: shape.to_vec() });
        }
        if self.is_contiguous() {
            return Ok(self.view(layout));
        }
        self.build_like(shape, |data| data.extend(self.values()))
    }

    /// The axes in reverse order (a matrix's transpose): always a view sharing the storage, charging nothing
    /// and counted as a live tensor; its strides are this tensor's reversed.
    pub fn transpose(&self) -> Result<Tensor, TensorError> {
        Ok(self.view(self.layout.transposed()))
    }

    /// FNV-1a 64 over each element's `to_bits()` as 4 little-endian bytes, in logical order.
    pub fn checksum(&self) -> u64 {
        const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0100_0000_01b3;
        self.values()
            .flat_map(|value| value.to_bits().to_le_bytes())
            .fold(OFFSET_BASIS, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(PRIME))
    }

    /// The budget this tensor's storage is charged to.
    pub fn budget(&self) -> &Arc<Budget> {
        self.storage.reservation.budget()
    }

    /// The elements in logical order.
    fn values(&self) -> impl Iterator<Item = f32> + '_ {
        let data = &self.storage.data;
        self.layout.offsets().map(move |offset| data[offset])
    }

    /// A new tensor of `shape` on this tensor's budget, its elements pushed by `fill`.
    fn build_like(&self, shape: &[usize], fill: impl FnOnce(&mut Vec<f32>)) -> Result<Tensor, TensorError> {
        Tensor::build(self.budget(), Layout::contiguous(shape)?, fill)
    }

    /// Charges `layout`'s bytes, then allocates and fills the storage.
    fn build(budget: &Arc<Budget>, layout: Layout, fill: impl FnOnce(&mut Vec<f32>)) -> Result<Tensor, TensorError> {
        let reservation = budget.reserve(bytes_of(layout.len()))?;
        Tensor::build_reserved(reservation, layout, fill)
    }

    /// Allocates (without panicking when the heap refuses) and fills the storage that `reservation` pays for.
    fn build_reserved(
        reservation: Reservation,
        layout: Layout,
        fill: impl FnOnce(&mut Vec<f32>),
    ) -> Result<Tensor, TensorError> {
        let mut data = Vec::new();
        data.try_reserve_exact(layout.len()).map_err(|_| TensorError::OutOfMemory { bytes: reservation.bytes() })?;
        fill(&mut data);
        debug_assert_eq!(data.len(), layout.len());
        Ok(Tensor::with_storage(data, reservation, layout))
    }

    fn with_storage(data: Vec<f32>, reservation: Reservation, layout: Layout) -> Tensor {
        reservation.budget().tensor_created(true);
        Tensor { storage: Arc::new(Storage { data, reservation }), layout }
    }

    fn view(&self, layout: Layout) -> Tensor {
        self.budget().tensor_created(false);
        Tensor { storage: Arc::clone(&self.storage), layout }
    }
}

impl Drop for Tensor {
    fn drop(&mut self) {
        self.budget().tensor_dropped();
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Tensor")
            .field("shape", &self.shape())
            .field("strides", &self.strides())
            .field("values", &Head(self))
            .finish()
    }
}

/// The first values of a tensor, for `Debug`.
struct Head<'a>(&'a Tensor);

impl fmt::Debug for Head<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8;
        formatter.debug_list().entries(self.0.values().take(SHOWN)).finish()?;
        match self.0.len().checked_sub(SHOWN) {
            Some(more) if more > 0 => write!(formatter, " and {more} more"),
            _ => Ok(()),
        }
    }
}

/// Bytes of `elements` f32 values; at most [`MAX_ELEMENTS`], so the product fits.
fn bytes_of(elements: usize) -> u64 {
    elements as u64 * 4
}

/// One step of splitmix64 (Steele, Lea and Flood; the constants of Vigna's reference code).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
