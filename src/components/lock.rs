//! `vendor-manifests/vendor.lock`: the checksums recorded by `capi-manage vendor` (TOML, so
//! that Flux, applying the folder's YAML, never sees it).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Error;
use super::pins::is_sha256;

/// The lock's format version.
pub(crate) const FORMAT: u32 = 1;

const HEADER: &str = "# Written by `capi-manage vendor`: the sha256 of every upstream asset when it was first\n# vendored and of every rendered file. `capi-manage vendor` refuses downloads that differ;\n# `capi-manage bootstrap` refuses rendered files that differ. Do not edit.\n\n";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Lock {
    pub format: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_registry: Option<String>,
    /// sha256 of `kustomization.yaml`.
    pub kustomization_sha256: String,
    #[serde(default)]
    pub component: Vec<LockedComponent>,
    /// The charts of the repository's clusters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chart: Vec<LockedChart>,
}

/// A chart archive as its Helm repository served it when first vendored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LockedChart {
    pub name: String,
    pub version: String,
    /// The Helm repository's URL.
    pub repository: String,
    /// The archive's file name, e.g. `openstack-cluster-0.27.0.tgz`.
    pub file: String,
    /// sha256 of the archive.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LockedComponent {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub asset: Vec<LockedAsset>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LockedAsset {
    /// The upstream URL.
    pub url: String,
    /// sha256 of the upstream bytes.
    pub sha256: String,
    /// Their size.
    pub bytes: u64,
    /// The rendered file, relative to `vendor-manifests/`, `/`-separated.
    pub file: String,
    /// sha256 of the rendered file.
    pub rendered_sha256: String,
}

impl Lock {
    /// Reads the lock; `Ok(None)` when there is none yet.
    pub fn read(file: &Path) -> Result<Option<Lock>, Error> {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::Read {
                    path: file.to_path_buf(),
                    source,
                });
            }
        };
        let lock: Lock = toml::from_str(&text).map_err(|source| Error::LockToml {
            file: file.to_path_buf(),
            source: Box::new(source),
        })?;
        let bad = |problem: String| Error::Lock {
            file: file.to_path_buf(),
            problem,
        };
        if lock.format != FORMAT {
            return Err(bad(format!(
                "format {} is not the supported {FORMAT}: re-run `capi-manage vendor` with this version",
                lock.format
            )));
        }
        let sums = std::iter::once(&lock.kustomization_sha256).chain(
            lock.component
                .iter()
                .flat_map(|c| c.asset.iter())
                .flat_map(|a| [&a.sha256, &a.rendered_sha256])
                .chain(lock.chart.iter().map(|c| &c.sha256)),
        );
        for s in sums {
            if !is_sha256(s) {
                return Err(bad(format!("`{s}` is not a sha256")));
            }
        }
        for a in lock.component.iter().flat_map(|c| c.asset.iter()) {
            let p = Path::new(&a.file);
            if p.is_absolute()
                || p.components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(bad(format!(
                    "file `{}` is not a plain path inside vendor-manifests",
                    a.file
                )));
            }
        }
        for c in &lock.chart {
            if c.file.is_empty() || c.file.contains(['/', '\\']) || c.file.starts_with('.') {
                return Err(bad(format!(
                    "chart {} {}: file `{}` is not a plain file name",
                    c.name, c.version, c.file
                )));
            }
        }
        Ok(Some(lock))
    }

    /// The recorded archive of chart `name` at `version`.
    pub fn chart(&self, name: &str, version: &str) -> Option<&LockedChart> {
        self.chart
            .iter()
            .find(|c| c.name == name && c.version == version)
    }

    /// The lock's text.
    pub fn to_text(&self) -> String {
        format!(
            "{HEADER}{}",
            toml::to_string(self).expect("the lock always serialises")
        )
    }

    /// The recorded asset `url` of component `name`.
    pub fn asset(&self, name: &str, url: &str) -> Option<&LockedAsset> {
        self.component
            .iter()
            .find(|c| c.name == name)?
            .asset
            .iter()
            .find(|a| a.url == url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_bad_sums_and_paths() {
        let sum = "a".repeat(64);
        let lock = Lock {
            format: FORMAT,
            image_registry: None,
            kustomization_sha256: sum.clone(),
            component: vec![LockedComponent {
                name: "flux".into(),
                version: "v2.9.4".into(),
                asset: vec![LockedAsset {
                    url: "https://x/install.yaml".into(),
                    sha256: sum.clone(),
                    bytes: 3,
                    file: "flux/install.yaml".into(),
                    rendered_sha256: sum.clone(),
                }],
            }],
            chart: vec![LockedChart {
                name: "openstack-cluster".into(),
                version: "0.27.0".into(),
                repository: "https://charts.example/capi".into(),
                file: "openstack-cluster-0.27.0.tgz".into(),
                sha256: "b".repeat(64),
                bytes: 9,
            }],
        };
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vendor.lock");
        std::fs::write(&file, lock.to_text()).unwrap();
        assert_eq!(Lock::read(&file).unwrap(), Some(lock.clone()));
        assert_eq!(
            lock.asset("flux", "https://x/install.yaml").unwrap().bytes,
            3
        );
        std::fs::write(&file, lock.to_text().replace("flux/install", "../install")).unwrap();
        assert!(
            Lock::read(&file)
                .unwrap_err()
                .to_string()
                .contains("../install")
        );
        std::fs::write(&file, lock.to_text().replacen(&sum, "xyz", 1)).unwrap();
        assert!(Lock::read(&file).unwrap_err().to_string().contains("`xyz`"));
        assert_eq!(lock.chart("openstack-cluster", "0.27.0").unwrap().bytes, 9);
        assert!(lock.chart("openstack-cluster", "0.26.0").is_none());
        std::fs::write(
            &file,
            lock.to_text()
                .replace("\"openstack-cluster-0.27.0.tgz", "\"../x.tgz"),
        )
        .unwrap();
        assert!(
            Lock::read(&file)
                .unwrap_err()
                .to_string()
                .contains("../x.tgz")
        );
        std::fs::write(&file, lock.to_text().replace(&"b".repeat(64), "bad")).unwrap();
        assert!(Lock::read(&file).unwrap_err().to_string().contains("`bad`"));
        assert_eq!(Lock::read(&dir.path().join("none")).unwrap(), None);
    }
}
