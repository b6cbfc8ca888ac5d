//! The HTTP side of `cargo xtask bench web`: a closed-loop keep-alive load generator (one thread and one
//! connection per concurrent client) and the host peer, a minimal HTTP/1.1 server answering the same bytes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Longest wait for one response before a run fails.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// One measurement of one server at one concurrency.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    /// Responses completed within the window.
    pub requests: u64,
    /// Responses per second over the window.
    pub requests_per_s: f64,
    /// Request latency (write of the request to the last byte of the response), µs.
    pub p50_us: f64,
    /// See [`Figures::p50_us`].
    pub p99_us: f64,
}

/// Opens a keep-alive connection with `TCP_NODELAY` and a read timeout.
pub fn connect(address: SocketAddr) -> Result<TcpStream, String> {
    let stream =
        TcpStream::connect_timeout(&address, Duration::from_secs(5)).map_err(|error| format!("{address}: {error}"))?;
    stream.set_nodelay(true).map_err(|error| error.to_string())?;
    stream.set_read_timeout(Some(RESPONSE_TIMEOUT)).map_err(|error| error.to_string())?;
    Ok(stream)
}

/// Reads one response with a `Content-Length` body (the only framing both servers use) into `buffer`, head and
/// body as received; returns its status and where its body starts.
pub fn read_response(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Result<(u16, usize), String> {
    buffer.clear();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut parsed = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head_bytes) =
            parsed.parse(buffer).map_err(|error| format!("a response that does not parse: {error}"))?
        {
            let status = parsed.code.ok_or("a response without a status")?;
            let length = parsed
                .headers
                .iter()
                .find(|header| header.name.eq_ignore_ascii_case("content-length"))
                .and_then(|header| std::str::from_utf8(header.value).ok()?.trim().parse::<usize>().ok())
                .ok_or("a response without Content-Length")?;
            while buffer.len() < head_bytes + length {
                let count = stream.read(&mut chunk).map_err(|error| read_error(&error, buffer.len()))?;
                if count == 0 {
                    return Err("the server closed the connection within a response body".into());
                }
                buffer.extend_from_slice(&chunk[..count]);
            }
            if buffer.len() > head_bytes + length {
                return Err("bytes after the response: only one request is ever in flight".into());
            }
            return Ok((status, head_bytes));
        }
        let count = stream.read(&mut chunk).map_err(|error| read_error(&error, buffer.len()))?;
        if count == 0 {
            return Err("the server closed the connection before a response".into());
        }
        buffer.extend_from_slice(&chunk[..count]);
    }
}

fn read_error(error: &std::io::Error, received: usize) -> String {
    if matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) {
        format!("no response within {RESPONSE_TIMEOUT:?} ({received} bytes of it received)")
    } else {
        format!("reading a response: {error} ({received} bytes of it received)")
    }
}

/// `connections` clients, each on its own keep-alive connection, send `request` and wait for its 200 again and
/// again: for `warmup` unmeasured, then for `window`. Every response must be a 200 with a JSON object body.
pub fn measure(
    address: SocketAddr,
    request: &[u8],
    connections: usize,
    warmup: Duration,
    window: Duration,
) -> Result<Figures, String> {
    // Opened one at a time, each answered once before the next: QEMU's user network forwards connections from a
    // listen backlog of one, and with three or more connects in flight the host kernel completes some with SYN
    // cookies and then drops their last ACK (its accept queue full), leaving a client whose connection never
    // reaches the guest.
    let mut streams = Vec::with_capacity(connections);
    let mut buffer = Vec::new();
    for _ in 0..connections {
        let mut stream = connect(address)?;
        stream.write_all(request).map_err(|error| format!("{address}: {error}"))?;
        let (status, _) = read_response(&mut stream, &mut buffer).map_err(|error| format!("{address}: {error}"))?;
        if status != 200 {
            return Err(format!("{address}: the first request on a connection answered {status}"));
        }
        streams.push(stream);
    }
    let start = Barrier::new(connections);
    let results: Vec<Result<(u64, Vec<u64>), String>> = std::thread::scope(|scope| {
        let clients: Vec<_> = streams
            .into_iter()
            .map(|mut stream| {
                let start = &start;
                scope.spawn(move || {
                    let mut buffer = Vec::with_capacity(16 * 1024);
                    start.wait();
                    let began = Instant::now();
                    let (measure_from, end) = (began + warmup, began + warmup + window);
                    let mut completed = 0u64;
                    let mut latencies_ns = Vec::new();
                    loop {
                        let sent = Instant::now();
                        if sent >= end {
                            break;
                        }
                        stream.write_all(request).map_err(|error| format!("{address}: {error}"))?;
                        let (status, body_start) = read_response(&mut stream, &mut buffer).map_err(|error| {
                            format!(
                                "{address}, {:?} into the run, after {completed} responses: {error}",
                                began.elapsed()
                            )
                        })?;
                        let done = Instant::now();
                        let body = &buffer[body_start..];
                        if status != 200 || body.first() != Some(&b'{') {
                            return Err(format!(
                                "{address}: status {status} body {:?}",
                                String::from_utf8_lossy(&body[..body.len().min(200)])
                            ));
                        }
                        if sent >= measure_from && done <= end {
                            completed += 1;
                            latencies_ns.push((done - sent).as_nanos() as u64);
                        }
                    }
                    Ok((completed, latencies_ns))
                })
            })
            .collect();
        clients.into_iter().map(|client| client.join().unwrap_or_else(|_| Err("a client panicked".into()))).collect()
    });
    let mut requests = 0;
    let mut latencies_ns = Vec::new();
    for result in results {
        let (completed, latencies) = result?;
        requests += completed;
        latencies_ns.extend(latencies);
    }
    if latencies_ns.is_empty() {
        return Err(format!("{address}: no response completed in the {window:?} window"));
    }
    latencies_ns.sort_unstable();
    Ok(Figures {
        requests,
        requests_per_s: requests as f64 / window.as_secs_f64(),
        p50_us: percentile(&latencies_ns, 0.50) / 1e3,
        p99_us: percentile(&latencies_ns, 0.99) / 1e3,
    })
}

/// The value at `fraction` of sorted `values` (nearest rank).
pub fn percentile(sorted: &[u64], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index] as f64
}

/// The host peer: an HTTP/1.1 server on 127.0.0.1 (OS-picked port), one thread per connection for the life of
/// the process, answering every `GET /api/metrics` that carries `Authorization: Bearer TOKEN` with `response`
/// (the exact bytes SIS sent, head and body) and anything else with 404 or 401. Requests are parsed with
/// httparse, as SIS parses them.
pub fn spawn_host_server(response: Vec<u8>, token: &str) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|error| error.to_string())?;
    let address = listener.local_addr().map_err(|error| error.to_string())?;
    let authorization = format!("Bearer {token}");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (response, authorization) = (response.clone(), authorization.clone());
            std::thread::spawn(move || serve_host_connection(stream, &response, &authorization));
        }
    });
    Ok(address)
}

fn serve_host_connection(mut stream: TcpStream, response: &[u8], authorization: &str) {
    let _ = stream.set_nodelay(true);
    let mut received = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&received) {
            Ok(httparse::Status::Complete(head_bytes)) => {
                let authorized = request.headers.iter().any(|header| {
                    header.name.eq_ignore_ascii_case("authorization") && header.value == authorization.as_bytes()
                });
                let answer: &[u8] = match (request.method, request.path, authorized) {
                    (Some("GET"), Some("/api/metrics"), true) => response,
                    (Some("GET"), Some("/api/metrics"), false) => {
                        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
                    }
                    _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n",
                };
                if stream.write_all(answer).is_err() {
                    return;
                }
                received.drain(..head_bytes);
            }
            Ok(httparse::Status::Partial) => match stream.read(&mut chunk) {
                Ok(count) if count > 0 => received.extend_from_slice(&chunk[..count]),
                _ => return,
            },
            Err(_) => return,
        }
    }
}
