//! Fuzz target: SDP parsing, typed views and offer/answer must never panic, and
//! serialisation must be a fixed point of parsing.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use coda::sdp::{
    accept_answer, answer, offer, EventSet, LocalMedia, SessionDescription, MAX_SDP_LEN,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = SessionDescription::parse(data) else {
        return;
    };

    // Round trip: what we print parses again to the same bytes (CRLF output may outgrow the
    // size limit when the input used LF, so only check within the limit).
    let bytes = sdp.to_bytes();
    if bytes.len() <= MAX_SDP_LEN {
        let again = SessionDescription::parse(&bytes).expect("serialised SDP must re-parse");
        assert_eq!(again.to_bytes(), bytes);
    }

    // Typed views.
    let _ = (
        sdp.origin(),
        sdp.connection(),
        sdp.direction(),
        sdp.session_name(),
    );
    for (i, m) in sdp.media().iter().enumerate() {
        let _ = (sdp.media_connection(i), sdp.media_direction(i));
        let _ = m.rtpmaps().count();
        for f in m.fmtps() {
            let _ = f.pairs().count();
            let _ = EventSet::parse(f.params).map(|e| e.to_string());
        }
        let _ = m.crypto().count();
        let _ = (m.t38(), m.ptime(), m.rtcp_mux(), m.payload_types().count());
    }

    // Offer/answer in both roles.
    let mut local = LocalMedia::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)), 40000);
    local.alt_addr = Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 5)));
    let _ = accept_answer(&offer(&local, 1, 1), &sdp);
    if let Ok((ans, _)) = answer(&sdp, &local, 1, 1) {
        let ab = ans.to_bytes();
        if ab.len() <= MAX_SDP_LEN {
            let parsed = SessionDescription::parse(&ab).expect("our answer must parse");
            let _ = accept_answer(&sdp, &parsed);
        }
    }
});
