//! The tokio shell: sockets, timers, one task per call, shutdown. It owns no protocol logic of
//! its own; it feeds the sans-IO machines and carries out what they ask.

mod call;
mod endpoint;
mod fax_call;
mod retrieval_ops;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

use crate::admin::Metrics;
use crate::config::Config;
use crate::mail::{to_queued, voicemail_mail, Mailer};
use crate::media::prompts::PromptSet;
use crate::store::{read_wav, Mailbox, MailboxId, NewMail, NewMessage, Store};

pub use call::{CallCtl, CallReport};

/// State shared by every task of the service.
pub struct Shared {
    pub cfg: Config,
    pub store: Arc<Store>,
    pub prompts: Arc<PromptSet>,
    pub metrics: Arc<Metrics>,
    /// Poked when a mail is queued.
    pub outbox_wake: Arc<tokio::sync::Notify>,
    /// Tells the SIP endpoint that a mailbox's counts changed (message-waiting lamps).
    pub mailbox_changed: mpsc::UnboundedSender<MailboxId>,
}

impl crate::apps::PromptSource for PromptSet {
    fn prompt(&self, id: &str) -> Option<Arc<[i16]>> {
        self.get(id)
    }
}

/// Errors that stop the service from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
    #[error("prompts: {0}")]
    Prompts(String),
}

/// Deletes received faxes past `fax.retention_days`, at start and then hourly.
async fn expire_faxes(shared: Arc<Shared>) {
    let days = shared.cfg.fax.retention_days;
    if days == 0 {
        return;
    }
    loop {
        let store = shared.store.clone();
        let cutoff = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
            - i64::from(days) * 86_400;
        match tokio::task::spawn_blocking(move || store.expire_faxes(cutoff)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => info!(faxes = n, "expired faxes past retention"),
            Ok(Err(e)) => warn!(error = %e, "fax retention sweep failed"),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn ctrl_c() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Loads prompts: the embedded set, overlaid by the configured directory.
fn load_prompts(cfg: &Config) -> Result<PromptSet, ServeError> {
    let mut set = PromptSet::load_embedded().map_err(|e| ServeError::Prompts(e.to_string()))?;
    if let Some(dir) = &cfg.prompts.dir {
        let extra = PromptSet::load_dir(dir).map_err(|e| ServeError::Prompts(e.to_string()))?;
        info!(count = extra.len(), "replacement prompts loaded");
        set.overlay(extra);
    }
    Ok(set)
}

/// Runs the service until `shutdown` resolves, then lets calls finish (bounded).
pub async fn run(
    cfg: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServeError> {
    let data = cfg.storage.data_dir.clone();
    let store = Arc::new(Store::open(&data)?);
    for m in &cfg.mailboxes {
        let id = MailboxId::parse(&m.extension)?;
        store.upsert_mailbox(&Mailbox {
            attach: m.attach,
            email_only: m.email_only,
            ..Mailbox::new(id, m.email.clone(), m.name.clone())
        })?;
    }
    let mailer = Mailer::from_config(&cfg.mail, &data.join("outbox"))?;
    let prompts = load_prompts(&cfg)?;
    let metrics = Arc::new(Metrics::default());

    let sip_addr = cfg.sip.listen;
    let udp = UdpSocket::bind(sip_addr)
        .await
        .map_err(|source| ServeError::Bind {
            what: "SIP/UDP",
            addr: sip_addr,
            source,
        })?;
    let tcp = TcpListener::bind(sip_addr)
        .await
        .map_err(|source| ServeError::Bind {
            what: "SIP/TCP",
            addr: sip_addr,
            source,
        })?;
    let admin = match cfg.admin.enabled.then_some(cfg.admin.listen) {
        Some(addr) => Some(
            crate::admin::bind(addr)
                .await
                .map_err(|source| ServeError::Bind {
                    what: "admin HTTP",
                    addr,
                    source,
                })?,
        ),
        None => None,
    };

    let outbox_wake = Arc::new(tokio::sync::Notify::new());
    let (changed_tx, changed_rx) = mpsc::unbounded_channel();
    tokio::spawn(
        crate::mail::outbox::Worker {
            store: store.clone(),
            mailer,
            cfg: cfg.mail.clone(),
            metrics: metrics.clone(),
            wake: outbox_wake.clone(),
            changed: Some(changed_tx.clone()),
        }
        .run(),
    );
    let shared = Arc::new(Shared {
        cfg,
        store,
        prompts: Arc::new(prompts),
        metrics: metrics.clone(),
        outbox_wake,
        mailbox_changed: changed_tx,
    });
    tokio::spawn(expire_faxes(shared.clone()));
    if let Some(l) = admin {
        info!(addr = %l.local_addr().map(|a| a.to_string()).unwrap_or_default(), "admin HTTP listening");
        tokio::spawn(crate::admin::serve(l, metrics.clone()));
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let (inbound_tx, inbound_rx) = mpsc::channel(4096);
    let udp = Arc::new(udp);
    info!(addr = %sip_addr, data_dir = %data.display(), "coda listening (SIP UDP+TCP)");
    tokio::spawn(endpoint::udp_reader(udp.clone(), inbound_tx.clone()));
    tokio::spawn(endpoint::tcp_acceptor(tcp, inbound_tx.clone()));
    drop(inbound_tx);
    let ep = endpoint::Endpoint::new(shared.clone(), udp, changed_rx);
    let ep_task = tokio::spawn(ep.run(inbound_rx, stop_rx));

    shutdown.await;
    info!("shutting down: refusing new calls, ending active ones");
    let _ = stop_tx.send(true);
    // Calls are told to finish (their messages are saved); wait for them, bounded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while metrics.active_calls.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ep_task.abort();
    Ok(())
}

/// Stores a message durably with its notification queued in the same transaction, and wakes
/// the outbox worker. `true` once both are safe on disk.
pub(crate) async fn save_and_notify(
    shared: Arc<Shared>,
    mailbox: Mailbox,
    msg: NewMessage,
) -> bool {
    let sh = shared.clone();
    let saved = tokio::task::spawn_blocking(move || {
        let mut mail_error = None;
        let stored = sh.store.save_message_with_mail(&msg, |stored| {
            match voicemail_mail(&sh.cfg.mail, &mailbox, stored, &msg.audio) {
                Ok(m) => Some(NewMail {
                    delete_message: mailbox.email_only.then_some(stored.id.0),
                    ..to_queued("voicemail", &m)
                }),
                Err(e) => {
                    mail_error = Some(e);
                    None
                }
            }
        });
        (stored, mail_error)
    })
    .await;
    let stored = match saved {
        Ok((Ok(s), mail_error)) => {
            if let Some(e) = mail_error {
                // The owner's address cannot be mailed (malformed): the message is kept and
                // the problem counted; fixing the address is the coordinator's job.
                Metrics::inc(&shared.metrics.mail_failures_total);
                warn!(id = s.id.0, error = %e, "notification mail could not be built");
            }
            s
        }
        Ok((Err(e), _)) => {
            error!(error = %e, "message could not be saved");
            return false;
        }
        Err(e) => {
            error!(error = %e, "save task failed");
            return false;
        }
    };
    Metrics::inc(&shared.metrics.messages_saved_total);
    info!(
        id = stored.id.0,
        duration_ms = stored.duration_ms,
        "message saved"
    );
    debug!(id = stored.id.0, mailbox = %stored.mailbox, "message saved in mailbox");
    shared.outbox_wake.notify_one();
    let _ = shared.mailbox_changed.send(stored.mailbox.clone());
    true
}

/// Reads a recorded greeting, if any (missing or unreadable files count as none).
pub(crate) fn load_greeting(path: &std::path::Path) -> Option<Arc<[i16]>> {
    read_wav(path).ok().map(Into::into)
}
