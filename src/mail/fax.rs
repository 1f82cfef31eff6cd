//! The mail that tells an owner about a received fax: the PDF, and in words what arrived,
//! from whom, how, and — for a failed or partial fax — which pages are missing and why.

use chrono::DateTime;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox as MailAddr, MultiPart, SinglePart};
use lettre::Message;

use super::{format_duration, format_time, html_escape, MailError};
use crate::config::MailConfig;
use crate::store::NewFax;

/// What the mail says about the fax, beyond the record.
pub struct FaxMailFacts<'a> {
    /// Recipients (the mailbox's addresses or the number's address).
    pub to: &'a [String],
    /// The owner's display name, if known.
    pub name: Option<&'a str>,
    /// How the caller is shown (number, or "unknown").
    pub caller_display: &'a str,
    /// The transport in words ("T.38", "audio (G.711)").
    pub transport: &'a str,
    /// Whether the fax arrived complete and clean.
    pub clean: bool,
    /// A further sentence for the owner (e.g. that the server kept no copy).
    pub note: Option<&'a str>,
}

/// Builds the notification for a received fax. `pdf` is attached when any page arrived.
pub fn fax_mail(
    cfg: &MailConfig,
    fax: &NewFax,
    facts: &FaxMailFacts<'_>,
    pdf: Option<&[u8]>,
) -> Result<Message, MailError> {
    let from: MailAddr = cfg
        .from
        .parse()
        .map_err(|e: lettre::address::AddressError| MailError::Address(e.to_string()))?;
    let mut builder = Message::builder().from(from).message_id(None);
    if facts.to.is_empty() {
        return Err(MailError::Address("the fax number has no address".into()));
    }
    for a in facts.to {
        let addr = a
            .parse()
            .map_err(|e: lettre::address::AddressError| MailError::Address(e.to_string()))?;
        builder = builder.to(MailAddr::new(facts.name.map(str::to_owned), addr));
    }
    let when = format_time(fax.received_unix, &cfg.timezone);
    let pages = match fax.pages {
        1 => "1 page".to_string(),
        n => format!("{n} pages"),
    };
    let subject = if facts.clean {
        format!("Fax from {} ({pages})", facts.caller_display)
    } else if fax.pages > 0 {
        format!(
            "Incomplete fax from {} ({pages} received)",
            facts.caller_display
        )
    } else {
        format!("Failed fax from {}", facts.caller_display)
    };
    let station = if fax.remote_ident.is_empty() {
        "(not sent)".to_string()
    } else {
        fax.remote_ident.clone()
    };
    let mut text = String::new();
    if facts.clean {
        text.push_str(&format!(
            "A fax of {pages} arrived for fax number {}. It is attached as a PDF.\n\n",
            fax.number
        ));
    } else if fax.pages > 0 {
        text.push_str(&format!(
            "A fax for fax number {} did not arrive completely. {} The {pages} that \
             arrived are attached as a PDF; any pages after page {} are missing. You may \
             want to ask the sender to send it again.\n\n",
            fax.number, fax.result_text, fax.pages
        ));
    } else {
        text.push_str(&format!(
            "Someone tried to send a fax to fax number {}, but no page arrived. {}\n\n",
            fax.number, fax.result_text
        ));
    }
    if let Some(note) = facts.note {
        text.push_str(note);
        text.push_str("\n\n");
    }
    text.push_str(&format!(
        "From:            {}\n\
         Sender's fax ID: {station}\n\
         Received:        {when}\n\
         Duration:        {}\n\
         Pages received:  {}\n\
         Transmission:    {}, {} bit/s, error correction {}\n\
         Result:          {} (code {})\n",
        facts.caller_display,
        format_duration(fax.duration_ms),
        fax.pages,
        facts.transport,
        fax.bit_rate,
        if fax.ecm { "on" } else { "off" },
        if facts.clean {
            "complete"
        } else {
            "incomplete"
        },
        fax.result_code,
    ));
    let html = format!(
        "<html><body><p>{}</p></body></html>",
        html_escape(&text)
            .replace("\n\n", "</p><p>")
            .replace('\n', "<br>")
    );
    let body = MultiPart::alternative()
        .singlepart(SinglePart::plain(text))
        .singlepart(SinglePart::html(html));
    let mut content = MultiPart::mixed().multipart(body);
    if let Some(pdf) = pdf {
        let stamp = DateTime::from_timestamp(fax.received_unix, 0)
            .unwrap_or_default()
            .format("%Y%m%d-%H%M%S");
        content = content.singlepart(Attachment::new(format!("fax-{stamp}.pdf")).body(
            pdf.to_vec(),
            ContentType::parse("application/pdf").map_err(|e| MailError::Build(e.to_string()))?,
        ));
    }
    builder
        .subject(subject)
        .multipart(content)
        .map_err(|e| MailError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MimeHeaders;

    fn fax(pages: u32, code: i32) -> NewFax {
        NewFax {
            number: "5000".into(),
            mailbox: None,
            caller: "+441865000000".into(),
            remote_ident: "+44 1865 000000".into(),
            received_unix: 1_782_000_000,
            duration_ms: 61_000,
            pages,
            result_code: code,
            result_text: "The call was hung up before the fax was finished.".into(),
            degraded: false,
            transport: "t38".into(),
            bit_rate: 14_400,
            ecm: true,
            call_id: "c".into(),
        }
    }

    fn facts(to: &[String], clean: bool) -> FaxMailFacts<'_> {
        FaxMailFacts {
            to,
            name: Some("Fax Office"),
            caller_display: "01865 000000",
            transport: "T.38",
            clean,
            note: None,
        }
    }

    #[test]
    fn complete_fax_mail_carries_the_pdf_and_the_facts() {
        let to = vec!["fax-office@example.ac.uk".to_string()];
        let m = fax_mail(
            &MailConfig::default(),
            &fax(3, 0),
            &facts(&to, true),
            Some(b"%PDF-1.7"),
        )
        .unwrap();
        let raw = m.formatted();
        let p = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(p.subject(), Some("Fax from 01865 000000 (3 pages)"));
        let att = p.attachments().next().unwrap();
        assert_eq!(att.contents(), b"%PDF-1.7");
        assert_eq!(att.attachment_name(), Some("fax-20260621-000000.pdf"));
        let text = p.body_text(0).unwrap();
        assert!(text.contains("Sender's fax ID: +44 1865 000000"), "{text}");
        assert!(
            text.contains("T.38, 14400 bit/s, error correction on"),
            "{text}"
        );
        assert!(text.contains("Duration:        1:01"), "{text}");
    }

    #[test]
    fn partial_fax_mail_says_which_pages_are_missing_and_why() {
        let to = vec!["a@example.ac.uk".to_string()];
        let m = fax_mail(
            &MailConfig::default(),
            &fax(2, 49),
            &facts(&to, false),
            Some(b"%PDF"),
        )
        .unwrap();
        let raw = m.formatted();
        let p = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(
            p.subject(),
            Some("Incomplete fax from 01865 000000 (2 pages received)")
        );
        let text = p.body_text(0).unwrap();
        assert!(
            text.contains("any pages after page 2 are missing"),
            "{text}"
        );
        assert!(
            text.contains("hung up before the fax was finished"),
            "{text}"
        );
    }

    #[test]
    fn failed_fax_mail_has_no_attachment() {
        let to = vec!["a@example.ac.uk".to_string()];
        let m = fax_mail(
            &MailConfig::default(),
            &fax(0, 49),
            &facts(&to, false),
            None,
        )
        .unwrap();
        let raw = m.formatted();
        let p = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(p.subject(), Some("Failed fax from 01865 000000"));
        assert_eq!(p.attachments().count(), 0);
        assert!(p.body_text(0).unwrap().contains("no page arrived"));
    }

    #[test]
    fn no_recipient_is_an_error() {
        assert!(fax_mail(&MailConfig::default(), &fax(1, 0), &facts(&[], true), None).is_err());
    }
}
