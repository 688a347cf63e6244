//! Route paths of the daemon API, in one place for the server and the client.
//!
//! Layout (routes marked *planned* do not exist yet; they show where things go):
//!
//! ```text
//! GET    /v1/version                         daemon version
//! GET    /v1/info                            paths, pid, uptime, counts
//! GET    /v1/events?since=&until=            NDJSON stream of events
//! POST   /v1/shutdown                        stop the daemon (tests, `berth daemon stop`)
//! planned:
//! GET    /v1/stacks                          list stacks (`berth ls`)
//! POST   /v1/stacks/{name}/up                body: compose Project (JSON) + UpOptions
//! POST   /v1/stacks/{name}/down              body: DownOptions
//! GET    /v1/stacks/{name}/ps                containers of a stack
//! GET    /v1/stacks/{name}/logs?follow=&tail=&since=&services=   NDJSON log lines
//! POST   /v1/stacks/{name}/{start|stop|restart|kill|pause|unpause}
//! GET    /v1/containers[/{id}]               list / inspect
//! POST   /v1/containers/{id}/exec            exec (HTTP upgrade for a tty)
//! GET    /v1/images, POST /v1/images/pull, DELETE /v1/images/{ref}
//! GET    /v1/networks[/{name}], GET /v1/volumes[/{name}]
//! ```

/// `GET`: the daemon's version.
pub const VERSION: &str = "/v1/version";
/// `GET`: paths, pid, uptime, counts.
pub const INFO: &str = "/v1/info";
/// `GET`: the event stream.
pub const EVENTS: &str = "/v1/events";
/// `POST`: stop the daemon.
pub const SHUTDOWN: &str = "/v1/shutdown";
