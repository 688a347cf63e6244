//! Create, start, stop, signal, wait for and remove containers.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use berth_runtime::cgroups::Stats;
use berth_runtime::top::ProcessInfo;
use berth_runtime::{
    Container, ContainerRequest, ExitStatus, LogConfig, Rootfs, RuntimeError, Signal, Status, Stdio,
};

use super::network::{self, EtcFiles, EtcSources, NetworkMode};
use super::{
    ContainerDoc, ContainerInfo, Containers, ContainersError, HealthCheck, RunOptions, names, ports,
};
use crate::events::{Event, EventType};

/// What [`Containers::run`] created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The id.
    pub id: String,
    /// The name.
    pub name: String,
    /// Warnings of the runtime (clamped limits…).
    pub warnings: Vec<String>,
}

fn write_file(path: &Path, text: &str) -> Result<(), ContainersError> {
    std::fs::write(path, text).map_err(ContainersError::io("write", path))
}

impl Containers {
    /// `docker run -d`: creates and starts a container; returns once its process runs.
    /// On failure nothing of it remains.
    pub async fn run(&self, opts: &RunOptions) -> Result<Created, ContainersError> {
        self.create_or_run(opts, true).await
    }

    /// `docker create`: sets the container up (namespaces, root file system, network, its
    /// document) with its process waiting for [`Containers::start`]. On failure nothing of
    /// it remains.
    pub async fn create(&self, opts: &RunOptions) -> Result<Created, ContainersError> {
        self.create_or_run(opts, false).await
    }

    async fn create_or_run(
        &self,
        opts: &RunOptions,
        start: bool,
    ) -> Result<Created, ContainersError> {
        let image = self.resolve_image(&opts.image)?;
        let store = self.engine.store();
        let docs = store.list::<ContainerDoc>()?;
        let id = names::new_id()?;
        let name = match &opts.name {
            Some(n) => {
                names::validate(n)?;
                if let Some((_, d)) = docs.iter().find(|(_, d)| &d.name == n) {
                    return Err(ContainersError::NameInUse {
                        name: n.clone(),
                        id: d.id.clone(),
                    });
                }
                n.clone()
            }
            None => names::generate(&id, |n| docs.iter().any(|(_, d)| d.name == n)),
        };
        let mappings = opts
            .publish
            .iter()
            .map(|p| ports::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        let hostname = match (&opts.hostname, &opts.network) {
            (Some(h), _) => h.clone(),
            (None, NetworkMode::Host) => std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| id[..12].to_owned()),
            (None, _) => id[..12].to_owned(),
        };
        let config = &image.config().config;
        let dir = self.dir(&id);
        let host_network = opts.network == NetworkMode::Host;
        let mut spec = super::spec::build(config, opts, &hostname, host_network, &dir)?;
        super::limits::apply(&mut spec, &opts.limits)?;
        let (upper, work) = (dir.join("upper"), dir.join("work"));
        for d in [&upper, &work] {
            std::fs::create_dir_all(d).map_err(ContainersError::io("create directory", d))?;
        }
        for file in super::spec::ETC_FILES {
            write_file(&dir.join(file), "")?;
        }
        let log_path = dir.join(format!("{id}-json.log"));
        let doc = ContainerDoc {
            id: id.clone(),
            name: name.clone(),
            image: opts.image.clone(),
            image_id: image.id.to_string(),
            command: super::spec::command(config, opts)?,
            created: berth_runtime::clock::now_rfc3339(),
            hostname,
            network: opts.network.clone(),
            publish: opts.publish.clone(),
            ports: Vec::new(),
            ip: None,
            stop_signal: opts
                .stop_signal
                .clone()
                .or_else(|| config.stop_signal.clone())
                .unwrap_or_else(|| "SIGTERM".to_owned()),
            auto_remove: opts.auto_remove,
            log_path: log_path.clone(),
            labels: opts.labels.clone(),
            restart: opts.restart,
            healthcheck: if opts.no_healthcheck {
                None
            } else {
                let image = || {
                    config
                        .healthcheck
                        .as_ref()
                        .and_then(crate::supervise::health::from_image)
                };
                match &opts.healthcheck {
                    // Timings without a test: the image's test with these timings.
                    Some(h) if h.test.is_empty() => image().map(|i| HealthCheck {
                        test: i.test,
                        ..h.clone()
                    }),
                    Some(h) => Some(h.clone()),
                    None => image(),
                }
            },
            stop_timeout: opts.stop_timeout,
            network_settings: opts.network_settings.clone(),
            more_networks: opts.more_networks.clone(),
            mounts: opts.mounts.clone(),
            dns: opts.dns.clone(),
            dns_search: opts.dns_search.clone(),
            dns_options: opts.dns_options.clone(),
            extra_hosts: opts.extra_hosts.clone(),
        };
        let request = ContainerRequest {
            id: super::runtime_id(&id).to_owned(),
            spec,
            rootfs: Rootfs::Overlay {
                lowerdirs: image.snapshots(),
                upper,
                work,
            },
            stdio: match (&opts.console_socket, &opts.stdin_socket) {
                (Some(socket), _) => Stdio::Tty {
                    console_socket: socket.clone(),
                },
                (None, Some(stdin)) => Stdio::LogsWithInput {
                    logs: LogConfig {
                        path: log_path,
                        max_size: None,
                        max_files: 1,
                    },
                    stdin_socket: stdin.clone(),
                },
                (None, None) => Stdio::Logs(LogConfig {
                    path: log_path,
                    max_size: None,
                    max_files: 1,
                }),
            },
            netns: None,
            user: super::spec::user(config, opts),
            init: opts.init,
        };
        let result = self.create_and_start(request, doc, &mappings, start).await;
        match result {
            Ok((doc, warnings)) => {
                let action = if start { "start" } else { "create" };
                let _ = self.engine.emit(
                    Event::now(EventType::Container, action, &doc.id)
                        .with("name", &doc.name)
                        .with("image", &doc.image),
                );
                Ok(Created {
                    id: doc.id,
                    name: doc.name,
                    warnings,
                })
            }
            Err(e) => {
                let undo = self.destroy(&id, &opts.network).await;
                std::fs::remove_dir_all(&dir).ok();
                match undo {
                    Ok(()) => Err(e),
                    Err(cleanup) => Err(ContainersError::Cleanup {
                        cause: Box::new(e),
                        cleanup: Box::new(cleanup),
                    }),
                }
            }
        }
    }

    /// Creates the runtime container, wires its network, records it and (`start`) starts it.
    async fn create_and_start(
        &self,
        request: ContainerRequest,
        mut doc: ContainerDoc,
        mappings: &[berth_net::PortMapping],
        start: bool,
    ) -> Result<(ContainerDoc, Vec<String>), ContainersError> {
        let container = self.runtime.create(request)?;
        self.wire(&container, &mut doc, mappings).await?;
        self.engine.store().put(&doc.id, &doc)?;
        if start {
            container.start()?;
        }
        Ok((doc, container.warnings().to_vec()))
    }

    /// Attaches the created container's namespace to its networks (`eth0`, `eth1`, …),
    /// publishes its ports and writes its `/etc` files (bind-mounted from its directory).
    async fn wire(
        &self,
        container: &Container,
        doc: &mut ContainerDoc,
        mappings: &[berth_net::PortMapping],
    ) -> Result<(), ContainersError> {
        let pid = container
            .state()?
            .pid
            .ok_or_else(|| RuntimeError::MonitorGone { id: doc.id.clone() })?;
        let mut sources = EtcSources {
            host_resolv: std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            ..EtcSources::default()
        };
        doc.ports.clear();
        doc.ip = None;
        let wanted = network::attachments(doc);
        if !wanted.is_empty() {
            let net = self.net().await?;
            for (n, settings) in wanted.iter().enumerate() {
                let ifname = format!("eth{n}");
                let a = network::attach(&net, settings, &doc.id, &doc.name, &ifname, pid).await?;
                sources.addresses.push(IpAddr::V4(a.ip));
                if n == 0 {
                    doc.ip = Some(a.ip.to_string());
                }
                if sources.embedded_dns.is_none() && settings.network != network::DEFAULT_NETWORK {
                    let gateway = net.inspect(&settings.network).await?.gateway;
                    sources.embedded_dns = Some(IpAddr::V4(gateway));
                }
            }
            if !mappings.is_empty() {
                doc.ports = net.publish(&doc.id, mappings).await?;
            }
        }
        if doc.network == NetworkMode::Host {
            sources.host_hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        }
        let files = EtcFiles::new(doc, &sources);
        // Rewritten in place (same inode), so the container's bind mounts see the content.
        let dir = self.dir(&doc.id);
        write_file(&dir.join("hosts"), &files.hosts)?;
        write_file(&dir.join("resolv.conf"), &files.resolv_conf)?;
        write_file(&dir.join("hostname"), &files.hostname)?;
        Ok(())
    }

    /// Removes the runtime container (killing it) and its network wiring; keeps the
    /// container's directory and document.
    async fn destroy(&self, id: &str, mode: &NetworkMode) -> Result<(), ContainersError> {
        let runtime = match self.runtime.load(super::runtime_id(id)) {
            Ok(c) => c.delete(true).map_err(ContainersError::from),
            Err(RuntimeError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        };
        let net = match mode {
            NetworkMode::Bridge(_) => match self.net().await {
                Ok(net) => network::release(&net, id)
                    .await
                    .map_err(ContainersError::from),
                Err(e) => Err(e),
            },
            _ => Ok(()),
        };
        runtime.and(net)
    }

    /// `docker start`: runs a created or exited container again (same file system, new
    /// process, network wired again). A running container is left alone.
    pub async fn start(&self, key: &str) -> Result<ContainerInfo, ContainersError> {
        let info = self.find(key)?;
        if info.is_running() {
            return Ok(info);
        }
        let mut doc = info.doc;
        crate::supervise::record::clear_stopped_by_user(&self.dir(&doc.id))?;
        let container = self.runtime.load(super::runtime_id(&doc.id))?;
        if container.state()?.status == Status::Created {
            container.start()?;
        } else {
            let mut request = container.launch_config()?.request;
            // The terminal or input of a `run -t`/`-i` went with its client: log the output
            // from now on, with no input.
            if let Stdio::Tty { .. } | Stdio::LogsWithInput { .. } = request.stdio {
                request.stdio = Stdio::Logs(LogConfig {
                    path: doc.log_path.clone(),
                    max_size: None,
                    max_files: 1,
                });
            }
            self.destroy(&doc.id, &doc.network).await?;
            let mappings = doc
                .publish
                .iter()
                .map(|p| ports::parse(p))
                .collect::<Result<Vec<_>, _>>()?;
            let container = self.runtime.create(request)?;
            let wired = self.wire(&container, &mut doc, &mappings).await;
            let started = wired.and_then(|()| {
                self.engine.store().put(&doc.id, &doc)?;
                Ok(container.start()?)
            });
            if let Err(e) = started {
                self.destroy(&doc.id, &doc.network).await.ok();
                return Err(e);
            }
        }
        let _ = self
            .engine
            .emit(Event::now(EventType::Container, "start", &doc.id).with("name", &doc.name));
        Ok(self.info(doc))
    }

    /// `docker stop -t`: the image's stop signal, then `SIGKILL` after `grace`; the network
    /// is released once the process has gone.
    pub async fn stop(&self, key: &str, grace: Duration) -> Result<ExitStatus, ContainersError> {
        let (status, doc) = self.end_process(key, grace, false)?;
        self.release_network(&doc).await?;
        let _ = self
            .engine
            .emit(Event::now(EventType::Container, "stop", &doc.id).with("name", &doc.name));
        Ok(status)
    }

    /// [`Containers::stop`] for a container about to be removed: it is marked as being
    /// removed first (the supervisor neither restarts it nor rewrites its document), and its
    /// network is left to [`Containers::remove`], which releases it anyway.
    pub fn halt(&self, key: &str, grace: Duration) -> Result<ExitStatus, ContainersError> {
        let (status, doc) = self.end_process(key, grace, true)?;
        // The supervisor leaves a container being removed alone: the `die` event is ours.
        let _ = self.engine.emit(
            Event::now(EventType::Container, "die", &doc.id)
                .with("name", &doc.name)
                .with("image", &doc.image)
                .with("exitCode", status.code.to_string()),
        );
        let _ = self
            .engine
            .emit(Event::now(EventType::Container, "stop", &doc.id).with("name", &doc.name));
        Ok(status)
    }

    /// The stop signal, then `SIGKILL` after `grace`; returns once the process is gone.
    /// `removing`: mark the container as being removed before the signal.
    fn end_process(
        &self,
        key: &str,
        grace: Duration,
        removing: bool,
    ) -> Result<(ExitStatus, ContainerDoc), ContainersError> {
        let info = self.find(key)?;
        let doc = &info.doc;
        if removing {
            crate::supervise::record::mark_removing(&self.dir(&doc.id))?;
        }
        let container = self.runtime.load(super::runtime_id(&doc.id))?;
        // A frozen process cannot act on its stop signal: thaw it first, as Docker does.
        if info.state.as_ref().map(|s| s.status) == Some(Status::Paused) {
            container.resume()?;
        }
        let signal = parse_signal(&doc.stop_signal).unwrap_or(Signal::SIGTERM);
        // Before the signal: the supervisor must see the exit as the user's doing.
        crate::supervise::record::mark_stopped_by_user(&self.dir(&doc.id))?;
        let status = match container.kill(signal) {
            Ok(()) => match container.wait_timeout(Some(grace.max(Duration::from_millis(1))))? {
                Some(s) => s,
                None => {
                    match container.kill(Signal::SIGKILL) {
                        Ok(()) | Err(RuntimeError::WrongStatus { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                    container.wait()?
                }
            },
            Err(RuntimeError::WrongStatus { .. } | RuntimeError::MonitorGone { .. }) => {
                container.wait()?
            }
            Err(e) => return Err(e.into()),
        };
        Ok((status, info.doc))
    }

    /// Unpublishes and detaches an exited container (its namespace is gone with its process)
    /// and records that it has no address or ports any more.
    pub async fn release_network(&self, doc: &ContainerDoc) -> Result<(), ContainersError> {
        if let NetworkMode::Bridge(_) = doc.network {
            network::release(&*self.net().await?, &doc.id).await?;
        }
        // A container being removed loses its document next: no need to rewrite it (a
        // durable write costs two fsyncs, and `down` would pay them for every container).
        let removing = crate::supervise::record::removing(&self.dir(&doc.id));
        if (doc.ip.is_some() || !doc.ports.is_empty()) && !removing {
            // The stored document as it is now, if the container was not removed meanwhile
            // (the supervisor releases an exited container's network while `rm` may run).
            let _docs = self.docs.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(current) = self.engine.store().get::<ContainerDoc>(&doc.id)? {
                let cleared = ContainerDoc {
                    ip: None,
                    ports: Vec::new(),
                    ..current
                };
                self.engine.store().put(&doc.id, &cleared)?;
            }
        }
        Ok(())
    }

    /// `docker kill -s`.
    pub fn kill(&self, key: &str, signal: Signal) -> Result<String, ContainersError> {
        let info = self.find(key)?;
        if !info.is_running() {
            return Err(ContainersError::NotRunning(info.doc.name));
        }
        // Signals meant to end the container count as a user's stop (no restart follows).
        let stop_signal = parse_signal(&info.doc.stop_signal);
        if matches!(
            signal,
            Signal::SIGKILL | Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT
        ) || Some(signal) == stop_signal
        {
            crate::supervise::record::mark_stopped_by_user(&self.dir(&info.doc.id))?;
        }
        self.runtime
            .load(super::runtime_id(&info.doc.id))?
            .kill(signal)?;
        Ok(info.doc.id)
    }

    /// `docker wait`: blocks until the container's process has exited.
    pub fn wait(&self, key: &str) -> Result<ExitStatus, ContainersError> {
        let info = self.find(key)?;
        Ok(self.runtime.load(super::runtime_id(&info.doc.id))?.wait()?)
    }

    /// `docker rm [-f]`: deletes the runtime container, its network wiring, its directory
    /// (upper layer, logs) and its document.
    pub async fn remove(&self, key: &str, force: bool) -> Result<String, ContainersError> {
        let info = self.find(key)?;
        if info.is_running() && !force {
            return Err(ContainersError::Running(info.doc.name));
        }
        let doc = info.doc;
        // The supervisor then neither restarts it nor writes next to it any more.
        crate::supervise::record::mark_removing(&self.dir(&doc.id))?;
        self.destroy(&doc.id, &doc.network).await?;
        // Writers reach the directory by path (the supervisor's record and markers, health
        // results, `stop` racing with `rm`): one that creates a file while
        // `remove_dir_all` empties it made the final rmdir fail with "Directory not empty".
        // Renamed first, the directory is out of every writer's reach before it is emptied
        // (a later write by path fails with ENOENT); a crash in between leaves a dotted
        // directory without a document, which the next daemon's adoption removes.
        let dir = self.dir(&doc.id);
        let doomed = dir.with_file_name(format!(".{}.removing", doc.id));
        match std::fs::rename(&dir, &doomed) {
            Ok(()) => match std::fs::remove_dir_all(&doomed) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ContainersError::io("remove", &doomed)(e)),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ContainersError::io("rename for removal", &dir)(e)),
        }
        {
            let _docs = self.docs.lock().unwrap_or_else(|p| p.into_inner());
            self.engine.store().delete::<ContainerDoc>(&doc.id)?;
        }
        let _ = self
            .engine
            .emit(Event::now(EventType::Container, "destroy", &doc.id).with("name", &doc.name));
        Ok(doc.id)
    }
}

impl Containers {
    fn running(&self, key: &str) -> Result<(ContainerInfo, Container), ContainersError> {
        let info = self.find(key)?;
        if !info.is_running() {
            return Err(ContainersError::NotRunning(info.doc.name));
        }
        let container = self.runtime.load(super::runtime_id(&info.doc.id))?;
        Ok((info, container))
    }

    /// `docker pause`: freezes every process of a running container.
    pub fn pause(&self, key: &str) -> Result<ContainerInfo, ContainersError> {
        let (info, container) = self.running(key)?;
        container.pause()?;
        let _ = self.engine.emit(
            Event::now(EventType::Container, "pause", &info.doc.id).with("name", &info.doc.name),
        );
        Ok(info)
    }

    /// `docker unpause`: thaws a paused container.
    pub fn unpause(&self, key: &str) -> Result<ContainerInfo, ContainersError> {
        let (info, container) = self.running(key)?;
        container.resume()?;
        let _ = self.engine.emit(
            Event::now(EventType::Container, "unpause", &info.doc.id).with("name", &info.doc.name),
        );
        Ok(info)
    }

    /// `docker restart -t`: stops the container when it runs, then starts it again.
    pub async fn restart(
        &self,
        key: &str,
        grace: Duration,
    ) -> Result<ContainerInfo, ContainersError> {
        let info = self.find(key)?;
        if info.is_running() {
            self.stop(&info.doc.id, grace).await?;
        }
        self.start(&info.doc.id).await
    }

    /// `docker top`: the processes of a running container.
    pub fn top(&self, key: &str) -> Result<Vec<ProcessInfo>, ContainersError> {
        let (_, container) = self.running(key)?;
        Ok(container.top()?)
    }

    /// `docker stats --no-stream`: a running container's cgroup counters now.
    pub fn stats(&self, key: &str) -> Result<Stats, ContainersError> {
        let (_, container) = self.running(key)?;
        Ok(container.stats()?)
    }
}

/// `TERM`, `SIGTERM`, `term` or `15`.
pub fn parse_signal(s: &str) -> Option<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).ok();
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_and_number() {
        assert_eq!(parse_signal("SIGQUIT"), Some(Signal::SIGQUIT));
        assert_eq!(parse_signal("hup"), Some(Signal::SIGHUP));
        assert_eq!(parse_signal("9"), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("nope"), None);
    }
}
