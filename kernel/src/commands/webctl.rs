//! `webctl`: start and stop the web server, read its counters, manage its bearer tokens.

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{json, Value};
use sis_shell::{ArgSpec, CommandSpec, Invocation, Reply, ShellError, ValueKind};
use sis_web::{Role, TokenInfo};

use super::Kernel;
use crate::format;
use crate::web;

/// `webctl`.
pub static WEBCTL: CommandSpec<Kernel> = CommandSpec {
    name: "webctl",
    summary: "The HTTP/WebSocket server: start, stop, status, bearer tokens",
    description: "Serves GET /api/metrics, POST /api/command and GET /ws (WebSocket) over the network device, with bearer tokens tied to roles (viewer, operator, admin). Tokens are derived from the boot argument sis.entropy (the host's random source) and stored only as hashes. Boot arguments sis.web=PORT and sis.web_token=HEX start the server at boot.",
    args: &[],
    subcommands: &[
        CommandSpec {
            name: "start",
            summary: "Start listening (needs the network device)",
            description: "Fails with no-device without virtio-net and with already-running when the server runs.",
            args: &[
                ArgSpec::flag("port", ValueKind::U64 { min: 1, max: 65535 }, "TCP port").default("80"),
                ArgSpec::flag(
                    "sockets",
                    ValueKind::U64 { min: 1, max: sis_net::MAX_LISTENER_SOCKETS as u64 },
                    "listening sockets: connections served at once (more are refused with a TCP reset)",
                )
                .default(web::LISTENER_SOCKETS_TEXT),
            ],
            subcommands: &[],
            handler: Some(start),
        },
        CommandSpec {
            name: "stop",
            summary: "Close the listener; its connections (WebSockets included) are reset",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(stop),
        },
        CommandSpec {
            name: "status",
            summary: "Show whether the server runs, its connections, requests, bytes, errors and latencies",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(status),
        },
        CommandSpec {
            name: "token",
            summary: "Create, list and revoke bearer tokens",
            description: "",
            args: &[],
            subcommands: &[
                CommandSpec {
                    name: "create",
                    summary: "Create a token and print its secret once (only its hash is kept)",
                    description: "Needs the sis.entropy boot argument; fails with no-entropy without it.",
                    args: &[ArgSpec::flag("role", ValueKind::Choice(&["viewer", "operator", "admin"]), "role")
                        .required()],
                    subcommands: &[],
                    handler: Some(token_create),
                },
                CommandSpec {
                    name: "list",
                    summary: "List tokens (id, role, creation time; never a secret)",
                    description: "",
                    args: &[],
                    subcommands: &[],
                    handler: Some(token_list),
                },
                CommandSpec {
                    name: "revoke",
                    summary: "Revoke a token at once; its open WebSockets are closed with 1008",
                    description: "",
                    args: &[ArgSpec::positional("id", ValueKind::U64 { min: 1, max: u32::MAX as u64 }, "token id")
                        .required()],
                    subcommands: &[],
                    handler: Some(token_revoke),
                },
            ],
            handler: None,
        },
    ],
    handler: None,
};

fn start(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let port = invocation.args.u64("port").unwrap_or(u64::from(web::DEFAULT_PORT)) as u16;
    let sockets = invocation.args.u64("sockets").unwrap_or(web::LISTENER_SOCKETS as u64) as usize;
    let running = web::start(kernel, port, sockets)?;
    Ok(Reply::new(
        alloc::format!("web server listening on TCP port {} ({} connections at a time)", running.port, running.sockets),
        json!({ "running": true, "port": running.port, "sockets": running.sockets, "started_ns": running.started_ns }),
    ))
}

fn stop(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let running = web::stop()?;
    Ok(Reply::new(
        alloc::format!("web server on port {} stopped; its connections were reset", running.port),
        json!({ "running": false, "port": running.port }),
    ))
}

fn status(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let status = web::status();
    let counters = &status.counters;
    let responses = counters.responses;
    let errors = counters.protocol_errors;
    let latency = counters.latency;
    let state = match status.running {
        Some(running) => {
            alloc::format!("running on TCP port {} since {}", running.port, format::milliseconds(running.started_ns))
        }
        None => String::from("not running"),
    };
    let human = alloc::format!(
        "web server  {state}\n\
         connections {} open, {} accepted, {} closed, {} refused (over the limit)\n\
         responses   {} 1xx, {} 2xx, {} 4xx, {} 5xx; {} unauthorized, {} forbidden\n\
         bytes       {} in, {} out\n\
         errors      {} malformed, {} head too large, {} too many headers, {} body too large, {} timeouts, {} output overflows\n\
         websocket   {} open, {} upgrades, {} messages in, {} out, {} pushes refused\n\
         latency     {} requests: p50 {} p99 {} max {}\n\
         metrics     {} readings (p50 {} p99 {} each, no lock held) answered {} requests and {} pushes\n\
         tokens      {}; commands waiting {}",
        counters.connections_open,
        counters.connections_accepted,
        counters.connections_closed,
        counters.connections_refused,
        responses.informational,
        responses.success,
        responses.client_error,
        responses.server_error,
        counters.auth.unauthorized,
        counters.auth.forbidden,
        format::bytes(counters.bytes_in),
        format::bytes(counters.bytes_out),
        errors.malformed,
        errors.head_too_large,
        errors.too_many_headers,
        errors.body_too_large,
        errors.head_timeouts + errors.body_timeouts + errors.idle_timeouts + errors.send_timeouts,
        errors.output_overflows,
        counters.websocket.open,
        counters.websocket.upgrades,
        counters.websocket.messages_in,
        counters.websocket.messages_out,
        counters.websocket.pushes_refused,
        latency.count,
        format::milliseconds(latency.p50_ns),
        format::milliseconds(latency.p99_ns),
        format::milliseconds(latency.max_ns),
        status.metrics.duration.count,
        format::milliseconds(status.metrics.duration.p50_ns),
        format::milliseconds(status.metrics.duration.p99_ns),
        status.metrics.answered,
        status.metrics.pushed,
        status.tokens,
        status.commands_waiting,
    );
    let listener = status.listener;
    Ok(Reply::new(
        human,
        json!({
            "running": status.running.is_some(),
            "port": status.running.map(|running| running.port),
            "sockets": status.running.map(|running| running.sockets),
            "started_ns": status.running.map(|running| running.started_ns),
            "app": serde_json::to_value(counters).unwrap_or(Value::Null),
            "listener": {
                "accepted": listener.accepted,
                "open": listener.open,
                "ended": listener.ended,
                "bytes_in": listener.bytes_in,
                "bytes_out": listener.bytes_out,
            },
            "tokens": status.tokens,
            "commands_waiting": status.commands_waiting,
            "metrics_readings": {
                "count": status.metrics.duration.count,
                "answered": status.metrics.answered,
                "pushed": status.metrics.pushed,
                "duration": serde_json::to_value(status.metrics.duration).unwrap_or(Value::Null),
            },
        }),
    ))
}

fn token_json(info: &TokenInfo) -> Value {
    json!({ "id": info.id.0, "role": info.role.name(), "created_ns": info.created_ns })
}

fn token_create(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let name = invocation.args.str("role").unwrap_or("");
    let role = Role::parse(name)
        .ok_or_else(|| ShellError::new(sis_shell::codes::INVALID_VALUE, alloc::format!("unknown role '{name}'")))?;
    let (info, secret) = web::create_token(kernel, role)?;
    Ok(Reply::new(
        alloc::format!(
            "token {} ({}): {secret}\nshown once: only its SHA-256 hash is kept",
            info.id.0,
            info.role.name()
        ),
        json!({ "token": token_json(&info), "secret": secret }),
    ))
}

fn token_list(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let tokens = web::tokens();
    let mut human = alloc::format!("{:>4}  {:8}  {:>12}", "ID", "ROLE", "CREATED");
    for info in &tokens {
        human.push_str(&alloc::format!(
            "\n{:>4}  {:8}  {:>12}",
            info.id.0,
            info.role.name(),
            format::milliseconds(info.created_ns)
        ));
    }
    let list: Vec<Value> = tokens.iter().map(token_json).collect();
    Ok(Reply::new(human, json!({ "tokens": list })))
}

fn token_revoke(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let id = invocation.args.u64("id").unwrap_or(0) as u32;
    let (info, websockets_closed) = web::revoke_token(id)?;
    Ok(Reply::new(
        alloc::format!("token {} ({}) revoked; {websockets_closed} WebSocket(s) closed", info.id.0, info.role.name()),
        json!({ "token": token_json(&info), "websockets_closed": websockets_closed }),
    ))
}
