//! `berth watch [SERVICE…]` (and the watch half of `berth up --watch`): asks the daemon to
//! watch the project's `develop.watch` rules and prints one line per action until Ctrl-C.

use super::super::GlobalArgs;
use super::super::project::ProjectArgs;
use crate::api::paths;
use crate::api::stack::WatchRequest;
use crate::client::Lines;
use berth_engine::watch::WatchLine;

/// `berth watch`.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Print the daemon's lines as JSON (one object per line).
    #[arg(long)]
    pub json: bool,
    /// Services (default: every service with develop.watch rules).
    pub services: Vec<String>,
}

/// Runs `berth watch`.
pub fn watch(global: &GlobalArgs, args: &ProjectArgs, w: &WatchArgs) -> anyhow::Result<()> {
    let project = super::load_for_up(args, &w.services)?;
    let json = w.json;
    let req = WatchRequest {
        project,
        services: w.services.clone(),
    };
    super::super::block_on(async move {
        let lines = start(global, req).await?;
        tokio::select! {
            r = follow(lines, json) => r,
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}

/// Starts watching through the daemon.
pub async fn start(global: &GlobalArgs, req: WatchRequest) -> anyhow::Result<Lines> {
    let client = global.endpoint()?.connect().await?;
    let path = paths::stack(paths::STACK_WATCH, &req.project.name, "");
    Ok(client.post_lines(&path, &req).await?)
}

/// Prints the watch's lines until the daemon ends the stream.
pub async fn follow(mut lines: Lines, json: bool) -> anyhow::Result<()> {
    while let Some(line) = lines.next_line().await? {
        if json {
            println!("{line}");
            continue;
        }
        match serde_json::from_str::<WatchLine>(&line) {
            Ok(l) => println!("{}", render(&l)),
            Err(_) => println!("{line}"),
        }
    }
    Ok(())
}

/// One human line for a watch line.
pub fn render(line: &WatchLine) -> String {
    match line {
        WatchLine::Watching {
            service,
            action,
            path,
            directories,
            polled,
        } => {
            let poll = if *polled > 0 {
                format!(", {polled} polled")
            } else {
                String::new()
            };
            format!("watch {service}: {action} {path} ({directories} directories{poll})")
        }
        WatchLine::Action {
            service,
            action,
            files,
            count,
            containers,
            millis,
        } => {
            let mut shown = files.join(", ");
            if *count > files.len() {
                shown.push_str(&format!(" and {} more", count - files.len()));
            }
            let s = if *containers == 1 { "" } else { "s" };
            format!("{service}: {action} {shown} -> {containers} container{s} in {millis:.1} ms")
        }
        WatchLine::Notice { message } => format!("watch: {message}"),
        WatchLine::Error { service, message } => format!("watch {service}: error: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_lines_name_files_service_and_duration() {
        let l = WatchLine::Action {
            service: "web".into(),
            action: "sync".into(),
            files: vec!["src/a.js".into()],
            count: 3,
            containers: 2,
            millis: 4.25,
        };
        assert_eq!(
            render(&l),
            "web: sync src/a.js and 2 more -> 2 containers in 4.2 ms"
        );
    }
}
