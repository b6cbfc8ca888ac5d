//! Worked examples: constructors, views, each operation against hand-computed values, errors and the budget.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::reference::{assert_matches, Reference};
use super::*;

fn budget() -> Arc<Budget> {
    Budget::new(1 << 20)
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|value| value.to_bits()).collect()
}

#[test]
fn constructors_fill_row_major_with_contiguous_strides() {
    let budget = budget();
    let zeros = Tensor::zeros(&budget, &[2, 3, 4]).unwrap();
    assert_eq!((zeros.shape(), zeros.strides(), zeros.len(), zeros.bytes()), (&[2, 3, 4][..], &[12, 4, 1][..], 24, 96));
    assert!(!zeros.is_empty() && zeros.is_contiguous());
    assert_eq!(bits(&zeros.to_vec()), vec![0; 24]);
    assert_eq!(Tensor::full(&budget, &[2], -1.5).unwrap().to_vec(), [-1.5, -1.5]);
    let arange = Tensor::arange(&budget, &[3], 0.5, 0.25).unwrap();
    assert_eq!(arange.to_vec(), [0.5, 0.75, 1.0]);
    let matrix = Tensor::from_vec(&budget, &[2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    assert_eq!((matrix.get(&[1, 0]), matrix.get(&[0, 1])), (Some(3.0), Some(2.0)));
    assert_eq!((matrix.get(&[2, 0]), matrix.get(&[0]), matrix.get(&[0, 0, 0])), (None, None, None));
}

#[test]
fn random_is_splitmix64_top_24_bits_scaled_to_minus_one_to_one() {
    let budget = budget();
    // splitmix64 from seed 0 gives 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f (Vigna's
    // reference outputs); the top 24 bits are 14819496, 7239838, 443485, minus 2^23 = 8388608.
    let values = Tensor::random(&budget, &[3], 0).unwrap().to_vec();
    let expected = [6_430_888.0, -1_148_770.0, -7_945_123.0].map(|steps: f32| steps / 8_388_608.0);
    assert_eq!(bits(&values), bits(&expected));
    let again = Tensor::random(&budget, &[4, 4], 7).unwrap();
    assert_eq!(again.checksum(), Tensor::random(&budget, &[16], 7).unwrap().checksum());
    assert_ne!(again.checksum(), Tensor::random(&budget, &[4, 4], 8).unwrap().checksum());
    let range = Tensor::random(&budget, &[4096], 1).unwrap().to_vec();
    assert!(range.iter().all(|&value| (-1.0..1.0).contains(&value)));
}

#[test]
fn checksum_is_fnv1a_64_over_little_endian_bits_in_logical_order() {
    let budget = budget();
    // Bytes 00 00 80 3f (1.0) then 00 00 00 80 (-0.0), folded from 0xcbf29ce484222325 by
    // `hash = (hash ^ byte) * 0x100000001b3`; worked out separately.
    let pair = Tensor::from_vec(&budget, &[2], vec![1.0, -0.0]).unwrap();
    assert_eq!(pair.checksum(), 0x0979_a9ee_2da1_bb98);
    // A view is hashed in its logical order, so it matches a copy of that order.
    let matrix = Tensor::arange(&budget, &[2, 3], 0.0, 1.0).unwrap();
    let transposed = Tensor::from_vec(&budget, &[3, 2], vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]).unwrap();
    assert_eq!(matrix.transpose().unwrap().checksum(), transposed.checksum());
    assert_ne!(matrix.checksum(), transposed.checksum());
}

#[test]
fn transpose_is_a_view_reshape_a_view_only_when_contiguous() {
    let budget = budget();
    let matrix = Tensor::arange(&budget, &[2, 3], 0.0, 1.0).unwrap();
    let transposed = matrix.transpose().unwrap();
    assert_eq!((transposed.shape(), transposed.strides()), (&[3, 2][..], &[1, 3][..]));
    assert!(!transposed.is_contiguous());
    assert_eq!(transposed.to_vec(), [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    assert_eq!(transposed.get(&[2, 1]), Some(5.0));
    let stats = budget.stats();
    assert_eq!((stats.used_bytes, stats.live_tensors, stats.allocations), (24, 2, 1));

    let flat_view = matrix.reshape(&[3, 2]).unwrap();
    assert_eq!((flat_view.to_vec(), budget.stats().used_bytes), (vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0], 24));
    let copied = transposed.reshape(&[6]).unwrap();
    assert!(copied.is_contiguous());
    assert_eq!(copied.to_vec(), [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    let stats = budget.stats();
    assert_eq!((stats.used_bytes, stats.live_tensors, stats.allocations), (48, 4, 2));

    // The storage stays charged while any view of it lives.
    drop(matrix);
    drop(flat_view);
    assert_eq!((budget.stats().used_bytes, budget.stats().live_tensors), (48, 2));
    drop(transposed);
    assert_eq!((budget.stats().used_bytes, budget.stats().live_tensors), (24, 1));

    // A length-1 axis does not break contiguity; a rank-1 transpose is the same tensor.
    let row = Tensor::arange(&budget, &[1, 3], 0.0, 1.0).unwrap().transpose().unwrap();
    assert_eq!((row.shape(), row.strides(), row.is_contiguous()), (&[3, 1][..], &[1, 3][..], true));
    assert_eq!(copied.transpose().unwrap().to_vec(), copied.to_vec());
    assert_eq!(copied.reshape(&[4]).unwrap_err(), TensorError::ReshapeMismatch { from: vec![6], to: vec![4] });
}

#[test]
fn elementwise_operations_broadcast_like_numpy() {
    let budget = budget();
    let matrix = Tensor::arange(&budget, &[2, 3], 1.0, 1.0).unwrap();
    let row = Tensor::from_vec(&budget, &[3], vec![10.0, 20.0, 30.0]).unwrap();
    let column = Tensor::from_vec(&budget, &[2, 1], vec![-1.0, 2.0]).unwrap();
    assert_eq!(matrix.add(&row).unwrap().to_vec(), [11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
    assert_eq!(row.sub(&matrix).unwrap().to_vec(), [9.0, 18.0, 27.0, 6.0, 15.0, 24.0]);
    assert_eq!(matrix.mul(&column).unwrap().to_vec(), [-1.0, -2.0, -3.0, 8.0, 10.0, 12.0]);
    let outer = column.mul(&row).unwrap();
    assert_eq!((outer.shape(), outer.to_vec()), (&[2, 3][..], vec![-10.0, -20.0, -30.0, 20.0, 40.0, 60.0]));
    assert_eq!(matrix.add_scalar(0.5).unwrap().to_vec(), [1.5, 2.5, 3.5, 4.5, 5.5, 6.5]);
    assert_eq!(matrix.mul_scalar(-2.0).unwrap().to_vec(), [-2.0, -4.0, -6.0, -8.0, -10.0, -12.0]);

    let specials = [-1.0, -0.0, 0.0, 2.5, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::from_bits(1)];
    let relu = Tensor::from_vec(&budget, &[8], specials.to_vec()).unwrap().relu().unwrap();
    assert_eq!(bits(&relu.to_vec()), bits(&[0.0, 0.0, 0.0, 2.5, 0.0, f32::INFINITY, 0.0, f32::from_bits(1)]));
}

#[test]
fn shapes_that_do_not_broadcast_are_refused_and_charge_nothing() {
    let budget = budget();
    let matrix = Tensor::zeros(&budget, &[2, 3]).unwrap();
    let four = Tensor::zeros(&budget, &[4]).unwrap();
    let column = Tensor::zeros(&budget, &[3, 1]).unwrap();
    let before = budget.stats();
    let error = matrix.add(&four).unwrap_err();
    assert_eq!(error, TensorError::ShapeMismatch { left: vec![2, 3], right: vec![4] });
    assert_eq!(error.code(), "shape-mismatch");
    assert_eq!(
        format!("{error}"),
        "shapes [2, 3] and [4] do not broadcast: aligned from the last axis, each pair of lengths must be \
         equal or one of them 1"
    );
    assert_eq!(column.mul(&matrix).unwrap_err(), TensorError::ShapeMismatch { left: vec![3, 1], right: vec![2, 3] });
    assert_eq!(budget.stats(), before);

    // Operands within the limit whose broadcast shape is too large.
    let big = Budget::new(u64::MAX);
    let tall = Tensor::zeros(&big, &[1 << 21, 1]).unwrap();
    let wide = Tensor::zeros(&big, &[1, 4]).unwrap();
    let before = big.stats();
    assert_eq!(tall.sub(&wide).unwrap_err(), TensorError::TooLarge { shape: vec![1 << 21, 4] });
    assert_eq!(big.stats(), before);
}

#[test]
fn matmul_is_the_triple_loop_from_positive_zero() {
    let budget = budget();
    let left = Tensor::arange(&budget, &[2, 3], 1.0, 1.0).unwrap();
    let right = Tensor::arange(&budget, &[3, 2], -1.0, 0.5).unwrap();
    // [[1 2 3] [4 5 6]] x [[-1 -0.5] [0 0.5] [1 1.5]]
    assert_eq!(left.matmul(&right).unwrap().to_vec(), [2.0, 5.0, 2.0, 9.5]);
    let product = right.transpose().unwrap().matmul(&left.transpose().unwrap()).unwrap();
    assert_eq!((product.shape(), product.to_vec()), (&[2, 2][..], vec![2.0, 2.0, 5.0, 9.5]));

    // Every product −0.0: the reference gives +0.0 (its sum starts there).
    let negative = Tensor::from_vec(&budget, &[1, 2], vec![-1.0, 0.0]).unwrap();
    let zeros = Tensor::from_vec(&budget, &[2, 1], vec![0.0, -0.0]).unwrap();
    assert_eq!(bits(&negative.matmul(&zeros).unwrap().to_vec()), [0]);
    // The vector unit's sum starts from −0.0: it is the +0.0 bias that makes it agree.
    let mut output = [1.0; LANES_FOR_TEST];
    let weights = [-0.0; LANES_FOR_TEST];
    (sis_ai::SOFTWARE.forward)(&weights, &[-0.0; LANES_FOR_TEST], &[1.0], &mut output, false);
    assert_eq!(output[0].to_bits(), (-0.0f32).to_bits());
    (sis_ai::SOFTWARE.forward)(&weights, &[0.0; LANES_FOR_TEST], &[1.0], &mut output, false);
    assert_eq!(output[0].to_bits(), 0);
}

const LANES_FOR_TEST: usize = sis_ai::LANES;

#[test]
fn matmul_refuses_non_matrices_and_mismatched_inner_dimensions() {
    let budget = budget();
    let (vector, matrix) = (Tensor::zeros(&budget, &[3]).unwrap(), Tensor::zeros(&budget, &[2, 3]).unwrap());
    let before = budget.stats();
    assert_eq!(vector.matmul(&matrix).unwrap_err(), TensorError::NotAMatrix { shape: vec![3] });
    assert_eq!(matrix.matmul(&vector).unwrap_err(), TensorError::NotAMatrix { shape: vec![3] });
    let error = matrix.matmul(&matrix).unwrap_err();
    assert_eq!(error, TensorError::InnerDimensionMismatch { left: vec![2, 3], right: vec![2, 3] });
    assert_eq!(format!("{error}"), "matmul of [2, 3] by [2, 3]: the left's columns must equal the right's rows");
    assert_eq!(budget.stats(), before);

    let big = Budget::new(u64::MAX);
    let (tall, wide) = (Tensor::zeros(&big, &[1 << 12, 1]).unwrap(), Tensor::zeros(&big, &[1, 1 << 11]).unwrap());
    let before = big.stats();
    assert_eq!(tall.matmul(&wide).unwrap_err(), TensorError::TooLarge { shape: vec![1 << 12, 1 << 11] });
    assert_eq!(big.stats(), before);
}

#[test]
fn matmul_charges_result_and_scratch_in_one_charge() {
    // [2, 3] x [3, 5]: result 10 elements; scratch 8 × 3 packed + 8 biases + 8 outputs + 3 row = 43.
    let (operand_bytes, result_bytes, scratch_bytes) = ((6 + 15) * 4, 10 * 4, 43 * 4);
    let enough = Budget::new(operand_bytes + result_bytes + scratch_bytes);
    let left = Tensor::random(&enough, &[2, 3], 1).unwrap();
    let right = Tensor::random(&enough, &[3, 5], 2).unwrap();
    let product = left.matmul(&right).unwrap();
    let stats = enough.stats();
    assert_eq!((stats.used_bytes, stats.peak_bytes), (operand_bytes + result_bytes, stats.limit_bytes));
    assert_eq!((stats.live_tensors, stats.allocations, stats.refusals), (3, 3, 0));
    drop(product);

    let short = Budget::new(operand_bytes + result_bytes + scratch_bytes - 1);
    let (left, right) = (Tensor::random(&short, &[2, 3], 1).unwrap(), Tensor::random(&short, &[3, 5], 2).unwrap());
    let error = left.matmul(&right).unwrap_err();
    let requested_bytes = result_bytes + scratch_bytes;
    assert_eq!(error, TensorError::BudgetExceeded { requested_bytes, available_bytes: requested_bytes - 1 });
    let stats = short.stats();
    assert_eq!((stats.used_bytes, stats.peak_bytes), (operand_bytes, operand_bytes));
    assert_eq!((stats.live_tensors, stats.allocations, stats.refusals), (2, 2, 1));
}

#[test]
fn softmax_subtracts_the_row_maximum() {
    let budget = budget();
    let rows = Tensor::from_vec(&budget, &[2, 2], vec![0.0, 0.0, 1000.0, 1000.0]).unwrap();
    assert_eq!(rows.softmax().unwrap().to_vec(), [0.5, 0.5, 0.5, 0.5]);
    let single = Tensor::from_vec(&budget, &[1, 3], vec![-5.0, 7.0, 1.0]).unwrap().transpose().unwrap();
    assert_eq!(bits(&single.softmax().unwrap().to_vec()), bits(&[1.0, 1.0, 1.0]));
    let values = Reference::new(&[2, 3], vec![1.0, 2.0, 3.0, -1.0, 0.5, -0.0]);
    assert_matches(&values.tensor(&budget, false).softmax().unwrap(), &values.softmax());
}

#[test]
fn sums_and_means_reduce_all_or_one_axis() {
    let budget = budget();
    let matrix = Tensor::arange(&budget, &[2, 3], 0.0, 1.0).unwrap();
    let all = matrix.sum(None).unwrap();
    assert_eq!((all.shape(), all.to_vec()), (&[1][..], vec![15.0]));
    assert_eq!(matrix.sum(Some(0)).unwrap().to_vec(), [3.0, 5.0, 7.0]);
    assert_eq!(matrix.sum(Some(1)).unwrap().to_vec(), [3.0, 12.0]);
    assert_eq!(matrix.mean(Some(1)).unwrap().to_vec(), [1.0, 4.0]);
    assert_eq!(matrix.mean(None).unwrap().to_vec(), [2.5]);
    assert_eq!(matrix.transpose().unwrap().sum(Some(0)).unwrap().to_vec(), [3.0, 12.0]);
    let vector = Tensor::from_vec(&budget, &[2], vec![-0.0, -0.0]).unwrap();
    let summed = vector.sum(Some(0)).unwrap();
    assert_eq!((summed.shape(), bits(&summed.to_vec())), (&[1][..], vec![0]), "sums start at +0.0");
    let error = matrix.sum(Some(2)).unwrap_err();
    assert_eq!(error, TensorError::InvalidAxis { axis: 2, rank: 2 });
    assert_eq!(format!("{error}"), "axis 2 does not exist in a tensor of 2 axes");
    assert_eq!(matrix.mean(Some(usize::MAX)).unwrap_err(), TensorError::InvalidAxis { axis: usize::MAX, rank: 2 });
}

#[test]
fn debug_shows_shape_strides_and_the_first_values() {
    let budget = budget();
    let tensor = Tensor::arange(&budget, &[2, 5], 0.0, 1.0).unwrap();
    assert_eq!(
        format!("{tensor:?}"),
        "Tensor { shape: [2, 5], strides: [5, 1], values: [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0] and 2 more }"
    );
    let small = Tensor::full(&budget, &[1], 3.0).unwrap();
    assert_eq!(format!("{small:?}"), "Tensor { shape: [1], strides: [1], values: [3.0] }");
}
