//! The network stack over virtio-net and the kernel thread that polls it.
//!
//! The stack (smoltcp over the fault injector over the driver) lives in one
//! slot behind an IRQ-masking lock. The network thread polls it with the
//! kernel clock, then sleeps until smoltcp's next timer (at most
//! [`MAX_SLEEP_NS`]) or until the device's interrupt wakes it. Commands take
//! the same lock for short, non-blocking steps (read counters, queue a ping,
//! set a fault) and never sleep holding it.

use alloc::boxed::Box;

use sis_net::{FaultInjector, FrameIo, NetConfig, NetLayer, NetStack};
use sis_platform::irq_lock::IrqMutex;
use sis_platform::profile::{self, Layer};
use sis_platform::thread;
use sis_platform::time;
use sis_platform::virtio::{NetWaker, VirtioNet};
use sis_sched::ThreadId;
use sis_shell::ShellError;

/// Longest sleep between polls, so timers and partitions are seen without traffic.
pub const MAX_SLEEP_NS: u64 = 10_000_000;
/// Stack of the network thread.
const NET_STACK_BYTES: u64 = 64 * 1024;

/// The fault layer between smoltcp and the driver.
pub type FaultLayer = FaultInjector<VirtioNet>;

/// The kernel's stack: smoltcp over the fault injector over virtio-net.
pub type Stack = NetStack<FaultLayer>;

/// The attached network device and everything above it.
#[derive(Debug)]
pub struct Net {
    /// The stack.
    pub stack: Stack,
    /// The device's interrupt line.
    pub waker: NetWaker,
    /// The polling thread.
    pub thread: Option<ThreadId>,
    /// A thread waiting for the next poll to finish (a ping waiting for its reply).
    pub poll_waiter: Option<ThreadId>,
    /// Times the network thread woke before its deadline because of an interrupt or a command.
    pub early_wakes: u64,
    /// The emulation-ceiling loop, while `netctl ceiling` runs it instead of the stack.
    pub ceiling: Option<Ceiling>,
}

/// The emulation-ceiling loop's state: UDP datagrams to `port` go straight back from the driver's buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ceiling {
    /// UDP port reflected.
    pub port: u16,
    /// Kernel clock when it started.
    pub started_ns: u64,
    /// Frames sent back.
    pub frames: u64,
    /// Their bytes (Ethernet frames, no virtio header).
    pub bytes: u64,
}

impl Net {
    /// The fault injector.
    pub fn faults(&mut self) -> &mut FaultInjector<VirtioNet> {
        self.stack.io_mut()
    }

    /// The driver at the bottom.
    pub fn driver(&self) -> &VirtioNet {
        self.stack.io().io()
    }
}

static SLOT: IrqMutex<Option<Box<Net>>> = IrqMutex::new(None);

/// Error code: QEMU has no virtio-net device.
pub const NO_DEVICE: &str = "no-device";

/// Installs the probed device and starts the network thread (called once at boot).
pub fn attach(device: Option<VirtioNet>) -> Result<(), thread::SpawnError> {
    let Some(device) = device else { return Ok(()) };
    let waker = device.waker();
    let config = NetConfig::qemu_user(device.mac());
    let mut stack = NetStack::new(FaultInjector::new(device), config, time::now_ns());
    stack.set_layer_hook(Some(enter_layer));
    *SLOT.lock() = Some(Box::new(Net { stack, waker, thread: None, poll_waiter: None, early_wakes: 0, ceiling: None }));
    let id = thread::spawn("net", NET_STACK_BYTES, run)?;
    if let Some(net) = SLOT.lock().as_mut() {
        net.thread = Some(id);
    }
    Ok(())
}

/// Whether a network device is attached.
pub fn attached() -> bool {
    SLOT.lock().is_some()
}

/// Runs `body` with the stack locked (IRQs masked): it must be short and must not sleep.
pub fn with_net<T>(body: impl FnOnce(&mut Net) -> Result<T, ShellError>) -> Result<T, ShellError> {
    // The stack marks the layers it enters; what it did for the caller goes back to the caller's layer after.
    let caller = profile::current();
    let result = match SLOT.lock().as_mut() {
        Some(net) => body(net),
        None => Err(no_device()),
    };
    profile::enter(caller);
    result
}

/// The stack's layer hook: its layers are the platform profile's.
fn enter_layer(layer: NetLayer) {
    profile::enter(match layer {
        NetLayer::SmoltcpPoll => Layer::SmoltcpPoll,
        NetLayer::SmoltcpIngress => Layer::SmoltcpIngress,
        NetLayer::SmoltcpEgress => Layer::SmoltcpEgress,
        NetLayer::SocketCopy => Layer::SocketCopy,
        NetLayer::DeviceReceive => Layer::NetDeviceReceive,
        NetLayer::DeviceTransmit => Layer::NetDeviceTransmit,
    });
}

/// Wakes the network thread so it polls now (after a command queued something to send).
pub fn kick() {
    let id = SLOT.lock().as_ref().and_then(|net| net.thread);
    if let Some(id) = id {
        thread::wake(id);
    }
}

/// The error every command but `status` gives without a device.
pub fn no_device() -> ShellError {
    ShellError::new(
        NO_DEVICE,
        "no network device: QEMU was started without virtio-net (-netdev user,id=net0 -device virtio-net-device,netdev=net0)",
    )
}

/// The network thread: poll, then sleep until the next timer, an interrupt or a kick.
fn run() {
    let me = thread::current_id();
    profile::enter(Layer::NetThread);
    loop {
        let now = time::now_ns();
        let polled = SLOT.lock().as_mut().map(|net| {
            // Read before the poll: an interrupt during it stays pending (IRQs are masked) and changes the count.
            let seen = net.waker.interrupts();
            if let Some(ceiling) = net.ceiling.as_mut() {
                // Nothing but the driver: the stack is not polled until the ceiling run stops.
                let port = ceiling.port;
                let (frames, bytes) = net.stack.io_mut().io_mut().reflect(|frame| sis_net::reflect_udp(frame, port));
                ceiling.frames += frames;
                ceiling.bytes += bytes;
                return (seen, if frames > 0 { 0 } else { MAX_SLEEP_NS }, net.waker, net.poll_waiter.take(), None);
            }
            net.stack.poll(now);
            // The web listener's sockets, into the web server's I/O table (never the web app itself).
            let web_thread = crate::web::io::serve(&mut net.stack, now);
            let mut delay = net.stack.poll_delay_ns(now).unwrap_or(MAX_SLEEP_NS).min(MAX_SLEEP_NS);
            profile::enter(Layer::NetThread);
            if !net.stack.io_mut().can_transmit() {
                // Every transmit descriptor is in flight: the device's interrupt for frames sent wakes the thread
                // (or its next timer, or a frame arriving), rather than a turn of the scheduler per look.
                delay = delay.max(MAX_SLEEP_NS);
            }
            (seen, delay, net.waker, net.poll_waiter.take(), web_thread)
        });
        let Some((seen, delay_ns, waker, waiter, web_thread)) = polled else {
            crate::klog!("net", "net: no network stack attached; the network thread ends");
            return;
        };
        if let Some(waiter) = waiter {
            thread::wake(waiter);
        }
        if let Some(web_thread) = web_thread {
            thread::wake(web_thread);
        }
        if delay_ns == 0 {
            thread::yield_now();
            continue;
        }
        let deadline = now.saturating_add(delay_ns);
        thread::sleep_until_ns_or_woken(deadline, || {
            waker.wake_on_interrupt(me);
            waker.interrupts() != seen
        });
        if time::now_ns() < deadline {
            if let Some(net) = SLOT.lock().as_mut() {
                net.early_wakes += 1;
            }
        }
    }
}
