//! Responses: status, headers, body, and their serialization with `Content-Length` and `Connection`.

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::Value;

/// A response to one request.
///
/// `Content-Length` and `Connection` are written by [`Response::serialize`]; headers of those names (and
/// `Transfer-Encoding`) set by the caller are left out, so a response always frames its body one way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header fields beside the framing ones.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Close the connection after this response even if the request allowed keep-alive.
    pub close: bool,
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Response {
        Response { status, headers: Vec::new(), body: Vec::new(), close: false }
    }

    /// Adds a header; a name or value holding CR, LF or NUL is dropped, so no caller can split the response.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        let unsafe_byte = |text: &str| text.bytes().any(|byte| matches!(byte, b'\r' | b'\n' | 0));
        if !name.is_empty() && !unsafe_byte(name) && !unsafe_byte(value) {
            self.headers.push((String::from(name), String::from(value)));
        }
        self
    }

    /// Sets the body and its `Content-Type`.
    pub fn with_body(self, content_type: &str, body: Vec<u8>) -> Response {
        let mut response = self.with_header("Content-Type", content_type);
        response.body = body;
        response
    }

    /// Marks the response as the connection's last.
    pub fn closing(mut self) -> Response {
        self.close = true;
        self
    }

    /// A JSON body (`application/json`), followed by a newline as the shell prints it.
    pub fn json(status: u16, value: &Value) -> Response {
        let mut body = serde_json::to_vec(value).unwrap_or_default();
        body.push(b'\n');
        Response::new(status).with_body("application/json", body)
    }

    /// The error object every door prints: `{"error":{"code":CODE,"message":MESSAGE}}`.
    pub fn error(status: u16, code: &str, message: &str) -> Response {
        Response::json(status, &serde_json::json!({ "error": { "code": code, "message": message } }))
    }

    /// The first header named `name` (ASCII case ignored).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// The bytes on the wire: status line, headers, `Content-Length` (except for 1xx, 204 and 304), `Connection`
    /// (`keep-alive` or `close`), blank line, body.
    pub fn serialize(&self, keep_alive: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.body.len());
        push_all(&mut out, &["HTTP/1.1 ", &decimal(u64::from(self.status)), " ", reason(self.status), "\r\n"]);
        for (name, value) in &self.headers {
            let framing = ["content-length", "connection", "transfer-encoding"];
            if framing.iter().any(|framing| name.eq_ignore_ascii_case(framing)) {
                continue;
            }
            push_all(&mut out, &[name, ": ", value, "\r\n"]);
        }
        let bodiless = (100..200).contains(&self.status) || self.status == 204 || self.status == 304;
        if !bodiless {
            push_all(&mut out, &["Content-Length: ", &decimal(self.body.len() as u64), "\r\n"]);
        }
        if self.status != 101 {
            out.extend_from_slice(if keep_alive { b"Connection: keep-alive\r\n" } else { b"Connection: close\r\n" });
        }
        out.extend_from_slice(b"\r\n");
        if !bodiless {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// The reason phrase of a status code ("" for codes this server never sends).
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        _ => "",
    }
}

fn push_all(out: &mut Vec<u8>, parts: &[&str]) {
    for part in parts {
        out.extend_from_slice(part.as_bytes());
    }
}

fn decimal(value: u64) -> String {
    alloc::format!("{value}")
}
