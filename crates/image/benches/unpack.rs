//! Benchmark of layer unpacking as a pull does it: five gzip layers unpacked at once, each
//! with many small files (default 4,000) and one large file (default 20 MiB). Run with
//! `cargo bench -p berth-image --bench unpack` (FILES, BIG_MIB, RUNS to resize). The
//! destination is a temp dir (set TMPDIR to pick the file system).

use std::io::Write;
use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn layer(index: usize, files: usize, big_mib: usize) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    tar.append_data(&mut dir, "data/", std::io::empty())
        .expect("append dir");
    for j in 0..files {
        let body = format!("file {index} {j}\n");
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(body.len() as u64);
        h.set_mtime(1_700_000_000);
        tar.append_data(&mut h, format!("data/small-{j}"), body.as_bytes())
            .expect("append file");
    }
    // Incompressible content, as in benches/pull.sh.
    let mut big = vec![0u8; big_mib << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ index as u64;
    for chunk in big.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(big.len() as u64);
    tar.append_data(&mut h, "data/big", &big[..])
        .expect("append big file");
    let mut gz = tar.into_inner().expect("finish tar");
    gz.flush().expect("flush");
    gz.finish().expect("finish gzip")
}

fn main() {
    let files = env("FILES", 4000);
    let big_mib = env("BIG_MIB", 20);
    let runs = env("RUNS", 5);
    let layers: Vec<Vec<u8>> = (0..5).map(|i| layer(i, files, big_mib)).collect();
    let total: usize = layers.iter().map(Vec::len).sum();
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..runs {
        let root = tempfile::tempdir().expect("temp dir");
        let t = Instant::now();
        std::thread::scope(|s| {
            for (i, data) in layers.iter().enumerate() {
                let dst = root.path().join(format!("l{i}"));
                std::fs::create_dir(&dst).expect("create layer dir");
                s.spawn(move || {
                    berth_image::unpack::unpack(&data[..], &dst, "bench").expect("unpack");
                });
            }
        });
        times.push(t.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "unpack of 5 layers x ({files} small files + {big_mib} MiB): min {:.0} ms, median {:.0} ms ({runs} runs, {:.0} MB/s compressed at the median)",
        times[0].as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3,
        total as f64 / median.as_secs_f64() / 1e6
    );
}
