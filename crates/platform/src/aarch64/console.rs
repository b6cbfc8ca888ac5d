//! The serial console: line-ending translation on output, a receive ring filled by the UART interrupt.
//!
//! Every received byte carries the time it was put in the ring, so the shell
//! can tell how long a line waited before it was answered.

use core::fmt;

use super::irq_lock::IrqMutex;
use super::{thread, time, uart};

/// Bytes of received input buffered between the interrupt and the reader.
const RECEIVE_CAPACITY: usize = 4096;

struct ReceiveRing {
    bytes: [u8; RECEIVE_CAPACITY],
    /// When each byte in `bytes` was put in the ring, ns.
    arrivals_ns: [u64; RECEIVE_CAPACITY],
    head: usize,
    length: usize,
    /// The interrupt was masked because the ring filled up.
    throttled: bool,
    /// Thread blocked waiting for input.
    waiter: Option<sis_sched::ThreadId>,
}

static OUTPUT: IrqMutex<()> = IrqMutex::new(());
static INPUT: IrqMutex<ReceiveRing> = IrqMutex::new(ReceiveRing {
    bytes: [0; RECEIVE_CAPACITY],
    arrivals_ns: [0; RECEIVE_CAPACITY],
    head: 0,
    length: 0,
    throttled: false,
    waiter: None,
});

fn put_translated(text: &str) {
    for byte in text.bytes() {
        if byte == b'\n' {
            uart::put_byte(b'\r');
        }
        uart::put_byte(byte);
    }
}

/// Writes `text`, turning `\n` into `\r\n`.
pub fn write_str(text: &str) {
    let _guard = OUTPUT.lock();
    put_translated(text);
}

/// Writes raw bytes with no translation (line-editor echo).
pub fn write_bytes(bytes: &[u8]) {
    let _guard = OUTPUT.lock();
    for &byte in bytes {
        uart::put_byte(byte);
    }
}

/// Writes even if the console lock is held: for the panic and crash paths only.
pub fn write_str_on_crash(text: &str) {
    // Take the lock when it is free; when the crash happened while it was
    // held, write anyway: the message matters more than tidy interleaving.
    let _guard = OUTPUT.try_lock();
    put_translated(text);
}

/// A `core::fmt::Write` over the console.
#[derive(Debug, Default, Clone, Copy)]
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        write_str(text);
        Ok(())
    }
}

/// `fmt::Write` for crash paths.
#[derive(Debug, Default, Clone, Copy)]
pub struct CrashConsole;

impl fmt::Write for CrashConsole {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        write_str_on_crash(text);
        Ok(())
    }
}

/// UART interrupt: moves bytes from the FIFO into the ring, wakes the reader.
pub(super) fn on_uart_interrupt() {
    drain_receive_fifo();
}

/// Moves bytes from the UART FIFO into the ring and wakes the reader.
pub(super) fn drain_receive_fifo() {
    let mut ring = INPUT.lock();
    let now_ns = time::now_ns();
    while ring.length < RECEIVE_CAPACITY {
        let Some(byte) = uart::take_byte() else { break };
        let tail = (ring.head + ring.length) % RECEIVE_CAPACITY;
        ring.bytes[tail] = byte;
        ring.arrivals_ns[tail] = now_ns;
        ring.length += 1;
    }
    if ring.length == RECEIVE_CAPACITY {
        ring.throttled = true;
        uart::set_receive_interrupt(false);
    } else {
        uart::set_receive_interrupt(true);
    }
    if let Some(waiter) = ring.waiter.take() {
        thread::wake(waiter);
    }
}

/// Reads up to `buffer.len()` received bytes, blocking the calling thread until at least one arrives.
pub fn read(buffer: &mut [u8]) -> usize {
    read_timed(buffer, &mut [])
}

/// Like [`read`], and writes the time each byte was put in the receive ring (ns) into `arrivals_ns`, as far
/// as it reaches.
pub fn read_timed(buffer: &mut [u8], arrivals_ns: &mut [u64]) -> usize {
    if buffer.is_empty() {
        return 0;
    }
    loop {
        {
            let mut ring = INPUT.lock();
            if ring.length > 0 {
                let mut count = 0;
                while count < buffer.len() && ring.length > 0 {
                    buffer[count] = ring.bytes[ring.head];
                    if let Some(arrival) = arrivals_ns.get_mut(count) {
                        *arrival = ring.arrivals_ns[ring.head];
                    }
                    ring.head = (ring.head + 1) % RECEIVE_CAPACITY;
                    ring.length -= 1;
                    count += 1;
                }
                if ring.throttled && ring.length < RECEIVE_CAPACITY / 2 {
                    ring.throttled = false;
                    uart::set_receive_interrupt(true);
                }
                return count;
            }
        }
        thread::block_current_until(|| {
            let mut ring = INPUT.lock();
            if ring.length > 0 {
                true
            } else {
                ring.waiter = Some(thread::current_id());
                false
            }
        });
    }
}
