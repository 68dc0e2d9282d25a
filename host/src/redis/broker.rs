//! Where Redis commands and messages go: a real Redis server
//! ([`Server`], through redis-rs), or the embedded in-process broker that
//! lets the shop run with nothing installed.
//!
//! The embedded broker does what the components use Redis for: publish and
//! subscribe (each message to every current subscriber of the channel, and
//! nothing kept for later, as Redis does; `PUBLISH` answers how many got
//! it), strings, counters, sets, and keys that expire (`EXPIRE`, `TTL`;
//! an expired key is dropped when next touched). It is memory only: like
//! pub/sub itself, it keeps nothing across a restart. Its replies are
//! redis-rs [`Value`]s, so both brokers answer a component the same way.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::Value;
use tokio::sync::mpsc;

pub use super::server::Server;

/// A message received on a subscribed channel.
pub type Message = Vec<u8>;

#[derive(Debug)]
pub enum BrokerError {
    /// The server could not be reached, refused the connection (a wrong
    /// password), or the connection broke. The text names the address.
    Unavailable(String),
    /// The server refused the command.
    Refused(String),
    /// WRONGTYPE: the key holds another kind of value.
    WrongType,
}

impl std::fmt::Display for BrokerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BrokerError::Unavailable(e) => write!(f, "Redis unavailable: {e}"),
            BrokerError::Refused(e) => write!(f, "Redis refused the command: {e}"),
            BrokerError::WrongType => f.write_str(WRONG_TYPE),
        }
    }
}

#[derive(Clone)]
pub enum Broker {
    Embedded(Arc<Embedded>),
    Server(Arc<Server>),
}

impl Broker {
    /// Makes sure a connection is there (a real server: connected and
    /// authenticated once); what a component's `open` waits for.
    pub async fn connect(&self) -> Result<(), BrokerError> {
        match self {
            Broker::Embedded(_) => Ok(()),
            Broker::Server(s) => s.connect().await,
        }
    }

    /// Runs one command, `args[0]` being its name.
    pub async fn command(&self, args: Vec<Vec<u8>>) -> Result<Value, BrokerError> {
        match self {
            Broker::Embedded(e) => e.command(&args).map_err(|e| match e {
                e if e.starts_with("WRONGTYPE") => BrokerError::WrongType,
                e => BrokerError::Refused(e),
            }),
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

enum Stored {
    Bytes(Vec<u8>),
    Set(BTreeSet<String>),
}

struct Entry {
    value: Stored,
    expires: Option<Instant>,
}

impl Entry {
    fn new(value: Stored) -> Entry {
        Entry { value, expires: None }
    }
}

/// The in-process broker.
#[derive(Default)]
pub struct Embedded {
    subscribers: Mutex<HashMap<String, Vec<mpsc::UnboundedSender<Message>>>>,
    data: Mutex<HashMap<String, Entry>>,
}

const WRONG_TYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";

/// The keys of the store, expired ones dropped as they are looked at.
struct Keys<'a>(MutexGuard<'a, HashMap<String, Entry>>);

impl Keys<'_> {
    fn live(&mut self, key: &str) -> Option<&mut Entry> {
        if self.0.get(key).is_some_and(|e| e.expires.is_some_and(|t| t <= Instant::now())) {
            self.0.remove(key);
        }
        self.0.get_mut(key)
    }

    fn remove(&mut self, key: &str) -> bool {
        self.live(key).is_some() && self.0.remove(key).is_some()
    }
}

impl Embedded {
    fn subscribe(&self, channel: &str) -> mpsc::UnboundedReceiver<Message> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner()).entry(channel.to_string()).or_default().push(tx);
        rx
    }

    fn keys(&self) -> Keys<'_> {
        Keys(self.data.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Runs one command; `Err` is the error reply Redis would give.
    fn command(&self, args: &[Vec<u8>]) -> Result<Value, String> {
        let Some(name) = args.first() else { return Err("ERR empty command".into()) };
        let name = String::from_utf8_lossy(name).to_ascii_uppercase();
        let text = |i: usize| String::from_utf8_lossy(&args[i]).into_owned();
        let int = |i: usize| text(i).parse::<i64>().map_err(|_| NOT_AN_INTEGER.to_string());
        let arity = |n: usize| args.len() >= n;
        let bytes = |b: &[u8]| Value::BulkString(b.to_vec());
        match name.as_str() {
            "PING" => Ok(Value::SimpleString("PONG".into())),
            "PUBLISH" if args.len() == 3 => {
                let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
                let receivers = subs.entry(text(1)).or_default();
                receivers.retain(|tx| tx.send(args[2].clone()).is_ok());
                Ok(Value::Int(receivers.len() as i64))
            }
            "GET" if args.len() == 2 => match self.keys().live(&text(1)) {
                Some(Entry { value: Stored::Bytes(b), .. }) => Ok(bytes(b)),
                Some(_) => Err(WRONG_TYPE.into()),
                None => Ok(Value::Nil),
            },
            "SET" if args.len() == 3 => {
                // A plain SET drops any expiry the key had, as in Redis.
                self.keys().0.insert(text(1), Entry::new(Stored::Bytes(args[2].clone())));
                Ok(Value::Okay)
            }
            // `SET key value EX seconds`: how the services acknowledge an event.
            "SET" if args.len() == 5 && text(3).eq_ignore_ascii_case("EX") => {
                let seconds = int(4)?;
                if seconds <= 0 {
                    return Err("ERR invalid expire time in 'set' command".into());
                }
                let at = Instant::now()
                    .checked_add(Duration::from_secs(seconds as u64))
                    .ok_or("ERR invalid expire time in 'set' command")?;
                let mut entry = Entry::new(Stored::Bytes(args[2].clone()));
                entry.expires = Some(at);
                self.keys().0.insert(text(1), entry);
                Ok(Value::Okay)
            }
            "MGET" if arity(2) => {
                let mut keys = self.keys();
                Ok(Value::Array(
                    (1..args.len())
                        .map(|i| match keys.live(&text(i)) {
                            Some(Entry { value: Stored::Bytes(b), .. }) => bytes(b),
                            // Redis answers nil for a key of another type.
                            _ => Value::Nil,
                        })
                        .collect(),
                ))
            }
            "INCR" | "DECR" if args.len() == 2 => {
                let mut keys = self.keys();
                let entry = keys.live(&text(1));
                let current = match &entry {
                    None => 0,
                    Some(Entry { value: Stored::Bytes(b), .. }) => {
                        String::from_utf8_lossy(b).parse::<i64>().map_err(|_| NOT_AN_INTEGER.to_string())?
                    }
                    Some(_) => return Err(WRONG_TYPE.into()),
                };
                let next = if name == "INCR" { current.checked_add(1) } else { current.checked_sub(1) };
                let next = next.ok_or("ERR increment or decrement would overflow")?;
                let value = Stored::Bytes(next.to_string().into_bytes());
                match entry {
                    Some(entry) => entry.value = value, // keeps its expiry
                    None => {
                        keys.0.insert(text(1), Entry::new(value));
                    }
                }
                Ok(Value::Int(next))
            }
            "DEL" if arity(2) => {
                let mut keys = self.keys();
                Ok(Value::Int((1..args.len()).filter(|&i| keys.remove(&text(i))).count() as i64))
            }
            "EXISTS" if arity(2) => {
                let mut keys = self.keys();
                Ok(Value::Int((1..args.len()).filter(|&i| keys.live(&text(i)).is_some()).count() as i64))
            }
            "SADD" | "SREM" if arity(3) => {
                let mut keys = self.keys();
                let key = text(1);
                if keys.live(&key).is_none() {
                    if name == "SREM" {
                        return Ok(Value::Int(0));
                    }
                    keys.0.insert(key.clone(), Entry::new(Stored::Set(BTreeSet::new())));
                }
                let Some(Entry { value: Stored::Set(set), .. }) = keys.live(&key) else {
                    return Err(WRONG_TYPE.into());
                };
                let changed = (2..args.len())
                    .filter(|&i| if name == "SADD" { set.insert(text(i)) } else { set.remove(&text(i)) })
                    .count();
                if set.is_empty() {
                    keys.0.remove(&key);
                }
                Ok(Value::Int(changed as i64))
            }
            "SMEMBERS" if args.len() == 2 => match self.keys().live(&text(1)) {
                Some(Entry { value: Stored::Set(set), .. }) => {
                    Ok(Value::Array(set.iter().map(|m| bytes(m.as_bytes())).collect()))
                }
                Some(_) => Err(WRONG_TYPE.into()),
                None => Ok(Value::Array(Vec::new())),
            },
            "EXPIRE" if args.len() == 3 => {
                let seconds = int(2)?;
                let mut keys = self.keys();
                let key = text(1);
                if keys.live(&key).is_none() {
                    return Ok(Value::Int(0));
                }
                if seconds <= 0 {
                    // An expiry in the past deletes the key at once, as in Redis.
                    keys.0.remove(&key);
                    return Ok(Value::Int(1));
                }
                let at = Instant::now()
                    .checked_add(Duration::from_secs(seconds as u64))
                    .ok_or("ERR invalid expire time in 'expire' command")?;
                if let Some(entry) = keys.live(&key) {
                    entry.expires = Some(at);
                }
                Ok(Value::Int(1))
            }
            "TTL" if args.len() == 2 => Ok(Value::Int(match self.keys().live(&text(1)) {
                None => -2,
                Some(Entry { expires: None, .. }) => -1,
                // Whole seconds, rounded as Redis rounds them.
                Some(Entry { expires: Some(at), .. }) => {
                    ((at.saturating_duration_since(Instant::now()).as_millis() + 500) / 1000) as i64
                }
            })),
            _ => Err(format!(
                "ERR the embedded broker does not support `{name}` with {} arguments; run with --redis for a real server",
                args.len() - 1
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(e: &Embedded, args: &[&str]) -> Result<Value, String> {
        e.command(&args.iter().map(|a| a.as_bytes().to_vec()).collect::<Vec<_>>())
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn embedded_publish_reaches_every_subscriber_of_the_channel_and_counts_them() {
        let e = Embedded::default();
        let mut a = e.subscribe("orders");
        let mut b = e.subscribe("orders");
        let mut other = e.subscribe("other");
        assert_eq!(cmd(&e, &["PUBLISH", "orders", "hi"]), Ok(Value::Int(2)));
        assert_eq!(a.try_recv().unwrap(), b"hi");
        assert_eq!(b.try_recv().unwrap(), b"hi");
        assert!(other.try_recv().is_err());
        drop(a);
        assert_eq!(cmd(&e, &["PUBLISH", "orders", "again"]), Ok(Value::Int(1)), "a subscriber gone is not counted");
        assert_eq!(cmd(&e, &["PUBLISH", "nobody", "x"]), Ok(Value::Int(0)));
    }

    #[test]
    fn embedded_strings_counters_and_sets() {
        let e = Embedded::default();
        assert_eq!(cmd(&e, &["GET", "k"]), Ok(Value::Nil));
        assert_eq!(cmd(&e, &["SET", "k", "v"]), Ok(Value::Okay));
        assert_eq!(cmd(&e, &["GET", "k"]), Ok(bulk("v")));
        assert_eq!(cmd(&e, &["INCR", "n"]), Ok(Value::Int(1)));
        assert_eq!(cmd(&e, &["INCR", "n"]), Ok(Value::Int(2)));
        assert!(cmd(&e, &["INCR", "k"]).is_err());
        assert_eq!(cmd(&e, &["SADD", "s", "a", "b", "a"]), Ok(Value::Int(2)));
        assert_eq!(cmd(&e, &["SREM", "s", "a"]), Ok(Value::Int(1)));
        assert_eq!(cmd(&e, &["SMEMBERS", "s"]), Ok(Value::Array(vec![bulk("b")])));
        assert!(cmd(&e, &["GET", "s"]).unwrap_err().starts_with("WRONGTYPE"));
        assert!(cmd(&e, &["SADD", "k", "x"]).unwrap_err().starts_with("WRONGTYPE"));
        assert_eq!(cmd(&e, &["DEL", "k", "n", "missing"]), Ok(Value::Int(2)));
        assert!(cmd(&e, &["FLUSHALL"]).is_err());
    }

    #[test]
    fn embedded_acknowledgements_set_with_an_expiry_and_read_together() {
        let e = Embedded::default();
        assert_eq!(cmd(&e, &["SET", "shop.ack.evt_1.orders", "1", "EX", "60"]), Ok(Value::Okay));
        assert_eq!(cmd(&e, &["SADD", "a-set", "x"]), Ok(Value::Int(1)));
        assert_eq!(
            cmd(&e, &["MGET", "shop.ack.evt_1.orders", "shop.ack.evt_1.payment", "a-set"]),
            Ok(Value::Array(vec![bulk("1"), Value::Nil, Value::Nil]))
        );
        assert!(matches!(cmd(&e, &["TTL", "shop.ack.evt_1.orders"]), Ok(Value::Int(59 | 60))));
        assert!(cmd(&e, &["SET", "k", "1", "EX", "0"]).is_err());
        assert!(cmd(&e, &["SET", "k", "1", "EX", "soon"]).is_err());
        assert!(cmd(&e, &["SET", "k", "1", "PX", "5"]).is_err(), "only the forms the services use");
    }

    #[test]
    fn embedded_sets_as_the_services_use_them() {
        let e = Embedded::default();
        assert_eq!(cmd(&e, &["SMEMBERS", "acks"]), Ok(Value::Array(vec![])));
        assert_eq!(cmd(&e, &["SADD", "acks", "evt_1", "evt_2"]), Ok(Value::Int(2)));
        assert_eq!(cmd(&e, &["SADD", "acks", "evt_2", "evt_3"]), Ok(Value::Int(1)));
        assert_eq!(cmd(&e, &["SMEMBERS", "acks"]), Ok(Value::Array(vec![bulk("evt_1"), bulk("evt_2"), bulk("evt_3")])));
        assert_eq!(cmd(&e, &["SREM", "acks", "evt_1", "evt_9"]), Ok(Value::Int(1)));
        assert_eq!(cmd(&e, &["SREM", "missing", "x"]), Ok(Value::Int(0)));
        assert_eq!(cmd(&e, &["DEL", "acks"]), Ok(Value::Int(1)));
        assert_eq!(cmd(&e, &["SMEMBERS", "acks"]), Ok(Value::Array(vec![])));
        assert_eq!(cmd(&e, &["DEL", "acks"]), Ok(Value::Int(0)));
        // A set emptied by SREM is gone, as in Redis.
        cmd(&e, &["SADD", "one", "x"]).unwrap();
        cmd(&e, &["SREM", "one", "x"]).unwrap();
        assert_eq!(cmd(&e, &["EXISTS", "one"]), Ok(Value::Int(0)));
    }

    #[test]
    fn embedded_keys_expire() {
        let e = Embedded::default();
        assert_eq!(cmd(&e, &["EXPIRE", "missing", "10"]), Ok(Value::Int(0)));
        assert_eq!(cmd(&e, &["TTL", "missing"]), Ok(Value::Int(-2)));
        cmd(&e, &["SADD", "acks", "evt_1"]).unwrap();
        assert_eq!(cmd(&e, &["TTL", "acks"]), Ok(Value::Int(-1)), "no expiry yet");
        assert_eq!(cmd(&e, &["EXPIRE", "acks", "100"]), Ok(Value::Int(1)));
        assert_eq!(cmd(&e, &["TTL", "acks"]), Ok(Value::Int(100)));
        // Adding to the set keeps its expiry; a plain SET of a key drops it.
        cmd(&e, &["SADD", "acks", "evt_2"]).unwrap();
        assert_eq!(cmd(&e, &["TTL", "acks"]), Ok(Value::Int(100)));
        cmd(&e, &["SET", "k", "v"]).unwrap();
        cmd(&e, &["EXPIRE", "k", "100"]).unwrap();
        cmd(&e, &["SET", "k", "w"]).unwrap();
        assert_eq!(cmd(&e, &["TTL", "k"]), Ok(Value::Int(-1)));
        // Zero or a negative time deletes the key at once.
        assert_eq!(cmd(&e, &["EXPIRE", "k", "0"]), Ok(Value::Int(1)));
        assert_eq!(cmd(&e, &["GET", "k"]), Ok(Value::Nil));
        assert_eq!(cmd(&e, &["EXPIRE", "acks", "x"]), Err(NOT_AN_INTEGER.to_string()));

        cmd(&e, &["SADD", "soon", "a"]).unwrap();
        cmd(&e, &["INCR", "counter"]).unwrap();
        cmd(&e, &["EXPIRE", "soon", "1"]).unwrap();
        cmd(&e, &["EXPIRE", "counter", "1"]).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(cmd(&e, &["SMEMBERS", "soon"]), Ok(Value::Array(vec![])));
        assert_eq!(cmd(&e, &["EXISTS", "soon", "counter"]), Ok(Value::Int(0)));
        assert_eq!(cmd(&e, &["TTL", "soon"]), Ok(Value::Int(-2)));
        assert_eq!(cmd(&e, &["DEL", "counter"]), Ok(Value::Int(0)), "an expired key is not there to delete");
        assert_eq!(cmd(&e, &["INCR", "counter"]), Ok(Value::Int(1)), "it starts again from nothing");
        assert_eq!(cmd(&e, &["TTL", "counter"]), Ok(Value::Int(-1)));
    }
}
