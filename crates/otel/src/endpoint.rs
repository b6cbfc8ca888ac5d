//! Where an OTLP/HTTP export goes: `http://A.B.C.D[:PORT]/v1/traces` or `/v1/metrics`, parsed strictly.
//!
//! The kernel has no DNS resolver and no TLS, so a host must be an IPv4 address and the scheme `http`; anything
//! else is refused with its own error rather than half-understood. The path names the signal, as OTLP/HTTP's
//! default paths do.

use alloc::string::String;
use core::fmt;

/// What an endpoint receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// Spans, `POST /v1/traces` (`ExportTraceServiceRequest`).
    Traces,
    /// Metrics, `POST /v1/metrics` (`ExportMetricsServiceRequest`).
    Metrics,
}

impl Signal {
    /// Its name: `traces` or `metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
        }
    }

    /// Its OTLP/HTTP path.
    pub fn path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
        }
    }
}

/// A parsed export URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// The collector's IPv4 address.
    pub address: [u8; 4],
    /// Its TCP port.
    pub port: u16,
    /// What is posted there.
    pub signal: Signal,
}

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    /// It does not start with `http://` (`https` included: there is no TLS).
    Scheme,
    /// It has user information (`user@`), a query or a fragment.
    Extra,
    /// The host is not a dotted-quad IPv4 address (there is no DNS resolver).
    Host(String),
    /// The address is one nothing can be sent to: 0.0.0.0, broadcast, multicast.
    Unaddressable([u8; 4]),
    /// The port is not a number in 1..=65535.
    Port(String),
    /// The path is not `/v1/traces` or `/v1/metrics`.
    Path(String),
}

impl UrlError {
    /// A stable code for `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            UrlError::Scheme => "unsupported-scheme",
            UrlError::Extra => "bad-url",
            UrlError::Host(_) => "host-not-ipv4",
            UrlError::Unaddressable(_) => "unaddressable",
            UrlError::Port(_) => "bad-port",
            UrlError::Path(_) => "bad-path",
        }
    }
}

impl fmt::Display for UrlError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::Scheme => formatter.write_str("the URL must start with http:// (there is no TLS)"),
            UrlError::Extra => formatter.write_str("the URL may not hold user information, a query or a fragment"),
            UrlError::Host(host) => write!(
                formatter,
                "host `{host}` is not an IPv4 address (there is no DNS resolver; QEMU's host is 10.0.2.2)"
            ),
            UrlError::Unaddressable([a, b, c, d]) => write!(formatter, "{a}.{b}.{c}.{d} cannot be sent to"),
            UrlError::Port(port) => write!(formatter, "port `{port}` is not a number in 1..=65535"),
            UrlError::Path(path) => write!(formatter, "path `{path}` is neither /v1/traces nor /v1/metrics"),
        }
    }
}

impl Endpoint {
    /// Parses `http://A.B.C.D[:PORT]/v1/traces|metrics` (port 80 when absent).
    pub fn parse(url: &str) -> Result<Endpoint, UrlError> {
        let rest = url.strip_prefix("http://").ok_or(UrlError::Scheme)?;
        if rest.contains(['@', '?', '#']) {
            return Err(UrlError::Extra);
        }
        let (authority, path) = rest.find('/').map_or((rest, ""), |slash| rest.split_at(slash));
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        let address = parse_ipv4(host).ok_or_else(|| UrlError::Host(String::from(host)))?;
        let [first, ..] = address;
        if address == [0; 4] || address == [255; 4] || (224..=239).contains(&first) {
            return Err(UrlError::Unaddressable(address));
        }
        let port = match port {
            None => 80,
            Some(text) => parse_decimal(text)
                .and_then(|port| u16::try_from(port).ok())
                .filter(|port| *port != 0)
                .ok_or_else(|| UrlError::Port(String::from(text)))?,
        };
        let signal = match path {
            "/v1/traces" => Signal::Traces,
            "/v1/metrics" => Signal::Metrics,
            other => return Err(UrlError::Path(String::from(other))),
        };
        Ok(Endpoint { address, port, signal })
    }

    /// The `Host` header's value: `A.B.C.D:PORT`.
    pub fn host_header(&self) -> String {
        let [a, b, c, d] = self.address;
        alloc::format!("{a}.{b}.{c}.{d}:{}", self.port)
    }

    /// The URL it was parsed from, in its canonical form.
    pub fn url(&self) -> String {
        alloc::format!("http://{}{}", self.host_header(), self.signal.path())
    }
}

/// Decimal digits only (no sign, no spaces), at most 5 of them.
fn parse_decimal(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Four decimal octets 0..=255, no leading zeros beyond a lone `0`.
fn parse_ipv4(text: &str) -> Option<[u8; 4]> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.len() > 1 && part.starts_with('0') {
            return None;
        }
        *octet = u8::try_from(parse_decimal(part)?).ok()?;
    }
    parts.next().is_none().then_some(octets)
}

#[cfg(test)]
mod tests;
