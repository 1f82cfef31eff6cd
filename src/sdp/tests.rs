//! Tests: parser, typed views, offer/answer (named after RFC clauses), golden files and a
//! pseudo-random robustness run.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use super::*;

fn parse(s: &str) -> SessionDescription {
    match SessionDescription::parse(s.as_bytes()) {
        Ok(sdp) => sdp,
        Err(e) => panic!("test SDP failed to parse: {e}\n{s}"),
    }
}

/// Joins lines with CRLF (and a trailing CRLF).
fn crlf(lines: &[&str]) -> String {
    let mut s = String::new();
    for l in lines {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s
}

fn local() -> LocalMedia {
    LocalMedia {
        addr: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)),
        alt_addr: Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 5))),
        port: 40000,
        prefer: vec![Codec::Pcmu, Codec::Pcma],
    }
}

const HEAD: [&str; 5] = [
    "v=0",
    "o=- 1 1 IN IP4 192.0.2.1",
    "s=-",
    "c=IN IP4 192.0.2.1",
    "t=0 0",
];

/// An offer made of HEAD plus `rest`.
fn offer_with(rest: &[&str]) -> SessionDescription {
    let mut lines: Vec<&str> = HEAD.to_vec();
    lines.extend_from_slice(rest);
    parse(&crlf(&lines))
}

// ---------------------------------------------------------------- parser (RFC 8866)

#[test]
fn rfc8866_5_round_trip_is_byte_exact_and_keeps_unknown_attributes() {
    let text = crlf(&[
        "v=0",
        "o=- 20518 0 IN IP4 203.0.113.1",
        "s= ",
        "i=weird  spacing kept",
        "c=IN IP4 203.0.113.1",
        "t=0 0",
        "a=x-unknown:foo bar",
        "a=ice-lite",
        "m=audio 54400 RTP/AVP 0 96",
        "b=AS:64",
        "a=rtpmap:96 opus/48000/2",
        "a=x-vendor-thing",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "a=sctp-port:5000",
    ]);
    let sdp = parse(&text);
    assert_eq!(sdp.to_bytes(), text.as_bytes());
    assert_eq!(sdp.to_string(), text);
    assert_eq!(sdp.session_lines().len(), 8);
    assert_eq!(sdp.media().len(), 2);
    assert_eq!(sdp.media()[0].lines().len(), 3);
    assert_eq!(sdp.media()[1].formats(), ["webrtc-datachannel"]);
    assert_eq!(sdp.media()[1].payload_types().count(), 0);
    let unknown: Vec<_> = sdp.attributes().map(|a| a.name).collect();
    assert_eq!(unknown, ["x-unknown", "ice-lite"]);
    assert_eq!(
        sdp.media()[0].attribute("x-vendor-thing").map(|a| a.value),
        Some(None)
    );
}

#[test]
fn rfc8866_5_lf_line_endings_accepted_and_crlf_emitted() {
    let lf = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\nm=audio 5000 RTP/AVP 0\n";
    let sdp = parse(lf);
    assert_eq!(sdp.to_string(), lf.replace('\n', "\r\n"));
    // No final line ending and a stray blank line are tolerated too.
    let sdp2 =
        parse("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0");
    assert_eq!(sdp2.to_string(), sdp.to_string());
}

#[test]
fn rfc8866_5_rejects_malformed_structure() {
    let cases: &[(&str, SdpError)] = &[
        ("", SdpError::MissingVersion),
        (
            "o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n",
            SdpError::MissingVersion,
        ),
        ("v=1\r\n", SdpError::UnsupportedVersion),
        (
            "v=0\r\nv=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n",
            SdpError::UnsupportedVersion,
        ),
        (
            "v=0\r\ns=-\r\nt=0 0\r\n",
            SdpError::MissingLine { kind: 'o' },
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nt=0 0\r\n",
            SdpError::MissingLine { kind: 's' },
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n",
            SdpError::MissingLine { kind: 't' },
        ),
        ("v=0\r\nbogus\r\n", SdpError::MalformedLine { line: 2 }),
        ("v=0\r\nA=x\r\n", SdpError::MalformedLine { line: 2 }),
        ("v=0\r\na=x\ry\r\n", SdpError::MalformedLine { line: 2 }),
        ("v=0\r\na=x\0\r\n", SdpError::MalformedLine { line: 2 }),
    ];
    for (input, want) in cases {
        assert_eq!(
            SessionDescription::parse(input.as_bytes()).as_ref().err(),
            Some(want),
            "input {input:?}"
        );
    }
    assert_eq!(
        SessionDescription::parse(b"v=0\r\n\xff=1\r\n"),
        Err(SdpError::InvalidUtf8)
    );
}

#[test]
fn rfc8866_5_14_media_line_grammar() {
    let bad = [
        "m=audio 70000 RTP/AVP 0",
        "m=audio +5000 RTP/AVP 0",
        "m=audio 5000 RTP/AVP",
        "m=audio",
        "m=audio 5000/x RTP/AVP 0",
        "m=au(dio 5000 RTP/AVP 0",
    ];
    for m in bad {
        let text = crlf(&["v=0", "o=- 1 1 IN IP4 1.2.3.4", "s=-", "t=0 0", m]);
        assert_eq!(
            SessionDescription::parse(text.as_bytes()),
            Err(SdpError::InvalidMediaLine { line: 5 }),
            "{m}"
        );
    }
    let sdp = offer_with(&["m=audio 5000/2 RTP/AVP 0", "m=video 0 RTP/AVP"]);
    assert_eq!(sdp.media()[0].port(), 5000);
    assert_eq!(sdp.media()[0].port_count(), Some(2));
    assert!(sdp.media()[1].is_rejected());
    assert!(sdp.media()[1].formats().is_empty());
}

#[test]
fn limits_body_size_line_length_and_media_count() {
    let big = vec![b'a'; MAX_SDP_LEN + 1];
    assert_eq!(
        SessionDescription::parse(&big),
        Err(SdpError::TooLarge {
            len: MAX_SDP_LEN + 1
        })
    );

    let long_ok = format!("a={}", "x".repeat(MAX_LINE_LEN - 2));
    let long_bad = format!("a={}", "x".repeat(MAX_LINE_LEN - 1));
    let _ = offer_with(&[&long_ok]);
    let text = crlf(&[HEAD[0], HEAD[1], HEAD[2], HEAD[4], &long_bad]);
    assert_eq!(
        SessionDescription::parse(text.as_bytes()),
        Err(SdpError::LineTooLong { line: 5 })
    );

    let m = "m=audio 0 RTP/AVP 0";
    let at_limit: Vec<&str> = std::iter::repeat_n(m, MAX_MEDIA_SECTIONS).collect();
    assert_eq!(offer_with(&at_limit).media().len(), MAX_MEDIA_SECTIONS);
    let mut lines = HEAD.to_vec();
    lines.extend(std::iter::repeat_n(m, MAX_MEDIA_SECTIONS + 1));
    assert_eq!(
        SessionDescription::parse(crlf(&lines).as_bytes()),
        Err(SdpError::TooManyMediaSections)
    );

    assert_eq!(Line::new('a', "x\r\ny"), Err(SdpError::InvalidValue));
    assert_eq!(Line::new('A', "x"), Err(SdpError::InvalidValue));
    assert_eq!(
        Line::new('a', "x".repeat(MAX_LINE_LEN)),
        Err(SdpError::InvalidValue)
    );
}

#[test]
fn set_port_rewrites_only_the_m_line() {
    let mut sdp = offer_with(&["m=audio 5000/2 RTP/AVP 0 8", "a=x-keep:1"]);
    sdp.media_mut()[0].set_port(0);
    assert!(sdp
        .to_string()
        .ends_with("m=audio 0/2 RTP/AVP 0 8\r\na=x-keep:1\r\n"));
    assert!(sdp.media()[0].is_rejected());
}

// ---------------------------------------------------------------- typed views

#[test]
fn rfc8866_6_6_rtpmap_and_rfc8866_6_15_fmtp() {
    let sdp = offer_with(&[
        "m=audio 5000 RTP/AVP 96 0 101 97",
        "a=rtpmap:96 opus/48000/2",
        "a=rtpmap:101 telephone-event/8000",
        "a=rtpmap:97 broken",
        "a=rtpmap:200 PCMU/8000",
        "a=fmtp:96 useinbandfec=1; stereo=1;flag",
        "a=fmtp:101 0-15",
        "a=ptime:30",
    ]);
    let m = &sdp.media()[0];
    assert_eq!(
        m.rtpmap(96),
        Some(RtpMap {
            pt: 96,
            encoding: "opus",
            clock_rate: 48000,
            channels: Some(2)
        })
    );
    assert_eq!(
        m.rtpmap(101).map(|r| (r.clock_rate, r.channels)),
        Some((8000, None))
    );
    assert_eq!(m.rtpmap(97), None, "malformed rtpmap is skipped");
    assert_eq!(m.rtpmaps().count(), 2, "pt 200 is out of range");
    let pairs: Vec<_> = m.fmtp(96).map(|f| f.pairs().collect()).unwrap_or_default();
    assert_eq!(
        pairs,
        [("useinbandfec", "1"), ("stereo", "1"), ("flag", "")]
    );
    assert_eq!(m.fmtp(101).map(|f| f.params), Some("0-15"));
    assert_eq!(m.ptime(), Some(30));
    assert_eq!(m.payload_types().collect::<Vec<_>>(), [96, 0, 101, 97]);
}

#[test]
fn rfc4733_2_4_1_event_lists() {
    let e = EventSet::parse("0-15,16").expect("valid list");
    assert_eq!(e, EventSet::DTMF_AND_FLASH);
    assert_eq!(e.to_string(), "0-16");
    assert_eq!(EventSet::DTMF.to_string(), "0-15");
    let odd = EventSet::parse("0-11, 16,32-33,255").expect("valid list");
    assert_eq!(odd.to_string(), "0-11,16,32-33,255");
    assert_eq!(
        odd.intersect(&EventSet::DTMF_AND_FLASH).to_string(),
        "0-11,16"
    );
    for bad in ["", "15-0", "0-256", "a", "1,,2", "-3"] {
        assert_eq!(EventSet::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn rfc3264_5_1_direction_media_level_overrides_session_level() {
    let sdp = offer_with(&[
        "a=sendonly",
        "m=audio 5000 RTP/AVP 0",
        "m=audio 5002 RTP/AVP 0",
        "a=inactive",
    ]);
    assert_eq!(sdp.direction(), Some(Direction::SendOnly));
    assert_eq!(sdp.media_direction(0), Some(Direction::SendOnly));
    assert_eq!(sdp.media_direction(1), Some(Direction::Inactive));
    assert_eq!(sdp.media_direction(2), None);
    let plain = offer_with(&["m=audio 5000 RTP/AVP 0"]);
    assert_eq!(plain.media_direction(0), Some(Direction::SendRecv));
}

#[test]
fn rfc8866_5_7_connection_ipv4_ipv6_hold_and_media_override() {
    let sdp = offer_with(&[
        "m=audio 5000 RTP/AVP 0",
        "m=audio 5002 RTP/AVP 0",
        "c=IN IP6 2001:db8::1",
        "m=audio 5004 RTP/AVP 0",
        "c=IN IP4 0.0.0.0",
        "m=audio 5006 RTP/AVP 0",
        "c=IN IP4 host.example.com",
    ]);
    let addr = |i| sdp.media_connection(i).map(|c| c.map(|c| c.address));
    assert_eq!(addr(0), Ok(Some("192.0.2.1".parse().expect("ip"))));
    assert_eq!(addr(1), Ok(Some("2001:db8::1".parse().expect("ip"))));
    assert_eq!(addr(2), Ok(Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED))));
    assert_eq!(
        sdp.media_connection(2).ok().flatten().map(|c| c.is_hold()),
        Some(true)
    );
    assert_eq!(addr(3), Err(SdpError::InvalidConnection));
    for bad in [
        "IN IP4 2001:db8::1",
        "IN IP6 1.2.3.4",
        "ATM NSAP x",
        "IN IP4",
        "IN IP4 1.2.3.4 x",
    ] {
        assert_eq!(
            Connection::parse(bad),
            Err(SdpError::InvalidConnection),
            "{bad}"
        );
    }
    assert_eq!(
        Connection::parse("IN IP4 224.2.1.1/127/3").map(|c| c.address.is_multicast()),
        Ok(true)
    );
}

#[test]
fn rfc5761_5_1_1_rtcp_mux_presence() {
    let sdp = offer_with(&[
        "m=audio 5000 RTP/AVP 0",
        "a=rtcp-mux",
        "m=audio 5002 RTP/AVP 0",
    ]);
    assert!(sdp.media()[0].rtcp_mux());
    assert!(!sdp.media()[1].rtcp_mux());
}

#[test]
fn rfc8866_5_2_origin() {
    let sdp = offer_with(&[]);
    let o = sdp.origin().expect("origin");
    assert_eq!(
        (o.username, o.addr_type, o.address),
        ("-", "IP4", "192.0.2.1")
    );
    assert_eq!(o.version_u64(), Some(1));
    assert_eq!(sdp.session_name(), Some("-"));
}

#[test]
fn rfc4568_9_1_crypto_attribute() {
    // Key material from RFC 4568 §4's example.
    let sdp = offer_with(&[
        "m=audio 5000 RTP/SAVP 0",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32",
        "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32;inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:32 KDR=1 UNENCRYPTED_SRTCP",
        "a=crypto:3 FOO_SUITE inline:QUJDREVGR0g=",
        "a=crypto:x AES_CM_128_HMAC_SHA1_80 inline:abc",
        "a=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:abc|1:0",
        "a=crypto:5 AES_CM_128_HMAC_SHA1_80",
    ]);
    let c: Vec<Crypto<'_>> = sdp.media()[0].crypto().collect();
    assert_eq!(
        c.len(),
        3,
        "malformed tag, MKI length 0 and missing key are skipped"
    );
    assert_eq!(c[0].tag, 1);
    assert_eq!(c[0].suite, CryptoSuite::AesCm128HmacSha1_80);
    assert_eq!(c[0].key_params.len(), 1);
    let k = c[0].key_params[0];
    assert_eq!(k.method, "inline");
    assert_eq!(k.key_salt, "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR");
    assert_eq!(k.lifetime, Some(1 << 20));
    assert_eq!(k.mki, Some((1, 32)));
    assert_eq!(c[1].suite, CryptoSuite::AesCm128HmacSha1_32);
    assert_eq!(c[1].key_params.len(), 2);
    assert_eq!(c[1].key_params[1].mki, Some((2, 32)));
    assert_eq!(c[1].session_params, ["KDR=1", "UNENCRYPTED_SRTCP"]);
    assert_eq!(c[2].suite, CryptoSuite::Other("FOO_SUITE"));
    assert_eq!(c[2].key_params[0].lifetime, None);
    let dbg = format!("{:?}", c[0]);
    assert!(!dbg.contains("PS1uQCVe"), "key leaked into Debug: {dbg}");
    assert!(dbg.contains("redacted"));
}

#[test]
fn t38_annex_d_attributes_from_fixture() {
    let text = std::fs::read(fixture_dir().join("t38-only.offer.sdp")).expect("fixture");
    let sdp = SessionDescription::parse(&text).expect("valid fixture");
    let m = &sdp.media()[0];
    assert_eq!(
        (m.media(), m.proto(), m.formats()),
        ("image", "udptl", &["t38".to_owned()][..])
    );
    assert_eq!(
        m.t38(),
        T38Params {
            version: Some(0),
            max_bit_rate: Some(14400),
            rate_management: Some(T38RateManagement::TransferredTcf),
            max_buffer: Some(2000),
            max_datagram: Some(400),
            udp_ec: Some(T38UdpEc::Redundancy),
            fill_bit_removal: false,
            transcoding_mmr: false,
            transcoding_jbig: false,
        }
    );
    // Aliases, odd case and property-style booleans.
    let alt = offer_with(&[
        "m=image 4000 udptl t38",
        "a=t38faxversion:3",
        "a=T38FaxMaxRate:9600",
        "a=T38MaxDatagram:320",
        "a=T38FaxUdpEC:t38UDPFEC",
        "a=T38FaxRateManagement:localTCF",
        "a=T38FaxFillBitRemoval",
        "a=T38FaxTranscodingMMR:1",
    ]);
    let p = alt.media()[0].t38();
    assert_eq!(p.version, Some(3));
    assert_eq!(p.max_bit_rate, Some(9600));
    assert_eq!(p.max_datagram, Some(320));
    assert_eq!(p.udp_ec, Some(T38UdpEc::Fec));
    assert_eq!(p.rate_management, Some(T38RateManagement::LocalTcf));
    assert!(p.fill_bit_removal && p.transcoding_mmr && !p.transcoding_jbig);
}

// ---------------------------------------------------------------- offer/answer (RFC 3264)

fn answer_ok(offer: &SessionDescription) -> (SessionDescription, Negotiated) {
    match answer(offer, &local(), 7, 8) {
        Ok(r) => r,
        Err(e) => panic!("answer failed: {e}"),
    }
}

#[test]
fn rfc3264_6_1_answer_keeps_media_order() {
    let offer = offer_with(&[
        "m=video 9000 RTP/AVP 96",
        "a=rtpmap:96 H264/90000",
        "m=audio 5000 RTP/AVP 0",
        "m=image 6000 udptl t38",
        "m=text 7000 RTP/AVP 98",
    ]);
    let (ans, neg) = answer_ok(&offer);
    let kinds: Vec<(&str, u16)> = ans.media().iter().map(|m| (m.media(), m.port())).collect();
    assert_eq!(
        kinds,
        [("video", 0), ("audio", 40000), ("image", 0), ("text", 0)]
    );
    assert_eq!(
        neg.remote_addr,
        "192.0.2.1:5000".parse::<SocketAddr>().expect("addr")
    );
}

#[test]
fn rfc3264_6_rejected_stream_port_zero() {
    let offer = offer_with(&[
        "m=audio 5000 RTP/AVP 0",
        "m=audio 5002 RTP/AVP 8",
        "m=audio 5004 RTP/SAVP 0",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
        "m=image 6000 udptl t38",
        "a=T38FaxVersion:0",
    ]);
    let (ans, _) = answer_ok(&offer);
    let text = ans.to_string();
    assert!(text.contains("\r\nm=audio 5000") || text.contains("\r\nm=audio 40000 RTP/AVP 0\r\n"));
    // Only the first usable audio stream is taken; the rest are rejected, formats copied,
    // and no attribute (in particular no a=crypto, no T.38 attribute) is echoed.
    assert!(
        text.contains("\r\nm=audio 0 RTP/AVP 8\r\nm=audio 0 RTP/SAVP 0\r\nm=image 0 udptl t38\r\n")
    );
    assert!(text.ends_with("m=image 0 udptl t38\r\n"));
    assert!(ans.media()[1..]
        .iter()
        .all(|m| m.is_rejected() && m.lines().is_empty()));
}

#[test]
fn rfc3264_6_1_offerer_order_wins_over_local_preference() {
    let offer = offer_with(&["m=audio 5000 RTP/AVP 8 0"]);
    let (ans, neg) = answer_ok(&offer);
    assert_eq!((neg.codec, neg.pt), (Codec::Pcma, 8));
    assert_eq!(ans.media()[0].formats(), ["8"]);
    assert_eq!(ans.media()[0].rtpmap(8).map(|r| r.encoding), Some("PCMA"));
}

#[test]
fn rfc3264_6_1_prefer_is_the_enabled_set() {
    let offer = offer_with(&["m=audio 5000 RTP/AVP 8"]);
    let mut only_pcmu = local();
    only_pcmu.prefer = vec![Codec::Pcmu];
    assert_eq!(
        answer(&offer, &only_pcmu, 1, 1).map(|_| ()),
        Err(OfferAnswerError::NoCommonCodec)
    );
    let mut empty = local();
    empty.prefer.clear();
    assert!(
        answer(&offer, &empty, 1, 1).is_ok(),
        "empty prefer means all codecs"
    );
}

#[test]
fn rfc3264_6_1_dynamic_payload_types_reused() {
    let offer = offer_with(&[
        "m=audio 5000 RTP/AVP 110 96",
        "a=rtpmap:110 pcmu/8000/1",
        "a=rtpmap:96 telephone-event/8000",
        "a=fmtp:96 0-11,16",
    ]);
    let (ans, neg) = answer_ok(&offer);
    assert_eq!(
        (neg.codec, neg.pt, neg.telephone_event_pt),
        (Codec::Pcmu, 110, Some(96))
    );
    let m = &ans.media()[0];
    assert_eq!(m.formats(), ["110", "96"]);
    assert_eq!(m.rtpmap(110).map(|r| r.encoding), Some("PCMU"));
    assert_eq!(m.fmtp(96).map(|f| f.params), Some("0-11,16"));
}

#[test]
fn rfc4733_7_1_telephone_event_only_at_8000_and_defaults_to_0_15() {
    let offer = offer_with(&[
        "m=audio 5000 RTP/AVP 0 100 101",
        "a=rtpmap:100 telephone-event/48000",
        "a=rtpmap:101 telephone-event/8000",
    ]);
    let (ans, neg) = answer_ok(&offer);
    assert_eq!(neg.telephone_event_pt, Some(101));
    assert_eq!(ans.media()[0].fmtp(101).map(|f| f.params), Some("0-15"));
    let none = offer_with(&[
        "m=audio 5000 RTP/AVP 0 100",
        "a=rtpmap:100 telephone-event/16000",
    ]);
    let (ans, neg) = answer_ok(&none);
    assert_eq!(neg.telephone_event_pt, None);
    assert_eq!(ans.media()[0].formats(), ["0"]);
    let unsupported = offer_with(&[
        "m=audio 5000 RTP/AVP 0 101",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 32-40",
    ]);
    assert_eq!(answer_ok(&unsupported).1.telephone_event_pt, None);
}

#[test]
fn rfc3264_6_1_direction_is_mirrored() {
    let table = [
        ("sendrecv", Direction::SendRecv),
        ("sendonly", Direction::RecvOnly),
        ("recvonly", Direction::SendOnly),
        ("inactive", Direction::Inactive),
    ];
    for (offered, want) in table {
        let attr = format!("a={offered}");
        let offer = offer_with(&["m=audio 5000 RTP/AVP 0", &attr]);
        let (ans, neg) = answer_ok(&offer);
        assert_eq!(neg.direction, want, "{offered}");
        assert_eq!(ans.media_direction(0), Some(want));
        assert_eq!(
            ans.media()[0].direction(),
            Some(want),
            "direction stated at media level"
        );
    }
}

#[test]
fn rfc3264_8_4_zero_address_is_hold() {
    let mut lines = vec![
        "v=0",
        "o=- 1 2 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 0.0.0.0",
        "t=0 0",
    ];
    lines.push("m=audio 5000 RTP/AVP 0");
    let offer = parse(&crlf(&lines));
    let (_, neg) = answer_ok(&offer);
    assert_eq!(neg.direction, Direction::RecvOnly);
    assert!(neg.remote_addr.ip().is_unspecified());
    lines.push("a=recvonly");
    let (_, neg) = answer_ok(&parse(&crlf(&lines)));
    assert_eq!(neg.direction, Direction::Inactive);
}

#[test]
fn rfc8866_5_7_media_connection_overrides_session_and_is_required() {
    let offer = offer_with(&["m=audio 5000 RTP/AVP 0", "c=IN IP4 198.51.100.9"]);
    assert_eq!(
        answer_ok(&offer).1.remote_addr,
        "198.51.100.9:5000".parse::<SocketAddr>().expect("addr")
    );
    let no_c = parse(&crlf(&[
        "v=0",
        "o=- 1 1 IN IP4 1.2.3.4",
        "s=-",
        "t=0 0",
        "m=audio 5000 RTP/AVP 0",
    ]));
    let err = answer(&no_c, &local(), 1, 1)
        .map(|_| ())
        .expect_err("no c=");
    assert_eq!(
        (err.clone(), err.status_code()),
        (OfferAnswerError::MissingConnection, 400)
    );
    let bad_c = offer_with(&["m=audio 5000 RTP/AVP 0", "c=IN IP4 999.1.1.1"]);
    let err = answer(&bad_c, &local(), 1, 1)
        .map(|_| ())
        .expect_err("bad c=");
    assert_eq!(
        err,
        OfferAnswerError::Malformed(SdpError::InvalidConnection)
    );
    assert_eq!(err.status_code(), 400);
    let multicast = offer_with(&["m=audio 5000 RTP/AVP 0", "c=IN IP4 224.2.1.1/127"]);
    assert_eq!(
        answer(&multicast, &local(), 1, 1).map(|_| ()),
        Err(OfferAnswerError::NoUsableStream)
    );
}

#[test]
fn rfc3264_6_ipv6_offer_gets_ipv6_answer_when_available() {
    let offer = parse(&crlf(&[
        "v=0",
        "o=- 1 1 IN IP6 2001:db8::10",
        "s=-",
        "c=IN IP6 2001:db8::10",
        "t=0 0",
        "m=audio 5000 RTP/AVP 0",
    ]));
    let (ans, _) = answer_ok(&offer);
    assert_eq!(
        ans.connection().ok().flatten().map(|c| c.address),
        Some("2001:db8::5".parse().expect("ip"))
    );
    assert_eq!(ans.origin().map(|o| o.addr_type), Some("IP6"));
    let mut v4_only = local();
    v4_only.alt_addr = None;
    let (ans, _) = answer(&offer, &v4_only, 1, 1).expect("answer");
    assert_eq!(ans.origin().map(|o| o.addr_type), Some("IP4"));
}

#[test]
fn status_codes_400_and_488() {
    assert_eq!(OfferAnswerError::NoCommonCodec.status_code(), 488);
    assert_eq!(OfferAnswerError::NoUsableStream.status_code(), 488);
    assert_eq!(OfferAnswerError::UnofferedCodec.status_code(), 488);
    assert_eq!(OfferAnswerError::MediaCountMismatch.status_code(), 400);
    assert_eq!(
        OfferAnswerError::from(SdpError::InvalidUtf8).status_code(),
        400
    );
}

#[test]
fn rfc3264_5_offer_exact_text() {
    let sdp = offer(&local(), 99, 100);
    let want = crlf(&[
        "v=0",
        "o=coda 99 100 IN IP4 203.0.113.5",
        "s=coda",
        "c=IN IP4 203.0.113.5",
        "t=0 0",
        "m=audio 40000 RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=sendrecv",
    ]);
    assert_eq!(sdp.to_string(), want);
    assert_eq!(SessionDescription::parse(&sdp.to_bytes()), Ok(sdp));
    let mut pcma_first = local();
    pcma_first.prefer = vec![Codec::Pcma, Codec::Pcma, Codec::Pcmu];
    assert!(offer(&pcma_first, 1, 1)
        .to_string()
        .contains("m=audio 40000 RTP/AVP 8 0 101\r\n"));
}

#[test]
fn rfc3264_6_1_coda_answers_coda() {
    let ours = offer(&local(), 1, 1);
    let mut peer = local();
    peer.addr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    peer.port = 50000;
    peer.prefer = vec![Codec::Pcma];
    let (ans, neg_peer) = answer(&ours, &peer, 5, 5).expect("answer");
    let neg_us = accept_answer(&ours, &ans).expect("accept");
    assert_eq!(neg_us.codec, Codec::Pcma);
    assert_eq!(neg_us.pt, 8);
    assert_eq!(neg_us.telephone_event_pt, Some(101));
    assert_eq!(
        neg_us.remote_addr,
        "198.51.100.7:50000".parse::<SocketAddr>().expect("a")
    );
    assert_eq!(
        neg_peer.remote_addr,
        "203.0.113.5:40000".parse::<SocketAddr>().expect("a")
    );
    assert_eq!(neg_us.direction, Direction::SendRecv);
}

#[test]
fn rfc3264_5_1_accept_answer_checks() {
    let ours = offer(&local(), 1, 1);
    let ans = |media: &[&str]| {
        let mut l = vec![
            "v=0",
            "o=peer 1 1 IN IP4 198.51.100.7",
            "s=-",
            "c=IN IP4 198.51.100.7",
            "t=0 0",
        ];
        l.extend_from_slice(media);
        parse(&crlf(&l))
    };
    // Different telephone-event number and a sendonly answer: we only receive.
    let a = ans(&[
        "m=audio 6000 RTP/AVP 0 96",
        "a=rtpmap:96 telephone-event/8000",
        "a=sendonly",
        "a=ptime:30",
    ]);
    let n = accept_answer(&ours, &a).expect("accept");
    assert_eq!(
        (n.codec, n.pt, n.telephone_event_pt),
        (Codec::Pcmu, 0, Some(96))
    );
    assert_eq!((n.direction, n.ptime), (Direction::RecvOnly, 30));
    // Codec we never offered.
    let mut narrow = local();
    narrow.prefer = vec![Codec::Pcmu];
    let ours_pcmu = offer(&narrow, 1, 1);
    assert_eq!(
        accept_answer(&ours_pcmu, &ans(&["m=audio 6000 RTP/AVP 8"])),
        Err(OfferAnswerError::UnofferedCodec)
    );
    assert_eq!(
        accept_answer(
            &ours,
            &ans(&["m=audio 6000 RTP/AVP 18", "a=rtpmap:18 G729/8000"])
        ),
        Err(OfferAnswerError::NoCommonCodec)
    );
    assert_eq!(
        accept_answer(&ours, &ans(&["m=audio 0 RTP/AVP 0"])),
        Err(OfferAnswerError::NoUsableStream)
    );
    assert_eq!(
        accept_answer(
            &ours,
            &ans(&["m=audio 6000 RTP/AVP 0", "m=video 0 RTP/AVP 96"])
        ),
        Err(OfferAnswerError::MediaCountMismatch)
    );
    assert_eq!(
        accept_answer(&ours, &ans(&["m=video 6000 RTP/AVP 96"])),
        Err(OfferAnswerError::MediaTypeMismatch)
    );
}

// ---------------------------------------------------------------- golden files

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join("sdp")
}

/// Compares `actual` with the file at `path`; on mismatch writes `path.failed` and returns a
/// description of the failure.
fn check_golden(path: &Path, actual: &[u8]) -> Option<String> {
    let mut failed = path.as_os_str().to_owned();
    failed.push(".failed");
    match std::fs::read(path) {
        Ok(expected) if expected == actual => {
            let _ = std::fs::remove_file(&failed);
            None
        }
        other => {
            let _ = std::fs::write(&failed, actual);
            Some(format!(
                "{}: {} (actual written to .failed)",
                path.display(),
                if other.is_ok() { "differs" } else { "missing" }
            ))
        }
    }
}

fn golden_local() -> LocalMedia {
    local()
}

#[test]
fn golden_offer_answer_pairs() {
    let dir = fixture_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter_map(|n| n.strip_suffix(".offer.sdp").map(str::to_owned))
        .collect();
    names.sort();
    assert!(
        names.len() >= 10,
        "expected the golden set, found {names:?}"
    );
    let mut failures = Vec::new();
    for name in &names {
        let input = std::fs::read(dir.join(format!("{name}.offer.sdp"))).expect("read offer");
        let offer = match SessionDescription::parse(&input) {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{name}: offer does not parse: {e}"));
                continue;
            }
        };
        if input.ends_with(b"\r\n") && offer.to_bytes() != input {
            failures.push(format!("{name}: offer does not round-trip byte-exactly"));
        }
        match answer(&offer, &golden_local(), 4242, 1) {
            Ok((ans, neg)) => {
                let bytes = ans.to_bytes();
                failures.extend(check_golden(
                    &dir.join(format!("{name}.answer.sdp")),
                    &bytes,
                ));
                let neg_text = format!("{neg}\n");
                failures.extend(check_golden(
                    &dir.join(format!("{name}.negotiated")),
                    neg_text.as_bytes(),
                ));
                // The peer's view of our answer must agree with ours.
                let reparsed = SessionDescription::parse(&bytes).expect("answer re-parses");
                match accept_answer(&offer, &reparsed) {
                    Ok(peer) => {
                        assert_eq!((peer.codec, peer.pt), (neg.codec, neg.pt), "{name}");
                        assert_eq!(peer.telephone_event_pt, neg.telephone_event_pt, "{name}");
                        assert_eq!(peer.remote_addr.port(), 40000, "{name}");
                        assert_eq!(peer.direction, neg.direction.reversed(), "{name}");
                    }
                    Err(e) => failures.push(format!("{name}: peer rejects our answer: {e}")),
                }
            }
            Err(e) => {
                let text = format!("{} {:?}\n", e.status_code(), e);
                failures.extend(check_golden(
                    &dir.join(format!("{name}.error")),
                    text.as_bytes(),
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatches:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------- robustness

/// xorshift64* — deterministic, no dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        // n > 0 at every call site; the modulo bias is irrelevant here.
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Everything a caller might do with untrusted input; must never panic. Returns 0 if the
/// input did not parse, 1 if it parsed, 2 if coda could answer it.
fn exercise(input: &[u8]) -> u8 {
    let Ok(sdp) = SessionDescription::parse(input) else {
        return 0;
    };
    let bytes = sdp.to_bytes();
    if bytes.len() <= MAX_SDP_LEN {
        let again = SessionDescription::parse(&bytes).expect("serialised SDP re-parses");
        assert_eq!(again.to_bytes(), bytes, "serialisation is a fixed point");
    }
    let _ = sdp.origin();
    let _ = sdp.connection();
    for (i, m) in sdp.media().iter().enumerate() {
        let _ = sdp.media_connection(i);
        let _ = sdp.media_direction(i);
        let _ = m.rtpmaps().count();
        let _ = m.fmtps().map(|f| f.pairs().count()).sum::<usize>();
        let _ = m.fmtps().filter_map(|f| EventSet::parse(f.params)).count();
        let _ = m.crypto().count();
        let _ = m.t38();
        let _ = (m.ptime(), m.rtcp_mux());
    }
    let _ = accept_answer(&offer(&local(), 1, 1), &sdp);
    let Ok((ans, _)) = answer(&sdp, &local(), 1, 1) else {
        return 1;
    };
    let ab = ans.to_bytes();
    if ab.len() <= MAX_SDP_LEN {
        let parsed = SessionDescription::parse(&ab).expect("our answer parses");
        let _ = accept_answer(&sdp, &parsed);
    }
    2
}

#[test]
fn never_panics_on_pseudo_random_input() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let dir = fixture_dir();
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".sdp"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect();
    seeds.push(offer(&local(), 1, 1).to_bytes());
    let alphabet = b"vosctmab=: /\r\n0123456789.-IPN46audioRTP/AVPrtpmapfmtpcryptoT38|^";
    let mut counts = [0u32; 3];
    for i in 0..6000 {
        let input: Vec<u8> = match i % 3 {
            // Raw random bytes.
            0 => (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
            // Random SDP-ish tokens.
            1 => {
                let mut v = b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n".to_vec();
                for _ in 0..rng.below(300) {
                    v.push(alphabet[rng.below(alphabet.len())]);
                }
                v
            }
            // Mutated fixture: flips, insertions, deletions, truncation.
            _ => {
                let mut v = seeds[rng.below(seeds.len())].clone();
                for _ in 0..=rng.below(3) {
                    if v.is_empty() {
                        break;
                    }
                    let at = rng.below(v.len());
                    match rng.below(8) {
                        0 | 1 => v[at] = rng.next() as u8,
                        2 | 3 => v.insert(at, alphabet[rng.below(alphabet.len())]),
                        4 | 5 => {
                            v.remove(at);
                        }
                        6 => v.truncate(at),
                        _ => {
                            let from = rng.below(v.len());
                            let len = rng.below(40).min(v.len() - from);
                            let chunk = v[from..from + len].to_vec();
                            v.splice(at..at, chunk);
                        }
                    }
                }
                v
            }
        };
        counts[usize::from(exercise(&input))] += 1;
    }
    // Enough mutated inputs must still parse and be answerable, or the run exercises little.
    let [_, parsed, answered] = counts;
    assert!(parsed + answered > 600, "{counts:?}");
    assert!(answered > 300, "{counts:?}");
}
