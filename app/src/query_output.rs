//! What `likeness query` prints: a table of hits for queries by id or image,
//! one line of ids per `--vectors` row, or JSON Lines; and what it measured
//! (queries/s, open time, resident memory) on stderr.
use std::io::{BufWriter, Write};
use std::path::Path;

use likeness_index::{npy, Index, ItemInfo, ItemPairing, Neighbours};
use serde::Serialize;

use crate::args::QueryArgs;
use crate::error::Result;
use crate::plural::plural;

/// One JSON Lines record of `likeness query --json`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum QueryRecord<'a> {
    /// The neighbours of query row `query`, nearest first.
    Query {
        query: usize,
        ids: &'a [i64],
        distances: &'a [f32],
        #[serde(skip_serializing_if = "Option::is_none")]
        labels: Option<Vec<Option<i64>>>,
        /// Rank, id, distance, label, class, path, region, score, subject
        /// and side of each result (each where recorded).
        hits: Vec<likeness_index::Hit>,
        /// With scores in the index: the 1/distance-weighted mean of the
        /// hits' scores.
        #[serde(skip_serializing_if = "Option::is_none")]
        predicted_score: Option<f32>,
        /// An image query with a model trained from grades: the query's
        /// grade by the model's score read-out.
        #[serde(skip_serializing_if = "Option::is_none")]
        readout_score: Option<f32>,
        /// A query by item (`--id`) of a scored index: the item's own score.
        #[serde(skip_serializing_if = "Option::is_none")]
        query_score: Option<f32>,
        /// A whole photo holding faces, with a read-out of facial regions:
        /// each face's regions and grades (then no `readout_score` nor
        /// `predicted_score`).
        #[serde(skip_serializing_if = "Option::is_none")]
        faces: Option<&'a [FaceRegionGrade]>,
    },
    /// Once, after the last query.
    Summary(&'a QueryStats),
}

/// A region of a face found on a whole photo (`query --image PHOTO` with
/// no `--region`, and a model whose read-out learnt facial regions): its
/// grade, and the box `--region` takes to query it.
#[derive(Debug, Clone, Serialize)]
pub struct FaceRegionGrade {
    /// 1 for the largest face, as `likeness regions` numbers them.
    pub face: usize,
    pub label: String,
    /// The subject's own side (`null` for nose and mouth).
    pub side: Option<&'static str>,
    /// `x, y, w, h` in the photo's pixels.
    pub region: [u32; 4],
    pub grade: Option<f32>,
}

/// What `likeness query` measured.
#[derive(Debug, Serialize)]
pub struct QueryStats {
    pub queries: usize,
    pub k: usize,
    /// `null` for exact search.
    pub ef: Option<usize>,
    pub exact: bool,
    /// How the vectors the graph search reads are stored.
    pub store: likeness_index::Store,
    /// The compact store's kernels on this CPU (f16/i8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernels: Option<&'static str>,
    /// Candidates re-scored with float32 (f16/i8 graph searches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank: Option<usize>,
    /// The plan that ran (`null` for --exact).
    pub plan: Option<likeness_index::Plan>,
    /// Resident bytes of each mapped index file after the search (from
    /// /proc/self/smaps; empty elsewhere).
    pub resident: std::collections::BTreeMap<String, u64>,
    pub threads: usize,
    pub open_seconds: f64,
    pub search_seconds: f64,
    pub queries_per_second: f64,
    /// Resident set size right after opening the index (bytes).
    pub rss_after_open_bytes: Option<u64>,
    /// Peak resident set size of the process (VmHWM, bytes).
    pub peak_rss_bytes: Option<u64>,
    /// Total size of the index files (bytes).
    pub index_bytes: u64,
}

/// Prints (or writes) the results of a query run as `args` asks. Single
/// queries by id or image get a table of hits; `--vectors` batches one line
/// of ids per query. `query_names` labels each query in the table.
pub fn emit(
    index: &Index,
    found: &Neighbours,
    stats: &QueryStats,
    args: &QueryArgs,
    query_names: Option<&[String]>,
    grades: Option<&[f32]>,
    faces: Option<&[FaceRegionGrade]>,
) -> Result<()> {
    if let Some(out) = &args.out {
        npy::write(out, found.all_ids(), &[found.queries(), found.k()])?;
    }
    let detailed = args.vectors.is_none();
    // Each item's records and subject and side, decoded once for the run.
    let (items, pairings) = if index
        .manifest()
        .files
        .contains_key(likeness_index::manifest::META)
        && (args.json || detailed)
    {
        (Some(index.items()?), Some(index.pairings()?))
    } else {
        (None, None)
    };
    let records = Records {
        items: items.as_deref(),
        pairings: pairings.as_deref(),
    };
    if args.json {
        print_json_lines(index, records, found, stats, grades, faces, &args.id)?;
    } else if detailed {
        print_table(index, records, found, args, query_names, grades, faces)?;
    } else if args.out.is_none() {
        print_ids(found)?;
    }
    eprintln!("{}", render_stats(stats));
    Ok(())
}

/// The decoded per-item records of `meta.bin` that each hit is named from.
#[derive(Clone, Copy)]
struct Records<'a> {
    items: Option<&'a [ItemInfo]>,
    pairings: Option<&'a [ItemPairing]>,
}

impl Records<'_> {
    /// Whether the index records any item's subject or side: the table
    /// then has `side` and `subject` columns.
    fn name_sides(&self) -> bool {
        self.pairings
            .is_some_and(|p| p.iter().any(|p| p.side.is_some() || p.subject.is_some()))
    }
}

fn print_table(
    index: &Index,
    records: Records<'_>,
    found: &Neighbours,
    args: &QueryArgs,
    query_names: Option<&[String]>,
    grades: Option<&[f32]>,
    faces: Option<&[FaceRegionGrade]>,
) -> Result<()> {
    let sides = records.name_sides();
    let stdout = std::io::stdout().lock();
    let mut w = BufWriter::new(stdout);
    let res = (|| {
        for q in 0..found.queries() {
            let name = match (query_names.and_then(|n| n.get(q)), args.id.get(q)) {
                (Some(n), _) => n.clone(),
                // An item of a scored index: its own score beside what
                // its neighbours predict; of a regions index, its own side
                // and subject beside its neighbours'.
                (None, Some(&id)) => {
                    let pairing = records.pairings.and_then(|p| p.get(id));
                    let about: Vec<String> = [
                        index.score_of(id).map(|s| format!("score {s:.4}")),
                        pairing.and_then(|p| p.side).map(|s| format!("side {s}")),
                        pairing
                            .and_then(|p| p.subject.as_ref())
                            .map(|s| format!("subject {s}")),
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    if about.is_empty() {
                        format!("item {id}")
                    } else {
                        format!("item {id} ({})", about.join(", "))
                    }
                }
                (None, None) => format!("query {q}"),
            };
            writeln!(w, "query: {name}")?;
            if let Some(g) = grades.and_then(|g| g.get(q)) {
                writeln!(w, "grade: {g:.4} (the model's score read-out)")?;
            }
            if let Some(faces) = faces.filter(|_| q == 0) {
                write_faces(&mut w, faces)?;
            }
            let hits = index.hits(records.items, records.pairings, found, q);
            let scored = index.scores().is_some();
            // Nor is a whole photo's neighbours' score a grade (see `faces`).
            let whole_photo = faces.is_some() && q == 0;
            if let Some(p) =
                likeness_index::score::predict_from_hits(&hits).filter(|_| scored && !whole_photo)
            {
                writeln!(
                    w,
                    "predicted score: {p:.4} (the hits' scores weighted by 1/distance)"
                )?;
            }
            // The subject column as wide as this query's longest subject.
            let subject_w = hits
                .iter()
                .filter_map(|h| h.subject.as_ref().map(|s| s.chars().count()))
                .fold("subject".len(), usize::max);
            writeln!(
                w,
                "{:>4}  {:>9}  {:>8}  {:<16}  {}{}path [region x,y,w,h]",
                "rank",
                "distance",
                "id",
                "label",
                if scored { "   score  " } else { "" },
                if sides {
                    format!("{:<5}  {:<subject_w$}  ", "side", "subject")
                } else {
                    String::new()
                },
            )?;
            for h in hits {
                let label = match (&h.class, h.label) {
                    (Some(c), _) => c.clone(),
                    (None, Some(l)) => l.to_string(),
                    (None, None) => "-".into(),
                };
                let region = h.region.map_or(String::new(), |[x0, y0, x1, y1]| {
                    format!(" [{x0},{y0},{},{}]", x1 - x0, y1 - y0)
                });
                // 1 - cos of a vector with itself can round to -1e-7.
                let d = if h.distance.abs() < 5e-6 {
                    0.0
                } else {
                    h.distance
                };
                let score = if scored {
                    h.score
                        .map_or(format!("{:>8}  ", "-"), |s| format!("{s:>8.4}  "))
                } else {
                    String::new()
                };
                let side = if sides {
                    format!(
                        "{:<5}  {:<subject_w$}  ",
                        h.side.map_or("-", |s| s.as_str()),
                        h.subject.as_deref().unwrap_or("-"),
                    )
                } else {
                    String::new()
                };
                writeln!(
                    w,
                    "{:>4}  {:>9.5}  {:>8}  {:<16}  {}{}{}{}",
                    h.rank,
                    d,
                    h.id,
                    label,
                    score,
                    side,
                    h.path.as_deref().unwrap_or("-"),
                    region
                )?;
            }
            if q + 1 < found.queries() {
                writeln!(w)?;
            }
        }
        w.flush()
    })();
    crate::stdout::closed_pipe_ok(res)
}

fn render_stats(s: &QueryStats) -> String {
    let mb = |b: Option<u64>| b.map_or("n/a".to_string(), |b| format!("{:.1} MB", b as f64 / 1e6));
    let mut extra = String::new();
    if s.store != likeness_index::Store::F32 {
        extra.push_str(&format!(
            "; store {} ({}), rerank {}",
            s.store,
            s.kernels.unwrap_or(""),
            s.rerank.map_or("-".to_string(), |r| r.to_string())
        ));
    }
    if let Some(p) = &s.plan {
        extra.push_str(&format!("; plan {}", p.kind.as_str()));
        if let Some(n) = p.passing {
            extra.push_str(&format!(
                " ({} {} the filter, exact scan at most {})",
                plural(n, "item"),
                if n == 1 { "passes" } else { "pass" },
                p.exact_below
            ));
        }
        if !p.unknown_labels.is_empty() {
            extra.push_str(&format!("; no item carries label {:?}", p.unknown_labels));
        }
    }
    if !s.resident.is_empty() {
        let parts: Vec<String> = s
            .resident
            .iter()
            .map(|(f, b)| format!("{f} {:.1} MB", *b as f64 / 1e6))
            .collect();
        extra.push_str(&format!("; resident: {}", parts.join(", ")));
    }
    format!(
        "{}, k={}, {} on {}: {:.0} queries/s ({:.3}s); index open {:.2} ms; \
         rss after open {}, peak rss {} (index files {:.1} MB){}",
        plural(s.queries, "query"),
        s.k,
        s.ef.map_or("exact".to_string(), |ef| format!("ef={ef}")),
        plural(s.threads, "thread"),
        s.queries_per_second,
        s.search_seconds,
        s.open_seconds * 1e3,
        mb(s.rss_after_open_bytes),
        mb(s.peak_rss_bytes),
        s.index_bytes as f64 / 1e6,
        extra
    )
}

/// Resident bytes of each file of `index`'s directory mapped by this
/// process (the `Rss` of its mappings in /proc/self/smaps).
pub fn resident_bytes(index: &Index) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return out;
    };
    let dir = index
        .dir()
        .canonicalize()
        .unwrap_or_else(|_| index.dir().to_path_buf());
    let mut current: Option<String> = None;
    for line in smaps.lines() {
        let mut parts = line.split_whitespace();
        let first = parts.next().unwrap_or("");
        if first.contains('-') && first.chars().next().is_some_and(|c| c.is_ascii_hexdigit()) {
            current = line
                .split_whitespace()
                .nth(5)
                .map(Path::new)
                .filter(|p| p.parent() == Some(dir.as_path()))
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned());
        } else if first == "Rss:" {
            if let (Some(name), Some(kb)) =
                (&current, parts.next().and_then(|v| v.parse::<u64>().ok()))
            {
                *out.entry(name.clone()).or_insert(0) += kb * 1024;
            }
        }
    }
    out
}

/// Plain output: one line per query, the ids separated by spaces.
fn print_ids(found: &Neighbours) -> Result<()> {
    let stdout = std::io::stdout().lock();
    let mut w = BufWriter::new(stdout);
    let res = (|| {
        for q in 0..found.queries() {
            let mut first = true;
            for id in found.ids(q) {
                if !first {
                    w.write_all(b" ")?;
                }
                first = false;
                write!(w, "{id}")?;
            }
            w.write_all(b"\n")?;
        }
        w.flush()
    })();
    crate::stdout::closed_pipe_ok(res)
}

/// The faces' graded regions, one a line, each with the `--region` that
/// queries it.
fn write_faces(w: &mut impl Write, faces: &[FaceRegionGrade]) -> std::io::Result<()> {
    let n = faces.iter().map(|f| f.face).max().unwrap_or(0);
    writeln!(
        w,
        "faces: {n} found; the read-out grades their regions, not the whole photo \
         (query a region with its --region):"
    )?;
    for f in faces {
        let [x, y, rw, rh] = f.region;
        writeln!(
            w,
            "  face {}  {:<10} {:<5}  grade {}  --region {x},{y},{rw},{rh}",
            f.face,
            f.label,
            f.side.unwrap_or("-"),
            f.grade.map_or("-".into(), |g| format!("{g:.4}")),
        )?;
    }
    Ok(())
}

fn print_json_lines(
    index: &Index,
    records: Records<'_>,
    found: &Neighbours,
    stats: &QueryStats,
    grades: Option<&[f32]>,
    faces: Option<&[FaceRegionGrade]>,
    query_ids: &[usize],
) -> Result<()> {
    let labels = index.labels();
    let stdout = std::io::stdout().lock();
    let mut w = BufWriter::new(stdout);
    fn line(w: &mut impl Write, rec: &QueryRecord<'_>) -> std::io::Result<()> {
        serde_json::to_writer(&mut *w, rec)?;
        w.write_all(b"\n")
    }
    let res = (|| {
        for q in 0..found.queries() {
            let ids = found.ids(q);
            let hits = index.hits(records.items, records.pairings, found, q);
            let rec = QueryRecord::Query {
                query: q,
                ids,
                distances: found.distances(q),
                labels: labels.map(|_| {
                    ids.iter()
                        .map(|&i| usize::try_from(i).ok().and_then(|i| index.label_of(i)))
                        .collect()
                }),
                predicted_score: likeness_index::score::predict_from_hits(&hits)
                    .filter(|_| faces.is_none() || q > 0),
                readout_score: grades.and_then(|g| g.get(q).copied()),
                query_score: query_ids.get(q).and_then(|&i| index.score_of(i)),
                faces: faces.filter(|_| q == 0),
                hits,
            };
            line(&mut w, &rec)?;
        }
        line(&mut w, &QueryRecord::Summary(stats))?;
        w.flush()
    })();
    crate::stdout::closed_pipe_ok(res)
}

/// A `kB` field of `/proc/self/status` in bytes (`None` off Linux).
pub fn proc_status_bytes(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}
