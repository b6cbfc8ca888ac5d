//! HTTP through `curl`: requests, and for each transfer its status, headers, body and byte counts as curl saw them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{WebClient, WebError, CLIENT_TIMEOUT};

/// Printed by curl after each transfer's body: its variables, then its headers, between these markers.
const WRITE_OUT: &str = "\n@@sis-transfer@@%{json}@@sis-headers@@%{header_json}@@sis-end@@\n";
const TRANSFER_MARK: &str = "\n@@sis-transfer@@";
const HEADERS_MARK: &str = "@@sis-headers@@";
const END_MARK: &str = "@@sis-end@@\n";

/// One HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method (`GET`, `POST`, ...).
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Header lines, `Name: value`.
    pub headers: Vec<String>,
    /// Body, when there is one.
    pub body: Option<String>,
    /// A file whose bytes are the body, exactly (`--data-binary @FILE`), when there is one.
    pub body_file: Option<PathBuf>,
}

impl Request {
    /// `method path`, no header, no body.
    pub fn new(method: &str, path: &str) -> Request {
        Request { method: method.to_string(), path: path.to_string(), headers: Vec::new(), body: None, body_file: None }
    }

    /// `GET path`.
    pub fn get(path: &str) -> Request {
        Request::new("GET", path)
    }

    /// `POST /api/command` with the body `{"command": line}`.
    pub fn command(line: &str) -> Request {
        Request::new("POST", "/api/command").json(&serde_json::json!({ "command": line }))
    }

    /// Adds `Authorization: Bearer TOKEN`.
    pub fn bearer(self, token: &str) -> Request {
        self.header(&format!("Authorization: Bearer {token}"))
    }

    /// Adds a header line.
    pub fn header(mut self, line: &str) -> Request {
        self.headers.push(line.to_string());
        self
    }

    /// Sets a JSON body (and its content type).
    pub fn json(self, body: &Value) -> Request {
        self.body(&body.to_string()).header("Content-Type: application/json")
    }

    /// Sets a body as given.
    pub fn body(mut self, body: &str) -> Request {
        self.body = Some(body.to_string());
        self
    }

    /// `POST /api/models` with the bytes of `artifact` as the body (`application/octet-stream`).
    pub fn model_upload(artifact: &Path) -> Request {
        Request::new("POST", "/api/models").body_file(artifact).header("Content-Type: application/octet-stream")
    }

    /// Sends the bytes of `path` as the body, exactly as they are.
    pub fn body_file(mut self, path: &Path) -> Request {
        self.body_file = Some(path.to_path_buf());
        self
    }

    fn arguments(&self, client: &WebClient) -> Vec<String> {
        let max_time = CLIENT_TIMEOUT.as_secs().to_string();
        let mut arguments: Vec<String> =
            vec!["-s".into(), "--max-time".into(), max_time, "-w".into(), WRITE_OUT.into()];
        arguments.extend(["-X".into(), self.method.clone()]);
        for header in &self.headers {
            arguments.extend(["-H".into(), header.clone()]);
        }
        if let Some(body) = &self.body {
            arguments.extend(["--data-binary".into(), body.clone()]);
        }
        if let Some(path) = &self.body_file {
            arguments.extend(["--data-binary".into(), format!("@{}", path.display())]);
        }
        arguments.push(client.url(&self.path));
        arguments
    }
}

/// One transfer as curl saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// Status code; 0 when no response came.
    pub status: u16,
    /// Response headers, names in lower case, each with its values in order.
    pub headers: BTreeMap<String, Vec<String>>,
    /// The body as text.
    pub body: String,
    /// Bytes curl sent: request line, headers and body.
    pub request_bytes: u64,
    /// Bytes curl received: status line, headers and body.
    pub response_bytes: u64,
    /// Connections curl opened for this transfer: 0 when it reused the previous one.
    pub new_connections: u64,
    /// curl's exit code for the transfer (0: a response was read).
    pub exit_code: i64,
}

impl Transfer {
    /// The body as JSON.
    pub fn json(&self) -> Result<Value, WebError> {
        serde_json::from_str(&self.body)
            .map_err(|_| WebError::Unreadable { what: "JSON body", output: self.body.clone() })
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).and_then(|values| values.first()).map(String::as_str)
    }
}

/// Runs `requests` in one curl process (`--next` between them, so the connection is reused).
pub(super) fn run(client: &WebClient, requests: &[Request]) -> Result<Vec<Transfer>, WebError> {
    let mut arguments = Vec::new();
    for (index, request) in requests.iter().enumerate() {
        if index > 0 {
            arguments.push(String::from("--next"));
        }
        arguments.extend(request.arguments(client));
    }
    let output =
        Command::new("curl").args(&arguments).output().map_err(|source| WebError::Spawn { program: "curl", source })?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let transfers = parse(&text)?;
    if transfers.len() != requests.len() {
        return Err(WebError::Unreadable { what: "curl output (one transfer per request)", output: text });
    }
    Ok(transfers)
}

/// The transfers in curl's output (bodies, each followed by [`WRITE_OUT`]).
fn parse(text: &str) -> Result<Vec<Transfer>, WebError> {
    let unreadable = || WebError::Unreadable { what: "curl output", output: text.to_string() };
    let mut transfers = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(TRANSFER_MARK) {
        let body = &rest[..at];
        let after = &rest[at + TRANSFER_MARK.len()..];
        let (variables, after) = after.split_once(HEADERS_MARK).ok_or_else(unreadable)?;
        let (headers, after) = after.split_once(END_MARK).ok_or_else(unreadable)?;
        let variables: Value = serde_json::from_str(variables).map_err(|_| unreadable())?;
        // With no response there are no headers, and curl prints nothing or an empty object.
        let headers: BTreeMap<String, Vec<String>> = if headers.trim().is_empty() {
            BTreeMap::new()
        } else {
            serde_json::from_str(headers).map_err(|_| unreadable())?
        };
        let number = |key: &str| variables[key].as_u64().ok_or_else(unreadable);
        transfers.push(Transfer {
            status: u16::try_from(number("http_code")?).map_err(|_| unreadable())?,
            headers,
            body: body.to_string(),
            request_bytes: number("size_request")? + number("size_upload")?,
            response_bytes: number("size_header")? + number("size_download")?,
            new_connections: number("num_connects")?,
            exit_code: variables["exitcode"].as_i64().ok_or_else(unreadable)?,
        });
        rest = after;
    }
    if !rest.is_empty() {
        return Err(unreadable());
    }
    Ok(transfers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_output_splits_into_transfers_with_their_counts() {
        let text = "{\"a\":1}\n@@sis-transfer@@{\"http_code\":200,\"size_request\":178,\"size_upload\":0,\"size_header\":97,\
             \"size_download\":8,\"num_connects\":1,\"exitcode\":0}@@sis-headers@@{\"content-type\":[\"application/json\"],\n\
             \"connection\":[\"keep-alive\"]\n}@@sis-end@@\n\
             \n@@sis-transfer@@{\"http_code\":0,\"size_request\":0,\"size_upload\":0,\"size_header\":0,\"size_download\":0,\
             \"num_connects\":0,\"exitcode\":56}@@sis-headers@@@@sis-end@@\n";
        let transfers = parse(text).unwrap();
        assert_eq!(transfers.len(), 2);
        assert_eq!((transfers[0].status, transfers[0].body.as_str()), (200, "{\"a\":1}"));
        assert_eq!(
            (transfers[0].request_bytes, transfers[0].response_bytes, transfers[0].new_connections),
            (178, 105, 1)
        );
        assert_eq!(transfers[0].header("Content-Type"), Some("application/json"));
        assert_eq!((transfers[1].status, transfers[1].exit_code, transfers[1].headers.len()), (0, 56, 0));
        assert!(parse("trailing junk").is_err());
    }
}
