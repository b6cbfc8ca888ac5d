//! The web thread (drives the app from the I/O table) and the command worker (runs `POST /api/command` lines
//! through the shell registry and registers `POST /api/models` artifacts as `llmctl register` does), with the
//! app's backend: metrics, commands and uploads.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{json, Map, Value};
use sis_governance::Principal;
use sis_platform::irq_lock::IrqMutex;
use sis_platform::{power, thread, time};
use sis_sched::ThreadId;
use sis_shell::{codes, Capabilities, Outcome, Output, Registry, ShellError};
use sis_web::{Backend, CommandReply, ConnectionId, ModelReply, TokenId};

use super::io::{IoEvent, IoKind, IO};
use super::{Completed, Link, Server, SERVER};
use crate::commands::net::link;
use crate::commands::{self, llmctl, Kernel};

/// Longest sleep of the web thread when the app has no deadline.
const MAX_SLEEP_NS: u64 = 100_000_000;
/// Stack of the web thread (metrics run registry handlers).
const WEB_STACK_BYTES: u64 = 128 * 1024;
/// Stack of the command worker: like the shell's, stress tests keep histograms on it.
const WORKER_STACK_BYTES: u64 = 256 * 1024;
/// Error code: a command line printed no JSON object.
pub const NO_JSON: &str = "no-json-output";

/// Work waiting for the worker, for connection `connection`, sent with token `token` (the principal `llmctl`
/// counts against).
struct Job {
    connection: ConnectionId,
    token: TokenId,
    work: Work,
}

/// What a job does.
enum Work {
    /// Run a command line with these capabilities.
    Command { line: String, capabilities: Capabilities },
    /// Verify and register an uploaded artifact (the app checked the token holds the admin capability).
    Model { artifact: Vec<u8> },
}

/// Lines for the worker, and the worker's thread.
static JOBS: IrqMutex<(VecDeque<Job>, Option<ThreadId>)> = IrqMutex::new((VecDeque::new(), None));

/// Each metrics section and the shell line whose JSON it is (the same handlers the console runs).
const METRIC_LINES: &[(&str, &str)] = &[
    ("memory", "meminfo --json"),
    ("workload", "memctl status --json"),
    ("scheduler", "schedctl util --json"),
    ("threads", "threads --json"),
    ("autonomy", "autoctl status --json"),
    ("network", "netctl stats --json"),
    ("block", "blkctl status --json"),
];

/// Starts the web thread and the command worker; returns the web thread.
pub fn spawn_threads(kernel: &Kernel) -> Result<ThreadId, ShellError> {
    let spawn_error = |error: thread::SpawnError| {
        ShellError::new("spawn-failed", alloc::format!("cannot start a web thread: {error}"))
    };
    let worker_kernel = kernel.clone();
    let worker = thread::spawn("web-cmd", WORKER_STACK_BYTES, move || worker(worker_kernel)).map_err(spawn_error)?;
    JOBS.lock().1 = Some(worker);
    let web_kernel = kernel.clone();
    let web = thread::spawn("web", WEB_STACK_BYTES, move || run(web_kernel)).map_err(spawn_error)?;
    crate::events::follow(web);
    Ok(web)
}

/// Command output kept in memory: text as text, and the registry's JSON reply as the value itself. Printing the
/// replies and parsing them back was 46 % of a metrics reading: 4.35 ms of guest time in deterministic mode
/// (`-icount shift=3`), 2.35 ms without.
#[derive(Default)]
struct Capture {
    text: String,
    /// The last JSON object written as a value, and how much text came before it.
    json: Option<(usize, Value)>,
}

impl Output for Capture {
    fn write_str(&mut self, text: &str) {
        self.text.push_str(text);
    }

    fn write_json(&mut self, value: Value) {
        if value.is_object() {
            self.json = Some((self.text.len(), value));
        }
    }
}

impl Capture {
    /// The last JSON object the command wrote: a line of text after the last value that parses as one, or else
    /// that value.
    fn last_object(self) -> Option<Value> {
        let after = self.json.as_ref().map_or(0, |(at, _)| *at);
        let printed = self.text[after..]
            .lines()
            .rev()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(Value::is_object);
        printed.or(self.json.map(|(_, value)| value))
    }
}

/// Runs `line` with `--json` and returns the JSON object it wrote (the last one) and its outcome.
fn run_line(
    kernel: &mut Kernel,
    registry: &Registry<Kernel>,
    line: &str,
    principal: Principal,
    capabilities: Capabilities,
) -> (Option<Value>, Outcome) {
    let mut text = String::from(line.trim());
    if !text.split_whitespace().any(|word| word == "--json") {
        text.push_str(" --json");
    }
    kernel.line_received_ns = None;
    kernel.principal = principal;
    let mut capture = Capture::default();
    let outcome = registry.execute_as(kernel, text.as_bytes(), &mut capture, capabilities);
    (capture.last_object(), outcome)
}

/// The app's view of the kernel, for one turn of the web thread. Both kinds of work that run registry handlers
/// are deferred, so none runs under [`SERVER`] (an IRQ-masking lock): command lines go to the worker, and metrics
/// requests and pushes wait for the reading the web thread takes after the turn with no lock held
/// ([`read_metrics`], [`sis_web::App::supply_metrics`]).
#[derive(Default)]
struct KernelBackend {
    jobs: Vec<Job>,
}

impl Backend for KernelBackend {
    fn metrics(&mut self, _now_ns: u64) -> Option<Value> {
        None
    }

    fn command(
        &mut self,
        connection: ConnectionId,
        line: &str,
        token: TokenId,
        capabilities: Capabilities,
    ) -> Option<CommandReply> {
        let work = Work::Command { line: String::from(line), capabilities };
        self.jobs.push(Job { connection, token, work });
        None
    }

    fn register_model(&mut self, connection: ConnectionId, artifact: Vec<u8>, token: TokenId) -> Option<ModelReply> {
        // The governor's lock yields and the audit log goes to the disk: not under `SERVER`.
        self.jobs.push(Job { connection, token, work: Work::Model { artifact } });
        None
    }

    fn now_ns(&mut self) -> u64 {
        time::now_ns()
    }
}

/// The kernel's live figures, each section from the same handler the console runs. Called with no lock held:
/// the handlers take the network slot, the scheduler's and the allocators' locks.
fn read_metrics(kernel: &mut Kernel, registry: &Registry<Kernel>) -> Value {
    let mut metrics = Map::new();
    metrics.insert(String::from("uptime_ns"), Value::from(time::now_ns()));
    for (section, line) in METRIC_LINES {
        let (json, _) = run_line(kernel, registry, line, Principal::Console, Capabilities::ALL);
        metrics.insert(String::from(*section), json.unwrap_or(Value::Null));
    }
    Value::Object(metrics)
}

/// The command worker: runs queued lines and uploads one at a time and hands each reply to the web thread.
fn worker(mut kernel: Kernel) {
    let registry = commands::registry();
    loop {
        let job = JOBS.lock().0.pop_front();
        let Some(job) = job else {
            thread::sleep_until_ns_or_woken(time::now_ns().saturating_add(1_000_000_000), || !JOBS.lock().0.is_empty());
            continue;
        };
        let principal = Principal::Token(job.token.0);
        let completed = match job.work {
            Work::Command { line, capabilities } => {
                let start_ns = time::now_ns();
                let (json, outcome) = run_line(&mut kernel, &registry, &line, principal, capabilities);
                // Recorded like a console line (docs/otel.md): the web door is one more door to the same registry.
                crate::otel::record_command(&registry, line.as_bytes(), start_ns, time::now_ns(), &outcome);
                let permission_denied = matches!(outcome, Outcome::Failed { code } if code == codes::PERMISSION_DENIED);
                let json = json.unwrap_or_else(|| {
                    json!({ "ok": false, "error": { "code": NO_JSON, "message": "the command printed no JSON object" } })
                });
                Completed::Command(CommandReply { json, permission_denied })
            }
            Work::Model { artifact } => Completed::Model(register_upload(principal, &artifact)),
        };
        let web_thread = {
            let mut guard = SERVER.lock();
            guard.as_mut().and_then(|server| {
                server.completed.push_back((job.connection, completed));
                server.web_thread
            })
        };
        if let Some(id) = web_thread {
            thread::wake(id);
        }
        if kernel.shutdown_requested {
            // The reply goes out first; then the machine powers off, as the console's `shutdown` does.
            thread::sleep_ns(200_000_000);
            power::system_off();
        }
    }
}

/// Registers an uploaded artifact as `llmctl register` does, with `source` `upload`: the model's JSON object
/// (with `schema_version`), or the refusal's code and message.
fn register_upload(principal: Principal, artifact: &[u8]) -> ModelReply {
    match llmctl::register_artifact(principal, artifact, llmctl::UPLOAD_SOURCE) {
        Ok(reply) => {
            let mut model = Map::new();
            model.insert(String::from("schema_version"), Value::from(sis_proto::SCHEMA_VERSION));
            model.extend(reply.json);
            ModelReply::Registered(Value::Object(model))
        }
        Err(error) => ModelReply::Refused { code: String::from(error.code()), message: String::from(error.message()) },
    }
}

/// The web thread: one turn, then sleep until the app's next deadline, new events or a reply.
fn run(mut kernel: Kernel) {
    let registry = commands::registry();
    loop {
        let (again, deadline) = turn(&mut kernel, &registry);
        if again {
            thread::yield_now();
            continue;
        }
        let now = time::now_ns();
        let deadline = deadline.unwrap_or(u64::MAX).clamp(now, now.saturating_add(MAX_SLEEP_NS));
        thread::sleep_until_ns_or_woken(deadline, || {
            IO.lock().has_events()
                || SERVER.lock().as_ref().is_some_and(|server| {
                    !server.completed.is_empty() || server.event_cursor < crate::events::with_log(|log| log.next_seq())
                })
        });
    }
}

/// One turn: events in, replies in, the app's poll, output out; then, if the app waits for metrics, one reading
/// taken with no lock held and handed to every request and push waiting for it. Returns whether another turn is
/// due at once and the app's next deadline.
fn turn(kernel: &mut Kernel, registry: &Registry<Kernel>) -> (bool, Option<u64>) {
    let now = time::now_ns();
    let events = IO.lock().take_events();
    let mut backend = KernelBackend::default();
    let (mut again, mut moved, wants_metrics) = {
        let mut guard = SERVER.lock();
        let Some(server) = guard.as_mut() else { return (false, None) };
        apply_events(server, events, now);
        let waiting = feed(server, &mut backend, now);
        while let Some((id, completed)) = server.completed.pop_front() {
            let _ = match completed {
                Completed::Command(reply) => server.app.complete_command(&mut backend, id, reply, now),
                Completed::Model(reply) => server.app.complete_model(&mut backend, id, reply, now),
            };
        }
        let more_events = push_events(server);
        server.app.poll(&mut backend, now);
        let (moved, again) = drain(server, &mut backend, now);
        (waiting || again || more_events, moved, server.app.wants_metrics())
    };
    if wants_metrics {
        let started = time::now_ns();
        let reading = read_metrics(kernel, registry);
        let now = time::now_ns();
        let mut guard = SERVER.lock();
        if let Some(server) = guard.as_mut() {
            // Frames carry the reading's start as their time: their figures were read at or after it.
            let supplied = server.app.supply_metrics(&mut backend, &reading, started);
            server.metrics.record(now.saturating_sub(started), supplied);
            let (more, waiting) = drain(server, &mut backend, now);
            moved |= more;
            again |= waiting || server.app.wants_metrics();
        }
    }
    let deadline = SERVER.lock().as_ref().and_then(|server| server.app.next_deadline_ns());
    if !backend.jobs.is_empty() {
        let worker = {
            let mut jobs = JOBS.lock();
            jobs.0.extend(backend.jobs);
            jobs.1
        };
        if let Some(worker) = worker {
            thread::wake(worker);
        }
    }
    if moved {
        link::kick();
    }
    (again, deadline)
}

/// Opens, feeds, half-closes and forgets the app's connections as the network thread saw their sockets.
fn apply_events(server: &mut Server, events: VecDeque<IoEvent>, now: u64) {
    for event in events {
        match event.kind {
            IoKind::Opened => {
                if let Some(old) = server.links.remove(&event.slot) {
                    let _ = server.app.close(old.id);
                }
                match server.app.open(now) {
                    Ok(id) => {
                        let link = Link {
                            generation: event.generation,
                            id,
                            leftover: Vec::new(),
                            peer_closed: false,
                            closing: false,
                        };
                        server.links.insert(event.slot, link);
                    }
                    // Over the app's connection limit: close without a word.
                    Err(_) => IO.lock().set_closing(event.slot, event.generation),
                }
            }
            IoKind::Data(bytes) => {
                if let Some(link) = server.links.get_mut(&event.slot).filter(|link| link.generation == event.generation)
                {
                    link.leftover.extend_from_slice(&bytes);
                }
            }
            IoKind::PeerClosed => {
                if let Some(link) = server.links.get_mut(&event.slot).filter(|link| link.generation == event.generation)
                {
                    link.peer_closed = true;
                }
            }
            IoKind::Closed => {
                if server.links.get(&event.slot).is_some_and(|link| link.generation == event.generation) {
                    if let Some(link) = server.links.remove(&event.slot) {
                        let _ = server.app.close(link.id);
                    }
                }
            }
        }
    }
}

/// Pushes the kernel events published since the last turn to the app's events subscribers (none: the cursor
/// moves on); returns whether more wait than one batch.
fn push_events(server: &mut Server) -> bool {
    if !server.app.has_event_subscribers() {
        server.event_cursor = crate::events::with_log(|log| log.next_seq());
        return false;
    }
    let batch = crate::events::with_log(|log| log.since(server.event_cursor, sis_events::MAX_BATCH));
    server.event_cursor = batch.next;
    server.app.events_missed(batch.missed);
    for event in &batch.events {
        if let Ok(value) = serde_json::to_value(event) {
            server.app.publish_event(&value);
        }
    }
    batch.events.len() == sis_events::MAX_BATCH
}

/// Hands received bytes to the app; returns whether bytes wait that the app could not take yet.
fn feed(server: &mut Server, backend: &mut KernelBackend, now: u64) -> bool {
    let mut waiting = false;
    for (slot, link) in &mut server.links {
        if link.leftover.is_empty() {
            continue;
        }
        let taken = server.app.receive(backend, link.id, now, &link.leftover).unwrap_or(link.leftover.len());
        link.leftover.drain(..taken);
        if link.leftover.is_empty() {
            link.leftover = Vec::new();
        }
        IO.lock().release(*slot, link.generation, taken);
        waiting |= taken > 0 && !link.leftover.is_empty();
    }
    waiting
}

/// Moves the app's output into the slots and sets closing flags; returns (anything for the network thread,
/// output left that did not fit but may once the app consumed).
fn drain(server: &mut Server, backend: &mut KernelBackend, now: u64) -> (bool, bool) {
    let mut moved = false;
    let mut consumed = Vec::new();
    {
        let mut io = IO.lock();
        for (slot, link) in &server.links {
            let output = server.app.pending_output(link.id);
            if !output.is_empty() {
                let count = io.push_output(*slot, link.generation, output);
                if count > 0 {
                    consumed.push((link.id, count));
                    moved = true;
                }
            }
        }
    }
    let again = !consumed.is_empty();
    for (id, count) in consumed {
        server.app.consume(backend, id, now, count);
    }
    let mut io = IO.lock();
    for (slot, link) in &mut server.links {
        if link.closing {
            continue;
        }
        let drained = server.app.pending_output(link.id).is_empty();
        let app_done = server.app.should_close(link.id) && drained;
        let peer_done = link.peer_closed && drained && !server.app.awaits_answer(link.id) && link.leftover.is_empty();
        if app_done || peer_done {
            io.set_closing(*slot, link.generation);
            link.closing = true;
            moved = true;
        }
    }
    (moved, again)
}
