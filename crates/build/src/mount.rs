//! `RUN --mount=...` and `RUN --network=...` values.

/// How a cache mount is shared between concurrent builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheSharing {
    /// Several writers at once (the default).
    #[default]
    Shared,
    /// Each concurrent writer gets its own copy.
    Private,
    /// Writers wait for each other.
    Locked,
}

/// The kind of a `RUN --mount` and its kind-specific options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// `type=bind`: a directory of the context, a stage or an image, read-only by default.
    Bind {
        /// Path inside the source (default: its root).
        source: Option<String>,
        /// Stage or image to take it from (default: the build context).
        from: Option<String>,
        /// `rw`/`readwrite`: writes allowed (and discarded).
        read_write: bool,
    },
    /// `type=cache`: a directory that persists between builds.
    Cache {
        /// Cache id (default: the target path).
        id: Option<String>,
        /// Sharing mode.
        sharing: CacheSharing,
        /// Read-only mount.
        read_only: bool,
        /// Stage or image whose directory seeds the cache.
        from: Option<String>,
        /// Subpath of `from`.
        source: Option<String>,
        /// Mode of a new cache directory (octal).
        mode: Option<u32>,
        /// Owner uid of a new cache directory.
        uid: Option<u32>,
        /// Owner gid of a new cache directory.
        gid: Option<u32>,
    },
    /// `type=tmpfs`: an empty tmpfs.
    Tmpfs {
        /// Size limit in bytes.
        size: Option<u64>,
    },
    /// `type=secret`: a secret file (or environment variable).
    Secret {
        /// Secret id (default: the target's file name).
        id: Option<String>,
        /// Fail when the secret is not provided.
        required: bool,
        /// Expose as this environment variable instead of (or besides) a file.
        env: Option<String>,
        /// File mode (octal, default 0400).
        mode: Option<u32>,
        /// Owner uid.
        uid: Option<u32>,
        /// Owner gid.
        gid: Option<u32>,
    },
    /// `type=ssh`: an SSH agent socket.
    Ssh {
        /// Agent id (default `default`).
        id: Option<String>,
        /// Fail when no agent is provided.
        required: bool,
    },
}

/// One `RUN --mount=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Mount point in the container; `None` only for secrets and ssh (which have defaults).
    pub target: Option<String>,
    /// Kind and options.
    pub kind: MountKind,
}

/// `RUN --network=...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// The build's default network.
    Default,
    /// No network (loopback only).
    None,
    /// The host's network namespace.
    Host,
}

impl NetworkMode {
    /// Parses `default`, `none` or `host`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "default" => Ok(Self::Default),
            "none" => Ok(Self::None),
            "host" => Ok(Self::Host),
            other => Err(format!(
                "unknown network mode {other:?} (default, none or host)"
            )),
        }
    }
}

fn octal(key: &str, v: &str) -> Result<u32, String> {
    u32::from_str_radix(v, 8).map_err(|_| format!("{key}={v:?} is not an octal mode"))
}

fn number<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{key}={v:?} is not a number"))
}

fn boolean(key: &str, v: Option<&str>) -> Result<bool, String> {
    match v {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(other) => Err(format!("{key}={other:?} is not a boolean")),
    }
}

/// Parses a size such as `64m`, `1g`, `4096`.
fn size(key: &str, v: &str) -> Result<u64, String> {
    let lower = v.to_ascii_lowercase();
    let lower = lower.trim_end_matches('b');
    let (digits, mult) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1u64 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        _ => (lower, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{key}={v:?} is not a size"))
}

impl Mount {
    /// Parses the value of `--mount=` (comma-separated `key=value` fields, CSV quoting).
    pub fn parse(value: &str) -> Result<Self, String> {
        let fields = csv_fields(value)?;
        let mut kind_name = "bind".to_string();
        let mut opts: Vec<(String, Option<String>)> = Vec::new();
        for f in fields {
            let (k, v) = match f.split_once('=') {
                Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_string())),
                None => (f.trim().to_ascii_lowercase(), None),
            };
            if k == "type" {
                kind_name = v.ok_or("type needs a value")?;
            } else {
                opts.push((k, v));
            }
        }
        let mut target = None;
        let (mut id, mut from, mut source) = (None, None, None);
        let (mut read_write, mut read_only, mut required) = (false, false, false);
        let (mut mode, mut uid, mut gid, mut sz) = (None, None, None, None);
        let mut sharing = CacheSharing::Shared;
        let mut env = None;
        for (k, v) in opts {
            let val = || v.clone().ok_or_else(|| format!("{k} needs a value"));
            match k.as_str() {
                "target" | "dst" | "destination" => target = Some(val()?),
                "source" | "src" => source = Some(val()?),
                "from" => from = Some(val()?),
                "id" => id = Some(val()?),
                "env" => env = Some(val()?),
                "rw" | "readwrite" => read_write = boolean(&k, v.as_deref())?,
                "ro" | "readonly" => read_only = boolean(&k, v.as_deref())?,
                "required" => required = boolean(&k, v.as_deref())?,
                "mode" => mode = Some(octal(&k, &val()?)?),
                "uid" => uid = Some(number(&k, &val()?)?),
                "gid" => gid = Some(number(&k, &val()?)?),
                "size" => sz = Some(size(&k, &val()?)?),
                "sharing" => {
                    sharing = match val()?.as_str() {
                        "shared" => CacheSharing::Shared,
                        "private" => CacheSharing::Private,
                        "locked" => CacheSharing::Locked,
                        o => return Err(format!("unknown sharing mode {o:?}")),
                    }
                }
                other => return Err(format!("unknown mount option {other:?}")),
            }
        }
        let kind = match kind_name.as_str() {
            "bind" => MountKind::Bind {
                source,
                from,
                read_write: read_write && !read_only,
            },
            "cache" => MountKind::Cache {
                id,
                sharing,
                read_only,
                from,
                source,
                mode,
                uid,
                gid,
            },
            "tmpfs" => MountKind::Tmpfs { size: sz },
            "secret" => MountKind::Secret {
                id,
                required,
                env,
                mode,
                uid,
                gid,
            },
            "ssh" => MountKind::Ssh { id, required },
            other => {
                return Err(format!(
                    "unknown mount type {other:?} (bind, cache, tmpfs, secret or ssh)"
                ));
            }
        };
        let needs_target = !matches!(kind, MountKind::Secret { .. } | MountKind::Ssh { .. });
        if needs_target && target.is_none() {
            return Err(format!("mount type {kind_name} needs target="));
        }
        Ok(Self { target, kind })
    }
}

/// Splits on commas outside double quotes, removing the quotes (Go's encoding/csv, one record).
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if in_quotes && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if in_quotes {
        return Err("unterminated quote in --mount value".into());
    }
    out.push(cur);
    Ok(out.into_iter().filter(|f| !f.is_empty()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_mount_with_options() {
        let m =
            Mount::parse("type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0755,uid=1")
                .unwrap();
        assert_eq!(m.target.as_deref(), Some("/root/.cache"));
        assert_eq!(
            m.kind,
            MountKind::Cache {
                id: Some("pip".into()),
                sharing: CacheSharing::Locked,
                read_only: false,
                from: None,
                source: None,
                mode: Some(0o755),
                uid: Some(1),
                gid: None
            }
        );
    }

    #[test]
    fn bind_is_the_default_and_read_only() {
        let m = Mount::parse("target=/src,from=build,source=/out").unwrap();
        assert_eq!(
            m.kind,
            MountKind::Bind {
                source: Some("/out".into()),
                from: Some("build".into()),
                read_write: false
            }
        );
        let rw = Mount::parse("type=bind,dst=/x,rw").unwrap();
        assert!(matches!(
            rw.kind,
            MountKind::Bind {
                read_write: true,
                ..
            }
        ));
    }

    #[test]
    fn tmpfs_size_and_secret_defaults() {
        let t = Mount::parse("type=tmpfs,target=/tmp,size=64m").unwrap();
        assert_eq!(
            t.kind,
            MountKind::Tmpfs {
                size: Some(64 << 20)
            }
        );
        let s = Mount::parse("type=secret,id=aws,required").unwrap();
        assert_eq!(s.target, None);
        assert!(matches!(s.kind, MountKind::Secret { required: true, .. }));
        let e = Mount::parse("type=secret,id=tok,env=TOKEN").unwrap();
        assert!(matches!(e.kind, MountKind::Secret { env: Some(ref v), .. } if v == "TOKEN"));
    }

    #[test]
    fn quoted_fields_may_hold_commas() {
        let m = Mount::parse(r#"type=bind,"target=/a,b""#).unwrap();
        assert_eq!(m.target.as_deref(), Some("/a,b"));
    }

    #[test]
    fn bad_mounts_are_errors() {
        assert!(
            Mount::parse("type=nfs,target=/x")
                .unwrap_err()
                .contains("unknown mount type")
        );
        assert!(
            Mount::parse("type=cache")
                .unwrap_err()
                .contains("needs target")
        );
        assert!(
            Mount::parse("target=/x,bogus=1")
                .unwrap_err()
                .contains("bogus")
        );
        assert!(
            Mount::parse("type=cache,target=/x,mode=9")
                .unwrap_err()
                .contains("octal")
        );
        assert!(
            Mount::parse("type=cache,target=/x,sharing=x")
                .unwrap_err()
                .contains("sharing")
        );
    }

    #[test]
    fn network_modes() {
        assert_eq!(NetworkMode::parse("none"), Ok(NetworkMode::None));
        assert_eq!(NetworkMode::parse("default"), Ok(NetworkMode::Default));
        assert_eq!(NetworkMode::parse("host"), Ok(NetworkMode::Host));
        assert!(NetworkMode::parse("bridge").is_err());
    }
}
