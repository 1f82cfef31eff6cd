//! Which mailbox a forwarded call is for, and why it was forwarded.
//!
//! Candidates, most specific first: RFC 4458 `target`/`cause` in the Request-URI; the topmost
//! Diversion entry (RFC 5806: the most recent diverting party); History-Info entries before the
//! last one, newest first (RFC 7044; the last entry is normally coda itself); then the
//! Request-URI user. The shell takes the first candidate that is a mailbox.

use crate::numbering::{Caller, NumberingPlan};
use crate::sip::{pct_decode, Request, Uri};
use crate::store::{DiversionReason, MailboxId};

/// Mailbox candidates of an INVITE, in order of preference.
pub fn mailbox_candidates(
    req: &Request,
    plan: &NumberingPlan,
) -> Vec<(MailboxId, DiversionReason)> {
    let mut raw: Vec<(String, DiversionReason)> = Vec::new();
    if let Some(p) = req.uri.params() {
        if let Some(t) = p.get("target") {
            let reason = p
                .get("cause")
                .and_then(|c| c.parse::<u16>().ok())
                .map(reason_from_cause)
                .unwrap_or(DiversionReason::Unknown);
            if let Some(u) = Uri::parse(&decode(t)).ok().as_ref().and_then(uri_number) {
                raw.push((u, reason));
            }
        }
    }
    if let Ok(divs) = req.headers.diversions() {
        if let Some(d) = divs.first() {
            let reason = d
                .reason
                .as_deref()
                .map(reason_from_diversion)
                .unwrap_or(DiversionReason::Unknown);
            if let Some(u) = uri_number(&d.addr.uri) {
                raw.push((u, reason));
            }
        }
    }
    if let Ok(hi) = req.headers.history_info() {
        let n = hi.len();
        for (i, h) in hi.iter().enumerate().rev() {
            if i + 1 == n && n > 1 {
                continue;
            }
            // RFC 4458 §3: the cause of a retarget is carried on the entry it retargeted to.
            let reason = hi
                .get(i + 1)
                .and_then(|next| next.cause)
                .or(h.cause)
                .map(reason_from_cause)
                .unwrap_or(DiversionReason::Unknown);
            if let Some(u) = uri_number(&h.addr.uri) {
                raw.push((u, reason));
            }
        }
    }
    if let Some(u) = uri_number(&req.uri) {
        raw.push((u, DiversionReason::Unknown));
    }
    let mut out: Vec<(MailboxId, DiversionReason)> = Vec::new();
    for (user, reason) in raw {
        let ext = match plan.classify(&user) {
            Caller::Extension { extension, .. } => extension,
            _ => user.trim_start_matches('+').to_owned(),
        };
        if let Ok(id) = MailboxId::parse(&ext) {
            if !out.iter().any(|(o, _)| *o == id) {
                out.push((id, reason));
            }
        }
    }
    out
}

/// RFC 5806 reason values.
pub fn reason_from_diversion(r: &str) -> DiversionReason {
    match r.to_ascii_lowercase().as_str() {
        "user-busy" | "busy" => DiversionReason::Busy,
        "no-answer" => DiversionReason::NoAnswer,
        "unavailable" | "out-of-service" | "unreachable" => DiversionReason::Unavailable,
        "unconditional" | "follow-me" | "time-of-day" | "do-not-disturb" => {
            DiversionReason::Unconditional
        }
        _ => DiversionReason::Unknown,
    }
}

/// RFC 4458 §3 cause values.
pub fn reason_from_cause(c: u16) -> DiversionReason {
    match c {
        486 | 600 => DiversionReason::Busy,
        408 | 480 => DiversionReason::NoAnswer,
        404 | 410 | 503 => DiversionReason::Unavailable,
        302 => DiversionReason::Unconditional,
        _ => DiversionReason::Unknown,
    }
}

fn decode(s: &str) -> String {
    match pct_decode(s) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => s.to_owned(),
    }
}

fn uri_number(u: &Uri) -> Option<String> {
    match u {
        Uri::Tel(t) => Some(t.number.replace(['-', '.', ' '], "")),
        other => other.user().map(decode),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{parse, Message};

    fn invite(uri: &str, extra: &str) -> Request {
        let text = format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
             From: <sip:77514@pbx>;tag=a\r\nTo: <{uri}>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\
             Max-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        match parse(text.as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    fn ids(c: &[(MailboxId, DiversionReason)]) -> Vec<(&str, DiversionReason)> {
        c.iter().map(|(i, r)| (i.as_str(), *r)).collect()
    }

    #[test]
    fn request_uri_user_alone() {
        let c = mailbox_candidates(&invite("sip:77513@coda", ""), &NumberingPlan::default());
        assert_eq!(ids(&c), [("77513", DiversionReason::Unknown)]);
    }

    #[test]
    fn rfc5806_topmost_diversion_is_the_mailbox() {
        let r = invite(
            "sip:8000@coda",
            "Diversion: <sip:77513@pbx>;reason=user-busy;counter=1\r\n\
             Diversion: <sip:77000@pbx>;reason=unconditional\r\n",
        );
        let c = mailbox_candidates(&r, &NumberingPlan::default());
        assert_eq!(
            c[0],
            (MailboxId::parse("77513").unwrap(), DiversionReason::Busy)
        );
        assert_eq!(c.last().unwrap().0.as_str(), "8000");
    }

    #[test]
    fn rfc4458_target_and_cause_win() {
        let r = invite(
            "sip:voicemail@coda;target=sip:%2B441865277513%40pbx;cause=486",
            "Diversion: <sip:77000@pbx>;reason=no-answer\r\n",
        );
        let c = mailbox_candidates(&r, &NumberingPlan::default());
        assert_eq!(
            c[0],
            (MailboxId::parse("77513").unwrap(), DiversionReason::Busy)
        );
        assert_eq!(
            c[1],
            (
                MailboxId::parse("77000").unwrap(),
                DiversionReason::NoAnswer
            )
        );
    }

    #[test]
    fn rfc7044_history_info_entry_before_coda() {
        let r = invite(
            "sip:8000@coda",
            "History-Info: <sip:77513@pbx>;index=1, <sip:8000@coda;cause=480>;index=1.1\r\n",
        );
        let c = mailbox_candidates(&r, &NumberingPlan::default());
        assert_eq!(
            c[0],
            (
                MailboxId::parse("77513").unwrap(),
                DiversionReason::NoAnswer
            )
        );
    }

    #[test]
    fn tel_uri_in_e164_maps_to_extension() {
        let r = invite("tel:+44-1865-277513", "");
        let c = mailbox_candidates(&r, &NumberingPlan::default());
        assert_eq!(c[0].0.as_str(), "77513");
    }

    #[test]
    fn names_are_not_mailboxes() {
        let c = mailbox_candidates(&invite("sip:alice@coda", ""), &NumberingPlan::default());
        assert!(c.is_empty());
    }
}
