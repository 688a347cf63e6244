//! The builder against the real thing: a store with a busybox image, RUN steps in
//! containers of berth's runtime core, and the built images run to check what they do.

mod common;

use berth_build::DockerfileSource;
use common::{Fixture, args, tag};

const NODE_STYLE: &str = r##"# syntax=docker/dockerfile:1
FROM busybox AS build
WORKDIR /src
COPY package.json ./
RUN echo "# installed $(cat package.json)" > deps.txt
COPY . .
RUN mkdir -p /out \
 && cat app.sh deps.txt > /out/app.sh \
 && chmod 755 /out/app.sh

FROM busybox
RUN echo 'node:x:1000:1000::/home/node:/bin/sh' >> /etc/passwd \
 && echo 'node:x:1000:' >> /etc/group \
 && mkdir -p /home/node
COPY --from=build --chown=node:node /out /app
USER node
WORKDIR /app
EXPOSE 3000
CMD ["sh", "/app/app.sh"]
"##;

#[test]
fn multi_stage_build_drops_to_a_non_root_user_and_copies_from_the_build_stage() {
    let f = Fixture::new();
    let ctx = f.context(
        "node",
        &[
            ("Dockerfile", NODE_STYLE),
            ("package.json", "{\"deps\":1}"),
            ("app.sh", "echo \"hello from $(id -un) uid=$(id -u)\"\nstat -c '%u:%g %a' /app/app.sh\ntail -n1 \"$0\"\n"),
        ],
    );
    let mut req = f.request(&ctx);
    req.tags.push(tag("node-app:1"));
    let image = f.build(req).unwrap();
    assert_eq!(f.resolve("node-app:1").unwrap().id, image.id);
    let c = &image.config.config;
    assert_eq!(c.user, "node");
    assert_eq!(c.working_dir, "/app");
    assert_eq!(
        c.cmd,
        Some(vec!["sh".to_string(), "/app/app.sh".to_string()])
    );
    assert!(c.exposed_ports.contains_key("3000/tcp"));
    let ran = f.run(&image, None);
    assert_eq!(ran.code, 0, "{}", ran.stdout);
    assert_eq!(
        ran.stdout,
        "hello from node uid=1000\n1000:1000 755\n# installed {\"deps\":1}\n"
    );
    // The build stage's files do not reach the final image.
    let ls = f.run(&image, Some(&["sh", "-c", "ls /src 2>&1; echo $?"]));
    assert!(ls.stdout.ends_with("1\n"), "{}", ls.stdout);
}

const PYTHON_STYLE: &str = r#"FROM busybox
WORKDIR /app
COPY requirements.txt .
RUN while read p; do mkdir -p "/site-packages/$p"; done < requirements.txt
COPY . /app
ENV GREETING=hello
EXPOSE 5000
ENTRYPOINT ["sh", "/app/main.sh"]
CMD ["world"]
"#;

fn python_context(f: &Fixture) -> std::path::PathBuf {
    f.context(
        "python",
        &[
            ("Dockerfile", PYTHON_STYLE),
            ("requirements.txt", "flask\nrequests\n"),
            (
                "main.sh",
                "echo \"$GREETING $1 from $(pwd)\"\nls /site-packages\nls /app\n",
            ),
            ("module.pyc", "compiled"),
            ("secrets/token", "s3cr3t"),
            (".dockerignore", "*.pyc\nsecrets\n"),
        ],
    )
}

#[test]
fn python_style_app_runs_with_entrypoint_and_cmd_and_dockerignore_keeps_files_out() {
    let f = Fixture::new();
    let ctx = python_context(&f);
    let image = f.build(f.request(&ctx)).unwrap();
    let c = &image.config.config;
    assert!(c.env.contains(&"GREETING=hello".to_string()));
    assert!(c.exposed_ports.contains_key("5000/tcp"));
    let ran = f.run(&image, None);
    assert_eq!(ran.code, 0, "{}", ran.stdout);
    assert_eq!(
        ran.stdout,
        "hello world from /app\nflask\nrequests\nDockerfile\nmain.sh\nrequirements.txt\n"
    );
    assert_eq!(
        f.run(&image, Some(&["there"])).stdout.lines().next(),
        Some("hello there from /app")
    );
}

#[test]
fn history_and_layers_as_docker_records_them() {
    let f = Fixture::new();
    let ctx = python_context(&f);
    let base = f.resolve("busybox").unwrap();
    let image = f.build(f.request(&ctx)).unwrap();
    let history = &image.config.history[base.config.history.len()..];
    let summary: Vec<(String, bool)> = history
        .iter()
        .map(|h| (h.created_by.clone().unwrap(), h.empty_layer))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("WORKDIR /app".to_string(), false),
            ("COPY requirements.txt .".to_string(), false),
            ("RUN /bin/sh -c while read p; do mkdir -p \"/site-packages/$p\"; done < requirements.txt".to_string(), false),
            ("COPY . /app".to_string(), false),
            ("ENV GREETING=hello".to_string(), true),
            ("EXPOSE 5000".to_string(), true),
            ("ENTRYPOINT [\"sh\", \"/app/main.sh\"]".to_string(), true),
            ("CMD [\"world\"]".to_string(), true),
        ]
    );
    // One layer per filesystem-changing step on top of the base's.
    assert_eq!(
        image.config.rootfs.diff_ids.len(),
        base.config.rootfs.diff_ids.len() + 4
    );
}

#[test]
fn rebuild_with_nothing_changed_takes_every_step_from_the_cache() {
    let f = Fixture::new();
    let ctx = python_context(&f);
    let first = f.build(f.request(&ctx)).unwrap();
    assert!(f.steps().iter().all(|(_, cached)| !cached));
    let second = f.build(f.request(&ctx)).unwrap();
    assert_eq!(second.id, first.id);
    assert_eq!(f.steps().len(), 8);
    assert!(
        f.steps().iter().all(|(_, cached)| *cached),
        "{:?}",
        f.steps()
    );
    // An ignored file changing does not matter either.
    std::fs::write(ctx.join("module.pyc"), "recompiled").unwrap();
    assert_eq!(f.build(f.request(&ctx)).unwrap().id, first.id);
}

#[test]
fn touching_one_source_file_rebuilds_only_from_its_copy() {
    let f = Fixture::new();
    let ctx = python_context(&f);
    f.build(f.request(&ctx)).unwrap();
    std::fs::write(ctx.join("main.sh"), "echo changed\n").unwrap();
    let image = f.build(f.request(&ctx)).unwrap();
    let cached: Vec<bool> = f.steps().iter().map(|(_, c)| *c).collect();
    // WORKDIR, COPY requirements, RUN from the cache; COPY . and everything after rebuilt.
    assert_eq!(
        cached,
        vec![true, true, true, false, false, false, false, false]
    );
    assert_eq!(f.run(&image, None).stdout, "changed\n");
    // Changing the requirements invalidates the RUN after their COPY too.
    std::fs::write(ctx.join("requirements.txt"), "flask\n").unwrap();
    f.build(f.request(&ctx)).unwrap();
    let cached: Vec<bool> = f.steps().iter().map(|(_, c)| *c).collect();
    assert_eq!(
        cached,
        vec![true, false, false, false, false, false, false, false]
    );
}

#[test]
fn cache_survives_a_new_builder_and_no_cache_and_prune_bypass_it() {
    let f = Fixture::new();
    let ctx = python_context(&f);
    let first = f.build(f.request(&ctx)).unwrap();
    let mut req = f.request(&ctx);
    req.no_cache = true;
    f.build(req).unwrap();
    assert!(f.steps().iter().all(|(_, cached)| !cached));
    // A store opened again (a restarted daemon) still has the cache.
    let reopened = berth_image::Store::open(&f.tmp.path().join("image")).unwrap();
    let again = berth_build::Builder::new(&reopened, &f.runtime)
        .build(f.request(&ctx))
        .unwrap();
    assert_eq!(again.config.config.env, first.config.config.env);
    let pruned = berth_build::Builder::new(&f.store, &f.runtime)
        .prune()
        .unwrap();
    assert!(pruned >= 8, "{pruned}");
    f.build(f.request(&ctx)).unwrap();
    assert!(f.steps().iter().all(|(_, cached)| !cached));
}

#[test]
fn build_args_labels_target_heredocs_and_scratch() {
    let f = Fixture::new();
    let dockerfile = r#"ARG BASE=busybox
FROM ${BASE} AS base
ARG GREETING=hi
ENV WHO=${GREETING:-nobody}
RUN <<EOF
echo "run sees $GREETING and $WHO" > /greeting
EOF
COPY <<-CONF /etc/app.conf
	who=$WHO
	CONF
LABEL org.example.stage=base

FROM scratch AS final
COPY --from=base /greeting /etc/app.conf /
CMD ["/greeting"]

FROM base AS unused
RUN exit 1
"#;
    let ctx = f.context("args", &[]);
    let mut req = f.request(&ctx);
    req.dockerfile = DockerfileSource::Inline(dockerfile.to_string());
    req.args = args(&[("GREETING", "bonjour")]);
    req.labels = args(&[("org.example.built-by", "berth")]);
    req.target = Some("base".into());
    req.tags.push(tag("args-test:base"));
    let base = f.build(req.clone()).unwrap();
    assert_eq!(
        base.config
            .config
            .labels
            .get("org.example.stage")
            .map(String::as_str),
        Some("base")
    );
    assert_eq!(
        base.config
            .config
            .labels
            .get("org.example.built-by")
            .map(String::as_str),
        Some("berth")
    );
    let ran = f.run(&base, Some(&["cat", "/greeting", "/etc/app.conf"]));
    assert_eq!(ran.stdout, "run sees bonjour and bonjour\nwho=bonjour\n");
    // The last stage is `unused` (which fails): the `final` target never builds it.
    req.target = Some("final".into());
    req.tags = vec![tag("args-test:final")];
    let fin = f.build(req).unwrap();
    assert_eq!(fin.config.rootfs.diff_ids.len(), 1, "scratch + one COPY");
    assert!(f.steps().iter().all(|(t, _)| !t.contains("exit 1")));
}

#[test]
fn add_unpacks_local_archives_and_copy_applies_chmod_and_workdir() {
    let f = Fixture::new();
    let ctx = f.context("add", &[("script.sh", "echo hi\n")]);
    // A gzip'd tar made here, as a user would ADD a release tarball.
    let gz = std::fs::File::create(ctx.join("bundle.tar.gz")).unwrap();
    let mut tb = tar::Builder::new(flate2::write::GzEncoder::new(
        gz,
        flate2::Compression::default(),
    ));
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    tb.append_data(&mut h, "pkg/README", &b"readme"[..])
        .unwrap();
    tb.into_inner().unwrap().finish().unwrap();
    let dockerfile = "FROM busybox\nWORKDIR /opt/app\nADD bundle.tar.gz /opt/\nCOPY --chmod=0700 script.sh bin/\nRUN ls -l bin/script.sh | cut -c1-10 && cat /opt/pkg/README\n";
    let mut req = f.request(&ctx);
    req.dockerfile = DockerfileSource::Inline(dockerfile.to_string());
    let image = f.build(req).unwrap();
    assert_eq!(
        f.output(),
        vec!["-rwx------".to_string(), "readme".to_string()]
    );
    let ran = f.run(&image, Some(&["sh", "-c", "pwd; ls /opt; bin/script.sh"]));
    assert_eq!(ran.stdout, "/opt/app\napp\npkg\nhi\n");
}

#[test]
fn saved_build_is_a_valid_oci_image_for_skopeo_and_umoci() {
    let f = Fixture::new();
    let ctx = f.context(
        "oci",
        &[
            ("Dockerfile", "FROM busybox\nWORKDIR /app\nCOPY hello.txt .\nRUN echo built > /app/built.txt && rm /bin/vi\nUSER 1000\nCMD [\"cat\", \"hello.txt\"]\n"),
            ("hello.txt", "hello oci\n"),
        ],
    );
    let mut req = f.request(&ctx);
    req.tags.push(tag("oci-test:1"));
    f.build(req).unwrap();
    let layout = f.tmp.path().join("layout");
    f.store
        .save(
            &[tag("oci-test:1")],
            berth_image::SaveFormat::OciLayout,
            &layout,
        )
        .unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let name = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .unwrap()
        .to_string();
    let inspect = std::process::Command::new("skopeo")
        .args(["inspect", "--config"])
        .arg(format!("oci:{}:{name}", layout.display()))
        .output()
        .unwrap();
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    let config: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(config["config"]["User"], "1000");
    assert_eq!(config["config"]["WorkingDir"], "/app");
    let bundle = f.tmp.path().join("bundle");
    let unpack = std::process::Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:{name}", layout.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        unpack.status.success(),
        "{}",
        String::from_utf8_lossy(&unpack.stderr)
    );
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("app/hello.txt")).unwrap(),
        "hello oci\n"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("app/built.txt")).unwrap(),
        "built\n"
    );
    assert!(rootfs.join("bin/sh").symlink_metadata().is_ok());
    assert!(
        rootfs.join("bin/vi").symlink_metadata().is_err(),
        "the RUN's whiteout applies"
    );
}

#[test]
fn onbuild_triggers_run_in_the_child_build_and_are_not_inherited() {
    let f = Fixture::new();
    let ctx = f.context("onbuild", &[]);
    let mut req = f.request(&ctx);
    req.dockerfile =
        DockerfileSource::Inline("FROM busybox\nONBUILD RUN echo triggered > /triggered\n".into());
    req.tags.push(tag("onbuild-base:1"));
    let base = f.build(req).unwrap();
    assert_eq!(
        base.config.config.on_build,
        Some(vec!["RUN echo triggered > /triggered".to_string()])
    );
    let mut req = f.request(&ctx);
    req.dockerfile = DockerfileSource::Inline("FROM onbuild-base:1\nRUN cat /triggered\n".into());
    let child = f.build(req).unwrap();
    assert_eq!(f.output(), vec!["triggered".to_string()]);
    assert_eq!(child.config.config.on_build, None);
}

#[test]
fn escape_directive_copy_link_chmod_and_a_run_heredoc_build_as_written() {
    let f = Fixture::new();
    let ctx = f.context(
        "escape",
        &[
            ("run.sh", "echo linked\n"),
            (
                "Dockerfile",
                "# escape=`\nFROM busybox\nCOPY --link --chmod=0750 run.sh /app/\nRUN echo one > /lines.txt `\n && echo two >> /lines.txt\nRUN <<EOF\necho from-heredoc > /h.txt\nEOF\n",
            ),
        ],
    );
    let image = f.build(f.request(&ctx)).unwrap();
    let ran = f.run(
        &image,
        Some(&[
            "sh",
            "-c",
            "stat -c '%a' /app/run.sh; sh /app/run.sh; cat /lines.txt /h.txt",
        ]),
    );
    assert_eq!(ran.stdout, "750\nlinked\none\ntwo\nfrom-heredoc\n");
}

#[test]
fn a_ten_thousand_file_context_is_copied_whole_and_rebuilt_from_the_cache() {
    let f = Fixture::new();
    let ctx = f.context(
        "big",
        &[(
            "Dockerfile",
            "FROM busybox\nCOPY . /ctx/\nRUN find /ctx -type f | wc -l > /count.txt\n",
        )],
    );
    for d in 0..100 {
        let sub = ctx.join(format!("d{d:03}"));
        std::fs::create_dir_all(&sub).unwrap();
        for n in 0..100 {
            std::fs::write(sub.join(format!("f{n:03}")), format!("{d}-{n}")).unwrap();
        }
    }
    let image = f.build(f.request(&ctx)).unwrap();
    // 10,000 files and the Dockerfile.
    assert_eq!(
        f.run(&image, Some(&["cat", "/count.txt"])).stdout,
        "10001\n"
    );
    let again = f.build(f.request(&ctx)).unwrap();
    assert_eq!(again.id, image.id);
    assert!(f.steps().iter().all(|(_, cached)| *cached));
}

#[test]
fn the_next_build_removes_the_run_container_a_killed_build_left_running() {
    let f = Fixture::new();
    // What a SIGKILLed build leaves: its RUN container `build-<pid>-<n>` still running under its
    // monitor, and no process <pid>. A real container, named as the builder names them, of a
    // process that has exited.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let id = format!("build-{}-7", gone.id());
    let rootfs = f.tmp.path().join("busybox-rootfs");
    let req = berth_runtime::ContainerRequest::new(
        id.clone(),
        &["sleep", "100"],
        berth_runtime::Rootfs::Path(rootfs),
    );
    let c = f.runtime.create(req).unwrap();
    c.start().unwrap();
    let pid = c.state().unwrap().pid.unwrap();
    // Whatever the outcome, the test leaves no container running.
    struct Remove<'a>(&'a berth_runtime::Runtime, Vec<String>);
    impl Drop for Remove<'_> {
        fn drop(&mut self) {
            for id in &self.1 {
                if let Ok(c) = self.0.load(id) {
                    let _ = c.delete(true);
                }
            }
        }
    }
    let own = format!("build-{}-999", std::process::id());
    let _remove = Remove(&f.runtime, vec![id.clone(), own.clone()]);
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    // A live build's container is not touched: this process's own ids are left alone.
    let _mine = f
        .runtime
        .create(berth_runtime::ContainerRequest::new(
            own.clone(),
            &["true"],
            berth_runtime::Rootfs::Path(f.tmp.path().join("busybox-rootfs")),
        ))
        .unwrap();

    let ctx = f.context("next", &[("Dockerfile", "FROM busybox\nRUN true\n")]);
    f.build(f.request(&ctx)).unwrap();

    assert!(
        f.runtime.load(&id).is_err(),
        "the orphan RUN container {id} is still there"
    );
    let alive =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "));
    assert!(!alive, "the orphan's process {pid} still runs");
    assert!(
        f.runtime.load(&own).is_ok(),
        "a live build's container went"
    );
}
