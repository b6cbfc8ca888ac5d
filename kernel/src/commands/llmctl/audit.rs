//! `llmctl audit`, `audit verify`, `compliance` and `trust`: the audit log, its chain and its copy on the disk, the
//! compliance check, and trusted keys.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{json, Value};
use sis_governance::audit::{Action, Filter, Outcome};
use sis_governance::hex;
use sis_governance::keys::PUBLIC_KEY_BYTES;
use sis_platform::time;
use sis_shell::{Invocation, Reply, ShellError};

use super::{error, model_arg, principal_arg};
use crate::commands::Kernel;
use crate::format;
use crate::governance::{self, LlmError};

pub(super) fn audit_verify(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let (result, entries, head) = governance::with(|state| {
        let log = state.governor.audit();
        (log.verify(), log.len(), hex::encode(&log.head_hash()))
    })
    .map_err(error)?;
    match result {
        Ok(()) => Ok(Reply::new(
            alloc::format!("audit chain verified: {entries} entries, head {head}"),
            json!({ "verified": true, "entries": entries, "head_hash": head }),
        )),
        Err(broken) => Err(ShellError::new(broken.code(), alloc::format!("{broken}"))),
    }
}

pub(super) fn audit(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let filter = Filter {
        principal: principal_arg(invocation),
        action: invocation.args.str("action").and_then(Action::parse),
        model: model_arg(invocation, "model"),
        since_ns: invocation.args.u64("since"),
        limit: invocation.args.u64("limit").map(|limit| limit as usize),
    };
    let (entries, total, dropped) = governance::with(|state| {
        let log = state.governor.audit();
        let entries: Vec<Value> =
            log.query(&filter).into_iter().map(|entry| serde_json::to_value(entry).unwrap_or(Value::Null)).collect();
        let human: Vec<String> = log
            .query(&filter)
            .into_iter()
            .map(|entry| {
                let event = &entry.event;
                alloc::format!(
                    "{:>6}  {:>16} ns  {:<10} {:<16} {:<24} {}",
                    entry.sequence,
                    format::thousands(event.time_ns),
                    event.principal.to_string(),
                    event.action.name(),
                    event.model.as_ref().map(ToString::to_string).unwrap_or_else(|| String::from("-")),
                    match &event.outcome {
                        Outcome::Ok => String::from("ok"),
                        Outcome::Refused { code } => alloc::format!("refused: {code}"),
                    }
                )
            })
            .collect();
        ((entries, human), log.len(), log.dropped())
    })
    .map_err(error)?;
    let (entries, mut human) = entries;
    let persistence = governance::audit_persistence().map_err(error)?;
    let matched = entries.len();
    human.push(alloc::format!("{matched} of {total} entries ({dropped} dropped from the memory log)"));
    let region = &persistence.region;
    human.push(match (&region.reason, region.start_lba) {
        (Some((code, message)), _) => alloc::format!("on disk: not kept ({code}: {message})"),
        (None, Some(lba)) => alloc::format!(
            "on disk: {} from sector {lba}, {} bytes of {}, {} entries read back at boot",
            region.state,
            format::thousands(region.bytes),
            format::thousands(region.capacity_bytes),
            persistence.recovered_entries
        ),
        (None, None) => String::from("on disk: no disk attached"),
    });
    let persistence = serde_json::to_value(&persistence).unwrap_or(Value::Null);
    Ok(Reply::new(
        human.join("\n"),
        json!({ "entries": entries, "matched": matched, "total": total, "dropped": dropped, "persistence": persistence }),
    ))
}

pub(super) fn compliance(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let agent = crate::commands::neural::agent_source();
    let (violations, loaded) = governance::with(|state| {
        let loaded = state.governor.registry().models().iter().filter(|model| model.is_loaded()).count();
        (state.governor.compliance(agent.as_ref(), time::now_ns()), loaded)
    })
    .map_err(error)?;
    let list: Vec<Value> = violations
        .iter()
        .map(|violation| {
            let mut value = serde_json::to_value(violation).unwrap_or(Value::Null);
            value["code"] = Value::from(violation.code());
            value["message"] = Value::from(violation.to_string());
            value
        })
        .collect();
    let mut human: Vec<String> =
        violations.iter().map(|violation| alloc::format!("{}: {violation}", violation.code())).collect();
    if human.is_empty() {
        human.push(alloc::format!(
            "compliant: {loaded} loaded models verified, audit chain intact, no budget overdrawn"
        ));
    }
    let fields = json!({ "compliant": violations.is_empty(), "violations": list, "loaded_models": loaded });
    if violations.is_empty() {
        Ok(Reply::new(human.join("\n"), fields))
    } else {
        let count = violations.len();
        Ok(Reply::new(human.join("\n"), fields)
            .failing(ShellError::new("non-compliant", alloc::format!("{count} violations"))))
    }
}

pub(super) fn trust(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let caller = kernel.principal;
    let text = invocation.args.str("key").unwrap_or_default();
    let key = hex::decode::<PUBLIC_KEY_BYTES>(text)
        .ok_or_else(|| ShellError::new("bad-key-hex", "a public key is 64 hex digits"))?;
    let key_id = governance::with(|state| state.governor.trust_key(caller, &key, time::now_ns()))
        .map_err(error)?
        .map_err(|refused| error(LlmError::Governance(refused)))?;
    Ok(Reply::new(alloc::format!("trusting key {key_id}"), json!({ "key_id": key_id, "public_key": text })))
}
