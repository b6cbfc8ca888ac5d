//! Per-principal limits: a token budget per window, a request rate limit (token bucket), a model size limit;
//! exact counters.
//!
//! **Budget.** A principal may be granted `budget_tokens` generated tokens per window of `window_ns`. Windows
//! are fixed and aligned to the first one (which starts when the principal is first seen or set): at time `t`
//! the window is `[start + k * window_ns, start + (k + 1) * window_ns)`. A request asks for `max_tokens`; the
//! policy grants `min(max_tokens, remaining)` — a request larger than the remainder is **cut** to the remainder
//! (the grant says so) — and **refuses** it only when the remainder is 0, with the window's reset time. Grants
//! are charged up front so concurrent requests cannot overdraw; [`Policy::complete`] returns the unused part
//! to the window it was granted in (not to a later window).
//!
//! **Rate.** A token bucket holds up to `burst` requests and refills at `rate_per_second`; each allowed request
//! takes one. The arithmetic is exact: the level is kept in units of 10^-9 request, so `rate_per_second`
//! units arrive every nanosecond, and a refusal's retry-after is the exact number of nanoseconds until one whole
//! request is available (rounded up).
//!
//! **Refusals change nothing** but the counters: a request refused by the budget takes nothing from the bucket.
//!
//! **Settings.** Every setting is at least 1: a budget, window, rate, burst or size of 0 is refused as an invalid
//! setting (to shut a principal out, give it a budget of 1 token per `u64::MAX` ns). `u64::MAX` is valid for
//! each, and the arithmetic (u128 for the bucket, checked or saturating elsewhere) cannot overflow.

mod bucket;
#[cfg(test)]
mod tests;

use alloc::vec::Vec;
use core::fmt;

use serde::Serialize;

use crate::principal::Principal;
use bucket::Bucket;

/// Principals a policy keeps state for at most; a new principal beyond that is refused.
pub const MAX_PRINCIPALS: usize = 256;
/// Grants open (granted, not completed) at once at most, over all principals.
pub const MAX_OPEN_GRANTS: usize = 64;

/// A principal's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Generated tokens per window.
    pub budget_tokens: u64,
    /// The window's length in ns.
    pub window_ns: u64,
    /// Requests per second the bucket refills.
    pub rate_per_second: u64,
    /// Requests the bucket holds at most.
    pub burst: u64,
    /// Bytes of a model artifact this principal may register at most.
    pub max_model_bytes: u64,
}

impl Limits {
    /// 10,000 tokens a minute, 10 requests a second with bursts of 20, models up to 1 MiB.
    pub const DEFAULT: Limits = Limits {
        budget_tokens: 10_000,
        window_ns: 60_000_000_000,
        rate_per_second: 10,
        burst: 20,
        max_model_bytes: 1 << 20,
    };

    /// Refuses a setting of 0.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let settings = [
            (Setting::BudgetTokens, self.budget_tokens),
            (Setting::WindowNs, self.window_ns),
            (Setting::RatePerSecond, self.rate_per_second),
            (Setting::Burst, self.burst),
            (Setting::MaxModelBytes, self.max_model_bytes),
        ];
        match settings.into_iter().find(|(_, value)| *value == 0) {
            Some((setting, value)) => Err(PolicyError::InvalidSetting { setting, value }),
            None => Ok(()),
        }
    }
}

/// A setting, named in errors and audit entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Setting {
    /// [`Limits::budget_tokens`].
    BudgetTokens,
    /// [`Limits::window_ns`].
    WindowNs,
    /// [`Limits::rate_per_second`].
    RatePerSecond,
    /// [`Limits::burst`].
    Burst,
    /// [`Limits::max_model_bytes`].
    MaxModelBytes,
}

impl Setting {
    /// Its name in `--json` and messages.
    pub fn name(self) -> &'static str {
        match self {
            Setting::BudgetTokens => "budget_tokens",
            Setting::WindowNs => "window_ns",
            Setting::RatePerSecond => "rate_per_second",
            Setting::Burst => "burst",
            Setting::MaxModelBytes => "max_model_bytes",
        }
    }
}

/// Exact counts for one principal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Inference requests seen.
    pub requests: u64,
    /// Requests granted (in full or cut).
    pub allowed: u64,
    /// Of those, requests cut to the remaining budget.
    pub cut: u64,
    /// Requests refused by the rate limit.
    pub refused_rate: u64,
    /// Requests refused because the window's budget was spent.
    pub refused_budget: u64,
    /// Requests refused as invalid (0 tokens asked) or for lack of room (too many principals or open grants).
    pub refused_other: u64,
    /// Tokens granted.
    pub tokens_granted: u64,
    /// Tokens reported used by completed requests.
    pub tokens_used: u64,
    /// Requests completed.
    pub completed: u64,
}

/// What a request was granted: the caller's receipt, handed back to [`Policy::complete`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// Names the grant (never reused by a policy).
    pub id: u64,
    /// Who it was granted to.
    pub principal: Principal,
    /// Tokens asked for.
    pub requested_tokens: u64,
    /// Tokens granted: all asked for, or the window's remainder when that was smaller.
    pub granted_tokens: u64,
    /// Whether the request was cut to the remainder.
    pub cut: bool,
    /// Tokens left in the window after this grant.
    pub remaining_tokens: u64,
    /// When the window it was charged to began.
    pub window_start_ns: u64,
    /// When that window ends and the budget is whole again (`u64::MAX`: not within the clock's range).
    pub window_reset_ns: u64,
}

/// A principal's state as a view (nothing is changed by reading it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Status {
    /// Whose.
    pub principal: Principal,
    /// Its limits.
    pub limits: Limits,
    /// Tokens charged to the current window (may exceed the budget if the budget was lowered).
    pub window_used_tokens: u64,
    /// Tokens left in the current window.
    pub remaining_tokens: u64,
    /// When the current window began.
    pub window_start_ns: u64,
    /// When it ends.
    pub window_reset_ns: u64,
    /// Whole requests in the bucket now.
    pub bucket_requests: u64,
    /// Its counters.
    pub counters: Counters,
}

/// Why a request or a setting was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyError {
    /// A setting of 0.
    InvalidSetting {
        /// Which.
        setting: Setting,
        /// The value refused.
        value: u64,
    },
    /// A request for 0 tokens.
    ZeroTokensRequested,
    /// The bucket holds less than one request.
    RateLimited {
        /// Nanoseconds until it holds one.
        retry_after_ns: u64,
    },
    /// The window's budget is spent.
    BudgetExhausted {
        /// Tokens left in the window (0).
        remaining_tokens: u64,
        /// The budget per window.
        budget_tokens: u64,
        /// When the window ends and the budget is whole again.
        window_reset_ns: u64,
    },
    /// A model larger than the principal's limit.
    ModelTooLarge {
        /// The artifact's size.
        bytes: u64,
        /// The limit.
        max_model_bytes: u64,
    },
    /// [`MAX_PRINCIPALS`] principals have state already.
    TooManyPrincipals,
    /// [`MAX_OPEN_GRANTS`] grants are open already.
    TooManyOpenGrants,
    /// [`Policy::complete`] of a grant that is not open (completed already, or never granted).
    UnknownGrant {
        /// Its id.
        id: u64,
    },
    /// [`Policy::complete`] with more tokens used than granted.
    UsedExceedsGrant {
        /// Tokens reported used.
        used_tokens: u64,
        /// Tokens granted.
        granted_tokens: u64,
    },
}

impl PolicyError {
    /// A stable kebab-case code.
    pub fn code(&self) -> &'static str {
        match self {
            PolicyError::InvalidSetting { .. } => "invalid-setting",
            PolicyError::ZeroTokensRequested => "zero-tokens-requested",
            PolicyError::RateLimited { .. } => "rate-limited",
            PolicyError::BudgetExhausted { .. } => "budget-exhausted",
            PolicyError::ModelTooLarge { .. } => "model-too-large",
            PolicyError::TooManyPrincipals => "too-many-principals",
            PolicyError::TooManyOpenGrants => "too-many-open-grants",
            PolicyError::UnknownGrant { .. } => "unknown-grant",
            PolicyError::UsedExceedsGrant { .. } => "used-exceeds-grant",
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::InvalidSetting { setting, value } => {
                write!(formatter, "{} = {value} is not allowed: every limit is at least 1", setting.name())
            }
            PolicyError::ZeroTokensRequested => formatter.write_str("a request must ask for at least 1 token"),
            PolicyError::RateLimited { retry_after_ns } => {
                write!(formatter, "rate limit reached: retry after {retry_after_ns} ns")
            }
            PolicyError::BudgetExhausted { remaining_tokens, budget_tokens, window_reset_ns } => write!(
                formatter,
                "token budget spent: {remaining_tokens} of {budget_tokens} tokens left; the window resets at \
                 {window_reset_ns} ns"
            ),
            PolicyError::ModelTooLarge { bytes, max_model_bytes } => {
                write!(formatter, "the model is {bytes} bytes; this principal may register at most {max_model_bytes}")
            }
            PolicyError::TooManyPrincipals => {
                write!(formatter, "the policy tracks {MAX_PRINCIPALS} principals already")
            }
            PolicyError::TooManyOpenGrants => {
                write!(formatter, "{MAX_OPEN_GRANTS} requests are in progress already")
            }
            PolicyError::UnknownGrant { id } => write!(formatter, "grant {id} is not open"),
            PolicyError::UsedExceedsGrant { used_tokens, granted_tokens } => {
                write!(formatter, "{used_tokens} tokens reported used; only {granted_tokens} were granted")
            }
        }
    }
}

/// Limits, budgets, buckets and counters for every principal seen.
#[derive(Debug, Clone)]
pub struct Policy {
    defaults: Limits,
    principals: Vec<State>,
    open_grants: Vec<Grant>,
    next_grant_id: u64,
}

#[derive(Debug, Clone)]
struct State {
    principal: Principal,
    limits: Limits,
    window_start_ns: u64,
    window_used_tokens: u64,
    bucket: Bucket,
    counters: Counters,
}

impl State {
    fn new(principal: Principal, limits: Limits, now_ns: u64) -> State {
        State {
            principal,
            limits,
            window_start_ns: now_ns,
            window_used_tokens: 0,
            bucket: Bucket::full(limits.burst, now_ns),
            counters: Counters::default(),
        }
    }

    /// Moves the window forward to the one holding `now_ns`, emptying it if it is a new one.
    fn roll(&mut self, now_ns: u64) {
        let (start, rolled) = current_window(self.window_start_ns, self.limits.window_ns, now_ns);
        if rolled {
            self.window_start_ns = start;
            self.window_used_tokens = 0;
        }
    }

    fn remaining(&self) -> u64 {
        self.limits.budget_tokens.saturating_sub(self.window_used_tokens)
    }

    fn status(&self, now_ns: u64) -> Status {
        let mut view = self.clone();
        view.roll(now_ns);
        view.bucket.refill(view.limits.rate_per_second, view.limits.burst, now_ns);
        Status {
            principal: view.principal,
            limits: view.limits,
            window_used_tokens: view.window_used_tokens,
            remaining_tokens: view.remaining(),
            window_start_ns: view.window_start_ns,
            window_reset_ns: view.window_start_ns.saturating_add(view.limits.window_ns),
            bucket_requests: view.bucket.whole_requests(),
            counters: view.counters,
        }
    }
}

/// The start of the window holding `now_ns` for windows aligned to `start_ns`, and whether it is a later one.
fn current_window(start_ns: u64, window_ns: u64, now_ns: u64) -> (u64, bool) {
    // A clock read before the window began counts as inside it. windows * window_ns <= elapsed: no overflow.
    let elapsed = now_ns.saturating_sub(start_ns);
    let windows = elapsed / window_ns.max(1);
    (start_ns + windows * window_ns, windows > 0)
}

impl Policy {
    /// A policy giving every principal `defaults` until set otherwise.
    pub fn new(defaults: Limits) -> Result<Policy, PolicyError> {
        defaults.validate()?;
        Ok(Policy { defaults, principals: Vec::new(), open_grants: Vec::new(), next_grant_id: 1 })
    }

    /// The limits of principals never set.
    pub fn defaults(&self) -> Limits {
        self.defaults
    }

    /// `principal`'s limits.
    pub fn limits(&self, principal: Principal) -> Limits {
        self.find(principal).map_or(self.defaults, |state| state.limits)
    }

    /// `principal`'s budget, window, bucket and counters at `now_ns` (defaults and zeros if never seen).
    pub fn status(&self, principal: Principal, now_ns: u64) -> Status {
        match self.find(principal) {
            Some(state) => state.status(now_ns),
            None => State::new(principal, self.defaults, now_ns).status(now_ns),
        }
    }

    /// Every principal seen, in the order first seen.
    pub fn statuses(&self, now_ns: u64) -> Vec<Status> {
        self.principals.iter().map(|state| state.status(now_ns)).collect()
    }

    /// Grants that are open (granted, not completed).
    pub fn open_grants(&self) -> &[Grant] {
        &self.open_grants
    }

    /// Sets `principal`'s budget. Tokens already charged to the current window stay charged; a new window
    /// length applies from the current window's start.
    pub fn set_budget(
        &mut self,
        principal: Principal,
        budget_tokens: u64,
        window_ns: u64,
        now_ns: u64,
    ) -> Result<(), PolicyError> {
        let limits = Limits { budget_tokens, window_ns, ..self.limits(principal) };
        limits.validate()?;
        let state = self.state(principal, now_ns)?;
        state.roll(now_ns);
        state.limits = limits;
        Ok(())
    }

    /// Sets `principal`'s rate limit. The bucket keeps what it had refilled by `now_ns`, at most the new burst.
    pub fn set_rate(
        &mut self,
        principal: Principal,
        rate_per_second: u64,
        burst: u64,
        now_ns: u64,
    ) -> Result<(), PolicyError> {
        let limits = Limits { rate_per_second, burst, ..self.limits(principal) };
        limits.validate()?;
        let state = self.state(principal, now_ns)?;
        state.bucket.refill(state.limits.rate_per_second, state.limits.burst, now_ns);
        state.bucket.clamp(burst);
        state.limits = limits;
        Ok(())
    }

    /// Sets the size of a model `principal` may register at most.
    pub fn set_model_limit(
        &mut self,
        principal: Principal,
        max_model_bytes: u64,
        now_ns: u64,
    ) -> Result<(), PolicyError> {
        let limits = Limits { max_model_bytes, ..self.limits(principal) };
        limits.validate()?;
        self.state(principal, now_ns)?.limits = limits;
        Ok(())
    }

    /// Whether `principal` may register a model artifact of `bytes`.
    pub fn check_model_size(&self, principal: Principal, bytes: u64) -> Result<(), PolicyError> {
        let max_model_bytes = self.limits(principal).max_model_bytes;
        if bytes > max_model_bytes {
            return Err(PolicyError::ModelTooLarge { bytes, max_model_bytes });
        }
        Ok(())
    }

    /// An inference request for up to `max_tokens`: rate limit, then budget (see the module docs).
    pub fn request(&mut self, principal: Principal, max_tokens: u64, now_ns: u64) -> Result<Grant, PolicyError> {
        let grant_id = self.next_grant_id;
        let grants_full = self.open_grants.len() >= MAX_OPEN_GRANTS;
        let state = self.state(principal, now_ns)?;
        state.counters.requests = state.counters.requests.saturating_add(1);
        let verdict = Policy::decide(state, max_tokens, grants_full, now_ns);
        let grant = match verdict {
            Ok(granted_tokens) => {
                state.bucket.take_one();
                state.window_used_tokens = state.window_used_tokens.saturating_add(granted_tokens);
                let cut = granted_tokens < max_tokens;
                let counters = &mut state.counters;
                counters.allowed = counters.allowed.saturating_add(1);
                counters.cut = counters.cut.saturating_add(u64::from(cut));
                counters.tokens_granted = counters.tokens_granted.saturating_add(granted_tokens);
                Grant {
                    id: grant_id,
                    principal,
                    requested_tokens: max_tokens,
                    granted_tokens,
                    cut,
                    remaining_tokens: state.remaining(),
                    window_start_ns: state.window_start_ns,
                    window_reset_ns: state.window_start_ns.saturating_add(state.limits.window_ns),
                }
            }
            Err(error) => {
                let counters = &mut state.counters;
                match error {
                    PolicyError::RateLimited { .. } => counters.refused_rate = counters.refused_rate.saturating_add(1),
                    PolicyError::BudgetExhausted { .. } => {
                        counters.refused_budget = counters.refused_budget.saturating_add(1)
                    }
                    _ => counters.refused_other = counters.refused_other.saturating_add(1),
                }
                return Err(error);
            }
        };
        self.next_grant_id = self.next_grant_id.saturating_add(1);
        self.open_grants.push(grant);
        Ok(grant)
    }

    /// Closes grant `grant_id` with `used_tokens` generated; returns the tokens given back to its window (0 if
    /// that window has ended).
    pub fn complete(&mut self, grant_id: u64, used_tokens: u64, now_ns: u64) -> Result<u64, PolicyError> {
        let index = self
            .open_grants
            .iter()
            .position(|grant| grant.id == grant_id)
            .ok_or(PolicyError::UnknownGrant { id: grant_id })?;
        let grant = self.open_grants[index];
        if used_tokens > grant.granted_tokens {
            return Err(PolicyError::UsedExceedsGrant { used_tokens, granted_tokens: grant.granted_tokens });
        }
        self.open_grants.swap_remove(index);
        let Some(state) = self.principals.iter_mut().find(|state| state.principal == grant.principal) else {
            return Ok(0);
        };
        state.counters.completed = state.counters.completed.saturating_add(1);
        state.counters.tokens_used = state.counters.tokens_used.saturating_add(used_tokens);
        state.roll(now_ns);
        if state.window_start_ns != grant.window_start_ns {
            return Ok(0);
        }
        let unused = grant.granted_tokens - used_tokens;
        state.window_used_tokens = state.window_used_tokens.saturating_sub(unused);
        Ok(unused)
    }

    fn decide(state: &mut State, max_tokens: u64, grants_full: bool, now_ns: u64) -> Result<u64, PolicyError> {
        if max_tokens == 0 {
            return Err(PolicyError::ZeroTokensRequested);
        }
        if grants_full {
            return Err(PolicyError::TooManyOpenGrants);
        }
        state.bucket.refill(state.limits.rate_per_second, state.limits.burst, now_ns);
        if let Some(retry_after_ns) = state.bucket.retry_after_ns(state.limits.rate_per_second) {
            return Err(PolicyError::RateLimited { retry_after_ns });
        }
        state.roll(now_ns);
        let remaining_tokens = state.remaining();
        if remaining_tokens == 0 {
            return Err(PolicyError::BudgetExhausted {
                remaining_tokens,
                budget_tokens: state.limits.budget_tokens,
                window_reset_ns: state.window_start_ns.saturating_add(state.limits.window_ns),
            });
        }
        Ok(max_tokens.min(remaining_tokens))
    }

    fn find(&self, principal: Principal) -> Option<&State> {
        self.principals.iter().find(|state| state.principal == principal)
    }

    /// `principal`'s state, made with the defaults at `now_ns` if it has none.
    fn state(&mut self, principal: Principal, now_ns: u64) -> Result<&mut State, PolicyError> {
        let index = match self.principals.iter().position(|state| state.principal == principal) {
            Some(index) => index,
            None => {
                if self.principals.len() >= MAX_PRINCIPALS {
                    return Err(PolicyError::TooManyPrincipals);
                }
                self.principals.push(State::new(principal, self.defaults, now_ns));
                self.principals.len() - 1
            }
        };
        Ok(&mut self.principals[index])
    }
}
