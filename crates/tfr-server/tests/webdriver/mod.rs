//! A small WebDriver client for the browser tests: headless Chromium through Debian's
//! `chromedriver`, spoken to over HTTP with reqwest (the W3C protocol, plus chromedriver's
//! browser log and DevTools endpoints). Enough for tests, nothing more.
//!
//! [`Browser::start`] finds `chromium` and `chromedriver` (or the paths in `TFR_CHROMIUM` and
//! `TFR_CHROMEDRIVER`), starts chromedriver on a free loopback port in its own process group
//! and opens a session. Dropping the [`Browser`] ends the session and kills that process group
//! (chromedriver and the Chromium it started), so nothing outlives a test, even a failed one.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// The W3C name of an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The browser tools, if installed.
pub struct Tools {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

/// Finds Chromium and chromedriver. Without them the tests are skipped, except under CI
/// (`CI` set), where a missing browser must fail the run rather than pass it silently.
pub fn tools_or_skip() -> Option<Tools> {
    let chromium = match std::env::var_os("TFR_CHROMIUM") {
        Some(path) => Some(PathBuf::from(path)).filter(|path| is_executable(path)),
        None => find_program(&["chromium", "chromium-browser", "google-chrome"]),
    };
    let chromedriver = match std::env::var_os("TFR_CHROMEDRIVER") {
        Some(path) => Some(PathBuf::from(path)).filter(|path| is_executable(path)),
        None => find_program(&["chromedriver"]),
    };
    match (chromium, chromedriver) {
        (Some(chromium), Some(chromedriver)) => Some(Tools {
            chromium,
            chromedriver,
        }),
        _ if in_ci() => panic!(
            "CI is set but chromium/chromedriver are not installed \
             (apt-get install chromium chromium-driver, or set TFR_CHROMIUM and TFR_CHROMEDRIVER)"
        ),
        _ => {
            eprintln!("skipped: chromium/chromedriver not installed");
            None
        }
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !value.is_empty() && value != "false" && value != "0")
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if is_executable(&candidate) {
                return Some(candidate);
            }
        }
    }
    None
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Options of a browser session.
#[derive(Clone, Debug)]
pub struct Options {
    /// The window's size in CSS pixels.
    pub width: u32,
    pub height: u32,
    /// The IANA time zone the page sees.
    pub time_zone: &'static str,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            width: 1280,
            height: 900,
            time_zone: "UTC",
        }
    }
}

/// An element of the page, by its WebDriver reference.
#[derive(Clone, Debug)]
pub struct Element(String);

impl Element {
    fn json(&self) -> Value {
        json!({ ELEMENT_KEY: self.0 })
    }
}

/// One chromedriver process and one browser session on it.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
    closed: bool,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session.
    pub async fn start(tools: &Tools, options: &Options) -> Browser {
        let profile = tempfile::tempdir().expect("profile directory");
        let port = free_port();
        let driver = Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .env("TZ", options.time_zone)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so Drop can end chromedriver and its Chromium together.
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            http,
            _profile: profile,
            closed: false,
        };
        browser.wait_ready().await;
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--hide-scrollbars".to_owned(),
            "--lang=en-US".to_owned(),
            format!("--window-size={},{}", options.width, options.height),
            format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "timeouts": { "implicit": 0, "pageLoad": 30_000, "script": 30_000 },
                    "goog:chromeOptions": {
                        "binary": tools.chromium.display().to_string(),
                        "args": args,
                    },
                    "goog:loggingPrefs": { "browser": "ALL" },
                }
            }
        });
        let answer = browser
            .raw(
                reqwest::Method::POST,
                &format!("http://127.0.0.1:{port}/session"),
                Some(capabilities),
            )
            .await
            .unwrap_or_else(|error| panic!("new WebDriver session: {error}"));
        browser.session = answer["sessionId"].as_str().expect("session id").to_owned();
        browser
            .set_viewport(options.width, options.height, 1.0)
            .await;
        browser
            .cdp(
                "Emulation.setTimezoneOverride",
                json!({ "timezoneId": options.time_zone }),
            )
            .await;
        browser
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = format!("http://127.0.0.1:{}/status", self.port);
        loop {
            if let Ok(response) = self.http.get(&url).send().await
                && let Ok(body) = response.json::<Value>().await
                && body["value"]["ready"] == json!(true)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends one command; the answer's `value`, or the WebDriver error as text.
    async fn raw(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut request = self.http.request(method.clone(), url);
        if let Some(body) = body {
            request = request.json(&body);
        } else if method == reqwest::Method::POST {
            request = request.json(&json!({}));
        }
        let response = request
            .send()
            .await
            .map_err(|error| format!("{method} {url}: {error}"))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|error| format!("{method} {url}: {error}"))?;
        let value = body.get("value").cloned().unwrap_or(Value::Null);
        if status.is_success() {
            Ok(value)
        } else {
            Err(format!(
                "{method} {url}: {status} {}: {}",
                value["error"].as_str().unwrap_or("?"),
                value["message"].as_str().unwrap_or("?")
            ))
        }
    }

    /// A command of this session; panics with the WebDriver error.
    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!(
            "http://127.0.0.1:{}/session/{}{path}",
            self.port, self.session
        );
        self.raw(method, &url, body)
            .await
            .unwrap_or_else(|error| panic!("{error}"))
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.command(reqwest::Method::GET, path, None).await
    }

    /// Navigates to `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn current_url(&self) -> String {
        self.get("/url")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs `script` (a function body: `return ...`) in the page, with `arguments`.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// Runs `script` with no arguments; shorthand for the common case.
    pub async fn eval(&self, script: &str) -> Value {
        self.js(script, Vec::new()).await
    }

    /// Polls `script` until it returns something truthy; returns that value.
    pub async fn wait_for(&self, what: &str, script: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.eval(script).await;
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first element matching a CSS selector.
    pub async fn find(&self, css: &str) -> Element {
        let value = self
            .post("/element", json!({ "using": "css selector", "value": css }))
            .await;
        match value[ELEMENT_KEY].as_str() {
            Some(reference) => Element(reference.to_owned()),
            None => panic!("find {css}: no element reference in {value}"),
        }
    }

    pub async fn click(&self, element: &Element) {
        self.post(&format!("/element/{}/click", element.0), json!({}))
            .await;
    }

    /// Types `text` into the element (WebDriver key codes allowed, e.g. [`ENTER`]).
    pub async fn type_into(&self, element: &Element, text: &str) {
        self.post(
            &format!("/element/{}/value", element.0),
            json!({ "text": text }),
        )
        .await;
    }

    pub async fn clear(&self, element: &Element) {
        self.post(&format!("/element/{}/clear", element.0), json!({}))
            .await;
    }

    /// Presses and releases one key on whatever has the focus.
    pub async fn press(&self, key: &str) {
        self.post(
            "/actions",
            json!({ "actions": [{
                "type": "key",
                "id": "keyboard",
                "actions": [{ "type": "keyDown", "value": key }, { "type": "keyUp", "value": key }],
            }]}),
        )
        .await;
        self.command(reqwest::Method::DELETE, "/actions", None)
            .await;
    }

    /// Runs a Chrome DevTools Protocol command through chromedriver.
    pub async fn cdp(&self, command: &str, params: Value) -> Value {
        self.post(
            "/goog/cdp/execute",
            json!({ "cmd": command, "params": params }),
        )
        .await
    }

    /// Emulates a viewport of `width` × `height` CSS pixels at `scale` device pixels each
    /// (a phone is narrow and dense; its layout viewport is `width`).
    pub async fn set_viewport(&self, width: u32, height: u32, scale: f64) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({
                "width": width, "height": height, "deviceScaleFactor": scale,
                "mobile": width < 600,
            }),
        )
        .await;
    }

    /// Emulates the system's colour scheme (`light` or `dark`).
    pub async fn set_color_scheme(&self, scheme: &str) {
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
        )
        .await;
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let value = self.get("/screenshot").await;
        base64::engine::general_purpose::STANDARD
            .decode(value.as_str().expect("base64 screenshot"))
            .expect("screenshot is base64")
    }

    /// A PNG of the page from its top, `height` CSS pixels high at most (beyond the viewport).
    pub async fn screenshot_page(&self, height: u32) -> Vec<u8> {
        let metrics = self
            .eval("return [document.documentElement.clientWidth, document.documentElement.scrollHeight];")
            .await;
        let width = metrics[0].as_f64().unwrap_or(1.0);
        let page_height = metrics[1].as_f64().unwrap_or(1.0).min(f64::from(height));
        let value = self
            .cdp(
                "Page.captureScreenshot",
                json!({
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": { "x": 0, "y": 0, "width": width, "height": page_height, "scale": 1 },
                }),
            )
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(value["data"].as_str().expect("base64 screenshot"))
            .expect("screenshot is base64")
    }

    /// The browser console's entries since the last call (chromedriver's log endpoint).
    pub async fn console(&self) -> Vec<Value> {
        self.post("/se/log", json!({ "type": "browser" }))
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Ends the session (Chromium quits); chromedriver is killed on drop.
    pub async fn close(mut self) {
        let _ = self
            .raw(
                reqwest::Method::DELETE,
                &format!("http://127.0.0.1:{}/session/{}", self.port, self.session),
                None,
            )
            .await;
        self.closed = true;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.closed && !self.session.is_empty() {
            // A blocking DELETE: Drop may run outside any runtime (a panicking test).
            delete_session(self.port, &self.session);
        }
        // chromedriver and every process it started share the group we gave it.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn delete_session(port: u16, session: &str) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        // The answer comes once Chromium has quit; its first bytes are enough.
        let mut answer = [0u8; 512];
        let _ = stream.read(&mut answer);
    }
}

/// A port free on the loopback interface at the time of asking.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// WebDriver key codes.
pub const ENTER: &str = "\u{E007}";
pub const TAB: &str = "\u{E004}";
