//! Outbound PostgreSQL (`spin:postgres/postgres@4.0.0`), through
//! tokio-postgres, to the servers the component's `allowed_outbound_hosts`
//! names as `postgres://host:port` (port 5432 when left out).
//!
//! `open` takes a libpq connection string, key=value
//! (`host=… port=… user=… dbname=…`) or URL (`postgres://user@host/db`),
//! checks every host in it, and connects at once, without TLS: a string that
//! asks for TLS (`sslmode=require`) is refused, as are Unix sockets. Each
//! connection is one server session, so `pg_backend_pid()` stays the same
//! across its queries. Values map as Spin maps them (see [`read_value`] and
//! [`parameter`]); a column type with no mapping comes back as
//! `unsupported` with the value's binary form.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use bytes::{BufMut, BytesMut};
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use rust_decimal::Decimal;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::types::{FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Config, NoTls, Row};
use tracing::Instrument;
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

use crate::allowed_hosts::AllowedHosts;
use crate::bindings::postgres::spin::postgres::postgres::{
    self as pg, Column, DbDataType, DbError, DbValue, Error, Interval, ParameterValue, QueryError, RangeBoundKind, RowSet,
};

/// How long `open` waits for the server when the string sets no `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A guest's connection: one server session.
pub struct OpenConnection {
    client: Client,
    /// Drives the session's socket; ends when the client is dropped.
    _io: tokio::task::JoinHandle<()>,
}

/// What one instance may do with PostgreSQL.
pub struct PostgresState {
    allowed: Arc<AllowedHosts>,
    table: ResourceTable,
}

impl PostgresState {
    pub fn new(allowed: Arc<AllowedHosts>) -> Self {
        PostgresState { allowed, table: ResourceTable::new() }
    }

    fn client(&self, conn: &Resource<OpenConnection>) -> Result<&Client, Error> {
        Ok(&self.table.get(conn).map_err(|e| Error::Other(e.to_string()))?.client)
    }
}

pub fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: fn(&mut T) -> &mut PostgresState) -> Result<()> {
    pg::add_to_linker::<T, HasSelf<PostgresState>>(linker, get).map_err(|e| anyhow::anyhow!("{e:?}"))
}

/// Why `address` may not be opened, if it may not: a host the component is
/// not granted, a Unix socket, or TLS asked for.
fn refusal(config: &Config, allowed: &AllowedHosts) -> Option<String> {
    if config.get_hosts().is_empty() {
        return Some("the connection string names no host".into());
    }
    if config.get_ssl_mode() == SslMode::Require {
        return Some("TLS (sslmode=require) is not supported by shop-host".into());
    }
    let ports = config.get_ports();
    for (i, host) in config.get_hosts().iter().enumerate() {
        let Host::Tcp(name) = host else {
            return Some("Unix-socket hosts are not supported; give a host name or address".into());
        };
        let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        if !allowed.allows_endpoint("postgres", &name.to_ascii_lowercase(), port) {
            return Some(format!(
                "address postgres://{name}:{port} is not permitted: add it to the component's allowed_outbound_hosts"
            ));
        }
    }
    None
}

fn query_error(e: tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        // As Spin fills it: the error's debug text, and every field the
        // server sent beyond the ones the record has.
        Some(db) => Error::QueryFailed(QueryError::DbError(DbError {
            as_text: format!("{e:?}"),
            severity: db.severity().to_string(),
            code: db.code().code().to_string(),
            message: db.message().to_string(),
            detail: db.detail().map(str::to_string),
            extras: [
                ("hint", db.hint()),
                ("schema", db.schema()),
                ("table", db.table()),
                ("column", db.column()),
                ("constraint", db.constraint()),
                ("routine", db.routine()),
                ("file", db.file()),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v.to_string())))
            .chain(db.line().map(|line| ("line".to_string(), line.to_string())))
            .collect(),
        })),
        None => Error::QueryFailed(QueryError::Text(match e.source() {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        })),
    }
}

fn span(statement: &str) -> tracing::Span {
    crate::telemetry::database_span("postgresql", crate::telemetry::statement_kind(statement), "")
}

impl pg::Host for PostgresState {}

impl pg::HostConnection for PostgresState {
    async fn open(&mut self, address: String) -> Result<Resource<OpenConnection>, Error> {
        let mut config: Config =
            address.parse().map_err(|e| Error::ConnectionFailed(format!("invalid connection string: {e}")))?;
        if let Some(why) = refusal(&config, &self.allowed) {
            tracing::warn!("PostgreSQL connection refused: {why}");
            return Err(Error::ConnectionFailed(why));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let (client, connection) = config
            .connect(NoTls)
            .instrument(crate::telemetry::database_span("postgresql", "CONNECT", ""))
            .await
            .map_err(|e| Error::ConnectionFailed(match e.source() { Some(c) => format!("{e}: {c}"), None => e.to_string() }))?;
        let io = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("PostgreSQL session ended: {e}");
            }
        });
        self.table.push(OpenConnection { client, _io: io }).map_err(|e| Error::Other(e.to_string()))
    }

    async fn query(&mut self, conn: Resource<OpenConnection>, statement: String, params: Vec<ParameterValue>) -> Result<RowSet, Error> {
        let client = self.client(&conn)?;
        let params = params.into_iter().map(parameter).collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as _).collect();
        let span = span(&statement);
        let result = async {
            let prepared = client.prepare(&statement).await.map_err(query_error)?;
            let rows = client.query(&prepared, &refs).await.map_err(query_error)?;
            let columns = prepared
                .columns()
                .iter()
                .map(|c| Column { name: c.name().to_string(), data_type: data_type(c.type_()) })
                .collect();
            let rows = rows.iter().map(read_row).collect::<Result<_, _>>()?;
            Ok(RowSet { columns, rows })
        }
        .instrument(span.clone())
        .await;
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        result
    }

    async fn execute(&mut self, conn: Resource<OpenConnection>, statement: String, params: Vec<ParameterValue>) -> Result<u64, Error> {
        let client = self.client(&conn)?;
        let params = params.into_iter().map(parameter).collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as _).collect();
        let span = span(&statement);
        let result = client.execute(statement.as_str(), &refs).instrument(span.clone()).await.map_err(query_error);
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        result
    }

    async fn drop(&mut self, conn: Resource<OpenConnection>) -> wasmtime::Result<()> {
        let _ = self.table.delete(conn);
        Ok(())
    }
}

// ---- values the guest sends ---------------------------------------------------

type Parameter = Box<dyn ToSql + Send + Sync>;

fn bad(what: &str, value: &str) -> Error {
    Error::BadParameter(format!("`{value}` is not a valid {what}"))
}

fn decimal(s: &str) -> Result<Decimal, Error> {
    Decimal::from_str_exact(s).map_err(|_| bad("decimal", s))
}

fn date((y, m, d): (i32, u8, u8)) -> Result<NaiveDate, Error> {
    NaiveDate::from_ymd_opt(y, m.into(), d.into()).ok_or_else(|| bad("date", &format!("{y}-{m}-{d}")))
}

fn time((h, m, s, ns): (u8, u8, u8, u32)) -> Result<NaiveTime, Error> {
    NaiveTime::from_hms_nano_opt(h.into(), m.into(), s.into(), ns).ok_or_else(|| bad("time", &format!("{h}:{m}:{s}.{ns:09}")))
}

/// A guest's parameter as a value tokio-postgres can send.
fn parameter(value: ParameterValue) -> Result<Parameter, Error> {
    Ok(match value {
        ParameterValue::Boolean(v) => Box::new(v),
        ParameterValue::Int8(v) => Box::new(v),
        ParameterValue::Int16(v) => Box::new(v),
        ParameterValue::Int32(v) => Box::new(v),
        ParameterValue::Int64(v) => Box::new(v),
        ParameterValue::Floating32(v) => Box::new(v),
        ParameterValue::Floating64(v) => Box::new(v),
        ParameterValue::Str(v) => Box::new(v),
        ParameterValue::Binary(v) => Box::new(v),
        ParameterValue::Date(v) => Box::new(date(v)?),
        ParameterValue::Time(v) => Box::new(time(v)?),
        ParameterValue::Datetime((y, mo, d, h, mi, s, ns)) => Box::new(NaiveDateTime::new(date((y, mo, d))?, time((h, mi, s, ns))?)),
        ParameterValue::Timestamp(secs) => {
            Box::new(chrono::DateTime::from_timestamp(secs, 0).ok_or_else(|| bad("Unix timestamp", &secs.to_string()))?)
        }
        ParameterValue::Uuid(v) => Box::new(uuid::Uuid::parse_str(&v).map_err(|_| bad("UUID", &v))?),
        ParameterValue::Jsonb(v) => Box::new(
            serde_json::from_slice::<serde_json::Value>(&v).map_err(|e| Error::BadParameter(format!("invalid JSON: {e}")))?,
        ),
        ParameterValue::Decimal(v) => Box::new(decimal(&v)?),
        ParameterValue::RangeInt32((lo, hi)) => Box::new(Range { lower: lo.map(bound_of), upper: hi.map(bound_of) }),
        ParameterValue::RangeInt64((lo, hi)) => Box::new(Range { lower: lo.map(bound_of), upper: hi.map(bound_of) }),
        ParameterValue::RangeDecimal((lo, hi)) => {
            let dec = |b: Option<(String, RangeBoundKind)>| b.map(|(v, k)| Ok::<_, Error>((decimal(&v)?, k == RangeBoundKind::Inclusive))).transpose();
            Box::new(Range { lower: dec(lo)?, upper: dec(hi)? })
        }
        ParameterValue::ArrayInt32(v) => Box::new(v),
        ParameterValue::ArrayInt64(v) => Box::new(v),
        ParameterValue::ArrayDecimal(v) => {
            Box::new(v.into_iter().map(|d| d.as_deref().map(decimal).transpose()).collect::<Result<Vec<_>, _>>()?)
        }
        ParameterValue::ArrayStr(v) => Box::new(v),
        ParameterValue::Interval(i) => Box::new(PgInterval(i.micros, i.days, i.months)),
        ParameterValue::DbNull => Box::new(Null),
    })
}

fn bound_of<T>((value, kind): (T, RangeBoundKind)) -> (T, bool) {
    (value, kind == RangeBoundKind::Inclusive)
}

fn kind_of(inclusive: bool) -> RangeBoundKind {
    if inclusive { RangeBoundKind::Inclusive } else { RangeBoundKind::Exclusive }
}

/// SQL NULL for a parameter of any type.
#[derive(Debug)]
struct Null;

impl ToSql for Null {
    fn to_sql(&self, _: &Type, _: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        Ok(IsNull::Yes)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    to_sql_checked!();
}

/// `interval` in PostgreSQL's binary form: microseconds, days, months.
#[derive(Debug)]
struct PgInterval(i64, i32, i32);

impl ToSql for PgInterval {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        out.put_i64(self.0);
        out.put_i32(self.1);
        out.put_i32(self.2);
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
    to_sql_checked!();
}

impl<'a> FromSql<'a> for PgInterval {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        let raw: [u8; 16] = raw.try_into().map_err(|_| "an interval is 16 bytes")?;
        let micros = i64::from_be_bytes(raw[0..8].try_into()?);
        let days = i32::from_be_bytes(raw[8..12].try_into()?);
        let months = i32::from_be_bytes(raw[12..16].try_into()?);
        Ok(PgInterval(micros, days, months))
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
}

// Range flags of PostgreSQL's binary range format.
const RANGE_EMPTY: u8 = 0x01;
const RANGE_LB_INC: u8 = 0x02;
const RANGE_UB_INC: u8 = 0x04;
const RANGE_LB_INF: u8 = 0x08;
const RANGE_UB_INF: u8 = 0x10;

/// A range (`int4range`, `int8range`, `numrange`): each bound, when there is
/// one, with whether it is inclusive. An empty range reads as `(0,0)`, the
/// same set.
#[derive(Debug)]
struct Range<T> {
    lower: Option<(T, bool)>,
    upper: Option<(T, bool)>,
}

fn element_type(ty: &Type) -> Option<&Type> {
    match ty.kind() {
        Kind::Range(element) => Some(element),
        _ => None,
    }
}

impl<T: ToSql + std::fmt::Debug> ToSql for Range<T> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        let element = element_type(ty).ok_or("not a range type")?;
        let mut flags = 0;
        match &self.lower {
            None => flags |= RANGE_LB_INF,
            Some((_, true)) => flags |= RANGE_LB_INC,
            Some(_) => {}
        }
        match &self.upper {
            None => flags |= RANGE_UB_INF,
            Some((_, true)) => flags |= RANGE_UB_INC,
            Some(_) => {}
        }
        out.put_u8(flags);
        for (value, _) in self.lower.iter().chain(self.upper.iter()) {
            let at = out.len();
            out.put_i32(0);
            if let IsNull::Yes = value.to_sql(element, out)? {
                return Err("a range bound cannot be NULL".into());
            }
            let len = i32::try_from(out.len() - at - 4)?;
            out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        element_type(ty).is_some_and(T::accepts)
    }
    to_sql_checked!();
}

impl<'a, T: FromSql<'a> + Default> FromSql<'a> for Range<T> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        let element = element_type(ty).ok_or("not a range type")?;
        let (&flags, mut rest) = raw.split_first().ok_or("empty range value")?;
        if flags & RANGE_EMPTY != 0 {
            return Ok(Range { lower: Some((T::default(), false)), upper: Some((T::default(), false)) });
        }
        let mut bound = |present: bool, inclusive: bool| -> Result<Option<(T, bool)>, Box<dyn StdError + Sync + Send>> {
            if !present {
                return Ok(None);
            }
            let (len, tail) = rest.split_at_checked(4).ok_or("truncated range value")?;
            let len = usize::try_from(i32::from_be_bytes(len.try_into()?))?;
            let (value, tail) = tail.split_at_checked(len).ok_or("truncated range value")?;
            rest = tail;
            Ok(Some((T::from_sql(element, value)?, inclusive)))
        };
        let lower = bound(flags & RANGE_LB_INF == 0, flags & RANGE_LB_INC != 0)?;
        let upper = bound(flags & RANGE_UB_INF == 0, flags & RANGE_UB_INC != 0)?;
        Ok(Range { lower, upper })
    }
    fn accepts(ty: &Type) -> bool {
        element_type(ty).is_some_and(T::accepts)
    }
}

/// Any value, as its binary form, for the types with no mapping.
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

// ---- values the guest receives ------------------------------------------------

fn data_type(ty: &Type) -> DbDataType {
    match *ty {
        Type::BOOL => DbDataType::Boolean,
        Type::CHAR => DbDataType::Int8,
        Type::INT2 => DbDataType::Int16,
        Type::INT4 => DbDataType::Int32,
        Type::INT8 => DbDataType::Int64,
        Type::FLOAT4 => DbDataType::Floating32,
        Type::FLOAT8 => DbDataType::Floating64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => DbDataType::Str,
        Type::BYTEA => DbDataType::Binary,
        Type::DATE => DbDataType::Date,
        Type::TIME => DbDataType::Time,
        Type::TIMESTAMP | Type::TIMESTAMPTZ => DbDataType::Datetime,
        Type::UUID => DbDataType::Uuid,
        Type::JSON | Type::JSONB => DbDataType::Jsonb,
        Type::NUMERIC => DbDataType::Decimal,
        Type::INT4_RANGE => DbDataType::RangeInt32,
        Type::INT8_RANGE => DbDataType::RangeInt64,
        Type::NUM_RANGE => DbDataType::RangeDecimal,
        Type::INT4_ARRAY => DbDataType::ArrayInt32,
        Type::INT8_ARRAY => DbDataType::ArrayInt64,
        Type::NUMERIC_ARRAY => DbDataType::ArrayDecimal,
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => DbDataType::ArrayStr,
        Type::INTERVAL => DbDataType::Interval,
        _ => DbDataType::Other(ty.name().to_string()),
    }
}

fn read_row(row: &Row) -> Result<Vec<DbValue>, Error> {
    (0..row.len()).map(|i| read_value(row, i)).collect()
}

fn conversion(row: &Row, i: usize, e: tokio_postgres::Error) -> Error {
    let column = &row.columns()[i];
    Error::ValueConversionFailed(format!("column `{}` ({}): {e}", column.name(), column.type_()))
}

fn decimal_text(d: Decimal) -> String {
    d.to_string()
}

/// Column `i` of `row` as the guest sees it; NULL is `db-null` whatever the type.
fn read_value(row: &Row, i: usize) -> Result<DbValue, Error> {
    fn get<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> Result<Option<T>, Error> {
        row.try_get::<_, Option<T>>(i).map_err(|e| conversion(row, i, e))
    }
    let ty = row.columns()[i].type_().clone();
    let value = match ty {
        Type::BOOL => get::<bool>(row, i)?.map(DbValue::Boolean),
        Type::CHAR => get::<i8>(row, i)?.map(DbValue::Int8),
        Type::INT2 => get::<i16>(row, i)?.map(DbValue::Int16),
        Type::INT4 => get::<i32>(row, i)?.map(DbValue::Int32),
        Type::INT8 => get::<i64>(row, i)?.map(DbValue::Int64),
        Type::FLOAT4 => get::<f32>(row, i)?.map(DbValue::Floating32),
        Type::FLOAT8 => get::<f64>(row, i)?.map(DbValue::Floating64),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => get::<String>(row, i)?.map(DbValue::Str),
        Type::BYTEA => get::<Vec<u8>>(row, i)?.map(DbValue::Binary),
        Type::DATE => get::<NaiveDate>(row, i)?.map(|d| DbValue::Date(date_tuple(d))),
        Type::TIME => get::<NaiveTime>(row, i)?.map(|t| DbValue::Time(time_tuple(t))),
        Type::TIMESTAMP => get::<NaiveDateTime>(row, i)?.map(|dt| DbValue::Datetime(datetime_tuple(dt))),
        Type::TIMESTAMPTZ => {
            get::<chrono::DateTime<chrono::Utc>>(row, i)?.map(|dt| DbValue::Datetime(datetime_tuple(dt.naive_utc())))
        }
        Type::UUID => get::<uuid::Uuid>(row, i)?.map(|u| DbValue::Uuid(u.hyphenated().to_string())),
        Type::JSON | Type::JSONB => get::<serde_json::Value>(row, i)?
            .map(|j| serde_json::to_vec(&j).map(DbValue::Jsonb).map_err(|e| Error::ValueConversionFailed(e.to_string())))
            .transpose()?,
        Type::NUMERIC => get::<Decimal>(row, i)?.map(|d| DbValue::Decimal(decimal_text(d))),
        Type::INT4_RANGE => get::<Range<i32>>(row, i)?.map(|r| DbValue::RangeInt32(wit_range(r, |v| v))),
        Type::INT8_RANGE => get::<Range<i64>>(row, i)?.map(|r| DbValue::RangeInt64(wit_range(r, |v| v))),
        Type::NUM_RANGE => get::<Range<Decimal>>(row, i)?.map(|r| DbValue::RangeDecimal(wit_range(r, decimal_text))),
        Type::INT4_ARRAY => get::<Vec<Option<i32>>>(row, i)?.map(DbValue::ArrayInt32),
        Type::INT8_ARRAY => get::<Vec<Option<i64>>>(row, i)?.map(DbValue::ArrayInt64),
        Type::NUMERIC_ARRAY => get::<Vec<Option<Decimal>>>(row, i)?
            .map(|v| DbValue::ArrayDecimal(v.into_iter().map(|d| d.map(decimal_text)).collect())),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => get::<Vec<Option<String>>>(row, i)?.map(DbValue::ArrayStr),
        Type::INTERVAL => get::<PgInterval>(row, i)?.map(|PgInterval(micros, days, months)| DbValue::Interval(Interval { micros, days, months })),
        _ => get::<Raw>(row, i)?.map(|Raw(bytes)| DbValue::Unsupported(bytes)),
    };
    Ok(value.unwrap_or(DbValue::DbNull))
}

type WitBound<U> = Option<(U, RangeBoundKind)>;

fn wit_range<T, U>(r: Range<T>, f: impl Fn(T) -> U) -> (WitBound<U>, WitBound<U>) {
    let bound = |b: Option<(T, bool)>| b.map(|(v, inclusive)| (f(v), kind_of(inclusive)));
    (bound(r.lower), bound(r.upper))
}

fn date_tuple(d: NaiveDate) -> (i32, u8, u8) {
    (d.year(), d.month() as u8, d.day() as u8)
}

fn time_tuple(t: NaiveTime) -> (u8, u8, u8, u32) {
    (t.hour() as u8, t.minute() as u8, t.second() as u8, t.nanosecond())
}

fn datetime_tuple(dt: NaiveDateTime) -> (i32, u8, u8, u8, u8, u8, u32) {
    let (y, mo, d) = date_tuple(dt.date());
    let (h, mi, s, ns) = time_tuple(dt.time());
    (y, mo, d, h, mi, s, ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn connection_strings_are_checked_against_allowed_hosts() {
        let config: Config = "host=localhost port=5433 user=postgres dbname=x".parse().unwrap();
        assert_eq!(refusal(&config, &hosts(&["*://localhost:5433"])), None);
        assert_eq!(refusal(&config, &hosts(&["postgres://localhost:5433"])), None);
        assert!(refusal(&config, &hosts(&["postgres://localhost"])).unwrap().contains("postgres://localhost:5433"));
        assert!(refusal(&config, &hosts(&[])).is_some());
        let url: Config = "postgres://user@db.example:5432/shop".parse().unwrap();
        assert_eq!(refusal(&url, &hosts(&["postgres://db.example"])), None);
        let tls: Config = "host=localhost sslmode=require".parse().unwrap();
        assert!(refusal(&tls, &hosts(&["*://*:*"])).unwrap().contains("TLS"));
        let socket: Config = "host=/var/run/postgresql".parse().unwrap();
        assert!(refusal(&socket, &hosts(&["*://*:*"])).unwrap().contains("Unix"));
    }

    #[test]
    fn ranges_round_trip_through_the_binary_form() {
        let ty = Type::INT4_RANGE;
        let range = Range { lower: Some((31, true)), upper: None::<(i32, bool)> };
        let mut buf = BytesMut::new();
        range.to_sql(&ty, &mut buf).unwrap();
        let back = Range::<i32>::from_sql(&ty, &buf).unwrap();
        assert_eq!((back.lower, back.upper), (Some((31, true)), None));
        assert!(Range::<i32>::from_sql(&ty, &[0x02, 0, 0]).is_err(), "a truncated bound is refused");
        let empty = Range::<i32>::from_sql(&ty, &[RANGE_EMPTY]).unwrap();
        assert_eq!((empty.lower, empty.upper), (Some((0, false)), Some((0, false))));
    }

    #[test]
    fn bad_parameters_say_what_is_wrong() {
        assert!(matches!(parameter(ParameterValue::Uuid("nope".into())), Err(Error::BadParameter(m)) if m.contains("UUID")));
        assert!(matches!(parameter(ParameterValue::Decimal("1.2.3".into())), Err(Error::BadParameter(m)) if m.contains("decimal")));
        assert!(matches!(parameter(ParameterValue::Date((2024, 2, 30))), Err(Error::BadParameter(_))));
        assert!(matches!(parameter(ParameterValue::Jsonb(b"{".to_vec())), Err(Error::BadParameter(m)) if m.contains("JSON")));
    }
}
