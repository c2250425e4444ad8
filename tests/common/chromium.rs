//! Headless chromium driven over WebDriver (fantoccini) for the page's
//! browser test (`tests/browser.rs`) and its speed figures
//! (`examples/page_bench.rs`, which includes this file by path): Debian's
//! chromium and chromedriver, on ephemeral loopback ports, killed on drop.
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};

/// The first of `paths` that exists.
pub fn first_existing(paths: &[&'static str]) -> Option<&'static str> {
    paths.iter().copied().find(|p| Path::new(p).exists())
}

/// chromedriver on an ephemeral loopback port, in its own process group so
/// that dropping it kills the browsers it started as well.
pub struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    pub fn start() -> Driver {
        let exe = first_existing(&[
            "/usr/bin/chromedriver",
            "/usr/lib/chromium/chromedriver",
            "/snap/bin/chromium.chromedriver",
        ])
        .expect(
            "chromedriver is missing: run `scripts/system-deps.sh` (it installs Debian's \
             chromium and chromium-driver)",
        );
        let mut child = Command::new(exe)
            .args(["--port=0", "--allowed-ips=127.0.0.1"])
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(p) = line
                    .split("on port ")
                    .nth(1)
                    .filter(|_| line.contains("started successfully"))
                {
                    let _ = tx.send(p.trim_end_matches('.').parse::<u16>().ok());
                }
            }
        });
        let mut d = Driver { child, port: 0 };
        d.port = rx
            .recv_timeout(Duration::from_secs(30))
            .ok()
            .flatten()
            .expect("chromedriver did not report its port within 30 s");
        d
    }

    /// A headless chromium session with a fresh profile in `profile`.
    pub async fn browser(&self, profile: &Path) -> Client {
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": first_existing(&["/usr/bin/chromium", "/usr/bin/chromium-browser", "/snap/bin/chromium"])
                    .expect("chromium is missing: run `scripts/system-deps.sh`"),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1360,1120",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("cannot start a chromium session through chromedriver")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's process group; no memory involved.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}
