//! RFC 4733 receiver: a stream of telephone-event packets → each key press exactly once.
//!
//! Decision: a digit is reported at the **first packet seen of a new event** (whatever that
//! packet is: start, update or end), not at its end. For voicemail the `#` that ends a
//! recording should act at once, and an event whose end packets are all lost is still
//! reported. The cost is that the reported digit carries no duration.
//!
//! An event is identified by its RTP timestamp (RFC 4733 §2.5.1.2: all packets of one event
//! share the timestamp of its start):
//! - same timestamp as the current event → update, retransmission or one of the three end
//!   copies (§2.5.1.4): nothing new. The marker bit alone does not start an event, since some
//!   senders repeat the first packet;
//! - an *older* timestamp (within 10 s) → straggler of an earlier event, ignored;
//! - a newer timestamp → a new event, unless it continues a long event (§2.5.1.3): same code,
//!   current event not ended, its duration had reached the 16-bit limit and the new timestamp
//!   is where that segment ended;
//! - same timestamp but a different code after the current one ended → a new event (tolerates
//!   senders that do not advance the timestamp between digits).
//!
//! Only the first event block of a payload is read (RFC 2198 redundancy uses another payload
//! type and is not handled here). Non-DTMF events (flash, fax tones …) are tracked for
//! de-duplication but yield nothing.

use std::time::{Duration, Instant};

use codecs::telephone_event::{event_to_digit, TelephoneEvent};

use super::packet::{RtpPacket, Ssrc};

/// Timestamps this far behind the current event are stragglers; further back means the
/// sender restarted its clock (10 s at 8 kHz).
const STALE_WINDOW: u32 = 80_000;
/// A segment is "full" once its duration is at least this (16-bit limit minus slack).
const FULL_SEGMENT: u16 = 0xff00;
/// Slack around the expected timestamp of a long event's next segment.
const SEGMENT_SLACK: u32 = 1600;
/// A long event's next segment must follow the previous packet within this time.
const SEGMENT_MAX_SILENCE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy)]
struct Current {
    timestamp: u32,
    code: u8,
    ended: bool,
    max_duration: u16,
    last_packet: Instant,
}

/// See the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct DtmfReceiver {
    ssrc: Option<Ssrc>,
    current: Option<Current>,
    events: u64,
}

impl DtmfReceiver {
    /// A receiver that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the current event (e.g. after re-negotiation).
    pub fn reset(&mut self) {
        self.ssrc = None;
        self.current = None;
    }

    /// Events recognised so far (DTMF or not).
    pub fn events_seen(&self) -> u64 {
        self.events
    }

    /// Feeds a telephone-event RTP packet; a new SSRC resets the state first.
    pub fn handle_packet(&mut self, now: Instant, pkt: &RtpPacket<'_>) -> Option<char> {
        if self.ssrc != Some(pkt.ssrc) {
            self.current = None;
            self.ssrc = Some(pkt.ssrc);
        }
        self.handle(now, pkt.timestamp, pkt.marker, pkt.payload)
    }

    /// Feeds the fields of one telephone-event packet. Returns the digit when this packet is
    /// the first one seen of a new DTMF event.
    pub fn handle(
        &mut self,
        now: Instant,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Option<char> {
        let _ = marker; // see module docs: the timestamp, not the marker, delimits events
        let ev = TelephoneEvent::parse(payload)?;
        if let Some(cur) = self.current.as_mut() {
            let ahead = timestamp.wrapping_sub(cur.timestamp);
            if ahead == 0 && (ev.event == cur.code || !cur.ended) {
                cur.ended |= ev.end;
                cur.max_duration = cur.max_duration.max(ev.duration);
                cur.last_packet = now;
                return None;
            }
            let behind = cur.timestamp.wrapping_sub(timestamp);
            if ahead != 0 && behind <= STALE_WINDOW {
                return None;
            }
            let continues = ev.event == cur.code
                && !cur.ended
                && cur.max_duration >= FULL_SEGMENT
                && ahead.abs_diff(u32::from(cur.max_duration)) <= SEGMENT_SLACK
                && now.saturating_duration_since(cur.last_packet) <= SEGMENT_MAX_SILENCE;
            if continues {
                *cur = Current {
                    timestamp,
                    code: ev.event,
                    ended: ev.end,
                    max_duration: ev.duration,
                    last_packet: now,
                };
                return None;
            }
        }
        self.current = Some(Current {
            timestamp,
            code: ev.event,
            ended: ev.end,
            max_duration: ev.duration,
            last_packet: now,
        });
        self.events += 1;
        event_to_digit(ev.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pl(code: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent {
            event: code,
            end,
            volume: 10,
            duration,
        }
        .write()
    }

    /// A whole event as a sender would send it: updates every 160, end ×3.
    fn event(ts: u32, code: u8, frames: u16) -> Vec<(u32, bool, [u8; 4])> {
        let mut v = Vec::new();
        for k in 1..=frames {
            let end = k == frames;
            v.push((ts, k == 1, pl(code, end, 160 * k)));
        }
        v.push((ts, false, pl(code, true, 160 * frames)));
        v.push((ts, false, pl(code, true, 160 * frames)));
        v
    }

    fn run(r: &mut DtmfReceiver, pkts: &[(u32, bool, [u8; 4])]) -> String {
        let t0 = Instant::now();
        pkts.iter()
            .enumerate()
            .filter_map(|(i, (ts, m, p))| {
                r.handle(t0 + Duration::from_millis(20 * i as u64), *ts, *m, p)
            })
            .collect()
    }

    #[test]
    fn rfc4733_2_5_1_2_digit_reported_at_first_packet() {
        let mut r = DtmfReceiver::new();
        let t0 = Instant::now();
        assert_eq!(r.handle(t0, 1000, true, &pl(11, false, 160)), Some('#'));
        assert_eq!(r.handle(t0, 1000, false, &pl(11, false, 320)), None);
    }

    #[test]
    fn rfc4733_2_5_1_end_retransmitted_counts_once() {
        let mut r = DtmfReceiver::new();
        assert_eq!(run(&mut r, &event(1000, 5, 5)), "5");
        assert_eq!(r.events_seen(), 1);
    }

    #[test]
    fn rfc4733_2_5_1_4_all_end_packets_lost_still_one_digit() {
        let mut r = DtmfReceiver::new();
        let mut pkts = event(1000, 1, 5);
        pkts.truncate(4); // no end packet at all
        pkts.extend(event(3000, 2, 5));
        assert_eq!(run(&mut r, &pkts), "12");
    }

    #[test]
    fn rfc4733_2_5_1_2_same_digit_twice_new_timestamp() {
        let mut r = DtmfReceiver::new();
        let mut pkts = event(1000, 9, 4);
        pkts.extend(event(2600, 9, 4));
        assert_eq!(run(&mut r, &pkts), "99");
    }

    #[test]
    fn rfc4733_2_5_1_2_start_packet_lost_and_only_end_seen() {
        let mut r = DtmfReceiver::new();
        let pkts = event(1000, 0, 5);
        assert_eq!(run(&mut r, &pkts[4..]), "0");
    }

    #[test]
    fn rfc4733_2_5_1_2_out_of_order_and_stragglers() {
        let mut r = DtmfReceiver::new();
        let a = event(1000, 1, 4);
        let b = event(2440, 2, 4);
        // Update before start, then a straggler of event 1 after event 2 began.
        let pkts = vec![
            a[1], a[0], a[2], b[0], a[3], b[1], a[4], b[2], b[3], b[4], b[5],
        ];
        assert_eq!(run(&mut r, &pkts), "12");
    }

    #[test]
    fn rfc4733_2_5_1_2_repeated_marker_packet_is_not_a_new_event() {
        let mut r = DtmfReceiver::new();
        let p = (1000, true, pl(4, false, 160));
        assert_eq!(run(&mut r, &[p, p, p]), "4");
    }

    #[test]
    fn rfc4733_2_5_1_3_long_event_segments_count_once() {
        let mut r = DtmfReceiver::new();
        let t0 = Instant::now();
        let mut out = String::new();
        let mut push = |i: u64, ts: u32, m: bool, p: [u8; 4]| {
            if let Some(c) = r.handle(t0 + Duration::from_millis(20 * i), ts, m, &p) {
                out.push(c);
            }
        };
        // First segment grows to 0xffff without end bit.
        let mut i = 0;
        for k in 1..=409u32 {
            push(i, 0, k == 1, pl(3, false, (160 * k).min(0xffff) as u16));
            i += 1;
        }
        // Next segment starts at ts 0xffff with a fresh duration.
        for k in 1..=10u32 {
            push(i, 0xffff, false, pl(3, k == 10, (160 * k) as u16));
            i += 1;
        }
        assert_eq!(out, "3");
    }

    #[test]
    fn rfc4733_2_5_1_2_same_timestamp_reused_for_next_digit() {
        let mut r = DtmfReceiver::new();
        let mut pkts = event(1000, 1, 3);
        pkts.extend(event(1000, 2, 3));
        assert_eq!(run(&mut r, &pkts), "12");
    }

    #[test]
    fn rfc4733_3_2_non_dtmf_events_and_garbage_yield_nothing() {
        let mut r = DtmfReceiver::new();
        let t0 = Instant::now();
        assert_eq!(r.handle(t0, 1, true, &pl(16, false, 160)), None); // flash
        assert_eq!(r.handle(t0, 2000, true, &[1, 2]), None);
        assert_eq!(r.handle(t0, 2000, true, &[]), None);
        assert_eq!(r.events_seen(), 1);
        assert_eq!(r.handle(t0, 3000, true, &pl(15, false, 160)), Some('D'));
    }

    #[test]
    fn timestamp_restart_far_behind_is_a_new_event() {
        let mut r = DtmfReceiver::new();
        let mut pkts = event(1_000_000, 7, 3);
        pkts.extend(event(500, 8, 3));
        assert_eq!(run(&mut r, &pkts), "78");
    }

    #[test]
    fn ssrc_change_resets() {
        let mut r = DtmfReceiver::new();
        let t0 = Instant::now();
        let p = pl(1, false, 160);
        let mk = |ssrc| RtpPacket {
            marker: true,
            payload_type: 101,
            seq: super::super::packet::SeqNo(1),
            timestamp: 1000,
            ssrc: Ssrc(ssrc),
            csrc_raw: &[],
            extension: None,
            padding: 0,
            payload: &p,
        };
        assert_eq!(r.handle_packet(t0, &mk(1)), Some('1'));
        assert_eq!(r.handle_packet(t0, &mk(1)), None);
        assert_eq!(r.handle_packet(t0, &mk(2)), Some('1'));
    }
}
