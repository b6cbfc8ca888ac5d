//! One QEMU process: its output drained by reader threads, its input fed by a writer thread, killed on drop.
//!
//! QEMU must never block on output, so a thread per output pipe reads
//! continuously into a shared buffer and notes when each chunk arrived. QEMU
//! reads its standard input only while the guest UART has room, so a write
//! can block for as long as the guest does not read: writes go through a
//! writer thread, and the caller waits for them with a deadline.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::QemuConfig;
use crate::error::{tail_of, HarnessError};

/// How often the exit of a process whose output is closed is polled.
const EXIT_POLL_INTERVAL: Duration = Duration::from_millis(2);
/// How long a process whose pipes closed may take to be reaped, and its readers to finish.
const REAP_GRACE: Duration = Duration::from_secs(1);

/// Everything one pipe delivered so far.
#[derive(Debug, Default)]
pub(crate) struct Received {
    /// The bytes, in order.
    pub(crate) bytes: Vec<u8>,
    /// `(end offset, arrival time)` of every chunk, in order.
    arrivals: Vec<(usize, Instant)>,
    /// The pipe reached end of file.
    pub(crate) closed: bool,
}

impl Received {
    /// When the byte at `offset` arrived (the arrival of the chunk holding it).
    pub(crate) fn arrival_of(&self, offset: usize) -> Option<Instant> {
        let index = self.arrivals.partition_point(|&(end, _)| end <= offset);
        self.arrivals.get(index).map(|&(_, at)| at)
    }
}

/// A pipe's buffer and the signal that it changed.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    received: Mutex<Received>,
    changed: Condvar,
}

impl Stream {
    /// Locks the buffer (a reader thread that panicked leaves it usable).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Received> {
        self.received.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until the pipe is closed or `deadline` passes.
    fn wait_closed(&self, deadline: Instant) {
        let mut received = self.lock();
        while !received.closed {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            received = self.changed.wait_timeout(received, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

/// Bytes for the writer thread and where to report the result.
struct WriteRequest {
    bytes: Vec<u8>,
    done: SyncSender<std::io::Result<()>>,
}

/// A running emulator; killed and reaped on drop.
pub(crate) struct QemuProcess {
    child: Child,
    program: std::path::PathBuf,
    started_at: Instant,
    console: Arc<Stream>,
    stderr: Arc<Stream>,
    writer: Option<Sender<WriteRequest>>,
    threads: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl std::fmt::Debug for QemuProcess {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("QemuProcess")
            .field("program", &self.program)
            .field("pid", &self.child.id())
            .field("status", &self.status)
            .finish()
    }
}

/// Whether the process gets a console input pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    /// Interactive: bytes are sent with [`QemuProcess::write`].
    Piped,
    /// Batch: standard input is closed from the start.
    Closed,
}

impl QemuProcess {
    /// Starts the headless emulator described by `config`.
    pub(crate) fn spawn(config: &QemuConfig, input: Input) -> Result<QemuProcess, HarnessError> {
        if !config.kernel.is_file() {
            return Err(HarnessError::KernelMissing { path: config.kernel.clone() });
        }
        let mut command: Command = config.headless_command();
        command.stdin(match input {
            Input::Piped => Stdio::piped(),
            Input::Closed => Stdio::null(),
        });
        let started_at = Instant::now();
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| HarnessError::Spawn { program: config.qemu_program.clone(), source })?;
        let console = Arc::new(Stream::default());
        let stderr = Arc::new(Stream::default());
        let mut threads = Vec::new();
        if let Some(pipe) = child.stdout.take() {
            threads.push(spawn_reader(pipe, Arc::clone(&console)));
        }
        if let Some(pipe) = child.stderr.take() {
            threads.push(spawn_reader(pipe, Arc::clone(&stderr)));
        }
        let writer = child.stdin.take().map(|pipe| {
            let (requests, queue) = mpsc::channel();
            threads.push(spawn_writer(pipe, queue));
            requests
        });
        Ok(QemuProcess {
            child,
            program: config.qemu_program.clone(),
            started_at,
            console,
            stderr,
            writer,
            threads,
            status: None,
        })
    }

    /// The operating system's process ID.
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// When the process was spawned.
    pub(crate) fn started_at(&self) -> Instant {
        self.started_at
    }

    /// The console (QEMU's standard output).
    pub(crate) fn console(&self) -> &Stream {
        &self.console
    }

    /// QEMU's standard error.
    pub(crate) fn stderr(&self) -> &Stream {
        &self.stderr
    }

    /// Waits until `matcher` finds an end offset in the console output after `from`.
    ///
    /// `matcher` gets the bytes from `from` on and returns where the awaited
    /// text ends, relative to them. On timeout QEMU is killed.
    pub(crate) fn wait_for(
        &mut self,
        from: usize,
        waiting_for: &str,
        timeout: Duration,
        matcher: impl Fn(&[u8]) -> Option<usize>,
    ) -> Result<usize, HarnessError> {
        let deadline = Instant::now() + timeout;
        let console = Arc::clone(&self.console);
        let mut received = console.lock();
        loop {
            let start = from.min(received.bytes.len());
            if let Some(end) = matcher(&received.bytes[start..]) {
                return Ok(start + end);
            }
            if received.closed {
                drop(received);
                return Err(self.exited_error(waiting_for));
            }
            let now = Instant::now();
            if now >= deadline {
                drop(received);
                return Err(self.timeout_error(waiting_for, timeout));
            }
            received = console.changed.wait_timeout(received, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Hands `bytes` to the writer thread and waits until QEMU has taken them all.
    ///
    /// QEMU takes input only as fast as the guest reads it; if it has not taken
    /// everything within `timeout`, it is killed.
    pub(crate) fn write(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), HarnessError> {
        let waiting_for = format!("QEMU to take {} bytes of input", bytes.len());
        let (done, result) = mpsc::sync_channel(1);
        let request = WriteRequest { bytes: bytes.to_vec(), done };
        let Some(writer) = &self.writer else {
            return Err(self.exited_error(&waiting_for));
        };
        if writer.send(request).is_err() {
            return Err(self.exited_error(&waiting_for));
        }
        match result.recv_timeout(timeout) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) if source.kind() == std::io::ErrorKind::BrokenPipe => Err(self.exited_error(&waiting_for)),
            Ok(Err(source)) => Err(HarnessError::Io { action: "writing to QEMU's console", source }),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(self.timeout_error(&waiting_for, timeout)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(self.exited_error(&waiting_for)),
        }
    }

    /// Waits for the process to end by itself; kills it after `timeout`.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, HarnessError> {
        let deadline = Instant::now() + timeout;
        // A process's output closes when it exits: wait for that without polling.
        self.console.wait_closed(deadline);
        loop {
            if let Some(status) = self.try_status() {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(self.timeout_error("QEMU to exit", timeout));
            }
            std::thread::sleep(EXIT_POLL_INTERVAL);
        }
    }

    /// The exit status if the process has ended (reaping it).
    pub(crate) fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Kills and reaps the process (nothing happens if it already ended).
    pub(crate) fn kill(&mut self) {
        if self.try_status().is_none() {
            // An error here means the process is already gone; `wait` reaps it either way.
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    /// Waits (at most [`REAP_GRACE`]) for both output pipes to reach end of file.
    pub(crate) fn wait_for_end_of_output(&self) {
        let deadline = Instant::now() + REAP_GRACE;
        self.console.wait_closed(deadline);
        self.stderr.wait_closed(deadline);
    }

    /// Kills QEMU and describes the wait that ran out.
    fn timeout_error(&mut self, waiting_for: &str, waited: Duration) -> HarnessError {
        self.kill();
        HarnessError::Timeout {
            waiting_for: waiting_for.into(),
            waited,
            output_tail: tail_of(&self.console.lock().bytes),
            stderr_tail: tail_of(&self.stderr.lock().bytes),
        }
    }

    /// Describes a process that ended (or closed its pipes) while the harness waited on it.
    fn exited_error(&mut self, waiting_for: &str) -> HarnessError {
        // The pipes close a moment before the process can be reaped; one that
        // closed them and lives on is killed rather than waited for.
        let deadline = Instant::now() + REAP_GRACE;
        while self.try_status().is_none() && Instant::now() < deadline {
            std::thread::sleep(EXIT_POLL_INTERVAL);
        }
        self.kill();
        // Let the readers take what was still in the pipes.
        self.wait_for_end_of_output();
        HarnessError::Exited {
            waiting_for: waiting_for.into(),
            status: self.status.and_then(|status| status.code()),
            output_tail: tail_of(&self.console.lock().bytes),
            stderr_tail: tail_of(&self.stderr.lock().bytes),
        }
    }
}

impl Drop for QemuProcess {
    fn drop(&mut self) {
        self.kill();
        // Closing the request channel ends the writer; a write blocked on the
        // pipe fails now that QEMU is gone. The readers see end of file.
        self.writer = None;
        // A grandchild could keep a pipe open for ever: never wait on a thread without a limit.
        let deadline = Instant::now() + REAP_GRACE;
        for thread in self.threads.drain(..) {
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(EXIT_POLL_INTERVAL);
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

/// Copies everything from `pipe` into `stream` until end of file.
fn spawn_reader(mut pipe: impl Read + Send + 'static, stream: Arc<Stream>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let count = match pipe.read(&mut buffer) {
                Ok(count) => count,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            let arrived_at = Instant::now();
            let mut received = stream.lock();
            if count == 0 {
                received.closed = true;
                stream.changed.notify_all();
                return;
            }
            received.bytes.extend_from_slice(&buffer[..count]);
            let end = received.bytes.len();
            received.arrivals.push((end, arrived_at));
            stream.changed.notify_all();
        }
    })
}

/// Writes each request to `pipe`, reporting the result, until the channel closes or the pipe breaks.
fn spawn_writer(mut pipe: ChildStdin, queue: Receiver<WriteRequest>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for request in queue {
            let result = pipe.write_all(&request.bytes).and_then(|()| pipe.flush());
            let broken = result.is_err();
            // The caller may have stopped waiting (timeout); nobody to tell then.
            let _ = request.done.send(result);
            if broken {
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrival_of_finds_the_chunk_holding_an_offset() {
        let start = Instant::now();
        let first = start + Duration::from_millis(1);
        let second = start + Duration::from_millis(2);
        let received = Received { bytes: vec![0; 10], arrivals: vec![(4, first), (10, second)], closed: false };
        assert_eq!(received.arrival_of(0), Some(first));
        assert_eq!(received.arrival_of(3), Some(first));
        assert_eq!(received.arrival_of(4), Some(second));
        assert_eq!(received.arrival_of(9), Some(second));
        assert_eq!(received.arrival_of(10), None);
    }
}
