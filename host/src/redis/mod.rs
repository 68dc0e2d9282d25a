//! Redis: outbound (`fermyon:spin/redis@2.0.0`, limited to the component's
//! `allowed_outbound_hosts`) and the Redis trigger (`trigger.rs`), both over
//! one [`Brokers`] that decides, per address, between a real server and the
//! embedded broker.

pub mod broker;
mod resp;
pub mod trigger;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

use crate::bindings::redis::fermyon::spin::redis::{self, Error, RedisParameter, RedisResult};
use crate::outbound_http::AllowedHosts;
use broker::{Broker, BrokerError, Embedded, Server};
use resp::Reply;

/// Which broker serves each Redis address of the app.
///
/// The embedded broker serves every address that comes from variable
/// defaults (the manifest's `redis://127.0.0.1:6379` for Spin users), so
/// `shop-host up` needs no Redis; an address set by the user (`--variable`,
/// `SPIN_VARIABLE_*`, a literal in the manifest) goes to that server, and
/// `--redis URL` sends every address to one server.
pub struct Brokers {
    everything_to: Option<Arc<Server>>,
    embedded: Arc<Embedded>,
    embedded_addresses: HashSet<String>,
    servers: Mutex<HashMap<String, Arc<Server>>>,
}

impl Brokers {
    pub fn new(server: Option<&str>, embedded_addresses: HashSet<String>) -> Result<Brokers> {
        let everything_to = server.map(Server::new).transpose().map_err(anyhow::Error::msg)?.map(Arc::new);
        Ok(Brokers {
            everything_to,
            embedded: Arc::new(Embedded::default()),
            embedded_addresses,
            servers: Mutex::new(HashMap::new()),
        })
    }

    pub fn for_address(&self, address: &str) -> Result<Broker, String> {
        if let Some(server) = &self.everything_to {
            return Ok(Broker::Server(server.clone()));
        }
        if self.embedded_addresses.contains(address) {
            return Ok(Broker::Embedded(self.embedded.clone()));
        }
        let mut servers = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = servers.get(address) {
            return Ok(Broker::Server(s.clone()));
        }
        let server = Arc::new(Server::new(address)?);
        servers.insert(address.to_string(), server.clone());
        Ok(Broker::Server(server))
    }

    /// How `address` is served, for the start-up banner.
    pub fn describe(&self, address: &str) -> String {
        match self.for_address(address) {
            Ok(Broker::Embedded(_)) => "embedded broker".to_string(),
            Ok(Broker::Server(_)) => match &self.everything_to {
                Some(_) => "the server given by --redis".to_string(),
                None => address.to_string(),
            },
            Err(e) => e,
        }
    }
}

/// A guest's open connection.
pub struct OpenConnection {
    broker: Broker,
}

/// What one instance may do with Redis.
pub struct RedisState {
    brokers: Arc<Brokers>,
    allowed: Arc<AllowedHosts>,
    table: ResourceTable,
}

impl RedisState {
    pub fn new(brokers: Arc<Brokers>, allowed: Arc<AllowedHosts>) -> Self {
        RedisState { brokers, allowed, table: ResourceTable::new() }
    }

    async fn run(&mut self, conn: &Resource<OpenConnection>, args: Vec<Vec<u8>>) -> Result<Reply, Error> {
        let broker = self.table.get(conn).map_err(|e| Error::Other(e.to_string()))?.broker.clone();
        broker.command(args).await.map_err(|e| match e {
            BrokerError::Refused(m) if m.starts_with("WRONGTYPE") => Error::TypeError,
            other => Error::Other(other.to_string()),
        })
    }
}

pub fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: fn(&mut T) -> &mut RedisState) -> Result<()> {
    redis::add_to_linker::<T, HasSelf<RedisState>>(linker, get).map_err(|e| anyhow::anyhow!("{e:?}"))
}

fn int(reply: Reply) -> Result<i64, Error> {
    match reply {
        Reply::Int(n) => Ok(n),
        _ => Err(Error::TypeError),
    }
}

fn count(reply: Reply) -> Result<u32, Error> {
    int(reply).map(|n| n.clamp(0, u32::MAX as i64) as u32)
}

fn with_strings(parts: &[&str], values: Vec<String>) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.as_bytes().to_vec()).chain(values.into_iter().map(String::into_bytes)).collect()
}

fn flatten(reply: Reply, out: &mut Vec<RedisResult>) {
    match reply {
        Reply::Status(s) => out.push(RedisResult::Status(s)),
        Reply::Error(e) => out.push(RedisResult::Status(e)),
        Reply::Int(n) => out.push(RedisResult::Int64(n)),
        Reply::Bulk(Some(b)) => out.push(RedisResult::Binary(b)),
        Reply::Bulk(None) | Reply::Array(None) => out.push(RedisResult::Nil),
        Reply::Array(Some(items)) => items.into_iter().for_each(|i| flatten(i, out)),
    }
}

impl redis::Host for RedisState {}

impl redis::HostConnection for RedisState {
    async fn open(&mut self, address: String) -> Result<Resource<OpenConnection>, Error> {
        let allowed = address.parse::<http::Uri>().is_ok_and(|uri| self.allowed.allows(&uri));
        if !allowed {
            tracing::warn!("Redis connection to {address} denied: add it to the component's allowed_outbound_hosts");
            return Err(Error::InvalidAddress);
        }
        let broker = self.brokers.for_address(&address).map_err(|_| Error::InvalidAddress)?;
        self.table.push(OpenConnection { broker }).map_err(|_| Error::TooManyConnections)
    }

    async fn publish(&mut self, conn: Resource<OpenConnection>, channel: String, payload: Vec<u8>) -> Result<(), Error> {
        self.run(&conn, vec![b"PUBLISH".to_vec(), channel.into_bytes(), payload]).await.map(|_| ())
    }

    async fn get(&mut self, conn: Resource<OpenConnection>, key: String) -> Result<Option<Vec<u8>>, Error> {
        match self.run(&conn, vec![b"GET".to_vec(), key.into_bytes()]).await? {
            Reply::Bulk(b) => Ok(b),
            _ => Err(Error::TypeError),
        }
    }

    async fn set(&mut self, conn: Resource<OpenConnection>, key: String, value: Vec<u8>) -> Result<(), Error> {
        self.run(&conn, vec![b"SET".to_vec(), key.into_bytes(), value]).await.map(|_| ())
    }

    async fn incr(&mut self, conn: Resource<OpenConnection>, key: String) -> Result<i64, Error> {
        int(self.run(&conn, vec![b"INCR".to_vec(), key.into_bytes()]).await?)
    }

    async fn del(&mut self, conn: Resource<OpenConnection>, keys: Vec<String>) -> Result<u32, Error> {
        count(self.run(&conn, with_strings(&["DEL"], keys)).await?)
    }

    async fn sadd(&mut self, conn: Resource<OpenConnection>, key: String, values: Vec<String>) -> Result<u32, Error> {
        count(self.run(&conn, with_strings(&["SADD", &key], values)).await?)
    }

    async fn smembers(&mut self, conn: Resource<OpenConnection>, key: String) -> Result<Vec<String>, Error> {
        match self.run(&conn, vec![b"SMEMBERS".to_vec(), key.into_bytes()]).await? {
            Reply::Array(Some(items)) => items
                .into_iter()
                .map(|i| match i {
                    Reply::Bulk(Some(b)) => String::from_utf8(b).map_err(|_| Error::TypeError),
                    _ => Err(Error::TypeError),
                })
                .collect(),
            _ => Err(Error::TypeError),
        }
    }

    async fn srem(&mut self, conn: Resource<OpenConnection>, key: String, values: Vec<String>) -> Result<u32, Error> {
        count(self.run(&conn, with_strings(&["SREM", &key], values)).await?)
    }

    async fn execute(
        &mut self,
        conn: Resource<OpenConnection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> Result<Vec<RedisResult>, Error> {
        let mut args = vec![command.into_bytes()];
        args.extend(arguments.into_iter().map(|a| match a {
            RedisParameter::Int64(n) => n.to_string().into_bytes(),
            RedisParameter::Binary(b) => b,
        }));
        let mut out = Vec::new();
        flatten(self.run(&conn, args).await?, &mut out);
        Ok(out)
    }

    async fn drop(&mut self, conn: Resource<OpenConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}
