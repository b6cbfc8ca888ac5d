//! `llmctl budget`, `ratelimit` and `sizelimit`: a principal's limits, window and counters.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{json, Value};
use sis_governance::policy::Status;
use sis_governance::GovernanceError;
use sis_platform::time;
use sis_shell::{Invocation, Reply, ShellError};

use super::{error, principal_arg};
use crate::commands::Kernel;
use crate::format;
use crate::governance::{self, LlmError};

pub(super) fn budget_set(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let caller = kernel.principal;
    let target = principal_arg(invocation).unwrap_or(caller);
    let tokens = invocation.args.u64("tokens").unwrap_or(0);
    let window_ms = invocation.args.u64("window-ms");
    let status = governance::with(|state| {
        let now_ns = time::now_ns();
        let window_ns =
            window_ms.map_or(state.governor.policy().limits(target).window_ns, |ms| ms.saturating_mul(1_000_000));
        state.governor.set_budget(caller, target, tokens, window_ns, now_ns)?;
        Ok::<_, GovernanceError>(state.governor.policy().status(target, now_ns))
    })
    .map_err(error)?
    .map_err(|refused| error(LlmError::Governance(refused)))?;
    Ok(Reply::new(
        alloc::format!(
            "{target}: budget {} tokens per {}",
            format::thousands(status.limits.budget_tokens),
            format::milliseconds(status.limits.window_ns)
        ),
        status_json(&status),
    ))
}

pub(super) fn ratelimit_set(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let caller = kernel.principal;
    let target = principal_arg(invocation).unwrap_or(caller);
    let rate = invocation.args.u64("rate").unwrap_or(0);
    let burst = invocation.args.u64("burst");
    let status = governance::with(|state| {
        let now_ns = time::now_ns();
        let burst = burst.unwrap_or(state.governor.policy().limits(target).burst);
        state.governor.set_rate(caller, target, rate, burst, now_ns)?;
        Ok::<_, GovernanceError>(state.governor.policy().status(target, now_ns))
    })
    .map_err(error)?
    .map_err(|refused| error(LlmError::Governance(refused)))?;
    Ok(Reply::new(
        alloc::format!(
            "{target}: {} requests per second, burst {}",
            status.limits.rate_per_second,
            status.limits.burst
        ),
        status_json(&status),
    ))
}

pub(super) fn sizelimit(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let caller = kernel.principal;
    let target = principal_arg(invocation).unwrap_or(caller);
    let bytes = invocation.args.u64("bytes").unwrap_or(0);
    let status = governance::with(|state| {
        let now_ns = time::now_ns();
        state.governor.set_model_limit(caller, target, bytes, now_ns)?;
        Ok::<_, GovernanceError>(state.governor.policy().status(target, now_ns))
    })
    .map_err(error)?
    .map_err(|refused| error(LlmError::Governance(refused)))?;
    Ok(Reply::new(
        alloc::format!("{target}: models up to {}", format::bytes(status.limits.max_model_bytes)),
        status_json(&status),
    ))
}

pub(super) fn policy_show(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let caller = kernel.principal;
    let target = principal_arg(invocation);
    let statuses = governance::with(|state| {
        let now_ns = time::now_ns();
        match target {
            Some(principal) => alloc::vec![state.governor.policy().status(principal, now_ns)],
            None => {
                let mut statuses = state.governor.policy().statuses(now_ns);
                if !statuses.iter().any(|status| status.principal == caller) {
                    statuses.insert(0, state.governor.policy().status(caller, now_ns));
                }
                statuses
            }
        }
    })
    .map_err(error)?;
    let human: Vec<String> = statuses
        .iter()
        .map(|status| {
            alloc::format!(
                "{:<12} budget {} / {} tokens left (window {}, resets at {} ns)  rate {}/s burst {} ({} in bucket)  models up to {}  requests {} allowed {} cut {} refused {} (rate) {} (budget)",
                status.principal.to_string(),
                format::thousands(status.remaining_tokens),
                format::thousands(status.limits.budget_tokens),
                format::milliseconds(status.limits.window_ns),
                format::thousands(status.window_reset_ns),
                status.limits.rate_per_second,
                status.limits.burst,
                status.bucket_requests,
                format::bytes(status.limits.max_model_bytes),
                status.counters.requests,
                status.counters.allowed,
                status.counters.cut,
                status.counters.refused_rate,
                status.counters.refused_budget,
            )
        })
        .collect();
    let list: Vec<Value> = statuses.iter().map(status_json).collect();
    Ok(Reply::new(human.join("\n"), json!({ "principals": list })))
}

fn status_json(status: &Status) -> Value {
    serde_json::to_value(status).unwrap_or(Value::Null)
}
