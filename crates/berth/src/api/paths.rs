//! Route paths of the daemon API, in one place for the server and the client.
//!
//! Layout (routes marked *planned* do not exist yet; they show where things go):
//!
//! ```text
//! GET    /v1/version                         daemon version
//! GET    /v1/info                            paths, pid, uptime, counts
//! GET    /v1/events?since=&until=            NDJSON stream of events
//! POST   /v1/shutdown                        stop the daemon (tests, `berth daemon stop`)
//! GET    /v1/stacks                          list stacks (`berth ls`)
//! POST   /v1/stacks/{name}/up                body: UpRequest (the Project); NDJSON progress
//! POST   /v1/stacks/{name}/down              body: DownRequest; NDJSON progress
//! GET    /v1/stacks/{name}/ps                containers of a stack
//! POST   /v1/stacks/{name}/{start|stop|restart|kill|rm|pause|unpause}   NDJSON progress
//! planned:
//! GET    /v1/stacks/{name}/logs?follow=&tail=&since=&services=   NDJSON log lines
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

/// A route with its `{name}` (and `{action}`) filled in.
pub fn stack(route: &str, name: &str, action: &str) -> String {
    route.replace("{name}", name).replace("{action}", action)
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
    ];

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
