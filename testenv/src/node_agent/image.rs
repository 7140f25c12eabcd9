//! Maps container images to local binaries and builds a container's command line.
//!
//! Matching rule for an image `REGISTRY/PATH/NAME:TAG@DIGEST` (tag and digest are ignored; the rest is
//! the *repository*), for each `--image-map KEY=PATH`:
//! 1. the repository equals `KEY`, or
//! 2. the repository starts with `KEY` (a registry/path prefix such as `ghcr.io/acme/`), or
//! 3. the repository's last path segment (`NAME`) contains `KEY` (so `tmdbsync` maps
//!    `ghcr.io/acme/tmdbsync:1.2` and `tmdbsync-worker`).
//!
//! The longest matching key wins; an image no key matches uses `--default-binary` when given.
//!
//! Command line (as in Kubernetes, `command` replaces the image's entrypoint, `args` its cmd):
//! * `command` empty: the mapped binary runs with `args`.
//! * `command[0]` names the image's entrypoint — it equals the mapped binary's path, its file name,
//!   the image's `NAME`, or the map key — : the mapped binary runs with `command[1..] + args`.
//! * otherwise `command[0]` runs as given (absolute path, or looked up in `PATH`) with
//!   `command[1..] + args`.
//!
//! `$(VAR)` references in `command` and `args` are expanded from the container's environment like the
//! kubelet does (`$$` escapes a `$`; unknown references stay as written).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::AgentError;

/// Image-prefix → local binary mappings (`--image-map KEY=PATH`) plus an optional fallback binary.
#[derive(Debug, Clone, Default)]
pub struct ImageMap {
    entries: Vec<(String, PathBuf)>,
    default_binary: Option<PathBuf>,
}

/// The program and arguments to run for a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// The executable (a path or a name looked up in `PATH`).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
}

impl ImageMap {
    /// An empty map with an optional default binary for images no entry matches.
    pub fn new(default_binary: Option<PathBuf>) -> Self {
        Self {
            entries: Vec::new(),
            default_binary,
        }
    }

    /// Adds one mapping given as `KEY=PATH`.
    pub fn add_spec(&mut self, spec: &str) -> Result<(), AgentError> {
        let (key, path) = spec
            .split_once('=')
            .filter(|(k, p)| !k.is_empty() && !p.is_empty())
            .ok_or_else(|| {
                AgentError::Config(format!("--image-map expects KEY=PATH, got {spec:?}"))
            })?;
        self.entries.push((key.to_string(), PathBuf::from(path)));
        Ok(())
    }

    /// The binary for `image` and the key that matched (empty for the default binary).
    pub fn lookup(&self, image: &str) -> Option<(&str, &Path)> {
        let repo = repository(image);
        let name = repo.rsplit('/').next().unwrap_or(repo);
        self.entries
            .iter()
            .filter(|(key, _)| {
                repo == key || repo.starts_with(key.as_str()) || name.contains(key.as_str())
            })
            .max_by_key(|(key, _)| key.len())
            .map(|(key, path)| (key.as_str(), path.as_path()))
            .or_else(|| self.default_binary.as_deref().map(|p| ("", p)))
    }

    /// Builds the command line for a container of `image`, expanding `$(VAR)` from `env`.
    pub fn command_line(
        &self,
        image: &str,
        command: &[String],
        args: &[String],
        env: &BTreeMap<String, String>,
    ) -> Result<CommandLine, AgentError> {
        let command: Vec<String> = command.iter().map(|c| expand(c, env)).collect();
        let args: Vec<String> = args.iter().map(|a| expand(a, env)).collect();
        let mapped = self.lookup(image);
        let Some(first) = command.first() else {
            let (_, binary) = mapped.ok_or_else(|| AgentError::UnmappedImage(image.to_string()))?;
            return Ok(CommandLine {
                program: binary.to_path_buf(),
                args,
            });
        };
        let rest = command[1..].iter().cloned().chain(args).collect();
        let program = match mapped {
            Some((key, binary)) if names_entrypoint(first, key, binary, image) => {
                binary.to_path_buf()
            }
            _ => PathBuf::from(first),
        };
        Ok(CommandLine {
            program,
            args: rest,
        })
    }
}

fn names_entrypoint(first: &str, key: &str, binary: &Path, image: &str) -> bool {
    let repo = repository(image);
    let image_name = repo.rsplit('/').next().unwrap_or(repo);
    let first_name = Path::new(first)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(first);
    let binary_name = binary
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    Path::new(first) == binary
        || first_name == binary_name
        || first_name == image_name
        || (!key.is_empty() && first_name == key)
}

/// The repository part of an image reference: without `@digest` and `:tag`.
pub fn repository(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rfind(':') {
        // A colon after the last slash is a tag; before it, a registry port.
        Some(i) if !image[i..].contains('/') => &image[..i],
        _ => image,
    }
}

/// Expands `$(VAR)` references like the kubelet: `$$` → `$`, unknown references stay as written.
pub fn expand(input: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(end) => {
                    let name = &body[..end];
                    match env.get(name) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = body;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> ImageMap {
        let mut m = ImageMap::new(None);
        m.add_spec("tmdbsync=/opt/tmdbsync").unwrap();
        m.add_spec("busybox=/bin/sh").unwrap();
        m.add_spec("ghcr.io/acme/=/opt/acme").unwrap();
        m
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn repository_strips_tag_and_digest() {
        assert_eq!(
            repository("ghcr.io/acme/tmdbsync:1.2"),
            "ghcr.io/acme/tmdbsync"
        );
        assert_eq!(
            repository("localhost:5000/tmdbsync"),
            "localhost:5000/tmdbsync"
        );
        assert_eq!(repository("tmdbsync@sha256:abc"), "tmdbsync");
        assert_eq!(repository("busybox"), "busybox");
    }

    #[test]
    fn lookup_rules() {
        let m = map();
        assert_eq!(
            m.lookup("tmdbsync:dev").unwrap().1,
            Path::new("/opt/tmdbsync")
        );
        assert_eq!(
            m.lookup("docker.io/x/tmdbsync-worker:1").unwrap().1,
            Path::new("/opt/tmdbsync")
        );
        // the longest key wins: the prefix beats the name match
        assert_eq!(
            m.lookup("ghcr.io/acme/tmdbsync:1").unwrap().1,
            Path::new("/opt/acme")
        );
        assert!(m.lookup("nginx").is_none());
        let d = ImageMap::new(Some("/bin/true".into()));
        assert_eq!(d.lookup("nginx").unwrap().1, Path::new("/bin/true"));
        assert!(ImageMap::new(None).add_spec("nokey").is_err());
    }

    #[test]
    fn command_lines() {
        let m = map();
        let env = BTreeMap::from([("N".to_string(), "7".to_string())]);
        let c = m
            .command_line("busybox", &[], &s(&["-c", "echo $(N) $$(N)"]), &env)
            .unwrap();
        assert_eq!(c.program, Path::new("/bin/sh"));
        assert_eq!(c.args, s(&["-c", "echo 7 $(N)"]));
        let c = m
            .command_line("tmdbsync:1", &s(&["tmdbsync", "run"]), &s(&["--x"]), &env)
            .unwrap();
        assert_eq!(c.program, Path::new("/opt/tmdbsync"));
        assert_eq!(c.args, s(&["run", "--x"]));
        let c = m
            .command_line("tmdbsync:1", &s(&["/usr/bin/env"]), &s(&["a"]), &env)
            .unwrap();
        assert_eq!(c.program, Path::new("/usr/bin/env"));
        assert!(m.command_line("nginx", &[], &[], &env).is_err());
        let c = m
            .command_line("nginx", &s(&["/bin/echo"]), &[], &env)
            .unwrap();
        assert_eq!(c.program, Path::new("/bin/echo"));
    }

    #[test]
    fn expand_edge_cases() {
        let env = BTreeMap::from([("A".to_string(), "x".to_string())]);
        assert_eq!(expand("$(A)$(B)$A$(", &env), "x$(B)$A$(");
        assert_eq!(expand("$$$(A)", &env), "$x");
    }
}
