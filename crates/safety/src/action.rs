//! What a guardrail judges: the effector an action goes through, its magnitude, and the live state it changes.

use serde::Serialize;

/// An interface through which an agent changes the system; each has its own envelope of rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effector {
    /// A reclaim (compaction) request to the memory workload's pool. Magnitude: 1 per request.
    MemoryReclaim,
    /// The share of allocation requests the pool refuses. Magnitude: the share, per mille.
    AllocationThrottle,
    /// The pressure the pool's owner steers toward (a memory strategy switch). Magnitude: the new cap, per
    /// mille; 1000 is no cap (the Aggressive strategy).
    PressureCap,
    /// A deadline thread's relative deadline, relaxed D' = D * (1000 + m) / 1000. Magnitude: m, per mille.
    DeadlineRelaxation,
    /// A deadline server given to best-effort work (the command consumer). Magnitude: 1 per boost.
    PriorityBoost,
    /// The command flood's producer limited. Magnitude: lines per second allowed.
    OutputRateLimit,
    /// Any other action of an agent or a model, named by the action (magnitude in its own unit, per mille of
    /// its full scale), until it gets an envelope of its own.
    Generic,
}

/// Number of effectors.
pub const EFFECTORS: usize = 7;

impl Effector {
    /// Every effector, in the order of [`Effector::index`].
    pub const ALL: [Effector; EFFECTORS] = [
        Effector::MemoryReclaim,
        Effector::AllocationThrottle,
        Effector::PressureCap,
        Effector::DeadlineRelaxation,
        Effector::PriorityBoost,
        Effector::OutputRateLimit,
        Effector::Generic,
    ];

    /// Position in [`Effector::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Stable name (as serialized).
    pub const fn name(self) -> &'static str {
        match self {
            Effector::MemoryReclaim => "memory_reclaim",
            Effector::AllocationThrottle => "allocation_throttle",
            Effector::PressureCap => "pressure_cap",
            Effector::DeadlineRelaxation => "deadline_relaxation",
            Effector::PriorityBoost => "priority_boost",
            Effector::OutputRateLimit => "output_rate_limit",
            Effector::Generic => "generic",
        }
    }

    /// Unit of an action's magnitude.
    pub const fn unit(self) -> &'static str {
        match self {
            Effector::MemoryReclaim => "request",
            Effector::AllocationThrottle | Effector::PressureCap | Effector::DeadlineRelaxation => "per mille",
            Effector::PriorityBoost => "boost",
            Effector::OutputRateLimit => "lines/s",
            Effector::Generic => "per mille of full scale",
        }
    }
}

/// An action an agent proposes, before anything is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ProposedAction {
    /// Where it acts.
    pub effector: Effector,
    /// How much, in the effector's unit ([`Effector::unit`]).
    pub magnitude: u64,
    /// The action's name as its proposer calls it (a directive, a model's action), for traces.
    pub name: &'static str,
}

impl ProposedAction {
    /// An action named after its effector.
    pub const fn new(effector: Effector, magnitude: u64) -> Self {
        ProposedAction { effector, magnitude, name: effector.name() }
    }

    /// A named action through the generic effector.
    pub const fn generic(name: &'static str, magnitude: u64) -> Self {
        ProposedAction { effector: Effector::Generic, magnitude, name }
    }
}

/// The watched deadline thread's server, as the scheduler holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeadlineState {
    /// Relative deadline D in force, ns.
    pub deadline_ns: u64,
    /// Period T, ns.
    pub period_ns: u64,
    /// The longest relative deadline the scheduler accepts for this server, ns (for CBS+EDF,
    /// `MAX_DEADLINE_PERIODS` periods: `CbsEdf::set_deadline` refuses beyond it).
    pub bound_ns: u64,
}

/// What the caller knows of the system now; invariants are judged on it, and on what an action would make of
/// it ([`LiveState::after`]). The default is a system with nothing in force: no throttle, no cap, no rate
/// limit, no deadline thread watched, and the console holding its capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LiveState {
    /// The pool's throttle in force, per mille of allocation requests refused.
    pub throttle_per_mille: u64,
    /// The pool's pressure cap in force, per mille (1000: no cap).
    pub pressure_cap_per_mille: u64,
    /// The command producer's rate limit in force, lines per second (0: none).
    pub output_rate_lines_per_second: u64,
    /// The watched deadline thread's server, if one is attached.
    pub deadline: Option<DeadlineState>,
    /// The console holds the capability to run every command, so a person can always stop an agent (the
    /// kernel fills it from the capabilities console lines run with).
    pub console_capability_held: bool,
}

impl Default for LiveState {
    fn default() -> Self {
        LiveState {
            throttle_per_mille: 0,
            pressure_cap_per_mille: 1000,
            output_rate_lines_per_second: 0,
            deadline: None,
            console_capability_held: true,
        }
    }
}

impl LiveState {
    /// The state once `action` is carried out: the throttle, cap or rate limit becomes its magnitude; a
    /// relaxation scales the relative deadline (saturating); reclaims, boosts and generic actions change none
    /// of these fields.
    pub fn after(&self, action: &ProposedAction) -> LiveState {
        let mut after = *self;
        match action.effector {
            Effector::AllocationThrottle => after.throttle_per_mille = action.magnitude,
            Effector::PressureCap => after.pressure_cap_per_mille = action.magnitude,
            Effector::OutputRateLimit => after.output_rate_lines_per_second = action.magnitude,
            Effector::DeadlineRelaxation => {
                if let Some(deadline) = after.deadline.as_mut() {
                    deadline.deadline_ns = relaxed_deadline_ns(deadline.deadline_ns, action.magnitude);
                }
            }
            Effector::MemoryReclaim | Effector::PriorityBoost | Effector::Generic => {}
        }
        after
    }
}

/// D * (1000 + relax) / 1000, saturating at `u64::MAX` (which no bound accepts).
pub fn relaxed_deadline_ns(deadline_ns: u64, relax_per_mille: u64) -> u64 {
    (deadline_ns as u128)
        .checked_mul(1000 + relax_per_mille as u128)
        .and_then(|scaled| u64::try_from(scaled / 1000).ok())
        .unwrap_or(u64::MAX)
}
