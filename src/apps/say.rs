//! The "say" module: composes numbers, digit strings, callers, dates and times from recorded
//! fragments of `prompts/catalogue.toml`, so that nothing is synthesised at run time.
//!
//! Every function returns prompt *ids* (no audio), in the order they are to be played; the
//! flow looks them up in its [`PromptSource`](super::PromptSource). Wording is British English:
//! "one hundred and five", "on Tuesday the third of November at three forty two p m".
//!
//! Fragments used: `num-0`..`num-20`, `num-30`..`num-90`, `num-hundred`, `num-thousand`,
//! `num-million`, `num-oh`, `vm-and`, `digit-0`..`digit-9`, `plus`, `star`, `hash`,
//! `vm-extension`, `vm-unknown-caller`, `vm-today`, `vm-yesterday`, `vm-on`, `vm-the`, `vm-of`,
//! `vm-at`, `day-*`, `month-*`, `ord-1`..`ord-20`, `ord-30`, `am`, `pm`, `time-noon`,
//! `time-midnight`.

use chrono::{Datelike, NaiveDate, TimeZone, Timelike, Weekday};
use chrono_tz::Tz;

use crate::numbering::{Caller, NumberingPlan};

fn id(s: &str) -> String {
    s.to_owned()
}

/// 0..=99 as "num-" fragments ("forty two" is `num-40`, `num-2`).
fn push_tens(n: u32, out: &mut Vec<String>) {
    if n < 20 {
        out.push(format!("num-{n}"));
    } else {
        out.push(format!("num-{}", n / 10 * 10));
        if !n.is_multiple_of(10) {
            out.push(format!("num-{}", n % 10));
        }
    }
}

/// 1..=999, British style: "three hundred and seven".
fn push_hundreds(n: u32, out: &mut Vec<String>) {
    let (h, rest) = (n / 100, n % 100);
    if h > 0 {
        push_tens(h, out);
        out.push(id("num-hundred"));
        if rest > 0 {
            out.push(id("vm-and"));
        }
    }
    if rest > 0 || h == 0 {
        push_tens(rest, out);
    }
}

/// A cardinal number in British English: 105 is "one hundred and five", 2005 is
/// "two thousand and five", 1_234_567 is "one million two hundred and thirty four thousand
/// five hundred and sixty seven". Covers all of `u32`.
pub fn say_number(n: u32) -> Vec<String> {
    let mut out = Vec::new();
    if n == 0 {
        out.push(id("num-0"));
        return out;
    }
    let millions = n / 1_000_000;
    let thousands = (n / 1000) % 1000;
    let rest = n % 1000;
    if millions > 0 {
        // Up to 4294: "four thousand two hundred and ninety four million".
        out.extend(say_number(millions));
        out.push(id("num-million"));
    }
    if thousands > 0 {
        push_hundreds(thousands, &mut out);
        out.push(id("num-thousand"));
    }
    if rest > 0 {
        if rest < 100 && (millions > 0 || thousands > 0) {
            out.push(id("vm-and"));
        }
        push_hundreds(rest, &mut out);
    }
    out
}

/// Digits one by one (`digit-0`..`digit-9`); `+`, `*` and `#` are spoken as "plus", "star" and
/// "hash"; anything else (spaces, dashes) is skipped.
pub fn say_digits(s: &str) -> Vec<String> {
    s.chars()
        .filter_map(|c| match c {
            '0'..='9' => Some(format!("digit-{c}")),
            '+' => Some(id("plus")),
            '*' => Some(id("star")),
            '#' => Some(id("hash")),
            _ => None,
        })
        .collect()
}

/// Who left a message, from the caller as stored with it (E.164, extension or raw text):
/// "extension 7 7 5 1 3" for internal callers, the national number digit by digit for outside
/// callers ("0 2 0 7 9 4 6 ..."; international numbers keep "plus"), a bare digit string as
/// digits, and "an unknown caller" when withheld, empty or not a number (a SIP user name is
/// never spelled out).
pub fn say_caller(caller: &str, plan: &NumberingPlan) -> Vec<String> {
    match plan.classify(caller) {
        Caller::Extension { extension, .. } => {
            let mut out = vec![id("vm-extension")];
            out.extend(say_digits(&extension));
            out
        }
        Caller::External { e164 } => say_digits(&plan.national(&e164)),
        Caller::Other(s)
            if s.chars().any(|c| c.is_ascii_digit())
                && s.chars().all(|c| c.is_ascii_digit() || c == '+') =>
        {
            say_digits(&s)
        }
        Caller::Other(_) | Caller::Unknown => vec![id("vm-unknown-caller")],
    }
}

fn weekday_id(w: Weekday) -> &'static str {
    match w {
        Weekday::Mon => "day-monday",
        Weekday::Tue => "day-tuesday",
        Weekday::Wed => "day-wednesday",
        Weekday::Thu => "day-thursday",
        Weekday::Fri => "day-friday",
        Weekday::Sat => "day-saturday",
        Weekday::Sun => "day-sunday",
    }
}

fn month_id(m: u32) -> &'static str {
    const MONTHS: [&str; 12] = [
        "month-january",
        "month-february",
        "month-march",
        "month-april",
        "month-may",
        "month-june",
        "month-july",
        "month-august",
        "month-september",
        "month-october",
        "month-november",
        "month-december",
    ];
    MONTHS
        .get((m as usize).wrapping_sub(1))
        .copied()
        .unwrap_or("month-january")
}

/// An ordinal day of the month, 1..=31: "third", "twenty first" (`num-20`, `ord-1`).
pub fn say_ordinal(n: u32) -> Vec<String> {
    match n {
        1..=20 | 30 => vec![format!("ord-{n}")],
        21..=29 | 31..=99 => vec![format!("num-{}", n / 10 * 10), format!("ord-{}", n % 10)],
        _ => say_number(n),
    }
}

/// A time of day on the 12-hour clock: "three forty two p m", "three oh five p m",
/// "three p m", "twelve noon", "midnight".
pub fn say_time(hour: u32, minute: u32) -> Vec<String> {
    let (hour, minute) = (hour % 24, minute % 60);
    match (hour, minute) {
        (0, 0) => return vec![id("time-midnight")],
        (12, 0) => return vec![id("num-12"), id("time-noon")],
        _ => {}
    }
    let h12 = match hour % 12 {
        0 => 12,
        h => h,
    };
    let mut out = say_number(h12);
    if minute > 0 {
        if minute < 10 {
            out.push(id("num-oh"));
        }
        push_tens(minute, &mut out);
    }
    out.push(id(if hour < 12 { "am" } else { "pm" }));
    out
}

/// When a message was received, relative to `now_unix`, in the time zone `tz`:
/// "today at 3:42 PM", "yesterday at ...", otherwise "on Tuesday the 3rd of November at ...",
/// with the year added ("... of November two thousand and twenty five") when it is not the
/// current year. Calendar days are those of `tz`, so the day boundary follows summer time.
/// A time in the future (clock skew) on another day is read as a full date.
pub fn say_received(received_unix: i64, now_unix: i64, tz: Tz) -> Vec<String> {
    let (Some(at), Some(now)) = (
        tz.timestamp_opt(received_unix, 0).single(),
        tz.timestamp_opt(now_unix, 0).single(),
    ) else {
        return Vec::new();
    };
    let day: NaiveDate = at.date_naive();
    let today: NaiveDate = now.date_naive();
    let mut out = Vec::new();
    if day == today {
        out.push(id("vm-today"));
    } else if today.pred_opt() == Some(day) {
        out.push(id("vm-yesterday"));
    } else {
        out.push(id("vm-on"));
        out.push(id(weekday_id(day.weekday())));
        out.push(id("vm-the"));
        out.extend(say_ordinal(day.day()));
        out.push(id("vm-of"));
        out.push(id(month_id(day.month())));
        if day.year() != today.year() {
            if let Ok(y) = u32::try_from(day.year()) {
                out.extend(say_number(y));
            }
        }
    }
    out.push(id("vm-at"));
    out.extend(say_time(at.hour(), at.minute()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(v: &[String]) -> String {
        v.iter()
            .map(|s| {
                s.trim_start_matches("num-")
                    .trim_start_matches("digit-")
                    .trim_start_matches("vm-")
                    .trim_start_matches("day-")
                    .trim_start_matches("month-")
                    .trim_start_matches("time-")
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn numbers_in_british_english() {
        assert_eq!(words(&say_number(0)), "0");
        assert_eq!(words(&say_number(7)), "7");
        assert_eq!(words(&say_number(13)), "13");
        assert_eq!(words(&say_number(20)), "20");
        assert_eq!(words(&say_number(42)), "40 2");
        assert_eq!(words(&say_number(100)), "1 hundred");
        assert_eq!(words(&say_number(105)), "1 hundred and 5");
        assert_eq!(words(&say_number(999)), "9 hundred and 90 9");
        assert_eq!(words(&say_number(1000)), "1 thousand");
        assert_eq!(words(&say_number(1005)), "1 thousand and 5");
        assert_eq!(words(&say_number(1234)), "1 thousand 2 hundred and 30 4");
        assert_eq!(words(&say_number(2025)), "2 thousand and 20 5");
        assert_eq!(words(&say_number(9999)), "9 thousand 9 hundred and 90 9");
        assert_eq!(words(&say_number(20_000)), "20 thousand");
        assert_eq!(
            words(&say_number(1_000_001)),
            "1 million and 1",
            "British 'and' before a final part under a hundred"
        );
        assert_eq!(
            words(&say_number(u32::MAX)),
            "4 thousand 2 hundred and 90 4 million 9 hundred and 60 7 thousand \
             2 hundred and 90 5"
        );
    }

    #[test]
    fn every_number_up_to_9999_uses_only_catalogue_fragments() {
        let catalogue = include_str!("../../prompts/catalogue.toml");
        let ids: std::collections::HashSet<&str> = catalogue
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, _)| k.trim())
            .collect();
        for n in 0..=9999 {
            for f in say_number(n) {
                assert!(ids.contains(f.as_str()), "{n}: {f} not in catalogue");
            }
        }
        for d in 1..=31 {
            for f in say_ordinal(d) {
                assert!(ids.contains(f.as_str()), "{d}: {f} not in catalogue");
            }
        }
        let tz: Tz = "Europe/London".parse().unwrap();
        for f in say_received(1_700_000_000, 1_760_000_000, tz)
            .into_iter()
            .chain(say_digits("+0123456789*#"))
            .chain(say_caller("", &NumberingPlan::default()))
            .chain(say_caller("77513", &NumberingPlan::default()))
            .chain(say_time(0, 0))
            .chain(say_time(12, 0))
        {
            assert!(ids.contains(f.as_str()), "{f} not in catalogue");
        }
    }

    #[test]
    fn digits_and_symbols() {
        assert_eq!(
            say_digits("+44 7"),
            vec!["plus", "digit-4", "digit-4", "digit-7"]
        );
        assert_eq!(say_digits("*#x"), vec!["star", "hash"]);
        assert!(say_digits("").is_empty());
    }

    #[test]
    fn callers_internal_external_unknown() {
        let plan = NumberingPlan::default();
        assert_eq!(
            words(&say_caller("+441865277513", &plan)),
            "extension 7 7 5 1 3"
        );
        assert_eq!(words(&say_caller("77513", &plan)), "extension 7 7 5 1 3");
        assert_eq!(
            words(&say_caller("+442079460000", &plan)),
            "0 2 0 7 9 4 6 0 0 0 0"
        );
        assert_eq!(
            words(&say_caller("+33142685300", &plan)),
            "plus 3 3 1 4 2 6 8 5 3 0 0"
        );
        assert_eq!(words(&say_caller("", &plan)), "unknown-caller");
        assert_eq!(words(&say_caller("anonymous", &plan)), "unknown-caller");
        assert_eq!(words(&say_caller("alice", &plan)), "unknown-caller");
        assert_eq!(words(&say_caller("123", &plan)), "1 2 3");
    }

    #[test]
    fn times_of_day() {
        assert_eq!(words(&say_time(15, 42)), "3 40 2 pm");
        assert_eq!(words(&say_time(15, 5)), "3 oh 5 pm");
        assert_eq!(words(&say_time(15, 0)), "3 pm");
        assert_eq!(words(&say_time(9, 10)), "9 10 am");
        assert_eq!(words(&say_time(0, 30)), "12 30 am");
        assert_eq!(words(&say_time(12, 0)), "12 noon");
        assert_eq!(words(&say_time(12, 1)), "12 oh 1 pm");
        assert_eq!(words(&say_time(0, 0)), "midnight");
    }

    fn london() -> Tz {
        "Europe/London".parse().unwrap()
    }

    /// Unix time of a London wall-clock time.
    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        london()
            .with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .unwrap()
            .timestamp()
    }

    #[test]
    fn today_yesterday_and_dates_in_london() {
        let now = at(2026, 11, 5, 10, 0);
        assert_eq!(
            words(&say_received(at(2026, 11, 5, 9, 42), now, london())),
            "today at 9 40 2 am"
        );
        assert_eq!(
            words(&say_received(at(2026, 11, 4, 15, 42), now, london())),
            "yesterday at 3 40 2 pm"
        );
        assert_eq!(
            words(&say_received(at(2026, 11, 3, 15, 42), now, london())),
            "on tuesday the ord-3 of november at 3 40 2 pm"
        );
        assert_eq!(
            words(&say_received(at(2026, 10, 21, 8, 5), now, london())),
            "on wednesday the 20 ord-1 of october at 8 oh 5 am"
        );
        assert_eq!(
            words(&say_received(at(2025, 12, 31, 23, 59), now, london())),
            "on wednesday the 30 ord-1 of december 2 thousand and 20 5 at 11 50 9 pm"
        );
    }

    #[test]
    fn bst_to_gmt_boundary_uses_local_days() {
        // 2026-10-25: clocks go back at 02:00 BST (01:00 UTC).
        // 23:30 UTC on the 24th is 00:30 BST on the 25th: "today" when it is 09:00 on the 25th.
        let now = at(2026, 10, 25, 9, 0);
        let utc_2330 = chrono::Utc
            .with_ymd_and_hms(2026, 10, 24, 23, 30, 0)
            .single()
            .unwrap()
            .timestamp();
        assert_eq!(
            words(&say_received(utc_2330, now, london())),
            "today at 12 30 am"
        );
        // 01:30 UTC after the change is 01:30 GMT.
        let utc_0130 = chrono::Utc
            .with_ymd_and_hms(2026, 10, 25, 1, 30, 0)
            .single()
            .unwrap()
            .timestamp();
        assert_eq!(
            words(&say_received(utc_0130, now, london())),
            "today at 1 30 am"
        );
        // 23:30 UTC on the 23rd (BST) is 00:30 on the 24th: yesterday.
        assert_eq!(
            words(&say_received(utc_2330 - 86_400, now, london())),
            "yesterday at 12 30 am"
        );
        // Spring forward 2026-03-29: 14:00 BST is 13:00 UTC.
        let now = at(2026, 3, 30, 9, 0);
        let utc_1300 = chrono::Utc
            .with_ymd_and_hms(2026, 3, 29, 13, 0, 0)
            .single()
            .unwrap()
            .timestamp();
        assert_eq!(
            words(&say_received(utc_1300, now, london())),
            "yesterday at 2 pm"
        );
    }

    #[test]
    fn future_time_on_another_day_reads_as_date() {
        let now = at(2026, 11, 5, 10, 0);
        assert_eq!(
            words(&say_received(at(2026, 11, 6, 10, 0), now, london())),
            "on friday the ord-6 of november at 10 am"
        );
    }
}
