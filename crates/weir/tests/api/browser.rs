//! A real headless Chromium, driven over WebDriver (chromedriver), for the
//! console's end-to-end tests. `scripts/install-test-deps.sh` installs
//! Debian's `chromium` and `chromium-driver`; a missing one fails the test
//! rather than skipping it, so a broken install step cannot hide.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// How long any single wait for the page may take.
const WAIT: Duration = Duration::from_secs(15);

pub struct Browser {
    pub c: Client,
    _driver: Child,
    _profile: tempfile::TempDir,
    pub downloads: PathBuf,
    pub shots: PathBuf,
    base: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// chromedriver on a free port, and its URL.
fn spawn_driver() -> (Child, String) {
    let port = free_port();
    let driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver (Debian chromium-driver; scripts/install-test-deps.sh installs it)");
    (driver, format!("http://127.0.0.1:{port}"))
}

impl Browser {
    /// Starts chromedriver and a headless Chromium on `base` (the console's
    /// origin); screenshots go to `shots`.
    pub async fn start(base: &str, shots: &Path) -> Browser {
        let (mut driver, mut url) = spawn_driver();
        let profile = tempfile::tempdir().expect("profile dir");
        let downloads = profile.path().join("downloads");
        std::fs::create_dir_all(&downloads).expect("downloads dir");
        std::fs::create_dir_all(shots).expect("screenshot dir");
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-features=Translate,OptimizationHints,MediaRouter".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", profile.path().join("chrome").display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": args,
                "prefs": {
                    "download.default_directory": downloads.to_string_lossy(),
                    "download.prompt_for_download": false,
                    "download.directory_upgrade": true,
                    "safebrowsing.enabled": false,
                },
            }),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        let c = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    // The port picked for it can be taken by another test
                    // between `free_port` and chromedriver's bind, and then
                    // chromedriver exits: start it again on another port.
                    if let Ok(Some(_)) = driver.try_wait() {
                        (driver, url) = spawn_driver();
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!(
                    "no WebDriver session from chromedriver on {url}: {e} (chromedriver: {:?})",
                    driver.try_wait()
                ),
            }
        };
        Browser {
            c,
            _driver: driver,
            _profile: profile,
            downloads,
            shots: shots.to_path_buf(),
            base: base.to_string(),
        }
    }

    pub async fn goto(&self, path: &str) {
        self.c.goto(&format!("{}{path}", self.base)).await.expect("navigate");
    }

    pub async fn path(&self) -> String {
        let u = self.c.current_url().await.expect("url");
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        }
    }

    /// The element, once it is on the page.
    pub async fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(e) = self.c.find(Locator::Css(css)).await {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no element {css:?} on {} within {WAIT:?}",
                self.path().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn exists(&self, css: &str) -> bool {
        self.c.find(Locator::Css(css)).await.is_ok()
    }

    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Replaces a text control's value.
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        e.clear().await.unwrap_or_else(|e| panic!("clear {css}: {e}"));
        if !text.is_empty() {
            e.send_keys(text)
                .await
                .unwrap_or_else(|e| panic!("type into {css}: {e}"));
        }
    }

    pub async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap_or_default()
    }

    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.c
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}"))
    }

    /// Marks the current document, so `wait_new_page` can tell when the
    /// browser has moved on to another one.
    pub async fn mark(&self) {
        self.js("document.documentElement.dataset.testOld = '1'", vec![]).await;
    }

    /// Waits until the marked document was replaced by a loaded new one.
    pub async fn wait_new_page(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self
                .c
                .execute(
                    "return document.readyState === 'complete' && !document.documentElement.dataset.testOld",
                    vec![],
                )
                .await
                .unwrap_or(Value::Bool(false));
            if v == Value::Bool(true) {
                return;
            }
            if Instant::now() >= deadline {
                let errors = self
                    .js(
                        "return Array.from(document.querySelectorAll('.err, .form-error')).map(e => e.textContent).filter(t => t).join(' | ')",
                        vec![],
                    )
                    .await;
                panic!(
                    "no new page within {WAIT:?} (still {}; flash: {:?}; errors shown: {errors})",
                    self.path().await,
                    self.flash().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks `css` and waits for the page it leads to.
    pub async fn click_to_page(&self, css: &str) {
        self.mark().await;
        self.click(css).await;
        self.wait_new_page().await;
    }

    /// Clicks a button whose action asks for confirmation, confirms in the
    /// console's dialog, and waits for the page to reload.
    pub async fn click_confirmed(&self, css: &str) {
        self.mark().await;
        self.click(css).await;
        self.click("#confirm-dialog[open] #confirm-ok").await;
        self.wait_new_page().await;
    }

    /// The page-level message (`#flash`).
    pub async fn flash(&self) -> String {
        self.c
            .execute(
                "const f = document.getElementById('flash'); return f && !f.hidden ? f.textContent : ''",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// The error message shown next to the control named `name` in `form`
    /// (once one is shown).
    pub async fn field_error(&self, form: &str, name: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self
                .js(
                    "const f = document.querySelector(arguments[0]); if (!f) return '';
                     const c = Array.from(f.querySelectorAll('[name],[data-field]')).find(e => (e.getAttribute('name') || e.dataset.field) === arguments[1]);
                     if (!c) return '';
                     const box = c.closest('.field') || c.parentElement;
                     const e = box && box.querySelector('.err');
                     return e ? e.textContent : '';",
                    vec![json!(form), json!(name)],
                )
                .await;
            let s = v.as_str().unwrap_or_default().to_string();
            if !s.is_empty() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "no error next to {name} in {form} within {WAIT:?} (form error: {:?}, flash: {:?})",
                self.js(
                    "const f = document.querySelector(arguments[0]); const e = f && f.querySelector('.form-error'); return e ? e.textContent : ''",
                    vec![json!(form)]
                )
                .await,
                self.flash().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `css`'s text, once it has some (e.g. an error slot being filled).
    pub async fn wait_text(&self, css: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let t = self.text(css).await;
            if !t.is_empty() {
                return t;
            }
            assert!(Instant::now() < deadline, "{css} stayed empty for {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Submits `form` and waits for its refusal: every error slot of the
    /// form that shows a message, as `(field, message)` (a row's control as
    /// `rules[1].ports`), and the form's general message.
    pub async fn refusal(&self, form: &str) -> (Vec<(String, String)>, String) {
        self.click(&format!("{form} [type=submit]")).await;
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self
                .js(
                    "const f = document.querySelector(arguments[0]); if (!f) return null;
                     const shown = [];
                     f.querySelectorAll('.err').forEach(e => {
                       if (!e.textContent) return;
                       const box = e.closest('.field');
                       const list = box && box.querySelector(':scope > [data-rows]');
                       const c = box && box.querySelector('[name],[data-field]');
                       let name = e.dataset.errorFor || (list ? list.dataset.rows : (c ? (c.getAttribute('name') || c.dataset.field) : '?'));
                       const rows = c && c.closest('[data-rows]');
                       if (rows && c.dataset.field) {
                         const i = Array.from(rows.querySelectorAll(':scope > .row')).indexOf(c.closest('.row'));
                         name = rows.dataset.rows + '[' + i + '].' + name;
                       }
                       shown.push([name, e.textContent]);
                     });
                     const g = f.querySelector('.form-error');
                     const general = g ? g.textContent : '';
                     return (shown.length || general) ? {shown, general} : null;",
                    vec![json!(form)],
                )
                .await;
            if let Some(o) = v.as_object() {
                let shown = o["shown"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        (
                            p[0].as_str().unwrap_or("").to_string(),
                            p[1].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect();
                return (shown, o["general"].as_str().unwrap_or("").to_string());
            }
            assert!(
                Instant::now() < deadline,
                "{form} showed no refusal within {WAIT:?} (flash: {:?}, now on {})",
                self.flash().await,
                self.path().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Reloads until `css`'s text contains `want` (bounded).
    pub async fn reload_until(&self, css: &str, want: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(e) = self.c.find(Locator::Css(css)).await
                && e.text().await.unwrap_or_default().contains(want)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never showed {want:?} within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.c.refresh().await.expect("reload");
        }
    }

    /// Saves a PNG of the whole window as `<shots>/<name>.png`.
    pub async fn shot(&self, name: &str) -> PathBuf {
        self.js("window.scrollTo(0, 0)", vec![]).await;
        let png = self.c.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let p = self.shots.join(format!("{name}.png"));
        std::fs::write(&p, png).expect("write screenshot");
        p
    }

    /// The first finished download whose name ends with `ext`.
    pub async fn download(&self, ext: &str) -> PathBuf {
        let deadline = Instant::now() + WAIT;
        loop {
            let found = std::fs::read_dir(&self.downloads)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().ends_with(ext));
            if let Some(p) = found {
                return p;
            }
            assert!(Instant::now() < deadline, "no {ext} download within {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn close(self) {
        let _ = self.c.close().await;
    }
}
