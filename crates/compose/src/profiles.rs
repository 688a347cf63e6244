//! Profiles: services with `profiles` are enabled only when one of them is active
//! (`--profile`, `COMPOSE_PROFILES`; `*` activates all). Services without profiles are
//! always enabled. Naming a service explicitly enables it and, through `depends_on`,
//! what it needs.

use crate::diagnostic::Diagnostic;
use crate::model::Project;

/// Problems selecting services.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// A service named on the command line that the stack does not define.
    #[error("no such service: {0}")]
    NoSuchService(String),
}

/// Moves services whose profiles are all inactive to `disabled_services`.
pub fn apply(project: &mut Project, active: &[String]) {
    let all = active.iter().any(|p| p == "*");
    let services = std::mem::take(&mut project.services);
    for (name, svc) in services {
        let enabled =
            all || svc.profiles.is_empty() || svc.profiles.iter().any(|p| active.contains(p));
        if enabled {
            project.services.insert(name, svc);
        } else {
            project.disabled_services.insert(name, svc);
        }
    }
}

impl Project {
    /// Enables the named services (even if their profiles are inactive) and, transitively,
    /// the disabled services they depend on. Unknown names are an error.
    pub fn enable_services(&mut self, names: &[String]) -> Result<(), Diagnostic> {
        let mut todo: Vec<String> = names.to_vec();
        while let Some(name) = todo.pop() {
            if self.services.contains_key(&name) {
                continue;
            }
            let Some(svc) = self.disabled_services.shift_remove(&name) else {
                return Err(Diagnostic::new(ProfileError::NoSuchService(name)));
            };
            todo.extend(svc.depends_on.keys().cloned());
            self.services.insert(name, svc);
        }
        self.services.sort_keys();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DependsOn, Service};

    fn project() -> Project {
        let mut p = Project::default();
        p.services.insert("foo".into(), Service::default());
        let bar = Service {
            profiles: vec!["test".into()],
            ..Service::default()
        };
        p.services.insert("bar".into(), bar);
        let mut zot = Service {
            profiles: vec!["debug".into()],
            ..Service::default()
        };
        zot.depends_on.insert(
            "bar".into(),
            DependsOn {
                condition: "service_started".into(),
                restart: false,
                required: true,
            },
        );
        p.services.insert("zot".into(), zot);
        p
    }

    #[test]
    fn profiles_select_services() {
        let mut p = project();
        apply(&mut p, &[]);
        assert_eq!(p.services.keys().collect::<Vec<_>>(), vec!["foo"]);
        let mut p = project();
        apply(&mut p, &["test".into()]);
        assert_eq!(p.services.keys().collect::<Vec<_>>(), vec!["foo", "bar"]);
        let mut p = project();
        apply(&mut p, &["*".into()]);
        assert_eq!(p.services.len(), 3);
    }

    #[test]
    fn explicit_service_pulls_dependencies() {
        let mut p = project();
        apply(&mut p, &[]);
        p.enable_services(&["zot".into()]).unwrap();
        assert_eq!(
            p.services.keys().collect::<Vec<_>>(),
            vec!["bar", "foo", "zot"]
        );
        assert!(p.enable_services(&["nope".into()]).is_err());
    }
}
