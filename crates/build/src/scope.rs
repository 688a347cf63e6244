//! Which variables a step sees: ARG and ENV scoping per stage.
//!
//! * ARGs before the first FROM ("global") are visible only in FROM lines, and inside a
//!   stage once redeclared there with `ARG NAME` (which then takes the global value).
//! * An ARG's value is the `--build-arg` value if given, else its default, else the
//!   global value; an ARG is in scope from its declaration to the end of its stage.
//! * ENV values (including the base image's) win over ARGs of the same name.
//! * The platform args (`TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`, `BUILDPLATFORM`, ...)
//!   are predefined in the global scope; the proxy args (`HTTP_PROXY`, ...) reach `RUN`
//!   when passed with `--build-arg` without being declared.

use std::collections::BTreeMap;

use crate::instruction::{ArgDecl, Instruction, KeyValue};
use crate::parse::Dockerfile;
use crate::substitute::{Lookup, SubstituteError, Vars, expand_word, expand_words};

/// Proxy variables usable without an `ARG` line.
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The OCI architecture name of the machine berth runs on.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// The predefined platform args (builds target the host platform).
pub fn platform_args() -> Vars {
    let arch = host_arch();
    let platform = format!("linux/{arch}");
    let mut v = Vars::default();
    for prefix in ["TARGET", "BUILD"] {
        v.set(&format!("{prefix}PLATFORM"), &platform);
        v.set(&format!("{prefix}OS"), "linux");
        v.set(&format!("{prefix}ARCH"), arch);
        v.set(&format!("{prefix}VARIANT"), "");
    }
    v
}

/// Resolves the global ARGs (those before the first FROM) against `build_args`.
pub fn global_args(
    df: &Dockerfile,
    build_args: &BTreeMap<String, String>,
) -> Result<Vars, SubstituteError> {
    let mut vars = platform_args();
    for step in &df.global_args {
        if let Instruction::Arg(decls) = &step.instruction {
            for d in decls {
                let value = arg_value(d, build_args, &vars, None, df.escape)?;
                if let Some(v) = value {
                    vars.set(&d.name, &v);
                }
            }
        }
    }
    Ok(vars)
}

fn arg_value(
    d: &ArgDecl,
    build_args: &BTreeMap<String, String>,
    scope: &dyn Lookup,
    global: Option<&Vars>,
    escape: char,
) -> Result<Option<String>, SubstituteError> {
    if let Some(v) = build_args.get(&d.name) {
        return Ok(Some(v.clone()));
    }
    if let Some(def) = &d.default {
        return expand_word(def, escape, scope).map(Some);
    }
    Ok(global.and_then(|g| g.get(&d.name)).map(str::to_string))
}

/// The variables in scope at one point of a stage.
#[derive(Debug, Clone)]
pub struct Scope {
    escape: char,
    global: Vars,
    build_args: BTreeMap<String, String>,
    /// ENV values, in order.
    env: Vars,
    /// ARGs declared in this stage so far, with their values (`None`: declared, no value).
    args: Vec<(String, Option<String>)>,
}

struct Merged<'a>(&'a Scope);

impl Lookup for Merged<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name)
    }
}

impl Lookup for Scope {
    fn get(&self, name: &str) -> Option<&str> {
        self.env.get(name).or_else(|| {
            self.args
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| v.as_deref())
        })
    }
}

impl Scope {
    /// The scope at the start of a stage whose base image sets `base_env`.
    pub fn new(
        escape: char,
        global: Vars,
        build_args: BTreeMap<String, String>,
        base_env: &[(String, String)],
    ) -> Self {
        let mut env = Vars::default();
        for (k, v) in base_env {
            env.set(k, v);
        }
        Self {
            escape,
            global,
            build_args,
            env,
            args: Vec::new(),
        }
    }

    /// Expands one word (quotes removed, no splitting).
    pub fn word(&self, text: &str) -> Result<String, SubstituteError> {
        expand_word(text, self.escape, &Merged(self))
    }

    /// Expands and splits on whitespace outside quotes.
    pub fn words(&self, text: &str) -> Result<Vec<String>, SubstituteError> {
        expand_words(text, self.escape, &Merged(self))
    }

    /// Expands `key=value` pairs of ENV or LABEL.
    pub fn key_values(&self, kvs: &[KeyValue]) -> Result<Vec<(String, String)>, SubstituteError> {
        kvs.iter()
            .map(|kv| Ok((self.word(&kv.key)?, self.word(&kv.value)?)))
            .collect()
    }

    /// Updates the scope after a step: `ARG` declares, `ENV` sets. All the pairs of one
    /// ENV line are expanded against the scope before that line (as Docker does).
    pub fn apply(&mut self, instruction: &Instruction) -> Result<(), SubstituteError> {
        match instruction {
            Instruction::Arg(decls) => {
                for d in decls {
                    let v = arg_value(
                        d,
                        &self.build_args,
                        &Merged(self),
                        Some(&self.global),
                        self.escape,
                    )?;
                    self.args.push((d.name.clone(), v));
                }
            }
            Instruction::Env(kvs) => {
                for (k, v) in self.key_values(kvs)? {
                    self.env.set(&k, &v);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The ENV variables, in order (the image config's `Env`).
    pub fn env(&self) -> &[(String, String)] {
        &self.env.0
    }

    /// ARGs in scope that have a value, and not shadowed by ENV (these enter cache keys
    /// and the environment of `RUN`), plus proxy args given with `--build-arg`.
    pub fn args_in_scope(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (name, value) in &self.args {
            match value {
                Some(v) if self.env.get(name).is_none() => {
                    out.insert(name.clone(), v.clone());
                }
                _ => {
                    out.remove(name);
                }
            }
        }
        for p in PROXY_ARGS {
            if let Some(v) = self.build_args.get(*p) {
                out.entry((*p).to_string()).or_insert_with(|| v.clone());
            }
        }
        out
    }

    /// The environment a `RUN` step gets: ENV, then the ARGs in scope.
    pub fn run_env(&self) -> Vec<(String, String)> {
        let mut out = self.env.0.clone();
        out.extend(self.args_in_scope());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn df(text: &str) -> Dockerfile {
        Dockerfile::parse(text, "Dockerfile").unwrap()
    }

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Runs a stage's steps through a scope and expands `probe` at the end.
    fn at_end(text: &str, build: &[(&str, &str)], probe: &str) -> String {
        let d = df(text);
        let g = global_args(&d, &args(build)).unwrap();
        let mut s = Scope::new(d.escape, g, args(build), &[]);
        for step in &d.stages[0].steps {
            s.apply(&step.instruction).unwrap();
        }
        s.word(probe).unwrap()
    }

    #[test]
    fn global_args_feed_from_lines_only() {
        let d = df("ARG V=1.0\nARG IMG=base:$V\nFROM $IMG\n");
        let g = global_args(&d, &BTreeMap::new()).unwrap();
        assert_eq!(g.get("IMG"), Some("base:1.0"));
        assert_eq!(at_end("ARG V=1\nFROM x\n", &[], "[$V]"), "[]");
    }

    #[test]
    fn redeclared_global_arg_takes_the_global_value() {
        assert_eq!(at_end("ARG V=1\nFROM x\nARG V\n", &[], "$V"), "1");
        assert_eq!(at_end("ARG V=1\nFROM x\nARG V\n", &[("V", "2")], "$V"), "2");
        assert_eq!(at_end("ARG V=1\nFROM x\nARG V=3\n", &[], "$V"), "3");
    }

    #[test]
    fn build_args_override_defaults_but_not_undeclared() {
        assert_eq!(at_end("FROM x\nARG A=d\n", &[("A", "b")], "$A"), "b");
        assert_eq!(at_end("FROM x\n", &[("A", "b")], "[$A]"), "[]");
    }

    #[test]
    fn env_wins_over_arg_and_sees_earlier_values() {
        let t = "FROM x\nARG A=arg\nENV A=env B=${A}-b\nENV C=$B\n";
        assert_eq!(at_end(t, &[], "$A $B $C"), "env arg-b arg-b");
    }

    #[test]
    fn env_is_expanded_before_the_line_applies() {
        // Docker expands all pairs of one ENV line against the previous scope.
        assert_eq!(at_end("FROM x\nENV A=1\nENV A=2 B=$A\n", &[], "$B"), "1");
    }

    #[test]
    fn platform_args_are_global_and_need_declaring() {
        let arch = host_arch();
        assert_eq!(at_end("FROM x\nARG TARGETARCH\n", &[], "$TARGETARCH"), arch);
        assert_eq!(at_end("FROM x\n", &[], "[$TARGETARCH]"), "[]");
    }

    #[test]
    fn args_in_scope_for_cache_keys_and_run() {
        let d = df("FROM x\nARG A=1\nARG B\nARG C=3\nENV C=env\n");
        let mut s = Scope::new(
            '\\',
            Vars::default(),
            args(&[("HTTP_PROXY", "http://p"), ("UNUSED", "x")]),
            &[("PATH".into(), "/bin".into())],
        );
        for step in &d.stages[0].steps {
            s.apply(&step.instruction).unwrap();
        }
        assert_eq!(
            s.args_in_scope(),
            args(&[("A", "1"), ("HTTP_PROXY", "http://p")])
        );
        assert_eq!(
            s.run_env(),
            vec![
                ("PATH".to_string(), "/bin".to_string()),
                ("C".into(), "env".into()),
                ("A".into(), "1".into()),
                ("HTTP_PROXY".into(), "http://p".into())
            ]
        );
    }
}
