//! `ADD <url>` against a real local HTTP server (busybox httpd started by the test): the
//! file lands with mode 0600 (or `--chmod`), a changed remote file rebuilds the step, a
//! wrong `--checksum` and an unreachable server are clear errors naming the URL.

mod common;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Fixture;

struct Httpd(Child, u16);

impl Httpd {
    fn start(dir: &std::path::Path) -> Httpd {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("/bin/busybox")
            .args(["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start busybox httpd");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "httpd did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Httpd(child, port)
    }
}

impl Drop for Httpd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[test]
fn add_url_downloads_caches_by_content_and_reports_failures() {
    let f = Fixture::new();
    let www = f.tmp.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("tool.sh"), "echo tool v1\n").unwrap();
    let httpd = Httpd::start(&www);
    let url = format!("http://127.0.0.1:{}/tool.sh", httpd.1);
    let ctx = f.context(
        "addurl",
        &[(
            "Dockerfile",
            &format!(
                "FROM busybox\nADD {url} /opt/\nADD --chmod=755 {url} /usr/local/bin/tool\nRUN echo after\n"
            ),
        )],
    );
    let image = f.build(f.request(&ctx)).unwrap();
    let ran = f.run(
        &image,
        Some(&[
            "sh",
            "-c",
            "stat -c '%a %u' /opt/tool.sh /usr/local/bin/tool; tool",
        ]),
    );
    assert_eq!(ran.stdout, "600 0\n755 0\ntool v1\n");

    // Nothing changed: every step from the cache. The remote file changed: rebuilt.
    f.build(f.request(&ctx)).unwrap();
    assert!(
        f.steps().iter().all(|(_, cached)| *cached),
        "{:?}",
        f.steps()
    );
    std::fs::write(www.join("tool.sh"), "echo tool v2\n").unwrap();
    let again = f.build(f.request(&ctx)).unwrap();
    assert!(!f.steps()[0].1, "{:?}", f.steps());
    let ran = f.run(&again, Some(&["sh", "-c", "cat /opt/tool.sh; tool"]));
    assert_eq!(ran.stdout, "echo tool v2\ntool v2\n", "{ran:?}");

    let bad_sum = f.context(
        "badsum",
        &[(
            "Dockerfile",
            &format!(
                "FROM busybox\nADD --checksum=sha256:{} {url} /x\n",
                "0".repeat(64)
            ),
        )],
    );
    let msg = chain(&f.build(f.request(&bad_sum)).unwrap_err());
    assert!(msg.contains("checksum mismatch"), "{msg}");

    drop(httpd);
    let gone = f.context(
        "gone",
        &[(
            "Dockerfile",
            &format!("FROM busybox\nADD {url}.missing /x\n"),
        )],
    );
    let msg = chain(&f.build(f.request(&gone)).unwrap_err());
    assert!(
        msg.contains(&format!("ADD {url}.missing: cannot download it")),
        "{msg}"
    );
    assert!(msg.contains(":2:"), "names the line: {msg}");
}
