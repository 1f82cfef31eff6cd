//! Voicemail PIN policy: which new PINs are acceptable, how PINs are hashed and verified, and the
//! timing numbers (activation delay, attempts, lockout) the store applies.
//!
//! Pure policy, no I/O and no clock. The atomic check-and-count lives in `store::auth`
//! (`Store::check_pin`); this module only decides and hashes.
//!
//! Secrecy rules kept here:
//! - a PIN is carried in a [`Pin`], whose `Debug`/`Display` print `******` and whose buffer is
//!   overwritten on drop;
//! - no error or rejection carries the PIN or any part of it ([`PinRejection`], [`PinHashError`]);
//! - only argon2id PHC strings are stored ([`hash_pin`]); verification ([`verify_pin`]) compares
//!   in constant time inside the argon2 crate.
//!
//! Hashing costs tens of milliseconds of CPU and 19 MiB of memory on purpose: the shell must run
//! [`hash_pin`]/[`verify_pin`] (and `Store::check_pin`, which calls the verifier) on the blocking
//! pool, never on the async runtime, so logins never stall media.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::time::Duration;

/// Longest PIN a [`Pin`] can hold. Longer digit strings are refused before any hashing, so DTMF
/// floods cannot make the hasher work on unbounded input.
pub const MAX_PIN_DIGITS: usize = 24;

/// argon2id memory cost in KiB (OWASP password storage cheat sheet: 19 MiB).
pub const ARGON2_M_KIB: u32 = 19_456;
/// argon2id passes (OWASP: 2).
pub const ARGON2_T: u32 = 2;
/// argon2id lanes (OWASP: 1).
pub const ARGON2_P: u32 = 1;

/// The PIN rules, every number configurable. Defaults are what the university pages promise:
/// six digits, a new PIN becomes active 10 minutes after it is set, three consecutive wrong
/// attempts (counted across calls) lock the mailbox for 30 minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinPolicy {
    /// Exact number of digits a new PIN must have.
    pub length: usize,
    /// Time from setting a PIN until it is accepted; the previous PIN keeps working meanwhile.
    pub activation_delay: Duration,
    /// Consecutive wrong attempts that lock the mailbox (the lock starts at the last of them).
    pub max_attempts: u32,
    /// How long the mailbox stays locked.
    pub lockout: Duration,
}

impl Default for PinPolicy {
    fn default() -> Self {
        Self {
            length: 6,
            activation_delay: Duration::from_secs(10 * 60),
            max_attempts: 3,
            lockout: Duration::from_secs(30 * 60),
        }
    }
}

/// The store works in unix seconds; this converts the policy's timing for `Store::check_pin` and
/// `Store::set_pin` (which accept `impl Into<AuthPolicy>`, so `&policy` can be passed directly).
impl From<&crate::config::VoicemailConfig> for PinPolicy {
    fn from(v: &crate::config::VoicemailConfig) -> Self {
        Self {
            length: v.pin_length,
            activation_delay: Duration::from_secs_f64(v.pin_activation_minutes * 60.0),
            max_attempts: v.pin_max_attempts,
            lockout: Duration::from_secs_f64(v.pin_lockout_minutes * 60.0),
        }
    }
}

impl From<&PinPolicy> for crate::store::AuthPolicy {
    fn from(p: &PinPolicy) -> Self {
        Self {
            activation_delay_secs: secs(p.activation_delay),
            max_attempts: p.max_attempts,
            lockout_secs: secs(p.lockout),
        }
    }
}

impl From<PinPolicy> for crate::store::AuthPolicy {
    fn from(p: PinPolicy) -> Self {
        (&p).into()
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Why a new PIN was refused. Never carries the PIN or any of its digits, so it may be logged
/// and mapped to a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PinRejection {
    /// Something other than the digits 0–9 was entered.
    #[error("a PIN consists of digits only")]
    NotDigits,
    /// The PIN does not have the configured number of digits.
    #[error("a PIN must have exactly {expected} digits")]
    WrongLength { expected: usize },
    /// Every digit is the same (000000, 777777).
    #[error("the PIN is one digit repeated")]
    AllSameDigit,
    /// The digits form one ascending or descending run, also wrapping past 9/0
    /// (123456, 654321, 890123, 210987).
    #[error("the PIN is an ascending or descending run of digits")]
    Sequential,
    /// The PIN contains the mailbox's extension or the extension reversed.
    #[error("the PIN contains the extension or its reverse")]
    ContainsExtension,
    /// Fewer than three different digits (112211, 121212).
    #[error("the PIN has fewer than three different digits")]
    TooFewDistinctDigits,
    /// The same digit more than twice in a row (147770).
    #[error("the PIN has a digit more than twice in a row")]
    DigitRepeated,
}

/// A PIN as entered: 1 to [`MAX_PIN_DIGITS`] ASCII digits. `Debug` and `Display` print
/// `******`; the buffer is overwritten when the value is dropped. There is deliberately no
/// `PartialEq`: PINs are compared only through [`verify_pin`].
#[derive(Clone)]
pub struct Pin {
    digits: [u8; MAX_PIN_DIGITS],
    len: usize,
}

impl Pin {
    /// Accepts 1 to [`MAX_PIN_DIGITS`] ASCII digits; anything else is `None` (the caller treats
    /// it as a wrong PIN or asks again, without echoing it).
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.is_empty() || b.len() > MAX_PIN_DIGITS || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut digits = [0u8; MAX_PIN_DIGITS];
        digits[..b.len()].copy_from_slice(b);
        Some(Self {
            digits,
            len: b.len(),
        })
    }

    /// The digits, for hashing and policy checks only. Never log or format the result.
    pub fn expose_digits(&self) -> &str {
        // `parse` stores only ASCII digits, so the slice is always valid UTF-8.
        std::str::from_utf8(&self.digits[..self.len]).unwrap_or("")
    }

    /// Number of digits.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false (a `Pin` has at least one digit); present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(******)")
    }
}

impl std::fmt::Display for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("******")
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        self.digits.fill(0);
        self.len = 0;
        // Keep the compiler from treating the fill as a dead store.
        std::hint::black_box(&mut self.digits);
    }
}

/// Checks a new PIN against the policy. The first failing rule is reported, in this order:
/// digits only, length, all one digit, a run, the extension, distinct digits, repeats.
///
/// Decisions where the issue leaves room:
/// - **Runs** are judged on the whole PIN: every step +1 or every step −1, modulo 10, so the
///   odometer/keypad wrap-arounds 890123 and 210987 are refused like 123456 and 654321. A PIN that
///   merely contains a shorter run (123590) is allowed.
/// - **Extension**: refused when the PIN *contains* the extension or its reverse (for a 5-digit
///   extension and a 6-digit PIN, "77513x" is as trivial as the extension itself), and, for an
///   extension longer than the PIN, when the extension or its reverse contains the PIN (a suffix
///   of a long number). Containment is only applied to extensions of 3 or more digits; a shorter
///   one is refused only when equal, otherwise "12" would ban a large share of all PINs.
///   An empty or non-numeric `extension` skips this rule.
pub fn check_new_pin(pin: &str, extension: &str, policy: &PinPolicy) -> Result<(), PinRejection> {
    let d = pin.as_bytes();
    if d.is_empty() || !d.iter().all(u8::is_ascii_digit) {
        return Err(PinRejection::NotDigits);
    }
    if d.len() != policy.length {
        return Err(PinRejection::WrongLength {
            expected: policy.length,
        });
    }
    if d.iter().all(|&c| c == d[0]) {
        return Err(PinRejection::AllSameDigit);
    }
    if d.len() >= 2 && (is_run(d, 1) || is_run(d, 9)) {
        return Err(PinRejection::Sequential);
    }
    if contains_extension(d, extension.as_bytes()) {
        return Err(PinRejection::ContainsExtension);
    }
    let mut seen = [false; 10];
    for &c in d {
        seen[usize::from(c - b'0')] = true;
    }
    if seen.iter().filter(|&&s| s).count() < 3 {
        return Err(PinRejection::TooFewDistinctDigits);
    }
    if d.windows(3).any(|w| w[0] == w[1] && w[1] == w[2]) {
        return Err(PinRejection::DigitRepeated);
    }
    Ok(())
}

/// Every next digit is the previous plus `step` modulo 10 (step 1 ascending, 9 descending).
/// `d` holds ASCII digits only.
fn is_run(d: &[u8], step: u8) -> bool {
    d.windows(2)
        .all(|w| (w[0] - b'0' + step) % 10 == w[1] - b'0')
}

fn contains_extension(pin: &[u8], ext: &[u8]) -> bool {
    if ext.is_empty() || !ext.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let rev: Vec<u8> = ext.iter().rev().copied().collect();
    if ext.len() < 3 {
        return pin == ext || pin == rev.as_slice();
    }
    let within = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    if ext.len() <= pin.len() {
        within(pin, ext) || within(pin, &rev)
    } else {
        within(ext, pin) || within(&rev, pin)
    }
}

/// Hashing failed (only on resource exhaustion or a broken build; never carries the PIN).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("PIN hashing failed: {0}")]
pub struct PinHashError(String);

fn hasher() -> Result<Argon2<'static>, PinHashError> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None)
        .map_err(|e| PinHashError(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a PIN as an argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) with a
/// random 16-byte salt. CPU- and memory-heavy by design: call it on the blocking pool.
pub fn hash_pin(pin: &Pin) -> Result<String, PinHashError> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| PinHashError(e.to_string()))?;
    let hash = hasher()?
        .hash_password(pin.expose_digits().as_bytes(), &salt)
        .map_err(|e| PinHashError(e.to_string()))?;
    Ok(hash.to_string())
}

/// True when `pin` matches the PHC string. Parameters are taken from the PHC string (so hashes
/// made with older parameters keep verifying); the final comparison is constant-time inside the
/// argon2 crate. A malformed PHC string verifies nothing. Call it on the blocking pool.
pub fn verify_pin(pin: &Pin, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    // Refuse anything but argon2id so a tampered row cannot downgrade the hash.
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return false;
    }
    Argon2::default()
        .verify_password(pin.expose_digits().as_bytes(), &parsed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pin: &str) -> Result<(), PinRejection> {
        check_new_pin(pin, "77513", &PinPolicy::default())
    }

    #[test]
    fn seed_defaults_six_digits_ten_minutes_three_attempts_thirty_minutes() {
        let p = PinPolicy::default();
        assert_eq!(p.length, 6);
        assert_eq!(p.activation_delay, Duration::from_secs(600));
        assert_eq!(p.max_attempts, 3);
        assert_eq!(p.lockout, Duration::from_secs(1800));
        let a: crate::store::AuthPolicy = (&p).into();
        assert_eq!(a.activation_delay_secs, 600);
        assert_eq!(a.lockout_secs, 1800);
        assert_eq!(a.max_attempts, 3);
    }

    #[test]
    fn good_pins_are_accepted() {
        for pin in ["480219", "135792", "902817", "123590", "771023", "310394"] {
            assert_eq!(check(pin), Ok(()), "{pin}");
        }
    }

    #[test]
    fn seed_six_digit_pin_length_and_digits_only() {
        assert_eq!(
            check("48021"),
            Err(PinRejection::WrongLength { expected: 6 })
        );
        assert_eq!(
            check("4802193"),
            Err(PinRejection::WrongLength { expected: 6 })
        );
        assert_eq!(check("48021*"), Err(PinRejection::NotDigits));
        assert_eq!(check("4802 9"), Err(PinRejection::NotDigits));
        assert_eq!(check(""), Err(PinRejection::NotDigits));
        assert_eq!(check("４80219"), Err(PinRejection::NotDigits));
        let four = PinPolicy {
            length: 4,
            ..PinPolicy::default()
        };
        assert_eq!(check_new_pin("4802", "77513", &four), Ok(()));
    }

    #[test]
    fn issue_trivial_all_one_digit() {
        for d in 0..10 {
            let pin = d.to_string().repeat(6);
            assert_eq!(check(&pin), Err(PinRejection::AllSameDigit));
        }
    }

    #[test]
    fn issue_trivial_ascending_or_descending_runs_including_wrap() {
        for pin in [
            "123456", "234567", "456789", "012345", "654321", "987654", "543210", "890123",
            "901234", "789012", "210987", "109876",
        ] {
            assert_eq!(check(pin), Err(PinRejection::Sequential), "{pin}");
        }
        // Partial runs and zig-zags are not runs.
        assert_eq!(check("123465"), Ok(()));
        assert_eq!(check("124567"), Ok(()));
    }

    #[test]
    fn issue_trivial_extension_or_its_reverse() {
        assert_eq!(check("775130"), Err(PinRejection::ContainsExtension));
        assert_eq!(check("077513"), Err(PinRejection::ContainsExtension));
        assert_eq!(check("315770"), Err(PinRejection::ContainsExtension));
        assert_eq!(check("431577"), Err(PinRejection::ContainsExtension));
        // Same digits in another order are fine.
        assert_eq!(check("751370"), Ok(()));
        let p = PinPolicy::default();
        // Extension as long as the PIN.
        assert_eq!(
            check_new_pin("615902", "615902", &p),
            Err(PinRejection::ContainsExtension)
        );
        assert_eq!(
            check_new_pin("209516", "615902", &p),
            Err(PinRejection::ContainsExtension)
        );
        // Longer number: its last six digits (or the reverse) are refused.
        assert_eq!(
            check_new_pin("277513", "01865277513", &p),
            Err(PinRejection::ContainsExtension)
        );
        // Short extensions only by equality; no extension skips the rule.
        assert_eq!(check_new_pin("480219", "48", &p), Ok(()));
        assert_eq!(check_new_pin("480219", "", &p), Ok(()));
        let two = PinPolicy {
            length: 2,
            ..PinPolicy::default()
        };
        assert_eq!(
            check_new_pin("84", "48", &two),
            Err(PinRejection::ContainsExtension)
        );
    }

    #[test]
    fn issue_trivial_fewer_than_three_distinct_digits() {
        for pin in ["121212", "112211", "909009", "343443"] {
            assert_eq!(check(pin), Err(PinRejection::TooFewDistinctDigits), "{pin}");
        }
        assert_eq!(check("121213"), Ok(()));
    }

    #[test]
    fn issue_trivial_digit_more_than_twice_in_a_row() {
        for pin in ["147770", "000123", "598222", "312221"] {
            assert_eq!(check(pin), Err(PinRejection::DigitRepeated), "{pin}");
        }
        // Exactly twice is allowed.
        assert_eq!(check("147702"), Ok(()));
        assert_eq!(check("110011"), Err(PinRejection::TooFewDistinctDigits));
        assert_eq!(check("110223"), Ok(()));
    }

    #[test]
    fn pin_parse_limits() {
        assert!(Pin::parse("").is_none());
        assert!(Pin::parse("12a4").is_none());
        assert!(Pin::parse("#").is_none());
        assert!(Pin::parse(&"1".repeat(MAX_PIN_DIGITS)).is_some());
        assert!(Pin::parse(&"1".repeat(MAX_PIN_DIGITS + 1)).is_none());
        let p = Pin::parse("480219").unwrap();
        assert_eq!(p.expose_digits(), "480219");
        assert_eq!(p.len(), 6);
        assert!(!p.is_empty());
    }

    #[test]
    fn pin_debug_and_display_hide_digits() {
        let p = Pin::parse("480219").unwrap();
        let shown = format!("{p:?} {p} {:?} {:#?}", Some(p.clone()), vec![p.clone()]);
        for d in '0'..='9' {
            assert!(!shown.contains(d), "{shown}");
        }
        assert!(shown.contains("******"));
        // Rejections carry no digits of the PIN either.
        let r = check_new_pin("775130", "77513", &PinPolicy::default()).unwrap_err();
        let s = format!("{r} {r:?}");
        assert!(!s.contains("775130") && !s.contains("77513"), "{s}");
    }

    #[test]
    fn owasp_argon2id_hash_round_trip() {
        let pin = Pin::parse("480219").unwrap();
        let phc = hash_pin(&pin).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!phc.contains("480219"));
        assert!(verify_pin(&pin, &phc));
        assert!(!verify_pin(&Pin::parse("480218").unwrap(), &phc));
        // Salted: the same PIN hashes differently.
        assert_ne!(hash_pin(&pin).unwrap(), phc);
        assert!(!verify_pin(&pin, "not a phc string"));
        assert!(!verify_pin(&pin, ""));
    }
}
