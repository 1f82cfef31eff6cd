// RFC 4475 and RFC 5118 torture messages against coda's SIP parser.
//
// The corpora and their classification come from the `sipx-testkit` dev-dependency: each case
// names the layer that must object to it (`ParseOk`, `ParseErr`, `HeaderErr(header)`,
// `ValidateErr`). RFC 5118's archive is LF-terminated with three wrong Content-Lengths; its
// documented `Case::wire()` fix-up (LF→CRLF, terminate the header section, rewrite the
// Content-Length digits) produces the bytes fed here.
//
// Run with `cargo test --test sip_torture -- --nocapture` to see the count summary.
//
// (Plain comments rather than `//!`, so the file can also be `include!`d by a scratch crate.)

use coda::sip::{self, validate_request, HeaderError, Message, ParseError, Request, UriError};
use sipx_testkit::rfc4475::{self, Expect, Fault};
use sipx_testkit::rfc5118;

/// Reads the typed view of `header`; `Ok` if the header is absent or parses.
fn typed_read(msg: &Message, header: &str) -> Result<(), HeaderError> {
    let h = msg.headers();
    match header {
        "Via" => h.vias().map(drop),
        "From" => h.from().map(drop),
        "To" => h.to().map(drop),
        "Contact" if h.contact_is_wildcard() => Ok(()),
        "Contact" => h.contacts().map(drop),
        "Route" => h.routes().map(drop),
        "Record-Route" => h.record_routes().map(drop),
        "CSeq" => h.cseq().map(drop),
        "Call-ID" => h.call_id().map(drop),
        "Max-Forwards" => h.max_forwards().map(drop),
        "Content-Length" => h.content_length().map(drop),
        "Content-Type" => h.content_type().map(drop),
        "Expires" => h.expires().map(drop),
        "Retry-After" => h.retry_after().map(drop),
        "Date" => h.date().map(drop),
        "History-Info" => h.history_info().map(drop),
        "Diversion" => h.diversions().map(drop),
        other => panic!("no typed view for {other}"),
    }
}

/// The typed views every well-formed message must satisfy when the header is present.
const CORE: &[&str] = &[
    "Via",
    "From",
    "To",
    "Contact",
    "Route",
    "Record-Route",
    "CSeq",
    "Call-ID",
    "Max-Forwards",
    "Content-Length",
    "Content-Type",
];

fn present(msg: &Message, header: &str) -> bool {
    msg.headers().count(header) > 0
}

fn as_request(msg: &Message) -> Option<&Request> {
    match msg {
        Message::Request(r) => Some(r),
        Message::Response(_) => None,
    }
}

/// Serialise and re-parse: everything but the regenerated Content-Length must survive.
fn assert_round_trip(name: &str, msg: &Message) {
    let again = sip::parse(&msg.to_bytes())
        .unwrap_or_else(|e| panic!("{name}: re-parse of serialised message failed: {e}"));
    let strip = |m: &Message| -> Vec<(String, String)> {
        m.headers()
            .iter()
            .filter(|(n, _)| !sip::same_header(n, "Content-Length"))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    };
    assert_eq!(strip(msg), strip(&again), "{name}: headers changed");
    assert_eq!(msg.body(), again.body(), "{name}: body changed");
}

fn fault_matches(fault: Fault, err: &ParseError) -> bool {
    match fault {
        Fault::StartLine => matches!(err, ParseError::StartLine(_) | ParseError::RequestUri(_)),
        Fault::HeaderSyntax => matches!(err, ParseError::HeaderSyntax(_)),
        Fault::Framing => matches!(err, ParseError::Framing(_) | ParseError::TooLarge(_)),
        _ => false,
    }
}

#[derive(Default)]
struct Tally {
    ok: usize,
    total: usize,
}

impl Tally {
    fn record(&mut self, pass: bool) {
        self.total += 1;
        if pass {
            self.ok += 1;
        }
    }
}

#[test]
fn rfc4475_torture_corpus() {
    let (mut parse_ok, mut parse_err, mut header_err, mut validate_err) = (
        Tally::default(),
        Tally::default(),
        Tally::default(),
        Tally::default(),
    );
    let mut failures: Vec<String> = Vec::new();

    for case in rfc4475::CASES {
        let name = case.name;
        // Must never panic, whatever the bytes; the stream framer is exercised too.
        let _ = sip::frame(case.bytes);
        let parsed = sip::parse(case.bytes);
        match case.expect {
            Expect::ParseOk => {
                let mut pass = true;
                match &parsed {
                    Err(e) => {
                        failures.push(format!("{name} ({}): refused: {e}", case.section));
                        pass = false;
                    }
                    Ok(msg) => {
                        for h in CORE {
                            if present(msg, h) {
                                if let Err(e) = typed_read(msg, h) {
                                    failures.push(format!("{name}: typed {h} failed: {e}"));
                                    pass = false;
                                }
                            }
                        }
                        assert_round_trip(name, msg);
                    }
                }
                parse_ok.record(pass);
            }
            Expect::ParseErr(fault) => {
                let pass = match &parsed {
                    Ok(_) => {
                        failures.push(format!("{name} ({}): accepted", case.section));
                        false
                    }
                    Err(e) if !fault_matches(fault, e) => {
                        failures.push(format!("{name}: refused as {e:?}, expected {fault:?}"));
                        false
                    }
                    Err(_) => true,
                };
                parse_err.record(pass);
            }
            Expect::HeaderErr(header) => {
                let pass = match &parsed {
                    Err(e) => {
                        failures.push(format!("{name}: refused at parse ({e}), must parse"));
                        false
                    }
                    Ok(msg) => match typed_read(msg, header) {
                        Err(e) => {
                            assert_eq!(e.header(), header, "{name}: error names wrong header");
                            true
                        }
                        Ok(()) => {
                            failures.push(format!("{name}: typed {header} accepted"));
                            false
                        }
                    },
                };
                header_err.record(pass);
            }
            Expect::ValidateErr(reason) => {
                let pass = match &parsed {
                    Err(e) => {
                        failures.push(format!("{name}: refused at parse ({e}), must parse"));
                        false
                    }
                    Ok(msg) => {
                        let validated = as_request(msg).map(validate_request);
                        let typed_fault = CORE.iter().any(|h| typed_read(msg, h).is_err());
                        let rejected = matches!(validated, Some(Err(_))) || typed_fault;
                        if !rejected {
                            failures.push(format!("{name}: not rejected ({reason})"));
                        }
                        rejected
                    }
                };
                validate_err.record(pass);
            }
            _ => {
                // `test.dat`: referenced by no section; only "no panic" is asserted.
                println!(
                    "rfc4475 {name} (unreferenced): {}",
                    match &parsed {
                        Ok(_) => "parsed".to_owned(),
                        Err(e) => format!("refused: {e}"),
                    }
                );
            }
        }
    }

    println!(
        "RFC 4475: ParseOk {}/{}, ParseErr {}/{}, HeaderErr {}/{}, ValidateErr {}/{}",
        parse_ok.ok,
        parse_ok.total,
        parse_err.ok,
        parse_err.total,
        header_err.ok,
        header_err.total,
        validate_err.ok,
        validate_err.total
    );
    assert!(
        failures.is_empty(),
        "RFC 4475 failures:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        parse_ok.total + parse_err.total + header_err.total + validate_err.total,
        49,
        "all classified cases were visited"
    );
}

#[test]
fn rfc4475_specific_outcomes() {
    let get = |n: &str| rfc4475::case(n).unwrap_or_else(|| panic!("{n} missing"));
    // §3.1.1.8: octets after Content-Length are discarded on UDP.
    let dbl = sip::parse(get("dblreq").bytes).expect("dblreq parses");
    assert!(dbl.body().is_empty());
    // §3.4.1: no Content-Length on UDP — the body is the rest of the datagram.
    let old = sip::parse(get("inv2543").bytes).expect("inv2543 parses");
    assert!(old.body().starts_with(b"v=0"));
    // §3.1.1.1: folding, compact forms, LWS everywhere.
    let ws = sip::parse(get("wsinv").bytes).expect("wsinv parses");
    let h = ws.headers();
    assert_eq!(h.cseq().expect("cseq").seq, 9);
    assert_eq!(h.max_forwards().expect("mf"), Some(68));
    assert_eq!(h.vias().expect("vias").len(), 3);
    assert_eq!(h.to().expect("to").tag(), Some("1918181833n"));
    assert_eq!(h.from().expect("from").tag(), Some("98asjd8"));
    // §3.1.2.4: overlarge CSeq is an overflow, not a syntax error.
    let s2 = sip::parse(get("scalar02").bytes).expect("scalar02 parses");
    assert_eq!(s2.headers().cseq(), Err(HeaderError::Overflow("CSeq")));
    // §3.1.2.16: unknown version answered with 505.
    let bv = sip::parse(get("badvers").bytes).expect("badvers parses");
    let err = validate_request(as_request(&bv).expect("request")).expect_err("badvers");
    assert_eq!(err.status_code(), 505);
    // §3.1.2.17: CSeq/method mismatch.
    let mm = sip::parse(get("mismatch01").bytes).expect("parses");
    assert_eq!(
        validate_request(as_request(&mm).expect("request")),
        Err(ParseError::CSeqMethodMismatch)
    );
    // §3.1.2.11: headers in the Request-URI.
    let er = sip::parse(get("escruri").bytes).expect("parses");
    assert_eq!(
        validate_request(as_request(&er).expect("request")),
        Err(ParseError::RequestUriHeaders)
    );
}

#[test]
fn rfc5118_ipv6_torture_corpus() {
    let mut valid = Tally::default();
    let mut failures = Vec::new();
    let mut bad_refused_at = None;
    for case in rfc5118::CASES {
        let wire = case.wire();
        let bytes: &[u8] = &wire;
        let _ = sip::frame(bytes);
        let parsed = sip::parse(bytes);
        match case.expect {
            Expect::ParseOk => {
                let pass = match &parsed {
                    Err(e) => {
                        failures.push(format!("{}: refused: {e}", case.name));
                        false
                    }
                    Ok(msg) => {
                        let mut ok = true;
                        for h in CORE {
                            if present(msg, h) {
                                if let Err(e) = typed_read(msg, h) {
                                    failures.push(format!("{}: typed {h}: {e}", case.name));
                                    ok = false;
                                }
                            }
                        }
                        if let Some(r) = as_request(msg) {
                            if let Err(e) = validate_request(r) {
                                failures.push(format!("{}: validation: {e}", case.name));
                                ok = false;
                            }
                        }
                        assert_round_trip(case.name, msg);
                        ok
                    }
                };
                valid.record(pass);
            }
            _ => {
                // Only `ipv6-bad` (§4.2): an unbracketed IPv6 Request-URI.
                assert_eq!(case.name, "ipv6-bad");
                match &parsed {
                    Err(ParseError::RequestUri(e)) => bad_refused_at = Some(*e),
                    other => failures.push(format!("ipv6-bad: {other:?}")),
                }
            }
        }
    }
    println!(
        "RFC 5118: valid parsed {}/{}; ipv6-bad refused at the Request-URI (start line) level: {:?}",
        valid.ok, valid.total, bad_refused_at
    );
    assert!(
        failures.is_empty(),
        "RFC 5118 failures:\n{}",
        failures.join("\n")
    );
    assert_eq!(valid.total, 11);
    // `sip:2001:db8::10` reads as host `2001` with port `db8::10`, which is not a port.
    assert_eq!(bad_refused_at, Some(UriError::Port));
}

#[test]
fn rfc5118_host_decisions() {
    let get = |n: &str| rfc5118::case(n).unwrap_or_else(|| panic!("{n} missing"));
    let uri_of = |n: &str| match sip::parse(&get(n).wire()) {
        Ok(Message::Request(r)) => r.uri,
        other => panic!("{n}: {other:?}"),
    };
    // §4.3: port inside the brackets is part of the address.
    let amb = uri_of("port-ambiguous");
    let amb = amb.as_sip().expect("sip uri");
    assert_eq!(amb.port, None);
    assert_eq!(amb.host.to_string(), "[2001:db8::10:5070]");
    // §4.4: port outside.
    let un = uri_of("port-unambiguous");
    assert_eq!(un.as_sip().expect("sip uri").port, Some(5070));
    // §4.10: three colons tolerated and equal to the two-colon form.
    assert_eq!(
        uri_of("ipv6-bug-abnf-3-colons"),
        uri_of("ipv6-correct-abnf-2-colons")
    );
    // §4.5: received with and without brackets yields the same address.
    let rcv = |n: &str| {
        sip::parse(&get(n).wire())
            .expect("parses")
            .headers()
            .top_via()
            .expect("via")
            .received_ip()
    };
    assert_eq!(
        rcv("via-received-param-with-delim"),
        rcv("via-received-param-no-delim")
    );
    assert!(rcv("via-received-param-no-delim").is_some());
}
