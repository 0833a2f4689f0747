//! Input rules applied by the server and, for early feedback, by clients.
//!
//! Each check returns the [`ErrorCode`] a violation is reported with, so both sides agree.

use crate::ErrorCode;

/// Username: 3–32 characters of `a-z`, `0-9`, `_`, `.`, `-`, starting with a letter or digit.
pub const USERNAME_LEN: std::ops::RangeInclusive<usize> = 3..=32;
/// E-mail addresses longer than this (RFC 5321's path limit) are refused.
pub const MAX_EMAIL_CHARS: usize = 254;
/// The part before the last `@`, in characters.
pub const MAX_EMAIL_LOCAL_CHARS: usize = 64;
/// Password length in characters (Unicode scalar values).
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=128;
/// Meeting title length in characters; empty titles are refused.
pub const TITLE_CHARS: std::ops::RangeInclusive<usize> = 1..=120;
/// Meeting passcode length in characters.
pub const PASSCODE_CHARS: std::ops::RangeInclusive<usize> = 6..=64;
/// Display name length in characters.
pub const DISPLAY_NAME_CHARS: std::ops::RangeInclusive<usize> = 1..=64;
/// Longest chat message, in bytes of UTF-8.
pub const MAX_CHAT_BYTES: usize = 4 * 1024;
/// Length of a one-time e-mail code (digits).
pub const EMAIL_CODE_DIGITS: usize = 6;

const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

/// A rule was broken; `code` is what the API answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub code: ErrorCode,
    pub message: String,
}

fn invalid(code: ErrorCode, message: impl Into<String>) -> Invalid {
    Invalid {
        code,
        message: message.into(),
    }
}

/// Checks a username and returns it lowercased (usernames are case-insensitive).
pub fn username(input: &str) -> Result<String, Invalid> {
    let name = input.trim().to_ascii_lowercase();
    let ok_len = USERNAME_LEN.contains(&name.len());
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
    let ok_start = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok_len && ok_chars && ok_start && !name.contains('@') {
        Ok(name)
    } else {
        Err(invalid(
            ErrorCode::InvalidUsername,
            "username must be 3-32 characters: letters, digits, '_', '.', '-', starting with a letter or digit",
        ))
    }
}

/// Checks an e-mail address for a plausible shape and returns it trimmed, case preserved.
///
/// Deliverability is proven by the verification code, not by syntax rules.
pub fn email(input: &str) -> Result<String, Invalid> {
    let addr = input.trim();
    let bad = || invalid(ErrorCode::InvalidEmail, "that is not an e-mail address");
    // Lengths count characters of what was sent (surrounding spaces too), so that one JSON
    // Schema states the rule exactly (`pattern::EMAIL`).
    if input.chars().count() > MAX_EMAIL_CHARS
        || addr.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    let (local, domain) = addr.rsplit_once('@').ok_or_else(bad)?;
    let domain_ok = !domain.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !domain.contains('@');
    if local.is_empty() || local.chars().count() > MAX_EMAIL_LOCAL_CHARS || !domain_ok {
        return Err(bad());
    }
    Ok(addr.to_string())
}

/// The form e-mail uniqueness is decided on: the whole address lowercased.
pub fn email_key(valid_email: &str) -> String {
    valid_email.trim().to_lowercase()
}

/// Checks a new password's length and that it is not a well-known one.
pub fn password(input: &str) -> Result<(), Invalid> {
    let chars = input.chars().count();
    if !PASSWORD_CHARS.contains(&chars) {
        return Err(invalid(
            ErrorCode::InvalidPassword,
            "password must be 8-128 characters long",
        ));
    }
    if is_common_password(input) {
        return Err(invalid(
            ErrorCode::PasswordTooCommon,
            "this password is too common; choose one that is harder to guess",
        ));
    }
    Ok(())
}

/// True if the password is on the bundled list (compared case-insensitively).
pub fn is_common_password(input: &str) -> bool {
    let lower = input.to_lowercase();
    COMMON_PASSWORDS
        .lines()
        .filter(|l| !l.starts_with('#'))
        .any(|l| l.trim() == lower)
}

/// Checks a meeting title and returns it trimmed. The length limit counts what was sent.
/// The invite page shows it to anyone with the link, so it refuses what a display name
/// refuses: direction overrides and invisible characters would disguise it.
pub fn title(input: &str) -> Result<String, Invalid> {
    let t = input.trim();
    if TITLE_CHARS.contains(&t.chars().count())
        && input.chars().count() <= *TITLE_CHARS.end()
        && !t
            .chars()
            .any(|c| c.is_control() || is_deceptive_format_char(c))
    {
        Ok(t.to_string())
    } else {
        Err(invalid(
            ErrorCode::InvalidTitle,
            "title must be 1-120 characters, without control or direction-changing characters",
        ))
    }
}

/// Whether two display names would pass for each other in a participant list: the same once
/// case, white space and look-alike letters (Unicode's confusables, UTS #39 skeletons) are
/// set aside. "Dana", "DANA", "D ana" and "Dаna" with a Cyrillic "а" are all one name.
pub fn names_confusable(a: &str, b: &str) -> bool {
    fn skeleton(s: &str) -> String {
        unicode_security::skeleton(s)
            .filter(|c| !c.is_whitespace())
            .collect()
    }
    // Folding case before the skeleton catches "DANA"; after it, letters whose capitals
    // look like another letter ("I" and "l") still meet.
    skeleton(&a.to_lowercase()) == skeleton(&b.to_lowercase())
        || skeleton(a).to_lowercase() == skeleton(b).to_lowercase()
}

/// Checks a meeting passcode chosen by a host.
pub fn passcode(input: &str) -> Result<(), Invalid> {
    if PASSCODE_CHARS.contains(&input.chars().count()) && !input.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(invalid(
            ErrorCode::InvalidPasscode,
            "passcode must be 6-64 characters",
        ))
    }
}

/// Characters that reorder or hide the text around them (bidi embeddings, overrides and
/// isolates, directional marks, zero-width joiners): in a name they let one person pose as
/// another (`"Bob\u{202E}nimda"` shows as "Bobadmin"), in chat they disguise what follows.
pub fn is_deceptive_format_char(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' // zero-width space/joiners, LRM, RLM
        | '\u{202A}'..='\u{202E}' // embeddings and overrides
        | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}' // isolates
        | '\u{061C}' // Arabic letter mark
        | '\u{FEFF}' // zero-width no-break space
    )
}

/// Checks a display name shown to others in a meeting and returns it trimmed. The length
/// limit counts what was sent.
pub fn display_name(input: &str) -> Result<String, Invalid> {
    let n = input.trim();
    if DISPLAY_NAME_CHARS.contains(&n.chars().count())
        && input.chars().count() <= *DISPLAY_NAME_CHARS.end()
        && !n
            .chars()
            .any(|c| c.is_control() || is_deceptive_format_char(c))
    {
        Ok(n.to_string())
    } else {
        Err(invalid(
            ErrorCode::InvalidDisplayName,
            "display name must be 1-64 characters, without control or direction-changing characters",
        ))
    }
}

/// Checks a chat message's size (it must not be blank).
pub fn chat_text(input: &str) -> Result<(), Invalid> {
    if input.trim().is_empty() {
        return Err(invalid(
            ErrorCode::MalformedRequest,
            "chat message is empty",
        ));
    }
    if input.len() > MAX_CHAT_BYTES {
        return Err(invalid(
            ErrorCode::PayloadTooLarge,
            "chat message is longer than 4 KiB",
        ));
    }
    // Line breaks and tabs are text; other control characters would reach terminals raw
    // (escape sequences in the CLI), and overrides would disguise the text that follows.
    let allowed = |c: char| c == '\n' || c == '\t';
    if input.chars().any(|c| {
        (c.is_control() && !allowed(c))
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    }) {
        return Err(invalid(
            ErrorCode::MalformedRequest,
            "chat messages cannot contain control or direction-override characters",
        ));
    }
    Ok(())
}

/// Checks the shape of a one-time e-mail code: exactly six ASCII digits.
pub fn email_code(input: &str) -> Result<(), Invalid> {
    let c = input.trim();
    if c.len() == EMAIL_CODE_DIGITS && c.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(invalid(ErrorCode::CodeInvalid, "the code is six digits"))
    }
}

/// The rules above as regular expressions in the syntax JSON Schema, ECMAScript, Python's `re`
/// and Rust's `regex` share, for the API description (with the lengths as `maxLength`). Each
/// is tested against its check (`published_patterns_agree_with_the_checks`).
pub mod pattern {
    /// What `str::trim` removes (Unicode White_Space), as the inside of a character class.
    macro_rules! ws {
        () => {
            r"\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
        };
    }
    /// Control characters (`char::is_control`, category Cc).
    macro_rules! cc {
        () => {
            r"\u0000-\u001f\u007f-\u009f"
        };
    }
    /// [`super::is_deceptive_format_char`].
    macro_rules! deceptive {
        () => {
            r"\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\u061c\ufeff"
        };
    }

    /// [`super::username`]: surrounding white space is trimmed, case is folded.
    pub const USERNAME: &str = concat!(
        "^[",
        ws!(),
        "]*[A-Za-z0-9][A-Za-z0-9_.-]{2,31}[",
        ws!(),
        "]*$"
    );
    /// [`super::email`], with `maxLength` [`super::MAX_EMAIL_CHARS`].
    pub const EMAIL: &str = concat!(
        "^[",
        ws!(),
        "]*[^",
        ws!(),
        cc!(),
        "]{1,64}@[^",
        ws!(),
        cc!(),
        ".@]+(?:\\.[^",
        ws!(),
        cc!(),
        ".@]+)+[",
        ws!(),
        "]*$"
    );
    /// Guest link labels, with `maxLength`: something besides white space, no control
    /// character.
    pub const TEXT_LINE: &str = concat!(
        "^[",
        ws!(),
        "]*[^",
        cc!(),
        "]*[^",
        ws!(),
        cc!(),
        "][^",
        cc!(),
        "]*[",
        ws!(),
        "]*$"
    );
    /// [`super::display_name`] with `maxLength` [`super::DISPLAY_NAME_CHARS`], and
    /// [`super::title`] with [`super::TITLE_CHARS`].
    pub const DISPLAY_NAME: &str = concat!(
        "^[",
        ws!(),
        "]*[^",
        cc!(),
        deceptive!(),
        "]*[^",
        ws!(),
        cc!(),
        deceptive!(),
        "][^",
        cc!(),
        deceptive!(),
        "]*[",
        ws!(),
        "]*$"
    );
    /// [`super::passcode`], or empty for none.
    pub const PASSCODE_OR_EMPTY: &str = concat!("^(?:[^", cc!(), "]{6,64})?$");
    /// [`super::chat_text`], with its byte limit beside: something besides white space; line
    /// breaks and tabs but no other control character, no direction override or isolate.
    pub const CHAT_TEXT: &str = concat!(
        r"^[^\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]*",
        "[^",
        ws!(),
        cc!(),
        r"\u202a-\u202e\u2066-\u2069]",
        r"[^\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]*$"
    );
    /// [`super::email_code`].
    pub const EMAIL_CODE: &str = concat!("^[", ws!(), "]*[0-9]{6}[", ws!(), "]*$");
    /// [`crate::MeetingCode::parse`]: twelve letters of its alphabet in either case, with
    /// spaces and dashes anywhere.
    pub const MEETING_CODE: &str = concat!(
        "^[",
        ws!(),
        "]*[ -]*(?:[a-hjkmnp-zA-HJKMNP-Z][ -]*){12}[",
        ws!(),
        "]*$"
    );
}

/// The bundled list of common passwords (lowercase) that a new password must not be, for the
/// API description; [`password`] also refuses them in any case.
pub fn common_passwords() -> impl Iterator<Item = &'static str> {
    COMMON_PASSWORDS
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::trim)
        .filter(|l| PASSWORD_CHARS.contains(&l.chars().count()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(username(" Alice_01 ").unwrap(), "alice_01");
        for bad in ["ab", "_alice", "a b c", "alice@x", &"a".repeat(33), "ålice"] {
            assert_eq!(
                username(bad).unwrap_err().code,
                ErrorCode::InvalidUsername,
                "{bad}"
            );
        }
    }

    #[test]
    fn emails() {
        assert_eq!(email(" Bob@Example.COM ").unwrap(), "Bob@Example.COM");
        assert_eq!(email_key("Bob@Example.COM"), "bob@example.com");
        for bad in [
            "",
            "bob",
            "bob@",
            "@x.org",
            "bob@localhost",
            "bob@x..org",
            "b ob@x.org",
            "bob@.x.org",
        ] {
            assert_eq!(
                email(bad).unwrap_err().code,
                ErrorCode::InvalidEmail,
                "{bad}"
            );
        }
    }

    #[test]
    fn passwords() {
        assert!(password("correct horse battery").is_ok());
        assert_eq!(
            password("short").unwrap_err().code,
            ErrorCode::InvalidPassword
        );
        assert_eq!(
            password(&"x".repeat(129)).unwrap_err().code,
            ErrorCode::InvalidPassword
        );
        assert!(
            password(&"é".repeat(128)).is_ok(),
            "length counts characters, not bytes"
        );
        assert_eq!(
            password("Password123").unwrap_err().code,
            ErrorCode::PasswordTooCommon
        );
        assert_eq!(
            password("qwertyuiop").unwrap_err().code,
            ErrorCode::PasswordTooCommon
        );
    }

    #[test]
    fn names_and_chat_refuse_controls_and_overrides() {
        assert!(display_name("Zoë O'Brien").is_ok());
        assert!(
            display_name("محمد").is_ok(),
            "right-to-left scripts are fine"
        );
        for bad in [
            "Bob\u{202E}nimda",
            "Eve\u{2066}x",
            "a\u{200B}b",
            "tab\tname",
            "esc\u{1b}[31m",
        ] {
            assert_eq!(
                display_name(bad).unwrap_err().code,
                ErrorCode::InvalidDisplayName,
                "{bad:?}"
            );
        }
        assert!(chat_text("two\nlines\twith a tab").is_ok());
        assert!(chat_text("שלום, hello").is_ok());
        for bad in [
            "\u{1b}[2J wiped",
            "bell\u{7}",
            "cr\r",
            "\u{202E}txe.exe",
            "nul\u{0}",
        ] {
            assert_eq!(
                chat_text(bad).unwrap_err().code,
                ErrorCode::MalformedRequest,
                "{bad:?}"
            );
        }
        assert!(
            passcode("12345").is_err(),
            "passcodes are at least 6 characters"
        );
        assert!(passcode("123456").is_ok());
    }

    #[test]
    fn a_common_password_list_of_thousands() {
        let n = COMMON_PASSWORDS
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .count();
        assert!(n >= 3000, "{n} entries");
        assert!(
            is_common_password("Baseball"),
            "compared case-insensitively"
        );
        assert!(is_common_password("Qwerty123"));
        assert!(is_common_password("PRINCESS1"));
    }

    #[test]
    fn names_that_pass_for_each_other() {
        for (a, b) in [
            ("Dana", "dana"),
            ("Dana", "DANA"),
            ("Dana", " D ana "),
            ("Dana", "D\u{0430}na"), // Cyrillic a
            ("Ian", "lan"),
            ("Paypal", "PayPaI"),
            ("0liver", "Oliver"),
        ] {
            assert!(names_confusable(a, b), "{a} ~ {b}");
        }
        for (a, b) in [("Dana", "Dan"), ("Dana", "Dana (host)"), ("Ann", "Anna")] {
            assert!(!names_confusable(a, b), "{a} !~ {b}");
        }
    }

    #[test]
    fn titles_names_codes() {
        assert_eq!(title("  Standup ").unwrap(), "Standup");
        assert_eq!(
            title("Pay \u{202E}gpj.exe").unwrap_err().code,
            ErrorCode::InvalidTitle,
            "a direction override in a title"
        );
        assert_eq!(title("   ").unwrap_err().code, ErrorCode::InvalidTitle);
        assert_eq!(
            title(&"t".repeat(121)).unwrap_err().code,
            ErrorCode::InvalidTitle
        );
        assert_eq!(
            passcode("123").unwrap_err().code,
            ErrorCode::InvalidPasscode
        );
        assert!(passcode("123456").is_ok());
        assert_eq!(
            display_name("").unwrap_err().code,
            ErrorCode::InvalidDisplayName
        );
        assert!(email_code("012345").is_ok());
        assert_eq!(
            email_code("12345a").unwrap_err().code,
            ErrorCode::CodeInvalid
        );
        assert_eq!(
            chat_text(&"x".repeat(MAX_CHAT_BYTES + 1)).unwrap_err().code,
            ErrorCode::PayloadTooLarge
        );
    }

    /// Each published pattern (with its length limit) accepts exactly what its check accepts,
    /// on edge cases and on every string made of a small alphabet of troublesome characters.
    #[test]
    fn published_patterns_agree_with_the_checks() {
        type Check = fn(&str) -> bool;
        let rules: [(&str, &str, Option<usize>, Check); 8] = [
            ("chat", pattern::CHAT_TEXT, None, |s| chat_text(s).is_ok()),
            ("username", pattern::USERNAME, None, |s| username(s).is_ok()),
            ("email", pattern::EMAIL, Some(MAX_EMAIL_CHARS), |s| {
                email(s).is_ok()
            }),
            ("title", pattern::DISPLAY_NAME, Some(120), |s| {
                title(s).is_ok()
            }),
            ("display name", pattern::DISPLAY_NAME, Some(64), |s| {
                display_name(s).is_ok()
            }),
            ("passcode", pattern::PASSCODE_OR_EMPTY, None, |s| {
                s.is_empty() || passcode(s).is_ok()
            }),
            ("email code", pattern::EMAIL_CODE, None, |s| {
                email_code(s).is_ok()
            }),
            ("meeting code", pattern::MEETING_CODE, None, |s| {
                crate::MeetingCode::parse(s).is_ok()
            }),
        ];
        let mut samples: Vec<String> = [
            "",
            " ",
            "alice",
            " Alice_01 ",
            "_alice",
            "a\u{1c}bc",
            "bob@x.org",
            " bob@x.org\t",
            "a@b@x.org",
            "bob@x..org",
            "bob@.x.org",
            "bob@x.org.",
            "bob@localhost",
            "b ob@x.org",
            "Standup",
            "  Standup  ",
            "\tStandup\n",
            "Stand\tup",
            "Bob\u{202E}nimda",
            "\u{a0}Zoë\u{a0}",
            "\u{feff}",
            "123456",
            " 123456 ",
            "123456\n",
            "12345",
            "bcdf-ghjk-mnpq",
            " BCDF GHJK MNPQ ",
            "-bcdfghjkmnpq-",
            "bcdf-ghjk-mnpi",
            "bcdf\tghjk-mnpq",
            "two\nlines\twith a tab",
            "\n\t",
            "cr\r",
            "\u{2066}x",
        ]
        .map(String::from)
        .to_vec();
        samples.push(format!("{}@x.org", "é".repeat(64)));
        samples.push(format!("{}@x.org", "é".repeat(65)));
        samples.push(format!("a@{}.org", "x".repeat(240)));
        samples.push(format!("a@{}.org", "x".repeat(250)));
        samples.push("t".repeat(120));
        samples.push(format!(" {}", "t".repeat(120)));
        samples.push("n".repeat(64));
        samples.push("c".repeat(64));
        samples.push("c".repeat(65));
        samples.push(format!("{}a", "b".repeat(32)));
        // Every string of up to four characters from this alphabet.
        let alphabet = [
            'a', 'b', ' ', '\t', '@', '.', '-', '1', '\u{1}', '\u{202e}', '\u{2000}',
        ];
        let mut level = vec![String::new()];
        for _ in 0..4 {
            level = level
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            samples.extend(level.iter().cloned());
        }
        for (name, pat, max, check) in rules {
            let re = regex::Regex::new(pat).unwrap_or_else(|e| panic!("{name}: {e}"));
            for s in &samples {
                let published = re.is_match(s) && max.is_none_or(|m| s.chars().count() <= m);
                assert_eq!(published, check(s), "{name} on {s:?}");
            }
        }
    }
}
