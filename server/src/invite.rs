//! `GET /j/{code}`: the invite link's page. It names the meeting (its title only when the
//! meeting has no passcode: the code alone should not tell what a passcode protects), opens
//! it in the installed app (`parley://join/CODE`: tried first once this browser has opened
//! the app from such a page) or in this browser (`/web/`), each a button, and lists where to
//! get the app (`invite_downloads`). An unknown, ended or
//! malformed code gets a page that says so, with the matching status.
//!
//! One small response: the style and the script are inline, allowed by their hashes in a
//! strict Content-Security-Policy (nothing else may load, no frames, no forms); no cookies,
//! no referrer. A personal guest link carries its token in the fragment (`#g=`), which the
//! browser never sends (links made before carried it as `?g=`, still read); the script takes
//! it out of the address bar at once (history.replaceState), and the server never writes it
//! into the page. Requests are limited per address (`invite_page_per_ip`), an unknown and an
//! ended code costing the same: the page is no free oracle of which meetings exist.

use std::sync::OnceLock;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use parley_shared::MeetingCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::meetings::store;
use crate::state::AppState;

/// A place to get the desktop app, shown on invite pages (e.g. your release page per OS).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Download {
    /// "Windows", "macOS", "Linux (.deb)"…
    pub label: String,
    /// An https address.
    pub url: String,
}

const STYLE: &str = "\
:root{color-scheme:light dark;--bg:#f6f7fb;--card:#fff;--ink:#1d2233;--muted:#5b6275;--accent:#3d5bd9;--line:#dfe3ee}\
@media (prefers-color-scheme:dark){:root{--bg:#12141c;--card:#1c1f2b;--ink:#eef0f6;--muted:#a3a9bb;--accent:#8da2ff;--line:#30354a}}\
*{box-sizing:border-box}body{margin:0;min-height:100vh;display:grid;place-items:center;background:var(--bg);color:var(--ink);font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif}\
main{width:min(30rem,calc(100% - 2rem));background:var(--card);border:1px solid var(--line);border-radius:16px;padding:2rem}\
.brand{font-weight:700;color:var(--accent);letter-spacing:.02em;margin:0 0 1.25rem}\
h1{font-size:1.5rem;line-height:1.25;margin:0 0 .25rem;overflow-wrap:anywhere}\
.code{font-family:ui-monospace,monospace;color:var(--muted);margin:0 0 1.5rem}\
p{margin:0 0 1rem}.muted{color:var(--muted)}\
.actions{display:grid;gap:.75rem;margin:1.5rem 0}\
a.button{display:block;text-align:center;padding:.8rem 1rem;border-radius:10px;text-decoration:none;font-weight:600;border:1px solid var(--accent)}\
a.primary{background:var(--accent);color:#fff}a.secondary{color:var(--accent)}\
a.button:focus-visible{outline:3px solid var(--ink);outline-offset:2px}\
.status{padding:.6rem .8rem;border-radius:10px;background:var(--bg);border:1px solid var(--line)}[hidden]{display:none}\
ul{padding-left:1.2rem;margin:.25rem 0 0}li{margin:.2rem 0}a{color:var(--accent)}";

/// Points "Join in this browser" at the web client with the code (and a personal link's
/// token) in the fragment, which no server or referrer sees, and takes the token out of the
/// address bar. The app is tried first where this browser has opened it before: "Open in
/// Parley" leaves a mark in this origin's local storage (no cookie, nothing sent), and the
/// next invite page opens the app at once, saying so. A first visit only offers the buttons:
/// a browser's "open this app?" prompt for a scheme nobody installed would greet every guest.
const SCRIPT: &str = "\
(function(){var w=document.getElementById('web'),o=document.getElementById('open'),\
t=document.getElementById('trying');\
var g=new URLSearchParams(location.hash.slice(1)).get('g')||new URLSearchParams(location.search).get('g');\
if(w&&g){w.href=w.getAttribute('href')+'&g='+encodeURIComponent(g);}\
if(location.search||location.hash){history.replaceState(null,'',location.pathname);}\
var has=false;try{has=localStorage.getItem('parley.app')==='1';}catch(e){}\
if(o){o.addEventListener('click',function(){try{localStorage.setItem('parley.app','1');}catch(e){}});\
if(has&&t){t.hidden=false;setTimeout(function(){location.href=o.href;},300);}}})();";

fn csp_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The policy every invite page is sent with: only its own inline style and script.
fn policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| {
        format!(
            "default-src 'none'; style-src {}; script-src {}; img-src 'self'; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'",
            csp_hash(STYLE),
            csp_hash(SCRIPT)
        )
    })
}

/// HTML-escapes text for element content and quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <link rel=\"icon\" type=\"image/png\" href=\"/favicon.png\">\
         <title>{}</title><style>{STYLE}</style></head>\
         <body><main><p class=\"brand\">Parley</p>{body}</main>\
         <script>{SCRIPT}</script></body></html>",
        escape(title)
    );
    // The page says whether the meeting is still on: never from a cache.
    crate::web::as_page(
        crate::web::with_headers(
            (status, html).into_response(),
            "text/html; charset=utf-8",
            "no-store",
        ),
        policy(),
    )
}

fn problem(status: StatusCode, heading: &str, text: &str) -> Response {
    page(
        status,
        &format!("{heading} · Parley"),
        &format!(
            "<h1>{}</h1><p class=\"muted\">{}</p>",
            escape(heading),
            escape(text)
        ),
    )
}

/// `GET /j/{code}`
pub async fn landing(
    State(state): State<AppState>,
    ip: crate::extract::ClientIp,
    Path(raw): Path<String>,
) -> Response {
    // Charged before anything is looked up, whatever the code: the answer costs the same.
    if let Err(wait_ms) = state
        .limits
        .invite_page_per_ip
        .take(&ip.bucket(), state.now_ms())
    {
        let mut r = problem(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many meeting links opened",
            "This address opened too many meeting links at once. Wait a minute and try again.",
        );
        if let Ok(v) = wait_ms.div_ceil(1000).max(1).to_string().parse() {
            r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
        }
        return r;
    }
    let Ok(code) = MeetingCode::parse(&raw) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "That is not a meeting link",
            "Meeting links end in a code like abcd-efgh-jkmn. Check the link you were sent.",
        );
    };
    let m = match store::by_code(&state.db.pool, &code, "").await {
        Ok(Some(m)) => m,
        Ok(None) => return problem(
            StatusCode::NOT_FOUND,
            "No meeting has this link",
            "It may have been deleted, or the link was copied incompletely. Ask whoever sent it.",
        ),
        Err(e) => {
            tracing::error!(error = %e, "invite page: database");
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Parley is not available right now",
                "Try the link again in a moment.",
            );
        }
    };
    if m.ended_at.is_some() {
        return problem(
            StatusCode::GONE,
            "This meeting has ended",
            "The host has ended it. Ask them for a new link if you still need to meet.",
        );
    }
    // The web client shows its passcode field only where the meeting has a passcode.
    let web_flag = if m.passcode_hash.is_some() {
        "&p=1"
    } else {
        ""
    };
    let (heading, note) = if m.passcode_hash.is_some() {
        (
            "You are invited to a Parley meeting".to_string(),
            "<p class=\"muted\">This meeting has a passcode: have it ready.</p>",
        )
    } else {
        (m.title.clone(), "")
    };
    let downloads = &state.config.invite_downloads;
    let get_app = if downloads.is_empty() {
        String::new()
    } else {
        let items: String = downloads
            .iter()
            .map(|d| {
                format!(
                    "<li><a href=\"{}\" rel=\"noreferrer\">{}</a></li>",
                    escape(&d.url),
                    escape(&d.label)
                )
            })
            .collect();
        format!("<p class=\"muted\">No Parley yet? Get the app:</p><ul>{items}</ul>")
    };
    let body = format!(
        "<h1>{}</h1><p class=\"code\">{}</p>{note}\
         <p id=\"trying\" class=\"status\" role=\"status\" hidden>Opening the meeting in the Parley app… \
         Nothing happened? Join in this browser below.</p>\
         <div class=\"actions\"><a id=\"open\" class=\"button primary\" href=\"parley://join/{}\">Open in Parley</a>\
         <a id=\"web\" class=\"button secondary\" href=\"/web/#code={}{web_flag}\">Join in this browser</a></div>\
         <p class=\"muted\">Have the Parley app? Open the meeting in it. No app? Join from this browser: nothing to install.</p>{get_app}",
        escape(&heading),
        code.as_str(),
        code.as_str(),
        code.as_str(),
    );
    page(StatusCode::OK, &format!("{heading} · Parley"), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cannot_break_out_of_the_markup() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn the_policy_allows_exactly_the_inline_style_and_script() {
        let p = policy();
        assert!(p.starts_with("default-src 'none';"));
        assert!(p.contains(&csp_hash(STYLE)) && p.contains(&csp_hash(SCRIPT)));
        assert!(!p.contains("unsafe-inline") && !p.contains("*"));
    }
}
