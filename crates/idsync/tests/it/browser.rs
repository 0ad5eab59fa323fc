//! A real headless Chromium driven over WebDriver (chromedriver + fantoccini), for the admin
//! console's tests. Each [`Browser`] starts its own chromedriver on a free loopback port and a
//! Chromium with a fresh profile; both end when the value drops.
//!
//! Waits poll the page with a deadline (a hang becomes a failure, never a pass). The browser's
//! console log is read from chromedriver (`goog:loggingPrefs`), so a JavaScript error anywhere
//! fails [`Browser::assert_no_errors`]. Screenshots go to `$IDSYNC_CONSOLE_SCREENSHOTS` when set
//! (scripts/console-screenshots points it at docs/console/) and to a temp folder otherwise.

// A shared harness: each test uses a subset of it.
#![allow(dead_code)]

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Long enough for a debug build on a busy 2-core machine; only turns a hang into a failure.
const WAIT: Duration = Duration::from_secs(120);

pub struct Browser {
    pub client: Client,
    driver: Child,
    driver_url: String,
    session: String,
    _profile: tempfile::TempDir,
    shots: PathBuf,
    _shots_tmp: Option<tempfile::TempDir>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a 1440×900 window (a laptop screen).
    pub async fn start() -> Browser {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(bin).exists(),
                "{bin} is missing: run scripts/ensure-test-deps (installs chromium and chromium-driver)"
            );
        }
        let port = free_port();
        // No --allowed-ips: with it chromedriver listens on every interface.
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver_url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = http.get(format!("{driver_url}/status")).send().await;
            if let Ok(r) = ready
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1440,900",
                    "--force-device-scale-factor=1",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver_url)
            .await
            .expect("a WebDriver session with headless Chromium");
        let session = client
            .session_id()
            .await
            .expect("session id")
            .expect("a session id");
        let (shots, shots_tmp) = match std::env::var_os("IDSYNC_CONSOLE_SCREENSHOTS") {
            Some(dir) => (PathBuf::from(dir), None),
            None => {
                let t = tempfile::tempdir().expect("screenshot dir");
                (t.path().to_path_buf(), Some(t))
            }
        };
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        Browser {
            client,
            driver,
            driver_url,
            session,
            _profile: profile,
            shots,
            _shots_tmp: shots_tmp,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Sets the page's hash route (`#/mappings`) without reloading it.
    pub async fn route(&self, hash: &str) {
        self.client
            .execute("location.hash = arguments[0];", vec![json!(hash)])
            .await
            .expect("set location.hash");
    }

    /// The element matching `css` once it is displayed.
    pub async fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(e) = self.client.find(Locator::Css(css)).await
                && e.is_displayed().await.unwrap_or(false)
            {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never showed; page text:\n{}",
                self.page_text().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks `css` once it is displayed. Pages re-render their tables while polling: a click
    /// that lands on an element just replaced fails without effect and is tried again on the
    /// new one.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.find(css).await.click().await {
                Ok(()) => return,
                Err(e) => assert!(Instant::now() < deadline, "clicking {css}: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        e.clear().await.expect("clear");
        e.send_keys(text).await.expect("type");
    }

    /// The text of `css` (empty when absent).
    pub async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    pub async fn page_text(&self) -> String {
        self.text("body").await
    }

    /// Runs a script in the page and returns its value.
    pub async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .expect("execute script")
    }

    /// Polls until `css`'s text satisfies `ok`; returns that text.
    pub async fn wait_text(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let t = self.text(css).await;
            if ok(&t) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never {what}: last text {t:?}; page:\n{}",
                self.page_text().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Accepts the console's confirm dialog.
    pub async fn confirm(&self) {
        self.click("#confirm-ok").await;
    }

    /// Saves a PNG of the window as `<name>.png` in the screenshot folder.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// The browser's console log since the last call (chromedriver's `se/log`).
    pub async fn log(&self) -> Vec<Value> {
        let r = reqwest::Client::new()
            .post(format!(
                "{}/session/{}/se/log",
                self.driver_url, self.session
            ))
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .expect("read the browser log");
        let v: Value = r.json().await.expect("log JSON");
        v["value"].as_array().cloned().unwrap_or_default()
    }

    /// Fails on any SEVERE entry of the browser log (JavaScript errors, failed loads) and on
    /// any error the page caught, except the entries `allowed` says are expected.
    pub async fn assert_no_errors(&self, allowed: impl Fn(&str) -> bool) {
        let severe: Vec<String> = self
            .log()
            .await
            .into_iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .filter(|m| !allowed(m))
            .collect();
        assert!(severe.is_empty(), "browser errors: {severe:#?}");
        let caught = self.eval("return window.__consoleErrors || [];").await;
        assert_eq!(caught, json!([]), "errors caught by the page");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the WebDriver session ends Chromium (a blocking request: no runtime is needed
        // in drop, even after a panic); then chromedriver is ours to stop.
        let addr = self.driver_url.trim_start_matches("http://").to_string();
        if let Ok(mut conn) = std::net::TcpStream::connect(&addr) {
            use std::io::{Read, Write};
            let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
                self.session
            );
            if conn.write_all(request.as_bytes()).is_ok() {
                let _ = conn.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
