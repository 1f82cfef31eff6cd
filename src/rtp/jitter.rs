//! A small reordering jitter buffer for a recorder.
//!
//! Policy (fixed delay, arrival based):
//! - every packet is held until `arrival + delay` (default 60 ms = 3 frames of 20 ms); when it
//!   leaves, everything still missing in front of it is declared lost and reported as one
//!   [`Frame::Gap`] whose length comes from the RTP timestamps, so the recorder can write
//!   silence of the right length;
//! - a timestamp jump with contiguous sequence numbers (silence suppression, RFC 3551 §4.1
//!   marker bit) also becomes a [`Frame::Gap`] (`lost_packets == 0`);
//! - duplicates and packets behind the playout point are dropped (and counted);
//! - the buffer holds at most [`JitterConfig::max_packets`]; beyond that the head leaves
//!   immediately, so memory stays bounded whatever arrives;
//! - a new SSRC or a confirmed large sequence jump (RFC 3550 §A.1) drains what is buffered
//!   (still in order, ready to pop) and starts a fresh stream; no gap is reported across it;
//! - gaps are capped at [`JitterConfig::max_gap_samples`] so a hostile timestamp cannot make
//!   the recorder write hours of silence.
//!
//! Release times depend on each packet's own arrival, not on a playout clock anchored at the
//! first packet, so sender/receiver clock drift cannot make the buffer grow or starve.
//!
//! Sans-IO: [`JitterBuffer::push`] takes the arrival `now`, [`JitterBuffer::pop`] returns what
//! is due at `now`, [`JitterBuffer::poll_timeout`] says when to call `pop` next. Call `pop`
//! until it returns `None` after each `push`, `flush` or timeout.
//!
//! Telephone-event packets (RFC 4733) share the SSRC and the sequence space of the audio but
//! their timestamps mean "event start": feed them with [`JitterBuffer::push_non_audio`] (or set
//! [`JitterConfig::audio_payload_type`] and use [`JitterBuffer::push_packet`]) so their sequence
//! numbers are not mistaken for losses; they produce no output, and the audio missing while a
//! digit was sent comes out as a [`Frame::Gap`] without lost packets.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::packet::{RtpPacket, SeqNo, SeqTracker, SeqUpdate, Ssrc};

/// Tunables of a [`JitterBuffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// RTP clock rate of the audio payload (Hz); 8000 for G.711.
    pub clock_rate: u32,
    /// Fixed playout delay: how long each packet waits for earlier ones.
    pub delay: Duration,
    /// At most this many packets are held; more forces the head out at once.
    pub max_packets: usize,
    /// Frame length (timestamp units) assumed until it has been seen on the wire.
    pub default_frame_samples: u32,
    /// Upper bound on the samples of one reported gap.
    pub max_gap_samples: u32,
    /// When set, [`JitterBuffer::push_packet`] treats packets of any other payload type as
    /// non-audio (see [`JitterBuffer::push_non_audio`]).
    pub audio_payload_type: Option<u8>,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            clock_rate: super::CLOCK_RATE,
            delay: Duration::from_millis(60),
            max_packets: 50,
            default_frame_samples: super::SAMPLES_PER_FRAME,
            max_gap_samples: 5 * super::CLOCK_RATE,
            audio_payload_type: None,
        }
    }
}

/// One unit of output, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A received payload.
    Audio {
        /// RTP timestamp of the first sample.
        timestamp: u32,
        /// The payload (give the `Vec` back with [`JitterBuffer::recycle`] to avoid allocations).
        payload: Vec<u8>,
    },
    /// Missing audio before the next [`Frame::Audio`]: insert `samples` of silence.
    Gap {
        /// RTP timestamp where the gap starts.
        timestamp: u32,
        /// Length in timestamp units (samples at 8 kHz).
        samples: u32,
        /// Packets given up as lost (0 for a timestamp jump without sequence gap).
        lost_packets: u64,
    },
}

/// Counters of a [`JitterBuffer`], cumulative across stream resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JitterStats {
    /// Valid packets of the current or earlier streams, duplicates and late ones included.
    pub received: u64,
    /// Packets declared lost when playout moved past them.
    pub lost: u64,
    /// Packets seen twice (still buffered, or already played).
    pub duplicates: u64,
    /// Packets that arrived after playout had moved past their slot.
    pub late: u64,
    /// Packets that arrived after a packet with a higher sequence number.
    pub reordered: u64,
    /// Packets refused as an unconfirmed large sequence jump (RFC 3550 §A.1).
    pub jumps: u64,
    /// Stream restarts (new SSRC or confirmed sequence jump).
    pub resets: u64,
    /// Packets refused because the buffer was full.
    pub overflow: u64,
    /// Interarrival jitter, RFC 3550 §A.8, in timestamp units.
    pub jitter: u32,
}

/// Outcome of [`JitterBuffer::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Buffered.
    Accepted,
    /// Buffered after starting a new stream (SSRC change or confirmed jump).
    AcceptedAfterReset,
    /// Already buffered or played.
    Duplicate,
    /// Playout already passed this packet.
    Late,
    /// Large sequence jump, not (yet) confirmed by a following packet.
    Jump,
    /// Buffer full.
    Overflow,
}

/// RFC 3550 §6.4.1 receiver statistics for one report block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceptionReport {
    /// SSRC of the source reported on.
    pub ssrc: Ssrc,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (expected − received), clamped to 24-bit signed.
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
}

#[derive(Debug)]
struct Slot {
    arrival: Instant,
    /// None for a non-audio packet (sequence number placeholder).
    audio: Option<AudioSlot>,
}

#[derive(Debug)]
struct AudioSlot {
    timestamp: u32,
    marker: bool,
    payload: Vec<u8>,
}

/// See the [module docs](self).
#[derive(Debug)]
pub struct JitterBuffer {
    cfg: JitterConfig,
    ssrc: Option<Ssrc>,
    seq: SeqTracker,
    slots: BTreeMap<u64, Slot>,
    /// Extended number of the next packet to play; None before the first release.
    next_out: Option<u64>,
    /// Bit i set: packet `next_out - 1 - i` was played (tells duplicates from late packets).
    played: u64,
    /// Extended number and timestamp of the last played audio packet.
    last_played: Option<(u64, u32)>,
    frame_samples: u32,
    pending: VecDeque<Frame>,
    /// Losses seen in front of non-audio packets, reported with the next audio gap.
    lost_pending: u64,
    /// Latest `now` seen (for `poll_timeout` while output is pending).
    last_now: Option<Instant>,
    pool: Vec<Vec<u8>>,
    flushing: bool,
    stats: JitterStats,
    /// A.8 state.
    epoch: Option<Instant>,
    last_transit: Option<u32>,
    jitter_q4: u32,
    /// A.3 state for the current stream.
    received_stream: u64,
    expected_prior: u64,
    received_prior: u64,
}

const POOL_MAX: usize = 64;

impl JitterBuffer {
    /// An empty buffer.
    pub fn new(cfg: JitterConfig) -> Self {
        let cfg = JitterConfig {
            clock_rate: cfg.clock_rate.max(1),
            max_packets: cfg.max_packets.max(1),
            default_frame_samples: cfg.default_frame_samples.max(1),
            ..cfg
        };
        JitterBuffer {
            cfg,
            ssrc: None,
            seq: SeqTracker::new(),
            slots: BTreeMap::new(),
            next_out: None,
            played: 0,
            last_played: None,
            frame_samples: cfg.default_frame_samples,
            pending: VecDeque::new(),
            lost_pending: 0,
            last_now: None,
            pool: Vec::new(),
            flushing: false,
            stats: JitterStats::default(),
            epoch: None,
            last_transit: None,
            jitter_q4: 0,
            received_stream: 0,
            expected_prior: 0,
            received_prior: 0,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &JitterConfig {
        &self.cfg
    }

    /// Counters so far.
    pub fn stats(&self) -> JitterStats {
        JitterStats {
            jitter: self.jitter_q4 >> 4,
            ..self.stats
        }
    }

    /// SSRC of the stream being buffered.
    pub fn ssrc(&self) -> Option<Ssrc> {
        self.ssrc
    }

    /// Packets currently held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// `true` when nothing is held or pending.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty() && self.pending.is_empty()
    }

    /// Feeds a parsed packet: audio, or non-audio when [`JitterConfig::audio_payload_type`] is
    /// set and differs from the packet's.
    pub fn push_packet(&mut self, now: Instant, pkt: &RtpPacket<'_>) -> PushOutcome {
        if self
            .cfg
            .audio_payload_type
            .is_some_and(|pt| pt != pkt.payload_type)
        {
            return self.push_non_audio(now, pkt.ssrc, pkt.seq);
        }
        self.push(
            now,
            pkt.ssrc,
            pkt.seq,
            pkt.timestamp,
            pkt.marker,
            pkt.payload,
        )
    }

    /// Feeds one audio packet that arrived at `now`. The payload is copied.
    pub fn push(
        &mut self,
        now: Instant,
        ssrc: Ssrc,
        seq: SeqNo,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> PushOutcome {
        self.push_inner(now, ssrc, seq, Some((timestamp, marker, payload)))
    }

    /// Feeds a packet of the same stream that is not audio (a telephone-event): it occupies
    /// its sequence number, so it is neither a loss nor output.
    pub fn push_non_audio(&mut self, now: Instant, ssrc: Ssrc, seq: SeqNo) -> PushOutcome {
        self.push_inner(now, ssrc, seq, None)
    }

    fn push_inner(
        &mut self,
        now: Instant,
        ssrc: Ssrc,
        seq: SeqNo,
        audio: Option<(u32, bool, &[u8])>,
    ) -> PushOutcome {
        self.last_now = Some(now);
        let mut reset = false;
        if self.ssrc != Some(ssrc) {
            if self.ssrc.is_some() {
                self.restart_stream();
                self.seq = SeqTracker::new();
                self.stats.resets += 1;
                reset = true;
            }
            self.ssrc = Some(ssrc);
        }
        let highest_before = self.seq.highest();
        let ext = match self.seq.update(seq) {
            SeqUpdate::Ahead(e) | SeqUpdate::Behind(e) => e,
            SeqUpdate::Restarted(e) => {
                self.restart_stream();
                self.stats.resets += 1;
                reset = true;
                e
            }
            SeqUpdate::Jump => {
                self.stats.jumps += 1;
                return PushOutcome::Jump;
            }
        };
        self.stats.received += 1;
        self.received_stream += 1;

        if let Some(next) = self.next_out {
            if ext < next {
                let back = next - 1 - ext;
                if back < 64 && self.played & (1 << back) != 0 {
                    self.stats.duplicates += 1;
                    return PushOutcome::Duplicate;
                }
                self.stats.late += 1;
                return PushOutcome::Late;
            }
        }
        if self.slots.contains_key(&ext) {
            self.stats.duplicates += 1;
            return PushOutcome::Duplicate;
        }
        if !reset && highest_before.is_some_and(|h| ext < h) {
            self.stats.reordered += 1;
        }
        if self.slots.len() >= 2 * self.cfg.max_packets {
            self.stats.overflow += 1;
            return PushOutcome::Overflow;
        }
        let audio = audio.map(|(timestamp, marker, payload)| {
            self.update_jitter(now, timestamp);
            let mut buf = self.pool.pop().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(payload);
            AudioSlot {
                timestamp,
                marker,
                payload: buf,
            }
        });
        self.slots.insert(
            ext,
            Slot {
                arrival: now,
                audio,
            },
        );
        if reset {
            PushOutcome::AcceptedAfterReset
        } else {
            PushOutcome::Accepted
        }
    }

    /// RFC 3550 §A.8 interarrival jitter, fixed point ×16 as in the RFC's sample code.
    fn update_jitter(&mut self, now: Instant, timestamp: u32) {
        let epoch = *self.epoch.get_or_insert(now);
        let since = now.saturating_duration_since(epoch);
        let arrival = (since.as_nanos() * u128::from(self.cfg.clock_rate) / 1_000_000_000) as u32; // wraps like RTP time
        let transit = arrival.wrapping_sub(timestamp);
        if let Some(last) = self.last_transit {
            let d = transit.wrapping_sub(last) as i32;
            let d = d.unsigned_abs();
            // J += (|D| - J) / 16, kept as J*16.
            self.jitter_q4 = self
                .jitter_q4
                .wrapping_add(d)
                .wrapping_sub((self.jitter_q4 + 8) >> 4);
        }
        self.last_transit = Some(transit);
    }

    /// Returns a payload buffer for reuse by later pushes.
    pub fn recycle(&mut self, mut payload: Vec<u8>) {
        if self.pool.len() < POOL_MAX {
            payload.clear();
            self.pool.push(payload);
        }
    }

    /// Releases everything buffered: subsequent `pop`s return it all regardless of time
    /// (end of call). The buffer keeps accepting packets afterwards, in flushing mode.
    pub fn flush(&mut self) {
        self.flushing = true;
    }

    /// The next frame due at `now`, if any.
    pub fn pop(&mut self, now: Instant) -> Option<Frame> {
        self.last_now = Some(now);
        loop {
            if let Some(f) = self.pending.pop_front() {
                return Some(f);
            }
            let (_, head) = self.slots.first_key_value()?;
            let due = self.flushing
                || self.slots.len() > self.cfg.max_packets
                || now >= head.arrival + self.cfg.delay;
            if !due {
                return None;
            }
            let (gap, audio) = self.release_head()?;
            self.pending.extend(gap);
            self.pending.extend(audio);
        }
    }

    /// When `pop` will next have something (None: nothing buffered or pending).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.pending.is_empty() {
            return self.last_now;
        }
        let (_, head) = self.slots.first_key_value()?;
        if self.flushing || self.slots.len() > self.cfg.max_packets {
            return Some(head.arrival);
        }
        Some(head.arrival + self.cfg.delay)
    }

    /// Takes the head packet out, with the gap in front of it; a non-audio head yields
    /// `(None, None)` but still advances the playout point.
    fn release_head(&mut self) -> Option<(Option<Frame>, Option<Frame>)> {
        let (ext, slot) = self.slots.pop_first()?;
        let lost = self.next_out.map_or(0, |n| ext.saturating_sub(n));
        self.stats.lost += lost;
        let shift = self.next_out.map_or(64, |n| (ext + 1).saturating_sub(n));
        self.played = if shift >= 64 {
            1
        } else {
            (self.played << shift) | 1
        };
        self.next_out = Some(ext + 1);
        let Some(slot) = slot.audio else {
            self.lost_pending += lost;
            return Some((None, None));
        };
        let lost = std::mem::take(&mut self.lost_pending) + lost;

        // Learn the frame length from consecutive, non-marker packets.
        if let Some((last_ext, last_ts)) = self.last_played {
            let step = slot.timestamp.wrapping_sub(last_ts);
            if ext == last_ext + 1 && !slot.marker && step > 0 && step <= self.cfg.clock_rate / 8 {
                self.frame_samples = step;
            }
        }
        let expected_ts = self
            .last_played
            .map(|(_, ts)| ts.wrapping_add(self.frame_samples));
        let gap = expected_ts.and_then(|expected| {
            let by_ts = slot.timestamp.wrapping_sub(expected);
            let plausible = (by_ts as i32) >= 0 && by_ts <= self.cfg.max_gap_samples;
            let samples = if plausible {
                by_ts
            } else if lost > 0 {
                // Timestamps make no sense: fall back to frame count.
                let n = u32::try_from(lost).unwrap_or(u32::MAX);
                n.saturating_mul(self.frame_samples)
                    .min(self.cfg.max_gap_samples)
            } else {
                0
            };
            (samples > 0 || lost > 0).then_some(Frame::Gap {
                timestamp: expected,
                samples,
                lost_packets: lost,
            })
        });

        self.last_played = Some((ext, slot.timestamp));
        let audio = Frame::Audio {
            timestamp: slot.timestamp,
            payload: slot.payload,
        };
        Some((gap, Some(audio)))
    }

    /// Moves everything buffered to the output queue and forgets the stream position.
    fn restart_stream(&mut self) {
        while let Some((gap, audio)) = self.release_head() {
            self.pending.extend(gap);
            self.pending.extend(audio);
        }
        self.lost_pending = 0;
        self.next_out = None;
        self.played = 0;
        self.last_played = None;
        self.frame_samples = self.cfg.default_frame_samples;
        self.last_transit = None;
        self.received_stream = 0;
        self.expected_prior = 0;
        self.received_prior = 0;
    }

    /// Statistics for an RTCP report block (RFC 3550 §6.4.1, §A.3); resets the interval
    /// counters used for `fraction_lost`. None before the first packet.
    pub fn reception_report(&mut self) -> Option<ReceptionReport> {
        let ssrc = self.ssrc?;
        let expected = self.seq.expected();
        let received = self.received_stream;
        let lost = i64::try_from(expected).unwrap_or(i64::MAX)
            - i64::try_from(received).unwrap_or(i64::MAX);
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = received;
        let lost_interval = expected_interval.saturating_sub(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval == 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval).min(255) as u8 // bounded by min
        };
        Some(ReceptionReport {
            ssrc,
            fraction_lost,
            cumulative_lost: lost.clamp(-0x80_0000, 0x7f_ffff) as i32, // clamped to 24 bits
            highest_seq: self.seq.rtcp_highest(),
            jitter: self.jitter_q4 >> 4,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Ssrc = Ssrc(0x1111);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn jb() -> JitterBuffer {
        JitterBuffer::new(JitterConfig::default())
    }

    /// Pushes packet `i` of a regular 20 ms stream (seq base 1000, ts base 5000).
    fn push_i(j: &mut JitterBuffer, t0: Instant, at_ms: u64, i: u16) -> PushOutcome {
        let seq = SeqNo(1000u16.wrapping_add(i));
        let ts = 5000u32.wrapping_add(160 * u32::from(i));
        j.push(t0 + ms(at_ms), S, seq, ts, i == 0, &[i as u8; 160])
    }

    fn drain(j: &mut JitterBuffer, now: Instant) -> Vec<Frame> {
        std::iter::from_fn(|| j.pop(now)).collect()
    }

    fn audio_ts(f: &Frame) -> Option<u32> {
        match f {
            Frame::Audio { timestamp, .. } => Some(*timestamp),
            Frame::Gap { .. } => None,
        }
    }

    #[test]
    fn in_order_stream_released_after_fixed_delay() {
        let t0 = Instant::now();
        let mut j = jb();
        push_i(&mut j, t0, 0, 0);
        assert_eq!(j.poll_timeout(), Some(t0 + ms(60)));
        assert!(j.pop(t0 + ms(59)).is_none());
        push_i(&mut j, t0, 20, 1);
        let out = drain(&mut j, t0 + ms(60));
        assert_eq!(out.len(), 1);
        assert_eq!(audio_ts(&out[0]), Some(5000));
        let out = drain(&mut j, t0 + ms(80));
        assert_eq!(audio_ts(&out[0]), Some(5160));
        assert!(j.is_empty());
        assert_eq!(j.stats().lost, 0);
        assert_eq!(j.stats().received, 2);
    }

    #[test]
    fn rfc3550_a_1_reordered_packets_come_out_in_order() {
        let t0 = Instant::now();
        let mut j = jb();
        push_i(&mut j, t0, 0, 0);
        push_i(&mut j, t0, 20, 2);
        push_i(&mut j, t0, 30, 1);
        push_i(&mut j, t0, 60, 3);
        let out = drain(&mut j, t0 + ms(200));
        let ts: Vec<_> = out.iter().filter_map(audio_ts).collect();
        assert_eq!(ts, vec![5000, 5160, 5320, 5480]);
        assert_eq!(out.len(), 4, "no gap: {out:?}");
        assert_eq!(j.stats().reordered, 1);
        assert_eq!(j.stats().lost, 0);
    }

    #[test]
    fn lost_packet_reported_as_gap_of_right_length() {
        let t0 = Instant::now();
        let mut j = jb();
        for (at, i) in [(0, 0), (20, 1), (80, 4)] {
            push_i(&mut j, t0, at, i);
        }
        let out = drain(&mut j, t0 + ms(140));
        assert_eq!(out.len(), 4, "{out:?}");
        assert_eq!(
            out[2],
            Frame::Gap {
                timestamp: 5320,
                samples: 320,
                lost_packets: 2
            }
        );
        assert_eq!(audio_ts(&out[3]), Some(5640));
        assert_eq!(j.stats().lost, 2);
        // Packet 2 arriving now is late.
        assert_eq!(push_i(&mut j, t0, 150, 2), PushOutcome::Late);
        assert_eq!(j.stats().late, 1);
    }

    #[test]
    fn missing_packet_waits_for_the_delay_of_the_next() {
        let t0 = Instant::now();
        let mut j = jb();
        push_i(&mut j, t0, 0, 0);
        push_i(&mut j, t0, 40, 2);
        assert_eq!(drain(&mut j, t0 + ms(60)).len(), 1);
        // Packet 1 is missing; packet 2 is not due before 100 ms.
        assert!(j.pop(t0 + ms(99)).is_none());
        // Packet 1 shows up late but within the delay: no gap.
        push_i(&mut j, t0, 90, 1);
        let out = drain(&mut j, t0 + ms(150));
        assert_eq!(out.iter().filter_map(audio_ts).count(), 2);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn duplicates_dropped_while_buffered_and_after_playout() {
        let t0 = Instant::now();
        let mut j = jb();
        push_i(&mut j, t0, 0, 0);
        assert_eq!(push_i(&mut j, t0, 1, 0), PushOutcome::Duplicate);
        drain(&mut j, t0 + ms(60));
        assert_eq!(push_i(&mut j, t0, 70, 0), PushOutcome::Duplicate);
        assert_eq!(j.stats().duplicates, 2);
        assert_eq!(j.stats().late, 0);
    }

    #[test]
    fn rfc3551_4_1_silence_suppression_becomes_gap_without_loss() {
        let t0 = Instant::now();
        let mut j = jb();
        push_i(&mut j, t0, 0, 0);
        push_i(&mut j, t0, 20, 1);
        // Next talkspurt: seq 1002 but 1 s later, marker set.
        j.push(
            t0 + ms(1020),
            S,
            SeqNo(1002),
            5000 + 320 + 8000,
            true,
            &[0; 160],
        );
        let out = drain(&mut j, t0 + ms(2000));
        assert_eq!(
            out[2],
            Frame::Gap {
                timestamp: 5320,
                samples: 8000,
                lost_packets: 0
            }
        );
        assert_eq!(j.stats().lost, 0);
    }

    #[test]
    fn gap_capped_against_hostile_timestamps() {
        let t0 = Instant::now();
        let mut j = jb();
        push_i(&mut j, t0, 0, 0);
        j.push(
            t0 + ms(20),
            S,
            SeqNo(1001),
            5160 + 0x4000_0000,
            false,
            &[0; 160],
        );
        let out = drain(&mut j, t0 + ms(200));
        // Not plausible and no loss: no gap at all.
        assert_eq!(out.len(), 2, "{out:?}");
        // With loss and an absurd timestamp: capped frame count.
        j.push(t0 + ms(300), S, SeqNo(1005), 7, false, &[0; 160]);
        let out = drain(&mut j, t0 + ms(400));
        match out[0] {
            Frame::Gap {
                samples,
                lost_packets,
                ..
            } => {
                assert_eq!(lost_packets, 3);
                assert_eq!(samples, 480);
            }
            ref f => panic!("{f:?}"),
        }
    }

    #[test]
    fn ssrc_change_drains_old_stream_then_restarts() {
        let t0 = Instant::now();
        let mut j = jb();
        push_i(&mut j, t0, 0, 0);
        push_i(&mut j, t0, 20, 1);
        let r = j.push(t0 + ms(30), Ssrc(2), SeqNo(7), 99, true, &[1; 160]);
        assert_eq!(r, PushOutcome::AcceptedAfterReset);
        // Old packets are ready at once; the new one waits its delay.
        let out = drain(&mut j, t0 + ms(31));
        assert_eq!(
            out.iter().filter_map(audio_ts).collect::<Vec<_>>(),
            [5000, 5160]
        );
        let out = drain(&mut j, t0 + ms(90));
        assert_eq!(
            out,
            vec![Frame::Audio {
                timestamp: 99,
                payload: vec![1; 160]
            }]
        );
        assert_eq!(j.stats().resets, 1);
        assert_eq!(j.ssrc(), Some(Ssrc(2)));
    }

    #[test]
    fn rfc3550_a_1_large_sequence_jump_resets_after_confirmation() {
        let t0 = Instant::now();
        let mut j = jb();
        push_i(&mut j, t0, 0, 0);
        drain(&mut j, t0 + ms(60));
        assert_eq!(
            j.push(t0 + ms(80), S, SeqNo(30_000), 1, false, &[0; 160]),
            PushOutcome::Jump
        );
        assert_eq!(
            j.push(t0 + ms(100), S, SeqNo(30_001), 161, false, &[0; 160]),
            PushOutcome::AcceptedAfterReset
        );
        let out = drain(&mut j, t0 + ms(200));
        assert_eq!(
            out,
            vec![Frame::Audio {
                timestamp: 161,
                payload: vec![0; 160]
            }]
        );
        assert_eq!(j.stats().jumps, 1);
        assert_eq!(j.stats().resets, 1);
    }

    #[test]
    fn memory_bounded_and_head_forced_out_when_full() {
        let t0 = Instant::now();
        let mut j = JitterBuffer::new(JitterConfig {
            max_packets: 4,
            ..JitterConfig::default()
        });
        for i in 0..20u16 {
            let _ = push_i(&mut j, t0, 0, i);
        }
        assert_eq!(j.len(), 8);
        assert_eq!(j.stats().overflow, 12);
        // Over capacity: released before the delay.
        let out = drain(&mut j, t0);
        assert_eq!(out.len(), 4);
        assert_eq!(j.len(), 4);
    }

    #[test]
    fn flush_releases_everything_now() {
        let t0 = Instant::now();
        let mut j = jb();
        push_i(&mut j, t0, 0, 0);
        push_i(&mut j, t0, 0, 2);
        j.flush();
        let out = drain(&mut j, t0);
        assert_eq!(out.len(), 3);
        assert!(matches!(
            out[1],
            Frame::Gap {
                lost_packets: 1,
                samples: 160,
                ..
            }
        ));
    }

    #[test]
    fn sequence_wrap_is_seamless() {
        let t0 = Instant::now();
        let mut j = jb();
        for (k, seq) in [65534u16, 65535, 0, 1].into_iter().enumerate() {
            let k32 = k as u32;
            j.push(
                t0 + ms(20 * k as u64),
                S,
                SeqNo(seq),
                160 * k32,
                false,
                &[0; 160],
            );
        }
        let out = drain(&mut j, t0 + ms(500));
        assert_eq!(
            out.iter().filter_map(audio_ts).collect::<Vec<_>>(),
            [0, 160, 320, 480]
        );
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn rfc3550_a_8_jitter_zero_for_perfect_timing() {
        let t0 = Instant::now();
        let mut j = jb();
        for i in 0..50 {
            push_i(&mut j, t0, 20 * u64::from(i), i);
        }
        assert_eq!(j.stats().jitter, 0);
    }

    #[test]
    fn rfc3550_a_8_jitter_converges_to_mean_deviation() {
        let t0 = Instant::now();
        let mut j = jb();
        // Alternate 0 / +10 ms arrival offsets: |D| = 80 ts units every packet.
        for i in 0..400u16 {
            let at = 20 * u64::from(i) + if i % 2 == 1 { 10 } else { 0 };
            push_i(&mut j, t0, at, i);
            drain(&mut j, t0 + ms(at));
        }
        let jit = j.stats().jitter;
        assert!((75..=80).contains(&jit), "jitter {jit}");
    }

    #[test]
    fn rfc3550_a_3_fraction_and_cumulative_lost() {
        let t0 = Instant::now();
        let mut j = jb();
        assert!(j.reception_report().is_none());
        // 8 of 10 received (4 and 7 missing).
        for i in (0..10).filter(|i| *i != 4 && *i != 7) {
            push_i(&mut j, t0, 20 * u64::from(i), i);
        }
        let r = j.reception_report().unwrap();
        assert_eq!(r.ssrc, S);
        assert_eq!(r.cumulative_lost, 2);
        assert_eq!(r.fraction_lost, (2 * 256 / 10) as u8);
        assert_eq!(r.highest_seq, 1009);
        // Next interval: no loss.
        for i in 10..20 {
            push_i(&mut j, t0, 20 * u64::from(i), i);
        }
        let r = j.reception_report().unwrap();
        assert_eq!(r.fraction_lost, 0);
        assert_eq!(r.cumulative_lost, 2);
    }

    #[test]
    fn rfc4733_2_1_event_packets_fill_sequence_space_without_loss() {
        let t0 = Instant::now();
        let mut j = JitterBuffer::new(JitterConfig {
            audio_payload_type: Some(0),
            ..JitterConfig::default()
        });
        push_i(&mut j, t0, 0, 0);
        // Three telephone-event packets (seq 1001..=1003) replace three audio frames.
        for k in 1..=3u16 {
            let pkt = RtpPacket {
                marker: k == 1,
                payload_type: 101,
                seq: SeqNo(1000 + k),
                timestamp: 5160,
                ssrc: S,
                csrc_raw: &[],
                extension: None,
                padding: 0,
                payload: &[11, 0x0a, 0, 160],
            };
            assert_eq!(
                j.push_packet(t0 + ms(20 * u64::from(k)), &pkt),
                PushOutcome::Accepted
            );
        }
        push_i(&mut j, t0, 80, 4);
        let out = drain(&mut j, t0 + ms(500));
        assert_eq!(
            out,
            vec![
                Frame::Audio {
                    timestamp: 5000,
                    payload: vec![0; 160]
                },
                Frame::Gap {
                    timestamp: 5160,
                    samples: 480,
                    lost_packets: 0
                },
                Frame::Audio {
                    timestamp: 5640,
                    payload: vec![4; 160]
                },
            ]
        );
        assert_eq!(j.stats().lost, 0);
        assert_eq!(j.reception_report().unwrap().cumulative_lost, 0);
    }

    #[test]
    fn loss_in_front_of_event_packet_reported_with_next_gap() {
        let t0 = Instant::now();
        let mut j = jb();
        push_i(&mut j, t0, 0, 0);
        // 1001 lost, 1002 is an event packet, 1003 audio.
        j.push_non_audio(t0 + ms(40), S, SeqNo(1002));
        push_i(&mut j, t0, 60, 3);
        let out = drain(&mut j, t0 + ms(500));
        assert_eq!(
            out[1],
            Frame::Gap {
                timestamp: 5160,
                samples: 320,
                lost_packets: 1
            }
        );
        assert_eq!(j.stats().lost, 1);
        assert!(j.poll_timeout().is_none());
    }

    #[test]
    fn frame_length_learned_from_stream_30ms() {
        let t0 = Instant::now();
        let mut j = jb();
        for (k, seq) in [0u16, 1, 2, 4].into_iter().enumerate() {
            let at = t0 + ms(30 * k as u64);
            j.push(at, S, SeqNo(seq), 240 * u32::from(seq), false, &[0; 240]);
        }
        let out = drain(&mut j, t0 + ms(500));
        assert_eq!(out.len(), 5, "{out:?}");
        assert_eq!(
            out[3],
            Frame::Gap {
                timestamp: 720,
                samples: 240,
                lost_packets: 1
            }
        );
    }

    #[test]
    fn recycled_buffers_are_reused() {
        let t0 = Instant::now();
        let mut j = jb();
        push_i(&mut j, t0, 0, 0);
        let Some(Frame::Audio { payload, .. }) = j.pop(t0 + ms(60)) else {
            panic!()
        };
        let cap = payload.capacity();
        j.recycle(payload);
        push_i(&mut j, t0, 20, 1);
        let Some(Frame::Audio { payload, .. }) = j.pop(t0 + ms(80)) else {
            panic!()
        };
        assert_eq!(payload.capacity(), cap);
        assert_eq!(payload, vec![1; 160]);
    }
}
