//! SIP messages: parsing (datagram and stream framing), serialising, builders and validation.

use std::fmt;

use super::error::{HeaderError, Limit, ParseError};
use super::header::{is_token, is_token_char, same_header, Headers, NameAddr};
use super::uri::Uri;

/// Default maximum size of a whole message (64 KiB).
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;
/// Default maximum number of header lines.
pub const MAX_HEADER_COUNT: usize = 128;
/// Default maximum length of one (physical or unfolded) header line.
pub const MAX_LINE_LENGTH: usize = 8 * 1024;
/// Default maximum body size (32 KiB).
pub const MAX_BODY_SIZE: usize = 32 * 1024;

/// Hard limits applied while parsing; exceeding one yields [`ParseError::TooLarge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum message size in bytes (start line + headers + body).
    pub max_message_size: usize,
    /// Maximum number of header lines (after unfolding).
    pub max_header_count: usize,
    /// Maximum length of a physical line and of an unfolded header.
    pub max_line_length: usize,
    /// Maximum body size.
    pub max_body_size: usize,
}

impl Limits {
    /// The defaults (64 KiB / 128 / 8 KiB / 32 KiB).
    pub const DEFAULT: Limits = Limits {
        max_message_size: MAX_MESSAGE_SIZE,
        max_header_count: MAX_HEADER_COUNT,
        max_line_length: MAX_LINE_LENGTH,
        max_body_size: MAX_BODY_SIZE,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// A SIP method. Methods are case-sensitive (RFC 3261 §7.1); unknown ones are kept in `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// OPTIONS
    Options,
    /// REGISTER
    Register,
    /// SUBSCRIBE (RFC 6665)
    Subscribe,
    /// NOTIFY (RFC 6665)
    Notify,
    /// INFO (RFC 6086)
    Info,
    /// UPDATE (RFC 3311)
    Update,
    /// PRACK (RFC 3262)
    Prack,
    /// REFER (RFC 3515)
    Refer,
    /// MESSAGE (RFC 3428)
    Message,
    /// PUBLISH (RFC 3903)
    Publish,
    /// Any other token.
    Other(String),
}

impl Method {
    /// Maps a token to a method without validating it (see [`is_token`]).
    pub fn from_token(s: &str) -> Method {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other.to_owned()),
        }
    }

    /// The method name.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The SIP version this layer speaks.
pub const SIP_VERSION: &str = "SIP/2.0";

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method from the request line.
    pub method: Method,
    /// Request-URI.
    pub uri: Uri,
    /// Version from the request line as written (`SIP/2.0`; anything else fails validation).
    pub version: String,
    /// Headers in order.
    pub headers: Headers,
    /// Body.
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code 100..=699.
    pub status: u16,
    /// Reason phrase (may be empty).
    pub reason: String,
    /// Headers in order.
    pub headers: Headers,
    /// Body.
    pub body: Vec<u8>,
}

/// A request or a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl Message {
    /// The headers of either kind.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    /// The body of either kind.
    pub fn body(&self) -> &[u8] {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }

    /// Serialises the message (see [`Request::to_bytes`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

fn write_headers_and_body(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    for (n, v) in headers.iter() {
        if same_header(n, "Content-Length") {
            continue;
        }
        // A CR or LF smuggled into a hand-built header would split it into two lines (header
        // injection); write it as a space instead.
        let clean = |b: u8| if b == b'\r' || b == b'\n' { b' ' } else { b };
        out.extend(n.bytes().map(clean));
        out.extend_from_slice(b": ");
        out.extend(v.bytes().map(clean));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
}

impl Request {
    /// A request with no headers and an empty body, version `SIP/2.0`.
    pub fn new(method: Method, uri: Uri) -> Self {
        Request {
            method,
            uri,
            version: SIP_VERSION.to_owned(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// Serialises: request line, headers in order (any Content-Length dropped), then a
    /// `Content-Length` computed from the body, blank line, body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(
            format!("{} {} {}\r\n", self.method, self.uri, self.version).as_bytes(),
        );
        write_headers_and_body(&mut out, &self.headers, &self.body);
        out
    }
}

impl Response {
    /// A response with no headers; an empty `reason` is replaced by [`default_reason`].
    pub fn new(status: u16, reason: &str) -> Self {
        Response {
            status,
            reason: if reason.is_empty() {
                default_reason(status).to_owned()
            } else {
                reason.to_owned()
            },
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// A response to `req` (RFC 3261 §8.2.6.2): copies every Via (in order), From, To, Call-ID
    /// and CSeq. An empty `reason` is replaced by [`default_reason`]. Add the To tag with
    /// [`with_to_tag`](Self::with_to_tag).
    pub fn for_request(req: &Request, status: u16, reason: &str) -> Self {
        let mut resp = Response::new(status, reason);
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            for (n, v) in req.headers.iter() {
                if same_header(n, name) {
                    resp.headers.push(name, v);
                }
            }
        }
        resp
    }

    /// Adds `;tag=` to the To header unless it already has one (RFC 3261 §8.2.6.2).
    /// A To header that does not parse is left untouched.
    #[must_use]
    pub fn with_to_tag(mut self, tag: &str) -> Self {
        if let Ok(to) = self.headers.to() {
            if to.tag().is_none() {
                self.headers.set("To", to.with_tag(tag).to_string());
            }
        }
        self
    }

    /// Status class: 1 for provisional, 2 for success, ….
    pub fn class(&self) -> u16 {
        self.status / 100
    }

    /// Whether this is a provisional (1xx) response.
    pub fn is_provisional(&self) -> bool {
        self.status < 200
    }

    /// Serialises like [`Request::to_bytes`].
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(
            format!("{} {} {}\r\n", SIP_VERSION, self.status, self.reason).as_bytes(),
        );
        write_headers_and_body(&mut out, &self.headers, &self.body);
        out
    }
}

/// The RFC 3261 §21 (and common extension) reason phrase for a status code.
pub fn default_reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        199 => "Early Dialog Terminated",
        200 => "OK",
        202 => "Accepted",
        204 => "No Notification",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        412 => "Conditional Request Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        580 => "Precondition Failure",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        s if s < 200 => "Session Progress",
        s if s < 300 => "OK",
        s if s < 400 => "Redirection",
        s if s < 500 => "Client Error",
        s if s < 600 => "Server Error",
        _ => "Global Failure",
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let tail = buf.get(from..)?;
    tail.windows(2).position(|w| w == b"\r\n").map(|p| p + from)
}

/// Number of leading CRLF bytes (keep-alives, RFC 5626 §4.4.1) at the start of `buf`.
pub fn keepalive_len(buf: &[u8]) -> usize {
    let mut n = 0;
    while buf.get(n..n + 2) == Some(b"\r\n") {
        n += 2;
    }
    n
}

/// The head of a message: start line, unfolded headers, and where the body starts.
struct Head {
    start_line: String,
    headers: Headers,
    /// Offset of the first body byte, relative to the start of the input slice.
    body_start: usize,
}

/// Parses the head starting at `buf[0]` (after keep-alives). `Ok(None)` if the blank line that
/// ends the header section has not arrived yet.
fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<Head>, ParseError> {
    let mut pos = 0;
    let mut start_line: Option<String> = None;
    let mut headers = Headers::new();
    let mut current: Option<(String, String)> = None;
    loop {
        let Some(eol) = find_crlf(buf, pos) else {
            // No complete line: check the partial line against the limits so a stream cannot
            // make us wait for ever.
            if buf.len() - pos > limits.max_line_length {
                return Err(ParseError::TooLarge(Limit::LineLength));
            }
            if buf.len() > limits.max_message_size {
                return Err(ParseError::TooLarge(Limit::MessageSize));
            }
            return Ok(None);
        };
        let line = buf.get(pos..eol).unwrap_or(&[]);
        if line.len() > limits.max_line_length {
            return Err(ParseError::TooLarge(Limit::LineLength));
        }
        if line.iter().any(|&b| b == b'\r' || b == b'\n') {
            return Err(ParseError::HeaderSyntax("bare CR or LF"));
        }
        pos = eol + 2;
        if pos > limits.max_message_size {
            return Err(ParseError::TooLarge(Limit::MessageSize));
        }
        let text = String::from_utf8_lossy(line);
        if start_line.is_none() {
            if text.is_empty() {
                return Err(ParseError::StartLine("empty start line"));
            }
            start_line = Some(text.into_owned());
            continue;
        }
        if line.is_empty() {
            if let Some((n, v)) = current.take() {
                headers.push(n, v.trim().to_owned());
            }
            break;
        }
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            // Line folding (RFC 3261 §7.3.1): the fold is equivalent to a single SP.
            let Some((_, v)) = current.as_mut() else {
                return Err(ParseError::HeaderSyntax("continuation line without header"));
            };
            v.push(' ');
            v.push_str(text.trim_start());
            if v.len() > limits.max_line_length {
                return Err(ParseError::TooLarge(Limit::LineLength));
            }
            continue;
        }
        if let Some((n, v)) = current.take() {
            headers.push(n, v.trim().to_owned());
        }
        let (name, value) = text
            .split_once(':')
            .ok_or(ParseError::HeaderSyntax("missing colon"))?;
        let name = name.trim_end_matches([' ', '\t']);
        if !is_token(name) {
            return Err(ParseError::HeaderSyntax("bad header name"));
        }
        if headers.len() >= limits.max_header_count {
            return Err(ParseError::TooLarge(Limit::HeaderCount));
        }
        current = Some((name.to_owned(), value.trim_start().to_owned()));
    }
    let start_line = start_line.ok_or(ParseError::StartLine("missing"))?;
    Ok(Some(Head {
        start_line,
        headers,
        body_start: pos,
    }))
}

/// The single Content-Length of a head, validated as a framing matter (RFC 4475 §3.1.2.2,
/// §3.1.2.3, §3.3.9).
fn content_length(headers: &Headers, limits: &Limits) -> Result<Option<usize>, ParseError> {
    let all = headers.get_all("Content-Length");
    match all.as_slice() {
        [] => Ok(None),
        [v] => {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::Framing("Content-Length not a number"));
            }
            let n: usize = v
                .parse()
                .map_err(|_| ParseError::TooLarge(Limit::BodySize))?;
            if n > limits.max_body_size {
                return Err(ParseError::TooLarge(Limit::BodySize));
            }
            Ok(Some(n))
        }
        _ => Err(ParseError::Framing("Content-Length repeated")),
    }
}

fn is_version(s: &str) -> bool {
    let Some((sip, num)) = s.split_once('/') else {
        return false;
    };
    let Some((major, minor)) = num.split_once('.') else {
        return false;
    };
    let digits = |d: &str| !d.is_empty() && d.len() <= 3 && d.bytes().all(|b| b.is_ascii_digit());
    sip.eq_ignore_ascii_case("SIP") && digits(major) && digits(minor)
}

fn parse_start_line(line: &str, headers: Headers, body: Vec<u8>) -> Result<Message, ParseError> {
    let first = line.split(' ').next().unwrap_or("");
    if first.contains('/') {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        let code = parts.next().unwrap_or("");
        let reason = parts.next().unwrap_or("");
        if !version.eq_ignore_ascii_case(SIP_VERSION) {
            return Err(ParseError::StartLine("unsupported version in status line"));
        }
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::StartLine("status code not three digits"));
        }
        let status: u16 = code
            .parse()
            .map_err(|_| ParseError::StartLine("bad status code"))?;
        if !(100..=699).contains(&status) {
            return Err(ParseError::StartLine("status code out of range"));
        }
        if reason.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return Err(ParseError::StartLine("control character in reason"));
        }
        return Ok(Message::Response(Response {
            status,
            reason: reason.to_owned(),
            headers,
            body,
        }));
    }
    // Request-Line = Method SP Request-URI SP SIP-Version, single spaces (RFC 4475 §3.1.2.9).
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, uri, version] = parts.as_slice() else {
        return Err(ParseError::StartLine(
            "request line needs exactly three elements",
        ));
    };
    if !method.bytes().all(is_token_char) || method.is_empty() {
        return Err(ParseError::StartLine("bad method"));
    }
    if !is_version(version) {
        return Err(ParseError::StartLine("bad SIP version"));
    }
    let uri = Uri::parse(uri).map_err(ParseError::RequestUri)?;
    Ok(Message::Request(Request {
        method: Method::from_token(method),
        uri,
        version: (*version).to_owned(),
        headers,
        body,
    }))
}

/// Parses one datagram with the default [`Limits`]. See [`parse_with`].
pub fn parse(datagram: &[u8]) -> Result<Message, ParseError> {
    parse_with(datagram, &Limits::DEFAULT)
}

/// Parses one datagram (RFC 3261 §18.3 rules).
///
/// Leading CRLFs are skipped. Without `Content-Length` the body is the rest of the datagram; with
/// it, the body is exactly that many bytes: a larger value is a framing error and octets beyond
/// it are discarded. Headers stay unparsed until a typed view is read. Non-UTF-8 octets in the
/// start line or headers are replaced by U+FFFD.
pub fn parse_with(datagram: &[u8], limits: &Limits) -> Result<Message, ParseError> {
    if datagram.len() > limits.max_message_size {
        return Err(ParseError::TooLarge(Limit::MessageSize));
    }
    let skip = keepalive_len(datagram);
    let buf = datagram.get(skip..).unwrap_or(&[]);
    if buf.is_empty() {
        return Err(ParseError::Empty);
    }
    let head = parse_head(buf, limits)?.ok_or(ParseError::Framing(
        "header section not terminated by an empty line",
    ))?;
    let rest = buf.get(head.body_start..).unwrap_or(&[]);
    let body = match content_length(&head.headers, limits)? {
        Some(n) => rest.get(..n).ok_or(ParseError::Framing(
            "Content-Length larger than the datagram",
        ))?,
        None => {
            if rest.len() > limits.max_body_size {
                return Err(ParseError::TooLarge(Limit::BodySize));
            }
            rest
        }
    };
    parse_start_line(&head.start_line, head.headers, body.to_vec())
}

/// Stream framing with the default [`Limits`]. See [`frame_with`].
pub fn frame(buf: &[u8]) -> Result<Option<usize>, ParseError> {
    frame_with(buf, &Limits::DEFAULT)
}

/// Tells how many bytes at the start of `buf` make up the next complete message on a stream
/// transport (RFC 3261 §18.3: `Content-Length` is mandatory), or `Ok(None)` if more data is
/// needed. Leading CRLF keep-alives are counted into the message; strip them first with
/// [`keepalive_len`] if the buffer may hold nothing else. An error means the stream cannot be
/// resynchronised and should be closed.
pub fn frame_with(buf: &[u8], limits: &Limits) -> Result<Option<usize>, ParseError> {
    let skip = keepalive_len(buf);
    let rest = buf.get(skip..).unwrap_or(&[]);
    if rest.is_empty() {
        return Ok(None);
    }
    let Some(head) = parse_head(rest, limits)? else {
        return Ok(None);
    };
    let cl = content_length(&head.headers, limits)?
        .ok_or(ParseError::Framing("Content-Length missing on a stream"))?;
    let total = skip + head.body_start + cl;
    if total > limits.max_message_size + skip {
        return Err(ParseError::TooLarge(Limit::MessageSize));
    }
    Ok((buf.len() >= total).then_some(total))
}

// ---------------------------------------------------------------------------------------------
// Validation

/// Headers that must not appear more than once in a request.
const SINGLE_VALUED: &[&str] = &[
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Max-Forwards",
    "Content-Type",
    "Content-Length",
    "Expires",
];

/// Checks what a UAS needs before acting on a request (answer with
/// [`ParseError::status_code`] on error): version 2.0; no headers in the Request-URI
/// (RFC 3261 §19.1.1); Via, From, To, Call-ID, CSeq present, single where required, and
/// parseable; Max-Forwards parseable if present (absent means 70); CSeq method equal to the
/// request method (RFC 3261 §8.2).
pub fn validate_request(req: &Request) -> Result<(), ParseError> {
    if !req.version.eq_ignore_ascii_case(SIP_VERSION) {
        return Err(ParseError::UnsupportedVersion);
    }
    if let Uri::Sip(u) = &req.uri {
        if !u.headers.is_empty() {
            return Err(ParseError::RequestUriHeaders);
        }
    }
    let h = &req.headers;
    for name in SINGLE_VALUED {
        if h.count(name) > 1 {
            return Err(HeaderError::Duplicate(name).into());
        }
    }
    let vias = h.vias()?;
    if vias.is_empty() {
        return Err(HeaderError::Missing("Via").into());
    }
    let _from: NameAddr = h.from()?;
    let _to: NameAddr = h.to()?;
    h.call_id()?;
    h.max_forwards()?;
    let cseq = h.cseq()?;
    if cseq.method != req.method {
        return Err(ParseError::CSeqMethodMismatch);
    }
    Ok(())
}

/// Checks what a UAC needs from a response: Via, From, To, Call-ID, CSeq present and parseable.
pub fn validate_response(resp: &Response) -> Result<(), ParseError> {
    let h = &resp.headers;
    if h.vias()?.is_empty() {
        return Err(HeaderError::Missing("Via").into());
    }
    h.from()?;
    h.to()?;
    h.call_id()?;
    h.cseq()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:user@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n\
Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKa, SIP/2.0/TCP 192.0.2.10;branch=z9hG4bKb\r\n\
Max-Forwards: 70\r\n\
To: <sip:user@example.com>\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 63104 OPTIONS\r\n\
Content-Length: 0\r\n\r\n";

    fn req(bytes: &[u8]) -> Request {
        match parse(bytes) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_and_validates_options() {
        let r = req(OPTIONS);
        assert_eq!(r.method, Method::Options);
        assert_eq!(r.headers.vias().unwrap().len(), 3);
        assert_eq!(r.headers.cseq().unwrap().seq, 63104);
        validate_request(&r).unwrap();
    }

    #[test]
    fn serialise_round_trips() {
        let mut r = req(OPTIONS);
        r.body = b"hello".to_vec();
        let bytes = r.to_bytes();
        let again = req(&bytes);
        assert_eq!(again.body, b"hello");
        assert_eq!(again.headers.content_length().unwrap(), Some(5));
        assert_eq!(again.headers.count("Content-Length"), 1);
        assert_eq!(again.method, r.method);
        assert_eq!(again.uri, r.uri);
        // Header order preserved.
        let names: Vec<&str> = again.headers.iter().map(|(n, _)| n).collect();
        assert_eq!(names.first(), Some(&"Via"));
        assert_eq!(names.last(), Some(&"Content-Length"));
    }

    #[test]
    fn rfc3261_8_2_6_2_response_copies_headers_and_adds_tag() {
        let r = req(OPTIONS);
        let resp = Response::for_request(&r, 200, "").with_to_tag("abc");
        assert_eq!(resp.reason, "OK");
        assert_eq!(resp.headers.get_all("Via").len(), 2);
        assert_eq!(resp.headers.vias().unwrap().len(), 3);
        assert_eq!(resp.headers.to().unwrap().tag(), Some("abc"));
        assert_eq!(resp.headers.from().unwrap().tag(), Some("1928301774"));
        assert_eq!(
            resp.headers.call_id().unwrap().as_str(),
            "a84b4c76e66710@pc33.example.com"
        );
        let bytes = resp.to_bytes();
        let Ok(Message::Response(p)) = parse(&bytes) else {
            panic!("response did not parse")
        };
        assert_eq!(p.status, 200);
        validate_response(&p).unwrap();
        // An existing tag is kept.
        let again = p.clone().with_to_tag("other");
        assert_eq!(again.headers.to().unwrap().tag(), Some("abc"));
    }

    #[test]
    fn rfc3261_8_2_validation_faults() {
        let mut r = req(OPTIONS);
        r.headers.set("CSeq", "1 INVITE");
        assert_eq!(validate_request(&r), Err(ParseError::CSeqMethodMismatch));
        let mut r = req(OPTIONS);
        r.headers.remove("Call-ID");
        assert_eq!(
            validate_request(&r),
            Err(ParseError::Header(HeaderError::Missing("Call-ID")))
        );
        let mut r = req(OPTIONS);
        r.headers.push("f", "<sip:x@y>;tag=2");
        assert_eq!(
            validate_request(&r),
            Err(ParseError::Header(HeaderError::Duplicate("From")))
        );
        let mut r = req(OPTIONS);
        r.version = "SIP/7.0".into();
        assert_eq!(validate_request(&r).unwrap_err().status_code(), 505);
        let mut r = req(OPTIONS);
        r.headers.remove("Max-Forwards");
        assert!(validate_request(&r).is_ok(), "Max-Forwards is optional");
    }

    #[test]
    fn rfc3261_18_3_udp_body_rules() {
        let head = "MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n";
        // No Content-Length: the rest is the body.
        let m = parse(format!("{head}\r\nhello").as_bytes()).unwrap();
        assert_eq!(m.body(), b"hello");
        // Shorter Content-Length: extra octets discarded.
        let m = parse(format!("{head}l: 2\r\n\r\nhello").as_bytes()).unwrap();
        assert_eq!(m.body(), b"he");
        // Larger: error.
        assert!(matches!(
            parse(format!("{head}Content-Length: 6\r\n\r\nhello").as_bytes()),
            Err(ParseError::Framing(_))
        ));
        for bad in ["-1", "abc", "", "1 2"] {
            assert!(
                matches!(
                    parse(format!("{head}Content-Length: {bad}\r\n\r\nhello").as_bytes()),
                    Err(ParseError::Framing(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse(format!("{head}Content-Length: 1\r\nl: 1\r\n\r\nhello").as_bytes()),
            Err(ParseError::Framing(_))
        ));
    }

    #[test]
    fn leading_crlf_and_keepalive() {
        let mut buf = b"\r\n\r\n".to_vec();
        buf.extend_from_slice(OPTIONS);
        assert!(parse(&buf).is_ok());
        assert_eq!(parse(b"\r\n\r\n"), Err(ParseError::Empty));
        assert_eq!(parse(b""), Err(ParseError::Empty));
        assert_eq!(keepalive_len(b"\r\n\r\nX"), 4);
        assert_eq!(frame(b"\r\n\r\n"), Ok(None));
    }

    #[test]
    fn rfc3261_18_3_stream_framing() {
        let mut stream = OPTIONS.to_vec();
        let second = b"BYE sip:a@b SIP/2.0\r\nContent-Length: 3\r\n\r\nabc";
        stream.extend_from_slice(second);
        assert_eq!(frame(&stream), Ok(Some(OPTIONS.len())));
        let rest = stream.get(OPTIONS.len()..).unwrap();
        assert_eq!(frame(rest), Ok(Some(second.len())));
        // Every strict prefix is incomplete.
        for cut in 0..second.len() {
            assert_eq!(frame(second.get(..cut).unwrap()), Ok(None), "cut {cut}");
        }
        assert!(matches!(
            frame(b"BYE sip:a@b SIP/2.0\r\nVia: x\r\n\r\n"),
            Err(ParseError::Framing(_))
        ));
        assert_eq!(
            frame(b"BYE sip:a@b SIP/2.0\r\nContent-Length: 40000\r\n\r\n"),
            Err(ParseError::TooLarge(Limit::BodySize))
        );
    }

    #[test]
    fn limit_message_size_70k_datagram() {
        let mut m = b"MESSAGE sip:a@b SIP/2.0\r\n\r\n".to_vec();
        m.resize(70 * 1024, b'x');
        assert_eq!(parse(&m), Err(ParseError::TooLarge(Limit::MessageSize)));
        // Same on a stream that never ends its header section.
        let mut s = b"MESSAGE sip:a@b SIP/2.0\r\n".to_vec();
        for i in 0..2000 {
            s.extend_from_slice(format!("X-{i}: {}\r\n", "y".repeat(30)).as_bytes());
        }
        assert!(matches!(frame(&s), Err(ParseError::TooLarge(_))));
    }

    #[test]
    fn limit_body_size() {
        let mut m = b"MESSAGE sip:a@b SIP/2.0\r\n\r\n".to_vec();
        m.resize(m.len() + MAX_BODY_SIZE + 1, b'x');
        assert_eq!(parse(&m), Err(ParseError::TooLarge(Limit::BodySize)));
        let big = format!(
            "MESSAGE sip:a@b SIP/2.0\r\nContent-Length: {}\r\n\r\n",
            u64::MAX
        );
        assert_eq!(
            parse(big.as_bytes()),
            Err(ParseError::TooLarge(Limit::BodySize))
        );
        let huge = "MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 99999999999999999999999999\r\n\r\n";
        assert_eq!(
            parse(huge.as_bytes()),
            Err(ParseError::TooLarge(Limit::BodySize))
        );
    }

    #[test]
    fn limit_header_count_200_headers() {
        let mut m = String::from("OPTIONS sip:a@b SIP/2.0\r\n");
        for i in 0..200 {
            m.push_str(&format!("X-H{i}: v\r\n"));
        }
        m.push_str("\r\n");
        assert_eq!(
            parse(m.as_bytes()),
            Err(ParseError::TooLarge(Limit::HeaderCount))
        );
        let custom = Limits {
            max_header_count: 300,
            ..Limits::DEFAULT
        };
        assert!(parse_with(m.as_bytes(), &custom).is_ok());
    }

    #[test]
    fn limit_line_length_10k_line() {
        let m = format!(
            "OPTIONS sip:a@b SIP/2.0\r\nSubject: {}\r\n\r\n",
            "a".repeat(10 * 1024)
        );
        assert_eq!(
            parse(m.as_bytes()),
            Err(ParseError::TooLarge(Limit::LineLength))
        );
        // Folding cannot be used to dodge the limit.
        let mut folded = String::from("OPTIONS sip:a@b SIP/2.0\r\nSubject: x\r\n");
        for _ in 0..20 {
            folded.push_str(&format!(" {}\r\n", "a".repeat(600)));
        }
        folded.push_str("\r\n");
        assert_eq!(
            parse(folded.as_bytes()),
            Err(ParseError::TooLarge(Limit::LineLength))
        );
        // Unterminated long line on a stream.
        let s = format!(
            "OPTIONS sip:a@b SIP/2.0\r\nSubject: {}",
            "a".repeat(10 * 1024)
        );
        assert_eq!(
            frame(s.as_bytes()),
            Err(ParseError::TooLarge(Limit::LineLength))
        );
    }

    #[test]
    fn truncated_messages_never_parse_or_panic() {
        for cut in 0..OPTIONS.len() {
            let part = OPTIONS.get(..cut).unwrap();
            assert!(parse(part).is_err(), "prefix of {cut} bytes parsed");
            assert_eq!(frame(part).ok().flatten(), None);
        }
    }

    #[test]
    fn garbage_never_panics() {
        // Small deterministic xorshift generator; no dependency needed.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"SIP/2.0 INVITE sip:@;=<>\",:\r\n \t%[]?&0123456789abcxyz";
        for round in 0..3000 {
            let len = (next() % 600) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if round % 2 == 0 {
                        r as u8
                    } else {
                        alphabet[(r as usize) % alphabet.len()]
                    }
                })
                .collect();
            if let Ok(m) = parse(&bytes) {
                exercise(&m);
            }
            let _ = frame(&bytes);
        }
        // Mutations of a valid message.
        for round in 0..3000 {
            let mut m = OPTIONS.to_vec();
            for _ in 0..(1 + round % 4) {
                let i = (next() as usize) % m.len();
                m[i] = alphabet[(next() as usize) % alphabet.len()];
            }
            if let Ok(msg) = parse(&m) {
                exercise(&msg);
            }
        }
    }

    fn exercise(m: &Message) {
        let h = m.headers();
        let _ = h.vias();
        let _ = h.from();
        let _ = h.to();
        let _ = h.contacts();
        let _ = h.cseq();
        let _ = h.call_id();
        let _ = h.content_type();
        let _ = h.history_info();
        let _ = h.diversions();
        if let Message::Request(r) = m {
            let _ = validate_request(r);
        }
        let roomy = Limits {
            max_message_size: 2 * MAX_MESSAGE_SIZE,
            max_line_length: 2 * MAX_LINE_LENGTH,
            ..Limits::DEFAULT
        };
        let again = parse_with(&m.to_bytes(), &roomy).expect("serialised message re-parses");
        assert_eq!(again.body(), m.body());
    }

    #[test]
    fn serialising_neutralises_crlf_in_values() {
        let mut r = Request::new(Method::Options, Uri::parse("sip:a@b").unwrap());
        r.headers.push("Subject", "hi\r\nX-Injected: 1");
        let back = parse(&r.to_bytes()).unwrap();
        assert_eq!(back.headers().count("X-Injected"), 0);
        assert_eq!(back.headers().get("Subject"), Some("hi  X-Injected: 1"));
    }

    #[test]
    fn start_line_faults() {
        for bad in [
            "INVITE  sip:a@b SIP/2.0",
            "INVITE sip:a@b SIP/2.0 ",
            "INVITE <sip:a@b> SIP/2.0",
            "INVITE sip:a@b; lr SIP/2.0",
            "INVITE sip:a@b",
            "INVITE sip:a@b SIP/2",
            "SIP/2.0 4294967301 big",
            "SIP/2.0 99 low",
            "SIP/2.0 700 high",
            "SIP/2.0 20 short",
            "SIP/3.0 200 OK",
            "IN(VITE sip:a@b SIP/2.0",
        ] {
            let m = format!("{bad}\r\nContent-Length: 0\r\n\r\n");
            assert!(parse(m.as_bytes()).is_err(), "{bad:?}");
        }
        let ok = parse(b"SIP/2.0 100 \r\nContent-Length: 0\r\n\r\n").unwrap();
        assert!(matches!(ok, Message::Response(r) if r.reason.is_empty()));
    }

    #[test]
    fn header_line_faults() {
        for bad in [
            "OPTIONS sip:a@b SIP/2.0\r\nFoobar roobar\r\n\r\n",
            "OPTIONS sip:a@b SIP/2.0\r\n : v\r\n\r\n",
            "OPTIONS sip:a@b SIP/2.0\r\n folded\r\n\r\n",
            "OPTIONS sip:a@b SIP/2.0\r\nA\rB: c\r\n\r\n",
            "OPTIONS sip:a@b SIP/2.0\r\nA: b\nc\r\n\r\n",
            "OPTIONS sip:a@b SIP/2.0\r\nBad Name: c\r\n\r\n",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn method_mapping_is_case_sensitive() {
        assert_eq!(Method::from_token("INVITE"), Method::Invite);
        assert_eq!(Method::from_token("invite"), Method::Other("invite".into()));
        assert_eq!(Method::Other("FOO".into()).to_string(), "FOO");
        assert_eq!(default_reason(486), "Busy Here");
        assert_eq!(default_reason(299), "OK");
    }
}
