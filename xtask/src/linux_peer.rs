//! A Linux guest on the same emulated machine as SIS, for `cargo xtask bench net --linux`: what a mature TCP/IP
//! stack and virtio-net driver reach through the same QEMU, virtio-net device and user networking.
//!
//! Debian's arm64 cloud kernel and `busybox-static` are fetched by package name with `apt-get download` into
//! `target/linux-peer/` (a private apt state for the arm64 architecture; the machine's own apt state and
//! architectures are not touched) and kept there for later runs. The initramfs is written here: busybox, the
//! modules virtio-net and virtio-blk need, and an init that does one of two things, chosen on the kernel command
//! line. As the network peer it configures the address slirp expects and runs an echo service on port 7
//! (`nc -ll -p 7 -e cat`: each connection's socket becomes `cat`'s standard input and output). As the disk peer
//! it runs busybox `dd` over the virtio-blk disk, sequentially, once with `O_DIRECT` (one request of the block
//! size in flight) and once through Linux's page cache (writeback with `fsync`, readahead), prints each pass's
//! time and powers off.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sis_testing::QemuConfig;

use crate::run_step;

/// Debian's meta-package for the arm64 cloud kernel (virtio drivers as modules, little else).
const KERNEL_META_PACKAGE: &str = "linux-image-cloud-arm64";
/// Busybox, statically linked: the initramfs's shell, module loader, network set-up and echo service.
const BUSYBOX_PACKAGE: &str = "busybox-static";
/// The modules virtio-net and virtio-blk over virtio-mmio need; they are loaded in the order their `depends=`
/// fields require.
const MODULES: [&str; 7] = [
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio_mmio.ko",
    "net/core/failover.ko",
    "drivers/net/net_failover.ko",
    "drivers/net/virtio_net.ko",
    "drivers/block/virtio_blk.ko",
];
/// What init prints once the echo service listens.
const READY: &str = "SIS-LINUX-PEER-READY";
/// The guest's echo port, as SIS's.
const ECHO_PORT: u16 = 7;

/// The prefix of each line the disk peer reports: `SIS-DD <pass>: <microseconds>`.
const DD_PREFIX: &str = "SIS-DD ";

/// The init script; `{modules}` is replaced by the module names in load order. `sis_disk=MIB,KIB` on the kernel
/// command line makes it the disk peer (MIB MiB in KIB KiB blocks), otherwise it is the echo peer.
const INIT: &str = "#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for module in {modules}; do
    insmod /lib/modules/$module.ko || echo \"insmod $module failed\"
done
disk=
for word in $(cat /proc/cmdline); do
    case $word in sis_disk=*) disk=${word#sis_disk=} ;; esac
done
if [ -n \"$disk\" ]; then
    mib=${disk%,*}
    kib=${disk#*,}
    count=$((mib * 1024 / kib))
    now_us() { adjtimex | awk '/tv_sec/ { s = $2 } /tv_usec/ { u = $2 } END { printf \"%.0f\\n\", s * 1000000 + u }'; }
    pass() {
        name=$1
        shift
        start=$(now_us)
        if dd \"$@\" 2>/tmp/dd.err; then
            end=$(now_us)
            echo \"SIS-DD $name: $((end - start))\"
        else
            echo \"SIS-DD $name failed: $(cat /tmp/dd.err)\"
        fi
    }
    sleep 1
    echo SIS-LINUX-PEER-READY
    pass empty if=/dev/zero of=/dev/null bs=${kib}k count=0
    pass write-direct if=/dev/zero of=/dev/vda bs=${kib}k count=$count oflag=direct
    pass read-direct if=/dev/vda of=/dev/null bs=${kib}k count=$count iflag=direct
    pass write-cached if=/dev/zero of=/dev/vda bs=${kib}k count=$count conv=fsync
    echo 3 > /proc/sys/vm/drop_caches
    pass read-cached if=/dev/vda of=/dev/null bs=${kib}k count=$count
    echo SIS-DD done
    poweroff -f
fi
ifconfig lo up
ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up
route add default gw 10.0.2.2
nc -ll -p 7 -e cat &
sleep 1
echo SIS-LINUX-PEER-READY
wait
";

/// The kernel, the initramfs and the packages they came from.
#[derive(Debug, Clone)]
pub struct LinuxImage {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    /// The .deb files used, by name (package, version, architecture).
    pub packages: Vec<String>,
}

/// The options that give apt a private state for arm64 packages under `directory`.
fn apt_options(directory: &Path) -> Vec<String> {
    let state = directory.join("apt-state");
    let cache = directory.join("apt-cache");
    vec![
        "-o".into(),
        format!("Dir::State={}", state.display()),
        "-o".into(),
        format!("Dir::State::status={}", state.join("status").display()),
        "-o".into(),
        format!("Dir::Cache={}", cache.display()),
        "-o".into(),
        "APT::Architecture=arm64".into(),
        "-o".into(),
        "APT::Architectures::=arm64".into(),
        "-q".into(),
    ]
}

/// The versioned kernel package a meta-package's `apt-cache depends` output names first.
fn kernel_package(depends: &str) -> Option<&str> {
    depends
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|package| package.starts_with("linux-image-"))
}

/// Fetches the packages (once) and writes the initramfs; returns the image under `target/linux-peer/`.
pub fn prepare() -> Result<LinuxImage, String> {
    let directory = sis_testing::workspace_root().join("target/linux-peer");
    let debs = directory.join("debs");
    let io = |what: &str, path: &Path, error: std::io::Error| format!("{what} {}: {error}", path.display());
    if !has_debs(&debs) {
        println!(
            "linux peer: fetching Debian's arm64 {KERNEL_META_PACKAGE} and {BUSYBOX_PACKAGE} into {}",
            debs.display()
        );
        for path in
            [directory.join("apt-state/lists/partial"), directory.join("apt-cache/archives/partial"), debs.clone()]
        {
            std::fs::create_dir_all(&path).map_err(|error| io("cannot create", &path, error))?;
        }
        let status = directory.join("apt-state/status");
        std::fs::write(&status, b"").map_err(|error| io("cannot write", &status, error))?;
        let options = apt_options(&directory);
        run_step("apt-get update (arm64, private state)", Command::new("apt-get").args(&options).arg("update"))?;
        let depends = Command::new("apt-cache")
            .args(&options)
            .args(["depends", "--no-recommends", "--no-suggests", KERNEL_META_PACKAGE])
            .output()
            .map_err(|error| format!("apt-cache depends: {error}"))?;
        let depends = String::from_utf8_lossy(&depends.stdout);
        let kernel = kernel_package(&depends)
            .ok_or_else(|| format!("apt-cache depends {KERNEL_META_PACKAGE} named no kernel package:\n{depends}"))?;
        run_step(
            "apt-get download (arm64)",
            Command::new("apt-get").args(&options).args(["download", kernel, BUSYBOX_PACKAGE]).current_dir(&debs),
        )?;
    }
    let mut packages: Vec<String> = std::fs::read_dir(&debs)
        .map_err(|error| io("cannot read", &debs, error))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".deb"))
        .collect();
    packages.sort();
    let unpacked = directory.join("unpacked");
    let _ = std::fs::remove_dir_all(&unpacked);
    for package in &packages {
        run_step(
            &format!("dpkg-deb -x {package}"),
            Command::new("dpkg-deb").arg("-x").arg(debs.join(package)).arg(&unpacked),
        )?;
    }
    let kernel = single_entry(&unpacked.join("boot"), "vmlinuz-")?;
    let modules_root = single_entry(&unpacked.join("lib/modules"), "")?.join("kernel");
    let mut modules = Vec::new();
    for module in MODULES {
        let path = modules_root.join(module);
        let data = std::fs::read(&path).map_err(|error| io("cannot read", &path, error))?;
        let name = module.rsplit('/').next().unwrap_or(module).trim_end_matches(".ko").to_string();
        modules.push((name, data));
    }
    let order = load_order(&modules)?;
    let init = INIT.replace("{modules}", &order.join(" "));
    let mut files: Vec<(String, u32, Vec<u8>)> = vec![
        ("init".into(), 0o755, init.into_bytes()),
        (
            "bin/busybox".into(),
            0o755,
            std::fs::read(unpacked.join("bin/busybox")).map_err(|error| io("cannot read", &unpacked, error))?,
        ),
    ];
    for (name, data) in modules {
        files.push((format!("lib/modules/{name}.ko"), 0o644, data));
    }
    let directories = ["bin", "dev", "lib", "lib/modules", "proc", "sys", "tmp"];
    let initramfs = directory.join("initramfs.cpio");
    std::fs::write(&initramfs, newc_archive(&directories, &files))
        .map_err(|error| io("cannot write", &initramfs, error))?;
    Ok(LinuxImage { kernel, initramfs, packages })
}

/// The modules a kernel module's `.modinfo` names in its `depends=` field.
fn dependencies(module: &[u8]) -> Vec<String> {
    const FIELD: &[u8] = b"depends=";
    module
        .split(|&byte| byte == 0)
        .find_map(|string| string.strip_prefix(FIELD))
        .map(|list| {
            String::from_utf8_lossy(list).split(',').filter(|name| !name.is_empty()).map(str::to_string).collect()
        })
        .unwrap_or_default()
}

/// `modules` (name, contents) ordered so that each comes after every module it depends on; an error names a
/// dependency that is not among them, or a cycle.
fn load_order(modules: &[(String, Vec<u8>)]) -> Result<Vec<String>, String> {
    let needs: Vec<(&str, Vec<String>)> =
        modules.iter().map(|(name, data)| (name.as_str(), dependencies(data))).collect();
    let mut order: Vec<String> = Vec::new();
    while order.len() < needs.len() {
        let before = order.len();
        for (name, dependencies) in &needs {
            if order.iter().any(|loaded| loaded == name) {
                continue;
            }
            if let Some(missing) = dependencies.iter().find(|dependency| !needs.iter().any(|(n, _)| n == dependency)) {
                return Err(format!("module {name} depends on {missing}, which the Linux peer does not load"));
            }
            if dependencies.iter().all(|dependency| order.contains(dependency)) {
                order.push(name.to_string());
            }
        }
        if order.len() == before {
            return Err(format!("the modules' dependencies form a cycle: {needs:?}"));
        }
    }
    Ok(order)
}

fn has_debs(debs: &Path) -> bool {
    let names: Vec<String> = std::fs::read_dir(debs)
        .map(|entries| entries.filter_map(|entry| entry.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    names.iter().any(|name| name.starts_with("linux-image-") && name.ends_with(".deb"))
        && names.iter().any(|name| name.starts_with(BUSYBOX_PACKAGE) && name.ends_with(".deb"))
}

/// The one entry of `directory` whose name starts with `prefix`.
fn single_entry(directory: &Path, prefix: &str) -> Result<PathBuf, String> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(directory)
        .map_err(|error| format!("cannot read {}: {error}", directory.display()))?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_str().is_some_and(|name| name.starts_with(prefix)))
        .map(|entry| entry.path())
        .collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        count => Err(format!("{}: {count} entries starting with {prefix:?}, expected one", directory.display())),
    }
}

/// A cpio archive in the "newc" format the kernel unpacks as its initramfs: `directories` (mode 0755), then
/// `files` (path, permission bits, contents), then the trailer.
fn newc_archive(directories: &[&str], files: &[(String, u32, Vec<u8>)]) -> Vec<u8> {
    const DIRECTORY: u32 = 0o040_000;
    const REGULAR: u32 = 0o100_000;
    let mut archive = Vec::new();
    let mut inode = 1u32;
    let mut entry = |archive: &mut Vec<u8>, name: &str, mode: u32, data: &[u8]| {
        let fields = [inode, mode, 0, 0, 1, 0, data.len() as u32, 0, 0, 0, 0, name.len() as u32 + 1, 0];
        inode += 1;
        archive.extend_from_slice(b"070701");
        for field in fields {
            archive.extend_from_slice(format!("{field:08X}").as_bytes());
        }
        archive.extend_from_slice(name.as_bytes());
        archive.push(0);
        archive.resize(archive.len().next_multiple_of(4), 0);
        archive.extend_from_slice(data);
        archive.resize(archive.len().next_multiple_of(4), 0);
    };
    for directory in directories {
        entry(&mut archive, directory, DIRECTORY | 0o755, &[]);
    }
    for (path, permissions, data) in files {
        entry(&mut archive, path, REGULAR | permissions, data);
    }
    entry(&mut archive, "TRAILER!!!", 0, &[]);
    archive
}

/// A Linux guest running; QEMU is killed on drop.
struct Guest {
    qemu: Child,
    console: mpsc::Receiver<String>,
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
    }
}

impl Guest {
    /// Boots `image` (its kernel and initramfs, `append` on the kernel command line) on the machine SIS's tests and
    /// benchmarks boot, with the devices `config` attaches, and waits for init's ready line.
    fn boot(image: &LinuxImage, config: QemuConfig, append: &str) -> Result<Self, String> {
        let config =
            config.entropy(None).kernel(&image.kernel).bootargs(format!("console=ttyAMA0 quiet panic=-1 {append}"));
        let mut qemu = config
            .headless_command()
            .arg("-initrd")
            .arg(&image.initramfs)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", config.qemu_program.display()))?;
        let stdout = qemu.stdout.take().ok_or("no QEMU stdout")?;
        let (lines, console) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let guest = Guest { qemu, console };
        let before = guest.lines_until(READY, Duration::from_secs(120))?;
        if before.iter().any(|line| line.contains("insmod")) {
            return Err(format!("the Linux peer could not load its modules:\n{}", before.join("\n")));
        }
        Ok(guest)
    }

    /// The console's lines up to the first that contains `marker` (not included).
    fn lines_until(&self, marker: &str, limit: Duration) -> Result<Vec<String>, String> {
        let deadline = Instant::now() + limit;
        let mut lines = Vec::new();
        loop {
            match self.console.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.contains(marker) => return Ok(lines),
                Ok(line) => lines.push(line),
                Err(_) => {
                    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
                    return Err(format!("the Linux peer printed no {marker:?} in {limit:?}; console:\n{tail}"));
                }
            }
        }
    }
}

/// The Linux guest running, its echo service forwarded from 127.0.0.1.
pub struct LinuxPeer {
    _guest: Guest,
    pub address: SocketAddr,
}

impl LinuxPeer {
    /// Boots `image` as the echo peer, virtio-net on user networking, and waits until its echo service answers.
    pub fn boot(image: &LinuxImage) -> Result<Self, String> {
        let config = QemuConfig::new().user_network_free_port(ECHO_PORT).map_err(|error| error.to_string())?;
        let address = config.forwarded_address().ok_or("no forwarded port")?;
        let peer = LinuxPeer { _guest: Guest::boot(image, config, "")?, address };
        peer.probe()?;
        Ok(peer)
    }

    /// One byte echoed through the forward: the path is open.
    fn probe(&self) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let echoed = TcpStream::connect_timeout(&self.address, Duration::from_secs(5)).and_then(|mut stream| {
                stream.set_read_timeout(Some(Duration::from_secs(5)))?;
                stream.write_all(b"x")?;
                let mut back = [0u8; 1];
                std::io::Read::read_exact(&mut stream, &mut back)?;
                Ok(back == *b"x")
            });
            match echoed {
                Ok(true) => return Ok(()),
                _ if started.elapsed() < Duration::from_secs(30) => std::thread::sleep(Duration::from_millis(200)),
                Ok(false) => return Err("the Linux peer echoed a different byte".into()),
                Err(error) => return Err(format!("the Linux peer's echo service did not answer: {error}")),
            }
        }
    }
}

/// MiB/s of the disk peer's four `dd` passes over one disk.
#[derive(Debug, Clone, Copy)]
pub struct DiskFigures {
    /// `O_DIRECT`: each block one request, one in flight.
    pub write_direct: f64,
    pub read_direct: f64,
    /// Through the page cache: the write timed to the end of its `fsync`, the read after dropping the cache.
    pub write_cached: f64,
    pub read_cached: f64,
}

/// Boots `image` as the disk peer on the raw image at `disk` (attached as SIS's benchmarks attach theirs: virtio-blk,
/// QEMU's default cache) and returns `dd`'s figures for `size_mib` MiB in `request_kib` KiB blocks.
///
/// Each pass is timed in the guest (its real-time clock, microseconds) around the whole `dd` process; the time of
/// a `dd` that copies nothing (process start and exit, and reading the clock) is subtracted.
pub fn disk_run(image: &LinuxImage, disk: &Path, size_mib: u64, request_kib: u64) -> Result<DiskFigures, String> {
    let config = QemuConfig::new().disk_image(disk);
    let guest = Guest::boot(image, config, &format!("sis_disk={size_mib},{request_kib}"))?;
    let lines = guest.lines_until("SIS-DD done", Duration::from_secs(600))?;
    let microseconds = |pass: &str| {
        let prefix = format!("{DD_PREFIX}{pass}: ");
        lines
            .iter()
            .find_map(|line| line.split_once(&prefix)?.1.trim().parse::<u64>().ok())
            .ok_or_else(|| format!("no time for the pass {pass}; console:\n{}", lines.join("\n")))
    };
    let empty = microseconds("empty")?;
    let rate = |pass: &str| -> Result<f64, String> {
        let elapsed = microseconds(pass)?.saturating_sub(empty);
        if elapsed == 0 {
            return Err(format!("the pass {pass} took no longer than a dd that copies nothing"));
        }
        // init copies whole blocks: size_mib * 1024 / request_kib of them.
        let mib = (size_mib * 1024 / request_kib * request_kib) as f64 / 1024.0;
        Ok(mib / (elapsed as f64 / 1e6))
    };
    Ok(DiskFigures {
        write_direct: rate("write-direct")?,
        read_direct: rate("read-direct")?,
        write_cached: rate("write-cached")?,
        read_cached: rate("read-cached")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_package_is_the_first_versioned_image_the_meta_package_depends_on() {
        let depends = "linux-image-cloud-arm64\n  Depends: linux-image-6.1.0-50-cloud-arm64\n  Depends: other\n";
        assert_eq!(kernel_package(depends), Some("linux-image-6.1.0-50-cloud-arm64"));
        assert_eq!(kernel_package("linux-image-cloud-arm64\n  Depends: firmware\n"), None);
    }

    #[test]
    fn modules_load_after_what_their_depends_field_names() {
        let module = |depends: &str| format!("\0license=GPL\0depends={depends}\0name=x\0").into_bytes();
        let modules = vec![
            ("virtio_net".to_string(), module("virtio_ring,virtio,net_failover")),
            ("virtio".to_string(), module("virtio_ring")),
            ("net_failover".to_string(), module("failover")),
            ("virtio_ring".to_string(), module("")),
            ("failover".to_string(), module("")),
        ];
        assert_eq!(dependencies(&modules[0].1), ["virtio_ring", "virtio", "net_failover"]);
        assert!(dependencies(&modules[3].1).is_empty());
        assert_eq!(load_order(&modules).unwrap(), ["virtio_ring", "failover", "virtio", "net_failover", "virtio_net"]);
        let missing = vec![("virtio".to_string(), module("virtio_ring"))];
        assert_eq!(
            load_order(&missing).unwrap_err(),
            "module virtio depends on virtio_ring, which the Linux peer does not load"
        );
        let cycle = vec![("a".to_string(), module("b")), ("b".to_string(), module("a"))];
        assert!(load_order(&cycle).unwrap_err().contains("cycle"));
    }

    #[test]
    fn a_newc_entry_has_its_header_fields_name_and_data_each_padded_to_four_bytes() {
        let archive = newc_archive(&["bin"], &[("init".into(), 0o755, b"#!\n".to_vec())]);
        // The directory: 110-byte header, "bin\0" (114, a multiple of 2 but padded to 116), no data.
        assert_eq!(&archive[..6], b"070701");
        assert_eq!(&archive[6..14], b"00000001");
        assert_eq!(&archive[14..22], b"000041ED");
        assert_eq!(&archive[110..114], b"bin\0");
        let file = 116;
        assert_eq!(&archive[file + 14..file + 22], b"000081ED");
        assert_eq!(&archive[file + 54..file + 62], b"00000003", "file size");
        assert_eq!(&archive[file + 94..file + 102], b"00000005", "name length with its NUL");
        assert_eq!(&archive[file + 110..file + 115], b"init\0");
        // 110 + 5 = 115, padded to 116; then the 3 data bytes, padded to 4.
        assert_eq!(&archive[file + 116..file + 119], b"#!\n");
        let trailer = file + 120;
        assert_eq!(&archive[trailer + 110..trailer + 121], b"TRAILER!!!\0");
        assert_eq!(archive.len() % 4, 0);
    }
}
