//! Header list and typed header views.
//!
//! [`Headers`] keeps every header line in arrival order with its name as written; lookups are
//! case-insensitive and treat compact forms (`v`, `f`, `t`, `i`, `m`, `l`, `c` …) as their full
//! names. Typed views parse on read and return [`HeaderError`], never panic.

use std::fmt;
use std::str::FromStr;

use super::error::HeaderError;
use super::message::Method;
use super::uri::{parse_hostport, Host, Params, Uri};

/// Compact forms (RFC 3261 §7.3.3 and extensions) and their full names.
const COMPACT: &[(&str, &str)] = &[
    ("a", "Accept-Contact"),
    ("b", "Referred-By"),
    ("c", "Content-Type"),
    ("d", "Request-Disposition"),
    ("e", "Content-Encoding"),
    ("f", "From"),
    ("i", "Call-ID"),
    ("j", "Reject-Contact"),
    ("k", "Supported"),
    ("l", "Content-Length"),
    ("m", "Contact"),
    ("n", "Identity-Info"),
    ("o", "Event"),
    ("r", "Refer-To"),
    ("s", "Subject"),
    ("t", "To"),
    ("u", "Allow-Events"),
    ("v", "Via"),
    ("x", "Session-Expires"),
    ("y", "Identity"),
];

/// The full name for a compact form (`"v"` → `"Via"`); other names are returned unchanged.
pub fn expand_compact(name: &str) -> &str {
    if name.len() == 1 {
        for (short, long) in COMPACT {
            if short.eq_ignore_ascii_case(name) {
                return long;
            }
        }
    }
    name
}

/// Whether two header names denote the same header (case-insensitive, compact-aware).
pub fn same_header(a: &str, b: &str) -> bool {
    expand_compact(a).eq_ignore_ascii_case(expand_compact(b))
}

/// RFC 3261 `token` character.
pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// Whether `s` is a non-empty RFC 3261 token.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Splits a comma-separated header value into its elements, respecting quoted strings and
/// `<...>`. Elements are trimmed; empty elements are kept so typed parsers can reject them.
pub fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let b = value.as_bytes();
    let mut start = 0;
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if in_quotes {
            match c {
                b'\\' => i += 1,
                b'"' => in_quotes = false,
                _ => {}
            }
        } else {
            match c {
                b'"' => in_quotes = true,
                b'<' => in_angle = true,
                b'>' => in_angle = false,
                b',' if !in_angle => {
                    out.push(value.get(start..i).unwrap_or("").trim());
                    start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    out.push(value.get(start..).unwrap_or("").trim());
    out
}

/// Minimal byte cursor over a header value.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }
    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or("")
    }
    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }
    /// Reads a quoted string starting at `"`; returns the raw text including quotes.
    fn take_quoted(&mut self) -> Result<&'a str, HeaderError> {
        let start = self.pos;
        if !self.eat(b'"') {
            return Err(HeaderError::invalid("quoted-string", "expected quote"));
        }
        loop {
            match self.peek() {
                None => return Err(HeaderError::invalid("quoted-string", "unterminated quote")),
                Some(b'\\') => self.pos += 2,
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(_) => self.pos += 1,
            }
        }
        if self.pos > self.s.len() {
            return Err(HeaderError::invalid("quoted-string", "unterminated quote"));
        }
        Ok(self.s.get(start..self.pos).unwrap_or(""))
    }
}

/// Removes the quotes and backslash escapes of a quoted string (input includes the quotes).
pub fn unquote(raw: &str) -> String {
    let inner = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(raw);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes `s` as a quoted string, escaping `"` and `\`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn is_param_value_char(b: u8) -> bool {
    is_token_char(b) || matches!(b, b':' | b'[' | b']')
}

/// Parses `*( SEMI generic-param )` with LWS allowed around `;` and `=`; the cursor must be at
/// the first `;` or the end. Consumes the rest of the input.
fn parse_params(c: &mut Cursor<'_>, header: &'static str) -> Result<Params, HeaderError> {
    let mut params = Params::new();
    c.skip_ws();
    while !c.at_end() {
        if !c.eat(b';') {
            return Err(HeaderError::invalid(header, "junk after value"));
        }
        c.skip_ws();
        let name = c.take_while(is_token_char);
        if name.is_empty() {
            return Err(HeaderError::invalid(header, "empty parameter"));
        }
        c.skip_ws();
        let value = if c.eat(b'=') {
            c.skip_ws();
            let v = if c.peek() == Some(b'"') {
                c.take_quoted().map_err(|e| e.in_header(header))?
            } else {
                c.take_while(is_param_value_char)
            };
            if v.is_empty() {
                return Err(HeaderError::invalid(header, "empty parameter value"));
            }
            Some(v)
        } else {
            None
        };
        params.push(name, value);
        c.skip_ws();
    }
    Ok(params)
}

fn parse_u32(s: &str, header: &'static str) -> Result<u32, HeaderError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeaderError::invalid(header, "not a number"));
    }
    s.parse().map_err(|_| HeaderError::Overflow(header))
}

/// The ordered header list of a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// An empty list.
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// Value of the first header called `name` (compact forms match their full names).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| same_header(n, name))
            .map(|(_, v)| v.as_str())
    }

    /// Values of every header line called `name`, in order (not split at commas).
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| same_header(n, name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Every element of a comma-separated list header across all its lines (Via, Contact,
    /// Route, Record-Route, …), split with [`split_list`].
    pub fn get_list(&self, name: &str) -> Vec<&str> {
        self.get_all(name)
            .into_iter()
            .flat_map(split_list)
            .collect()
    }

    /// Number of header lines called `name`.
    pub fn count(&self, name: &str) -> usize {
        self.0.iter().filter(|(n, _)| same_header(n, name)).count()
    }

    /// Appends a header line.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// Inserts a header line before all others (e.g. a new top Via).
    pub fn push_front(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(0, (name.into(), value.into()));
    }

    /// Replaces all lines called `name` by one line, at the position of the first (or at the end).
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.0.iter().position(|(n, _)| same_header(n, &name)) {
            Some(pos) => {
                self.remove(&name);
                self.0.insert(pos, (name, value));
            }
            None => self.0.push((name, value)),
        }
    }

    /// Removes every line called `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !same_header(n, name));
    }

    /// Iterates `(name as written, value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The only line called `name`: `Missing` if none, `Duplicate` if several.
    pub fn single(&self, name: &'static str) -> Result<&str, HeaderError> {
        self.opt_single(name)?.ok_or(HeaderError::Missing(name))
    }

    /// Like [`single`](Self::single) but absent is `Ok(None)`.
    pub fn opt_single(&self, name: &'static str) -> Result<Option<&str>, HeaderError> {
        let mut it = self.0.iter().filter(|(n, _)| same_header(n, name));
        let first = it.next().map(|(_, v)| v.as_str());
        if it.next().is_some() {
            return Err(HeaderError::Duplicate(name));
        }
        Ok(first)
    }

    fn list_of<T>(
        &self,
        name: &'static str,
        f: impl Fn(&str) -> Result<T, HeaderError>,
    ) -> Result<Vec<T>, HeaderError> {
        self.get_list(name)
            .into_iter()
            .map(|v| f(v).map_err(|e| e.in_header(name)))
            .collect()
    }

    /// Every Via value, top first (empty if there is none).
    pub fn vias(&self) -> Result<Vec<Via>, HeaderError> {
        self.list_of("Via", Via::parse)
    }

    /// The topmost Via.
    pub fn top_via(&self) -> Result<Via, HeaderError> {
        let first = self
            .get_list("Via")
            .into_iter()
            .next()
            .ok_or(HeaderError::Missing("Via"))?;
        Via::parse(first)
    }

    /// The From header.
    pub fn from(&self) -> Result<NameAddr, HeaderError> {
        NameAddr::parse(self.single("From")?).map_err(|e| e.in_header("From"))
    }

    /// The To header.
    pub fn to(&self) -> Result<NameAddr, HeaderError> {
        NameAddr::parse(self.single("To")?).map_err(|e| e.in_header("To"))
    }

    /// Every Contact value (a `*` wildcard is an error here; see [`Self::contact_is_wildcard`]).
    pub fn contacts(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.list_of("Contact", NameAddr::parse)
    }

    /// Whether the Contact header is the REGISTER wildcard `*`.
    pub fn contact_is_wildcard(&self) -> bool {
        self.get_list("Contact").as_slice() == ["*"]
    }

    /// Every Route value.
    pub fn routes(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.list_of("Route", NameAddr::parse)
    }

    /// Every Record-Route value.
    pub fn record_routes(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.list_of("Record-Route", NameAddr::parse)
    }

    /// Every Diversion entry (RFC 5806), most recent first.
    pub fn diversions(&self) -> Result<Vec<Diversion>, HeaderError> {
        self.list_of("Diversion", Diversion::parse)
    }

    /// Every History-Info entry (RFC 7044), in header order.
    pub fn history_info(&self) -> Result<Vec<HistoryInfo>, HeaderError> {
        self.list_of("History-Info", HistoryInfo::parse)
    }

    /// The CSeq header.
    pub fn cseq(&self) -> Result<CSeq, HeaderError> {
        CSeq::parse(self.single("CSeq")?)
    }

    /// The Call-ID header.
    pub fn call_id(&self) -> Result<CallId, HeaderError> {
        CallId::parse(self.single("Call-ID")?)
    }

    /// Max-Forwards, if present (RFC 3261 §8.1.1.6 default when absent: 70).
    pub fn max_forwards(&self) -> Result<Option<u32>, HeaderError> {
        self.opt_single("Max-Forwards")?
            .map(|v| parse_u32(v, "Max-Forwards"))
            .transpose()
    }

    /// Content-Length, if present.
    pub fn content_length(&self) -> Result<Option<u32>, HeaderError> {
        self.opt_single("Content-Length")?
            .map(|v| parse_u32(v, "Content-Length"))
            .transpose()
    }

    /// Content-Type, if present.
    pub fn content_type(&self) -> Result<Option<ContentType>, HeaderError> {
        self.opt_single("Content-Type")?
            .map(ContentType::parse)
            .transpose()
    }

    /// Expires (delta-seconds), if present.
    pub fn expires(&self) -> Result<Option<u32>, HeaderError> {
        self.opt_single("Expires")?
            .map(|v| parse_u32(v, "Expires"))
            .transpose()
    }

    /// Retry-After, if present.
    pub fn retry_after(&self) -> Result<Option<RetryAfter>, HeaderError> {
        self.opt_single("Retry-After")?
            .map(RetryAfter::parse)
            .transpose()
    }

    /// Date, if present.
    pub fn date(&self) -> Result<Option<SipDate>, HeaderError> {
        self.opt_single("Date")?.map(SipDate::parse).transpose()
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = (&'a str, &'a str);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a str, &'a str),
    >;
    fn into_iter(self) -> Self::IntoIter {
        fn pair(p: &(String, String)) -> (&str, &str) {
            (p.0.as_str(), p.1.as_str())
        }
        self.0.iter().map(pair)
    }
}

/// A Via header value (RFC 3261 §20.42).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Protocol name and version, normally `SIP/2.0`.
    pub protocol: String,
    /// Transport as written (`UDP`, `TCP`, `TLS`, `SCTP`, `WS`, …).
    pub transport: String,
    /// sent-by host.
    pub host: Host,
    /// sent-by port.
    pub port: Option<u16>,
    /// All parameters in order, including `branch`, `received`, `rport`.
    pub params: Params,
}

impl Via {
    /// A Via `SIP/2.0/{transport} {host}[:port];branch={branch}`.
    pub fn new(transport: &str, host: Host, port: Option<u16>, branch: &str) -> Self {
        let mut params = Params::new();
        params.push("branch", Some(branch));
        Via {
            protocol: "SIP/2.0".to_owned(),
            transport: transport.to_owned(),
            host,
            port,
            params,
        }
    }

    /// Parses one Via element (no commas).
    pub fn parse(s: &str) -> Result<Via, HeaderError> {
        const H: &str = "Via";
        let mut c = Cursor::new(s.trim());
        let name = c.take_while(is_token_char);
        c.skip_ws();
        if name.is_empty() || !c.eat(b'/') {
            return Err(HeaderError::invalid(H, "bad sent-protocol"));
        }
        c.skip_ws();
        let version = c.take_while(is_token_char);
        c.skip_ws();
        if version.is_empty() || !c.eat(b'/') {
            return Err(HeaderError::invalid(H, "bad sent-protocol"));
        }
        c.skip_ws();
        let transport = c.take_while(is_token_char);
        if transport.is_empty() || !c.peek().is_some_and(is_ws) {
            return Err(HeaderError::invalid(H, "bad transport"));
        }
        c.skip_ws();
        let sent_by = c.take_while(|b| !is_ws(b) && b != b';' && b != b',');
        let (host, port) =
            parse_hostport(sent_by).map_err(|error| HeaderError::Uri { header: H, error })?;
        let params = parse_params(&mut c, H)?;
        let via = Via {
            protocol: format!("{name}/{version}"),
            transport: transport.to_owned(),
            host,
            port,
            params,
        };
        if let Some(Some(v)) = via
            .params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("rport"))
            .map(|(_, v)| v)
        {
            if v.parse::<u16>().is_err() {
                return Err(HeaderError::invalid(H, "bad rport"));
            }
        }
        if via.params.contains("branch") && via.branch().is_none() {
            return Err(HeaderError::invalid(H, "empty branch"));
        }
        Ok(via)
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch")
    }

    /// Whether the branch carries the RFC 3261 magic cookie `z9hG4bK`.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| b.starts_with("z9hG4bK"))
    }

    /// The `received` parameter as written (brackets, if any, kept; RFC 5118 §4.5).
    pub fn received(&self) -> Option<&str> {
        self.params.get("received")
    }

    /// `received` as an address, accepting IPv6 with or without brackets.
    pub fn received_ip(&self) -> Option<std::net::IpAddr> {
        let r = self.received()?;
        let r = r
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .unwrap_or(r);
        r.parse().ok()
    }

    /// `rport`: `None` absent, `Some(None)` present without value (RFC 3581 request),
    /// `Some(Some(port))` filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("rport"))
            .map(|(_, v)| v.and_then(|v| v.parse().ok()))
    }

    /// `sent-by` as `host[:port]`.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.to_string(),
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} {}{}",
            self.protocol,
            self.transport,
            self.sent_by(),
            self.params
        )
    }
}

impl FromStr for Via {
    type Err = HeaderError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Via::parse(s)
    }
}

/// `[display-name] <uri> *(;param)` or `addr-spec *(;param)` — From, To, Contact, Route,
/// Record-Route, Diversion, History-Info (RFC 3261 §20.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, unquoted and unescaped.
    pub display_name: Option<String>,
    /// The address.
    pub uri: Uri,
    /// Header parameters (`tag`, `expires`, `q`, …), as written.
    pub params: Params,
}

impl NameAddr {
    /// `<uri>` with no display name or parameters.
    pub fn new(uri: Uri) -> Self {
        NameAddr {
            display_name: None,
            uri,
            params: Params::new(),
        }
    }

    /// Parses one element (no top-level commas).
    pub fn parse(s: &str) -> Result<NameAddr, HeaderError> {
        const H: &str = "name-addr";
        let s = s.trim();
        let mut c = Cursor::new(s);
        let display_name;
        let bracketed;
        if c.peek() == Some(b'"') {
            let raw = c.take_quoted()?;
            display_name = Some(unquote(raw));
            c.skip_ws();
            if c.peek() != Some(b'<') {
                return Err(HeaderError::invalid(H, "expected < after display name"));
            }
            bracketed = true;
        } else {
            let tokens = c.take_while(|b| is_token_char(b) || is_ws(b));
            if c.peek() == Some(b'<') {
                let t = tokens.trim();
                display_name = (!t.is_empty()).then(|| t.to_owned());
                bracketed = true;
            } else {
                c.pos = 0;
                display_name = None;
                bracketed = false;
            }
        }
        let uri_text = if bracketed {
            c.eat(b'<');
            let inner = c.take_while(|b| b != b'>');
            if !c.eat(b'>') {
                return Err(HeaderError::invalid(H, "missing >"));
            }
            inner
        } else {
            let u = c.take_while(|b| !is_ws(b) && b != b';' && b != b',');
            if u.contains('?') {
                // RFC 3261 §20: a URI with headers must be enclosed in <>.
                return Err(HeaderError::invalid(H, "URI with ? outside <>"));
            }
            u
        };
        let uri = Uri::parse(uri_text).map_err(|error| HeaderError::Uri { header: H, error })?;
        let params = parse_params(&mut c, H)?;
        Ok(NameAddr {
            display_name,
            uri,
            params,
        })
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag")
    }

    /// Sets (replaces) the `tag` parameter.
    pub fn set_tag(&mut self, tag: &str) {
        self.params.set("tag", Some(tag));
    }

    /// Builder form of [`set_tag`](Self::set_tag).
    #[must_use]
    pub fn with_tag(mut self, tag: &str) -> Self {
        self.set_tag(tag);
        self
    }

    /// Builder: sets the display name.
    #[must_use]
    pub fn with_display_name(mut self, name: &str) -> Self {
        self.display_name = Some(name.to_owned());
        self
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display_name {
            write!(f, "{} ", quote(d))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

impl FromStr for NameAddr {
    type Err = HeaderError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NameAddr::parse(s)
    }
}

/// A History-Info entry (RFC 7044 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryInfo {
    /// The entry (targeted-to URI with its header parameters).
    pub addr: NameAddr,
    /// The `index` header parameter, e.g. `1.1.2`.
    pub index: Option<String>,
    /// The `cause` URI parameter (RFC 4458), e.g. 302 or 486.
    pub cause: Option<u16>,
}

impl HistoryInfo {
    /// Parses one History-Info element.
    pub fn parse(s: &str) -> Result<HistoryInfo, HeaderError> {
        const H: &str = "History-Info";
        let addr = NameAddr::parse(s).map_err(|e| e.in_header(H))?;
        let index = addr.params.get("index").map(str::to_owned);
        if let Some(i) = &index {
            if i.split('.')
                .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(HeaderError::invalid(H, "bad index"));
            }
        }
        let cause = match addr.uri.params().and_then(|p| p.get("cause")) {
            None => None,
            Some(c) => Some(
                c.parse::<u16>()
                    .map_err(|_| HeaderError::invalid(H, "bad cause"))?,
            ),
        };
        Ok(HistoryInfo { addr, index, cause })
    }

    /// Nesting depth of the index (`1.1.2` → 3).
    pub fn depth(&self) -> usize {
        self.index.as_deref().map_or(0, |i| i.split('.').count())
    }
}

/// A Diversion entry (RFC 5806).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diversion {
    /// The diverting party.
    pub addr: NameAddr,
    /// The `reason` parameter, unquoted (`unconditional`, `user-busy`, `no-answer`, …).
    pub reason: Option<String>,
    /// The `counter` parameter.
    pub counter: Option<u32>,
}

impl Diversion {
    /// Parses one Diversion element.
    pub fn parse(s: &str) -> Result<Diversion, HeaderError> {
        const H: &str = "Diversion";
        let addr = NameAddr::parse(s).map_err(|e| e.in_header(H))?;
        let reason = addr.params.get("reason").map(unquote);
        let counter = addr
            .params
            .get("counter")
            .map(|c| parse_u32(c, H))
            .transpose()?;
        Ok(Diversion {
            addr,
            reason,
            counter,
        })
    }
}

/// The CSeq header (RFC 3261 §20.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number (must fit 32 bits).
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`.
    pub fn parse(s: &str) -> Result<CSeq, HeaderError> {
        const H: &str = "CSeq";
        let mut c = Cursor::new(s.trim());
        let digits = c.take_while(|b| b.is_ascii_digit());
        if !c.peek().is_some_and(is_ws) {
            return Err(HeaderError::invalid(H, "expected number and method"));
        }
        let seq = parse_u32(digits, H)?;
        c.skip_ws();
        let method = c.rest();
        if !is_token(method) {
            return Err(HeaderError::invalid(H, "bad method"));
        }
        Ok(CSeq {
            seq,
            method: Method::from_token(method),
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

impl FromStr for CSeq {
    type Err = HeaderError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CSeq::parse(s)
    }
}

/// A Call-ID (RFC 3261 §20.8): `word ["@" word]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub String);

impl CallId {
    /// Parses and validates a Call-ID value.
    pub fn parse(s: &str) -> Result<CallId, HeaderError> {
        let s = s.trim();
        let word = |w: &str| {
            !w.is_empty()
                && w.bytes().all(|b| {
                    is_token_char(b)
                        || matches!(
                            b,
                            b'(' | b')'
                                | b'<'
                                | b'>'
                                | b':'
                                | b'\\'
                                | b'"'
                                | b'/'
                                | b'['
                                | b']'
                                | b'?'
                                | b'{'
                                | b'}'
                        )
                })
        };
        let ok = match s.split_once('@') {
            Some((a, b)) => word(a) && word(b),
            None => word(s),
        };
        if ok {
            Ok(CallId(s.to_owned()))
        } else {
            Err(HeaderError::invalid("Call-ID", "not word[@word]"))
        }
    }

    /// The Call-ID text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Content-Type value (RFC 3261 §20.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    /// Top-level type as written (`application`).
    pub media_type: String,
    /// Subtype as written (`sdp`).
    pub subtype: String,
    /// Parameters (`boundary`, `charset`, …).
    pub params: Params,
}

impl ContentType {
    /// Parses `type/subtype *(;param)`.
    pub fn parse(s: &str) -> Result<ContentType, HeaderError> {
        const H: &str = "Content-Type";
        let mut c = Cursor::new(s.trim());
        let t = c.take_while(is_token_char);
        c.skip_ws();
        if t.is_empty() || !c.eat(b'/') {
            return Err(HeaderError::invalid(H, "expected type/subtype"));
        }
        c.skip_ws();
        let st = c.take_while(is_token_char);
        if st.is_empty() {
            return Err(HeaderError::invalid(H, "empty subtype"));
        }
        let params = parse_params(&mut c, H)?;
        Ok(ContentType {
            media_type: t.to_owned(),
            subtype: st.to_owned(),
            params,
        })
    }

    /// Whether the type is `ty/sub` (case-insensitive).
    pub fn is(&self, ty: &str, sub: &str) -> bool {
        self.media_type.eq_ignore_ascii_case(ty) && self.subtype.eq_ignore_ascii_case(sub)
    }

    /// Whether this is `application/sdp`.
    pub fn is_sdp(&self) -> bool {
        self.is("application", "sdp")
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{}", self.media_type, self.subtype, self.params)
    }
}

/// Retry-After (RFC 3261 §20.33): `delta-seconds [comment] *(;param)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryAfter {
    /// Seconds to wait.
    pub seconds: u32,
    /// Comment text without the parentheses.
    pub comment: Option<String>,
    /// Parameters (`duration`, …).
    pub params: Params,
}

impl RetryAfter {
    /// Parses a Retry-After value.
    pub fn parse(s: &str) -> Result<RetryAfter, HeaderError> {
        const H: &str = "Retry-After";
        let mut c = Cursor::new(s.trim());
        let seconds = parse_u32(c.take_while(|b| b.is_ascii_digit()), H)?;
        c.skip_ws();
        let mut comment = None;
        if c.eat(b'(') {
            let start = c.pos;
            let mut depth = 1usize;
            while depth > 0 {
                match c.peek() {
                    None => return Err(HeaderError::invalid(H, "unterminated comment")),
                    Some(b'\\') => c.pos += 2,
                    Some(b'(') => {
                        depth += 1;
                        c.pos += 1;
                    }
                    Some(b')') => {
                        depth -= 1;
                        c.pos += 1;
                    }
                    Some(_) => c.pos += 1,
                }
            }
            comment = c.s.get(start..c.pos.saturating_sub(1)).map(str::to_owned);
            if comment.is_none() {
                return Err(HeaderError::invalid(H, "bad comment"));
            }
        }
        let params = parse_params(&mut c, H)?;
        Ok(RetryAfter {
            seconds,
            comment,
            params,
        })
    }
}

/// A Date header value (RFC 3261 §20.17: RFC 1123 date, always GMT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipDate {
    /// Year.
    pub year: u16,
    /// Month 1..=12.
    pub month: u8,
    /// Day 1..=31.
    pub day: u8,
    /// Hour 0..=23.
    pub hour: u8,
    /// Minute 0..=59.
    pub minute: u8,
    /// Second 0..=60.
    pub second: u8,
}

impl SipDate {
    /// Parses `Sat, 13 Nov 2010 23:29:00 GMT`.
    pub fn parse(s: &str) -> Result<SipDate, HeaderError> {
        const H: &str = "Date";
        const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let bad = || HeaderError::invalid(H, "not an RFC 1123 GMT date");
        let (wkday, rest) = s.trim().split_once(',').ok_or_else(bad)?;
        if !DAYS.contains(&wkday) {
            return Err(bad());
        }
        let parts: Vec<&str> = rest.split_ascii_whitespace().collect();
        let [day, mon, year, time, zone] = parts.as_slice() else {
            return Err(bad());
        };
        if *zone != "GMT" || day.len() != 2 || year.len() != 4 {
            return Err(bad());
        }
        let num = |t: &str| -> Result<u16, HeaderError> {
            if t.bytes().all(|b| b.is_ascii_digit()) {
                t.parse().map_err(|_| bad())
            } else {
                Err(bad())
            }
        };
        let month = MONTHS.iter().position(|m| m == mon).ok_or_else(bad)?;
        let tp: Vec<&str> = time.split(':').collect();
        let [hh, mm, ss] = tp.as_slice() else {
            return Err(bad());
        };
        if hh.len() != 2 || mm.len() != 2 || ss.len() != 2 {
            return Err(bad());
        }
        let (d, h, m, sec) = (num(day)?, num(hh)?, num(mm)?, num(ss)?);
        if !(1..=31).contains(&d) || h > 23 || m > 59 || sec > 60 {
            return Err(bad());
        }
        // All values range-checked above, so the narrowing casts are lossless.
        Ok(SipDate {
            year: num(year)?,
            month: (month + 1) as u8,
            day: d as u8,
            hour: h as u8,
            minute: m as u8,
            second: sec as u8,
        })
    }
}

impl fmt::Display for SipDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        // Zeller-style weekday from the civil date (days since 1970-01-01 was a Thursday).
        let days = days_from_civil(i64::from(self.year), self.month.into(), self.day.into());
        const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
        let wd = WD
            .get(usize::try_from(days.rem_euclid(7)).unwrap_or(0))
            .unwrap_or(&"Thu");
        let mon = MONTHS
            .get(usize::from(self.month.saturating_sub(1)))
            .unwrap_or(&"Jan");
        write!(
            f,
            "{wd}, {:02} {mon} {:04} {:02}:{:02}:{:02} GMT",
            self.day, self.year, self.hour, self.minute, self.second
        )
    }
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3261_7_3_3_compact_forms() {
        let mut h = Headers::new();
        h.push("v", "SIP/2.0/UDP a.example.com;branch=z9hG4bK1");
        h.push("VIA", "SIP/2.0/UDP b.example.com;branch=z9hG4bK2");
        h.push("i", "abc@host");
        h.push("l", "0");
        assert_eq!(h.get("Call-ID"), Some("abc@host"));
        assert_eq!(h.get("call-id"), Some("abc@host"));
        assert_eq!(h.get("I"), Some("abc@host"));
        assert_eq!(h.count("via"), 2);
        assert_eq!(h.vias().unwrap().len(), 2);
        h.set("Content-Length", "5");
        assert_eq!(h.get_all("l"), vec!["5"]);
        h.remove("V");
        assert_eq!(h.count("Via"), 0);
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn split_list_respects_quotes_and_brackets() {
        let v = r#""Bell, Alexander" <sip:a@b;x=1,2>;q=0.5, <sip:c@d>, "q\"," <sip:e@f>"#;
        let items = split_list(v);
        assert_eq!(items.len(), 3, "{items:?}");
        assert_eq!(items[2], r#""q\"," <sip:e@f>"#);
        assert_eq!(split_list("a,,b"), vec!["a", "", "b"]);
    }

    #[test]
    fn rfc3261_20_42_via_fields() {
        let v = Via::parse(
            "SIP/2.0/UDP [2001:db8::9:1]:6050;branch=z9hG4bKas3;received=192.0.2.200;rport=5062",
        )
        .unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.port, Some(6050));
        assert_eq!(v.branch(), Some("z9hG4bKas3"));
        assert!(v.has_rfc3261_branch());
        assert_eq!(v.received(), Some("192.0.2.200"));
        assert_eq!(v.rport(), Some(Some(5062)));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP [2001:db8::9:1]:6050;branch=z9hG4bKas3;received=192.0.2.200;rport=5062"
        );
        let w =
            Via::parse("SIP  / 2.0  / TCP     spindle.example.com   ;  branch  =   z9hG4bK9ikj8")
                .unwrap();
        assert_eq!(w.branch(), Some("z9hG4bK9ikj8"));
        assert_eq!(w.host, Host::Domain("spindle.example.com".into()));
        let r = Via::parse("SIP/2.0/UDP h;rport").unwrap();
        assert_eq!(r.rport(), Some(None));
    }

    #[test]
    fn rfc5118_4_5_received_with_and_without_brackets() {
        let a =
            Via::parse("SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bKa")
                .unwrap();
        let b = Via::parse("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKa")
            .unwrap();
        assert_eq!(a.received_ip(), b.received_ip());
        assert!(a.received_ip().is_some());
    }

    #[test]
    fn rfc4475_3_1_2_1_via_separators_rejected() {
        let h = {
            let mut h = Headers::new();
            h.push("Via", "SIP/2.0/UDP 192.0.2.15;;,;,,");
            h
        };
        assert!(h.vias().is_err());
        for bad in [
            "",
            "SIP/2.0 host",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP host;branch=",
            "SIP/2.0/UDP host;rport=x",
            "SIP/2.0/UDPhost",
        ] {
            assert!(Via::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rfc3261_20_10_name_addr_forms() {
        let n = NameAddr::parse(
            r#""J Rosenberg \\\""       <sip:jdrosen@example.com>  ;  tag = 98asjd8"#,
        )
        .unwrap();
        assert_eq!(n.display_name.as_deref(), Some(r#"J Rosenberg \""#));
        assert_eq!(n.tag(), Some("98asjd8"));
        let a =
            NameAddr::parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(a.tag(), Some("1918181833n"));
        assert!(a.display_name.is_none());
        let c = NameAddr::parse("sip:+19725552222@gw1.example.net;unknownparam").unwrap();
        assert!(c.params.contains("unknownparam"));
        assert!(c.uri.params().unwrap().is_empty());
        let d = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(d.display_name.as_deref(), Some("caller"));
        let e = NameAddr::parse(r#"sip:a@b;+sip.instance="<urn:uuid:1>""#).unwrap();
        assert_eq!(e.params.get("+sip.instance"), Some("\"<urn:uuid:1>\""));
        // Display output re-parses to the same value.
        let again = NameAddr::parse(&n.to_string()).unwrap();
        assert_eq!(again, n);
    }

    #[test]
    fn rfc4475_name_addr_faults() {
        for bad in [
            r#""Mr. J. User <sip:j.user@example.com>"#,
            "< sip:t.watson@example.org >",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            r#""Joe" <sip:joe@example.org>;;;;"#,
            "Bell, Alexander <sip:a@b>",
            "<sip:a@b",
            "",
        ] {
            assert!(NameAddr::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rfc3261_20_16_cseq() {
        let c = CSeq::parse("0009\t INVITE").unwrap();
        assert_eq!(c.seq, 9);
        assert_eq!(c.method, Method::Invite);
        assert_eq!(c.to_string(), "9 INVITE");
        assert_eq!(CSeq::parse("4294967295 ACK").unwrap().seq, u32::MAX);
        assert_eq!(
            CSeq::parse("36893488147419103232 REGISTER"),
            Err(HeaderError::Overflow("CSeq"))
        );
        for bad in ["", "1", "INVITE", "-1 INVITE", "1 INV ITE", "1INVITE"] {
            assert!(CSeq::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn call_id_words() {
        assert!(CallId::parse("intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{").is_ok());
        assert!(CallId::parse("a b").is_err());
        assert!(CallId::parse("").is_err());
        assert!(CallId::parse("a@b@c").is_err());
    }

    #[test]
    fn content_type_retry_after_date() {
        let ct = ContentType::parse("multipart/mixed;boundary=7a9cbec02ceef655").unwrap();
        assert!(ct.is("Multipart", "MIXED"));
        assert_eq!(ct.params.get("boundary"), Some("7a9cbec02ceef655"));
        assert!(ContentType::parse("application").is_err());
        let ra = RetryAfter::parse("18000 (I'm in a meeting) ;duration=3600").unwrap();
        assert_eq!(ra.seconds, 18000);
        assert_eq!(ra.comment.as_deref(), Some("I'm in a meeting"));
        assert_eq!(ra.params.get("duration"), Some("3600"));
        assert_eq!(
            RetryAfter::parse("949302838503028349304023988"),
            Err(HeaderError::Overflow("Retry-After"))
        );
        let d = SipDate::parse("Sat, 15 Oct 2005 04:44:56 GMT").unwrap();
        assert_eq!((d.year, d.month, d.day, d.hour), (2005, 10, 15, 4));
        assert_eq!(d.to_string(), "Sat, 15 Oct 2005 04:44:56 GMT");
        assert!(SipDate::parse("Fri, 01 Jan 2010 16:00:00 EST").is_err());
    }

    #[test]
    fn rfc7044_history_info_index_and_cause() {
        let mut h = Headers::new();
        h.push(
            "History-Info",
            "<sip:alice@example.com>;index=1, <sip:bob@example.com;cause=302>;index=1.1",
        );
        h.push(
            "History-Info",
            "<sip:vm@example.com;cause=486?Reason=SIP%3Bcause%3D486>;index=1.1.1",
        );
        let hi = h.history_info().unwrap();
        assert_eq!(hi.len(), 3);
        assert_eq!(hi[0].index.as_deref(), Some("1"));
        assert_eq!(hi[0].cause, None);
        assert_eq!(hi[1].cause, Some(302));
        assert_eq!(hi[2].cause, Some(486));
        assert_eq!(hi[2].depth(), 3);
        assert!(HistoryInfo::parse("<sip:a@b>;index=1..2").is_err());
    }

    #[test]
    fn rfc5806_diversion_reason() {
        let mut h = Headers::new();
        h.push(
            "Diversion",
            "<sip:+4930123@gw.example.net;user=phone>;reason=user-busy;counter=1, <tel:+4930999>;reason=\"no-answer\"",
        );
        let d = h.diversions().unwrap();
        assert_eq!(d[0].reason.as_deref(), Some("user-busy"));
        assert_eq!(d[0].counter, Some(1));
        assert_eq!(d[1].reason.as_deref(), Some("no-answer"));
        assert_eq!(d[1].addr.uri.user(), Some("+4930999"));
    }

    #[test]
    fn single_valued_headers_detect_duplicates() {
        let mut h = Headers::new();
        h.push("To", "<sip:a@b>");
        h.push("t", "<sip:c@d>");
        assert_eq!(h.to(), Err(HeaderError::Duplicate("To")));
        assert_eq!(h.from(), Err(HeaderError::Missing("From")));
        assert_eq!(h.max_forwards(), Ok(None));
    }
}
