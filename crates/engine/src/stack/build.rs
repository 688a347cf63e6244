//! `build:` services: their image built with berth's builder when it is missing (or with
//! `up --build`), tagged with the service's `image` (default `<project>-<service>`), as
//! Docker Compose does before it creates containers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_build::{BuildRequest, Builder, DockerfileSource};
use berth_compose::model::Build;
use berth_image::Reference;

/// The builder's request for a service's `build:` section, tagged `image`.
pub fn request(build: &Build, image: Reference, working_dir: &Path) -> BuildRequest {
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
    req
}

/// Builds the image (blocking: `RUN` steps are containers).
pub fn build(
    images: &berth_image::Store,
    runtime: &berth_runtime::Runtime,
    req: BuildRequest,
) -> Result<berth_image::Image, berth_build::BuildError> {
    Builder::new(images, runtime).build(req)
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
        let r = request(&b, Reference::parse("p-web").unwrap(), Path::new("/p"));
        assert_eq!(r.context, PathBuf::from("/src/app"));
        assert!(
            matches!(&r.dockerfile, DockerfileSource::Path(p) if p == Path::new("/src/app/Dockerfile.dev"))
        );
        assert_eq!(r.target.as_deref(), Some("prod"));
        assert_eq!(r.args.len(), 1);
        assert_eq!(r.tags[0].familiar(), "p-web:latest");
    }
}
