//! Warnings found before a load fails are returned with the errors, so they can be shown
//! first, as Docker Compose does.

use berth_compose::LoadOptions;

fn options(dir: &std::path::Path) -> LoadOptions {
    LoadOptions {
        working_dir: dir.to_path_buf(),
        project_name: Some("warn".into()),
        ..LoadOptions::default()
    }
}

#[test]
fn warnings_come_back_when_the_load_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "version: \"3.8\"\nservices:\n  web:\n    image: \"busybox:${TAG}\"\n    prots: [\"80\"]\n",
    )
    .unwrap();
    let (result, warnings) = berth_compose::load_reporting(&options(dir.path()));
    let messages: Vec<String> = warnings.iter().map(|w| w.message.clone()).collect();
    assert_eq!(
        messages,
        vec![
            "variable `TAG` is not set, using an empty string".to_owned(),
            "the top-level `version` is obsolete and ignored".to_owned(),
        ]
    );
    let errors = result.unwrap_err();
    assert_eq!(errors.0.len(), 1);
    assert_eq!(
        errors.0[0].message,
        "unknown key `prots` (did you mean `ports`?)"
    );
    assert_eq!(errors.0[0].location.as_ref().map(|l| l.line), Some(5));
}

#[test]
fn warnings_come_back_with_the_project() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  web:\n    image: \"busybox:${TAG}\"\n",
    )
    .unwrap();
    let (result, warnings) = berth_compose::load_reporting(&options(dir.path()));
    assert_eq!(warnings.len(), 1);
    assert_eq!(
        warnings[0].location.as_ref().map(|l| (l.line, l.column)),
        Some((3, 12))
    );
    let project = result.unwrap();
    assert_eq!(project.services["web"].image.as_deref(), Some("busybox:"));
}
