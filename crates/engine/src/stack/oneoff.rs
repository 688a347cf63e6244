//! `stack run`: a one-off container of a service, as `docker compose run` makes it.
//!
//! The container is created from the service's configuration (the same mapping as its
//! replicas, [`desired::container_plan`]) with the command line's overrides, named
//! `<project>-<service>-run-<id>` (the caller picks the name), labelled
//! `com.docker.compose.oneoff=True` so that `up` and `ps` leave it out and `down`
//! removes it. As Compose does, it gets no restart policy and publishes the service's
//! ports only with `--service-ports`. Unless `no_deps`, the services it depends on are
//! brought up first (an `up` of those services).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;

use berth_compose::Project;
use berth_compose::model::VolumeType;
use tokio::sync::Semaphore;

use super::desired::{self, Context, labels};
use super::execute::{UpOptions, blocking_run};
use super::walk::Run;
use super::{ProgressSink, StackError, Stacks, resources};
use crate::containers::{Created, RestartPolicy};

/// What `stack run` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OneOffOptions {
    /// The service.
    pub service: String,
    /// The container's name (`--name`, else `<project>-<service>-run-<id>`).
    pub name: String,
    /// Arguments replacing the service's `command`.
    pub command: Option<Vec<String>>,
    /// `--entrypoint` (`Some("")` clears it).
    pub entrypoint: Option<String>,
    /// `-e NAME=VALUE`, added to (and overriding) the service's environment.
    pub env: Vec<String>,
    /// `-l KEY=VALUE`.
    pub labels: BTreeMap<String, String>,
    /// `-u`.
    pub user: Option<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-p`: ports to publish.
    pub publish: Vec<String>,
    /// `--service-ports`: publish the service's own ports too.
    pub service_ports: bool,
    /// `--no-deps`.
    pub no_deps: bool,
    /// `--rm` with `-d`: the daemon removes the container when it exits.
    pub auto_remove: bool,
    /// A terminal for the container, sent on this console socket.
    pub console_socket: Option<PathBuf>,
    /// Standard input without a terminal, received from this socket.
    pub stdin_socket: Option<PathBuf>,
    /// The stack files (labels).
    pub config_files: Vec<String>,
}

impl Stacks {
    /// Creates and starts a one-off container of `opts.service` (its dependencies first).
    pub async fn run_oneoff(
        &self,
        project: Project,
        opts: &OneOffOptions,
        progress: &ProgressSink,
    ) -> Result<Created, StackError> {
        let svc = project
            .services
            .get(&opts.service)
            .ok_or_else(|| StackError::NoSuchService(opts.service.clone()))?
            .clone();
        if !opts.no_deps && !svc.depends_on.is_empty() {
            let deps = UpOptions {
                services: svc.depends_on.keys().cloned().collect(),
                config_files: opts.config_files.clone(),
                ..UpOptions::default()
            };
            self.up(project.clone(), &deps, progress).await?;
        }
        let up = UpOptions {
            services: vec![opts.service.clone()],
            config_files: opts.config_files.clone(),
            no_deps: true,
            ..UpOptions::default()
        };
        let selected = Some(BTreeSet::from([opts.service.clone()]));
        let prep = {
            let (this, o, p) = (self.clone(), up.clone(), progress.clone());
            tokio::task::spawn_blocking(move || this.prepare(project, &o, &selected, &p))
                .await
                .map_err(StackError::Task)??
        };
        let project = &prep.project;
        let net = self.containers.net().await?;
        resources::ensure_networks(&net, project, progress).await?;

        let mut volumes = BTreeMap::new();
        let mut fresh = BTreeSet::new();
        for v in svc.volumes.iter().filter(|v| v.kind == VolumeType::Volume) {
            let key = match &v.source {
                Some(k) => k.clone(),
                None => super::mounts::anonymous_volume_key(&opts.name, &v.target),
            };
            let (source, is_new) = resources::ensure_volume(
                self.engine.store(),
                &self.engine.config().root,
                project,
                &key,
                progress,
            )?;
            if let (true, desired::VolumeSource::Dir { name, .. }) = (is_new, &source) {
                fresh.insert(name.clone());
            }
            volumes.insert(key, source);
        }
        let files_dir = self.files_dir(&project.name);
        let empty = BTreeMap::new();
        let applied = BTreeMap::new();
        let run = Run {
            applied: &applied,
            stacks: self,
            project,
            prep: &prep,
            opts: &up,
            volumes: &volumes,
            fresh: Mutex::new(fresh),
            files_dir: &files_dir,
            progress,
            permits: Semaphore::new(1),
            empty: &empty,
            announced: Mutex::new(BTreeSet::new()),
        };
        let config = run.current(&opts.service);
        let ctx = Context {
            project,
            config_files: &opts.config_files,
            volumes: &volumes,
            files_dir: &files_dir,
            contents: config.contents,
        };
        // Replica-only settings do not apply to a one-off container.
        let mut single = svc.clone();
        single.container_name = None;
        single.scale = Some(1);
        if let Some(d) = &mut single.deploy {
            d.replicas = Some(1);
        }
        let mut plan = desired::container_plan(
            &ctx,
            &opts.service,
            &single,
            1,
            &config.image_id,
            &config.hash,
        )
        .map_err(|source| StackError::Desired {
            service: opts.service.clone(),
            source,
        })?;
        apply(&mut plan.options, opts);
        run.prepare_mounts(&opts.service, &plan)?;
        match blocking_run(&self.containers, plan.options).await {
            Ok(created) => Ok(created),
            Err(e) => {
                let _ = std::fs::remove_dir_all(files_dir.join(&opts.name));
                Err(e)
            }
        }
    }
}

/// The command line's overrides on the service's run options.
fn apply(o: &mut crate::containers::RunOptions, opts: &OneOffOptions) {
    o.name = Some(opts.name.clone());
    o.labels
        .insert(labels::ONEOFF.to_owned(), "True".to_owned());
    for (k, v) in &opts.labels {
        o.labels.insert(k.clone(), v.clone());
    }
    o.restart = RestartPolicy::No;
    if !opts.service_ports {
        o.publish.clear();
    }
    o.publish.extend(opts.publish.iter().cloned());
    if let Some(ep) = &opts.entrypoint {
        // A new entrypoint drops the service's command, as Docker does with the image's.
        o.entrypoint = Some(ep.clone());
        o.command.clear();
    }
    if let Some(cmd) = &opts.command {
        o.command = cmd.clone();
    }
    for kv in &opts.env {
        let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
        o.env
            .retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        o.env.push(kv.clone());
    }
    if opts.user.is_some() {
        o.user = opts.user.clone();
    }
    if opts.workdir.is_some() {
        o.workdir = opts.workdir.clone();
    }
    o.auto_remove = opts.auto_remove;
    o.console_socket = opts.console_socket.clone();
    o.stdin_socket = opts.stdin_socket.clone();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::RunOptions;

    #[test]
    fn overrides_replace_the_service_settings_as_compose_run_does() {
        let mut o = RunOptions {
            command: vec!["httpd".into()],
            env: vec!["A=1".into(), "B=2".into()],
            publish: vec!["8080:80".into()],
            restart: RestartPolicy::Always,
            ..RunOptions::default()
        };
        let opts = OneOffOptions {
            service: "web".into(),
            name: "p-web-run-1a2b".into(),
            command: Some(vec!["echo".into(), "hi".into()]),
            env: vec!["B=3".into()],
            publish: vec!["9090:90".into()],
            user: Some("1000".into()),
            ..OneOffOptions::default()
        };
        apply(&mut o, &opts);
        assert_eq!(o.name.as_deref(), Some("p-web-run-1a2b"));
        assert_eq!(o.labels[labels::ONEOFF], "True");
        assert_eq!(o.restart, RestartPolicy::No);
        assert_eq!(o.publish, vec!["9090:90".to_owned()]);
        assert_eq!(o.command, vec!["echo".to_owned(), "hi".to_owned()]);
        assert_eq!(o.env, vec!["A=1".to_owned(), "B=3".to_owned()]);
        assert_eq!(o.user.as_deref(), Some("1000"));

        let mut o = RunOptions {
            command: vec!["httpd".into()],
            publish: vec!["8080:80".into()],
            ..RunOptions::default()
        };
        apply(
            &mut o,
            &OneOffOptions {
                entrypoint: Some("sh".into()),
                service_ports: true,
                ..OneOffOptions::default()
            },
        );
        assert_eq!(o.entrypoint.as_deref(), Some("sh"));
        assert!(o.command.is_empty());
        assert_eq!(o.publish, vec!["8080:80".to_owned()]);
    }
}
