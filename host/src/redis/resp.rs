//! Just enough of the Redis protocol (RESP2) for what components use:
//! commands as arrays of bulk strings, and the five reply types.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Bulk strings larger than this are refused rather than allocated.
const MAX_BULK: i64 = 512 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

/// A parsed `redis://[user:password@]host[:port][/db]` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    pub db: Option<u32>,
}

impl Address {
    pub fn parse(url: &str) -> Result<Address, String> {
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| format!("`{url}` is not a redis:// address"))?;
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((a, r)) => (Some(a), r),
            None => (None, rest),
        };
        let (hostport, db) = match rest.split_once('/') {
            Some((h, d)) if !d.is_empty() => {
                (h, Some(d.parse::<u32>().map_err(|_| format!("`{url}`: database `{d}` is not a number"))?))
            }
            Some((h, _)) => (h, None),
            None => (rest, None),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| format!("`{url}`: `{p}` is not a port"))?),
            None => (hostport, 6379),
        };
        if host.is_empty() {
            return Err(format!("`{url}` has no host"));
        }
        let (user, password) = match auth {
            Some(a) => match a.split_once(':') {
                Some((u, p)) => ((!u.is_empty()).then(|| u.to_string()), Some(p.to_string())),
                None => (None, Some(a.to_string())),
            },
            None => (None, None),
        };
        Ok(Address { host: host.to_string(), port, user, password, db })
    }
}

pub struct Connection {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Connection {
    pub async fn connect(address: &Address) -> io::Result<Connection> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((address.host.as_str(), address.port)))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connecting to Redis timed out"))??;
        stream.set_nodelay(true)?;
        let (read, write) = stream.into_split();
        let mut conn = Connection { reader: BufReader::new(read), writer: write };
        if let Some(password) = &address.password {
            let reply = match &address.user {
                Some(user) => conn.command(&[b"AUTH", user.as_bytes(), password.as_bytes()]).await?,
                None => conn.command(&[b"AUTH", password.as_bytes()]).await?,
            };
            if let Reply::Error(e) = reply {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, e));
            }
        }
        if let Some(db) = address.db {
            if let Reply::Error(e) = conn.command(&[b"SELECT", db.to_string().as_bytes()]).await? {
                return Err(io::Error::other(e));
            }
        }
        Ok(conn)
    }

    pub async fn send(&mut self, args: &[&[u8]]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
        buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for arg in args {
            buf.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            buf.extend_from_slice(arg);
            buf.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&buf).await
    }

    pub async fn command(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        self.send(args).await?;
        self.read().await
    }

    pub async fn read(&mut self) -> io::Result<Reply> {
        Box::pin(self.read_inner()).await
    }

    async fn read_inner(&mut self) -> io::Result<Reply> {
        let mut line = Vec::new();
        let n = self.reader.read_until(b'\n', &mut line).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "Redis closed the connection"));
        }
        if !line.ends_with(b"\r\n") || line.len() < 3 {
            return Err(bad("a reply line without CRLF"));
        }
        let text = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
        let number = || text.parse::<i64>().map_err(|_| bad("a malformed number"));
        match line[0] {
            b'+' => Ok(Reply::Status(text)),
            b'-' => Ok(Reply::Error(text)),
            b':' => Ok(Reply::Int(number()?)),
            b'$' => {
                let len = number()?;
                if len < 0 {
                    return Ok(Reply::Bulk(None));
                }
                if len > MAX_BULK {
                    return Err(bad("a bulk string too large"));
                }
                let mut data = vec![0; len as usize + 2];
                self.reader.read_exact(&mut data).await?;
                data.truncate(len as usize);
                Ok(Reply::Bulk(Some(data)))
            }
            b'*' => {
                let len = number()?;
                if len < 0 {
                    return Ok(Reply::Array(None));
                }
                let mut items = Vec::with_capacity(len.min(1024) as usize);
                for _ in 0..len {
                    items.push(Box::pin(self.read_inner()).await?);
                }
                Ok(Reply::Array(Some(items)))
            }
            other => Err(bad(&format!("an unknown reply type `{}`", other as char))),
        }
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("Redis sent {what}"))
}

#[cfg(test)]
mod tests {
    use super::Address;

    #[test]
    fn addresses_parse() {
        let a = Address::parse("redis://127.0.0.1:6390").unwrap();
        assert_eq!((a.host.as_str(), a.port, a.db), ("127.0.0.1", 6390, None));
        let a = Address::parse("redis://user:pw@cache/2").unwrap();
        assert_eq!((a.user.as_deref(), a.password.as_deref(), a.port, a.db), (Some("user"), Some("pw"), 6379, Some(2)));
        assert!(Address::parse("http://x").is_err());
        assert!(Address::parse("redis://:99999").is_err());
    }
}
