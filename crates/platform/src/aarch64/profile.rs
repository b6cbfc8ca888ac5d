//! Where guest instructions and time go: the PMU's instruction counter and the virtual counter charged to the layer
//! the CPU is in.
//!
//! Code marks the layer it enters with [`enter`], which charges the
//! instructions retired and the time passed since the last mark to the layer
//! that was current and returns it (so a caller can go back to it). The trap code charges interrupt
//! handling to [`Layer::Interrupt`] and the scheduler's decision to
//! [`Layer::Scheduler`]; each thread's layer is saved at a switch and restored
//! when it runs again, so a layer follows its thread. Counting is off until
//! [`start`] (then a mark costs about 30 instructions: it is charged to the
//! layer being left). The PMU counts instructions in QEMU only in deterministic
//! mode (`-icount`), where [`start`] reports so and the counts are exact; elsewhere
//! the profile counts time only. Time is counted in both modes: in real time it is where the
//! wall clock goes (TCG's cost of an instruction varies, a device register
//! access costs far more than an instruction, and the idle thread's time is what
//! the guest did not need); a mark then also reads the virtual counter. Before
//! [`start`] every mark is a load and a store. The event counter is 32 bits
//! wide: a stretch of more than 4 G instructions between two marks (seconds of
//! TCG with no trap) would be counted modulo 2^32.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

use super::irq_lock::{mask_irqs, restore_irqs};
use super::registers::{isb, read_sysreg, write_sysreg};

/// The architectural event number of INST_RETIRED.
const INST_RETIRED: u64 = 0x08;
/// PMCR_EL0.E: enables the event counters.
const PMCR_ENABLE: u64 = 1;

/// Where the CPU is, as far as the profile is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Layer {
    /// Anything not marked (threads that never mark, the shell, boot).
    Other = 0,
    /// The idle thread (between interrupts: `wfi` retires one instruction per wake-up).
    Idle,
    /// Exception entry to the end of the interrupt handlers (GIC acknowledge, device acknowledge, wake-ups).
    Interrupt,
    /// The scheduler's decision in a trap (accounting, policy, picking the next thread, re-arming the timer).
    Scheduler,
    /// The network thread's own loop: taking the lock, computing its sleep, waking others, sleeping.
    NetThread,
    /// smoltcp's interface poll outside the processing of one frame (socket dispatch, timers, bookkeeping).
    SmoltcpPoll,
    /// smoltcp processing one received frame (Ethernet, IP, TCP input, and any reply it sends at once).
    SmoltcpIngress,
    /// smoltcp building one frame to send (TCP output, IP and Ethernet headers, checksums).
    SmoltcpEgress,
    /// Payload moved between TCP sockets and the services above them (the echo, the web listener).
    SocketCopy,
    /// Frames copied between the driver's buffers and smoltcp's (allocation and copy, each way).
    FrameCopy,
    /// The fault layer and the virtio-net driver taking a received frame and posting its buffer again.
    NetDeviceReceive,
    /// The fault layer and the virtio-net driver queueing one frame and reclaiming sent ones (notify included).
    NetDeviceTransmit,
    /// The caller of block requests (`blkctl bench`'s loop, the fault layer).
    BlockCaller,
    /// The virtio-blk driver: building, submitting and completing requests (notify included).
    BlockDevice,
}

/// Number of [`Layer`]s.
pub const LAYERS: usize = 14;

impl Layer {
    /// Every layer, in order.
    pub const ALL: [Layer; LAYERS] = [
        Layer::Other,
        Layer::Idle,
        Layer::Interrupt,
        Layer::Scheduler,
        Layer::NetThread,
        Layer::SmoltcpPoll,
        Layer::SmoltcpIngress,
        Layer::SmoltcpEgress,
        Layer::SocketCopy,
        Layer::FrameCopy,
        Layer::NetDeviceReceive,
        Layer::NetDeviceTransmit,
        Layer::BlockCaller,
        Layer::BlockDevice,
    ];

    /// Its name in reports, snake case.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Other => "other",
            Layer::Idle => "idle",
            Layer::Interrupt => "interrupt",
            Layer::Scheduler => "scheduler",
            Layer::NetThread => "net_thread",
            Layer::SmoltcpPoll => "smoltcp_poll",
            Layer::SmoltcpIngress => "smoltcp_ingress",
            Layer::SmoltcpEgress => "smoltcp_egress",
            Layer::SocketCopy => "socket_copy",
            Layer::FrameCopy => "frame_copy",
            Layer::NetDeviceReceive => "net_device_receive",
            Layer::NetDeviceTransmit => "net_device_transmit",
            Layer::BlockCaller => "block_caller",
            Layer::BlockDevice => "block_device",
        }
    }

    fn from_index(index: u8) -> Layer {
        Layer::ALL.get(usize::from(index)).copied().unwrap_or(Layer::Other)
    }
}

/// Instructions and time charged to each layer since [`start`], and times each was entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Whether instructions are counted (the PMU counts them: QEMU's deterministic mode).
    pub counting: bool,
    /// Whether the profile runs at all ([`start`] was called): time and entries are counted.
    pub timing: bool,
    /// Instructions per layer, indexed by `Layer as usize`.
    pub instructions: [u64; LAYERS],
    /// Nanoseconds per layer (the virtual counter), indexed by `Layer as usize`.
    pub nanoseconds: [u64; LAYERS],
    /// Marks entering each layer.
    pub entries: [u64; LAYERS],
}

impl Snapshot {
    /// What was counted between `earlier` and this snapshot.
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot {
            counting: self.counting && earlier.counting,
            timing: self.timing && earlier.timing,
            instructions: core::array::from_fn(|i| self.instructions[i].saturating_sub(earlier.instructions[i])),
            nanoseconds: core::array::from_fn(|i| self.nanoseconds[i].saturating_sub(earlier.nanoseconds[i])),
            entries: core::array::from_fn(|i| self.entries[i].saturating_sub(earlier.entries[i])),
        }
    }

    /// The sum of this snapshot's and `other`'s counts (the flags of both).
    pub fn plus(&self, other: &Snapshot) -> Snapshot {
        Snapshot {
            counting: self.counting && other.counting,
            timing: self.timing && other.timing,
            instructions: core::array::from_fn(|i| self.instructions[i] + other.instructions[i]),
            nanoseconds: core::array::from_fn(|i| self.nanoseconds[i] + other.nanoseconds[i]),
            entries: core::array::from_fn(|i| self.entries[i] + other.entries[i]),
        }
    }

    /// Instructions charged to `layer`.
    pub fn of(&self, layer: Layer) -> u64 {
        self.instructions[layer as usize]
    }

    /// Instructions charged to all layers.
    pub fn total(&self) -> u64 {
        self.instructions.iter().sum()
    }
}

static TIMING: AtomicBool = AtomicBool::new(false);
static COUNTING: AtomicBool = AtomicBool::new(false);
static CURRENT: AtomicU8 = AtomicU8::new(Layer::Other as u8);
static LAST_READING: AtomicU64 = AtomicU64::new(0);
static LAST_TICKS: AtomicU64 = AtomicU64::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
static INSTRUCTIONS: [AtomicU64; LAYERS] = [ZERO; LAYERS];
static TICKS: [AtomicU64; LAYERS] = [ZERO; LAYERS];
static ENTRIES: [AtomicU64; LAYERS] = [ZERO; LAYERS];

/// Starts the profile (idempotent): time always; returns whether instructions are counted too (false when the PMU
/// does not count them, QEMU without `-icount`).
pub fn start() -> bool {
    if !TIMING.load(Ordering::Acquire) {
        let saved = mask_irqs();
        LAST_TICKS.store(super::time::counter(), Ordering::Relaxed);
        TIMING.store(true, Ordering::Release);
        restore_irqs(saved);
    }
    if COUNTING.load(Ordering::Acquire) {
        return true;
    }
    if !super::pmu::counts_instructions() {
        return false;
    }
    let saved = mask_irqs();
    // Counter 0 counts INST_RETIRED at every exception level, as `pmu::measure` programs it (the two agree).
    write_sysreg!("pmevtyper0_el0", INST_RETIRED);
    write_sysreg!("pmcntenset_el0", 1);
    write_sysreg!("pmcr_el0", read_sysreg!("pmcr_el0") | PMCR_ENABLE);
    isb();
    LAST_READING.store(read_sysreg!("pmevcntr0_el0"), Ordering::Relaxed);
    COUNTING.store(true, Ordering::Release);
    restore_irqs(saved);
    true
}

/// Makes `layer` current; returns the layer that was (charged with the time and instructions since the last mark).
#[inline]
pub fn enter(layer: Layer) -> Layer {
    switch(layer, true)
}

fn switch(layer: Layer, counted: bool) -> Layer {
    if !TIMING.load(Ordering::Relaxed) {
        return Layer::from_index(CURRENT.swap(layer as u8, Ordering::Relaxed));
    }
    let saved = mask_irqs();
    let previous = CURRENT.swap(layer as u8, Ordering::Relaxed);
    let slot = usize::from(previous).min(LAYERS - 1);
    // No barrier before the read: a mark placed a few instructions early or late is within the profile's grain, and
    // under TCG a barrier ends the translated block, which would make every mark cost more.
    let ticks = read_sysreg!("cntvct_el0");
    TICKS[slot].fetch_add(ticks.wrapping_sub(LAST_TICKS.swap(ticks, Ordering::Relaxed)), Ordering::Relaxed);
    if COUNTING.load(Ordering::Relaxed) {
        let reading = read_sysreg!("pmevcntr0_el0");
        let last = LAST_READING.swap(reading, Ordering::Relaxed);
        INSTRUCTIONS[slot].fetch_add(reading.wrapping_sub(last) & 0xFFFF_FFFF, Ordering::Relaxed);
    }
    if counted {
        ENTRIES[layer as usize].fetch_add(1, Ordering::Relaxed);
    }
    restore_irqs(saved);
    Layer::from_index(previous)
}

/// Marks to time in [`mark_cost_ns`].
const CALIBRATION_MARKS: u64 = 1_000;

/// What one mark costs in time, measured now: [`CALIBRATION_MARKS`] marks back to back with IRQs masked, timed by
/// the virtual counter (0 before [`start`], when a mark is a load and a store). A layer's time includes the marks
/// that left it, about one per entry: a reader subtracts entries times this to see the layer's own time. Under
/// TCG a mark is far dearer than its instructions (system register reads and writes), and real time is noisy:
/// take it as an estimate.
pub fn mark_cost_ns() -> u64 {
    if !TIMING.load(Ordering::Acquire) {
        return 0;
    }
    let saved = mask_irqs();
    let layer = current();
    let started = super::time::now_ns();
    for _ in 0..CALIBRATION_MARKS {
        switch(layer, false);
    }
    let elapsed = super::time::now_ns().saturating_sub(started);
    restore_irqs(saved);
    elapsed / CALIBRATION_MARKS
}

/// The current layer.
pub fn current() -> Layer {
    Layer::from_index(CURRENT.load(Ordering::Relaxed))
}

/// The counts so far (the current layer charged up to now).
pub fn snapshot() -> Snapshot {
    let timing = TIMING.load(Ordering::Acquire);
    if timing {
        // Charges the current layer with what it ran so far.
        switch(current(), false);
    }
    let frequency = u128::from(super::time::frequency_hz());
    Snapshot {
        counting: COUNTING.load(Ordering::Acquire),
        timing,
        instructions: core::array::from_fn(|i| INSTRUCTIONS[i].load(Ordering::Relaxed)),
        nanoseconds: core::array::from_fn(|i| {
            (u128::from(TICKS[i].load(Ordering::Relaxed)) * 1_000_000_000 / frequency).min(u128::from(u64::MAX)) as u64
        }),
        entries: core::array::from_fn(|i| ENTRIES[i].load(Ordering::Relaxed)),
    }
}
