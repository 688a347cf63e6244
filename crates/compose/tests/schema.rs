//! `schemas/compose.schema.json` is generated from the model types; this test fails when
//! the file is out of date. `BERTH_BLESS=1` rewrites it.

use std::path::Path;

#[test]
fn compose_schema_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/compose.schema.json");
    let schema = schemars::schema_for!(berth_compose::Project);
    let mut generated = serde_json::to_string_pretty(&schema).unwrap();
    generated.push('\n');
    if std::env::var_os("BERTH_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "{} is out of date; regenerate it with BERTH_BLESS=1 cargo test -p berth-compose --test schema",
        path.display()
    );
}

#[test]
fn schema_describes_the_canonical_service_fields() {
    let schema = serde_json::to_value(schemars::schema_for!(berth_compose::Project)).unwrap();
    let service = &schema["$defs"]["Service"]["properties"];
    for field in [
        "image",
        "ports",
        "volumes",
        "depends_on",
        "healthcheck",
        "deploy",
        "develop",
        "build",
    ] {
        assert!(
            service.get(field).is_some(),
            "Service schema lacks `{field}`"
        );
    }
    let port = &schema["$defs"]["PortConfig"]["properties"];
    assert_eq!(port["target"]["type"], "integer");
}
