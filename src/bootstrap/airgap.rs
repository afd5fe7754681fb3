//! Air-gapped bootstraps: the OCI image layout of `--images DIR` (what `capi-manage images pull
//! --to DIR` writes) read into the archive that the kind node's containerd imports, and checked
//! against the images the bootstrap runs before anything is created.
//!
//! Only what containerd imports goes into the archive: `oci-layout`, an `index.json` listing the
//! images (charts, stored in the same layout as OCI artifacts, are left out: they are not
//! images), and the blobs those images reach (manifests, indexes, configs, layers), each checked
//! against its size here and against its digest while it streams.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::images::oci::{self, Descriptor, Index, Parsed};
use crate::images::{Error, InventoryImage, Layout, Reference, ref_name};
use crate::kind::{ArchiveContent, ArchiveFile};

use super::Options;
use super::preflight::{Check, Operation, chain};

/// The preflight check's id.
const ID: &str = "images";

/// The source the inventory gives the kind node image: it runs from Docker, not containerd.
const NODE_SOURCE: &str = "kind node";

/// An image layout ready to stream into the kind node.
#[derive(Debug, Clone)]
pub struct ImageLayout {
    /// The layout's folder.
    pub dir: PathBuf,
    /// The images it holds, by the names `index.json` gives them (containerd imports them
    /// under these names).
    pub images: Vec<String>,
    /// The charts it holds, not imported.
    pub charts: Vec<String>,
    /// The archive's members, in order.
    pub files: Vec<ArchiveFile>,
    /// Their total size in bytes.
    pub bytes: u64,
}

fn bad(dir: &Path, problem: String) -> Error {
    Error::Layout {
        dir: dir.to_path_buf(),
        problem,
    }
}

/// Reads the layout at `dir`: every image's manifests (digests checked), and every blob they
/// name present with its size. A blob's content is checked against its digest later, while it
/// streams.
///
/// # Errors
///
/// [`Error::Layout`] for a folder that is not an OCI image layout, names no image, or lacks a
/// blob (naming the image and the blob); [`Error::Digest`] for a manifest that does not match
/// its digest; [`Error::Io`].
pub fn read_layout(dir: &Path) -> Result<ImageLayout, Error> {
    let layout = Layout::open(dir)?;
    let index = layout.index()?;
    let mut kept = Vec::new();
    let mut images = Vec::new();
    let mut charts = Vec::new();
    let mut blobs: Vec<(String, u64)> = Vec::new();
    let mut seen = BTreeSet::new();
    for d in &index.manifests {
        let name = ref_name(d).unwrap_or(&d.digest).to_string();
        let mut reached = Vec::new();
        let chart = walk(&layout, &name, d, &mut reached, 0)?;
        if chart {
            charts.push(name);
            continue;
        }
        for (digest, size) in reached {
            if seen.insert(digest.clone()) {
                blobs.push((digest, size));
            }
        }
        images.push(name);
        kept.push(d.clone());
    }
    if images.is_empty() {
        return Err(bad(
            dir,
            "index.json names no image (`capi-manage images pull --to DIR` writes them)".into(),
        ));
    }
    let marker = dir.join("oci-layout");
    let marker_bytes = std::fs::read(&marker).map_err(|source| Error::Io {
        path: marker.clone(),
        source,
    })?;
    let mut index_bytes = serde_json::to_vec(&Index {
        manifests: kept,
        ..index
    })
    .expect("an index serialises");
    index_bytes.push(b'\n');
    let mut files = vec![
        ArchiveFile {
            name: "oci-layout".into(),
            content: ArchiveContent::Bytes(marker_bytes),
        },
        ArchiveFile {
            name: "index.json".into(),
            content: ArchiveContent::Bytes(index_bytes),
        },
    ];
    for (digest, size) in blobs {
        let hex = digest.trim_start_matches("sha256:");
        files.push(ArchiveFile {
            name: format!("blobs/sha256/{hex}"),
            content: ArchiveContent::File {
                path: layout.blob_path(&digest),
                size,
                digest: Some(digest),
            },
        });
    }
    let bytes = files.iter().map(ArchiveFile::size).sum();
    Ok(ImageLayout {
        dir: dir.to_path_buf(),
        images,
        charts,
        files,
        bytes,
    })
}

/// Collects the blobs `d` reaches (itself first); `true` when it is a Helm chart.
fn walk(
    layout: &Layout,
    name: &str,
    d: &Descriptor,
    reached: &mut Vec<(String, u64)>,
    depth: u32,
) -> Result<bool, Error> {
    let dir = layout.dir();
    if depth > 2 {
        return Err(bad(dir, format!("{name}: indexes nested too deep")));
    }
    let present = |digest: &str, size: u64, what: &str| -> Result<(), Error> {
        match std::fs::metadata(layout.blob_path(digest)) {
            Ok(m) if m.len() == size => Ok(()),
            Ok(m) => Err(bad(
                dir,
                format!(
                    "image {name}: {what} blob {digest} holds {} bytes, not {size}: pull the image again",
                    m.len()
                ),
            )),
            Err(_) => Err(bad(
                dir,
                format!("image {name}: {what} blob {digest} is missing: pull the image again"),
            )),
        }
    };
    present(&d.digest, d.size, "manifest")?;
    let bytes = layout.read_verified(&d.digest, name)?;
    let (parsed, media_type) = Parsed::parse(&bytes, Some(&d.media_type)).map_err(|problem| {
        bad(
            dir,
            format!("image {name}: manifest {}: {problem}", d.digest),
        )
    })?;
    reached.push((d.digest.clone(), d.size));
    if oci::is_index(&media_type) {
        for child in &parsed.manifests {
            // An index pulled for one platform keeps only that platform's manifest.
            if std::fs::metadata(layout.blob_path(&child.digest)).is_err() {
                continue;
            }
            walk(layout, name, child, reached, depth + 1)?;
        }
        return Ok(false);
    }
    if parsed
        .config
        .as_ref()
        .is_some_and(|c| c.media_type == oci::HELM_CONFIG)
    {
        return Ok(true);
    }
    for b in parsed.blobs() {
        present(&b.digest, b.size, "")?;
        reached.push((b.digest.clone(), b.size));
    }
    Ok(false)
}

/// The images of `needed` (the inventory) that run in the kind node's containerd and that
/// `images` (a layout's names) lacks. The kind node image is not among them: Docker runs it.
/// An image matches by registry, repository and tag, or by digest when it has no tag.
pub fn missing_images(images: &[String], needed: &[InventoryImage]) -> Vec<String> {
    let have: Vec<Reference> = images
        .iter()
        .filter_map(|n| Reference::parse(n).ok())
        .collect();
    let mut missing = Vec::new();
    for image in needed {
        if image.sources.iter().all(|s| s == NODE_SOURCE) {
            continue;
        }
        let Ok(want) = Reference::parse(&image.reference) else {
            missing.push(image.reference.clone());
            continue;
        };
        let found = have.iter().any(|h| {
            h.registry == want.registry
                && h.repository == want.repository
                && ((want.tag.is_some() && h.tag == want.tag)
                    || (image.digest.is_some() && h.digest == image.digest))
        });
        if !found {
            missing.push(image.reference.clone());
        }
    }
    missing
}

/// The `images` check of the preflight, with `--images DIR` only: the layout is usable and
/// holds every image the kind node runs (the inventory of `capi-manage images list <cluster>`,
/// without the node image; teardown's without the cluster's own folder, which it does not
/// apply).
pub(super) async fn images_check(o: &Options, operation: Operation) -> Option<Check> {
    let dir = o.images.clone()?;
    let root = o.root.clone();
    let cluster = (operation == Operation::Bootstrap).then(|| o.cluster.clone());
    let check = tokio::task::spawn_blocking(move || {
        let pull = |images: &str| {
            format!(
                "on a connected host, `capi-manage images pull --to {}{images}`, then bring the folder here",
                dir.display()
            )
        };
        let layout = match read_layout(&dir) {
            Ok(l) => l,
            Err(e) => return Check::problem(ID, chain(&e), pull("")),
        };
        let inventory = match crate::images::inventory(&root, cluster.as_deref()) {
            Ok(i) => i,
            Err(e) => {
                return Check::problem(
                    ID,
                    format!("cannot list the images the bootstrap runs: {}", chain(&e)),
                    "fix what is named (`capi-manage images list` shows the inventory)",
                );
            }
        };
        let missing = missing_images(&layout.images, &inventory.images);
        if missing.is_empty() {
            Check::ok(
                ID,
                format!(
                    "{} holds every image the kind node runs ({} images, {} bytes): loaded into it before the first component",
                    dir.display(),
                    layout.images.len(),
                    layout.bytes
                ),
            )
        } else {
            Check::problem(
                ID,
                format!(
                    "{} lacks {} of the images the kind node runs: {}",
                    dir.display(),
                    missing.len(),
                    missing.join(", ")
                ),
                pull(&format!(" {}", missing.join(" "))),
            )
        }
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    Some(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(reference: &str, digest: Option<&str>, source: &str) -> InventoryImage {
        InventoryImage {
            reference: reference.into(),
            digest: digest.map(str::to_string),
            sources: vec![source.into()],
        }
    }

    #[test]
    fn missing_images_skip_the_node_image_and_match_tags_or_digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        let have = vec![
            "docker.io/library/busybox:1.36".to_string(),
            format!("ghcr.io/x/y@{d}"),
        ];
        let needed = vec![
            inv("docker.io/kindest/node:v1.35.0", Some(&d), NODE_SOURCE),
            inv("docker.io/library/busybox:1.36", None, "flux"),
            inv("ghcr.io/x/y", Some(&d), "capi"),
            inv("registry.k8s.io/pause:3.10", None, "capi"),
            inv("docker.io/library/busybox:1.37", None, "flux"),
        ];
        assert_eq!(
            missing_images(&have, &needed),
            [
                "registry.k8s.io/pause:3.10",
                "docker.io/library/busybox:1.37"
            ]
        );
    }
}
