//! A W3C WebDriver client over the HTTP client the daemon already uses (reqwest), driving Debian's chromedriver.
//!
//! The test needs ten endpoints (session, navigate, find, click, clear, type, execute sync and async, element
//! screenshot, delete). The
//! maintained Rust client (fantoccini) would bring about 35 more crates into the lock (a second `http`, ICU
//! segmentation through the `webdriver` crate) for the same ten requests, so they are written out here.

use std::time::Duration;

use serde_json::{json, Value};

/// The W3C name of an element reference in a JSON value.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A WebDriver session.
pub struct Session {
    http: reqwest::Client,
    base: String,
}

/// An element of the page, by its WebDriver reference.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Session {
    /// Opens a session on the WebDriver server at `driver` (`http://127.0.0.1:PORT`) with `capabilities`.
    pub async fn new(driver: &str, capabilities: Value) -> Result<Session, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|error| format!("HTTP client: {error}"))?;
        let reply = send(
            &http,
            reqwest::Method::POST,
            &format!("{driver}/session"),
            Some(json!({
                "capabilities": { "alwaysMatch": capabilities }
            })),
        )
        .await?;
        let id = reply["sessionId"].as_str().ok_or_else(|| format!("no sessionId in {reply}"))?;
        Ok(Session { http, base: format!("{driver}/session/{id}") })
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        send(&self.http, reqwest::Method::POST, &format!("{}{path}", self.base), Some(body)).await
    }

    /// Loads `url`.
    pub async fn goto(&self, url: &str) -> Result<(), String> {
        self.post("/url", json!({ "url": url })).await.map(drop)
    }

    /// The first element matching the CSS `selector`.
    pub async fn find(&self, selector: &str) -> Result<Element, String> {
        self.find_by("css selector", selector).await
    }

    /// The first element matching the XPath `path`.
    pub async fn find_xpath(&self, path: &str) -> Result<Element, String> {
        self.find_by("xpath", path).await
    }

    async fn find_by(&self, using: &str, value: &str) -> Result<Element, String> {
        let reply = self.post("/element", json!({ "using": using, "value": value })).await?;
        reply[ELEMENT_KEY].as_str().map(|id| Element(id.to_string())).ok_or_else(|| format!("{value}: {reply}"))
    }

    /// Clicks `element` as a user would (scrolled into view, at its centre).
    pub async fn click(&self, element: &Element) -> Result<(), String> {
        self.post(&format!("/element/{}/click", element.0), json!({})).await.map(drop)
    }

    /// Empties the input `element`, then types `text` into it.
    pub async fn type_into(&self, element: &Element, text: &str) -> Result<(), String> {
        self.post(&format!("/element/{}/clear", element.0), json!({})).await?;
        self.post(&format!("/element/{}/value", element.0), json!({ "text": text })).await.map(drop)
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page and returns its value.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value, String> {
        self.post("/execute/sync", json!({ "script": script, "args": args })).await
    }

    /// Runs `script`, whose last argument is the callback it calls with its value.
    pub async fn execute_async(&self, script: &str, args: Vec<Value>) -> Result<Value, String> {
        self.post("/execute/async", json!({ "script": script, "args": args })).await
    }

    /// A PNG of `element` (as much of it as the window shows).
    pub async fn screenshot(&self, element: &Element) -> Result<Vec<u8>, String> {
        let url = format!("{}/element/{}/screenshot", self.base, element.0);
        let reply = send(&self.http, reqwest::Method::GET, &url, None).await?;
        let text = reply.as_str().ok_or("the screenshot is not a string")?;
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text)
            .map_err(|error| format!("screenshot: {error}"))
    }

    /// Ends the session (the browser stays: the test owns its process).
    pub async fn close(self) -> Result<(), String> {
        send(&self.http, reqwest::Method::DELETE, &self.base, None).await.map(drop)
    }
}

/// One WebDriver request; the reply's `value`, or the driver's error and message.
async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let mut request = http.request(method.clone(), url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.map_err(|error| format!("{method} {url}: {error}"))?;
    let status = response.status();
    let mut reply: Value = response.json().await.map_err(|error| format!("{method} {url}: {status}: {error}"))?;
    let value = reply["value"].take();
    if status.is_success() {
        Ok(value)
    } else {
        Err(format!("{method} {url}: {status}: {}: {}", value["error"], value["message"]))
    }
}
