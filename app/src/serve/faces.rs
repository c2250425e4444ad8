//! `POST /faces`: the faces in an uploaded photo and their regions, so the
//! page can draw them and search with a click on one. The finder loads at
//! start with the default models (`make face-models`); without them the
//! route says how to get them.
use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

use super::{body_error, ApiError, ApiResult, AppState};
use crate::face::{self, models, FaceFinder, Landmarks};
use crate::read::decode::{decode_bytes, DecodeLimits};

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
    let out = st
        .on_pool(
            move |_| -> std::result::Result<serde_json::Value, ApiError> {
                let image = decode_bytes(&body, Path::new("upload"), &DecodeLimits::default())
                    .map_err(|e| ApiError::bad(e.to_string()))?;
                let faces = finder.find(&image);
                let boxes = face::region_boxes(&faces, &[], image.width(), image.height());
                let faces: Vec<_> = faces
                    .iter()
                    .zip(&boxes)
                    .map(|(f, regions)| {
                        json!({
                            "box": [f.bbox.x, f.bbox.y, f.bbox.w, f.bbox.h],
                            "score": f.bbox.score,
                            "points": f.points,
                            "regions": regions.iter().map(|r| json!({
                                "label": r.placed.name,
                                "side": r.placed.side.as_str(),
                                "region": [r.region.x, r.region.y, r.region.w, r.region.h],
                                "corners": r.placed.corners,
                            })).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                Ok(json!({"width": image.width(), "height": image.height(), "faces": faces}))
            },
        )
        .await??;
    Ok(axum::Json(out).into_response())
}

use axum::response::IntoResponse;
