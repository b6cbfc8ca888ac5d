//! What a policy saw and how it scored every action at one decision, and the attribution of the chosen action's
//! score to each input feature.
//!
//! A policy that can be explained records a [`Scoring`] with each decision: its named input features (a
//! [`Schema`] says their names, units and meaning), its score for every action it considered, the action it
//! chose, and the version of the model that scored. Later, [`attribute`] asks the policy for a side-effect-free
//! score function of that version ([`crate::Policy::scorer`]), checks that it gives back the recorded scores
//! bit for bit, and computes the exact Shapley value of each feature for the chosen action's score against the
//! schema's baseline ([`crate::shapley`]). Nothing in it trains, explores or changes the policy.

use crate::agent::DecisionTrace;
use crate::shapley::{shapley, Shapley, ShapleyError, MAX_FEATURES};

/// Most actions a scoring holds.
pub const MAX_ACTIONS: usize = 8;

/// One input feature of a policy, as explanations show it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Feature {
    /// Its name.
    pub name: &'static str,
    /// The unit of the value the policy reads.
    pub unit: &'static str,
    /// The value times this factor is the value as a person reads it, in `reading_unit`.
    pub reading_factor: f64,
    /// The unit a person reads it in.
    pub reading_unit: &'static str,
    /// What it measures, read after the value in `reading_unit` ("of the pool in use").
    pub meaning: &'static str,
}

/// The features and actions of one kind of decision, what its scores are, and the baseline attributions are
/// measured from.
#[derive(Debug, PartialEq, serde::Serialize)]
pub struct Schema {
    /// Its name (`heuristic_memory`, `heuristic_scheduling`, `learned`, `none`).
    pub name: &'static str,
    /// What a score is.
    pub score: &'static str,
    /// The features, in input order (at most [`MAX_FEATURES`]).
    pub features: &'static [Feature],
    /// The actions, in score order (at most [`MAX_ACTIONS`]).
    pub actions: &'static [&'static str],
    /// The baseline input, one value per feature.
    pub baseline: &'static [f64],
    /// What the baseline stands for.
    pub baseline_meaning: &'static str,
}

/// The schema of a decision without scores (a policy that never acts, or one that scores nothing).
pub static NO_SCORES: Schema = Schema {
    name: "none",
    score: "none: this policy gives no scores",
    features: &[],
    actions: &[],
    baseline: &[],
    baseline_meaning: "none",
};

/// What the policy saw and how it scored every action, at one decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scoring {
    /// Names, units and meaning of the features and actions.
    pub schema: &'static Schema,
    values: [f64; MAX_FEATURES],
    scores: [f64; MAX_ACTIONS],
    chosen: Option<u8>,
    /// The version of the model that scored (the learned policy: its training steps; 0 for fixed rules).
    pub model_version: u64,
}

impl Scoring {
    /// No features, no scores.
    pub const NONE: Scoring = Scoring {
        schema: &NO_SCORES,
        values: [0.0; MAX_FEATURES],
        scores: [0.0; MAX_ACTIONS],
        chosen: None,
        model_version: 0,
    };

    /// A scoring of `schema`: one value per feature, one score per action, the chosen action's index; `None`
    /// when a count does not match the schema or the choice is not one of its actions.
    pub fn new(
        schema: &'static Schema,
        values: &[f64],
        scores: &[f64],
        chosen: usize,
        model_version: u64,
    ) -> Option<Scoring> {
        let fits = values.len() == schema.features.len()
            && scores.len() == schema.actions.len()
            && schema.features.len() <= MAX_FEATURES
            && schema.actions.len() <= MAX_ACTIONS
            && chosen < scores.len();
        if !fits {
            return None;
        }
        let mut scoring = Scoring { schema, chosen: Some(chosen as u8), model_version, ..Scoring::NONE };
        scoring.values[..values.len()].copy_from_slice(values);
        scoring.scores[..scores.len()].copy_from_slice(scores);
        Some(scoring)
    }

    /// The feature values, in the schema's order.
    pub fn values(&self) -> &[f64] {
        &self.values[..self.schema.features.len()]
    }

    /// Every action's score, in the schema's order.
    pub fn scores(&self) -> &[f64] {
        &self.scores[..self.schema.actions.len()]
    }

    /// The chosen action's index in the schema's actions.
    pub fn chosen(&self) -> Option<usize> {
        self.chosen.map(usize::from)
    }

    /// The chosen action's name.
    pub fn chosen_action(&self) -> Option<&'static str> {
        self.chosen().and_then(|index| self.schema.actions.get(index).copied())
    }
}

/// In JSON: the schema's name, `features` and `scores` as objects keyed by name, the chosen action's name and
/// the model version.
impl serde::Serialize for Scoring {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Named<'a>(&'a [&'static str], &'a [f64]);
        impl serde::Serialize for Named<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (name, value) in self.0.iter().zip(self.1) {
                    map.serialize_entry(name, value)?;
                }
                map.end()
            }
        }
        let mut names = [""; MAX_FEATURES];
        for (slot, feature) in names.iter_mut().zip(self.schema.features) {
            *slot = feature.name;
        }
        let mut state = serializer.serialize_struct("Scoring", 5)?;
        state.serialize_field("schema", self.schema.name)?;
        state.serialize_field("features", &Named(&names[..self.schema.features.len()], self.values()))?;
        state.serialize_field("scores", &Named(self.schema.actions, self.scores()))?;
        state.serialize_field("chosen_action", &self.chosen_action())?;
        state.serialize_field("model_version", &self.model_version)?;
        state.end()
    }
}

/// A policy's score function for one model version: pure, so an attribution may call it as often as it needs.
pub trait Scorer {
    /// Every action's score at `features` (the schema's features, in order) into `scores` (one per action).
    /// Must change nothing the policy decides with.
    fn score(&mut self, features: &[f64], scores: &mut [f64]);
}

/// Why a policy cannot give a score function for a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ScorerUnavailable {
    /// The policy gives no scores (never-act).
    NoScores {
        /// The policy.
        policy: &'static str,
    },
    /// The decision's scoring is not of a schema this policy scores.
    ForeignSchema {
        /// The policy.
        policy: &'static str,
        /// The decision's schema.
        schema: &'static str,
    },
    /// The model version that scored the decision is no longer kept.
    ModelNotKept {
        /// Its version.
        version: u64,
        /// The oldest version kept.
        oldest_kept: u64,
    },
}

/// The attribution of one decision's chosen action's score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attribution {
    /// The chosen action's index in the schema's actions.
    pub action: usize,
    /// The Shapley values of its score (score at the decision's input, score at the baseline).
    pub shapley: Shapley,
    /// Every action's score at the baseline, in the schema's order (first `actions` slots).
    baseline_scores: [f64; MAX_ACTIONS],
    actions: usize,
}

impl Attribution {
    /// Every action's score at the baseline.
    pub fn baseline_scores(&self) -> &[f64] {
        &self.baseline_scores[..self.actions]
    }
}

/// Why a decision's attribution could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum AttributionError {
    /// The decision has no scores to attribute.
    NoScores,
    /// The score function does not give back the score recorded at the decision: it is not the function that
    /// decided, so its attribution would explain something else.
    ScoreMismatch {
        /// The action.
        action: usize,
        /// Its recorded score.
        recorded: f64,
        /// What the score function gives for the recorded features.
        recomputed: f64,
    },
    /// The Shapley computation refused.
    Shapley {
        /// Why.
        error: ShapleyError,
    },
}

/// The exact Shapley attribution of `trace`'s chosen action's score to its features, against its schema's
/// baseline, with `scorer` (the policy's score function for the decision's model version). The scorer must
/// first reproduce every recorded score exactly, bit for bit.
pub fn attribute(trace: &DecisionTrace, scorer: &mut dyn Scorer) -> Result<Attribution, AttributionError> {
    let scoring = &trace.scoring;
    let action = scoring.chosen().ok_or(AttributionError::NoScores)?;
    let actions = scoring.schema.actions.len();
    let mut scores = [0.0f64; MAX_ACTIONS];
    scorer.score(scoring.values(), &mut scores[..actions]);
    for (index, (recorded, recomputed)) in scoring.scores().iter().zip(&scores).enumerate() {
        if recorded.to_bits() != recomputed.to_bits() {
            return Err(AttributionError::ScoreMismatch {
                action: index,
                recorded: *recorded,
                recomputed: *recomputed,
            });
        }
    }
    let mut baseline_scores = [0.0f64; MAX_ACTIONS];
    scorer.score(scoring.schema.baseline, &mut baseline_scores[..actions]);
    let shapley = shapley(scoring.values(), scoring.schema.baseline, |features| {
        scorer.score(features, &mut scores[..actions]);
        scores[action]
    })
    .map_err(|error| AttributionError::Shapley { error })?;
    Ok(Attribution { action, shapley, baseline_scores, actions })
}
