//! Outgoing e-mail: verification and password-reset codes.
//!
//! With SMTP configured, mail goes through lettre; without it the code is written to the
//! server log (INFO, target `parley::mail`) so a laptop install works with no mail relay.

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

/// Where mail goes.
#[derive(Clone)]
pub enum Mailer {
    /// No relay configured: codes go to the log.
    Log,
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
    pub fn from_config(smtp: Option<&SmtpConfig>) -> Result<Self, MailConfigError> {
        let Some(smtp) = smtp else {
            return Ok(Mailer::Log);
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

    /// Sends `code` to `to`. Failures are logged, not returned: the caller has already
    /// answered the client, which must not learn whether an address exists.
    pub async fn send_code(&self, to: &str, user_id: &str, purpose: CodePurpose, code: &str) {
        match self {
            Mailer::Log => {
                tracing::info!(
                    target: "parley::mail",
                    user_id,
                    purpose = purpose.as_str(),
                    code,
                    "no SMTP configured: e-mail code written to the log"
                );
            }
            Mailer::Smtp { transport, from } => {
                let message = match build_message(from, to, purpose, code) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(user_id, error = %e, "cannot build e-mail");
                        return;
                    }
                };
                match transport.send(message).await {
                    Ok(_) => {
                        tracing::info!(user_id, purpose = purpose.as_str(), "e-mail code sent")
                    }
                    Err(e) => tracing::warn!(user_id, error = %e, "e-mail delivery failed"),
                }
            }
        }
    }
}

fn build_message(
    from: &Mailbox,
    to: &str,
    purpose: CodePurpose,
    code: &str,
) -> Result<Message, Box<dyn std::error::Error + Send + Sync>> {
    let (subject, action) = match purpose {
        CodePurpose::Verify => (
            "Verify your Parley e-mail address",
            "verify your e-mail address",
        ),
        CodePurpose::Reset => ("Reset your Parley password", "reset your password"),
    };
    let body = format!(
        "Your Parley code is {code}\n\nEnter it in Parley to {action}. It expires in 24 hours \
         and works once.\nIf you did not ask for it, you can ignore this message.\n"
    );
    Ok(Message::builder()
        .from(from.clone())
        .to(to.parse()?)
        .subject(subject)
        .body(body)?)
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
        let mailer = Mailer::from_config(None).unwrap();
        assert!(matches!(mailer, Mailer::Log));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(mailer.send_code(
            "secret.person@example.org",
            "user-1",
            CodePurpose::Reset,
            "424242",
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
            Mailer::from_config(Some(&smtp)),
            Err(MailConfigError::From(_))
        ));
    }
}
