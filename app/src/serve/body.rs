//! Every request's body, read whole before a route sees it: within the
//! size limit (`--max-body-mb`) and within a time limit, so a client that
//! sends part of a request and stops holds neither a connection nor the
//! server's shutdown for ever (a reviewer held one open 415 s; SIGTERM then
//! waited on it). Every route takes its body whole, so nothing streams.
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};

/// How long a body may take to arrive. The largest default body (16 MB)
/// arrives in 30 s at 4.4 Mbit/s; a slower client can send less, or use a
/// server with a longer wait.
pub(super) const BODY_WAIT: Duration = Duration::from_secs(30);

pub(super) async fn read_whole(
    State(st): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let read = axum::body::to_bytes(body, st.max_body);
    let bytes = match tokio::time::timeout(BODY_WAIT, read).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return refused(&e, st.max_body).into_response(),
        Err(_) => {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request's body did not arrive within {} s: send it whole, at once",
                    BODY_WAIT.as_secs()
                ),
            )
            .into_response()
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn refused(e: &axum::Error, max_body: usize) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "request body too large: this server takes at most {} MB \
                     (`likeness serve --max-body-mb`)",
                    max_body >> 20
                ),
            );
        }
        source = s.source();
    }
    ApiError::bad(format!("cannot read the request's body: {e}"))
}
