//! RFC 4733 §2.3 telephone-event payload (the "named events" of DTMF).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |     event     |E|R| volume    |          duration             |
//! ```

/// One telephone-event payload block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code: 0–9 digits, 10 `*`, 11 `#`, 12–15 `A`–`D` (RFC 4733 §3.2).
    pub event: u8,
    /// The E bit: this packet ends the event.
    pub end: bool,
    /// Power level in -dBm0, 0..=63.
    pub volume: u8,
    /// Duration so far, in timestamp units of the payload's clock (8 kHz here).
    pub duration: u16,
}

/// Length of one event block on the wire.
pub const PAYLOAD_LEN: usize = 4;

impl TelephoneEvent {
    /// Reads the first block of a payload. `None` when shorter than four bytes.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        if payload.len() < PAYLOAD_LEN {
            return None;
        }
        Some(Self {
            event: payload[0],
            end: payload[1] & 0x80 != 0,
            volume: payload[1] & 0x3f,
            duration: u16::from_be_bytes([payload[2], payload[3]]),
        })
    }

    /// Writes the block; the R bit is always sent as zero.
    pub fn write(&self) -> [u8; PAYLOAD_LEN] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3f),
            d[0],
            d[1],
        ]
    }

    /// The keypad character of a DTMF event, if it is one.
    pub fn digit(&self) -> Option<char> {
        event_to_digit(self.event)
    }
}

/// Maps an RFC 4733 event code to its keypad character.
pub fn event_to_digit(event: u8) -> Option<char> {
    Some(match event {
        0..=9 => (b'0' + event) as char,
        10 => '*',
        11 => '#',
        12..=15 => (b'A' + event - 12) as char,
        _ => return None,
    })
}

/// Maps a keypad character to its RFC 4733 event code.
pub fn digit_to_event(digit: char) -> Option<u8> {
    Some(match digit.to_ascii_uppercase() {
        c @ '0'..='9' => c as u8 - b'0',
        '*' => 10,
        '#' => 11,
        c @ 'A'..='D' => c as u8 - b'A' + 12,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4733_2_3_round_trip_with_end_bit() {
        let ev = TelephoneEvent {
            event: 11,
            end: true,
            volume: 10,
            duration: 1280,
        };
        let bytes = ev.write();
        assert_eq!(bytes, [11, 0x8a, 0x05, 0x00]);
        assert_eq!(TelephoneEvent::parse(&bytes), Some(ev));
        assert_eq!(ev.digit(), Some('#'));
    }

    #[test]
    fn rfc4733_3_2_event_codes() {
        for (c, e) in [
            ('0', 0),
            ('9', 9),
            ('*', 10),
            ('#', 11),
            ('A', 12),
            ('D', 15),
        ] {
            assert_eq!(digit_to_event(c), Some(e));
            assert_eq!(event_to_digit(e), Some(c));
        }
        assert_eq!(event_to_digit(16), None);
        assert_eq!(digit_to_event('x'), None);
    }

    #[test]
    fn short_payload_is_refused() {
        assert_eq!(TelephoneEvent::parse(&[1, 2, 3]), None);
    }
}
