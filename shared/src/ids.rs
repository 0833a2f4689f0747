//! Newtype ids and the human-typeable meeting code.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    };
}

text_id!(
    /// A user account's id (a ULID).
    UserId
);
text_id!(
    /// A meeting's internal id (a ULID); users see the [`MeetingCode`] instead.
    MeetingId
);
text_id!(
    /// A participant's connection in a live meeting; kept across reconnects within the grace period.
    PeerId
);
text_id!(
    /// A sign-in session: the family of refresh tokens that descend from one login.
    SessionId
);

/// A meeting code such as `bcdf-ghjk-mnpq`: three groups of four lowercase letters.
///
/// The alphabet leaves out `i`, `l` and `o`, which are easily misread, so it has 23 letters and
/// a code carries 12 × log2(23) ≈ 54.3 bits: not guessable, still easy to type or read aloud.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, example = "bcdf-ghjk-mnpq"))]
#[serde(try_from = "String", into = "String")]
pub struct MeetingCode(String);

impl MeetingCode {
    /// Letters a code is made of.
    pub const ALPHABET: &'static [u8; 23] = b"abcdefghjkmnpqrstuvwxyz";
    /// Letters in a code, not counting dashes.
    pub const LETTERS: usize = 12;
    /// Letters per dash-separated group.
    pub const GROUP: usize = 4;

    /// Parses what a user typed: case and dashes/spaces are forgiven, the letters are not.
    pub fn parse(input: &str) -> Result<Self, InvalidMeetingCode> {
        let mut letters = String::with_capacity(Self::LETTERS);
        for c in input.trim().chars() {
            if c == '-' || c == ' ' {
                continue;
            }
            let c = c.to_ascii_lowercase();
            if !c.is_ascii() || !Self::ALPHABET.contains(&(c as u8)) {
                return Err(InvalidMeetingCode);
            }
            letters.push(c);
            if letters.len() > Self::LETTERS {
                return Err(InvalidMeetingCode);
            }
        }
        if letters.len() != Self::LETTERS {
            return Err(InvalidMeetingCode);
        }
        Ok(Self::from_letters(&letters))
    }

    /// Builds a code from [`Self::LETTERS`] symbol indices (each taken modulo the alphabet).
    pub fn from_indices(indices: [u8; Self::LETTERS]) -> Self {
        let letters: String = indices
            .iter()
            .map(|&i| Self::ALPHABET[usize::from(i) % Self::ALPHABET.len()] as char)
            .collect();
        Self::from_letters(&letters)
    }

    fn from_letters(letters: &str) -> Self {
        let mut out = String::with_capacity(Self::LETTERS + 2);
        for (i, c) in letters.chars().enumerate() {
            if i > 0 && i % Self::GROUP == 0 {
                out.push('-');
            }
            out.push(c);
        }
        Self(out)
    }

    /// The canonical form, `xxxx-xxxx-xxxx`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MeetingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for MeetingCode {
    type Error = InvalidMeetingCode;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<MeetingCode> for String {
    fn from(c: MeetingCode) -> String {
        c.0
    }
}

/// The text is not a meeting code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a meeting code is 12 letters, like bcdf-ghjk-mnpq")]
pub struct InvalidMeetingCode;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_normalizes_case_and_separators() {
        let c = MeetingCode::parse(" BCDF ghjk-MNPQ ").unwrap();
        assert_eq!(c.as_str(), "bcdf-ghjk-mnpq");
        assert_eq!(MeetingCode::parse("bcdfghjkmnpq").unwrap(), c);
    }

    #[test]
    fn parse_rejects_wrong_length_and_letters() {
        for bad in [
            "",
            "bcdf-ghjk-mnp",
            "bcdf-ghjk-mnpqr",
            "bcdf-ghjk-mnpo",
            "bcdf-ghjk-mnp1",
            "ßcdf-ghjk-mnpq",
        ] {
            assert_eq!(MeetingCode::parse(bad), Err(InvalidMeetingCode), "{bad}");
        }
    }

    #[test]
    fn code_carries_at_least_50_bits() {
        let bits = (MeetingCode::LETTERS as f64) * (MeetingCode::ALPHABET.len() as f64).log2();
        assert!(bits >= 50.0, "{bits}");
    }

    #[test]
    fn from_indices_round_trips_through_parse() {
        let c = MeetingCode::from_indices([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 45]);
        assert_eq!(c.as_str(), "abcd-efgh-jkmz");
        assert_eq!(MeetingCode::parse(c.as_str()).unwrap(), c);
    }

    #[test]
    fn serde_rejects_invalid_codes() {
        assert!(serde_json::from_str::<MeetingCode>("\"nope\"").is_err());
        let c: MeetingCode = serde_json::from_str("\"BCDF-GHJK-MNPQ\"").unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"bcdf-ghjk-mnpq\"");
    }
}
