//! A parsed HTTP request: method, target split into path and query, owned headers, body.

use alloc::string::String;
use alloc::vec::Vec;

/// Request methods this server knows (RFC 9110 section 9); any other token is answered 501.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
    /// `PATCH`
    Patch,
    /// `TRACE`
    Trace,
    /// `CONNECT`
    Connect,
}

impl Method {
    /// The method named by `token` (case-sensitive, as RFC 9110 says), or `None` for an unknown one.
    pub fn parse(token: &str) -> Option<Method> {
        Some(match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "PATCH" => Method::Patch,
            "TRACE" => Method::Trace,
            "CONNECT" => Method::Connect,
            _ => return None,
        })
    }

    /// The method's token.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Patch => "PATCH",
            Method::Trace => "TRACE",
            Method::Connect => "CONNECT",
        }
    }
}

/// HTTP versions accepted; anything else is answered 505.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: the connection closes after the response unless the request asked `Connection: keep-alive`.
    Http10,
    /// HTTP/1.1: keep-alive unless the request said `Connection: close`.
    Http11,
}

/// A complete request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path of the target, before any `?`, as sent (not percent-decoded).
    pub path: String,
    /// The query after `?`, as sent, or `None` without a `?`.
    pub query: Option<String>,
    /// The version of the request line.
    pub version: Version,
    /// Header fields in arrival order; names as sent (compare them with [`Request::header`], which ignores case).
    pub headers: Vec<(String, String)>,
    /// The body, after chunked decoding; empty without one.
    pub body: Vec<u8>,
    /// Whether the connection stays open after the response (version and `Connection` header).
    pub keep_alive: bool,
}

impl Request {
    /// The value of the first header named `name` (ASCII case ignored).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// Whether a comma-separated header (such as `Connection`) lists `token` (ASCII case ignored).
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .flat_map(|(_, value)| value.split(','))
            .any(|item| item.trim().eq_ignore_ascii_case(token))
    }

    /// The percent-decoded value of query parameter `name`, the first if repeated; `None` when absent or when
    /// its escapes do not decode to UTF-8.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let query = self.query.as_deref()?;
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key)? == name).then(|| percent_decode(value)).flatten()
        })
    }

    /// Whether this asks for a WebSocket upgrade (`Upgrade: websocket` and `Connection: upgrade`).
    pub fn is_websocket_upgrade(&self) -> bool {
        self.header_has_token("upgrade", "websocket") && self.header_has_token("connection", "upgrade")
    }
}

/// Decodes `%XX` escapes and `+` (as space); `None` for a broken escape or bytes that are not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' => {
                let high = hex_value(*bytes.get(index + 1)?)?;
                let low = hex_value(*bytes.get(index + 2)?)?;
                out.push(high << 4 | low);
                index += 3;
            }
            b'+' => {
                out.push(b' ');
                index += 1;
            }
            byte => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}
