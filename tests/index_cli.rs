//! `likeness build`, `query` and `verify` end to end, on small generated
//! `.npy` files: the binary is run as a user would run it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use likeness_index::npy;

use common::likeness;

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(args: &[&str]) -> Output {
    let o = likeness(args);
    assert!(o.status.success(), "likeness {args:?} failed\n{}", text(&o));
    o
}

fn fails(args: &[&str]) -> String {
    let o = likeness(args);
    assert_eq!(o.status.code(), Some(2), "likeness {args:?}\n{}", text(&o));
    stderr(&o)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// SplitMix64 in [-1, 1): seeded data without depending on a RNG's API.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// `n` points of `dim` around 8 centres; returns the values and the labels.
fn clustered(n: usize, dim: usize, seed: u64) -> (Vec<f32>, Vec<i64>) {
    let mut r = Rng(seed);
    let centres: Vec<f32> = (0..8 * dim).map(|_| r.next()).collect();
    let mut v = Vec::with_capacity(n * dim);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % 8;
        labels.push(c as i64);
        for d in 0..dim {
            v.push(centres[c * dim + d] + 0.4 * r.next());
        }
    }
    (v, labels)
}

/// A 2-D int64 `.npy` as rows.
fn read_ids(path: &Path) -> Vec<Vec<i64>> {
    let bytes = std::fs::read(path).unwrap();
    let h = npy::parse_header(&bytes).unwrap();
    assert_eq!(h.shape.len(), 2, "{:?}", h.shape);
    let d = h.dtype;
    assert!(
        d.kind == npy::Kind::Int && d.size == 8 && !d.big_endian,
        "{d:?}"
    );
    let k = h.shape[1];
    let ids: Vec<i64> = bytes[h.data_offset..]
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(ids.len(), h.shape[0] * k);
    ids.chunks(k).map(<[i64]>::to_vec).collect()
}

/// Writes a float matrix as float64 or float16 (round to nearest is not
/// needed: the values only have to be what the test compares against).
fn write_as(path: &Path, data: &[f32], rows: usize, dim: usize, descr: &str) {
    let mut bytes = npy::header_bytes(descr, &[rows, dim]);
    for &x in data {
        match descr {
            "<f8" => bytes.extend_from_slice(&f64::from(x).to_le_bytes()),
            "<f2" => bytes.extend_from_slice(&f16_bits(x).to_le_bytes()),
            _ => unreachable!(),
        }
    }
    std::fs::write(path, bytes).unwrap();
}

/// f32 → IEEE half (truncating), for values of moderate magnitude.
fn f16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32 - 127 + 15;
    if x == 0.0 || exp <= 0 {
        return sign;
    }
    assert!(exp < 31, "{x} is too large for this test's f16 writer");
    sign | ((exp as u16) << 10) | ((b >> 13) & 0x3ff) as u16
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    base: PathBuf,
    labels: PathBuf,
    queries: PathBuf,
    n: usize,
    nq: usize,
    dim: usize,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let (n, nq, dim) = (2000, 100, 16);
    let (all, labels) = clustered(n + nq, dim, 7);
    let (base, queries) = all.split_at(n * dim);
    let f = Fixture {
        base: root.join("base.npy"),
        labels: root.join("labels.npy"),
        queries: root.join("queries.npy"),
        root,
        _dir: dir,
        n,
        nq,
        dim,
    };
    npy::write(&f.base, base, &[n, dim]).unwrap();
    npy::write(&f.labels, &labels[..n], &[n]).unwrap();
    npy::write(&f.queries, queries, &[nq, dim]).unwrap();
    f
}

impl Fixture {
    fn build(&self, name: &str, extra: &[&str]) -> PathBuf {
        let out = self.root.join(name);
        let mut args = vec![
            "--threads",
            "2",
            "build",
            "--vectors",
            s(&self.base),
            "--labels",
            s(&self.labels),
            "--out",
            s(&out),
            "--seed",
            "3",
        ];
        args.extend_from_slice(extra);
        let o = ok(&args);
        let msg = String::from_utf8_lossy(&o.stdout);
        assert!(
            msg.contains(&format!("indexed {} vectors", self.n)),
            "{msg}"
        );
        out
    }
}

#[test]
fn build_then_query_finds_the_exact_neighbours() {
    let f = fixture();
    for metric in ["l2", "cosine"] {
        let ix = f.build(&format!("ix-{metric}"), &["--metric", metric, "--m", "12"]);
        let approx = f.root.join(format!("approx-{metric}.npy"));
        let exact = f.root.join(format!("exact-{metric}.npy"));
        let o = ok(&[
            "query",
            "--index",
            s(&ix),
            "--vectors",
            s(&f.queries),
            "-k",
            "10",
            "--ef",
            "64",
            "--out",
            s(&approx),
        ]);
        let report = stderr(&o);
        for what in ["queries/s", "index open", "peak rss"] {
            assert!(report.contains(what), "{what} missing from: {report}");
        }
        assert!(o.stdout.is_empty(), "--out keeps stdout clean");
        ok(&[
            "query",
            "--index",
            s(&ix),
            "--vectors",
            s(&f.queries),
            "-k",
            "10",
            "--exact",
            "--out",
            s(&exact),
        ]);
        let (a, e) = (read_ids(&approx), read_ids(&exact));
        assert_eq!((a.len(), a[0].len()), (f.nq, 10));
        let found: usize = a
            .iter()
            .zip(&e)
            .map(|(a, e)| a.iter().filter(|i| e.contains(i)).count())
            .sum();
        let recall = found as f64 / (f.nq * 10) as f64;
        println!("{metric}: recall@10 = {recall:.4}");
        assert!(recall >= 0.95, "{metric}: recall@10 = {recall}");
        assert!(e.iter().flatten().all(|&i| (0..f.n as i64).contains(&i)));
    }
}

#[test]
fn query_prints_ids_or_json_lines() {
    let f = fixture();
    let ix = f.build("ix", &["--metric", "l2"]);
    let o = ok(&[
        "query",
        "--index",
        s(&ix),
        "--vectors",
        s(&f.queries),
        "-k",
        "3",
    ]);
    let plain = String::from_utf8(o.stdout).unwrap();
    assert_eq!(plain.lines().count(), f.nq);
    assert!(plain.lines().all(|l| l.split(' ').count() == 3), "{plain}");

    let o = ok(&[
        "query",
        "--index",
        s(&ix),
        "--vectors",
        s(&f.queries),
        "-k",
        "3",
        "--json",
    ]);
    let lines: Vec<serde_json::Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), f.nq + 1);
    for (q, v) in lines[..f.nq].iter().enumerate() {
        assert_eq!(v["type"], "query", "{v}");
        assert_eq!(v["query"], q);
        assert_eq!(v["ids"].as_array().unwrap().len(), 3);
        assert_eq!(v["distances"].as_array().unwrap().len(), 3);
        assert_eq!(v["labels"].as_array().unwrap().len(), 3, "labelled index");
    }
    let summary = &lines[f.nq];
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["queries"], f.nq);
    assert!(summary["queries_per_second"].as_f64().unwrap() > 0.0);
    assert!(summary["open_seconds"].as_f64().is_some());
}

/// `query --id` names each hit's side and subject where the index records
/// them, in `--json` (the server's strings, "left"/"right") and in the
/// table's `side` and `subject` columns, and the query item's own in its
/// header; an index that records none has neither fields nor columns.
#[test]
fn query_by_id_names_each_hits_side_and_subject() {
    use likeness_index::{IndexBuilder, ItemPairing, Metric, Side};
    let dir = tempfile::tempdir().unwrap();
    // Six points on a line; items 0..4 two faces' left and right, 4 and 5 none.
    let vectors = [0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0];
    let pairings: Vec<ItemPairing> = (0..6)
        .map(|i| ItemPairing {
            subject: (i < 4).then(|| format!("person{}", i / 2)),
            side: (i < 4).then_some(if i % 2 == 0 { Side::Left } else { Side::Right }),
        })
        .collect();
    let sided = dir.path().join("sided");
    let plain = dir.path().join("plain");
    for (out, p) in [(&sided, Some(pairings)), (&plain, None)] {
        let mut b = IndexBuilder::new().metric(Metric::L2);
        if let Some(p) = p {
            b = b.pairings(p);
        }
        b.build(&vectors, 1, Some(&[0, 0, 0, 0, 1, 1]), None, out, None)
            .unwrap();
    }

    let o = ok(&[
        "query",
        "--index",
        s(&sided),
        "--id",
        "1",
        "-k",
        "4",
        "--json",
    ]);
    let out = String::from_utf8(o.stdout).unwrap();
    let q: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let hits = q["hits"].as_array().unwrap();
    let got: Vec<(i64, &str, &str)> = hits
        .iter()
        .map(|h| {
            let f = |k: &str| h.get(k).map_or("-", |v| v.as_str().unwrap());
            (h["id"].as_i64().unwrap(), f("side"), f("subject"))
        })
        .collect();
    assert_eq!(
        got,
        [
            (0, "left", "person0"),
            (2, "left", "person1"),
            (3, "right", "person1"),
            (4, "-", "-")
        ],
        "{q}"
    );

    let o = ok(&["query", "--index", s(&sided), "--id", "1", "-k", "4"]);
    let table = String::from_utf8(o.stdout).unwrap();
    let mut lines = table.lines();
    assert_eq!(
        lines.next(),
        Some("query: item 1 (side right, subject person0)"),
        "{table}"
    );
    let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        head,
        ["rank", "distance", "id", "label", "side", "subject", "path", "[region", "x,y,w,h]"],
        "{table}"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    let cells: Vec<(&str, &str, &str)> = rows.iter().map(|r| (r[2], r[4], r[5])).collect();
    assert_eq!(
        cells,
        [
            ("0", "left", "person0"),
            ("2", "left", "person1"),
            ("3", "right", "person1"),
            ("4", "-", "-")
        ],
        "{table}"
    );

    // No pairings: no such fields, no such columns, the header as before.
    let o = ok(&[
        "query",
        "--index",
        s(&plain),
        "--id",
        "1",
        "-k",
        "4",
        "--json",
    ]);
    let out = String::from_utf8(o.stdout).unwrap();
    let q: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    for h in q["hits"].as_array().unwrap() {
        assert!(h.get("side").is_none() && h.get("subject").is_none(), "{h}");
    }
    let o = ok(&["query", "--index", s(&plain), "--id", "1", "-k", "4"]);
    let table = String::from_utf8(o.stdout).unwrap();
    assert!(table.starts_with("query: item 1\n"), "{table}");
    assert!(
        !table.contains("side") && !table.contains("subject"),
        "{table}"
    );
}

/// Runs `likeness` with its stdout sent to `stdout`.
fn likeness_to(args: &[&str], stdout: impl Into<std::process::Stdio>) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_likeness"))
        .args(args)
        .stdout(stdout)
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("LIKENESS_DEVICE")
        .env_remove("LIKENESS_THREADS")
        .output()
        .expect("run likeness")
}

/// `likeness ... | head -1`: a reader that stops early closes the pipe, and
/// the command ends quietly with exit 0, as ripgrep does; `eval` (like every
/// command that printed with `println!`) panicked, exit 101. Any other
/// failure to write stdout (a full disk) is an error, no longer ignored.
#[test]
fn a_closed_stdout_pipe_ends_the_output_quietly() {
    let f = fixture();
    let ix = f.build("ix", &["--metric", "l2"]);
    let (eval_out, build_out) = (f.root.join("eval"), f.root.join("ix-again"));
    let query = ["query", "--index", s(&ix), "--vectors", s(&f.queries)];
    let commands = [
        &query[..],
        &[&query[..], &["--json"]].concat(),
        &["verify", "--index", s(&ix)],
        &[
            "eval",
            "--index",
            s(&ix),
            "--leave-one-out",
            "--out",
            s(&eval_out),
        ],
        &[
            "build",
            "--vectors",
            s(&f.base),
            "--out",
            s(&build_out),
            "--force",
        ],
    ];
    for args in commands {
        // The reading end is closed before the command starts, so its
        // first write to stdout fails, whatever the timing.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = likeness_to(args, writer);
        assert_eq!(o.status.code(), Some(0), "likeness {args:?}\n{}", text(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
    }
    if let Ok(full) = std::fs::File::create("/dev/full") {
        let o = likeness_to(&["verify", "--index", s(&ix)], full);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(
            stderr(&o).contains("<stdout>: No space left"),
            "{}",
            text(&o)
        );
    }
}

#[test]
fn float16_and_float64_inputs_are_accepted() {
    let f = fixture();
    let m = npy::read_matrix(&f.base).unwrap();
    let q = npy::read_matrix(&f.queries).unwrap();
    let base64 = f.root.join("base64.npy");
    let q16 = f.root.join("q16.npy");
    write_as(&base64, &m.data, m.rows, m.dim, "<f8");
    write_as(&q16, &q.data, q.rows, q.dim, "<f2");
    let ix = f.root.join("ix64");
    ok(&[
        "build",
        "--vectors",
        s(&base64),
        "--out",
        s(&ix),
        "--metric",
        "l2",
    ]);
    let out = f.root.join("n.npy");
    ok(&[
        "query",
        "--index",
        s(&ix),
        "--vectors",
        s(&q16),
        "-k",
        "5",
        "--out",
        s(&out),
    ]);
    assert_eq!(read_ids(&out).len(), f.nq);
}

#[test]
fn verify_passes_then_names_the_corrupted_file() {
    let f = fixture();
    let ix = f.build("ix", &["--metric", "l2"]);
    let o = ok(&["verify", "--index", s(&ix)]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("ok"));

    // Flip one byte in the middle of the vectors: opening does not read
    // them, the full checksum pass must notice.
    let vectors = ix.join("vectors.npy");
    let mut bytes = std::fs::read(&vectors).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&vectors, bytes).unwrap();
    let err = fails(&["verify", "--index", s(&ix)]);
    assert!(err.contains("vectors.npy"), "{err}");
    assert!(err.contains("checksum"), "{err}");

    // A truncated graph is caught when opening, by query as well.
    let ix2 = f.build("ix2", &["--metric", "l2"]);
    let graph = ix2.join("graph.bin");
    let len = std::fs::metadata(&graph).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&graph)
        .unwrap()
        .set_len(len - 8)
        .unwrap();
    for args in [
        vec!["verify", "--index", s(&ix2)],
        vec!["query", "--index", s(&ix2), "--vectors", s(&f.queries)],
    ] {
        let err = fails(&args);
        assert!(err.contains("graph.bin"), "{err}");
    }
}

/// What `query` would write is checked before it searches: never over its
/// own input, never into a folder that does not exist, and no montage of
/// vectors; the input stays as it was.
#[test]
fn a_missing_index_folder_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vectors.npy");
    std::fs::write(&file, b"not an index").unwrap();
    let nowhere = dir.path().join("nowhere");
    // It used to say "nowhere/manifest.json: missing" for a mistyped --index.
    for (ix, want) in [(&nowhere, "no such directory"), (&file, "not a directory")] {
        for cmd in [
            &["query", "--index", s(ix), "--id", "0"][..],
            &["verify", "--index", s(ix)],
            &["eval", "--index", s(ix), "--leave-one-out"],
        ] {
            let err = fails(cmd);
            assert!(
                err.contains(&format!("{}: {want}; an index is the folder", ix.display())),
                "{cmd:?}: {err}"
            );
        }
    }
    // A folder that is there but holds no index still names the file.
    let err = fails(&["query", "--index", s(dir.path()), "--id", "0"]);
    assert!(err.contains("manifest.json: missing"), "{err}");
}

#[test]
fn query_outputs_are_checked_before_the_search() {
    let f = fixture();
    let ix = f.build("ix", &[]);
    let before = std::fs::read(&f.queries).unwrap();
    let q = s(&f.queries);
    let same = f.root.join(".").join("queries.npy");
    let err = fails(&[
        "query",
        "--index",
        s(&ix),
        "--vectors",
        q,
        "--out",
        s(&same),
    ]);
    assert!(err.contains("the query's own input"), "{err}");
    assert_eq!(std::fs::read(&f.queries).unwrap(), before);
    let nowhere = f.root.join("no-such-folder").join("ids.npy");
    let err = fails(&[
        "query",
        "--index",
        s(&ix),
        "--vectors",
        q,
        "--out",
        s(&nowhere),
    ]);
    assert!(err.contains("does not exist"), "{err}");
    let o = likeness(&[
        "query",
        "--index",
        s(&ix),
        "--vectors",
        q,
        "--montage",
        "m.png",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not --vectors"), "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "it must not search first");
    // What only an image query uses is not silently dropped.
    let err = fails(&[
        "query",
        "--index",
        s(&ix),
        "--id",
        "1",
        "--region",
        "1,1,5,5",
    ]);
    assert!(
        err.contains("--region belongs to a query by --image"),
        "{err}"
    );
}

#[test]
fn queries_of_another_dimension_are_refused() {
    let f = fixture();
    let ix = f.build("ix", &[]);
    let wrong = f.root.join("wrong.npy");
    npy::write(&wrong, &vec![0.5f32; 4 * (f.dim + 1)], &[4, f.dim + 1]).unwrap();
    for extra in [None, Some("--exact")] {
        let mut args = vec!["query", "--index", s(&ix), "--vectors", s(&wrong)];
        args.extend(extra);
        let err = fails(&args);
        assert!(err.contains("dimension mismatch"), "{err}");
        assert!(err.contains("wrong.npy"), "{err}");
        assert!(
            err.contains(&format!("dimension {}", f.dim + 1)) && err.contains(&f.dim.to_string()),
            "{err}"
        );
    }
}

#[test]
fn an_existing_out_is_refused_unless_forced_and_a_failed_build_keeps_it() {
    let f = fixture();
    let ix = f.build("ix", &["--metric", "l2"]);
    let manifest = std::fs::read(ix.join("manifest.json")).unwrap();
    let args = |extra: &[&'static str]| {
        let mut a: Vec<String> = ["build", "--vectors", s(&f.base), "--out", s(&ix)]
            .iter()
            .map(|x| x.to_string())
            .collect();
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let run = |a: Vec<String>| likeness(&a.iter().map(String::as_str).collect::<Vec<_>>());

    let o = run(args(&[]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("already exists"), "{}", text(&o));
    assert!(stderr(&o).contains("--force"), "{}", text(&o));

    // A build that fails (bad parameter, bad vectors) leaves the old index.
    let o = run(args(&["--force", "--m", "300"]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let nan = f.root.join("nan.npy");
    let mut v = vec![1.0f32; 10 * f.dim];
    v[3 * f.dim + 2] = f32::NAN;
    npy::write(&nan, &v, &[10, f.dim]).unwrap();
    let err = fails(&["build", "--vectors", s(&nan), "--out", s(&ix), "--force"]);
    assert!(err.contains("row 3"), "{err}");
    assert_eq!(std::fs::read(ix.join("manifest.json")).unwrap(), manifest);
    ok(&["verify", "--index", s(&ix)]);

    // --force replaces it, leaving no temporary siblings.
    let o = run(args(&["--force", "--metric", "cosine"]));
    assert!(o.status.success(), "{}", text(&o));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ix.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["metric"], "cosine");
    ok(&["verify", "--index", s(&ix)]);
    let hidden: Vec<_> = std::fs::read_dir(&f.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");

    // --force never replaces a folder that is not an index.
    let other = f.root.join("not-an-index");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("precious.txt"), "keep me").unwrap();
    let err = fails(&[
        "build",
        "--vectors",
        s(&f.base),
        "--out",
        s(&other),
        "--force",
    ]);
    assert!(err.contains("not an index directory"), "{err}");
    assert!(other.join("precious.txt").exists());
}

/// `build --force` over an index that a writer has open (here this test's
/// own, as a server with changes would hold it) is refused with the
/// writer's busy error and replaces nothing: it used to replace the
/// directory, and the writer's later changes went to the old one, lost.
#[test]
fn a_forced_build_over_an_index_being_changed_is_refused() {
    let f = fixture();
    let ix = f.build("ix", &[]);
    let manifest = std::fs::read(ix.join("manifest.json")).unwrap();
    let writer = likeness_index::Writer::open(&ix).unwrap();
    let force = [
        "build",
        "--vectors",
        s(&f.queries),
        "--out",
        s(&ix),
        "--force",
    ];
    let o = likeness(&force);
    assert!(!o.status.success(), "{}", text(&o));
    let err = stderr(&o);
    assert!(
        err.contains("another process is changing this index"),
        "{err}"
    );
    assert_eq!(std::fs::read(ix.join("manifest.json")).unwrap(), manifest);
    ok(&["verify", "--index", s(&ix)]);
    drop(writer);
    let o = ok(&force);
    let msg = String::from_utf8_lossy(&o.stdout);
    assert!(msg.contains(&format!("indexed {} vectors", f.nq)), "{msg}");
}

/// The summary's `ef` and `rerank` are what the engine ran, read from its
/// plan: the command worked them out again (`rerank` or else the beam) and
/// said "rerank 2" where the search re-scored 10 (never fewer than `k`),
/// and "ef 5" where the beam held the 50 candidates `--rerank 50` asks.
#[test]
fn the_summary_reports_the_beam_and_rerank_depth_that_ran() {
    let f = fixture();
    let ix = f.build("ix", &["--store", "i8"]);
    let summary = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "query",
            "--index",
            s(&ix),
            "--vectors",
            s(&f.queries),
            "-k",
            "10",
            "--ef",
            "5",
            "--json",
        ];
        args.extend_from_slice(extra);
        let o = ok(&args);
        let text = String::from_utf8(o.stdout).unwrap();
        serde_json::from_str(text.lines().last().unwrap()).unwrap()
    };
    let s2 = summary(&["--rerank", "2"]);
    assert_eq!((&s2["ef"], &s2["rerank"]), (&10.into(), &10.into()), "{s2}");
    let s50 = summary(&["--rerank", "50"]);
    assert_eq!(
        (&s50["ef"], &s50["rerank"]),
        (&50.into(), &50.into()),
        "{s50}"
    );
    let exact = summary(&["--exact"]);
    assert!(
        exact["ef"].is_null() && exact["rerank"].is_null(),
        "{exact}"
    );
}
