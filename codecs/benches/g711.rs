//! G.711 encode/decode throughput: one 20 ms frame (160 samples) and one
//! second (8000 samples) at 8 kHz, for both laws.

use codecs::g711::Law;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Deterministic speech-like test signal: two sines plus pseudo-random noise.
fn signal(n: usize) -> Vec<i16> {
    let mut seed = 0x1234_5678u32;
    (0..n)
        .map(|i| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let t = i as f32 / 8000.0;
            let tone = 9000.0 * (std::f32::consts::TAU * 440.0 * t).sin()
                + 5000.0 * (std::f32::consts::TAU * 1700.0 * t).sin();
            let noise = f32::from((seed >> 16) as u16 as i16) / 8.0;
            (tone + noise) as i16
        })
        .collect()
}

fn bench_g711(c: &mut Criterion) {
    for (name, len) in [("frame_160", 160usize), ("second_8000", 8000)] {
        let pcm = signal(len);
        let mut group = c.benchmark_group(format!("g711/{name}"));
        group.throughput(Throughput::Elements(len as u64));
        for law in [Law::Ulaw, Law::Alaw] {
            let mut coded = vec![0u8; len];
            law.encode_slice(&pcm, &mut coded);
            let mut enc_out = vec![0u8; len];
            let mut dec_out = vec![0i16; len];
            group.bench_function(BenchmarkId::new("encode", format!("{law:?}")), |b| {
                b.iter(|| {
                    law.encode_slice(black_box(&pcm), &mut enc_out);
                    black_box(&enc_out);
                })
            });
            group.bench_function(BenchmarkId::new("decode", format!("{law:?}")), |b| {
                b.iter(|| {
                    law.decode_slice(black_box(&coded), &mut dec_out);
                    black_box(&dec_out);
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_g711);
criterion_main!(benches);
