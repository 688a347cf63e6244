//! `berth diff CONTAINER` and `berth commit CONTAINER [REPO[:TAG]]`, as `docker diff` and
//! `docker commit`.

use super::GlobalArgs;
use super::container::{CliError, block_on, client};
use crate::api::commit::{CommitRequest, CommitResponse, ContainerChange};
use crate::api::paths;

/// `berth diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The container.
    pub container: String,
}

/// `berth commit`.
#[derive(Debug, clap::Args)]
pub struct CommitArgs {
    /// The container.
    pub container: String,
    /// Name of the new image (`REPO[:TAG]`); untagged when absent.
    pub reference: Option<String>,
    /// Commit message (the history comment).
    #[arg(short, long)]
    pub message: Option<String>,
    /// Author (`"Name <email>"`).
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply a Dockerfile instruction to the image config (CMD, ENTRYPOINT, ENV, EXPOSE,
    /// LABEL, USER, WORKDIR, VOLUME, STOPSIGNAL); repeatable.
    #[arg(short, long = "change")]
    pub change: Vec<String>,
    /// Pause the container while committing (`--pause=false` to not).
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set)]
    pub pause: bool,
}

/// Runs `berth diff`: one `A|C|D PATH` line per change.
pub fn diff(global: &GlobalArgs, args: &DiffArgs) -> Result<(), CliError> {
    let list: Vec<ContainerChange> = block_on(async {
        let c = client(global).await?;
        Ok(
            c.get(&paths::fill(paths::CONTAINER_CHANGES, &args.container))
                .await?,
        )
    })?;
    for change in list {
        println!("{} {}", change.letter(), change.path);
    }
    Ok(())
}

/// Runs `berth commit`: prints the new image's ID.
pub fn commit(global: &GlobalArgs, args: &CommitArgs) -> Result<(), CliError> {
    let request = CommitRequest {
        reference: args.reference.clone(),
        message: args.message.clone(),
        author: args.author.clone(),
        changes: args.change.clone(),
        pause: args.pause,
    };
    let answer: CommitResponse = block_on(async {
        let c = client(global).await?;
        Ok(c.post_json(
            &paths::fill(paths::CONTAINER_COMMIT, &args.container),
            &request,
        )
        .await?)
    })?;
    println!("{}", answer.id);
    Ok(())
}
