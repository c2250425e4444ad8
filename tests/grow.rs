//! A gallery that grows, through the real binary: `add`, `delete`,
//! `update`, `compact` from the command line; the same over HTTP with
//! searches seeing each answered change; and the fault-injection test:
//! writers killed (`SIGKILL`) at random instants, each followed by open,
//! `verify` and a check that every acknowledged change is there and no
//! change is there in part.
//!
//! `LIKENESS_KILLS` sets the number of kills (default 40 here; `make
//! bench-grow` runs 200).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::server::{request, Server};
use likeness_index::{npy, Index};
use rand::{Rng, SeedableRng};

const DIM: usize = 16;

fn write_npy_f32(path: &Path, rows: &[f32], cols: usize) {
    let f = std::fs::File::create(path).unwrap();
    npy::write_to(std::io::BufWriter::new(f), rows, &[rows.len() / cols, cols]).unwrap();
}

fn write_npy_i64(path: &Path, v: &[i64]) {
    let f = std::fs::File::create(path).unwrap();
    npy::write_to(std::io::BufWriter::new(f), v, &[v.len()]).unwrap();
}

fn random(rng: &mut impl Rng, n: usize) -> Vec<f32> {
    (0..n * DIM)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect()
}

fn ok(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The ids of each query row, from `likeness query ... --json`.
fn query_ids(args: &[&str]) -> Vec<Vec<i64>> {
    let mut a = vec!["query"];
    a.extend_from_slice(args);
    a.push("--json");
    let out = ok(&common::likeness(&a));
    out.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "query")
        .map(|v| {
            v["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_i64().unwrap())
                .collect()
        })
        .collect()
}

/// An l2 index of `n` random rows with labels `i % 5`, built by the binary.
fn built(dir: &Path, n: usize, rng: &mut impl Rng) -> (PathBuf, Vec<f32>) {
    let v = random(rng, n);
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 5).collect();
    write_npy_f32(&dir.join("base.npy"), &v, DIM);
    write_npy_i64(&dir.join("base-labels.npy"), &labels);
    let ix = dir.join("ix");
    ok(&common::likeness(&[
        "build",
        "--vectors",
        dir.join("base.npy").to_str().unwrap(),
        "--labels",
        dir.join("base-labels.npy").to_str().unwrap(),
        "--metric",
        "l2",
        "--m",
        "8",
        "--ef-construction",
        "40",
        "--out",
        ix.to_str().unwrap(),
    ]));
    (ix, v)
}

#[test]
fn add_delete_update_compact_from_the_command_line() {
    let t = tempfile::tempdir().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let (ix, _) = built(t.path(), 500, &mut rng);
    let ixs = ix.to_str().unwrap();
    let new = random(&mut rng, 3);
    write_npy_f32(&t.path().join("new.npy"), &new, DIM);
    write_npy_i64(&t.path().join("new-labels.npy"), &[1, 2, 3]);
    let ids_out = t.path().join("ids.npy");
    let out = ok(&common::likeness(&[
        "add",
        "--index",
        ixs,
        "--vectors",
        t.path().join("new.npy").to_str().unwrap(),
        "--labels",
        t.path().join("new-labels.npy").to_str().unwrap(),
        "--ids-out",
        ids_out.to_str().unwrap(),
    ]));
    assert!(out.contains("ids 500..=502"), "{out}");
    assert_eq!(npy::read_labels(&ids_out).unwrap(), vec![500, 501, 502]);
    // The new item is found by its own vector, by id and by label.
    let newp = t.path().join("new.npy");
    let newp = newp.to_str().unwrap();
    assert_ne!(
        query_ids(&["--index", ixs, "--id", "501", "-k", "1"]),
        vec![vec![501]],
        "a query by id leaves the item out"
    );
    assert_eq!(
        query_ids(&["--index", ixs, "--vectors", newp, "-k", "1"]),
        vec![vec![500], vec![501], vec![502]]
    );
    assert_eq!(
        query_ids(&[
            "--index",
            ixs,
            "--vectors",
            newp,
            "-k",
            "1",
            "--labels",
            "2",
            "--exact"
        ])[1],
        vec![501]
    );
    // Deleting: by id and by label; never found again.
    ok(&common::likeness(&[
        "delete", "--index", ixs, "--ids", "501",
    ]));
    for extra in [
        &[][..],
        &["--exact"],
        &["--labels", "2"],
        &["--labels", "2", "--plan", "graph"],
    ] {
        let mut a = vec!["--index", ixs, "--vectors", newp, "-k", "3"];
        a.extend_from_slice(extra);
        let found = query_ids(&a);
        assert!(
            !found.iter().flatten().any(|&i| i == 501),
            "{extra:?}: {found:?}"
        );
    }
    let out = ok(&common::likeness(&[
        "delete", "--index", ixs, "--label", "4",
    ]));
    assert!(out.contains("deleted 100 items"), "{out}");
    let gone = common::likeness(&["query", "--index", ixs, "--id", "501"]);
    assert!(!gone.status.success() && String::from_utf8_lossy(&gone.stderr).contains("deleted"));
    // Errors say what is wrong.
    let bad = common::likeness(&["delete", "--index", ixs, "--ids", "9999"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("0..503"),
        "{bad:?}"
    );
    let bad = common::likeness(&["update", "--index", ixs, "--ids", "7", "--labels", "cat"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("integer"),
        "{bad:?}"
    );
    ok(&common::likeness(&[
        "update", "--index", ixs, "--ids", "7,8", "--labels", "3",
    ]));
    let out = ok(&common::likeness(&["compact", "--index", ixs]));
    assert!(out.contains("402 live items"), "{out}");
    ok(&common::likeness(&["verify", "--index", ixs]));
    let index = Index::open(&ix).unwrap();
    assert_eq!((index.label_of(7), index.label_of(8)), (Some(3), Some(3)));
    assert_eq!(index.deleted_count(), 101);
}

#[test]
fn http_adds_and_deletes_are_searchable_on_the_next_request() {
    let t = tempfile::tempdir().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let (ix, _) = built(t.path(), 400, &mut rng);
    let server = Server::start(&["--index", ix.to_str().unwrap()], &[]);
    let json = ["Content-Type: application/json"];
    // Enough single adds to pass a fold.
    let adds = likeness_index::FOLD_AT + 20;
    for k in 0..adds {
        let v = random(&mut rng, 1);
        let body = serde_json::json!({ "vectors": [v], "labels": [k as i64 % 5] }).to_string();
        let a = request(server.addr, "POST", "/admin/items", &json, body.as_bytes());
        assert_eq!(a.status, 200, "{}", a.text());
        let id = a.json()["ids"][0].as_u64().unwrap();
        assert_eq!(id, 400 + k as u64);
        let q = serde_json::json!({ "vector": v, "k": 1 }).to_string();
        let s = request(server.addr, "POST", "/search", &json, q.as_bytes());
        assert_eq!(
            s.json()["hits"][0]["id"].as_u64(),
            Some(id),
            "added item {id} not found next"
        );
    }
    let stats = common::server::get(server.addr, "/stats").json();
    assert!(
        stats["changes"]["generation"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    // Deletes, single and batch; gone from search, /items and /items/{id}.
    assert_eq!(
        request(server.addr, "DELETE", "/admin/items/3", &[], b"").status,
        200
    );
    let a = request(
        server.addr,
        "POST",
        "/admin/items/delete",
        &json,
        br#"{"ids": [4, 5, 401]}"#,
    );
    assert_eq!(a.json()["deleted"], 3);
    assert_eq!(common::server::get(server.addr, "/items/401").status, 404);
    let page = common::server::get(server.addr, "/items?limit=10").json();
    let first: Vec<u64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_u64().unwrap())
        .collect();
    assert_eq!(first[..4], [0, 1, 2, 6]);
    let search = common::server::get(server.addr, "/search/item/0?k=50").json();
    assert!(search["hits"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| ![3, 4, 5, 401].contains(&h["id"].as_u64().unwrap())));
    let bad = request(
        server.addr,
        "POST",
        "/admin/items",
        &json,
        br#"{"vectors": [[1, 2]]}"#,
    );
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("dimension"), "{}", bad.text());
    // A second writer is refused while the server holds the index.
    let busy = common::likeness(&["delete", "--index", ix.to_str().unwrap(), "--ids", "9"]);
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("another process"),
        "{busy:?}"
    );
    let c = request(server.addr, "POST", "/admin/compact", &[], b"");
    assert_eq!(c.status, 200, "{}", c.text());
    assert_eq!(
        common::server::get(server.addr, "/stats").json()["changes"]["segments"],
        1
    );
    server.stop();
    ok(&common::likeness(&[
        "verify",
        "--index",
        ix.to_str().unwrap(),
    ]));
    // With an admin token, changes need it.
    let server = Server::start(
        &["--index", ix.to_str().unwrap()],
        &[("LIKENESS_ADMIN_TOKEN", "s3cret")],
    );
    let body = serde_json::json!({ "vectors": [random(&mut rng, 1)], "labels": [1] }).to_string();
    let no = request(server.addr, "POST", "/admin/items", &json, body.as_bytes());
    assert_eq!(no.status, 401, "{}", no.text());
    // JSON sent as curl -d sends it (a form): named, not "cannot decode image".
    let form = request(
        server.addr,
        "POST",
        "/admin/items",
        &[
            "Content-Type: application/x-www-form-urlencoded",
            "Authorization: Bearer s3cret",
        ],
        body.as_bytes(),
    );
    assert_eq!(form.status, 415, "{}", form.text());
    assert!(
        form.text()
            .contains("Content-Type is application/x-www-form-urlencoded: send it as Content-Type: application/json"),
        "{}",
        form.text()
    );
    assert_eq!(
        request(server.addr, "DELETE", "/admin/items/9", &[], b"").status,
        401
    );
    let yes = request(
        server.addr,
        "POST",
        "/admin/items",
        &[json[0], "Authorization: Bearer s3cret"],
        body.as_bytes(),
    );
    assert_eq!(yes.status, 200, "{}", yes.text());
    server.stop();
}

/// Regression: the server compacted on deleted ids over all ids, which
/// compaction cannot lower (deleted ids stay deleted), so after one
/// background compaction every later delete, even of nothing, rebuilt the
/// whole graph again.
#[test]
fn a_background_compaction_is_not_repeated_by_every_later_delete() {
    let t = tempfile::tempdir().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let (ix, _) = built(t.path(), 200, &mut rng);
    let server = Server::start(&["--index", ix.to_str().unwrap()], &[]);
    let json = ["Content-Type: application/json"];
    let changes = || common::server::get(server.addr, "/stats").json()["changes"].clone();
    let delete = |ids: &str| {
        let body = format!(r#"{{"ids": [{ids}]}}"#);
        let a = request(
            server.addr,
            "POST",
            "/admin/items/delete",
            &json,
            body.as_bytes(),
        );
        assert_eq!(a.status, 200, "{}", a.text());
    };
    // 39 of 200 deleted: under a fifth, no compaction.
    delete(&(0..39).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
    let c = changes();
    assert_eq!(
        (c["generation"].as_u64(), c["deleted_in_graph"].as_u64()),
        (Some(0), Some(39)),
        "{c}"
    );
    // The 40th: a fifth, compacted in the background.
    delete("39");
    let deadline = Instant::now() + Duration::from_secs(60);
    while changes()["generation"] == 0 {
        assert!(
            Instant::now() < deadline,
            "no background compaction: {}",
            changes()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let c = changes();
    assert_eq!(
        (
            c["generation"].as_u64(),
            c["deleted"].as_u64(),
            c["deleted_in_graph"].as_u64()
        ),
        (Some(1), Some(40), Some(0)),
        "{c}"
    );
    assert_eq!(c["deleted_fraction"].as_f64(), Some(0.0), "{c}");
    // One more delete, and one of an id already deleted: 1 of 161 searched
    // items is deleted, so nothing compacts (a compaction of 160 items takes
    // milliseconds: a second is ample to see one start and finish).
    delete("40");
    delete("3");
    std::thread::sleep(Duration::from_secs(1));
    let c = changes();
    assert_eq!(
        (
            c["generation"].as_u64(),
            c["deleted"].as_u64(),
            c["deleted_in_graph"].as_u64()
        ),
        (Some(1), Some(41), Some(1)),
        "{c}"
    );
    server.stop();
}

/// Regression: `add --ids-out` into a place that cannot be written added
/// the items, then failed without their ids; a retry added them twice.
#[test]
fn add_checks_ids_out_before_adding_and_names_the_ids_if_it_fails_after() {
    let t = tempfile::tempdir().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
    let (ix, _) = built(t.path(), 200, &mut rng);
    let ixs = ix.to_str().unwrap();
    write_npy_f32(&t.path().join("new.npy"), &random(&mut rng, 5), DIM);
    write_npy_i64(&t.path().join("new-labels.npy"), &[1; 5]);
    let add = |ids_out: &Path| {
        common::likeness(&[
            "add",
            "--index",
            ixs,
            "--vectors",
            t.path().join("new.npy").to_str().unwrap(),
            "--labels",
            t.path().join("new-labels.npy").to_str().unwrap(),
            "--ids-out",
            ids_out.to_str().unwrap(),
        ])
    };
    let folder = t.path().join("a-folder");
    std::fs::create_dir(&folder).unwrap();
    for bad in [
        t.path().join("missing").join("ids.npy"),
        folder.clone(),
        PathBuf::from("/proc/ids.npy"),
    ] {
        let out = add(&bad);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad:?}");
        assert!(
            err.contains("--ids-out") && err.contains("nothing was added"),
            "{bad:?}: {err}"
        );
        assert_eq!(
            Index::open(&ix).unwrap().len(),
            200,
            "{bad:?}: items were added"
        );
    }
    // Nothing left behind in the folder that was refused.
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);
    let good = t.path().join("ids.npy");
    let out = ok(&add(&good));
    assert!(out.contains("ids 200..=204"), "{out}");
    assert_eq!(
        npy::read_labels(&good).unwrap(),
        (200..205).collect::<Vec<i64>>()
    );
    let leftovers: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".ids.npy"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// What one writer process was asked to do.
#[derive(Debug, Clone)]
enum Op {
    Add(Vec<f32>),
    Delete(Vec<u64>),
    Compact,
}

fn kills() -> usize {
    std::env::var("LIKENESS_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40)
}

#[test]
fn writers_killed_at_random_instants_lose_nothing_acknowledged() {
    let t = tempfile::tempdir().unwrap();
    let seed = 11;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (ix, base) = built(t.path(), 3_000, &mut rng);
    // What the index must hold: every row given an id, and the deleted ids.
    let mut rows: Vec<f32> = base;
    let mut deleted = std::collections::BTreeSet::new();
    let want_kills = kills();
    let (mut killed, mut acked, mut runs) = (0, 0, 0);
    // Killed writers whose change was, and was not, on disk afterwards:
    // both must occur, or the kills missed the commit point.
    let mut tally = [0usize; 2];
    // Typical run time of each kind of change, learnt as we go, so the
    // kill instants cover each one's whole run.
    let mut typical = [Duration::from_millis(30); 4];
    let started = Instant::now();
    while killed < want_kills {
        runs += 1;
        let n = rows.len() / DIM;
        let (kind, op) = match rng.random_range(0..10) {
            0..=3 => {
                let k = rng.random_range(1..8);
                (0, Op::Add(random(&mut rng, k)))
            }
            4..=5 => (1, Op::Add(random(&mut rng, likeness_index::FOLD_AT + 10))),
            6..=8 => {
                let ids = (0..rng.random_range(1..20))
                    .map(|_| rng.random_range(0..n as u64))
                    .collect();
                (2, Op::Delete(ids))
            }
            _ => (3, Op::Compact),
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_likeness"));
        cmd.env_remove("LD_LIBRARY_PATH")
            .env("LIKENESS_THREADS", "2")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let ixs = ix.to_str().unwrap();
        match &op {
            Op::Add(v) => {
                let p = t.path().join(format!("add-{runs}.npy"));
                let l = t.path().join(format!("add-{runs}-labels.npy"));
                write_npy_f32(&p, v, DIM);
                write_npy_i64(&l, &vec![1; v.len() / DIM]);
                cmd.args([
                    "add",
                    "--index",
                    ixs,
                    "--vectors",
                    p.to_str().unwrap(),
                    "--labels",
                    l.to_str().unwrap(),
                ]);
            }
            Op::Delete(ids) => {
                let list: Vec<String> = ids.iter().map(u64::to_string).collect();
                cmd.args(["delete", "--index", ixs, "--ids", &list.join(",")]);
            }
            Op::Compact => {
                cmd.args(["compact", "--index", ixs]);
            }
        }
        // Half the runs are killed at a uniform instant within 1.5× the
        // kind's typical time; the others run to the end.
        let kill_at = rng
            .random_bool(0.5)
            .then(|| typical[kind].mul_f64(rng.random_range(0.0..1.5)));
        let t0 = Instant::now();
        let mut child = cmd.spawn().unwrap();
        let status = match kill_at {
            Some(d) => {
                std::thread::sleep(d);
                match child.try_wait().unwrap() {
                    Some(s) => Some(s),
                    None => {
                        child.kill().unwrap();
                        child.wait().unwrap();
                        killed += 1;
                        None
                    }
                }
            }
            None => Some(child.wait().unwrap()),
        };
        let out = child.wait_with_output().unwrap();
        let done = status.is_some_and(|s| s.success());
        if status.is_some() {
            assert!(
                done,
                "{op:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            typical[kind] = typical[kind].mul_f64(0.7) + t0.elapsed().mul_f64(0.3);
            acked += 1;
        }
        // Open, verify, compare with what was acknowledged.
        let index =
            Index::open(&ix).unwrap_or_else(|e| panic!("after {op:?} (killed: {}): {e}", !done));
        index
            .verify()
            .unwrap_or_else(|e| panic!("verify after {op:?}: {e}"));
        let len = index.len();
        match &op {
            Op::Add(v) => {
                let k = v.len() / DIM;
                let applied = len == n + k;
                assert!(
                    applied || (len == n && !done),
                    "add of {k} rows: {n} -> {len} (acknowledged: {done})"
                );
                if applied {
                    rows.extend_from_slice(v);
                }
                if status.is_none() {
                    tally[usize::from(!applied)] += 1;
                }
            }
            Op::Delete(ids) => {
                let now: Vec<bool> = ids.iter().map(|&i| index.is_deleted(i as usize)).collect();
                let all = now.iter().all(|&d| d);
                let none_new = ids.iter().zip(&now).all(|(i, &d)| d == deleted.contains(i));
                assert!(
                    all || (none_new && !done),
                    "delete {ids:?} half applied: {now:?}"
                );
                if all {
                    deleted.extend(ids.iter().copied());
                }
                if status.is_none() {
                    tally[usize::from(!all)] += 1;
                }
                assert_eq!(len, n);
            }
            Op::Compact => assert_eq!(len, n),
        }
        assert_eq!(
            index
                .deleted_ids()
                .iter()
                .map(|&i| i as u64)
                .collect::<Vec<_>>(),
            deleted.iter().copied().collect::<Vec<_>>()
        );
        // Every live row holds its vector (compaction zeroes deleted ones).
        for id in (0..len).step_by(97).chain(len.saturating_sub(3)..len) {
            if !deleted.contains(&(id as u64)) {
                let got = index.item_vector(id).unwrap();
                assert_eq!(&got[..], &rows[id * DIM..(id + 1) * DIM], "item {id}");
            }
        }
        drop(index);
        let _ = std::fs::remove_file(t.path().join(format!("add-{runs}.npy")));
        let _ = std::fs::remove_file(t.path().join(format!("add-{runs}-labels.npy")));
    }
    let [killed_applied, killed_lost] = tally;
    assert!(
        killed_applied > 0 && killed_lost > 0,
        "kills fell only on one side of the commit: {killed_applied} applied, {killed_lost} not"
    );
    println!(
        "kill test (seed {seed}): {killed} writers killed ({killed_applied} adds/deletes found applied, {killed_lost} found not applied, the rest compactions), {acked} ran to the end; {} items, {} deleted, {:.1}s",
        rows.len() / DIM,
        deleted.len(),
        started.elapsed().as_secs_f64()
    );
}

/// Symlinks the johns people `who` into `dir` (an image folder of them).
fn people(dir: &Path, who: &[&str]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for p in who {
        std::os::unix::fs::symlink(common::johns().join(p), dir.join(p)).unwrap();
    }
    dir.to_path_buf()
}

#[test]
fn add_data_embeds_new_people_with_the_index_model() {
    let t = tempfile::tempdir().unwrap();
    let model = t.path().join("model");
    let first = people(
        &t.path().join("first"),
        &["John_Salley", "John_Savage", "John_Schneider"],
    );
    let later = people(&t.path().join("later"), &["John_Shimkus", "John_Simm"]);
    common::train_small(&first, &model, 1, 20, &[]);
    let ix = t.path().join("ix");
    let ixs = ix.to_str().unwrap();
    ok(&common::likeness(&[
        "index",
        "--model",
        model.to_str().unwrap(),
        "--data",
        first.to_str().unwrap(),
        "--out",
        ixs,
    ]));
    let before = Index::open(&ix).unwrap().len();
    // No --model: the index's own; the new people become new classes.
    let out = ok(&common::likeness(&[
        "add",
        "--index",
        ixs,
        "--data",
        later.to_str().unwrap(),
    ]));
    assert!(out.contains("added 22 items"), "{out}");
    let index = Index::open(&ix).unwrap();
    assert_eq!(index.len(), before + 22);
    let classes = &index.manifest().classes;
    assert_eq!(
        classes[3..],
        ["John_Shimkus".to_string(), "John_Simm".to_string()]
    );
    let items = index.items().unwrap();
    assert!(
        items[before].source.contains("John_Shimkus"),
        "{:?}",
        items[before]
    );
    assert_eq!(index.label_of(before), Some(3));
    // An image of a new person finds that person's stored copy first.
    let img = common::johns_image("John_Simm");
    let found = query_ids(&["--index", ixs, "--image", img.to_str().unwrap(), "-k", "1"]);
    let hit = found[0][0] as usize;
    assert_eq!(
        index.label_of(hit),
        Some(4),
        "hit {hit}: {:?}",
        items.get(hit)
    );
    index.verify().unwrap();
    // Another model is refused, before embedding anything.
    let other = t.path().join("other");
    common::train_small(&first, &other, 1, 5, &["--seed", "9"]);
    let bad = common::likeness(&[
        "add",
        "--index",
        ixs,
        "--data",
        later.to_str().unwrap(),
        "--model",
        other.to_str().unwrap(),
    ]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("another model"),
        "{bad:?}"
    );
}
