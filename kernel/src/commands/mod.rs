//! The kernel's command table and the context every handler receives.

pub mod agentsys;
pub mod aiops;
pub mod autonomy;
pub mod blk;
mod det_command;
mod eventctl;
mod fault;
mod feedback;
pub mod files;
mod graphctl;
mod inspect;
pub mod llmctl;
mod logctl;
mod memory;
pub mod net;
pub mod neural;
mod otelctl;
mod safety;
mod sched;
mod sizes;
pub mod stress;
mod system;
mod temporaliso;
mod tensorctl;
mod threads;
mod webctl;

use alloc::string::String;
use alloc::vec::Vec;

use sis_platform::virtio::TransportInfo;
use sis_platform::{MemoryRegion, Platform};
use sis_shell::{Capabilities, Registry};

/// What handlers may read and change.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// RAM regions from the device tree.
    pub memory_regions: Vec<MemoryRegion>,
    /// `/chosen/bootargs`.
    pub bootargs: String,
    /// Counter reading when Rust code first ran.
    pub rust_entry_ns: u64,
    /// Set by `shutdown`: the shell powers off once the reply is printed.
    pub shutdown_requested: bool,
    /// virtio-mmio transports in the device tree.
    pub virtio_slots: usize,
    /// virtio devices found behind them at boot.
    pub virtio_devices: Vec<TransportInfo>,
    /// Transports that answered with something unusable, and why.
    pub virtio_failures: Vec<(u64, &'static str)>,
    /// When the last byte of the console line being run arrived (ns since boot); `None` for batch commands.
    pub line_received_ns: Option<u64>,
    /// Who runs the line: `console` (serial console and batch mode), or the web token that sent it.
    pub principal: sis_governance::Principal,
}

impl Kernel {
    /// Collects what the commands need from the platform and the virtio probe.
    pub fn new(platform: &Platform, probe: &sis_platform::virtio::Probe) -> Self {
        Kernel {
            memory_regions: platform.boot.memory_regions().to_vec(),
            bootargs: String::from(platform.boot.bootargs),
            rust_entry_ns: platform.rust_entry_ns,
            shutdown_requested: false,
            virtio_slots: platform.boot.virtio_mmio_slots().len(),
            virtio_devices: probe.devices.clone(),
            virtio_failures: probe.failures.clone(),
            line_received_ns: None,
            principal: sis_governance::Principal::Console,
        }
    }
}

/// Every command the kernel offers, in `help` order.
pub fn registry() -> Registry<Kernel> {
    let mut registry = Registry::new();
    for command in [
        &system::VERSION,
        &system::UPTIME,
        &memory::MEMINFO,
        &threads::THREADS,
        &system::ECHO,
        &files::LS,
        &files::CAT,
        &files::MKDIR,
        &files::RM,
        &stress::STRESSTEST,
        &neural::NEURALCTL,
        &autonomy::AUTOCTL,
        &autonomy::MEMCTL,
        &safety::SAFETYCTL,
        &sched::SCHEDCTL,
        &det_command::DET,
        &temporaliso::TEMPORALISO,
        &blk::BLKCTL,
        &net::NETCTL,
        &webctl::WEBCTL,
        &logctl::LOGCTL,
        &eventctl::EVENTCTL,
        &graphctl::GRAPHCTL,
        &tensorctl::TENSORCTL,
        &llmctl::LLMCTL,
        &feedback::FEEDBACK,
        &otelctl::OTELCTL,
        &aiops::AIOPSCTL,
        &agentsys::AGENTSYS,
        &system::SLEEP,
        &system::SHUTDOWN,
        &fault::FAULT,
    ] {
        if let Err(error) = registry.register(command) {
            panic!("command table: {error}");
        }
    }
    for (path, needed) in RESTRICTED {
        if let Err(error) = registry.restrict(path, *needed) {
            panic!("capability table: {error}");
        }
    }
    registry
}

/// Commands a caller may run only holding these capabilities (docs/commands.md, "Capabilities").
/// A subcommand needs what its parents need. Everything else reads state, or
/// measures without changing what other commands see, and is open to every caller.
pub const RESTRICTED: &[(&str, Capabilities)] = &[
    ("mkdir", Capabilities::FILES),
    ("rm", Capabilities::FILES),
    ("neuralctl save", Capabilities::FILES),
    ("neuralctl export", Capabilities::FILES),
    ("threads spawn", Capabilities::ADMIN),
    ("stresstest", Capabilities::ADMIN),
    ("neuralctl reset", Capabilities::ADMIN),
    ("neuralctl load", Capabilities::ADMIN),
    ("neuralctl install", Capabilities::ADMIN),
    ("autoctl on", Capabilities::ADMIN),
    ("autoctl off", Capabilities::ADMIN),
    ("autoctl interval", Capabilities::ADMIN),
    ("autoctl conf-threshold", Capabilities::ADMIN),
    ("autoctl thresholds", Capabilities::ADMIN),
    ("autoctl policy", Capabilities::ADMIN),
    ("safetyctl set", Capabilities::ADMIN),
    ("schedctl bound", Capabilities::ADMIN),
    ("schedctl kill", Capabilities::ADMIN),
    ("schedctl latency", Capabilities::ADMIN),
    ("schedctl spawn", Capabilities::ADMIN),
    ("det on", Capabilities::ADMIN),
    ("det off", Capabilities::ADMIN),
    ("det submit", Capabilities::ADMIN),
    ("temporaliso", Capabilities::ADMIN),
    ("blkctl write", Capabilities::ADMIN),
    ("blkctl flush", Capabilities::ADMIN),
    ("blkctl verify", Capabilities::ADMIN),
    ("blkctl bench", Capabilities::ADMIN),
    ("blkctl fault", Capabilities::ADMIN),
    ("netctl fault", Capabilities::ADMIN),
    ("netctl ceiling", Capabilities::ADMIN),
    ("logctl flood", Capabilities::ADMIN),
    ("logctl ratelimit set", Capabilities::ADMIN),
    ("logctl ratelimit on", Capabilities::ADMIN),
    ("logctl ratelimit off", Capabilities::ADMIN),
    ("graphctl create", Capabilities::ADMIN),
    ("graphctl add-op", Capabilities::ADMIN),
    ("graphctl connect", Capabilities::ADMIN),
    ("graphctl start", Capabilities::ADMIN),
    ("graphctl stop", Capabilities::ADMIN),
    ("graphctl destroy", Capabilities::ADMIN),
    ("tensorctl create", Capabilities::ADMIN),
    ("tensorctl op", Capabilities::ADMIN),
    ("tensorctl free", Capabilities::ADMIN),
    ("tensorctl budget", Capabilities::ADMIN),
    ("tensorctl bench", Capabilities::ADMIN),
    ("shutdown", Capabilities::ADMIN),
    ("fault", Capabilities::ADMIN),
    ("webctl start", Capabilities::ADMIN),
    ("webctl stop", Capabilities::ADMIN),
    ("webctl token", Capabilities::ADMIN),
    ("llmctl register", Capabilities::ADMIN),
    ("llmctl load", Capabilities::ADMIN),
    ("llmctl unload", Capabilities::ADMIN),
    ("llmctl infer", Capabilities::INFER),
    ("llmctl budget set", Capabilities::ADMIN),
    ("llmctl ratelimit set", Capabilities::ADMIN),
    ("llmctl sizelimit", Capabilities::ADMIN),
    ("llmctl trust", Capabilities::ADMIN),
    ("otelctl enable", Capabilities::ADMIN),
    ("otelctl disable", Capabilities::ADMIN),
    ("otelctl file", Capabilities::FILES),
    ("otelctl export", Capabilities::ADMIN),
    ("otelctl stop", Capabilities::ADMIN),
    ("otelctl decisions file", Capabilities::FILES),
    ("aiopsctl promote", Capabilities::ADMIN),
    ("aiopsctl demote", Capabilities::ADMIN),
    ("aiopsctl rollback", Capabilities::ADMIN),
    ("aiopsctl shadow start", Capabilities::ADMIN),
    ("aiopsctl shadow stop", Capabilities::ADMIN),
    ("aiopsctl canary start", Capabilities::ADMIN),
    ("aiopsctl canary stop", Capabilities::ADMIN),
    ("agentsys examples install", Capabilities::FILES),
    ("agentsys load", Capabilities::ADMIN),
    ("agentsys unload", Capabilities::ADMIN),
    ("agentsys start", Capabilities::ADMIN),
    ("agentsys stop", Capabilities::ADMIN),
    ("agentsys restart", Capabilities::ADMIN),
    ("agentsys audit clear", Capabilities::ADMIN),
];
