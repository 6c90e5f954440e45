//! A real browser for the console's tests: Debian's Chromium, headless,
//! driven through WebDriver (Debian's chromedriver, with the `fantoccini`
//! client). Pages are checked with axe-core (npm), the automated
//! accessibility checker, against WCAG 2.2 A and AA, and saved as
//! screenshots under `target/console-screenshots/`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

use super::process::Reaped;

/// A browser session and the driver behind it.
pub struct Browser {
    pub client: Client,
    _driver: Reaped,
    _profile: tempfile::TempDir,
}

/// The path in `variable`, or `None` (skipping loudly) outside CI.
fn tool(variable: &str) -> Option<PathBuf> {
    match std::env::var_os(variable) {
        Some(path) => Some(path.into()),
        None if std::env::var_os("CI").is_some() => {
            panic!("{variable} must be set in CI (see scripts/ensure-tools)")
        }
        None => {
            eprintln!("!!! SKIPPING a browser test: {variable} is not set (run scripts/test) !!!");
            None
        }
    }
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session;
    /// `None` when the browser is not installed (outside CI).
    pub async fn start() -> Option<Self> {
        let driver = tool("TEST_CHROMEDRIVER")?;
        let chromium = tool("TEST_CHROMIUM")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs");
        let driver = Reaped(child);
        let profile = tempfile::tempdir().expect("a browser profile");
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,1024",
                    // The test CA is not the system's: the console and the
                    // provider serve certificates only the tests trust.
                    "--ignore-certificate-errors",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let capabilities = match capabilities {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot start a Chromium session: {e}"),
            }
        };
        Some(Self {
            client,
            _driver: driver,
            _profile: profile,
        })
    }

    /// Saves a screenshot of the page as `target/console-screenshots/{name}.png`.
    pub async fn screenshot(&self, name: &str) {
        let dir = PathBuf::from("target/console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.client.screenshot().await.expect("a screenshot");
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Runs axe-core on the page against WCAG 2.0, 2.1 and 2.2 A and AA;
    /// returns each violation as `rule: help (n nodes)`. Saves a screenshot
    /// named `name` first.
    pub async fn accessibility_violations(&self, name: &str, axe: &std::path::Path) -> Vec<String> {
        self.screenshot(name).await;
        let source = std::fs::read_to_string(axe).expect("axe.min.js");
        self.client
            .execute(&source, vec![])
            .await
            .expect("axe-core loads");
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { runOnly: { type: 'tag', values:
                   ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22a', 'wcag22aa'] } })
                   .then(r => done(r.violations.map(v => v.id + ': ' + v.help + ' (' + v.nodes.length + ' nodes)')))
                   .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .expect("axe-core runs");
        result
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_else(|| vec![format!("unexpected axe result {result}")])
    }
}
