//! `governor validate` on the examples (all valid) and on every invalid fixture
//! (each refused with the message beside it).

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn validate(args: &[&Path]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_governor"))
        .arg("validate")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn examples_are_valid() {
    let (ok, out) = validate(&[&repo().join("examples")]);
    assert!(ok, "{out}");
    assert!(out.contains("4 valid, 0 invalid"), "{out}");
}

/// The `governor:` line of a fixture's `.expected` file.
fn expected(fixture: &Path) -> String {
    let text = std::fs::read_to_string(fixture.with_extension("expected")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("governor: "))
        .unwrap_or_else(|| panic!("{}: no `governor:` line", fixture.display()))
        .to_string()
}

#[test]
fn every_invalid_fixture_is_refused_with_its_message() {
    let dir = repo().join("tests/fixtures/invalid");
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    fixtures.sort();
    assert!(
        fixtures.len() >= 15,
        "only {} invalid fixtures",
        fixtures.len()
    );
    for fixture in fixtures {
        let (ok, out) = validate(&[&fixture]);
        assert!(!ok, "{} was accepted:\n{out}", fixture.display());
        let want = expected(&fixture);
        assert!(
            out.contains(&want),
            "{}: expected {want:?} in:\n{out}",
            fixture.display()
        );
        let problems = out
            .lines()
            .filter(|l| l.contains(": spec") || l.contains(": kind"))
            .count();
        assert_eq!(
            problems,
            1,
            "{}: one problem per fixture, got:\n{out}",
            fixture.display()
        );
    }
}

#[test]
fn unreadable_inputs_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("binary.yaml");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x01]).unwrap();
    let huge = dir.path().join("huge.yaml");
    std::fs::write(&huge, "a".repeat(5 * 1024 * 1024)).unwrap();
    let missing = dir.path().join("missing.yaml");
    let (ok, out) = validate(&[&binary, &huge, &missing, dir.path()]);
    assert!(!ok);
    assert!(out.contains("not UTF-8"), "{out}");
    assert!(out.contains("manifest limit"), "{out}");
    assert!(out.contains("cannot read"), "{out}");
}

#[test]
fn multi_document_file_reports_each_object() {
    let dir = tempfile::tempdir().unwrap();
    let api = std::fs::read_to_string(repo().join("examples/api.yaml")).unwrap();
    let bad = api
        .replace(
            "name: roadtrip-api\n  namespace",
            "name: second\n  namespace",
        )
        .replace("maxReplicas: 20", "maxReplicas: 2");
    let file = dir.path().join("two.yaml");
    std::fs::write(&file, format!("{api}\n---\n{bad}")).unwrap();
    let (ok, out) = validate(&[&file]);
    assert!(!ok);
    assert!(out.contains("roadtrip/roadtrip-api: OK"), "{out}");
    assert!(
        out.contains(
            "roadtrip/second: spec.scaling.minReplicas: minReplicas must be <= maxReplicas"
        ),
        "{out}"
    );
}
