//! SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966); other schemes kept opaque.
//!
//! Components are stored as written (still %-escaped), so [`Display`](std::fmt::Display)
//! reproduces the input, except that the scheme is written in lower case and IPv6 hosts in
//! their canonical form. Use [`pct_decode`] / [`SipUri::user_decoded`] for the unescaped user.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::error::UriError;

/// An ordered list of `;name[=value]` parameters (URI or header parameters).
///
/// Names compare case-insensitively; values are kept as written (a quoted header-parameter
/// value keeps its quotes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, Option<String>)>);

impl Params {
    /// An empty list.
    pub fn new() -> Self {
        Params(Vec::new())
    }

    /// Value of the first parameter called `name`; `None` if absent or valueless.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_deref())
    }

    /// Whether a parameter called `name` is present (with or without value).
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// Replaces every parameter called `name` by one with `value`, appended at the end if absent.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        if let Some(slot) = self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            slot.1 = value.map(str::to_owned);
            let mut seen = false;
            self.0.retain(|(n, _)| {
                if n.eq_ignore_ascii_case(name) {
                    let keep = !seen;
                    seen = true;
                    keep
                } else {
                    true
                }
            });
        } else {
            self.push(name, value);
        }
    }

    /// Appends a parameter.
    pub fn push(&mut self, name: &str, value: Option<&str>) {
        self.0.push((name.to_owned(), value.map(str::to_owned)));
    }

    /// Removes every parameter called `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// Iterates `(name, value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_deref()))
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, v) in &self.0 {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}

/// The host part of a SIP URI or Via sent-by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A domain name, as written.
    Domain(String),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address (written in brackets).
    Ipv6(Ipv6Addr),
}

impl Host {
    /// Parses a host: a domain, dotted IPv4, or a bracketed IPv6 reference.
    ///
    /// The RFC 3261 ABNF bug `[2001:db8:::192.0.2.1]` (three colons before an embedded IPv4
    /// address) is tolerated as RFC 5118 §4.10 asks, and re-serialised with two.
    pub fn parse(s: &str) -> Result<Host, UriError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(UriError::Host)?;
            return parse_ipv6(inner).map(Host::Ipv6);
        }
        if s.is_empty() {
            return Err(UriError::Host);
        }
        if let Ok(v4) = Ipv4Addr::from_str(s) {
            return Ok(Host::Ipv4(v4));
        }
        let valid = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        let starts_ok = s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
        if valid && starts_ok {
            Ok(Host::Domain(s.to_owned()))
        } else {
            Err(UriError::Host)
        }
    }

    /// The IP address, if the host is a literal address.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Domain(_) => None,
            Host::Ipv4(a) => Some(IpAddr::V4(*a)),
            Host::Ipv6(a) => Some(IpAddr::V6(*a)),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => Host::Ipv4(a),
            IpAddr::V6(a) => Host::Ipv6(a),
        }
    }
}

/// Parses an IPv6 address without brackets, tolerating the RFC 3261 three-colon ABNF bug.
pub(crate) fn parse_ipv6(s: &str) -> Result<Ipv6Addr, UriError> {
    if let Ok(a) = Ipv6Addr::from_str(s) {
        return Ok(a);
    }
    // RFC 5118 §4.10: `2001:db8:::192.0.2.1` must be tolerated. Only the narrow case of an
    // embedded IPv4 address preceded by exactly three colons is repaired.
    if s.contains('.') && s.matches(":::").count() == 1 && !s.contains("::::") {
        if let Ok(a) = Ipv6Addr::from_str(&s.replacen(":::", "::", 1)) {
            return Ok(a);
        }
    }
    Err(UriError::Host)
}

/// Parses `host[:port]` where host may be a bracketed IPv6 reference.
pub(crate) fn parse_hostport(s: &str) -> Result<(Host, Option<u16>), UriError> {
    let (host, port) = if s.starts_with('[') {
        let close = s.find(']').ok_or(UriError::Host)?;
        let (h, rest) = s.split_at(close + 1);
        match rest {
            "" => (h, None),
            _ => (h, Some(rest.strip_prefix(':').ok_or(UriError::Port)?)),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let host = Host::parse(host)?;
    let port = match port {
        None => None,
        Some(p) => Some(parse_port(p)?),
    };
    Ok((host, port))
}

fn parse_port(p: &str) -> Result<u16, UriError> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UriError::Port);
    }
    p.parse().map_err(|_| UriError::Port)
}

/// Any URI carried in a SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    /// `sip:` or `sips:`.
    Sip(SipUri),
    /// `tel:` (RFC 3966).
    Tel(TelUri),
    /// Any other scheme, kept opaque.
    Other(OpaqueUri),
}

impl Uri {
    /// Parses a URI (no surrounding whitespace or `<>`).
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        if s.is_empty() {
            return Err(UriError::Empty);
        }
        if s.bytes()
            .any(|b| b <= b' ' || b >= 0x7f || matches!(b, b'<' | b'>' | b'"'))
        {
            return Err(UriError::IllegalCharacter);
        }
        let (scheme, rest) = s.split_once(':').ok_or(UriError::Scheme)?;
        let mut sb = scheme.bytes();
        let scheme_ok = sb.next().is_some_and(|b| b.is_ascii_alphabetic())
            && sb.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !scheme_ok {
            return Err(UriError::Scheme);
        }
        if scheme.eq_ignore_ascii_case("sip") {
            SipUri::parse_rest(false, rest).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("sips") {
            SipUri::parse_rest(true, rest).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("tel") {
            TelUri::parse_rest(rest).map(Uri::Tel)
        } else if rest.is_empty() {
            Err(UriError::Syntax("empty opaque part"))
        } else {
            Ok(Uri::Other(OpaqueUri {
                scheme: scheme.to_owned(),
                rest: rest.to_owned(),
            }))
        }
    }

    /// Scheme in lower case for sip/sips/tel, as written otherwise.
    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Tel(_) => "tel",
            Uri::Other(o) => &o.scheme,
        }
    }

    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }

    /// The user part of a SIP URI (still escaped) or the number of a tel URI.
    pub fn user(&self) -> Option<&str> {
        match self {
            Uri::Sip(u) => u.user.as_deref(),
            Uri::Tel(t) => Some(&t.number),
            Uri::Other(_) => None,
        }
    }

    /// URI parameters (empty for opaque URIs).
    pub fn params(&self) -> Option<&Params> {
        match self {
            Uri::Sip(u) => Some(&u.params),
            Uri::Tel(t) => Some(&t.params),
            Uri::Other(_) => None,
        }
    }
}

impl FromStr for Uri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uri::parse(s)
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Tel(t) => t.fmt(f),
            Uri::Other(o) => o.fmt(f),
        }
    }
}

/// A `sip:` / `sips:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// User part as written (%-escaped).
    pub user: Option<String>,
    /// Password as written (deprecated by RFC 3261 but parsed).
    pub password: Option<String>,
    /// Host.
    pub host: Host,
    /// Port, if written.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`), as written.
    pub params: Params,
    /// URI headers (`?name=value&...`), as written.
    pub headers: Vec<(String, String)>,
}

fn check_escapes(s: &str) -> Result<(), UriError> {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let ok = matches!((b.get(i + 1), b.get(i + 2)), (Some(x), Some(y)) if x.is_ascii_hexdigit() && y.is_ascii_hexdigit());
            if !ok {
                return Err(UriError::Escape);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

fn parse_uri_params(s: &str) -> Result<Params, UriError> {
    let mut params = Params::new();
    if s.is_empty() {
        return Ok(params);
    }
    for p in s.split(';') {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (p, None),
        };
        if name.is_empty() {
            return Err(UriError::Parameter);
        }
        check_escapes(p)?;
        params.push(name, value);
    }
    Ok(params)
}

impl SipUri {
    /// A URI `sip:host` with nothing else set.
    pub fn new(host: Host) -> Self {
        SipUri {
            secure: false,
            user: None,
            password: None,
            host,
            port: None,
            params: Params::new(),
            headers: Vec::new(),
        }
    }

    fn parse_rest(secure: bool, rest: &str) -> Result<SipUri, UriError> {
        // `@` cannot appear unescaped outside userinfo, so the first one ends it.
        let (userinfo, hostpart) = match rest.split_once('@') {
            Some((ui, h)) => (Some(ui), h),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                let (u, p) = match ui.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (ui, None),
                };
                if u.is_empty() {
                    return Err(UriError::Syntax("empty user"));
                }
                check_escapes(u)?;
                if let Some(p) = p {
                    check_escapes(p)?;
                }
                (Some(u.to_owned()), p.map(str::to_owned))
            }
        };
        let (hostpart, headers_part) = match hostpart.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (hostpart, None),
        };
        let (hostport, params_part) = match hostpart.split_once(';') {
            Some((h, p)) => (h, p),
            None => (hostpart, ""),
        };
        if hostpart.ends_with(';') {
            return Err(UriError::Parameter);
        }
        let (host, port) = parse_hostport(hostport)?;
        let params = parse_uri_params(params_part)?;
        let mut headers = Vec::new();
        if let Some(q) = headers_part {
            for h in q.split('&') {
                let (n, v) = h.split_once('=').ok_or(UriError::Parameter)?;
                if n.is_empty() {
                    return Err(UriError::Parameter);
                }
                check_escapes(h)?;
                headers.push((n.to_owned(), v.to_owned()));
            }
        }
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }

    /// The user part with %-escapes decoded (lossy UTF-8); `None` if there is no user part.
    pub fn user_decoded(&self) -> Option<String> {
        let u = self.user.as_deref()?;
        // Escapes were validated at parse time; fall back to the raw text for hand-built URIs.
        Some(match pct_decode(u) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(_) => u.to_owned(),
        })
    }

    /// The `transport` URI parameter, if present.
    pub fn transport(&self) -> Option<&str> {
        self.params.get("transport")
    }

    /// Whether the URI carries the `user=phone` parameter.
    pub fn is_user_phone(&self) -> bool {
        self.params
            .get("user")
            .is_some_and(|v| v.eq_ignore_ascii_case("phone"))
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)?;
        for (i, (n, v)) in self.headers.iter().enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            write!(f, "{sep}{n}={v}")?;
        }
        Ok(())
    }
}

/// A `tel:` URI (RFC 3966).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelUri {
    /// The number as written, e.g. `+49-30-1234567` or `7042` (local, needs `phone-context`).
    pub number: String,
    /// Parameters (`;phone-context=...`), as written.
    pub params: Params,
}

impl TelUri {
    fn parse_rest(rest: &str) -> Result<TelUri, UriError> {
        let (number, params) = match rest.split_once(';') {
            Some((n, p)) => (n, p),
            None => (rest, ""),
        };
        if rest.ends_with(';') {
            return Err(UriError::Parameter);
        }
        let ok = !number.is_empty()
            && number.bytes().all(|b| {
                b.is_ascii_hexdigit() || matches!(b, b'+' | b'-' | b'.' | b'(' | b')' | b'*' | b'#')
            });
        if !ok {
            return Err(UriError::Syntax("invalid telephone number"));
        }
        Ok(TelUri {
            number: number.to_owned(),
            params: parse_uri_params(params)?,
        })
    }

    /// Whether the number is global (starts with `+`).
    pub fn is_global(&self) -> bool {
        self.number.starts_with('+')
    }

    /// The number without visual separators (`-`, `.`, `(`, `)`), keeping `+`, digits, `*`, `#`.
    pub fn digits(&self) -> String {
        self.number
            .chars()
            .filter(|c| !matches!(c, '-' | '.' | '(' | ')'))
            .collect()
    }
}

impl fmt::Display for TelUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tel:{}{}", self.number, self.params)
    }
}

/// A URI with a scheme this layer does not interpret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpaqueUri {
    /// Scheme as written.
    pub scheme: String,
    /// Everything after the first `:`.
    pub rest: String,
}

impl fmt::Display for OpaqueUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scheme, self.rest)
    }
}

/// Decodes `%XX` escapes. The result may contain any byte, including NUL (RFC 4475 §3.1.1.4).
pub fn pct_decode(s: &str) -> Result<Vec<u8>, UriError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hi = b.get(i + 1).and_then(|x| (*x as char).to_digit(16));
            let lo = b.get(i + 2).and_then(|x| (*x as char).to_digit(16));
            match (hi, lo) {
                // Both digits are < 16, so the value fits a byte.
                (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                _ => return Err(UriError::Escape),
            }
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

/// Escapes a string for use as the user part of a SIP URI (RFC 3261 `user` production).
pub fn pct_encode_user(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_'
                    | b'.'
                    | b'!'
                    | b'~'
                    | b'*'
                    | b'\''
                    | b'('
                    | b')'
                    | b'&'
                    | b'='
                    | b'+'
                    | b'$'
                    | b','
                    | b';'
                    | b'?'
                    | b'/'
            );
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(s: &str) -> SipUri {
        match Uri::parse(s) {
            Ok(Uri::Sip(u)) => u,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn rfc3261_19_1_1_components() {
        let u = sip("sips:alice:secret@atlanta.com:5061;transport=tcp;lr?subject=project%20x&priority=urgent");
        assert!(u.secure);
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("secret"));
        assert_eq!(u.host, Host::Domain("atlanta.com".into()));
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.transport(), Some("tcp"));
        assert!(u.params.contains("LR"));
        assert_eq!(u.params.get("lr"), None);
        assert_eq!(u.headers.len(), 2);
        assert_eq!(
            u.to_string(),
            "sips:alice:secret@atlanta.com:5061;transport=tcp;lr?subject=project%20x&priority=urgent"
        );
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "sip:user@example.com",
            "sip:[2001:db8::10]:5070",
            "sip:+4930123;npdi@gw.example.net;user=phone",
            "sip:192.0.2.1:5060;transport=udp",
            "tel:+1-201-555-0123;phone-context=example.com",
            "urn:service:sos",
            "soap.beep://192.0.2.103:3002",
        ] {
            let u = Uri::parse(s).unwrap();
            assert_eq!(u.to_string(), s);
            assert_eq!(Uri::parse(&u.to_string()).unwrap(), u);
        }
    }

    #[test]
    fn rfc4475_3_1_1_3_escapes_decode() {
        let u = sip("sip:sips%3Auser%40example.com@example.net");
        assert_eq!(u.user_decoded().as_deref(), Some("sips:user@example.com"));
        let n = sip("sip:null-%00-null@example.com");
        assert_eq!(
            pct_decode(n.user.as_deref().unwrap()).unwrap(),
            b"null-\0-null"
        );
        assert_eq!(Uri::parse("sip:a%4@x"), Err(UriError::Escape));
        assert_eq!(pct_decode("%zz"), Err(UriError::Escape));
        assert_eq!(pct_decode("%4"), Err(UriError::Escape));
    }

    #[test]
    fn rfc4475_3_1_1_9_semicolon_in_user() {
        let u = sip("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
        assert!(u.params.is_empty());
    }

    #[test]
    fn rfc4475_3_1_1_2_unusual_user_and_password() {
        let u = sip("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com");
        assert_eq!(
            u.user.as_deref(),
            Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        );
        assert_eq!(
            u.password.as_deref(),
            Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
        );
        assert_eq!(u.host, Host::Domain("example.com".into()));
    }

    #[test]
    fn rfc5118_4_2_unbracketed_ipv6_refused() {
        assert_eq!(Uri::parse("sip:2001:db8::10"), Err(UriError::Port));
    }

    #[test]
    fn rfc5118_4_3_and_4_4_port_ambiguity() {
        let a = sip("sip:[2001:db8::10:5070]");
        assert_eq!(a.port, None);
        assert_eq!(a.host, Host::Ipv6("2001:db8::10:5070".parse().unwrap()));
        let b = sip("sip:[2001:db8::10]:5070");
        assert_eq!(b.port, Some(5070));
        assert_eq!(b.host, Host::Ipv6("2001:db8::10".parse().unwrap()));
    }

    #[test]
    fn rfc5118_4_10_three_colons_tolerated() {
        let a = sip("sip:user@[2001:db8:::192.0.2.1]");
        let b = sip("sip:user@[2001:db8::192.0.2.1]");
        assert_eq!(a, b);
        assert!(Uri::parse("sip:[2001:db8:::1]").is_err());
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "<sip:user@example.com>",
            " sip:a@b",
            "sip:a@b ",
            "sip:",
            "sip:@host",
            "sip:host:",
            "sip:host:99999",
            "sip:host;",
            "sip:host;;lr",
            "sip:[::1",
            "sip:[zz]",
            "sip:host?x",
            "1sip:foo",
            "tel:",
            "tel:abc xyz",
            "foo:",
            "sip:-host",
        ] {
            assert!(Uri::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn rfc3966_tel() {
        let Uri::Tel(t) = Uri::parse("tel:+49-(30)-123.4567").unwrap() else {
            panic!("not tel")
        };
        assert!(t.is_global());
        assert_eq!(t.digits(), "+49301234567");
        let Uri::Tel(l) = Uri::parse("tel:7042;phone-context=example.com").unwrap() else {
            panic!("not tel")
        };
        assert!(!l.is_global());
        assert_eq!(l.params.get("phone-context"), Some("example.com"));
    }

    #[test]
    fn params_set_replaces_all() {
        let mut p = Params::new();
        p.push("a", Some("1"));
        p.push("b", None);
        p.push("A", Some("2"));
        p.set("a", Some("3"));
        assert_eq!(p.to_string(), ";a=3;b");
        p.set("c", None);
        p.remove("B");
        assert_eq!(p.to_string(), ";a=3;c");
    }

    #[test]
    fn encode_user_escapes_reserved() {
        assert_eq!(pct_encode_user("a b@c#1"), "a%20b%40c%231");
        let enc = pct_encode_user("+49 30/1");
        assert_eq!(pct_decode(&enc).unwrap(), b"+49 30/1");
    }
}
