//! Acknowledgements: how a producer learns that the consumers of an event
//! have it.
//!
//! A consumer that has applied an event (or gave up on it, keeping it as a
//! dead letter) adds its name to the Redis set `shop.ack.<event id>`; the
//! producer's outbox keeps the event due, re-publishing it, until every
//! consumer [`crate::event::consumers`] names for its type is in the set.
//!
//! Why acknowledgements in Redis: the services share nothing else (each owns
//! its SQLite database, and a Redis-triggered component may not call another
//! over service chaining on Spin), and every one of them already talks to
//! that Redis. A lost set (Redis restarted empty) costs only re-publishes,
//! which the consumers' inboxes turn into no-ops that acknowledge again. The
//! set expires after [`ACK_TTL_SECONDS`] so a duplicate that re-acknowledges
//! an event already delivered leaves nothing behind for long.

use std::collections::BTreeSet;

use spin_sdk::redis::{Connection, RedisParameter};

/// What every acknowledgement key starts with.
pub const ACK_KEY_PREFIX: &str = "shop.ack.";

/// How long an acknowledgement set outlives its last write.
pub const ACK_TTL_SECONDS: i64 = 7 * 24 * 3600;

/// The Redis set of the consumers that acknowledged `event_id`.
pub fn key(event_id: &str) -> String {
    format!("{ACK_KEY_PREFIX}{event_id}")
}

fn open(redis_address: &str) -> Result<Connection, String> {
    Connection::open(redis_address).map_err(|e| format!("cannot connect to Redis at {redis_address}: {e}"))
}

/// `consumer` has `event_id` (applied, a duplicate, or given up on).
pub fn acknowledge(redis_address: &str, event_id: &str, consumer: &str) -> Result<(), String> {
    let redis = open(redis_address)?;
    let key = key(event_id);
    redis.sadd(&key, &[consumer.to_owned()]).map_err(|e| format!("Redis refused SADD {key}: {e}"))?;
    redis
        .execute("EXPIRE", &[RedisParameter::Binary(key.clone().into_bytes()), RedisParameter::Int64(ACK_TTL_SECONDS)])
        .map_err(|e| format!("Redis refused EXPIRE {key}: {e}"))?;
    Ok(())
}

/// The consumers that acknowledged `event_id`, over an open connection.
pub fn acknowledged(redis: &Connection, event_id: &str) -> Result<BTreeSet<String>, String> {
    let key = key(event_id);
    let members = redis.smembers(&key).map_err(|e| format!("Redis refused SMEMBERS {key}: {e}"))?;
    Ok(members.into_iter().collect())
}

/// Drops the acknowledgements of an event the producer has marked delivered.
pub fn forget(redis: &Connection, event_id: &str) -> Result<(), String> {
    let key = key(event_id);
    match redis.del(&[key.clone()]) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("Redis refused DEL {key}: {e}")),
    }
}

/// The consumers in `awaiting` that are not in `acknowledged`.
pub fn missing<'a>(awaiting: &'a [String], acknowledged: &BTreeSet<String>) -> Vec<&'a str> {
    awaiting.iter().filter(|c| !acknowledged.contains(c.as_str())).map(String::as_str).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_event_id_under_the_shop_prefix() {
        assert_eq!(key("evt_1"), "shop.ack.evt_1");
    }

    #[test]
    fn missing_lists_the_consumers_not_acknowledged_in_their_order() {
        let awaiting = vec!["fulfillment".to_string(), "notifications".to_string(), "orders".to_string()];
        let acked: BTreeSet<String> = ["notifications".to_string()].into();
        assert_eq!(missing(&awaiting, &acked), vec!["fulfillment", "orders"]);
        let all: BTreeSet<String> = awaiting.iter().cloned().collect();
        assert!(missing(&awaiting, &all).is_empty());
    }
}
