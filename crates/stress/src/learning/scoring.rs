//! The learned policy's features and scores for explanations, and the networks its recent decisions were made
//! with.
//!
//! The scores are the Q-values of the agent's online network for each action at the decision's state: the
//! network's estimate of the discounted reward, in points per workload step, of taking the action now and
//! acting greedily after. The network learns online (a training step every [`super::ONLINE_TRAIN_EVERY`]
//! decisions), so the policy keeps a copy of each version its kept decisions were scored with, and an
//! explanation evaluates the version that decided, not today's.

use alloc::boxed::Box;
use alloc::collections::VecDeque;

use sis_ai::{Network, Scratch};
use sis_autonomy::{DecisionTrace, Feature, Schema, Scorer, ScorerUnavailable};

use super::{ONLINE_TRAIN_EVERY, STATE_SIZE};
use crate::governor::TRACES_KEPT;

/// Network versions kept: one per training step over the decisions the governor keeps (one memory decision per
/// interval, a training step at most every [`ONLINE_TRAIN_EVERY`]), and two more for the steps at either end.
pub const NETWORKS_KEPT: usize = TRACES_KEPT / ONLINE_TRAIN_EVERY as usize + 2;

/// The state's features, in the network's input order ([`super::STATE_NAMES`]).
const FEATURES: [Feature; STATE_SIZE] = [
    Feature {
        name: "pressure",
        unit: "fraction",
        reading_factor: 100.0,
        reading_unit: "%",
        meaning: "of the pool in use",
    },
    Feature {
        name: "pressure_change",
        unit: "fraction",
        reading_factor: 250.0,
        reading_unit: "per mille",
        meaning: "change of pressure since the previous decision (the input is the change / 250, clamped to ±1)",
    },
    Feature {
        name: "cache_share",
        unit: "fraction",
        reading_factor: 100.0,
        reading_unit: "%",
        meaning: "of the pool's limit held as reclaimable cache",
    },
    Feature {
        name: "oom_events",
        unit: "fraction",
        reading_factor: 16.0,
        reading_unit: "OOM events",
        meaning: "since the previous decision (the input is the count / 16, at most 1)",
    },
    Feature {
        name: "demand",
        unit: "requests per step",
        reading_factor: 1.0,
        reading_unit: "allocation requests",
        meaning: "per workload step since the previous decision",
    },
];

/// The learned policy's decisions.
pub static LEARNED: Schema = Schema {
    name: "learned",
    score:
        "Q-value: the network's estimate of the discounted reward (points per workload step) of taking the action now",
    features: &FEATURES,
    actions: &["nothing", "reclaim", "throttle"],
    baseline: &[0.0; STATE_SIZE],
    baseline_meaning: "an idle, empty pool: every input 0 (no pressure, no change, no cache, no OOM event, no demand)",
};

/// The network versions recent decisions were scored with, oldest first.
#[derive(Debug, Clone, Default)]
pub(super) struct Networks {
    kept: VecDeque<(u64, Network)>,
}

impl Networks {
    /// Keeps a copy of `network` as `version` unless the newest copy is that version already.
    pub(super) fn remember(&mut self, version: u64, network: &Network) {
        if self.kept.back().is_some_and(|(newest, _)| *newest == version) {
            return;
        }
        if self.kept.len() == NETWORKS_KEPT {
            self.kept.pop_front();
        }
        self.kept.push_back((version, network.clone()));
    }

    /// The score function of the network version `trace` was scored with.
    pub(super) fn scorer(&self, trace: &DecisionTrace) -> Result<Box<dyn Scorer + Send>, ScorerUnavailable> {
        let schema = trace.scoring.schema;
        if !core::ptr::eq(schema, &LEARNED) {
            return Err(ScorerUnavailable::ForeignSchema { policy: "learned", schema: schema.name });
        }
        let version = trace.scoring.model_version;
        match self.kept.iter().find(|(kept, _)| *kept == version) {
            Some((_, network)) => Ok(Box::new(NetworkScorer { network: network.clone(), scratch: Scratch::default() })),
            None => Err(ScorerUnavailable::ModelNotKept {
                version,
                oldest_kept: self.kept.front().map_or(version, |(oldest, _)| *oldest),
            }),
        }
    }

    /// Versions kept, oldest first.
    #[cfg(test)]
    pub(super) fn versions(&self) -> impl Iterator<Item = u64> + '_ {
        self.kept.iter().map(|(version, _)| *version)
    }
}

/// One network version's Q-values: a forward pass, nothing else.
struct NetworkScorer {
    network: Network,
    scratch: Scratch,
}

impl Scorer for NetworkScorer {
    fn score(&mut self, features: &[f64], scores: &mut [f64]) {
        let mut state = [0.0f32; STATE_SIZE];
        for (slot, feature) in state.iter_mut().zip(features) {
            // The features came from f32 state values: the conversion back is exact.
            *slot = *feature as f32;
        }
        let q_values = self.network.forward_in(&state, &mut self.scratch);
        for (slot, q) in scores.iter_mut().zip(q_values) {
            *slot = f64::from(*q);
        }
    }
}

#[cfg(test)]
mod tests;
