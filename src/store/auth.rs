//! PIN state and the atomic check-and-count, in SQLite so it is shared by every process and node
//! using the same database and survives restarts.
//!
//! The store never sees a PIN: it keeps argon2 PHC strings written by `apps::pin::hash_pin` and
//! asks a caller-supplied `verify` closure whether the entered PIN matches one of them, so it
//! stays hash-agnostic. Time is always passed in as unix seconds; nothing here reads the clock.
//!
//! Atomicity: [`Store::check_pin`] runs read → verify → count as one `BEGIN IMMEDIATE`
//! transaction, which takes SQLite's write lock up front. Concurrent callers — other threads with
//! their own connection, other processes — wait (busy_timeout 10 s) and then see the committed
//! count, so twenty simultaneous guessers get `max_attempts` guesses in total, never more. The
//! price is that the verification (argon2, ~20–50 ms in release builds) runs while the write lock
//! is held, serialising logins *and other writes* on the database for that long. That is accepted:
//! it is exactly what makes the count exact, and a guess that cannot be counted must not be
//! checked at all. Callers run this on the blocking pool.
//!
//! What counts as an attempt is the call flow's decision: it calls `check_pin` only when a PIN
//! entry was completed with `#` (a hang-up after `#` still counts, because the check already ran;
//! a hang-up before `#` never reaches the store).
//!
//! Audit rows (`audit` table) hold the mailbox, the time and one of the [`AuditEvent`] names —
//! never a PIN or hash.

use super::{MailboxId, Store, StoreError};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

/// Timing rules the store applies, in seconds. Built from `apps::pin::PinPolicy` via `From`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthPolicy {
    /// Seconds from `set_pin` until the new PIN is accepted.
    pub activation_delay_secs: i64,
    /// Consecutive wrong attempts that lock the mailbox (values below 1 are treated as 1).
    pub max_attempts: u32,
    /// Seconds the mailbox stays locked, counted from the attempt that locked it.
    pub lockout_secs: i64,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        Self {
            activation_delay_secs: 600,
            max_attempts: 3,
            lockout_secs: 1800,
        }
    }
}

/// Result of one completed PIN entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    /// The PIN matched the active PIN. `must_change`: the owner must choose a new PIN before
    /// anything else (e.g. a non-person line still on its default PIN).
    Ok { must_change: bool },
    /// Wrong (or not yet active) PIN; the attempt was counted. `attempts_left == 0` means this
    /// attempt locked the mailbox (until `now + lockout`): the flow says so and ends the call.
    Wrong { attempts_left: u32 },
    /// The mailbox is locked until this unix time; the attempt was neither checked nor counted
    /// and the lock was not extended.
    Locked { until: i64 },
    /// No PIN was ever set for this mailbox (or the mailbox is unknown). Not counted.
    NoPin,
}

/// Effective PIN state of a mailbox at a given time (for coordinators and the admin API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PinStatus {
    /// Set while the mailbox is locked at `now`.
    pub locked_until: Option<i64>,
    /// Consecutive wrong attempts that still count at `now` (0 once a lock has expired).
    pub failures: u32,
    /// When the current PIN becomes (or became) valid; `None` if no PIN is set.
    pub pin_active_at: Option<i64>,
    /// The owner must change the PIN at the next login.
    pub must_change: bool,
}

/// Audited events. Only the mailbox and the time are recorded with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditEvent {
    LoginOk,
    LoginFailed,
    Locked,
    Unlocked,
    PinChanged,
}

impl AuditEvent {
    /// The name stored in the `audit` table.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginOk => "login_ok",
            Self::LoginFailed => "login_failed",
            Self::Locked => "locked",
            Self::Unlocked => "unlocked",
            Self::PinChanged => "pin_changed",
        }
    }
}

/// Creates the PIN tables if missing. Idempotent; every function here calls it inside its own
/// transaction, so it also works before `Store::open` calls it.
pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS pin_state(
             mailbox TEXT PRIMARY KEY,
             pin_hash TEXT,
             pin_set_at INTEGER,
             pin_active_at INTEGER,
             prev_pin_hash TEXT,
             failures INTEGER NOT NULL DEFAULT 0,
             locked_until INTEGER,
             must_change INTEGER NOT NULL DEFAULT 0
         );
         CREATE TABLE IF NOT EXISTS audit(
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             mailbox TEXT NOT NULL,
             at INTEGER NOT NULL,
             event TEXT NOT NULL
         );
         CREATE INDEX IF NOT EXISTS audit_mailbox ON audit(mailbox, at);",
    )
}

fn audit(conn: &Connection, id: &MailboxId, at: i64, ev: AuditEvent) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO audit(mailbox, at, event) VALUES (?1, ?2, ?3)",
        params![id.as_str(), at, ev.as_str()],
    )?;
    Ok(())
}

struct Row {
    pin_hash: Option<String>,
    pin_active_at: Option<i64>,
    prev_pin_hash: Option<String>,
    failures: i64,
    locked_until: Option<i64>,
    must_change: bool,
}

fn read_row(conn: &Connection, id: &MailboxId) -> rusqlite::Result<Option<Row>> {
    conn.query_row(
        "SELECT pin_hash, pin_active_at, prev_pin_hash, failures, locked_until, must_change
         FROM pin_state WHERE mailbox = ?1",
        params![id.as_str()],
        |r| {
            Ok(Row {
                pin_hash: r.get(0)?,
                pin_active_at: r.get(1)?,
                prev_pin_hash: r.get(2)?,
                failures: r.get(3)?,
                locked_until: r.get(4)?,
                must_change: r.get::<_, i64>(5)? != 0,
            })
        },
    )
    .optional()
}

impl Row {
    /// The hash that a login at `now` is checked against: the current PIN once active, else the
    /// previous one (if any).
    fn active_hash(&self, now: i64) -> Option<&str> {
        match (self.pin_hash.as_deref(), self.pin_active_at) {
            (Some(h), Some(at)) if at <= now => Some(h),
            _ => self.prev_pin_hash.as_deref(),
        }
    }
}

/// SQL fragment for UPDATEs with `?2 = now`: drops the previous PIN's hash once the current PIN
/// is active, so an old PIN's hash does not linger.
const FORGET_PREV: &str =
    "prev_pin_hash = CASE WHEN pin_active_at <= ?2 THEN NULL ELSE prev_pin_hash END";

impl Store {
    /// Sets a new PIN hash (a PHC string from `apps::pin::hash_pin`) chosen by the owner. It
    /// becomes valid at `now + activation_delay`; until then the PIN that is valid at `now` (if
    /// any) keeps working. Failures and locks are left alone. Audited as `pin_changed`.
    pub fn set_pin(
        &self,
        id: &MailboxId,
        phc_hash: &str,
        now: i64,
        must_change: bool,
        policy: impl Into<AuthPolicy>,
    ) -> Result<(), StoreError> {
        let delay = policy.into().activation_delay_secs.max(0);
        self.write_pin(id, phc_hash, now, now.saturating_add(delay), must_change)
    }

    /// Sets a PIN that is valid at once and forgets any previous one: for administrators
    /// provisioning a default PIN (usually with `must_change = true`). Audited as `pin_changed`.
    pub fn provision_pin(
        &self,
        id: &MailboxId,
        phc_hash: &str,
        now: i64,
        must_change: bool,
    ) -> Result<(), StoreError> {
        self.write_pin(id, phc_hash, now, now, must_change)
    }

    fn write_pin(
        &self,
        id: &MailboxId,
        phc_hash: &str,
        now: i64,
        active_at: i64,
        must_change: bool,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        migrate(&tx)?;
        let known: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM mailboxes WHERE id = ?1",
                params![id.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        if known.is_none() {
            return Err(StoreError::UnknownMailbox);
        }
        let prev: Option<String> = if active_at <= now {
            None
        } else {
            read_row(&tx, id)?.and_then(|r| r.active_hash(now).map(str::to_owned))
        };
        tx.execute(
            "INSERT INTO pin_state(mailbox, pin_hash, pin_set_at, pin_active_at, prev_pin_hash,
                                   must_change)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(mailbox) DO UPDATE SET
                 pin_hash = excluded.pin_hash,
                 pin_set_at = excluded.pin_set_at,
                 pin_active_at = excluded.pin_active_at,
                 prev_pin_hash = excluded.prev_pin_hash,
                 must_change = excluded.must_change",
            params![
                id.as_str(),
                phc_hash,
                now,
                active_at,
                prev,
                i64::from(must_change)
            ],
        )?;
        audit(&tx, id, now, AuditEvent::PinChanged)?;
        tx.commit()?;
        Ok(())
    }

    /// Checks one completed PIN entry and counts it, atomically (see the module docs).
    ///
    /// `verify(phc)` must say whether the entered PIN matches that PHC string — typically
    /// `|phc| apps::pin::verify_pin(&pin, phc)`. It is called at most once, and not at all while
    /// the mailbox is locked.
    ///
    /// - locked (`locked_until > now`): [`LoginOutcome::Locked`], nothing counted or extended;
    /// - an expired lock: the counter starts afresh before this attempt;
    /// - the PIN is checked against the active hash (a new PIN before its activation time is not
    ///   valid and counts as wrong; the previous PIN works until then);
    /// - success resets the counter (`login_ok`); failure counts (`login_failed`) and the
    ///   `max_attempts`-th consecutive failure locks until `now + lockout` (`locked`).
    pub fn check_pin(
        &self,
        id: &MailboxId,
        verify: impl FnOnce(&str) -> bool,
        now: i64,
        policy: impl Into<AuthPolicy>,
    ) -> Result<LoginOutcome, StoreError> {
        let policy = policy.into();
        let max = i64::from(policy.max_attempts.max(1));
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        migrate(&tx)?;
        let Some(row) = read_row(&tx, id)? else {
            tx.commit()?;
            return Ok(LoginOutcome::NoPin);
        };
        if row.pin_hash.is_none() && row.prev_pin_hash.is_none() {
            tx.commit()?;
            return Ok(LoginOutcome::NoPin);
        }
        let mut failures = row.failures.max(0);
        match row.locked_until {
            Some(until) if until > now => {
                tx.commit()?;
                return Ok(LoginOutcome::Locked { until });
            }
            Some(_) => failures = 0,
            None => {}
        }
        let ok = row.active_hash(now).is_some_and(verify);
        let outcome = if ok {
            tx.execute(
                &format!(
                    "UPDATE pin_state SET failures = 0, locked_until = NULL, {FORGET_PREV}
                     WHERE mailbox = ?1"
                ),
                params![id.as_str(), now],
            )?;
            audit(&tx, id, now, AuditEvent::LoginOk)?;
            LoginOutcome::Ok {
                must_change: row.must_change,
            }
        } else {
            failures += 1;
            audit(&tx, id, now, AuditEvent::LoginFailed)?;
            let locked_until = if failures >= max {
                audit(&tx, id, now, AuditEvent::Locked)?;
                Some(now.saturating_add(policy.lockout_secs.max(0)))
            } else {
                None
            };
            tx.execute(
                &format!(
                    "UPDATE pin_state SET failures = ?3, locked_until = ?4, {FORGET_PREV}
                     WHERE mailbox = ?1"
                ),
                params![id.as_str(), now, failures, locked_until],
            )?;
            LoginOutcome::Wrong {
                attempts_left: u32::try_from((max - failures).max(0)).unwrap_or(0),
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    /// Coordinator unlock: clears the lock and the failure counter. Returns whether the mailbox
    /// was locked at `now`. Audited as `unlocked` (also when it was not locked, as a record of
    /// the coordinator's action).
    pub fn unlock(&self, id: &MailboxId, now: i64) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        migrate(&tx)?;
        let was_locked = read_row(&tx, id)?
            .and_then(|r| r.locked_until)
            .is_some_and(|u| u > now);
        tx.execute(
            "UPDATE pin_state SET failures = 0, locked_until = NULL WHERE mailbox = ?1",
            params![id.as_str()],
        )?;
        audit(&tx, id, now, AuditEvent::Unlocked)?;
        tx.commit()?;
        Ok(was_locked)
    }

    /// Effective PIN state at `now` (an expired lock shows as unlocked with no failures).
    pub fn pin_status(&self, id: &MailboxId, now: i64) -> Result<PinStatus, StoreError> {
        let conn = self.conn();
        migrate(&conn)?;
        let Some(row) = read_row(&conn, id)? else {
            return Ok(PinStatus::default());
        };
        let locked_until = row.locked_until.filter(|&u| u > now);
        let expired = row.locked_until.is_some() && locked_until.is_none();
        Ok(PinStatus {
            locked_until,
            failures: if expired {
                0
            } else {
                u32::try_from(row.failures.max(0)).unwrap_or(u32::MAX)
            },
            pin_active_at: row.pin_hash.as_ref().and(row.pin_active_at),
            must_change: row.must_change,
        })
    }

    /// Audit trail of a mailbox, oldest first: `(unix time, event name)`.
    pub fn audit_events(&self, id: &MailboxId) -> Result<Vec<(i64, String)>, StoreError> {
        let conn = self.conn();
        migrate(&conn)?;
        let mut st = conn.prepare("SELECT at, event FROM audit WHERE mailbox = ?1 ORDER BY id")?;
        let rows = st.query_map(params![id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
