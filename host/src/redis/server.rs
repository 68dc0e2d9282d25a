//! A real Redis server, through redis-rs: `redis://` or `rediss://` (TLS),
//! `user:password@` or `:password@` for AUTH, `/db` to SELECT a database.
//!
//! - Commands share one [`ConnectionManager`] per address: a multiplexed
//!   connection that reconnects by itself when the server goes away.
//! - Each subscription is a pub/sub connection of its own, renewed with
//!   backoff when it breaks; messages published while it is down are lost,
//!   as with any Redis subscriber (the services' outboxes publish again).
//! - TLS is rustls (the `ring` provider). The server's certificate must
//!   verify against the system's roots, read by rustls-native-certs; a
//!   private CA is trusted by pointing `SSL_CERT_FILE` at a PEM file (or
//!   `SSL_CERT_DIR` at a directory), which then replaces the system roots
//!   (concatenate both to trust both). Spin (OpenSSL) reads the same
//!   variable, so one setting serves both runtimes. There is no switch to
//!   skip the check (redis-rs's `#insecure` is refused).
//! - A password is never shown: every log line and error names the address
//!   as [`redact`] writes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncConnectionConfig, Client, Cmd, ErrorKind, RedisError, Value};
use tokio::sync::{OnceCell, mpsc};

use super::broker::{BrokerError, Message};

/// Commands that change the connection they run on. Components share one
/// connection per address, where a transaction would take in the others'
/// commands and a SELECT would move them all, so these are refused.
#[rustfmt::skip]
const CONNECTION_STATE: [&str; 19] = [
    "AUTH", "HELLO", "SELECT", "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH", "SUBSCRIBE", "PSUBSCRIBE",
    "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR", "QUIT", "RESET", "READONLY", "READWRITE",
];

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const LAST_BACKOFF: Duration = Duration::from_secs(2);

/// `address` with the password of its userinfo replaced by `***`
/// (`rediss://user:***@host:6380`); a userinfo without `:` is all secret.
pub fn redact(address: &str) -> String {
    match userinfo(address) {
        Some((start, end)) => {
            let shown = match address[start..end].split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                None => "***".to_string(),
            };
            format!("{}{shown}{}", &address[..start], &address[end..])
        }
        None => address.to_string(),
    }
}

/// Where the userinfo of `address` is (`start..end`, before its `@`).
fn userinfo(address: &str) -> Option<(usize, usize)> {
    let start = address.find("://").map_or(0, |i| i + 3);
    // The last `@`: a password may hold `@` or `/` (unencoded, it still
    // must not show), and hiding too much is the safe side.
    let end = start + address[start..].rfind('@')?;
    Some((start, end))
}

/// The secret part of the userinfo, as written.
fn secret(address: &str) -> Option<&str> {
    let (start, end) = userinfo(address)?;
    let info = &address[start..end];
    Some(info.split_once(':').map_or(info, |(_, password)| password)).filter(|s| !s.is_empty())
}

pub struct Server {
    /// The address as logs and errors show it.
    shown: String,
    client: Client,
    /// The password as written and as decoded, to scrub from error texts
    /// should a library ever quote it.
    secrets: Vec<String>,
    commands: OnceCell<ConnectionManager>,
    /// Subscriptions without a connection now: the log says so once when
    /// the first one breaks (or cannot connect at start-up), and once when
    /// the last one is subscribed again.
    down: AtomicUsize,
}

impl Server {
    pub fn new(address: &str) -> Result<Server, String> {
        let shown = redact(address);
        if !(address.starts_with("redis://") || address.starts_with("rediss://")) {
            return Err(format!("`{shown}` is not a Redis address (redis://host:port or rediss://host:port)"));
        }
        let mut secrets: Vec<String> = secret(address).map(String::from).into_iter().collect();
        let client = Client::open(address)
            .map_err(|e| scrub(format!("`{shown}` is not a valid Redis address: {e}"), &secrets))?;
        secrets.extend(client.get_connection_info().redis_settings().password().map(String::from));
        Ok(Server { shown, client, secrets, commands: OnceCell::new(), down: AtomicUsize::new(0) })
    }

    /// The address, password redacted.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// `e` as a message that names the address and holds no password.
    fn describe(&self, e: &dyn std::fmt::Display) -> String {
        scrub(format!("Redis at {}: {e}", self.shown), &self.secrets)
    }

    fn error(&self, e: RedisError) -> BrokerError {
        if e.code() == Some("WRONGTYPE") {
            return BrokerError::WrongType;
        }
        match e.kind() {
            ErrorKind::Server(_) | ErrorKind::Extension => BrokerError::Refused(self.describe(&e)),
            _ => BrokerError::Unavailable(self.describe(&e)),
        }
    }

    /// The shared command connection, made on first use; an error (the
    /// server unreachable, the password wrong) leaves none, so the next
    /// call tries again.
    async fn manager(&self) -> Result<ConnectionManager, BrokerError> {
        let manager = self
            .commands
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    // Reconnecting is retried by `command` (once) and by
                    // the next command; the manager itself tries twice.
                    .set_number_of_retries(1)
                    .set_min_delay(FIRST_BACKOFF);
                ConnectionManager::new_with_config(self.client.clone(), config).await
            })
            .await
            .map_err(|e| self.error(e))?;
        Ok(manager.clone())
    }

    /// Connects (and authenticates) if no connection is there yet: what
    /// Spin does when a component opens a connection.
    pub async fn connect(&self) -> Result<(), BrokerError> {
        self.manager().await.map(|_| ())
    }

    /// Runs one command, `args[0]` being its name.
    pub async fn command(&self, args: &[Vec<u8>]) -> Result<Value, BrokerError> {
        let name = String::from_utf8_lossy(args.first().map_or(&[][..], Vec::as_slice)).to_ascii_uppercase();
        if CONNECTION_STATE.contains(&name.as_str()) {
            return Err(BrokerError::Refused(format!(
                "`{name}` changes the state of its connection, which shop-host shares between components; not supported"
            )));
        }
        let mut cmd = Cmd::new();
        for arg in args {
            cmd.arg(arg.as_slice());
        }
        let mut manager = self.manager().await?;
        match cmd.query_async::<Value>(&mut manager).await {
            // The manager reconnects after a dropped connection (a server
            // restart) but fails the command that found it dropped; that
            // says nothing about the server now, so it goes once more.
            Err(e) if e.is_connection_dropped() => cmd.query_async(&mut manager).await.map_err(|e| self.error(e)),
            other => other.map_err(|e| self.error(e)),
        }
    }

    /// Connects, authenticates and PINGs once, for start-up: `Err` when the
    /// server was reached but will not do (a wrong or missing password, no
    /// such database, TLS that fails), which waiting will not mend. A server
    /// that does not answer is `Ok`: it may come up later.
    pub async fn first_contact(&self) -> Result<(), String> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let outcome = async {
            let mut conn = self.client.get_multiplexed_async_connection_with_config(&config).await?;
            redis::cmd("PING").query_async::<Value>(&mut conn).await
        }
        .await;
        match outcome {
            Err(e) if !transient(&e) => Err(self.describe(&e)),
            _ => Ok(()),
        }
    }

    /// Delivers every message published on `channel` from now on, for as
    /// long as the receiver is kept.
    pub fn subscribe(self: &Arc<Self>, channel: &str) -> mpsc::UnboundedReceiver<Message> {
        let (tx, rx) = mpsc::unbounded_channel();
        let server = self.clone();
        let channel = channel.to_string();
        tokio::spawn(async move {
            let mut backoff = FIRST_BACKOFF;
            let mut ever_subscribed = false;
            let mut down = false;
            loop {
                match server.listen(&channel).await {
                    Ok(mut messages) => {
                        backoff = FIRST_BACKOFF;
                        if down {
                            down = false;
                            server.renewed();
                        }
                        if !ever_subscribed {
                            ever_subscribed = true;
                            tracing::info!("subscribed to Redis channel `{channel}` at {}", server.shown);
                        } else {
                            tracing::debug!("subscribed again to Redis channel `{channel}` at {}", server.shown);
                        }
                        while let Some(message) = messages.next().await {
                            if tx.send(message.get_payload_bytes().to_vec()).is_err() {
                                return; // the receiver is gone: the app stopped
                            }
                        }
                        if !down {
                            down = true;
                            server.lost("the connection closed");
                        }
                    }
                    Err(e) => {
                        if !down {
                            down = true;
                            server.lost(&e);
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(LAST_BACKOFF);
                    }
                }
                if tx.is_closed() {
                    return;
                }
            }
        });
        rx
    }

    async fn listen(&self, channel: &str) -> Result<redis::aio::PubSubStream, String> {
        let subscribed = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok::<_, RedisError>(pubsub.into_on_message())
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, subscribed).await {
            Ok(Ok(messages)) => Ok(messages),
            Ok(Err(e)) => Err(self.describe(&e)),
            Err(_) => Err(self.describe(&"connecting timed out")),
        }
    }

    fn lost(&self, why: &str) {
        if self.down.fetch_add(1, Ordering::SeqCst) == 0 {
            let why = why.strip_prefix(&format!("Redis at {}: ", self.shown)).unwrap_or(why);
            tracing::warn!(
                "Redis subscriptions at {} are down ({why}); they retry until the server answers, and messages published meanwhile are lost",
                self.shown
            );
        }
    }

    fn renewed(&self) {
        if self.down.fetch_sub(1, Ordering::SeqCst) == 1 {
            tracing::info!("Redis subscriptions at {} are all in place", self.shown);
        }
    }
}

fn scrub(mut text: String, secrets: &[String]) -> String {
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret.as_str(), "***");
    }
    text
}

/// Whether `e` may go away by itself (the server down, restarting, not
/// resolvable yet), as opposed to a refusal that will not: a wrong or
/// missing password or database (server replies), or TLS that fails —
/// rustls's own words, as redis-rs hands them on only as text.
fn transient(e: &RedisError) -> bool {
    const TLS_FAILURES: [&str; 5] =
        ["certificate", "corrupt message", "received fatal alert", "peer is incompatible", "peer misbehaved"];
    let text = e.to_string();
    e.is_io_error() && !TLS_FAILURES.iter().any(|t| text.contains(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_the_password_and_keeps_the_rest() {
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact("rediss://:s3cret@cache.example.com:6380/2"), "rediss://:***@cache.example.com:6380/2");
        assert_eq!(redact("rediss://shop:s3cret@cache:6380"), "rediss://shop:***@cache:6380");
        assert_eq!(redact("redis://s3cret@cache"), "redis://***@cache");
        // A password holding `@`, `/` or `:` is hidden whole.
        assert_eq!(redact("rediss://shop:p@ss/w:rd@cache:6380"), "rediss://shop:***@cache:6380");
        assert!(!redact("rediss://:p@ss@cache").contains("p@ss"));
    }

    #[test]
    fn a_server_down_is_waited_for_and_a_refusal_is_not() {
        use std::io;
        let refused = RedisError::from(io::Error::new(io::ErrorKind::ConnectionRefused, "Connection refused"));
        let timed_out = RedisError::from(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
        assert!(transient(&refused) && transient(&timed_out));
        let auth = RedisError::from((ErrorKind::AuthenticationFailed, "Password authentication failed"));
        let tls =
            RedisError::from(io::Error::new(io::ErrorKind::InvalidData, "invalid peer certificate: UnknownIssuer"));
        assert!(!transient(&auth) && !transient(&tls));
    }

    #[test]
    fn commands_that_change_the_shared_connection_are_refused() {
        let server = Server::new("redis://:s3cret@127.0.0.1:1").unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        for name in ["MULTI", "select", "SUBSCRIBE"] {
            let outcome = runtime.block_on(server.command(&[name.as_bytes().to_vec(), b"0".to_vec()]));
            assert!(matches!(&outcome, Err(BrokerError::Refused(m)) if m.contains("shares")), "{name}: {outcome:?}");
        }
        // Anything else goes to the server, here one that is not there.
        let outcome = runtime.block_on(server.command(&[b"PING".to_vec()]));
        assert!(
            matches!(&outcome, Err(BrokerError::Unavailable(m)) if m.contains("redis://:***@127.0.0.1:1")),
            "{outcome:?}"
        );
    }

    #[test]
    fn bad_addresses_are_refused_without_showing_the_password() {
        for address in [
            "http://:s3cret@cache:6379",
            "rediss://:s3cret@cache:99999",
            "redis://:s3cret@",
            "redis://:s3cret@cache:6379/x",
        ] {
            let e = Server::new(address).err().unwrap_or_else(|| panic!("{address} accepted"));
            assert!(!e.contains("s3cret"), "{e}");
            assert!(e.contains("***"), "{e}");
        }
        assert!(Server::new("rediss://:s3cret@cache:6380/1").is_ok());
    }
}
