//! Q-learning with a neural function approximator, experience replay sampled at random, and a target network.

use alloc::vec::Vec;

use crate::network::Scratch;
use crate::weights::{NetworkWeights, WeightsError};
use crate::{Network, Random};

/// Learning parameters.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Hidden layer sizes.
    pub hidden: Vec<usize>,
    /// Discount factor γ.
    pub discount: f32,
    /// SGD step size.
    pub learning_rate: f32,
    /// Exploration rate at the start.
    pub epsilon_start: f32,
    /// Exploration rate after the decay.
    pub epsilon_end: f32,
    /// Decisions over which ε decays linearly.
    pub epsilon_decay_steps: u64,
    /// Transitions kept for replay (oldest replaced first).
    pub replay_capacity: usize,
    /// Transitions per training step.
    pub batch_size: usize,
    /// Training steps between copies of the online network into the target network.
    pub target_sync_every: u64,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            hidden: alloc::vec![32],
            discount: 0.95,
            learning_rate: 0.01,
            epsilon_start: 1.0,
            epsilon_end: 0.05,
            epsilon_decay_steps: 2_000,
            replay_capacity: 4_096,
            batch_size: 16,
            target_sync_every: 50,
        }
    }
}

/// One step of experience.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// State before acting.
    pub state: Vec<f32>,
    /// Action taken.
    pub action: usize,
    /// Reward measured after it.
    pub reward: f32,
    /// State after acting.
    pub next_state: Vec<f32>,
    /// Whether the episode ended.
    pub done: bool,
}

/// Transitions kept for replay, in flat arrays: once the ring is full, a new transition overwrites the
/// oldest in place, so remembering allocates nothing. States are kept at the network's input width.
#[derive(Debug, Clone)]
struct Replay {
    width: usize,
    capacity: usize,
    states: Vec<f32>,
    next_states: Vec<f32>,
    actions: Vec<usize>,
    rewards: Vec<f32>,
    done: Vec<bool>,
    /// The slot the next transition overwrites once the ring is full.
    next: usize,
}

impl Replay {
    fn new(width: usize, capacity: usize) -> Self {
        Replay {
            width,
            capacity,
            states: Vec::new(),
            next_states: Vec::new(),
            actions: Vec::new(),
            rewards: Vec::new(),
            done: Vec::new(),
            next: 0,
        }
    }

    fn len(&self) -> usize {
        self.actions.len()
    }

    /// Copies `state` into `slot` of `states` (a new slot at the end when `slot` is the length), cut or
    /// padded with 0 to the width.
    fn store(states: &mut Vec<f32>, width: usize, slot: usize, state: &[f32]) {
        if states.len() < (slot + 1) * width {
            states.resize((slot + 1) * width, 0.0);
        }
        let stored = &mut states[slot * width..(slot + 1) * width];
        let kept = state.len().min(width);
        stored[..kept].copy_from_slice(&state[..kept]);
        stored[kept..].fill(0.0);
    }

    fn push(&mut self, state: &[f32], action: usize, reward: f32, next_state: &[f32], done: bool) {
        if self.capacity == 0 {
            return;
        }
        let slot = if self.len() < self.capacity {
            self.actions.push(action);
            self.rewards.push(reward);
            self.done.push(done);
            self.len() - 1
        } else {
            let slot = self.next;
            self.next = (self.next + 1) % self.capacity;
            (self.actions[slot], self.rewards[slot], self.done[slot]) = (action, reward, done);
            slot
        };
        Self::store(&mut self.states, self.width, slot, state);
        Self::store(&mut self.next_states, self.width, slot, next_state);
    }

    fn state(&self, slot: usize) -> &[f32] {
        &self.states[slot * self.width..(slot + 1) * self.width]
    }

    fn next_state(&self, slot: usize) -> &[f32] {
        &self.next_states[slot * self.width..(slot + 1) * self.width]
    }
}

/// A Q-learning agent.
#[derive(Debug, Clone)]
pub struct Agent {
    config: AgentConfig,
    online: Network,
    target: Network,
    replay: Replay,
    random: Random,
    decisions: u64,
    explorations: u64,
    training_steps: u64,
    last_loss: f32,
    /// Activations of a training step, kept to reuse their memory.
    scratch: Scratch,
}

impl Agent {
    /// An agent for `state_size` inputs and `action_count` actions, weights drawn from `seed`.
    pub fn new(state_size: usize, action_count: usize, config: AgentConfig, seed: u64) -> Self {
        let mut random = Random::new(seed);
        let mut sizes = alloc::vec![state_size];
        sizes.extend_from_slice(&config.hidden);
        sizes.push(action_count);
        let online = Network::new(&sizes, &mut random);
        let target = online.clone();
        Agent {
            replay: Replay::new(state_size, config.replay_capacity),
            config,
            online,
            target,
            random,
            decisions: 0,
            explorations: 0,
            training_steps: 0,
            last_loss: 0.0,
            scratch: Scratch::default(),
        }
    }

    /// Replays `batch_size` transitions (at least 1) per training step from now on, the learning rate scaled
    /// by the same factor so that each replayed transition moves the weights as much as before: a policy
    /// learning online can take smaller, more frequent steps than its training did, at the same rate per
    /// transition.
    pub fn set_batch_size(&mut self, batch_size: usize) {
        let batch_size = batch_size.max(1);
        self.config.learning_rate *= batch_size as f32 / self.config.batch_size.max(1) as f32;
        self.config.batch_size = batch_size;
    }

    /// Transitions replayed per training step.
    pub fn batch_size(&self) -> usize {
        self.config.batch_size
    }

    /// Current exploration rate.
    pub fn epsilon(&self) -> f32 {
        let (start, end) = (self.config.epsilon_start, self.config.epsilon_end);
        if self.decisions >= self.config.epsilon_decay_steps.max(1) {
            // Progress 1 (as the quotient below would give): the same value without dividing in software.
            return start + (end - start);
        }
        let progress = (self.decisions as f32 / self.config.epsilon_decay_steps.max(1) as f32).min(1.0);
        start + (end - start) * progress
    }

    /// Q-values of `state`.
    pub fn q_values(&self, state: &[f32]) -> Vec<f32> {
        self.online.forward(state)
    }

    /// [`Agent::q_values`] in caller-provided scratch space (nothing is allocated once it has grown).
    pub fn q_values_in<'a>(&self, state: &[f32], scratch: &'a mut Scratch) -> &'a [f32] {
        self.online.forward_in(state, scratch)
    }

    /// The action with the highest Q-value (lowest index on ties).
    pub fn greedy(&self, state: &[f32]) -> usize {
        argmax(&self.q_values(state))
    }

    /// ε-greedy choice; returns the action and whether it explored.
    pub fn act(&mut self, state: &[f32]) -> (usize, bool) {
        match self.explore() {
            Some(action) => (action, true),
            None => (self.greedy(state), false),
        }
    }

    /// [`Agent::act`] on the current state's Q-values, computed by the caller: the same draws, the same choice.
    pub fn act_on(&mut self, q_values: &[f32]) -> (usize, bool) {
        match self.explore() {
            Some(action) => (action, true),
            None => (argmax(q_values), false),
        }
    }

    /// Counts a decision and draws whether it explores; if it does, the random action.
    fn explore(&mut self) -> Option<usize> {
        let epsilon = self.epsilon();
        self.decisions += 1;
        if self.random.unit() < epsilon {
            self.explorations += 1;
            Some(self.random.below(self.online.outputs() as u64) as usize)
        } else {
            None
        }
    }

    /// Stores a transition for replay.
    pub fn remember(&mut self, transition: Transition) {
        let Transition { state, action, reward, next_state, done } = transition;
        self.record(&state, action, reward, &next_state, done);
    }

    /// [`Agent::remember`] from borrowed states: once replay is full, nothing is allocated.
    pub fn record(&mut self, state: &[f32], action: usize, reward: f32, next_state: &[f32], done: bool) {
        self.replay.push(state, action, reward, next_state, done);
    }

    /// One training step on a batch sampled uniformly from replay; returns the mean loss, or
    /// `None` while replay holds fewer transitions than a batch.
    pub fn train(&mut self) -> Option<f32> {
        if self.replay.len() < self.config.batch_size {
            return None;
        }
        let rate = self.config.learning_rate / self.config.batch_size as f32;
        let mut total = 0.0;
        let mut scratch = core::mem::take(&mut self.scratch);
        for _ in 0..self.config.batch_size {
            let slot = self.random.below(self.replay.len() as u64) as usize;
            let next_best = if self.replay.done[slot] {
                0.0
            } else {
                let next_q = self.target.forward_in(self.replay.next_state(slot), &mut scratch);
                next_q.iter().copied().fold(f32::MIN, f32::max)
            };
            let target = self.replay.rewards[slot] + self.config.discount * next_best;
            let (state, action) = (self.replay.state(slot), self.replay.actions[slot]);
            total += self.online.train_output(state, action, target, rate, &mut scratch);
        }
        self.scratch = scratch;
        self.training_steps += 1;
        if self.training_steps.is_multiple_of(self.config.target_sync_every.max(1)) {
            self.target.copy_from(&self.online);
        }
        self.last_loss = total / self.config.batch_size as f32;
        Some(self.last_loss)
    }

    /// Decisions made, of which explored.
    pub fn decisions(&self) -> (u64, u64) {
        (self.decisions, self.explorations)
    }

    /// Training steps taken and the last mean loss.
    pub fn training(&self) -> (u64, f32) {
        (self.training_steps, self.last_loss)
    }

    /// Transitions held for replay.
    pub fn replay_len(&self) -> usize {
        self.replay.len()
    }

    /// The network's layer sizes.
    pub fn shape(&self) -> Vec<usize> {
        self.online.shape()
    }

    /// The online network: the one that chooses (for snapshots and inspection).
    pub fn network(&self) -> &Network {
        &self.online
    }

    /// The online network's parameters (for saving).
    pub fn parameters(&self) -> Vec<f32> {
        self.online.parameters()
    }

    /// Loads saved parameters into the online and the target network; refused values change nothing.
    pub fn load_parameters(&mut self, values: &[f32]) -> Result<(), crate::ParameterError> {
        self.online.set_parameters(values)?;
        self.target.copy_from(&self.online);
        Ok(())
    }

    /// The online network's layer sizes and parameters (the `agent-network` weights format).
    pub fn weights(&self) -> NetworkWeights {
        self.online.weights()
    }

    /// Loads decoded weights into the online and the target network: their layer sizes must be the agent's.
    /// A refusal changes nothing.
    pub fn load_weights(&mut self, weights: &NetworkWeights) -> Result<(), WeightsError> {
        let agent = self.shape();
        if weights.sizes != agent {
            return Err(WeightsError::ArchitectureMismatch { weights: weights.sizes.clone(), agent });
        }
        self.load_parameters(&weights.parameters).map_err(|error| match error {
            crate::ParameterError::Count { expected, given } => WeightsError::ParameterCount { expected, given },
            crate::ParameterError::NotFinite { index } => WeightsError::NotFinite { index },
        })
    }
}

fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (index, value) in values.iter().enumerate() {
        if *value > values[best] {
            best = index;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATES: usize = 6;
    const RIGHT: usize = 1;

    fn one_hot(state: usize) -> Vec<f32> {
        (0..STATES).map(|index| if index == state { 1.0 } else { 0.0 }).collect()
    }

    /// A chain: start at 0, +1 for reaching the right end, -0.01 per step; at most 40 steps.
    fn episode(agent: &mut Agent, learn: bool) -> f32 {
        let mut state = 0;
        let mut total = 0.0;
        for _ in 0..40 {
            let action = if learn { agent.act(&one_hot(state)).0 } else { agent.greedy(&one_hot(state)) };
            // Action 0 moves left, action 1 right.
            let next = if action == RIGHT { state + 1 } else { state.saturating_sub(1) };
            let done = next == STATES - 1;
            let reward = if done { 1.0 } else { -0.01 };
            total += reward;
            if learn {
                agent.remember(Transition { state: one_hot(state), action, reward, next_state: one_hot(next), done });
                agent.train();
            }
            state = next;
            if done {
                break;
            }
        }
        total
    }

    #[test]
    fn learns_the_optimal_policy_of_a_chain() {
        let mut agent = Agent::new(STATES, 2, AgentConfig { epsilon_decay_steps: 1_500, ..AgentConfig::default() }, 11);
        let before = episode(&mut agent.clone(), false);
        for _ in 0..150 {
            episode(&mut agent, true);
        }
        for state in 0..STATES - 1 {
            assert_eq!(agent.greedy(&one_hot(state)), RIGHT, "state {state}: {:?}", agent.q_values(&one_hot(state)));
        }
        // Optimal: 4 steps of -0.01, then +1.
        let after = episode(&mut agent, false);
        assert!((after - 0.96).abs() < 1e-5, "greedy return {after}");
        assert!(after > before, "{before} -> {after}");
        let (decisions, explorations) = agent.decisions();
        assert!(explorations > 0 && explorations < decisions);
        assert!(agent.epsilon() < 0.06);
    }

    #[test]
    fn epsilon_decays_linearly_and_stays_at_its_floor() {
        let config =
            AgentConfig { epsilon_start: 1.0, epsilon_end: 0.05, epsilon_decay_steps: 7, ..AgentConfig::default() };
        let mut agent = Agent::new(STATES, 2, config, 1);
        let formula = |decisions: u64| 1.0 + (0.05f32 - 1.0) * (decisions as f32 / 7.0).min(1.0);
        for decisions in [0, 3, 6, 7, 8, 1_000] {
            agent.decisions = decisions;
            assert_eq!(agent.epsilon().to_bits(), formula(decisions).to_bits(), "after {decisions} decisions");
        }
    }

    #[test]
    fn same_seed_same_learning() {
        let config = AgentConfig::default();
        let mut a = Agent::new(STATES, 2, config.clone(), 5);
        let mut b = Agent::new(STATES, 2, config, 5);
        for _ in 0..20 {
            assert_eq!(episode(&mut a, true), episode(&mut b, true));
        }
        assert_eq!(a.q_values(&one_hot(2)), b.q_values(&one_hot(2)));
    }

    #[test]
    fn replay_keeps_its_capacity_and_waits_for_a_batch() {
        let mut agent =
            Agent::new(2, 2, AgentConfig { replay_capacity: 4, batch_size: 3, ..AgentConfig::default() }, 1);
        let transition = |reward| Transition {
            state: alloc::vec![0.0, 1.0],
            action: 0,
            reward,
            next_state: alloc::vec![1.0, 0.0],
            done: false,
        };
        agent.remember(transition(1.0));
        agent.remember(transition(2.0));
        assert_eq!(agent.train(), None);
        for reward in 3..10 {
            agent.remember(transition(reward as f32));
        }
        assert_eq!(agent.replay_len(), 4);
        assert!(agent.train().is_some());
        assert_eq!(agent.training().0, 1);
    }
}
