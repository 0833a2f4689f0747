//! REST request bodies and query strings, read as the server reads them: JSON bodies with
//! serde_json into the request types of shared/src/api.rs, query strings with serde_urlencoded
//! (axum's `Query`) into the pagination parameters, then the checks the handlers apply
//! (shared/src/validate.rs, `ListParams::read`, `HistoryParams::read`). The first byte picks
//! what the rest is. What must hold: no panic; a body that parses is written and read back
//! unchanged; every check either accepts or refuses with an error code, and what it accepts
//! (trimmed, lower-cased) it accepts again unchanged; accepted pages are within their bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_server::meetings::routes::{HistoryParams, ListParams, MAX_PAGE};
use parley_shared::api::*;
use parley_shared::validate;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Parsed, written, parsed again: the same JSON.
fn body<T: DeserializeOwned + Serialize>(data: &[u8]) -> Option<T> {
    let value: T = serde_json::from_slice(data).ok()?;
    let once = serde_json::to_value(&value).expect("writable");
    let back: T = serde_json::from_value(once.clone()).expect("written, read back");
    assert_eq!(serde_json::to_value(&back).expect("writable"), once);
    Some(value)
}

/// A normalising check: what it returns, it returns again unchanged.
fn stable(check: fn(&str) -> Result<String, validate::Invalid>, input: &str) {
    if let Ok(once) = check(input) {
        assert_eq!(
            check(&once).as_deref().ok(),
            Some(once.as_str()),
            "{input:?}"
        );
    }
}

fn texts(values: &[&str]) {
    for t in values {
        stable(validate::username, t);
        stable(validate::email, t);
        stable(validate::title, t);
        stable(validate::display_name, t);
        let _ = validate::password(t);
        let _ = validate::passcode(t);
        let _ = validate::chat_text(t);
        let _ = validate::email_code(t);
        let _ = parley_shared::MeetingCode::parse(t).map(|c| {
            assert_eq!(
                parley_shared::MeetingCode::parse(c.as_str()).as_ref(),
                Ok(&c)
            );
        });
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 16 {
        0 => {
            if let Some(r) = body::<RegisterRequest>(rest) {
                texts(&[&r.username, &r.email, &r.password]);
            }
        }
        1 => {
            if let Some(r) = body::<LoginRequest>(rest) {
                texts(&[&r.login, &r.password]);
            }
        }
        2 => drop(body::<RefreshRequest>(rest)),
        3 => drop(body::<LogoutRequest>(rest)),
        4 => {
            if let Some(r) = body::<ChangePasswordRequest>(rest) {
                texts(&[&r.new_password]);
            }
        }
        5 => drop(body::<VerifyEmailRequest>(rest)),
        6 => drop(body::<EmailRequest>(rest)),
        7 => drop(body::<ResetPasswordRequest>(rest)),
        8 => {
            if let Some(r) = body::<CreateMeetingRequest>(rest) {
                texts(&[&r.title]);
            }
        }
        9 => drop(body::<JoinMeetingRequest>(rest)),
        10 => drop(body::<GuestAccessRequest>(rest)),
        11 => drop(body::<CreateGuestLinkRequest>(rest)),
        12 => {
            if let Some(r) = body::<GuestEntryRequest>(rest) {
                texts(&[&r.display_name]);
            }
        }
        13 => {
            let Ok(q) = serde_urlencoded::from_bytes::<ListParams>(rest) else {
                return;
            };
            if let Ok((limit, _)) = q.read() {
                assert!((1..=MAX_PAGE).contains(&limit));
            }
        }
        14 => {
            let Ok(q) = serde_urlencoded::from_bytes::<HistoryParams>(rest) else {
                return;
            };
            if let Ok((after, limit)) = q.read() {
                assert!(after >= 0 && (1..=500).contains(&limit));
            }
        }
        _ => {
            if let Ok(t) = std::str::from_utf8(rest) {
                texts(&[t]);
            }
        }
    }
});
