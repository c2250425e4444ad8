//! The page's endpoints over HTTP, on an index built here from image files
//! (some with regions) and IDX rows: the page and its assets (ETag, CSP),
//! `/items` pages, thumbnails (drawn from the item's own source and nothing
//! else), `/search/item/{id}`, `/info`, and the admin token; and in
//! headless chromium, what the page keeps across clicks and says of a
//! server without its model.
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::server::{get, request, Server};
use common::tab::{
    cards, click, header_fits_a_phone, in_browser, js, leaving, page_width, select, view_is, wait,
    PHONE_WIDTH,
};
use image::{GrayImage, Luma, Rgb, RgbImage};
use likeness_index::{IndexBuilder, ItemInfo, ItemPairing, Metric, Side};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// 8 photos (60×40, each one colour; ids 0..8, the odd ones with a region)
/// and 8 rows of a gzipped IDX file (ids 8..16, 28×28, row r filled with
/// 10·r); labels id % 3, classes a, b, c; vectors in 3 clusters. The
/// photos record subject `p{id / 2}` and side left (even ids) or right
/// (odd), the rows neither.
fn fixture(dir: &Path) -> (PathBuf, PathBuf) {
    let mut items = Vec::new();
    for i in 0..8u8 {
        let p = dir.join(format!("photo{i}.png"));
        let mut img = RgbImage::from_pixel(60, 40, Rgb([30 * i, 100, 200]));
        img.put_pixel(10, 10, Rgb([255, 255, 255]));
        img.save(&p).unwrap();
        items.push(ItemInfo {
            source: p.display().to_string(),
            region: (i % 2 == 1).then_some([10.0, 5.0, 30.0, 35.0]),
        });
    }
    let idx = dir.join("t10k-images-idx3-ubyte.gz");
    let mut raw = vec![0, 0, 8, 3];
    for d in [8u32, 28, 28] {
        raw.extend_from_slice(&d.to_be_bytes());
    }
    for r in 0..8u8 {
        raw.extend(std::iter::repeat_n(10 * r, 28 * 28));
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    std::fs::write(&idx, gz.finish().unwrap()).unwrap();
    for r in 0..8 {
        items.push(ItemInfo {
            source: format!("{}#{r}", idx.display()),
            region: None,
        });
    }
    let n = items.len();
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 3).collect();
    let vectors: Vec<f32> = (0..n)
        .flat_map(|i| {
            let mut v = vec![0.1f32; 8];
            v[i % 3] = 5.0;
            v[3 + i % 5] += i as f32 * 0.01;
            v
        })
        .collect();
    let pairings: Vec<ItemPairing> = (0..n)
        .map(|i| ItemPairing {
            subject: (i < 8).then(|| format!("p{}", i / 2)),
            side: (i < 8).then_some(if i % 2 == 0 { Side::Left } else { Side::Right }),
        })
        .collect();
    let with_items = dir.join("index");
    IndexBuilder::new()
        .metric(Metric::L2)
        .seed(1)
        .classes(vec!["a".into(), "b".into(), "c".into()])
        .pairings(pairings)
        .build(&vectors, 8, Some(&labels), Some(&items), &with_items, None)
        .unwrap();
    let vectors_only = dir.join("vectors-index");
    IndexBuilder::new()
        .metric(Metric::L2)
        .seed(1)
        .build(&vectors, 8, Some(&labels), None, &vectors_only, None)
        .unwrap();
    (with_items, vectors_only)
}

#[test]
fn the_page_and_its_assets_come_with_etags_and_a_same_origin_csp() {
    let dir = tempfile::tempdir().unwrap();
    let (index, _) = fixture(dir.path());
    let srv = Server::start(&["--index", s(&index)], &[]);
    let a = srv.addr;

    let page = get(a, "/");
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text().contains("/assets/app.js"));
    let csp = page.header("content-security-policy").unwrap();
    for part in ["default-src 'none'", "script-src 'self'", "img-src 'self'"] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("http"),
        "{csp}"
    );
    // Every answer carries it, JSON and errors too.
    assert!(get(a, "/healthz")
        .header("content-security-policy")
        .is_some());
    assert!(get(a, "/nope").header("content-security-policy").is_some());

    let etag = page.header("etag").unwrap().to_string();
    let again = request(a, "GET", "/", &[&format!("If-None-Match: {etag}")], b"");
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());

    for (name, mime) in [
        ("app.js", "text/javascript"),
        ("api.js", "text/javascript"),
        ("views.js", "text/javascript"),
        ("query.js", "text/javascript"),
        ("app.css", "text/css"),
    ] {
        let r = get(a, &format!("/assets/{name}"));
        assert_eq!(r.status, 200, "{name}");
        assert!(
            r.header("content-type").unwrap().starts_with(mime),
            "{name}"
        );
        assert!(r.header("etag").is_some(), "{name}");
        // No script, style or font from elsewhere: the page works offline.
        assert!(
            !r.text().contains("http://") && !r.text().contains("https://"),
            "{name}"
        );
    }
    let r = get(a, "/assets/../../Cargo.toml");
    assert_eq!(r.status, 404);
    let r = get(a, "/assets/nope.js");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("nope.js"));
}

#[test]
fn items_come_in_pages_with_their_total_and_class() {
    let dir = tempfile::tempdir().unwrap();
    let (index, _) = fixture(dir.path());
    let srv = Server::start(&["--index", s(&index)], &[]);
    let a = srv.addr;

    let r = get(a, "/items?offset=6&limit=4").json();
    assert_eq!(r["total"], 16);
    let ids: Vec<i64> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![6, 7, 8, 9]);
    assert_eq!(r["items"][1]["class"], "b");
    assert_eq!(
        r["items"][1]["region"],
        serde_json::json!([10.0, 5.0, 30.0, 35.0])
    );
    assert!(r["items"][2]["path"].as_str().unwrap().ends_with("#0"));

    // A class: its items only, and their number.
    let r = get(a, "/items?label=2&limit=100").json();
    assert_eq!(r["total"], 5);
    assert!(r["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["label"] == 2 && x["class"] == "c"));
    // By its name too, as the CLI takes it; an unknown name says the names.
    assert_eq!(get(a, "/items?label=c&limit=100").json(), r);
    let bad = get(a, "/items?label=zzz");
    assert_eq!(bad.status, 400);
    assert!(
        bad.text().contains("the index's classes are a, b, c"),
        "{}",
        bad.text()
    );
    let body = serde_json::json!({"vector": vec![0.5f32; 8], "k": 16, "labels": ["c"]});
    let hits = request(a, "POST", "/search", &[], body.to_string().as_bytes()).json();
    let hits = hits["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 5);
    assert!(hits.iter().all(|h| h["label"] == 2));
    // Past the end: an empty page, same total.
    let r = get(a, "/items?offset=100").json();
    assert_eq!(
        (r["total"].as_i64(), r["items"].as_array().unwrap().len()),
        (Some(16), 0)
    );
    for bad in [
        "/items?limit=0",
        "/items?limit=5000",
        "/items?offset=-1",
        "/items?color=red",
    ] {
        let r = get(a, bad);
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.json()["error"].is_string(), "{bad}");
    }
}

#[test]
fn thumbnails_are_drawn_from_the_items_own_source_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (index, vectors_only) = fixture(dir.path());
    let srv = Server::start(&["--index", s(&index)], &[]);
    let a = srv.addr;
    let decode = |path: &str| {
        let r = get(a, path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        (image::load_from_memory(&r.body).unwrap(), r)
    };

    // A photo with a region: cropped to it, or the whole image outlined.
    let (img, r) = decode("/items/1/image?size=64");
    assert_eq!((img.width(), img.height()), (20, 30));
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert!(r.header("cache-control").is_some());
    let (img, _) = decode("/items/1/image?size=30&region=outline");
    assert_eq!((img.width(), img.height()), (30, 20));
    let (img, _) = decode("/items/1/image?size=160&region=none");
    assert_eq!((img.width(), img.height()), (60, 40));
    // Without a region, crop is the whole image.
    let (img, _) = decode("/items/2/image");
    assert_eq!((img.width(), img.height()), (60, 40));

    // An IDX row: exactly its pixels, as PNG.
    let (img, r) = decode("/items/13/image");
    assert_eq!(r.header("content-type"), Some("image/png"));
    let g: GrayImage = img.to_luma8();
    assert_eq!(g.dimensions(), (28, 28));
    assert!(
        g.pixels().all(|p| *p == Luma([50u8])),
        "row 5 is filled with 50"
    );
    assert!(r.header("server-timing").unwrap().starts_with("thumb;dur="));

    // Revalidation: same ETag, 304 without a body; another size, another tag.
    let etag = r.header("etag").unwrap().to_string();
    let again = request(
        a,
        "GET",
        "/items/13/image",
        &[&format!("If-None-Match: {etag}")],
        b"",
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_ne!(
        get(a, "/items/13/image?size=16").header("etag").unwrap(),
        etag
    );

    // Only ids: anything else is not found, and no path can be asked for.
    for bad in [
        "/items/16/image",
        "/items/99999999999999999999/image",
        "/items/abc/image",
        "/items/-1/image",
        "/items/..%2F..%2Fetc%2Fpasswd/image",
        "/items/%2Fetc%2Fpasswd/image",
    ] {
        let r = get(a, bad);
        assert_eq!(r.status, 404, "{bad}: {}", r.text());
        assert!(
            r.json()["error"].as_str().unwrap().contains("no item"),
            "{bad}"
        );
    }
    for bad in [
        "/items/1/image?path=/etc/passwd",
        "/items/1/image?size=5000",
        "/items/1/image?region=sideways",
    ] {
        let r = get(a, bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    // A source that is gone: 404 with the reason, not a crash.
    std::fs::remove_file(dir.path().join("photo4.png")).unwrap();
    let r = get(a, "/items/4/image");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("photo4.png"));
    drop(srv);

    // An index built from vectors records no sources: nothing to draw.
    let srv = Server::start(&["--index", s(&vectors_only)], &[]);
    let r = get(srv.addr, "/items/0/image");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("no recorded image"));
}

#[test]
fn item_queries_leave_the_item_out_and_honour_k_and_the_class_filter() {
    let dir = tempfile::tempdir().unwrap();
    let (index, _) = fixture(dir.path());
    let srv = Server::start(&["--index", s(&index)], &[]);
    let a = srv.addr;

    let r = get(a, "/search/item/4?k=5").json();
    assert_eq!(r["query"]["id"], 4);
    assert_eq!(r["query"]["class"], "b");
    let hits = r["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 5);
    assert!(hits.iter().all(|h| h["id"] != 4));
    // Its own cluster first: the other items of label 1.
    assert!(hits[..4].iter().all(|h| h["label"] == 1), "{r}");
    let d: Vec<f64> = hits
        .iter()
        .map(|h| h["distance"].as_f64().unwrap())
        .collect();
    assert!(d.windows(2).all(|w| w[0] <= w[1]), "{d:?}");
    assert_eq!(
        hits.iter()
            .map(|h| h["rank"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );

    let r = get(a, "/search/item/4?k=6&labels=2").json();
    let hits = r["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 5, "five items have label 2");
    assert!(hits.iter().all(|h| h["label"] == 2 && h["class"] == "c"));

    assert_eq!(get(a, "/search/item/16").status, 404);
    assert_eq!(get(a, "/search/item/1?k=0").status, 400);
    assert_eq!(get(a, "/search/item/1?labels=x").status, 400);
}

/// Items and hits say which side of whose face they are, where the index
/// records it (the page showed two "eye" cards with no left or right), and
/// say nothing where it does not.
#[test]
fn items_and_hits_name_their_side_and_subject() {
    let dir = tempfile::tempdir().unwrap();
    let (index, vectors_only) = fixture(dir.path());
    let srv = Server::start(&["--index", s(&index)], &[]);
    let a = srv.addr;

    let page = get(a, "/items?limit=16").json();
    let items = page["items"].as_array().unwrap();
    for x in items {
        let id = x["id"].as_u64().unwrap();
        if id < 8 {
            let side = if id % 2 == 0 { "left" } else { "right" };
            assert_eq!(x["side"], side, "{x}");
            assert_eq!(x["subject"], format!("p{}", id / 2), "{x}");
        } else {
            assert!(x.get("side").is_none() && x.get("subject").is_none(), "{x}");
        }
    }
    // The fields the page read before are all still there.
    for f in ["id", "label", "class", "path", "region"] {
        assert!(items[1].get(f).is_some(), "{f}: {}", items[1]);
    }
    assert_eq!(get(a, "/items/3").json()["side"], "right");

    let r = get(a, "/search/item/4?k=15").json();
    assert_eq!(r["query"]["side"], "left", "{r}");
    assert_eq!(r["query"]["subject"], "p2", "{r}");
    let hits = r["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 15, "{r}");
    for h in hits {
        let id = h["id"].as_u64().unwrap();
        if id < 8 {
            let side = if id % 2 == 0 { "left" } else { "right" };
            assert_eq!(h["side"], side, "{h}");
            assert_eq!(h["subject"], format!("p{}", id / 2), "{h}");
        } else {
            assert!(h.get("side").is_none() && h.get("subject").is_none(), "{h}");
        }
        assert!(h["distance"].is_number() && h["rank"].is_number(), "{h}");
    }
    // `/search` shares the hits' form.
    let body = serde_json::json!({"vector": vec![0.5f32; 8], "k": 16});
    let found = request(a, "POST", "/search", &[], body.to_string().as_bytes()).json();
    let one = found["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == 5)
        .unwrap_or_else(|| panic!("{found}"));
    assert_eq!(
        (&one["side"], &one["subject"]),
        (&serde_json::json!("right"), &serde_json::json!("p2"))
    );
    drop(srv);

    // An index that records none: no such fields.
    let srv = Server::start(&["--index", s(&vectors_only)], &[]);
    let r = get(srv.addr, "/search/item/4?k=3").json();
    assert!(r["query"].get("side").is_none(), "{r}");
    assert!(r["hits"][0].get("side").is_none(), "{r}");
}

/// A label number past the index's classes is refused naming their range,
/// as an unknown class name is (`label=99` gave an empty page); an index
/// with no class list takes any integer, its labels being the data's own.
#[test]
fn a_label_number_past_the_classes_is_refused_with_their_range() {
    let dir = tempfile::tempdir().unwrap();
    let (index, vectors_only) = fixture(dir.path());
    let srv = Server::start(&["--index", s(&index)], &[]);
    let a = srv.addr;
    let want = "label 99 is out of range: this index's labels are 0..=2 (its classes a, b, c)";
    for path in [
        "/items?label=99",
        "/items?label=-1",
        "/search/item/1?labels=0,99",
    ] {
        let r = get(a, path);
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        let e = r.json()["error"].as_str().unwrap().to_string();
        assert!(
            e.contains(&want.replace("99", path.rsplit(['=', ',']).next().unwrap())),
            "{path}: {e}"
        );
    }
    let body = serde_json::json!({"vector": vec![0.5f32; 8], "exclude_labels": [3]});
    let r = request(a, "POST", "/search", &[], body.to_string().as_bytes());
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("labels are 0..=2"), "{}", r.text());
    // The classes' own numbers still filter.
    assert_eq!(get(a, "/items?label=2").json()["total"], 5);
    drop(srv);
    // `likeness query` by the same rule (it took 99 and found nothing).
    let q = |labels: &str| {
        common::likeness(&[
            "query",
            "--index",
            s(&index),
            "--id",
            "1",
            "--labels",
            labels,
        ])
    };
    let out = q("0,99");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(want), "{err}");
    let err = String::from_utf8_lossy(&q("nosuch").stderr).to_string();
    assert!(
        err.contains("no class `nosuch`: the index's classes are a, b, c"),
        "{err}"
    );
    assert!(q("b").status.success() && q("1").status.success());

    let srv = Server::start(&["--index", s(&vectors_only)], &[]);
    let r = get(srv.addr, "/items?label=99");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["total"], 0);
    assert_eq!(get(srv.addr, "/items?label=2").json()["total"], 5);
}

#[test]
fn info_reports_the_index_its_eval_and_why_image_search_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let (index, _) = fixture(dir.path());
    let eval = dir.path().join("my-eval");
    std::fs::create_dir_all(&eval).unwrap();
    std::fs::write(
        eval.join("eval.json"),
        r#"{"index": "x", "protocol": "leave-one-out", "queries": 16, "gallery": 16, "ks": [1, 2],
            "recall@1": 0.75, "recall@2": 0.875, "precision@1": 0.75, "r_precision": 0.6,
            "map@r": 0.55, "ann_recall@2": 1.0, "lone_queries": 0,
            "per_class": [{"label": 0, "class": "a", "r": 5, "queries": 6, "recall@1": 0.5}],
            "ef": 64, "seconds": 0.1}"#,
    )
    .unwrap();
    let srv = Server::start(&["--index", s(&index), "--eval", s(&eval)], &[]);
    let r = get(srv.addr, "/info").json();
    assert_eq!(r["index"]["count"], 16);
    assert_eq!(r["index"]["dim"], 8);
    assert_eq!(r["index"]["metric"], "l2");
    assert_eq!(r["index"]["classes"], serde_json::json!(["a", "b", "c"]));
    assert_eq!(r["index"]["class_counts"], serde_json::json!([6, 5, 5]));
    assert_eq!(r["eval"]["scores"]["recall@1"], 0.75);
    assert_eq!(r["eval"]["scores"]["map@r"], 0.55);
    assert_eq!(r["eval"]["per_class"][0]["class"], "a");
    assert_eq!(r["image_search"], false);
    assert!(r["image_search_unavailable"]
        .as_str()
        .unwrap()
        .contains("built from vectors"));
    assert!(r["model"].is_null());
    assert_eq!(get(srv.addr, "/info/curves.png").status, 404);
    assert_eq!(get(srv.addr, "/info/passwd").status, 404);
}

/// Without a token, a server on loopback is still reachable from the
/// pages its user opens: those may neither change it nor read it under
/// another name, while the page it serves and non-browser clients may.
#[test]
fn other_sites_pages_can_neither_change_nor_read_a_loopback_server() {
    let dir = tempfile::tempdir().unwrap();
    let (index, _) = fixture(dir.path());
    let srv = Server::start(&["--index", s(&index)], &[]);
    let a = srv.addr;
    let delete =
        |headers: &[&str]| request(a, "POST", "/admin/items/delete", headers, br#"{"ids":[3]}"#);
    let r = delete(&["Origin: http://evil.example", "Content-Type: text/plain"]);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("evil.example"));
    let r = delete(&["Sec-Fetch-Site: cross-site"]);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(get(a, "/items/3").status, 200, "item 3 must still be there");
    // DNS rebinding: the same server under a name that is not loopback.
    let r = request(a, "GET", "/info", &["Host: evil.example:7878"], b"");
    assert_eq!(r.status, 403);
    assert!(r.json()["error"].as_str().unwrap().contains("127.0.0.1"));
    // Its own page (same origin) and clients that are not browsers.
    let own = format!("Origin: http://localhost:{}", a.port());
    let host = format!("Host: localhost:{}", a.port());
    let r = delete(&[&own, &host]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["deleted"], 1);
    assert_eq!(get(a, "/items/3").status, 404);
    let r = request(a, "POST", "/admin/items/delete", &[], br#"{"ids":[4]}"#);
    assert_eq!(r.json()["deleted"], 1, "{}", r.text());
    // Ids the index never gave are 404 on every route, deletes included.
    for (method, path) in [("DELETE", "/admin/items/99999"), ("GET", "/items/abc")] {
        let r = request(a, method, path, &[], b"");
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text());
        assert!(
            r.text().contains("the index holds items 0..16"),
            "{}",
            r.text()
        );
    }
}

/// On an index with class names, a number is a class number: one that is
/// no class is refused (it once gave items a label no class has), and an
/// empty name makes no class.
#[test]
fn added_items_get_labels_the_index_has_or_new_names() {
    let dir = tempfile::tempdir().unwrap();
    let (index, _) = fixture(dir.path());
    let srv = Server::start(&["--index", s(&index)], &[]);
    let json = ["Content-Type: application/json"];
    let add = |labels: serde_json::Value| {
        let body = serde_json::json!({"vectors": [vec![0.5f32; 8]], "labels": labels});
        request(
            srv.addr,
            "POST",
            "/admin/items",
            &json,
            body.to_string().as_bytes(),
        )
    };
    for bad in [
        serde_json::json!([99]),
        serde_json::json!([-5]),
        serde_json::json!([""]),
    ] {
        let r = add(bad.clone());
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    assert!(add(serde_json::json!([99]))
        .text()
        .contains("0 a, 1 b, 2 c"));
    let r = add(serde_json::json!([2]));
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["ids"][0].as_u64().unwrap();
    assert_eq!(get(srv.addr, &format!("/items/{id}")).json()["class"], "c");
    let r = add(serde_json::json!(["d"]));
    assert_eq!(r.status, 200, "{}", r.text());
    let info = get(srv.addr, "/info").json();
    assert_eq!(
        info["index"]["classes"],
        serde_json::json!(["a", "b", "c", "d"])
    );
}

#[test]
fn admin_needs_the_token_when_one_is_set_and_off_loopback_one_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let (index, _) = fixture(dir.path());
    let srv = Server::start(&["--index", s(&index), "--admin-token", "s3cret"], &[]);
    let a = srv.addr;
    let r = request(a, "POST", "/admin/reload", &[], b"");
    assert_eq!(r.status, 401);
    assert!(r.json()["error"].as_str().unwrap().contains("admin token"));
    let r = request(
        a,
        "POST",
        "/admin/reload",
        &["Authorization: Bearer s3cre"],
        b"",
    );
    assert_eq!(r.status, 401);
    let r = request(
        a,
        "POST",
        "/admin/reload",
        &["Authorization: Bearer s3cret"],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Searches and the page need no token.
    assert_eq!(get(a, "/items").status, 200);
    drop(srv);

    // From the environment too.
    let srv = Server::start(
        &["--index", s(&index)],
        &[("LIKENESS_ADMIN_TOKEN", "env-secret")],
    );
    let r = request(srv.addr, "POST", "/admin/reload", &[], b"");
    assert_eq!(r.status, 401);
    let r = request(
        srv.addr,
        "POST",
        "/admin/reload",
        &["Authorization: Bearer env-secret"],
        b"",
    );
    assert_eq!(r.status, 200);
    drop(srv);

    // Off loopback without a token: refused before listening.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_likeness"))
        .args(["serve", "--index", s(&index), "--addr", "0.0.0.0:0"])
        .env_remove("LIKENESS_ADMIN_TOKEN")
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("not a loopback address") && err.contains("--admin-token"),
        "{err}"
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).is_empty(),
        "it must not listen"
    );
}

/// The page's class filter, read from its URL.
const URL_LABEL: &str = "new URLSearchParams(location.hash.split('?')[1] || '').get('label')";

/// A card's link once carried k alone: a click on an item of the filtered
/// gallery, or on a hit of a filtered item view, dropped the class the
/// user had chosen. Both keep it now, in the URL and in the form.
/// Cards drawn green or red.
const MARKED: &str = "document.querySelectorAll('#results .card.ok, #results .card.bad').length";
/// Why the cards are not marked, if the page says.
const UNJUDGED: &str = "document.getElementById('unjudged')?.textContent ?? null";

#[test]
fn the_class_filter_survives_a_click_on_an_item_or_a_hit() {
    let dir = tempfile::tempdir().unwrap();
    let (index, _) = fixture(dir.path());
    let srv = Server::start(&["--index", s(&index)], &[]);
    let url = format!("{}/", srv.url());
    in_browser(async |c| {
        c.goto(&format!("{url}#/?label=1")).await.unwrap();
        wait(c, &view_is("gallery"), "the gallery of class b").await;
        let items = cards(c, "#gallery").await;
        assert!(
            !items.is_empty() && items.iter().all(|x| x.1 == "b"),
            "{items:?}"
        );

        // An item of the filtered gallery: its neighbours of class b only.
        leaving(c).await;
        click(c, "#gallery .card:first-child").await;
        wait(c, &view_is("item"), "the item view").await;
        assert_eq!(js(c, URL_LABEL).await, serde_json::json!("1"));
        assert_eq!(
            js(c, "document.getElementById('result-filter').value").await,
            serde_json::json!("1")
        );
        let hits = cards(c, "#results").await;
        assert!(
            !hits.is_empty() && hits.iter().all(|x| x.1 == "b"),
            "{hits:?}"
        );
        // The item's own class asked for: its hits are marked (green).
        assert_eq!(js(c, MARKED).await, serde_json::json!(hits.len()));
        assert_eq!(js(c, UNJUDGED).await, serde_json::Value::Null);

        // Another class chosen on the item view, then a hit clicked.
        leaving(c).await;
        select(c, "#result-filter", "2").await;
        wait(c, &view_is("item"), "the item view of class c").await;
        let first = js(c, "document.getElementById('query-item').dataset.id").await;
        let hits = cards(c, "#results").await;
        assert!(
            !hits.is_empty() && hits.iter().all(|x| x.1 == "c"),
            "{hits:?}"
        );
        // Class c asked for, of an item of class b: none can be right, so
        // none is marked, and the page says why (it said nothing).
        assert_eq!(js(c, MARKED).await, serde_json::json!(0));
        let why = js(c, UNJUDGED).await;
        assert!(
            why.as_str().is_some_and(|t| t.contains("only class c")
                && t.contains("query's class b")
                && t.contains("Only class")),
            "{why}"
        );
        leaving(c).await;
        click(c, "#results .card:first-child").await;
        wait(c, &view_is("item"), "the hit's item view").await;
        let second = js(c, "document.getElementById('query-item').dataset.id").await;
        assert_ne!(first, second);
        assert_eq!(second, serde_json::json!(hits[0].0));
        assert_eq!(js(c, URL_LABEL).await, serde_json::json!("2"));
        assert_eq!(
            js(c, "document.getElementById('result-filter').value").await,
            serde_json::json!("2")
        );
        let hits = cards(c, "#results").await;
        assert!(
            !hits.is_empty() && hits.iter().all(|x| x.1 == "c"),
            "{hits:?}"
        );
    });
}

/// Each card says which side of the face its region is on (two "eye"
/// cards once looked alike), the item view too; and "‹ previous" from a
/// gallery page past the end goes to the last page (it went to another
/// page past the end).
#[test]
fn cards_name_their_side_and_previous_goes_back_to_the_last_page() {
    let dir = tempfile::tempdir().unwrap();
    let (index, _) = fixture(dir.path());
    let srv = Server::start(&["--index", s(&index)], &[]);
    let url = format!("{}/", srv.url());
    in_browser(async |c| {
        c.goto(&url).await.unwrap();
        wait(c, &view_is("gallery"), "the gallery").await;
        let sides = js(c, "[...document.querySelectorAll('#gallery .card')].slice(0, 10).map(e => [e.dataset.side, (e.querySelector('.side') || {}).textContent || ''])").await;
        let mut want = Vec::new();
        for id in 0..10 {
            want.push(match id {
                0..8 if id % 2 == 0 => serde_json::json!(["left", " · subject's left"]),
                0..8 => serde_json::json!(["right", " · subject's right"]),
                _ => serde_json::json!(["", ""]),
            });
        }
        assert_eq!(sides, serde_json::json!(want));
        leaving(c).await;
        c.goto(&format!("{url}#/item/3")).await.unwrap();
        wait(c, &view_is("item"), "item 3").await;
        let head = js(c, "document.querySelector('#query-item p').textContent").await;
        assert!(
            head.as_str()
                .unwrap()
                .contains("· subject's right · subject p1"),
            "{head}"
        );

        // 16 items, 60 a page: offset 120 is past the end, and so was 60.
        leaving(c).await;
        c.goto(&format!("{url}#/?offset=120")).await.unwrap();
        wait(c, &view_is("gallery"), "a page past the end").await;
        leaving(c).await;
        click(c, "#prev").await;
        wait(c, &view_is("gallery"), "the page before").await;
        assert_eq!(cards(c, "#gallery").await.len(), 16);
        assert_eq!(
            js(
                c,
                "new URLSearchParams(location.hash.split('?')[1] || '').get('offset')"
            )
            .await,
            serde_json::Value::Null
        );
    });
}

/// `serve --no-model` on an index that records a model: the header named
/// that model beside "No image search". It names none now, and says why;
/// at a phone's width in two lines.
#[test]
fn a_server_started_without_its_model_names_no_model_in_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("face-model-v1");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(
        model.join("model.json"),
        r#"{"spec": {"arch": "convnet", "dim": 8, "input_size": 32}, "weights_crc32": "0badcafe"}"#,
    )
    .unwrap();
    let index = dir.path().join("index");
    let vectors: Vec<f32> = (0..64).map(|i| (i % 7) as f32).collect();
    IndexBuilder::new()
        .metric(Metric::L2)
        .seed(1)
        .model_dir(model.display().to_string())
        .build(&vectors, 8, None, None, &index, None)
        .unwrap();
    let srv = Server::start(&["--index", s(&index), "--no-model"], &[]);
    let info = get(srv.addr, "/info").json();
    assert_eq!(info["image_search"], false);
    let why = info["image_search_unavailable"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(why.contains("--no-model"), "{why}");
    // The card is still described (what built the index), as not loaded.
    assert_eq!(info["model"]["name"], "face-model-v1");
    let url = format!("{}/", srv.url());
    in_browser(async |c| {
        c.goto(&url).await.unwrap();
        wait(c, &view_is("gallery"), "the gallery").await;
        let facts = js(c, "document.getElementById('facts').textContent").await;
        let facts = facts.as_str().unwrap();
        assert!(
            facts.contains("no model") && !facts.contains("face-model-v1"),
            "{facts}"
        );
        assert_eq!(
            js(c, "document.getElementById('nav-query').hidden").await,
            serde_json::json!(true)
        );
        let note = js(c, "document.getElementById('no-image-search').textContent").await;
        assert!(note.as_str().unwrap().contains("--no-model"), "{note}");
        let panel = js(c, "document.getElementById('info').textContent").await;
        assert!(
            panel
                .as_str()
                .unwrap()
                .contains("model (recorded, not loaded)"),
            "{panel}"
        );

        // At a phone's width the header keeps to two lines: the note
        // beside the facts, cut short (it took three lines more), whole
        // after a tap.
        assert_eq!(page_width(c, PHONE_WIDTH).await, u64::from(PHONE_WIDTH));
        leaving(c).await;
        c.goto(&url).await.unwrap();
        wait(c, &view_is("gallery"), "the gallery on a phone").await;
        assert!(header_fits_a_phone(c).await, "the note is cut short");
    });
}

/// A photo over 64 megapixels was refused with no way to read it: the
/// limit is `--max-megapixels` now, on every command that reads photos,
/// and the refusal names it. Here a 1100×1000 photo against a limit of 1
/// (1024×1024 pixels), then 2; and the flag's bounds.
#[test]
fn max_megapixels_raises_the_photo_limit_and_the_refusal_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("wide.png");
    RgbImage::from_pixel(1100, 1000, Rgb([90, 120, 200]))
        .save(&photo)
        .unwrap();
    let index = dir.path().join("index");
    IndexBuilder::new()
        .metric(Metric::L2)
        .seed(1)
        .build(
            &[1.0, 0.0, 0.0, 1.0],
            2,
            None,
            Some(&[
                ItemInfo {
                    source: photo.display().to_string(),
                    region: None,
                },
                ItemInfo {
                    source: photo.display().to_string(),
                    region: Some([0.0, 0.0, 10.0, 10.0]),
                },
            ]),
            &index,
            None,
        )
        .unwrap();
    let small = Server::start(&["--index", s(&index), "--max-megapixels", "1"], &[]);
    let a = get(small.addr, "/items/0/image?size=64");
    let text = String::from_utf8_lossy(&a.body).to_string();
    assert!(a.status >= 400, "{}: {text}", a.status);
    assert!(
        text.contains("1100x1000") && text.contains("--max-megapixels"),
        "{text}"
    );
    drop(small);
    let raised = Server::start(&["--index", s(&index), "--max-megapixels", "2"], &[]);
    assert_eq!(get(raised.addr, "/items/0/image?size=64").status, 200);
    drop(raised);
    for bad in ["0", "1025", "lots"] {
        let o = common::likeness(&["serve", "--index", s(&index), "--max-megapixels", bad]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{bad}: {err}");
        assert!(err.contains("from 1 to 1024"), "{bad}: {err}");
    }
}
