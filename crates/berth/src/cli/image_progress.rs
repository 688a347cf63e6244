//! Pull/push progress: one bar per layer on a terminal (indicatif), plain lines otherwise.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_image::registry::{Progress, ProgressFn};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Renders progress events.
pub struct Reporter {
    quiet: bool,
    tty: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
    done_word: &'static str,
}

impl Reporter {
    /// `done_word` is what a finished layer shows ("Pull complete", "Pushed").
    pub fn new(quiet: bool, done_word: &'static str) -> Arc<Reporter> {
        let tty = (!quiet && console::Term::stderr().is_term())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Arc::new(Reporter {
            quiet,
            tty,
            bars: Mutex::new(HashMap::new()),
            done_word,
        })
    }

    /// The callback to hand to the store.
    pub fn callback(self: &Arc<Self>) -> ProgressFn {
        let me = self.clone();
        Arc::new(move |p| me.handle(p))
    }

    fn bar(&self, id: &str, total: u64) -> Option<ProgressBar> {
        let tty = self.tty.as_ref()?;
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        Some(
            bars.entry(id.to_owned())
                .or_insert_with(|| {
                    let bar = tty.add(ProgressBar::new(total));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix}: {msg:<16} [{bar:30}] {bytes}/{total_bytes}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(id.to_owned());
                    bar
                })
                .clone(),
        )
    }

    fn line(&self, id: &str, text: &str) {
        if self.quiet {
            return;
        }
        match self.bar(id, 0) {
            Some(bar) => {
                bar.set_message(text.to_owned());
                if text == self.done_word || text == "Already exists" || text.starts_with("Mounted")
                {
                    bar.finish();
                }
            }
            None => eprintln!("{id}: {text}"),
        }
    }

    fn handle(&self, p: Progress) {
        match p {
            Progress::Resolved { .. } | Progress::ManifestPushed { .. } => {}
            Progress::LayerStarted { digest, size } => {
                let id = digest.short().to_owned();
                match self.bar(&id, size) {
                    Some(bar) => bar.set_message("Transferring"),
                    None if !self.quiet => eprintln!("{id}: Transferring {}", human_bytes(size)),
                    None => {}
                }
            }
            Progress::LayerBytes {
                digest,
                done,
                total,
            } => {
                if let Some(bar) = self.bar(digest.short(), total) {
                    bar.set_length(total);
                    bar.set_position(done);
                }
            }
            Progress::LayerRetry {
                digest,
                attempt,
                error,
            } => self.line(
                digest.short(),
                &format!("Retrying (attempt {attempt}): {error}"),
            ),
            Progress::LayerExists { digest } => self.line(digest.short(), "Already exists"),
            Progress::LayerMounted { digest, from } => {
                self.line(digest.short(), &format!("Mounted from {from}"))
            }
            Progress::LayerDone { digest } => self.line(digest.short(), self.done_word),
        }
    }

    /// Clears the bars before the final output.
    pub fn finish(&self) {
        if let Some(tty) = &self.tty {
            let _ = tty.clear();
        }
    }
}

/// `1.2 MB` style sizes (decimal units, as Docker prints them).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.3}")
            .chars()
            .take(if v >= 100.0 { 3 } else { 4 })
            .collect::<String>()
            .trim_end_matches('.')
            .to_owned()
            + " "
            + UNITS[unit]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_000), "1.00 kB");
        assert_eq!(human_bytes(4_261_000), "4.26 MB");
        assert_eq!(human_bytes(312_000_000), "312 MB");
    }
}
