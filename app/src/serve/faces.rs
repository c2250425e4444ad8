//! `POST /faces`: the faces in an uploaded photo and their regions, so the
//! page can draw them and search with a click on one. The finder loads at
//! start with the default models (`make face-models`); without them the
//! route says how to get them. With a model trained from grades, each
//! region also has its `grade` by the model's score read-out (`null` for
//! labels the read-out did not learn from), so the page can set a face's
//! left side against its right.
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
use crate::model_card::ModelSummary;
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
    // Grades only from a model with a score read-out, and only for the
    // labels it learnt from.
    let grader = st.embedder.clone().zip(
        st.page_model_dir()
            .and_then(|d| ModelSummary::read(&d))
            .filter(ModelSummary::grades),
    );
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
                let mut graded = grades.iter().flatten();
                let faces: Vec<_> = faces
                    .iter()
                    .zip(&boxes)
                    .map(|(f, regions)| {
                        json!({
                            "box": [f.bbox.x, f.bbox.y, f.bbox.w, f.bbox.h],
                            "score": f.bbox.score,
                            "points": f.points,
                            "regions": regions.iter().map(|r| {
                                let mut v = json!({
                                    "label": r.placed.name,
                                    "side": r.placed.side.as_str(),
                                    "region": [r.region.x, r.region.y, r.region.w, r.region.h],
                                    "corners": r.placed.corners,
                                });
                                if grades.is_some() {
                                    v["grade"] = json!(graded.next().copied().flatten());
                                }
                                v
                            }).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                Ok(json!({"width": image.width(), "height": image.height(), "faces": faces}))
            },
        )
        .await??;
    Ok(axum::Json(out).into_response())
}

/// Every region's grade ([`face::grade_regions`]), its failures as the
/// client's (a crop) or the server's (the network).
fn grade(
    embedder: &dyn ImageEmbedder,
    card: &ModelSummary,
    image: &image::DynamicImage,
    boxes: &[Vec<RegionBox>],
) -> std::result::Result<Vec<Option<f32>>, ApiError> {
    face::grade_regions(embedder, card, image, boxes, Path::new("upload")).map_err(|e| match e {
        face::GradeError::Crop(e) => ApiError::bad(e.to_string()),
        face::GradeError::Embed(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e),
    })
}

use axum::response::IntoResponse;
