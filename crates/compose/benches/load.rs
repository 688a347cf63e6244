//! In-process benchmark of `berth_compose::load` on a generated stack of N services
//! (default 1,000) plus an override file: parse, interpolate, merge, normalize,
//! validate. Run with `cargo bench -p berth-compose --bench load` (SERVICES=n to resize).
//! `benches/compose-load.sh` measures the same stack through the `berth` binary.

use std::fmt::Write;
use std::time::{Duration, Instant};

fn generate(n: usize) -> (String, String) {
    let mut base = String::from(
        "name: bench\nx-defaults: &defaults\n  image: \"busybox:${TAG:-latest}\"\n  restart: unless-stopped\n  healthcheck:\n    test: [\"CMD\", \"true\"]\n    interval: 10s\n    timeout: 1s\n  logging:\n    driver: json-file\n    options: {max-size: 10m}\nservices:\n",
    );
    let mut over = String::from("services:\n");
    for i in 1..=n {
        let _ = write!(
            base,
            "  svc{i}:\n    <<: *defaults\n    command: sh -c \"echo service {i} && sleep 3600\"\n    environment:\n      - INDEX={i}\n      - REGION=${{REGION:-eu}}\n      - HOME\n    ports:\n      - \"127.0.0.1:{}:80\"\n    volumes:\n      - data:/data\n      - ./conf/{i}:/etc/conf:ro\n    labels: [\"com.example.index={i}\", \"com.example.tier=${{TIER:-back}}\"]\n    deploy:\n      resources: {{limits: {{memory: 64m, cpus: '0.5'}}}}\n",
            10000 + i
        );
        if i > 1 {
            let _ = write!(
                base,
                "    depends_on:\n      svc{}:\n        condition: service_healthy\n",
                i - 1
            );
        }
        let _ = write!(
            over,
            "  svc{i}:\n    environment:\n      INDEX: \"override-{i}\"\n      EXTRA: \"${{EXTRA:-x}}\"\n    ports:\n      - \"127.0.0.1:{}:81\"\n",
            20000 + i
        );
    }
    base.push_str("volumes:\n  data: {}\n");
    (base, over)
}

fn main() {
    let n: usize = std::env::var("SERVICES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let dir = std::env::temp_dir().join(format!("berth-compose-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create bench dir");
    let (base, over) = generate(n);
    std::fs::write(dir.join("compose.yaml"), base).expect("write compose.yaml");
    std::fs::write(dir.join("compose.override.yaml"), over).expect("write override");
    let opts = berth_compose::LoadOptions {
        working_dir: dir.clone(),
        environment: [("HOME".to_owned(), "/root".to_owned())]
            .into_iter()
            .collect(),
        ..Default::default()
    };
    let project = berth_compose::load(&opts).expect("the generated stack loads");
    assert_eq!(project.services.len(), n);
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let p = berth_compose::load(&opts).expect("load");
        times.push(t.elapsed());
        std::hint::black_box(p);
    }
    times.sort();
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    println!(
        "load of {n} services + override: min {:.1} ms, median {:.1} ms, mean {:.1} ms ({} runs)",
        times[0].as_secs_f64() * 1e3,
        times[times.len() / 2].as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3,
        times.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
