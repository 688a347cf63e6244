//! The embedded DNS server (UDP).
//!
//! It listens on port 53 (configurable) of every network's gateway address, following the
//! zone published by `Net::zone`: listeners start when a network appears and stop when it goes.
//! A query for a name known on the asking container's networks gets an authoritative answer
//! (A/AAAA, rotated on every answer so replicas share the load round-robin; other types get an
//! empty answer). Everything else is relayed unchanged to the upstream resolvers (by default the
//! host's, from `/etc/resolv.conf`), first one that answers within the timeout wins. The same
//! address also serves DNS over TCP; berth's own answers longer than 512 bytes are truncated on
//! UDP (TC bit) so that clients retry over TCP.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Zone;

/// Errors of the DNS server's setup.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The resolver configuration could not be read.
    #[error("read {path}")]
    ResolvConf {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// How the server behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// UDP port to listen on at each gateway (53 for containers).
    pub port: u16,
    /// Where names not known to berth are forwarded.
    pub upstreams: Vec<SocketAddr>,
    /// TTL of berth's answers, in seconds (short: containers come and go).
    pub ttl: u32,
    /// How long to wait for an upstream.
    pub upstream_timeout: Duration,
}

impl ServerConfig {
    /// Port 53, TTL 5 s, 2 s upstream timeout, the given upstreams.
    pub fn new(upstreams: Vec<SocketAddr>) -> ServerConfig {
        ServerConfig {
            port: 53,
            upstreams,
            ttl: 5,
            upstream_timeout: Duration::from_secs(2),
        }
    }
}

/// The `nameserver` lines of a resolv.conf, as port-53 socket addresses. Loopback resolvers
/// are kept: the server runs in the host namespace, where they are reachable.
pub fn upstreams_from_resolv_conf(path: &Path) -> Result<Vec<SocketAddr>, ServerError> {
    let text = std::fs::read_to_string(path).map_err(|source| ServerError::ResolvConf {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
        })
        .filter_map(|ip| {
            ip.split('%')
                .next()
                .and_then(|ip| ip.parse::<IpAddr>().ok())
        })
        .map(|ip| SocketAddr::new(ip, 53))
        .collect())
}

struct Shared {
    config: ServerConfig,
    zone: watch::Receiver<Arc<Zone>>,
    turn: AtomicUsize,
    listening: Mutex<Vec<SocketAddr>>,
}

/// A running DNS server; stops (all listeners) when dropped.
pub struct Server {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Starts the server on the current tokio runtime, following `zone`.
    pub fn spawn(zone: watch::Receiver<Arc<Zone>>, config: ServerConfig) -> Server {
        let shared = Arc::new(Shared {
            config,
            zone,
            turn: AtomicUsize::new(0),
            listening: Mutex::new(Vec::new()),
        });
        let task = tokio::spawn(supervise(shared.clone()));
        Server { shared, task }
    }

    /// The addresses currently listened on.
    pub fn listening(&self) -> Vec<SocketAddr> {
        self.shared
            .listening
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }
}

/// Keeps one listener per gateway address in line with the zone.
async fn supervise(shared: Arc<Shared>) {
    let mut zone = shared.zone.clone();
    let mut listeners: BTreeMap<SocketAddr, JoinHandle<()>> = BTreeMap::new();
    struct AbortAll<'a>(&'a mut BTreeMap<SocketAddr, JoinHandle<()>>);
    impl Drop for AbortAll<'_> {
        fn drop(&mut self) {
            self.0.values().for_each(JoinHandle::abort);
        }
    }
    let guard = AbortAll(&mut listeners);
    loop {
        let wanted: Vec<SocketAddr> = zone
            .borrow_and_update()
            .listen_addresses()
            .into_iter()
            .map(|ip| SocketAddr::new(ip, shared.config.port))
            .collect();
        guard.0.retain(|addr, task| {
            let keep = wanted.contains(addr) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for addr in wanted {
            if guard.0.contains_key(&addr) {
                continue;
            }
            match UdpSocket::bind(addr).await {
                Ok(socket) => {
                    let tcp = TcpListener::bind(addr).await.map_err(|e| {
                        tracing::warn!(%addr, error = %e, "dns: cannot listen on TCP");
                    });
                    let shared = shared.clone();
                    let task = tokio::spawn(async move {
                        let udp = listen(shared.clone(), Arc::new(socket));
                        match tcp {
                            Ok(tcp) => drop(tokio::join!(udp, listen_tcp(shared, tcp))),
                            Err(()) => udp.await,
                        }
                    });
                    guard.0.insert(addr, task);
                }
                Err(e) => tracing::warn!(%addr, error = %e, "dns: cannot listen"),
            }
        }
        if let Ok(mut l) = shared.listening.lock() {
            *l = guard.0.keys().copied().collect();
        }
        if zone.changed().await.is_err() {
            return;
        }
    }
}

/// Serves DNS over TCP (RFC 7766: two-byte length prefix per message), used by clients after a
/// truncated UDP answer.
async fn listen_tcp(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let (mut stream, client) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "dns: accept failed");
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let idle = Duration::from_secs(10);
            loop {
                let mut len = [0u8; 2];
                if tokio::time::timeout(idle, stream.read_exact(&mut len))
                    .await
                    .map_or(true, |r| r.is_err())
                {
                    return;
                }
                let mut packet = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if stream.read_exact(&mut packet).await.is_err() {
                    return;
                }
                let Some(reply) = answer(&shared, client.ip(), &packet).await else {
                    return;
                };
                let Ok(n) = u16::try_from(reply.len()) else {
                    return;
                };
                if stream
                    .write_all(&[&n.to_be_bytes()[..], &reply].concat())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
}

async fn listen(shared: Arc<Shared>, socket: Arc<UdpSocket>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (len, client) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "dns: receive failed");
                continue;
            }
        };
        let packet = buf[..len].to_vec();
        let (shared, socket) = (shared.clone(), socket.clone());
        tokio::spawn(async move {
            if let Some(reply) = answer(&shared, client.ip(), &packet).await {
                let reply = truncate_for_udp(reply);
                let _ = socket.send_to(&reply, client).await;
            }
        });
    }
}

/// The reply to one query packet (`None`: drop it).
async fn answer(shared: &Shared, client: IpAddr, packet: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(packet).ok()?;
    if request.metadata.message_type != MessageType::Query {
        return None;
    }
    if !shared.zone.borrow().serves(client) {
        return None;
    }
    let query = request.queries.first()?.clone();
    let name = query.name.to_ascii();
    let found = shared.zone.borrow().lookup(client, &name);
    let Some(found) = found else {
        return Some(forward(shared, &request, packet).await);
    };
    let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
    reply.metadata.authoritative = true;
    reply.metadata.recursion_desired = request.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_query(query.clone());
    let turn = shared.turn.fetch_add(1, Ordering::Relaxed);
    let ttl = shared.config.ttl;
    match query.query_type {
        RecordType::A => {
            for ip in rotate(&found.v4, turn) {
                reply.add_answer(Record::from_rdata(query.name.clone(), ttl, RData::A(A(ip))));
            }
        }
        RecordType::AAAA => {
            for ip in rotate(&found.v6, turn) {
                reply.add_answer(Record::from_rdata(
                    query.name.clone(),
                    ttl,
                    RData::AAAA(AAAA(ip)),
                ));
            }
        }
        // Known name, other type: an empty NOERROR answer.
        _ => {}
    }
    reply.to_vec().ok()
}

/// Classic DNS over UDP carries at most 512 bytes: a longer answer of berth's own (many
/// replicas) goes out without records and with the TC bit set, so the client asks over TCP.
fn truncate_for_udp(reply: Vec<u8>) -> Vec<u8> {
    if reply.len() <= 512 {
        return reply;
    }
    match Message::from_vec(&reply) {
        Ok(msg) if msg.edns.is_none() => msg.truncate().to_vec().unwrap_or(reply),
        _ => reply,
    }
}

fn rotate<T: Copy>(items: &[T], turn: usize) -> Vec<T> {
    if items.is_empty() {
        return Vec::new();
    }
    let k = turn % items.len();
    items[k..].iter().chain(&items[..k]).copied().collect()
}

/// Relays `packet` to the upstreams; SERVFAIL when none answers.
async fn forward(shared: &Shared, request: &Message, packet: &[u8]) -> Vec<u8> {
    for upstream in &shared.config.upstreams {
        if let Some(reply) = ask(
            *upstream,
            packet,
            request.metadata.id,
            shared.config.upstream_timeout,
        )
        .await
        {
            return reply;
        }
    }
    let mut fail = Message::error_msg(
        request.metadata.id,
        request.metadata.op_code,
        ResponseCode::ServFail,
    );
    fail.add_queries(request.queries.iter().cloned());
    fail.to_vec().unwrap_or_default()
}

async fn ask(upstream: SocketAddr, packet: &[u8], id: u16, timeout: Duration) -> Option<Vec<u8>> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await.ok()?;
    socket.connect(upstream).await.ok()?;
    socket.send(packet).await.ok()?;
    let mut buf = vec![0u8; 65535];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let len = tokio::time::timeout_at(deadline, socket.recv(&mut buf))
            .await
            .ok()?
            .ok()?;
        // Ignore stray datagrams that do not answer this query.
        if len >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
            return Some(buf[..len].to_vec());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_is_round_robin() {
        let v = [1, 2, 3];
        assert_eq!(rotate(&v, 0), vec![1, 2, 3]);
        assert_eq!(rotate(&v, 1), vec![2, 3, 1]);
        assert_eq!(rotate(&v, 5), vec![3, 1, 2]);
        assert_eq!(rotate::<u8>(&[], 3), Vec::<u8>::new());
    }

    #[test]
    fn long_udp_answers_are_truncated_for_a_tcp_retry() {
        let name = hickory_proto::rr::Name::from_ascii("web.").unwrap();
        let mut msg = Message::response(7, hickory_proto::op::OpCode::Query);
        msg.add_query(hickory_proto::op::Query::query(name.clone(), RecordType::A));
        for i in 0..40u8 {
            msg.add_answer(Record::from_rdata(
                name.clone(),
                5,
                RData::A(A(Ipv4Addr::new(10, 0, 0, i))),
            ));
        }
        let long = msg.to_vec().unwrap();
        assert!(long.len() > 512);
        let short = Message::from_vec(&truncate_for_udp(long)).unwrap();
        assert!(short.metadata.truncation);
        assert_eq!(short.metadata.id, 7);
        assert_eq!(short.answers.len(), 0);
        assert_eq!(short.queries.len(), 1);
        msg.answers.truncate(3);
        let small = msg.to_vec().unwrap();
        assert_eq!(truncate_for_udp(small.clone()), small);
    }

    #[test]
    fn resolv_conf_upstreams() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(
            &path,
            "# c\nnameserver 10.255.255.53\nsearch x\nnameserver fe80::1%eth0\nnameserver bogus\n",
        )
        .unwrap();
        assert_eq!(
            upstreams_from_resolv_conf(&path).unwrap(),
            vec![
                "10.255.255.53:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
    }
}
