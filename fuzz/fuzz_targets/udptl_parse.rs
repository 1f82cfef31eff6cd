//! Fuzz target: UDPTL parsing and the receiver must never panic; a parsed packet must
//! re-encode to bytes that parse to the same packet; the receiver must hand out sequence
//! numbers in order, each at most once.
#![no_main]

use coda::fax::udptl::{UdptlPacket, UdptlReceiver, UdptlSender};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The whole input as one datagram.
    if let Ok(p) = UdptlPacket::parse(data) {
        let bytes = p.to_bytes();
        assert_eq!(bytes.len(), p.encoded_len());
        let again = UdptlPacket::parse(&bytes).expect("encoded packet must re-parse");
        assert_eq!(again, p);
    }

    // The input as a stream of datagrams: 1 length octet, then that many octets.
    let mut rx = UdptlReceiver::new();
    let mut last: Option<u16> = None;
    let mut rest = data;
    while let Some((&n, tail)) = rest.split_first() {
        let n = usize::from(n).min(tail.len());
        let (datagram, tail) = tail.split_at(n);
        rest = tail;
        let before = rx.stats().restarts;
        if let Ok(ifps) = rx.receive(datagram) {
            if rx.stats().restarts != before {
                last = None;
            }
            for (seq, _) in ifps {
                if let Some(prev) = last {
                    let step = seq.wrapping_sub(prev);
                    assert!(
                        step != 0 && step < 0x8000,
                        "out of order: {prev} then {seq}"
                    );
                }
                last = Some(seq);
            }
        }
    }

    // The input as IFPs through a sender and back.
    let mut tx = UdptlSender::new(data.first().map_or(3, |d| d % 8), 400);
    let mut rx = UdptlReceiver::new();
    for chunk in data.chunks(37) {
        let d = tx.packet(chunk);
        let out = rx.receive(&d).expect("our own datagram must parse");
        assert_eq!(out.last().map(|(_, ifp)| ifp.as_slice()), Some(chunk));
    }
});
