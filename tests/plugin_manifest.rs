//! The krew package of `kubectl tmdbsync`: `scripts/package-plugin.sh` builds reproducible
//! archives (the binary and LICENSE) and writes a manifest that passes krew's own checks
//! (`ValidatePlugin`: apiVersion, kind, name, short description, semver version, and per platform
//! a selector on os/arch only, uri, a sha256 that is the archive's, bin, files), and installing
//! from it the way krew does (unpack, move `files`, run `bin`) gives a working plugin.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-tmdbsync");
const RELEASE: &str = "https://releases.example.org/tmdbsync/v-test";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// This machine's platform as krew names it (`linux/amd64`).
fn host() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("{}/{arch}", std::env::consts::OS)
}

fn package(out: &Path, binaries: &[String], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("scripts/package-plugin.sh"))
        .arg("--out")
        .arg(out);
    for b in binaries {
        cmd.args(["--binary", b]);
    }
    cmd.env_remove("TMDBSYNC_RELEASE_URL")
        .env_remove("TMDBSYNC_HOMEPAGE")
        .env_remove("SOURCE_DATE_EPOCH")
        .envs(env.iter().copied())
        .output()
        .expect("run package-plugin.sh")
}

fn package_ok(out: &Path, binaries: &[String], env: &[(&str, &str)]) -> Value {
    let o = package(out, binaries, env);
    assert!(
        o.status.success(),
        "package-plugin.sh: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(out.join("tmdbsync.yaml")).unwrap();
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn sha256(path: &Path) -> String {
    let o = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(o.status.success());
    String::from_utf8(o.stdout).unwrap()[..64].to_string()
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// krew's `ValidatePlugin` for a manifest in file `tmdbsync.yaml`, plus what the krew index asks
/// of a short description (one line, at most 50 characters).
fn validate(m: &Value) -> Result<(), String> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    if s(&m["apiVersion"]) != "krew.googlecontainertools.github.com/v1alpha2" {
        return Err(format!("apiVersion {}", m["apiVersion"]));
    }
    if s(&m["kind"]) != "Plugin" {
        return Err(format!("kind {}", m["kind"]));
    }
    let name = s(&m["metadata"]["name"]);
    if name != "tmdbsync"
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!("name {name:?} (the file is tmdbsync.yaml)"));
    }
    let spec = &m["spec"];
    let short = s(&spec["shortDescription"]);
    if short.is_empty() || short.contains(['\r', '\n']) || short.chars().count() > 50 {
        return Err(format!("shortDescription {short:?}"));
    }
    let version = s(&spec["version"]);
    let parts: Vec<&str> = version
        .strip_prefix('v')
        .unwrap_or("")
        .split(['-', '+'])
        .next()
        .unwrap_or("")
        .split('.')
        .collect();
    if parts.len() != 3 || parts.iter().any(|p| p.parse::<u64>().is_err()) {
        return Err(format!("version {version:?} is not vMAJOR.MINOR.PATCH"));
    }
    let platforms = spec["platforms"].as_array().cloned().unwrap_or_default();
    if platforms.is_empty() {
        return Err("no platform".into());
    }
    for p in &platforms {
        if s(&p["uri"]).is_empty() {
            return Err(format!("no uri: {p}"));
        }
        let sha = s(&p["sha256"]);
        if sha.len() != 64 || !sha.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
            return Err(format!("sha256 {sha:?}"));
        }
        if s(&p["bin"]).is_empty() {
            return Err(format!("no bin: {p}"));
        }
        if let Some(files) = p.get("files") {
            let files = files.as_array().cloned().unwrap_or_default();
            if files.is_empty()
                || files
                    .iter()
                    .any(|f| s(&f["from"]).is_empty() || s(&f["to"]).is_empty())
            {
                return Err(format!("files {}", p["files"]));
            }
        }
        let labels = p["selector"]["matchLabels"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        if labels.is_empty() || labels.keys().any(|k| k != "os" && k != "arch") {
            return Err(format!("selector {}", p["selector"]));
        }
    }
    Ok(())
}

/// Installs platform `p` of a manifest from `archive` the way krew does: unpack, move each
/// `files` entry, then return the path of `bin`.
fn krew_install(p: &Value, archive: &Path, into: &Path) -> PathBuf {
    let unpacked = into.join("unpacked");
    let installed = into.join("installed");
    std::fs::create_dir_all(&unpacked).unwrap();
    std::fs::create_dir_all(&installed).unwrap();
    run(Command::new("tar")
        .arg("-xzf")
        .arg(archive)
        .arg("-C")
        .arg(&unpacked));
    for f in p["files"].as_array().unwrap() {
        let from = unpacked.join(f["from"].as_str().unwrap());
        assert!(
            from.exists(),
            "files.from {} is not in the archive",
            f["from"]
        );
        let to = installed.join(f["to"].as_str().unwrap());
        std::fs::create_dir_all(&to).unwrap();
        std::fs::rename(&from, to.join(from.file_name().unwrap())).unwrap();
    }
    installed.join(p["bin"].as_str().unwrap())
}

#[test]
fn the_package_script_writes_a_krew_manifest_whose_archives_install_a_working_plugin() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("dist");
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    // Two platforms, to see one block each; the second is a stand-in file (a binary for another
    // platform is packed as it is, not run).
    let other = tmp.path().join("kubectl-tmdbsync-darwin");
    std::fs::write(&other, "#!/bin/sh\n").unwrap();
    run(Command::new("chmod").arg("+x").arg(&other));
    let binaries = [
        format!("{}={PLUGIN}", host()),
        format!("darwin/arm64={}", other.display()),
    ];
    let m = package_ok(&out, &binaries, &[("TMDBSYNC_RELEASE_URL", RELEASE)]);
    validate(&m).unwrap();
    assert_eq!(m["spec"]["version"], version.as_str());
    assert_eq!(
        m["spec"]["homepage"],
        "https://github.com/tmdbsync/tmdbsync"
    );
    let platforms = m["spec"]["platforms"].as_array().unwrap();
    let labels: Vec<String> = platforms
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p["selector"]["matchLabels"]["os"].as_str().unwrap(),
                p["selector"]["matchLabels"]["arch"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(labels, [host(), "darwin/arm64".to_string()]);
    let license = std::fs::read(repo().join("LICENSE")).unwrap();
    let mut sums = String::new();
    for (p, label) in platforms.iter().zip(&labels) {
        let archive_name = format!("kubectl-tmdbsync-{}.tar.gz", label.replace('/', "-"));
        assert_eq!(p["uri"], format!("{RELEASE}/{archive_name}"));
        let archive = out.join(&archive_name);
        let sha = sha256(&archive);
        assert_eq!(p["sha256"], sha.as_str(), "{archive_name}");
        sums.push_str(&format!("{sha}  {archive_name}\n"));
        // The archive: the binary (executable) and LICENSE, owned by root, nothing else.
        let listing = run(Command::new("tar").arg("-tvzf").arg(&archive));
        let entries: Vec<(&str, &str, &str)> = listing
            .lines()
            .map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                (w[0], w[1], *w.last().unwrap())
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("-rw-r--r--", "0/0", "LICENSE"),
                ("-rwxr-xr-x", "0/0", "kubectl-tmdbsync")
            ],
            "{listing}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(out.join("SHA256SUMS")).unwrap(),
        sums
    );

    // Installed as krew would, the host's platform runs and ships the license.
    let bin = krew_install(
        &platforms[0],
        &out.join(format!(
            "kubectl-tmdbsync-{}.tar.gz",
            host().replace('/', "-")
        )),
        tmp.path(),
    );
    let said = run(Command::new(&bin).arg("--version"));
    assert_eq!(said.trim(), format!("kubectl tmdbsync {}", &version[1..]));
    let help = run(Command::new(&bin).arg("--help"));
    assert!(help.contains("reset") && help.contains("run-now"), "{help}");
    assert_eq!(
        std::fs::read(bin.parent().unwrap().join("LICENSE")).unwrap(),
        license
    );

    // The same binary packs to the same bytes; without TMDBSYNC_RELEASE_URL the archives are
    // expected in the home's release of this version.
    let again = tmp.path().join("again");
    let m2 = package_ok(&again, &binaries[..1], &[]);
    let p2 = &m2["spec"]["platforms"][0];
    assert_eq!(p2["sha256"], platforms[0]["sha256"]);
    assert_eq!(
        p2["uri"],
        format!(
            "https://github.com/tmdbsync/tmdbsync/releases/download/{version}/kubectl-tmdbsync-{}.tar.gz",
            host().replace('/', "-")
        )
    );
}

#[test]
fn the_package_script_refuses_a_stale_binary_and_a_release_url_that_is_not_http() {
    let tmp = tempfile::tempdir().unwrap();
    let stale = tmp.path().join("kubectl-tmdbsync");
    std::fs::write(&stale, "#!/bin/sh\necho 'kubectl tmdbsync 0.0.1'\n").unwrap();
    run(Command::new("chmod").arg("+x").arg(&stale));
    let o = package(
        &tmp.path().join("out"),
        &[format!("{}={}", host(), stale.display())],
        &[],
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("rebuild it"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = package(
        &tmp.path().join("out"),
        &[format!("{}={PLUGIN}", host())],
        &[("TMDBSYNC_RELEASE_URL", "ftp://example.org/x")],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("http(s) URL"));
    // The template itself is a manifest with placeholders only where the script fills in.
    let template = std::fs::read_to_string(repo().join("plugins/tmdbsync.yaml.in")).unwrap();
    let mut placeholders: Vec<&str> = template
        .split('@')
        .skip(1)
        .step_by(2)
        .filter(|p| p.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect();
    placeholders.sort_unstable();
    placeholders.dedup();
    assert_eq!(placeholders, ["HOMEPAGE", "PLATFORMS", "VERSION"]);
}

#[test]
fn the_license_is_apache_2_as_the_package_says() {
    assert_eq!(env!("CARGO_PKG_LICENSE"), "Apache-2.0");
    let text = std::fs::read_to_string(repo().join("LICENSE")).unwrap();
    for part in [
        "Apache License",
        "Version 2.0, January 2004",
        "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
        "END OF TERMS AND CONDITIONS",
        "APPENDIX: How to apply the Apache License to your work.",
    ] {
        assert!(text.contains(part), "{part}");
    }
}
