//! spandsp ↔ spandsp in virtual time: two engines of coda's wrapper exchange 20 ms blocks
//! (audio through real G.711 encode/decode) or IFPs, with no clock and no sockets.

use super::*;
use crate::fax::tiff::{self, charts, Bitmap};
use codecs::g711::Law;

/// 10 minutes of virtual time: far more than two pages need; a stuck session fails the test.
const MAX_BLOCKS: usize = 10 * 60 * 50;

fn write_pages(dir: &Path, pages: &[Bitmap]) -> std::path::PathBuf {
    let path = dir.join("tx.tif");
    std::fs::write(&path, tiff::write_bilevel_uncompressed(pages)).unwrap();
    path
}

fn finish(events: &mut Vec<FaxEvent>, outcome: &mut Option<FaxOutcome>) {
    for e in events.drain(..) {
        if let FaxEvent::Finished(o) = e {
            *outcome = Some(o);
        }
    }
}

/// Run an audio call: sender is the calling party. `lose(block)` says whether the block the
/// sender transmits at that index is lost on the way.
fn audio_call(
    sender: &mut AudioFax,
    receiver: &mut AudioFax,
    law: Law,
    lose: impl Fn(usize) -> bool,
) -> (FaxOutcome, FaxOutcome, Vec<FaxEvent>) {
    let mut a = [0i16; BLOCK];
    let mut b = [0i16; BLOCK];
    let mut wire = [0u8; BLOCK];
    let (mut tx_out, mut rx_out) = (None, None);
    let mut rx_events = Vec::new();
    for i in 0..MAX_BLOCKS {
        sender.tx(&mut a);
        law.encode_slice(&a, &mut wire);
        law.decode_slice(&wire, &mut a);
        if lose(i) {
            receiver.rx_fillin(BLOCK);
        } else {
            receiver.rx(&a);
        }
        receiver.tx(&mut b);
        law.encode_slice(&b, &mut wire);
        law.decode_slice(&wire, &mut b);
        sender.rx(&b);
        let mut ev: Vec<_> = std::iter::from_fn(|| sender.poll_event()).collect();
        finish(&mut ev, &mut tx_out);
        while let Some(e) = receiver.poll_event() {
            rx_events.push(e);
        }
        if tx_out.is_some() && !receiver.is_active() {
            break;
        }
    }
    for e in &rx_events {
        if let FaxEvent::Finished(o) = e {
            rx_out = Some(o.clone());
        }
    }
    (
        tx_out.expect("sender finished"),
        rx_out.expect("receiver finished"),
        rx_events,
    )
}

fn two_pages() -> Vec<Bitmap> {
    vec![
        charts::dense_chart(1728, 1100, 204, 98, 7),
        charts::numbered_page(2, 1728, 1100, 204, 98),
    ]
}

#[test]
fn t30_audio_g711_alaw_two_pages_received_as_t6() {
    let dir = tempdir();
    let tx_path = write_pages(dir.path(), &two_pages());
    let rx_path = dir.path().join("rx.tif");
    let mut sender = AudioFax::new(
        &T30Options {
            ident: "+44 1234 567890".into(),
            calling_party: true,
            ..Default::default()
        },
        Document::Send(&tx_path),
    )
    .unwrap();
    let mut receiver = AudioFax::new(
        &T30Options {
            ident: "coda".into(),
            ..Default::default()
        },
        Document::Receive(&rx_path),
    )
    .unwrap();
    let (tx, rx, events) = audio_call(&mut sender, &mut receiver, Law::Alaw, |_| false);
    assert!(tx.ok(), "sender: {} {}", tx.code, tx.text);
    assert!(rx.ok(), "receiver: {} {}", rx.code, rx.text);
    assert_eq!(rx.stats.pages_rx, 2);
    assert_eq!(rx.remote_ident, "+44 1234 567890");
    assert_eq!(tx.remote_ident, "coda");
    assert!(rx.stats.ecm, "ECM was offered on both sides");
    assert_eq!(rx.stats.bit_rate, 14_400, "V.17 on a clean line");
    assert!(events.contains(&FaxEvent::Negotiating));
    let page_events = events
        .iter()
        .filter(|e| matches!(e, FaxEvent::PageDone(_)))
        .count();
    assert_eq!(page_events, 2);
    let pages = tiff::read_pages(&std::fs::read(&rx_path).unwrap()).unwrap();
    assert_eq!(pages.len(), 2);
    for p in &pages {
        assert_eq!(p.width, 1728);
        assert_eq!(p.height, 1100);
        assert_eq!(p.compression, tiff::Compression::G4);
    }
}

#[test]
fn t30_audio_without_ecm_reports_bad_rows_zero_on_clean_line() {
    let dir = tempdir();
    let tx_path = write_pages(dir.path(), &two_pages()[..1]);
    let rx_path = dir.path().join("rx.tif");
    let opts = T30Options {
        ecm: false,
        ..Default::default()
    };
    let mut sender = AudioFax::new(
        &T30Options {
            calling_party: true,
            ..opts.clone()
        },
        Document::Send(&tx_path),
    )
    .unwrap();
    let mut receiver = AudioFax::new(&opts, Document::Receive(&rx_path)).unwrap();
    let (_, rx, _) = audio_call(&mut sender, &mut receiver, Law::Ulaw, |_| false);
    assert!(rx.ok(), "{}", rx.text);
    assert!(!rx.stats.ecm);
    assert_eq!(rx.stats.bad_rows, 0);
    assert_eq!(rx.stats.pages_rx, 1);
}

#[test]
fn t30_hangup_before_any_fax_reports_call_dropped() {
    let dir = tempdir();
    let rx_path = dir.path().join("rx.tif");
    let mut receiver = AudioFax::new(&T30Options::default(), Document::Receive(&rx_path)).unwrap();
    let silence = [0i16; BLOCK];
    let mut out = [0i16; BLOCK];
    for _ in 0..50 {
        receiver.rx(&silence);
        receiver.tx(&mut out);
    }
    assert!(receiver.is_active());
    receiver.terminate();
    assert!(!receiver.is_active());
    let ev: Vec<_> = std::iter::from_fn(|| receiver.poll_event()).collect();
    let Some(FaxEvent::Finished(o)) = ev.last() else {
        panic!("no phase E: {ev:?}");
    };
    assert!(!o.ok());
    assert_eq!(o.stats.pages_rx, 0);
    // Terminating twice reports once.
    receiver.terminate();
    assert!(receiver.poll_event().is_none());
}

#[test]
fn t30_receiver_alone_times_out_with_no_fax_in_virtual_time() {
    // A "fax" call where the caller never trains: T.30 gives up by itself (T1, 35 s).
    let dir = tempdir();
    let rx_path = dir.path().join("rx.tif");
    let mut receiver = AudioFax::new(&T30Options::default(), Document::Receive(&rx_path)).unwrap();
    let silence = [0i16; BLOCK];
    let mut out = [0i16; BLOCK];
    let mut blocks = 0;
    while receiver.is_active() && blocks < MAX_BLOCKS {
        receiver.rx(&silence);
        receiver.tx(&mut out);
        blocks += 1;
    }
    assert!(!receiver.is_active(), "T.30 never gave up");
    let secs = blocks / 50;
    assert!((30..=60).contains(&secs), "gave up after {secs} s");
    let o = std::iter::from_fn(|| receiver.poll_event())
        .find_map(|e| match e {
            FaxEvent::Finished(o) => Some(o),
            _ => None,
        })
        .unwrap();
    assert!(!o.ok());
    assert!(!explain(o.code).is_empty());
}

#[test]
fn explain_has_words_for_every_code() {
    for code in 0..=60 {
        assert!(explain(code).ends_with('.'));
        assert!(!completion_text(code).is_empty());
    }
    assert_eq!(explain(0), "The fax was received completely.");
}

struct TempDir(std::path::PathBuf);
impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
fn tempdir() -> TempDir {
    use rand::Rng;
    let p = std::env::temp_dir().join(format!("coda-fax-{}", rand::thread_rng().gen::<u64>()));
    std::fs::create_dir_all(&p).unwrap();
    TempDir(p)
}

#[test]
fn cng_detector_hears_a_calling_fax_machine_not_a_tone_or_speech() {
    // The calling side of a real T.30 engine sends CNG while it waits for an answer.
    let dir = tempdir();
    let tx_path = write_pages(dir.path(), &two_pages()[..1]);
    let mut caller = AudioFax::new(
        &T30Options {
            calling_party: true,
            ..Default::default()
        },
        Document::Send(&tx_path),
    )
    .unwrap();
    let mut det = CngDetector::new().unwrap();
    let mut frame = [0i16; BLOCK];
    let mut heard_at = None;
    for i in 0..(5 * 50) {
        caller.tx(&mut frame);
        caller.rx(&[0i16; BLOCK]);
        if det.process(&frame) {
            heard_at = Some(i);
            break;
        }
    }
    let at = heard_at.expect("CNG not heard within 5 s");
    assert!(at <= 50, "CNG took {} ms", at * 20);

    // Speech (every embedded prompt, back to back) and a 440 Hz tone are not CNG. (A
    // continuous 1100 Hz tone is: spandsp's detector does not insist on the cadence.)
    let prompts = crate::media::prompts::PromptSet::load_embedded().unwrap();
    let mut det = CngDetector::new().unwrap();
    let mut heard = None;
    for id in crate::media::prompts::PromptSet::embedded_ids() {
        let audio = prompts.get(id).unwrap();
        if audio.chunks(BLOCK).any(|c| det.process(c)) {
            heard = Some(id);
            break;
        }
    }
    assert_eq!(heard, None, "speech taken for CNG");
    let mut det = CngDetector::new().unwrap();
    let tone: Vec<i16> = (0..5 * 8000)
        .map(|n| (8000.0 * (2.0 * std::f32::consts::PI * 440.0 * n as f32 / 8000.0).sin()) as i16)
        .collect();
    assert!(
        !tone.chunks(BLOCK).any(|c| det.process(c)),
        "440 Hz taken for CNG"
    );
}
