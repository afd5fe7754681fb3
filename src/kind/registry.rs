//! Registry mirrors for the node's containerd, as kind's documented `containerdConfigPatches`
//! set them up: containerd reads `/etc/containerd/certs.d/<host>/hosts.toml` (its registry
//! `config_path`), and each file names the mirrors to pull `<host>`'s images from, with the CA
//! that signs their certificates copied next to it.
//!
//! The pure parts (validation, the files' text, the config patch) are here with their tests;
//! [`configure`] writes them into a node, changing nothing that is already as wanted.

use std::path::{Path, PathBuf};

use bollard::Docker;

use super::docker;
use super::error::CreateError;
use crate::observe::{Observer, ObserverExt};

/// Where containerd looks for `<host>/hosts.toml` once its registry `config_path` names it.
pub const CERTS_DIR: &str = "/etc/containerd/certs.d";
/// containerd's configuration file in a kindest/node image.
const CONFIG_TOML: &str = "/etc/containerd/config.toml";
/// The CRI registry tables that hold `config_path`: containerd 1.x (config version 2) and
/// containerd 2.x (config version 3).
const REGISTRY_TABLE_V2: &str = r#"plugins."io.containerd.grpc.v1.cri".registry"#;
const REGISTRY_TABLE_V3: &str = r#"plugins."io.containerd.cri.v1.images".registry"#;

/// A mirror for one registry host: pulls of `host`'s images try `url` first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryMirror {
    /// The registry host as image references name it (`docker.io`, `registry.k8s.io`,
    /// `10.0.0.5:5000`), or `_default` for every host without a file of its own.
    pub host: String,
    /// The mirror's URL, `http://` or `https://`, optionally with the API root's path.
    pub url: String,
}

/// The CA that signs the mirrors' certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryCa {
    /// Where it was read from (for messages).
    pub path: PathBuf,
    /// Its PEM text.
    pub pem: Vec<u8>,
}

/// The node's registry settings: none by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryConfig {
    mirrors: Vec<RegistryMirror>,
    ca: Option<RegistryCa>,
}

/// Why a mirror or CA is not usable. Each names the value given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Not `HOST=URL`.
    #[error(
        "registry mirror {given:?} is not HOST=URL (e.g. docker.io=https://mirror.internal:5000)"
    )]
    NotHostUrl {
        /// The value given.
        given: String,
    },
    /// The host is not a bare registry host.
    #[error(
        "registry mirror {given:?}: {host:?} is not a registry host (write it as image references do, without a scheme or path: docker.io, 10.0.0.5:5000)"
    )]
    Host {
        /// The value given.
        given: String,
        /// Its host part.
        host: String,
    },
    /// The URL is not an http(s) URL.
    #[error(
        "registry mirror {given:?}: {url:?} is not an http:// or https:// URL with a host (e.g. https://mirror.internal:5000)"
    )]
    Url {
        /// The value given.
        given: String,
        /// Its URL part.
        url: String,
    },
    /// The CA file cannot be read.
    #[error("cannot read registry CA {}", path.display())]
    CaRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The CA file is not a PEM certificate.
    #[error(
        "registry CA {} is not a PEM certificate (no -----BEGIN CERTIFICATE----- ... -----END CERTIFICATE----- block)",
        path.display()
    )]
    CaNotPem {
        /// The file.
        path: PathBuf,
    },
    /// A CA without a mirror to use it for.
    #[error("registry CA {} is given without a registry mirror to use it for", path.display())]
    CaWithoutMirror {
        /// The file.
        path: PathBuf,
    },
}

fn is_host(host: &str) -> bool {
    if host == "_default" {
        return true;
    }
    let (name, port) = if host.starts_with('[') {
        match host.find(']') {
            Some(i) => match &host[i + 1..] {
                "" => (host, None),
                rest => match rest.strip_prefix(':') {
                    Some(p) => (&host[..=i], Some(p)),
                    None => return false,
                },
            },
            None => return false,
        }
    } else {
        match host.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok());
    let name_ok = if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    };
    port_ok && name_ok
}

fn is_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or("");
    // The URL goes into a TOML string and a directory of its own: nothing to escape.
    host != "_default"
        && is_host(host)
        && rest
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"\"\\'`<>{}|^".contains(&b))
}

impl RegistryMirror {
    /// Parses `HOST=URL` (the `--registry-mirror` flag's form).
    pub fn parse(given: &str) -> Result<RegistryMirror, RegistryError> {
        let Some((host, url)) = given.split_once('=') else {
            return Err(RegistryError::NotHostUrl {
                given: given.to_string(),
            });
        };
        let (host, url) = (host.trim(), url.trim());
        if !is_host(host) {
            return Err(RegistryError::Host {
                given: given.to_string(),
                host: host.to_string(),
            });
        }
        if !is_url(url) {
            return Err(RegistryError::Url {
                given: given.to_string(),
                url: url.to_string(),
            });
        }
        Ok(RegistryMirror {
            host: host.to_string(),
            url: url.trim_end_matches('/').to_string(),
        })
    }
}

impl RegistryCa {
    /// Reads a PEM CA certificate.
    pub fn read(path: &Path) -> Result<RegistryCa, RegistryError> {
        let pem = std::fs::read(path).map_err(|source| RegistryError::CaRead {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8_lossy(&pem);
        let begin = text.find("-----BEGIN CERTIFICATE-----");
        let end = text.find("-----END CERTIFICATE-----");
        match (begin, end) {
            (Some(b), Some(e)) if b < e => Ok(RegistryCa {
                path: path.to_path_buf(),
                pem,
            }),
            _ => Err(RegistryError::CaNotPem {
                path: path.to_path_buf(),
            }),
        }
    }
}

impl RegistryConfig {
    /// Mirrors (in the order given: containerd tries a host's mirrors in that order) and the
    /// CA of the `https://` ones.
    pub fn new(
        mirrors: Vec<RegistryMirror>,
        ca: Option<RegistryCa>,
    ) -> Result<RegistryConfig, RegistryError> {
        if mirrors.is_empty()
            && let Some(ca) = ca
        {
            return Err(RegistryError::CaWithoutMirror { path: ca.path });
        }
        Ok(RegistryConfig { mirrors, ca })
    }

    /// The mirrors.
    pub fn mirrors(&self) -> &[RegistryMirror] {
        &self.mirrors
    }

    /// The CA.
    pub fn ca(&self) -> Option<&RegistryCa> {
        self.ca.as_ref()
    }

    /// No mirror.
    pub fn is_empty(&self) -> bool {
        self.mirrors.is_empty()
    }

    /// The files to write under [`CERTS_DIR`]: `(host, hosts.toml, CA PEM when one is used)`,
    /// one per host in the order first named.
    pub fn host_files(&self) -> Vec<(String, String, Option<Vec<u8>>)> {
        let mut hosts: Vec<&str> = Vec::new();
        for m in &self.mirrors {
            if !hosts.contains(&m.host.as_str()) {
                hosts.push(&m.host);
            }
        }
        hosts
            .into_iter()
            .map(|host| {
                let urls: Vec<&str> = self
                    .mirrors
                    .iter()
                    .filter(|m| m.host == host)
                    .map(|m| m.url.as_str())
                    .collect();
                let ca = self
                    .ca
                    .as_ref()
                    .filter(|_| urls.iter().any(|u| u.starts_with("https://")));
                let ca_path = ca.map(|_| format!("{CERTS_DIR}/{host}/ca.crt"));
                (
                    host.to_string(),
                    hosts_toml(host, &urls, ca_path.as_deref()),
                    ca.map(|c| c.pem.clone()),
                )
            })
            .collect()
    }
}

/// containerd's `hosts.toml` for `host`: its upstream as `server` (none for `_default`), then
/// each mirror as a `[host."URL"]` table that may pull and resolve, with `ca` for `https://`
/// mirrors when a CA is given, and `override_path` when the URL's path is the API root
/// (it holds `/v2`; otherwise containerd adds `/v2` to the path itself).
pub fn hosts_toml(host: &str, urls: &[&str], ca_path: Option<&str>) -> String {
    let mut out = String::new();
    if host != "_default" {
        let server = if host == "docker.io" {
            "registry-1.docker.io"
        } else {
            host
        };
        out.push_str(&format!("server = \"https://{server}\"\n"));
    }
    for url in urls {
        out.push_str(&format!(
            "\n[host.\"{url}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
        ));
        if let Some(ca) = ca_path.filter(|_| url.starts_with("https://")) {
            out.push_str(&format!("  ca = \"{ca}\"\n"));
        }
        let path = url
            .split_once("://")
            .map(|(_, r)| r)
            .and_then(|r| r.split_once('/'))
            .map(|(_, p)| p)
            .unwrap_or("");
        if path == "v2" || path.starts_with("v2/") || path.contains("/v2/") || path.ends_with("/v2")
        {
            out.push_str("  override_path = true\n");
        }
    }
    out
}

fn table_of(line: &str) -> Option<String> {
    let line = line.trim();
    if line.starts_with("[[") {
        return Some(line.to_string());
    }
    line.strip_prefix('[')
        .and_then(|l| l.split(']').next())
        .map(|h| h.trim().replace([' ', '\t'], ""))
}

/// The CRI registry's `config_path` in `containerd config dump` output, when set.
pub(crate) fn registry_config_path(config_dump: &str) -> Option<String> {
    let mut table = String::new();
    for line in config_dump.lines() {
        if let Some(t) = table_of(line) {
            table = t;
            continue;
        }
        if table != REGISTRY_TABLE_V2 && table != REGISTRY_TABLE_V3 {
            continue;
        }
        if let Some((key, value)) = line.split_once('=')
            && key.trim() == "config_path"
        {
            let value = value.split('#').next().unwrap_or("").trim();
            return Some(value.trim_matches(|c| c == '"' || c == '\'').to_string());
        }
    }
    None
}

/// Whether containerd reads host files from [`CERTS_DIR`] (`config_path` is a `:`-separated
/// list of directories).
pub(crate) fn reads_certs_dir(config_dump: &str) -> bool {
    registry_config_path(config_dump).is_some_and(|p| p.split(':').any(|d| d == CERTS_DIR))
}

/// `config.toml` with the CRI registry's `config_path` set to [`CERTS_DIR`], as kind's
/// documented patch sets it (the table of the file's config version); `None` when it is set
/// so already.
pub(crate) fn patch_config_toml(config: &str) -> Option<String> {
    let v3 = config
        .lines()
        .any(|l| l.split('#').next().unwrap_or("").replace([' ', '\t'], "") == "version=3");
    let wanted_table = if v3 {
        REGISTRY_TABLE_V3
    } else {
        REGISTRY_TABLE_V2
    };
    let setting = format!("config_path = \"{CERTS_DIR}\"");
    let lines: Vec<&str> = config.lines().collect();
    let header = lines
        .iter()
        .position(|l| table_of(l).as_deref() == Some(wanted_table));
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    match header {
        Some(h) => {
            let end = lines[h + 1..]
                .iter()
                .position(|l| table_of(l).is_some())
                .map_or(lines.len(), |i| h + 1 + i);
            let existing = (h + 1..end).find(|&i| {
                lines[i]
                    .split_once('=')
                    .is_some_and(|(k, _)| k.trim() == "config_path")
            });
            match existing {
                Some(i) if lines[i].trim() == setting => return None,
                Some(i) => out[i] = format!("  {setting}"),
                None => out.insert(h + 1, format!("  {setting}")),
            }
        }
        None => {
            if out.last().is_some_and(|l| !l.trim().is_empty()) {
                out.push(String::new());
            }
            out.push(format!("[{wanted_table}]"));
            out.push(format!("  {setting}"));
        }
    }
    Some(out.join("\n") + "\n")
}

/// A file's content in the node, `None` when it does not exist.
async fn read_file(
    docker: &Docker,
    node: &str,
    path: &str,
) -> Result<Option<Vec<u8>>, CreateError> {
    let out = docker::exec(docker, node, &["cat", path], None).await?;
    Ok(out.success().then(|| out.stdout.into_bytes()))
}

/// Writes `content` to `dir/name` in the node unless it is there already; `true` when written.
async fn ensure_file(
    docker: &Docker,
    node: &str,
    cluster: &str,
    dir: &str,
    name: &str,
    content: &[u8],
) -> Result<bool, CreateError> {
    let path = format!("{dir}/{name}");
    if read_file(docker, node, &path).await?.as_deref() == Some(content) {
        return Ok(false);
    }
    let mkdir = docker::exec(docker, node, &["mkdir", "-p", dir], None).await?;
    super::exec_ok(node, cluster, &format!("mkdir -p {dir}"), &mkdir)?;
    docker::copy_files(docker, node, dir, &[(name, content, 0o644)]).await?;
    Ok(true)
}

/// Sets the node's containerd up for `config`'s mirrors: its registry `config_path` names
/// [`CERTS_DIR`] (patched into `config.toml` and containerd restarted, as kind applies
/// `containerdConfigPatches`, only when the running containerd does not read it already: the
/// kindest/node images of kind v0.27 and later do), then `<host>/hosts.toml` and `<host>/ca.crt`
/// for each host. Files already as wanted are left alone, so a rerun changes nothing.
pub(crate) async fn configure(
    docker: &Docker,
    node: &str,
    cluster: &str,
    config: &RegistryConfig,
    observer: &dyn Observer,
) -> Result<(), CreateError> {
    if config.is_empty() {
        return Ok(());
    }
    let dump = docker::exec(docker, node, &["containerd", "config", "dump"], None).await?;
    super::exec_ok(node, cluster, "containerd config dump", &dump)?;
    if !reads_certs_dir(&dump.stdout) {
        let current = read_file(docker, node, CONFIG_TOML)
            .await?
            .unwrap_or_default();
        let current = String::from_utf8_lossy(&current).into_owned();
        if let Some(patched) = patch_config_toml(&current) {
            observer.action(format!(
                "setting containerd's registry config_path to {CERTS_DIR} in {node}"
            ));
            docker::copy_files(
                docker,
                node,
                "/etc/containerd",
                &[("config.toml", patched.as_bytes(), 0o644)],
            )
            .await?;
        }
        let restart =
            docker::exec(docker, node, &["systemctl", "restart", "containerd"], None).await?;
        super::exec_ok(node, cluster, "systemctl restart containerd", &restart)?;
    }
    for (host, toml, ca) in config.host_files() {
        let dir = format!("{CERTS_DIR}/{host}");
        let mut changed =
            ensure_file(docker, node, cluster, &dir, "hosts.toml", toml.as_bytes()).await?;
        if let Some(ca) = &ca {
            changed |= ensure_file(docker, node, cluster, &dir, "ca.crt", ca).await?;
        }
        let urls: Vec<&str> = config
            .mirrors()
            .iter()
            .filter(|m| m.host == host)
            .map(|m| m.url.as_str())
            .collect();
        let what = format!("{host} pulls through {}", urls.join(", "));
        if changed {
            observer.action(format!("registry mirror in {node}: {what}"));
        } else {
            observer.action(format!("registry mirror in {node} already set: {what}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_parse_and_refuse_with_the_value() {
        let m = RegistryMirror::parse("docker.io=https://mirror.internal:5000/").unwrap();
        assert_eq!(
            m,
            RegistryMirror {
                host: "docker.io".into(),
                url: "https://mirror.internal:5000".into()
            }
        );
        assert!(RegistryMirror::parse("127.0.0.1:5000=http://10.0.0.5:5000").is_ok());
        assert!(RegistryMirror::parse("_default=http://10.0.0.5").is_ok());
        assert!(RegistryMirror::parse("[::1]:5000=http://[::1]:5001").is_ok());
        let e = RegistryMirror::parse("docker.io").unwrap_err();
        assert!(
            e.to_string().contains("\"docker.io\" is not HOST=URL"),
            "{e}"
        );
        let e = RegistryMirror::parse("https://docker.io=https://m").unwrap_err();
        assert!(matches!(e, RegistryError::Host { .. }), "{e}");
        assert!(e.to_string().contains("\"https://docker.io\""), "{e}");
        let e = RegistryMirror::parse("docker.io=mirror:5000").unwrap_err();
        assert!(matches!(e, RegistryError::Url { .. }), "{e}");
        assert!(e.to_string().contains("\"mirror:5000\""), "{e}");
        for bad in [
            "docker.io=ftp://m",
            "docker.io=https://",
            "docker.io=https://m\"x",
            "docker.io=https://m x",
            "quay.io:x=https://m",
            "a/b=https://m",
            "=https://m",
        ] {
            assert!(RegistryMirror::parse(bad).is_err(), "{bad}");
        }
        for e in [
            RegistryMirror::parse("x").unwrap_err(),
            RegistryMirror::parse("a/b=https://m").unwrap_err(),
        ] {
            assert_eq!(e.to_string().lines().count(), 1);
        }
    }

    #[test]
    fn hosts_toml_is_containerds_format() {
        assert_eq!(
            hosts_toml(
                "docker.io",
                &["https://mirror.internal:5000", "http://10.0.0.5:5000"],
                Some("/etc/containerd/certs.d/docker.io/ca.crt")
            ),
            "server = \"https://registry-1.docker.io\"\n\
             \n[host.\"https://mirror.internal:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = \"/etc/containerd/certs.d/docker.io/ca.crt\"\n\
             \n[host.\"http://10.0.0.5:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
        );
        assert_eq!(
            hosts_toml("_default", &["https://h/v2/proxy"], None),
            "\n[host.\"https://h/v2/proxy\"]\n  capabilities = [\"pull\", \"resolve\"]\n  override_path = true\n"
        );
        assert!(
            hosts_toml("quay.io", &["https://h/mirror"], None)
                .starts_with("server = \"https://quay.io\"\n")
        );
        assert!(!hosts_toml("quay.io", &["https://h/mirror"], None).contains("override_path"));
        // Every file parses as TOML with the keys containerd reads.
        #[cfg(feature = "components")]
        let t: toml::Value = toml::from_str(&hosts_toml(
            "registry.k8s.io",
            &["https://a:1", "http://b"],
            Some("/c"),
        ))
        .unwrap();
        #[cfg(feature = "components")]
        {
            assert_eq!(t["server"].as_str(), Some("https://registry.k8s.io"));
            assert_eq!(t["host"]["https://a:1"]["ca"].as_str(), Some("/c"));
            assert!(t["host"]["http://b"].get("ca").is_none());
        }
    }

    #[test]
    fn host_files_group_mirrors_and_use_the_ca_for_https_only() {
        let ca = RegistryCa {
            path: "ca.pem".into(),
            pem: b"PEM".to_vec(),
        };
        let m = |s| RegistryMirror::parse(s).unwrap();
        let c = RegistryConfig::new(
            vec![
                m("docker.io=https://a"),
                m("ghcr.io=http://b"),
                m("docker.io=http://c"),
            ],
            Some(ca.clone()),
        )
        .unwrap();
        let files = c.host_files();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].0, "docker.io");
        assert!(
            files[0].1.contains("[host.\"https://a\"]")
                && files[0].1.contains("[host.\"http://c\"]")
        );
        assert!(
            files[0]
                .1
                .contains("ca = \"/etc/containerd/certs.d/docker.io/ca.crt\"")
        );
        assert_eq!(files[0].2.as_deref(), Some(&b"PEM"[..]));
        assert_eq!(files[1].0, "ghcr.io");
        assert!(files[1].2.is_none() && !files[1].1.contains("ca ="));
        let e = RegistryConfig::new(Vec::new(), Some(ca)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "registry CA ca.pem is given without a registry mirror to use it for"
        );
    }

    #[test]
    fn config_path_is_read_from_both_containerd_versions() {
        let v1 = "version = 2\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\".registry]\n    config_path = \"\"\n";
        assert_eq!(registry_config_path(v1).as_deref(), Some(""));
        assert!(!reads_certs_dir(v1));
        let v2 = "version = 3\n[plugins.\"io.containerd.cri.v1.images\".registry]\n  config_path = \"/etc/containerd/certs.d:/etc/docker/certs.d\"\n";
        assert!(reads_certs_dir(v2));
        assert!(!reads_certs_dir("version = 2\n"));
    }

    #[test]
    fn the_config_patch_is_kinds_and_idempotent() {
        // kind's base image config (version 2, no registry table): the table is appended.
        let base = "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"registry.k8s.io/pause:3.10\"\n";
        let patched = patch_config_toml(base).unwrap();
        assert!(patched.starts_with(base));
        assert!(patched.ends_with(
            "\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n"
        ));
        assert_eq!(patch_config_toml(&patched), None);
        #[cfg(feature = "components")]
        assert_eq!(
            toml::from_str::<toml::Value>(&patched).unwrap()
                ["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["config_path"]
                .as_str(),
            Some(CERTS_DIR)
        );
        // A table already there: its config_path is replaced, other keys kept.
        let with = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/other\"\n  x = 1\n[y]\n";
        let p = patch_config_toml(with).unwrap();
        assert!(
            p.contains("  config_path = \"/etc/containerd/certs.d\"\n  x = 1\n[y]"),
            "{p}"
        );
        // Version 3 uses containerd 2's table.
        let p = patch_config_toml("version = 3\n").unwrap();
        assert!(
            p.contains("[plugins.\"io.containerd.cri.v1.images\".registry]"),
            "{p}"
        );
    }
}
