//! Distribution as Spin does it: the built app pushed to a real OCI
//! registry (Debian's docker-registry) with `spin registry push`, run from
//! there with `spin up --from <reference>` and with `shop-host up --from
//! <reference> --insecure`, and an order placed on each and paid. Pushed
//! with real Spin, so skipped where no Spin is found.
//!
//! On Spin, pushed without the `[[trigger.cron]]` timers: `spin registry
//! push` composes checkout's and fulfillment's dependencies into them, and
//! the trigger-cron plugin (0.3.0, built on Spin 3.5) cannot parse what Spin
//! 4.1 composes ("invalid leading byte (0x43) for component defined
//! type"), which stops the app. The test below checks that too, so it
//! notices when a plugin that reads them arrives. shop-host runs the whole
//! app, timers included, from the same kind of push.

use std::process::Command;
use std::time::Duration;

use shop_tests::*;

#[test]
fn the_app_pushed_to_a_registry_runs_from_it_and_takes_an_order() {
    let Some(spin) = spin_bin() else { return };
    let registry = OciRegistry::start();
    let reference = registry.reference("shop:e2e");
    let dir = TempDir::new("registry");
    let manifest = write_manifest(dir.path(), &without_timers(&shop_manifest_text()));
    let push = Command::new(&spin)
        .args(["registry", "push", "--insecure", "--from"])
        .arg(&manifest)
        .arg(&reference)
        .output()
        .unwrap();
    assert!(
        push.status.success(),
        "spin registry push failed:\n{}{}",
        String::from_utf8_lossy(&push.stdout),
        String::from_utf8_lossy(&push.stderr)
    );
    assert!(String::from_utf8_lossy(&push.stdout).contains("Pushed with digest sha256:"));

    let h = HostConfig::manifest(&reference)
        .runtime(Runtime::Spin)
        .arg("--insecure")
        .variable("admin_token", ADMIN_TOKEN)
        .start();
    an_order_is_placed_and_paid(&h, "oci");
}

#[test]
fn shop_host_runs_the_whole_app_from_the_registry() {
    let Some(spin) = spin_bin() else {
        eprintln!("skipped: pushing needs real Spin (SPIN_BIN, PATH or ../shared/tools/spin)");
        return;
    };
    let registry = OciRegistry::start();
    let reference = registry.reference("shop:whole");
    let push = Command::new(&spin).args(["registry", "push", "--insecure", "--from"]).arg(root().join("spin.toml")).arg(&reference).output().unwrap();
    assert!(push.status.success(), "{}", String::from_utf8_lossy(&push.stderr));

    // Without --insecure the plain-HTTP registry is not reached, and the
    // message says what to add.
    let refused = HostConfig::manifest(&reference).variable("admin_token", ADMIN_TOKEN).try_start();
    let printed = refused.err().expect("a plain-HTTP registry needs --insecure");
    assert!(printed.contains("--insecure"), "{printed}");

    let h = HostConfig::manifest(&reference).arg("--insecure").variable("admin_token", ADMIN_TOKEN).start();
    an_order_is_placed_and_paid(&h, "oci-host");
    assert!(h.logs().contains("Cron schedules:"), "the timers run too:\n{}", h.logs());

    // A reference with nothing behind it: a clear error.
    let missing = HostConfig::manifest(&registry.reference("shop:nothing")).arg("--insecure").variable("admin_token", ADMIN_TOKEN).try_start();
    let printed = missing.err().expect("nothing was pushed as shop:nothing");
    assert!(printed.contains("cannot pull"), "{printed}");
}

fn an_order_is_placed_and_paid(h: &Host, cart: &str) {
    let sku = &h.get("/api/products?per_page=1").json()["products"][0]["sku"].as_str().unwrap().to_string();
    let r = h.post(&format!("/api/carts/{cart}/items"), &json!({ "sku": sku, "quantity": 1 }));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = h.request(
        "POST",
        "/api/checkout",
        &[("content-type", "application/json"), ("idempotency-key", cart)],
        Some(
            json!({
                "cart_id": cart, "email": "oci@example.com",
                "address": { "name": "Ada", "line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115", "country": "DE" },
                "shipping": "standard",
                "card": { "number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123" }
            })
            .to_string()
            .as_bytes(),
        ),
    );
    assert_eq!(r.status, 201, "{}\n{}", r.text, h.logs());
    let order_id = r.json()["order_id"].as_str().unwrap().to_string();
    // The events run too: the order ships and is paid.
    let paid = eventually(Duration::from_secs(20), || {
        let order = h.admin_get(&format!("/api/orders/{order_id}")).json();
        (order["status"] == "paid").then_some(order)
    });
    assert!(paid.is_some(), "the order from the registry's app was not paid:\n{}", h.logs());
}

/// The manifest with its `[[trigger.cron]]` tables left out.
fn without_timers(text: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.starts_with('[') {
            skipping = line.trim() == "[[trigger.cron]]";
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(out.len() < text.len(), "spin.toml has cron triggers");
    out
}

/// What the module doc says: the whole app, timers included, pushed and
/// run from the registry, is stopped by the cron plugin. When this fails, a
/// plugin reads Spin's compositions: push the timers too.
#[test]
fn the_cron_plugin_cannot_run_checkout_as_spin_registry_push_composes_it() {
    let Some(spin) = spin_bin() else { return };
    let registry = OciRegistry::start();
    let reference = registry.reference("shop:timers");
    let push = Command::new(&spin).args(["registry", "push", "--insecure", "--from"]).arg(root().join("spin.toml")).arg(&reference).output().unwrap();
    assert!(push.status.success(), "{}", String::from_utf8_lossy(&push.stderr));
    let started = HostConfig::manifest(&reference).runtime(Runtime::Spin).arg("--insecure").variable("admin_token", ADMIN_TOKEN).try_start();
    let printed = match started {
        Ok(mut host) => {
            assert!(host.exits_within(Duration::from_secs(20)), "the composed app ran under the cron plugin: push the timers too");
            host.logs()
        }
        Err(printed) => printed,
    };
    assert!(printed.contains("failed to compile component"), "{printed}");
}
