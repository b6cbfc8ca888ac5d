//! How to start QEMU for SIS: machine, memory, boot arguments, deterministic mode.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Guest nanoseconds per instruction, as a power of two, in deterministic mode.
pub const DEFAULT_ICOUNT_SHIFT: u32 = 3;
/// Environment variable that overrides the kernel image path.
pub const KERNEL_ENV: &str = "SIS_KERNEL_ELF";
/// Where `cargo xtask build` puts the kernel, relative to the workspace root.
pub const KERNEL_RELATIVE_PATH: &str = "target/aarch64-unknown-none-softfloat/release/sis-kernel";

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).map(Path::to_path_buf).unwrap_or_default()
}

/// A QEMU launch description.
#[derive(Debug, Clone)]
pub struct QemuConfig {
    /// Kernel ELF.
    pub kernel: PathBuf,
    /// Guest RAM in MiB.
    pub memory_mib: u32,
    /// `-append` text (`/chosen/bootargs`).
    pub bootargs: Option<String>,
    /// `-icount shift=N,align=off,sleep=off` when set.
    pub icount_shift: Option<u32>,
    /// Longest wait for any single step.
    pub timeout: Duration,
}

impl Default for QemuConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl QemuConfig {
    /// 512 MiB, no boot arguments, real time, 30 s steps; kernel from `SIS_KERNEL_ELF` or the build directory.
    pub fn new() -> Self {
        let kernel = std::env::var_os(KERNEL_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join(KERNEL_RELATIVE_PATH));
        QemuConfig { kernel, memory_mib: 512, bootargs: None, icount_shift: None, timeout: Duration::from_secs(30) }
    }

    /// Sets guest RAM.
    pub fn memory_mib(mut self, memory_mib: u32) -> Self {
        self.memory_mib = memory_mib;
        self
    }

    /// Sets the boot arguments.
    pub fn bootargs(mut self, bootargs: impl Into<String>) -> Self {
        self.bootargs = Some(bootargs.into());
        self
    }

    /// Boot arguments that run `commands` in batch mode.
    pub fn batch(self, commands: &str) -> Self {
        self.bootargs(sis_proto::bootargs::run_argument(commands))
    }

    /// Deterministic mode with the default icount shift.
    pub fn deterministic(mut self) -> Self {
        self.icount_shift = Some(DEFAULT_ICOUNT_SHIFT);
        self
    }

    /// Sets the per-step timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Arguments shared by headless and interactive launches.
    fn machine_args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "-M",
            "virt,gic-version=3",
            "-cpu",
            "cortex-a72",
            "-m",
            &format!("{}M", self.memory_mib),
            // The default NIC needs a ROM file that a minimal QEMU install lacks.
            "-nic",
            "none",
            "-no-reboot",
            "-semihosting-config",
            "enable=on,target=native",
            "-kernel",
        ]
        .iter()
        .map(|text| text.to_string())
        .collect();
        args.push(self.kernel.display().to_string());
        if let Some(bootargs) = &self.bootargs {
            args.push("-append".into());
            args.push(bootargs.clone());
        }
        if let Some(shift) = self.icount_shift {
            args.push("-icount".into());
            args.push(format!("shift={shift},align=off,sleep=off"));
        }
        args
    }

    /// QEMU with the serial console on stdin/stdout and no monitor (for programs).
    pub fn headless_command(&self) -> Command {
        let mut command = Command::new("qemu-system-aarch64");
        command.args(self.machine_args()).args(["-display", "none", "-monitor", "none", "-serial", "stdio"]);
        command
    }

    /// QEMU for a person at a terminal: `-nographic`, so Ctrl-A X quits.
    pub fn interactive_command(&self) -> Command {
        let mut command = Command::new("qemu-system-aarch64");
        command.args(self.machine_args()).arg("-nographic");
        command
    }
}
