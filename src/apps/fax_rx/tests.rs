//! Fax reception in virtual time: a spandsp sender (coda's wrapper, calling party) against the
//! [`FaxReceive`] machine, through real G.711 or through coda's UDPTL with loss. Each test is
//! a whole fax session in milliseconds of CPU.

use super::*;
use crate::apps::fax_loopback::{run, Line, Loss};
use crate::fax::engine::{AudioFax, Document, T30Options, T38Fax, T38Options};
use crate::fax::tiff::{self, charts, Bitmap};
use codecs::g711::Law;

const MAX_STEPS: usize = 15 * 60 * 50;

pub(crate) struct TempDir(pub std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
pub(crate) fn tempdir() -> TempDir {
    let p = std::env::temp_dir().join(format!("coda-faxrx-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&p).unwrap();
    TempDir(p)
}

fn sender_opts() -> T30Options {
    T30Options {
        ident: "+44 20 7946 0000".into(),
        calling_party: true,
        ..Default::default()
    }
}

fn negotiated(version: u8) -> NegotiatedT38 {
    crate::apps::fax_loopback::loopback_t38(version)
}

fn finished(events: &mut [Event]) -> Option<FaxRxResult> {
    events.iter().find_map(|e| match e {
        Event::Finished(r) => Some((**r).clone()),
        _ => None,
    })
}

fn audio(law: Law) -> Line {
    Line::Audio {
        law,
        loss: Loss::None,
    }
}

fn t38(version: u8, loss: Loss, garbage_every: Option<usize>) -> Line {
    Line::T38 {
        version,
        redundancy: 3,
        loss,
        garbage_every,
    }
}

/// One session on `line`; the sender never stops on its own.
fn session(txp: &Path, rxp: &Path, cfg: FaxRxConfig, line: &Line) -> FaxRxResult {
    run(txp, rxp, &sender_opts(), cfg, line, |_, _| false)
        .unwrap()
        .receiver
}

fn tx_file(dir: &TempDir, pages: &[Bitmap]) -> std::path::PathBuf {
    let p = dir.0.join("tx.tif");
    std::fs::write(&p, tiff::write_bilevel_uncompressed(pages)).unwrap();
    p
}

/// Every received page, decoded, equals what was sent (rendered back through the PDF).
fn assert_pages_equal(rx_tiff: &Path, sent: &[Bitmap]) {
    let pages = tiff::read_pages(&std::fs::read(rx_tiff).unwrap()).unwrap();
    assert_eq!(pages.len(), sent.len(), "page count");
    for (i, (got, want)) in pages.iter().zip(sent).enumerate() {
        assert_eq!(got.compression, tiff::Compression::G4, "page {i}");
        let bm = crate::fax::testutil::decode_page(got).expect("decodable page");
        assert_eq!(bm.width, want.width, "page {i} width");
        assert_eq!(bm.height, want.height, "page {i} height");
        assert_eq!(bm.mismatches(want), Some(0), "page {i} pixels");
    }
}

fn three_pages() -> Vec<Bitmap> {
    vec![
        charts::dense_chart(1728, 1143, 204, 98, 11),
        charts::nearly_blank(1728, 1143, 204, 98, 12),
        charts::numbered_page(3, 1728, 1143, 204, 98),
    ]
}

#[test]
fn t30_audio_three_pages_arrive_pixel_exact() {
    let dir = tempdir();
    let pages = three_pages();
    let txp = tx_file(&dir, &pages);
    let rxp = dir.0.join("rx.tif");
    let cfg = FaxRxConfig {
        ident: "coda".into(),
        ..Default::default()
    };
    let rep = run(
        &txp,
        &rxp,
        &sender_opts(),
        cfg,
        &audio(Law::Alaw),
        |_, _| false,
    )
    .unwrap();
    let r = rep.receiver;
    assert!(r.clean(), "{r:?}");
    assert_eq!(r.pages, 3);
    assert_eq!(r.transport, FaxTransport::Audio);
    assert_eq!(r.outcome.remote_ident, "+44 20 7946 0000");
    assert!(r.outcome.stats.ecm);
    let sent = rep.sender.expect("sender finished");
    assert!(sent.ok(), "{sent:?}");
    assert_eq!(sent.remote_ident, "coda");
    assert_pages_equal(&rxp, &pages);
}

#[test]
fn t30_audio_fine_resolution_page_keeps_its_resolution() {
    let dir = tempdir();
    let pages = vec![charts::dense_chart(1728, 2286, 204, 196, 5)];
    let txp = tx_file(&dir, &pages);
    let rxp = dir.0.join("rx.tif");
    let r = session(&txp, &rxp, FaxRxConfig::default(), &audio(Law::Ulaw));
    assert!(r.clean(), "{r:?}");
    let got = tiff::read_pages(&std::fs::read(&rxp).unwrap()).unwrap();
    assert_eq!(got.len(), 1);
    assert!((got[0].y_dpi - 196.0).abs() < 2.0, "{}", got[0].y_dpi);
    assert_pages_equal(&rxp, &pages);
}

#[test]
fn t38_version_0_and_3_survive_20_percent_spread_loss() {
    for version in [0u8, 3] {
        let dir = tempdir();
        let pages = three_pages();
        let txp = tx_file(&dir, &pages);
        let rxp = dir.0.join("rx.tif");
        // Every fifth datagram lost, both ways: 20 % spread loss.
        let line = t38(version, Loss::Every(5), None);
        let r = session(&txp, &rxp, FaxRxConfig::default(), &line);
        assert!(r.clean(), "v{version}: {r:?}");
        assert_eq!(r.transport, FaxTransport::T38);
        assert_eq!(r.pages, 3);
        assert!(r.udptl_recovered > 0, "redundancy did the work");
        assert_pages_equal(&rxp, &pages);
    }
}

#[test]
fn t38_garbage_datagrams_are_dropped_and_the_fax_still_arrives() {
    let dir = tempdir();
    let pages = vec![charts::numbered_page(1, 1728, 1143, 204, 98)];
    let txp = tx_file(&dir, &pages);
    let rxp = dir.0.join("rx.tif");
    let r = session(
        &txp,
        &rxp,
        FaxRxConfig::default(),
        &t38(0, Loss::None, Some(7)),
    );
    assert!(r.clean(), "{r:?}");
    assert_pages_equal(&rxp, &pages);
}

#[test]
fn t30_sender_that_stops_after_one_page_gives_a_partial_result() {
    let dir = tempdir();
    let pages = three_pages();
    let txp = tx_file(&dir, &pages);
    let rxp = dir.0.join("rx.tif");
    let cfg = FaxRxConfig {
        max_duration_secs: 600,
        ..Default::default()
    };
    // The sender goes silent (line dropped) once its first page has been confirmed.
    let r = run(
        &txp,
        &rxp,
        &sender_opts(),
        cfg,
        &audio(Law::Alaw),
        |s, _| s.pages_tx >= 1,
    )
    .unwrap()
    .receiver;
    assert!(!r.clean(), "{r:?}");
    assert!(!r.outcome.ok());
    assert_eq!(r.pages, 1, "{r:?}");
    assert!(!r.explanation.is_empty());
    let got = tiff::read_pages(&std::fs::read(&rxp).unwrap()).unwrap();
    assert_eq!(got.len(), 1, "the page that arrived is kept");
    assert_pages_equal(&rxp, &pages[..1]);
}

#[test]
fn page_limit_cuts_the_fax_and_keeps_what_arrived() {
    let dir = tempdir();
    let pages = three_pages();
    let txp = tx_file(&dir, &pages);
    let rxp = dir.0.join("rx.tif");
    let cfg = FaxRxConfig {
        max_pages: 2,
        ..Default::default()
    };
    let r = session(&txp, &rxp, cfg, &audio(Law::Alaw));
    assert_eq!(r.local_stop, Some(LocalStop::TooManyPages), "{r:?}");
    assert!(r.explanation.contains("2 pages"), "{}", r.explanation);
    assert_eq!(r.pages, 2);
    assert!(!r.clean());
}

#[test]
fn duration_limit_ends_a_call_that_never_trains() {
    let dir = tempdir();
    let rxp = dir.0.join("rx.tif");
    let mut rx = FaxReceive::new(
        FaxRxConfig {
            max_duration_secs: 20,
            ..Default::default()
        },
        &rxp,
    )
    .unwrap();
    let mut steps = 0;
    let mut events = Vec::new();
    while !rx.is_done() && steps < MAX_STEPS {
        rx.handle_audio(&[0; BLOCK]);
        rx.step();
        events.extend(std::iter::from_fn(|| rx.poll_event()));
        steps += 1;
    }
    let r = finished(&mut events).unwrap();
    assert_eq!(r.local_stop, Some(LocalStop::TooLong));
    assert_eq!(r.pages, 0);
    assert_eq!(steps, 20 * 50);
}

#[test]
fn t38_request_comes_once_after_the_configured_delay() {
    let dir = tempdir();
    let rxp = dir.0.join("rx.tif");
    let mut rx = FaxReceive::new(
        FaxRxConfig {
            t38_request: true,
            t38_request_after_ms: 1000,
            ..Default::default()
        },
        &rxp,
    )
    .unwrap();
    let mut at = Vec::new();
    for i in 1..=200 {
        rx.handle_audio(&[0; BLOCK]);
        rx.step();
        while let Some(e) = rx.poll_event() {
            if matches!(e, Event::RequestT38) {
                at.push(i);
            }
        }
    }
    assert_eq!(at, vec![50]);
}

#[test]
fn t38_switch_during_the_tones_then_the_fax_arrives() {
    // The far end's gateway re-INVITEs to T.38 two seconds into the call; both ends restart
    // T.30 on T.38, as real gateways do.
    let dir = tempdir();
    let pages = vec![charts::dense_chart(1728, 1143, 204, 98, 3)];
    let txp = tx_file(&dir, &pages);
    let rxp = dir.0.join("rx.tif");
    let mut audio_sender = AudioFax::new(&sender_opts(), Document::Send(&txp)).unwrap();
    let mut rx = FaxReceive::new(FaxRxConfig::default(), &rxp).unwrap();
    let mut a = [0i16; BLOCK];
    for _ in 0..100 {
        audio_sender.tx(&mut a);
        rx.handle_audio(&a);
        let back = rx.step().unwrap();
        audio_sender.rx(&back);
    }
    drop(audio_sender);
    rx.switch_to_t38(&negotiated(3)).unwrap();
    assert!(!rx.is_audio());
    // A session refresh carrying the same T.38 offer keeps the running terminal.
    rx.switch_to_t38(&negotiated(3)).unwrap();
    let mut sender = T38Fax::new(
        &sender_opts(),
        &T38Options {
            version: 3,
            ..Default::default()
        },
        Document::Send(&txp),
    )
    .unwrap();
    let r = drive_t38(&mut sender, &mut rx);
    assert!(r.clean(), "{r:?}");
    assert_eq!(r.transport, FaxTransport::T38);
    assert_pages_equal(&rxp, &pages);
}

#[test]
fn hangup_before_any_page_reports_call_dropped_without_pages() {
    let dir = tempdir();
    let rxp = dir.0.join("rx.tif");
    let mut rx = FaxReceive::new(FaxRxConfig::default(), &rxp).unwrap();
    for _ in 0..10 {
        rx.step();
    }
    rx.handle_hangup();
    let mut events: Vec<_> = std::iter::from_fn(|| rx.poll_event()).collect();
    let r = finished(&mut events).unwrap();
    assert_eq!(r.local_stop, Some(LocalStop::Hangup));
    assert_eq!(r.pages, 0);
    assert!(rx.is_done());
    assert!(rx.step().is_none());
}

/// A clean T.38 line between an already-built sender and receiver (for the switch test).
fn drive_t38(sender: &mut T38Fax, rx: &mut FaxReceive) -> FaxRxResult {
    let mut tx = UdptlSender::new(3, 400);
    let mut srx = UdptlReceiver::new();
    let mut events = Vec::new();
    for _ in 0..MAX_STEPS {
        sender.advance(BLOCK);
        while let Some((ifp, _)) = sender.poll_ifp() {
            rx.handle_datagram(&tx.packet(&ifp));
        }
        rx.step();
        while let Some(d) = rx.poll_datagram() {
            for (seq, ifp) in srx.receive(&d).unwrap_or_default() {
                sender.rx_ifp(&ifp, seq);
            }
        }
        while sender.poll_event().is_some() {}
        events.extend(std::iter::from_fn(|| rx.poll_event()));
        if rx.is_done() {
            break;
        }
    }
    finished(&mut events).expect("reception finished")
}

#[test]
fn t30_non_ecm_ok_with_bad_rows_is_reported_degraded() {
    // Bursts longer than the redundancy depth (4 in every 40 datagrams) without ECM: T.30
    // says OK, but rows were lost (reference/fax.md §0.4). coda must not call that clean.
    let dir = tempdir();
    let pages = vec![
        charts::dense_chart(1728, 1143, 204, 98, 1),
        charts::numbered_page(2, 1728, 1143, 204, 98),
    ];
    let txp = tx_file(&dir, &pages);
    let rxp = dir.0.join("rx.tif");
    let opts = T30Options {
        ecm: false,
        ..sender_opts()
    };
    let cfg = FaxRxConfig {
        ecm: false,
        ..Default::default()
    };
    let line = t38(3, Loss::Burst { len: 4, period: 40 }, None);
    let r = run(&txp, &rxp, &opts, cfg, &line, |_, _| false)
        .unwrap()
        .receiver;
    assert!(r.outcome.ok(), "{r:?}");
    assert!(r.degraded && r.outcome.stats.bad_rows > 0, "{r:?}");
    assert!(!r.clean());
    assert!(
        r.explanation.contains("rows were damaged"),
        "{}",
        r.explanation
    );
    assert!(r.udptl_lost > 0);
}

#[test]
fn t30_audio_fax_does_not_survive_sparse_loss_and_says_why() {
    // One 20 ms frame in 200 lost is enough to break an audio fax (fax.md §0.4); the owner
    // gets words, not only a code.
    let dir = tempdir();
    let pages = vec![charts::numbered_page(1, 1728, 1143, 204, 98)];
    let txp = tx_file(&dir, &pages);
    let rxp = dir.0.join("rx.tif");
    let line = Line::Audio {
        law: Law::Alaw,
        loss: Loss::Every(200),
    };
    let r = session(&txp, &rxp, FaxRxConfig::default(), &line);
    assert!(!r.clean());
    assert_eq!(r.pages, 0);
    assert!(
        r.explanation.ends_with('.') && r.explanation.len() > 20,
        "{}",
        r.explanation
    );
}

#[test]
fn t30_sender_asking_for_an_unsupported_resolution_is_refused_clearly() {
    // 300 x 300 dpi is not among the resolutions coda offers (R8 standard/fine/superfine and
    // 200 x 100/200/400): the sender cannot send at it and gives up; coda reports no page.
    let dir = tempdir();
    let pages = vec![charts::numbered_page(1, 2592, 3300, 300, 300)];
    let txp = tx_file(&dir, &pages);
    let rxp = dir.0.join("rx.tif");
    let rep = run(
        &txp,
        &rxp,
        &sender_opts(),
        FaxRxConfig::default(),
        &audio(Law::Alaw),
        |_, _| false,
    )
    .unwrap();
    let r = rep.receiver;
    assert!(!r.clean(), "{r:?}");
    assert_eq!(r.pages, 0);
    let sent = rep.sender.expect("sender ended");
    assert!(!sent.ok(), "{sent:?}");
}

#[test]
fn t38_ten_page_document_of_mixed_pages_arrives_pixel_exact() {
    let dir = tempdir();
    let pages: Vec<Bitmap> = (1..=10u32)
        .map(|n| match n % 3 {
            0 => charts::dense_chart(1728, 1143, 204, 98, u64::from(n)),
            1 => charts::numbered_page(n, 1728, 1143, 204, 98),
            _ => charts::nearly_blank(1728, 1143, 204, 98, u64::from(n)),
        })
        .collect();
    let txp = tx_file(&dir, &pages);
    let rxp = dir.0.join("rx.tif");
    let r = session(
        &txp,
        &rxp,
        FaxRxConfig::default(),
        &t38(3, Loss::Every(10), None),
    );
    assert!(r.clean(), "{r:?}");
    assert_eq!(r.pages, 10);
    assert_pages_equal(&rxp, &pages);
    // The whole document as one PDF: ten pages, each rendered back equal to what was sent.
    let got = tiff::read_pages(&std::fs::read(&rxp).unwrap()).unwrap();
    let pdf = crate::fax::pdf::pages_to_pdf(&got, &Default::default()).unwrap();
    let sizes: Vec<_> = got
        .iter()
        .map(|p| (p.width, p.height, p.x_dpi, p.y_dpi))
        .collect();
    let rendered = crate::fax::testutil::render(&pdf, &sizes);
    for (i, (g, w)) in rendered.iter().zip(&pages).enumerate() {
        assert_eq!(g.mismatches(w), Some(0), "page {}", i + 1);
    }
}

#[test]
fn size_limit_stop_keeps_what_arrived_and_says_why() {
    let dir = tempdir();
    let pages = three_pages();
    let txp = tx_file(&dir, &pages);
    let rxp = dir.0.join("rx.tif");
    let mut sender = AudioFax::new(&sender_opts(), Document::Send(&txp)).unwrap();
    let mut rx = FaxReceive::new(FaxRxConfig::default(), &rxp).unwrap();
    let mut a = [0i16; BLOCK];
    let mut events = Vec::new();
    // Run until the first page is in, then the shell reports the file too large.
    for _ in 0..MAX_STEPS {
        sender.tx(&mut a);
        rx.handle_audio(&a);
        let back = rx.step().unwrap_or([0; BLOCK]);
        sender.rx(&back);
        while sender.poll_event().is_some() {}
        events.extend(std::iter::from_fn(|| rx.poll_event()));
        if sender.stats().pages_tx >= 1 {
            rx.handle_too_large();
        }
        if rx.is_done() {
            break;
        }
    }
    events.extend(std::iter::from_fn(|| rx.poll_event()));
    let r = finished(&mut events).unwrap();
    assert_eq!(r.local_stop, Some(LocalStop::TooLarge));
    assert!(r.explanation.contains("larger than the size allowed"));
    assert_eq!(r.pages, 1);
    assert!(!r.clean());
}

#[test]
fn sender_gone_mid_page_without_ecm_keeps_the_earlier_pages() {
    // The line drops two seconds into page 2 (non-ECM, so rows stream as they come).
    let dir = tempdir();
    let pages = three_pages();
    let txp = tx_file(&dir, &pages);
    let rxp = dir.0.join("rx.tif");
    let opts = T30Options {
        ecm: false,
        ..sender_opts()
    };
    let cfg = FaxRxConfig {
        ecm: false,
        max_duration_secs: 600,
        ..Default::default()
    };
    let mut page1_at = None;
    let r = run(&txp, &rxp, &opts, cfg, &audio(Law::Alaw), |s, step| {
        if s.pages_tx >= 1 && page1_at.is_none() {
            page1_at = Some(step);
        }
        page1_at.is_some_and(|p| step > p + 5 * 50)
    })
    .unwrap()
    .receiver;
    assert!(!r.clean(), "{r:?}");
    assert!(r.pages >= 1, "{r:?}");
    let got = tiff::read_pages(&std::fs::read(&rxp).unwrap()).unwrap();
    assert!(!got.is_empty());
    let first = crate::fax::testutil::decode_page(&got[0]).unwrap();
    assert_eq!(first.mismatches(&pages[0]), Some(0), "page 1 intact");
}

#[test]
fn t38_request_comes_early_when_the_caller_sends_cng() {
    let dir = tempdir();
    let txp = tx_file(&dir, &[charts::numbered_page(1, 1728, 1143, 204, 98)]);
    let rxp = dir.0.join("rx.tif");
    let mut sender = AudioFax::new(&sender_opts(), Document::Send(&txp)).unwrap();
    let mut rx = FaxReceive::new(
        FaxRxConfig {
            t38_request: true,
            t38_request_after_ms: 10_000,
            ..Default::default()
        },
        &rxp,
    )
    .unwrap();
    let mut a = [0i16; BLOCK];
    let mut at = None;
    for i in 1..=500 {
        sender.tx(&mut a);
        rx.handle_audio(&a);
        sender.rx(&rx.step().unwrap());
        if std::iter::from_fn(|| rx.poll_event()).any(|e| matches!(e, Event::RequestT38)) {
            at = Some(i);
            break;
        }
    }
    let at = at.expect("no T.38 request");
    assert!(at < 100, "requested after {} ms, not on CNG", at * 20);
}

/// Two fax sessions face to face over T.38 (coda's UDPTL both ways, `loss` each way).
fn face_to_face_t38(
    a: &mut FaxReceive,
    b: &mut FaxReceive,
    loss: Loss,
) -> (FaxRxResult, FaxRxResult) {
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    let (mut na, mut nb) = (0usize, 0usize);
    let lost = |n: usize| matches!(loss, Loss::Every(k) if n.is_multiple_of(k));
    for _ in 0..MAX_STEPS {
        a.step();
        b.step();
        while let Some(d) = a.poll_datagram() {
            na += 1;
            if !lost(na) {
                b.handle_datagram(&d);
            }
        }
        while let Some(d) = b.poll_datagram() {
            nb += 1;
            if !lost(nb) {
                a.handle_datagram(&d);
            }
        }
        ea.extend(std::iter::from_fn(|| a.poll_event()));
        eb.extend(std::iter::from_fn(|| b.poll_event()));
        if a.is_done() && b.is_done() {
            break;
        }
    }
    (
        finished(&mut ea).expect("a finished"),
        finished(&mut eb).expect("b finished"),
    )
}

#[test]
fn sending_role_audio_to_a_spandsp_receiver_with_page_header() {
    let dir = tempdir();
    let pages = vec![
        charts::nearly_blank(1728, 2292, 204, 196, 4),
        charts::numbered_page(2, 1728, 2292, 204, 196),
    ];
    let txp = tx_file(&dir, &pages);
    let rxp = dir.0.join("rx.tif");
    let mut coda = FaxReceive::new_send(
        FaxRxConfig {
            ident: "+44 1865 270000".into(),
            page_header: Some("University of Example".into()),
            ..Default::default()
        },
        &txp,
    )
    .unwrap();
    let mut far = AudioFax::new(
        &T30Options {
            ident: "far".into(),
            ..Default::default()
        },
        Document::Receive(&rxp),
    )
    .unwrap();
    let mut events = Vec::new();
    let mut back = [0i16; BLOCK];
    for _ in 0..MAX_STEPS {
        let out = coda.step().unwrap_or([0; BLOCK]);
        far.rx(&out);
        far.tx(&mut back);
        coda.handle_audio(&back);
        while far.poll_event().is_some() {}
        events.extend(std::iter::from_fn(|| coda.poll_event()));
        if coda.is_done() {
            break;
        }
    }
    let r = finished(&mut events).unwrap();
    assert!(r.clean(), "{r:?}");
    assert_eq!(r.pages, 2);
    assert_eq!(r.explanation, "The fax was sent completely.");
    assert_eq!(r.outcome.remote_ident, "far");
    // What the far end got: a header line added above each page, then our page unchanged.
    let got = tiff::read_pages(&std::fs::read(&rxp).unwrap()).unwrap();
    assert_eq!(got.len(), 2);
    for (g, want) in got.iter().zip(&pages) {
        let bm = crate::fax::testutil::decode_page(g).unwrap();
        assert_eq!(bm.width, want.width);
        assert!(bm.height > want.height, "no header rows");
        let header_rows = bm.height - want.height;
        assert!(header_rows <= 64, "{header_rows} header rows");
        let mut below = 0;
        let mut header_black = 0;
        for y in 0..bm.height {
            for x in 0..bm.width {
                if y < header_rows {
                    header_black += u32::from(bm.get(x, y));
                } else if bm.get(x, y) != want.get(x, y - header_rows) {
                    below += 1;
                }
            }
        }
        assert_eq!(below, 0, "below the header the page is what we sent");
        assert!(header_black > 100, "a header line was printed");
    }
}

#[test]
fn sending_role_coda_to_coda_over_t38_with_loss() {
    let dir = tempdir();
    let pages = vec![charts::dense_chart(1728, 1146, 204, 98, 9)];
    let txp = tx_file(&dir, &pages);
    let rxp = dir.0.join("rx.tif");
    let neg = negotiated(3);
    let mut sender = FaxReceive::new_send(FaxRxConfig::default(), &txp).unwrap();
    sender.switch_to_t38(&neg).unwrap();
    let mut receiver = FaxReceive::new_t38(FaxRxConfig::default(), &rxp, &neg).unwrap();
    let (s, r) = face_to_face_t38(&mut sender, &mut receiver, Loss::Every(5));
    assert!(s.clean() && r.clean(), "{s:?} {r:?}");
    assert_eq!((s.pages, r.pages), (1, 1));
    assert_eq!(s.transport, FaxTransport::T38);
    assert_pages_equal(&rxp, &pages);
}

#[test]
fn sending_role_to_nobody_says_no_fax_machine_answered() {
    let dir = tempdir();
    let txp = tx_file(&dir, &[charts::numbered_page(1, 1728, 1146, 204, 98)]);
    let mut coda = FaxReceive::new_send(FaxRxConfig::default(), &txp).unwrap();
    let mut events = Vec::new();
    while !coda.is_done() {
        coda.handle_audio(&[0; BLOCK]);
        coda.step();
        events.extend(std::iter::from_fn(|| coda.poll_event()));
    }
    let r = finished(&mut events).unwrap();
    assert!(!r.clean());
    assert_eq!(r.pages, 0);
    assert_eq!(r.explanation, "No fax machine answered at that number.");
}
