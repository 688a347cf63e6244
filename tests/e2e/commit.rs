//! `berth diff` and `berth commit` as the Docker tutorials use them: a container's changes
//! listed as `A`/`C`/`D`, then made into an image that runs and shows them (deletions
//! included, also of a whole directory replaced), that keeps the container running, and
//! that skopeo and umoci read from `berth save --format oci`.

use std::process::Command;

use berth_tests::openapi::{self, OpenApi};

use crate::run::Env;

fn sh(e: &Env, container: &str, script: &str) -> String {
    e.ok(&["exec", container, "sh", "-c", script])
}

#[test]
fn diff_lists_a_containers_changes_and_commit_makes_an_image_that_runs_them() {
    let e = Env::new("commit_round_trip");
    e.ok(&[
        "run",
        "-d",
        "--name",
        "src",
        "-w",
        "/tmp",
        "-e",
        "FROM_RUN=1",
        "busybox",
        "sleep",
        "1000",
    ]);
    sh(
        &e,
        "src",
        "echo new > /new.txt; rm /etc/group; echo 'x:x:5:5::/:/bin/sh' >> /etc/passwd; \
         mkdir -p /tmp/made /data; echo a > /data/a; echo b > /data/b",
    );
    // As `docker diff`: sorted by path, mount points the runtime made (/dev, /proc, /sys,
    // /etc/hosts, …) left out.
    assert_eq!(
        e.ok(&["diff", "src"]),
        "A /data\nA /data/a\nA /data/b\nC /etc\nD /etc/group\nC /etc/passwd\nA /new.txt\n\
         C /tmp\nA /tmp/made\n"
    );

    // The route answers as the API document says.
    let api = OpenApi::load(&openapi::default_path());
    let resp = e.env.http("GET", "/v1/containers/src/changes");
    assert_eq!(resp.status, 200, "{}", resp.body);
    api.check("GET", "/v1/containers/src/changes", &resp)
        .unwrap_or_else(|err| panic!("{err}\nbody: {}", resp.body));
    let listed: serde_json::Value = serde_json::from_str(&resp.body).unwrap();
    assert_eq!(
        listed[4],
        serde_json::json!({"Path": "/etc/group", "Kind": 2})
    );

    let out = e.ok(&[
        "commit",
        "-m",
        "first commit",
        "-a",
        "Tess <t@example.com>",
        "-c",
        "ENV COMMITTED=yes",
        "-c",
        r#"CMD ["cat", "/new.txt"]"#,
        "src",
        "committed:v1",
    ]);
    assert!(
        out.starts_with("sha256:") && out.trim().len() == 71,
        "{out}"
    );
    // The container was paused for the commit only.
    assert_eq!(e.inspect("src")["State"]["Status"], "running");

    // The new image runs the committed CMD and shows every change.
    assert_eq!(e.ok(&["run", "--rm", "committed:v1"]), "new\n");
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "committed:v1",
            "sh",
            "-c",
            "echo $COMMITTED; test -e /etc/group || echo no group; tail -1 /etc/passwd; \
             ls -d /tmp/made; cat /data/a /data/b",
        ]),
        "yes\nno group\nx:x:5:5::/:/bin/sh\n/tmp/made\na\nb\n"
    );
    let image: serde_json::Value =
        serde_json::from_str(&e.ok(&["image", "inspect", "committed:v1"])).unwrap();
    assert_eq!(
        image[0]["Config"]["Cmd"],
        serde_json::json!(["cat", "/new.txt"])
    );
    assert_eq!(image[0]["Author"], "Tess <t@example.com>");
    // The container's own settings carry over, as with `docker commit`.
    assert_eq!(image[0]["Config"]["WorkingDir"], "/tmp");
    assert!(
        image[0]["Config"]["Env"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("FROM_RUN=1")),
        "{image}"
    );
    assert_eq!(image[0]["RootFS"]["Layers"].as_array().unwrap().len(), 2);

    // A directory of the image removed and made again: opaque, its old files deleted.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "second",
        "committed:v1",
        "sleep",
        "1000",
    ]);
    sh(
        &e,
        "second",
        "rm -rf /data && mkdir /data && echo c > /data/c",
    );
    assert_eq!(
        e.ok(&["diff", "second"]),
        "C /data\nD /data/a\nD /data/b\nA /data/c\n"
    );
    e.ok(&["commit", "second", "committed:v2"]);
    // A stopped container still has its changes.
    e.ok(&["stop", "-t", "1", "second"]);
    assert_eq!(
        e.ok(&["diff", "second"]),
        "C /data\nD /data/a\nD /data/b\nA /data/c\n"
    );
    assert_eq!(e.ok(&["run", "--rm", "committed:v2", "ls", "/data"]), "c\n");

    // Other tools read it: skopeo inspects the OCI layout, umoci unpacks it (whiteouts
    // applied).
    let layout = e.env.dir().join("layout");
    e.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        layout.to_str().unwrap(),
        "committed:v2",
    ]);
    let inspect = Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:v2", layout.display()))
        .output()
        .expect("skopeo is installed (scripts/setup.sh)");
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(info["Layers"].as_array().unwrap().len(), 3, "{info}");
    assert!(
        info["Env"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("COMMITTED=yes")),
        "{info}"
    );
    let bundle = e.env.dir().join("bundle");
    let unpack = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:v2", layout.display()))
        .arg(&bundle)
        .output()
        .expect("umoci is installed (scripts/setup.sh)");
    assert!(
        unpack.status.success(),
        "{}",
        String::from_utf8_lossy(&unpack.stderr)
    );
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("new.txt")).unwrap(),
        "new\n"
    );
    let mut data: Vec<String> = std::fs::read_dir(rootfs.join("data"))
        .unwrap()
        .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    data.sort();
    assert_eq!(data, ["c"]);
    assert!(!rootfs.join("etc/group").exists());
    e.ok(&["rm", "-f", "src", "second"]);
}

#[test]
fn commit_refuses_bad_input_with_one_line_and_leaves_nothing() {
    let e = Env::new("commit_bad_input");
    e.ok(&["run", "-d", "--name", "c", "busybox", "sleep", "1000"]);
    let images = e.ok(&["images", "-q"]);
    let (code, _, err) = e.run(&["commit", "-c", "RUN echo hi", "c", "bad:1"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("RUN echo hi"), "{err}");
    let (code, _, err) = e.run(&["commit", "c", "Bad Name"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("invalid reference format"), "{err}");
    let (code, _, err) = e.run(&["diff", "nosuch"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("No such container: nosuch"), "{err}");
    assert_eq!(e.ok(&["images", "-q"]), images);
    assert_eq!(e.inspect("c")["State"]["Status"], "running");
    e.ok(&["rm", "-f", "c"]);
}
