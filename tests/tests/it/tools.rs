//! The installed tools are the pinned versions.

use std::process::Command;

use governor_tests::tools::tool;

fn version_output(name: &str, args: &[&str]) -> String {
    let out = Command::new(tool(name).unwrap())
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{name} {args:?} failed");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn pinned_versions_are_installed() {
    assert!(version_output("helm", &["version", "--short"]).starts_with("v3.22.0"));
    assert!(version_output("etcd", &["--version"]).contains("etcd Version: 3.6.16"));
    assert!(version_output("kube-apiserver", &["--version"]).contains("Kubernetes v1.37.2"));
    assert!(version_output("promtool", &["--version"]).contains("promtool, version 2."));
    assert!(version_output("prometheus3", &["--version"]).contains("prometheus, version 3.16.0"));
    assert!(version_output("promtool3", &["--version"]).contains("promtool, version 3.16.0"));
    assert!(version_output("alertmanager", &["--version"]).contains("alertmanager, version 0."));
    assert!(version_output("jaeger", &["--help"]).contains("jaeger"));
}
