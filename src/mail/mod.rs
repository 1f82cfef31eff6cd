//! Outgoing mail: one message per voicemail (audio attached as WAV) and per received fax (PDF).
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

pub mod fax;
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
        delete_message: None,
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

/// Fills `{name}` placeholders; unknown ones are left as written.
pub fn render_template(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if vars.iter().any(|(k, _)| *k == &after[..close]) => {
                let key = &after[..close];
                if let Some((_, v)) = vars.iter().find(|(k, _)| *k == key) {
                    out.push_str(v);
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

pub(crate) fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            _ => o.push(c),
        }
    }
    o
}

/// Builds the notification for a new voicemail from the configured templates: a plain-text
/// part, the same text as simple HTML, and (unless the mailbox is notify-only) the WAV.
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
    let mut builder = Message::builder().from(from).message_id(None);
    let mut any = false;
    for a in mailbox.recipients() {
        let addr = a
            .parse()
            .map_err(|e: lettre::address::AddressError| MailError::Address(e.to_string()))?;
        builder = builder.to(MailAddr::new(mailbox.name.clone(), addr));
        any = true;
    }
    if !any {
        return Err(MailError::Address("the mailbox has no address".into()));
    }
    let when = format_time(msg.received_unix, &cfg.timezone);
    let dur = format_duration(msg.duration_ms);
    let owner = mailbox
        .name
        .clone()
        .unwrap_or_else(|| format!("extension {}", mailbox.id));
    let note = match (mailbox.attach, mailbox.email_only) {
        (true, false) => {
            "The message is attached as a WAV file. It also remains in your mailbox:\n\
                          dial the voicemail service to hear, save or delete it."
        }
        (true, true) => "The message is attached as a WAV file.",
        (false, _) => "Dial the voicemail service from your phone to hear it.",
    };
    let id = msg.id.0.to_string();
    let mb = mailbox.id.to_string();
    let vars = [
        ("caller", msg.caller_display.as_str()),
        ("name", owner.as_str()),
        ("mailbox", mb.as_str()),
        ("received", when.as_str()),
        ("duration", dur.as_str()),
        ("message_id", id.as_str()),
        ("reason", msg.reason.as_str()),
        ("attachment_note", note),
    ];
    let subject = render_template(&cfg.templates.subject, &vars);
    let text = render_template(&cfg.templates.body, &vars);
    let html = format!(
        "<html><body><p>{}</p></body></html>",
        html_escape(&text)
            .replace("\n\n", "</p><p>")
            .replace('\n', "<br>")
    );
    let body = MultiPart::alternative()
        .singlepart(SinglePart::plain(text))
        .singlepart(SinglePart::html(html));
    let mut content = MultiPart::mixed().multipart(body);
    if mailbox.attach {
        let stamp = DateTime::from_timestamp(msg.received_unix, 0)
            .unwrap_or_default()
            .format("%Y%m%d-%H%M%S");
        content = content.singlepart(Attachment::new(format!("msg-{stamp}.wav")).body(
            wav_bytes(audio),
            ContentType::parse("audio/wav").map_err(|e| MailError::Build(e.to_string()))?,
        ));
    }
    builder
        .subject(subject)
        .multipart(content)
        .map_err(|e| MailError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DiversionReason, Folder, MailboxId, MessageId};

    #[test]
    fn mail_parses_back_with_attachment() {
        let cfg = MailConfig::default();
        let mb = Mailbox::new(
            MailboxId::parse("77513").unwrap(),
            "alice@example.ac.uk",
            Some("Zoë Ñandú".into()),
        );
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
    fn templates_fill_placeholders_and_keep_unknown_ones() {
        let v = [("caller", "01865 277514"), ("duration", "0:42")];
        assert_eq!(
            render_template("From {caller} ({duration}) {nope} {", &v),
            "From 01865 277514 (0:42) {nope} {"
        );
    }

    #[test]
    fn notify_only_mailbox_with_two_recipients_has_no_attachment() {
        let mut cfg = MailConfig::default();
        cfg.templates.subject = "VM {mailbox}: {caller}".into();
        let mut mb = Mailbox::new(
            MailboxId::parse("12345").unwrap(),
            "desk@example.ac.uk, office@example.ac.uk",
            None,
        );
        mb.attach = false;
        let msg = StoredMessage {
            id: MessageId(7),
            mailbox: mb.id.clone(),
            caller: String::new(),
            caller_display: "an unknown caller".into(),
            received_unix: 1_782_000_000,
            duration_ms: 4000,
            reason: DiversionReason::Busy,
            audio_path: "x".into(),
            folder: Folder::New,
        };
        let raw = voicemail_mail(&cfg, &mb, &msg, &[0; 800])
            .unwrap()
            .formatted();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(parsed.subject(), Some("VM 12345: an unknown caller"));
        assert_eq!(parsed.to().unwrap().iter().count(), 2);
        assert_eq!(parsed.attachments().count(), 0);
        assert!(parsed.body_html(0).unwrap().contains("an unknown caller"));
        assert!(parsed
            .body_text(0)
            .unwrap()
            .contains("Dial the voicemail service"));
    }

    #[test]
    fn malformed_address_is_a_clear_error() {
        let mb = Mailbox::new(MailboxId::parse("12345").unwrap(), "not an address", None);
        let msg = StoredMessage {
            id: MessageId(7),
            mailbox: mb.id.clone(),
            caller: String::new(),
            caller_display: String::new(),
            received_unix: 0,
            duration_ms: 0,
            reason: DiversionReason::Busy,
            audio_path: "x".into(),
            folder: Folder::New,
        };
        assert!(matches!(
            voicemail_mail(&MailConfig::default(), &mb, &msg, &[]),
            Err(MailError::Address(_))
        ));
    }

    #[test]
    fn times_show_in_london() {
        // 2026-07-01 12:00 UTC is 13:00 BST; 2026-01-15 12:00 UTC is 12:00 GMT.
        assert!(format_time(1_782_907_200, "Europe/London").contains("13:00 BST"));
        assert!(format_time(1_768_478_400, "Europe/London").contains("12:00 GMT"));
        assert_eq!(format_duration(61_400), "1:01");
    }
}
