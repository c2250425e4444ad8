//! What keeps a server that was opened on a shared workstation, or exposed by
//! mistake, from being more than a read-only search box: `/admin/*` needs
//! the admin token when one is set (and one must be set off loopback), and
//! every answer carries a Content-Security-Policy that lets the page run
//! only its own scripts and show only its own images.
//!
//! A server on loopback without a token is still reachable from every web
//! page its user opens: a page elsewhere can send it a form-like POST (no
//! preflight), or reach it under its own name through DNS rebinding. So a
//! server on loopback answers only requests addressed to a loopback name
//! (`Host`), and every request but GET/HEAD that a browser marks as coming
//! from another origin (`Origin`, `Sec-Fetch-Site`) is refused: the page's
//! own requests are same-origin, and clients that are not browsers send
//! neither header.
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
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

/// Why a request is refused as cross-site, or `None`. `loopback`: the
/// server listens on a loopback address.
fn cross_site(req: &Request, loopback: bool) -> Option<String> {
    let headers = req.headers();
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let host = text(header::HOST).or_else(|| req.uri().authority().map(|a| a.as_str()));
    if loopback {
        match host {
            Some(h) if is_loopback_name(h) => {}
            Some(h) => {
                return Some(format!(
                    "this server listens on loopback and answers only requests addressed to it \
                     as localhost or a loopback address, not `{h}` (a page elsewhere may not \
                     reach it under another name); open http://127.0.0.1:PORT/"
                ))
            }
            None => return Some("the request names no Host: send `Host: 127.0.0.1`".into()),
        }
    }
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return None;
    }
    if let Some(origin) = text(header::ORIGIN) {
        let authority = origin.split_once("://").map(|(_, a)| a);
        let same = matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h));
        if !same {
            return Some(format!(
                "a page from `{origin}` may not send {} requests to this server; the page that \
                 this server serves can, and so can clients that are not browsers",
                req.method()
            ));
        }
    }
    if text(HeaderName::from_static("sec-fetch-site")).is_some_and(|s| s == "cross-site") {
        return Some(format!(
            "the browser marks this {} request as cross-site; send it from this server's page",
            req.method()
        ));
    }
    None
}

/// `localhost`, a name under `.localhost`, or a loopback IP, with or
/// without a port (`[::1]:7878`).
fn is_loopback_name(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split_once(']').map_or(rest, |(ip, _)| ip)
    } else {
        match host.rsplit_once(':') {
            Some((n, port)) if port.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => host,
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The middleware in front of every route.
pub(super) async fn guard(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let Some(why) = cross_site(&req, st.loopback) {
        return secure(ApiError::new(StatusCode::FORBIDDEN, why).into_response());
    }
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

    fn req(method: &str, headers: &[(&str, &str)]) -> Request {
        let mut b = Request::builder().method(method).uri("/admin/items/delete");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn loopback_answers_loopback_names_only() {
        for h in [
            "127.0.0.1:7878",
            "localhost",
            "LOCALHOST:1",
            "[::1]:80",
            "app.localhost",
            "127.0.0.2",
        ] {
            assert_eq!(cross_site(&req("GET", &[("host", h)]), true), None, "{h}");
        }
        for h in [
            "evil.example",
            "evil.example:7878",
            "192.168.1.4:7878",
            "localhost.evil.example",
        ] {
            let why = cross_site(&req("GET", &[("host", h)]), true).unwrap();
            assert!(why.contains(h) && why.contains("127.0.0.1"), "{why}");
            // Off loopback any name may reach the server (the token guards it).
            assert_eq!(cross_site(&req("GET", &[("host", h)]), false), None);
        }
        assert!(cross_site(&req("GET", &[]), true).is_some());
    }

    #[test]
    fn changes_from_another_origin_are_refused() {
        let host = ("host", "127.0.0.1:7878");
        let from = |o| cross_site(&req("POST", &[host, ("origin", o)]), true);
        assert_eq!(from("http://127.0.0.1:7878"), None);
        for o in ["http://evil.example", "http://127.0.0.1:9999", "null"] {
            assert!(from(o).unwrap().contains(o), "{o}");
        }
        // Not a browser: no Origin, no Sec-Fetch-Site.
        assert_eq!(cross_site(&req("POST", &[host]), true), None);
        let marked = cross_site(
            &req("DELETE", &[host, ("sec-fetch-site", "cross-site")]),
            true,
        );
        assert!(marked.unwrap().contains("cross-site"));
        // Reads stay open to every origin's links and images.
        assert_eq!(
            cross_site(
                &req("GET", &[host, ("origin", "http://evil.example")]),
                true
            ),
            None
        );
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"ab"));
        assert!(!same_secret(b"", b"a"));
    }
}
