//! `berth build` as a user runs it: `RUN --network` modes against a local HTTP server,
//! nothing of the build's network left afterwards (also when a step fails), `--secret`,
//! and `images` hiding the cache's step images until `-a`, `builder prune` removing them.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_tests::eventually;

use crate::run::Env;

/// busybox httpd serving `dir` on all addresses, killed on drop.
struct Httpd {
    child: Child,
    port: u16,
}

impl Httpd {
    fn start(dir: &Path) -> Httpd {
        let port = TcpListener::bind("0.0.0.0:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("/bin/busybox")
            .args(["httpd", "-f", "-p", &format!("0.0.0.0:{port}"), "-h"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start busybox httpd");
        eventually("httpd to listen", Duration::from_secs(5), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Httpd { child, port }
    }
}

impl Drop for Httpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The host's address on its default route (what a build's network reaches the host by).
fn host_ip() -> String {
    let out = Command::new("ip")
        .args(["-4", "-o", "route", "get", "192.0.2.1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words = text.split_whitespace();
    words
        .find(|w| *w == "src")
        .and_then(|_| words.next())
        .map(str::to_string)
        .unwrap_or_else(|| {
            panic!("this test needs a host IPv4 route; `ip route get` said {text:?}")
        })
}

fn context(env: &Env, name: &str, dockerfile: &str) -> PathBuf {
    let dir = env.env.dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    dir
}

/// Nothing of the build network whose gateway was `gw` is left on the host, nor the host
/// end (interface index `veth`) of the RUN container's veth pair. (Interface indexes are not
/// reused soon; a gateway may be, by a build of another test running in parallel, which a
/// per-build starting subnet makes unlikely.)
fn assert_network_gone(env: &Env, gw: &str, veth: &str) {
    assert!(gw.starts_with("10.234."), "gateway {gw:?}");
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(
        !links.lines().any(|l| l.starts_with(&format!("{veth}: "))),
        "the RUN container's veth ({veth}) is left: {links}"
    );
    let addrs = Command::new("ip")
        .args(["-4", "-o", "addr"])
        .output()
        .unwrap();
    let addrs = String::from_utf8_lossy(&addrs.stdout);
    assert!(
        !addrs.contains(&format!("inet {gw}/")),
        "the build bridge is left: {addrs}"
    );
    let subnet = format!("{}.0/24", gw.rsplit_once('.').unwrap().0);
    let rules = Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout);
    assert!(!rules.contains(&subnet), "nft rules for {subnet} are left");
    let state = env.env.root.join("image/build-net");
    let left: Vec<_> = std::fs::read_dir(&state)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "build network state left: {left:?}");
}

#[test]
fn run_network_modes_default_none_and_host_against_a_local_http_server() {
    let env = Env::new("build_network_modes");
    let www = env.env.dir().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("hello.txt"), "hello from the host\n").unwrap();
    let httpd = Httpd::start(&www);
    let ctx = context(
        &env,
        "netctx",
        r#"FROM busybox
ARG HOST
ARG PORT
RUN --network=default wget -q -O /default.txt "http://$HOST:$PORT/hello.txt" \
 && ip route | awk '/default/ {print $3}' > /gw.txt \
 && cat /sys/class/net/eth0/iflink >> /gw.txt \
 && (wget -q -O - "http://127.0.0.1:$PORT/hello.txt" >/dev/null 2>&1 && echo reached || echo isolated) > /default-lo.txt
RUN --network=none sh -c 'wget -q -O - "http://$HOST:$PORT/hello.txt" >/dev/null 2>&1 && echo reached || echo unreachable; ip -o link | wc -l' > /none.txt
RUN --network=host wget -q -O /host.txt "http://127.0.0.1:$PORT/hello.txt"
"#,
    );
    let host = host_ip();
    env.ok(&[
        "build",
        "-q",
        "-t",
        "netmodes:1",
        "--build-arg",
        &format!("HOST={host}"),
        "--build-arg",
        &format!("PORT={}", httpd.port),
        ctx.to_str().unwrap(),
    ]);
    let out = env.ok(&[
        "run",
        "--rm",
        "netmodes:1",
        "cat",
        "/default.txt",
        "/default-lo.txt",
        "/none.txt",
        "/host.txt",
        "/gw.txt",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..5],
        [
            "hello from the host",
            "isolated",
            "unreachable",
            "1",
            "hello from the host"
        ],
        "{out}"
    );
    assert_network_gone(&env, lines[5], lines[6]);
}

#[test]
fn a_failing_run_on_the_build_network_leaves_nothing_behind() {
    let env = Env::new("build_network_fail");
    let ctx = context(
        &env,
        "failctx",
        "FROM busybox\nRUN ip route | awk '/default/ {print \"gw=\" $3}'; echo veth=$(cat /sys/class/net/eth0/iflink); exit 3\n",
    );
    let (code, _, stderr) = env.run(&["build", "-t", "broken:1", ctx.to_str().unwrap()]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("RUN exited with code 3"), "{stderr}");
    let printed = |key: &str| {
        stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .unwrap_or_else(|| panic!("the step printed {key}: {stderr}"))
            .trim()
            .to_string()
    };
    assert_network_gone(&env, &printed("gw="), &printed("veth="));
    let (code, _, _) = env.run(&["image", "inspect", "broken:1"]);
    assert_ne!(code, Some(0), "no half-built image is tagged");
}

#[test]
fn secrets_from_a_file_and_the_environment_stay_out_of_the_image() {
    let env = Env::new("build_secrets_cli");
    let secret = env.env.dir().join("token");
    std::fs::write(&secret, "file-secret-123").unwrap();
    let ctx = context(
        &env,
        "secctx",
        "FROM busybox\nRUN --mount=type=secret,id=tok,required --mount=type=secret,id=api,env=API \
         sh -c 'echo \"$(wc -c < /run/secrets/tok) ${#API}\"' > /lens.txt\n",
    );
    let mut cmd = env.env.command();
    cmd.env("API_TOKEN_FOR_TEST", "env-secret-4567").args([
        "build",
        "-q",
        "-t",
        "sec:1",
        "--secret",
        &format!("id=tok,src={}", secret.display()),
        "--secret",
        "id=api,env=API_TOKEN_FOR_TEST",
        ctx.to_str().unwrap(),
    ]);
    let out = env.env.run_command(cmd, "build --secret");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        env.ok(&["run", "--rm", "sec:1", "cat", "/lens.txt"]),
        "15 15\n"
    );
    let saved = env.env.dir().join("sec.tar");
    env.ok(&["save", "-o", saved.to_str().unwrap(), "sec:1"]);
    let bytes = std::fs::read(&saved).unwrap();
    for needle in ["file-secret-123", "env-secret-4567"] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} is in the saved image"
        );
    }
    let history = env.ok(&["image", "history", "--no-trunc", "sec:1"]);
    assert!(!history.contains("secret-"), "{history}");

    let (code, _, stderr) = env.run(&[
        "build",
        "--secret",
        "id=x,env=SURELY_NOT_SET_ANYWHERE",
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("SURELY_NOT_SET_ANYWHERE is not set"),
        "{stderr}"
    );
}

#[test]
fn images_hides_cached_step_images_until_all_and_prune_removes_them() {
    let env = Env::new("build_images_list");
    let ctx = context(
        &env,
        "listctx",
        "FROM busybox\nRUN echo one > /one\nRUN echo two > /two\nENV X=1\n",
    );
    env.ok(&["build", "-q", "-t", "listed:1", ctx.to_str().unwrap()]);
    let repos = |args: &[&str]| -> Vec<String> {
        env.ok(args)
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
            .collect()
    };
    let mut shown = repos(&["images"]);
    shown.sort();
    assert_eq!(shown, ["busybox", "listed"]);
    let all = repos(&["images", "-a"]);
    assert_eq!(
        all.iter().filter(|r| *r == "<none>").count(),
        2,
        "the two RUN steps' images: {all:?}"
    );
    // `image prune` leaves the build cache alone (as Docker's does): still two step images.
    env.ok(&["image", "prune", "-f"]);
    let all = repos(&["images", "-a"]);
    assert_eq!(all.iter().filter(|r| *r == "<none>").count(), 2, "{all:?}");
    let pruned = env.ok(&["builder", "prune"]);
    assert!(pruned.contains("Removed 3 build cache entries"), "{pruned}");
    let mut after = repos(&["images", "-a"]);
    after.sort();
    assert_eq!(after, ["busybox", "listed"]);
    // An untagged build result is listed as <none> (Docker's dangling image), its steps not.
    let ctx2 = context(&env, "untagged", "FROM busybox\nRUN echo three > /three\n");
    let id = env.ok(&["build", "-q", ctx2.to_str().unwrap()]);
    let short = id.trim().trim_start_matches("sha256:")[..12].to_string();
    let table = env.ok(&["images"]);
    let none: Vec<&str> = table.lines().filter(|l| l.starts_with("<none>")).collect();
    assert_eq!(none.len(), 1, "{table}");
    assert!(none[0].contains(&short), "{table}");
    env.ok(&["builder", "prune"]);
    // The tagged result still runs after the prune.
    assert_eq!(env.ok(&["run", "--rm", "listed:1", "cat", "/two"]), "two\n");
}

#[test]
fn stack_build_builds_services_in_parallel_with_their_secrets_and_tags() {
    let env = Env::new("build_stack_parallel");
    let dir = env.env.dir().join("proj");
    std::fs::create_dir_all(dir.join("api")).unwrap();
    std::fs::write(dir.join("token.txt"), "stack-secret-77").unwrap();
    // Each service's RUN waits (up to 20 s) for the other's file in a shared cache mount:
    // built one after the other, the first would give up and fail.
    let rendezvous = |me: &str, other: &str| {
        format!(
            "FROM busybox\nRUN --mount=type=cache,id=rendezvous,target=/r \
             touch /r/{me} && i=0; while [ ! -e /r/{other} ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done; \
             [ -e /r/{other} ] && echo met-{other} > /{me}.txt\n"
        )
    };
    std::fs::write(
        dir.join("api/Dockerfile"),
        rendezvous("api", "web")
            + "RUN --mount=type=secret,id=token,required wc -c < /run/secrets/token > /len.txt\n",
    )
    .unwrap();
    let web_df = rendezvous("web", "api");
    let compose = format!(
        r#"name: bstack
services:
  api:
    build:
      context: ./api
      secrets: [token]
      tags: ["bstack-api:extra"]
  web:
    image: bstack/web:2
    build:
      context: .
      dockerfile_inline: |
{}
  plain:
    image: busybox
secrets:
  token:
    file: ./token.txt
"#,
        web_df
            .replace('$', "$$") // compose interpolation
            .lines()
            .map(|l| format!("        {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let file = dir.join("compose.yaml");
    std::fs::write(&file, compose).unwrap();
    let mut cmd = env.env.command();
    cmd.args(["-f", file.to_str().unwrap(), "stack", "build"]);
    let out = env.env.run_command(cmd, "stack build");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("[api]") && stderr.contains("[web]"),
        "{stderr}"
    );
    assert_eq!(
        env.ok(&["run", "--rm", "bstack-api", "cat", "/api.txt", "/len.txt"]),
        "met-web\n15\n"
    );
    assert_eq!(
        env.ok(&["run", "--rm", "bstack-api:extra", "cat", "/api.txt"]),
        "met-web\n"
    );
    assert_eq!(
        env.ok(&["run", "--rm", "bstack/web:2", "cat", "/web.txt"]),
        "met-api\n"
    );
    let mut cmd = env.env.command();
    cmd.args(["-f", file.to_str().unwrap(), "stack", "build", "nosuch"]);
    let out = env.env.run_command(cmd, "stack build nosuch");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such service: nosuch"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn up_build_through_the_daemon_uses_build_secrets_and_the_build_network() {
    let env = Env::new("build_up_daemon");
    let www = env.env.dir().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("dep.txt"), "dependency v1\n").unwrap();
    let httpd = Httpd::start(&www);
    let dir = env.env.dir().join("upproj");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pw.txt"), "daemon-secret-9").unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nARG HOST\nARG PORT\n\
         RUN wget -q -O /dep.txt \"http://$HOST:$PORT/dep.txt\"\n\
         RUN --mount=type=secret,id=pw,required echo \"secret of $(wc -c < /run/secrets/pw) bytes\" > /pw.txt\n\
         CMD [\"sh\", \"-c\", \"cat /dep.txt /pw.txt; trap 'exit 0' TERM; sleep 60 & wait\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            r#"name: upbuild
services:
  app:
    build:
      context: .
      args:
        HOST: "{}"
        PORT: "{}"
      secrets: [pw]
secrets:
  pw:
    file: ./pw.txt
"#,
            host_ip(),
            httpd.port
        ),
    )
    .unwrap();
    let file = dir.join("compose.yaml");
    let f = file.to_str().unwrap();
    env.ok(&["-f", f, "up", "-d", "--build"]);
    let logs = eventually("the service's output", Duration::from_secs(20), || {
        let out = env
            .env
            .run(&["-f", f, "stack", "logs", "--no-log-prefix", "app"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("bytes").then_some(text)
    });
    assert_eq!(logs, "dependency v1\nsecret of 15 bytes\n");
    env.ok(&["-f", f, "down"]);
    let left: Vec<_> = std::fs::read_dir(env.env.root.join("image/build-net"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "build network state left: {left:?}");
}
