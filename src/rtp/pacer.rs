//! Sending side: a drift-free 20 ms frame clock ([`Pacer`]) and the RTP header state of an
//! outgoing stream ([`RtpSender`]), including RFC 4733 §2.5 telephone-event sending.
//!
//! Typical driver loop (the only place that sleeps or reads the clock):
//!
//! ```text
//! loop {
//!     sleep_until(pacer.next_deadline());
//!     let now = Instant::now();
//!     while pacer.is_due(now) {
//!         buf.clear();
//!         sender.write_frame(&next_160_bytes_of_audio, &mut buf);
//!         socket.send(&buf);
//!         let skipped = pacer.on_sent(now);
//!         sender.skip_frames(skipped);       // keep RTP time on wall-clock time
//!         source.skip(skipped * 160);        // and the prompt, too
//!     }
//! }
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use codecs::telephone_event::{digit_to_event, event_to_digit, TelephoneEvent};

use super::packet::{write_rtp, SeqNo, Ssrc};
use super::rtcp::{NtpTime, SenderInfo};

/// One 20 ms frame.
pub const FRAME: Duration = Duration::from_millis(20);

/// Missed frames sent back-to-back after a late wake-up; older ones are skipped.
///
/// Choice: after a late wake-up the frame that is due plus at most **2** missed frames go out
/// at once (a 60 ms burst); anything older is skipped and RTP time jumps ahead instead.
/// Receivers typically buffer 40–60 ms, so a burst of three is absorbed, while packets more
/// than ~60 ms behind their playout time would only be thrown away as late by the receiver and
/// would add queueing delay for the rest of the call. Sending all of a long backlog would
/// also overflow small jitter buffers. Skipping keeps our stream on wall-clock time.
pub const MAX_BURST: u64 = 2;

/// Drift-free frame clock: the deadline of frame `k` is `start + k × period`, computed from the
/// start every time, so sleep error never accumulates.
#[derive(Debug, Clone)]
pub struct Pacer {
    start: Instant,
    period: Duration,
    frame: u64,
    skipped: u64,
}

impl Pacer {
    /// A clock whose frame 0 is due at `start`. A zero `period` is treated as 1 ms.
    pub fn new(start: Instant, period: Duration) -> Self {
        let period = if period.is_zero() {
            Duration::from_millis(1)
        } else {
            period
        };
        Pacer {
            start,
            period,
            frame: 0,
            skipped: 0,
        }
    }

    /// A 20 ms clock.
    pub fn new_20ms(start: Instant) -> Self {
        Self::new(start, FRAME)
    }

    fn deadline_of(&self, k: u64) -> Instant {
        let nanos = self.period.as_nanos().saturating_mul(u128::from(k));
        let d = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        // Overflow would need centuries of frames; stay put rather than panic.
        self.start.checked_add(d).unwrap_or(self.start)
    }

    /// When the next frame is due.
    pub fn next_deadline(&self) -> Instant {
        self.deadline_of(self.frame)
    }

    /// Index of the next frame to send.
    pub fn frame_index(&self) -> u64 {
        self.frame
    }

    /// Frames skipped so far because of late wake-ups.
    pub fn skipped_total(&self) -> u64 {
        self.skipped
    }

    /// `true` when the next frame should be sent at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        now >= self.next_deadline()
    }

    /// Records that the due frame was sent at `now`. Returns how many further frames were
    /// skipped because the caller is more than [`MAX_BURST`] frames behind (0 normally).
    pub fn on_sent(&mut self, now: Instant) -> u64 {
        self.frame += 1;
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        // Frames whose deadline is <= now.
        let due = if now >= self.start {
            u64::try_from(elapsed / self.period.as_nanos())
                .unwrap_or(u64::MAX)
                .saturating_add(1)
        } else {
            0
        };
        let behind = due.saturating_sub(self.frame);
        if behind > MAX_BURST {
            let skip = behind - MAX_BURST;
            self.frame += skip;
            self.skipped += skip;
            skip
        } else {
            0
        }
    }
}

/// Initial values of an [`RtpSender`]; the caller supplies the randomness (RFC 3550 §5.1:
/// SSRC, first sequence number and first timestamp SHOULD be random).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderConfig {
    /// Our SSRC.
    pub ssrc: Ssrc,
    /// Sequence number of the first packet.
    pub initial_seq: SeqNo,
    /// Timestamp of the first frame.
    pub initial_timestamp: u32,
    /// Audio payload type (0 PCMU, 8 PCMA).
    pub payload_type: u8,
    /// Negotiated telephone-event payload type, if any.
    pub event_payload_type: Option<u8>,
    /// Timestamp units per frame (160 = 20 ms at 8 kHz).
    pub frame_samples: u32,
}

impl SenderConfig {
    /// PCMU, telephone-event 101, 20 ms frames.
    pub fn new(ssrc: Ssrc, initial_seq: SeqNo, initial_timestamp: u32) -> Self {
        SenderConfig {
            ssrc,
            initial_seq,
            initial_timestamp,
            payload_type: 0,
            event_payload_type: Some(101),
            frame_samples: super::SAMPLES_PER_FRAME,
        }
    }
}

/// Why a digit could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventError {
    /// Not one of `0-9 * # A-D`.
    NotADigit(char),
    /// No telephone-event payload type was negotiated.
    NotNegotiated,
    /// Too many digits waiting.
    QueueFull,
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventError::NotADigit(c) => write!(f, "{c:?} is not a DTMF digit"),
            EventError::NotNegotiated => f.write_str("telephone-event not negotiated"),
            EventError::QueueFull => f.write_str("too many DTMF digits queued"),
        }
    }
}

impl std::error::Error for EventError {}

/// What [`RtpSender::write_frame`] put in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentFrame {
    /// The audio payload.
    Audio,
    /// A telephone-event packet instead of audio.
    Event {
        /// The digit being sent.
        digit: char,
        /// First packet of the event (marker set).
        start: bool,
        /// Final packet (E bit), one of the three copies.
        end: bool,
    },
}

/// Most digits that can wait in the queue.
pub const MAX_QUEUED_DIGITS: usize = 32;
/// Longest event duration this sender produces (timestamp units): long-event segmentation
/// (RFC 4733 §2.5.1.3) is not implemented, so events stop before the 16-bit field overflows.
pub const MAX_EVENT_SAMPLES: u32 = 0xff00;
/// Times the final event packet is sent (RFC 4733 §2.5.1.4).
pub const END_COPIES: u8 = 3;
/// Audio frames between the last end packet of one digit and the start of the next queued one.
pub const INTER_DIGIT_FRAMES: u8 = 1;

#[derive(Debug, Clone, Copy)]
struct QueuedEvent {
    code: u8,
    samples: u32,
    volume: u8,
}

#[derive(Debug, Clone, Copy)]
struct ActiveEvent {
    queued: QueuedEvent,
    start_ts: u32,
    started: bool,
    final_duration: Option<u16>,
    ends_sent: u8,
}

/// Header state of one outgoing RTP stream: SSRC, sequence numbers, timestamps advancing one
/// frame per [`write_frame`](RtpSender::write_frame) call, the marker bit on the first packet
/// after start or silence, and RFC 4733 §2.5 digit sending.
///
/// Telephone-events replace audio frames while they play: the first packet carries the
/// marker, every packet of the event carries the event's start timestamp and a growing
/// duration, and the final packet (E bit) is sent [`END_COPIES`] times on consecutive ticks,
/// each with a new sequence number. The media clock keeps running meanwhile.
#[derive(Debug, Clone)]
pub struct RtpSender {
    cfg: SenderConfig,
    seq: SeqNo,
    ts: u32,
    marker_next: bool,
    queue: VecDeque<QueuedEvent>,
    event: Option<ActiveEvent>,
    gap_left: u8,
    packets: u64,
    octets: u64,
}

impl RtpSender {
    /// A sender about to send its first frame.
    pub fn new(cfg: SenderConfig) -> Self {
        let cfg = SenderConfig {
            frame_samples: cfg.frame_samples.max(1),
            ..cfg
        };
        RtpSender {
            cfg,
            seq: cfg.initial_seq,
            ts: cfg.initial_timestamp,
            marker_next: true,
            queue: VecDeque::new(),
            event: None,
            gap_left: 0,
            packets: 0,
            octets: 0,
        }
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> Ssrc {
        self.cfg.ssrc
    }

    /// Sequence number the next packet will carry.
    pub fn next_seq(&self) -> SeqNo {
        self.seq
    }

    /// RTP timestamp of the next frame (for the RTCP SR "RTP timestamp").
    pub fn timestamp(&self) -> u32 {
        self.ts
    }

    /// Packets written so far (RTCP SR sender's packet count).
    pub fn packets_sent(&self) -> u64 {
        self.packets
    }

    /// Payload octets written so far (RTCP SR sender's octet count).
    pub fn octets_sent(&self) -> u64 {
        self.octets
    }

    /// Sender information for an RTCP SR made at wall-clock `ntp` (RFC 3550 §6.4.1). The RTP
    /// timestamp is that of the next frame, i.e. accurate to one frame; counts wrap at 2³².
    pub fn sender_info(&self, ntp: NtpTime) -> SenderInfo {
        SenderInfo {
            ntp,
            rtp_timestamp: self.ts,
            packet_count: self.packets as u32, // the SR field wraps
            octet_count: self.octets as u32,   // the SR field wraps
        }
    }

    /// `true` while a digit is being sent or waits in the queue.
    pub fn event_in_progress(&self) -> bool {
        self.event.is_some() || !self.queue.is_empty()
    }

    /// Queues a DTMF digit lasting `duration` (rounded up to whole frames, at least one,
    /// at most [`MAX_EVENT_SAMPLES`]) at `volume` −dBm0 (0..=63, 10 is usual).
    pub fn send_digit(
        &mut self,
        digit: char,
        duration: Duration,
        volume: u8,
    ) -> Result<(), EventError> {
        let code = digit_to_event(digit).ok_or(EventError::NotADigit(digit))?;
        if self.cfg.event_payload_type.is_none() {
            return Err(EventError::NotNegotiated);
        }
        if self.queue.len() >= MAX_QUEUED_DIGITS {
            return Err(EventError::QueueFull);
        }
        let f = self.cfg.frame_samples;
        let samples = (duration.as_micros() * 8 / 1000).min(u128::from(MAX_EVENT_SAMPLES)) as u32; // bounded by min
        let frames = samples.div_ceil(f).max(1);
        let samples = (frames * f).min(MAX_EVENT_SAMPLES);
        self.queue.push_back(QueuedEvent {
            code,
            samples,
            volume: volume.min(63),
        });
        Ok(())
    }

    /// Advances RTP time by `frames` frames without sending (silence suppression, or frames
    /// the [`Pacer`] skipped); the next audio packet carries the marker bit.
    pub fn skip_frames(&mut self, frames: u64) {
        if frames == 0 {
            return;
        }
        let adv = (frames as u32).wrapping_mul(self.cfg.frame_samples); // RTP time wraps mod 2^32
        self.ts = self.ts.wrapping_add(adv);
        self.marker_next = true;
    }

    /// Writes this tick's packet into `buf` (appending): a telephone-event packet while a digit
    /// is being sent, else `audio` as the payload. Advances RTP time by one frame.
    pub fn write_frame(&mut self, audio: &[u8], buf: &mut Vec<u8>) -> SentFrame {
        let f = self.cfg.frame_samples;
        if self.event.is_none() && self.gap_left == 0 {
            if let Some(q) = self.queue.pop_front() {
                self.event = Some(ActiveEvent {
                    queued: q,
                    start_ts: self.ts,
                    started: false,
                    final_duration: None,
                    ends_sent: 0,
                });
            }
        }
        let sent = match (self.event.as_mut(), self.cfg.event_payload_type) {
            (Some(ev), Some(pt)) => {
                let elapsed = self.ts.wrapping_add(f).wrapping_sub(ev.start_ts);
                let (duration, end) = match ev.final_duration {
                    Some(d) => (d, true),
                    None if elapsed >= ev.queued.samples => {
                        let d = elapsed.min(u32::from(u16::MAX)) as u16; // bounded by min
                        ev.final_duration = Some(d);
                        (d, true)
                    }
                    None => (elapsed as u16, false), // elapsed < samples <= MAX_EVENT_SAMPLES
                };
                let start = !ev.started;
                ev.started = true;
                if end {
                    ev.ends_sent += 1;
                }
                let payload = TelephoneEvent {
                    event: ev.queued.code,
                    end,
                    volume: ev.queued.volume,
                    duration,
                }
                .write();
                write_rtp(
                    buf,
                    pt,
                    start,
                    self.seq,
                    ev.start_ts,
                    self.cfg.ssrc,
                    &payload,
                );
                self.octets += payload.len() as u64;
                // Invariant: queued codes come from digit_to_event, so they map back.
                let digit = event_to_digit(ev.queued.code).unwrap_or('?');
                if ev.ends_sent >= END_COPIES {
                    self.event = None;
                    self.gap_left = INTER_DIGIT_FRAMES;
                }
                SentFrame::Event { digit, start, end }
            }
            _ => {
                self.event = None;
                self.gap_left = self.gap_left.saturating_sub(1);
                write_rtp(
                    buf,
                    self.cfg.payload_type,
                    self.marker_next,
                    self.seq,
                    self.ts,
                    self.cfg.ssrc,
                    audio,
                );
                self.marker_next = false;
                self.octets += audio.len() as u64;
                SentFrame::Audio
            }
        };
        self.packets += 1;
        self.seq = self.seq.next();
        self.ts = self.ts.wrapping_add(f);
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::super::packet::RtpPacket;
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn deadlines_are_start_plus_k_periods() {
        let t0 = Instant::now();
        let mut p = Pacer::new_20ms(t0);
        assert_eq!(p.next_deadline(), t0);
        // Wake up a little late every time: error must not accumulate.
        for k in 1..=1000u64 {
            let now = p.next_deadline() + Duration::from_micros(900);
            assert!(p.is_due(now));
            assert_eq!(p.on_sent(now), 0);
            assert_eq!(p.next_deadline(), t0 + ms(20 * k));
        }
        assert_eq!(p.frame_index(), 1000);
    }

    #[test]
    fn early_wakeup_is_not_due() {
        let t0 = Instant::now();
        let mut p = Pacer::new_20ms(t0);
        p.on_sent(t0);
        assert!(!p.is_due(t0 + ms(19)));
        assert!(p.is_due(t0 + ms(20)));
    }

    #[test]
    fn small_lateness_catches_up_with_burst() {
        let t0 = Instant::now();
        let mut p = Pacer::new_20ms(t0);
        // Wake at 45 ms: frames 0, 1, 2 are due; all three go out.
        let now = t0 + ms(45);
        let mut sent = 0;
        while p.is_due(now) {
            assert_eq!(p.on_sent(now), 0);
            sent += 1;
        }
        assert_eq!(sent, 3);
        assert_eq!(p.next_deadline(), t0 + ms(60));
        assert_eq!(p.skipped_total(), 0);
    }

    #[test]
    fn long_stall_skips_all_but_max_burst() {
        let t0 = Instant::now();
        let mut p = Pacer::new_20ms(t0);
        p.on_sent(t0);
        // Stalled 200 ms: frames 1..=10 are due.
        let now = t0 + ms(200);
        let mut sent = 0;
        let mut skipped = 0;
        while p.is_due(now) {
            skipped += p.on_sent(now);
            sent += 1;
        }
        assert_eq!(sent, 1 + MAX_BURST);
        assert_eq!(skipped, 10 - 1 - MAX_BURST);
        assert_eq!(p.next_deadline(), t0 + ms(220));
        assert_eq!(p.skipped_total(), skipped);
    }

    fn sender() -> RtpSender {
        RtpSender::new(SenderConfig::new(Ssrc(0xabc), SeqNo(65534), 0xffff_ff00))
    }

    fn tick(s: &mut RtpSender) -> (SentFrame, Vec<u8>) {
        let mut buf = Vec::new();
        let k = s.write_frame(&[0xff; 160], &mut buf);
        (k, buf)
    }

    #[test]
    fn rfc3550_5_1_seq_and_timestamp_advance_and_wrap() {
        let mut s = sender();
        let (_, a) = tick(&mut s);
        let (_, b) = tick(&mut s);
        let (_, c) = tick(&mut s);
        let (a, b, c) = (
            RtpPacket::parse(&a).unwrap(),
            RtpPacket::parse(&b).unwrap(),
            RtpPacket::parse(&c).unwrap(),
        );
        assert_eq!(
            (a.seq, b.seq, c.seq),
            (SeqNo(65534), SeqNo(65535), SeqNo(0))
        );
        assert_eq!(a.timestamp, 0xffff_ff00);
        assert_eq!(b.timestamp, 0xffff_ffa0);
        assert_eq!(c.timestamp, 0x40);
        assert_eq!(a.ssrc, Ssrc(0xabc));
        assert_eq!(a.payload_type, 0);
        assert_eq!(a.payload.len(), 160);
        assert_eq!(s.packets_sent(), 3);
        assert_eq!(s.octets_sent(), 480);
    }

    #[test]
    fn rfc3551_4_1_marker_on_first_packet_and_after_silence() {
        let mut s = sender();
        let m = |b: Vec<u8>| RtpPacket::parse(&b).unwrap().marker;
        assert!(m(tick(&mut s).1));
        assert!(!m(tick(&mut s).1));
        let ts_before = s.timestamp();
        s.skip_frames(5);
        let seq_before = s.next_seq();
        let (_, b) = tick(&mut s);
        let p = RtpPacket::parse(&b).unwrap();
        assert!(p.marker);
        assert_eq!(p.timestamp, ts_before.wrapping_add(800));
        assert_eq!(
            p.seq, seq_before,
            "skipping does not consume sequence numbers"
        );
        assert!(!m(tick(&mut s).1));
    }

    #[test]
    fn rfc4733_2_5_event_sending() {
        let mut s = sender();
        tick(&mut s);
        let event_ts = s.timestamp();
        s.send_digit('#', ms(100), 10).unwrap();
        let mut pkts = Vec::new();
        for _ in 0..8 {
            let (k, b) = tick(&mut s);
            pkts.push((k, b));
        }
        let parsed: Vec<_> = pkts
            .iter()
            .map(|(_, b)| RtpPacket::parse(b).unwrap())
            .collect();
        let events: Vec<_> = parsed
            .iter()
            .filter(|p| p.payload_type == 101)
            .map(|p| (p, TelephoneEvent::parse(p.payload).unwrap()))
            .collect();
        // 5 frames of tone (4 updates + end) + 2 end retransmissions.
        assert_eq!(events.len(), 7);
        for (i, (p, ev)) in events.iter().enumerate() {
            assert_eq!(p.timestamp, event_ts, "same timestamp for the whole event");
            assert_eq!(p.marker, i == 0, "marker only on the first packet");
            assert_eq!(ev.event, 11);
            assert_eq!(ev.volume, 10);
        }
        let durations: Vec<_> = events.iter().map(|(_, e)| e.duration).collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
        let ends: Vec<_> = events.iter().map(|(_, e)| e.end).collect();
        assert_eq!(ends, [false, false, false, false, true, true, true]);
        // Sequence numbers still increase by one per packet.
        for w in parsed.windows(2) {
            assert_eq!(w[1].seq, w[0].seq.next());
        }
        // Audio resumes with RTP time that kept running.
        let last = parsed.last().unwrap();
        assert_eq!(last.payload_type, 0);
        assert_eq!(last.timestamp, event_ts.wrapping_add(7 * 160));
        assert!(matches!(
            pkts[0].0,
            SentFrame::Event {
                digit: '#',
                start: true,
                end: false
            }
        ));
    }

    #[test]
    fn rfc4733_2_5_queued_digits_are_separated() {
        let mut s = sender();
        for d in ['1', '1'] {
            s.send_digit(d, ms(60), 10).unwrap();
        }
        let kinds: Vec<_> = (0..14).map(|_| tick(&mut s).0).collect();
        let starts = kinds
            .iter()
            .filter(|k| matches!(k, SentFrame::Event { start: true, .. }))
            .count();
        assert_eq!(starts, 2);
        // 3 tone frames + 2 retransmissions, then one audio frame, then the next digit.
        assert_eq!(kinds[5], SentFrame::Audio);
        assert!(matches!(kinds[6], SentFrame::Event { start: true, .. }));
        assert!(!s.event_in_progress());
    }

    #[test]
    fn digit_errors() {
        let mut s = sender();
        assert_eq!(
            s.send_digit('x', ms(100), 10),
            Err(EventError::NotADigit('x'))
        );
        for _ in 0..MAX_QUEUED_DIGITS {
            s.send_digit('5', ms(100), 10).unwrap();
        }
        assert_eq!(s.send_digit('5', ms(100), 10), Err(EventError::QueueFull));
        let mut cfg = SenderConfig::new(Ssrc(1), SeqNo(1), 1);
        cfg.event_payload_type = None;
        let mut s = RtpSender::new(cfg);
        assert_eq!(
            s.send_digit('5', ms(100), 10),
            Err(EventError::NotNegotiated)
        );
    }

    #[test]
    fn rfc4733_2_5_1_3_long_digit_stops_before_duration_overflow() {
        let mut s = sender();
        s.send_digit('0', Duration::from_secs(60), 10).unwrap();
        let mut max = 0;
        for _ in 0..500 {
            let (k, b) = tick(&mut s);
            if let SentFrame::Event { .. } = k {
                let p = RtpPacket::parse(&b).unwrap();
                max = max.max(TelephoneEvent::parse(p.payload).unwrap().duration);
            }
        }
        assert!(u32::from(max) <= MAX_EVENT_SAMPLES);
        assert!(!s.event_in_progress());
    }
}
