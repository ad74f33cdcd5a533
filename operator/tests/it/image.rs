//! The image, built by the real buildah without a daemon: `image/build.sh
//! --prebuilt` wraps the `governor` this suite built (stripped by
//! image/rootfs.sh, so the test compiles nothing twice) in the Dockerfile's
//! `prebuilt` target, with chroot isolation and vfs storage in a temp folder.
//! Then, as a user would meet it: the binary in the image answers `--version`
//! with the version and commit, the user is a non-root uid, `governor` is the
//! entrypoint, the labels say what it is, the runtime holds nothing but the
//! binary and what it loads, the tag is the chart's default image, and the
//! compressed size is printed. The full multi-stage build (a release build
//! inside the image, 54 min cold) is `image/build.sh`, run by hand, not here.
//!
//! Outside the temp folder, buildah as root keeps only its shared blob-info
//! cache (/var/lib/containers/cache), as every buildah run does.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use governor_tests::repo_root;
use serde_json::Value;

/// The target for the image's compressed size.
const MAX_COMPRESSED_BYTES: u64 = 40_000_000;
const ENTRYPOINT: &str = "/usr/local/bin/governor";

/// buildah with its storage (vfs) and temporary files in one temp folder.
struct Buildah {
    dir: PathBuf,
}

impl Buildah {
    fn storage(&self) -> PathBuf {
        self.dir.join("storage")
    }

    fn run(&self, args: &[&str]) -> String {
        let storage = self.storage();
        let root = storage.join("root");
        let runroot = storage.join("run");
        let out = Command::new("buildah")
            .arg("--root")
            .arg(&root)
            .arg("--runroot")
            .arg(&runroot)
            .args(["--storage-driver", "vfs"])
            .args(args)
            .env("TMPDIR", &self.dir)
            .output()
            .unwrap_or_else(|e| panic!("buildah {args:?}: {e}"));
        assert!(
            out.status.success(),
            "buildah {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// buildah must be there: the README's test command installs it, so a missing
/// one is a broken setup, not a reason to skip.
fn require_buildah() {
    match Command::new("buildah").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`buildah --version` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "buildah not found ({e}): the image test builds the image with it; \
             `bash tests/tools/install.sh` installs it (Debian package buildah)"
        ),
    }
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The chart's default image: `image.repository` at the chart's appVersion.
fn chart_default_image() -> String {
    let chart = repo_root().join("charts/governor");
    let values = yaml(&chart.join("values.yaml"));
    let meta = yaml(&chart.join("Chart.yaml"));
    let repository = values["image"]["repository"]
        .as_str()
        .expect("values.yaml: image.repository");
    let tag = values["image"]["tag"].as_str().unwrap_or_default();
    assert!(
        tag.is_empty(),
        "values.yaml image.tag {tag:?}: the default image follows appVersion"
    );
    let app_version = meta["appVersion"].as_str().expect("Chart.yaml: appVersion");
    format!("{repository}:{app_version}")
}

/// Files (not folders) under `root`, relative to it.
fn files(root: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            } else {
                found.insert(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    found
}

/// The sum of the layers' compressed sizes in an OCI layout, each checked
/// against its blob on disk.
fn compressed_size(oci: &Path) -> u64 {
    let index = json(&oci.join("index.json"));
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .expect("index.json: a manifest");
    let blob = |digest: &str| {
        oci.join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let manifest = json(&blob(digest));
    let layers = manifest["layers"].as_array().expect("manifest: layers");
    assert!(!layers.is_empty(), "manifest without layers");
    layers
        .iter()
        .map(|layer| {
            let media = layer["mediaType"].as_str().unwrap_or_default();
            assert!(media.ends_with("tar+gzip"), "layer not compressed: {media}");
            let size = layer["size"].as_u64().expect("layer size");
            let on_disk = std::fs::metadata(blob(layer["digest"].as_str().unwrap()))
                .unwrap()
                .len();
            assert_eq!(size, on_disk, "layer {layer}");
            size
        })
        .sum()
}

#[test]
fn prebuilt_image_runs_as_non_root_and_reports_its_version() {
    require_buildah();
    let tmp = tempfile::tempdir().unwrap();
    let buildah = Buildah {
        dir: tmp.path().to_path_buf(),
    };
    let oci = tmp.path().join("oci");
    let binary = env!("CARGO_BIN_EXE_governor");

    // The documented command builds it.
    let out = Command::new("bash")
        .arg(repo_root().join("image/build.sh"))
        .args(["--prebuilt", binary, "--storage"])
        .arg(buildah.storage())
        .arg("--oci")
        .arg(&oci)
        .output()
        .expect("bash image/build.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "image/build.sh --prebuilt failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let tag = stdout
        .lines()
        .find_map(|l| l.strip_prefix("image: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no `image:` line in\n{stdout}"));
    let printed_size: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("compressed size: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `compressed size:` line in\n{stdout}"));

    // The chart deploys what the build tags.
    assert_eq!(
        tag,
        chart_default_image(),
        "image/build.sh's tag against the chart's default image"
    );
    assert!(
        tag.ends_with(&format!(":{}", env!("CARGO_PKG_VERSION"))),
        "the chart's appVersion is not the package version {}: {tag}",
        env!("CARGO_PKG_VERSION")
    );

    // Its configuration: a non-root numeric user, the chart's; governor as the entrypoint; labels.
    let inspect: Value =
        serde_json::from_str(&buildah.run(&["inspect", "--type", "image", tag])).unwrap();
    let config = &inspect["OCIv1"]["config"];
    let user = config["User"].as_str().unwrap_or_default();
    let ids: Vec<u32> = user.split(':').filter_map(|id| id.parse().ok()).collect();
    assert!(
        ids.len() == 2 && ids.iter().all(|&id| id > 0),
        "image user {user:?}: want a non-root numeric uid:gid"
    );
    let helpers =
        std::fs::read_to_string(repo_root().join("charts/governor/templates/_helpers.tpl"))
            .unwrap();
    assert!(
        helpers.contains(&format!("runAsUser: {}", ids[0])),
        "the chart's runAsUser is not the image's uid {}",
        ids[0]
    );
    assert_eq!(config["Entrypoint"], serde_json::json!([ENTRYPOINT]));
    let labels = &config["Labels"];
    let label = |name: &str| {
        labels[format!("org.opencontainers.image.{name}")]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(label("title"), "governor");
    assert_eq!(label("version"), env!("CARGO_PKG_VERSION"));
    assert_eq!(label("revision"), governor::GIT_COMMIT);
    assert_eq!(label("licenses"), "Apache-2.0");
    assert!(
        label("source").starts_with("https://"),
        "source label {:?}",
        label("source")
    );
    assert!(!label("description").is_empty());
    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(&format!(
            "ARG GOVERNOR_VERSION={}\n",
            env!("CARGO_PKG_VERSION")
        )),
        "the Dockerfile's default GOVERNOR_VERSION is not {}",
        env!("CARGO_PKG_VERSION")
    );

    // Nothing but the binary, what it loads, and the few files it reads (looked
    // at before `buildah run` adds /etc/hosts and the like to the container).
    let container = buildah
        .run(&["from", "--pull-never", tag])
        .trim()
        .to_owned();
    let mount = PathBuf::from(buildah.run(&["mount", &container]).trim());
    let found = files(&mount);
    for shell in ["bin/sh", "usr/bin/sh", "bin/busybox"] {
        assert!(!found.contains(shell), "a shell in the runtime: {shell}");
    }
    let expected = |f: &String| {
        [
            "usr/local/bin/governor",
            "etc/passwd",
            "etc/group",
            "etc/nsswitch.conf",
            "etc/ssl/certs/ca-certificates.crt",
        ]
        .contains(&f.as_str())
            || (f.starts_with("lib") && f.contains(".so"))
            || (f.starts_with("usr/share/doc/") && f.ends_with("/copyright"))
    };
    let unexpected: Vec<&String> = found.iter().filter(|f| !expected(f)).collect();
    assert!(
        unexpected.is_empty(),
        "unexpected files in the runtime: {unexpected:?}"
    );
    assert!(
        found.iter().any(|f| f.contains("libc.so")),
        "no libc in {found:?}"
    );
    let passwd = std::fs::read_to_string(mount.join("etc/passwd")).unwrap();
    assert!(
        passwd
            .lines()
            .any(|l| l.split(':').nth(2) == Some(&ids[0].to_string())),
        "the image's uid {} has no /etc/passwd entry:\n{passwd}",
        ids[0]
    );
    let in_image = std::fs::metadata(mount.join(ENTRYPOINT.trim_start_matches('/')))
        .unwrap()
        .len();
    let built = std::fs::metadata(binary).unwrap().len();
    assert!(
        in_image < built,
        "the binary was not stripped: {in_image} bytes, built {built}"
    );
    // The binary in the image, run in the image's root filesystem as the
    // image's uid:gid with the image's environment, as chroot isolation runs
    // it. (Not `buildah run`: twice in a dozen runs here it relayed an empty
    // stdout with exit 0.)
    let env = config["Env"].as_array().cloned().unwrap_or_default();
    let out = Command::new("chroot")
        .arg(format!("--userspec={}:{}", ids[0], ids[1]))
        .arg(&mount)
        .args([ENTRYPOINT, "--version"])
        .env_clear()
        .envs(env.iter().filter_map(|e| e.as_str()?.split_once('=')))
        .output()
        .expect("chroot");
    assert!(
        out.status.success(),
        "governor --version in the image failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let version = String::from_utf8_lossy(&out.stdout);
    assert_eq!(version, format!("governor {}\n", governor::VERSION));
    if let Ok(head) = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo_root())
        .output()
        && head.status.success()
    {
        let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
        assert_eq!(
            governor::GIT_COMMIT,
            head,
            "--version's commit against this checkout's HEAD"
        );
    }
    eprintln!("image: {}", version.trim());
    buildah.run(&["umount", &container]);
    buildah.run(&["rm", &container]);

    // The compressed size: the layers image/build.sh exported, read here too.
    let size = compressed_size(&oci);
    assert_eq!(
        size, printed_size,
        "image/build.sh's size against the OCI layout's"
    );
    eprintln!(
        "image {tag}: compressed size {size} bytes ({:.1} MB; binary {:.1} MB stripped, from a debug build of {:.1} MB)",
        size as f64 / 1e6,
        in_image as f64 / 1e6,
        built as f64 / 1e6
    );
    assert!(
        size <= MAX_COMPRESSED_BYTES,
        "compressed size {size} bytes is over the {MAX_COMPRESSED_BYTES}-byte target"
    );
}
