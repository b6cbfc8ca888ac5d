//! `stresstest learning`: a Q-learning agent learns to manage a real memory pool, and is compared with every constant policy, the meta-agent's heuristic and random.
//!
//! **The control problem.** A seeded workload allocates and frees objects in
//! a [`Pool`] with a page budget. Every [`STEPS_PER_DECISION`] workload steps
//! the controller picks one action: do nothing, reclaim (compact the pool:
//! drop the cache, release empty slab pages) or throttle (refuse this
//! interval's allocation requests). Nothing else ever compacts, so a full
//! pool makes allocations fail.
//!
//! **Demand comes in phases** ([`Phase`], [`phase_plan`]) where different
//! actions are best: `calm` (small, mostly cache objects: keeping the cache
//! is best, reclaiming only drops it), `fill` (medium objects, 90 % cache:
//! the pool fills within a few intervals and reclaiming pays) and `burst`
//! (large unreclaimable objects: nothing to reclaim, and refusing costs less
//! than failing). No constant action is good in every phase, so a good policy
//! must read the state.
//!
//! **The reward** of a decision is measured over its interval, in integer
//! points: +4 per allocation served, −6 per OOM event (an allocation the pool
//! refused), −3 per cache object dropped by a reclaim (the work that filled
//! it is lost), 0 per request throttled (a refused request loses the +4 of
//! serving it; until the baselines issue it also cost −1, which this header
//! never said). Reclaiming too often throws away cache, throttling loses
//! service, doing nothing when the pool is full fails allocations: the best
//! action depends on the state.
//!
//! **The state** the agent sees, read from the pool after each interval:
//! pressure, its change over the interval, the cache's share of the limit,
//! the interval's OOM events and its allocation demand.
//!
//! **Noise** (`--inject-noise X`) makes the environment stochastic: with
//! probability X the pool carries out a random action instead of the chosen
//! one. At 1.0 the agent's choices have no effect, so nothing can be learned.
//!
//! Every episode runs a fresh workload from its own seed; the random policy
//! runs the same seeds. The greedy policy is measured on [`HELD_OUT_EPISODES`]
//! held-out seeds the agent never trained on, before training, after episode
//! [`CURVE_EPISODE`] and at the end, and every baseline ([`BaselinePolicy::ALL`]) on the
//! same seeds; the learned policy must beat the best of them with a paired
//! test ([`compare_with_baselines`]).

use alloc::string::String;
use alloc::vec::Vec;

use serde::Serialize;
use sis_ai::{Agent, AgentConfig, NetworkWeights, Scratch, Transition, WeightsError};
use sis_hal::Clock;
use sis_metrics::{compare_paired, LatencyHistogram, LatencySummary, PairedComparison};
use sis_mm::{FrameSource, MemoryKind, ObjectHandle, Pool};

use crate::{Status, StressRng};

/// Workload steps between two decisions.
pub const STEPS_PER_DECISION: u64 = 64;
/// Decisions per episode.
pub const DECISIONS_PER_EPISODE: u32 = 40;
/// The pool's budget: 1 MiB (256 pages), small enough to fill in a few intervals.
pub const POOL_BYTES: u64 = 1 << 20;
/// Most episodes accepted by `stresstest learning`.
pub const MAX_EPISODES: u32 = 1_000;
/// Held-out seeds the greedy policy and every baseline are measured on: enough for the exact Wilcoxon test
/// to reach p < 0.01 (with 5 pairs its smallest two-sided p is 0.0625).
pub const HELD_OUT_EPISODES: u32 = 20;
/// Largest Wilcoxon p-value at which the learned policy counts as beating the best baseline.
pub const SIGNIFICANCE: f64 = 0.01;
/// The greedy curve's middle point: after this many training episodes.
pub const CURVE_EPISODE: u32 = 10;
/// Episodes per window of the learning curve.
pub const WINDOW: usize = 5;
/// Inputs the agent sees.
pub const STATE_SIZE: usize = 5;
/// Reward points per allocation served.
pub const REWARD_SERVED: i64 = 4;
/// Reward points per OOM event.
pub const REWARD_OOM: i64 = -6;
/// Reward points per cache object dropped by a reclaim.
pub const REWARD_DROPPED: i64 = -3;
/// Reward points per allocation request refused by throttling: none, the request only loses what serving
/// it would have earned.
pub const REWARD_THROTTLED: i64 = 0;

/// What the controller can do at a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Let the workload run.
    Nothing,
    /// Compact the pool now: drop the cache and release empty slab pages.
    Reclaim,
    /// Refuse this interval's allocation requests.
    Throttle,
}

impl Action {
    /// Every action, in the network's output order.
    pub const ALL: [Action; 3] = [Action::Nothing, Action::Reclaim, Action::Throttle];

    /// The action's name.
    pub fn name(self) -> &'static str {
        match self {
            Action::Nothing => "nothing",
            Action::Reclaim => "reclaim",
            Action::Throttle => "throttle",
        }
    }
}

/// Names of the state's inputs, in order.
pub const STATE_NAMES: [&str; STATE_SIZE] = ["pressure", "pressure_change", "cache_share", "oom_events", "demand"];

/// Configuration of a learning run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LearningConfig {
    /// Training episodes.
    pub episodes: u32,
    /// Probability, per-mille, that the pool carries out a random action instead of the chosen one.
    pub noise_per_mille: u32,
    /// Seed of the agent's weights, its exploration, and every episode's workload.
    pub seed: u64,
}

/// Why a learning configuration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LearningConfigError {
    /// Fewer episodes than two windows of the learning curve.
    TooFewEpisodes(u32),
    /// More than [`MAX_EPISODES`].
    TooManyEpisodes(u32),
    /// Noise above 1.
    NoiseOutOfRange(u32),
}

impl core::fmt::Display for LearningConfigError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LearningConfigError::TooFewEpisodes(episodes) => write!(
                formatter,
                "{episodes} episodes: at least {} are needed for a first and a last window of {WINDOW}",
                2 * WINDOW
            ),
            LearningConfigError::TooManyEpisodes(episodes) => {
                write!(formatter, "{episodes} episodes: at most {MAX_EPISODES}")
            }
            LearningConfigError::NoiseOutOfRange(per_mille) => {
                write!(formatter, "noise {}.{:03} is outside 0..=1", per_mille / 1000, per_mille % 1000)
            }
        }
    }
}

impl LearningConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), LearningConfigError> {
        if (self.episodes as usize) < 2 * WINDOW {
            return Err(LearningConfigError::TooFewEpisodes(self.episodes));
        }
        if self.episodes > MAX_EPISODES {
            return Err(LearningConfigError::TooManyEpisodes(self.episodes));
        }
        if self.noise_per_mille > 1000 {
            return Err(LearningConfigError::NoiseOutOfRange(self.noise_per_mille));
        }
        Ok(())
    }
}

/// `--inject-noise X`: a decimal from 0 to 1 with at most three decimals, as per-mille (parsed exactly, no float).
pub fn parse_noise_per_mille(text: &str) -> Result<u32, String> {
    let refuse = || String::from("noise must be a decimal from 0 to 1 with at most three decimals, e.g. 0.15");
    if text.starts_with('-') {
        return Err(String::from("noise cannot be negative: accepted 0..=1"));
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || fraction.len() > 3 || !digits(whole) || !digits(fraction) {
        return Err(refuse());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| alloc::format!("noise {text} is above 1: accepted 0..=1"))?
    };
    let mut per_mille = whole.saturating_mul(1000);
    for (position, digit) in fraction.bytes().enumerate() {
        per_mille += (digit - b'0') as u64 * [100, 10, 1][position];
    }
    if per_mille > 1000 {
        return Err(alloc::format!("noise {text} is above 1: accepted 0..=1"));
    }
    Ok(per_mille as u32)
}

/// The agent's learning parameters for this problem.
pub fn agent_config(episodes: u32) -> AgentConfig {
    AgentConfig {
        hidden: alloc::vec![16],
        discount: 0.9,
        learning_rate: 0.1,
        epsilon_start: 1.0,
        epsilon_end: 0.05,
        // Exploration decays over the first 30 % of the run.
        epsilon_decay_steps: (episodes as u64 * DECISIONS_PER_EPISODE as u64 * 3 / 10).max(1),
        replay_capacity: 2_048,
        batch_size: 64,
        target_sync_every: 40,
    }
}

/// A fresh agent for this problem.
pub fn new_agent(seed: u64, episodes: u32) -> Agent {
    Agent::new(STATE_SIZE, Action::ALL.len(), agent_config(episodes), seed)
}

/// An agent for this problem running trained `weights` (their layer sizes must be the agent's, `[5, 16, 3]`):
/// ε stays at its floor from the first decision, since the weights are a trained policy. Its generator
/// (exploration, replay sampling) starts from `seed`. A refusal is the weights' error.
pub fn agent_with_weights(weights: &NetworkWeights, seed: u64) -> Result<Agent, WeightsError> {
    let config = agent_config(1);
    let trained = AgentConfig { epsilon_start: config.epsilon_end, ..config };
    let mut agent = Agent::new(STATE_SIZE, Action::ALL.len(), trained, seed);
    agent.load_weights(weights)?;
    Ok(agent)
}

/// What `stresstest learning` does, for the kernel and for `cargo xtask model train-agent` alike: a fresh agent
/// ([`new_agent`] from `config.seed`) trained by [`run_learning`]. The same configuration gives the same agent,
/// bit for bit, on the host and in the kernel.
pub fn train_agent<S: FrameSource + ?Sized>(
    config: &LearningConfig,
    source: &mut S,
    progress: &mut dyn FnMut(&str),
) -> (Agent, LearningReport) {
    let mut agent = new_agent(config.seed, config.episodes);
    let report = run_learning(config, source, &mut agent, progress);
    (agent, report)
}

/// What one episode measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Sum of the decisions' rewards, in points.
    pub reward: i64,
    /// Decisions taken.
    pub decisions: u32,
    /// Allocations served.
    pub served: u64,
    /// Allocations the pool refused.
    pub oom_events: u64,
    /// Cache objects dropped by reclaims.
    pub cache_dropped: u64,
    /// Allocation requests refused by throttling.
    pub throttled: u64,
    /// Decisions where the pool carried out a random action instead (noise).
    pub noisy_actions: u32,
    /// Times each action was carried out, in [`Action::ALL`] order.
    pub actions: [u32; 3],
}

/// One training episode in the report.
#[derive(Debug, Clone, Serialize)]
pub struct EpisodeReport {
    /// Episode number, from 0.
    pub episode: u32,
    /// The workload's seed.
    pub workload_seed: u64,
    /// Total reward of the agent, points.
    pub reward: i64,
    /// Total reward of a random policy on the same workload seed.
    pub baseline_reward: i64,
    /// The agent's measured outcome.
    pub outcome: Outcome,
    /// Exploration rate at the episode's end.
    pub epsilon: f32,
    /// Decisions of this episode that explored.
    pub explorations: u32,
    /// Mean TD loss of the episode's training steps (0 before replay holds a batch).
    pub mean_td_loss: f32,
    /// Phase from measured quantities (see [`phase`]).
    pub phase: &'static str,
}

/// Rewards over a window of episodes.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Window {
    /// First episode of the window.
    pub first_episode: u32,
    /// Last episode of the window.
    pub last_episode: u32,
    /// Mean reward of its episodes, points.
    pub mean_reward: f64,
}

/// A baseline policy's rewards on the held-out seeds.
#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    /// `nothing`, `reclaim`, `throttle` (constant policies), `heuristic` or `random`.
    pub name: &'static str,
    /// Reward on each held-out seed, points.
    pub rewards: Vec<i64>,
    /// Mean of `rewards`.
    pub mean: f64,
}

/// The trained greedy policy against every baseline on seeds the agent never trained on.
#[derive(Debug, Clone, Serialize)]
pub struct HeldOut {
    /// The held-out workload seeds.
    pub workload_seeds: Vec<u64>,
    /// Rewards of the trained agent's greedy policy.
    pub learned_rewards: Vec<i64>,
    /// Mean of `learned_rewards`.
    pub learned_mean: f64,
    /// Every baseline on the same seeds: the three constant policies, the heuristic and random.
    pub baselines: Vec<Baseline>,
    /// The baseline with the highest mean.
    pub best_baseline: &'static str,
    /// Its mean.
    pub best_baseline_mean: f64,
    /// (learned − best baseline) / |best baseline|, percent.
    pub advantage_percent: f64,
    /// Paired tests of the learned rewards against the best baseline's, seed by seed (Wilcoxon signed-rank
    /// exact, paired t); differences are learned − baseline.
    pub test: PairedComparison,
    /// Effect size of the paired differences: mean / standard deviation (Cohen's d_z); null when every
    /// difference is equal.
    pub effect_size_dz: Option<f64>,
    /// The learned mean is above the best baseline's and the Wilcoxon p-value is below [`SIGNIFICANCE`].
    pub beats_best_baseline: bool,
}

/// The greedy policy's rewards on the held-out seeds after some training episodes.
#[derive(Debug, Clone, Serialize)]
pub struct GreedyPoint {
    /// Training episodes completed (0: the untrained network).
    pub after_episodes: u32,
    /// Reward of the greedy policy on each held-out seed, points.
    pub rewards: Vec<i64>,
    /// Their mean.
    pub mean_reward: f64,
}

impl GreedyPoint {
    fn new(after_episodes: u32, rewards: Vec<i64>) -> Self {
        GreedyPoint { after_episodes, mean_reward: mean(&rewards), rewards }
    }
}

/// Everything `stresstest learning` measured.
#[derive(Debug, Clone, Serialize)]
pub struct LearningReport {
    /// The configuration.
    pub config: LearningConfig,
    /// Network layer sizes, inputs first.
    pub network: Vec<usize>,
    /// Every training episode.
    pub episodes: Vec<EpisodeReport>,
    /// Sum of the episodes' rewards, points.
    pub total_reward: i64,
    /// Sum of the random policy's rewards on the same seeds.
    pub baseline_total_reward: i64,
    /// Decisions made in training.
    pub decisions: u64,
    /// `total_reward / decisions`.
    pub average_reward_per_decision: f64,
    /// Decisions that explored.
    pub explorations: u64,
    /// Decisions that exploited (chose the greedy action).
    pub exploitations: u64,
    /// `explorations / exploitations` (null when there were none).
    pub exploration_exploitation_ratio: Option<f64>,
    /// Training steps taken.
    pub training_steps: u64,
    /// Consecutive windows of [`WINDOW`] episodes (the last may be shorter).
    pub windows: Vec<Window>,
    /// Mean training reward of the first [`WINDOW`] episodes (exploration included).
    pub first_window_mean: f64,
    /// Mean training reward of the last [`WINDOW`] episodes.
    pub last_window_mean: f64,
    /// (last window − first window) / |first window|, percent: training rewards, so mostly the decay of
    /// exploration; not the learning figure.
    pub training_improvement_percent: f64,
    /// The greedy policy on the held-out seeds before training, after episode [`CURVE_EPISODE`] (when the run
    /// is longer) and at the end.
    pub greedy_curve: Vec<GreedyPoint>,
    /// Greedy policy on the held-out seeds, end against before training: (end − before) / |before|, percent.
    pub improvement_percent: f64,
    /// Paired tests of the greedy policy's rewards at the end against before training, seed by seed
    /// (differences end − before).
    pub improvement_test: PairedComparison,
    /// The end's mean is above the untrained network's and the Wilcoxon p-value is below [`SIGNIFICANCE`].
    pub improved: bool,
    /// Greedy policy on the held-out seeds, after episode [`CURVE_EPISODE`] against before training, percent
    /// (null when the run has no more than [`CURVE_EPISODE`] episodes).
    pub improvement_by_episode_10_percent: Option<f64>,
    /// Held-out comparison.
    pub held_out: HeldOut,
    /// Whether learning converged under the documented rule.
    pub converged: bool,
    /// The episode from which it counts as converged.
    pub converged_at_episode: Option<u32>,
    /// Why it did or did not converge.
    pub convergence_reason: String,
    /// Pass: converged. Partial pass: not converged, the learned mean above the best baseline's on the held-out
    /// seeds. Fail: otherwise.
    pub status: Status,
}

/// A stream seed for episode `index` of a run seeded `seed` (splitmix64 of both).
pub fn workload_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(0x6A09_E667_F3BC_C909);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Who picks the actions of an episode.
pub trait Controller {
    /// An action index for `state`.
    fn choose(&mut self, state: &[f32]) -> usize;
    /// What followed a choice.
    fn learn(&mut self, _transition: Transition) -> Option<f32> {
        None
    }
}

/// Uniformly random actions from its own stream.
#[derive(Debug)]
pub struct RandomPolicy(pub StressRng);

impl Controller for RandomPolicy {
    fn choose(&mut self, _: &[f32]) -> usize {
        self.0.below(Action::ALL.len() as u64) as usize
    }
}

/// The same action at every decision: one baseline per action.
#[derive(Debug, Clone, Copy)]
pub struct Constant(pub Action);

impl Controller for Constant {
    fn choose(&mut self, _: &[f32]) -> usize {
        self.0 as usize
    }
}

/// Decision interval the heuristic's pressure trend is sampled at: the kernel meta-agent's default, 10 ms.
pub const HEURISTIC_INTERVAL_NS: u64 = 10_000_000;

/// The meta-agent's hand-written rules ([`sis_autonomy::decide`], `autoctl policy heuristic`) on this problem.
///
/// At each decision it reads the state the agent sees (pressure, cache share, OOM events; OOM events
/// above 16 read as 16, which no rule distinguishes), adds the pressure to its own trend (one sample per
/// decision, [`HEURISTIC_INTERVAL_NS`] apart, as the kernel samples it) and applies the rules with the
/// default [`sis_autonomy::MetaConfig`] and the Conservative strategy in force (this pool has no
/// strategy to switch, so the rules that would switch go straight to their directive). A proactive
/// reclaim is [`Action::Reclaim`], any throttle [`Action::Throttle`]; anything else, or a decision below
/// the confidence threshold (which the meta-agent holds), is [`Action::Nothing`].
#[derive(Debug, Clone, Default)]
pub struct HeuristicPolicy {
    trend: sis_autonomy::PressureTrend,
    decisions: u64,
}

impl Controller for HeuristicPolicy {
    fn choose(&mut self, state: &[f32]) -> usize {
        use sis_autonomy::{Directive, MemoryStrategy, MetaConfig, Telemetry};
        let config = MetaConfig::default();
        let per_mille = |value: f32| (value * 1000.0 + 0.5).clamp(0.0, 1000.0) as u16;
        let pressure = per_mille(state[0]);
        let now_ns = self.decisions * HEURISTIC_INTERVAL_NS;
        self.decisions += 1;
        // Times only go forward, so the push cannot fail.
        let _ = self.trend.push(now_ns, pressure);
        let telemetry = Telemetry {
            now_ns,
            pressure_per_mille: pressure,
            trend: self.trend.estimate(config.horizon_ns),
            cache_per_mille: per_mille(state[2]),
            demand_per_mille: per_mille(state[4]),
            oom_events: (state[3] * 16.0 + 0.5) as u32,
            steps: STEPS_PER_DECISION,
            strategy: MemoryStrategy::Conservative,
            ..Telemetry::default()
        };
        let decision = sis_autonomy::decide_memory(&telemetry, &config);
        if decision.confidence_per_mille < config.confidence_threshold_per_mille {
            return Action::Nothing as usize;
        }
        match decision.directive {
            Directive::ProactiveReclaim => Action::Reclaim as usize,
            Directive::ThrottleAllocations { .. } => Action::Throttle as usize,
            _ => Action::Nothing as usize,
        }
    }
}

/// The agent exploring and learning.
#[derive(Debug)]
pub struct Training<'a>(pub &'a mut Agent);

impl Controller for Training<'_> {
    fn choose(&mut self, state: &[f32]) -> usize {
        // The agent counts its own explorations (`Agent::decisions`).
        self.0.act(state).0
    }
    fn learn(&mut self, transition: Transition) -> Option<f32> {
        self.0.remember(transition);
        self.0.train()
    }
}

/// The agent's greedy policy, no exploration, no learning.
#[derive(Debug)]
pub struct Greedy<'a>(pub &'a Agent);

impl Controller for Greedy<'_> {
    fn choose(&mut self, state: &[f32]) -> usize {
        self.0.greedy(state)
    }
}

struct Live {
    handle: ObjectHandle,
    expires_at_step: u64,
}

/// A stretch of an episode's workload with its own demand: each calls for a different action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Moderate demand for small, mostly reclaimable objects: the cache is worth keeping (reclaim only drops it).
    Calm,
    /// High demand for medium objects, half of them cache: the pool fills, and reclaiming its cache pays.
    Fill,
    /// A burst of large, long-lived, unreclaimable objects: nothing to reclaim, and refusing costs less than failing.
    Burst,
}

impl Phase {
    /// Every phase, in the order a permutation is drawn from.
    pub const ALL: [Phase; 3] = [Phase::Calm, Phase::Fill, Phase::Burst];

    /// What the phase requests.
    fn demand(self) -> PhaseDemand {
        match self {
            Phase::Calm => PhaseDemand {
                demand_percent: (50, 70),
                size_bytes: (64, 256),
                reclaimable_percent: 95,
                lifetime_steps: (200, 1_000),
                decisions: (8, 12),
            },
            Phase::Fill => PhaseDemand {
                demand_percent: (70, 95),
                size_bytes: (1_024, 8 << 10),
                reclaimable_percent: 90,
                lifetime_steps: (300, 1_000),
                decisions: (3, 6),
            },
            Phase::Burst => PhaseDemand {
                demand_percent: (30, 50),
                size_bytes: (16 << 10, 64 << 10),
                reclaimable_percent: 0,
                lifetime_steps: (100, 400),
                decisions: (2, 3),
            },
        }
    }
}

/// What a phase requests: the share of steps that request an allocation (percent, drawn when the phase
/// starts and every 4 decisions), sizes (bytes, log-uniform), the cache's share (percent), lifetimes
/// (steps, log-uniform) and the phase's length (decisions, uniform).
struct PhaseDemand {
    demand_percent: (u64, u64),
    size_bytes: (u64, u64),
    reclaimable_percent: u64,
    lifetime_steps: (u64, u64),
    decisions: (u64, u64),
}

/// An episode's phases, one per decision: shuffled rounds of [`Phase::ALL`], each phase lasting its
/// drawn number of decisions, drawn from the workload's stream.
pub fn phase_plan(workload: &mut StressRng) -> Vec<Phase> {
    let mut plan = Vec::with_capacity(DECISIONS_PER_EPISODE as usize);
    while plan.len() < DECISIONS_PER_EPISODE as usize {
        let mut round = Phase::ALL;
        for index in (1..round.len()).rev() {
            round.swap(index, workload.below(index as u64 + 1) as usize);
        }
        for phase in round {
            let (shortest, longest) = phase.demand().decisions;
            let length = workload.range(shortest, longest);
            plan.extend(core::iter::repeat_n(phase, length as usize));
        }
    }
    plan.truncate(DECISIONS_PER_EPISODE as usize);
    plan
}

/// Runs one episode on workload `workload_seed`; `noise` decides random substitutions from its own stream.
pub fn run_episode<S: FrameSource + ?Sized>(
    source: &mut S,
    workload_seed: u64,
    noise_per_mille: u32,
    controller: &mut dyn Controller,
) -> (Outcome, Vec<f32>) {
    let mut workload = StressRng::new(workload_seed);
    let mut noise = StressRng::new(workload_seed ^ 0x4E4F_4953_4521);
    let plan = phase_plan(&mut workload);
    let mut pool = Pool::new(POOL_BYTES);
    let mut live: Vec<Live> = Vec::new();
    let mut outcome = Outcome::default();
    let mut losses = Vec::new();
    let mut step = 0u64;
    let mut demand_percent = 50u64;
    let mut state = observe(&pool, 0, 0, 0);
    for decision in 0..DECISIONS_PER_EPISODE {
        let chosen = controller.choose(&state);
        let carried_out = if noise_per_mille > 0 && noise.below(1000) < noise_per_mille as u64 {
            outcome.noisy_actions += 1;
            noise.below(Action::ALL.len() as u64) as usize
        } else {
            chosen
        };
        outcome.actions[carried_out] += 1;
        let pressure_before = pool.pressure_per_mille();
        let (mut served, mut ooms, mut dropped, mut requests, mut throttled) = (0u64, 0u64, 0u64, 0u64, 0u64);
        if Action::ALL[carried_out] == Action::Reclaim {
            match pool.compact(source) {
                Ok(report) => dropped = report.cache_objects_dropped,
                Err(_) => break,
            }
        }
        let phase = plan[decision as usize];
        let shape = phase.demand();
        if decision == 0 || plan[decision as usize - 1] != phase || decision % 4 == 0 {
            demand_percent = workload.range(shape.demand_percent.0, shape.demand_percent.1);
        }
        for _ in 0..STEPS_PER_DECISION {
            step += 1;
            // Expiries and a few random frees; a free of a dropped cache object is not an error.
            let mut index = 0;
            while index < live.len() {
                if live[index].expires_at_step <= step {
                    let object = live.swap_remove(index);
                    let _ = pool.free(source, object.handle);
                } else {
                    index += 1;
                }
            }
            if !live.is_empty() && workload.chance_percent(2) {
                let object = live.swap_remove(workload.below(live.len() as u64) as usize);
                let _ = pool.free(source, object.handle);
            }
            // The request is drawn whatever happens to it, so every policy sees the same stream.
            if !workload.chance_percent(demand_percent) {
                continue;
            }
            let size = workload.log_uniform(shape.size_bytes.0, shape.size_bytes.1);
            let kind = if workload.chance_percent(shape.reclaimable_percent) {
                MemoryKind::Reclaimable
            } else {
                MemoryKind::Unreclaimable
            };
            let lifetime = workload.log_uniform(shape.lifetime_steps.0, shape.lifetime_steps.1);
            requests += 1;
            if Action::ALL[carried_out] == Action::Throttle {
                throttled += 1;
                continue;
            }
            match pool.allocate(source, size, kind) {
                Ok(handle) => {
                    served += 1;
                    live.push(Live { handle, expires_at_step: step + lifetime });
                }
                Err(_) => ooms += 1,
            }
        }
        let reward = reward_points(served, ooms, dropped, throttled);
        outcome.reward += reward;
        outcome.decisions += 1;
        outcome.served += served;
        outcome.oom_events += ooms;
        outcome.cache_dropped += dropped;
        outcome.throttled += throttled;
        let next_state = observe(&pool, pressure_before, ooms, requests);
        let done = decision + 1 == DECISIONS_PER_EPISODE;
        let transition = Transition {
            state: core::mem::replace(&mut state, next_state.clone()),
            action: chosen,
            reward: reward as f32 / 64.0,
            next_state,
            done,
        };
        if let Some(loss) = controller.learn(transition) {
            losses.push(loss);
        }
    }
    for object in live {
        let _ = pool.free(source, object.handle);
    }
    let _ = pool.compact(source);
    (outcome, losses)
}

/// An interval's reward in points: allocations served, OOM events, cache objects dropped, requests throttled.
fn reward_points(served: u64, ooms: u64, dropped: u64, throttled: u64) -> i64 {
    served as i64 * REWARD_SERVED
        + ooms as i64 * REWARD_OOM
        + dropped as i64 * REWARD_DROPPED
        + throttled as i64 * REWARD_THROTTLED
}

/// The agent's inputs, each scaled to about 0..1.
fn observe(pool: &Pool, pressure_before: u32, ooms: u64, requests: u64) -> Vec<f32> {
    let stats = pool.stats();
    let cache_share = stats.cache_pages as f32 / stats.limit_pages.max(1) as f32;
    let demand = requests as f32 / STEPS_PER_DECISION as f32;
    scaled_state(stats.pressure_per_mille(), pressure_before, cache_share, ooms, demand).to_vec()
}

/// The agent's inputs from measured figures: pressure (per mille / 1000), its change since the previous
/// decision (/ 250 per mille, clamped to ±1), the cache's share of the limit, OOM events (/ 16, at most 1)
/// and demand (requests per step).
fn scaled_state(pressure: u32, previous: u32, cache_share: f32, oom_events: u64, demand: f32) -> [f32; STATE_SIZE] {
    let change = (pressure as f32 - previous as f32) / 250.0;
    [pressure as f32 / 1000.0, change.clamp(-1.0, 1.0), cache_share, (oom_events as f32 / 16.0).min(1.0), demand]
}

/// An episode's phase from measured quantities: `exploring` while ε ≥ 0.5;
/// then `improving` while the mean reward of the last three episodes is more
/// than 5 % above that of the three before; otherwise `exploiting`.
pub fn phase(epsilon: f32, rewards_so_far: &[i64]) -> &'static str {
    if epsilon >= 0.5 {
        return "exploring";
    }
    let count = rewards_so_far.len();
    if count >= 6 {
        let recent = rewards_so_far[count - 3..].iter().sum::<i64>() as f64 / 3.0;
        let before = rewards_so_far[count - 6..count - 3].iter().sum::<i64>() as f64 / 3.0;
        if recent - before > 0.05 * before.abs() {
            return "improving";
        }
    }
    "exploiting"
}

fn mean(values: &[i64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().sum::<i64>() as f64 / values.len() as f64
}

fn percent_change(from: f64, to: f64) -> f64 {
    if from == 0.0 {
        0.0
    } else {
        (to - from) / from.abs() * 100.0
    }
}

/// Moving averages within this share of the last one count as settled, percent.
pub const CONVERGENCE_BAND: f64 = 10.0;

/// The convergence rule (docs/stress.md): the run converged when the greedy policy on the held-out seeds
/// improved with training (`improved`: end above before training, Wilcoxon p < 0.01) and beats the best
/// baseline there (mean above, Wilcoxon p < 0.01); it converged at the first episode from which every
/// 5-episode moving average of the training rewards stays within 10 % of the last one.
pub fn convergence(
    rewards: &[i64],
    improvement: f64,
    improved: bool,
    held_out: &HeldOut,
) -> (bool, Option<u32>, String) {
    if !improved {
        return (
            false,
            None,
            alloc::format!(
                "the greedy policy on held-out seeds did not improve with training at p < {SIGNIFICANCE} ({improvement:+.1} % against the untrained network)"
            ),
        );
    }
    let p_text = held_out
        .test
        .wilcoxon
        .map_or(String::from("no Wilcoxon p"), |test| alloc::format!("Wilcoxon p {:.2e}", test.p_value));
    if !held_out.beats_best_baseline {
        return (
            false,
            None,
            alloc::format!(
                "the learned policy does not beat the best baseline ({}) on held-out seeds: {:.1} against {:.1}, {p_text} (needs a higher mean and p < {SIGNIFICANCE})",
                held_out.best_baseline,
                held_out.learned_mean,
                held_out.best_baseline_mean
            ),
        );
    }
    let averages: Vec<f64> = rewards.windows(WINDOW).map(mean).collect();
    let last = averages.last().copied().unwrap_or(0.0);
    let band = CONVERGENCE_BAND / 100.0 * last.abs();
    let mut settled_from = averages.len();
    while settled_from > 0 && (averages[settled_from - 1] - last).abs() <= band {
        settled_from -= 1;
    }
    // Moving average `i` covers episodes i..i+WINDOW; it is settled from its last episode.
    let episode = (settled_from + WINDOW - 1) as u32;
    (
        true,
        Some(episode),
        alloc::format!(
            "greedy policy improved {improvement:.1} % with training, beats the best baseline ({}) on held-out seeds by {:.1} % ({p_text}), {WINDOW}-episode averages within {CONVERGENCE_BAND:.0} % of the last from episode {episode}",
            held_out.best_baseline,
            held_out.advantage_percent
        ),
    )
}

/// A policy the learned one is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaselinePolicy {
    /// The same action at every decision.
    Constant(Action),
    /// The meta-agent's rules ([`HeuristicPolicy`]).
    Heuristic,
    /// Uniformly random actions ([`RandomPolicy`]).
    Random,
}

impl BaselinePolicy {
    /// Every baseline, in the report's order.
    pub const ALL: [BaselinePolicy; 5] = [
        BaselinePolicy::Constant(Action::Nothing),
        BaselinePolicy::Constant(Action::Reclaim),
        BaselinePolicy::Constant(Action::Throttle),
        BaselinePolicy::Heuristic,
        BaselinePolicy::Random,
    ];

    /// Its name in the report: the constant's action, `heuristic` or `random`.
    pub fn name(self) -> &'static str {
        match self {
            BaselinePolicy::Constant(action) => action.name(),
            BaselinePolicy::Heuristic => "heuristic",
            BaselinePolicy::Random => "random",
        }
    }
}

/// The held-out workload seeds of a run seeded `seed`: indices far above any training episode.
pub fn held_out_seeds(seed: u64) -> Vec<u64> {
    (0..HELD_OUT_EPISODES).map(|index| workload_seed(seed, (1u64 << 32) + index as u64)).collect()
}

/// The agent's greedy policy's reward on each of `seeds`.
fn greedy_rewards<S: FrameSource + ?Sized>(source: &mut S, seeds: &[u64], noise: u32, agent: &Agent) -> Vec<i64> {
    seeds.iter().map(|seed| run_episode(source, *seed, noise, &mut Greedy(agent)).0.reward).collect()
}

/// Every baseline of [`BaselinePolicy::ALL`] on `seeds`; random draws from `random`'s stream.
pub fn measure_baselines<S: FrameSource + ?Sized>(
    source: &mut S,
    seeds: &[u64],
    noise: u32,
    random: &mut RandomPolicy,
) -> Vec<Baseline> {
    BaselinePolicy::ALL
        .iter()
        .map(|policy| {
            let rewards: Vec<i64> = seeds
                .iter()
                .map(|seed| {
                    let (mut constant, mut heuristic);
                    let controller: &mut dyn Controller = match *policy {
                        BaselinePolicy::Constant(action) => {
                            constant = Constant(action);
                            &mut constant
                        }
                        BaselinePolicy::Heuristic => {
                            heuristic = HeuristicPolicy::default();
                            &mut heuristic
                        }
                        BaselinePolicy::Random => &mut *random,
                    };
                    run_episode(source, *seed, noise, controller).0.reward
                })
                .collect();
            Baseline { name: policy.name(), mean: mean(&rewards), rewards }
        })
        .collect()
}

/// The learned rewards against every baseline's on the same seeds; the best baseline is the one with the
/// highest mean (the first of equals).
pub fn compare_with_baselines(
    workload_seeds: Vec<u64>,
    learned_rewards: Vec<i64>,
    baselines: Vec<Baseline>,
) -> HeldOut {
    let learned_mean = mean(&learned_rewards);
    let mut best = 0;
    for (index, baseline) in baselines.iter().enumerate() {
        if baseline.mean > baselines[best].mean {
            best = index;
        }
    }
    let (best_baseline, best_baseline_mean) = baselines.get(best).map_or(("none", 0.0), |b| (b.name, b.mean));
    let best_rewards = baselines.get(best).map_or(&[][..], |b| &b.rewards[..]);
    let (test, beats_best_baseline) = higher_paired(best_rewards, &learned_rewards);
    let effect_size_dz = test.t_test.filter(|t| t.std_dev > 0.0).map(|t| t.mean_difference / t.std_dev);
    HeldOut {
        workload_seeds,
        learned_mean,
        learned_rewards,
        baselines,
        best_baseline,
        best_baseline_mean,
        advantage_percent: percent_change(best_baseline_mean, learned_mean),
        test,
        effect_size_dz,
        beats_best_baseline,
    }
}

/// Paired tests of `after` against `before`, seed by seed (differences after − before), and whether `after` is
/// significantly higher: a higher mean and a Wilcoxon p-value below [`SIGNIFICANCE`].
fn higher_paired(before: &[i64], after: &[i64]) -> (PairedComparison, bool) {
    let as_f64 = |values: &[i64]| values.iter().map(|value| *value as f64).collect::<Vec<f64>>();
    let test = compare_paired(&as_f64(before), &as_f64(after));
    let higher = mean(after) > mean(before) && test.wilcoxon.is_some_and(|wilcoxon| wilcoxon.p_value < SIGNIFICANCE);
    (test, higher)
}

/// Trains `agent` for `config.episodes` episodes (the random policy runs each training episode's seed too),
/// evaluates its greedy policy on the held-out seeds before training, after episode [`CURVE_EPISODE`] and at
/// the end, and every baseline on the same seeds. `progress` gets one line per episode.
pub fn run_learning<S: FrameSource + ?Sized>(
    config: &LearningConfig,
    source: &mut S,
    agent: &mut Agent,
    progress: &mut dyn FnMut(&str),
) -> LearningReport {
    let mut baseline_policy = RandomPolicy(StressRng::new(workload_seed(config.seed, u64::MAX)));
    let held_out_seeds = held_out_seeds(config.seed);
    let mut greedy_curve = Vec::new();
    let before = greedy_rewards(source, &held_out_seeds, config.noise_per_mille, agent);
    progress(&alloc::format!(
        "Greedy policy before training: {:.1} on {HELD_OUT_EPISODES} held-out seeds",
        mean(&before)
    ));
    greedy_curve.push(GreedyPoint::new(0, before));
    let mut episodes = Vec::new();
    let mut rewards = Vec::new();
    let (decisions_before, explorations_before) = agent.decisions();
    for episode in 0..config.episodes {
        let seed = workload_seed(config.seed, episode as u64);
        let (_, explored_before) = agent.decisions();
        let (outcome, losses) = run_episode(source, seed, config.noise_per_mille, &mut Training(agent));
        let (baseline, _) = run_episode(source, seed, config.noise_per_mille, &mut baseline_policy);
        let (_, explored_after) = agent.decisions();
        rewards.push(outcome.reward);
        let epsilon = agent.epsilon();
        let mean_td_loss = if losses.is_empty() { 0.0 } else { losses.iter().sum::<f32>() / losses.len() as f32 };
        let report = EpisodeReport {
            episode,
            workload_seed: seed,
            reward: outcome.reward,
            baseline_reward: baseline.reward,
            outcome,
            epsilon,
            explorations: (explored_after - explored_before) as u32,
            mean_td_loss,
            phase: phase(epsilon, &rewards),
        };
        progress(&alloc::format!(
            "Episode {episode}: reward={} (random {}) epsilon={:.2} td_loss={:.3} ({})",
            report.reward,
            report.baseline_reward,
            epsilon,
            mean_td_loss,
            report.phase
        ));
        episodes.push(report);
        if episode + 1 == CURVE_EPISODE && config.episodes > CURVE_EPISODE {
            let after = greedy_rewards(source, &held_out_seeds, config.noise_per_mille, agent);
            progress(&alloc::format!(
                "Greedy policy after episode {CURVE_EPISODE}: {:.1} on held-out seeds",
                mean(&after)
            ));
            greedy_curve.push(GreedyPoint::new(CURVE_EPISODE, after));
        }
    }

    let learned_rewards = greedy_rewards(source, &held_out_seeds, config.noise_per_mille, agent);
    greedy_curve.push(GreedyPoint::new(config.episodes, learned_rewards.clone()));
    let baselines = measure_baselines(source, &held_out_seeds, config.noise_per_mille, &mut baseline_policy);
    let held_out = compare_with_baselines(held_out_seeds, learned_rewards, baselines);

    let (decisions_after, explorations_after) = agent.decisions();
    let decisions = decisions_after - decisions_before;
    let explorations = explorations_after - explorations_before;
    let exploitations = decisions - explorations;
    let total_reward: i64 = rewards.iter().sum();
    let windows = rewards
        .chunks(WINDOW)
        .enumerate()
        .map(|(index, chunk)| Window {
            first_episode: (index * WINDOW) as u32,
            last_episode: (index * WINDOW + chunk.len() - 1) as u32,
            mean_reward: mean(chunk),
        })
        .collect();
    let first_window_mean = mean(&rewards[..WINDOW.min(rewards.len())]);
    let last_window_mean = mean(&rewards[rewards.len().saturating_sub(WINDOW)..]);
    let untrained = greedy_curve[0].mean_reward;
    let improvement_percent = percent_change(untrained, held_out.learned_mean);
    let (improvement_test, improved) = higher_paired(&greedy_curve[0].rewards, &held_out.learned_rewards);
    let improvement_by_episode_10_percent = greedy_curve
        .iter()
        .find(|point| point.after_episodes == CURVE_EPISODE && config.episodes > CURVE_EPISODE)
        .map(|point| percent_change(untrained, point.mean_reward));
    let (converged, converged_at_episode, convergence_reason) =
        convergence(&rewards, improvement_percent, improved, &held_out);
    let status = if converged {
        Status::Pass
    } else if held_out.learned_mean > held_out.best_baseline_mean {
        Status::PartialPass
    } else {
        Status::Fail
    };
    LearningReport {
        config: *config,
        network: agent.shape(),
        total_reward,
        baseline_total_reward: episodes.iter().map(|episode| episode.baseline_reward).sum(),
        episodes,
        decisions,
        average_reward_per_decision: if decisions == 0 { 0.0 } else { total_reward as f64 / decisions as f64 },
        explorations,
        exploitations,
        exploration_exploitation_ratio: (exploitations > 0).then(|| explorations as f64 / exploitations as f64),
        training_steps: agent.training().0,
        windows,
        first_window_mean,
        last_window_mean,
        training_improvement_percent: percent_change(first_window_mean, last_window_mean),
        greedy_curve,
        improvement_percent,
        improvement_test,
        improved,
        improvement_by_episode_10_percent,
        held_out,
        converged,
        converged_at_episode,
        convergence_reason,
        status,
    }
}

/// Decisions between two training steps of the policy learning online in the kernel (DQN's "train every
/// 4 steps"): each step replays [`ONLINE_BATCH_SIZE`] transitions, so every decision is learned from twice on
/// average.
pub const ONLINE_TRAIN_EVERY: u64 = 4;
/// Transitions a training step of the online policy replays: fewer than training's 64 (the step's cost falls
/// in one meta-agent decision of 10 ms), at the same learning rate per transition
/// ([`sis_ai::Agent::set_batch_size`]).
pub const ONLINE_BATCH_SIZE: usize = 8;

/// The agent driving the kernel's meta-agent (`autoctl policy learned`), and learning online as it does.
///
/// The meta-agent's telemetry is mapped onto the inputs the agent trained on: pressure, its change since the
/// previous decision (/ 250 per mille, clamped to ±1), the cache's share of the limit, OOM events since the
/// previous decision (/ 16, at most 1) and demand (requests per step). Nothing maps to `None`, reclaim to a
/// proactive reclaim and throttle to refusing every request of the coming interval, as in training. It
/// chooses ε-greedily (the agent's ε, at its floor once trained); the confidence is the softmax probability
/// of the chosen action over the Q-values ([`sis_ai::softmax_per_mille`]).
///
/// At each decision the previous one becomes a transition: its state, the action carried out (none when the
/// meta-agent held the decision below its confidence threshold), the reward measured over the interval in
/// the training's points per workload step (+4 per allocation served, −6 per OOM event, 0 per request
/// throttled, −3 per cache object a reclaim dropped), and this decision's state. Every
/// [`ONLINE_TRAIN_EVERY`] transitions the agent takes a training step, counted as a policy update.
///
/// Each decision records its state as named features and the Q-value of every action ([`LEARNED`]), scored by
/// the network version of that moment (its training steps); the policy keeps the last [`NETWORKS_KEPT`]
/// versions so that `autoctl explain` attributes a decision with the network that made it.
#[derive(Debug, Clone)]
pub struct LearnedPolicy {
    agent: Agent,
    previous_pressure: Option<u16>,
    /// The previous decision's state and the action carried out, waiting for its interval's reward.
    pending: Option<([f32; STATE_SIZE], usize)>,
    transitions: u64,
    updates_unreported: u64,
    /// The forward pass's memory, reused from one decision to the next.
    scratch: Scratch,
    /// The network versions recent decisions were scored with.
    networks: scoring::Networks,
}

impl LearnedPolicy {
    /// A policy driven by `agent`, which goes on learning from the decisions it makes, [`ONLINE_BATCH_SIZE`]
    /// transitions per training step.
    pub fn new(mut agent: Agent) -> Self {
        agent.set_batch_size(ONLINE_BATCH_SIZE);
        LearnedPolicy {
            agent,
            previous_pressure: None,
            pending: None,
            transitions: 0,
            updates_unreported: 0,
            scratch: Scratch::default(),
            networks: scoring::Networks::default(),
        }
    }

    /// The agent as it has learned so far.
    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// Transitions learned from.
    pub fn transitions(&self) -> u64 {
        self.transitions
    }

    /// The reward of the interval `telemetry` reports on, in points per workload step (training's scale:
    /// an episode's decision gets its 64 steps' points / 64).
    pub fn reward(telemetry: &sis_autonomy::Telemetry) -> f32 {
        let ooms = telemetry.oom_events as u64;
        let served = telemetry.allocation_requests.saturating_sub(ooms + telemetry.requests_throttled);
        let points = reward_points(served, ooms, telemetry.cache_objects_dropped, telemetry.requests_throttled);
        points as f32 / telemetry.steps.max(1) as f32
    }

    /// [`LearnedPolicy::reward`] in integers: thousandths of a point per workload step, truncated toward zero
    /// (the canary and shadow reports compare these, so the host and the kernel agree to the unit).
    pub fn reward_milli(telemetry: &sis_autonomy::Telemetry) -> i64 {
        let ooms = telemetry.oom_events as u64;
        let served = telemetry.allocation_requests.saturating_sub(ooms + telemetry.requests_throttled);
        let points = reward_points(served, ooms, telemetry.cache_objects_dropped, telemetry.requests_throttled);
        points.saturating_mul(1000) / telemetry.steps.max(1) as i64
    }

    /// The agent's inputs for `telemetry`, given the pressure at the previous decision.
    pub fn state(telemetry: &sis_autonomy::Telemetry, previous_pressure: Option<u16>) -> [f32; STATE_SIZE] {
        let pressure = telemetry.pressure_per_mille;
        scaled_state(
            pressure as u32,
            previous_pressure.unwrap_or(pressure) as u32,
            telemetry.cache_per_mille as f32 / 1000.0,
            telemetry.oom_events as u64,
            telemetry.demand_per_mille as f32 / 1000.0,
        )
    }
}

impl sis_autonomy::Policy for LearnedPolicy {
    fn name(&self) -> &'static str {
        "learned"
    }

    fn decide(
        &mut self,
        telemetry: &sis_autonomy::Telemetry,
        config: &sis_autonomy::MetaConfig,
    ) -> sis_autonomy::Decision {
        use sis_autonomy::{Decision, Directive, Prediction, Reason, Selection};
        let state = Self::state(telemetry, self.previous_pressure);
        self.previous_pressure = Some(telemetry.pressure_per_mille);
        if let Some((previous, action)) = self.pending.take() {
            self.agent.record(&previous, action, Self::reward(telemetry), &state, false);
            self.transitions += 1;
            if self.transitions.is_multiple_of(ONLINE_TRAIN_EVERY) && self.agent.train().is_some() {
                self.updates_unreported += 1;
            }
        }
        let version = self.agent.training().0;
        self.networks.remember(version, self.agent.network());
        let q_values = self.agent.q_values_in(&state, &mut self.scratch);
        let (action, explored) = self.agent.act_on(q_values);
        let scoring = scoring_of(&state, q_values, action, version);
        let confidence = sis_ai::softmax_per_mille(q_values, action);
        let acted = Action::ALL[action] != Action::Nothing && confidence >= config.confidence_threshold_per_mille;
        self.pending = Some((state, if acted { action } else { Action::Nothing as usize }));
        let (directive, prediction) = match Action::ALL[action] {
            Action::Nothing => (Directive::None, None),
            Action::Reclaim => (Directive::ProactiveReclaim, Some(Prediction::Oom)),
            Action::Throttle => (Directive::ThrottleAllocations { per_mille: 1000 }, Some(Prediction::Oom)),
        };
        Decision {
            directive,
            confidence_per_mille: confidence,
            reason: Reason::Learned { action: action as u16 },
            selection: if explored { Selection::Exploration } else { Selection::Exploitation },
            prediction,
            scoring,
        }
    }

    fn take_updates(&mut self) -> u64 {
        core::mem::take(&mut self.updates_unreported)
    }

    fn scorer(
        &self,
        trace: &sis_autonomy::DecisionTrace,
    ) -> Result<alloc::boxed::Box<dyn sis_autonomy::Scorer + Send>, sis_autonomy::ScorerUnavailable> {
        self.networks.scorer(trace)
    }
}

/// The learned decision's scoring: the state as features, each action's Q-value.
fn scoring_of(state: &[f32; STATE_SIZE], q_values: &[f32], action: usize, version: u64) -> sis_autonomy::Scoring {
    let features = state.map(f64::from);
    let mut scores = [0.0f64; sis_autonomy::MAX_ACTIONS];
    let count = q_values.len().min(scores.len());
    for (slot, q) in scores.iter_mut().zip(q_values) {
        *slot = f64::from(*q);
    }
    // A network with other than the three actions could not have chosen one of them (the action is an index into
    // Action::ALL): the counts always match here.
    sis_autonomy::Scoring::new(&LEARNED, &features, &scores[..count], action, version)
        .unwrap_or(sis_autonomy::Scoring::NONE)
}

/// What the agent costs per decision, against the workload interval it decides for (`neuralctl bench`, `bench ai`).
#[derive(Debug, Clone, Serialize)]
pub struct CostReport {
    /// Training episodes measured (a fresh agent, seeded).
    pub episodes: u32,
    /// The agent's seed.
    pub seed: u64,
    /// Decisions timed.
    pub decisions: u64,
    /// Choosing an action: one forward pass and the ε-greedy draw.
    pub inference: LatencySummary,
    /// Learning from the decision: storing the transition and one training step
    /// (a replay batch of `batch_size`, forward and backward passes, SGD, target sync).
    pub update: LatencySummary,
    /// The decision interval: the pool carrying out the action and the workload's
    /// [`STEPS_PER_DECISION`] steps until the next observation.
    pub interval: LatencySummary,
    /// Total time choosing, ns.
    pub inference_total_ns: u64,
    /// Total time learning, ns.
    pub update_total_ns: u64,
    /// Total time of the intervals, ns.
    pub interval_total_ns: u64,
    /// (inference + update) / interval over the whole run, percent.
    pub overhead_percent: f64,
    /// Transitions per training step.
    pub batch_size: usize,
    /// Network layer sizes, inputs first.
    pub network: Vec<usize>,
    /// Where the network's inner loops ran ([`sis_ai::vector_unit`]): `software` or, in the kernel, `fpu`.
    pub vector_unit: &'static str,
}

/// The training controller with a clock on each part of a decision.
struct Timed<'a, C: Clock> {
    agent: &'a mut Agent,
    clock: &'a C,
    chosen_at_ns: u64,
    inference: LatencyHistogram,
    update: LatencyHistogram,
    interval: LatencyHistogram,
    totals: [u64; 3],
}

impl<C: Clock> Controller for Timed<'_, C> {
    fn choose(&mut self, state: &[f32]) -> usize {
        let start = self.clock.now_ns();
        let action = self.agent.act(state).0;
        self.chosen_at_ns = self.clock.now_ns();
        let took = self.chosen_at_ns - start;
        self.inference.record(took);
        self.totals[0] += took;
        action
    }

    fn learn(&mut self, transition: Transition) -> Option<f32> {
        let start = self.clock.now_ns();
        let interval = start - self.chosen_at_ns;
        self.interval.record(interval);
        self.totals[2] += interval;
        self.agent.remember(transition);
        let loss = self.agent.train();
        let took = self.clock.now_ns() - start;
        self.update.record(took);
        self.totals[1] += took;
        loss
    }
}

/// Trains a fresh agent for `episodes` episodes of the control problem, timing with `clock` every
/// decision's inference, its update and the interval between them.
pub fn measure_costs<S: FrameSource + ?Sized, C: Clock>(
    source: &mut S,
    clock: &C,
    seed: u64,
    episodes: u32,
) -> CostReport {
    let mut agent = new_agent(seed, episodes);
    let network = agent.shape();
    let mut timed = Timed {
        agent: &mut agent,
        clock,
        chosen_at_ns: 0,
        inference: LatencyHistogram::new(),
        update: LatencyHistogram::new(),
        interval: LatencyHistogram::new(),
        totals: [0; 3],
    };
    for episode in 0..episodes {
        run_episode(source, workload_seed(seed, episode as u64), 0, &mut timed);
    }
    let [inference_total_ns, update_total_ns, interval_total_ns] = timed.totals;
    CostReport {
        episodes,
        seed,
        decisions: timed.inference.count(),
        inference: timed.inference.summary(),
        update: timed.update.summary(),
        interval: timed.interval.summary(),
        inference_total_ns,
        update_total_ns,
        interval_total_ns,
        overhead_percent: if interval_total_ns == 0 {
            0.0
        } else {
            (inference_total_ns + update_total_ns) as f64 / interval_total_ns as f64 * 100.0
        },
        batch_size: agent_config(episodes).batch_size,
        network,
        vector_unit: sis_ai::vector_unit().name,
    }
}

mod scoring;
pub use scoring::{LEARNED, NETWORKS_KEPT};

#[cfg(test)]
mod tests;
