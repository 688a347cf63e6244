//! The lifecycle commands on a stack's containers: `start` (dependencies first), `stop`
//! (dependents first), `restart`, `kill`, `rm`, `pause` and `unpause`.

use std::time::Duration;

use super::execute;
use super::{Progress, ProgressSink, StackContainer, StackError, Stacks, Status};
use crate::containers::ContainersError;

impl Stacks {
    fn select(
        &self,
        project: &str,
        services: &[String],
    ) -> Result<Vec<StackContainer>, StackError> {
        let all = self.ps(project)?;
        if all.is_empty() && self.get(project)?.is_none() {
            return Err(StackError::NoSuchStack(project.to_owned()));
        }
        for s in services {
            if !all.iter().any(|c| &c.service == s) {
                return Err(StackError::NoSuchService(s.clone()));
            }
        }
        Ok(all
            .into_iter()
            .filter(|c| services.is_empty() || services.contains(&c.service))
            .collect())
    }

    /// `stop [SERVICE…]`: dependents first.
    pub async fn stop(
        &self,
        project: &str,
        services: &[String],
        timeout: Option<Duration>,
        progress: &ProgressSink,
    ) -> Result<(), StackError> {
        let mut list = self.select(project, services)?;
        execute::order_by_dependencies(&mut list, true);
        for c in list.iter().filter(|c| c.info.is_running()) {
            let grace = timeout
                .or(c.info.doc.stop_timeout.map(Duration::from_secs))
                .unwrap_or(Duration::from_secs(10));
            progress.send(Progress::container(
                &c.service,
                &c.info.doc.name,
                Status::Stopping,
            ));
            execute::blocking_stop(&self.containers, &c.info.doc.id, grace).await?;
            progress.send(Progress::container(
                &c.service,
                &c.info.doc.name,
                Status::Stopped,
            ));
        }
        Ok(())
    }

    /// `start [SERVICE…]`: dependencies first.
    pub async fn start(
        &self,
        project: &str,
        services: &[String],
        progress: &ProgressSink,
    ) -> Result<(), StackError> {
        let mut list = self.select(project, services)?;
        execute::order_by_dependencies(&mut list, false);
        for c in list.iter().filter(|c| !c.info.is_running()) {
            progress.send(Progress::container(
                &c.service,
                &c.info.doc.name,
                Status::Starting,
            ));
            execute::blocking_start(&self.containers, &c.info.doc.id).await?;
            super::hooks::post_start_recorded(&self.containers, &c.service, &c.info.doc.id).await?;
            progress.send(Progress::container(
                &c.service,
                &c.info.doc.name,
                Status::Started,
            ));
        }
        Ok(())
    }

    /// `restart [SERVICE…]`: stop then start.
    pub async fn restart(
        &self,
        project: &str,
        services: &[String],
        timeout: Option<Duration>,
        progress: &ProgressSink,
    ) -> Result<(), StackError> {
        self.stop(project, services, timeout, progress).await?;
        self.start(project, services, progress).await
    }

    /// `kill [-s SIGNAL] [SERVICE…]`: signals the running containers.
    pub fn kill(
        &self,
        project: &str,
        services: &[String],
        signal: berth_runtime::Signal,
        progress: &ProgressSink,
    ) -> Result<(), StackError> {
        for c in self.select(project, services)? {
            if c.info.is_running() {
                self.containers.kill(&c.info.doc.id, signal)?;
                progress.send(
                    Progress::container(&c.service, &c.info.doc.name, Status::Stopping)
                        .detail(format!("sent {signal}")),
                );
            }
        }
        Ok(())
    }

    /// `rm [-f] [SERVICE…]`: removes stopped containers (running ones too with `force`).
    pub async fn remove(
        &self,
        project: &str,
        services: &[String],
        force: bool,
        progress: &ProgressSink,
    ) -> Result<usize, StackError> {
        let mut n = 0;
        for c in self.select(project, services)? {
            if c.info.is_running() && !force {
                continue;
            }
            progress.send(Progress::container(
                &c.service,
                &c.info.doc.name,
                Status::Removing,
            ));
            execute::blocking_remove(&self.containers, &c.info.doc.id).await?;
            let _ = std::fs::remove_dir_all(self.files_dir(project).join(&c.info.doc.name));
            progress.send(Progress::container(
                &c.service,
                &c.info.doc.name,
                Status::Removed,
            ));
            n += 1;
        }
        Ok(n)
    }

    /// `pause` (`resume: false`) or `unpause` (`true`) the running containers.
    pub fn pause(
        &self,
        project: &str,
        services: &[String],
        resume: bool,
        progress: &ProgressSink,
    ) -> Result<(), StackError> {
        for c in self.select(project, services)? {
            if !c.info.is_running() {
                continue;
            }
            let rt = self
                .containers
                .runtime()
                .load(crate::containers::runtime_id(&c.info.doc.id))
                .map_err(ContainersError::from)?;
            if resume {
                rt.resume().map_err(ContainersError::from)?;
            } else {
                rt.pause().map_err(ContainersError::from)?;
            }
            progress.send(Progress::container(
                &c.service,
                &c.info.doc.name,
                if resume {
                    Status::Unpaused
                } else {
                    Status::Paused
                },
            ));
        }
        Ok(())
    }
}
