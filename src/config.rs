//! Service configuration: a TOML file whose every key is optional. `Config::default()` is what
//! `coda serve` runs on with no file; `coda.example.toml` shows every option with its default.

use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::numbering::NumberingPlan;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub sip: SipConfig,
    pub rtp: RtpConfig,
    pub storage: StorageConfig,
    pub admin: AdminConfig,
    pub limits: LimitsConfig,
    pub voicemail: VoicemailConfig,
    pub mail: MailConfig,
    pub numbering: NumberingPlan,
    pub prompts: PromptsConfig,
    pub fax: FaxConfig,
    /// Mailboxes declared in the file; created or updated in the store at start-up.
    #[serde(rename = "mailbox")]
    pub mailboxes: Vec<MailboxConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// Address for both UDP and TCP.
    pub listen: SocketAddr,
    /// Address put into Contact and SDP when `listen` is a wildcard address.
    pub public_address: Option<IpAddr>,
    /// User-Agent / Server header value.
    pub server_name: String,
    /// Networks (CIDR) whose SUBSCRIBEs are accepted without authentication: the PBX and
    /// the phones' subnets.
    pub trusted_networks: Vec<String>,
}

impl SipConfig {
    /// Whether `ip` is inside one of `trusted_networks`.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_networks.iter().any(|n| cidr_contains(n, ip))
    }
}

/// `a.b.c.d/len` or `v6/len` (a bare address is /32 or /128).
pub fn cidr_contains(net: &str, ip: IpAddr) -> bool {
    let (addr, len) = match net.split_once('/') {
        Some((a, l)) => (a, l.parse::<u32>().ok()),
        None => (net, None),
    };
    match (addr.parse::<IpAddr>(), ip) {
        (Ok(IpAddr::V4(n)), IpAddr::V4(i)) => {
            let len = len.unwrap_or(32).min(32);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (Ok(IpAddr::V6(n)), IpAddr::V6(i)) => {
            let len = len.unwrap_or(128).min(128);
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5060),
            public_address: None,
            server_name: format!("coda/{}", env!("CARGO_PKG_VERSION")),
            trusted_networks: vec!["127.0.0.0/8".into(), "::1/128".into()],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RtpConfig {
    /// Address RTP sockets bind to (and announce in SDP unless `sip.public_address` is set).
    pub address: IpAddr,
    pub port_min: u16,
    pub port_max: u16,
}

impl Default for RtpConfig {
    fn default() -> Self {
        Self {
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port_min: 20000,
            port_max: 29999,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// SQLite database, spool and file-transport outbox live here.
    pub data_dir: PathBuf,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./coda-data"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Serve the HTTP admin API (`/health`, `/metrics`).
    pub enabled: bool,
    pub listen: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Concurrent calls; an INVITE beyond it gets 503 with Retry-After.
    pub max_calls: usize,
    /// Seconds announced in Retry-After when at the limit.
    pub retry_after_secs: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_calls: 1000,
            retry_after_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoicemailConfig {
    /// Longest message; recording stops (and the message is kept) after it.
    pub max_message_secs: u32,
    /// Messages shorter than this are discarded.
    pub min_message_secs: f32,
    /// Continuous silence that ends a recording.
    pub silence_secs: u32,
    /// Silence threshold in dBFS.
    pub silence_threshold_dbfs: f32,
    /// Messages a mailbox holds before callers are told it is full.
    pub max_messages: u32,
    /// `*` during the greeting goes to mailbox login. Off: a known toll-fraud route.
    pub star_to_login: bool,
    /// Seconds of no RTP at all after which a call is ended (a dead peer).
    pub media_timeout_secs: u32,
    /// Request-URI users that reach mailbox login (the "Messages" key of the phones).
    pub pilot_numbers: Vec<String>,
    /// PIN length.
    pub pin_length: usize,
    /// A new PIN becomes valid this long after it is set.
    pub pin_activation_minutes: f64,
    /// Consecutive wrong PINs (across calls) that lock the mailbox.
    pub pin_max_attempts: u32,
    /// How long a locked mailbox stays locked.
    pub pin_lockout_minutes: f64,
}

impl Default for VoicemailConfig {
    fn default() -> Self {
        Self {
            max_message_secs: 180,
            min_message_secs: 1.0,
            silence_secs: 10,
            silence_threshold_dbfs: -50.0,
            max_messages: 100,
            star_to_login: false,
            media_timeout_secs: 30,
            pilot_numbers: vec!["voicemail".into(), "8000".into()],
            pin_length: 6,
            pin_activation_minutes: 10.0,
            pin_max_attempts: 3,
            pin_lockout_minutes: 30.0,
        }
    }
}

/// Fax reception (fax to email).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaxConfig {
    /// Fax numbers (Request-URI or diverted-from users) and where their faxes go: a mailbox
    /// number (its owner's addresses) or a mail address.
    pub numbers: std::collections::BTreeMap<String, String>,
    /// A call to a voicemail number that hears fax tones (CNG) during the greeting switches
    /// to fax reception for that mailbox.
    pub detect_on_voicemail: bool,
    /// Our station identifier sent to senders (CSI), up to 20 characters.
    pub ident: String,
    /// Offer error-correcting mode (needed for T.6 on the line).
    pub ecm: bool,
    /// Offer V.17 (14400 bit/s).
    pub v17: bool,
    /// Accept the far end's re-INVITE to T.38.
    pub t38: bool,
    /// Ask the far end to switch to T.38 ourselves, shortly after answering.
    pub t38_request: bool,
    /// How long after answering coda sends that re-INVITE (milliseconds).
    pub t38_request_delay_ms: u32,
    /// Highest T.38 version we offer and accept (0..=3).
    pub t38_version: u8,
    /// UDPTL redundancy depth we send.
    pub udptl_redundancy: u8,
    /// Longest reception; the fax is cut off (and what arrived is kept) after it.
    pub max_duration_secs: u32,
    /// Most pages accepted in one fax.
    pub max_pages: u32,
    /// Largest received document (the TIFF spandsp writes), in MiB.
    pub max_document_mb: u32,
    /// Days a received fax (PDF and record) is kept; 0 keeps it forever.
    pub retention_days: u32,
}

impl Default for FaxConfig {
    fn default() -> Self {
        Self {
            numbers: Default::default(),
            detect_on_voicemail: true,
            ident: "coda".into(),
            ecm: true,
            v17: true,
            t38: true,
            t38_request: false,
            t38_request_delay_ms: 1500,
            t38_version: 3,
            udptl_redundancy: 3,
            max_duration_secs: 1800,
            max_pages: 100,
            max_document_mb: 50,
            retention_days: 90,
        }
    }
}

/// How outgoing mail leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MailTransportKind {
    /// `.eml` files in `<data_dir>/outbox` (the zero-configuration default).
    #[default]
    File,
    /// An SMTP relay, see `[mail.smtp]`.
    Smtp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    pub from: String,
    pub transport: MailTransportKind,
    pub smtp: SmtpConfig,
    /// Time zone in which mails show times.
    pub timezone: String,
    /// Hours a mail is retried before it is given up (and the administrators warned).
    pub retry_horizon_hours: u32,
    /// Where warnings about undeliverable mail go; none: only logged and counted.
    pub admin_email: Option<String>,
    pub templates: MailTemplates,
}

/// Subject and body of voicemail notifications. Placeholders: `{caller}`, `{name}`,
/// `{mailbox}`, `{received}`, `{duration}`, `{message_id}`, `{reason}`, `{attachment_note}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailTemplates {
    pub subject: String,
    pub body: String,
}

impl Default for MailTemplates {
    fn default() -> Self {
        Self {
            subject: "Voicemail from {caller} ({duration})".into(),
            body: "You have a new voicemail for {name} (mailbox {mailbox}).\n\n\
                   From:     {caller}\n\
                   Received: {received}\n\
                   Duration: {duration}\n\n\
                   {attachment_note}\n"
                .into(),
        }
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            from: "Voicemail <voicemail@localhost>".into(),
            transport: MailTransportKind::File,
            smtp: SmtpConfig::default(),
            timezone: "Europe/London".into(),
            retry_horizon_hours: 48,
            admin_email: None,
            templates: MailTemplates::default(),
        }
    }
}

/// Transport security towards the SMTP relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP (only sensible on loopback or a trusted segment).
    None,
    /// STARTTLS required.
    #[default]
    Starttls,
    /// Implicit TLS (port 465).
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    pub timeout_secs: u64,
    /// Extra CA certificate (PEM) trusted for the relay, e.g. the university's own CA.
    pub ca_file: Option<PathBuf>,
    /// Name checked against the relay's certificate (default: `host`).
    pub tls_domain: Option<String>,
    /// Accept any certificate. Only for tests; never in production.
    pub danger_accept_invalid_certs: bool,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 25,
            security: SmtpSecurity::Starttls,
            username: None,
            password: None,
            timeout_secs: 30,
            ca_file: None,
            tls_domain: None,
            danger_accept_invalid_certs: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PromptsConfig {
    /// A directory of replacement recordings (WAV, FLAC, MP3, OGG; file stem = prompt id).
    /// Files here override the embedded prompts one by one.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxConfig {
    pub extension: String,
    /// One address or several separated by commas.
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Attach the audio (otherwise the mail only says a message is waiting).
    #[serde(default = "yes")]
    pub attach: bool,
    /// Delete each message once its mail was accepted (non-person lines).
    #[serde(default)]
    pub email_only: bool,
}

fn yes() -> bool {
    true
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration in {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    /// Reads and checks a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses and checks TOML text.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let cfg: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), String> {
        if self.rtp.port_min > self.rtp.port_max {
            return Err("rtp.port_min is above rtp.port_max".into());
        }
        if self.rtp.port_max - self.rtp.port_min < 1 {
            return Err("the RTP port range needs at least two ports".into());
        }
        if self.voicemail.max_message_secs == 0 {
            return Err("voicemail.max_message_secs must be above zero".into());
        }
        if self.mail.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(format!("unknown time zone {:?}", self.mail.timezone));
        }
        let v = &self.voicemail;
        for (name, m) in [
            ("pin_activation_minutes", v.pin_activation_minutes),
            ("pin_lockout_minutes", v.pin_lockout_minutes),
        ] {
            if !(0.0..=525_600.0).contains(&m) {
                return Err(format!("voicemail.{name} must be between 0 and 525600"));
            }
        }
        for n in &self.sip.trusted_networks {
            let ok = match n.split_once('/') {
                Some((a, l)) => a.parse::<IpAddr>().is_ok() && l.parse::<u8>().is_ok(),
                None => n.parse::<IpAddr>().is_ok(),
            };
            if !ok {
                return Err(format!(
                    "sip.trusted_networks: {n:?} is not an address or CIDR"
                ));
            }
        }
        let f = &self.fax;
        if f.t38_version > 3 {
            return Err("fax.t38_version must be 0..=3".into());
        }
        if f.udptl_redundancy > 7 {
            return Err("fax.udptl_redundancy must be 0..=7".into());
        }
        if f.ident.chars().count() > 20
            || !f.ident.chars().all(|c| c.is_ascii_graphic() || c == ' ')
        {
            return Err("fax.ident: at most 20 printable ASCII characters".into());
        }
        if f.max_duration_secs == 0 || f.max_pages == 0 || f.max_document_mb == 0 {
            return Err(
                "fax.max_duration_secs, max_pages and max_document_mb must be above zero".into(),
            );
        }
        for (number, target) in &f.numbers {
            if number.is_empty()
                || !number
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+')
            {
                return Err(format!("fax.numbers: {number:?} is not a number"));
            }
            if !target.contains('@') {
                crate::store::MailboxId::parse(target)
                    .map_err(|e| format!("fax.numbers.{number}: {e}"))?;
            }
        }
        for m in &self.mailboxes {
            crate::store::MailboxId::parse(&m.extension)
                .map_err(|e| format!("mailbox {:?}: {e}", m.extension))?;
        }
        Ok(())
    }

    /// The address announced in SDP and Contact.
    pub fn media_address(&self) -> IpAddr {
        self.sip.public_address.unwrap_or(self.rtp.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.sip.listen.port(), 5060);
        assert_eq!(c.voicemail.max_message_secs, 180);
        assert_eq!(c.mail.transport, MailTransportKind::File);
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(Config::from_toml("[sip]\nlisten_typo = \"1.2.3.4:5\"").is_err());
    }

    #[test]
    fn example_config_parses_and_matches_defaults() {
        let text = include_str!("../coda.example.toml");
        let c = Config::from_toml(text).unwrap();
        let d = Config::default();
        assert_eq!(c.sip.listen, d.sip.listen);
        assert_eq!(c.rtp.port_min, d.rtp.port_min);
        assert_eq!(c.voicemail.silence_secs, d.voicemail.silence_secs);
        assert_eq!(c.limits.max_calls, d.limits.max_calls);
        assert_eq!(c.numbering, d.numbering);
        assert_eq!(c.fax, d.fax);
    }

    #[test]
    fn trusted_networks_match_by_prefix() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(cidr_contains("10.1.0.0/16", ip("10.1.200.3")));
        assert!(!cidr_contains("10.1.0.0/16", ip("10.2.0.1")));
        assert!(cidr_contains("192.0.2.7", ip("192.0.2.7")));
        assert!(cidr_contains("::1/128", ip("::1")));
        assert!(!cidr_contains("::1/128", ip("127.0.0.1")));
        assert!(Config::default().sip.is_trusted(ip("127.0.0.5")));
        assert!(Config::from_toml("[sip]\ntrusted_networks = [\"10.0.0.0/x\"]").is_err());
    }

    #[test]
    fn bad_port_range_is_refused() {
        assert!(Config::from_toml("[rtp]\nport_min = 30000\nport_max = 20000").is_err());
    }
}
