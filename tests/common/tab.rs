//! A test's session in the page: a headless chromium (through
//! [`super::chromium::Driver`]) bounded in time, and the steps the browser
//! tests take in it (click, pick, evaluate, wait for a view, screenshot).
//! `tests/browser.rs` (a trained model) and `tests/page.rs` (indexes built
//! from vectors) share them.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::{json, Value};

use super::chromium::Driver;

/// The whole browser session must finish within this.
pub const SESSION_LIMIT: Duration = Duration::from_secs(300);

/// Runs `session` in a fresh headless chromium (its own profile), bounded
/// by [`SESSION_LIMIT`], and closes the browser after it.
pub fn in_browser(session: impl std::ops::AsyncFnOnce(&Client)) {
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(SESSION_LIMIT, async {
            let c = driver.browser(profile.path()).await;
            session(&c).await;
            c.close().await.unwrap();
        })
        .await
        .expect("the browser session took longer than its limit");
    });
}

pub fn shots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
}

/// Clicks the element `css` finds.
pub async fn click(c: &Client, css: &str) {
    let e = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    e.click().await.unwrap();
}

/// Picks `value` in the `<select>` `css` finds.
pub async fn select(c: &Client, css: &str, value: &str) {
    let e = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    e.select_by_value(value).await.unwrap();
}

/// Evaluates a JavaScript expression.
pub async fn js(c: &Client, expr: &str) -> Value {
    c.execute(&format!("return ({expr});"), vec![])
        .await
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
}

/// Waits until `expr` is true (30 s), else saves a screenshot and fails.
pub async fn wait(c: &Client, expr: &str, what: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if js(c, &format!("!!({expr})")).await == json!(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shot(c, "timeout").await;
    let err = js(c, "document.getElementById('error').textContent").await;
    panic!(
        "timed out waiting for {what} ({expr}); page error: {err}; see target/browser/timeout.png"
    );
}

/// The result cards: id, class and distance, in order.
pub async fn cards(c: &Client, grid: &str) -> Vec<(String, String, f64)> {
    let v = js(
        c,
        &format!(
            "[...document.querySelectorAll('{grid} .card')].map(e => [e.dataset.id, e.dataset.class, parseFloat(e.dataset.distance)])"
        ),
    )
    .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x[0].as_str().unwrap().to_string(),
                x[1].as_str().unwrap().to_string(),
                x[2].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect()
}

pub const VIEW_READY: &str = "document.getElementById('view').dataset.view === '{v}' && document.getElementById('view').dataset.ready";

pub fn view_is(v: &str) -> String {
    VIEW_READY.replace("{v}", v)
}

/// Before a click, Back or link that changes the route: the view on screen
/// stops counting as drawn, so the next `view_is` waits for the new one.
/// (The page clears the mark itself when its route starts, but the
/// `hashchange` that starts it may run after the click has returned.)
pub async fn leaving(c: &Client) {
    js(c, "delete document.getElementById('view').dataset.ready").await;
}
