//! `down --rmi local|all`: the stack's images go with its containers.
//!
//! `local` removes the images the stack built without a custom tag (a `build:` service
//! with no `image:`, named `<project>-<service>`); `all` removes every image the stack's
//! services used. The services are those the last `up` applied (the stack document) plus
//! those of the containers `down` removed, so `down -p NAME --rmi all` needs no stack
//! file. An image still used by a container that remains (another stack's, a `berth run`)
//! is kept, with a warning, as `docker rmi` refuses it.

use std::collections::BTreeSet;

use berth_image::Reference;

use super::desired::{self, labels};
use super::{Progress, ProgressSink, StackContainer, StackDoc, StackError, Stacks};
use super::{Status, execute::chain};

/// Which images `down --rmi` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveImages {
    /// The images built for the stack without a custom tag.
    Local,
    /// Every image the stack's services use.
    All,
}

impl RemoveImages {
    /// `local` or `all`.
    pub fn parse(s: &str) -> Option<RemoveImages> {
        match s {
            "local" => Some(RemoveImages::Local),
            "all" => Some(RemoveImages::All),
            _ => None,
        }
    }
}

/// The image names `which` selects from the stack's services (as applied) and removed
/// containers.
pub(super) fn selected(
    which: RemoveImages,
    project: &str,
    doc: Option<&StackDoc>,
    removed: &[StackContainer],
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (name, record) in doc.map(|d| &d.services).into_iter().flatten() {
        let Some(applied) = &record.applied else {
            continue;
        };
        let svc = &applied.service;
        let local = svc.image.is_none();
        if which == RemoveImages::All || local {
            out.insert(desired::image_name(project, name, svc));
        }
    }
    if which == RemoveImages::All {
        for c in removed {
            out.insert(c.info.doc.image.clone());
        }
    } else {
        // A built service's containers run `<project>-<service>`.
        for c in removed {
            let built = format!("{project}-{}", c.service);
            if c.info.doc.image == built || c.info.doc.image == format!("{built}:latest") {
                out.insert(built);
            }
        }
    }
    out
}

impl Stacks {
    /// Untags each image of `names` that no remaining container uses; reports each.
    pub(super) fn remove_images(
        &self,
        names: &BTreeSet<String>,
        progress: &ProgressSink,
    ) -> Result<(), StackError> {
        let remaining = self.containers.list()?;
        for name in names {
            let image = |status: Status| Progress::image(name, status);
            let Ok(reference) = Reference::parse(name) else {
                continue;
            };
            let Ok(found) = self.images.resolve(&reference) else {
                continue; // already gone
            };
            let id = found.id.to_string();
            if let Some(user) = remaining
                .iter()
                .find(|c| c.doc.image_id == id || c.doc.labels.get(labels::IMAGE) == Some(&id))
            {
                progress.send(
                    image(Status::Warning)
                        .detail(format!("kept: container {} uses it", user.doc.name)),
                );
                continue;
            }
            progress.send(image(Status::Removing));
            match self.images.untag(&reference) {
                Ok(_) => progress.send(image(Status::Removed)),
                Err(e) => progress.send(image(Status::Error).detail(chain(&e))),
            }
        }
        Ok(())
    }
}
