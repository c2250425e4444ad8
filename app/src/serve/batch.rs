//! Batched image queries: concurrent `POST /search/image` requests are
//! gathered for at most `wait` after the first of them arrives (or until
//! `max` are waiting) and embedded in one forward pass on one thread, as
//! model servers do (TorchServe, Triton, Ray Serve's `@serve.batch`). A
//! forward pass over a batch costs little more than over one image, and the
//! requests that arrive during it form the next batch.
//!
//! Each request keeps its own answer and its own error: the embedder decodes
//! every image on its own, so a bad image fails only its request.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::json;

use crate::embedder::{embed_encoded, Embedded, ImageEmbedder};
use crate::read::DecodeLimits;

/// What one request gets back: its vector (and grade), or its own error text.
pub type Answer = std::result::Result<Embedded, String>;

struct Job {
    bytes: Bytes,
    region: Option<[u32; 4]>,
    reply: tokio::sync::oneshot::Sender<Answer>,
}

/// Batch sizes seen, in power-of-two buckets (1, 2, 3-4, 5-8, ...).
pub struct BatchStats {
    batches: AtomicU64,
    images: AtomicU64,
    largest: AtomicU64,
    buckets: Vec<AtomicU64>,
}

impl BatchStats {
    fn new() -> Self {
        BatchStats {
            batches: AtomicU64::new(0),
            images: AtomicU64::new(0),
            largest: AtomicU64::new(0),
            buckets: (0..12).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn record(&self, size: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.images.fetch_add(size as u64, Ordering::Relaxed);
        self.largest.fetch_max(size as u64, Ordering::Relaxed);
        let b = (usize::BITS - (size.max(1) - 1).leading_zeros()) as usize;
        self.buckets[b.min(self.buckets.len() - 1)].fetch_add(1, Ordering::Relaxed);
    }

    /// `{"batches", "images", "mean_size", "largest", "sizes": {"1": n, "2": n, "3-4": n, ...}}`.
    pub fn json(&self) -> serde_json::Value {
        let batches = self.batches.load(Ordering::Relaxed);
        let images = self.images.load(Ordering::Relaxed);
        let mut sizes = serde_json::Map::new();
        for (b, c) in self.buckets.iter().enumerate() {
            let c = c.load(Ordering::Relaxed);
            if c == 0 {
                continue;
            }
            let (lo, hi) = if b == 0 {
                (1, 1)
            } else {
                ((1 << (b - 1)) + 1, 1 << b)
            };
            let name = if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            };
            sizes.insert(name, c.into());
        }
        json!({
            "batches": batches,
            "images": images,
            "mean_size": if batches > 0 { images as f64 / batches as f64 } else { 0.0 },
            "largest": self.largest.load(Ordering::Relaxed),
            "sizes": sizes,
        })
    }
}

/// The gatherer: a queue and the thread that empties it in batches.
pub struct Batcher {
    tx: SyncSender<Job>,
    pub stats: Arc<BatchStats>,
    pub wait: Duration,
    pub max: usize,
}

impl Batcher {
    /// Starts the batching thread. It ends when the `Batcher` is dropped.
    pub fn start(
        embedder: Arc<dyn ImageEmbedder>,
        wait: Duration,
        max: usize,
        limits: DecodeLimits,
    ) -> Self {
        let max = max.max(1);
        // Room for a few batches; beyond that, requests wait in `submit`
        // (async, holding no thread) rather than piling up in memory.
        let (tx, rx) = sync_channel::<Job>(4 * max);
        let stats = Arc::new(BatchStats::new());
        let st = Arc::clone(&stats);
        std::thread::Builder::new()
            .name("image-batcher".into())
            .spawn(move || run(rx, embedder.as_ref(), wait, max, &limits, &st))
            .expect("spawning the image batching thread");
        Batcher {
            tx,
            stats,
            wait,
            max,
        }
    }

    /// Queues one image and waits for its vector.
    pub async fn submit(&self, bytes: Bytes, region: Option<[u32; 4]>) -> Answer {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let mut job = Job {
            bytes,
            region,
            reply,
        };
        // The queue is bounded; when full, yield and try again.
        loop {
            match self.tx.try_send(job) {
                Ok(()) => break,
                Err(std::sync::mpsc::TrySendError::Full(j)) => {
                    job = j;
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                    return Err("the image embedder has stopped".into())
                }
            }
        }
        rx.await
            .unwrap_or_else(|_| Err("the image embedder failed".into()))
    }
}

fn run(
    rx: Receiver<Job>,
    embedder: &dyn ImageEmbedder,
    wait: Duration,
    max: usize,
    limits: &DecodeLimits,
    stats: &BatchStats,
) {
    while let Ok(first) = rx.recv() {
        let deadline = Instant::now() + wait;
        let mut jobs = vec![first];
        while jobs.len() < max {
            let now = Instant::now();
            let next = if now >= deadline {
                // The window is over: take only what is already waiting.
                rx.try_recv().map_err(|e| match e {
                    TryRecvError::Empty => RecvTimeoutError::Timeout,
                    TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                })
            } else {
                rx.recv_timeout(deadline - now)
            };
            match next {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let inputs: Vec<(&[u8], Option<[u32; 4]>)> =
            jobs.iter().map(|j| (&j.bytes[..], j.region)).collect();
        let mut answers = embed_encoded(embedder, &inputs, limits);
        stats.record(jobs.len());
        // An embedder that answers the wrong number of images fails them all
        // rather than giving one request another's vector.
        if answers.len() != jobs.len() {
            let msg = format!(
                "the image embedder answered {} of {} images",
                answers.len(),
                jobs.len()
            );
            answers = jobs.iter().map(|_| Err(msg.clone())).collect();
        }
        for (job, answer) in jobs.into_iter().zip(answers) {
            let _ = job.reply.send(answer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Embeds `[first pixel, images in the forward pass]`.
    struct Echo;
    impl ImageEmbedder for Echo {
        fn embed_images(
            &self,
            images: &[&image::DynamicImage],
        ) -> std::result::Result<Vec<Vec<f32>>, String> {
            Ok(images
                .iter()
                .map(|i| vec![f32::from(i.to_luma8()[(0, 0)][0]), images.len() as f32])
                .collect())
        }
        fn fingerprint(&self) -> String {
            "echo".into()
        }
    }

    /// A 1x1 grey PNG of value `v`; 0 gives bytes that are no image.
    fn png(v: u8) -> Bytes {
        if v == 0 {
            return Bytes::from_static(b"not an image");
        }
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(1, 1, image::Luma([v])))
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        Bytes::from(out.into_inner())
    }

    #[test]
    fn concurrent_requests_share_a_batch_and_keep_their_own_answers() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let b = Arc::new(Batcher::start(
            Arc::new(Echo),
            Duration::from_millis(300),
            8,
            DecodeLimits::default(),
        ));
        let answers: Vec<Answer> = rt.block_on(async {
            let tasks: Vec<_> = (0u8..6)
                .map(|i| {
                    let b = Arc::clone(&b);
                    tokio::spawn(async move { b.submit(png(i), None).await })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        });
        // Image 0 fails alone; every other gets its own pixel back.
        assert!(answers[0].as_ref().unwrap_err().contains("decode"));
        for (i, a) in answers.iter().enumerate().skip(1) {
            let v = &a.as_ref().unwrap().vector;
            assert_eq!(v[0], i as f32);
            assert_eq!(
                v[1], 5.0,
                "all six arrived within the window: one batch of 5 good images"
            );
        }
        let s = b.stats.json();
        assert_eq!(s["batches"], 1, "{s}");
        assert_eq!(s["sizes"]["5-8"], 1, "{s}");
    }

    #[test]
    fn a_full_batch_goes_without_waiting_for_the_window() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let b = Arc::new(Batcher::start(
            Arc::new(Echo),
            Duration::from_secs(30),
            2,
            DecodeLimits::default(),
        ));
        let start = Instant::now();
        let answers: Vec<Answer> = rt.block_on(async {
            let x = b.submit(png(7), None);
            let y = b.submit(png(9), None);
            let (x, y) = tokio::join!(x, y);
            vec![x, y]
        });
        assert!(start.elapsed() < Duration::from_secs(10));
        assert_eq!(answers[0].as_ref().unwrap().vector, vec![7.0, 2.0]);
        assert_eq!(answers[1].as_ref().unwrap().vector, vec![9.0, 2.0]);
    }

    #[test]
    fn batch_sizes_are_bucketed_by_powers_of_two() {
        let s = BatchStats::new();
        for n in [1, 2, 3, 4, 5, 32, 33] {
            s.record(n);
        }
        let j = s.json();
        assert_eq!(j["sizes"]["1"], 1);
        assert_eq!(j["sizes"]["2"], 1);
        assert_eq!(j["sizes"]["3-4"], 2);
        assert_eq!(j["sizes"]["5-8"], 1);
        assert_eq!(j["sizes"]["17-32"], 1);
        assert_eq!(j["sizes"]["33-64"], 1);
        assert_eq!(j["largest"], 33);
        assert_eq!(j["images"], 80);
    }
}
