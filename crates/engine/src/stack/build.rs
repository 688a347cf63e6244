//! `build:` services: their image built with berth's builder when it is missing (or with
//! `up --build`), tagged with the service's `image` (default `<project>-<service>`), as
//! Docker Compose does before it creates containers.

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_build::{BuildRequest, Builder, DockerfileSource, SecretSource};
use berth_compose::model::{Build, Project};
use berth_image::Reference;

use crate::build_network::BuildNetwork;

/// The build secrets of a `build:` section (`build.secrets` naming top-level `secrets`), by
/// the id `RUN --mount=type=secret` uses: the reference's `target`, else its `source`, as
/// Docker Compose passes them. Files are read when a step mounts them; an environment
/// variable that is not set leaves the secret out (a `required` mount then says so).
fn secrets(project: &Project, build: &Build) -> BTreeMap<String, SecretSource> {
    let mut out = BTreeMap::new();
    for r in &build.secrets {
        let Some(obj) = project.secrets.get(&r.source) else {
            continue;
        };
        let id = r.target.clone().unwrap_or_else(|| r.source.clone());
        let source = if let Some(f) = &obj.file {
            SecretSource::File(PathBuf::from(f))
        } else if let Some(c) = &obj.content {
            SecretSource::Value(c.clone().into_bytes())
        } else if let Some(v) = obj.environment.as_ref().and_then(|v| std::env::var(v).ok()) {
            SecretSource::Value(v.into_bytes())
        } else {
            continue;
        };
        out.insert(id, source);
    }
    out
}

/// `build.ssh`: `default` is `$SSH_AUTH_SOCK`; `id=path` names a socket.
fn ssh(build: &Build) -> BTreeMap<String, PathBuf> {
    build
        .ssh
        .iter()
        .filter_map(|s| berth_build::secrets::parse_ssh(s, |k| std::env::var(k).ok()).ok())
        .collect()
}

/// The builder's request for a service's `build:` section, tagged `image` (and the
/// section's `tags`).
pub fn request(project: &Project, build: &Build, image: Reference) -> BuildRequest {
    let working_dir = project.working_dir.as_path();
    let context = build
        .context
        .as_deref()
        .map(PathBuf::from)
        .unwrap_or_else(|| working_dir.to_path_buf());
    let mut req = BuildRequest::new(&context);
    req.dockerfile = match (&build.dockerfile_inline, &build.dockerfile) {
        (Some(text), _) => DockerfileSource::Inline(text.clone()),
        (None, Some(f)) if f != "Dockerfile" => DockerfileSource::Path(context.join(f)),
        _ => DockerfileSource::Default,
    };
    req.target = build.target.clone();
    req.args = build
        .args
        .iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
        .collect::<BTreeMap<_, _>>();
    req.labels = build
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    req.no_cache = build.no_cache == Some(true);
    req.pull = build.pull == Some(true);
    req.tags = vec![image];
    req.tags
        .extend(build.tags.iter().filter_map(|t| Reference::parse(t).ok()));
    req.secrets = secrets(project, build);
    req.ssh = ssh(build);
    // Named contexts Berth cannot use (git URLs, `service:`) are left out: a Dockerfile
    // naming one then fails where it uses it, with the name.
    req.contexts = build
        .additional_contexts
        .iter()
        .filter_map(|(k, v)| {
            berth_build::NamedContext::parse(v)
                .ok()
                .map(|c| (k.clone(), c))
        })
        .collect();
    req.network = build
        .network
        .as_deref()
        .and_then(|n| berth_build::mount::NetworkMode::parse(n).ok());
    req
}

/// Builds the image (blocking: `RUN` steps are containers), `RUN --network=default` steps on
/// a bridge made for this build and removed after it.
pub fn build(
    images: &berth_image::Store,
    runtime: &berth_runtime::Runtime,
    req: BuildRequest,
) -> Result<berth_image::Image, berth_build::BuildError> {
    let network = BuildNetwork::new(&images.root().join("build-net"));
    let built = Builder::new(images, runtime).network(&network).build(req);
    let _ = network.close();
    built
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_section_maps_to_a_request() {
        let b = Build {
            context: Some("/src/app".into()),
            dockerfile: Some("Dockerfile.dev".into()),
            target: Some("prod".into()),
            args: [
                ("A".to_owned(), Some("1".to_owned())),
                ("B".to_owned(), None),
            ]
            .into_iter()
            .collect(),
            ..Build::default()
        };
        let project = Project {
            working_dir: "/p".into(),
            ..Project::default()
        };
        let r = request(&project, &b, Reference::parse("p-web").unwrap());
        assert_eq!(r.context, PathBuf::from("/src/app"));
        assert!(
            matches!(&r.dockerfile, DockerfileSource::Path(p) if p == std::path::Path::new("/src/app/Dockerfile.dev"))
        );
        assert_eq!(r.target.as_deref(), Some("prod"));
        assert_eq!(r.args.len(), 1);
        assert_eq!(r.tags[0].familiar(), "p-web:latest");
    }
}
