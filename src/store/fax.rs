//! Received faxes and call detail records.
//!
//! A fax is stored like a voicemail: its PDF is written durably into the spool, then the fax
//! row, its CDR row and the owner's mail go into the database in one transaction. A fax that
//! failed with no page still gets a row, a CDR and a mail that says why.

use rusqlite::{params, Connection, OptionalExtension};

use super::{outbox, spool, MailboxId, NewMail, Store, StoreError};

/// A reception to record.
#[derive(Debug, Clone)]
pub struct NewFax {
    /// The fax number that was called.
    pub number: String,
    /// The mailbox it belongs to, when the number maps to one.
    pub mailbox: Option<MailboxId>,
    /// The caller's number as received.
    pub caller: String,
    /// The sender's station identifier (TSI).
    pub remote_ident: String,
    pub received_unix: i64,
    pub duration_ms: i64,
    pub pages: u32,
    /// spandsp completion code (0 = success).
    pub result_code: i32,
    /// The explanation given to the owner.
    pub result_text: String,
    /// T.30 said OK but rows were damaged.
    pub degraded: bool,
    /// `audio` or `t38`.
    pub transport: String,
    pub bit_rate: u32,
    pub ecm: bool,
    /// The SIP Call-ID, for tracing a CDR back to logs.
    pub call_id: String,
}

/// A stored fax.
#[derive(Debug, Clone)]
pub struct FaxRecord {
    pub id: i64,
    pub fax: NewFax,
    /// The PDF in the spool (absent when no page arrived).
    pub pdf_path: Option<std::path::PathBuf>,
}

pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS faxes(
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             number TEXT NOT NULL,
             mailbox TEXT,
             caller TEXT NOT NULL,
             remote_ident TEXT NOT NULL,
             received_utc INTEGER NOT NULL,
             duration_ms INTEGER NOT NULL,
             pages INTEGER NOT NULL,
             result_code INTEGER NOT NULL,
             result_text TEXT NOT NULL,
             degraded INTEGER NOT NULL,
             transport TEXT NOT NULL,
             bit_rate INTEGER NOT NULL,
             ecm INTEGER NOT NULL,
             call_id TEXT NOT NULL,
             pdf_path TEXT
         );
         CREATE INDEX IF NOT EXISTS faxes_received ON faxes(received_utc);
         CREATE TABLE IF NOT EXISTS cdr(
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             kind TEXT NOT NULL,
             call_id TEXT NOT NULL,
             caller TEXT NOT NULL,
             called TEXT NOT NULL,
             mailbox TEXT,
             started_utc INTEGER NOT NULL,
             duration_ms INTEGER NOT NULL,
             result TEXT NOT NULL,
             detail TEXT NOT NULL
         );
         CREATE INDEX IF NOT EXISTS cdr_started ON cdr(started_utc);",
    )
}

impl Store {
    /// Records a received fax: the PDF (if any page arrived) durably in the spool, then the
    /// fax row, its CDR and the mail `mail` builds, in one transaction.
    pub fn save_fax_with_mail(
        &self,
        fax: &NewFax,
        pdf: Option<&[u8]>,
        mail: impl FnOnce(&FaxRecord) -> Option<NewMail>,
    ) -> Result<FaxRecord, StoreError> {
        let pdf_path = match pdf {
            Some(bytes) => {
                let dir = self.spool.join("fax");
                std::fs::create_dir_all(&dir)?;
                let path = dir.join(format!(
                    "{}-{:016x}.pdf",
                    fax.received_unix,
                    rand::random::<u64>()
                ));
                spool::write_file_durably(&path, bytes)?;
                Some(path)
            }
            None => None,
        };
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO faxes(number, mailbox, caller, remote_ident, received_utc, duration_ms,
                               pages, result_code, result_text, degraded, transport, bit_rate,
                               ecm, call_id, pdf_path)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            params![
                fax.number,
                fax.mailbox.as_ref().map(|m| m.as_str().to_owned()),
                fax.caller,
                fax.remote_ident,
                fax.received_unix,
                fax.duration_ms,
                fax.pages,
                fax.result_code,
                fax.result_text,
                fax.degraded,
                fax.transport,
                fax.bit_rate,
                fax.ecm,
                fax.call_id,
                pdf_path.as_ref().map(|p| p.to_string_lossy().into_owned()),
            ],
        )?;
        let id = tx.last_insert_rowid();
        let result = if fax.result_code == 0 && !fax.degraded {
            "ok"
        } else if fax.pages > 0 {
            "partial"
        } else {
            "failed"
        };
        tx.execute(
            "INSERT INTO cdr(kind, call_id, caller, called, mailbox, started_utc, duration_ms,
                             result, detail)
             VALUES ('fax-in', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                fax.call_id,
                fax.caller,
                fax.number,
                fax.mailbox.as_ref().map(|m| m.as_str().to_owned()),
                fax.received_unix,
                fax.duration_ms,
                result,
                format!(
                    "pages={} code={} transport={} rate={} ecm={}",
                    fax.pages, fax.result_code, fax.transport, fax.bit_rate, fax.ecm
                ),
            ],
        )?;
        let record = FaxRecord {
            id,
            fax: fax.clone(),
            pdf_path,
        };
        if let Some(m) = mail(&record) {
            outbox::insert(&tx, &m, fax.received_unix)?;
        }
        tx.commit()?;
        Ok(record)
    }

    /// Received faxes, newest first.
    pub fn faxes(&self, limit: usize) -> Result<Vec<FaxRecord>, StoreError> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, number, mailbox, caller, remote_ident, received_utc, duration_ms, pages,
                    result_code, result_text, degraded, transport, bit_rate, ecm, call_id,
                    pdf_path
             FROM faxes ORDER BY received_utc DESC, id DESC LIMIT ?1",
        )?;
        let rows = st.query_map(params![limit as i64], |r| {
            let mailbox: Option<String> = r.get(2)?;
            let pdf: Option<String> = r.get(15)?;
            Ok(FaxRecord {
                id: r.get(0)?,
                fax: NewFax {
                    number: r.get(1)?,
                    mailbox: mailbox.and_then(|m| MailboxId::parse(&m).ok()),
                    caller: r.get(3)?,
                    remote_ident: r.get(4)?,
                    received_unix: r.get(5)?,
                    duration_ms: r.get(6)?,
                    pages: r.get(7)?,
                    result_code: r.get(8)?,
                    result_text: r.get(9)?,
                    degraded: r.get(10)?,
                    transport: r.get(11)?,
                    bit_rate: r.get(12)?,
                    ecm: r.get(13)?,
                    call_id: r.get(14)?,
                },
                pdf_path: pdf.map(Into::into),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes faxes (rows and PDFs) received before `cutoff_unix`; returns how many.
    /// CDRs are kept: they are the call record, not the document.
    pub fn expire_faxes(&self, cutoff_unix: i64) -> Result<usize, StoreError> {
        let conn = self.conn();
        let old: Vec<(i64, Option<String>)> = {
            let mut st = conn.prepare("SELECT id, pdf_path FROM faxes WHERE received_utc < ?1")?;
            let rows = st.query_map(params![cutoff_unix], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (id, pdf) in &old {
            if let Some(p) = pdf {
                match std::fs::remove_file(p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
            conn.execute("DELETE FROM faxes WHERE id = ?1", params![id])?;
        }
        Ok(old.len())
    }

    /// The number of CDR rows of a kind (for tests and the admin page).
    pub fn cdr_count(&self, kind: &str) -> Result<u64, StoreError> {
        let n: Option<i64> = self
            .conn()
            .query_row(
                "SELECT COUNT(*) FROM cdr WHERE kind = ?1",
                params![kind],
                |r| r.get(0),
            )
            .optional()?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pages: u32, code: i32) -> NewFax {
        NewFax {
            number: "5000".into(),
            mailbox: Some(MailboxId::parse("77513").unwrap()),
            caller: "+441865000000".into(),
            remote_ident: "+44 1865 000000".into(),
            received_unix: 1_782_000_000,
            duration_ms: 41_000,
            pages,
            result_code: code,
            result_text: "x".into(),
            degraded: false,
            transport: "t38".into(),
            bit_rate: 14_400,
            ecm: true,
            call_id: "abc".into(),
        }
    }

    fn store() -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("coda-faxstore-{}", rand::random::<u64>()));
        (Store::open(&dir).unwrap(), dir)
    }

    #[test]
    fn fax_row_pdf_cdr_and_mail_in_one_go() {
        let (s, dir) = store();
        s.upsert_mailbox(&super::super::Mailbox::new(
            MailboxId::parse("77513").unwrap(),
            "a@example.ac.uk",
            None,
        ))
        .unwrap();
        let rec = s
            .save_fax_with_mail(&sample(2, 0), Some(b"%PDF-1.7 test"), |r| {
                Some(NewMail {
                    kind: "fax".into(),
                    message_id: format!("<fax-{}@test>", r.id),
                    from: "f@x".into(),
                    to: vec!["a@example.ac.uk".into()],
                    raw: b"Subject: fax\r\n\r\nhi".to_vec(),
                    delete_message: None,
                })
            })
            .unwrap();
        let pdf = rec.pdf_path.clone().unwrap();
        assert_eq!(std::fs::read(&pdf).unwrap(), b"%PDF-1.7 test");
        assert_eq!(s.cdr_count("fax-in").unwrap(), 1);
        assert_eq!(s.mails(None).unwrap().len(), 1);
        let listed = s.faxes(10).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].fax.pages, 2);
        // Retention: expiring removes the row and the PDF, keeps the CDR.
        assert_eq!(s.expire_faxes(1_782_000_001).unwrap(), 1);
        assert!(!pdf.exists());
        assert!(s.faxes(10).unwrap().is_empty());
        assert_eq!(s.cdr_count("fax-in").unwrap(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn failed_fax_without_pages_is_still_recorded() {
        let (s, dir) = store();
        let rec = s
            .save_fax_with_mail(&sample(0, 49), None, |_| None)
            .unwrap();
        assert!(rec.pdf_path.is_none());
        assert_eq!(s.faxes(10).unwrap()[0].fax.result_code, 49);
        let _ = std::fs::remove_dir_all(dir);
    }
}
