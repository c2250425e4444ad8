//! `GET /items/{id}/image?size=N&region=crop|outline|none`: a thumbnail of an
//! item drawn from its recorded source, an image file or a row of an IDX
//! file (`path#row`).
//!
//! The item decides the file: the request names only an id, so nothing but
//! the sources the index records can be read. Thumbnails are cached encoded,
//! by index generation, id, size and mode, in a least-recently-used map
//! capped in bytes; the IDX files behind them are kept decoded (Fashion-MNIST
//! test: 7.8 MB), so an IDX thumbnail is a copy, a scale and a PNG encode.
//! The `ETag` is known before any decoding (the same item, size and mode of
//! the same index give the same picture), so revalidation costs nothing.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use image::{DynamicImage, ImageEncoder, Rgb, RgbImage};
use serde::Deserialize;

use super::{ApiError, ApiResult, AppState};
use likeness_index::{ItemInfo, Manifest};

use crate::read::idx::{self, IdxImages};
use crate::read::{decode, split_source, DecodeLimits};

/// Smallest and largest `size`.
pub const MIN_SIZE: u32 = 16;
/// Largest `size`.
pub const MAX_SIZE: u32 = 1024;
/// Largest IDX payload kept decoded, in all (Fashion-MNIST train and test
/// together are 55 MB).
const MAX_IDX_BYTES: usize = 1 << 30;

/// How the item's region is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub(super) enum RegionMode {
    /// The region alone (the whole image when the item has none).
    #[default]
    Crop,
    /// The whole image with the region outlined.
    Outline,
    /// The whole image.
    None,
}

impl RegionMode {
    fn name(self) -> &'static str {
        match self {
            RegionMode::Crop => "crop",
            RegionMode::Outline => "outline",
            RegionMode::None => "none",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ImageParams {
    #[serde(default = "default_size")]
    size: u32,
    #[serde(default)]
    region: RegionMode,
}

fn default_size() -> u32 {
    160
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    generation: u32,
    id: usize,
    size: u32,
    mode: RegionMode,
}

#[derive(Clone)]
struct Thumb {
    bytes: Bytes,
    mime: &'static str,
}

/// Least recently used first out, capped in bytes.
#[derive(Default)]
struct Lru {
    map: HashMap<Key, (Thumb, u64)>,
    order: BTreeMap<u64, Key>,
    bytes: usize,
    tick: u64,
}

impl Lru {
    fn get(&mut self, k: &Key) -> Option<Thumb> {
        self.tick += 1;
        let tick = self.tick;
        let (t, last) = self.map.get_mut(k)?;
        self.order.remove(last);
        *last = tick;
        self.order.insert(tick, *k);
        Some(t.clone())
    }

    fn put(&mut self, k: Key, t: Thumb, cap: usize) {
        if t.bytes.len() > cap {
            return;
        }
        if let Some((old, last)) = self.map.remove(&k) {
            self.order.remove(&last);
            self.bytes -= old.bytes.len();
        }
        while self.bytes + t.bytes.len() > cap {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some((old, _)) = self.map.remove(&oldest) {
                self.bytes -= old.bytes.len();
            }
        }
        self.tick += 1;
        self.bytes += t.bytes.len();
        self.order.insert(self.tick, k);
        self.map.insert(k, (t, self.tick));
    }
}

/// The thumbnail cache and the decoded IDX files.
pub(super) struct Thumbs {
    cap: usize,
    /// The largest source photo decoded (`--max-megapixels`).
    limits: DecodeLimits,
    cache: Mutex<Lru>,
    idx: Mutex<HashMap<PathBuf, Arc<IdxImages>>>,
    /// Thumbnails drawn at once: a gallery asks for 60 together, and a
    /// 12-megapixel photo decodes to 36 MB, so they queue for the cores
    /// instead of each taking a blocking thread and its memory.
    drawing: tokio::sync::Semaphore,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Thumbs {
    pub(super) fn new(cap: usize, limits: DecodeLimits) -> Self {
        Thumbs {
            cap,
            limits,
            cache: Mutex::new(Lru::default()),
            idx: Mutex::new(HashMap::new()),
            drawing: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
        }
    }

    fn idx_file(&self, path: &Path) -> Result<Arc<IdxImages>, String> {
        // Held while a file loads (tens of ms, once), so that concurrent
        // first requests do not each decompress it.
        let mut files = lock(&self.idx);
        if let Some(f) = files.get(path) {
            return Ok(Arc::clone(f));
        }
        let f = Arc::new(idx::read_images(path).map_err(|e| e.to_string())?);
        let held: usize = files.values().map(|f| f.bytes()).sum();
        if held + f.bytes() > MAX_IDX_BYTES {
            files.clear();
        }
        files.insert(path.to_path_buf(), Arc::clone(&f));
        Ok(f)
    }

    /// The item's whole source image.
    fn source(&self, info: &ItemInfo) -> Result<DynamicImage, String> {
        let (path, row) = split_source(&info.source);
        match row {
            Some(row) => {
                let f = self.idx_file(path)?;
                f.image(row).map_err(|_| {
                    format!("{} has {} images, not row {row}", path.display(), f.len())
                })
            }
            None => decode::decode_file(path, &self.limits).map_err(|e| e.to_string()),
        }
    }
}

/// The region `[x0, y0, x1, y1]` as whole pixels inside a `w × h` image, or
/// `None` when nothing of it is inside.
fn pixel_box(region: [f32; 4], w: u32, h: u32) -> Option<[u32; 4]> {
    let clamp = |v: f32, hi: u32| (v.round().max(0.0) as u32).min(hi);
    let (x0, y0) = (clamp(region[0], w), clamp(region[1], h));
    let (x1, y1) = (clamp(region[2], w), clamp(region[3], h));
    (x1 > x0 && y1 > y0).then_some([x0, y0, x1 - x0, y1 - y0])
}

/// Longest side at most `size` (never enlarged: the page scales small
/// images up with `image-rendering: pixelated`).
fn fit(w: u32, h: u32, size: u32) -> (u32, u32) {
    let long = w.max(h).max(1);
    if long <= size {
        return (w.max(1), h.max(1));
    }
    let s = f64::from(size) / f64::from(long);
    (
        ((f64::from(w) * s).round() as u32).max(1),
        ((f64::from(h) * s).round() as u32).max(1),
    )
}

fn outline(img: &mut RgbImage, b: [u32; 4]) {
    let [x, y, w, h] = b;
    let (iw, ih) = img.dimensions();
    let t = (iw.max(ih) / 64).clamp(1, 4);
    let colour = Rgb([255u8, 212, 0]);
    for py in y..(y + h).min(ih) {
        for px in x..(x + w).min(iw) {
            let edge = px < x + t || py < y + t || px + t >= x + w || py + t >= y + h;
            if edge {
                img.put_pixel(px, py, colour);
            }
        }
    }
}

/// Draws and encodes a thumbnail: PNG for grey sources (IDX digits and
/// clothes: small, exact), JPEG for colour photographs.
fn render(
    src: DynamicImage,
    region: Option<[f32; 4]>,
    size: u32,
    mode: RegionMode,
) -> Result<Thumb, String> {
    let (w, h) = (src.width(), src.height());
    let b = region.and_then(|r| pixel_box(r, w, h));
    let grey = matches!(src, DynamicImage::ImageLuma8(_));
    let mut img = match (mode, b) {
        (RegionMode::Crop, Some([x, y, bw, bh])) => src.crop_imm(x, y, bw, bh),
        _ => src,
    };
    let (tw, th) = fit(img.width(), img.height(), size);
    if (tw, th) != (img.width(), img.height()) {
        img = img.thumbnail_exact(tw, th);
    }
    let mut out = Vec::new();
    if mode == RegionMode::Outline && b.is_some() {
        let mut rgb = img.to_rgb8();
        if let Some([x, y, bw, bh]) = b {
            let sx = f64::from(tw) / f64::from(w);
            let sy = f64::from(th) / f64::from(h);
            let scaled = [
                (f64::from(x) * sx) as u32,
                (f64::from(y) * sy) as u32,
                ((f64::from(bw) * sx).round() as u32).max(1),
                ((f64::from(bh) * sy).round() as u32).max(1),
            ];
            outline(&mut rgb, scaled);
        }
        return encode_jpeg(&rgb, &mut out).map(|()| Thumb {
            bytes: out.into(),
            mime: "image/jpeg",
        });
    }
    if grey {
        let g = img.to_luma8();
        image::codecs::png::PngEncoder::new_with_quality(
            &mut out,
            image::codecs::png::CompressionType::Fast,
            image::codecs::png::FilterType::Adaptive,
        )
        .write_image(
            g.as_raw(),
            g.width(),
            g.height(),
            image::ExtendedColorType::L8,
        )
        .map_err(|e| format!("PNG encoding failed: {e}"))?;
        return Ok(Thumb {
            bytes: out.into(),
            mime: "image/png",
        });
    }
    encode_jpeg(&img.to_rgb8(), &mut out).map(|()| Thumb {
        bytes: out.into(),
        mime: "image/jpeg",
    })
}

fn encode_jpeg(rgb: &RgbImage, out: &mut Vec<u8>) -> Result<(), String> {
    image::codecs::jpeg::JpegEncoder::new_with_quality(out, 85)
        .write_image(
            rgb.as_raw(),
            rgb.width(),
            rgb.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| format!("JPEG encoding failed: {e}"))
}

/// Changes when the index is rebuilt: ids then name other items.
fn generation(m: &Manifest) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&m.created_unix.to_le_bytes());
    for (name, f) in &m.files {
        h.update(name.as_bytes());
        h.update(&f.crc32.to_le_bytes());
    }
    h.finalize()
}

fn answer(t: &Thumb, etag: &str, server_ms: f64) -> Response {
    let mut r = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(t.mime)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        t.bytes.clone(),
    )
        .into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("thumb;dur={server_ms:.3}")) {
        h.insert("server-timing", v);
    }
    r
}

pub(super) async fn image(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    params: Result<Query<ImageParams>, QueryRejection>,
) -> ApiResult {
    let start = Instant::now();
    let Query(p) = params.map_err(super::query_error)?;
    if !(MIN_SIZE..=MAX_SIZE).contains(&p.size) {
        return Err(ApiError::bad(format!(
            "size = {} is out of range {MIN_SIZE}..={MAX_SIZE}",
            p.size
        )));
    }
    let l = st.current();
    let id = super::items::item_id(&l, &id)?;
    let info = l
        .items
        .get(id)
        .filter(|i| !i.source.is_empty())
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "item {id} has no recorded image: it was built or added from vectors, \
                     or added by an image upload, whose bytes are not kept (`likeness index` \
                     and `likeness add --data` record each item's image)"
                ),
            )
        })?;
    let key = Key {
        generation: generation(l.index.manifest()),
        id,
        size: p.size,
        mode: p.region,
    };
    drop(l);
    let etag = format!(
        "\"{:08x}-{id}-{}-{}\"",
        key.generation,
        key.size,
        key.mode.name()
    );
    if not_modified(&headers, &etag) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&etag) {
            r.headers_mut().insert(header::ETAG, v);
        }
        return Ok(r);
    }
    if let Some(t) = lock(&st.page.thumbs.cache).get(&key) {
        return Ok(answer(&t, &etag, start.elapsed().as_secs_f64() * 1e3));
    }
    let _slot =
        st.page.thumbs.drawing.acquire().await.map_err(|_| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "thumbnail queue closed")
        })?;
    // Drawn while this request waited for its turn?
    if let Some(t) = lock(&st.page.thumbs.cache).get(&key) {
        return Ok(answer(&t, &etag, start.elapsed().as_secs_f64() * 1e3));
    }
    let st2 = Arc::clone(&st);
    let t = tokio::task::spawn_blocking(move || {
        let thumbs = &st2.page.thumbs;
        let src = thumbs.source(&info)?;
        let t = render(src, info.region, key.size, key.mode)?;
        lock(&thumbs.cache).put(key, t.clone(), thumbs.cap);
        Ok::<_, String>(t)
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "thumbnail task failed"))?
    .map_err(|e| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no thumbnail for item {id}: {e}"),
        )
    })?;
    Ok(answer(&t, &etag, start.elapsed().as_secs_f64() * 1e3))
}

/// True when the request's `If-None-Match` names `etag`.
pub(super) fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thumb(n: usize) -> Thumb {
        Thumb {
            bytes: Bytes::from(vec![0u8; n]),
            mime: "image/png",
        }
    }

    fn key(id: usize) -> Key {
        Key {
            generation: 1,
            id,
            size: 64,
            mode: RegionMode::Crop,
        }
    }

    #[test]
    fn the_cache_keeps_under_its_cap_and_drops_the_least_recently_used() {
        let mut c = Lru::default();
        c.put(key(1), thumb(40), 100);
        c.put(key(2), thumb(40), 100);
        assert!(c.get(&key(1)).is_some()); // 1 is now the most recent
        c.put(key(3), thumb(40), 100);
        assert!(c.bytes <= 100);
        assert!(c.get(&key(2)).is_none(), "2 was least recently used");
        assert!(c.get(&key(1)).is_some() && c.get(&key(3)).is_some());
        c.put(key(4), thumb(500), 100); // larger than the whole cache: not kept
        assert!(c.get(&key(4)).is_none());
        assert_eq!(c.map.len(), c.order.len());
    }

    #[test]
    fn sources_split_into_file_and_idx_row() {
        assert_eq!(
            split_source("/d/t10k-images-idx3-ubyte.gz#12"),
            (Path::new("/d/t10k-images-idx3-ubyte.gz"), Some(12))
        );
        assert_eq!(split_source("/d/a#b.jpg"), (Path::new("/d/a#b.jpg"), None));
        assert_eq!(split_source("/d/a.jpg"), (Path::new("/d/a.jpg"), None));
    }

    #[test]
    fn regions_are_clamped_to_the_image() {
        assert_eq!(
            pixel_box([22.0, 32.0, 62.0, 60.0], 150, 150),
            Some([22, 32, 40, 28])
        );
        assert_eq!(
            pixel_box([-5.0, 0.0, 500.0, 10.0], 100, 100),
            Some([0, 0, 100, 10])
        );
        assert_eq!(pixel_box([200.0, 0.0, 300.0, 10.0], 100, 100), None);
        assert_eq!(fit(150, 75, 64), (64, 32));
        assert_eq!(fit(28, 28, 160), (28, 28));
    }

    #[test]
    fn crops_are_the_region_and_outlines_keep_the_whole_image() {
        let mut img = RgbImage::new(100, 50);
        img.put_pixel(60, 20, Rgb([200, 10, 10]));
        let src = DynamicImage::ImageRgb8(img);
        let region = Some([50.0, 10.0, 70.0, 30.0]);
        let t = render(src.clone(), region, 64, RegionMode::Crop).unwrap();
        let crop = image::load_from_memory(&t.bytes).unwrap();
        assert_eq!((crop.width(), crop.height()), (20, 20));
        let t = render(src, region, 64, RegionMode::Outline).unwrap();
        let whole = image::load_from_memory(&t.bytes).unwrap();
        assert_eq!((whole.width(), whole.height()), (64, 32));
    }
}
