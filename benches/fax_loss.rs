//! Fax loss sweep in virtual time: at which packet loss does a fax to coda stop arriving clean?
//!
//! A spandsp sender (coda's wrapper) sends a 2-page document to coda's fax reception machine
//! over a simulated line (`coda::apps::fax_loopback`): G.711 audio with ECM and without, and
//! T.38 over UDPTL with redundancy 3 and 0, under spread loss (every n-th packet), bursts,
//! and random loss, in both directions. Each session runs in milliseconds of CPU; nothing
//! here waits for real time. Prints a Markdown table.
//!
//! ```text
//! cargo bench --bench fax_loss
//! ```

use std::path::PathBuf;

use coda::apps::fax_loopback::{run, Line, Loss};
use coda::apps::fax_rx::FaxRxConfig;
use coda::fax::engine::T30Options;
use coda::fax::tiff::{charts, write_bilevel_uncompressed};
use codecs::g711::Law;

/// Builds the line for a loss pattern, and says whether ECM is on.
type LineMaker = Box<dyn Fn(Loss) -> (Line, bool)>;

fn main() {
    let dir = std::env::temp_dir().join(format!("coda-fax-loss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pages = vec![
        charts::dense_chart(1728, 1143, 204, 98, 1),
        charts::numbered_page(2, 1728, 1143, 204, 98),
    ];
    let tx = dir.join("tx.tif");
    std::fs::write(&tx, write_bilevel_uncompressed(&pages)).expect("write tiff");

    let losses: Vec<(String, Loss)> = vec![
        ("none".into(), Loss::None),
        ("1 in 200 (0.5 %)".into(), Loss::Every(200)),
        ("1 in 50 (2 %)".into(), Loss::Every(50)),
        ("1 in 20 (5 %)".into(), Loss::Every(20)),
        ("1 in 10 (10 %)".into(), Loss::Every(10)),
        ("1 in 5 (20 %)".into(), Loss::Every(5)),
        ("1 in 4 (25 %)".into(), Loss::Every(4)),
        ("1 in 3 (33 %)".into(), Loss::Every(3)),
        ("1 in 2 (50 %)".into(), Loss::Every(2)),
        (
            "bursts of 3 per 40".into(),
            Loss::Burst { len: 3, period: 40 },
        ),
        (
            "bursts of 4 per 40".into(),
            Loss::Burst { len: 4, period: 40 },
        ),
        (
            "bursts of 8 per 100".into(),
            Loss::Burst {
                len: 8,
                period: 100,
            },
        ),
        (
            "random 10 %".into(),
            Loss::Random {
                percent: 10.0,
                seed: 7,
            },
        ),
        (
            "random 20 %".into(),
            Loss::Random {
                percent: 20.0,
                seed: 7,
            },
        ),
        (
            "random 30 %".into(),
            Loss::Random {
                percent: 30.0,
                seed: 7,
            },
        ),
    ];
    let lines: Vec<(&str, LineMaker)> = vec![
        (
            "audio G.711, ECM",
            Box::new(|loss| {
                (
                    Line::Audio {
                        law: Law::Alaw,
                        loss,
                    },
                    true,
                )
            }),
        ),
        (
            "audio G.711, no ECM",
            Box::new(|loss| {
                (
                    Line::Audio {
                        law: Law::Alaw,
                        loss,
                    },
                    false,
                )
            }),
        ),
        (
            "T.38 v0, redundancy 3, ECM",
            Box::new(|loss| {
                (
                    Line::T38 {
                        version: 0,
                        redundancy: 3,
                        loss,
                        garbage_every: None,
                    },
                    true,
                )
            }),
        ),
        (
            "T.38 v3, redundancy 3, no ECM",
            Box::new(|loss| {
                (
                    Line::T38 {
                        version: 3,
                        redundancy: 3,
                        loss,
                        garbage_every: None,
                    },
                    false,
                )
            }),
        ),
        (
            "T.38 v0, no redundancy, ECM",
            Box::new(|loss| {
                (
                    Line::T38 {
                        version: 0,
                        redundancy: 0,
                        loss,
                        garbage_every: None,
                    },
                    true,
                )
            }),
        ),
    ];
    println!("| line | loss (each direction) | result | pages | bad rows | UDPTL recovered / lost | virtual s |");
    println!("|---|---|---|---|---|---|---|");
    let started = std::time::Instant::now();
    let mut n = 0;
    for (line_name, make) in &lines {
        for (loss_name, loss) in &losses {
            let (line, ecm) = make(*loss);
            let rx: PathBuf = dir.join(format!("rx-{n}.tif"));
            n += 1;
            let cfg = FaxRxConfig {
                ecm,
                max_duration_secs: 600,
                ..Default::default()
            };
            let opts = T30Options {
                ecm,
                ident: "+44 20 7946 0000".into(),
                ..Default::default()
            };
            let rep = match run(&tx, &rx, &opts, cfg, &line, |_, _| false) {
                Ok(r) => r,
                Err(e) => {
                    println!("| {line_name} | {loss_name} | error: {e} | | | | |");
                    continue;
                }
            };
            let r = &rep.receiver;
            let result = if r.clean() {
                "clean".to_string()
            } else if r.degraded {
                "degraded (OK with bad rows)".to_string()
            } else {
                format!("failed: {}", r.outcome.text)
            };
            let udptl = if matches!(line, Line::T38 { .. }) {
                format!("{} / {}", r.udptl_recovered, r.udptl_lost)
            } else {
                "-".into()
            };
            println!(
                "| {line_name} | {loss_name} | {result} | {} | {} | {udptl} | {} |",
                r.pages,
                r.outcome.stats.bad_rows,
                rep.steps / 50
            );
            let _ = std::fs::remove_file(&rx);
        }
    }
    eprintln!(
        "{n} sessions in {:.1} s of CPU time",
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
