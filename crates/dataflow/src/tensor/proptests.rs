//! Property tests: on random shapes and values (NaN, infinities, subnormals and signed zeros included),
//! contiguous or strided, every operation equals the reference bit for bit, and the budget ends empty.

use alloc::vec::Vec;

use proptest::prelude::*;

use super::reference::{assert_matches, Reference};
use super::*;

/// Mostly ordinary values, sometimes any f32 at all.
fn value() -> impl Strategy<Value = f32> {
    prop_oneof![4 => -8.0f32..8.0, 1 => any::<f32>(), 1 => Just(-0.0f32), 1 => Just(0.0f32)]
}

fn reference_of(shape: Vec<usize>) -> impl Strategy<Value = Reference> {
    let count = shape.iter().product::<usize>();
    proptest::collection::vec(value(), count).prop_map(move |data| Reference::new(&shape, data))
}

fn shape() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(1usize..=5, 1..=MAX_RANK)
}

/// A random tensor and whether to build it as a strided (transposed) view.
fn operand() -> impl Strategy<Value = (Reference, bool)> {
    (shape().prop_flat_map(reference_of), any::<bool>())
}

/// Two shapes that broadcast: each is a suffix of one shape, some axes replaced by 1.
fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (shape(), 0..MAX_RANK, 0..MAX_RANK, any::<[bool; 8]>()).prop_map(|(full, drop_left, drop_right, ones)| {
        let operand = |dropped: usize, ones: &[bool]| -> Vec<usize> {
            let kept = &full[dropped.min(full.len() - 1)..];
            kept.iter().zip(ones).map(|(&length, &one)| if one { 1 } else { length }).collect()
        };
        (operand(drop_left, &ones[..4]), operand(drop_right, &ones[4..]))
    })
}

fn pair_of_operands() -> impl Strategy<Value = ((Reference, bool), (Reference, bool))> {
    broadcast_pair()
        .prop_flat_map(|(left, right)| ((reference_of(left), any::<bool>()), (reference_of(right), any::<bool>())))
}

fn matrices() -> impl Strategy<Value = ((Reference, bool), (Reference, bool))> {
    (1usize..=9, 1usize..=9, 1usize..=9).prop_flat_map(|(m, k, n)| {
        ((reference_of(vec![m, k]), any::<bool>()), (reference_of(vec![k, n]), any::<bool>()))
    })
}

fn assert_budget_empty(budget: &Arc<Budget>) {
    let stats = budget.stats();
    assert_eq!((stats.used_bytes, stats.live_tensors, stats.refusals), (0, 0, 0));
}

proptest! {
    #[test]
    fn broadcast_arithmetic_equals_the_reference((left, right) in pair_of_operands()) {
        let budget = Budget::new(1 << 20);
        let ((left, left_strided), (right, right_strided)) = (left, right);
        let (a, b) = (left.tensor(&budget, left_strided), right.tensor(&budget, right_strided));
        assert_matches(&a.add(&b).unwrap(), &left.zip_with(&right, |x, y| x + y).unwrap());
        assert_matches(&a.sub(&b).unwrap(), &left.zip_with(&right, |x, y| x - y).unwrap());
        assert_matches(&b.mul(&a).unwrap(), &right.zip_with(&left, |x, y| x * y).unwrap());
        drop((a, b));
        assert_budget_empty(&budget);
    }

    #[test]
    fn shapes_broadcast_exactly_when_the_reference_says((left, right) in (shape(), shape())) {
        let budget = Budget::new(1 << 20);
        let (a, b) = (Tensor::zeros(&budget, &left).unwrap(), Tensor::zeros(&budget, &right).unwrap());
        let reference = Reference::new(&left, alloc::vec![0.0; a.len()])
            .zip_with(&Reference::new(&right, alloc::vec![0.0; b.len()]), |x, y| x + y);
        match (a.add(&b), reference) {
            (Ok(sum), Some(expected)) => prop_assert_eq!(sum.shape(), &expected.shape[..]),
            (Err(error), None) => prop_assert_eq!(error, TensorError::ShapeMismatch { left, right }),
            (got, expected) => prop_assert!(false, "{:?} but the reference gives {:?}", got, expected),
        }
    }

    #[test]
    fn elementwise_maps_equal_the_reference((values, strided) in operand(), scalar in value()) {
        let budget = Budget::new(1 << 20);
        let tensor = values.tensor(&budget, strided);
        assert_matches(&tensor.add_scalar(scalar).unwrap(), &values.map(|x| x + scalar));
        assert_matches(&tensor.mul_scalar(scalar).unwrap(), &values.map(|x| x * scalar));
        assert_matches(&tensor.relu().unwrap(), &values.map(|x| if x > 0.0 { x } else { 0.0 }));
    }

    #[test]
    fn matmul_equals_the_triple_loop((left, right) in matrices()) {
        let budget = Budget::new(1 << 20);
        let ((left, left_strided), (right, right_strided)) = (left, right);
        let product = left.tensor(&budget, left_strided).matmul(&right.tensor(&budget, right_strided)).unwrap();
        assert_matches(&product, &left.matmul(&right));
        drop(product);
        assert_budget_empty(&budget);
    }

    #[test]
    fn softmax_equals_the_reference((values, strided) in operand()) {
        let budget = Budget::new(1 << 20);
        assert_matches(&values.tensor(&budget, strided).softmax().unwrap(), &values.softmax());
    }

    #[test]
    fn reductions_equal_the_reference((values, strided) in operand(), axis in 0..MAX_RANK) {
        let budget = Budget::new(1 << 20);
        let tensor = values.tensor(&budget, strided);
        assert_matches(&tensor.sum(None).unwrap(), &values.reduce(None, false));
        assert_matches(&tensor.mean(None).unwrap(), &values.reduce(None, true));
        if axis < values.shape.len() {
            assert_matches(&tensor.sum(Some(axis)).unwrap(), &values.reduce(Some(axis), false));
            assert_matches(&tensor.mean(Some(axis)).unwrap(), &values.reduce(Some(axis), true));
        } else {
            let rank = values.shape.len();
            prop_assert_eq!(tensor.sum(Some(axis)).unwrap_err(), TensorError::InvalidAxis { axis, rank });
        }
    }

    #[test]
    fn transpose_and_reshape_round_trip((values, strided) in operand()) {
        let budget = Budget::new(1 << 20);
        let tensor = values.tensor(&budget, strided);
        let transposed = tensor.transpose().unwrap();
        assert_matches(&transposed, &values.transpose());
        assert_matches(&transposed.transpose().unwrap(), &values);
        let flat = transposed.reshape(&[values.data.len()]).unwrap();
        assert_matches(&flat.reshape(&values.transpose().shape).unwrap(), &values.transpose());
        prop_assert_eq!(flat.checksum(), transposed.checksum());
        assert_matches(&tensor.try_clone().unwrap(), &values);
        let (copy, contiguous) = (tensor.try_clone().unwrap(), Layout::contiguous(&values.shape).unwrap());
        prop_assert_eq!(copy.strides(), contiguous.strides());
    }
}
