//! `RUN --mount` against real containers: secrets and SSH agents reach the command and
//! nothing of them (content, mount point) reaches a layer or the history; bind mounts of
//! stages; cache mounts with ids, seeds and sharing.

mod common;

use std::path::Path;

use berth_build::{BuildError, DockerfileSource, SecretSource};
use berth_image::Image;
use common::{Fixture, tag};

const SECRET: &str = "s3cr3t-value-never-in-a-layer";

/// Every file of the image's layers whose bytes contain `needle`, and every path under
/// `/run` (where secret mount points would be left).
fn traces(image: &Image, needle: &[u8]) -> Vec<String> {
    fn walk(dir: &Path, rel: &str, needle: &[u8], out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = format!("{rel}/{}", e.file_name().to_string_lossy());
            let t = e.file_type().unwrap();
            if name.starts_with("/run") || name.contains("berth-secret") {
                out.push(name.clone());
            }
            if t.is_dir() {
                walk(&e.path(), &name, needle, out);
            } else if t.is_file() {
                let bytes = std::fs::read(e.path()).unwrap();
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    out.push(name);
                }
            }
        }
    }
    let mut out = Vec::new();
    for layer in image.snapshots() {
        walk(&layer, "", needle, &mut out);
    }
    out
}

fn history(image: &Image) -> String {
    image
        .config
        .history
        .iter()
        .filter_map(|h| h.created_by.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn secrets_reach_run_as_files_and_env_and_nothing_of_them_reaches_the_image() {
    let f = Fixture::new();
    let secret_file = f.tmp.path().join("token.txt");
    std::fs::write(&secret_file, SECRET).unwrap();
    let ctx = f.context(
        "secrets",
        &[(
            "Dockerfile",
            r#"FROM busybox
RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok > /seen.txt && stat -c 'default %a %u:%g' /run/secrets/tok >> /seen.txt
RUN --mount=type=secret,id=tok,target=/etc/app/key,mode=0440,uid=65534,gid=65534 stat -c 'custom %a %u:%g' /etc/app/key >> /seen.txt
RUN --mount=type=secret,id=api,env=API_TOKEN echo "env ${#API_TOKEN} $(ls /run/secrets 2>/dev/null | wc -l)" >> /seen.txt
RUN --mount=type=secret,id=absent echo "optional secret skipped" >> /seen.txt
"#,
        )],
    );
    let mut req = f.request(&ctx);
    req.tags.push(tag("secrets:1"));
    req.secrets
        .insert("tok".into(), SecretSource::File(secret_file.clone()));
    req.secrets.insert(
        "api".into(),
        SecretSource::Value(format!("{SECRET}-api").into_bytes()),
    );
    let image = f.build(req).unwrap();
    let ran = f.run(&image, Some(&["cat", "/seen.txt"]));
    use sha2::Digest as _;
    let sum = hex::encode(sha2::Sha256::digest(SECRET.as_bytes()));
    assert_eq!(
        ran.stdout,
        format!(
            "{sum}  /run/secrets/tok\ndefault 400 0:0\ncustom 440 65534:65534\nenv {} 0\noptional secret skipped\n",
            SECRET.len() + 4
        )
    );
    assert_eq!(traces(&image, SECRET.as_bytes()), Vec::<String>::new());
    assert!(!history(&image).contains(SECRET), "{}", history(&image));
    // The mount point /etc/app/key did not exist in busybox: neither it nor /etc/app is left.
    assert_eq!(present(&f, &image, &["/etc/app", "/run", "/etc"]), "/etc\n");
}

/// Which of `paths` exist in the image.
fn present(f: &Fixture, image: &Image, paths: &[&str]) -> String {
    let script = format!(
        "for p in {}; do [ -e $p ] && echo $p; done; true",
        paths.join(" ")
    );
    f.run(image, Some(&["sh", "-c", &script])).stdout
}

#[test]
fn a_required_secret_that_is_missing_fails_the_step_and_tags_nothing() {
    let f = Fixture::new();
    let ctx = f.context(
        "required",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=secret,id=npm,required=true cat /run/secrets/npm\n",
        )],
    );
    let mut req = f.request(&ctx);
    req.tags.push(tag("required:1"));
    let err = f.build(req).unwrap_err();
    let BuildError::Step(step) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(step.location.line, 2);
    assert!(
        matches!(&step.source, berth_build::step::StepError::MissingSecret(id) if id == "npm"),
        "{:?}",
        step.source
    );
    assert!(f.resolve("required:1").is_none());
}

#[test]
fn ssh_mount_forwards_the_agent_socket_and_a_required_agent_must_be_given() {
    let f = Fixture::new();
    let sock = f.tmp.path().join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let ctx = f.context(
        "ssh",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo \"agent at $SSH_AUTH_SOCK\" > /ssh.txt\n",
        )],
    );
    let mut req = f.request(&ctx);
    req.ssh.insert("default".into(), sock.clone());
    let image = f.build(req).unwrap();
    let ran = f.run(&image, Some(&["cat", "/ssh.txt"]));
    assert_eq!(ran.stdout, "agent at /run/buildkit/ssh_agent.0\n");
    assert_eq!(
        present(&f, &image, &["/run", "/ssh.txt"]),
        "/ssh.txt\n",
        "the agent socket's mount point is not in the image"
    );

    let strict = f.context(
        "ssh-required",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=ssh,required=true true\n",
        )],
    );
    let err = f.build(f.request(&strict)).unwrap_err();
    let msg = berth_tests_chain(&err);
    assert!(msg.contains("SSH agent \"default\" is required"), "{msg}");
    assert!(msg.contains("--ssh default"), "{msg}");
}

fn berth_tests_chain(e: &dyn std::error::Error) -> String {
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
fn bind_mounts_read_a_stage_and_rw_writes_are_dropped() {
    let f = Fixture::new();
    let ctx = f.context(
        "bind",
        &[
            ("tool.sh", "echo from-context\n"),
            (
                "Dockerfile",
                r#"FROM busybox AS tools
RUN mkdir -p /out && echo 'echo from-stage' > /out/tool.sh

FROM busybox
RUN --mount=type=bind,from=tools,source=/out,target=/tools sh /tools/tool.sh > /result.txt \
 && (touch /tools/x 2>/dev/null && echo writable || echo read-only) >> /result.txt
RUN --mount=type=bind,from=tools,source=/out,target=/tools,rw touch /tools/new && ls /tools >> /result.txt
RUN --mount=type=bind,target=/ctx,rw sh /ctx/tool.sh >> /result.txt && echo changed > /ctx/tool.sh
RUN --mount=type=bind,source=tool.sh,target=/one.sh,rw echo 'echo one-file' >> /one.sh && sh /one.sh >> /result.txt
"#,
            ),
        ],
    );
    let image = f.build(f.request(&ctx)).unwrap();
    let ran = f.run(&image, Some(&["cat", "/result.txt"]));
    assert_eq!(
        ran.stdout,
        "from-stage\nread-only\nnew\ntool.sh\nfrom-context\nfrom-context\none-file\n"
    );
    assert_eq!(
        present(&f, &image, &["/tools", "/ctx", "/out", "/one.sh"]),
        ""
    );
    // The rw write to the context did not reach the context.
    assert_eq!(
        std::fs::read_to_string(ctx.join("tool.sh")).unwrap(),
        "echo from-context\n"
    );
    // A rebuild of the rw steps sees the stage unchanged.
    let again = f.build(f.request(&ctx)).unwrap();
    assert_eq!(again.id, image.id);
}

#[test]
fn cache_mounts_persist_by_id_are_seeded_from_a_stage_and_stay_out_of_layers() {
    let f = Fixture::new();
    let df = |n: &str| {
        format!(
            r#"FROM busybox AS seed
RUN mkdir -p /s && echo seeded > /s/base.txt

FROM busybox
RUN --mount=type=cache,id=pkgs,target=/var/cache/pkgs,from=seed,source=/s,sharing=locked \
    echo {n} >> /var/cache/pkgs/runs.txt && cat /var/cache/pkgs/base.txt /var/cache/pkgs/runs.txt > /seen.txt
RUN --mount=type=cache,target=/root/.cache,mode=0700,uid=65534 stat -c '%a %u' /root/.cache >> /seen.txt
"#
        )
    };
    let ctx = f.context("cache1", &[("Dockerfile", &df("one"))]);
    let first = f.build(f.request(&ctx)).unwrap();
    assert_eq!(
        f.run(&first, Some(&["cat", "/seen.txt"])).stdout,
        "seeded\none\n700 65534\n"
    );
    let mut req = f.request(&ctx);
    req.dockerfile = DockerfileSource::Inline(df("two"));
    let second = f.build(req).unwrap();
    assert_eq!(
        f.run(&second, Some(&["cat", "/seen.txt"])).stdout,
        "seeded\none\ntwo\n700 65534\n",
        "the cache directory kept the first build's file"
    );
    assert_eq!(
        present(&f, &second, &["/var/cache/pkgs", "/root/.cache", "/root"]),
        "/root\n",
        "cache directories are not in the image"
    );
    // `builder prune` empties cache mounts too: the next build starts from the seed again.
    berth_build::Builder::new(&f.store, &f.runtime)
        .prune()
        .unwrap();
    let mut req = f.request(&ctx);
    req.dockerfile = DockerfileSource::Inline(df("three"));
    let third = f.build(req).unwrap();
    assert_eq!(
        f.run(&third, Some(&["cat", "/seen.txt"])).stdout,
        "seeded\nthree\n700 65534\n"
    );
}

#[test]
fn private_cache_mounts_give_concurrent_stages_their_own_directory() {
    let f = Fixture::new();
    // Two independent stages run in parallel; each holds the cache while the other starts.
    let ctx = f.context(
        "private",
        &[(
            "Dockerfile",
            r#"FROM busybox AS a
RUN --mount=type=cache,id=p,target=/c,sharing=private touch /c/a && sleep 1 && ls /c > /seen.txt

FROM busybox AS b
RUN --mount=type=cache,id=p,target=/c,sharing=private touch /c/b && sleep 1 && ls /c > /seen.txt

FROM busybox
COPY --from=a /seen.txt /a.txt
COPY --from=b /seen.txt /b.txt
"#,
        )],
    );
    let image = f.build(f.request(&ctx)).unwrap();
    let out = f.run(&image, Some(&["cat", "/a.txt", "/b.txt"])).stdout;
    assert_eq!(
        out.lines().count(),
        2,
        "each stage saw only its own file: {out}"
    );
}

#[test]
fn named_contexts_serve_from_copy_from_and_mount_from() {
    let f = Fixture::new();
    let assets = f.context(
        "assets",
        &[("logo.txt", "LOGO\n"), ("css/site.css", "body{}\n")],
    );
    let ctx = f.context(
        "named",
        &[(
            "Dockerfile",
            r#"FROM base
COPY --from=assets logo.txt /srv/
RUN --mount=from=assets,source=css,target=/css cat /css/site.css > /srv/site.css
"#,
        )],
    );
    let mut req = f.request(&ctx);
    req.contexts.insert(
        "base".into(),
        berth_build::NamedContext::parse("docker-image://busybox").unwrap(),
    );
    req.contexts.insert(
        "assets".into(),
        berth_build::NamedContext::Dir(assets.clone()),
    );
    let image = f.build(req.clone()).unwrap();
    assert_eq!(
        f.run(&image, Some(&["cat", "/srv/logo.txt", "/srv/site.css"]))
            .stdout,
        "LOGO\nbody{}\n"
    );
    // Editing the named context invalidates the COPY from it.
    std::fs::write(assets.join("logo.txt"), "LOGO 2\n").unwrap();
    let again = f.build(req).unwrap();
    assert_eq!(
        f.run(&again, Some(&["cat", "/srv/logo.txt"])).stdout,
        "LOGO 2\n"
    );
    assert!(
        berth_build::NamedContext::parse("https://github.com/x/y.git")
            .unwrap_err()
            .contains("only local directories")
    );
}
