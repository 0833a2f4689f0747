//! Outgoing e-mail: verification and password-reset codes.
//!
//! With SMTP configured, mail goes through lettre; without it the code is written to the
//! server log (INFO, target `parley::mail`) so a laptop install works with no mail relay —
//! but only while the server listens on loopback: on any other address a log line is not a
//! private channel to the address's owner, so the code is left out (configure SMTP).

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

use crate::config::{SmtpConfig, SmtpTls};

/// Why a code is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePurpose {
    Verify,
    Reset,
}

impl CodePurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            CodePurpose::Verify => "verify",
            CodePurpose::Reset => "reset",
        }
    }
}

/// A message that tells the owner of an account what happened to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Their password was reset with a mailed code.
    PasswordReset,
    /// Someone tried to create an account with their address.
    SignUpAttempt,
}

impl Notice {
    fn as_str(self) -> &'static str {
        match self {
            Notice::PasswordReset => "password_reset",
            Notice::SignUpAttempt => "sign_up_attempt",
        }
    }
}

/// Where mail goes.
#[derive(Clone)]
pub enum Mailer {
    /// No relay configured: codes go to the log when `codes_in_log` (loopback only).
    Log { codes_in_log: bool },
    Smtp {
        transport: Box<AsyncSmtpTransport<Tokio1Executor>>,
        from: Mailbox,
    },
}

/// SMTP settings that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum MailConfigError {
    #[error("smtp.from: {0}")]
    From(#[from] lettre::address::AddressError),
    #[error("smtp: {0}")]
    Transport(#[from] lettre::transport::smtp::Error),
}

impl Mailer {
    /// The mailer for `smtp`, or the log when there is none (codes in it only when the
    /// server `listen`s on loopback).
    pub fn from_config(
        smtp: Option<&SmtpConfig>,
        listen: std::net::SocketAddr,
    ) -> Result<Self, MailConfigError> {
        let Some(smtp) = smtp else {
            let codes_in_log = listen.ip().is_loopback();
            if !codes_in_log {
                tracing::warn!(
                    "no SMTP configured and listening beyond loopback: e-mail codes cannot be delivered (set [smtp])"
                );
            }
            return Ok(Mailer::Log { codes_in_log });
        };
        let mut builder = match smtp.tls {
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)?,
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
        }
        .port(smtp.port)
        .timeout(Some(std::time::Duration::from_secs(15)));
        if let (Some(user), Some(pass)) = (&smtp.username, &smtp.password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        Ok(Mailer::Smtp {
            transport: Box::new(builder.build()),
            from: smtp.from.parse()?,
        })
    }

    /// Sends `code` (valid `ttl_secs`) to `to`. Failures are logged, not returned: the
    /// caller has already answered the client, which must not learn whether an address exists.
    pub async fn send_code(
        &self,
        to: &str,
        user_id: &str,
        purpose: CodePurpose,
        code: &str,
        ttl_secs: u64,
    ) {
        match self {
            Mailer::Log { codes_in_log: true } => {
                tracing::info!(
                    target: "parley::mail",
                    user_id,
                    purpose = purpose.as_str(),
                    code,
                    "no SMTP configured: e-mail code written to the log"
                );
            }
            Mailer::Log {
                codes_in_log: false,
            } => {
                tracing::warn!(
                    target: "parley::mail",
                    user_id,
                    purpose = purpose.as_str(),
                    "no SMTP configured: e-mail code not delivered"
                );
            }
            Mailer::Smtp { transport, from } => {
                let message = build_message(from, to, purpose, code, ttl_secs);
                deliver(transport, message, user_id, purpose.as_str()).await;
            }
        }
    }

    /// Tells the owner of `to` what happened to their account (best effort, like codes).
    pub async fn send_notice(&self, to: &str, user_id: &str, notice: Notice) {
        let Mailer::Smtp { transport, from } = self else {
            tracing::info!(target: "parley::mail", user_id, notice = notice.as_str(), "no SMTP configured: notice not sent");
            return;
        };
        let (subject, body) = match notice {
            Notice::PasswordReset => (
                "Your Parley password was reset",
                "The password of your Parley account was just reset with a code mailed to this \
                 address, and every device was signed out.\n\nIf that was you, there is nothing \
                 to do. If it was not, someone can read this mailbox: secure it, then reset your \
                 password again.\n",
            ),
            Notice::SignUpAttempt => (
                "Someone tried to sign up to Parley with your address",
                "Someone tried to create a Parley account with this address, which already has \
                 one. If it was you, sign in instead (or reset your password if you forgot it). \
                 If it was not, you can ignore this message: nothing was changed.\n",
            ),
        };
        let message = letter(from, to, subject, body.to_string());
        deliver(transport, message, user_id, notice.as_str()).await;
    }
}

type BuildError = Box<dyn std::error::Error + Send + Sync>;

/// Sends one message (built or not), logging the outcome under `what` — never the address.
async fn deliver(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    message: Result<Message, BuildError>,
    user_id: &str,
    what: &str,
) {
    let message = match message {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(user_id, error = %e, "cannot build e-mail");
            return;
        }
    };
    match transport.send(message).await {
        Ok(_) => tracing::info!(user_id, what, "e-mail sent"),
        Err(e) => tracing::warn!(user_id, error = %e, "e-mail delivery failed"),
    }
}

fn letter(from: &Mailbox, to: &str, subject: &str, body: String) -> Result<Message, BuildError> {
    Ok(Message::builder()
        .from(from.clone())
        .to(to.parse()?)
        .subject(subject)
        .body(body)?)
}

/// "15 minutes", "24 hours": how long a code lives, for the message.
fn lifetime(ttl_secs: u64) -> String {
    match ttl_secs {
        s if s >= 7200 && s % 3600 == 0 => format!("{} hours", s / 3600),
        s if s >= 120 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

fn build_message(
    from: &Mailbox,
    to: &str,
    purpose: CodePurpose,
    code: &str,
    ttl_secs: u64,
) -> Result<Message, BuildError> {
    let (subject, action) = match purpose {
        CodePurpose::Verify => (
            "Verify your Parley e-mail address",
            "verify your e-mail address",
        ),
        CodePurpose::Reset => ("Reset your Parley password", "reset your password"),
    };
    let body = format!(
        "Your Parley code is {code}\n\nEnter it in Parley to {action}. It expires in {} \
         and works once.\nIf you did not ask for it, you can ignore this message.\n",
        lifetime(ttl_secs)
    );
    letter(from, to, subject, body)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn without_smtp_the_code_goes_to_the_log_and_the_address_does_not() {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let loopback = "127.0.0.1:8080".parse().unwrap();
        let mailer = Mailer::from_config(None, loopback).unwrap();
        assert!(matches!(mailer, Mailer::Log { codes_in_log: true }));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(mailer.send_code(
            "secret.person@example.org",
            "user-1",
            CodePurpose::Reset,
            "424242",
            900,
        ));
        let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("424242"), "{log}");
        assert!(log.contains("purpose=\"reset\""), "{log}");
        assert!(
            !log.contains("secret.person"),
            "addresses stay out of the log: {log}"
        );
    }

    #[test]
    fn beyond_loopback_codes_never_reach_the_log() {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let public = "0.0.0.0:8080".parse().unwrap();
        let mailer = Mailer::from_config(None, public).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(mailer.send_code("a@example.org", "user-1", CodePurpose::Reset, "135791", 900));
        let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("not delivered"), "{log}");
        assert!(
            !log.contains("135791"),
            "the code stays out of the log: {log}"
        );
    }

    #[test]
    fn a_code_mail_says_how_long_it_lives() {
        let from: Mailbox = "Parley <no-reply@parley.test>".parse().unwrap();
        let m = build_message(&from, "a@example.org", CodePurpose::Reset, "123456", 900).unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(text.contains("expires in 15 minutes"), "{text}");
        assert_eq!(lifetime(24 * 3600), "24 hours");
    }

    #[test]
    fn smtp_config_is_checked() {
        let smtp = SmtpConfig {
            host: "127.0.0.1".into(),
            port: 2525,
            username: None,
            password: None,
            from: "not an address".into(),
            tls: SmtpTls::None,
        };
        assert!(matches!(
            Mailer::from_config(Some(&smtp), "127.0.0.1:8080".parse().unwrap()),
            Err(MailConfigError::From(_))
        ));
    }
}
