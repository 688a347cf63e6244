//! Test helpers: a real `docker-registry` on a free port (optionally with htpasswd basic auth
//! or bearer tokens from a token server in this process), busybox images built with umoci and
//! pushed with skopeo, and HTTP proxies that break things on purpose.
#![allow(dead_code)]

pub mod proxy;
pub mod token;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Panics unless running as root (unpacking chowns files and creates device nodes).
pub fn require_root() {
    if !nix::unistd::geteuid().is_root() {
        panic!("this test needs root: it unpacks layers with owners and whiteout device nodes");
    }
}

/// Runs a command, panicking with its output on failure.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How the registry authenticates.
pub enum RegistryAuth {
    /// Anyone may pull and push.
    None,
    /// htpasswd with one user.
    Basic { user: String, password: String },
    /// Bearer tokens from `realm`, verified with `cert`.
    Token { realm: String, cert: PathBuf },
}

/// A running `docker-registry`, killed on drop.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub host: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry with its own storage directory and waits until it answers.
    pub fn start(auth: RegistryAuth) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let auth_yaml = match &auth {
            RegistryAuth::None => String::new(),
            RegistryAuth::Basic { user, password } => {
                let file = dir.path().join("htpasswd");
                run(Command::new("htpasswd")
                    .args(["-Bbc"])
                    .arg(&file)
                    .args([user, password]));
                format!(
                    "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    file.display()
                )
            }
            RegistryAuth::Token { realm, cert } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                token::SERVICE,
                token::ISSUER,
                cert.display()
            ),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n  secret: berth-test-secret\n{auth_yaml}",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting /usr/bin/docker-registry (Debian package docker-registry)");
        let registry = Registry {
            child,
            host,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&registry.host).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry did not start on {}",
                registry.host
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        registry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal busybox root file system: `bin/busybox` and a few applet symlinks, plus `etc/`
/// with a marker file.
pub fn busybox_rootfs(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    for applet in ["sh", "ls", "cat", "echo", "true"] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    std::fs::write(dir.join("etc/marker"), "berth-test\n").unwrap();
}

/// An OCI layout at `layout` with image `tag` made by umoci from `rootfs` for `arch`.
pub fn umoci_image(layout: &Path, tag: &str, rootfs: &Path, arch: &str) {
    if !layout.join("index.json").exists() {
        run(Command::new("umoci")
            .arg("init")
            .arg("--layout")
            .arg(layout));
    }
    let image = format!("{}:{tag}", layout.display());
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci")
        .args(["insert", "--image", &image])
        .arg(rootfs)
        .arg("/"));
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.cmd",
        "sh",
        "--config.env",
        "BERTH_TEST=1",
        "--architecture",
        arch,
        "--os",
        "linux",
    ]));
}

/// `skopeo copy` without TLS verification, with extra arguments (e.g. `--format v2s2`).
pub fn skopeo_copy(src: &str, dst: &str, extra: &[&str]) {
    run(Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .args(extra)
        .args([src, dst]));
}

/// Adds an image index named `name` to an OCI layout, listing the manifests tagged `tags`
/// with the platforms of their configs. Returns the index digest.
pub fn add_index(layout: &Path, name: &str, tags: &[&str]) -> String {
    let index_path = layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let mut entries = Vec::new();
    for tag in tags {
        let desc = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == *tag)
            .unwrap()
            .clone();
        let blob = |d: &serde_json::Value| {
            let hex = d["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:")
                .to_owned();
            serde_json::from_slice::<serde_json::Value>(
                &std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap(),
            )
            .unwrap()
        };
        let manifest = blob(&desc);
        let config = blob(&manifest["config"]);
        let mut entry = desc.clone();
        entry.as_object_mut().unwrap().remove("annotations");
        entry["platform"] = serde_json::json!({
            "os": config["os"], "architecture": config["architecture"]
        });
        entries.push(entry);
    }
    let doc = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    });
    let bytes = serde_json::to_vec(&doc).unwrap();
    let digest = berth_image::Digest::of(&bytes);
    std::fs::write(layout.join("blobs/sha256").join(digest.hex()), &bytes).unwrap();
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest.to_string(),
            "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": name},
        }));
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    digest.to_string()
}

/// Every file name under the store's blob and snapshot directories (for "unchanged" checks).
pub fn store_listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["blobs/sha256", "blobs/tmp", "snapshots"] {
        if let Ok(rd) = std::fs::read_dir(root.join(sub)) {
            for e in rd.flatten() {
                out.push(format!("{sub}/{}", e.file_name().to_string_lossy()));
            }
        }
    }
    out.sort();
    out
}

/// A tokio runtime for a test.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
