//! Routes, authentication, the command endpoint and the checks an upload passes before its body is read.

use alloc::string::String;

use serde_json::Value;
use sis_shell::codes;

use super::{models, Backend, CommandReply};
use crate::request::{Method, Request};
use crate::response::Response;
use crate::token::{TokenId, TokenInfo, TokenStore};
use crate::ws::{self, HandshakeError};

/// Every path the server answers, with its one method.
pub const ROUTES: &[(&str, Method)] = &[
    ("/api/metrics", Method::Get),
    ("/api/command", Method::Post),
    ("/api/decisions", Method::Get),
    (crate::UPLOAD_ROUTE.1, crate::UPLOAD_ROUTE.0),
    ("/ws", Method::Get),
];

/// Longest command line accepted in `POST /api/command`, bytes (the console's line editor takes no more).
pub const MAX_COMMAND_BYTES: usize = 1024;

/// What the router decided.
#[derive(Debug)]
pub(super) enum Routed {
    /// Send this.
    Response(Response),
    /// `GET /api/metrics` with a valid token, the backend's reading deferred.
    Metrics,
    /// Run this command line with these capabilities (a valid body, a valid token).
    Command { line: String, token: TokenId, capabilities: sis_shell::Capabilities },
    /// Register this artifact for this token (an admin token, the right content type).
    Model { artifact: alloc::vec::Vec<u8>, token: TokenId },
    /// Switch to WebSocket for this token.
    Upgrade { token: TokenId, accept_key: String },
    /// A refused upgrade.
    BadUpgrade(HandshakeError),
}

/// Routes a request: 404 for an unknown path, 405 (with `Allow`) for another method, then 401 without a valid
/// token, then the endpoint's own checks. An upload's body is taken out of `request`.
pub(super) fn route(tokens: &TokenStore, backend: &mut dyn Backend, request: &mut Request, now_ns: u64) -> Routed {
    let Some((path, method)) = ROUTES.iter().find(|(path, _)| *path == request.path) else {
        return Routed::Response(Response::error(404, "not-found", "no such path"));
    };
    if request.method != *method {
        let response = Response::error(405, "method-not-allowed", "this path does not take that method")
            .with_header("Allow", method.as_str());
        return Routed::Response(response);
    }
    let websocket = *path == "/ws";
    let token = match authenticate(tokens, request, websocket) {
        Ok(token) => token,
        Err(response) => return Routed::Response(response),
    };
    match *path {
        "/api/metrics" => match backend.metrics(now_ns) {
            Some(metrics) => Routed::Response(Response::json(200, &metrics)),
            None => Routed::Metrics,
        },
        "/api/command" => match command_line(&request.body) {
            Ok(line) => Routed::Command { line, token: token.id, capabilities: token.role.capabilities() },
            Err(message) => Routed::Response(Response::error(400, "bad-command-body", message)),
        },
        "/api/decisions" => match decisions_line(request) {
            Ok(line) => Routed::Command { line, token: token.id, capabilities: token.role.capabilities() },
            Err(message) => Routed::Response(Response::error(400, "bad-query", message)),
        },
        path if path == crate::UPLOAD_ROUTE.1 => match models::check_head(&token, request) {
            Ok(()) => Routed::Model { artifact: core::mem::take(&mut request.body), token: token.id },
            Err(response) => Routed::Response(response),
        },
        _ => match ws::check_handshake(request) {
            Ok(accept_key) => Routed::Upgrade { token: token.id, accept_key },
            Err(error) => Routed::BadUpgrade(error),
        },
    }
}

/// Whether the body of an upload ([`crate::UPLOAD_ROUTE`], whose path and method are known) is to be read: the
/// checks [`route`] makes before looking at a body, a valid token (401), then the upload's own
/// ([`models::check_head`]). The same checks run again on the complete request.
pub(super) fn admit(tokens: &TokenStore, request: &Request) -> Result<(), Response> {
    let token = authenticate(tokens, request, false)?;
    models::check_head(&token, request)
}

/// The token of a request: `Authorization: Bearer TOKEN`, or (for `/ws`, since browsers cannot set headers on
/// a WebSocket) a `token` query parameter.
fn authenticate(tokens: &TokenStore, request: &Request, allow_query: bool) -> Result<TokenInfo, Response> {
    let presented = match request.header("authorization") {
        Some(value) => match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Some(String::from(token.trim())),
            _ => return Err(unauthorized("invalid-token", "the Authorization header is not a Bearer token")),
        },
        None if allow_query => request.query_param("token"),
        None => None,
    };
    let Some(presented) = presented else {
        return Err(unauthorized("missing-token", "this path needs a bearer token"));
    };
    tokens.verify(&presented).ok_or_else(|| unauthorized("invalid-token", "the token is unknown or revoked"))
}

fn unauthorized(code: &str, message: &str) -> Response {
    let challenge =
        if code == "missing-token" { "Bearer realm=\"sis\"" } else { "Bearer realm=\"sis\", error=\"invalid_token\"" };
    Response::error(401, code, message).with_header("WWW-Authenticate", challenge)
}

/// The answer to `POST /api/command`: the shell's JSON reply, 200, or 403 when the registry refused the line.
pub(super) fn command_response(reply: CommandReply) -> Response {
    if reply.permission_denied {
        // The registry's own error object travels as the body; make sure it carries the registry's code.
        let mut body = reply.json;
        if body.get("error").and_then(|error| error.get("code")).is_none() {
            body = serde_json::json!({ "error": { "code": codes::PERMISSION_DENIED, "message": "permission denied" } });
        }
        return Response::json(403, &body);
    }
    Response::json(200, &reply.json)
}

/// The line in a command body: a JSON object with exactly one field, `command`, a non-empty string.
fn command_line(body: &[u8]) -> Result<String, &'static str> {
    let value: Value = serde_json::from_slice(body).map_err(|_| "the body is not JSON; send {\"command\": \"...\"}")?;
    let object = value.as_object().ok_or("the body must be a JSON object {\"command\": \"...\"}")?;
    if object.len() != 1 {
        return Err("the body must hold exactly one field, \"command\"");
    }
    let line = object.get("command").and_then(Value::as_str).ok_or("\"command\" must be a string")?;
    if line.trim().is_empty() {
        return Err("\"command\" is empty");
    }
    if line.len() > MAX_COMMAND_BYTES {
        return Err("\"command\" is longer than 1024 bytes");
    }
    Ok(String::from(line))
}

/// Largest `max` of `GET /api/decisions` (the meta-agent's ring holds 256 traces).
pub const MAX_DECISIONS: u64 = 256;

/// The command line of `GET /api/decisions?cursor=N&max=M`: `otelctl decisions read --cursor N --max M` (cursor
/// 0 and max 64 when absent). Only decimal digits are taken, `max` in 1..=[`MAX_DECISIONS`]; a parameter given
/// twice, or any other parameter, is refused.
pub(crate) fn decisions_line(request: &Request) -> Result<String, &'static str> {
    let (mut cursor, mut max) = (None, None);
    for pair in request.query.as_deref().unwrap_or("").split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number = (!value.is_empty() && value.len() <= 20 && value.bytes().all(|byte| byte.is_ascii_digit()))
            .then(|| value.parse::<u64>().ok())
            .flatten();
        let slot = match key {
            "cursor" => &mut cursor,
            "max" => &mut max,
            _ => return Err("the query takes only cursor and max"),
        };
        if slot.is_some() {
            return Err("cursor and max may each be given once");
        }
        *slot = Some(number.ok_or("cursor and max are decimal integers")?);
    }
    let max = max.unwrap_or(64);
    if !(1..=MAX_DECISIONS).contains(&max) {
        return Err("max is 1 to 256");
    }
    Ok(alloc::format!("otelctl decisions read --cursor {} --max {max}", cursor.unwrap_or(0)))
}
