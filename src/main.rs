//! The `coda` command: `serve`, `mailbox ...`, `call`.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "coda",
    version,
    about = "Voicemail, fax and secure media gateway"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the service (embedded defaults when no config is given).
    Serve {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Overrides `storage.data_dir`.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Manage mailboxes.
    Mailbox {
        #[command(subcommand)]
        cmd: coda::cli::MailboxCmd,
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[arg(long, global = true)]
        data_dir: Option<PathBuf>,
    },
    /// The mail outbox.
    Mail {
        #[command(subcommand)]
        cmd: coda::cli::MailCmd,
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[arg(long, global = true)]
        data_dir: Option<PathBuf>,
    },
    /// A small SIP user agent: dial, play a WAV, send DTMF, record, print a JSON summary.
    Call(coda::cli::call::CallArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    coda::cli::init_logging();
    let result = match cli.cmd {
        Cmd::Serve { config, data_dir } => coda::cli::serve(config, data_dir),
        Cmd::Mailbox {
            cmd,
            config,
            data_dir,
        } => coda::cli::mailbox(cmd, config, data_dir),
        Cmd::Mail {
            cmd,
            config,
            data_dir,
        } => coda::cli::mail(cmd, config, data_dir),
        Cmd::Call(args) => coda::cli::call::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("coda: {e}");
            ExitCode::FAILURE
        }
    }
}
