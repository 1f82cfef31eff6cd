//! Fuzz target: arbitrary bytes through the SIP datagram parser, the stream framer, every
//! typed header view, validation and re-serialisation. Nothing may panic, and a message that
//! parsed must re-parse after serialising.
//!
//! Run: `cargo +nightly fuzz run sip_parse` from the repository root.

#![no_main]

use coda::sip::{self, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(n)) = sip::frame(data) {
        assert!(n <= data.len());
    }
    let Ok(msg) = sip::parse(data) else {
        return;
    };
    let h = msg.headers();
    let _ = h.vias();
    let _ = h.from();
    let _ = h.to();
    let _ = h.contacts();
    let _ = h.routes();
    let _ = h.record_routes();
    let _ = h.cseq();
    let _ = h.call_id();
    let _ = h.max_forwards();
    let _ = h.content_type();
    let _ = h.expires();
    let _ = h.retry_after();
    let _ = h.date();
    let _ = h.history_info();
    let _ = h.diversions();
    match &msg {
        Message::Request(r) => {
            let _ = sip::validate_request(r);
            let _ = r.uri.to_string();
            let _ = sip::transaction::TransactionKey::server(r);
        }
        Message::Response(r) => {
            let _ = sip::validate_response(r);
        }
    }
    // Serialising may lengthen lines (`l:0` → `Content-Length: 0`), so re-parse with room.
    let roomy = sip::Limits {
        max_message_size: 2 * sip::MAX_MESSAGE_SIZE,
        max_line_length: 2 * sip::MAX_LINE_LENGTH,
        ..sip::Limits::DEFAULT
    };
    let bytes = msg.to_bytes();
    assert!(
        sip::parse_with(&bytes, &roomy).is_ok(),
        "serialised message must re-parse"
    );
});
