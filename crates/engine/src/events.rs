//! The event bus: what happens to containers, networks, volumes, images and stacks.
//!
//! Every event goes to live subscribers (a tokio broadcast channel) and to an
//! append-only journal on disk (`<dir>/journal.jsonl`, one JSON object a line), so a
//! subscriber can replay the past with `since`. The journal is bounded: when the
//! current file would grow past its limit it is renamed to `journal.1.jsonl`
//! (replacing the previous one) and a new file is started, so at most two files'
//! worth of history is kept.
//!
//! Events are appended with one `write` each but not `fsync`ed: they are a record of
//! what happened, not state the engine needs to recover. After a crash the journal
//! may end with a torn line; it is fenced off with a newline on open and skipped by
//! readers.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::sync::broadcast;

/// How many events a slow live subscriber may fall behind before it misses some.
const CHANNEL_CAPACITY: usize = 4096;

/// Default size limit of one journal file.
pub const DEFAULT_JOURNAL_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// A point in time, written as RFC 3339 in UTC with nanoseconds
/// (`2026-11-22T11:46:09.123456789Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub SystemTime);

impl Timestamp {
    /// The current time.
    pub fn now() -> Timestamp {
        Timestamp(SystemTime::now())
    }

    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(SystemTime::UNIX_EPOCH);

    /// Seconds and nanoseconds since the Unix epoch (0 for earlier times).
    pub fn unix_nanos(self) -> u128 {
        self.0
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    }

    /// Parses RFC 3339 (`2026-11-22T11:46:09Z`, fractional seconds allowed).
    pub fn parse_rfc3339(s: &str) -> Result<Timestamp, humantime::TimestampError> {
        humantime::parse_rfc3339_weak(s).map(Timestamp)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_nanos(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// A container (create, start, die, health_status, destroy, ...).
    Container,
    /// A network (create, connect, disconnect, destroy).
    Network,
    /// A volume (create, mount, destroy).
    Volume,
    /// An image (pull, tag, untag, delete).
    Image,
    /// A stack (up, down).
    Stack,
    /// The daemon itself (start, stop).
    Daemon,
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EventType::Container => "container",
            EventType::Network => "network",
            EventType::Volume => "volume",
            EventType::Image => "image",
            EventType::Stack => "stack",
            EventType::Daemon => "daemon",
        })
    }
}

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened.
    pub time: Timestamp,
    /// What kind of object it concerns.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// What happened to it (`create`, `start`, `die`, `health_status`, `destroy`, ...).
    pub action: String,
    /// The object's id (container id, network name, image digest, ...).
    pub id: String,
    /// Details: `name`, `image`, `exitCode`, `project`, ...
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl Event {
    /// A new event stamped with the current time.
    pub fn now(kind: EventType, action: impl Into<String>, id: impl Into<String>) -> Event {
        Event {
            time: Timestamp::now(),
            kind,
            action: action.into(),
            id: id.into(),
            attributes: BTreeMap::new(),
        }
    }

    /// Adds one attribute.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Event {
        self.attributes.insert(key.into(), value.into());
        self
    }
}

/// Which events a subscriber wants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Replay journalled events from this time on; without it, only new events.
    pub since: Option<Timestamp>,
    /// Stop after this time (immediately after the replay if it is in the past);
    /// without it, follow forever.
    pub until: Option<Timestamp>,
}

/// Errors of the event bus; I/O errors name their path.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// The journal could not be read or written.
    #[error("event journal: {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An event could not be turned into JSON.
    #[error("event journal: cannot serialise event: {0}")]
    Serialize(#[source] serde_json::Error),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> EventsError + 'a {
    move |source| EventsError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

struct Journal {
    current: PathBuf,
    previous: PathBuf,
    file: File,
    len: u64,
    max_bytes: u64,
}

impl Journal {
    fn open(dir: &Path, max_bytes: u64) -> Result<Journal, EventsError> {
        fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        let current = dir.join("journal.jsonl");
        let previous = dir.join("journal.1.jsonl");
        let mut file = open_append(&current)?;
        let mut len = file.metadata().map_err(io_err("stat", &current))?.len();
        if len > 0 {
            // Fence off a line torn by a crash so the next event starts on its own line.
            let mut last = [0u8; 1];
            file.seek(SeekFrom::End(-1))
                .and_then(|_| file.read_exact(&mut last))
                .map_err(io_err("read", &current))?;
            if last[0] != b'\n' {
                file.write_all(b"\n").map_err(io_err("append", &current))?;
                len += 1;
            }
        }
        Ok(Journal {
            current,
            previous,
            file,
            len,
            max_bytes,
        })
    }

    fn append(&mut self, line: &[u8]) -> Result<(), EventsError> {
        if self.len > 0 && self.len + line.len() as u64 > self.max_bytes {
            fs::rename(&self.current, &self.previous)
                .map_err(io_err("rotate to", &self.previous))?;
            self.file = open_append(&self.current)?;
            self.len = 0;
        }
        // One write call per line: with O_APPEND a line is never interleaved.
        self.file
            .write_all(line)
            .map_err(io_err("append", &self.current))?;
        self.len += line.len() as u64;
        Ok(())
    }

    fn replay(&self, filter: &EventFilter, since: Timestamp) -> Result<Vec<Event>, EventsError> {
        let mut out = Vec::new();
        for path in [&self.previous, &self.current] {
            let text = match fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("read", path)(e)),
            };
            for line in text.lines().filter(|l| !l.is_empty()) {
                match serde_json::from_str::<Event>(line) {
                    Ok(ev) if ev.time >= since && filter.until.is_none_or(|u| ev.time <= u) => {
                        out.push(ev)
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(path = %path.display(), "skipping torn journal line: {e}")
                    }
                }
            }
        }
        Ok(out)
    }
}

fn open_append(path: &Path) -> Result<File, EventsError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .map_err(io_err("open", path))
}

/// The event bus with its journal.
pub struct Events {
    tx: broadcast::Sender<Event>,
    journal: Mutex<Journal>,
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("subscribers", &self.tx.receiver_count())
            .finish_non_exhaustive()
    }
}

impl Events {
    /// Opens the journal in `dir` (created if needed); each journal file holds at
    /// most about `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Events, EventsError> {
        let journal = Journal::open(dir, max_bytes)?;
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        Ok(Events {
            tx,
            journal: Mutex::new(journal),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Journal> {
        // A panic while holding the lock leaves the journal usable: every append
        // writes whole lines, so the poisoned state carries no broken invariant.
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `event` in the journal and sends it to every live subscriber. The
    /// event reaches subscribers even when the journal cannot be written; that
    /// error is returned.
    pub fn emit(&self, event: Event) -> Result<(), EventsError> {
        let mut line = serde_json::to_vec(&event).map_err(EventsError::Serialize)?;
        line.push(b'\n');
        let mut journal = self.lock();
        let result = journal.append(&line);
        // No receiver is not an error: nobody is listening.
        let _ = self.tx.send(event);
        result
    }

    /// Subscribes to events: the journalled ones matching `filter.since` first, then
    /// live ones until `filter.until`. No event is seen twice or missed between the
    /// replay and the live part (both happen under the journal's lock).
    pub fn subscribe(&self, filter: EventFilter) -> Result<Subscription, EventsError> {
        let journal = self.lock();
        let live = filter.until.is_none_or(|u| u > Timestamp::now());
        let rx = live.then(|| self.tx.subscribe());
        let backlog = match filter.since {
            Some(since) => journal.replay(&filter, since)?,
            None => Vec::new(),
        };
        drop(journal);
        Ok(Subscription {
            backlog: backlog.into(),
            rx,
            until: filter.until,
        })
    }
}

/// A stream of events for one subscriber, from [`Events::subscribe`].
#[derive(Debug)]
pub struct Subscription {
    backlog: VecDeque<Event>,
    rx: Option<broadcast::Receiver<Event>>,
    until: Option<Timestamp>,
}

impl Subscription {
    /// The next event, or `None` when the subscription is over (its `until` has
    /// passed, or the bus was dropped). Cancel-safe.
    pub async fn next(&mut self) -> Option<Event> {
        if let Some(ev) = self.backlog.pop_front() {
            return Some(ev);
        }
        loop {
            let rx = self.rx.as_mut()?;
            let received = match self.until {
                None => rx.recv().await,
                Some(until) => {
                    let left = until
                        .0
                        .duration_since(SystemTime::now())
                        .unwrap_or_default();
                    match tokio::time::timeout(left, rx.recv()).await {
                        Ok(r) => r,
                        Err(_elapsed) => {
                            self.rx = None;
                            return None;
                        }
                    }
                }
            };
            match received {
                Ok(ev) if self.until.is_some_and(|u| ev.time > u) => {
                    self.rx = None;
                    return None;
                }
                Ok(ev) => return Some(ev),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("event subscriber fell behind and missed {n} events");
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.rx = None;
                    return None;
                }
            }
        }
    }

    /// An event already received and waiting, without waiting for more; used to
    /// drain a subscription on shutdown.
    pub fn try_next(&mut self) -> Option<Event> {
        if let Some(ev) = self.backlog.pop_front() {
            return Some(ev);
        }
        let rx = self.rx.as_mut()?;
        loop {
            match rx.try_recv() {
                Ok(ev) if self.until.is_some_and(|u| ev.time > u) => return None,
                Ok(ev) => return Some(ev),
                Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    }
}

/// How long ago `t` was (zero for future times).
pub fn age(t: Timestamp) -> Duration {
    SystemTime::now().duration_since(t.0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(action: &str, id: &str) -> Event {
        Event::now(EventType::Container, action, id).with("name", id)
    }

    #[test]
    fn event_json_shape_and_round_trip() {
        let e = Event {
            time: Timestamp(SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789)),
            kind: EventType::Container,
            action: "start".into(),
            id: "abc".into(),
            attributes: BTreeMap::from([("name".to_string(), "web".to_string())]),
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"time":"2023-11-14T22:13:20.123456789Z","type":"container","action":"start","id":"abc","attributes":{"name":"web"}}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), e);
    }

    #[tokio::test]
    async fn live_subscriber_gets_emitted_events_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let bus = Events::open(dir.path(), DEFAULT_JOURNAL_MAX_BYTES).unwrap();
        let mut sub = bus.subscribe(EventFilter::default()).unwrap();
        bus.emit(ev("create", "a")).unwrap();
        bus.emit(ev("start", "a")).unwrap();
        assert_eq!(sub.next().await.unwrap().action, "create");
        assert_eq!(sub.next().await.unwrap().action, "start");
        assert!(sub.try_next().is_none());
    }

    #[tokio::test]
    async fn since_replays_the_journal_then_follows_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        {
            let bus = Events::open(dir.path(), DEFAULT_JOURNAL_MAX_BYTES).unwrap();
            bus.emit(ev("create", "old")).unwrap();
        }
        // A new bus (a restarted daemon) replays what the old one wrote.
        let bus = Events::open(dir.path(), DEFAULT_JOURNAL_MAX_BYTES).unwrap();
        bus.emit(ev("start", "old")).unwrap();
        let mut sub = bus
            .subscribe(EventFilter {
                since: Some(Timestamp::EPOCH),
                until: None,
            })
            .unwrap();
        bus.emit(ev("die", "old")).unwrap();
        let got: Vec<String> = [
            sub.next().await.unwrap(),
            sub.next().await.unwrap(),
            sub.next().await.unwrap(),
        ]
        .iter()
        .map(|e| e.action.clone())
        .collect();
        assert_eq!(got, ["create", "start", "die"]);
        assert!(sub.try_next().is_none());
    }

    #[tokio::test]
    async fn since_and_until_in_the_past_replay_a_window_and_end() {
        let dir = tempfile::tempdir().unwrap();
        let bus = Events::open(dir.path(), DEFAULT_JOURNAL_MAX_BYTES).unwrap();
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for i in 0..5u64 {
            let mut e = ev("start", &format!("c{i}"));
            e.time = Timestamp(base + Duration::from_secs(i * 10));
            bus.emit(e).unwrap();
        }
        let mut sub = bus
            .subscribe(EventFilter {
                since: Some(Timestamp(base + Duration::from_secs(10))),
                until: Some(Timestamp(base + Duration::from_secs(30))),
            })
            .unwrap();
        let mut ids = Vec::new();
        while let Some(e) = sub.next().await {
            ids.push(e.id);
        }
        assert_eq!(ids, ["c1", "c2", "c3"]);
    }

    #[tokio::test(start_paused = true)]
    async fn until_in_the_future_ends_a_live_subscription() {
        let dir = tempfile::tempdir().unwrap();
        let bus = Events::open(dir.path(), DEFAULT_JOURNAL_MAX_BYTES).unwrap();
        let mut sub = bus
            .subscribe(EventFilter {
                since: None,
                until: Some(Timestamp(SystemTime::now() + Duration::from_secs(3600))),
            })
            .unwrap();
        bus.emit(ev("start", "x")).unwrap();
        assert_eq!(sub.next().await.unwrap().id, "x");
        // Paused tokio time auto-advances to the deadline.
        assert_eq!(sub.next().await, None);
    }

    #[test]
    fn journal_rotates_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let bus = Events::open(dir.path(), 2000).unwrap();
        for i in 0..200 {
            bus.emit(ev("start", &format!("container-{i:04}"))).unwrap();
        }
        let cur = fs::metadata(dir.path().join("journal.jsonl"))
            .unwrap()
            .len();
        let prev = fs::metadata(dir.path().join("journal.1.jsonl"))
            .unwrap()
            .len();
        assert!(cur <= 2000 && prev <= 2000, "{cur} {prev}");
        // The newest events are kept and replay in order.
        let sub_events = {
            let journal = bus.lock();
            journal
                .replay(&EventFilter::default(), Timestamp::EPOCH)
                .unwrap()
        };
        assert_eq!(sub_events.last().unwrap().id, "container-0199");
        let ids: Vec<&str> = sub_events.iter().map(|e| e.id.as_str()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert!(ids.len() < 200);
    }

    #[test]
    fn torn_last_line_is_fenced_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let bus = Events::open(dir.path(), DEFAULT_JOURNAL_MAX_BYTES).unwrap();
            bus.emit(ev("create", "a")).unwrap();
        }
        let path = dir.path().join("journal.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"time":"2026-01-01T00:00:0"#).unwrap();
        drop(f);
        let bus = Events::open(dir.path(), DEFAULT_JOURNAL_MAX_BYTES).unwrap();
        bus.emit(ev("start", "a")).unwrap();
        let replayed = bus
            .lock()
            .replay(&EventFilter::default(), Timestamp::EPOCH)
            .unwrap();
        let actions: Vec<&str> = replayed.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["create", "start"]);
    }

    #[test]
    fn journal_error_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        fs::write(&file, b"x").unwrap();
        let err = Events::open(&file, 100).unwrap_err();
        assert!(err.to_string().contains("plain-file"), "{err}");
    }
}
