//! `berth events`: stream what happens, as `docker events` does.

use std::io::Write;
use std::time::SystemTime;

use super::GlobalArgs;
use super::system::Format;
use crate::api::{self, Event, paths};

/// Arguments of `berth events`.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Show recorded events from this time on: Unix seconds, RFC 3339, or a
    /// duration ago (`10m`). Without it only new events are shown.
    #[arg(long)]
    since: Option<String>,
    /// Stop after this time (same forms as --since). Without it, follow forever.
    #[arg(long)]
    until: Option<String>,
    /// Output format: `human` (one line per event) or `json` (one object per line).
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// Streams events until `--until` passes, the daemon stops, or stdout closes.
pub fn run(global: &GlobalArgs, args: &EventsArgs) -> anyhow::Result<()> {
    let now = SystemTime::now();
    let mut query = Vec::new();
    for (name, value) in [("since", &args.since), ("until", &args.until)] {
        if let Some(v) = value {
            let t = api::time::parse_cli(v, now)?;
            query.push(format!("{name}={}", api::time::to_wire(t)));
        }
    }
    let path = if query.is_empty() {
        paths::EVENTS.to_string()
    } else {
        format!("{}?{}", paths::EVENTS, query.join("&"))
    };
    let format = args.format;
    super::block_on(async move {
        let mut lines = global.endpoint()?.lines(&path).await?;
        let mut out = std::io::stdout().lock();
        while let Some(line) = lines.next_line().await? {
            let printed = match format {
                Format::Json => writeln!(out, "{line}"),
                Format::Human => {
                    let event: Event = serde_json::from_str(&line)?;
                    writeln!(out, "{}", human(&event))
                }
            };
            if printed.and_then(|()| out.flush()).is_err() {
                break; // stdout closed (`berth events | head -1`)
            }
        }
        Ok(())
    })
}

/// `docker events` style: `<time> <type> <action> <id> (k=v, k=v)`.
fn human(e: &Event) -> String {
    let mut s = format!("{} {} {} {}", e.time, e.kind, e.action, e.id);
    if !e.attributes.is_empty() {
        let attrs: Vec<String> = e
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        s.push_str(&format!(" ({})", attrs.join(", ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_line_looks_like_docker_events() {
        let e = Event {
            time: "2026-11-22T11:00:00.000000001Z".into(),
            kind: "container".into(),
            action: "start".into(),
            id: "abc".into(),
            attributes: [("name", "web"), ("image", "busybox")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        assert_eq!(
            human(&e),
            "2026-11-22T11:00:00.000000001Z container start abc (image=busybox, name=web)"
        );
    }
}
