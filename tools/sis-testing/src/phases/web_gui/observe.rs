//! The phase 6 session: boot, start the server, and drive it step by step, recording what every client saw.
//!
//! Steps run in order on one boot; each waits for the connections of the one before to close (the server's
//! own `connections_open` back at 0) so that counter deltas belong to one step. A step that cannot be completed
//! (a client fails, a console line fails to answer) records why, and the session goes on with the next.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod sockets;

use sockets::receive;
pub use sockets::{SILENCE_NS, STRESS};

use super::record::*;
use super::GUEST_PORT;
use crate::web::{Connected, Request, WebClient, WebSocket};
use crate::{free_local_port, QemuConfig, Sis};

/// Longest wait for one WebSocket message (host time; only a failure ever waits this long).
const MESSAGE_WAIT: Duration = Duration::from_secs(30);
/// Longest wait for the server to forget a step's connections.
const SETTLE_WAIT: Duration = Duration::from_secs(60);
/// Longest wait for a refused request's end.
const REFUSED_WAIT: Duration = Duration::from_secs(20);
/// A plain request, as raw bytes, for the port while no server listens.
const PLAIN_REQUEST: &[u8] = b"GET /api/metrics HTTP/1.1\r\nHost: sis\r\n\r\n";

/// The booted kernel, the client, and the three tokens the session made on the console.
struct Session {
    sis: Sis,
    client: WebClient,
    admin: String,
    operator: String,
    viewer: String,
    /// The viewer token made through `POST /api/command`: its id and secret.
    http_viewer: Option<(u64, String)>,
}

/// Boots SIS with a network device forwarding a free host port to guest port 8080 and runs every step.
/// `Err` only when nothing could be observed (the boot failed, or the server never started).
pub fn observe(config: &QemuConfig) -> Result<Observations, String> {
    let port = free_local_port().map_err(|error| format!("no free host port: {error}"))?;
    let config = config.clone().user_network(port, GUEST_PORT);
    let address = config.forwarded_address().ok_or("no forwarded address")?;
    let mut sis = Sis::boot(&config).map_err(|error| format!("the boot failed: {error}"))?;
    let before = console(&mut sis, "webctl status")?;
    let refused = WebClient::new(address)
        .raw(PLAIN_REQUEST, REFUSED_WAIT)
        .map_err(|error| format!("a request before the start: {error}"))?;
    let start = console(&mut sis, &format!("webctl start --port {GUEST_PORT}"))?;
    let started = console(&mut sis, "webctl status")?;
    let start_again = console(&mut sis, &format!("webctl start --port {GUEST_PORT}"))?;
    let mut tokens = Vec::new();
    for role in ["admin", "operator", "viewer"] {
        let created = console(&mut sis, &format!("webctl token create --role {role}"))?;
        let secret = created["secret"].as_str().ok_or_else(|| format!("a {role} token, got {created}"))?;
        tokens.push(secret.to_string());
    }
    let [admin, operator, viewer] = <[String; 3]>::try_from(tokens).map_err(|_| "three tokens")?;
    let mut session = Session { sis, client: WebClient::new(address), admin, operator, viewer, http_viewer: None };
    let startup = session.startup(before, refused, start, started, start_again);
    Ok(Observations {
        startup,
        http: session.http_requests(),
        metrics_api: session.metrics_api(),
        command_api: session.command_api(),
        token_required: session.token_required(),
        invalid_token: session.invalid_token(),
        roles: session.roles(),
        connection: session.connection(),
        exchange: session.exchange(),
        subscription: session.subscription(),
        stream: session.stream(),
        interval: session.interval(),
        reconnection: session.reconnection(),
        shutdown: session.shutdown(),
        events: session.events(),
    })
}

/// The JSON reply of `line --json` (failed commands included: their `ok` is false).
fn console(sis: &mut Sis, line: &str) -> Step<Value> {
    sis.run_json(line).map_err(|error| format!("{line}: {error}"))
}

impl Session {
    fn console(&mut self, line: &str) -> Step<Value> {
        console(&mut self.sis, line)
    }

    /// `webctl status`, once the server has no connection open (a step's clients are gone).
    fn settled(&mut self) -> Step<Value> {
        let deadline = Instant::now() + SETTLE_WAIT;
        loop {
            let status = self.console("webctl status")?;
            let open = (&status["app"]["connections_open"], &status["listener"]["open"]);
            if open == (&json!(0), &json!(0)) {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(format!("connections still open {} s after the step: {status}", SETTLE_WAIT.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn http(&self, request: &Request) -> Step<Http> {
        self.client
            .send(request)
            .map(Http::from_transfer)
            .map_err(|error| format!("{} {}: {error}", request.method, request.path))
    }

    /// GET /api/metrics with the body digested.
    fn metrics(&self, token: &str) -> Step<Http> {
        let mut http = self.http(&Request::get("/api/metrics").bearer(token))?;
        if http.status == 200 {
            http.body = digest_metrics(&http.body);
        }
        Ok(http)
    }

    fn post(&self, token: &str, line: &str) -> Step<Http> {
        self.http(&Request::command(line).bearer(token))
    }

    /// A WebSocket that must open.
    fn websocket(&self, token: &str) -> Step<WebSocket> {
        match self.client.websocket(Some(token)).map_err(|error| format!("a WebSocket: {error}"))? {
            (socket, Connected::Open) => Ok(socket),
            (_, refused) => Err(format!("a WebSocket opens, got {refused:?}")),
        }
    }

    /// The handshake's answer for `token` (the client closes at once).
    fn handshake(&self, token: Option<&str>) -> Step<Connected> {
        self.client.websocket(token).map(|(_, connected)| connected).map_err(|error| format!("a WebSocket: {error}"))
    }

    fn uptime_ns(&mut self) -> Step<u64> {
        let uptime = self.console("uptime")?;
        uptime["uptime_ns"].as_u64().ok_or_else(|| format!("uptime_ns in {uptime}"))
    }

    fn startup(
        &mut self,
        before: Value,
        refused: crate::web::RawReply,
        start: Value,
        started: Value,
        start_again: Value,
    ) -> Step<Startup> {
        let first = self.metrics(&self.admin.clone())?;
        let after = self.settled()?;
        Ok(Startup { before, refused, start, started, start_again, first, after })
    }

    fn http_requests(&mut self) -> Step<HttpRequests> {
        let before = self.settled()?;
        let admin = self.admin.clone();
        let requests = [
            Request::get("/api/metrics").bearer(&admin),
            Request::get("/nowhere").bearer(&admin),
            Request::get("/api/metrics").bearer(&admin),
            Request::new("DELETE", "/api/metrics").bearer(&admin),
        ];
        let transfers = self.client.transfers(&requests).map_err(|error| format!("four requests: {error}"))?;
        let mut exchanges: Vec<Http> = transfers.into_iter().map(Http::from_transfer).collect();
        for exchange in exchanges.iter_mut().filter(|exchange| exchange.status == 200) {
            exchange.body = digest_metrics(&exchange.body);
        }
        let after = self.settled()?;
        Ok(HttpRequests { before, exchanges, after })
    }

    fn metrics_api(&mut self) -> Step<MetricsApi> {
        self.settled()?;
        let meminfo = self.console("meminfo")?;
        let reads = vec![self.metrics(&self.viewer.clone())?, self.metrics(&self.viewer.clone())?];
        Ok(MetricsApi { meminfo, reads })
    }

    fn command_api(&mut self) -> Step<CommandApi> {
        let before = self.settled()?;
        let meminfo = self.console("meminfo")?;
        let admin = self.admin.clone();
        let echo = self.post(&admin, "echo phase six")?;
        let meminfo_http = self.post(&admin, "meminfo")?;
        let unknown = self.post(&admin, "frobnicate")?;
        let bad_body =
            self.http(&Request::new("POST", "/api/command").json(&json!({ "cmd": "echo hi" })).bearer(&admin))?;
        let token_create = self.post(&admin, "webctl token create --role viewer")?;
        if let (Some(id), Some(secret)) =
            (token_create.body["token"]["id"].as_u64(), token_create.body["secret"].as_str())
        {
            self.http_viewer = Some((id, secret.to_string()));
        }
        let token_list = self.console("webctl token list")?;
        let after = self.settled()?;
        Ok(CommandApi { before, meminfo, echo, meminfo_http, unknown, bad_body, token_create, token_list, after })
    }

    fn token_required(&mut self) -> Step<TokenRequired> {
        let before = self.settled()?;
        let get = self.http(&Request::get("/api/metrics"))?;
        let post = self.http(&Request::command("webctl token create --role admin"))?;
        let websocket = self.handshake(None)?;
        let after = self.settled()?;
        Ok(TokenRequired { before, get, post, websocket, after })
    }

    fn invalid_token(&mut self) -> Step<InvalidToken> {
        let (id, secret) = self.http_viewer.clone().ok_or("no token made through POST /api/command")?;
        let before = self.settled()?;
        let never_issued = "0".repeat(64);
        let unknown = self.http(&Request::get("/api/metrics").bearer(&never_issued))?;
        let basic = self.http(&Request::get("/api/metrics").header("Authorization: Basic c2lzOnNpcw=="))?;
        let websocket_unknown = self.handshake(Some(&never_issued))?;
        let valid = self.metrics(&secret)?;
        let mut socket = self.websocket(&secret)?;
        let revoke = self.console(&format!("webctl token revoke {id}"))?;
        let websocket_end = receive(&mut socket)?;
        drop(socket);
        let revoked = self.http(&Request::get("/api/metrics").bearer(&secret))?;
        let websocket_revoked = self.handshake(Some(&secret))?;
        let after = self.settled()?;
        Ok(InvalidToken {
            before,
            unknown,
            basic,
            websocket_unknown,
            valid,
            revoke,
            websocket_end,
            revoked,
            websocket_revoked,
            after,
        })
    }

    fn roles(&mut self) -> Step<Roles> {
        let before = self.settled()?;
        let (viewer, operator, admin) = (self.viewer.clone(), self.operator.clone(), self.admin.clone());
        let viewer_mkdir = self.post(&viewer, "mkdir /phase6-viewer")?;
        let viewer_ls = self.post(&viewer, "ls /")?;
        let operator_mkdir = self.post(&operator, "mkdir /phase6-operator")?;
        let operator_stress = self.post(&operator, "stresstest memory --duration 100")?;
        let admin_tokens = self.post(&admin, "webctl token list")?;
        let ls = self.console("ls /")?;
        let after = self.settled()?;
        Ok(Roles { before, viewer_mkdir, viewer_ls, operator_mkdir, operator_stress, admin_tokens, ls, after })
    }
}
