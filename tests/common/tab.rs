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

/// A phone's width in CSS pixels (an iPhone 12 to 15).
pub const PHONE_WIDTH: u32 = 390;

/// Sizes the window so that the page is `width` CSS pixels wide (the
/// window's frame, if any, added), and returns the width the page has.
pub async fn page_width(c: &Client, width: u32) -> u64 {
    c.set_window_size(width, 844).await.unwrap();
    let inner = js(c, "window.innerWidth").await.as_u64().unwrap();
    if inner != u64::from(width) {
        let frame = u64::from(width).saturating_sub(inner);
        c.set_window_size(width + frame as u32, 844).await.unwrap();
    }
    js(c, "window.innerWidth").await.as_u64().unwrap()
}

/// At a phone's width: the header takes at most two lines (the brand and
/// its links, then the facts and any "No image search" note cut to one
/// line; the model's facts took three more), its links all on screen, and
/// nothing on the page is wider than the screen. A tap on a line cut short
/// shows both whole, and another cuts them again. Returns whether a line
/// was cut (and so the tap tried).
pub async fn header_fits_a_phone(c: &Client) -> bool {
    const LINES: &str =
        "[...document.querySelectorAll('#facts, #no-image-search')].filter(l => !l.hidden)";
    let got = js(
        c,
        &format!(
            "(() => {{ const h = document.querySelector('header'); const cs = getComputedStyle(h); \
             const brand = document.querySelector('.brand').getBoundingClientRect().height; \
             const links = [...document.querySelectorAll('nav a')].filter(a => !a.hidden).map(a => {{ const r = a.getBoundingClientRect(); return r.width > 0 && r.left >= 0 && r.right <= innerWidth; }}); \
             return {{ content: h.clientHeight - parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom), brand, links, \
                      page: document.documentElement.scrollWidth, width: innerWidth, \
                      lines: {LINES}.map(l => ({{ id: l.id, title: l.title, text: l.textContent, cut: l.scrollWidth > l.clientWidth }})) }}; }})()"
        ),
    )
    .await;
    let content = got["content"].as_f64().unwrap();
    let brand = got["brand"].as_f64().unwrap();
    assert!(
        content <= 2.0 * brand + 4.0,
        "the header is {content} px high, more than two lines of {brand} px: {got}"
    );
    let links = got["links"].as_array().unwrap();
    assert!(
        !links.is_empty() && links.iter().all(|l| l == true),
        "a link off screen: {got}"
    );
    assert!(
        got["page"].as_u64() <= got["width"].as_u64(),
        "the page slides sideways: {got}"
    );
    let lines = got["lines"].as_array().unwrap();
    for l in lines {
        assert_eq!(
            l["title"], l["text"],
            "a cut line's tooltip is its text: {l}"
        );
    }
    let Some(cut) = lines.iter().find(|l| l["cut"] == json!(true)) else {
        return false;
    };
    // Tapped, every line is whole (wrapped); tapped again, cut.
    let state = format!(
        "{LINES}.map(l => [l.scrollWidth > l.clientWidth, l.getAttribute('aria-expanded')])"
    );
    click(c, &format!("#{}", cut["id"].as_str().unwrap())).await;
    let open = js(c, &state).await;
    assert!(
        open.as_array()
            .unwrap()
            .iter()
            .all(|l| l == &json!([false, "true"])),
        "tapped, a line is still cut: {open}"
    );
    click(c, &format!("#{}", cut["id"].as_str().unwrap())).await;
    let shut = js(c, &state).await;
    assert!(
        shut.as_array()
            .unwrap()
            .iter()
            .all(|l| l[1] == json!("false")),
        "tapped again: {shut}"
    );
    assert!(
        shut.as_array().unwrap().iter().any(|l| l[0] == json!(true)),
        "tapped again, nothing is cut: {shut}"
    );
    true
}
