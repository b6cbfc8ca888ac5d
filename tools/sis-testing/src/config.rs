//! How to start QEMU for SIS: machine, memory, boot arguments, deterministic mode, timeout.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Guest nanoseconds per instruction, as a power of two, in deterministic mode.
pub const DEFAULT_ICOUNT_SHIFT: u32 = 3;
/// Guest RAM when nothing else is asked for.
pub const DEFAULT_MEMORY_MIB: u32 = 512;
/// Longest wait for any single step when nothing else is asked for.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Environment variable that overrides the kernel image path.
pub const KERNEL_ENV: &str = "SIS_KERNEL_ELF";
/// Where `cargo xtask build` puts the kernel, relative to the workspace root.
pub const KERNEL_RELATIVE_PATH: &str = "target/aarch64-unknown-none-softfloat/release/sis-kernel";
/// The emulator started when nothing else is asked for.
pub const QEMU_PROGRAM: &str = "qemu-system-aarch64";

/// Where `cargo xtask` puts the dashboard's third-party files (uPlot, from package-lock.json), relative to the
/// workspace root; sisd serves them under `/vendor/`.
pub const DASHBOARD_VENDOR_RELATIVE_PATH: &str = "target/dashboard/vendor";

/// The dashboard's third-party files in this workspace ([`DASHBOARD_VENDOR_RELATIVE_PATH`]).
pub fn dashboard_vendor_dir() -> PathBuf {
    workspace_root().join(DASHBOARD_VENDOR_RELATIVE_PATH)
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).map(Path::to_path_buf).unwrap_or_default()
}

/// The kernel image: `SIS_KERNEL_ELF` when set, else the release build in the workspace.
pub fn default_kernel_path() -> PathBuf {
    kernel_path(std::env::var_os(KERNEL_ENV))
}

/// The kernel image for an override (the value of `SIS_KERNEL_ELF`, if set and not empty).
fn kernel_path(override_path: Option<std::ffi::OsString>) -> PathBuf {
    override_path
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(KERNEL_RELATIVE_PATH))
}

/// A QEMU launch description, built with chained setters:
///
/// ```
/// use std::time::Duration;
/// let config = sis_testing::QemuConfig::new()
///     .memory_mib(1024)
///     .batch("echo hi; version")
///     .deterministic()
///     .timeout(Duration::from_secs(60));
/// assert_eq!(config.icount_shift, Some(sis_testing::DEFAULT_ICOUNT_SHIFT));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuConfig {
    /// The emulator program (`qemu-system-aarch64`; tests put a fake here).
    pub qemu_program: PathBuf,
    /// Kernel ELF.
    pub kernel: PathBuf,
    /// Guest RAM in MiB.
    pub memory_mib: u32,
    /// `-append` text (`/chosen/bootargs`).
    pub bootargs: Option<String>,
    /// Deterministic mode: `-icount shift=N,align=off,sleep=off` when set.
    pub icount_shift: Option<u32>,
    /// Longest wait for any single step (boot, one command, one write, a batch run).
    pub timeout: Duration,
    /// A raw disk image attached as a virtio-blk device; `None` boots without a disk.
    pub disk_image: Option<PathBuf>,
    /// A virtio-net device on QEMU user networking with one forwarded TCP port; `None` boots without a network.
    pub network: Option<PortForward>,
    /// A UDP forward beside the TCP one (only with `network`).
    pub udp_forward: Option<PortForward>,
    /// 32 bytes passed as `sis.entropy=<64 hex digits>`, the kernel's only source for web tokens; [`QemuConfig::new`]
    /// reads them from the host's OS random source (`/dev/urandom`).
    pub entropy: Option<[u8; 32]>,
    /// Start the web server at boot (`sis.web=80`), with this admin token (`sis.web_token`) when given.
    pub web: Option<WebBoot>,
}

/// The web server started at boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebBoot {
    /// Admin token (64 hex digits) installed at boot; `None` lets the kernel make one and print it on the console.
    pub token: Option<String>,
}

/// The guest port the web server listens on when started at boot.
pub const WEB_GUEST_PORT: u16 = 80;

/// 32 bytes from the host's OS random source.
pub fn host_random_bytes() -> std::io::Result<[u8; 32]> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A TCP port forward from the host's loopback into the guest (QEMU `hostfwd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortForward {
    /// Port on 127.0.0.1 (only loopback: nothing outside the machine reaches the guest).
    pub host_port: u16,
    /// Port in the guest (10.0.2.15).
    pub guest_port: u16,
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the OS picked it; it is released at once for QEMU to bind).
pub fn free_local_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

impl Default for QemuConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl QemuConfig {
    /// 512 MiB, no boot arguments, real time, 30 s steps; kernel from [`default_kernel_path`].
    pub fn new() -> Self {
        QemuConfig {
            qemu_program: PathBuf::from(QEMU_PROGRAM),
            kernel: default_kernel_path(),
            memory_mib: DEFAULT_MEMORY_MIB,
            bootargs: None,
            icount_shift: None,
            timeout: DEFAULT_TIMEOUT,
            disk_image: None,
            network: None,
            udp_forward: None,
            // Without a random source there is no entropy to pass, and the kernel refuses to make tokens.
            entropy: host_random_bytes().ok(),
            web: None,
        }
    }

    /// Sets (or, with `None`, drops) the `sis.entropy` boot argument.
    pub fn entropy(mut self, entropy: Option<[u8; 32]>) -> Self {
        self.entropy = entropy;
        self
    }

    /// Attaches virtio-net forwarding 127.0.0.1:`host_port` to the guest's port 80 and starts the web server at
    /// boot, installing `token` (64 hex digits) as an admin token, or letting the kernel print a new one.
    pub fn web_server(mut self, host_port: u16, token: Option<String>) -> Self {
        self.web = Some(WebBoot { token });
        self.user_network(host_port, WEB_GUEST_PORT)
    }

    /// The `-append` text: the boot arguments, then the web server's and `sis.entropy`.
    pub fn append_text(&self) -> Option<String> {
        let mut words: Vec<String> = self.bootargs.iter().cloned().collect();
        if let Some(web) = &self.web {
            words.push(format!("sis.web={WEB_GUEST_PORT}"));
            if let Some(token) = &web.token {
                words.push(format!("sis.web_token={token}"));
            }
        }
        if let Some(entropy) = &self.entropy {
            words.push(format!("sis.entropy={}", hex(entropy)));
        }
        (!words.is_empty()).then(|| words.join(" "))
    }

    /// Sets the emulator program.
    pub fn qemu_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.qemu_program = program.into();
        self
    }

    /// Sets the kernel image.
    pub fn kernel(mut self, kernel: impl Into<PathBuf>) -> Self {
        self.kernel = kernel.into();
        self
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

    /// Boot arguments that run `commands` (separated by `;`) in batch mode.
    pub fn batch(self, commands: &str) -> Self {
        self.bootargs(sis_proto::bootargs::run_argument(commands))
    }

    /// Deterministic mode with [`DEFAULT_ICOUNT_SHIFT`].
    pub fn deterministic(self) -> Self {
        self.icount_shift(DEFAULT_ICOUNT_SHIFT)
    }

    /// Deterministic mode with one instruction taking `2^shift` ns of guest time.
    pub fn icount_shift(mut self, shift: u32) -> Self {
        self.icount_shift = Some(shift);
        self
    }

    /// Attaches the raw image at `path` as a virtio-blk device (see [`crate::ScratchDisk`]).
    pub fn disk_image(mut self, path: impl Into<PathBuf>) -> Self {
        self.disk_image = Some(path.into());
        self
    }

    /// Attaches virtio-net on QEMU user networking, forwarding `host_port` on 127.0.0.1 to `guest_port`.
    pub fn user_network(mut self, host_port: u16, guest_port: u16) -> Self {
        self.network = Some(PortForward { host_port, guest_port });
        self
    }

    /// [`user_network`](Self::user_network) with a free host port picked by the OS.
    pub fn user_network_free_port(self, guest_port: u16) -> std::io::Result<Self> {
        Ok(self.user_network(free_local_port()?, guest_port))
    }

    /// Also forwards UDP `host_port` on 127.0.0.1 to `guest_port` (with [`user_network`](Self::user_network)).
    pub fn udp_forward(mut self, host_port: u16, guest_port: u16) -> Self {
        self.udp_forward = Some(PortForward { host_port, guest_port });
        self
    }

    /// The host side of the forwarded port, `127.0.0.1:PORT`, when a network is attached.
    pub fn forwarded_address(&self) -> Option<std::net::SocketAddr> {
        self.network.map(|forward| std::net::SocketAddr::from(([127, 0, 0, 1], forward.host_port)))
    }

    /// Sets the per-step timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// QEMU arguments with the serial console on stdin/stdout and no monitor (for programs).
    pub fn headless_arguments(&self) -> Vec<String> {
        let mut arguments = self.machine_arguments();
        arguments.extend(["-display", "none", "-monitor", "none", "-serial", "stdio"].map(String::from));
        arguments.extend(self.kernel_arguments());
        arguments
    }

    /// QEMU arguments for a person at a terminal: `-nographic`, so Ctrl-A X quits.
    pub fn interactive_arguments(&self) -> Vec<String> {
        let mut arguments = self.machine_arguments();
        arguments.push("-nographic".into());
        arguments.extend(self.kernel_arguments());
        arguments
    }

    /// The headless command, ready to spawn.
    pub fn headless_command(&self) -> Command {
        let mut command = Command::new(&self.qemu_program);
        command.args(self.headless_arguments());
        command
    }

    /// The interactive command, ready to run in this terminal.
    pub fn interactive_command(&self) -> Command {
        let mut command = Command::new(&self.qemu_program);
        command.args(self.interactive_arguments());
        command
    }

    /// Machine, memory and exit behaviour, shared by both launches.
    fn machine_arguments(&self) -> Vec<String> {
        vec![
            "-M".into(),
            "virt,gic-version=3".into(),
            "-cpu".into(),
            "cortex-a72".into(),
            "-m".into(),
            format!("{}M", self.memory_mib),
            // The default NIC needs a ROM file that a minimal QEMU install lacks.
            "-nic".into(),
            "none".into(),
            "-no-reboot".into(),
            "-semihosting-config".into(),
            "enable=on,target=native".into(),
        ]
    }

    /// Disk, kernel, boot arguments and the instruction counter.
    fn kernel_arguments(&self) -> Vec<String> {
        let mut arguments = Vec::new();
        if let Some(image) = &self.disk_image {
            // QEMU's option syntax doubles a comma inside a value.
            let file = image.display().to_string().replace(',', ",,");
            arguments.push("-drive".into());
            arguments.push(format!("file={file},if=none,format=raw,id=hd0"));
            arguments.push("-device".into());
            arguments.push("virtio-blk-device,drive=hd0".into());
        }
        if let Some(forward) = self.network {
            arguments.push("-netdev".into());
            let mut netdev =
                format!("user,id=net0,hostfwd=tcp:127.0.0.1:{}-:{}", forward.host_port, forward.guest_port);
            if let Some(udp) = self.udp_forward {
                netdev.push_str(&format!(",hostfwd=udp:127.0.0.1:{}-:{}", udp.host_port, udp.guest_port));
            }
            arguments.push(netdev);
            arguments.push("-device".into());
            arguments.push("virtio-net-device,netdev=net0".into());
        }
        arguments.extend(["-kernel".into(), self.kernel.display().to_string()]);
        if let Some(append) = self.append_text() {
            arguments.push("-append".into());
            arguments.push(append);
        }
        if let Some(shift) = self.icount_shift {
            arguments.push("-icount".into());
            arguments.push(format!("shift={shift},align=off,sleep=off"));
        }
        arguments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> QemuConfig {
        QemuConfig::new().kernel("/images/sis.elf").entropy(None)
    }

    #[test]
    fn entropy_and_web_server_are_boot_arguments() {
        let configured = config().bootargs("quiet").entropy(Some([0xab; 32])).web_server(40124, Some("cd".repeat(32)));
        let expected = format!("quiet sis.web=80 sis.web_token={} sis.entropy={}", "cd".repeat(32), "ab".repeat(32));
        assert_eq!(configured.append_text(), Some(expected));
        assert_eq!(configured.network, Some(PortForward { host_port: 40124, guest_port: 80 }));
        assert_eq!(config().append_text(), None);
        let fresh = QemuConfig::new();
        let entropy = fresh.entropy.expect("the host has /dev/urandom");
        assert_ne!(entropy, QemuConfig::new().entropy.unwrap(), "two configs got the same 32 random bytes");
    }

    #[test]
    fn headless_command_line_is_the_documented_one() {
        let arguments = config().memory_mib(1024).bootargs("sis.run=\"echo hi\"").deterministic().headless_arguments();
        assert_eq!(
            arguments.join(" "),
            "-M virt,gic-version=3 -cpu cortex-a72 -m 1024M -nic none -no-reboot \
             -semihosting-config enable=on,target=native -display none -monitor none -serial stdio \
             -kernel /images/sis.elf -append sis.run=\"echo hi\" -icount shift=3,align=off,sleep=off"
        );
    }

    #[test]
    fn interactive_command_line_uses_nographic_and_no_serial_redirect() {
        let arguments = config().interactive_arguments();
        assert_eq!(
            arguments.join(" "),
            "-M virt,gic-version=3 -cpu cortex-a72 -m 512M -nic none -no-reboot \
             -semihosting-config enable=on,target=native -nographic -kernel /images/sis.elf"
        );
    }

    #[test]
    fn a_disk_image_becomes_a_virtio_blk_drive_and_none_is_attached_by_default() {
        assert!(!config().headless_arguments().iter().any(|argument| argument.contains("drive")));
        let arguments = config().disk_image("/tmp/a,b/disk.img").headless_arguments().join(" ");
        assert!(
            arguments.ends_with(
                "-serial stdio -drive file=/tmp/a,,b/disk.img,if=none,format=raw,id=hd0 \
                 -device virtio-blk-device,drive=hd0 -kernel /images/sis.elf"
            ),
            "{arguments}"
        );
    }

    #[test]
    fn user_network_forwards_one_loopback_port_and_none_is_attached_by_default() {
        let plain = config().headless_arguments().join(" ");
        assert!(plain.contains("-nic none") && !plain.contains("netdev"), "{plain}");
        let configured = config().user_network(40_123, 7);
        assert_eq!(configured.forwarded_address(), Some("127.0.0.1:40123".parse().unwrap()));
        let arguments = configured.headless_arguments().join(" ");
        assert!(
            arguments.ends_with(
                "-serial stdio -netdev user,id=net0,hostfwd=tcp:127.0.0.1:40123-:7 \
                 -device virtio-net-device,netdev=net0 -kernel /images/sis.elf"
            ),
            "{arguments}"
        );
        let picked = config().user_network_free_port(7).unwrap().network.unwrap();
        assert_ne!(picked.host_port, 0);
        assert_eq!(picked.guest_port, 7);
        assert_eq!(config().forwarded_address(), None);
    }

    #[test]
    fn icount_shift_is_configurable_and_off_by_default() {
        assert_eq!(config().icount_shift, None);
        let arguments = config().icount_shift(5).headless_arguments();
        assert_eq!(arguments[arguments.len() - 2..], ["-icount", "shift=5,align=off,sleep=off"]);
    }

    #[test]
    fn batch_quotes_the_commands_as_one_boot_argument() {
        assert_eq!(config().batch("echo hi; version").bootargs.as_deref(), Some("sis.run=\"echo hi; version\""));
    }

    #[test]
    fn kernel_comes_from_the_environment_else_the_release_build_of_this_workspace() {
        assert_eq!(kernel_path(Some("/elsewhere/sis".into())), PathBuf::from("/elsewhere/sis"));
        let built = workspace_root().join("target/aarch64-unknown-none-softfloat/release/sis-kernel");
        assert_eq!(kernel_path(None), built);
        assert_eq!(kernel_path(Some("".into())), built, "an empty variable is no override");
        assert!(workspace_root().join("tools/sis-testing/Cargo.toml").is_file(), "{}", workspace_root().display());
    }
}
