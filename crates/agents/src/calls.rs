//! One host call: read the request from guest memory, decode, rate-limit, check capabilities, serve, answer, audit.
//! Also [`serve_once`]: one request checked and served outside a sandbox.

use crate::audit::{digest, AuditRecord};
use crate::caps::{Access, CapabilitySet};
use crate::host::{Host, Verdict};
use crate::path::normalize;
use crate::protocol::{decode_header, decode_request, encode_response, DecodeError, ErrorCode, Request, HEADER_LEN};
use crate::sandbox::{PendingCall, Sandbox, StopReason, Violation, HOST_CALL_FUEL};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// How the guest continues after a call.
pub(crate) enum Reply {
    /// Resume now with this return value (bytes written to the response buffer).
    Continue(i32),
    /// Resume with this value after sleeping.
    Sleep { value: i32, duration_ms: u32 },
}

impl Sandbox {
    /// Serves one call; `Err` is why the agent must stop (the call is audited first).
    pub(crate) fn handle_call(&mut self, pending: PendingCall, host: &mut dyn Host) -> Result<Reply, StopReason> {
        self.handle_call_checked(pending, host)
            .map_err(StopReason::ProtocolViolation)?
            .map_err(|denials| StopReason::CapabilityViolation { denials })
    }

    /// The outer `Err` is a protocol violation, the inner one a denial past the limit (the count).
    fn handle_call_checked(
        &mut self,
        pending: PendingCall,
        host: &mut dyn Host,
    ) -> Result<Result<Reply, u64>, Violation> {
        let memory_len = self.memory.data_size(&self.store);
        let response_ptr = pending.response_ptr as usize;
        let response_cap = pending.response_cap as usize;
        let response_fits = response_ptr.checked_add(response_cap).is_some_and(|end| end <= memory_len);
        if response_cap < HEADER_LEN || !response_fits {
            return Err(Violation::ResponseBufferInvalid);
        }
        self.usage.calls = self.usage.calls.saturating_add(1);
        let request_len = pending.request_len as usize;
        let (message, decoded) = if request_len > Self::MAX_REQUEST {
            (Vec::new(), Err(DecodeError::Oversized { length: request_len }))
        } else {
            let request_ptr = pending.request_ptr as usize;
            if request_ptr.checked_add(request_len).is_none_or(|end| end > memory_len) {
                return Err(Violation::RequestOutOfBounds);
            }
            let mut message = vec![0u8; request_len];
            self.memory.read(&self.store, request_ptr, &mut message).map_err(|_| Violation::RequestOutOfBounds)?;
            let decoded = decode_request(&message);
            (message, decoded)
        };
        let call_id = decode_header(&message).map_or(0, |header| header.call_id);
        let (call, status, payload, sleep) = match decoded {
            Err(error) => {
                self.usage.protocol_errors = self.usage.protocol_errors.saturating_add(1);
                let status = error.code();
                if self.usage.protocol_errors > u64::from(self.limits.max_protocol_errors) {
                    self.record(None, call_id, &message, status, HOST_CALL_FUEL);
                    return Err(Violation::TooManyMalformed(error));
                }
                (None, status, Vec::new(), None)
            }
            Ok((_, request)) => {
                let call = request.call();
                let (status, payload, sleep) = self.serve(request, host);
                (Some(call), status, payload, sleep)
            }
        };
        let moved = (message.len() + payload.len()) as u64;
        let fuel_cost = HOST_CALL_FUEL.saturating_add(moved / 8);
        let left = self.store.get_fuel().unwrap_or(0);
        // Setting fuel only fails when metering is off, which this sandbox never does.
        let _ = self.store.set_fuel(left.saturating_sub(fuel_cost));
        let response = if HEADER_LEN + payload.len() <= response_cap {
            encode_response(status, call_id, &payload)
        } else {
            let mut header = encode_response(ErrorCode::ResponseTooLarge, call_id, &[]);
            header[8..12].copy_from_slice(&(payload.len() as u32).to_le_bytes());
            header
        };
        let outcome =
            if response.len() == HEADER_LEN && !payload.is_empty() { ErrorCode::ResponseTooLarge } else { status };
        self.memory.write(&mut self.store, response_ptr, &response).map_err(|_| Violation::ResponseBufferInvalid)?;
        self.record(call, call_id, &message, outcome, fuel_cost);
        if outcome == ErrorCode::Denied && self.usage.denials > u64::from(self.limits.max_denials) {
            return Ok(Err(self.usage.denials));
        }
        let value = response.len() as i32;
        Ok(Ok(match sleep {
            Some(duration_ms) => Reply::Sleep { value, duration_ms },
            None => Reply::Continue(value),
        }))
    }

    /// Rate-limits, checks and carries out one decoded request: (status, response payload, sleep duration).
    fn serve(&mut self, request: Request, host: &mut dyn Host) -> (ErrorCode, Vec<u8>, Option<u32>) {
        if let Request::Sleep { duration_ms } = request {
            return (ErrorCode::Ok, Vec::new(), Some(duration_ms));
        }
        self.calls_this_slice = self.calls_this_slice.saturating_add(1);
        if self.calls_this_slice > self.limits.calls_per_slice {
            self.usage.rate_limited = self.usage.rate_limited.saturating_add(1);
            return (ErrorCode::RateLimited, Vec::new(), None);
        }
        let (status, payload) = check_and_serve(&self.name, &self.capabilities, &request, host);
        if status == ErrorCode::Denied {
            self.usage.denials = self.usage.denials.saturating_add(1);
        }
        (status, payload, None)
    }

    fn record(
        &mut self,
        call: Option<crate::protocol::Call>,
        call_id: u32,
        message: &[u8],
        outcome: ErrorCode,
        fuel_cost: u64,
    ) {
        let record =
            AuditRecord { agent: self.name.clone(), call, call_id, digest: digest(message), outcome, fuel_cost };
        self.audit.push(record);
    }
}

/// Normalizes the request's path, checks the request against `capabilities` and only then hands it to `host`.
/// SLEEP is the caller's business and is answered `invalid_argument` here.
fn check_and_serve(
    agent: &str,
    capabilities: &CapabilitySet,
    request: &Request,
    host: &mut dyn Host,
) -> (ErrorCode, Vec<u8>) {
    let path = match request {
        Request::FsList { path } | Request::FsRead { path } | Request::FsWrite { path, .. } => match normalize(path) {
            Ok(path) => path,
            Err(_) => return (ErrorCode::InvalidArgument, Vec::new()),
        },
        _ => String::new(),
    };
    let access = match request {
        Request::FsList { .. } => Access::FsList(&path),
        Request::FsRead { .. } => Access::FsRead(&path),
        Request::FsWrite { .. } => Access::FsWrite(&path),
        Request::MetricsRead { .. } => Access::MetricsRead,
        Request::CommandRun { line } => match line.split_whitespace().next() {
            Some(name) => Access::Command(name),
            None => return (ErrorCode::InvalidArgument, Vec::new()),
        },
        Request::Log { .. } => Access::Log,
        Request::ProposeAction { .. } => Access::Propose,
        Request::Sleep { .. } => return (ErrorCode::InvalidArgument, Vec::new()),
    };
    if !capabilities.allows(&access) {
        return (ErrorCode::Denied, Vec::new());
    }
    let served: Result<Vec<u8>, crate::host::HostError> = match request {
        Request::FsList { .. } => host.fs_list(&path).map(|names| names.join("\n").into_bytes()),
        Request::FsRead { .. } => host.fs_read(&path),
        Request::FsWrite { data, .. } => host.fs_write(&path, data).map(|()| Vec::new()),
        Request::MetricsRead { prefix } => host.metrics_read(prefix).map(|metrics| {
            let mut text = String::new();
            for (name, value) in metrics {
                text.push_str(&alloc::format!("{name} {value}\n"));
            }
            text.into_bytes()
        }),
        Request::CommandRun { line } => host.command_run(agent, line).map(String::into_bytes),
        Request::Log { level, message } => {
            host.log(agent, *level, message);
            Ok(Vec::new())
        }
        Request::ProposeAction { action, reason } => host.propose(agent, action, reason).map(|verdict| match verdict {
            Verdict::Accepted => vec![0],
            Verdict::Blocked => vec![1],
        }),
        Request::Sleep { .. } => Ok(Vec::new()),
    };
    match served {
        Ok(payload) => (ErrorCode::Ok, payload),
        Err(error) => (error.code(), Vec::new()),
    }
}

/// One request served outside any sandbox, for the kernel's self-tests (`agentsys test-fs-list`): decoded,
/// checked against `capabilities` and handed to `host` exactly as an agent's would be. Returns the response
/// message and its audit record (fuel cost as a sandbox would charge). SLEEP is refused (`invalid_argument`).
pub fn serve_once(
    agent: &str,
    capabilities: &CapabilitySet,
    message: &[u8],
    host: &mut dyn Host,
) -> (Vec<u8>, AuditRecord) {
    let call_id = decode_header(message).map_or(0, |header| header.call_id);
    let (call, status, payload) = match decode_request(message) {
        Err(error) => (None, error.code(), Vec::new()),
        Ok((_, request)) => {
            let (status, payload) = check_and_serve(agent, capabilities, &request, host);
            (Some(request.call()), status, payload)
        }
    };
    let fuel_cost = HOST_CALL_FUEL.saturating_add(((message.len() + payload.len()) / 8) as u64);
    let record =
        AuditRecord { agent: String::from(agent), call, call_id, digest: digest(message), outcome: status, fuel_cost };
    (encode_response(status, call_id, &payload), record)
}
