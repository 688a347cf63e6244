//! `berth stack logs` and the log stream of an attached `berth up`: each container's lines
//! prefixed with its name (`demo-web-1  | …`), coloured per service on a terminal, merged
//! in time order.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime};

use berth_engine::containers::logs::{LogReader, tail};
use berth_runtime::logs::LogEntry;

use super::super::GlobalArgs;
use super::super::project::ProjectArgs;
use crate::api::stack::StackContainer;

/// `berth stack logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Follow the output.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Lines to show from the end of each container's log (`all` for every line).
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Only lines since this time (RFC 3339, Unix seconds, or a duration ago like `10m`).
    #[arg(long)]
    since: Option<String>,
    /// Show the time of each line.
    #[arg(short = 't', long)]
    timestamps: bool,
    /// Do not prefix lines with the container's name.
    #[arg(long)]
    no_log_prefix: bool,
    /// Services (default: all).
    services: Vec<String>,
}

const COLOURS: [console::Color; 6] = [
    console::Color::Cyan,
    console::Color::Yellow,
    console::Color::Green,
    console::Color::Magenta,
    console::Color::Blue,
    console::Color::Red,
];

struct Printer {
    width: usize,
    colours: BTreeMap<String, console::Color>,
    colour: bool,
    prefix: bool,
    timestamps: bool,
}

impl Printer {
    fn new(list: &[StackContainer], prefix: bool, timestamps: bool) -> Printer {
        let mut colours = BTreeMap::new();
        for c in list {
            let n = colours.len();
            colours
                .entry(c.service.clone())
                .or_insert(COLOURS[n % COLOURS.len()]);
        }
        Printer {
            width: list
                .iter()
                .map(|c| c.container.name.len())
                .max()
                .unwrap_or(0),
            colours,
            colour: std::io::stdout().is_terminal(),
            prefix,
            timestamps,
        }
    }

    fn line(&self, c: &StackContainer, e: &LogEntry) -> String {
        let mut s = String::new();
        if self.prefix {
            let p = format!("{:<w$} | ", c.container.name, w = self.width);
            match (self.colour, self.colours.get(&c.service)) {
                (true, Some(col)) => s.push_str(&console::style(p).fg(*col).to_string()),
                _ => s.push_str(&p),
            }
        }
        if self.timestamps {
            s.push_str(&e.time);
            s.push(' ');
        }
        s.push_str(e.log.strip_suffix('\n').unwrap_or(&e.log));
        s
    }
}

fn select(list: Vec<StackContainer>, services: &[String]) -> anyhow::Result<Vec<StackContainer>> {
    for s in services {
        if !list.iter().any(|c| &c.service == s) {
            anyhow::bail!("no such service: {s}");
        }
    }
    Ok(list
        .into_iter()
        .filter(|c| services.is_empty() || services.contains(&c.service))
        .collect())
}

/// Runs `berth stack logs`.
pub fn logs(global: &GlobalArgs, project: &ProjectArgs, args: &LogsArgs) -> anyhow::Result<()> {
    let name = super::project_name(project)?;
    let tail_n: Option<usize> = match args.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse()
                .map_err(|_| anyhow::anyhow!("invalid --tail {n:?}"))?,
        ),
    };
    let since = args
        .since
        .as_deref()
        .map(|s| crate::api::time::parse_cli(s, SystemTime::now()))
        .transpose()?;
    super::super::block_on(async move {
        let list = select(super::containers(global, &name).await?, &args.services)?;
        let printer = Printer::new(&list, !args.no_log_prefix, args.timestamps);
        let mut readers = readers(list);
        let keep = |e: &LogEntry| match since {
            None => true,
            Some(t) => {
                humantime::parse_rfc3339_weak(e.time.trim_end_matches('Z')).is_ok_and(|at| at >= t)
            }
        };
        // What is there now, merged by time.
        let mut first: Vec<(String, String)> = Vec::new();
        for (c, r) in &mut readers {
            let entries: Vec<LogEntry> = r.read_new()?.into_iter().filter(|e| keep(e)).collect();
            for e in tail(entries, tail_n) {
                first.push((e.time.clone(), printer.line(c, &e)));
            }
        }
        first.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = std::io::stdout().lock();
        for (_, l) in first {
            writeln!(out, "{l}")?;
        }
        out.flush()?;
        drop(out);
        if args.follow {
            follow(&mut readers, &printer, None).await?;
        }
        Ok(())
    })
}

/// Prints new lines of every reader until Ctrl-C (returns `true`) or, when `watch` names
/// a stack, until none of the followed containers runs any more (returns `false`).
async fn follow(
    readers: &mut [(StackContainer, LogReader)],
    printer: &Printer,
    watch: Option<(&GlobalArgs, &str)>,
) -> anyhow::Result<bool> {
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut ticks = 0u32;
    loop {
        let mut new: Vec<(String, String)> = Vec::new();
        for (c, r) in readers.iter_mut() {
            for e in r.read_new()? {
                new.push((e.time.clone(), printer.line(c, &e)));
            }
        }
        new.sort_by(|a, b| a.0.cmp(&b.0));
        if !new.is_empty() {
            let mut out = std::io::stdout().lock();
            for (_, l) in new {
                if writeln!(out, "{l}").is_err() {
                    return Ok(false);
                }
            }
            let _ = out.flush();
        }
        ticks += 1;
        if ticks.is_multiple_of(10)
            && let Some((global, name)) = watch
        {
            let now = super::containers(global, name).await?;
            let running = readers.iter().any(|(c, _)| {
                now.iter()
                    .any(|n| n.container.id == c.container.id && n.container.state.running)
            });
            if !running {
                return Ok(false);
            }
        }
        tokio::select! {
            _ = &mut ctrl_c => return Ok(true),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

/// A log reader for each container, from the start of its log.
fn readers(list: Vec<StackContainer>) -> Vec<(StackContainer, LogReader)> {
    list.into_iter()
        .map(|c| {
            let r = LogReader::new(std::path::Path::new(&c.container.log_path));
            (c, r)
        })
        .collect()
}

/// The log stream of an attached `up`: until every container has exited (`false`) or
/// Ctrl-C (`true`).
pub async fn attach(global: &GlobalArgs, name: &str, services: &[String]) -> anyhow::Result<bool> {
    let list = select(super::containers(global, name).await?, services)?;
    let printer = Printer::new(&list, true, false);
    let mut readers = readers(list);
    follow(&mut readers, &printer, Some((global, name))).await
}
