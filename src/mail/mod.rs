//! Outgoing mail: one message per voicemail, with the audio attached as WAV.
//!
//! The zero-configuration transport writes `.eml` files into `<data_dir>/outbox`; an SMTP relay
//! (plain, STARTTLS or implicit TLS, optional AUTH) is used when configured. A failed send is
//! logged and the voicemail stays in the mailbox (the durable retry queue is a later step).

use chrono::{DateTime, Utc};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox as MailAddr, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::Path;
use std::time::Duration;

use crate::config::{MailConfig, MailTransportKind, SmtpSecurity};
use crate::store::{wav_bytes, Mailbox, NewMail, StoredMessage};

pub mod outbox;

/// Mail errors, by fault.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address: {0}")]
    Address(String),
    #[error("cannot build the mail: {0}")]
    Build(String),
    #[error("transport: {0}")]
    Transport(String),
    #[error("cannot read the audio: {0}")]
    Audio(#[from] std::io::Error),
}

/// The configured transport.
#[derive(Clone)]
pub enum Mailer {
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Mailer {
    /// Builds the transport from configuration; the file transport writes into `outbox`.
    pub fn from_config(cfg: &MailConfig, outbox: &Path) -> Result<Self, MailError> {
        match cfg.transport {
            MailTransportKind::File => {
                std::fs::create_dir_all(outbox)?;
                Ok(Self::File(AsyncFileTransport::new(outbox)))
            }
            MailTransportKind::Smtp => {
                let s = &cfg.smtp;
                let tls = match s.security {
                    SmtpSecurity::None => Tls::None,
                    SmtpSecurity::Starttls => Tls::Required(tls_parameters(s)?),
                    SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(s)?),
                };
                let builder =
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host).tls(tls);
                let mut builder = builder
                    .port(s.port)
                    .timeout(Some(Duration::from_secs(s.timeout_secs)));
                if let (Some(u), Some(p)) = (&s.username, &s.password) {
                    builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
                }
                Ok(Self::Smtp(builder.build()))
            }
        }
    }

    /// Hands one formatted mail to the transport.
    pub async fn send_raw(&self, from: &str, to: &[String], raw: &[u8]) -> Result<(), SendError> {
        let parse = |a: &str| {
            a.parse::<lettre::Address>()
                .map_err(|e| SendError::permanent(format!("invalid address: {e}")))
        };
        let from = parse(from)?;
        let to = to.iter().map(|a| parse(a)).collect::<Result<Vec<_>, _>>()?;
        let envelope = lettre::address::Envelope::new(Some(from), to)
            .map_err(|e| SendError::permanent(e.to_string()))?;
        match self {
            // A local write that fails (disk full, permissions) may well succeed later.
            Self::File(t) => t
                .send_raw(&envelope, raw)
                .await
                .map(|_| ())
                .map_err(|e| SendError::transient(e.to_string())),
            Self::Smtp(t) => t.send_raw(&envelope, raw).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    SendError::permanent(e.to_string())
                } else {
                    SendError::transient(e.to_string())
                }
            }),
        }
    }
}

/// Why a send did not go through, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// A 5xx from the server or an address that can never work.
    pub permanent: bool,
    pub message: String,
}

impl SendError {
    fn permanent(message: String) -> Self {
        Self {
            permanent: true,
            message,
        }
    }

    fn transient(message: String) -> Self {
        Self {
            permanent: false,
            message,
        }
    }
}

/// Turns a built message into a queue item (envelope + bytes + its Message-ID).
pub fn to_queued(kind: &str, msg: &Message) -> NewMail {
    let env = msg.envelope();
    let message_id = msg
        .headers()
        .get_raw("Message-ID")
        .unwrap_or_default()
        .to_owned();
    NewMail {
        kind: kind.to_owned(),
        message_id,
        from: env.from().map(|a| a.to_string()).unwrap_or_default(),
        to: env.to().iter().map(|a| a.to_string()).collect(),
        raw: msg.formatted(),
    }
}

/// TLS towards the relay: certificates verified against the Mozilla roots plus `ca_file`,
/// unless `danger_accept_invalid_certs` says otherwise.
fn tls_parameters(s: &crate::config::SmtpConfig) -> Result<TlsParameters, MailError> {
    let domain = s.tls_domain.clone().unwrap_or_else(|| s.host.clone());
    let mut b = TlsParameters::builder(domain)
        .dangerous_accept_invalid_certs(s.danger_accept_invalid_certs)
        .dangerous_accept_invalid_hostnames(s.danger_accept_invalid_certs);
    if let Some(path) = &s.ca_file {
        let pem = std::fs::read(path)?;
        let cert = Certificate::from_pem(&pem)
            .map_err(|e| MailError::Transport(format!("{}: {e}", path.display())))?;
        b = b.add_root_certificate(cert);
    }
    b.build().map_err(|e| MailError::Transport(e.to_string()))
}

/// `m:ss` of a duration in milliseconds.
pub fn format_duration(ms: i64) -> String {
    let secs = (ms + 500) / 1000;
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// Local wall time of a message in the configured zone, e.g. `Sunday 22 November 2026, 14:05 GMT`.
pub fn format_time(unix: i64, tz: &str) -> String {
    let utc: DateTime<Utc> = DateTime::from_timestamp(unix, 0).unwrap_or_default();
    match tz.parse::<chrono_tz::Tz>() {
        Ok(zone) => utc
            .with_timezone(&zone)
            .format("%A %-d %B %Y, %H:%M %Z")
            .to_string(),
        Err(_) => utc.format("%A %-d %B %Y, %H:%M UTC").to_string(),
    }
}

/// Builds the notification for a new voicemail.
pub fn voicemail_mail(
    cfg: &MailConfig,
    mailbox: &Mailbox,
    msg: &StoredMessage,
    audio: &[i16],
) -> Result<Message, MailError> {
    let from: MailAddr = cfg
        .from
        .parse()
        .map_err(|e: lettre::address::AddressError| MailError::Address(e.to_string()))?;
    let to_addr = mailbox
        .email
        .parse()
        .map_err(|e: lettre::address::AddressError| MailError::Address(e.to_string()))?;
    let to = MailAddr::new(mailbox.name.clone(), to_addr);
    let when = format_time(msg.received_unix, &cfg.timezone);
    let dur = format_duration(msg.duration_ms);
    let subject = format!("Voicemail from {} ({dur})", msg.caller_display);
    let owner = mailbox
        .name
        .clone()
        .unwrap_or_else(|| format!("extension {}", mailbox.id));
    let body = format!(
        "You have a new voicemail for {owner} (mailbox {mb}).\n\n\
         From:     {caller}\n\
         Received: {when}\n\
         Duration: {dur}\n\n\
         The message is attached as a WAV file. It also remains in your mailbox:\n\
         dial the voicemail service from your phone to hear, save or delete it.\n",
        mb = mailbox.id,
        caller = msg.caller_display,
    );
    let stamp = DateTime::from_timestamp(msg.received_unix, 0)
        .unwrap_or_default()
        .format("%Y%m%d-%H%M%S");
    let attachment = Attachment::new(format!("msg-{stamp}.wav")).body(
        wav_bytes(audio),
        ContentType::parse("audio/wav").map_err(|e| MailError::Build(e.to_string()))?,
    );
    Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .message_id(None)
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(body))
                .singlepart(attachment),
        )
        .map_err(|e| MailError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DiversionReason, Folder, MailboxId, MessageId};

    #[test]
    fn mail_parses_back_with_attachment() {
        let cfg = MailConfig::default();
        let mb = Mailbox {
            id: MailboxId::parse("77513").unwrap(),
            email: "alice@example.ac.uk".into(),
            name: Some("Zoë Ñandú".into()),
        };
        let audio: Vec<i16> = (0..8000).map(|i| (i * 7 % 3000) as i16).collect();
        let msg = StoredMessage {
            id: MessageId(1),
            mailbox: mb.id.clone(),
            caller: "+441865277514".into(),
            caller_display: "01865 277514 (extension 77514)".into(),
            received_unix: 1_782_000_000,
            duration_ms: 1000,
            reason: DiversionReason::NoAnswer,
            audio_path: "x".into(),
            folder: Folder::New,
        };
        let m = voicemail_mail(&cfg, &mb, &msg, &audio).unwrap();
        let raw = m.formatted();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(
            parsed.subject(),
            Some("Voicemail from 01865 277514 (extension 77514) (0:01)")
        );
        assert!(parsed.message_id().is_some());
        let to = parsed.to().unwrap().first().unwrap();
        assert_eq!(to.name(), Some("Zoë Ñandú"));
        let att = parsed.attachments().next().unwrap();
        assert_eq!(att.contents(), wav_bytes(&audio).as_slice());
        let text = parsed.body_text(0).unwrap();
        assert!(text.contains("Duration: 0:01"), "{text}");
    }

    #[test]
    fn times_show_in_london() {
        // 2026-07-01 12:00 UTC is 13:00 BST; 2026-01-15 12:00 UTC is 12:00 GMT.
        assert!(format_time(1_782_907_200, "Europe/London").contains("13:00 BST"));
        assert!(format_time(1_768_478_400, "Europe/London").contains("12:00 GMT"));
        assert_eq!(format_duration(61_400), "1:01");
    }
}
