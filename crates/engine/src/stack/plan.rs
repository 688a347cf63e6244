//! Desired services + observed containers → what to do to each container (pure).
//!
//! Rules, as Docker Compose v2: a container whose config-hash label differs from the
//! service's hash, or whose image id differs from the image's current id, is recreated
//! (`--force-recreate`: all are; `--no-recreate`: none is); missing replicas are created,
//! surplus ones removed (highest numbers first); stopped ones are started. A service whose
//! dependency is recreated and that asks for it (`depends_on.<dep>.restart: true`) is
//! restarted. Containers of services the stack no longer has are orphans.
//!
//! The services form a graph ([`petgraph`]) with an edge from each dependency to its
//! dependent; the executor walks it. [`Plan`] prints one line per action.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use berth_compose::model::DependsOn;
use petgraph::graph::{DiGraph, NodeIndex};

/// A container of the stack as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedContainer {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Its service label.
    pub service: String,
    /// Its replica number label.
    pub number: u64,
    /// Its config-hash label.
    pub hash: String,
    /// Its image id.
    pub image_id: String,
    /// Whether its process runs.
    pub running: bool,
    /// A one-shot that is done: exited 0 with no restart policy that would run it again.
    /// `up` leaves it alone, as a dependency `service_completed_successfully` wants.
    pub completed: bool,
    /// The extra replica of a start-first update (`<name>-next`); one seen by the planner
    /// was left by an interrupted `up`.
    pub surge: bool,
}

/// A service as the stack file wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredService {
    /// Name.
    pub name: String,
    /// Replicas.
    pub replicas: u64,
    /// Config hash.
    pub hash: String,
    /// Per-field hashes.
    pub fields: BTreeMap<String, String>,
    /// The id of its image now.
    pub image_id: String,
    /// Its dependencies.
    pub depends_on: Vec<(String, DependsOn)>,
}

/// Why something is done to a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// It does not exist yet.
    NotFound,
    /// The service's configuration changed in these fields (empty: unknown which).
    ConfigChanged(Vec<String>),
    /// Its image has a new id.
    ImageChanged,
    /// A dependency it restarts with was recreated.
    DependencyRecreated(String),
    /// `--force-recreate`.
    Forced,
    /// It is not running.
    Stopped,
    /// More replicas than wanted.
    ScaleDown,
    /// Its service is no longer in the stack.
    Orphan,
    /// A failed update is rolled back.
    Rollback,
    /// The extra replica of an update that was cut short.
    Interrupted,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::NotFound => f.write_str("not found"),
            Cause::ConfigChanged(fields) if fields.is_empty() => {
                f.write_str("configuration changed")
            }
            Cause::ConfigChanged(fields) => write!(f, "{} changed", fields.join(", ")),
            Cause::ImageChanged => f.write_str("image updated"),
            Cause::DependencyRecreated(d) => write!(f, "dependency {d} recreated"),
            Cause::Forced => f.write_str("--force-recreate"),
            Cause::Stopped => f.write_str("not running"),
            Cause::ScaleDown => f.write_str("scaled down"),
            Cause::Orphan => f.write_str("orphan"),
            Cause::Rollback => f.write_str("update rolled back"),
            Cause::Interrupted => f.write_str("left by an interrupted update"),
        }
    }
}

/// What happens to one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create replica `number` and start it.
    Create {
        /// Replica number.
        number: u64,
        /// Why.
        cause: Cause,
    },
    /// Remove the container and create replica `number` again.
    Recreate {
        /// Replica number.
        number: u64,
        /// The old container.
        old: ObservedContainer,
        /// Why.
        cause: Cause,
    },
    /// Start the stopped container.
    Start(ObservedContainer),
    /// Stop and start it.
    Restart {
        /// The container.
        container: ObservedContainer,
        /// Why.
        cause: Cause,
    },
    /// Leave it as it is.
    Keep(ObservedContainer),
    /// Stop and remove it.
    Remove {
        /// The container.
        container: ObservedContainer,
        /// Why.
        cause: Cause,
    },
}

/// What to do, per service, and in which order.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Services (nodes); an edge goes from a dependency to its dependent, weighted with
    /// the dependency's settings.
    pub graph: DiGraph<String, DependsOn>,
    /// Node of each service.
    pub nodes: BTreeMap<String, NodeIndex>,
    /// Actions per service, for the services being converged.
    pub actions: BTreeMap<String, Vec<Action>>,
    /// Containers of services the stack no longer has.
    pub orphans: Vec<ObservedContainer>,
}

impl Plan {
    /// Whether nothing would change.
    pub fn is_noop(&self) -> bool {
        self.actions
            .values()
            .flatten()
            .all(|a| matches!(a, Action::Keep(_)))
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (service, actions) in &self.actions {
            for a in actions {
                match a {
                    Action::Create { number, cause } => {
                        writeln!(f, "{service}#{number} create ({cause})")?
                    }
                    Action::Recreate { number, cause, .. } => {
                        writeln!(f, "{service}#{number} recreate ({cause})")?
                    }
                    Action::Start(c) => writeln!(f, "{service}#{} start", c.number)?,
                    Action::Restart { container, cause } => {
                        writeln!(f, "{service}#{} restart ({cause})", container.number)?
                    }
                    Action::Keep(c) => writeln!(f, "{service}#{} keep", c.number)?,
                    Action::Remove { container, cause } => {
                        writeln!(f, "{service}#{} remove ({cause})", container.number)?
                    }
                }
            }
        }
        for o in &self.orphans {
            writeln!(f, "{} orphan ({})", o.name, o.service)?;
        }
        Ok(())
    }
}

/// Options of the planner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Recreate every container.
    pub force_recreate: bool,
    /// Recreate none (start stopped ones).
    pub no_recreate: bool,
    /// Converge only these services (`None`: all).
    pub selected: Option<BTreeSet<String>>,
}

/// A dependency cycle or a dependency on a service that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Services depend on each other in a circle.
    #[error("dependency cycle involving service {0:?}")]
    Cycle(String),
}

/// The service graph and the node of each service.
pub type ServiceGraph = (DiGraph<String, DependsOn>, BTreeMap<String, NodeIndex>);

/// Builds the service graph of `desired` (dependencies not in `desired` are left out).
pub fn graph(desired: &[DesiredService]) -> Result<ServiceGraph, PlanError> {
    let mut g = DiGraph::new();
    let mut nodes = BTreeMap::new();
    for s in desired {
        nodes.insert(s.name.clone(), g.add_node(s.name.clone()));
    }
    for s in desired {
        for (dep, opts) in &s.depends_on {
            if let Some(&from) = nodes.get(dep) {
                g.add_edge(from, nodes[&s.name], opts.clone());
            }
        }
    }
    if let Err(cycle) = petgraph::algo::toposort(&g, None) {
        return Err(PlanError::Cycle(g[cycle.node_id()].clone()));
    }
    Ok((g, nodes))
}

/// The plan: `previous` holds the per-field hashes recorded at the last `up`, to name
/// what changed.
pub fn plan(
    desired: &[DesiredService],
    observed: &[ObservedContainer],
    previous: &BTreeMap<String, BTreeMap<String, String>>,
    opts: &PlanOptions,
) -> Result<Plan, PlanError> {
    let (graph, nodes) = graph(desired)?;
    let order = petgraph::algo::toposort(&graph, None)
        .map_err(|c| PlanError::Cycle(graph[c.node_id()].clone()))?;
    let by_name: BTreeMap<&str, &DesiredService> =
        desired.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut actions: BTreeMap<String, Vec<Action>> = BTreeMap::new();
    // Services whose containers are recreated or restarted, for `restart: true`.
    let mut renewed: BTreeSet<String> = BTreeSet::new();
    for node in order {
        let name = &graph[node];
        let svc = by_name[name.as_str()];
        if opts.selected.as_ref().is_some_and(|s| !s.contains(name)) {
            continue;
        }
        let mut mine: Vec<&ObservedContainer> = observed
            .iter()
            .filter(|c| &c.service == name && !c.surge)
            .collect();
        mine.sort_by_key(|c| c.number);
        let restart_for = svc
            .depends_on
            .iter()
            .find(|(d, o)| o.restart && renewed.contains(d))
            .map(|(d, _)| d.clone());
        let mut list = Vec::new();
        for number in 1..=svc.replicas {
            let Some(c) = mine.iter().find(|c| c.number == number) else {
                list.push(Action::Create {
                    number,
                    cause: Cause::NotFound,
                });
                continue;
            };
            let c = (*c).clone();
            let cause = if opts.no_recreate {
                None
            } else if opts.force_recreate {
                Some(Cause::Forced)
            } else if c.hash != svc.hash {
                let fields = previous
                    .get(name)
                    .map(|old| super::hash::changed_fields(old, &svc.fields))
                    .unwrap_or_default();
                Some(Cause::ConfigChanged(fields))
            } else if c.image_id != svc.image_id {
                Some(Cause::ImageChanged)
            } else {
                None
            };
            list.push(match (cause, &restart_for) {
                (Some(cause), _) => Action::Recreate {
                    number,
                    old: c,
                    cause,
                },
                (None, _) if !c.running && !c.completed => Action::Start(c),
                (None, Some(dep)) => Action::Restart {
                    container: c,
                    cause: Cause::DependencyRecreated(dep.clone()),
                },
                (None, None) => Action::Keep(c),
            });
        }
        // Extra replicas of an update that was cut short go first.
        for c in observed.iter().filter(|c| &c.service == name && c.surge) {
            list.push(Action::Remove {
                container: c.clone(),
                cause: Cause::Interrupted,
            });
        }
        // Surplus replicas, highest number first.
        for c in mine.iter().rev().filter(|c| c.number > svc.replicas) {
            list.push(Action::Remove {
                container: (*c).clone(),
                cause: Cause::ScaleDown,
            });
        }
        if list
            .iter()
            .any(|a| matches!(a, Action::Recreate { .. } | Action::Restart { .. }))
        {
            renewed.insert(name.clone());
        }
        actions.insert(name.clone(), list);
    }
    let orphans = observed
        .iter()
        .filter(|c| !by_name.contains_key(c.service.as_str()))
        .cloned()
        .collect();
    Ok(Plan {
        graph,
        nodes,
        actions,
        orphans,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(restart: bool) -> DependsOn {
        DependsOn {
            condition: "service_started".into(),
            restart,
            required: true,
        }
    }

    fn svc(name: &str, hash: &str, deps: &[(&str, bool)]) -> DesiredService {
        DesiredService {
            name: name.into(),
            replicas: 1,
            hash: hash.into(),
            fields: [("environment".to_owned(), hash.to_owned())].into(),
            image_id: "img".into(),
            depends_on: deps.iter().map(|(d, r)| (d.to_string(), dep(*r))).collect(),
        }
    }

    fn seen(service: &str, number: u64, hash: &str, running: bool) -> ObservedContainer {
        ObservedContainer {
            id: format!("{service}{number}"),
            name: format!("p-{service}-{number}"),
            service: service.into(),
            number,
            hash: hash.into(),
            image_id: "img".into(),
            running,
            completed: false,
            surge: false,
        }
    }

    fn previous() -> BTreeMap<String, BTreeMap<String, String>> {
        ["db", "web", "worker"]
            .iter()
            .map(|s| {
                (
                    s.to_string(),
                    [("environment".to_owned(), "h".to_owned())].into(),
                )
            })
            .collect()
    }

    #[test]
    fn fresh_stack_creates_everything() {
        let desired = [svc("db", "h", &[]), svc("web", "h", &[("db", false)])];
        let p = plan(&desired, &[], &BTreeMap::new(), &PlanOptions::default()).unwrap();
        assert_eq!(
            p.to_string(),
            "db#1 create (not found)\nweb#1 create (not found)\n"
        );
        assert!(!p.is_noop());
    }

    #[test]
    fn unchanged_stack_is_a_noop() {
        let desired = [svc("db", "h", &[]), svc("web", "h", &[("db", false)])];
        let observed = [seen("db", 1, "h", true), seen("web", 1, "h", true)];
        let p = plan(&desired, &observed, &previous(), &PlanOptions::default()).unwrap();
        assert!(p.is_noop(), "{p}");
    }

    #[test]
    fn changed_service_alone_is_recreated_and_restart_true_dependents_restart() {
        let desired = [
            svc("db", "h2", &[]),
            svc("web", "h", &[("db", false)]),
            svc("worker", "h", &[("db", true)]),
        ];
        let observed = [
            seen("db", 1, "h", true),
            seen("web", 1, "h", true),
            seen("worker", 1, "h", true),
        ];
        let p = plan(&desired, &observed, &previous(), &PlanOptions::default()).unwrap();
        assert_eq!(
            p.to_string(),
            "db#1 recreate (environment changed)\nweb#1 keep\nworker#1 restart (dependency db recreated)\n"
        );
    }

    #[test]
    fn scale_orphans_stopped_and_options() {
        let mut web = svc("web", "h", &[]);
        web.replicas = 2;
        let observed = [
            seen("web", 1, "h", false),
            seen("web", 3, "h", true),
            seen("old", 1, "h", true),
        ];
        let p = plan(
            &[web.clone()],
            &observed,
            &previous(),
            &PlanOptions::default(),
        )
        .unwrap();
        assert_eq!(
            p.to_string(),
            "web#1 start\nweb#2 create (not found)\nweb#3 remove (scaled down)\np-old-1 orphan (old)\n"
        );
        let forced = PlanOptions {
            force_recreate: true,
            ..PlanOptions::default()
        };
        let p = plan(&[web.clone()], &observed[..1], &previous(), &forced).unwrap();
        assert!(
            p.to_string()
                .starts_with("web#1 recreate (--force-recreate)")
        );
        let mut changed = web.clone();
        changed.hash = "x".into();
        let keep = PlanOptions {
            no_recreate: true,
            ..PlanOptions::default()
        };
        let p = plan(&[changed], &observed[..1], &previous(), &keep).unwrap();
        assert!(p.to_string().starts_with("web#1 start"));
    }

    #[test]
    fn a_completed_one_shot_is_left_alone() {
        let desired = [svc("db", "h", &[])];
        let mut done = seen("db", 1, "h", false);
        done.completed = true;
        let p = plan(&desired, &[done], &previous(), &PlanOptions::default()).unwrap();
        assert!(p.is_noop(), "{p}");
    }

    #[test]
    fn the_extra_replica_of_a_cut_short_update_is_removed_and_not_counted() {
        let desired = [svc("web", "h2", &[])];
        let mut surge = seen("web", 1, "h2", true);
        surge.name = "p-web-1-next".into();
        surge.surge = true;
        let observed = [seen("web", 1, "h", true), surge];
        let p = plan(&desired, &observed, &previous(), &PlanOptions::default()).unwrap();
        assert_eq!(
            p.to_string(),
            "web#1 recreate (environment changed)\nweb#1 remove (left by an interrupted update)\n"
        );
    }

    #[test]
    fn cycles_are_refused() {
        let desired = [
            svc("a", "h", &[("b", false)]),
            svc("b", "h", &[("a", false)]),
        ];
        assert!(matches!(
            plan(&desired, &[], &BTreeMap::new(), &PlanOptions::default()),
            Err(PlanError::Cycle(_))
        ));
    }
}
