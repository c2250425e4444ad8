//! The page in a real browser: Debian's headless chromium, driven through
//! chromedriver over WebDriver (fantoccini), against `likeness serve` on an
//! index built here from the johns crops with their six region boxes.
//!
//! Both processes listen on ephemeral loopback ports and are killed on drop
//! (chromedriver in its own process group, so chromium goes with it); the
//! whole browser session is bounded in time. A screenshot of each state is
//! written under `target/browser/` for a person to look at.
mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::server::{request, Server};
use common::tab::{
    cards, click, header_fits_a_phone, in_browser, js, leaving, page_width, select, shot, view_is,
    wait, PHONE_WIDTH,
};
use common::{johns, likeness};
use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use fantoccini::{Client, Locator};
use serde_json::{json, Value};

/// The six boxes of `scripts/demo.sh` in the 150×150 aligned crops.
const REGIONS: [(&str, [u32; 4]); 6] = [
    ("left_eye", [22, 32, 40, 28]),
    ("right_eye", [88, 32, 40, 28]),
    ("nose", [55, 50, 40, 40]),
    ("mouth", [45, 88, 60, 32]),
    ("left_cheek", [15, 62, 36, 36]),
    ("right_cheek", [99, 62, 36, 36]),
];

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(o: std::process::Output) {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn images() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(johns())
        .unwrap()
        .map(|d| d.unwrap().path())
        .filter(|d| d.is_dir())
        .flat_map(|d| std::fs::read_dir(d).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    v.sort();
    v
}

struct Fixture {
    root: PathBuf,
    /// Every johns crop × the six regions, with a small model.
    regions: PathBuf,
    /// The same vectors and labels, without a model or sources, and one
    /// class more, `unused`, that no item has.
    vectors_only: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let mut csv = String::from("path,label,x,y,w,h\n");
        for f in images() {
            for (name, [x, y, w, h]) in REGIONS {
                csv.push_str(&format!("{},{name},{x},{y},{w},{h}\n", f.display()));
            }
        }
        let manifest = root.join("regions.csv");
        std::fs::write(&manifest, csv).unwrap();
        let model = root.join("model");
        // Left and right eyes must stay apart: no mirrored training images
        // (with them the top hit of a left eye drawn 1 px off was sometimes
        // a right eye).
        common::train_small(&manifest, &model, 3, 8, &["--no-flip", "--seed", "1"]);
        let regions = root.join("regions-index");
        ok(likeness(&[
            "--threads",
            "2",
            "index",
            "--model",
            s(&model),
            "--data",
            s(&manifest),
            "--out",
            s(&regions),
        ]));
        let ix = likeness_index::Index::open(&regions).unwrap();
        let vectors_only = root.join("vectors-index");
        let mut classes = ix.manifest().classes.clone();
        classes.push("unused".into());
        likeness_index::IndexBuilder::new()
            .metric(ix.metric())
            .seed(1)
            .classes(classes)
            .build(
                ix.vectors(),
                ix.dim(),
                ix.labels(),
                None,
                &vectors_only,
                None,
            )
            .unwrap();
        Fixture {
            root,
            regions,
            vectors_only,
        }
    })
}

/// Goes to the query view and chooses the image at `path` there.
async fn upload(c: &Client, path: &str) {
    leaving(c).await;
    click(c, "#nav-query").await;
    wait(c, &view_is("query"), "the query view").await;
    let file = c.find(Locator::Css("#file")).await.unwrap();
    file.send_keys(path).await.unwrap();
}

/// The query canvas on screen: left, top, width, height (CSS pixels).
async fn canvas_rect(c: &Client) -> [f64; 4] {
    let r = js(c, "(() => { const r = document.getElementById('query-canvas').getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()").await;
    [0, 1, 2, 3].map(|i| r[i].as_f64().unwrap())
}

/// Result cards drawn green or red.
const MARKED: &str = "document.querySelectorAll('#results .card.ok, #results .card.bad').length";
/// Why the results are not marked, if the page says.
const UNJUDGED: &str = "document.getElementById('unjudged')?.textContent ?? null";

fn label_of(info: &Value, class: &str) -> usize {
    info["index"]["classes"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c == class)
        .unwrap()
}

#[test]
fn the_page_browses_queries_by_region_and_by_item_and_shows_errors() {
    let f = fixture();
    let srv = Server::start(&["--index", s(&f.regions), "--workers", "2"], &[]);
    let bare = Server::start(&["--index", s(&f.vectors_only)], &[]);
    let info = common::server::get(srv.addr, "/info").json();
    assert_eq!(info["image_search"], true, "{info}");
    let query_face = images()[0].clone();
    let not_an_image = f.root.join("notes.jpg");
    std::fs::write(&not_an_image, "this is a text file, not a JPEG\n").unwrap();
    let server_says = request(
        srv.addr,
        "POST",
        "/search/image",
        &["Content-Type: image/jpeg"],
        &std::fs::read(&not_an_image).unwrap(),
    );
    assert_eq!(server_says.status, 400);
    let server_says = server_says.json()["error"].as_str().unwrap().to_string();

    in_browser(async |c: &Client| {
        let url = format!("http://{}/", srv.addr);

        // 1. The gallery: its count and thumbnails that really loaded.
        c.goto(&url).await.unwrap();
        wait(c, &view_is("gallery"), "the gallery").await;
        let total = js(c, "document.getElementById('gallery-count').dataset.total").await;
        assert_eq!(total, json!(images().len() * 6).to_string());
        let facts = js(c, "document.getElementById('facts').textContent").await;
        assert!(
            facts
                .as_str()
                .unwrap()
                .contains(&format!("{} items", images().len() * 6)),
            "{facts}"
        );
        wait(
            c,
            "(() => { const i = [...document.querySelectorAll('#gallery img')].slice(0, 12); \
                 return i.length === 12 && i.every(x => x.complete && x.naturalWidth > 0); })()",
            "the first 12 thumbnails to load",
        )
        .await;
        shot(c, "1-gallery").await;

        // 2. Upload a crop, drag a box over its left eye, search.
        upload(c, s(&query_face)).await;
        wait(
                c,
                "document.getElementById('results').dataset.state === 'done' && document.querySelectorAll('#results .card').length > 0",
                "the whole-image results",
            )
            .await;
        let [left, top, w, h] = canvas_rect(c).await;
        let at = |x: f64, y: f64| {
            (
                (left + x * w / 150.0).round(),
                (top + y * h / 150.0).round(),
            )
        };
        let [bx, by, bw, bh] = REGIONS[0].1.map(f64::from);
        let (x0, y0) = at(bx, by);
        let (x1, y1) = at(bx + bw, by + bh);
        let drag = MouseActions::new("mouse".into())
            .then(PointerAction::MoveTo {
                duration: None,
                x: x0,
                y: y0,
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::MoveTo {
                duration: Some(Duration::from_millis(150)),
                x: (x0 + x1) / 2.0,
                y: (y0 + y1) / 2.0,
            })
            .then(PointerAction::MoveTo {
                duration: Some(Duration::from_millis(150)),
                x: x1,
                y: y1,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            });
        c.perform_actions(drag).await.unwrap();
        wait(
                c,
                "document.getElementById('results').dataset.state === 'done' && document.getElementById('results').dataset.region",
                "the region results",
            )
            .await;
        let region = js(c, "document.getElementById('results').dataset.region").await;
        let region: Vec<i64> = region
            .as_str()
            .unwrap()
            .split(',')
            .map(|v| v.parse().unwrap())
            .collect();
        for (got, want) in region.iter().zip(REGIONS[0].1) {
            assert!(
                (got - i64::from(want)).abs() <= 1,
                "box {region:?} is not the left eye {:?}",
                REGIONS[0].1
            );
        }
        assert!(c.current_url().await.unwrap().as_str().contains(&format!(
            "region={}",
            region
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join("%2C")
        )));
        let found = cards(c, "#results").await;
        assert_eq!(found.len(), 10, "k = 10 cards");
        assert!(
            found.windows(2).all(|p| p[0].2 <= p[1].2),
            "distances ascend: {found:?}"
        );
        assert_eq!(found[0].1, "left_eye", "{found:?}");
        // Each distance says what it is (a bare 0.1994 did not).
        let d = js(
            c,
            "document.querySelector('#results .card .distance').textContent",
        )
        .await;
        // (-0.0000, a rounding error of a cosine distance, shows as 0.0000.)
        let want = format!("{:.4}", found[0].2).replace("-0.0000", "0.0000");
        assert_eq!(d, json!(format!("distance {want}")));
        // This index has no scores and its model no read-out: no grade line.
        assert_eq!(js(c, "document.getElementById('grades') === null && !document.querySelector('#results .score')").await, json!(true));
        // Judge them: "my query is a left eye".
        select(c, "#truth", &label_of(&info, "left_eye").to_string()).await;
        wait(
            c,
            "document.querySelectorAll('#results .card.ok, #results .card.bad').length === 10",
            "green and red borders",
        )
        .await;
        let judged = js(c, "[...document.querySelectorAll('#results .card')].map(e => e.classList.contains('ok') === (e.dataset.class === 'left_eye'))").await;
        assert!(
            judged.as_array().unwrap().iter().all(|v| v == true),
            "{judged}"
        );
        assert_eq!(js(c, UNJUDGED).await, Value::Null);
        shot(c, "2-region-query").await;
        // Only noses asked for, of a left eye: no result can be right, so
        // none is marked (every card was drawn red), and the page says why.
        let (eye, nose) = (label_of(&info, "left_eye"), label_of(&info, "nose"));
        select(c, "#only", &nose.to_string()).await;
        wait(
            c,
            "document.getElementById('results').dataset.state === 'done' && [...document.querySelectorAll('#results .card')].every(e => e.dataset.class === 'nose')",
            "the noses",
        )
        .await;
        assert_eq!(cards(c, "#results").await.len(), 10);
        assert_eq!(js(c, MARKED).await, json!(0));
        let why = js(c, UNJUDGED).await;
        assert!(
            why.as_str().is_some_and(
                |t| t.contains("only class nose") && t.contains("query's class left_eye")
            ),
            "{why}"
        );
        shot(c, "2b-another-class-not-marked").await;
        // Only left eyes: all of the query's class, all marked right.
        select(c, "#only", &eye.to_string()).await;
        wait(
            c,
            &format!("document.getElementById('results').dataset.state === 'done' && {MARKED} === 10 && document.querySelectorAll('#results .card.ok').length === 10"),
            "the left eyes, marked",
        )
        .await;
        assert_eq!(js(c, UNJUDGED).await, Value::Null);
        select(c, "#only", "").await;
        wait(
            c,
            &format!("document.getElementById('results').dataset.state === 'done' && {MARKED} === 10 && !new URLSearchParams(location.hash.split('?')[1]).has('only')"),
            "any class again",
        )
        .await;

        // 3. A result: its own neighbours, then back to the region query.
        let before_url = c.current_url().await.unwrap();
        let second = &found[1].0;
        leaving(c).await;
        click(c, "#results .card:nth-child(2)").await;
        wait(c, &view_is("item"), "the item view").await;
        let after_url = c.current_url().await.unwrap();
        assert_ne!(before_url, after_url);
        assert!(
            after_url
                .fragment()
                .unwrap()
                .starts_with(&format!("/item/{second}")),
            "{after_url}"
        );
        let item_cards = cards(c, "#results").await;
        assert_eq!(
            js(c, "document.getElementById('results').dataset.query").await,
            json!(format!("item:{second}"))
        );
        assert_eq!(item_cards.len(), 10);
        assert!(
            item_cards.iter().all(|x| &x.0 != second),
            "the item itself is left out"
        );
        shot(c, "3-more-like-this").await;
        leaving(c).await;
        c.back().await.unwrap();
        wait(
            c,
            &format!(
                "{} && document.getElementById('results').dataset.state === 'done'",
                view_is("query")
            ),
            "the region query again",
        )
        .await;
        assert_eq!(c.current_url().await.unwrap(), before_url);
        let again = cards(c, "#results").await;
        assert_eq!(
            again.iter().map(|x| &x.0).collect::<Vec<_>>(),
            found.iter().map(|x| &x.0).collect::<Vec<_>>(),
            "the previous results are back"
        );
        shot(c, "4-back").await;

        // 4. A class filter: on an item's neighbours, and on the gallery.
        leaving(c).await;
        click(c, "#results .card:nth-child(1)").await;
        wait(c, &view_is("item"), "the item view").await;
        select(c, "#result-filter", &nose.to_string()).await;
        wait(
            c,
            &format!(
                "{} && document.getElementById('view').dataset.route.includes('label={nose}')",
                view_is("item")
            ),
            "filtered neighbours",
        )
        .await;
        let filtered = cards(c, "#results").await;
        assert_eq!(filtered.len(), 10);
        assert!(filtered.iter().all(|x| x.1 == "nose"), "{filtered:?}");
        // Noses asked for, of a left eye: not judged against the eye's
        // class (every card was drawn red, as if the search had failed).
        assert_eq!(js(c, MARKED).await, json!(0));
        assert!(js(c, UNJUDGED).await.as_str().is_some());
        shot(c, "5-filtered-neighbours").await;
        leaving(c).await;
        click(c, "nav a[data-nav=gallery]").await;
        wait(c, &view_is("gallery"), "the gallery").await;
        select(c, "#class-filter", &nose.to_string()).await;
        wait(
            c,
            &format!(
                "{} && document.getElementById('view').dataset.route.includes('label={nose}')",
                view_is("gallery")
            ),
            "the filtered gallery",
        )
        .await;
        let shown = cards(c, "#gallery").await;
        assert_eq!(
            js(c, "document.getElementById('gallery-count').dataset.total").await,
            json!(images().len().to_string())
        );
        assert!(
            !shown.is_empty() && shown.iter().all(|x| x.1 == "nose"),
            "{shown:?}"
        );
        shot(c, "6-filtered-gallery").await;

        // 4b. The query view again, with the same photo: the server found
        // its face (POST /faces); a click inside the subject's left eye
        // searches by the region `likeness regions` would write.
        leaving(c).await;
        click(c, "#nav-query").await;
        wait(c, &view_is("query"), "the query view").await;
        let finder = likeness_app::face::FaceFinder::open(
            &likeness_app::face::models::default_dir(),
            likeness_app::face::Landmarks::Dlib5,
            likeness_app::face::DEFAULT_MIN_FACE,
        )
        .expect("the face models: run `make face-models`");
        let photo = image::open(&query_face).unwrap();
        let faces = finder.find(&photo);
        let boxes = likeness_app::face::region_boxes(
            &faces,
            &["eye".into()],
            photo.width(),
            photo.height(),
        );
        let eye = boxes[0]
            .iter()
            .find(|b| b.placed.side == likeness_app::face::Side::Left)
            .unwrap()
            .region;
        let [left, top, w, h] = canvas_rect(c).await;
        let (cx, cy) = (
            eye.x as f64 + eye.w as f64 / 2.0,
            eye.y as f64 + eye.h as f64 / 2.0,
        );
        let (x, y) = (
            (left + cx * w / 150.0).round(),
            (top + cy * h / 150.0).round(),
        );
        let press = MouseActions::new("mouse".into())
            .then(PointerAction::MoveTo {
                duration: None,
                x,
                y,
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            });
        c.perform_actions(press).await.unwrap();
        let want = format!("{},{},{},{}", eye.x, eye.y, eye.w, eye.h);
        wait(
                c,
                &format!("document.getElementById('results').dataset.state === 'done' && document.getElementById('results').dataset.region === '{want}'"),
                "the results of the clicked eye",
            )
            .await;
        let said = js(c, "document.getElementById('box').textContent").await;
        assert!(said.as_str().unwrap().starts_with("eye (left): "), "{said}");
        // The small model tells eyes from other regions (which side is
        // beyond it: this index names sides as seen in the image anyway).
        let top = cards(c, "#results").await;
        assert!(top[0].1.ends_with("_eye"), "{top:?}");
        // A model without a score read-out grades nothing: no table.
        assert_eq!(
            js(c, "document.getElementById('face-grades')").await,
            Value::Null
        );
        shot(c, "6b-clicked-region").await;

        // 4c. Two faces in one photo: both found, and not numbered (the
        // numbers match grade tables, and this model grades nothing; they
        // named nothing and hid a group photo's small faces).
        let crop = image::open(&query_face).unwrap();
        let mut two = image::RgbImage::new(crop.width() * 2, crop.height());
        image::imageops::replace(&mut two, &crop.to_rgb8(), 0, 0);
        image::imageops::replace(&mut two, &crop.to_rgb8(), i64::from(crop.width()), 0);
        let two_faces = f.root.join("two-faces.png");
        two.save(&two_faces).unwrap();
        upload(c, s(&two_faces)).await;
        wait(
            c,
            "document.getElementById('results').dataset.state === 'done' && document.getElementById('query-canvas').dataset.faces === '2'",
            "two faces found",
        )
        .await;
        assert_eq!(
            js(
                c,
                "document.getElementById('query-canvas').dataset.faceNumbers"
            )
            .await,
            json!("0")
        );
        shot(c, "6c-two-faces").await;

        // 5. A text file named .jpg: the server's own error on the page.
        upload(c, s(&not_an_image)).await;
        wait(
            c,
            "document.getElementById('results').dataset.state === 'error'",
            "the error",
        )
        .await;
        let shown = js(c, "document.getElementById('query-error').textContent").await;
        assert_eq!(shown, json!(server_says));
        assert_eq!(
            js(c, "document.getElementById('query-error').hidden").await,
            json!(false)
        );
        shot(c, "7-not-an-image").await;

        // 6. An index without a model: no image search, item search works.
        let bare_url = format!("http://{}/", bare.addr);
        leaving(c).await;
        c.goto(&bare_url).await.unwrap();
        wait(c, &view_is("gallery"), "the vector-only gallery").await;
        assert_eq!(
            js(c, "document.getElementById('nav-query').hidden").await,
            json!(true)
        );
        assert_eq!(
            js(
                c,
                "document.getElementById('nav-query').getBoundingClientRect().width"
            )
            .await,
            json!(0)
        );
        let note = js(c, "document.getElementById('no-image-search').textContent").await;
        assert!(
            note.as_str().unwrap().contains("built from vectors"),
            "{note}"
        );
        // A shared link to the image query says why there is none.
        leaving(c).await;
        c.goto(&format!("{bare_url}#/query")).await.unwrap();
        wait(c, &view_is("query"), "the query view").await;
        assert_eq!(
            js(
                c,
                "!!document.getElementById('no-model') && !document.getElementById('file')"
            )
            .await,
            json!(true)
        );
        let why = js(c, "document.getElementById('no-model').textContent").await;
        assert!(
            why.as_str().unwrap().contains("built from vectors"),
            "{why}"
        );
        shot(c, "8-no-model").await;
        leaving(c).await;
        c.goto(&format!("{bare_url}#/item/7?k=5")).await.unwrap();
        wait(c, &view_is("item"), "item search on the vector-only index").await;
        let bare_cards = cards(c, "#results").await;
        assert_eq!(bare_cards.len(), 5);
        assert!(bare_cards.iter().all(|x| x.0 != "7"));
        shot(c, "9-no-model-item").await;

        // 7. A k past the server's largest: the item view says so in the
        // page's words and keeps its form, where k is corrected (the view
        // stayed at "Loading…" or the previous view, with no form).
        leaving(c).await;
        c.goto(&format!("{bare_url}#/item/7?k=5000")).await.unwrap();
        wait(c, &view_is("item"), "the item view with k = 5000").await;
        let said = js(c, "document.getElementById('item-error')?.textContent").await;
        let max_k = likeness_index::MAX_K;
        assert!(
            said.as_str().is_some_and(|t| t.contains("5000")
                && t.contains(&format!("from 1 to {},{:03}", max_k / 1000, max_k % 1000))),
            "{said}"
        );
        assert_eq!(
            js(c, "document.getElementById('k').value").await,
            json!("5000")
        );
        assert_eq!(
            js(c, "document.querySelectorAll('#results .card').length").await,
            json!(0)
        );
        shot(c, "14-k-too-large").await;
        leaving(c).await;
        js(c, "(() => { const k = document.getElementById('k'); k.value = '4'; k.dispatchEvent(new Event('change')); return 1; })()").await;
        wait(
            c,
            &format!(
                "{} && document.querySelectorAll('#results .card').length === 4",
                view_is("item")
            ),
            "4 neighbours once k is corrected",
        )
        .await;
        assert_eq!(
            js(c, "document.getElementById('item-error')").await,
            Value::Null
        );

        // 8. A class filter nothing passes (a class no item has; a number
        // past the classes is refused): the page says so, and offers the
        // way back to any class (it showed an empty grid and "0
        // neighbours").
        let classes = info["index"]["classes"].as_array().unwrap().len();
        leaving(c).await;
        c.goto(&format!("{bare_url}#/item/7?label={classes}"))
            .await
            .unwrap();
        wait(
            c,
            &view_is("item"),
            "the item view of a class with no items",
        )
        .await;
        let note = js(c, "document.getElementById('empty')?.textContent").await;
        assert!(
            note.as_str()
                .is_some_and(|t| t.starts_with("No neighbours of class unused")),
            "{note}"
        );
        shot(c, "15-empty-filter").await;
        leaving(c).await;
        click(c, "#clear-filter").await;
        wait(
            c,
            &format!(
                "{} && document.querySelectorAll('#results .card').length === 10",
                view_is("item")
            ),
            "the neighbours of any class",
        )
        .await;
        assert_eq!(js(c, "document.getElementById('empty')").await, Value::Null);

        // 9. A link the server refuses (a class the index does not have):
        // its error, and not the previous view under it as if it were
        // the answer.
        leaving(c).await;
        c.goto(&format!("{url}#/?label=nosuch")).await.unwrap();
        wait(c, &view_is("error"), "the refused gallery").await;
        let said = js(c, "document.getElementById('error').textContent").await;
        assert!(
            said.as_str().unwrap().contains("no class `nosuch`"),
            "{said}"
        );
        assert_eq!(
            js(c, "document.querySelectorAll('#view .card').length + document.getElementById('view').textContent.includes('Loading')").await,
            json!(0)
        );
        assert_eq!(
            js(
                c,
                "!!document.querySelector('#route-failed a[href=\"#/\"]')"
            )
            .await,
            json!(true)
        );
        shot(c, "16-refused-link").await;

        // 10. A phone's width: the header in two lines, the model's facts
        // cut short (they took three lines more) and whole after a tap;
        // the query view's photo, controls and results fit the screen.
        assert_eq!(page_width(c, PHONE_WIDTH).await, u64::from(PHONE_WIDTH));
        leaving(c).await;
        c.goto(&url).await.unwrap();
        wait(c, &view_is("gallery"), "the gallery on a phone").await;
        assert!(
            header_fits_a_phone(c).await,
            "the model's facts are cut short"
        );
        shot(c, "17-phone-gallery").await;
        upload(c, s(&query_face)).await;
        wait(
            c,
            "document.getElementById('results').dataset.state === 'done' && document.querySelectorAll('#results .card').length === 10",
            "the results on a phone",
        )
        .await;
        header_fits_a_phone(c).await;
        let wide = js(c, "[...document.querySelectorAll('#query-canvas, #k, #ef, #only, #truth, #search, #clear-box, #results')].filter(e => e.getBoundingClientRect().right > innerWidth + 0.5).map(e => e.id)").await;
        assert_eq!(wide, json!([]), "past the screen's right edge");
        shot(c, "18-phone-query").await;
        // A result's page: its photo and region side by side within the
        // screen (stacked, they filled it, the neighbours below it).
        let scrolled = js(c, "(() => { document.querySelector('#results .card').scrollIntoView(); return scrollY; })()").await;
        assert!(scrolled.as_f64().unwrap() > 100.0, "{scrolled}");
        leaving(c).await;
        click(c, "#results .card:nth-child(1)").await;
        wait(c, &view_is("item"), "an item on a phone").await;
        // At the top of its view (it opened as far down as the result was).
        assert_eq!(js(c, "scrollY").await, json!(0));
        let pictures = js(c, "[...document.querySelectorAll('#query-item img.large')].map(e => { const r = e.getBoundingClientRect(); return [Math.round(r.top), r.right <= innerWidth]; })").await;
        let pictures = pictures.as_array().unwrap();
        assert_eq!(pictures.len(), 2, "the photo and its region");
        assert!(
            pictures[0] == pictures[1] && pictures[0][1] == json!(true),
            "side by side within the screen: {pictures:?}"
        );
        header_fits_a_phone(c).await;
        shot(c, "19-phone-item").await;
    });
}

/// A graded gallery on the page: each card shows its recorded score; a
/// query image gets the model's grade (its score read-out) and its
/// neighbours' score, the numbers `POST /search/image` answers; an item's
/// page shows its score and what its neighbours predict, as
/// `GET /search/item/{id}` answers.
#[test]
fn the_page_shows_recorded_scores_and_the_grade_of_a_query_image() {
    use rand::SeedableRng;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-grades");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let train = common::brightness_grades(&dir, "train", 120, &mut rng);
    let gallery = common::brightness_grades(&dir, "gallery", 40, &mut rng);
    let new = common::brightness_grades(&dir, "new", 1, &mut rng);
    let query_image = dir.join("img").join("new0.png");
    let model = dir.join("model");
    common::train_small(&train, &model, 1, 60, &["--score-bins", "3"]);
    let index = dir.join("index");
    ok(likeness(&[
        "--threads",
        "2",
        "index",
        "--model",
        s(&model),
        "--data",
        s(&gallery),
        "--out",
        s(&index),
    ]));
    let srv = Server::start(&["--index", s(&index)], &[]);
    let api = request(
        srv.addr,
        "POST",
        "/search/image",
        &["Content-Type: image/png"],
        &std::fs::read(&query_image).unwrap(),
    )
    .json();
    let readout = api["readout_score"]
        .as_f64()
        .unwrap_or_else(|| panic!("no readout_score: {api}"));
    let predicted = api["predicted_score"]
        .as_f64()
        .unwrap_or_else(|| panic!("no predicted_score: {api}"));
    let truth: f64 = std::fs::read_to_string(&new)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();

    in_browser(async |c: &Client| {
        let url = format!("http://{}/", srv.addr);

        // 1. The gallery: every card's score is the one the index records.
        c.goto(&url).await.unwrap();
        wait(c, &view_is("gallery"), "the gallery").await;
        let shown = js(c, "[...document.querySelectorAll('#gallery .card')].map(e => [e.dataset.id, e.dataset.score, e.querySelector('.score').textContent])").await;
        let shown = shown.as_array().unwrap();
        assert_eq!(shown.len(), 40);
        for row in shown {
            let id = row[0].as_str().unwrap();
            let item = common::server::get(srv.addr, &format!("/items/{id}")).json();
            let want = item["score"]
                .as_f64()
                .unwrap_or_else(|| panic!("GET /items/{id} has no score: {item}"));
            let got: f64 = row[1].as_str().unwrap().parse().unwrap();
            assert!((got - want).abs() < 1e-6, "card {id}: {got} against {want}");
            assert_eq!(row[2], json!(format!("score {got:.2}")));
        }

        // 2. A new image: its grade and its neighbours' score, as the API says.
        upload(c, s(&query_image)).await;
        wait(c, "document.getElementById('results').dataset.state === 'done' && document.getElementById('readout-score')", "the grade of the query image").await;
        let got = js(c, "[+document.getElementById('readout-score').dataset.value, +document.getElementById('predicted-score').dataset.value, document.getElementById('grades').textContent]").await;
        assert!(
            (got[0].as_f64().unwrap() - readout).abs() < 1e-4,
            "page {got} against API {readout}"
        );
        assert!(
            (got[1].as_f64().unwrap() - predicted).abs() < 1e-4,
            "page {got} against API {predicted}"
        );
        let line = got[2].as_str().unwrap();
        assert!(
            line.contains(&format!("grade {readout:.2}"))
                && line.contains(&format!("neighbours' score {predicted:.2}")),
            "{line}"
        );
        // The model learnt brightness: the grade is near the truth.
        assert!(
            (readout - truth).abs() < 0.3,
            "grade {readout} of an image of true grade {truth}"
        );
        assert_eq!(
            js(
                c,
                "document.querySelectorAll('#results .card .score').length"
            )
            .await,
            json!(10)
        );
        shot(c, "10-graded-query").await;

        // 3. An item's page: its own score and its neighbours'.
        leaving(c).await;
        click(c, "#results .card:nth-child(1)").await;
        wait(c, &view_is("item"), "the item view").await;
        let id = js(c, "document.getElementById('query-item').dataset.id").await;
        let id = id.as_str().unwrap();
        let res = common::server::get(srv.addr, &format!("/search/item/{id}")).json();
        let own = res["query"]["score"]
            .as_f64()
            .unwrap_or_else(|| panic!("{res}"));
        let theirs = res["predicted_score"]
            .as_f64()
            .unwrap_or_else(|| panic!("{res}"));
        let got = js(c, "[+document.getElementById('own-score').dataset.value, +document.getElementById('predicted-score').dataset.value, !!document.getElementById('readout-score')]").await;
        assert!(
            (got[0].as_f64().unwrap() - own).abs() < 1e-6,
            "{got} against {own}"
        );
        assert!(
            (got[1].as_f64().unwrap() - theirs).abs() < 1e-4,
            "{got} against {theirs}"
        );
        assert_eq!(got[2], json!(false), "an item's page has no read-out");
        shot(c, "11-graded-item").await;
    });
}

/// A photo's faces, graded: with a model trained from grades of cheeks and
/// under-eyes, `POST /faces` gives each of those regions the grade
/// `POST /search/image?region=` gives the same box, and other labels none;
/// the page shows them left against right, and a click on a grade searches
/// by its region.
#[test]
fn the_page_sets_a_faces_left_grades_against_its_right() {
    // Cheeks and under-eyes of the johns crops (the swell set's boxes),
    // graded by their mean brightness: something a small model learns.
    const BOXES: [(&str, [u32; 4]); 4] = [
        ("cheek", [16, 70, 36, 30]),
        ("cheek", [98, 70, 36, 30]),
        ("under_eye", [24, 50, 36, 18]),
        ("under_eye", [90, 50, 36, 18]),
    ];
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-face-grades");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut csv = String::from("path,label,x,y,w,h,score\n");
    for f in images() {
        let img = image::open(&f).unwrap().to_luma8();
        for (label, [x, y, w, h]) in BOXES {
            let sum: u64 = (y..y + h)
                .flat_map(|j| (x..x + w).map(move |i| (i, j)))
                .map(|(i, j)| u64::from(img.get_pixel(i, j)[0]))
                .sum();
            let score = sum as f64 / f64::from(w * h) / 255.0;
            csv.push_str(&format!(
                "{},{label},{x},{y},{w},{h},{score:.3}\n",
                f.display()
            ));
        }
    }
    let manifest = dir.join("regions.csv");
    std::fs::write(&manifest, csv).unwrap();
    let model = dir.join("model");
    common::train_small(&manifest, &model, 1, 60, &["--score-bins", "3"]);
    let index = dir.join("index");
    ok(likeness(&[
        "--threads",
        "2",
        "index",
        "--model",
        s(&model),
        "--data",
        s(&manifest),
        "--out",
        s(&index),
    ]));
    let srv = Server::start(&["--index", s(&index)], &[]);
    let photo = images()[0].clone();
    let bytes = std::fs::read(&photo).unwrap();

    // The API: graded regions are those the read-out learnt from, each as
    // an image query of its box grades it.
    let faces = request(
        srv.addr,
        "POST",
        "/faces",
        &["Content-Type: image/jpeg"],
        &bytes,
    )
    .json();
    let regions = faces["faces"][0]["regions"]
        .as_array()
        .unwrap_or_else(|| panic!("no face: {faces}"))
        .clone();
    let mut grades = std::collections::BTreeMap::new();
    for r in &regions {
        let (label, side) = (r["label"].as_str().unwrap(), r["side"].as_str().unwrap());
        let b: Vec<String> = r["region"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.to_string())
            .collect();
        if label == "cheek" || label == "under_eye" {
            let g = r["grade"]
                .as_f64()
                .unwrap_or_else(|| panic!("{label} {side} has no grade: {r}"));
            let q = request(
                srv.addr,
                "POST",
                &format!("/search/image?k=1&region={}", b.join(",")),
                &["Content-Type: image/jpeg"],
                &bytes,
            )
            .json();
            let want = q["readout_score"].as_f64().unwrap();
            assert!(
                (g - want).abs() < 1e-4,
                "{label} {side}: /faces {g}, /search/image {want}"
            );
            grades.insert((label.to_string(), side.to_string()), (g, b.join(",")));
        } else {
            assert_eq!(
                r["grade"],
                Value::Null,
                "{label} is not a label the read-out learnt: {r}"
            );
        }
    }
    assert_eq!(grades.len(), 4, "{grades:?}");

    in_browser(async |c: &Client| {
        c.goto(&format!("http://{}/", srv.addr)).await.unwrap();
        wait(c, &view_is("gallery"), "the gallery").await;
        upload(c, s(&photo)).await;
        wait(
            c,
            "document.querySelector('#face-grades table')",
            "the face's grades",
        )
        .await;
        for label in ["cheek", "under_eye"] {
            let row = js(c, &format!("[...document.querySelectorAll('#face-grades tr[data-label={label}] td')].map(t => [t.dataset.grade || t.dataset.value || '', t.textContent])")).await;
            let (l, r) = (
                &grades[&(label.to_string(), "left".to_string())],
                &grades[&(label.to_string(), "right".to_string())],
            );
            let num = |i: usize| row[i][0].as_str().unwrap().parse::<f64>().unwrap();
            assert!(
                (num(0) - l.0).abs() < 1e-4 && (num(1) - r.0).abs() < 1e-4,
                "{label}: {row} against {l:?} {r:?}"
            );
            assert!(
                (num(2) - (l.0 - r.0)).abs() < 1e-4,
                "{label}: left − right {row}"
            );
            // Negative grades with a true minus sign, as the differences.
            let want = if num(0) < -0.005 {
                format!("−{:.2}", -num(0))
            } else {
                format!("{:.2}", num(0).abs())
            };
            assert_eq!(row[0][1], json!(want));
        }
        // Only the labels the read-out grades have rows; the others are
        // named below the table (four rows of dashes hid the two compared).
        let rows = js(c, "[...document.querySelectorAll('#face-grades tr[data-label]')].map(t => t.dataset.label).sort()").await;
        assert_eq!(rows, json!(["cheek", "under_eye"]));
        let others = js(c, "document.getElementById('not-graded').textContent").await;
        assert!(others.as_str().unwrap().contains("eye, "), "{others}");
        // The grades' scale: the lowest and highest grade the model learnt.
        let card: Value =
            serde_json::from_slice(&std::fs::read(model.join("model.json")).unwrap()).unwrap();
        let (lo, hi) = (
            card["score_domain"]["min"].as_f64().unwrap(),
            card["score_domain"]["max"].as_f64().unwrap(),
        );
        let said = js(c, "document.querySelector('#face-grades > p').textContent").await;
        assert!(
            said.as_str()
                .unwrap()
                .contains(&format!("({lo:.2} to {hi:.2})")),
            "{said}"
        );
        // Each grade on the photo sits beside its region, not over the skin
        // it grades, and apart from the others.
        let placed = js(
            c,
            "JSON.parse(document.getElementById('query-canvas').dataset.gradeLabels)",
        )
        .await;
        let placed = placed.as_array().unwrap();
        assert_eq!(placed.len(), 4, "{placed:?}");
        let rect = |v: &Value| -> [f64; 4] { [0, 1, 2, 3].map(|i| v[i].as_f64().unwrap()) };
        let meets =
            |a: [f64; 4], b: [f64; 4]| a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
        let corners = |[x, y, w, h]: [f64; 4]| [x, y, x + w, y + h];
        for (i, p) in placed.iter().enumerate() {
            let label = corners(rect(&p["label"]));
            assert!(
                !meets(label, rect(&p["bounds"])),
                "the grade of {} covers its region: {p}",
                p["region"]
            );
            for q in &placed[i + 1..] {
                assert!(
                    !meets(label, corners(rect(&q["label"]))),
                    "grades over each other: {p} {q}"
                );
            }
        }
        // Which colour is which region: a key for each label found.
        let keys = js(c, "[...document.querySelectorAll('#legend .key[data-label]')].map(e => e.dataset.label).sort()").await;
        let mut found: Vec<&str> = regions
            .iter()
            .map(|r| r["label"].as_str().unwrap())
            .collect();
        found.sort();
        found.dedup();
        assert_eq!(keys, json!(found));
        shot(c, "12-face-grades").await;
        // A click on the right cheek's grade searches by its box.
        let right_cheek = &grades[&("cheek".to_string(), "right".to_string())].1;
        click(c, "#face-grades tr[data-label=cheek] td:nth-of-type(2)").await;
        wait(
                c,
                &format!("document.getElementById('results').dataset.state === 'done' && document.getElementById('results').dataset.region === '{right_cheek}'"),
                "the results of the right cheek",
            )
            .await;
        let shown: f64 = js(c, "document.getElementById('readout-score').dataset.value")
            .await
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (shown - grades[&("cheek".to_string(), "right".to_string())].0).abs() < 1e-4,
            "{shown}"
        );
        // The line says what the read-out learnt from (the card's labels).
        let line = js(c, "document.getElementById('readout-score').textContent").await;
        assert!(
            line.as_str()
                .unwrap()
                .ends_with("which learnt from cheek, under_eye)"),
            "{line}"
        );
        shot(c, "13-face-grade-clicked").await;
        // Each region searched is a step back: to the left cheek's, then to
        // the whole photo's.
        let left_cheek = &grades[&("cheek".to_string(), "left".to_string())].1;
        click(c, "#face-grades tr[data-label=cheek] td:nth-of-type(1)").await;
        let results_of = |region: &str| {
            format!("document.getElementById('results').dataset.state === 'done' && document.getElementById('results').dataset.region === '{region}'")
        };
        wait(c, &results_of(left_cheek), "the results of the left cheek").await;
        leaving(c).await;
        c.back().await.unwrap();
        wait(c, &results_of(right_cheek), "back to the right cheek").await;
        leaving(c).await;
        c.back().await.unwrap();
        wait(c, &results_of(""), "back to the whole photo").await;
        assert_eq!(
            js(c, "document.getElementById('faces-note').hidden").await,
            json!(true),
            "a face was found: no note"
        );
        assert_eq!(
            js(c, "document.getElementById('grade-note') === null").await,
            json!(true),
            "its faces were graded: nothing graded whole to explain"
        );
        // The grades the API flags `outside_learnt`, and only they, are
        // marked (here as many as the API flagged of this model's).
        let flagged = regions
            .iter()
            .filter(|r| r["outside_learnt"] == json!(true))
            .count();
        assert_eq!(
            js(
                c,
                "document.querySelectorAll('#face-grades td[data-outside=true]').length"
            )
            .await,
            json!(flagged)
        );
        // A cheek's crop holds no face: graded whole, and the page says so
        // beside its grade (the API's `note`), as `query --image` does.
        let crop = dir.join("cheek-crop.png");
        image::open(&photo)
            .unwrap()
            .crop_imm(98, 70, 36, 30)
            .save(&crop)
            .unwrap();
        upload(c, s(&crop)).await;
        wait(
            c,
            "document.getElementById('grade-note') !== null && document.getElementById('readout-score') !== null",
            "the crop's grade and its note",
        )
        .await;
        let note = js(c, "document.getElementById('grade-note').textContent").await;
        let note = note.as_str().unwrap();
        assert!(
            note.contains("no face found") && note.contains("graded whole, as one crop"),
            "{note}"
        );
        shot(c, "14-no-face-note").await;
        // With the learnt range moved far off (the weights unchanged), every
        // grade lies outside it: greyed, with a "?" and the range in its
        // tooltip, in the table and on the photo.
        let card_path = model.join("model.json");
        let text = std::fs::read_to_string(&card_path).unwrap();
        let mut moved: Value = serde_json::from_str(&text).unwrap();
        moved["score_domain"]["min"] = json!(100.0);
        moved["score_domain"]["max"] = json!(101.0);
        std::fs::write(&card_path, moved.to_string()).unwrap();
        leaving(c).await;
        c.goto(&format!("http://{}/", srv.addr)).await.unwrap();
        wait(c, &view_is("gallery"), "the gallery").await;
        upload(c, s(&photo)).await;
        wait(
            c,
            "document.querySelectorAll('#face-grades td[data-outside=true]').length === 4",
            "the grades marked outside the learnt range",
        )
        .await;
        let cells = js(c, "[...document.querySelectorAll('#face-grades td[data-grade]')].map(t => [t.textContent, t.className, t.title, getComputedStyle(t).color])").await;
        let cells = cells.as_array().unwrap();
        assert_eq!(cells.len(), 4, "{cells:?}");
        for cell in cells {
            assert!(cell[0].as_str().unwrap().ends_with('?'), "{cell}");
            assert!(cell[1].as_str().unwrap().contains("outside"), "{cell}");
            assert!(
                cell[2].as_str().unwrap().contains("(100.00 to 101.00)"),
                "{cell}"
            );
            // Greyed: the page's muted colour, not the accent of a grade.
            assert_eq!(cell[3], json!("rgb(95, 107, 122)"), "{cell}");
        }
        assert!(js(c, "document.getElementById('outside-note').textContent")
            .await
            .as_str()
            .unwrap()
            .contains("(100.00 to 101.00)"));
        let placed = js(
            c,
            "JSON.parse(document.getElementById('query-canvas').dataset.gradeLabels)",
        )
        .await;
        let placed = placed.as_array().unwrap();
        assert_eq!(placed.len(), 4, "{placed:?}");
        for p in placed {
            assert_eq!(p["outside"], json!(true), "{p}");
            assert!(p["text"].as_str().unwrap().ends_with('?'), "{p}");
        }
        shot(c, "14-face-grades-outside").await;
        std::fs::write(&card_path, text).unwrap();
    });
}
