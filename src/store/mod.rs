//! Durable state: mailboxes and messages in SQLite, audio in a spool directory.
//!
//! Every write that a caller is told about is durable first: audio is written to a temporary
//! file, fsynced, renamed into place and the directory fsynced; only then is the row committed
//! (SQLite in WAL mode with `synchronous=FULL`). A crash between the two leaves an orphan file,
//! never a row without audio. Calls are blocking: the tokio shell runs them on the blocking pool.

mod auth;
mod fax;
mod outbox;
mod spool;

use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use auth::{AuditEvent, AuthPolicy, LoginOutcome, PinStatus};
pub use fax::{FaxRecord, NewFax};
pub use outbox::{MailState, NewMail, OutboxStats, QueuedMail};
pub use spool::{read_wav, wav_bytes, write_file_durably, write_wav_durably};

/// A mailbox number: the extension, digits only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxId(String);

impl MailboxId {
    /// Accepts 2 to 15 ASCII digits.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        if (2..=15).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(StoreError::InvalidMailbox)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for MailboxId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identifier of a stored message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageId(pub i64);

/// A mailbox and its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub id: MailboxId,
    /// One address, or several separated by commas.
    pub email: String,
    pub name: Option<String>,
    /// Attach the audio to the notification (otherwise notify only).
    pub attach: bool,
    /// Remove the message from the mailbox once the mail server accepted the notification
    /// (usual for non-person lines).
    pub email_only: bool,
}

impl Mailbox {
    /// A mailbox with the default options: audio attached, messages kept.
    pub fn new(id: MailboxId, email: impl Into<String>, name: Option<String>) -> Self {
        Self {
            id,
            email: email.into(),
            name,
            attach: true,
            email_only: false,
        }
    }

    /// The notification recipients.
    pub fn recipients(&self) -> impl Iterator<Item = &str> {
        self.email
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
    }
}

/// Why the caller was sent to voicemail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiversionReason {
    Busy,
    NoAnswer,
    Unavailable,
    Unconditional,
    Unknown,
}

impl DiversionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Busy => "busy",
            Self::NoAnswer => "no-answer",
            Self::Unavailable => "unavailable",
            Self::Unconditional => "unconditional",
            Self::Unknown => "unknown",
        }
    }

    pub fn from_str_lossy(s: &str) -> Self {
        match s {
            "busy" => Self::Busy,
            "no-answer" => Self::NoAnswer,
            "unavailable" => Self::Unavailable,
            "unconditional" => Self::Unconditional,
            _ => Self::Unknown,
        }
    }
}

/// Folder of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    New,
    Saved,
}

/// A new message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub mailbox: MailboxId,
    /// Normalised caller (E.164, extension or raw), empty when withheld.
    pub caller: String,
    /// How mails and envelopes show the caller.
    pub caller_display: String,
    /// Seconds since the Unix epoch, UTC.
    pub received_unix: i64,
    pub reason: DiversionReason,
    /// 8 kHz mono samples.
    pub audio: Vec<i16>,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: MessageId,
    pub mailbox: MailboxId,
    pub caller: String,
    pub caller_display: String,
    pub received_unix: i64,
    pub duration_ms: i64,
    pub reason: DiversionReason,
    pub audio_path: PathBuf,
    pub folder: Folder,
}

/// Greeting kinds a mailbox can have recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GreetingKind {
    Unavailable,
    Busy,
    Temporary,
    Name,
}

impl GreetingKind {
    fn file_stem(self) -> &'static str {
        match self {
            Self::Unavailable => "unavail",
            Self::Busy => "busy",
            Self::Temporary => "temp",
            Self::Name => "name",
        }
    }
}

/// Store errors, grouped by fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not a valid mailbox number")]
    InvalidMailbox,
    #[error("no such mailbox")]
    UnknownMailbox,
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("spool error: {0}")]
    Io(#[from] std::io::Error),
}

/// Adds a column to a table created by an earlier version, if it is missing.
fn add_column(conn: &Connection, table: &str, column: &str, decl: &str) -> rusqlite::Result<()> {
    let mut st = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let exists = st
        .query_map([], |r| r.get::<_, String>(1))?
        .filter_map(Result::ok)
        .any(|c| c == column);
    if !exists {
        conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
    }
    Ok(())
}

/// SQLite + spool directory.
pub struct Store {
    conn: Mutex<Connection>,
    spool: PathBuf,
}

impl Store {
    /// Opens (creating if needed) `<data_dir>/coda.db` and `<data_dir>/spool`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        let spool = data_dir.join("spool");
        std::fs::create_dir_all(&spool)?;
        let conn = Connection::open(data_dir.join("coda.db"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             PRAGMA foreign_keys=ON;
             CREATE TABLE IF NOT EXISTS mailboxes(
                 id TEXT PRIMARY KEY,
                 email TEXT NOT NULL,
                 name TEXT,
                 generation INTEGER NOT NULL DEFAULT 1,
                 attach INTEGER NOT NULL DEFAULT 1,
                 email_only INTEGER NOT NULL DEFAULT 0
             );
             CREATE TABLE IF NOT EXISTS messages(
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 mailbox TEXT NOT NULL REFERENCES mailboxes(id),
                 caller TEXT NOT NULL,
                 caller_display TEXT NOT NULL,
                 received_utc INTEGER NOT NULL,
                 duration_ms INTEGER NOT NULL,
                 reason TEXT NOT NULL,
                 audio_path TEXT NOT NULL,
                 folder TEXT NOT NULL DEFAULT 'new'
             );
             CREATE INDEX IF NOT EXISTS messages_mailbox ON messages(mailbox, folder);",
        )?;
        add_column(&conn, "mailboxes", "attach", "INTEGER NOT NULL DEFAULT 1")?;
        add_column(
            &conn,
            "mailboxes",
            "email_only",
            "INTEGER NOT NULL DEFAULT 0",
        )?;
        outbox::migrate(&conn)?;
        fax::migrate(&conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
            spool,
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back), so
        // a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a mailbox or updates its owner data.
    pub fn upsert_mailbox(&self, mb: &Mailbox) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO mailboxes(id, email, name, attach, email_only) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(id) DO UPDATE SET email = excluded.email, name = excluded.name,
                 attach = excluded.attach, email_only = excluded.email_only",
            params![mb.id.as_str(), mb.email, mb.name, mb.attach, mb.email_only],
        )?;
        Ok(())
    }

    pub fn mailbox(&self, id: &MailboxId) -> Result<Option<Mailbox>, StoreError> {
        let row = self
            .conn()
            .query_row(
                "SELECT email, name, attach, email_only FROM mailboxes WHERE id = ?1",
                params![id.as_str()],
                |r| {
                    Ok(Mailbox {
                        id: id.clone(),
                        email: r.get(0)?,
                        name: r.get(1)?,
                        attach: r.get(2)?,
                        email_only: r.get(3)?,
                    })
                },
            )
            .optional()?;
        Ok(row)
    }

    pub fn mailboxes(&self) -> Result<Vec<Mailbox>, StoreError> {
        let conn = self.conn();
        let mut st =
            conn.prepare("SELECT id, email, name, attach, email_only FROM mailboxes ORDER BY id")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, bool>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, email, name, attach, email_only) = row?;
            if let Ok(id) = MailboxId::parse(&id) {
                out.push(Mailbox {
                    id,
                    email,
                    name,
                    attach,
                    email_only,
                });
            }
        }
        Ok(out)
    }

    /// Number of messages (new + saved) in a mailbox.
    pub fn message_count(&self, id: &MailboxId) -> Result<u32, StoreError> {
        let n: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM messages WHERE mailbox = ?1",
            params![id.as_str()],
            |r| r.get(0),
        )?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Writes the audio durably, then commits the row. Returns once both are on disk.
    pub fn save_message(&self, msg: &NewMessage) -> Result<StoredMessage, StoreError> {
        self.save_message_with_mail(msg, |_| None)
    }

    /// Like [`save_message`](Self::save_message), and queues the notification `mail` builds
    /// from the stored message in the same transaction: a message never exists without its
    /// notification queued, nor a notification without its message.
    pub fn save_message_with_mail(
        &self,
        msg: &NewMessage,
        mail: impl FnOnce(&StoredMessage) -> Option<NewMail>,
    ) -> Result<StoredMessage, StoreError> {
        let dir = self.spool.join(msg.mailbox.as_str());
        std::fs::create_dir_all(&dir)?;
        let file = dir.join(format!(
            "{}-{:016x}.wav",
            msg.received_unix,
            rand::random::<u64>()
        ));
        write_wav_durably(&file, &msg.audio)?;
        let duration_ms = (msg.audio.len() as i64) / 8;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO messages(mailbox, caller, caller_display, received_utc, duration_ms,
                                  reason, audio_path, folder)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'new')",
            params![
                msg.mailbox.as_str(),
                msg.caller,
                msg.caller_display,
                msg.received_unix,
                duration_ms,
                msg.reason.as_str(),
                file.to_string_lossy(),
            ],
        )?;
        let id = MessageId(tx.last_insert_rowid());
        let stored = StoredMessage {
            id,
            mailbox: msg.mailbox.clone(),
            caller: msg.caller.clone(),
            caller_display: msg.caller_display.clone(),
            received_unix: msg.received_unix,
            duration_ms,
            reason: msg.reason,
            audio_path: file,
            folder: Folder::New,
        };
        if let Some(m) = mail(&stored) {
            outbox::insert(&tx, &m, msg.received_unix)?;
        }
        tx.commit()?;
        Ok(stored)
    }

    /// Messages of a mailbox, oldest first.
    pub fn messages(&self, id: &MailboxId) -> Result<Vec<StoredMessage>, StoreError> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, caller, caller_display, received_utc, duration_ms, reason, audio_path, folder
             FROM messages WHERE mailbox = ?1 ORDER BY received_utc, id",
        )?;
        let rows = st.query_map(params![id.as_str()], |r| {
            Ok(StoredMessage {
                id: MessageId(r.get(0)?),
                mailbox: id.clone(),
                caller: r.get(1)?,
                caller_display: r.get(2)?,
                received_unix: r.get(3)?,
                duration_ms: r.get(4)?,
                reason: DiversionReason::from_str_lossy(&r.get::<_, String>(5)?),
                audio_path: PathBuf::from(r.get::<_, String>(6)?),
                folder: if r.get::<_, String>(7)? == "saved" {
                    Folder::Saved
                } else {
                    Folder::New
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Removes a message and its audio (used by email-only mailboxes once mailed). Returns
    /// the mailbox it was in, `None` when there was no such message.
    pub fn delete_message(&self, id: MessageId) -> Result<Option<MailboxId>, StoreError> {
        let row: Option<(String, String)> = self
            .conn()
            .query_row(
                "DELETE FROM messages WHERE id = ?1 RETURNING audio_path, mailbox",
                params![id.0],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((path, mailbox)) = row else {
            return Ok(None);
        };
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        Ok(MailboxId::parse(&mailbox).ok())
    }

    /// Whether message `msg` is in mailbox `id`.
    pub fn message_in(&self, id: &MailboxId, msg: MessageId) -> bool {
        self.conn()
            .query_row(
                "SELECT 1 FROM messages WHERE id = ?1 AND mailbox = ?2",
                params![msg.0, id.as_str()],
                |_| Ok(()),
            )
            .optional()
            .ok()
            .flatten()
            .is_some()
    }

    /// Moves messages of mailbox `id` to the saved folder (ids of other mailboxes are ignored).
    pub fn mark_saved(&self, id: &MailboxId, msgs: &[MessageId]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for m in msgs {
            tx.execute(
                "UPDATE messages SET folder = 'saved' WHERE id = ?1 AND mailbox = ?2",
                params![m.0, id.as_str()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// (new, saved) message counts, for message-waiting indication.
    pub fn message_counts(&self, id: &MailboxId) -> Result<(u32, u32), StoreError> {
        let (new, saved): (i64, i64) = self.conn().query_row(
            "SELECT COALESCE(SUM(folder = 'new'), 0), COALESCE(SUM(folder != 'new'), 0)
             FROM messages WHERE mailbox = ?1",
            params![id.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((new.max(0) as u32, saved.max(0) as u32))
    }

    /// Path where a greeting of this kind lives (whether or not it exists).
    pub fn greeting_path(&self, id: &MailboxId, kind: GreetingKind) -> PathBuf {
        self.spool
            .join(id.as_str())
            .join("greetings")
            .join(format!("{}.wav", kind.file_stem()))
    }

    /// A recorded greeting, if the owner made one.
    pub fn greeting(
        &self,
        id: &MailboxId,
        kind: GreetingKind,
    ) -> Result<Option<Vec<i16>>, StoreError> {
        let p = self.greeting_path(id, kind);
        match read_wav(&p) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a greeting (e.g. the temporary one); absent is fine.
    pub fn delete_greeting(&self, id: &MailboxId, kind: GreetingKind) -> Result<(), StoreError> {
        match std::fs::remove_file(self.greeting_path(id, kind)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores a greeting durably.
    pub fn set_greeting(
        &self,
        id: &MailboxId,
        kind: GreetingKind,
        audio: &[i16],
    ) -> Result<(), StoreError> {
        let p = self.greeting_path(id, kind);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir)?;
        }
        write_wav_durably(&p, audio)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!("coda-store-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn mailbox_ids_are_digits() {
        assert!(MailboxId::parse("77513").is_ok());
        assert!(MailboxId::parse("7751a").is_err());
        assert!(MailboxId::parse("../etc").is_err());
        assert!(MailboxId::parse("").is_err());
    }

    #[test]
    fn message_is_durable_and_reads_back() {
        let dir = tmp();
        let store = Store::open(&dir).unwrap();
        let id = MailboxId::parse("77513").unwrap();
        store
            .upsert_mailbox(&Mailbox::new(id.clone(), "a@example.org", None))
            .unwrap();
        let audio: Vec<i16> = (0..16000).map(|i| ((i % 100) * 100) as i16).collect();
        let m = store
            .save_message(&NewMessage {
                mailbox: id.clone(),
                caller: "+441865277514".into(),
                caller_display: "x".into(),
                received_unix: 1_700_000_000,
                reason: DiversionReason::Busy,
                audio: audio.clone(),
            })
            .unwrap();
        assert_eq!(m.duration_ms, 2000);
        drop(store);
        let store = Store::open(&dir).unwrap();
        let list = store.messages(&id).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].reason, DiversionReason::Busy);
        assert_eq!(read_wav(&list[0].audio_path).unwrap(), audio);
        assert_eq!(store.message_count(&id).unwrap(), 1);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn message_and_its_notification_commit_together() {
        let dir = tmp();
        let store = Store::open(&dir).unwrap();
        let id = MailboxId::parse("77513").unwrap();
        store
            .upsert_mailbox(&Mailbox::new(id.clone(), "a@example.org", None))
            .unwrap();
        let msg = NewMessage {
            mailbox: id.clone(),
            caller: String::new(),
            caller_display: "x".into(),
            received_unix: 100,
            reason: DiversionReason::NoAnswer,
            audio: vec![1; 8000],
        };
        let stored = store
            .save_message_with_mail(&msg, |m| {
                Some(NewMail {
                    kind: "voicemail".into(),
                    message_id: format!("<{}@coda>", m.id.0),
                    from: "vm@example.org".into(),
                    to: vec!["a@example.org".into()],
                    raw: b"Subject: x\r\n\r\nbody".to_vec(),
                    delete_message: Some(m.id.0),
                })
            })
            .unwrap();
        let due = store.due_mails(100, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].message_id, format!("<{}@coda>", stored.id.0));
        assert_eq!(store.outbox_stats().unwrap().pending, 1);
        store.mark_mail_retry(due[0].id, 160, "451 later").unwrap();
        assert!(store.due_mails(159, 10).unwrap().is_empty());
        assert_eq!(store.next_mail_due().unwrap(), Some(160));
        // Survives a restart.
        drop(store);
        let store = Store::open(&dir).unwrap();
        let due = store.due_mails(160, 10).unwrap();
        assert_eq!(due[0].attempts, 1);
        store.mark_mail_failed(due[0].id, "550 no").unwrap();
        assert_eq!(
            store.outbox_stats().unwrap(),
            OutboxStats {
                pending: 0,
                failed: 1,
                oldest_pending: None
            }
        );
        assert_eq!(store.retry_mails(200, true).unwrap(), 1);
        store.mark_mail_sent(due[0].id, 201).unwrap();
        assert!(store.mails(Some(MailState::Pending)).unwrap().is_empty());
        assert_eq!(due[0].delete_message, Some(stored.id.0));
        let path = store.messages(&id).unwrap()[0].audio_path.clone();
        assert_eq!(store.message_counts(&id).unwrap(), (1, 0));
        assert_eq!(store.delete_message(stored.id).unwrap(), Some(id.clone()));
        assert!(!path.exists());
        assert_eq!(store.message_count(&id).unwrap(), 0);
        assert_eq!(store.message_counts(&id).unwrap(), (0, 0));
        assert_eq!(store.delete_message(stored.id).unwrap(), None);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn duplicate_message_id_is_refused_and_nothing_is_half_saved() {
        let dir = tmp();
        let store = Store::open(&dir).unwrap();
        let id = MailboxId::parse("77513").unwrap();
        store
            .upsert_mailbox(&Mailbox::new(id.clone(), "a@example.org", None))
            .unwrap();
        let mail = NewMail {
            kind: "voicemail".into(),
            message_id: "<same@coda>".into(),
            from: "a@b".into(),
            to: vec!["c@d".into()],
            raw: vec![],
            delete_message: None,
        };
        store.enqueue_mail(&mail, 1).unwrap();
        let msg = NewMessage {
            mailbox: id.clone(),
            caller: String::new(),
            caller_display: String::new(),
            received_unix: 1,
            reason: DiversionReason::Unknown,
            audio: vec![1; 8000],
        };
        // The outbox insert fails, so the message row must roll back with it.
        assert!(store
            .save_message_with_mail(&msg, |_| Some(mail.clone()))
            .is_err());
        assert_eq!(store.message_count(&id).unwrap(), 0);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn unknown_mailbox_message_is_refused() {
        let dir = tmp();
        let store = Store::open(&dir).unwrap();
        let r = store.save_message(&NewMessage {
            mailbox: MailboxId::parse("11111").unwrap(),
            caller: String::new(),
            caller_display: String::new(),
            received_unix: 0,
            reason: DiversionReason::Unknown,
            audio: vec![0; 8000],
        });
        assert!(r.is_err());
        std::fs::remove_dir_all(dir).ok();
    }
}
