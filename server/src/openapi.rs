//! The served OpenAPI description: what the handlers' annotations say, completed with what
//! every route shares (the errors its extractors, its database and its middleware can answer
//! with) and with the input rules of `parley_shared::validate` as JSON Schema constraints, so
//! that the description states every status code and every constraint the server enforces.
//! `server/tests/api/schemathesis.rs` holds the server to it with a property-based fuzzer.

use parley_shared::validate::{self, pattern};
use serde_json::{json, Map, Value};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// A response whose body is the API's error (`ErrorBody`).
fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

fn text(pattern: &str, max: Option<usize>) -> Value {
    let mut s = json!({"type": "string", "pattern": pattern});
    if let Some(max) = max {
        s["maxLength"] = json!(max);
    }
    s
}

/// A new password: 8-128 characters, not one of the common passwords (compared in lowercase).
fn new_password() -> Value {
    json!({
        "type": "string",
        "minLength": validate::PASSWORD_CHARS.start(),
        "maxLength": validate::PASSWORD_CHARS.end(),
        "not": {"$ref": "#/components/schemas/CommonPassword"},
        "description": "8-128 characters, not a common password (in any case)"
    })
}

/// The constraints of each request body's fields, by schema and property name.
fn field_rules() -> Vec<(&'static str, &'static str, Value)> {
    let email = text(pattern::EMAIL, Some(validate::MAX_EMAIL_CHARS));
    let code = text(pattern::EMAIL_CODE, None);
    let meeting_code = text(pattern::MEETING_CODE, None);
    vec![
        ("RegisterRequest", "username", text(pattern::USERNAME, None)),
        ("RegisterRequest", "email", email.clone()),
        ("RegisterRequest", "password", new_password()),
        ("ChangePasswordRequest", "new_password", new_password()),
        ("VerifyEmailRequest", "code", code.clone()),
        ("EmailRequest", "email", email),
        ("ResetPasswordRequest", "code", code),
        ("ResetPasswordRequest", "new_password", new_password()),
        (
            "CreateMeetingRequest",
            "title",
            text(pattern::DISPLAY_NAME, Some(*validate::TITLE_CHARS.end())),
        ),
        (
            "CreateMeetingRequest",
            "passcode",
            json!({"type": ["string", "null"], "pattern": pattern::PASSCODE_OR_EMPTY,
                   "description": "6-64 characters; empty or null for none"}),
        ),
        (
            "CreateGuestLinkRequest",
            "label",
            text(
                pattern::TEXT_LINE,
                Some(crate::meetings::guests::MAX_LABEL_CHARS),
            ),
        ),
        (
            "CreateGuestLinkRequest",
            "expires_in_hours",
            json!({"type": ["integer", "null"], "minimum": 1,
                   "maximum": crate::meetings::guests::MAX_LINK_HOURS}),
        ),
        ("GuestEntryRequest", "code", meeting_code),
        (
            "GuestEntryRequest",
            "display_name",
            text(
                pattern::DISPLAY_NAME,
                Some(*validate::DISPLAY_NAME_CHARS.end()),
            ),
        ),
    ]
}

/// The query parameters' constraints, by name (the same name means the same rule).
fn query_rule(path: &str, name: &str) -> Option<Value> {
    Some(match (path, name) {
        ("/api/meetings", "limit") => json!({"type": "integer", "minimum": 1,
            "maximum": crate::meetings::routes::MAX_PAGE}),
        ("/api/meetings", "cursor") => json!({"type": "string",
            "pattern": crate::meetings::routes::CURSOR_PATTERN}),
        (_, "after_seq") => json!({"type": "integer", "minimum": 0, "maximum": i64::MAX}),
        (_, "limit") => json!({"type": "integer", "minimum": 1,
            "maximum": crate::meetings::routes::MAX_HISTORY_PAGE}),
        _ => return None,
    })
}

/// Adds what every route shares and the input rules to the handlers' description.
pub fn complete(doc: utoipa::openapi::OpenApi) -> Value {
    #[allow(clippy::expect_used)] // plain data with string keys: serialising cannot fail
    let mut doc = serde_json::to_value(doc).expect("the description serialises");
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            for method in METHODS {
                if let Some(op) = item.get_mut(method).and_then(Value::as_object_mut) {
                    complete_operation(path, op);
                }
            }
        }
    }
    let schemas = &mut doc["components"]["schemas"];
    for (schema, field, rule) in field_rules() {
        let slot = &mut schemas[schema]["properties"][field];
        assert!(
            slot.is_object(),
            "{schema}.{field} is not in the description"
        );
        let description = slot.get("description").cloned();
        *slot = rule;
        if let Some(d) = description {
            slot["description"] = d;
        }
    }
    schemas["CommonPassword"] = json!({
        "description": "The bundled list of common passwords a new one must not be",
        "type": "string",
        "enum": validate::common_passwords().collect::<Vec<_>>(),
    });
    doc
}

fn complete_operation(path: &str, op: &mut Map<String, Value>) {
    let secured = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    let has_body = op.contains_key("requestBody");
    let mut has_params = false;
    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        for p in params {
            has_params = true;
            let name = p["name"].as_str().unwrap_or_default().to_string();
            match p["in"].as_str() {
                Some("path") if name == "code" => {
                    p["schema"] = text(pattern::MEETING_CODE, None);
                }
                Some("query") => {
                    if let Some(rule) = query_rule(path, &name) {
                        p["schema"] = rule;
                    }
                }
                _ => {}
            }
        }
    }
    // Joining takes an empty body as "no passcode".
    if path == "/api/meetings/{code}/join" {
        op["requestBody"]["required"] = json!(false);
    }
    let responses = op.entry("responses").or_insert_with(|| json!({}));
    let Some(responses) = responses.as_object_mut() else {
        return;
    };
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status.to_string())
            .or_insert_with(|| error(description));
    };
    if has_body || has_params {
        add(
            "400",
            "malformed request: a body or parameter that breaks the schema (`error.code` says which rule)",
        );
    }
    if has_body {
        add("413", "request body larger than the server's limit");
        add("415", "the body is not sent as application/json");
    }
    if secured {
        add(
            "401",
            "no bearer token, or one that is invalid, expired or of an ended session",
        );
        add(
            "403",
            "the caller may not do this (a guest's token on this route, not the host, …)",
        );
    }
    add("500", "internal error (logged on the server, not revealed)");
    add(
        "503",
        "the database is unreachable or password hashing is saturated; try again",
    );
    // Responses the annotations left without a description get the status's own name.
    for (status, response) in responses.iter_mut() {
        if response.get("description").and_then(Value::as_str) == Some("") {
            let reason = status
                .parse::<u16>()
                .ok()
                .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
                .and_then(|s| s.canonical_reason())
                .unwrap_or("");
            response["description"] = json!(reason);
        }
    }
}
