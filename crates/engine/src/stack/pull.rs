//! When `up` pulls a service's image: `up --pull` for every service, else the service's
//! `pull_policy` (Compose's default `missing`).
//!
//! | policy | image in the store | image missing |
//! | --- | --- | --- |
//! | `always` | pulled again | pulled |
//! | `missing` (`if_not_present`) | used | pulled |
//! | `never` | used | error |
//! | `build` | built | built |
//! | `daily`, `weekly`, `every_<d>` | used | pulled |
//!
//! A service with `build:` and a `missing` policy is built when its image is missing
//! rather than pulled (Compose's behaviour); with `always` its image is pulled.

use berth_compose::{Project, Service};
use berth_image::registry::{AuthFile, ClientOptions};
use berth_image::{Image, Platform, Reference, Store};

use super::execute::{UpOptions, chain};
use super::{Progress, ProgressSink, ServiceFailure, StackError, Stacks, Status, desired};
use crate::containers::ContainersError;

/// A pull policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Pull every time.
    Always,
    /// Pull only when the image is not in the store.
    #[default]
    Missing,
    /// Never pull: the image must be there.
    Never,
    /// Build the image (services with `build:`).
    Build,
}

impl PullPolicy {
    /// Parses a policy as `--pull` or `pull_policy` spell it (`if_not_present` is
    /// `missing`; the refresh periods `daily`, `weekly`, `every_<duration>` count as
    /// `missing`: berth does not record when an image was pulled). `None` for anything else.
    pub fn parse(s: &str) -> Option<PullPolicy> {
        match s {
            "always" => Some(PullPolicy::Always),
            "missing" | "if_not_present" | "daily" | "weekly" => Some(PullPolicy::Missing),
            s if s.starts_with("every_") => Some(PullPolicy::Missing),
            "never" => Some(PullPolicy::Never),
            "build" => Some(PullPolicy::Build),
            _ => None,
        }
    }

    /// The policy of a service: `--pull` when given, else its `pull_policy`.
    pub fn of(cli: Option<PullPolicy>, svc: &berth_compose::Service) -> PullPolicy {
        cli.or_else(|| svc.pull_policy.as_deref().and_then(PullPolicy::parse))
            .unwrap_or_default()
    }
}

/// What to do for one service's image, given its policy, whether the image is in the
/// store and whether the service has `build:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ImageStep {
    /// Use the image in the store.
    Use,
    /// Pull it from its registry.
    Pull,
    /// Build it.
    Build,
    /// Fail: it is missing and may not be pulled.
    Missing,
}

/// The pure decision of the table in the module documentation (`--build` aside).
pub(super) fn step(policy: PullPolicy, present: bool, has_build: bool) -> ImageStep {
    match (policy, present, has_build) {
        (PullPolicy::Build, _, true) => ImageStep::Build,
        (PullPolicy::Always, _, _) => ImageStep::Pull,
        (_, true, _) => ImageStep::Use,
        (_, false, true) => ImageStep::Build,
        (PullPolicy::Never, false, false) => ImageStep::Missing,
        (PullPolicy::Missing | PullPolicy::Build, false, false) => ImageStep::Pull,
    }
}

/// Pulls `reference` for the host's platform, with the credentials of `berth login`.
pub(super) fn pull(images: &Store, reference: &Reference) -> Result<Image, StackError> {
    let options = ClientOptions {
        credentials: AuthFile::lookup(reference.registry()),
        insecure: Vec::new(),
    };
    let platform = Platform::default();
    let handle = tokio::runtime::Handle::current();
    handle
        .block_on(images.pull(reference, &platform, &options, std::sync::Arc::new(|_| {})))
        .map_err(|source| StackError::Pull {
            image: reference.familiar(),
            source: Box::new(source),
        })
}

impl Stacks {
    /// The image of service `name`: the one in the store, pulled or built as its policy
    /// says (`--build` builds a `build:` service every time).
    pub(super) fn service_image(
        &self,
        project: &Project,
        name: &str,
        svc: &Service,
        opts: &UpOptions,
        progress: &ProgressSink,
    ) -> Result<Image, StackError> {
        let image = desired::image_name(&project.name, name, svc);
        let reference =
            Reference::parse(&image).map_err(|source| ContainersError::InvalidReference {
                reference: image.clone(),
                source,
            })?;
        let existing = match self.images.resolve(&reference) {
            Ok(i) => Some(i),
            Err(berth_image::StoreError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let failed = |reason: String| StackError::Failed {
            failures: vec![ServiceFailure {
                service: name.to_owned(),
                reason,
            }],
        };
        let step = if opts.build && svc.build.is_some() {
            ImageStep::Build
        } else {
            step(
                PullPolicy::of(opts.pull, svc),
                existing.is_some(),
                svc.build.is_some(),
            )
        };
        match (step, existing, &svc.build) {
            (ImageStep::Use, Some(i), _) => Ok(i),
            (ImageStep::Build, _, Some(b)) => {
                progress.send(Progress::image(&image, Status::Building));
                let req = super::build::request(project, b, reference);
                let built = super::build::build(&self.images, self.containers.runtime(), req)
                    .map_err(|e| failed(format!("build {image}: {}", chain(&e))))?;
                progress.send(Progress::image(&image, Status::Built));
                Ok(built)
            }
            (ImageStep::Pull, _, _) => {
                progress.send(Progress::image(&image, Status::Pulling));
                let pulled = pull(&self.images, &reference).map_err(|e| failed(chain(&e)))?;
                progress.send(Progress::image(&image, Status::Pulled));
                Ok(pulled)
            }
            _ => Err(failed(format!(
                "image {image} not found locally and its pull policy is never: pull or import it first"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_as_compose_spells_them() {
        assert_eq!(PullPolicy::parse("always"), Some(PullPolicy::Always));
        assert_eq!(
            PullPolicy::parse("if_not_present"),
            Some(PullPolicy::Missing)
        );
        assert_eq!(PullPolicy::parse("every_12h"), Some(PullPolicy::Missing));
        assert_eq!(PullPolicy::parse("never"), Some(PullPolicy::Never));
        assert_eq!(PullPolicy::parse("build"), Some(PullPolicy::Build));
        assert_eq!(PullPolicy::parse("sometimes"), None);
    }

    #[test]
    fn the_step_follows_the_table() {
        use ImageStep as S;
        use PullPolicy as P;
        assert_eq!(step(P::Always, true, false), S::Pull);
        assert_eq!(step(P::Always, true, true), S::Pull);
        assert_eq!(step(P::Missing, true, false), S::Use);
        assert_eq!(step(P::Missing, false, false), S::Pull);
        assert_eq!(step(P::Missing, false, true), S::Build);
        assert_eq!(step(P::Never, true, false), S::Use);
        assert_eq!(step(P::Never, false, false), S::Missing);
        assert_eq!(step(P::Never, false, true), S::Build);
        assert_eq!(step(P::Build, true, true), S::Build);
        assert_eq!(step(P::Build, false, false), S::Pull);
    }
}
