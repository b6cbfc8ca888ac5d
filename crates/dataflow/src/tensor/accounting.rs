//! Tests of the budget's figures and of shapes refused before anything is charged.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::*;

fn stats(limit_bytes: u64, used_bytes: u64, peak_bytes: u64, live: u64, allocations: u64) -> BudgetStats {
    BudgetStats { limit_bytes, used_bytes, peak_bytes, live_tensors: live, allocations, refusals: 0 }
}

#[test]
fn creating_and_dropping_tensors_moves_the_figures_exactly() {
    let budget = Budget::new(1000);
    assert_eq!(budget.stats(), stats(1000, 0, 0, 0, 0));
    let matrix = Tensor::zeros(&budget, &[2, 3]).unwrap();
    assert_eq!(budget.stats(), stats(1000, 24, 24, 1, 1));
    let vector = Tensor::full(&budget, &[4], 2.0).unwrap();
    assert_eq!(budget.stats(), stats(1000, 40, 40, 2, 2));
    let sum = matrix.sum(Some(0)).unwrap();
    assert!(Arc::ptr_eq(sum.budget(), &budget));
    assert_eq!(budget.stats(), stats(1000, 52, 52, 3, 3));
    drop(matrix);
    assert_eq!(budget.stats(), stats(1000, 28, 52, 2, 3));
    let copy = vector.try_clone().unwrap();
    assert_eq!((copy.to_vec(), budget.stats()), (vec![2.0; 4], stats(1000, 44, 52, 3, 4)));
    drop((vector, sum, copy));
    assert_eq!(budget.stats(), stats(1000, 0, 52, 0, 4));
}

#[test]
fn a_refusal_is_counted_and_changes_nothing_else() {
    let budget = Budget::new(100);
    let held = Tensor::zeros(&budget, &[4]).unwrap();
    let error = Tensor::zeros(&budget, &[22]).unwrap_err();
    assert_eq!(error, TensorError::BudgetExceeded { requested_bytes: 88, available_bytes: 84 });
    assert_eq!(error.code(), "budget-exceeded");
    assert_eq!(format!("{error}"), "the tensor budget has 84 bytes left; this operation needs 88");
    let values = vec![1.0; 22];
    assert_eq!(Tensor::from_vec(&budget, &[22], values).unwrap_err(), error);
    assert_eq!(held.add_scalar(1.0).unwrap().to_vec(), [1.0; 4]);
    let refused = held.reshape(&[2, 2]).unwrap().transpose().unwrap();
    assert_eq!(budget.stats(), BudgetStats { refusals: 2, ..stats(100, 16, 32, 2, 2) });
    // Exactly the bytes left is allowed.
    let rest = Tensor::zeros(&budget, &[21]).unwrap();
    assert_eq!(budget.stats(), BudgetStats { refusals: 2, ..stats(100, 100, 100, 3, 3) });
    assert_eq!(refused.matmul(&refused).unwrap_err().code(), "budget-exceeded");
    drop((held, refused, rest));
    assert_eq!(budget.stats(), BudgetStats { refusals: 3, ..stats(100, 0, 100, 0, 3) });

    let nothing = Budget::new(0);
    assert_eq!(
        Tensor::zeros(&nothing, &[1]).unwrap_err(),
        TensorError::BudgetExceeded { requested_bytes: 4, available_bytes: 0 }
    );
}

#[test]
fn bad_shapes_are_refused_before_any_charge() {
    let budget = Budget::new(u64::MAX);
    let refused: Vec<(&[usize], TensorError)> = vec![
        (&[], TensorError::RankOutOfRange { rank: 0 }),
        (&[1, 1, 1, 1, 1], TensorError::RankOutOfRange { rank: 5 }),
        (&[2, 0, 3], TensorError::EmptyDimension { shape: vec![2, 0, 3] }),
        (&[usize::MAX, 0], TensorError::EmptyDimension { shape: vec![usize::MAX, 0] }),
        (&[MAX_ELEMENTS + 1], TensorError::TooLarge { shape: vec![MAX_ELEMENTS + 1] }),
        (&[1 << 11, 1 << 11, 2], TensorError::TooLarge { shape: vec![1 << 11, 1 << 11, 2] }),
        (&[usize::MAX, usize::MAX, 2], TensorError::TooLarge { shape: vec![usize::MAX, usize::MAX, 2] }),
        (&[1 << 32, 1 << 32, 1 << 32, 1 << 32], TensorError::TooLarge { shape: vec![1 << 32; 4] }),
    ];
    for (shape, error) in refused {
        assert_eq!(Tensor::zeros(&budget, shape).unwrap_err(), error, "{shape:?}");
        assert_eq!(Tensor::random(&budget, shape, 3).unwrap_err(), error, "{shape:?}");
        assert_eq!(Tensor::arange(&budget, shape, 0.0, 1.0).unwrap_err(), error, "{shape:?}");
        assert_eq!(Tensor::from_vec(&budget, shape, vec![]).unwrap_err(), error, "{shape:?}");
    }
    let small = Tensor::zeros(&budget, &[2, 2]).unwrap();
    assert_eq!(small.reshape(&[usize::MAX, 3]).unwrap_err(), TensorError::TooLarge { shape: vec![usize::MAX, 3] });
    assert_eq!(small.reshape(&[4, 0]).unwrap_err(), TensorError::EmptyDimension { shape: vec![4, 0] });
    let error = Tensor::from_vec(&budget, &[2, 2], vec![0.0; 3]).unwrap_err();
    assert_eq!(error, TensorError::LengthMismatch { shape: vec![2, 2], length: 3 });
    assert_eq!(format!("{error}"), "shape [2, 2] needs 4 values, got 3");
    assert_eq!(budget.stats(), stats(u64::MAX, 16, 16, 1, 1));
    // The largest shape is accepted.
    assert_eq!(Tensor::zeros(&budget, &[1 << 11, 1 << 11]).unwrap().bytes(), 16 << 20);
}

#[test]
fn errors_have_stable_codes_and_messages_naming_the_shapes() {
    let cases = [
        (TensorError::RankOutOfRange { rank: 5 }, "rank-out-of-range", "a tensor has 1 to 4 axes; this shape has 5"),
        (
            TensorError::EmptyDimension { shape: vec![2, 0] },
            "empty-dimension",
            "shape [2, 0] has an axis of length 0; every axis needs at least 1",
        ),
        (
            TensorError::TooLarge { shape: vec![usize::MAX, 2] },
            "too-large",
            "shape [18446744073709551615, 2] has more than the 4194304 elements a tensor may hold",
        ),
        (
            TensorError::LengthMismatch { shape: vec![usize::MAX, 2], length: 1 },
            "length-mismatch",
            "shape [18446744073709551615, 2] needs more than usize::MAX values, got 1",
        ),
        (
            TensorError::NotAMatrix { shape: vec![3] },
            "not-a-matrix",
            "matmul needs two matrices (2 axes each); one operand has shape [3]",
        ),
        (
            TensorError::ReshapeMismatch { from: vec![2, 3], to: vec![4] },
            "reshape-mismatch",
            "cannot reshape [2, 3] (6 elements) to [4] (4 elements)",
        ),
        (TensorError::OutOfMemory { bytes: 64 }, "out-of-memory", "the heap could not provide 64 bytes for a tensor"),
    ];
    for (error, code, message) in cases {
        assert_eq!((error.code(), format!("{error}").as_str()), (code, message));
    }
    let other_codes = [
        TensorError::ShapeMismatch { left: vec![], right: vec![] },
        TensorError::InnerDimensionMismatch { left: vec![], right: vec![] },
        TensorError::InvalidAxis { axis: 0, rank: 0 },
        TensorError::BudgetExceeded { requested_bytes: 0, available_bytes: 0 },
    ]
    .map(|error| error.code());
    assert_eq!(other_codes, ["shape-mismatch", "inner-dimension-mismatch", "invalid-axis", "budget-exceeded"]);
}

#[test]
fn reservations_split_one_charge_and_release_on_drop() {
    let budget = Budget::new(10);
    let mut whole = budget.reserve(8).unwrap();
    let part = whole.split_off(3);
    assert_eq!((whole.bytes(), part.bytes(), budget.stats().used_bytes), (5, 3, 8));
    assert_eq!(whole.split_off(99).bytes(), 5, "at most what is left");
    assert_eq!(budget.stats().used_bytes, 3);
    drop(part);
    assert_eq!(budget.stats(), stats(10, 0, 8, 0, 0));
}

#[test]
fn budgets_and_tensors_are_shared_between_threads_with_exact_counts() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Budget>();
    shareable::<Tensor>();
    let budget = Budget::new(4 * 32);
    let threads: Vec<_> = (0..4)
        .map(|seed| {
            let budget = Arc::clone(&budget);
            std::thread::spawn(move || {
                for round in 0..250 {
                    let tensor = Tensor::random(&budget, &[8], seed * 1000 + round).unwrap();
                    assert_eq!(tensor.len(), 8);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let stats = budget.stats();
    assert_eq!((stats.used_bytes, stats.live_tensors, stats.allocations, stats.refusals), (0, 0, 1000, 0));
    assert!((32..=128).contains(&stats.peak_bytes), "peak {}", stats.peak_bytes);
}
