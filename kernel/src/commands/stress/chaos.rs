//! `stresstest chaos`: the chaos engine (`sis_stress::chaos`) acting on the kernel's real subsystems.
//!
//! The run owns a memory pool with a working set, a periodic deadline thread with a reservation, and
//! whatever devices are attached; events act on those and on the registry, the autonomy switch and the
//! installed learning agent. Checks read the same state. docs/stress.md has the rules.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::AtomicBool;
use core::sync::atomic::Ordering::Relaxed;

use serde_json::json;
use sis_ai::Transition;
use sis_blk::BlockDevice;
use sis_mm::{CountedFrames, MemoryKind, ObjectHandle, Pool};
use sis_platform::memory::KernelFrames;
use sis_platform::thread::{self, JoinHandle};
use sis_platform::time;
use sis_sched::{ServerParams, ThreadId};
use sis_shell::{Invocation, Outcome, Registry, Reply, ShellError};
use sis_stress::chaos::{
    self, ChaosConfig, ChaosEvent, ChaosReport, ChaosTarget, EventFigures, EventKind, EventRecord, Health, Integrity,
    PlannedEvent, Skipped,
};
use sis_stress::learning::{self, Controller, DECISIONS_PER_EPISODE, STATE_SIZE};
use sis_stress::port::Throttle;
use sis_stress::{FloodConfig, Rate};

use super::flood::FloodRun;
use super::{with_status, Discard, DEADLINE_PORT, MEMORY_PORT};
use crate::commands::blk::disk;
use crate::commands::neural::{Installed, Origin, AGENT};
use crate::commands::{self, autonomy, net, Kernel};

/// The chaos pool's budget.
const POOL_BYTES: u64 = 16 << 20;
/// The working set the pool holds in the steady state: 60 % of the budget, half of it cache.
const WORKING_SET_BYTES: u64 = POOL_BYTES * 6 / 10;
/// Working-set objects: 64 KiB cache blocks and unreclaimable objects of 4–64 KiB.
const CACHE_OBJECT_BYTES: u64 = 64 << 10;
/// Spike objects.
const SPIKE_OBJECT_BYTES: u64 = 64 << 10;
/// What the workload allocates back per reading of the checks after losing part of its working set.
const REFILL_BYTES_PER_STEP: u64 = 512 << 10;
/// Steady state: pressure at most this, ‰.
const PRESSURE_LIMIT_PER_MILLE: u32 = 900;
/// Steady state: the working set at least this share of its size, ‰.
const WORKING_SET_FLOOR_PER_MILLE: u64 = 950;
/// The periodic thread: 1.5 ms of work every 10 ms, in a 2 ms reservation (work = 750 ‰ of the budget).
const PERIOD_NS: u64 = 10_000_000;
const WORK_NS: u64 = 1_500_000;
const RESERVATION: ServerParams = ServerParams { budget_ns: 2_000_000, period_ns: PERIOD_NS, deadline_ns: PERIOD_NS };
/// Steady state: the shell answers `version` within this.
const SHELL_LIMIT_NS: u64 = 20_000_000;
/// Steady state: the gateway answers a ping within this, and a disk sector reads within this.
const DEVICE_LIMIT_NS: u64 = 20_000_000;
/// QEMU user networking's gateway.
const GATEWAY: [u8; 4] = [10, 0, 2, 2];
const WORKER_STACK_BYTES: u64 = 64 * 1024;
const PERIODIC_STACK_BYTES: u64 = 16 * 1024;
/// Commands of a telemetry storm: every read-only status command with `--json`.
const TELEMETRY: [&str; 5] =
    ["meminfo --json", "threads --json", "autoctl status --json", "memctl status --json", "uptime --json"];

/// The periodic deadline thread and what the checks last read of it.
struct Periodic {
    id: ThreadId,
    handle: JoinHandle,
    stop: Arc<AtomicBool>,
    jobs: u64,
    misses: u64,
    last_job_late: bool,
}

/// A worker thread an event started, and its stop signal.
struct Worker {
    handle: JoinHandle,
    stop: Arc<AtomicBool>,
}

/// The event in progress and the recovery faults it armed.
#[derive(Default)]
struct Current {
    index: u32,
    kind: Option<EventKind>,
    fault: bool,
    disturbance_end_ns: u64,
    /// Deadline pressure: the cut is on.
    budget_cut: bool,
    /// Autonomy flip: the flipped state is on.
    flipped: bool,
    /// Memory spike: reclaim refuses.
    reclaim_refused: bool,
    /// Memory release: refill allocations fail.
    refill_refused: bool,
    /// Network partition: the drop fault went on when the partition ended.
    dropping: bool,
    /// Disk stall: the error fault went on when the stall ended.
    failing_requests: bool,
    /// Hot retrain: parameters before the commit.
    checkpoint: Option<Vec<f32>>,
}

/// Everything the run owns and acts on.
struct System {
    kernel: Kernel,
    registry: Registry<Kernel>,
    seed: u64,
    /// The kernel's frames, counted, so the run can prove it gave back every frame it took.
    frames: CountedFrames<KernelFrames>,
    pool: Pool,
    working: Vec<ObjectHandle>,
    working_bytes: u64,
    spike: Vec<ObjectHandle>,
    periodic: Option<Periodic>,
    storm: Option<Worker>,
    burst: Option<FloodRun>,
    autonomy_steady: bool,
    /// The agent installed before the run, put back at the end.
    saved_agent: Option<Installed>,
    /// Checksum of the parameters last committed to the installed agent.
    committed: u64,
    network: bool,
    disk: bool,
    ping_sequence: u16,
    utilization_baseline: u64,
    figures: EventFigures,
    current: Current,
    /// Working-set allocation draws.
    sizes: sis_stress::StressRng,
    /// Allocation requests refused under the throttle posted to the pool's port.
    throttle: Throttle,
    /// What the pool's port publishes, counted over the run.
    published: Published,
    /// The deadline thread's (jobs, misses) as its port read when the current event began.
    deadline_mark: (u64, u64),
    /// The stress run whose `chaos.event` events this run publishes (`None`: a comparison's run, silent).
    events_run: Option<u64>,
}

/// The run's totals the pool's port publishes (the memory workload's figures of the same names).
#[derive(Default)]
struct Published {
    oom_events: u64,
    requests: u64,
    /// Readings and spike allocations.
    steps: u64,
}

/// FNV-1a of the parameters' bits.
fn checksum(parameters: &[f32]) -> u64 {
    let bytes: Vec<u8> = parameters.iter().flat_map(|value| value.to_bits().to_le_bytes()).collect();
    sis_blk::fnv1a64(&bytes)
}

/// The installed agent's parameters.
fn installed_parameters() -> Option<Vec<f32>> {
    AGENT.lock().as_ref().map(|installed| installed.agent.parameters())
}

/// Puts `parameters` into the installed agent. Weights installed from a signed model are no longer that model's
/// (compliance reports them until the run's end puts the saved agent back).
fn load_installed(parameters: &[f32]) {
    if let Some(installed) = AGENT.lock().as_mut() {
        if installed.agent.load_parameters(parameters).is_ok() {
            if let Origin::Model { .. } = installed.origin {
                installed.origin =
                    Origin::Unsigned(alloc::format!("{}, retrained by a chaos run", installed.origin.describe()));
            }
        }
    }
}

/// Explores and learns for `left` decisions, then acts greedily without learning.
struct LimitedTraining<'a> {
    agent: &'a mut sis_ai::Agent,
    left: u32,
}

impl Controller for LimitedTraining<'_> {
    fn choose(&mut self, state: &[f32]) -> usize {
        if self.left > 0 {
            self.agent.act(state).0
        } else {
            self.agent.greedy(state)
        }
    }

    fn learn(&mut self, transition: Transition) -> Option<f32> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        self.agent.remember(transition);
        self.agent.train()
    }
}

impl System {
    fn start(kernel: Kernel, seed: u64) -> System {
        let saved_agent = AGENT.lock().clone();
        if saved_agent.is_none() {
            let agent = learning::new_agent(seed, 20);
            *AGENT.lock() =
                Some(Installed { agent, seed, origin: Origin::Unsigned(alloc::format!("chaos run, seed {seed}")) });
        }
        let committed = installed_parameters().map_or(0, |parameters| checksum(&parameters));
        let mut system = System {
            kernel,
            registry: commands::registry(),
            seed,
            frames: CountedFrames::new(KernelFrames),
            pool: Pool::new(POOL_BYTES),
            working: Vec::new(),
            working_bytes: 0,
            spike: Vec::new(),
            periodic: None,
            storm: None,
            burst: None,
            autonomy_steady: autonomy::enabled(),
            saved_agent,
            committed,
            network: net::link::attached(),
            disk: disk::attached(),
            ping_sequence: 0,
            utilization_baseline: thread::utilization().0,
            figures: EventFigures::default(),
            current: Current::default(),
            sizes: sis_stress::StressRng::new(seed ^ 0x5753_4554),
            throttle: Throttle::default(),
            published: Published::default(),
            deadline_mark: (0, 0),
            events_run: None,
        };
        // The pool is published like the memory workload's, so the meta-agent sees it and may act on it;
        // nothing here asks whether autonomy is on.
        MEMORY_PORT.attach(system.pool.stats().limit_pages);
        system.refill(WORKING_SET_BYTES);
        system.periodic = system.spawn_periodic();
        system
    }

    fn spawn_periodic(&self) -> Option<Periodic> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = thread::spawn_joinable_deadline("chaos-periodic", PERIODIC_STACK_BYTES, RESERVATION, move || {
            let mut release = time::now_ns();
            while !flag.load(Relaxed) {
                thread::burn_cpu_ns(WORK_NS);
                // Judged against release + D in force now: a relaxation reaches the job in progress.
                if let Some(stats) = thread::job_complete_since(release) {
                    DEADLINE_PORT.publish(stats.jobs, stats.deadline_misses);
                }
                release = (release + PERIOD_NS).max(time::now_ns());
                thread::sleep_until_ns(release);
            }
        })
        .ok()?;
        // Published like the pool, so the meta-agent sees its misses and may relax its deadline; nothing here
        // asks whether autonomy is on. (Counts published before this are totals, so the next job's are whole.)
        DEADLINE_PORT.attach(u64::from(handle.id));
        Some(Periodic { id: handle.id, handle, stop, jobs: 0, misses: 0, last_job_late: false })
    }

    /// Which kinds this machine can run, and why the others cannot.
    fn kinds(&self) -> (Vec<EventKind>, Vec<Skipped>) {
        let mut available = Vec::new();
        let mut skipped = Vec::new();
        for kind in EventKind::ALL {
            let missing = match kind {
                EventKind::DeadlinePressure if self.periodic.is_none() => {
                    Some("admission control refused the periodic thread's reservation")
                }
                EventKind::NetworkPartition if !self.network => Some("no network device attached"),
                EventKind::DiskStall if !self.disk => Some("no block device attached"),
                _ => None,
            };
            match missing {
                Some(reason) => skipped.push(Skipped { kind, reason }),
                None => available.push(kind),
            }
        }
        (available, skipped)
    }

    /// Allocates working-set objects until `bytes` more are held, an allocation fails, the throttle refuses
    /// one, or the pool reaches the pressure cap posted to its port.
    fn refill(&mut self, bytes: u64) {
        let goal = (self.working_bytes + bytes).min(WORKING_SET_BYTES);
        while self.working_bytes < goal && self.pool.pressure_per_mille() < MEMORY_PORT.pressure_cap() {
            if !self.admit_request() {
                break;
            }
            // Half the working set is cache (64 KiB blocks), half unreclaimable objects of 4–64 KiB.
            let (size, kind) = if self.sizes.chance_percent(50) {
                (CACHE_OBJECT_BYTES, MemoryKind::Reclaimable)
            } else {
                (self.sizes.range(4, 64) << 10, MemoryKind::Unreclaimable)
            };
            match self.pool.allocate(&mut self.frames, size, kind) {
                Ok(handle) => {
                    self.working.push(handle);
                    self.working_bytes += size;
                }
                Err(_) => break,
            }
        }
    }

    /// Frees the working-set objects compaction dropped from the cache (their memory is gone already).
    fn forget_dropped(&mut self) {
        let mut kept = Vec::with_capacity(self.working.len());
        for handle in core::mem::take(&mut self.working) {
            if !self.pool.is_live(&handle) {
                let _ = self.pool.free(&mut self.frames, handle);
                self.working_bytes -= u64::from(handle.size);
            } else {
                kept.push(handle);
            }
        }
        self.working = kept;
    }

    /// Counts an allocation request; false when the throttle posted to the pool's port refuses it.
    fn admit_request(&mut self) -> bool {
        self.published.requests += 1;
        let refused = self.throttle.refuse(MEMORY_PORT.throttle());
        if refused {
            self.figures.throttled += 1;
            MEMORY_PORT.count_throttled();
        }
        !refused
    }

    /// One step as the pool's port sees it: a reclaim posted there is carried out, then the figures published.
    fn port_step(&mut self) {
        let compaction = if MEMORY_PORT.take_reclaim() { self.pool.compact(&mut self.frames).ok() } else { None };
        if let Some(compaction) = compaction {
            MEMORY_PORT.count_dropped(compaction.cache_objects_dropped);
            self.forget_dropped();
            self.figures.directed_reclaims += 1;
        }
        self.published.steps += 1;
        let Published { oom_events, requests, steps } = self.published;
        MEMORY_PORT.publish(self.pool.pressure_per_mille(), self.pool.cache_pages(), oom_events, requests, steps);
    }

    /// One spike allocation: on an OOM, reclaim (unless refused) and retry once. False when the spike stops:
    /// an allocation failed or the throttle refused it.
    fn spike_allocate(&mut self) -> bool {
        self.port_step();
        if !self.admit_request() {
            return false;
        }
        match self.pool.allocate(&mut self.frames, SPIKE_OBJECT_BYTES, MemoryKind::Unreclaimable) {
            Ok(handle) => {
                self.spike.push(handle);
                true
            }
            Err(error) if error.is_out_of_memory() => {
                self.figures.oom_events += 1;
                self.published.oom_events += 1;
                if !self.current.reclaim_refused && self.pool.compact(&mut self.frames).is_ok() {
                    self.forget_dropped();
                    if let Ok(handle) =
                        self.pool.allocate(&mut self.frames, SPIKE_OBJECT_BYTES, MemoryKind::Unreclaimable)
                    {
                        self.spike.push(handle);
                        return true;
                    }
                }
                self.figures.oom_unrecovered += 1;
                false
            }
            Err(_) => false,
        }
    }

    fn release_spike(&mut self) {
        for handle in core::mem::take(&mut self.spike) {
            let _ = self.pool.free(&mut self.frames, handle);
        }
    }

    fn start_storm(&mut self, intensity: u32, end_ns: u64, ignore_end: bool) -> Result<(), String> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let mut kernel = self.kernel.clone();
        let handle = thread::spawn_joinable("chaos-storm", WORKER_STACK_BYTES, move || {
            let registry = commands::registry();
            let interval = 10_000_000 / u64::from(intensity.max(1));
            let mut next = time::now_ns();
            let mut query = 0usize;
            loop {
                let now = time::now_ns();
                if flag.load(Relaxed) || (!ignore_end && now >= end_ns) {
                    break;
                }
                if now < next {
                    thread::sleep_ns(next - now);
                    continue;
                }
                registry.execute(&mut kernel, TELEMETRY[query % TELEMETRY.len()].as_bytes(), &mut Discard);
                query += 1;
                next += interval;
            }
        })
        .map_err(|error| alloc::format!("cannot start the storm thread: {error}"))?;
        self.storm = Some(Worker { handle, stop });
        Ok(())
    }

    fn start_burst(&mut self, rate: u32, duration_ms: u32, ignore_end: bool) -> Result<(), String> {
        let duration_ms = if ignore_end { 3_600_000 } else { u64::from(duration_ms) };
        let config = FloodConfig {
            duration_ms,
            seed: learning::workload_seed(self.seed, u64::from(self.current.index)),
            rate: Rate::PerSecond(u64::from(rate)),
            queue_capacity: 64,
            expect_failures: false,
        };
        let flood = FloodRun::start(config, self.kernel.clone()).map_err(|error| String::from(error.message()))?;
        self.burst = Some(flood);
        Ok(())
    }

    /// Retrains a copy of the installed agent on real episodes, then commits it (torn, if the fault is armed).
    fn hot_retrain(&mut self, decisions: u32) -> Result<(), String> {
        let mut agent = AGENT.lock().as_ref().map(|installed| installed.agent.clone()).ok_or("no agent installed")?;
        // Steps as small as the online learner's: `stresstest learning` trains with batches of 64, 8 times the
        // cost of a step, which would stretch the event and thin out the others in a run's duration.
        agent.set_batch_size(learning::ONLINE_BATCH_SIZE);
        let old = agent.parameters();
        let episodes = decisions.div_ceil(DECISIONS_PER_EPISODE);
        let mut controller = LimitedTraining { agent: &mut agent, left: decisions };
        for episode in 0..episodes {
            let workload = learning::workload_seed(self.seed ^ u64::from(self.current.index), u64::from(episode));
            learning::run_episode(&mut self.frames, workload, 0, &mut controller);
        }
        let new = agent.parameters();
        if new.iter().any(|value| !value.is_finite()) {
            return Err(String::from("the retrained network has non-finite weights; not committed"));
        }
        self.current.checkpoint = Some(old.clone());
        if self.current.fault {
            // The commit stops part-way: the first half of the new weights, the rest of the old ones.
            let half = new.len() / 2;
            let torn: Vec<f32> = new[..half].iter().chain(&old[half..]).copied().collect();
            load_installed(&torn);
        } else {
            load_installed(&new);
            self.committed = checksum(&new);
        }
        Ok(())
    }

    /// Changes the network device's faults (nothing without a device).
    fn net_faults(&self, body: impl FnOnce(&mut net::link::FaultLayer)) {
        if !self.network {
            return;
        }
        let _ = net::link::with_net(|net| {
            body(net.faults());
            Ok(())
        });
        net::link::kick();
    }

    /// Changes the block device's faults (nothing without a device).
    fn disk_faults(&self, body: impl FnOnce(&mut disk::FaultLayer)) {
        if !self.disk {
            return;
        }
        let _ = disk::with_disk(|disk| {
            body(disk.faults());
            Ok(())
        });
    }

    fn reap_workers(&mut self) {
        if self.storm.as_ref().is_some_and(|storm| storm.handle.is_finished()) {
            if let Some(storm) = self.storm.take() {
                storm.handle.join();
            }
        }
        if self.burst.as_ref().is_some_and(FloodRun::is_finished) {
            if let Some(burst) = self.burst.take() {
                burst.finish();
            }
        }
    }

    /// The periodic thread's reserved deadline back, if the meta-agent relaxed it.
    fn restore_deadline(&self) {
        let Some(periodic) = &self.periodic else { return };
        if thread::server(periodic.id).is_some_and(|(params, _)| params.deadline_ns != RESERVATION.deadline_ns) {
            let _ = thread::set_deadline(periodic.id, RESERVATION.deadline_ns);
        }
    }

    /// The periodic thread's (jobs, misses) as its port publishes them ((0, 0) without the thread).
    fn deadline_counts(&self) -> (u64, u64) {
        if self.periodic.is_none() {
            return (0, 0);
        }
        let published = DEADLINE_PORT.telemetry();
        (published.jobs, published.deadline_misses)
    }

    fn read_periodic(&mut self) -> Option<(ServerParams, bool)> {
        let periodic = self.periodic.as_mut()?;
        let (params, stats) = thread::server(periodic.id)?;
        if stats.jobs > periodic.jobs {
            periodic.last_job_late = stats.deadline_misses > periodic.misses;
            periodic.jobs = stats.jobs;
            periodic.misses = stats.deadline_misses;
        }
        Some((params, periodic.last_job_late))
    }
}

impl ChaosTarget for System {
    fn now_ns(&mut self) -> u64 {
        time::now_ns()
    }

    fn sleep_until_ns(&mut self, deadline_ns: u64) {
        thread::sleep_until_ns(deadline_ns);
    }

    fn check(&mut self) -> Health {
        let mut health = Health::default();
        let asked = time::now_ns();
        let outcome = self.registry.execute(&mut self.kernel, b"version", &mut Discard);
        let took = time::now_ns() - asked;
        health.push(
            "shell",
            outcome == Outcome::Ok && took <= SHELL_LIMIT_NS,
            alloc::format!("version answered in {} ({outcome:?})", chaos::millis_text(took)),
        );
        let pressure = self.pool.pressure_per_mille();
        health.push(
            "memory",
            pressure <= PRESSURE_LIMIT_PER_MILLE
                && self.working_bytes * 1000 >= WORKING_SET_BYTES * WORKING_SET_FLOOR_PER_MILLE,
            alloc::format!(
                "pressure {pressure} ‰, working set {} of {} KiB",
                self.working_bytes >> 10,
                WORKING_SET_BYTES >> 10
            ),
        );
        if self.periodic.is_some() {
            let (passed, detail) = match self.read_periodic() {
                Some((params, late)) => (
                    params == RESERVATION && !late,
                    alloc::format!(
                        "budget {} µs of {} µs reserved, deadline {} µs of {} µs, last job {}",
                        params.budget_ns / 1000,
                        RESERVATION.budget_ns / 1000,
                        params.deadline_ns / 1000,
                        RESERVATION.deadline_ns / 1000,
                        if late { "late" } else { "on time" }
                    ),
                ),
                None => (false, String::from("the periodic thread has no server")),
            };
            health.push("deadline", passed, detail);
        }
        self.reap_workers();
        let workers = usize::from(self.storm.is_some()) + 2 * usize::from(self.burst.is_some());
        health.push("threads", workers == 0, alloc::format!("{workers} event threads alive"));
        let enabled = autonomy::enabled();
        health.push(
            "autonomy",
            enabled == self.autonomy_steady,
            alloc::format!(
                "{} (steady state: {})",
                if enabled { "on" } else { "off" },
                if self.autonomy_steady { "on" } else { "off" }
            ),
        );
        let (passed, detail) = match installed_parameters() {
            Some(parameters) => {
                let matches = checksum(&parameters) == self.committed;
                let state = [0.5f32; STATE_SIZE];
                let finite = AGENT
                    .lock()
                    .as_ref()
                    .is_some_and(|installed| installed.agent.q_values(&state).iter().all(|value| value.is_finite()));
                (
                    matches && finite,
                    alloc::format!(
                        "weights {} the last commit, Q-values {}",
                        if matches { "match" } else { "DO NOT match" },
                        if finite { "finite" } else { "NOT finite" }
                    ),
                )
            }
            None => (false, String::from("no agent installed")),
        };
        health.push("agent", passed, detail);
        if self.network {
            self.ping_sequence = self.ping_sequence.wrapping_add(1);
            let reply = net::ping_once(GATEWAY, self.ping_sequence, b"chaos", DEVICE_LIMIT_NS);
            let (passed, detail) = match reply {
                Ok(Some(rtt)) => (true, alloc::format!("gateway answered in {}", chaos::millis_text(rtt))),
                Ok(None) => (false, String::from("gateway did not answer within 20 ms")),
                Err(error) => (false, String::from(error.message())),
            };
            health.push("network", passed, detail);
        }
        if self.disk {
            let asked = time::now_ns();
            let mut sector = [0u8; sis_blk::SECTOR_SIZE];
            let read =
                disk::with_disk(|disk| disk.stack.device_mut().read_sectors(0, &mut sector).map_err(disk::shell_error));
            let took = time::now_ns() - asked;
            let (passed, detail) = match read {
                Ok(()) => (took <= DEVICE_LIMIT_NS, alloc::format!("sector 0 read in {}", chaos::millis_text(took))),
                Err(error) => (false, String::from(error.message())),
            };
            health.push("disk", passed, detail);
        }
        health
    }

    fn begin(&mut self, planned: &PlannedEvent) -> Result<(), String> {
        let now = time::now_ns();
        self.current = Current {
            index: planned.index,
            kind: Some(planned.event.kind()),
            fault: planned.fault,
            disturbance_end_ns: now + planned.event.disturbance_ns(),
            ..Current::default()
        };
        self.deadline_mark = self.deadline_counts();
        let fault = planned.fault;
        match planned.event {
            ChaosEvent::TelemetryStorm { intensity, .. } => {
                self.start_storm(intensity, self.current.disturbance_end_ns, fault)?;
            }
            ChaosEvent::CommandBurst { rate, duration_ms } => self.start_burst(rate, duration_ms, fault)?,
            ChaosEvent::DeadlinePressure { tight_per_mille, .. } => {
                let id = self.periodic.as_ref().map(|periodic| periodic.id).ok_or("no periodic thread")?;
                let budget = RESERVATION.budget_ns * u64::from(tight_per_mille) / 1000;
                thread::set_budget(id, budget).map_err(|error| alloc::format!("budget cut refused: {error:?}"))?;
                self.current.budget_cut = true;
            }
            ChaosEvent::HotRetrain { decisions } => self.hot_retrain(decisions)?,
            ChaosEvent::MemorySpike { mib } => {
                self.current.reclaim_refused = fault;
                let objects = (u64::from(mib) << 20) / SPIKE_OBJECT_BYTES;
                for _ in 0..objects {
                    if !self.spike_allocate() {
                        break;
                    }
                }
                self.release_spike();
            }
            ChaosEvent::AutonomyFlip { .. } => {
                autonomy::set_enabled(!self.autonomy_steady).map_err(|error| String::from(error.message()))?;
                self.current.flipped = true;
            }
            ChaosEvent::MemoryRelease { percent } => {
                self.current.refill_refused = fault;
                let goal = self.working_bytes * u64::from(100 - percent) / 100;
                while self.working_bytes > goal {
                    let Some(handle) = self.working.pop() else { break };
                    let _ = self.pool.free(&mut self.frames, handle);
                    self.working_bytes -= u64::from(handle.size);
                }
            }
            ChaosEvent::NetworkPartition { duration_ms } => {
                self.net_faults(|faults| {
                    faults.partition_for(now, u64::from(duration_ms) * 1_000_000);
                });
            }
            ChaosEvent::DiskStall { duration_ms } => {
                self.disk_faults(|faults| {
                    faults.stall_for(u64::from(duration_ms) * 1_000_000);
                });
            }
        }
        Ok(())
    }

    fn advance(&mut self) -> bool {
        let now = time::now_ns();
        let over = now >= self.current.disturbance_end_ns;
        let fault = self.current.fault;
        if over && self.current.budget_cut && !fault {
            if let Some(periodic) = &self.periodic {
                if thread::set_budget(periodic.id, RESERVATION.budget_ns).is_ok() {
                    self.current.budget_cut = false;
                }
            }
        }
        // A deadline the meta-agent relaxed holds while the disturbance does (and while a refused budget
        // restore keeps it cut).
        if over && !self.current.budget_cut {
            self.restore_deadline();
        }
        if over && self.current.flipped && !fault && autonomy::set_enabled(self.autonomy_steady).is_ok() {
            self.current.flipped = false;
        }
        if over && fault && !self.current.dropping && self.current_kind_is(EventKind::NetworkPartition) {
            let seed = self.seed;
            self.net_faults(|faults| {
                let _ = faults.set_drop_percent(100, seed);
            });
            self.current.dropping = true;
        }
        if over && fault && !self.current.failing_requests && self.current_kind_is(EventKind::DiskStall) {
            let seed = self.seed;
            self.disk_faults(|faults| {
                let _ = faults.set_error_percent(100, seed);
            });
            self.current.failing_requests = true;
        }
        if !self.current.refill_refused && self.working_bytes < WORKING_SET_BYTES {
            self.refill(REFILL_BYTES_PER_STEP);
        }
        self.port_step();
        self.reap_workers();
        !over
    }

    fn settle(&mut self) {
        if let Some(storm) = &self.storm {
            storm.stop.store(true, Relaxed);
        }
        if let Some(burst) = &self.burst {
            burst.stop();
        }
        if let Some(storm) = self.storm.take() {
            storm.handle.join();
        }
        if let Some(burst) = self.burst.take() {
            burst.finish();
        }
        if self.current.budget_cut {
            if let Some(periodic) = &self.periodic {
                let _ = thread::set_budget(periodic.id, RESERVATION.budget_ns);
            }
        }
        self.restore_deadline();
        if self.current.flipped {
            let _ = autonomy::set_enabled(self.autonomy_steady);
        }
        if self.current.dropping || self.current_kind_is(EventKind::NetworkPartition) {
            self.net_faults(|faults| faults.clear());
        }
        if self.current.failing_requests || self.current_kind_is(EventKind::DiskStall) {
            self.disk_faults(|faults| faults.clear());
        }
        if let Some(checkpoint) = self.current.checkpoint.take() {
            if installed_parameters().is_some_and(|parameters| checksum(&parameters) != self.committed) {
                // Recovery from a torn commit: back to the checkpoint.
                load_installed(&checkpoint);
                self.committed = checksum(&checkpoint);
            }
        }
        self.current = Current { index: self.current.index, ..Current::default() };
    }

    fn invariants(&mut self) -> Result<(), String> {
        let stats = self.pool.stats();
        let live: u64 = self.working.iter().chain(&self.spike).map(|handle| u64::from(handle.size)).sum();
        if stats.live_objects != (self.working.len() + self.spike.len()) as u64 || stats.live_bytes != live {
            return Err(alloc::format!(
                "the pool counts {} objects of {} bytes, the workload holds {} of {live}",
                stats.live_objects,
                stats.live_bytes,
                self.working.len() + self.spike.len()
            ));
        }
        if self.frames.outstanding() != stats.charged_pages {
            return Err(alloc::format!(
                "{} frames outstanding from the frame allocator, the pool charges {} pages",
                self.frames.outstanding(),
                stats.charged_pages
            ));
        }
        let reserved = if self.periodic.is_some() { 200_000 } else { 0 };
        let utilization = thread::utilization().0;
        if utilization != self.utilization_baseline + reserved {
            return Err(alloc::format!(
                "admitted utilization {utilization} ppm, expected {} ppm",
                self.utilization_baseline + reserved
            ));
        }
        Ok(())
    }

    fn take_figures(&mut self) -> EventFigures {
        let (jobs, misses) = self.deadline_counts();
        self.figures.deadline_jobs = jobs.saturating_sub(self.deadline_mark.0);
        self.figures.deadline_misses = misses.saturating_sub(self.deadline_mark.1);
        self.deadline_mark = (jobs, misses);
        core::mem::take(&mut self.figures)
    }

    fn event_ended(&mut self, record: &EventRecord) {
        if let Some(run) = self.events_run {
            crate::events::publish(sis_events::Kind::ChaosEvent {
                run,
                index: record.planned.index,
                event: record.planned.event.kind().name(),
                fault: record.fault_injected,
                recovered: record.failure.is_none(),
                recovery_us: record.recovery_ns.map(|ns| ns / 1_000),
                failure: record.failure.as_ref().map(|failure| failure.name()),
            });
        }
    }

    fn finish(&mut self) -> Integrity {
        self.settle();
        if let Some(periodic) = self.periodic.take() {
            periodic.stop.store(true, Relaxed);
            periodic.handle.join();
            DEADLINE_PORT.detach();
        }
        for handle in core::mem::take(&mut self.working) {
            let _ = self.pool.free(&mut self.frames, handle);
        }
        self.working_bytes = 0;
        self.release_spike();
        let _ = self.pool.compact(&mut self.frames);
        MEMORY_PORT.detach();
        let stats = self.pool.stats();
        let outstanding = self.frames.outstanding();
        *AGENT.lock() = self.saved_agent.take();
        let utilization = thread::utilization().0;
        let autonomy_back = autonomy::enabled() == self.autonomy_steady;
        let passed = stats.charged_pages == 0
            && stats.live_objects == 0
            && outstanding == 0
            && utilization == self.utilization_baseline
            && autonomy_back
            && self.storm.is_none()
            && self.burst.is_none();
        Integrity {
            passed,
            detail: alloc::format!(
                "pool {} pages charged, {} objects live; {} of {} frames returned; utilization {} ppm (baseline {}); autonomy {}; agent restored",
                stats.charged_pages,
                stats.live_objects,
                self.frames.returned(),
                self.frames.taken(),
                utilization,
                self.utilization_baseline,
                if autonomy_back { "as before" } else { "CHANGED" }
            ),
        }
    }
}

impl System {
    fn current_kind_is(&self, kind: EventKind) -> bool {
        self.current.kind == Some(kind)
    }
}

/// One run for `stresstest compare chaos`: the seed's events without autonomy flips (autonomy is what the
/// comparison varies) and without injected faults, with the default recovery timeout.
pub fn run_compared(kernel: &Kernel, seed: u64, duration_ms: u64) -> ChaosReport {
    let config = ChaosConfig {
        duration_ms,
        seed,
        fail_rate_percent: 0,
        expect_failures: true,
        recovery_timeout_ms: chaos::DEFAULT_RECOVERY_TIMEOUT_MS,
        poll_interval_us: chaos::DEFAULT_POLL_INTERVAL_US,
        only: None,
    };
    let mut system = System::start(kernel.clone(), seed);
    let (mut available, mut skipped) = system.kinds();
    available.retain(|&kind| kind != EventKind::AutonomyFlip);
    skipped.push(Skipped { kind: EventKind::AutonomyFlip, reason: "autonomy is what the comparison varies" });
    chaos::run_chaos(&mut system, &config, &available, skipped, &mut |_| {})
}

/// `stresstest chaos`.
pub fn chaos(kernel: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let args = &invocation.args;
    let replay = args.u64("replay");
    if replay.is_some() && args.u64("seed").is_some() {
        return Err(ShellError::new(
            sis_shell::codes::INVALID_VALUE,
            "--replay names the seed to replay; give it instead of --seed, not with it",
        ));
    }
    let only = args.u64("only").map(|number| number as u32);
    if only.is_some() && replay.is_none() && args.u64("seed").is_none() {
        return Err(ShellError::new(
            sis_shell::codes::MISSING_ARGUMENT,
            "--only replays one event of a seed's sequence: give the seed with --replay SEED",
        ));
    }
    let seed = replay.unwrap_or_else(|| super::seed(args));
    let config = ChaosConfig {
        duration_ms: args.u64("duration").unwrap_or(30_000),
        seed,
        fail_rate_percent: args.u64("fail-rate").unwrap_or(0),
        expect_failures: args.switch("expect-failures"),
        recovery_timeout_ms: args.u64("recovery-timeout").unwrap_or(chaos::DEFAULT_RECOVERY_TIMEOUT_MS),
        poll_interval_us: chaos::DEFAULT_POLL_INTERVAL_US,
        only,
    };
    crate::events::stress_run("chaos", seed, Some(config.duration_ms), |stress| {
        let mut system = System::start(kernel.clone(), seed);
        system.events_run = Some(stress.run());
        let (available, skipped) = system.kinds();
        invocation.progress("=== Chaos Engineering Stress Test ===");
        invocation.progress(&alloc::format!(
            "Duration: {} ms\nFailure injection rate: {}%\nRecovery timeout: {} ms\nSeed: {seed}{}",
            config.duration_ms,
            config.fail_rate_percent,
            config.recovery_timeout_ms,
            only.map_or(String::new(), |index| alloc::format!("\nReplaying event #{index} only"))
        ));
        for skip in &skipped {
            invocation.progress(&alloc::format!("Not drawn: {} ({})", skip.kind.label(), skip.reason));
        }
        let report = chaos::run_chaos(&mut system, &config, &available, skipped, &mut |line| {
            invocation.progress(line);
            stress.progress();
        });
        let human = chaos::human(&report);
        let reply = Reply::new(alloc::format!("\n{human}"), json!({ "chaos": report }));
        Ok(with_status(reply, report.status, config.expect_failures, || {
            alloc::format!(
                "{} of {} events failed to recover{}",
                report.failed,
                report.total_events,
                if report.integrity.passed { "" } else { "; integrity check FAILED" }
            )
        }))
    })
}
