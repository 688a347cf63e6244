//! State store costs: one durable `put` (write, fsync, rename, fsync dir), `get`,
//! and `list` of many documents. Run with `cargo bench -p berth-engine --bench store`
//! (`BERTH_BENCH_DIR` picks the file system; default: the system temp dir).

use std::time::{Duration, Instant};

use berth_engine::store::{Document, Kind, Store};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Container {
    id: String,
    image: String,
    env: Vec<String>,
    labels: Vec<(String, String)>,
}

impl Document for Container {
    const KIND: Kind = Kind::Container;
}

fn doc(i: usize) -> Container {
    Container {
        id: format!("web-{i}"),
        image: "busybox:latest".into(),
        env: (0..10).map(|n| format!("VAR_{n}=value-{n}")).collect(),
        labels: (0..10)
            .map(|n| (format!("com.example.label-{n}"), format!("value-{i}-{n}")))
            .collect(),
    }
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pct = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    println!(
        "{what:<28} n={:<5} median {:>9.1?}  p90 {:>9.1?}  p99 {:>9.1?}",
        samples.len(),
        pct(50),
        pct(90),
        pct(99)
    );
}

fn main() {
    let base = std::env::var_os("BERTH_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&base).expect("create a bench directory");
    let store = Store::open(dir.path()).expect("open the store");
    println!("store in {}", dir.path().display());

    let n = 500;
    let mut puts = Vec::with_capacity(n);
    for i in 0..n {
        let d = doc(i);
        let t = Instant::now();
        store.put(&d.id, &d).expect("put");
        puts.push(t.elapsed());
    }
    report("put (new, durable)", puts);

    let mut replace = Vec::with_capacity(n);
    for i in 0..n {
        let d = doc(i);
        let t = Instant::now();
        store.put(&d.id, &d).expect("put");
        replace.push(t.elapsed());
    }
    report("put (replace, durable)", replace);

    let mut gets = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let got: Option<Container> = store.get(&format!("web-{i}")).expect("get");
        gets.push(t.elapsed());
        assert!(got.is_some());
    }
    report("get", gets);

    let mut lists = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let all: Vec<(String, Container)> = store.list().expect("list");
        lists.push(t.elapsed());
        assert_eq!(all.len(), n);
    }
    report(&format!("list ({n} documents)"), lists);
}
