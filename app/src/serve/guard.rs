//! What keeps a server that was opened on a shared workstation, or exposed by
//! mistake, from being more than a read-only search box: `/admin/*` needs
//! the admin token when one is set (and one must be set off loopback), and
//! every answer carries a Content-Security-Policy that lets the page run
//! only its own scripts and show only its own images.
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState, PageOptions, ServeOptions};
use crate::error::{Error, Result};

/// Same-origin scripts, styles, images and fetches; nothing inline, nothing
/// from elsewhere, no frames, no forms. The page shows an uploaded image by
/// drawing it on a canvas (no `blob:` or `data:` image sources needed).
pub(super) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// Refuses settings that would open `/admin/*` to the network: a listening
/// address off loopback needs an admin token, and a token may not be empty.
pub(super) fn check_options(opts: &ServeOptions) -> Result<()> {
    check_addr(opts.addr, &opts.page)
}

fn check_addr(addr: SocketAddr, page: &PageOptions) -> Result<()> {
    match page.admin_token.as_deref() {
        Some(t) if t.trim().is_empty() => Err(Error::Usage(
            "the admin token is empty: give --admin-token a secret (or unset LIKENESS_ADMIN_TOKEN)"
                .into(),
        )),
        None if !addr.ip().is_loopback() => Err(Error::Usage(format!(
            "--addr {} is not a loopback address, so anyone who can reach it could reload the \
             index: give --admin-token SECRET (or set LIKENESS_ADMIN_TOKEN), or listen on 127.0.0.1",
            addr
        ))),
        _ => Ok(()),
    }
}

/// Compares in time that depends only on the lengths, so the answer time
/// does not say how much of a guessed token was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The middleware in front of every route.
pub(super) async fn guard(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/admin/") {
        if let Some(token) = st.page.admin_token() {
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            let ok = given.is_some_and(|g| same_secret(g.as_bytes(), token.as_bytes()));
            if !ok {
                let mut r = ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "this endpoint needs the admin token: send `Authorization: Bearer TOKEN` \
                     (the server's --admin-token)",
                )
                .into_response();
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return secure(r);
            }
        }
    }
    secure(next.run(req).await)
}

fn secure(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(addr: &str, token: Option<&str>) -> Result<()> {
        let page = PageOptions {
            admin_token: token.map(str::to_string),
            ..Default::default()
        };
        check_addr(addr.parse().unwrap(), &page)
    }

    #[test]
    fn off_loopback_needs_a_token() {
        assert!(check("127.0.0.1:0", None).is_ok());
        assert!(check("[::1]:0", None).is_ok());
        let e = check("0.0.0.0:0", None).unwrap_err();
        assert!(e.to_string().contains("--admin-token"), "{e}");
        assert!(check("0.0.0.0:0", Some("s3cret")).is_ok());
        assert!(check("127.0.0.1:0", Some("  ")).is_err());
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"ab"));
        assert!(!same_secret(b"", b"a"));
    }
}
