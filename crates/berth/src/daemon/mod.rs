//! `berth daemon`: serves the HTTP/JSON API on a unix socket and owns the engine.
//!
//! Start-up order: pid file lock in the run dir, then the engine (which locks the
//! root), then the one [`Containers`] service every route shares with its network layer
//! (what a crash left on the network is cleaned up, the firewall rewritten, and berth's DNS
//! server started on every network's gateway; see `dns`), then the socket (a stale one
//! left by a killed daemon is replaced, a live one is never touched). Shutdown on SIGTERM, SIGINT or `POST /v1/shutdown`:
//! a `daemon stop` event, event streams end, in-flight requests finish (bounded),
//! the socket and pid file are removed.

mod container_commit;
mod container_logs;
mod containers;
mod dns;
mod error;
mod events;
#[path = "watch.rs"]
mod file_watch;
mod networks;
mod peer;
mod pidfile;
mod routes;
mod stacks;
mod supervise;
mod system;

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_engine::containers::{Containers, ContainersError};
use berth_engine::events::{Event, EventType};
use berth_engine::supervise::Supervisor;
use berth_engine::{Engine, EngineConfig, EngineError};
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, watch};

use self::pidfile::PidFile;

/// How long in-flight requests may take to finish once the daemon stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Mode of the API socket: owner and group may connect.
const SOCKET_MODE: u32 = 0o660;

/// What `berth daemon` was asked to do.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// State root.
    pub root: PathBuf,
    /// Run-time directory (pid file; the socket by default).
    pub run_dir: PathBuf,
    /// The socket to listen on.
    pub socket: PathBuf,
    /// Detach from the terminal's session (set by the CLI's auto-start).
    pub background: bool,
    /// The socket's group (name or gid). `None`: group root when the daemon may
    /// give it away, else the daemon's own group.
    pub group: Option<String>,
}

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Another daemon holds the pid file or the root.
    #[error("a berth daemon{} is already running: {} is locked",
        .pid.map(|p| format!(" (pid {p})")).unwrap_or_default(), .what.display())]
    AlreadyRunning {
        /// The other daemon's pid, when known.
        pid: Option<u32>,
        /// The locked pid file or root.
        what: PathBuf,
    },
    /// Another daemon answers on the socket.
    #[error("socket {} is in use by another berth daemon", .0.display())]
    SocketInUse(PathBuf),
    /// A file or directory of the daemon could not be used.
    #[error("{op} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The engine could not be opened.
    #[error(transparent)]
    Engine(EngineError),
    /// The container service or the network layer could not be opened.
    #[error(transparent)]
    Containers(ContainersError),
    /// `--group` names no group.
    #[error("unknown group {0:?}")]
    UnknownGroup(String),
    /// The async runtime or a signal handler could not be set up.
    #[error("cannot set up the daemon's runtime: {0}")]
    Runtime(#[source] io::Error),
    /// The HTTP server failed.
    #[error("API server failed: {0}")]
    Serve(#[source] io::Error),
}

impl DaemonError {
    /// Whether this is the "another daemon already serves this" refusal.
    pub fn is_already_running(&self) -> bool {
        matches!(
            self,
            DaemonError::AlreadyRunning { .. } | DaemonError::SocketInUse(_)
        )
    }
}

impl From<EngineError> for DaemonError {
    fn from(e: EngineError) -> DaemonError {
        match e {
            EngineError::RootInUse { lock, holder, .. } => DaemonError::AlreadyRunning {
                pid: holder,
                what: lock,
            },
            other => DaemonError::Engine(other),
        }
    }
}

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    engine: Engine,
    /// The one container service (and through it the one network layer) of the daemon.
    containers: Containers,
    socket: PathBuf,
    shutdown: watch::Receiver<bool>,
    stop_requested: Arc<Notify>,
}

/// Runs the daemon until it is told to stop.
pub fn run(opts: DaemonOptions) -> Result<(), DaemonError> {
    init_logging();
    if opts.background {
        // Its own session: no controlling terminal, no SIGHUP/SIGINT from the
        // shell that happened to start it. Fails only if we already lead a group.
        if let Err(e) = nix::unistd::setsid() {
            tracing::warn!("setsid: {e}");
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("berth-daemon")
        .build()
        .map_err(DaemonError::Runtime)?;
    runtime.block_on(serve(opts))
}

fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Only fails when a subscriber is already set, which is fine.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .try_init();
}

async fn serve(opts: DaemonOptions) -> Result<(), DaemonError> {
    let io = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| DaemonError::Io { op, path, source }
    };
    std::fs::create_dir_all(&opts.run_dir).map_err(io("create directory", &opts.run_dir))?;
    let pid_file = PidFile::acquire(&opts.run_dir.join("berth.pid"))?;
    let engine = Engine::open(EngineConfig {
        root: opts.root.clone(),
        run_dir: opts.run_dir.clone(),
    })?;
    let containers = Containers::open(&engine, None).map_err(DaemonError::Containers)?;
    // Kept until the daemon stops: it answers containers' DNS queries.
    let _dns = dns::start(&containers).await?;
    // Re-adopt the containers an earlier daemon left before serving anything, then watch
    // their exits, restart policies and health checks for as long as the daemon runs.
    let supervisor = Supervisor::spawn(containers.clone());
    supervisor.adopted().await;
    let gid = match &opts.group {
        Some(group) => Some(resolve_group(group)?),
        None => None,
    };
    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Runtime)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Runtime)?;
    let listener = bind(&opts.socket, gid)?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let state = AppState {
        engine: engine.clone(),
        containers,
        socket: opts.socket.clone(),
        shutdown: shutdown_rx.clone(),
        stop_requested: Arc::new(Notify::new()),
    };
    let stop_requested = state.stop_requested.clone();
    let mut server_done = shutdown_rx.clone();
    let app = routes::router(state).into_make_service_with_connect_info::<peer::Peer>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = server_done.wait_for(|stop| *stop).await;
    });
    let mut server = tokio::spawn(async move { server.await });

    let pid = std::process::id();
    emit(
        &engine,
        Event::now(EventType::Daemon, "start", pid.to_string())
            .with("root", opts.root.display().to_string())
            .with("socket", opts.socket.display().to_string())
            .with("version", env!("CARGO_PKG_VERSION")),
    );
    tracing::info!(pid, socket = %opts.socket.display(), root = %opts.root.display(), "berth daemon ready");

    let reason = tokio::select! {
        _ = sigterm.recv() => "SIGTERM",
        _ = sigint.recv() => "SIGINT",
        _ = stop_requested.notified() => "shutdown request",
        result = &mut server => {
            // The server only returns by itself on an accept error.
            let err = match result {
                Ok(Ok(())) => io::Error::other("server stopped unexpectedly"),
                Ok(Err(e)) => e,
                Err(join) => io::Error::other(join.to_string()),
            };
            remove_socket(&opts.socket);
            return Err(DaemonError::Serve(err));
        }
    };
    tracing::info!("stopping ({reason})");
    emit(
        &engine,
        Event::now(EventType::Daemon, "stop", pid.to_string()).with("reason", reason),
    );
    let _ = shutdown_tx.send(true);
    match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!("server error while stopping: {e}"),
        Ok(Err(e)) => tracing::warn!("server task failed: {e}"),
        Err(_) => {
            tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}; stopping anyway");
            server.abort();
        }
    }
    remove_socket(&opts.socket);
    // Containers keep running under their monitors; the next daemon re-adopts them.
    supervisor.shutdown().await;
    drop(engine);
    drop(pid_file);
    tracing::info!("stopped");
    Ok(())
}

fn emit(engine: &Engine, event: Event) {
    if let Err(e) = engine.emit(event) {
        tracing::warn!("cannot record event: {e}");
    }
}

/// A group name or number as a gid.
fn resolve_group(group: &str) -> Result<u32, DaemonError> {
    if let Ok(gid) = group.parse() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(DaemonError::UnknownGroup(group.to_string())),
        Err(e) => Err(DaemonError::Io {
            op: "look up group in",
            path: PathBuf::from("/etc/group"),
            source: io::Error::from(e),
        }),
    }
}

/// Binds the API socket with mode 0660 and group `gid` (root by default, as far
/// as allowed), replacing a stale socket file but never one a live daemon answers on.
fn bind(socket: &Path, gid: Option<u32>) -> Result<UnixListener, DaemonError> {
    let io = |op| {
        let path = socket.to_path_buf();
        move |source| DaemonError::Io { op, path, source }
    };
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(|source| DaemonError::Io {
            op: "create directory",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    if socket.exists() {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Err(DaemonError::SocketInUse(socket.to_path_buf()));
        }
        std::fs::remove_file(socket).map_err(io("remove stale socket"))?;
    }
    let listener = UnixListener::bind(socket).map_err(io("bind"))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(io("set mode of"))?;
    match gid {
        Some(gid) => std::os::unix::fs::chown(socket, None, Some(gid)).map_err(io("chown"))?,
        None => {
            if let Err(e) = std::os::unix::fs::chown(socket, None, Some(0)) {
                // Without root this fails; the socket then keeps the daemon's own group.
                tracing::warn!("cannot give {} to group root: {e}", socket.display());
            }
        }
    }
    Ok(listener)
}

fn remove_socket(socket: &Path) {
    if let Err(e) = std::fs::remove_file(socket) {
        tracing::warn!("cannot remove socket {}: {e}", socket.display());
    }
}
