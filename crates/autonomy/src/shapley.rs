//! Exact Shapley values of a score function over a few named features, against a baseline input.
//!
//! A feature's Shapley value is its marginal contribution to the score averaged over every order in which
//! the features could be switched from their baseline value to their actual value. With `n` features that is
//! a weighted sum over the 2^n coalitions S of the others:
//!
//! ```text
//! φ_i = Σ_{S ⊆ N∖{i}} |S|! (n − |S| − 1)! / n! · (v(S ∪ {i}) − v(S))
//! ```
//!
//! where v(S) is the score of the input whose features in S have their actual values and the others their
//! baseline values. [`shapley`] evaluates v once for each of the 2^n coalitions (n ≤ [`MAX_FEATURES`], so at
//! most 256 evaluations) and sums in f64, the weights as integers k! (n − k − 1)! and one division by n! at the
//! end, so integer scores (the heuristic's) give exact values. The values are exact in the sense that nothing is sampled or
//! approximated: they satisfy completeness (Σ φ_i = v(N) − v(∅)), symmetry (two features the score treats
//! alike get the same value), the dummy property (a feature the score ignores gets 0) and linearity, up to
//! f64 rounding of the weighted sums. The score function is only called, never asked to change: it must be
//! a pure function of its input for the values to mean anything.

/// Most features an attribution takes (2^8 = 256 evaluations of the score).
pub const MAX_FEATURES: usize = 8;

/// The Shapley values of one score function at one input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shapley {
    /// Feature `i`'s value in slot `i`, for the first [`Shapley::features`] slots; the rest are 0.
    contributions: [f64; MAX_FEATURES],
    /// Number of features.
    features: usize,
    /// v(N): the score at the input.
    pub score: f64,
    /// v(∅): the score at the baseline.
    pub baseline_score: f64,
    /// Times the score function was evaluated (2^features).
    pub evaluations: u32,
}

impl Shapley {
    /// Each feature's contribution, in input order.
    pub fn contributions(&self) -> &[f64] {
        &self.contributions[..self.features]
    }

    /// Number of features.
    pub fn features(&self) -> usize {
        self.features
    }

    /// |Σ contributions − (score − baseline score)|: zero in exact arithmetic, f64 rounding here.
    pub fn completeness_error(&self) -> f64 {
        let sum: f64 = self.contributions().iter().sum();
        (sum - (self.score - self.baseline_score)).abs()
    }

    /// Feature indexes by contribution, largest magnitude first (ties: lower index first).
    pub fn ranking(&self) -> [usize; MAX_FEATURES] {
        let mut order = [0usize; MAX_FEATURES];
        for (slot, index) in order.iter_mut().zip(0..) {
            *slot = index;
        }
        let magnitude = |index: usize| self.contributions[index].abs();
        // Insertion sort: stable, at most 8 elements, and no allocation.
        for end in 1..self.features {
            let mut position = end;
            while position > 0 && magnitude(order[position]) > magnitude(order[position - 1]) {
                order.swap(position, position - 1);
                position -= 1;
            }
        }
        order
    }
}

/// Why Shapley values could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ShapleyError {
    /// The input and the baseline have different lengths.
    LengthMismatch {
        /// Input features.
        input: usize,
        /// Baseline features.
        baseline: usize,
    },
    /// More than [`MAX_FEATURES`] features.
    TooManyFeatures {
        /// Features given.
        features: usize,
    },
    /// The score function returned NaN or an infinity.
    NotFinite {
        /// The coalition (bit `i` set: feature `i` at its actual value).
        coalition: u32,
    },
}

/// The exact Shapley values of `score` at `input` against `baseline` (the module's documentation has the
/// formula): 2^n calls of `score`, each on a copy of the input with the features outside the coalition set to
/// their baseline values.
pub fn shapley(input: &[f64], baseline: &[f64], mut score: impl FnMut(&[f64]) -> f64) -> Result<Shapley, ShapleyError> {
    let features = input.len();
    if baseline.len() != features {
        return Err(ShapleyError::LengthMismatch { input: features, baseline: baseline.len() });
    }
    if features > MAX_FEATURES {
        return Err(ShapleyError::TooManyFeatures { features });
    }
    let coalitions = 1usize << features;
    let mut values = [0.0f64; 1 << MAX_FEATURES];
    let mut point = [0.0f64; MAX_FEATURES];
    for (coalition, value) in values[..coalitions].iter_mut().enumerate() {
        for (index, slot) in point[..features].iter_mut().enumerate() {
            *slot = if coalition & (1 << index) != 0 { input[index] } else { baseline[index] };
        }
        *value = score(&point[..features]);
        if !value.is_finite() {
            return Err(ShapleyError::NotFinite { coalition: coalition as u32 });
        }
    }
    // Each term is weighted by k! (n − k − 1)! (integers up to 7! = 5040, exact in f64) and the sum divided by
    // n! once at the end: integer scores then give exact values (every partial sum is an integer below 2^53),
    // and other scores lose one rounding per operation.
    let factorial = |k: usize| (1..=k).map(|factor| factor as f64).product::<f64>();
    let mut weight = [0.0f64; MAX_FEATURES];
    for (size, slot) in weight[..features].iter_mut().enumerate() {
        *slot = factorial(size) * factorial(features - size - 1);
    }
    let orderings = factorial(features);
    let mut contributions = [0.0f64; MAX_FEATURES];
    for (index, contribution) in contributions[..features].iter_mut().enumerate() {
        let bit = 1usize << index;
        let mut total = 0.0f64;
        for coalition in (0..coalitions).filter(|coalition| coalition & bit == 0) {
            let size = coalition.count_ones() as usize;
            total += weight[size] * (values[coalition | bit] - values[coalition]);
        }
        *contribution = total / orderings;
    }
    Ok(Shapley {
        contributions,
        features,
        score: values[coalitions - 1],
        baseline_score: values[0],
        evaluations: coalitions as u32,
    })
}

#[cfg(test)]
pub(crate) mod tests;
