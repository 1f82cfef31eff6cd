//! Command-line front ends; everything here is thin glue over the library.

pub mod call;

use clap::Subcommand;
use std::path::PathBuf;

use crate::config::Config;
use crate::store::{Mailbox, MailboxId, Store};

/// Boxed error for the command line: printed once, then exit 1.
pub type CliError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Subcommand)]
pub enum MailboxCmd {
    /// Create a mailbox (or update its owner's address and name).
    Add {
        extension: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// Mail only a notice, without the audio.
        #[arg(long)]
        notify_only: bool,
        /// Delete each message once its mail was accepted (non-person lines).
        #[arg(long)]
        email_only: bool,
    },
    /// Set a mailbox's PIN, read from standard input (never from the command line), valid
    /// at once. `--must-change`: the owner must choose a new PIN at first login (the default
    /// PIN of a non-person line).
    Pin {
        extension: String,
        #[arg(long)]
        must_change: bool,
    },
    /// Lift a PIN lockout now (a coordinator's action; the lock also ends by itself).
    Unlock { extension: String },
    /// List mailboxes.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum MailCmd {
    /// List the outbox (pending and failed first); optionally make mails due now.
    Queue {
        /// Send pending mails now instead of waiting for their back-off.
        #[arg(long)]
        retry: bool,
        /// Also try failed mails again.
        #[arg(long)]
        retry_failed: bool,
        /// Include sent mails.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
}

/// `coda mail ...`.
pub fn mail(
    cmd: MailCmd,
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
) -> Result<(), CliError> {
    let cfg = load_config(config, data_dir)?;
    let store = Store::open(&cfg.storage.data_dir)?;
    let MailCmd::Queue {
        retry,
        retry_failed,
        all,
        json,
    } = cmd;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if retry || retry_failed {
        let n = store.retry_mails(now, retry_failed)?;
        println!("{n} mails due now (a running coda picks them up within a minute)");
    }
    for m in store.mails(None)? {
        if !all && m.state == crate::store::MailState::Sent {
            continue;
        }
        let state = format!("{:?}", m.state).to_lowercase();
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "id": m.id, "kind": m.kind, "state": state, "attempts": m.attempts,
                    "created": m.created, "next_attempt": m.next_attempt,
                    "message_id": m.message_id, "recipients": m.to, "last_error": m.last_error,
                })
            );
        } else {
            println!(
                "{}\t{}\t{}\t{} attempts\t{}\t{}",
                m.id,
                m.kind,
                state,
                m.attempts,
                m.to.join(","),
                m.last_error.as_deref().unwrap_or("-")
            );
        }
    }
    Ok(())
}

/// Logs to stderr, `RUST_LOG` style filter, `info` by default.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CODA_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_env("RUST_LOG"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,symphonia=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn load_config(path: Option<PathBuf>, data_dir: Option<PathBuf>) -> Result<Config, CliError> {
    let mut cfg = match path {
        Some(p) => Config::from_file(&p)?,
        None => Config::default(),
    };
    if let Some(d) = data_dir {
        cfg.storage.data_dir = d;
    }
    Ok(cfg)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `coda serve`.
pub fn serve(config: Option<PathBuf>, data_dir: Option<PathBuf>) -> Result<(), CliError> {
    let cfg = load_config(config, data_dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("coda")
        .build()?;
    rt.block_on(crate::server::run(cfg, crate::server::ctrl_c()))?;
    Ok(())
}

/// `coda mailbox ...`.
pub fn mailbox(
    cmd: MailboxCmd,
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
) -> Result<(), CliError> {
    let cfg = load_config(config, data_dir)?;
    let store = Store::open(&cfg.storage.data_dir)?;
    match cmd {
        MailboxCmd::Add {
            extension,
            email,
            name,
            notify_only,
            email_only,
        } => {
            let id = MailboxId::parse(&extension)?;
            for a in email.split(',').map(str::trim) {
                a.parse::<lettre::Address>()
                    .map_err(|e| format!("invalid email address {a:?}: {e}"))?;
            }
            store.upsert_mailbox(&Mailbox {
                attach: !notify_only,
                email_only,
                ..Mailbox::new(id, email, name)
            })?;
            println!("mailbox {extension} saved");
        }
        MailboxCmd::Pin {
            extension,
            must_change,
        } => {
            let id = MailboxId::parse(&extension)?;
            if store.mailbox(&id)?.is_none() {
                return Err(format!("no mailbox {extension}").into());
            }
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let pin = crate::apps::pin::Pin::parse(line.trim()).ok_or("the PIN must be digits")?;
            let policy = crate::apps::pin::PinPolicy::from(&cfg.voicemail);
            crate::apps::pin::check_new_pin(pin.expose_digits(), &extension, &policy)
                .map_err(|r| format!("PIN refused: {r}"))?;
            let phc = crate::apps::pin::hash_pin(&pin).map_err(|e| e.to_string())?;
            store.provision_pin(&id, &phc, unix_now(), must_change)?;
            println!("PIN of mailbox {extension} set");
        }
        MailboxCmd::Unlock { extension } => {
            let id = MailboxId::parse(&extension)?;
            let was = store.unlock(&id, unix_now())?;
            println!(
                "mailbox {extension} {}",
                if was { "unlocked" } else { "was not locked" }
            );
        }
        MailboxCmd::List { json } => {
            let list = store.mailboxes()?;
            for mb in list {
                let count = store.message_count(&mb.id)?;
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "extension": mb.id.as_str(),
                            "email": mb.email,
                            "name": mb.name,
                            "messages": count,
                        })
                    );
                } else {
                    println!(
                        "{}\t{}\t{}\t{} messages",
                        mb.id,
                        mb.email,
                        mb.name.as_deref().unwrap_or("-"),
                        count
                    );
                }
            }
        }
    }
    Ok(())
}
