//! A small WebDriver client (W3C WebDriver over HTTP, with the reqwest the tests already use)
//! driving Debian's headless Chromium through `chromedriver`, for the console's browser tests.
//!
//! Needs `chromium` and `chromium-driver` (`.ci/run` installs them). Each [`Browser`] starts
//! its own chromedriver on a free port and ends it on drop. Screenshots go to
//! `target/console-screenshots/` for a person to look at.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::process::free_port;

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

fn find_binary(names: &[&str]) -> String {
    for n in names {
        for dir in ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"] {
            let p = format!("{dir}/{n}");
            if std::path::Path::new(&p).exists() {
                return p;
            }
        }
    }
    panic!(
        "{} not found: install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver); .ci/run does",
        names[0]
    )
}

impl Browser {
    /// Starts chromedriver and a headless Chromium window of `width` × `height`.
    pub async fn start(width: u32, height: u32) -> Browser {
        let driver_bin = find_binary(&["chromedriver"]);
        let chromium = find_binary(&["chromium", "chromium-browser"]);
        let port = free_port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile =
            std::env::temp_dir().join(format!("usersync-chromium-{}", uuid::Uuid::new_v4()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         format!("--window-size={width},{height}"),
                         format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            http,
        };
        let v = browser
            .call(reqwest::Method::POST, "/session", Some(caps))
            .await;
        browser.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_owned();
        browser
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        match self.try_call(method.clone(), path, body).await {
            Ok(v) => v,
            Err((err, message)) => panic!("WebDriver {method} {path}: {err}: {message}"),
        }
    }

    /// A WebDriver call; `Err((error, message))` when the driver reports an error.
    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, (String, String)> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(&b);
        } else if method == reqwest::Method::POST {
            req = req.json(&json!({}));
        }
        let res = req.send().await.expect("WebDriver answers");
        let v: Value = res.json().await.expect("WebDriver JSON");
        if let Some(err) = v["value"]["error"].as_str() {
            return Err((err.to_owned(), v["value"]["message"].to_string()));
        }
        Ok(v.get("value").cloned().unwrap_or(v))
    }

    /// Finds the first element matching `css` and calls `what` on it; again while the page
    /// is still changing under it (a navigation in flight makes a found element stale).
    async fn on_element(
        &self,
        css: &str,
        method: reqwest::Method,
        what: &str,
        body: Option<Value>,
    ) -> Value {
        let mut last = None;
        for _ in 0..50 {
            if let Some(el) = self.find_all(css).await.into_iter().next() {
                let path = self.at(&format!("/element/{el}{what}"));
                match self.try_call(method.clone(), &path, body.clone()).await {
                    Ok(v) => return v,
                    Err(e) if e.0 == "stale element reference" || e.0 == "no such element" => {
                        last = Some(e)
                    }
                    Err(e) => panic!("WebDriver {what} on {css:?}: {}: {}", e.0, e.1),
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no usable element matches {css:?}: {last:?}")
    }

    fn at(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Loads a URL.
    pub async fn goto(&self, url: &str) {
        self.call(
            reqwest::Method::POST,
            &self.at("/url"),
            Some(json!({"url": url})),
        )
        .await;
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, &self.at("/url"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The page's HTML.
    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, &self.at("/source"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Every element matching a CSS selector.
    pub async fn find_all(&self, css: &str) -> Vec<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                &self.at("/elements"),
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Clicks the first element matching a CSS selector.
    pub async fn click_on(&self, css: &str) {
        self.on_element(css, reqwest::Method::POST, "/click", None)
            .await;
    }

    /// Types into an element (after clearing it).
    pub async fn type_into(&self, css: &str, text: &str) {
        self.on_element(css, reqwest::Method::POST, "/clear", None)
            .await;
        let typed = json!({ "text": text });
        self.on_element(css, reqwest::Method::POST, "/value", Some(typed))
            .await;
    }

    /// The visible text of the first element matching a CSS selector.
    pub async fn text(&self, css: &str) -> String {
        self.on_element(css, reqwest::Method::GET, "/text", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs a script in the page (async: it gets a callback as its last argument).
    pub async fn run_async(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            &self.at("/execute/async"),
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// The cookies of the page, HttpOnly ones included.
    pub async fn cookies(&self) -> Vec<Value> {
        self.call(reqwest::Method::GET, &self.at("/cookie"), None)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Sets a cookie for the current page's site.
    pub async fn add_cookie(&self, cookie: Value) {
        self.call(
            reqwest::Method::POST,
            &self.at("/cookie"),
            Some(json!({"cookie": cookie})),
        )
        .await;
    }

    /// Saves a screenshot of the window as `target/console-screenshots/NAME.png`.
    pub async fn screenshot(&self, name: &str) {
        use base64::Engine as _;
        let v = self
            .call(reqwest::Method::GET, &self.at("/screenshot"), None)
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("base64 PNG");
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Resizes the window.
    pub async fn resize(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            &self.at("/window/rect"),
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // End the session first, so chromedriver closes Chromium (a killed chromedriver
        // would leave it running); a plain blocking request, since drop cannot await.
        if !self.session.is_empty() {
            use std::io::{Read, Write};
            let addr = self.base.trim_start_matches("http://").to_owned();
            if let Ok(mut conn) = std::net::TcpStream::connect(&addr) {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = write!(
                    conn,
                    "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    self.session
                );
                let mut answer = Vec::new();
                let _ = conn.read_to_end(&mut answer);
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
