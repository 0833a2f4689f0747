//! Wire types shared by the Parley server and its clients.
//!
//! Nothing here does I/O but [`paths::AppDirs::current`] (which asks the system for the
//! user's folders); every type is plain data with serde derives.
//!
//! - [`ids`]: newtype ids (`UserId`, `MeetingId`, `SessionId`) and the typeable [`MeetingCode`].
//! - [`error`]: the stable machine-readable [`ErrorCode`]s and the JSON error body.
//! - [`validate`]: the input rules both sides apply (usernames, e-mail, passwords, titles…).
//! - [`api`]: REST request/response pairs.
//! - [`paths`]: where Parley keeps its files on Linux, macOS and Windows.
//! - [`signal`]: the WebSocket protocol of a live meeting (signaling, chat, presence, controls).

pub mod api;
pub mod error;
pub mod ids;
pub mod paths;
pub mod serde_util;
pub mod signal;
pub mod validate;

pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use ids::{MeetingCode, MeetingId, PeerId, SessionId, UserId};
