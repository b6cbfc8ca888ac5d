//! The guest side of the SIS agent protocol (docs/agents.md): the one import, request encoding, response decoding.
//!
//! An agent is a `cdylib` built for `wasm32-unknown-unknown` that exports `run: () -> i32` (through
//! [`agent_main!`]) and its linear memory, and imports only `sis.host_call`. Everything here works on caller
//! buffers, without an allocator, so a module stays a few KiB and its memory one or two pages.
#![no_std]

use core::fmt;

/// The protocol version this SDK speaks.
pub const VERSION: u16 = 1;
/// Bytes in a message header.
pub const HEADER_LEN: usize = 12;
/// The largest request this SDK builds (the kernel accepts up to 64 KiB of payload).
pub const MAX_REQUEST: usize = 4096;

/// Call numbers.
pub mod call {
    /// FS_LIST
    pub const FS_LIST: u16 = 1;
    /// FS_READ
    pub const FS_READ: u16 = 2;
    /// FS_WRITE
    pub const FS_WRITE: u16 = 3;
    /// METRICS_READ
    pub const METRICS_READ: u16 = 4;
    /// COMMAND_RUN
    pub const COMMAND_RUN: u16 = 5;
    /// LOG
    pub const LOG: u16 = 6;
    /// SLEEP
    pub const SLEEP: u16 = 7;
    /// PROPOSE_ACTION
    pub const PROPOSE_ACTION: u16 = 8;
}

/// A response status (the kernel's `ErrorCode`), or [`Status::LOCAL`] for a failure on this side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u16);

impl Status {
    /// The call succeeded.
    pub const OK: Self = Self(0);
    /// The capabilities do not allow the call.
    pub const DENIED: Self = Self(9);
    /// Too many calls in this slice.
    pub const RATE_LIMITED: Self = Self(10);
    /// No such file, directory or metric.
    pub const NOT_FOUND: Self = Self(11);
    /// The host could not carry the call out (for COMMAND_RUN: the command failed).
    pub const HOST_FAILED: Self = Self(12);
    /// The response did not fit the buffer.
    pub const RESPONSE_TOO_LARGE: Self = Self(13);
    /// The request did not fit [`MAX_REQUEST`] or the response was not a valid header (never sent by the kernel).
    pub const LOCAL: Self = Self(u16::MAX);

    /// The kernel's stable name of the status.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "ok",
            1 => "bad_version",
            2 => "truncated",
            3 => "length_past_end",
            4 => "trailing_bytes",
            5 => "bad_utf8",
            6 => "oversized",
            7 => "unknown_call",
            8 => "invalid_argument",
            9 => "denied",
            10 => "rate_limited",
            11 => "not_found",
            12 => "host_failed",
            13 => "response_too_large",
            u16::MAX => "local",
            _ => "unknown",
        }
    }
}

/// LOG levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Level {
    /// 0
    Error = 0,
    /// 1
    Warn = 1,
    /// 2
    Info = 2,
    /// 3
    Debug = 3,
}

#[link(wasm_import_module = "sis")]
unsafe extern "C" {
    /// The one host function. The kernel reads `request_len` bytes at `request_ptr` and writes at most
    /// `response_cap` bytes at `response_ptr`, checking both ranges against linear memory, so any arguments
    /// are safe to pass: a bad range stops the agent, it never touches memory outside the instance.
    safe fn host_call(request_ptr: i32, request_len: i32, response_ptr: i32, response_cap: i32) -> i32;
}

/// Calls the host with raw addresses (for agents that test the kernel's checks).
pub fn raw_call_addresses(request_ptr: i32, request_len: i32, response_ptr: i32, response_cap: i32) -> i32 {
    host_call(request_ptr, request_len, response_ptr, response_cap)
}

/// Sends `request` as it is and returns what the host returned (the response length).
pub fn raw_call(request: &[u8], response: &mut [u8]) -> i32 {
    host_call(address(request.as_ptr()), request.len() as i32, address(response.as_mut_ptr()), response.len() as i32)
}

fn address(pointer: *const u8) -> i32 {
    pointer as usize as i32
}

/// Encodes a request with these payload parts into `out`; `None` when it does not fit.
pub fn encode(call: u16, call_id: u32, parts: &[&[u8]], out: &mut [u8]) -> Option<usize> {
    let payload_len: usize = parts.iter().map(|part| part.len()).sum();
    let total = HEADER_LEN.checked_add(payload_len)?;
    if total > out.len() {
        return None;
    }
    out[0..2].copy_from_slice(&VERSION.to_le_bytes());
    out[2..4].copy_from_slice(&call.to_le_bytes());
    out[4..8].copy_from_slice(&call_id.to_le_bytes());
    out[8..12].copy_from_slice(&(payload_len as u32).to_le_bytes());
    let mut at = HEADER_LEN;
    for part in parts {
        out[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    Some(total)
}

/// The agent's connection to the kernel: numbers its calls and decodes the answers.
#[derive(Debug, Default)]
pub struct Host {
    next_call_id: u32,
}

impl Host {
    /// A connection whose first call has id 1.
    pub const fn new() -> Self {
        Self { next_call_id: 1 }
    }

    /// Sends one call and returns the response payload on success.
    pub fn call<'r>(&mut self, call: u16, parts: &[&[u8]], response: &'r mut [u8]) -> Result<&'r [u8], Status> {
        let call_id = self.next_call_id;
        self.next_call_id = self.next_call_id.wrapping_add(1);
        let mut request = [0u8; MAX_REQUEST];
        let length = encode(call, call_id, parts, &mut request).ok_or(Status::LOCAL)?;
        let written = raw_call(&request[..length], response);
        if written < HEADER_LEN as i32 || written as usize > response.len() {
            return Err(Status::LOCAL);
        }
        let status = Status(u16::from_le_bytes([response[2], response[3]]));
        let echoed = u32::from_le_bytes([response[4], response[5], response[6], response[7]]);
        if echoed != call_id {
            return Err(Status::LOCAL);
        }
        if status != Status::OK {
            return Err(status);
        }
        Ok(&response[HEADER_LEN..written as usize])
    }

    /// FS_LIST: the names in `path`, one a line.
    pub fn fs_list<'r>(&mut self, path: &str, response: &'r mut [u8]) -> Result<&'r [u8], Status> {
        self.call(call::FS_LIST, &[path.as_bytes()], response)
    }

    /// FS_READ: the file's bytes.
    pub fn fs_read<'r>(&mut self, path: &str, response: &'r mut [u8]) -> Result<&'r [u8], Status> {
        self.call(call::FS_READ, &[path.as_bytes()], response)
    }

    /// FS_WRITE: replaces the file's contents.
    pub fn fs_write(&mut self, path: &str, data: &[u8]) -> Result<(), Status> {
        let length = (path.len() as u32).to_le_bytes();
        self.call(call::FS_WRITE, &[&length, path.as_bytes(), data], &mut [0u8; HEADER_LEN]).map(|_| ())
    }

    /// METRICS_READ: `name value` lines of the metrics whose names start with `prefix`.
    pub fn metrics_read<'r>(&mut self, prefix: &str, response: &'r mut [u8]) -> Result<&'r [u8], Status> {
        self.call(call::METRICS_READ, &[prefix.as_bytes()], response)
    }

    /// COMMAND_RUN: the command's output.
    pub fn command_run<'r>(&mut self, line: &str, response: &'r mut [u8]) -> Result<&'r [u8], Status> {
        self.call(call::COMMAND_RUN, &[line.as_bytes()], response)
    }

    /// LOG
    pub fn log(&mut self, level: Level, message: &str) -> Result<(), Status> {
        self.call(call::LOG, &[&[level as u8], message.as_bytes()], &mut [0u8; HEADER_LEN]).map(|_| ())
    }

    /// SLEEP: yields for at least `duration_ms`.
    pub fn sleep(&mut self, duration_ms: u32) -> Result<(), Status> {
        self.call(call::SLEEP, &[&duration_ms.to_le_bytes()], &mut [0u8; HEADER_LEN]).map(|_| ())
    }

    /// PROPOSE_ACTION: `Ok(true)` when the guardrails accepted the action, `Ok(false)` when they blocked it.
    pub fn propose(&mut self, action: &str, reason: &str) -> Result<bool, Status> {
        let length = (action.len() as u32).to_le_bytes();
        let mut response = [0u8; HEADER_LEN + 1];
        let verdict =
            self.call(call::PROPOSE_ACTION, &[&length, action.as_bytes(), reason.as_bytes()], &mut response)?;
        Ok(verdict == [0])
    }
}

/// A fixed-size text buffer for formatting without an allocator; text past its size is cut.
#[derive(Debug)]
pub struct Text<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Default for Text<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Text<N> {
    /// Empty.
    pub const fn new() -> Self {
        Self { bytes: [0; N], len: 0 }
    }

    /// The text so far.
    pub fn as_str(&self) -> &str {
        // Only whole `str`s are appended, so the bytes up to a char boundary are UTF-8.
        match core::str::from_utf8(&self.bytes[..self.len]) {
            Ok(text) => text,
            Err(error) => core::str::from_utf8(&self.bytes[..error.valid_up_to()]).unwrap_or(""),
        }
    }
}

impl<const N: usize> fmt::Write for Text<N> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let room = N - self.len;
        let take = text.len().min(room);
        self.bytes[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
        if take < text.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

/// Exports `fn() -> i32` as the agent's `run`.
#[macro_export]
macro_rules! agent_main {
    ($main:path) => {
        /// The agent's entry point, called by the kernel's sandbox.
        #[no_mangle]
        pub extern "C" fn run() -> i32 {
            $main()
        }
    };
}

/// A panic is a trap: the sandbox stops the agent with the reason "trap: unreachable".
#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
