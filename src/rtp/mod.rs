//! RTP and RTCP (RFC 3550), RFC 4733 telephone-events, a recorder jitter buffer and a
//! drift-free sender clock.
//!
//! Everything here is sans-IO: nothing reads the clock or touches a socket. Time comes in as
//! `now: Instant` arguments and packets go out as bytes written into caller-owned `Vec<u8>`s.
//!
//! | module | what |
//! |---|---|
//! | [`packet`] | RTP header parse/write, [`Ssrc`], [`SeqNo`], extended sequence numbers (RFC 3550 §5.1, A.1) |
//! | [`jitter`] | reordering jitter buffer for a recorder: audio frames and gaps, reception stats (A.8 jitter) |
//! | [`pacer`] | 20 ms drift-free send clock and [`RtpSender`] (audio + RFC 4733 §2.5 event sending) |
//! | [`rtcp`] | SR/RR + SDES CNAME compound packets, tolerant compound parser, fixed 5 s interval |
//! | [`dtmf`] | RFC 4733 receiver: telephone-event packets → each digit exactly once |
//!
//! RTP and RTCP multiplexed on one port (RFC 5761) can be told apart with [`is_rtcp`].

pub mod dtmf;
pub mod jitter;
pub mod pacer;
pub mod packet;
pub mod rtcp;

pub use dtmf::DtmfReceiver;
pub use jitter::{Frame, JitterBuffer, JitterConfig, JitterStats, PushOutcome, ReceptionReport};
pub use pacer::{Pacer, RtpSender, SenderConfig, SentFrame};
pub use packet::{write_rtp, RtpError, RtpPacket, SeqNo, Ssrc};

/// RTP clock rate of G.711 and of telephone-events negotiated with it (Hz).
pub const CLOCK_RATE: u32 = 8000;

/// Samples (timestamp units at 8 kHz) in one 20 ms frame.
pub const SAMPLES_PER_FRAME: u32 = 160;

/// Largest datagram the RTP/RTCP code will build or accept as meaningful (bytes).
///
/// Parsers accept any length (they only ever borrow); builders never exceed this.
pub const MAX_PACKET_LEN: usize = 1500;

/// RFC 5761 §4: on a multiplexed port, a datagram whose second octet is 192..=223 (RTCP packet
/// types 192–223, i.e. RTP payload types 64–95 with the marker bit) is RTCP.
pub fn is_rtcp(datagram: &[u8]) -> bool {
    matches!(datagram.get(1), Some(192..=223)) && datagram.first().is_some_and(|b| b >> 6 == 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5761_4_demux_rtp_and_rtcp() {
        let mut rtp = Vec::new();
        write_rtp(&mut rtp, 0, true, SeqNo(1), 2, Ssrc(3), &[0xff; 160]);
        assert!(!is_rtcp(&rtp));
        assert!(is_rtcp(&[0x80, 200, 0, 6]));
        assert!(is_rtcp(&[0x81, 201, 0, 7]));
        assert!(!is_rtcp(&[0x80]));
        assert!(!is_rtcp(&[]));
        assert!(!is_rtcp(&[0x00, 200]));
    }

    /// xorshift64*: deterministic pseudo-random bytes for the no-panic sweep.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    /// Sender (paced, with a `#` in the middle) → lossy, reordering network → receiver with
    /// jitter buffer and RFC 4733 receiver, all on a virtual clock.
    #[test]
    fn end_to_end_paced_stream_with_loss_reorder_and_digit() {
        use std::time::{Duration, Instant};
        let t0 = Instant::now();
        let mut rng = XorShift(42);
        let mut pacer = Pacer::new_20ms(t0);
        let mut tx = RtpSender::new(SenderConfig::new(Ssrc(77), SeqNo(65_500), 4_000_000_000));
        let mut jb = JitterBuffer::new(JitterConfig {
            audio_payload_type: Some(0),
            ..JitterConfig::default()
        });
        let mut rx_dtmf = DtmfReceiver::new();
        // (arrival time, datagram)
        let mut in_flight: Vec<(Instant, Vec<u8>)> = Vec::new();
        let mut dropped_audio = 0u64;
        let mut digits = String::new();
        let mut out = Vec::new();
        let frames = 150u64;
        for k in 0..frames {
            let now = pacer.next_deadline();
            if k == 50 {
                tx.send_digit('#', Duration::from_millis(120), 10).unwrap();
            }
            let mut buf = Vec::new();
            let kind = tx.write_frame(&[k as u8; 160], &mut buf);
            assert_eq!(pacer.on_sent(now), 0);
            // 5 % loss (never the first packet), 0–45 ms delay.
            if k > 0 && rng.next().is_multiple_of(20) {
                dropped_audio += u64::from(kind == SentFrame::Audio);
                continue;
            }
            let delay = Duration::from_millis(rng.next() % 46);
            in_flight.push((now + delay, buf));
            // Deliver whatever has arrived by now, in arrival order.
            in_flight.sort_by_key(|(t, _)| *t);
            let n = in_flight.iter().take_while(|(t, _)| *t <= now).count();
            for (at, d) in in_flight.drain(..n) {
                let p = RtpPacket::parse(&d).unwrap();
                if p.payload_type == 101 {
                    digits.extend(rx_dtmf.handle_packet(at, &p));
                }
                jb.push_packet(at, &p);
            }
            while let Some(f) = jb.pop(now) {
                out.push(f);
            }
        }
        let end = pacer.next_deadline() + Duration::from_secs(1);
        for (at, d) in in_flight.drain(..) {
            jb.push_packet(at, &RtpPacket::parse(&d).unwrap());
        }
        jb.flush();
        while let Some(f) = jb.pop(end) {
            out.push(f);
        }
        assert_eq!(digits, "#");
        // Audio comes out in order and audio + gaps tile the timeline exactly.
        let mut expect_ts: Option<u32> = None;
        let mut lost = 0;
        let mut last_idx = None;
        for f in &out {
            match f {
                Frame::Audio { timestamp, payload } => {
                    if let Some(e) = expect_ts {
                        assert_eq!(*timestamp, e);
                    }
                    assert!(last_idx < Some(payload[0]), "in order");
                    last_idx = Some(payload[0]);
                    expect_ts = Some(timestamp.wrapping_add(160));
                }
                Frame::Gap {
                    timestamp,
                    samples,
                    lost_packets,
                } => {
                    assert_eq!(Some(*timestamp), expect_ts);
                    expect_ts = Some(timestamp.wrapping_add(*samples));
                    lost += lost_packets;
                }
            }
        }
        let first = 4_000_000_000u32;
        let audio_frames = out
            .iter()
            .filter(|f| matches!(f, Frame::Audio { .. }))
            .count();
        assert!(audio_frames > 120, "{audio_frames}");
        // Timeline ends where the last audio frame (if it arrived) ends.
        let span = expect_ts.unwrap().wrapping_sub(first);
        assert_eq!(span % 160, 0);
        assert!(span <= 160 * frames as u32);
        assert_eq!(jb.stats().lost, lost);
        assert!(
            lost <= dropped_audio + 7,
            "lost {lost}, dropped {dropped_audio}"
        );
        assert_eq!(jb.stats().late, 0, "45 ms jitter fits in the 60 ms delay");
    }

    /// Random buffers, and valid packets with random bytes flipped, through every parser and
    /// receiver: nothing may panic.
    #[test]
    fn parsers_never_panic_on_random_input() {
        use std::time::{Duration, Instant};
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut dtmf = DtmfReceiver::new();
        let mut seeds: Vec<Vec<u8>> = Vec::new();
        let mut v = Vec::new();
        write_rtp(
            &mut v,
            101,
            true,
            SeqNo(9),
            1000,
            Ssrc(5),
            &[11, 0x8a, 5, 0],
        );
        seeds.push(v);
        let mut v = Vec::new();
        let info = rtcp::SenderInfo::default();
        let blk = rtcp::ReportBlock::default();
        rtcp::write_report(&mut v, Ssrc(1), Some(&info), Some(&blk), "cname");
        rtcp::write_bye(&mut v, Ssrc(1), Some("bye"));
        seeds.push(v);
        let mut parsed_ok = 0;
        for i in 0..6000u64 {
            let buf: Vec<u8> = if i % 2 == 0 {
                let len = (rng.next() % 96) as usize;
                (0..len).map(|_| rng.next() as u8).collect()
            } else {
                let mut b = seeds[(i as usize / 2) % seeds.len()].clone();
                for _ in 0..1 + rng.next() % 4 {
                    let at = (rng.next() as usize) % b.len();
                    b[at] = rng.next() as u8;
                }
                let cut = (rng.next() as usize) % (b.len() + 1);
                if rng.next().is_multiple_of(4) {
                    b.truncate(cut);
                }
                b
            };
            let now = t0 + Duration::from_millis(i);
            if let Ok(p) = RtpPacket::parse(&buf) {
                parsed_ok += 1;
                let _ = p.csrcs().count();
                let _ = jb.push_packet(now, &p);
                let _ = dtmf.handle_packet(now, &p);
            }
            for p in rtcp::parse_compound(&buf).flatten() {
                let _ = p.cnames().count();
                let _ = p.bye_sources().count();
                if let rtcp::RtcpPacket::SenderReport { reports, .. }
                | rtcp::RtcpPacket::ReceiverReport { reports, .. } = p
                {
                    let _ = reports.iter().count();
                }
            }
            let _ = rtcp::validate_compound(&buf);
            let _ = is_rtcp(&buf);
            while jb.pop(now).is_some() {}
            let _ = jb.reception_report();
        }
        assert!(
            parsed_ok > 100,
            "sweep should reach the parsers' happy path too"
        );
        assert!(jb.len() <= 2 * jb.config().max_packets);
    }
}
