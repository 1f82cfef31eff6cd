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
    },
    /// List mailboxes.
    List {
        #[arg(long)]
        json: bool,
    },
}

/// Logs to stderr, `RUST_LOG` style filter, `info` by default.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CODA_LOG")
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
        } => {
            let id = MailboxId::parse(&extension)?;
            email
                .parse::<lettre::Address>()
                .map_err(|e| format!("invalid email address: {e}"))?;
            store.upsert_mailbox(&Mailbox { id, email, name })?;
            println!("mailbox {extension} saved");
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
