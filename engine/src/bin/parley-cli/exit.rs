//! Exit codes (stable, for scripts) and the failure every command ends with.

use parley_engine::rest::ApiError;

/// Why parley-cli stopped, as its exit code says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// A local failure (credentials file, a device, a recording directory).
    Local = 1,
    /// Bad usage (arguments, input).
    Usage = 2,
    /// Not signed in, or the sign-in was refused.
    NotSignedIn = 3,
    /// The server refused the request (its error code is printed).
    Refused = 4,
    /// The server could not be reached, or the connection was lost.
    Unreachable = 5,
    /// `join` was ended by others: the meeting ended, we were removed or not admitted.
    Ended = 6,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// A failure with its exit code and the code/message printed for it.
pub struct Failure {
    pub exit: Exit,
    pub code: String,
    pub message: String,
}

impl Failure {
    pub fn new(exit: Exit, code: &str, message: impl Into<String>) -> Self {
        Self {
            exit,
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn not_signed_in(server: &str) -> Self {
        Self::new(
            Exit::NotSignedIn,
            "not_signed_in",
            format!("not signed in to {server}; run `parley-cli login`"),
        )
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        match &e {
            ApiError::Server {
                status: 401,
                code,
                message,
            } => Self::new(Exit::NotSignedIn, code, message.clone()),
            ApiError::Server { code, message, .. } => {
                Self::new(Exit::Refused, code, message.clone())
            }
            ApiError::Unreachable { .. } => {
                Self::new(Exit::Unreachable, "unreachable", e.to_string())
            }
            ApiError::Protocol { .. } => {
                Self::new(Exit::Unreachable, "bad_response", e.to_string())
            }
        }
    }
}

impl From<parley_engine::credentials::StoreError> for Failure {
    fn from(e: parley_engine::credentials::StoreError) -> Self {
        Self::new(Exit::Local, "credentials", e.to_string())
    }
}

pub type Res<T> = Result<T, Failure>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_stable() {
        let codes: Vec<u8> = [
            Exit::Local,
            Exit::Usage,
            Exit::NotSignedIn,
            Exit::Refused,
            Exit::Unreachable,
            Exit::Ended,
        ]
        .iter()
        .map(|e| e.code())
        .collect();
        assert_eq!(codes, [1, 2, 3, 4, 5, 6]);
        let refused = Failure::from(ApiError::Server {
            status: 409,
            code: "username_taken".into(),
            message: "taken".into(),
        });
        assert_eq!(
            (refused.exit, refused.code.as_str()),
            (Exit::Refused, "username_taken")
        );
        let unauthorized = Failure::from(ApiError::Server {
            status: 401,
            code: "token_expired".into(),
            message: "expired".into(),
        });
        assert_eq!(unauthorized.exit, Exit::NotSignedIn);
    }
}
