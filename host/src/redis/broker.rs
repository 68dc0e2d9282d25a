//! Where Redis commands and messages go: a real Redis server, or the
//! embedded in-process broker that lets the shop run with nothing installed.
//!
//! The embedded broker does what the components use Redis for: publish and
//! subscribe (each message to every current subscriber of the channel, and
//! nothing kept for later, as Redis does), strings, counters and sets. It is
//! memory only: like pub/sub itself, it keeps nothing across a restart.
//!
//! For a real server, commands use a small pool of connections, and each
//! subscription is a task that reconnects with backoff when the server goes
//! away and comes back (messages published meanwhile are lost, as with any
//! Redis subscriber; the services' outboxes re-publish them).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::resp::{Address, Connection, Reply};

/// A message received on a subscribed channel.
pub type Message = Vec<u8>;

#[derive(Debug)]
pub enum BrokerError {
    /// The server could not be reached or the connection broke.
    Unavailable(String),
    /// The server refused the command (e.g. WRONGTYPE).
    Refused(String),
}

impl std::fmt::Display for BrokerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BrokerError::Unavailable(e) => write!(f, "Redis unavailable: {e}"),
            BrokerError::Refused(e) => write!(f, "Redis refused the command: {e}"),
        }
    }
}

#[derive(Clone)]
pub enum Broker {
    Embedded(Arc<Embedded>),
    Server(Arc<Server>),
}

impl Broker {
    /// Runs one command, `args[0]` being its name.
    pub async fn command(&self, args: Vec<Vec<u8>>) -> Result<Reply, BrokerError> {
        match self {
            Broker::Embedded(e) => Ok(e.command(&args)),
            Broker::Server(s) => s.command(&args).await,
        }
    }

    /// Delivers every message published on `channel` from now on.
    pub fn subscribe(&self, channel: &str) -> mpsc::UnboundedReceiver<Message> {
        match self {
            Broker::Embedded(e) => e.subscribe(channel),
            Broker::Server(s) => s.subscribe(channel),
        }
    }
}

#[derive(Default)]
enum Value {
    #[default]
    Missing,
    Bytes(Vec<u8>),
    Set(BTreeSet<String>),
}

/// The in-process broker.
#[derive(Default)]
pub struct Embedded {
    subscribers: Mutex<HashMap<String, Vec<mpsc::UnboundedSender<Message>>>>,
    data: Mutex<HashMap<String, Value>>,
}

const WRONG_TYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

impl Embedded {
    fn subscribe(&self, channel: &str) -> mpsc::UnboundedReceiver<Message> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner()).entry(channel.to_string()).or_default().push(tx);
        rx
    }

    fn command(&self, args: &[Vec<u8>]) -> Reply {
        let Some(name) = args.first() else { return Reply::Error("ERR empty command".into()) };
        let name = String::from_utf8_lossy(name).to_ascii_uppercase();
        let text = |i: usize| String::from_utf8_lossy(&args[i]).into_owned();
        let arity = |n: usize| args.len() >= n;
        match name.as_str() {
            "PING" => Reply::Status("PONG".into()),
            "PUBLISH" if args.len() == 3 => {
                let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
                let receivers = subs.entry(text(1)).or_default();
                receivers.retain(|tx| tx.send(args[2].clone()).is_ok());
                Reply::Int(receivers.len() as i64)
            }
            "GET" if args.len() == 2 => match self.data().get(&text(1)) {
                Some(Value::Bytes(b)) => Reply::Bulk(Some(b.clone())),
                Some(Value::Set(_)) => Reply::Error(WRONG_TYPE.into()),
                _ => Reply::Bulk(None),
            },
            "SET" if args.len() == 3 => {
                self.data().insert(text(1), Value::Bytes(args[2].clone()));
                Reply::Status("OK".into())
            }
            "INCR" | "DECR" if args.len() == 2 => {
                let mut data = self.data();
                let current = match data.get(&text(1)) {
                    None | Some(Value::Missing) => 0,
                    Some(Value::Bytes(b)) => match String::from_utf8_lossy(b).parse::<i64>() {
                        Ok(n) => n,
                        Err(_) => return Reply::Error("ERR value is not an integer or out of range".into()),
                    },
                    Some(Value::Set(_)) => return Reply::Error(WRONG_TYPE.into()),
                };
                let next = if name == "INCR" { current.checked_add(1) } else { current.checked_sub(1) };
                let Some(next) = next else { return Reply::Error("ERR increment or decrement would overflow".into()) };
                data.insert(text(1), Value::Bytes(next.to_string().into_bytes()));
                Reply::Int(next)
            }
            "DEL" if arity(2) => {
                let mut data = self.data();
                let removed = (1..args.len()).filter(|&i| data.remove(&text(i)).is_some()).count();
                Reply::Int(removed as i64)
            }
            "SADD" | "SREM" if arity(3) => {
                let mut data = self.data();
                let entry = data.entry(text(1)).or_insert_with(|| Value::Set(BTreeSet::new()));
                if matches!(entry, Value::Missing) {
                    *entry = Value::Set(BTreeSet::new());
                }
                let Value::Set(set) = entry else { return Reply::Error(WRONG_TYPE.into()) };
                let changed = (2..args.len())
                    .filter(|&i| if name == "SADD" { set.insert(text(i)) } else { set.remove(&text(i)) })
                    .count();
                if set.is_empty() {
                    data.remove(&text(1));
                }
                Reply::Int(changed as i64)
            }
            "SMEMBERS" if args.len() == 2 => match self.data().get(&text(1)) {
                Some(Value::Set(set)) => {
                    Reply::Array(Some(set.iter().map(|m| Reply::Bulk(Some(m.clone().into_bytes()))).collect()))
                }
                Some(Value::Bytes(_)) => Reply::Error(WRONG_TYPE.into()),
                _ => Reply::Array(Some(Vec::new())),
            },
            "EXISTS" if arity(2) => {
                let data = self.data();
                Reply::Int((1..args.len()).filter(|&i| data.contains_key(&text(i))).count() as i64)
            }
            _ => Reply::Error(format!(
                "ERR the embedded broker does not support `{name}` with {} arguments; run with --redis for a real server",
                args.len() - 1
            )),
        }
    }

    fn data(&self) -> std::sync::MutexGuard<'_, HashMap<String, Value>> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A real Redis server.
pub struct Server {
    address: Address,
    url: String,
    idle: Mutex<Vec<Connection>>,
}

const POOL_SIZE: usize = 8;

impl Server {
    pub fn new(url: &str) -> Result<Server, String> {
        Ok(Server { address: Address::parse(url)?, url: url.to_string(), idle: Mutex::new(Vec::new()) })
    }

    async fn command(&self, args: &[Vec<u8>]) -> Result<Reply, BrokerError> {
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let result = match pooled {
            // A pooled connection may have died with a server restart since
            // it was last used; that failure says nothing about the server
            // now, so the command is tried once more on a fresh connection.
            Some(mut conn) => match conn.command(&refs).await {
                Ok(reply) => Ok((conn, reply)),
                Err(_) => self.fresh(&refs).await,
            },
            None => self.fresh(&refs).await,
        };
        let (conn, reply) = result.map_err(|e| BrokerError::Unavailable(format!("{}: {e}", self.url)))?;
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < POOL_SIZE {
            idle.push(conn);
        }
        match reply {
            Reply::Error(e) => Err(BrokerError::Refused(e)),
            other => Ok(other),
        }
    }

    async fn fresh(&self, args: &[&[u8]]) -> std::io::Result<(Connection, Reply)> {
        let mut conn = Connection::connect(&self.address).await?;
        let reply = conn.command(args).await?;
        Ok((conn, reply))
    }

    fn subscribe(self: &Arc<Self>, channel: &str) -> mpsc::UnboundedReceiver<Message> {
        let (tx, rx) = mpsc::unbounded_channel();
        let server = self.clone();
        let channel = channel.to_string();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match server.listen(&channel, &tx).await {
                    Ok(()) => return, // the receiver is gone: the app stopped
                    Err(e) => {
                        tracing::warn!("Redis subscription to `{channel}` at {} lost: {e}; retrying in {backoff:?}", server.url);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
            }
        });
        rx
    }

    /// Subscribes and forwards messages until the connection fails (`Err`)
    /// or nobody listens any more (`Ok`).
    async fn listen(&self, channel: &str, tx: &mpsc::UnboundedSender<Message>) -> std::io::Result<()> {
        let mut conn = Connection::connect(&self.address).await?;
        conn.send(&[b"SUBSCRIBE", channel.as_bytes()]).await?;
        tracing::info!("subscribed to Redis channel `{channel}` at {}", self.url);
        loop {
            let reply = conn.read().await?;
            if let Reply::Array(Some(parts)) = reply
                && let [Reply::Bulk(Some(kind)), _, Reply::Bulk(Some(payload))] = parts.as_slice()
                && kind == b"message"
                && tx.send(payload.clone()).is_err()
            {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(e: &Embedded, args: &[&str]) -> Reply {
        e.command(&args.iter().map(|a| a.as_bytes().to_vec()).collect::<Vec<_>>())
    }

    #[test]
    fn embedded_publish_reaches_every_subscriber_of_the_channel() {
        let e = Embedded::default();
        let mut a = e.subscribe("orders");
        let mut b = e.subscribe("orders");
        let mut other = e.subscribe("other");
        assert_eq!(cmd(&e, &["PUBLISH", "orders", "hi"]), Reply::Int(2));
        assert_eq!(a.try_recv().unwrap(), b"hi");
        assert_eq!(b.try_recv().unwrap(), b"hi");
        assert!(other.try_recv().is_err());
        drop(a);
        assert_eq!(cmd(&e, &["PUBLISH", "orders", "again"]), Reply::Int(1));
    }

    #[test]
    fn embedded_strings_counters_and_sets() {
        let e = Embedded::default();
        assert_eq!(cmd(&e, &["GET", "k"]), Reply::Bulk(None));
        cmd(&e, &["SET", "k", "v"]);
        assert_eq!(cmd(&e, &["GET", "k"]), Reply::Bulk(Some(b"v".to_vec())));
        assert_eq!(cmd(&e, &["INCR", "n"]), Reply::Int(1));
        assert_eq!(cmd(&e, &["INCR", "n"]), Reply::Int(2));
        assert!(matches!(cmd(&e, &["INCR", "k"]), Reply::Error(_)));
        assert_eq!(cmd(&e, &["SADD", "s", "a", "b", "a"]), Reply::Int(2));
        assert_eq!(cmd(&e, &["SREM", "s", "a"]), Reply::Int(1));
        assert_eq!(cmd(&e, &["SMEMBERS", "s"]), Reply::Array(Some(vec![Reply::Bulk(Some(b"b".to_vec()))])));
        assert!(matches!(cmd(&e, &["GET", "s"]), Reply::Error(_)));
        assert_eq!(cmd(&e, &["DEL", "k", "n", "missing"]), Reply::Int(2));
        assert!(matches!(cmd(&e, &["FLUSHALL"]), Reply::Error(_)));
    }
}
