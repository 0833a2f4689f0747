//! The live-meeting protocol's machine-readable description, served at
//! `GET /api/asyncapi.json`: an AsyncAPI 3.0 document whose message payloads are JSON Schemas
//! generated from `parley_shared::signal` (the types both sides speak), completed with the
//! rules the server enforces on what clients send. `server/tests/api/ws_fuzz.rs` holds the
//! server to it: it sends valid and invalid messages in every room state and checks every
//! message the server sends against this document.

use parley_shared::signal::{
    ClientMsg, ServerMsg, CLOSE_BY_SERVER, MAX_CLIENT_MSG_ID_BYTES, MAX_MESSAGE_BYTES,
    MAX_REACTION_BYTES, MAX_SDP_BYTES, MAX_TOKEN_BYTES, PROTOCOL_VERSION, SUBPROTOCOL,
};
use parley_shared::validate::{self, pattern};
use serde_json::{json, Value};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(components(schemas(ClientMsg, ServerMsg)))]
struct Schemas;

/// Which client messages each room state takes. Every refusal is an `error` message and the
/// socket stays open, unless said otherwise.
const STATES: &str = "Before `join`: `join`, `ping` and `reauth`; anything else gets \
`out_of_state` (and `join` again, once joined). In the waiting room: `leave`, `ping`, `reauth`; \
the rest gets `out_of_state`. In the meeting: everything; `admit`, `deny`, `mute`, `remove`, \
`lock` and `unlock` from someone neither host nor co-host, `close_guest_entry` from anyone but \
the host or a stored co-host (a participant standing in for an absent host may not change guest \
access), and `promote` and `end` from anyone but the meeting's own host (not a stand-in), get \
`not_host`. A guest is never made host: when the host leaves, a co-host (else the longest-present \
signed-in participant) stands in until the owner returns; with nobody eligible the meeting goes \
on without one. A guest's `join` with a display name that passes for a present participant's \
(case, white space and look-alike letters aside) gets `name_taken`. A guest's TURN credentials \
last an hour and come anew (`ice_servers`) after each accepted `reauth` while in the meeting. An unknown `type` gets `unknown_message_type`, a message that breaks \
its schema `malformed_request`, a field over its size `payload_too_large`, a binary frame \
`malformed_request`. More than the per-socket message budget gets `rate_limited` (the excess \
is dropped); a socket that keeps flooding is closed (`flooding`). A message over the size limit gets \
`payload_too_large`; one over twice the limit (`x-parley-read-limit-bytes`) is not read: the \
socket is closed (code 4000, `payload_too_large`, or a reset when its data cannot be drained).";

/// The constraints on a client message's fields, by variant (`type`) and field.
fn client_rules() -> Vec<(&'static str, &'static str, Value)> {
    let bytes = |n: usize, what: &str| {
        json!({"type": "string", "x-parley-max-bytes": n,
               "description": format!("{what}, at most {n} bytes of UTF-8")})
    };
    vec![
        (
            "join",
            "code",
            json!({"type": "string", "pattern": pattern::MEETING_CODE}),
        ),
        (
            "join",
            "display_name",
            json!({"type": "string", "pattern": pattern::DISPLAY_NAME,
                   "maxLength": validate::DISPLAY_NAME_CHARS.end()}),
        ),
        ("offer", "sdp", bytes(MAX_SDP_BYTES, "session description")),
        ("answer", "sdp", bytes(MAX_SDP_BYTES, "session description")),
        (
            "chat",
            "text",
            json!({"type": "string", "pattern": pattern::CHAT_TEXT,
                   "x-parley-max-bytes": validate::MAX_CHAT_BYTES,
                   "description": "not blank; line breaks and tabs but no other control or direction-override character"}),
        ),
        (
            "chat",
            "client_msg_id",
            json!({"type": "string", "minLength": 1, "x-parley-max-bytes": MAX_CLIENT_MSG_ID_BYTES,
                   "description": "the sender's id for de-duplication, 1-64 bytes"}),
        ),
        (
            "reaction",
            "emoji",
            json!({"type": "string", "minLength": 1, "x-parley-max-bytes": MAX_REACTION_BYTES}),
        ),
        (
            "reauth",
            "access_token",
            bytes(MAX_TOKEN_BYTES, "an access token"),
        ),
    ]
}

/// The variant of a tagged-union schema whose `type` is `tag`, if any.
fn variant<'a>(union: &'a mut Value, tag: &str) -> Option<&'a mut Value> {
    union["oneOf"].as_array_mut()?.iter_mut().find(|v| {
        v["properties"]["type"]["enum"]
            .as_array()
            .is_some_and(|e| e.iter().any(|t| t == tag))
    })
}

/// The AsyncAPI document.
pub fn description() -> Value {
    let doc = Schemas::openapi();
    #[allow(clippy::expect_used)] // plain data with string keys: serialising cannot fail
    let mut schemas = serde_json::to_value(doc.components.map(|c| c.schemas).unwrap_or_default())
        .expect("the schemas serialise");
    for (tag, field, rule) in client_rules() {
        let Some(v) = variant(&mut schemas["ClientMsg"], tag) else {
            continue;
        };
        let slot = &mut v["properties"][field];
        if slot.is_object() {
            *slot = rule;
        }
    }
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Parley live meetings",
            "version": PROTOCOL_VERSION.to_string(),
            "description": format!(
                "JSON text messages over one WebSocket at `GET /api/ws`, subprotocol \
                 `{SUBPROTOCOL}`, tagged by `type`. Authenticate with \
                 `Authorization: Bearer <access token>` or, from a browser, the subprotocol \
                 list (`{SUBPROTOCOL}`, `parley.token.<token>`). Unknown fields are ignored. \
                 Messages are at most {MAX_MESSAGE_BYTES} bytes. {STATES} The server closes \
                 a socket on purpose with code {CLOSE_BY_SERVER}, the reason being the error \
                 code it sent just before in an `error` message."
            ),
        },
        "channels": {
            "meeting": {
                "address": "/api/ws",
                "messages": {
                    "client": {"$ref": "#/components/messages/client"},
                    "server": {"$ref": "#/components/messages/server"},
                },
                "bindings": {"ws": {"method": "GET"}},
            }
        },
        "operations": {
            "send": {
                "action": "send",
                "channel": {"$ref": "#/channels/meeting"},
                "messages": [{"$ref": "#/channels/meeting/messages/client"}],
            },
            "receive": {
                "action": "receive",
                "channel": {"$ref": "#/channels/meeting"},
                "messages": [{"$ref": "#/channels/meeting/messages/server"}],
            },
        },
        "components": {
            "messages": {
                "client": {
                    "name": "ClientMsg",
                    "contentType": "application/json",
                    "x-parley-max-bytes": MAX_MESSAGE_BYTES,
                    "x-parley-read-limit-bytes": crate::room::conn::READ_LIMIT_BYTES,
                    "payload": {"$ref": "#/components/schemas/ClientMsg"},
                },
                "server": {
                    "name": "ServerMsg",
                    "contentType": "application/json",
                    "payload": {"$ref": "#/components/schemas/ServerMsg"},
                },
            },
            "schemas": schemas,
        },
    })
}
