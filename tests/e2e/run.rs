//! `berth run` and the single-container commands, as a user sees them: output, exit codes,
//! `ps`, `logs`, `inspect`, a published port answering, and `rm` leaving nothing behind.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_tests::{TestEnv, eventually, require_root};

/// A test env with `busybox:latest` imported from /bin/busybox; every container of the env
/// is force-removed on drop, so a failing test leaves no process, mount or link behind.
pub(crate) struct Env {
    pub(crate) env: TestEnv,
}

impl Env {
    pub(crate) fn new(name: &str) -> Env {
        require_root("containers need namespaces, mounts, cgroups and netlink");
        let env = TestEnv::new(name);
        let rootfs = env.dir().join("busybox-rootfs");
        for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8(list.stdout).unwrap().lines() {
            if applet != "busybox" {
                std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
            }
        }
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nwww:x:1000:1000::/tmp:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\nwww:x:1000:\n").unwrap();
        env.run_ok(&[
            "import",
            rootfs.to_str().unwrap(),
            "busybox:latest",
            "--change",
            "CMD [\"sh\"]",
            "--change",
            "ENV PATH=/bin",
        ]);
        Env { env }
    }

    pub(crate) fn run(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = self.env.run(args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        self.env.run_ok(args)
    }

    pub(crate) fn inspect(&self, name: &str) -> serde_json::Value {
        let text = self.ok(&["inspect", name]);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v[0].clone()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let out = self.env.run(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = self.env.run(&["rm", "-f", id]);
        }
        let out = self.env.run(&["network", "ls", "-q"]);
        for name in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = self.env.run(&["network", "rm", name]);
        }
    }
}

fn links_with(prefix: &str) -> Vec<String> {
    let out = Command::new("ip").args(["-o", "link"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// berth's FNV-1a hash of a root path, from which it names the root's links and nft table.
pub(crate) fn root_hash(root: &Path) -> u32 {
    root.as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
        })
}

/// The link prefix of a root: `berth` + 4 hex digits of its hash.
fn link_prefix(root: &Path) -> String {
    format!("berth{:04x}", root_hash(root) & 0xffff)
}

fn nft_tables() -> String {
    let out = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(dir.to_str().unwrap()))
        .map(str::to_owned)
        .collect()
}

#[test]
fn run_streams_output_and_exits_with_the_container_code() {
    let e = Env::new("run_streams_output");
    let (code, out, _) = e.run(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo hello; echo oops >&2; exit 3",
    ]);
    assert_eq!(code, Some(3));
    assert_eq!(out, "hello\n");
    // --rm: nothing is left to list.
    assert_eq!(e.ok(&["ps", "-aq"]), "");
    let leftovers: Vec<_> = std::fs::read_dir(e.env.root.join("containers"))
        .map(|d| d.flatten().map(|x| x.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(leftovers, Vec::<std::ffi::OsString>::new());
}

#[test]
fn run_reports_docker_exit_codes_for_berth_and_command_failures() {
    let e = Env::new("run_exit_codes");
    let (code, _, err) = e.run(&["run", "--rm", "nosuchimage"]);
    assert_eq!(code, Some(125));
    assert!(
        err.contains("Unable to find image 'nosuchimage:latest' locally"),
        "{err}"
    );
    let (code, _, _) = e.run(&["run", "--rm", "busybox", "nosuchcommand"]);
    assert_eq!(code, Some(127));
    let (code, _, _) = e.run(&["run", "--rm", "busybox", "/etc/passwd"]);
    assert_eq!(code, Some(126));
    assert_eq!(e.ok(&["ps", "-aq"]), "");
}

#[test]
fn run_applies_env_workdir_user_hostname_entrypoint_and_volumes() {
    let e = Env::new("run_options");
    let host_dir = e.env.dir().join("shared");
    std::fs::create_dir(&host_dir).unwrap();
    std::fs::write(host_dir.join("f"), "from host\n").unwrap();
    let volume = format!("{}:/data:ro", host_dir.display());
    let (code, out, err) = e.run(&[
        "run",
        "--rm",
        "-e",
        "GREETING=hi there",
        "-w",
        "/tmp",
        "-u",
        "www",
        "--hostname",
        "box1",
        "-v",
        &volume,
        "--entrypoint",
        "sh",
        "busybox",
        "-c",
        "echo $GREETING; pwd; id -u; hostname; cat /etc/hostname; cat /data/f; touch /data/x || echo read-only",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        "hi there\n/tmp\n1000\nbox1\nbox1\nfrom host\nread-only\n"
    );
    assert!(!host_dir.join("x").exists());
}

#[test]
fn detached_container_lifecycle_ps_logs_stop_start_kill_wait_rm() {
    let e = Env::new("detached_lifecycle");
    let id = e.ok(&[
        "run",
        "-d",
        "--name",
        "looper",
        "busybox",
        "sh",
        "-c",
        "echo started; trap 'echo bye; exit 7' TERM; while true; do sleep 0.1; done",
    ]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    let ps = e.ok(&["ps"]);
    assert!(ps.starts_with("CONTAINER ID"), "{ps}");
    let row = ps.lines().nth(1).expect("one container row");
    assert!(row.starts_with(&id[..12]), "{row}");
    assert!(row.contains("Up "), "{row}");
    assert!(row.ends_with("looper"), "{row}");
    let json: serde_json::Value =
        serde_json::from_str(e.ok(&["ps", "--format", "json"]).trim()).unwrap();
    assert_eq!(json["Names"], "looper");
    assert_eq!(json["State"], "running");
    eventually("the first log line", Duration::from_secs(10), || {
        (e.ok(&["logs", "looper"]) == "started\n").then_some(())
    });
    let ip = e.inspect("looper")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ip.starts_with("10.1"), "{ip}");
    // The name resolves to the container's address inside it.
    let (code, _, _) = e.run(&[
        "exec",
        "looper",
        "sh",
        "-c",
        "grep -q \"$(hostname)\" /etc/hosts",
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(e.ok(&["stop", "-t", "5", "looper"]), "looper\n");
    assert_eq!(e.ok(&["logs", "looper"]), "started\nbye\n");
    assert_eq!(e.ok(&["ps", "-q"]), "");
    let all = e.ok(&["ps", "-a"]);
    assert!(all.contains("Exited (7)"), "{all}");
    assert_eq!(e.inspect("looper")["State"]["ExitCode"], 7);

    assert_eq!(e.ok(&["start", "looper"]), "looper\n");
    assert_eq!(e.inspect(&id[..12])["State"]["Running"], true);
    eventually(
        "the restarted container's log",
        Duration::from_secs(10),
        || (e.ok(&["logs", "--tail", "1", "looper"]) == "started\n").then_some(()),
    );
    assert_eq!(e.ok(&["kill", "-s", "KILL", "looper"]), "looper\n");
    assert_eq!(e.ok(&["wait", "looper"]), "137\n");

    let (code, _, err) = e.run(&["rm", "nosuch"]);
    assert_eq!(code, Some(125));
    assert!(err.contains("No such container: nosuch"), "{err}");
    assert_eq!(e.ok(&["rm", "looper"]), "looper\n");
    assert_eq!(e.ok(&["ps", "-aq"]), "");
    assert!(!e.env.root.join("containers").join(&id).exists());
    assert_eq!(mounts_under(&e.env.root), Vec::<String>::new());
    assert!(
        !Path::new("/sys/fs/cgroup/pids/berth")
            .join(&id[..12])
            .exists()
    );
}

#[test]
fn published_port_answers_on_localhost_and_rm_f_cleans_up() {
    let e = Env::new("published_port");
    let id = e.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "127.0.0.1::80",
        "busybox",
        "sh",
        "-c",
        "mkdir /www && echo hello-from-httpd > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    let id = id.trim().to_string();
    let info = e.inspect("web");
    let port: u16 = info["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(port, 0);
    let body = eventually("httpd to answer", Duration::from_secs(10), || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        text.contains("200").then_some(text)
    });
    assert!(body.ends_with("hello-from-httpd\n"), "{body}");
    let ps = e.ok(&["ps"]);
    assert!(ps.contains(&format!("127.0.0.1:{port}->80/tcp")), "{ps}");
    let (code, _, err) = e.run(&["rm", "web"]);
    assert_eq!(code, Some(125));
    assert!(err.contains("container is running"), "{err}");
    // The bridge and the container's host veth exist while it runs; rm -f takes the veth.
    let prefix = link_prefix(&e.env.root);
    assert_eq!(links_with(&prefix).len(), 2, "{:?}", links_with(&prefix));
    assert_eq!(e.ok(&["rm", "-f", "web"]), "web\n");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(!e.env.root.join("containers").join(&id).exists());
    assert_eq!(links_with(&prefix).len(), 1, "{:?}", links_with(&prefix));
    assert_eq!(mounts_under(&e.env.root), Vec::<String>::new());
}

#[test]
fn user_networks_none_and_host_modes_and_network_commands() {
    let e = Env::new("user_networks");
    let table = format!("berth_{:08x}", root_hash(&e.env.root));
    e.ok(&["network", "create", "front"]);
    assert_eq!(e.ok(&["network", "ls", "-q"]), "front\n");
    let net: serde_json::Value =
        serde_json::from_str(&e.ok(&["network", "inspect", "front"])).unwrap();
    let subnet = net[0]["subnet"].as_str().unwrap().to_string();
    let prefix = subnet.rsplit_once('.').unwrap().0.to_string();
    let (code, out, err) = e.run(&[
        "run",
        "--rm",
        "--network",
        "front",
        "busybox",
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains(&format!("inet {prefix}.")),
        "{out} (subnet {subnet})"
    );
    let (code, out, _) = e.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ip",
        "-o",
        "link",
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains(": lo:"), "{out}");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let (code, out, _) = e.run(&["run", "--rm", "--network", "host", "busybox", "hostname"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.trim(), host.trim());
    assert!(nft_tables().contains(&table), "{}", nft_tables());
    let (code, _, err) = e.run(&["run", "--rm", "--network", "nosuch", "busybox", "true"]);
    assert_eq!(code, Some(125));
    assert!(err.contains("network nosuch not found"), "{err}");
    assert_eq!(e.ok(&["network", "rm", "front"]), "front\n");
    assert_eq!(e.ok(&["network", "ls", "-q"]), "");
    assert_eq!(links_with(&link_prefix(&e.env.root)), Vec::<String>::new());
    assert!(!nft_tables().contains(&table), "{}", nft_tables());
}

#[test]
fn resource_and_security_options_are_enforced() {
    let e = Env::new("run_limits");
    let id = e.ok(&[
        "run",
        "-d",
        "--memory",
        "32m",
        "--pids-limit",
        "20",
        "--read-only",
        "--tmpfs",
        "/scratch",
        "--cap-drop",
        "ALL",
        "--ulimit",
        "nofile=100:200",
        "--security-opt",
        "no-new-privileges",
        "busybox",
        "sh",
        "-c",
        "touch /x 2>/dev/null || echo ro; touch /scratch/y && echo tmpfs-ok; ulimit -n; \
         grep NoNewPrivs /proc/self/status; grep CapEff /proc/self/status; \
         grep -c localhost /etc/hosts; sleep 1000",
    ]);
    let short = &id.trim()[..12];
    let memory = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory/berth/{short}/memory.limit_in_bytes"
    ))
    .unwrap();
    assert_eq!(memory.trim(), (32u64 << 20).to_string());
    let pids =
        std::fs::read_to_string(format!("/sys/fs/cgroup/pids/berth/{short}/pids.max")).unwrap();
    assert_eq!(pids.trim(), "20");
    let logs = eventually("the probe output", Duration::from_secs(10), || {
        let l = e.ok(&["logs", short]);
        (l.lines().count() >= 6).then_some(l)
    });
    assert_eq!(
        logs,
        "ro\ntmpfs-ok\n100\nNoNewPrivs:\t1\nCapEff:\t0000000000000000\n2\n"
    );
    e.ok(&["rm", "-f", short]);
    assert!(
        !Path::new("/sys/fs/cgroup/memory/berth")
            .join(short)
            .exists()
    );
}

#[test]
fn foreground_run_forwards_signals_to_the_container() {
    let e = Env::new("run_sig_proxy");
    let (pid, mut stdout) = e.env.spawn(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got-int; exit 5' INT; echo ready; while true; do sleep 0.1; done",
    ]);
    let mut first = [0u8; 6];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"ready\n");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert_eq!(e.env.wait_spawned(pid, Duration::from_secs(20)), Some(5));
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "got-int\n");
    assert_eq!(e.ok(&["ps", "-aq"]), "");
}

#[test]
fn container_and_network_routes_answer_as_the_openapi_document_says() {
    use berth_tests::openapi::{self, OpenApi};
    let e = Env::new("api_containers");
    let api = OpenApi::load(&openapi::default_path());
    e.ok(&["network", "create", "front"]);
    e.ok(&["network", "create", "spare"]);
    let id = e.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "front",
        "-p",
        "127.0.0.1::80",
        "busybox",
        "sh",
        "-c",
        "echo up; trap 'exit 3' TERM; while true; do sleep 0.1; done",
    ]);
    let id = id.trim();
    let check = |method: &str, path: &str, status: u16| {
        let resp = e.env.http(method, path);
        assert_eq!(resp.status, status, "{method} {path}: {}", resp.body);
        api.check(method, path.split('?').next().unwrap(), &resp)
            .unwrap_or_else(|err| panic!("{err}\nbody: {}", resp.body));
        serde_json::from_str::<serde_json::Value>(resp.body.lines().next().unwrap_or("null"))
            .unwrap()
    };
    let list = check("GET", "/v1/containers?all=true", 200);
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["networks"][0]["ifname"], "eth0");
    let one = check("GET", "/v1/containers/web", 200);
    assert_eq!(one["state"]["status"], "running");
    let ports = check("GET", &format!("/v1/containers/{}/port", &id[..12]), 200);
    assert_eq!(ports[0]["container_port"], 80);
    let line = eventually("the first log line", Duration::from_secs(10), || {
        let l = check("GET", "/v1/containers/web/logs?tail=1", 200);
        (!l.is_null()).then_some(l)
    });
    assert_eq!(line["log"], "up\n");
    // `since` filters by the time each line was written.
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let resp = e
        .env
        .http("GET", &format!("/v1/containers/web/logs?since={later}"));
    assert_eq!((resp.status, resp.body.as_str()), (200, ""));
    assert_eq!(e.ok(&["logs", "--since", "10m", "web"]), "up\n");
    let stamped = e.ok(&["logs", "--since", "2000-01-01T00:00:00Z", "-t", "web"]);
    assert!(
        stamped.starts_with("20") && stamped.ends_with("Z up\n"),
        "{stamped:?}"
    );
    let missing = check("GET", "/v1/containers/nosuch", 404);
    assert_eq!(missing["message"], "No such container: nosuch");
    assert_eq!(missing["exit_code"], 125);
    check("GET", "/v1/containers/web/logs?tail=x", 400);
    check("POST", "/v1/containers/web/kill?signal=NOPE", 400);
    let top = check("GET", "/v1/containers/web/top", 200);
    assert!(top.as_array().is_some_and(|p| !p.is_empty()), "{top}");
    let stats = check("GET", "/v1/containers/web/stats", 200);
    assert!(stats["pids_current"].as_u64() >= Some(1), "{stats}");
    check("POST", "/v1/containers/web/pause", 200);
    check("POST", "/v1/containers/web/unpause", 200);
    let nets = check("GET", "/v1/networks", 200);
    assert_eq!(nets.as_array().map(Vec::len), Some(2));
    let front = check("GET", "/v1/networks/front", 200);
    assert_eq!(front["containers"][id]["name"], "web");
    check("DELETE", "/v1/networks/front", 409);
    check("GET", "/v1/networks/nosuch", 404);
    let pruned = check("POST", "/v1/networks/prune", 200);
    assert_eq!(pruned["removed"], serde_json::json!(["spare"]));
    check("DELETE", "/v1/containers/web", 409);
    let stopped = check("POST", "/v1/containers/web/stop?t=5", 200);
    assert_eq!(stopped["exit_code"], 3);
    let waited = check("POST", "/v1/containers/web/wait", 200);
    assert_eq!(waited["exit_code"], 3);
    check("POST", "/v1/containers/web/kill", 409);
    check("POST", "/v1/containers/web/start", 200);
    check("POST", "/v1/containers/web/restart?t=1", 200);
    check("GET", "/v1/containers/web/top", 200);
    check("POST", "/v1/containers/web/kill?signal=KILL", 200);
    check("DELETE", "/v1/containers/web?force=true", 200);
    check("DELETE", "/v1/networks/front", 200);
}

#[test]
fn run_t_and_exec_t_give_the_process_a_terminal() {
    let e = Env::new("run_tty");
    let (code, out, err) = e.run(&["run", "-t", "--rm", "busybox", "sh", "-c", "tty; exit 4"]);
    assert_eq!(code, Some(4), "{err}");
    assert_eq!(out, "/dev/console\r\n");
    let (code, out, _) = e.run(&["run", "--rm", "busybox", "tty"]);
    assert_eq!((code, out.as_str()), (Some(1), "not a tty\n"));
    // -i: this process's input reaches the process through the terminal.
    let mut child = e
        .env
        .command()
        .args([
            "run",
            "-i",
            "-t",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "read x; echo got:$x",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"abc\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).ends_with("got:abc\r\n"),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    // On a real terminal (util-linux `script` makes one), the container's has our size from
    // its first instruction on.
    let cmd = format!(
        "stty rows 33 cols 77; {} --root {} --run-dir {} run -it --rm busybox stty size",
        berth_tests::berth_bin().display(),
        e.env.root.display(),
        e.env.run_dir.display()
    );
    let mut script = Command::new("script")
        .args(["-qc", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let keep_open = script.stdin.take();
    let out = script.wait_with_output().unwrap();
    drop(keep_open);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "33 77\r\n");
    e.ok(&["run", "-d", "--name", "s", "busybox", "sleep", "1000"]);
    let out = e.ok(&["exec", "-t", "s", "tty"]);
    assert!(out.starts_with("/dev/pts/"), "{out:?}");
    let (code, out, _) = e.run(&["exec", "s", "tty"]);
    assert_eq!((code, out.as_str()), (Some(1), "not a tty\n"));
    assert_eq!(e.ok(&["ps", "-q"]).lines().count(), 1);
}

#[test]
fn pause_unpause_restart_top_and_stats() {
    let e = Env::new("run_pause");
    let id = e.ok(&[
        "run",
        "-d",
        "--name",
        "p",
        "busybox",
        "sh",
        "-c",
        "while true; do sleep 0.1; done",
    ]);
    let short = id.trim()[..12].to_string();
    let freezer = format!("/sys/fs/cgroup/freezer/berth/{short}/freezer.state");
    assert_eq!(e.ok(&["pause", "p"]), "p\n");
    assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "FROZEN");
    assert_eq!(e.inspect("p")["State"]["Paused"], true);
    let ps = e.ok(&["ps"]);
    assert!(ps.contains("(Paused)"), "{ps}");
    assert_eq!(e.ok(&["unpause", "p"]), "p\n");
    assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "THAWED");
    let top = e.ok(&["top", "p"]);
    assert!(top.starts_with("UID"), "{top}");
    assert!(
        top.lines()
            .any(|l| l.ends_with("sh -c while true; do sleep 0.1; done")),
        "{top}"
    );
    let stats = e.ok(&["stats", "--no-stream", "p"]);
    let row = stats.lines().nth(1).expect("one row");
    assert!(row.starts_with(&format!("{short}   p ")), "{stats}");
    let pids: u64 = row.split_whitespace().last().unwrap().parse().unwrap();
    assert!(pids >= 1, "{stats}");
    let pid = e.inspect("p")["State"]["Pid"].clone();
    assert_eq!(e.ok(&["restart", "-t", "1", "p"]), "p\n");
    let after = e.inspect("p");
    assert_eq!(after["State"]["Running"], true);
    assert_ne!(after["State"]["Pid"], pid);
    // A paused container still stops.
    e.ok(&["pause", "p"]);
    assert_eq!(e.ok(&["stop", "-t", "1", "p"]), "p\n");
    let (code, _, err) = e.run(&["top", "p"]);
    assert_eq!(code, Some(125));
    assert!(err.contains("is not running"), "{err}");
}
