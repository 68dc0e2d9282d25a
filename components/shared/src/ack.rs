//! Acknowledgements: how a producer learns that the consumers of an event
//! have it.
//!
//! A consumer that has applied an event (or gave up on it, keeping it as a
//! dead letter) sets the Redis key `shop.ack.<event id>.<consumer>`; the
//! producer's outbox keeps the event due, re-publishing it, until the key of
//! every consumer [`crate::event::consumers`] names for its type is there.
//!
//! Why acknowledgements in Redis: the services share nothing else (each owns
//! its SQLite database, and a Redis-triggered component may not call another
//! over service chaining on Spin), and every one of them already talks to
//! that Redis. Lost keys (Redis restarted empty) cost only re-publishes,
//! which the consumers' inboxes turn into no-ops that acknowledge again.
//!
//! One key per consumer, each written with its expiry in one `SET … EX`, so
//! an acknowledgement is a single command and a duplicate that comes after
//! the producer forgot the event leaves nothing behind for long; the
//! producer reads all of an event's keys with one `MGET` and drops them with
//! one `DEL`.

use spin_sdk::redis::{Connection, RedisParameter, RedisResult};

/// What every acknowledgement key starts with.
pub const ACK_KEY_PREFIX: &str = "shop.ack.";

/// How long an acknowledgement outlives its writing.
pub const ACK_TTL_SECONDS: i64 = 7 * 24 * 3600;

/// The key saying that `consumer` has `event_id`.
pub fn key(event_id: &str, consumer: &str) -> String {
    format!("{ACK_KEY_PREFIX}{event_id}.{consumer}")
}

fn binary(text: String) -> RedisParameter {
    RedisParameter::Binary(text.into_bytes())
}

/// `consumer` has `event_id` (applied, a duplicate, or given up on).
pub fn acknowledge(redis_address: &str, event_id: &str, consumer: &str) -> Result<(), String> {
    let redis =
        Connection::open(redis_address).map_err(|e| format!("cannot connect to Redis at {}: {e}", crate::event::redacted(redis_address)))?;
    let key = key(event_id, consumer);
    redis
        .execute("SET", &[binary(key.clone()), binary("1".into()), binary("EX".into()), RedisParameter::Int64(ACK_TTL_SECONDS)])
        .map_err(|e| format!("Redis refused SET {key}: {e}"))?;
    Ok(())
}

/// The consumers in `awaiting` that have not acknowledged `event_id`, in
/// their order, over an open connection.
pub fn missing<'a>(redis: &Connection, event_id: &str, awaiting: &'a [String]) -> Result<Vec<&'a str>, String> {
    if awaiting.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<RedisParameter> = awaiting.iter().map(|c| binary(key(event_id, c))).collect();
    let values = redis.execute("MGET", &keys).map_err(|e| format!("Redis refused MGET of {event_id}'s acknowledgements: {e}"))?;
    Ok(unacknowledged(awaiting, &values))
}

/// The consumers whose `MGET` value is nil (or missing from the answer).
fn unacknowledged<'a>(awaiting: &'a [String], values: &[RedisResult]) -> Vec<&'a str> {
    awaiting
        .iter()
        .enumerate()
        .filter(|(i, _)| matches!(values.get(*i), None | Some(RedisResult::Nil)))
        .map(|(_, c)| c.as_str())
        .collect()
}

/// Drops the acknowledgements of an event the producer has marked delivered.
pub fn forget(redis: &Connection, event_id: &str, awaiting: &[String]) -> Result<(), String> {
    if awaiting.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = awaiting.iter().map(|c| key(event_id, c)).collect();
    redis.del(&keys).map(|_| ()).map_err(|e| format!("Redis refused DEL of {event_id}'s acknowledgements: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_event_and_the_consumer_under_the_shop_prefix() {
        assert_eq!(key("evt_1", "orders"), "shop.ack.evt_1.orders");
    }

    #[test]
    fn the_consumers_whose_key_is_nil_are_missing_in_their_order() {
        let awaiting = vec!["fulfillment".to_string(), "notifications".to_string(), "orders".to_string()];
        let values = [RedisResult::Nil, RedisResult::Binary(b"1".to_vec()), RedisResult::Nil];
        assert_eq!(unacknowledged(&awaiting, &values), vec!["fulfillment", "orders"]);
        let all = [RedisResult::Binary(b"1".to_vec()), RedisResult::Binary(b"1".to_vec()), RedisResult::Binary(b"1".to_vec())];
        assert!(unacknowledged(&awaiting, &all).is_empty());
        assert_eq!(unacknowledged(&awaiting, &[]), vec!["fulfillment", "notifications", "orders"], "a short answer acknowledges nothing");
    }
}
