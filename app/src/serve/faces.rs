//! `POST /faces`: the faces in an uploaded photo and their regions, so the
//! page can draw them and search with a click on one. The finder loads at
//! start with the default models (`make face-models`); without them the
//! route says how to get them. With a model trained from grades, each
//! region also has its `grade` by the model's score read-out (`null` for
//! labels the read-out did not learn from), so the page can set a face's
//! left side against its right, and where the model records the range it
//! learnt, `outside_learnt` (the rule `query --image` warns by,
//! [`ScoreDomainSummary::outside`]), that range given once as
//! `score_domain`. `POST /search/image` of a whole photo answers its faces
//! in the same shape ([`grade_photo`]).
use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

use super::{body_error, ApiError, ApiResult, AppState};
use crate::embedder::ImageEmbedder;
use crate::face::{self, models, FaceFinder, Landmarks, RegionBox};
use crate::model_card::{ModelSummary, ScoreDomainSummary, RANGE_SLACK};
use crate::read::decode::decode_bytes;

/// The default finder, or why there is none (printed once at start).
pub(super) fn load() -> std::result::Result<Arc<FaceFinder>, String> {
    FaceFinder::open(
        &models::default_dir(),
        Landmarks::default(),
        face::DEFAULT_MIN_FACE,
    )
    .map(Arc::new)
    .map_err(|e| format!("faces in uploaded photos are off: {e}"))
}

pub(super) async fn find(
    State(st): State<Arc<AppState>>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body = body.map_err(body_error)?;
    let finder = match &st.faces {
        Ok(f) => Arc::clone(f),
        Err(why) => return Err(ApiError::new(StatusCode::NOT_IMPLEMENTED, why.clone())),
    };
    if body.is_empty() {
        return Err(ApiError::bad("empty body: send the photo's bytes"));
    }
    let grader = grader(&st);
    let out = st
        .on_pool(
            move |st| -> std::result::Result<serde_json::Value, ApiError> {
                let image = decode_bytes(&body, Path::new("upload"), &st.limits)
                    .map_err(|e| ApiError::bad(e.to_string()))?;
                let faces = finder.find(&image);
                let boxes = face::region_boxes(&faces, &[], image.width(), image.height());
                let grades = match &grader {
                    Some((embedder, card)) => Some(grade(embedder.as_ref(), card, &image, &boxes)?),
                    None => None,
                };
                let mut graded = grades.iter().flatten().copied();
                let domain = grader.as_ref().and_then(|(_, c)| c.score_domain.as_ref());
                let faces: Vec<_> = faces
                    .iter()
                    .zip(&boxes)
                    .map(|(f, regions)| {
                        let grades: Option<Vec<_>> = grades
                            .as_ref()
                            .map(|_| graded.by_ref().take(regions.len()).collect());
                        face_json(f, regions, grades.as_deref(), domain)
                    })
                    .collect();
                let mut out =
                    json!({"width": image.width(), "height": image.height(), "faces": faces});
                if let Some(d) = domain_json(domain) {
                    out["score_domain"] = d;
                }
                Ok(out)
            },
        )
        .await??;
    Ok(axum::Json(out).into_response())
}

/// The model that grades, and its card: only a model with a score
/// read-out, which grades only the labels it learnt from. The card is the
/// one kept between requests (`serve/card.rs`), not read from the file
/// again by every whole-photo search.
pub(super) fn grader(st: &AppState) -> Option<(Arc<dyn ImageEmbedder>, Arc<ModelSummary>)> {
    st.embedder
        .clone()
        .zip(st.model_card().filter(|c| c.grades()))
}

/// What the read-out learnt, once per `/faces` answer, where the model
/// records its range: `{"labels", "min", "max", "slack"}`, a grade being
/// flagged (`outside_learnt`) beyond `slack` × (max − min) outside it.
fn domain_json(domain: Option<&ScoreDomainSummary>) -> Option<serde_json::Value> {
    let d = domain?;
    let (min, max) = d.min.zip(d.max)?;
    Some(json!({"labels": d.labels, "min": min, "max": max, "slack": RANGE_SLACK}))
}

/// One face as `/faces` answers it, and `/search/image` for a whole photo
/// of faces: its box, the detector's score, the landmarks and its regions
/// (`label`, `side`, `region` as x,y,w,h, `corners`), each with its
/// `grade` where `grades` is given (in the order of `regions`), and, where
/// a grade is a number and `domain` records the learnt range,
/// `outside_learnt`: whether the grade lies far outside that range
/// ([`ScoreDomainSummary::outside`], the rule of `query --image`'s
/// warning), a region unlike those the read-out learnt from.
pub(super) fn face_json(
    f: &face::Face,
    regions: &[RegionBox],
    grades: Option<&[Option<f32>]>,
    domain: Option<&ScoreDomainSummary>,
) -> serde_json::Value {
    let ranged = domain.filter(|d| d.min.is_some() && d.max.is_some());
    json!({
        "box": [f.bbox.x, f.bbox.y, f.bbox.w, f.bbox.h],
        "score": f.bbox.score,
        "points": f.points,
        "regions": regions.iter().enumerate().map(|(i, r)| {
            let mut v = json!({
                "label": r.placed.name,
                "side": r.placed.side.as_str(),
                "region": [r.region.x, r.region.y, r.region.w, r.region.h],
                "corners": r.placed.corners,
            });
            if let Some(g) = grades {
                let grade = g.get(i).copied().flatten();
                v["grade"] = json!(grade);
                if let (Some(d), Some(g)) = (ranged, grade) {
                    v["outside_learnt"] = json!(d.outside(g));
                }
            }
            v
        }).collect::<Vec<_>>(),
    })
}

/// A whole photo's faces, graded ([`face::grade_photo`]): `faces` as
/// `/faces` shows them, each with only the regions the read-out learnt.
/// `None` where the model has no read-out of facial regions or no face is
/// found.
pub(super) fn grade_photo(
    finder: &FaceFinder,
    embedder: &dyn ImageEmbedder,
    card: &ModelSummary,
    image: &image::DynamicImage,
) -> std::result::Result<Option<serde_json::Value>, ApiError> {
    let faces = face::grade_photo(finder, embedder, card, image, Path::new("upload"))
        .map_err(grade_error)?;
    Ok(faces.map(|faces| {
        faces
            .iter()
            .map(|f| {
                face_json(
                    &f.face,
                    &f.regions,
                    Some(&f.grades),
                    card.score_domain.as_ref(),
                )
            })
            .collect()
    }))
}

/// Every region's grade ([`face::grade_regions`]), its failures as the
/// client's (a crop) or the server's (the network).
fn grade(
    embedder: &dyn ImageEmbedder,
    card: &ModelSummary,
    image: &image::DynamicImage,
    boxes: &[Vec<RegionBox>],
) -> std::result::Result<Vec<Option<f32>>, ApiError> {
    face::grade_regions(embedder, card, image, boxes, Path::new("upload")).map_err(grade_error)
}

/// A crop that cannot be cut is the client's fault; a failed network, the
/// server's.
fn grade_error(e: face::GradeError) -> ApiError {
    match e {
        face::GradeError::Crop(e) => ApiError::bad(e.to_string()),
        face::GradeError::Embed(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

use axum::response::IntoResponse;
