//! The browser client, `/web/`: the Svelte UI's browser build (`ui/web.html`, built into
//! `ui/dist-web` by `scripts/ui.sh`) embedded in the binary by `build.rs`. The page is sent
//! with a strict Content-Security-Policy (scripts and styles from this origin only, sockets
//! to this origin only, no frames, no forms) and never cached; the hashed files under
//! `assets/` are cached for a year, since a new build gives them new names. No cookies are
//! set and CORS stays closed: the page talks only to its own origin.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/web_files.rs"));
}

/// The policy of the web client's page.
pub const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     style-src-attr 'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
     connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn file(path: &str) -> Option<&'static [u8]> {
    embedded::FILES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, bytes)| *bytes)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "json" | "map" => "application/json",
        _ => "application/octet-stream",
    }
}

/// The headers every file Parley serves to a browser carries (the invite page's too): its
/// type, how long it may be cached, no type sniffing, no referrer.
pub(crate) fn with_headers(
    mut res: Response,
    ctype: &'static str,
    cache: &'static str,
) -> Response {
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// A page's headers beyond `with_headers`: its Content-Security-Policy, and no framing.
pub(crate) fn as_page(mut res: Response, policy: &str) -> Response {
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(policy) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

/// `GET /web/`: the app's page.
pub async fn index() -> Response {
    let Some(html) = file("web.html") else {
        return with_headers(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "This server was built without the browser client: run scripts/ui.sh, then \
                 build the server again.",
            )
                .into_response(),
            "text/plain; charset=utf-8",
            "no-store",
        );
    };
    let mut res = as_page(
        with_headers(html.into_response(), "text/html; charset=utf-8", "no-store"),
        POLICY,
    );
    res.headers_mut().insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(self), microphone=(self), display-capture=(self)"),
    );
    res
}

/// Parley's icon (32×32 PNG), the tab icon of the invite page and the web client.
const FAVICON: &[u8] = include_bytes!("../../icons/32x32.png");

/// `GET /favicon.png` (and `/favicon.ico`, where browsers look without being told).
pub async fn favicon() -> Response {
    with_headers(
        FAVICON.into_response(),
        "image/png",
        "public, max-age=86400",
    )
}

/// `GET /web/{path}`: a built file (hashed names under `assets/`).
pub async fn asset(Path(path): Path<String>) -> Response {
    match file(&path).filter(|_| path != "web.html") {
        Some(bytes) => {
            let cache = if path.starts_with("assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            with_headers(bytes.into_response(), content_type(&path), cache)
        }
        None => with_headers(
            (StatusCode::NOT_FOUND, "not found").into_response(),
            "text/plain; charset=utf-8",
            "no-store",
        ),
    }
}
