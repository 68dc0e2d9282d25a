//! What Spin refuses at load, shop-host refuses too, naming the component,
//! the key and the rule. Each manifest here is tried on both runtimes: on
//! shop-host the message is checked, on real Spin only that it is refused
//! (its own words are Spin's).

use std::time::Duration;

use shop_tests::*;

/// Starts `text`, its store labels undeclared unless the shop's, (with `{catalog}`, `{consumer}`, `{listener}` for built
/// components) on `rt` and returns what it printed when it refused.
fn refused(rt: Runtime, text: &str) -> String {
    refused_with(rt, text, &[])
}

/// As [`refused`], the runtime started with `args` too.
fn refused_with(rt: Runtime, text: &str, args: &[&str]) -> String {
    let dir = TempDir::new("rules");
    let text = text
        .replace("{orders}", &wasm("orders").to_string_lossy())
        .replace("{fulfillment}", &wasm("fulfillment").to_string_lossy())
        .replace("{inventory}", &wasm("inventory").to_string_lossy())
        .replace("{catalog}", &wasm("catalog").to_string_lossy())
        .replace("{listener}", &wasm("listener").to_string_lossy())
        .replace("{consumer}", &wasm("consumer").to_string_lossy());
    let manifest = write_manifest(dir.path(), &text);
    let redis = RedisServer::start();
    let mut config = HostConfig::manifest(manifest).runtime(rt).only_shop_stores().variable("redis_address", &redis.url());
    for arg in args {
        config = config.arg(arg);
    }
    match config.try_start() {
        Ok(mut host) => {
            assert!(host.exits_within(Duration::from_secs(10)), "{rt:?} accepted a manifest Spin refuses:\n{text}");
            host.logs()
        }
        Err(printed) => printed,
    }
}

/// The message, on shop-host; on Spin, just that it refused.
fn says(rt: Runtime, printed: &str, parts: &[&str]) {
    if rt == Runtime::ShopHost {
        for part in parts {
            assert!(printed.contains(part), "shop-host's refusal lacks `{part}`:\n{printed}");
        }
    }
}

const HEADER: &str = r#"
spin_manifest_version = 2
[application]
name = "rules"
[variables]
redis_address = { default = "redis://127.0.0.1:6379" }
"#;

fn a_component_dependency_with_grants_of_its_own_is_refused(rt: Runtime) {
    let printed = refused(
        rt,
        &format!(
            r#"{HEADER}
[[trigger.http]]
route = "/..."
component = "front"
[component.front]
source = "{{consumer}}"
sqlite_databases = ["catalog"]
[component.front.dependencies]
"shop:catalog/catalog@0.1.0" = {{ component = "catalog", inherit_configuration = ["sqlite_databases"] }}
[component.catalog]
source = "{{catalog}}"
sqlite_databases = ["catalog"]
allowed_outbound_hosts = ["https://example.com"]
"#
        ),
    );
    says(rt, &printed, &["[component.front]", "component `catalog`", "allowed_outbound_hosts, sqlite_databases", "dependency"]);
}

fn service_chaining_in_a_component_a_redis_trigger_runs_is_refused(rt: Runtime) {
    for host in ["http://catalog.spin.internal", "http://*.spin.internal"] {
        let printed = refused(
            rt,
            &format!(
                r#"{HEADER}
[application.trigger.redis]
address = "{{{{ redis_address }}}}"
[[trigger.redis]]
channel = "shop.order.placed"
component = "consumer"
[[trigger.http]]
route = "/api/products/..."
component = "catalog"
[component.consumer]
source = "{{listener}}"
allowed_outbound_hosts = ["{host}"]
[component.catalog]
source = "{{catalog}}"
sqlite_databases = ["default"]
"#
            ),
        );
        says(rt, &printed, &["[component.consumer]", host, "Redis trigger", "service chaining"]);
    }
}

fn a_store_label_no_runtime_config_declares_is_refused(rt: Runtime) {
    for (key, label) in [("key_value_stores", "basket"), ("sqlite_databases", "ledger")] {
        let printed = refused(
            rt,
            &format!(
                r#"{HEADER}
[[trigger.http]]
route = "/..."
component = "front"
[component.front]
source = "{{catalog}}"
{key} = ["{label}"]
"#
            ),
        );
        says(rt, &printed, &["[component.front]", key, &format!("`{label}` is not defined")]);
    }
}

/// The smaller rules of the manifest itself, each a manifest both runtimes
/// refuse before serving: `(what is wrong, the manifest, what shop-host
/// names)`.
fn manifest_mistakes_are_refused(rt: Runtime) {
    let app = |extra: &str| {
        format!(
            r#"{HEADER}
[[trigger.http]]
route = "/..."
component = "front"
[component.front]
source = "{{catalog}}"
{extra}
"#
        )
    };
    let cases = [
        ("an unknown key", app("key_value_store = [\"default\"]"), vec!["key_value_store"]),
        ("a template of an undeclared variable", app("variables = { token = \"{{ no_such_variable }}\" }"), vec!["no_such_variable"]),
        (
            "a trigger of a component that does not exist",
            format!("{HEADER}\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"ghost\"\n[component.front]\nsource = \"{{catalog}}\"\n"),
            vec!["component `ghost` is not defined"],
        ),
        (
            "a required variable nobody set",
            app("variables = { token = \"{{ secret_token }}\" }").replace("[variables]", "[variables]\nsecret_token = { required = true }"),
            vec!["secret_token"],
        ),
        ("a variable both required and defaulted", app("").replace("[variables]", "[variables]\nboth = { required = true, default = \"x\" }"), vec!["`both` is required and has a default"]),
    ];
    for (what, text, parts) in cases {
        eprintln!("case: {what}");
        let printed = refused(rt, &text);
        says(rt, &printed, &parts);
    }
}

/// A component the cron trigger runs: orders, which exports the
/// trigger-cron world and needs only its own database.
fn with_cron(expression: &str) -> String {
    format!(
        r#"{HEADER}
[[trigger.cron]]
component = "orders"
cron_expression = "{expression}"
[component.orders]
source = "{{orders}}"
sqlite_databases = ["orders"]
"#
    )
}

fn malformed_cron_expressions_are_refused(rt: Runtime) {
    // Five fields (no seconds), seven (a year), a minute out of range, prose.
    for expression in ["*/2 * * * *", "0 0 12 * * * 2030", "0 61 * * * *", "every two seconds"] {
        let printed = refused(rt, &with_cron(expression));
        says(rt, &printed, &["spin.toml", "[[trigger.cron]] #1", &format!("cron_expression `{expression}`"), "six fields"]);
    }
}

fn a_cron_trigger_takes_only_the_plugins_keys(rt: Runtime) {
    let text = with_cron("*/2 * * * * *").replace("component = \"orders\"\ncron", "id = \"tick\"\ncomponent = \"orders\"\ncron");
    let printed = refused(rt, &text);
    says(rt, &printed, &["[[trigger.cron]] #1", "unknown field `id`"]);
}

fn service_chaining_in_a_component_a_cron_trigger_runs_is_refused(rt: Runtime) {
    let text = with_cron("*/2 * * * * *").replace(
        "sqlite_databases = [\"orders\"]",
        "sqlite_databases = [\"orders\"]\nallowed_outbound_hosts = [\"http://catalog.spin.internal\"]",
    );
    let printed = refused(rt, &text);
    says(rt, &printed, &["[component.orders]", "http://catalog.spin.internal", "cron trigger", "no local service chaining"]);
}

fn a_cron_component_whose_dependency_inherits_a_list_is_refused(rt: Runtime) {
    // The trigger-cron plugin composes only all-or-nothing inheritance.
    let printed = refused(
        rt,
        &format!(
            r#"{HEADER}
[[trigger.cron]]
component = "fulfillment"
cron_expression = "*/2 * * * * *"
[component.fulfillment]
source = "{{fulfillment}}"
sqlite_databases = ["fulfillment", "inventory"]
[component.fulfillment.dependencies]
"shop:inventory/inventory@0.1.0" = {{ path = "{{inventory}}", inherit_configuration = ["sqlite_databases"] }}
"#
        ),
    );
    says(rt, &printed, &["[component.fulfillment]", "dependencies.\"shop:inventory/inventory@0.1.0\"", "trigger-cron"]);
}

fn selecting_a_component_without_the_one_it_chains_to_is_refused(rt: Runtime) {
    let text = format!(
        r#"{HEADER}
[[trigger.http]]
route = "/front/..."
component = "front"
[[trigger.http]]
route = "/api/products/..."
component = "catalog"
[component.front]
source = "{{consumer}}"
allowed_outbound_hosts = ["http://catalog.spin.internal"]
[component.catalog]
source = "{{catalog}}"
sqlite_databases = ["catalog"]
"#
    );
    let printed = refused_with(rt, &text, &["--component-id", "front"]);
    says(rt, &printed, &["--component-id", "`front` chains to a component that is not selected", "http://catalog.spin.internal"]);
}

on_both_runtimes!(
    malformed_cron_expressions_are_refused,
    a_cron_trigger_takes_only_the_plugins_keys,
    service_chaining_in_a_component_a_cron_trigger_runs_is_refused,
    a_cron_component_whose_dependency_inherits_a_list_is_refused,
    selecting_a_component_without_the_one_it_chains_to_is_refused,
    manifest_mistakes_are_refused,
    a_store_label_no_runtime_config_declares_is_refused,
    a_component_dependency_with_grants_of_its_own_is_refused,
    service_chaining_in_a_component_a_redis_trigger_runs_is_refused,
);
