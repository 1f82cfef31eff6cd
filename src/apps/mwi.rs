//! Message-waiting subscriptions (RFC 3842 `message-summary` over RFC 6665 SUBSCRIBE/NOTIFY),
//! as a sans-IO registry: the shell feeds it subscriptions and time, and asks whom to notify.
//! It knows nothing of SIP bytes; `D` is whatever the shell needs to send a NOTIFY in the
//! subscription's dialog.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::store::MailboxId;

/// Expiry policy for subscriptions (seconds).
#[derive(Debug, Clone, Copy)]
pub struct ExpiresPolicy {
    pub default: u32,
    pub min: u32,
    pub max: u32,
}

impl Default for ExpiresPolicy {
    fn default() -> Self {
        Self {
            default: 3600,
            min: 60,
            max: 86400,
        }
    }
}

/// Why a subscription was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MwiError {
    /// RFC 6665 §4.2.1.1: 423 Interval Too Brief with `Min-Expires`.
    TooBrief { min: u32 },
    /// More subscriptions for one mailbox than allowed (a runaway client): 503.
    TooMany,
}

/// The expiry granted for a requested `Expires` (absent: the default). `Ok(0)` unsubscribes.
pub fn grant_expires(requested: Option<u32>, p: ExpiresPolicy) -> Result<u32, MwiError> {
    match requested {
        None => Ok(p.default),
        Some(0) => Ok(0),
        Some(e) if e < p.min => Err(MwiError::TooBrief { min: p.min }),
        Some(e) => Ok(e.min(p.max)),
    }
}

/// RFC 3842 §5.2 body: `Messages-Waiting`, `Message-Account`, `Voice-Message: new/old`.
pub fn summary_body(account: &str, new: u32, old: u32) -> String {
    format!(
        "Messages-Waiting: {}\r\nMessage-Account: {account}\r\nVoice-Message: {new}/{old}\r\n",
        if new > 0 { "yes" } else { "no" }
    )
}

/// A live subscription.
#[derive(Debug)]
pub struct Subscription<D> {
    pub mailbox: MailboxId,
    pub expires_at: Instant,
    pub dialog: D,
}

/// All subscriptions, keyed by dialog (Call-ID and our tag).
#[derive(Debug)]
pub struct Registry<D> {
    subs: HashMap<String, Subscription<D>>,
    per_mailbox_limit: usize,
}

impl<D> Registry<D> {
    /// `per_mailbox_limit`: the seeds promise five phones per extension; allow some slack.
    pub fn new(per_mailbox_limit: usize) -> Self {
        Self {
            subs: HashMap::new(),
            per_mailbox_limit,
        }
    }

    pub fn len(&self) -> usize {
        self.subs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// Adds a new subscription for `expires` seconds (non-zero).
    pub fn subscribe(
        &mut self,
        now: Instant,
        key: String,
        mailbox: MailboxId,
        expires: u32,
        dialog: D,
    ) -> Result<(), MwiError> {
        let count = self.subs.values().filter(|s| s.mailbox == mailbox).count();
        if count >= self.per_mailbox_limit {
            return Err(MwiError::TooMany);
        }
        self.subs.insert(
            key,
            Subscription {
                mailbox,
                expires_at: now + Duration::from_secs(u64::from(expires)),
                dialog,
            },
        );
        Ok(())
    }

    /// Refreshes (or with 0, ends) an existing subscription. `None`: no such dialog (481).
    pub fn refresh(
        &mut self,
        now: Instant,
        key: &str,
        expires: u32,
    ) -> Option<&mut Subscription<D>> {
        let s = self.subs.get_mut(key)?;
        s.expires_at = now + Duration::from_secs(u64::from(expires));
        Some(s)
    }

    /// Removes a subscription (after its final NOTIFY).
    pub fn remove(&mut self, key: &str) -> Option<Subscription<D>> {
        self.subs.remove(key)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Subscription<D>> {
        self.subs.get_mut(key)
    }

    /// Keys of every subscription to `mailbox`.
    pub fn keys_for(&self, mailbox: &MailboxId) -> Vec<String> {
        self.subs
            .iter()
            .filter(|(_, s)| &s.mailbox == mailbox)
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.subs.values().map(|s| s.expires_at).min()
    }

    /// Removes and returns the subscriptions that expired (each gets a final NOTIFY with
    /// `Subscription-State: terminated;reason=timeout`, RFC 6665 §4.2.2).
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<(String, Subscription<D>)> {
        let dead: Vec<String> = self
            .subs
            .iter()
            .filter(|(_, s)| s.expires_at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        dead.into_iter()
            .filter_map(|k| self.subs.remove(&k).map(|s| (k, s)))
            .collect()
    }

    /// Seconds left of a subscription at `now` (for `Subscription-State: active;expires=`).
    pub fn remaining(&self, key: &str, now: Instant) -> u32 {
        self.subs
            .get(key)
            .map(|s| s.expires_at.saturating_duration_since(now).as_secs() as u32)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(s: &str) -> MailboxId {
        MailboxId::parse(s).unwrap()
    }

    #[test]
    fn rfc3842_5_2_summary_body() {
        assert_eq!(
            summary_body("sip:77513@coda", 2, 8),
            "Messages-Waiting: yes\r\nMessage-Account: sip:77513@coda\r\nVoice-Message: 2/8\r\n"
        );
        assert!(summary_body("sip:x@y", 0, 3).starts_with("Messages-Waiting: no\r\n"));
    }

    #[test]
    fn rfc6665_4_2_1_1_expires_policy() {
        let p = ExpiresPolicy::default();
        assert_eq!(grant_expires(None, p), Ok(3600));
        assert_eq!(grant_expires(Some(0), p), Ok(0));
        assert_eq!(
            grant_expires(Some(30), p),
            Err(MwiError::TooBrief { min: 60 })
        );
        assert_eq!(grant_expires(Some(999_999), p), Ok(86400));
    }

    #[test]
    fn five_devices_of_one_extension_all_subscribed_and_expire() {
        let t0 = Instant::now();
        let mut r: Registry<u8> = Registry::new(16);
        for d in 0..5u8 {
            r.subscribe(t0, format!("k{d}"), mb("77513"), 60 + u32::from(d), d)
                .unwrap();
        }
        r.subscribe(t0, "other".into(), mb("77514"), 60, 9).unwrap();
        assert_eq!(r.keys_for(&mb("77513")).len(), 5);
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(60)));
        let gone = r.handle_timeout(t0 + Duration::from_secs(62));
        assert_eq!(gone.len(), 4); // 60, 61, 62 of 77513 and 77514's
        assert_eq!(r.keys_for(&mb("77513")).len(), 2);
        assert!(r.refresh(t0, "k4", 3600).is_some());
        assert!(r.refresh(t0, "nope", 3600).is_none());
        assert_eq!(r.remaining("k4", t0 + Duration::from_secs(600)), 3000);
    }

    #[test]
    fn runaway_subscriber_is_capped() {
        let t0 = Instant::now();
        let mut r: Registry<()> = Registry::new(3);
        for i in 0..3 {
            r.subscribe(t0, format!("k{i}"), mb("77513"), 60, ())
                .unwrap();
        }
        assert_eq!(
            r.subscribe(t0, "k9".into(), mb("77513"), 60, ()),
            Err(MwiError::TooMany)
        );
    }
}
