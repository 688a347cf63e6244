//! The graph of stages: which stage needs which (FROM a stage, `COPY --from`,
//! `RUN --mount=from=`), the stages a target needs, and the order to build them in.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::diagnostic::Location;
use crate::instruction::Instruction;
use crate::parse::{Dockerfile, Stage};
use crate::scope::{Scope, global_args};
use crate::substitute::{SubstituteError, Vars};

/// Why the stage graph could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StageGraphError {
    /// A variable in a FROM line or `--from` could not be expanded.
    #[error("line {}: {source}", location.line)]
    Substitute {
        /// Where.
        location: Location,
        /// What went wrong.
        #[source]
        source: SubstituteError,
    },
    /// `--target` names no stage.
    #[error("target stage {name:?} not found (stages: {known})")]
    UnknownTarget {
        /// The name asked for.
        name: String,
        /// The stage names, comma-separated.
        known: String,
    },
    /// Stages depend on each other in a circle.
    #[error("line {}: stages form a cycle: {}", location.line, path.join(" -> "))]
    Cycle {
        /// The stages around the cycle, the first repeated at the end.
        path: Vec<String>,
        /// The instruction that closes the cycle.
        location: Location,
    },
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// `FROM scratch`: an empty filesystem.
    Scratch,
    /// An image reference (expanded).
    Image(String),
    /// An earlier stage, by index.
    Stage(usize),
}

/// Where a `COPY --from`/`RUN --mount=from=` reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyFrom {
    /// A stage, by index.
    Stage(usize),
    /// An image reference.
    Image(String),
}

/// The stages of a Dockerfile and their dependencies.
#[derive(Debug, Clone)]
pub struct StageGraph {
    /// Each stage's base, by stage index.
    pub bases: Vec<Base>,
    /// Each stage's `--from` sources, by stage index, keyed by the text as written.
    pub copy_from: Vec<BTreeMap<String, CopyFrom>>,
    /// The global ARG values (for FROM lines).
    pub global: Vars,
    graph: DiGraph<usize, Location>,
}

/// A stage's display name: its `AS` name, or `stage-N` for an unnamed stage (N its
/// index, the form `--target N` and `--from=N` accept).
pub fn stage_label(stage: &Stage) -> String {
    stage
        .name
        .clone()
        .unwrap_or_else(|| format!("stage-{}", stage.index))
}

fn find_stage(df: &Dockerfile, name: &str, before: Option<usize>) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    let limit = before.unwrap_or(df.stages.len());
    df.stages[..limit]
        .iter()
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
        .map(|s| s.index)
        .or_else(|| name.parse::<usize>().ok().filter(|i| *i < df.stages.len()))
}

impl StageGraph {
    /// Builds the graph, expanding FROM lines with the global args and `--from` values
    /// with each stage's args; fails on a cycle.
    pub fn new(
        df: &Dockerfile,
        build_args: &BTreeMap<String, String>,
    ) -> Result<Self, StageGraphError> {
        let global = global_args(df, build_args).map_err(|source| StageGraphError::Substitute {
            location: df
                .global_args
                .first()
                .map(|s| s.location)
                .unwrap_or_default(),
            source,
        })?;
        let mut graph = DiGraph::new();
        let nodes: Vec<NodeIndex> = df.stages.iter().map(|s| graph.add_node(s.index)).collect();
        let mut bases = Vec::new();
        let mut copy_from = Vec::new();
        for stage in &df.stages {
            let sub = |location, source| StageGraphError::Substitute { location, source };
            let image = crate::substitute::expand_word(&stage.from.image, df.escape, &global)
                .map_err(|e| sub(stage.location, e))?;
            let base = if image.eq_ignore_ascii_case("scratch") {
                Base::Scratch
            } else {
                match df
                    .stages
                    .iter()
                    .take(stage.index)
                    .find(|s| s.name.as_deref() == Some(image.to_ascii_lowercase().as_str()))
                {
                    Some(s) => Base::Stage(s.index),
                    None => Base::Image(image),
                }
            };
            if let Base::Stage(dep) = base {
                graph.add_edge(nodes[stage.index], nodes[dep], stage.location);
            }
            bases.push(base);
            let mut scope = Scope::new(df.escape, global.clone(), build_args.clone(), &[]);
            let mut froms = BTreeMap::new();
            for step in &stage.steps {
                for raw in step.instruction.from_refs() {
                    let name = scope.word(raw).map_err(|e| sub(step.location, e))?;
                    let target = match find_stage(df, &name, None) {
                        Some(i) => {
                            graph.add_edge(nodes[stage.index], nodes[i], step.location);
                            CopyFrom::Stage(i)
                        }
                        None => CopyFrom::Image(name),
                    };
                    froms.insert(raw.to_string(), target);
                }
                scope
                    .apply(&step.instruction)
                    .map_err(|e| sub(step.location, e))?;
            }
            copy_from.push(froms);
        }
        let this = Self {
            bases,
            copy_from,
            global,
            graph,
        };
        this.check_cycles(df)?;
        Ok(this)
    }

    fn check_cycles(&self, df: &Dockerfile) -> Result<(), StageGraphError> {
        for scc in tarjan_scc(&self.graph) {
            let self_loop = scc.len() == 1 && self.graph.contains_edge(scc[0], scc[0]);
            if scc.len() < 2 && !self_loop {
                continue;
            }
            // Walk the cycle from its first stage in file order.
            let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
            let start = *members
                .iter()
                .min_by_key(|n| self.graph[**n])
                .unwrap_or(&scc[0]);
            let (path, location) = self.shortest_cycle(start, &members);
            return Err(StageGraphError::Cycle {
                path: path
                    .iter()
                    .map(|n| stage_label(&df.stages[self.graph[*n]]))
                    .collect(),
                location,
            });
        }
        Ok(())
    }

    /// The shortest path from `start` back to itself inside `members` (breadth first),
    /// and the location of the edge that closes it.
    fn shortest_cycle(
        &self,
        start: NodeIndex,
        members: &BTreeSet<NodeIndex>,
    ) -> (Vec<NodeIndex>, Location) {
        use petgraph::visit::EdgeRef;
        let mut parent: BTreeMap<NodeIndex, (NodeIndex, Location)> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(n) = queue.pop_front() {
            let mut edges: Vec<_> = self.graph.edges(n).collect();
            edges.sort_by_key(|e| self.graph[e.target()]);
            for e in edges {
                let t = e.target();
                if !members.contains(&t) || parent.contains_key(&t) {
                    continue;
                }
                parent.insert(t, (n, *e.weight()));
                if t == start {
                    let location = *e.weight();
                    let mut path = vec![start];
                    let mut cur = n;
                    while cur != start {
                        path.push(cur);
                        cur = parent.get(&cur).map(|p| p.0).unwrap_or(start);
                    }
                    path.push(start);
                    path.reverse();
                    return (path, location);
                }
                queue.push_back(t);
            }
        }
        (vec![start, start], Location::default())
    }

    /// The index of the target stage: `--target` by name (or index), else the last stage.
    pub fn target(&self, df: &Dockerfile, target: Option<&str>) -> Result<usize, StageGraphError> {
        match target {
            None => Ok(df.stages.len().saturating_sub(1)),
            Some(name) => {
                find_stage(df, name, None).ok_or_else(|| StageGraphError::UnknownTarget {
                    name: name.to_string(),
                    known: df
                        .stages
                        .iter()
                        .map(stage_label)
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        }
    }

    /// The stages `target` needs (itself included), grouped in waves: every stage of a
    /// wave depends only on earlier waves, so a wave's stages can be built in parallel.
    pub fn waves(&self, target: usize) -> Vec<Vec<usize>> {
        let mut needed = BTreeSet::new();
        let mut stack = vec![NodeIndex::new(target)];
        while let Some(n) = stack.pop() {
            if needed.insert(self.graph[n]) {
                stack.extend(self.graph.neighbors(n));
            }
        }
        let mut done: BTreeSet<usize> = BTreeSet::new();
        let mut waves = Vec::new();
        while done.len() < needed.len() {
            let wave: Vec<usize> = needed
                .iter()
                .copied()
                .filter(|s| !done.contains(s))
                .filter(|s| {
                    self.graph
                        .neighbors(NodeIndex::new(*s))
                        .all(|d| done.contains(&self.graph[d]))
                })
                .collect();
            if wave.is_empty() {
                break; // unreachable: cycles are rejected in `new`
            }
            done.extend(wave.iter().copied());
            waves.push(wave);
        }
        waves
    }

    /// The stages `target` needs, in an order where dependencies come first.
    pub fn needed(&self, target: usize) -> Vec<usize> {
        self.waves(target).into_iter().flatten().collect()
    }
}

impl Instruction {
    /// The `--from` values (COPY) and `RUN --mount=from=` values, as written.
    pub fn from_refs(&self) -> Vec<&str> {
        use crate::mount::MountKind;
        match self {
            Instruction::Copy(c) => c.from.as_deref().into_iter().collect(),
            Instruction::Run(r) => r
                .mounts
                .iter()
                .filter_map(|m| match &m.kind {
                    MountKind::Bind { from, .. } | MountKind::Cache { from, .. } => from.as_deref(),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(text: &str) -> (Dockerfile, Result<StageGraph, StageGraphError>) {
        let df = Dockerfile::parse(text, "Dockerfile").unwrap();
        let g = StageGraph::new(&df, &BTreeMap::new());
        (df, g)
    }

    const MULTI: &str = "\
FROM busybox AS deps
RUN echo deps
FROM busybox AS tools
RUN echo tools
FROM deps AS build
COPY --from=tools /t /t
FROM busybox AS unused
FROM scratch AS final
COPY --from=build /out /out
";

    #[test]
    fn bases_are_scratch_images_or_earlier_stages() {
        let (_, g) = graph(MULTI);
        let g = g.unwrap();
        assert_eq!(g.bases[0], Base::Image("busybox".into()));
        assert_eq!(g.bases[2], Base::Stage(0));
        assert_eq!(g.bases[4], Base::Scratch);
        assert_eq!(g.copy_from[2].get("tools"), Some(&CopyFrom::Stage(1)));
    }

    #[test]
    fn only_needed_stages_in_dependency_waves() {
        let (df, g) = graph(MULTI);
        let g = g.unwrap();
        let t = g.target(&df, None).unwrap();
        assert_eq!(t, 4);
        assert_eq!(g.waves(t), vec![vec![0, 1], vec![2], vec![4]]);
        assert_eq!(
            g.needed(g.target(&df, Some("BUILD")).unwrap()),
            vec![0, 1, 2]
        );
        assert_eq!(g.needed(g.target(&df, Some("3")).unwrap()), vec![3]);
        assert!(matches!(
            g.target(&df, Some("nope")),
            Err(StageGraphError::UnknownTarget { known, .. }) if known == "deps, tools, build, unused, final"
        ));
    }

    #[test]
    fn from_lines_use_global_args_and_build_args() {
        let text = "ARG BASE=busybox\nARG TAG\nFROM ${BASE}:${TAG:-latest}\n";
        let df = Dockerfile::parse(text, "Dockerfile").unwrap();
        let g = StageGraph::new(&df, &BTreeMap::new()).unwrap();
        assert_eq!(g.bases[0], Base::Image("busybox:latest".into()));
        let args = BTreeMap::from([("TAG".to_string(), "1.36".to_string())]);
        let g = StageGraph::new(&df, &args).unwrap();
        assert_eq!(g.bases[0], Base::Image("busybox:1.36".into()));
    }

    #[test]
    fn copy_from_an_image_or_an_index() {
        let (_, g) = graph("FROM a\nFROM b\nCOPY --from=0 /x /x\nCOPY --from=nginx:1 /y /y\n");
        let g = g.unwrap();
        assert_eq!(g.copy_from[1].get("0"), Some(&CopyFrom::Stage(0)));
        assert_eq!(
            g.copy_from[1].get("nginx:1"),
            Some(&CopyFrom::Image("nginx:1".into()))
        );
    }

    #[test]
    fn copy_from_uses_stage_args() {
        let (_, g) = graph("FROM a AS src\nFROM b\nARG S=src\nCOPY --from=$S /x /x\n");
        assert_eq!(g.unwrap().copy_from[1].get("$S"), Some(&CopyFrom::Stage(0)));
    }

    #[test]
    fn run_mount_from_is_an_edge() {
        let (df, g) = graph("FROM a AS src\nFROM b\nRUN --mount=type=bind,from=src,target=/s ls\n");
        let g = g.unwrap();
        assert_eq!(g.needed(g.target(&df, None).unwrap()), vec![0, 1]);
    }

    #[test]
    fn later_stage_name_in_from_is_an_image() {
        let (_, g) = graph("FROM later\nFROM x AS later\n");
        assert_eq!(g.unwrap().bases[0], Base::Image("later".into()));
    }

    #[test]
    fn cycles_are_reported_with_their_path_and_line() {
        let (_, g) = graph("FROM x AS a\nCOPY --from=b /x /x\nFROM a AS b\n");
        assert_eq!(
            g.unwrap_err(),
            StageGraphError::Cycle {
                path: vec!["a".into(), "b".into(), "a".into()],
                location: Location::new(3, 1)
            }
        );
        let (_, g) = graph("FROM x AS a\nRUN true\nCOPY --from=a /x /x\n");
        let e = g.unwrap_err();
        assert_eq!(e.to_string(), "line 3: stages form a cycle: a -> a");
    }

    #[test]
    fn bad_substitution_in_from_names_the_line() {
        let (_, g) = graph("FROM x\nFROM ${A:?unset}\n");
        assert!(matches!(
            g,
            Err(StageGraphError::Substitute { location, .. }) if location.line == 2
        ));
    }
}
