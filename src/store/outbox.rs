//! The durable mail outbox: every notification is a row before anything tries to send it.
//!
//! States: `pending` (waiting for its next attempt), `sent` (accepted by the transport),
//! `failed` (permanent refusal or retry horizon passed; kept for the coordinator). Delivery is
//! at least once: a crash between "accepted by the server" and "marked sent" resends the same
//! bytes, with the same Message-ID, so the duplicate can be recognised.

use rusqlite::{params, Connection, OptionalExtension};

use super::{Store, StoreError};

/// A mail to queue.
#[derive(Debug, Clone)]
pub struct NewMail {
    /// What it is about (`voicemail`, `admin-warning`, …), for listings and metrics.
    pub kind: String,
    /// The Message-ID header value (stable across resends).
    pub message_id: String,
    /// Envelope sender.
    pub from: String,
    /// Envelope recipients.
    pub to: Vec<String>,
    /// The formatted RFC 5322 message.
    pub raw: Vec<u8>,
    /// Delete this message once the mail is accepted (email-only mailboxes).
    pub delete_message: Option<i64>,
}

/// Where a queued mail stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailState {
    Pending,
    Sent,
    Failed,
}

impl MailState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "sent" => Self::Sent,
            "failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// A queued mail.
#[derive(Debug, Clone)]
pub struct QueuedMail {
    pub id: i64,
    pub kind: String,
    pub message_id: String,
    pub from: String,
    pub to: Vec<String>,
    pub raw: Vec<u8>,
    pub created: i64,
    pub attempts: u32,
    pub next_attempt: i64,
    pub state: MailState,
    pub last_error: Option<String>,
    pub delete_message: Option<i64>,
}

/// Summary for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub pending: u64,
    pub failed: u64,
    /// Creation time of the oldest pending mail.
    pub oldest_pending: Option<i64>,
}

pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS outbox(
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             kind TEXT NOT NULL,
             message_id TEXT NOT NULL UNIQUE,
             mail_from TEXT NOT NULL,
             rcpt TEXT NOT NULL,
             raw BLOB NOT NULL,
             created INTEGER NOT NULL,
             attempts INTEGER NOT NULL DEFAULT 0,
             next_attempt INTEGER NOT NULL,
             state TEXT NOT NULL DEFAULT 'pending',
             last_error TEXT,
             sent_at INTEGER
         );
         CREATE INDEX IF NOT EXISTS outbox_due ON outbox(state, next_attempt);",
    )?;
    super::add_column(conn, "outbox", "delete_message", "INTEGER")
}

pub(super) fn insert(conn: &Connection, mail: &NewMail, now: i64) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO outbox(kind, message_id, mail_from, rcpt, raw, created, next_attempt,
                            delete_message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
        params![
            mail.kind,
            mail.message_id,
            mail.from,
            mail.to.join("\n"),
            mail.raw,
            now,
            mail.delete_message
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

fn row_to_mail(r: &rusqlite::Row<'_>) -> rusqlite::Result<QueuedMail> {
    Ok(QueuedMail {
        id: r.get(0)?,
        kind: r.get(1)?,
        message_id: r.get(2)?,
        from: r.get(3)?,
        to: r
            .get::<_, String>(4)?
            .split('\n')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        raw: r.get(5)?,
        created: r.get(6)?,
        attempts: r.get::<_, i64>(7)?.clamp(0, i64::from(u32::MAX)) as u32,
        next_attempt: r.get(8)?,
        state: MailState::parse(&r.get::<_, String>(9)?),
        last_error: r.get(10)?,
        delete_message: r.get(11)?,
    })
}

const COLUMNS: &str =
    "id, kind, message_id, mail_from, rcpt, raw, created, attempts, next_attempt, state, last_error, delete_message";

impl Store {
    /// Queues a mail durably (committed before return).
    pub fn enqueue_mail(&self, mail: &NewMail, now: i64) -> Result<i64, StoreError> {
        Ok(insert(&self.conn(), mail, now)?)
    }

    /// Pending mails whose next attempt is due, oldest first.
    pub fn due_mails(&self, now: i64, limit: usize) -> Result<Vec<QueuedMail>, StoreError> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM outbox WHERE state = 'pending' AND next_attempt <= ?1
             ORDER BY next_attempt, id LIMIT ?2"
        ))?;
        let rows = st.query_map(params![now, limit as i64], row_to_mail)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When the next pending mail is due.
    pub fn next_mail_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT MIN(next_attempt) FROM outbox WHERE state = 'pending'",
                [],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()?
            .flatten())
    }

    /// The transport accepted the mail.
    pub fn mark_mail_sent(&self, id: i64, now: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE outbox SET state = 'sent', sent_at = ?2, attempts = attempts + 1,
                               last_error = NULL WHERE id = ?1",
            params![id, now],
        )?;
        Ok(())
    }

    /// A temporary failure: try again at `next_attempt`.
    pub fn mark_mail_retry(
        &self,
        id: i64,
        next_attempt: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt = ?2, last_error = ?3
             WHERE id = ?1",
            params![id, next_attempt, error],
        )?;
        Ok(())
    }

    /// A permanent failure (or the retry horizon passed): stop trying.
    pub fn mark_mail_failed(&self, id: i64, error: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?2
             WHERE id = ?1",
            params![id, error],
        )?;
        Ok(())
    }

    /// Every queued mail (newest first), without the message bytes' weight mattering here.
    pub fn mails(&self, state: Option<MailState>) -> Result<Vec<QueuedMail>, StoreError> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM outbox WHERE (?1 IS NULL OR state = ?1) ORDER BY id DESC"
        ))?;
        let rows = st.query_map(params![state.map(MailState::as_str)], row_to_mail)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Makes pending (and, with `failed`, failed) mails due now. Returns how many.
    pub fn retry_mails(&self, now: i64, include_failed: bool) -> Result<usize, StoreError> {
        let n = self.conn().execute(
            "UPDATE outbox SET state = 'pending', next_attempt = ?1
             WHERE state = 'pending' OR (?2 AND state = 'failed')",
            params![now, include_failed],
        )?;
        Ok(n)
    }

    /// Queue depth and age for metrics.
    pub fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        let conn = self.conn();
        let (pending, oldest): (i64, Option<i64>) = conn.query_row(
            "SELECT COUNT(*), MIN(created) FROM outbox WHERE state = 'pending'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let failed: i64 = conn.query_row(
            "SELECT COUNT(*) FROM outbox WHERE state = 'failed'",
            [],
            |r| r.get(0),
        )?;
        Ok(OutboxStats {
            pending: pending.max(0) as u64,
            failed: failed.max(0) as u64,
            oldest_pending: oldest,
        })
    }
}
