//! Pinned, checksummed component manifests: one set for every use.
//!
//! `vendor-manifests/vendor.toml` pins each component (Flux, cert-manager, the Cluster API
//! providers, ORC, sealed-secrets): a version and its upstream release URLs, in install order.
//! Components that are not clusterctl's (Flux, ORC, sealed-secrets) are applied as published.
//! [`vendor`] downloads the assets (from upstream or a mirror), records their sha256 in
//! `vendor-manifests/vendor.lock` the first time and refuses any later download that differs,
//! renders them as `clusterctl init` would install them (variables, target namespace, labels;
//! optionally images from a mirror registry) into `vendor-manifests/<component>/*.yaml`, and
//! writes `vendor-manifests/kustomization.yaml` listing those files in install order, so Flux,
//! applying the folder from git, applies exactly what capi-manage applied at bootstrap.
//! [`load`] reads the rendered files back, refusing any whose sha256 differs from the lock.
//!
//! Rendering is pure ([`render_objects`], [`provider_components`], [`mirror_image`]);
//! downloading is a thin layer around it. With the `kube` feature as well, `install` applies
//! components unit by unit with health gates.

mod charts;
mod download;
mod envsubst;
mod error;
#[cfg(feature = "kube")]
mod install;
mod lock;
mod pins;
mod transform;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::manifest::{Object, parse_str};
use crate::observe::{Observer, ObserverExt};

pub use charts::ChartReport;
pub use download::mirror_url;
pub use error::Error;
#[cfg(feature = "kube")]
pub use install::{
    InstallOptions, InstallReport, NAMESPACE_NAME_LABEL, Unit, UnitReport, gate, install,
    install_unit, webhook_ca_injected,
};
pub use pins::{
    Asset, ChartPin, ChartSource, Pin, Pins, Provider, ProviderType, Role, chart_pins,
    chart_sources,
};
pub use transform::{
    CERT_MANAGER_VERSION_ANNOTATION, CLUSTERCTL_CORE_LABEL, CLUSTERCTL_LABEL, PROVIDER_LABEL,
    mirror_image, provider_components, render_objects, rewrite_images,
};

use lock::{Lock, LockedAsset, LockedComponent};

/// The folder, relative to the repository root.
pub const VENDOR_DIR: &str = "vendor-manifests";
/// The pin file, in [`VENDOR_DIR`].
pub const PINS_FILE: &str = "vendor.toml";
/// The recorded checksums, in [`VENDOR_DIR`].
pub const LOCK_FILE: &str = "vendor.lock";
/// The kustomization listing the rendered files, in [`VENDOR_DIR`].
pub const KUSTOMIZATION_FILE: &str = "kustomization.yaml";

/// Options for [`vendor`].
#[derive(Debug, Clone, Default)]
pub struct VendorOptions {
    /// Fetch every asset from `<mirror>/<host>/<path>` instead of its upstream URL.
    pub mirror: Option<String>,
    /// Point every container image at this registry (keeping repository paths and tags).
    pub image_registry: Option<String>,
    /// Variables for the providers' `${VAR}` references (before the environment's).
    pub variables: BTreeMap<String, String>,
    /// Also look variables up in the process environment, as clusterctl does.
    pub use_env: bool,
    /// With `mirror`: accept an asset that has neither a `sha256` pin in vendor.toml nor a lock
    /// entry, recording what the mirror serves. Off, such an asset is refused: the first
    /// download through a mirror would otherwise take the mirror's word for the bytes.
    pub trust_mirror_for_new_assets: bool,
    /// The charts to pin in `vendor.lock` (see [`chart_sources`]): each archive is downloaded
    /// from its Helm repository (never through `mirror`: a chart mirror is the HelmRepository's
    /// URL, as Flux fetches it), its sha256 recorded the first time and checked afterwards.
    pub charts: Vec<ChartSource>,
}

/// The most an asset with no recorded size may be.
pub const MAX_ASSET_BYTES: u64 = 64 << 20;
/// How much larger than its recorded size an asset may arrive before the download stops (it is
/// refused by its checksum anyway; the bound keeps a hostile server from filling memory).
pub const ASSET_SIZE_MARGIN: u64 = 64 << 10;

/// What [`vendor`] did with one asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetReport {
    /// The component.
    pub component: String,
    /// The upstream URL.
    pub url: String,
    /// Size of the download.
    pub bytes: u64,
    /// Its sha256.
    pub sha256: String,
    /// Whether its checksum was recorded now or verified.
    pub checksum: ChecksumStatus,
    /// The rendered file, relative to the repository root.
    pub file: PathBuf,
    /// Whether the rendered file was written or already up to date.
    pub file_status: FileStatus,
}

/// The checksum of a download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumStatus {
    /// First vendored: its sha256 is now recorded.
    Recorded,
    /// It matched the recorded (or pinned) sha256.
    Verified,
}

/// A rendered file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    /// Written (new or changed).
    Written,
    /// Already identical.
    Unchanged,
}

/// What [`vendor`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorReport {
    /// Every asset, in install order.
    pub assets: Vec<AssetReport>,
    /// Rendered files of components no longer pinned, removed.
    pub removed: Vec<PathBuf>,
    /// Every chart, sorted.
    pub charts: Vec<ChartReport>,
}

impl VendorReport {
    /// Whether nothing on disk changed.
    pub fn unchanged(&self) -> bool {
        self.removed.is_empty()
            && self
                .charts
                .iter()
                .all(|c| c.checksum == ChecksumStatus::Verified)
            && self.assets.iter().all(|a| {
                a.checksum == ChecksumStatus::Verified && a.file_status == FileStatus::Unchanged
            })
    }
}

/// The vendored manifests, verified, in install order.
#[derive(Debug, Clone)]
pub struct Vendored {
    /// The components, in install order.
    pub components: Vec<Component>,
}

/// One vendored component.
#[derive(Debug, Clone)]
pub struct Component {
    /// Its name, e.g. `flux`, `cluster-api`, `infrastructure-openstack`.
    pub name: String,
    /// Its pinned version.
    pub version: String,
    /// Its objects, in file order.
    pub objects: Vec<Object>,
    /// Its rendered files, relative to the repository root.
    pub files: Vec<PathBuf>,
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn slash_path(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// The text of `kustomization.yaml` listing `files` (relative to the folder, `/`-separated).
pub fn kustomization_text(files: &[String]) -> String {
    let mut s = String::from(
        "# Written by `capi-manage vendor`: the rendered components in install order, exactly\n# what capi-manage applies at bootstrap. Do not edit.\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n",
    );
    for f in files {
        s.push_str(&format!("- {f}\n"));
    }
    s
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let err = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    crate::fs::write_atomic(path, bytes, crate::fs::Access::Keep).map_err(err)
}

/// Whether `path` holds exactly `bytes`.
fn same_content(path: &Path, bytes: &[u8]) -> bool {
    std::fs::read(path).is_ok_and(|b| b == bytes)
}

struct Prepared {
    report: AssetReport,
    relative: String,
    text: String,
}

/// Downloads, verifies (or records) and renders every pinned asset of the repository at
/// `root`, then writes the rendered files, `kustomization.yaml` and `vendor.lock`.
///
/// Everything is downloaded and checked before anything is written: a download that differs
/// from its recorded sha256, a missing variable or a cancellation leaves `vendor-manifests`
/// as it was. Re-running with the same pins and options changes nothing.
///
/// # Errors
///
/// [`Error::PinsToml`], [`Error::Pin`], [`Error::LockToml`] or [`Error::Lock`] for unusable
/// pins or lock; [`Error::Client`], [`Error::Download`], [`Error::HttpStatus`] or
/// [`Error::TooLarge`] for a failed download; [`Error::Checksum`] or [`Error::Tampered`] when
/// the bytes differ from the pin or the lock; [`Error::MirrorUnpinned`] for a mirrored asset
/// with nothing to check it against; [`Error::Manifest`], [`Error::Variable`] or
/// [`Error::Provider`] when rendering fails; [`Error::Read`] or [`Error::Write`] for files;
/// [`Error::Cancelled`] when `cancel` fired. Nothing is written on any of them.
pub async fn vendor(
    root: &Path,
    options: &VendorOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<VendorReport, Error> {
    let dir = root.join(VENDOR_DIR);
    let pins = Pins::read(&dir.join(PINS_FILE))?;
    let lock_path = dir.join(LOCK_FILE);
    let old_lock = Lock::read(&lock_path)?;
    let mut variables = BTreeMap::new();
    if options.use_env {
        variables.extend(std::env::vars());
    }
    variables.extend(options.variables.clone());

    let https = options
        .mirror
        .as_deref()
        .map(|m| m.starts_with("https://"))
        .unwrap_or_else(|| {
            pins.components
                .iter()
                .flat_map(|c| &c.assets)
                .any(|a| a.url.starts_with("https://"))
        })
        || options
            .charts
            .iter()
            .any(|c| c.repository.starts_with("https://"));
    let downloader = download::Downloader::new(https).map_err(|source| Error::Client { source })?;

    let started = Instant::now();
    let mut prepared: Vec<Prepared> = Vec::new();
    let mut locked = Vec::new();
    for pin in &pins.components {
        let mut assets = Vec::new();
        for asset in &pin.assets {
            if cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let from = match &options.mirror {
                Some(m) => mirror_url(m, &asset.url),
                None => asset.url.clone(),
            };
            let locked = old_lock
                .as_ref()
                .and_then(|l| l.asset(&pin.name, &asset.url));
            if options.mirror.is_some()
                && asset.sha256.is_none()
                && locked.is_none()
                && !options.trust_mirror_for_new_assets
            {
                return Err(Error::MirrorUnpinned {
                    component: pin.name.clone(),
                    url: asset.url.clone(),
                });
            }
            let limit = locked.map_or(MAX_ASSET_BYTES, |a| a.bytes + ASSET_SIZE_MARGIN);
            let what = format!("{} {}", pin.name, asset.file_name());
            observer.action(format!("downloading {what} from {from}"));
            let bytes = downloader
                .get(&from, &what, limit, observer, cancel)
                .await
                .map_err(|f| match f {
                    download::Failure::Cancelled => Error::Cancelled,
                    download::Failure::Status(status) => Error::HttpStatus {
                        component: pin.name.clone(),
                        url: asset.url.clone(),
                        from: from.clone(),
                        status,
                    },
                    download::Failure::TooLarge { limit } => Error::TooLarge {
                        component: pin.name.clone(),
                        url: asset.url.clone(),
                        from: from.clone(),
                        limit,
                    },
                    download::Failure::Transport(source) => Error::Download {
                        component: pin.name.clone(),
                        url: asset.url.clone(),
                        from: from.clone(),
                        attempts: 4,
                        source,
                    },
                })?;
            let actual = sha256_hex(&bytes);
            let expected = asset.sha256.clone().or_else(|| {
                old_lock
                    .as_ref()
                    .and_then(|l| l.asset(&pin.name, &asset.url))
                    .map(|a| a.sha256.clone())
            });
            let checksum = match expected {
                Some(e) if e != actual => {
                    return Err(Error::Checksum {
                        component: pin.name.clone(),
                        url: asset.url.clone(),
                        from,
                        expected: e,
                        actual,
                    });
                }
                Some(_) => ChecksumStatus::Verified,
                None => ChecksumStatus::Recorded,
            };
            let objects = render_objects(
                pin,
                &asset.url,
                &bytes,
                &variables,
                options.image_registry.as_deref(),
            )?;
            let text = transform::rendered_text(pin, &asset.url, &actual, &objects);
            let relative = slash_path(&pins::rendered_path(pin, asset));
            let file = Path::new(VENDOR_DIR).join(pins::rendered_path(pin, asset));
            let file_status = if same_content(&root.join(&file), text.as_bytes()) {
                FileStatus::Unchanged
            } else {
                FileStatus::Written
            };
            assets.push(LockedAsset {
                url: asset.url.clone(),
                sha256: actual.clone(),
                bytes: bytes.len() as u64,
                file: relative.clone(),
                rendered_sha256: sha256_hex(text.as_bytes()),
            });
            prepared.push(Prepared {
                report: AssetReport {
                    component: pin.name.clone(),
                    url: asset.url.clone(),
                    bytes: bytes.len() as u64,
                    sha256: actual,
                    checksum,
                    file,
                    file_status,
                },
                relative,
                text,
            });
        }
        locked.push(LockedComponent {
            name: pin.name.clone(),
            version: pin.version.clone(),
            asset: assets,
        });
    }
    let (locked_charts, chart_reports) = charts::vendor_charts(
        &downloader,
        &options.charts,
        old_lock.as_ref(),
        observer,
        cancel,
    )
    .await?;
    if cancel.is_cancelled() {
        return Err(Error::Cancelled);
    }

    // Everything is verified and rendered: write.
    for p in &prepared {
        if p.report.file_status == FileStatus::Written {
            write_atomic(&root.join(&p.report.file), p.text.as_bytes())?;
        }
    }
    let files: Vec<String> = prepared.iter().map(|p| p.relative.clone()).collect();
    let kustomization = kustomization_text(&files);
    let kustomization_path = dir.join(KUSTOMIZATION_FILE);
    if !same_content(&kustomization_path, kustomization.as_bytes()) {
        write_atomic(&kustomization_path, kustomization.as_bytes())?;
    }
    let new_lock = Lock {
        format: lock::FORMAT,
        image_registry: options.image_registry.clone(),
        kustomization_sha256: sha256_hex(kustomization.as_bytes()),
        component: locked,
        chart: locked_charts,
    };
    let mut removed = Vec::new();
    if let Some(old) = &old_lock {
        for a in old.component.iter().flat_map(|c| &c.asset) {
            if !files.contains(&a.file) {
                let path = dir.join(&a.file);
                match std::fs::remove_file(&path) {
                    Ok(()) => {
                        removed.push(Path::new(VENDOR_DIR).join(&a.file));
                        if let Some(parent) = path.parent() {
                            // Only succeeds when the folder is empty.
                            let _ = std::fs::remove_dir(parent);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(Error::Write { path, source }),
                }
            }
        }
    }
    let lock_text = new_lock.to_text();
    if !same_content(&lock_path, lock_text.as_bytes()) {
        write_atomic(&lock_path, lock_text.as_bytes())?;
    }
    let report = VendorReport {
        assets: prepared.into_iter().map(|p| p.report).collect(),
        removed,
        charts: chart_reports,
    };
    let recorded = report
        .assets
        .iter()
        .map(|a| a.checksum)
        .chain(report.charts.iter().map(|c| c.checksum))
        .filter(|c| *c == ChecksumStatus::Recorded)
        .count();
    let written = report
        .assets
        .iter()
        .filter(|a| a.file_status == FileStatus::Written)
        .count();
    observer.success(
        format!(
            "vendored {} assets of {} components and {} charts: {} verified, {recorded} recorded, {written} files written",
            report.assets.len(),
            pins.components.len(),
            report.charts.len(),
            report.assets.len() + report.charts.len() - recorded,
        ),
        Some(started.elapsed()),
    );
    Ok(report)
}

/// Reads `vendor-manifests` of the repository at `root`: checks that it matches the pins,
/// verifies every rendered file (and `kustomization.yaml`) against the sha256 recorded in
/// `vendor.lock`, and returns the components in install order.
///
/// Holds every component's objects at once; [`open`] reads them one at a time.
pub fn load(root: &Path) -> Result<Vendored, Error> {
    let files = open(root)?;
    let components = files.iter().collect::<Result<_, _>>()?;
    Ok(Vendored { components })
}

/// `vendor-manifests` of a repository, checked against the pins but not read yet (see
/// [`open`]): each component is read, verified and parsed when asked for, so a caller that
/// handles one component at a time holds one component's objects, not all of them.
#[derive(Debug, Clone)]
pub struct VendoredFiles {
    dir: PathBuf,
    pins: Pins,
    lock: Lock,
}

impl VendoredFiles {
    /// How many components there are.
    pub fn len(&self) -> usize {
        self.pins.components.len()
    }

    /// Whether no component is pinned.
    pub fn is_empty(&self) -> bool {
        self.pins.components.is_empty()
    }

    /// Checks every component as [`VendoredFiles::read`] does (pins against the lock, each
    /// file's sha256) without parsing any, in the same order: the errors [`load`] would
    /// return first, apart from a file that is not UTF-8 or not YAML.
    pub fn verify(&self) -> Result<(), Error> {
        for index in 0..self.len() {
            self.check(index)?;
            for a in &self.lock.component[index].asset {
                verify(&self.dir.join(&a.file), &a.rendered_sha256)?;
            }
        }
        Ok(())
    }

    /// The component at `index` (in install order): its pin checked against the lock, its
    /// files verified and parsed.
    ///
    /// # Panics
    ///
    /// When `index` is not below [`VendoredFiles::len`].
    pub fn read(&self, index: usize) -> Result<Component, Error> {
        self.check(index)?;
        let (pin, locked) = (&self.pins.components[index], &self.lock.component[index]);
        let mut objects = Vec::new();
        let mut files = Vec::new();
        for a in &locked.asset {
            let path = self.dir.join(&a.file);
            let bytes = verify(&path, &a.rendered_sha256)?;
            let text = String::from_utf8(bytes).map_err(|_| Error::NotUtf8 {
                component: pin.name.clone(),
                url: path.display().to_string(),
            })?;
            objects.extend(
                parse_str(&text, Some(&path)).map_err(|source| Error::Manifest {
                    component: pin.name.clone(),
                    url: path.display().to_string(),
                    source,
                })?,
            );
            files.push(Path::new(VENDOR_DIR).join(&a.file));
        }
        Ok(Component {
            name: pin.name.clone(),
            version: pin.version.clone(),
            objects,
            files,
        })
    }

    /// Every component in install order, each read when the iterator reaches it.
    pub fn iter(&self) -> impl Iterator<Item = Result<Component, Error>> + '_ {
        (0..self.len()).map(|i| self.read(i))
    }

    /// The pin of component `index` matches its lock entry (version and asset URLs).
    fn check(&self, index: usize) -> Result<(), Error> {
        let (pin, locked) = (&self.pins.components[index], &self.lock.component[index]);
        let urls: Vec<&str> = pin.assets.iter().map(|a| a.url.as_str()).collect();
        let locked_urls: Vec<&str> = locked.asset.iter().map(|a| a.url.as_str()).collect();
        if pin.version != locked.version || urls != locked_urls {
            return Err(Error::Stale {
                component: pin.name.clone(),
                problem: format!(
                    "vendor.toml pins {} [{}] but vendor.lock holds {} [{}]",
                    pin.version,
                    urls.join(", "),
                    locked.version,
                    locked_urls.join(", ")
                ),
            });
        }
        Ok(())
    }
}

/// Opens `vendor-manifests` of the repository at `root` as [`load`] does, reading only the
/// pins, the lock and `kustomization.yaml` (verified): the components are read from the
/// returned [`VendoredFiles`], one at a time.
pub fn open(root: &Path) -> Result<VendoredFiles, Error> {
    let dir = root.join(VENDOR_DIR);
    let pins = Pins::read(&dir.join(PINS_FILE))?;
    let lock_path = dir.join(LOCK_FILE);
    let lock = Lock::read(&lock_path)?.ok_or(Error::NotVendored {
        lock: lock_path.clone(),
    })?;
    let names = |v: Vec<&str>| v.join(", ");
    if pins.components.len() != lock.component.len()
        || pins
            .components
            .iter()
            .zip(&lock.component)
            .any(|(p, l)| p.name != l.name)
    {
        return Err(Error::Stale {
            component: "vendor-manifests".into(),
            problem: format!(
                "vendor.toml pins [{}] but vendor.lock holds [{}]",
                names(pins.components.iter().map(|c| c.name.as_str()).collect()),
                names(lock.component.iter().map(|c| c.name.as_str()).collect())
            ),
        });
    }
    verify(&dir.join(KUSTOMIZATION_FILE), &lock.kustomization_sha256)?;
    Ok(VendoredFiles { dir, pins, lock })
}

fn verify(path: &Path, expected: &str) -> Result<Vec<u8>, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let actual = sha256_hex(&bytes);
    if actual != expected {
        return Err(Error::Tampered {
            file: path.to_path_buf(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_and_kustomization() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let k = kustomization_text(&[
            "flux/install.yaml".into(),
            "cluster-api/core-components.yaml".into(),
        ]);
        let v: serde_json::Value = serde_yaml_ng::from_str(&k).unwrap();
        assert_eq!(v["kind"], "Kustomization");
        assert_eq!(v["resources"][1], "cluster-api/core-components.yaml");
    }
}
