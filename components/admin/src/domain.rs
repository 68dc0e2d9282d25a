//! The members and the merging of their answers; no I/O.
//!
//! A dead letter's id at the admin API is `<service>:<id at the service>`
//! (`fulfillment:dl_…`), so a replay goes to the service that holds it.

use serde_json::{Value, json};

/// A service with an event store, and where its admin routes are
/// (reached as `http://<component>.spin.internal`, listed in the admin
/// component's `allowed_outbound_hosts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub name: &'static str,
    /// `…/dead-letters`, `…/dead-letters/{id}/replay`, `…/outbox/flush`,
    /// `…/outbox` are under it.
    pub admin_base: &'static str,
}

/// Every member. A service joins by exposing the `event_admin` routes under
/// its own path and being listed here (and in spin.toml's
/// `allowed_outbound_hosts` of the admin component).
pub const MEMBERS: &[Member] = &[
    Member { name: "fulfillment", admin_base: "http://fulfillment.spin.internal/api/fulfillment/admin" },
    Member { name: "notifications", admin_base: "http://notifications.spin.internal/api/notifications/admin" },
    Member { name: "checkout", admin_base: "http://checkout.spin.internal/api/checkout/admin" },
    Member { name: "payment", admin_base: "http://payment.spin.internal/api/payments/admin" },
    Member { name: "orders", admin_base: "http://orders.spin.internal/api/orders/admin" },
    Member { name: "inventory", admin_base: "http://inventory.spin.internal/api/inventory/admin" },
];

pub fn member(name: &str) -> Option<&'static Member> {
    MEMBERS.iter().find(|m| m.name == name)
}

/// `fulfillment:dl_1` → the member and `dl_1`.
pub fn split_id(id: &str) -> Option<(&'static Member, &str)> {
    let (service, inner) = id.split_once(':')?;
    let member = member(service)?;
    (!inner.is_empty()).then_some((member, inner))
}

/// A member's answer: its JSON body, or why there is none.
pub type Answer = Result<Value, String>;

/// Gives a dead letter its admin id and its service.
pub fn qualify(service: &str, mut letter: Value) -> Value {
    if let Some(id) = letter.get("id").and_then(Value::as_str).map(str::to_owned) {
        letter["id"] = json!(format!("{service}:{id}"));
    }
    if letter.is_object() {
        letter["service"] = json!(service);
    }
    letter
}

fn service_status(name: &str, answer: &Answer, fields: Value) -> Value {
    let mut status = json!({ "name": name, "ok": answer.is_ok() });
    match answer {
        Ok(_) => {
            if let Value::Object(fields) = fields {
                for (k, v) in fields {
                    status[k] = v;
                }
            }
        }
        Err(e) => status["error"] = json!(e),
    }
    status
}

/// `{"dead_letters": [...all, oldest first], "services": [{name, ok, count | error}],
/// "complete": every member answered}`.
pub fn merge_dead_letters(answers: Vec<(&str, Answer)>) -> Value {
    let mut letters = Vec::new();
    let mut services = Vec::new();
    for (name, answer) in &answers {
        let mine: Vec<Value> = match answer {
            Ok(body) => body["dead_letters"].as_array().cloned().unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        services.push(service_status(name, answer, json!({ "count": mine.len() })));
        letters.extend(mine.into_iter().map(|l| qualify(name, l)));
    }
    letters.sort_by(|a, b| a["created_at"].as_str().cmp(&b["created_at"].as_str()));
    json!({
        "dead_letters": letters,
        "services": services,
        "complete": answers.iter().all(|(_, a)| a.is_ok()),
    })
}

/// What is not done, over every member: `{"due", "oldest_due_age_seconds",
/// "republishes", "undeliverable", "dead_letters_pending", "services":
/// [{name, ok, outbox, dead_letters} | {name, ok: false, error}],
/// "complete"}` — the totals count the members that answered.
pub fn merge_events(answers: Vec<(&str, Answer)>) -> Value {
    let (mut due, mut republishes, mut undeliverable, mut dead_letters) = (0, 0, 0, 0);
    let mut oldest: Option<f64> = None;
    let mut services = Vec::new();
    for (name, answer) in &answers {
        if let Ok(body) = answer {
            let outbox = &body["outbox"];
            due += outbox["due"].as_u64().unwrap_or(0);
            republishes += outbox["republishes"].as_u64().unwrap_or(0);
            undeliverable += outbox["undeliverable"].as_u64().unwrap_or(0);
            dead_letters += body["dead_letters"]["pending"].as_u64().unwrap_or(0);
            if let Some(age) = outbox["oldest_due_age_seconds"].as_f64() {
                oldest = Some(oldest.map_or(age, |o: f64| o.max(age)));
            }
        }
        let details = match answer {
            Ok(body) => json!({ "outbox": body["outbox"], "dead_letters": body["dead_letters"] }),
            Err(_) => json!({}),
        };
        services.push(service_status(name, answer, details));
    }
    json!({
        "due": due,
        "oldest_due_age_seconds": oldest,
        "republishes": republishes,
        "undeliverable": undeliverable,
        "dead_letters_pending": dead_letters,
        "services": services,
        "complete": answers.iter().all(|(_, a)| a.is_ok()),
    })
}

/// The shop's own metrics in Prometheus's text exposition format: per
/// member whether it answered, its events due and undeliverable and its
/// pending dead letters; checkouts by outcome (from checkout's journal, so
/// counted since the shop began, whatever restarted). A member that did
/// not answer has `shop_service_up 0` and no other series.
pub fn metrics(events: &[(&str, Answer)], outcomes: &Answer) -> String {
    let mut text = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, u64)>| {
        text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, value) in samples {
            text.push_str(&format!("{name}{{{labels}}} {value}\n"));
        }
    };
    let per_service = |field: fn(&Value) -> Option<u64>| -> Vec<(String, u64)> {
        events
            .iter()
            .filter_map(|(name, answer)| Some((format!("service=\"{name}\""), field(answer.as_ref().ok()?)?)))
            .collect()
    };
    family(
        "shop_service_up",
        "gauge",
        "Whether the service answered the admin's call (1) or not (0)",
        events.iter().map(|(name, a)| (format!("service=\"{name}\""), u64::from(a.is_ok()))).collect(),
    );
    family("shop_events_due", "gauge", "Events in the service's outbox not yet acknowledged by every consumer", per_service(|b| b["outbox"]["due"].as_u64()));
    family(
        "shop_events_undeliverable",
        "gauge",
        "Events the service gave up publishing (its own dead letters)",
        per_service(|b| b["outbox"]["undeliverable"].as_u64()),
    );
    family("shop_dead_letters_pending", "gauge", "Events the service failed to apply, waiting for an operator", per_service(|b| b["dead_letters"]["pending"].as_u64()));
    let outcomes: Vec<(String, u64)> = match outcomes {
        Ok(body) => body["outcomes"]
            .as_object()
            .map(|o| o.iter().filter_map(|(k, v)| Some((format!("outcome=\"{k}\""), v.as_u64()?))).collect())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    family("shop_checkouts", "gauge", "Checkouts by how they ended (in_progress: not yet), since the shop began", outcomes);
    text
}

/// `{"published", "pending", "services": [{name, ok, published, pending, error?}], "complete"}`.
pub fn merge_flush(answers: Vec<(&str, Answer)>) -> Value {
    let (mut published, mut pending) = (0, 0);
    let mut services = Vec::new();
    let mut complete = true;
    for (name, answer) in &answers {
        let (p, q, error) = match answer {
            Ok(body) => (
                body["published"].as_u64().unwrap_or(0) + body["republished"].as_u64().unwrap_or(0),
                body["pending"].as_u64().unwrap_or(0),
                body.get("error").cloned().filter(|e| !e.is_null()),
            ),
            Err(_) => (0, 0, None),
        };
        published += p;
        pending += q;
        let mut status = service_status(name, answer, json!({ "published": p, "pending": q }));
        if let Some(error) = error {
            // Reached, but Redis refused: not flushed.
            status["ok"] = json!(false);
            status["error"] = error;
        }
        complete &= status["ok"] == json!(true);
        services.push(status);
    }
    json!({ "published": published, "pending": pending, "services": services, "complete": complete })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_name_every_member_and_count_checkouts() {
        let events: Vec<(&str, Answer)> = vec![
            ("fulfillment", Ok(json!({"outbox": {"due": 2, "undeliverable": 0}, "dead_letters": {"pending": 1}}))),
            ("payment", Err("no answer".into())),
        ];
        let text = metrics(&events, &Ok(json!({"outcomes": {"completed": 5, "payment_declined": 1}})));
        assert!(text.contains("shop_service_up{service=\"fulfillment\"} 1\n"), "{text}");
        assert!(text.contains("shop_service_up{service=\"payment\"} 0\n"));
        assert!(text.contains("shop_events_due{service=\"fulfillment\"} 2\n"));
        assert!(!text.contains("shop_events_due{service=\"payment\"}"));
        assert!(text.contains("shop_dead_letters_pending{service=\"fulfillment\"} 1\n"));
        assert!(text.contains("shop_checkouts{outcome=\"completed\"} 5\n"));
        assert!(text.contains("# TYPE shop_checkouts gauge\n"));
    }

    #[test]
    fn dead_letter_ids_name_their_service() {
        let (member, inner) = split_id("fulfillment:dl_abc").unwrap();
        assert_eq!((member.name, inner), ("fulfillment", "dl_abc"));
        assert_eq!(split_id("notifications:dl_1").unwrap().0.name, "notifications");
        assert_eq!(split_id("orders:dl_1").unwrap().0.name, "orders");
        assert_eq!(split_id("inventory:dl_1").unwrap().0.name, "inventory");
        for bad in ["dl_abc", "nope:dl_1", "fulfillment:", ":dl_1", ""] {
            assert!(split_id(bad).is_none(), "{bad}");
        }
        assert!(MEMBERS.iter().all(|m| m.admin_base.starts_with(&format!("http://{}.spin.internal/", m.name))));
    }

    #[test]
    fn dead_letters_merge_oldest_first_with_prefixed_ids() {
        let merged = merge_dead_letters(vec![
            ("fulfillment", Ok(json!({"dead_letters": [{"id": "dl_2", "created_at": "2026-01-02T00:00:00.000Z"}]}))),
            ("notifications", Ok(json!({"dead_letters": [{"id": "dl_1", "created_at": "2026-01-01T00:00:00.000Z"}]}))),
        ]);
        let ids: Vec<&str> = merged["dead_letters"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["notifications:dl_1", "fulfillment:dl_2"]);
        assert_eq!(merged["dead_letters"][0]["service"], "notifications");
        assert_eq!(merged["complete"], true);
        assert_eq!(merged["services"][0], json!({"name": "fulfillment", "ok": true, "count": 1}));
    }

    #[test]
    fn a_member_that_does_not_answer_is_reported_not_hidden() {
        let merged = merge_dead_letters(vec![
            ("fulfillment", Err("503".into())),
            ("notifications", Ok(json!({"dead_letters": []}))),
        ]);
        assert_eq!(merged["complete"], false);
        assert_eq!(merged["services"][0], json!({"name": "fulfillment", "ok": false, "error": "503"}));
    }

    #[test]
    fn flush_totals_add_up_and_a_redis_refusal_is_not_ok() {
        let merged = merge_flush(vec![
            ("fulfillment", Ok(json!({"published": 2, "pending": 1, "error": "Redis down"}))),
            ("notifications", Ok(json!({"published": 3, "pending": 0}))),
        ]);
        assert_eq!((merged["published"].as_u64(), merged["pending"].as_u64()), (Some(5), Some(1)));
        assert_eq!(merged["services"][0]["ok"], false);
        assert_eq!(merged["services"][0]["error"], "Redis down");
        assert_eq!(merged["services"][1], json!({"name": "notifications", "ok": true, "published": 3, "pending": 0}));
        assert_eq!(merged["complete"], false);
    }
}
