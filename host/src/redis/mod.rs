//! Redis: outbound (`fermyon:spin/redis@2.0.0`, limited to the component's
//! `allowed_outbound_hosts`) and the Redis trigger (`trigger.rs`), both over
//! one [`Brokers`] that decides, per address, between a real server and the
//! embedded broker.
//!
//! A real server is reached through redis-rs (`server.rs`): `redis://` or
//! `rediss://` (TLS, the certificate checked against the system roots, or
//! against the PEM file `SSL_CERT_FILE` names), with `user:password@` or
//! `:password@` for AUTH and `/db`. Logs and errors show an address with its
//! password as `***` ([`redact`]).

pub mod broker;
mod server;
pub mod trigger;

use tracing::Instrument;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

use crate::bindings::redis::fermyon::spin::redis::{self, Error, RedisParameter, RedisResult};
use crate::allowed_hosts::AllowedHosts;
use ::redis::Value;
use broker::{Broker, BrokerError, Embedded, Server};
pub use server::redact;

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
        let everything_to =
            server.map(Server::new).transpose().map_err(|e| anyhow::anyhow!("--redis: {e}"))?.map(Arc::new);
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
            Ok(Broker::Server(server)) => match &self.everything_to {
                Some(_) => format!("the server given by --redis, {}", server.shown()),
                None => server.shown().to_string(),
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

    async fn run(&mut self, conn: &Resource<OpenConnection>, args: Vec<Vec<u8>>) -> Result<Value, Error> {
        let broker = self.table.get(conn).map_err(|e| Error::Other(e.to_string()))?.broker.clone();
        let command = String::from_utf8_lossy(args.first().map_or(&[][..], Vec::as_slice)).to_ascii_uppercase();
        // A publish is named by its channel (`shop.order.placed publish`);
        // other commands by the command alone, never their keys.
        let publish = (command == "PUBLISH").then(|| String::from_utf8_lossy(args.get(1).map_or(&[][..], Vec::as_slice)).into_owned());
        let span = match &publish {
            Some(channel) => crate::telemetry::publish_span("redis", channel),
            None => crate::telemetry::database_span("redis", &command, ""),
        };
        let result = broker.command(args).instrument(span.clone()).await.map_err(|e| match e {
            BrokerError::WrongType => Error::TypeError,
            other => Error::Other(other.to_string()),
        });
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        if let (Some(channel), Some(m)) = (&publish, crate::telemetry::metrics::get()) {
            m.redis_publishes.with_label_values(&[channel.as_str(), if result.is_ok() { "ok" } else { "failed" }]).inc();
        }
        result
    }
}

pub fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: fn(&mut T) -> &mut RedisState) -> Result<()> {
    redis::add_to_linker::<T, HasSelf<RedisState>>(linker, get).map_err(|e| anyhow::anyhow!("{e:?}"))
}

fn int(value: Value) -> Result<i64, Error> {
    match value {
        Value::Int(n) => Ok(n),
        _ => Err(Error::TypeError),
    }
}

fn count(value: Value) -> Result<u32, Error> {
    int(value).map(|n| n.clamp(0, u32::MAX as i64) as u32)
}

fn with_strings(parts: &[&str], values: Vec<String>) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.as_bytes().to_vec()).chain(values.into_iter().map(String::into_bytes)).collect()
}

/// A reply as `execute` hands it to the component, the way Spin maps
/// redis-rs values: arrays (and sets) flattened into one list; `OK` and
/// other simple strings as statuses; doubles and big numbers as their
/// text; booleans as 0 or 1; maps, attributes, verbatim strings and pushes
/// refused.
fn flatten(value: Value, out: &mut Vec<RedisResult>) -> Result<(), Error> {
    let unsupported = |what: &str| Err(Error::Other(format!("Redis {what} replies are not supported")));
    match value {
        Value::Nil => out.push(RedisResult::Nil),
        Value::Int(n) => out.push(RedisResult::Int64(n)),
        Value::BulkString(b) => out.push(RedisResult::Binary(b)),
        Value::SimpleString(s) => out.push(RedisResult::Status(s)),
        Value::Okay => out.push(RedisResult::Status("OK".to_string())),
        Value::Array(items) | Value::Set(items) => {
            for item in items {
                flatten(item, out)?;
            }
        }
        Value::Double(d) => out.push(RedisResult::Binary(d.to_string().into_bytes())),
        Value::Boolean(b) => out.push(RedisResult::Int64(b.into())),
        Value::BigNumber(n) => out.push(RedisResult::Binary(n)),
        Value::ServerError(e) => return Err(Error::Other(format!("{e:?}"))),
        Value::Map(_) => return unsupported("map"),
        Value::Attribute { .. } => return unsupported("attribute"),
        Value::VerbatimString { .. } => return unsupported("verbatim string"),
        Value::Push { .. } => return unsupported("pub/sub"),
        _ => return unsupported("this kind of"),
    }
    Ok(())
}

impl redis::Host for RedisState {}

impl redis::HostConnection for RedisState {
    async fn open(&mut self, address: String) -> Result<Resource<OpenConnection>, Error> {
        let allowed = address.parse::<http::Uri>().is_ok_and(|uri| self.allowed.allows(&uri));
        if !allowed {
            tracing::warn!(
                "Redis connection to {} denied: add it to the component's allowed_outbound_hosts",
                redact(&address)
            );
            return Err(Error::InvalidAddress);
        }
        let broker = self.brokers.for_address(&address).map_err(|e| {
            tracing::warn!("Redis connection refused: {e}");
            Error::InvalidAddress
        })?;
        // As in Spin, opening connects: an unreachable server or a wrong
        // password fails here (once connected, the connection is shared and
        // reconnects by itself, so a later open does no I/O).
        broker.connect().await.map_err(|e| Error::Other(e.to_string()))?;
        self.table.push(OpenConnection { broker }).map_err(|_| Error::TooManyConnections)
    }

    async fn publish(
        &mut self,
        conn: Resource<OpenConnection>,
        channel: String,
        payload: Vec<u8>,
    ) -> Result<(), Error> {
        self.run(&conn, vec![b"PUBLISH".to_vec(), channel.into_bytes(), payload]).await.map(|_| ())
    }

    async fn get(&mut self, conn: Resource<OpenConnection>, key: String) -> Result<Option<Vec<u8>>, Error> {
        match self.run(&conn, vec![b"GET".to_vec(), key.into_bytes()]).await? {
            Value::BulkString(b) => Ok(Some(b)),
            Value::Nil => Ok(None),
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
            Value::Array(items) | Value::Set(items) => items
                .into_iter()
                .map(|i| match i {
                    Value::BulkString(b) => String::from_utf8(b).map_err(|_| Error::TypeError),
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
        flatten(self.run(&conn, args).await?, &mut out)?;
        Ok(out)
    }

    async fn drop(&mut self, conn: Resource<OpenConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(value: Value) -> Result<Vec<RedisResult>, Error> {
        let mut out = Vec::new();
        flatten(value, &mut out).map(|()| out)
    }

    #[test]
    fn execute_replies_are_flattened_as_spin_does() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let reply = Value::Array(vec![
            Value::Okay,
            Value::Int(3),
            Value::Nil,
            Value::Array(vec![bulk("a"), Value::Set(vec![bulk("b")])]),
            Value::SimpleString("QUEUED".into()),
            Value::Boolean(true),
            Value::Double(1.5),
        ]);
        let expected = vec![
            RedisResult::Status("OK".into()),
            RedisResult::Int64(3),
            RedisResult::Nil,
            RedisResult::Binary(b"a".to_vec()),
            RedisResult::Binary(b"b".to_vec()),
            RedisResult::Status("QUEUED".into()),
            RedisResult::Int64(1),
            RedisResult::Binary(b"1.5".to_vec()),
        ];
        let got = flat(reply).unwrap();
        assert_eq!(format!("{got:?}"), format!("{expected:?}"));
        assert!(flat(Value::Map(vec![(bulk("k"), bulk("v"))])).is_err());
        assert!(flat(Value::Array(vec![])).unwrap().is_empty());
    }
}
