//! Route paths of the daemon API, in one place for the server and the client.
//!
//! Layout (routes marked *planned* do not exist yet; they show where things go):
//!
//! ```text
//! GET    /v1/version                         daemon version
//! GET    /v1/info                            paths, pid, uptime, counts
//! GET    /v1/events?since=&until=            NDJSON stream of events
//! POST   /v1/shutdown                        stop the daemon (tests, `berth daemon stop`)
//! GET    /v1/containers?all=                 list (`ps`)
//! POST   /v1/containers                      create and start (`run`); body ContainerCreate
//! GET    /v1/containers/{id}                 inspect (name, id or id prefix)
//! DELETE /v1/containers/{id}?force=          remove
//! POST   /v1/containers/{id}/start           start again
//! POST   /v1/containers/{id}/stop?t=         stop signal, then SIGKILL
//! POST   /v1/containers/{id}/kill?signal=    send a signal
//! POST   /v1/containers/{id}/wait            wait for the exit, answer its code
//! GET    /v1/containers/{id}/logs?follow=&tail=&since=   NDJSON log lines
//! GET    /v1/containers/{id}/port            published ports
//! POST   /v1/containers/{id}/{pause|unpause} freeze / thaw
//! POST   /v1/containers/{id}/restart?t=      stop, then start
//! GET    /v1/containers/{id}/top             processes
//! GET    /v1/containers/{id}/stats           cgroup counters now
//! GET    /v1/networks                        list
//! POST   /v1/networks                        create; body NetworkCreate
//! POST   /v1/networks/prune                  remove unused networks
//! GET    /v1/networks/{name}                 inspect
//! DELETE /v1/networks/{name}                 remove
//! POST   /v1/networks/{name}/connect         body NetworkConnect
//! POST   /v1/networks/{name}/disconnect      body NetworkDisconnect
//! GET    /v1/stacks                          list stacks (`berth ls`)
//! POST   /v1/stacks/{name}/up                body: UpRequest (the Project); NDJSON progress
//! POST   /v1/stacks/{name}/down              body: DownRequest; NDJSON progress
//! GET    /v1/stacks/{name}/ps                containers of a stack
//! POST   /v1/stacks/{name}/{start|stop|restart|kill|rm|pause|unpause}   NDJSON progress
//! planned:
//! GET    /v1/stacks/{name}/logs?follow=&tail=&since=&services=   NDJSON log lines
//! GET    /v1/images, POST /v1/images/pull, DELETE /v1/images/{ref}
//! GET    /v1/volumes[/{name}]
//! ```
//!
//! `exec` has no route: the daemon resolves the container (`GET /v1/containers/{id}`) and the
//! CLI runs the process through the runtime's exec helper itself, as `runc exec` does, so that
//! its terminal and standard input reach the process without a relay through the daemon.

/// `GET`: the daemon's version.
pub const VERSION: &str = "/v1/version";
/// `GET`: paths, pid, uptime, counts.
pub const INFO: &str = "/v1/info";
/// `GET`: the event stream.
pub const EVENTS: &str = "/v1/events";
/// `POST`: stop the daemon.
pub const SHUTDOWN: &str = "/v1/shutdown";
/// `GET`: every stack.
pub const STACKS: &str = "/v1/stacks";
/// `GET`: the containers of a stack.
pub const STACK_PS: &str = "/v1/stacks/{name}/ps";
/// `POST`: bring a stack up (NDJSON progress).
pub const STACK_UP: &str = "/v1/stacks/{name}/up";
/// `POST`: take a stack down (NDJSON progress).
pub const STACK_DOWN: &str = "/v1/stacks/{name}/down";
/// `POST`: start, stop, restart, kill, rm, pause or unpause a stack's containers.
pub const STACK_ACTION: &str = "/v1/stacks/{name}/{action}";
/// `POST`: watch a stack's `develop.watch` rules (NDJSON, until the client disconnects).
pub const STACK_WATCH: &str = "/v1/stacks/{name}/watch";

/// A route with its `{name}` (and `{action}`) filled in.
pub fn stack(route: &str, name: &str, action: &str) -> String {
    route.replace("{name}", name).replace("{action}", action)
}
/// `GET`: list containers; `POST`: create and start one.
pub const CONTAINERS: &str = "/v1/containers";
/// `GET`: inspect a container; `DELETE`: remove it.
pub const CONTAINER: &str = "/v1/containers/{id}";
/// `POST`: start a container again.
pub const CONTAINER_START: &str = "/v1/containers/{id}/start";
/// `POST`: stop a container.
pub const CONTAINER_STOP: &str = "/v1/containers/{id}/stop";
/// `POST`: signal a container.
pub const CONTAINER_KILL: &str = "/v1/containers/{id}/kill";
/// `POST`: wait for a container's exit.
pub const CONTAINER_WAIT: &str = "/v1/containers/{id}/wait";
/// `GET`: a container's output (NDJSON).
pub const CONTAINER_LOGS: &str = "/v1/containers/{id}/logs";
/// `GET`: a container's published ports.
pub const CONTAINER_PORT: &str = "/v1/containers/{id}/port";
/// `GET`: a tar archive of `?path=` in a running container; `PUT`: extract one there.
pub const CONTAINER_ARCHIVE: &str = "/v1/containers/{id}/archive";
/// `POST`: freeze a container.
pub const CONTAINER_PAUSE: &str = "/v1/containers/{id}/pause";
/// `POST`: thaw a container.
pub const CONTAINER_UNPAUSE: &str = "/v1/containers/{id}/unpause";
/// `POST`: stop and start a container.
pub const CONTAINER_RESTART: &str = "/v1/containers/{id}/restart";
/// `GET`: a container's processes.
pub const CONTAINER_TOP: &str = "/v1/containers/{id}/top";
/// `GET`: a container's file system changes against its image (`diff`).
pub const CONTAINER_CHANGES: &str = "/v1/containers/{id}/changes";
/// `POST`: a new image from a container's changes (`commit`).
pub const CONTAINER_COMMIT: &str = "/v1/containers/{id}/commit";
/// `GET`: a container's resource counters.
pub const CONTAINER_STATS: &str = "/v1/containers/{id}/stats";
/// `GET`: list networks; `POST`: create one.
pub const NETWORKS: &str = "/v1/networks";
/// `POST`: remove every unused network.
pub const NETWORKS_PRUNE: &str = "/v1/networks/prune";
/// `GET`: inspect a network; `DELETE`: remove it.
pub const NETWORK: &str = "/v1/networks/{name}";
/// `POST`: attach a container.
pub const NETWORK_CONNECT: &str = "/v1/networks/{name}/connect";
/// `POST`: detach a container.
pub const NETWORK_DISCONNECT: &str = "/v1/networks/{name}/disconnect";

/// A route template with its `{id}` or `{name}` segment filled in (names and ids are made
/// of `[a-zA-Z0-9_.-]`; anything else is percent-encoded).
pub fn fill(template: &str, value: &str) -> String {
    let encoded = encode(value);
    template
        .replace("{id}", &encoded)
        .replace("{name}", &encoded)
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route `daemon::routes::router` serves, as `(method, path)`: keep the two
    /// in step, so that each route is documented in `schemas/api.openapi.yaml`.
    const ALL: &[(&str, &str)] = &[
        ("get", VERSION),
        ("get", INFO),
        ("get", EVENTS),
        ("post", SHUTDOWN),
        ("get", STACKS),
        ("get", STACK_PS),
        ("post", STACK_UP),
        ("post", STACK_DOWN),
        ("post", STACK_ACTION),
        ("post", STACK_WATCH),
        ("get", CONTAINERS),
        ("post", CONTAINERS),
        ("get", CONTAINER),
        ("delete", CONTAINER),
        ("post", CONTAINER_START),
        ("post", CONTAINER_STOP),
        ("post", CONTAINER_KILL),
        ("post", CONTAINER_WAIT),
        ("get", CONTAINER_LOGS),
        ("get", CONTAINER_PORT),
        ("get", CONTAINER_ARCHIVE),
        ("put", CONTAINER_ARCHIVE),
        ("post", CONTAINER_PAUSE),
        ("post", CONTAINER_UNPAUSE),
        ("post", CONTAINER_RESTART),
        ("get", CONTAINER_TOP),
        ("get", CONTAINER_STATS),
        ("get", CONTAINER_CHANGES),
        ("post", CONTAINER_COMMIT),
        ("get", NETWORKS),
        ("post", NETWORKS),
        ("post", NETWORKS_PRUNE),
        ("get", NETWORK),
        ("delete", NETWORK),
        ("post", NETWORK_CONNECT),
        ("post", NETWORK_DISCONNECT),
    ];

    #[test]
    fn templates_are_filled_and_values_encoded() {
        assert_eq!(fill(CONTAINER_STOP, "web_1"), "/v1/containers/web_1/stop");
        assert_eq!(fill(NETWORK, "a b/c"), "/v1/networks/a%20b%2Fc");
        assert_eq!(
            encode("2026-01-01T00:00:00+01:00"),
            "2026-01-01T00%3A00%3A00%2B01%3A00"
        );
    }

    /// A text-level drift check (the e2e tests validate real responses against the
    /// document's schemas): each route appears as a path key with its method below it.
    #[test]
    fn every_route_is_documented_in_the_openapi_file() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../schemas/api.openapi.yaml"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (method, route) in ALL {
            let at = lines
                .iter()
                .position(|l| *l == format!("  {route}:"))
                .unwrap_or_else(|| panic!("{route} is not a path in {path}"));
            let ops: Vec<&str> = lines[at + 1..]
                .iter()
                .take_while(|l| l.starts_with("    ") || l.is_empty())
                .filter(|l| !l.starts_with("     "))
                .map(|l| l.trim().trim_end_matches(':'))
                .collect();
            assert!(
                ops.contains(method),
                "{method} {route} is not documented: {ops:?}"
            );
        }
    }
}
