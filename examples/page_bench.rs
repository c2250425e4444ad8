//! The page's speed figures for `make bench-serve`, measured in headless
//! chromium (through chromedriver) against a running `likeness serve`:
//!
//! - first paint of the gallery (navigation start to the frame after the
//!   first page of cards is built), cold (fresh browser profile) and warm;
//! - thumbnail server time (the server's `Server-Timing`), for items not yet
//!   in the thumbnail cache;
//! - an image query's round trip from the page (file chosen or Search
//!   pressed to cards built) against the server's own `/search/image` time
//!   (`took_ms` of the same answer).
//!
//! `cargo run --release --example page_bench -- URL IMAGE [RUNS]`
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::{json, Value};

#[path = "../tests/common/chromium.rs"]
mod chromium;
use chromium::Driver;

async fn js(c: &Client, expr: &str) -> Value {
    c.execute(&format!("return ({expr});"), vec![])
        .await
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
}

async fn js_async(c: &Client, body: &str) -> Value {
    let script = format!("const done = arguments[arguments.length - 1]; (async () => {{ {body} }})().then(done, e => done(String(e)));");
    c.execute_async(&script, vec![])
        .await
        .unwrap_or_else(|e| panic!("{body}: {e}"))
}

async fn wait(c: &Client, expr: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if js(c, &format!("!!({expr})")).await == json!(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting for {expr}");
}

fn stats(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    (q(0.5), q(0.95), v[v.len() - 1])
}

const GALLERY: &str = "document.getElementById('view').dataset.view === 'gallery' && document.getElementById('view').dataset.paintedAt";

/// Navigation start to the gallery's first frame, and to the arrival of its
/// first 12 thumbnails.
async fn gallery_paint(c: &Client, url: &str) -> (f64, f64) {
    c.goto("about:blank").await.expect("blank");
    c.goto(url).await.expect("open the page");
    wait(c, GALLERY).await;
    let painted = js(
        c,
        "parseFloat(document.getElementById('view').dataset.paintedAt)",
    )
    .await
    .as_f64()
    .expect("paintedAt");
    wait(
        c,
        "(() => { const i = [...document.querySelectorAll('#gallery img')].slice(0, 12); \
         return i.length === 12 && i.every(x => x.complete && x.naturalWidth > 0); })()",
    )
    .await;
    let thumbs = js(
        c,
        "Math.max(...performance.getEntriesByType('resource').filter(e => e.name.includes('/image?')).slice(0, 12).map(e => e.responseEnd))",
    )
    .await
    .as_f64()
    .unwrap_or(f64::NAN);
    (painted, thumbs)
}

fn main() -> likeness_app::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: page_bench URL IMAGE [RUNS]");
        std::process::exit(2);
    }
    let url = args[1].trim_end_matches('/').to_string() + "/";
    let image = std::fs::canonicalize(&args[2]).expect("the query image");
    let runs: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(20);
    let driver = Driver::start();
    let profile = tempfile::tempdir().expect("temp dir");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let c = driver.browser(profile.path()).await;
        let info: Value = {
            c.goto(&url).await.expect("open");
            wait(&c, GALLERY).await;
            js_async(&c, "return await (await fetch('/info')).json();").await
        };
        // That first load warmed the browser's cache of the assets; a fresh
        // profile for the cold figure.
        let pages = (info["index"]["count"].as_u64().unwrap_or(0) as usize / 60).max(1);
        let (cold, cold_thumbs) = {
            let p2 = tempfile::tempdir().expect("temp dir");
            let c2 = driver.browser(p2.path()).await;
            let t = gallery_paint(&c2, &format!("{url}#/?offset={}", 120 % (pages * 60))).await;
            c2.close().await.expect("close");
            t
        };
        let mut warm: Vec<f64> = Vec::new();
        let mut warm_thumbs: Vec<f64> = Vec::new();
        for i in 0..runs.min(10) {
            // Pages the cold run did not show (their thumbnails not cached).
            let offset = 60 * ((i + 3) % pages);
            let (p, t) = gallery_paint(&c, &format!("{url}#/?offset={offset}")).await;
            warm.push(p);
            warm_thumbs.push(t);
        }
        let (w50, w95, _) = stats(&mut warm);
        let (t50, _, _) = stats(&mut warm_thumbs);
        likeness_app::outln!(
            "gallery first paint ({} items, 60 cards, from navigation start): cold {cold:.1} ms, warm median {w50:.1} ms (p95 {w95:.1} ms); first 12 thumbnails received: cold {cold_thumbs:.1} ms, warm median {t50:.1} ms",
            info["index"]["count"]
        )?;

        // Thumbnails the cache has not seen (a size the gallery does not use).
        let n = info["index"]["count"].as_u64().unwrap_or(0).min(2000);
        let t = js_async(
            &c,
            &format!(
                "const out = []; for (let id = 0; id < {n}; id += 3) {{ \
                 const r = await fetch(`/items/${{id}}/image?size=96`); await r.arrayBuffer(); \
                 const st = r.headers.get('server-timing') || ''; const m = st.match(/dur=([0-9.]+)/); \
                 if (m) out.push(parseFloat(m[1])); }} return out;"
            ),
        )
        .await;
        let mut t: Vec<f64> = t
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        if t.is_empty() {
            likeness_app::outln!("thumbnails: no Server-Timing figures (does the index record its images?)")?;
        } else {
            let count = t.len();
            let (p50, p95, max) = stats(&mut t);
            likeness_app::outln!(
                "thumbnail server time, not cached ({count} items, size 96): median {p50:.3} ms, p95 {p95:.3} ms, max {max:.3} ms"
            )?;
        }

        if info["image_search"] != json!(true) {
            likeness_app::outln!("image query round trip: skipped (the server has no model)")?;
        } else {
            c.goto(&format!("{url}#/query")).await.expect("query view");
            wait(&c, "document.getElementById('file')").await;
            c.find(Locator::Css("#file"))
                .await
                .expect("file input")
                .send_keys(image.to_str().expect("utf-8 path"))
                .await
                .expect("upload");
            let mut round = Vec::new();
            let mut server = Vec::new();
            let mut gap = Vec::new();
            for i in 0..=runs {
                if i > 0 {
                    js(&c, "(document.getElementById('results').dataset.state = 'clicked', true)").await;
                    c.find(Locator::Css("#search"))
                        .await
                        .expect("search button")
                        .click()
                        .await
                        .expect("search");
                }
                wait(&c, "document.getElementById('results').dataset.state === 'done'").await;
                if i == 0 {
                    continue; // the first query warms the model
                }
                let r = js(&c, "[parseFloat(document.getElementById('results').dataset.roundTripMs), parseFloat(document.getElementById('results').dataset.tookMs)]").await;
                let (rt, took) = (r[0].as_f64().unwrap_or(f64::NAN), r[1].as_f64().unwrap_or(f64::NAN));
                round.push(rt);
                server.push(took);
                gap.push(rt - took);
            }
            let (r50, _, _) = stats(&mut round);
            let (s50, _, _) = stats(&mut server);
            let (g50, g95, gmax) = stats(&mut gap);
            likeness_app::outln!(
                "image query ({runs} runs): page round trip median {r50:.1} ms, server /search/image {s50:.1} ms; page minus server: median {g50:.1} ms, p95 {g95:.1} ms, max {gmax:.1} ms"
            )?;
        }
        c.close().await.expect("close");
        Ok(())
    })
}
