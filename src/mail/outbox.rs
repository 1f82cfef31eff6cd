//! The outbox worker: sends queued mails, retries temporary failures with exponential
//! back-off up to a horizon, and stops at permanent refusals (5xx). When a mail is given up,
//! the administrators get a warning mail (itself queued), so nothing is dropped silently.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::message::Mailbox as MailAddr;
use lettre::Message;
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use super::{to_queued, Mailer, SendError};
use crate::admin::Metrics;
use crate::config::MailConfig;
use crate::store::{QueuedMail, Store};

/// Seconds to wait before attempt `attempts + 1`: 30 s doubling, capped at one hour.
pub fn backoff_secs(attempts: u32) -> i64 {
    let base: i64 = 30;
    base.saturating_mul(1i64 << attempts.min(7)).min(3600)
}

/// What to do with a mail after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    Sent,
    RetryAt(i64),
    GiveUp(String),
}

/// The retry decision, pure: `now` and the mail's history in, the next step out.
pub fn decide(
    mail: &QueuedMail,
    result: &Result<(), SendError>,
    now: i64,
    horizon_secs: i64,
) -> Disposition {
    match result {
        Ok(()) => Disposition::Sent,
        Err(e) if e.permanent => Disposition::GiveUp(format!("refused permanently: {}", e.message)),
        Err(e) => {
            let next = now + backoff_secs(mail.attempts);
            if next > mail.created + horizon_secs {
                Disposition::GiveUp(format!(
                    "not delivered within {} hours; last error: {}",
                    horizon_secs / 3600,
                    e.message
                ))
            } else {
                Disposition::RetryAt(next)
            }
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Drives the outbox until the task is dropped.
pub struct Worker {
    pub store: Arc<Store>,
    pub mailer: Mailer,
    pub cfg: MailConfig,
    pub metrics: Arc<Metrics>,
    /// Poked whenever a mail is queued.
    pub wake: Arc<Notify>,
    /// Told when an email-only mailbox lost a message (its lamps must follow).
    pub changed: Option<tokio::sync::mpsc::UnboundedSender<crate::store::MailboxId>>,
}

impl Worker {
    pub async fn run(self) {
        loop {
            let now = unix_now();
            let store = self.store.clone();
            let due = tokio::task::spawn_blocking(move || store.due_mails(now, 32))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            let batch_full = due.len() == 32;
            for mail in due {
                self.attempt(mail).await;
            }
            self.update_metrics().await;
            if batch_full {
                continue;
            }
            let store = self.store.clone();
            let next = tokio::task::spawn_blocking(move || store.next_mail_due())
                .await
                .ok()
                .and_then(Result::ok)
                .flatten();
            let wait = match next {
                Some(t) => Duration::from_secs(t.saturating_sub(unix_now()).clamp(0, 60) as u64),
                None => Duration::from_secs(60),
            };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    async fn attempt(&self, mail: QueuedMail) {
        // lettre's timeout bounds connecting; a relay that accepts and then says nothing would
        // hold the worker for ever. The whole attempt gets four times `timeout_secs`.
        let limit = Duration::from_secs(self.cfg.smtp.timeout_secs.max(1).saturating_mul(4));
        let result = match tokio::time::timeout(
            limit,
            self.mailer.send_raw(&mail.from, &mail.to, &mail.raw),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(SendError {
                permanent: false,
                message: format!(
                    "no answer from the mail server within {} s",
                    limit.as_secs()
                ),
            }),
        };
        let now = unix_now();
        let horizon = i64::from(self.cfg.retry_horizon_hours) * 3600;
        let d = decide(&mail, &result, now, horizon);
        let store = self.store.clone();
        let id = mail.id;
        let delete = mail.delete_message;
        let changed = self.changed.clone();
        match &d {
            Disposition::Sent => {
                Metrics::inc(&self.metrics.mails_sent_total);
                debug!(id, kind = mail.kind, "mail sent");
            }
            Disposition::RetryAt(t) => {
                Metrics::inc(&self.metrics.mail_failures_total);
                // Server texts often quote the recipient's address: details at debug only.
                warn!(
                    id,
                    kind = mail.kind,
                    attempts = mail.attempts + 1,
                    retry_in_s = t - now,
                    "mail not delivered yet; will retry"
                );
                debug!(id, error = %short(&result), "mail attempt failed");
            }
            Disposition::GiveUp(why) => {
                Metrics::inc(&self.metrics.mail_failures_total);
                warn!(id, kind = mail.kind, "mail given up");
                debug!(id, reason = %why, "mail given up");
            }
        }
        let warning = match &d {
            Disposition::GiveUp(why) if mail.kind != "admin-warning" => {
                self.admin_warning(&mail, why)
            }
            _ => None,
        };
        let res = tokio::task::spawn_blocking(move || -> Result<(), crate::store::StoreError> {
            match d {
                Disposition::Sent => {
                    store.mark_mail_sent(id, now)?;
                    if let Some(m) = delete {
                        // Email-only mailbox: the server has it, the mailbox need not keep it.
                        if let Some(mb) = store.delete_message(crate::store::MessageId(m))? {
                            if let Some(tx) = &changed {
                                let _ = tx.send(mb);
                            }
                        }
                    }
                    Ok(())
                }
                Disposition::RetryAt(t) => store.mark_mail_retry(id, t, &short(&result)),
                Disposition::GiveUp(why) => {
                    store.mark_mail_failed(id, &why)?;
                    if let Some(w) = warning {
                        store.enqueue_mail(&w, now)?;
                    }
                    Ok(())
                }
            }
        })
        .await;
        if !matches!(res, Ok(Ok(()))) {
            warn!(
                id,
                "could not record the outcome of a mail attempt; it may be sent again"
            );
        }
    }

    /// A warning to the administrators about a mail that could not be delivered.
    fn admin_warning(&self, mail: &QueuedMail, why: &str) -> Option<crate::store::NewMail> {
        let admin = self.cfg.admin_email.as_ref()?;
        let from: MailAddr = self.cfg.from.parse().ok()?;
        let to: MailAddr = admin.parse().ok()?;
        let body = format!(
            "coda could not deliver a notification mail and has stopped trying.\n\n\
             Kind:       {}\nMessage-ID: {}\nRecipients: {}\nQueued at:  {}\nAttempts:   {}\nReason:     {}\n\n\
             The voicemail itself is still in the mailbox. `coda mail queue` lists the queue;\n\
             `coda mail queue --retry-failed` sends failed mails again.\n",
            mail.kind,
            mail.message_id,
            mail.to.join(", "),
            super::format_time(mail.created, &self.cfg.timezone),
            mail.attempts + 1,
            why
        );
        let msg = Message::builder()
            .from(from)
            .to(to)
            .subject("coda: a notification mail could not be delivered")
            .message_id(None)
            .body(body)
            .ok()?;
        info!(id = mail.id, "administrator warning queued");
        Some(to_queued("admin-warning", &msg))
    }

    async fn update_metrics(&self) {
        let store = self.store.clone();
        if let Ok(Ok(s)) = tokio::task::spawn_blocking(move || store.outbox_stats()).await {
            self.metrics
                .outbox_pending
                .store(s.pending, Ordering::Relaxed);
            self.metrics
                .outbox_failed
                .store(s.failed, Ordering::Relaxed);
            self.metrics
                .outbox_oldest_created
                .store(s.oldest_pending.unwrap_or(0), Ordering::Relaxed);
        }
    }
}

fn short(r: &Result<(), SendError>) -> String {
    match r {
        Ok(()) => String::new(),
        Err(e) => e.message.chars().take(500).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MailState;

    fn mail(attempts: u32, created: i64) -> QueuedMail {
        QueuedMail {
            id: 1,
            kind: "voicemail".into(),
            message_id: "<x@y>".into(),
            from: "a@b".into(),
            to: vec!["c@d".into()],
            raw: vec![],
            created,
            attempts,
            next_attempt: created,
            state: MailState::Pending,
            last_error: None,
            delete_message: None,
        }
    }

    #[test]
    fn backoff_doubles_and_caps_at_one_hour() {
        assert_eq!(backoff_secs(0), 30);
        assert_eq!(backoff_secs(1), 60);
        assert_eq!(backoff_secs(5), 960);
        assert_eq!(backoff_secs(7), 3600);
        assert_eq!(backoff_secs(40), 3600);
    }

    #[test]
    fn transient_failure_retries_until_the_horizon() {
        let err = Err(SendError {
            permanent: false,
            message: "451 try later".into(),
        });
        let h = 48 * 3600;
        assert_eq!(decide(&mail(0, 0), &err, 10, h), Disposition::RetryAt(40));
        assert!(matches!(
            decide(&mail(20, 0), &err, h - 100, h),
            Disposition::GiveUp(_)
        ));
    }

    #[test]
    fn permanent_refusal_is_not_retried() {
        let err = Err(SendError {
            permanent: true,
            message: "550 no such user".into(),
        });
        assert!(
            matches!(decide(&mail(0, 0), &err, 10, 3600), Disposition::GiveUp(m) if m.contains("550"))
        );
        assert_eq!(decide(&mail(3, 0), &Ok(()), 10, 3600), Disposition::Sent);
    }
}
