//! Component dependencies: an import of one component satisfied by another
//! component's export, chosen in spin.toml, with Spin's rule that a
//! dependency has no host capability it does not inherit.

use shop_tests::*;

fn manifest(dir: &TempDir, dependency: &str) -> std::path::PathBuf {
    let text = r#"
spin_manifest_version = 2
[application]
name = "composition"
[[trigger.http]]
route = "/..."
component = "consumer"
[component.consumer]
source = "{consumer}"
sqlite_databases = ["catalog"]
[component.consumer.dependencies]
"shop:catalog/catalog@0.1.0" = DEPENDENCY
# A second entry for the catalog's file with no grants of its own, as
# Spin requires of a `{ component = … }` dependency.
[component.catalog]
source = "{catalog}"
"#
    .replace("{consumer}", &wasm("consumer").to_string_lossy())
    .replace("{catalog}", &wasm("catalog").to_string_lossy())
    .replace("DEPENDENCY", dependency);
    write_manifest(dir.path(), &text)
}

fn first_product() -> (String, String) {
    // The seed is the catalog's own data file.
    let seed: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("components/catalog/products.json")).unwrap()).unwrap();
    let first = seed.as_array().or_else(|| seed["products"].as_array()).unwrap()[0].clone();
    (first["sku"].as_str().unwrap().to_string(), first["name"].as_str().unwrap().to_string())
}

#[test]
fn an_import_is_served_by_the_component_the_manifest_names() {
    let dir = TempDir::new("compose");
    let h = HostConfig::manifest(manifest(&dir, r#"{ component = "catalog", inherit_configuration = ["sqlite_databases"] }"#)).start();
    let (sku, name) = first_product();
    let r = h.get(&format!("/?sku={sku}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["name"], name.as_str());
    let r = h.get("/?sku=GHOST-1");
    assert_eq!(r.status, 502);
    assert!(r.json()["error"].as_str().unwrap().contains("UnknownSku"), "{}", r.text);
}

#[test]
fn a_dependency_may_be_a_file_path() {
    let dir = TempDir::new("compose-path");
    let dep = format!(r#"{{ path = {:?}, inherit_configuration = true }}"#, wasm("catalog").to_string_lossy());
    let h = HostConfig::manifest(manifest(&dir, &dep)).start();
    let (sku, _) = first_product();
    assert_eq!(h.get(&format!("/?sku={sku}")).status, 200);
}

#[test]
fn a_dependency_that_inherits_nothing_cannot_open_stores() {
    let dir = TempDir::new("compose-deny");
    let h = HostConfig::manifest(manifest(&dir, r#"{ component = "catalog" }"#)).start();
    let (sku, _) = first_product();
    let r = h.get(&format!("/?sku={sku}"));
    assert_eq!(r.status, 502, "{}", r.text);
    assert!(r.json()["error"].as_str().unwrap().contains("Unavailable"), "{}", r.text);
}

#[test]
fn a_dependency_that_does_not_export_the_import_is_refused_at_load() {
    let dir = TempDir::new("compose-bad");
    let text = std::fs::read_to_string(manifest(&dir, r#"{ component = "catalog" }"#))
        .unwrap()
        .replace(&*wasm("catalog").to_string_lossy(), &wasm("cart").to_string_lossy());
    let path = write_manifest(dir.path(), &text);
    let err = HostConfig::manifest(path).try_start().err().expect("must be refused");
    assert!(err.contains("shop:catalog/catalog@0.1.0"), "{err}");
    assert!(err.contains("component `consumer`"), "{err}");
}
