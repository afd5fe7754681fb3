//! The images a bootstrap runs, and `vendor-manifests/images.lock`, their recorded digests.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Error, Reference};
use crate::components::VENDOR_DIR;
use crate::manifest::Object;

/// The lock file, in `vendor-manifests/`.
pub const IMAGES_LOCK: &str = "images.lock";
const FORMAT: u32 = 1;
const HEADER: &str = "# Written by `capi-manage images list --resolve`: the digest of every image a bootstrap\n# runs. `capi-manage images pull` refuses an image whose registry serves another digest.\n# Do not edit.\n\n";

/// One image of the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryImage {
    /// The reference, normalised (`docker.io/library/x:tag`).
    pub reference: String,
    /// The digest recorded in `images.lock` (or written in the reference), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// What runs it: `kind node`, a vendored component's name, `cluster <name>`.
    pub sources: Vec<String>,
}

/// The images of a bootstrap.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inventory {
    /// Every image, sorted by reference.
    pub images: Vec<InventoryImage>,
    /// What could not be looked at (e.g. `vendor-manifests` not vendored yet).
    pub notes: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockFile {
    format: u32,
    #[serde(default)]
    image: Vec<InventoryImage>,
}

/// The container images of the pod templates among `objects`.
pub fn object_images(objects: &[Object]) -> Vec<String> {
    let mut out = Vec::new();
    for o in objects {
        let spec = match o.kind() {
            "Deployment" | "DaemonSet" | "StatefulSet" | "ReplicaSet" | "Job" => {
                o.value.pointer("/spec/template/spec")
            }
            "CronJob" => o.value.pointer("/spec/jobTemplate/spec/template/spec"),
            "Pod" => o.value.get("spec"),
            _ => None,
        };
        let Some(spec) = spec else { continue };
        for list in ["initContainers", "containers"] {
            if let Some(Value::Array(cs)) = spec.get(list) {
                out.extend(
                    cs.iter()
                        .filter_map(|c| c["image"].as_str().map(str::to_string)),
                );
            }
        }
    }
    out
}

/// Reads `vendor-manifests/images.lock` of the repository at `root` (empty when absent).
pub fn read_lock(root: &Path) -> Result<Vec<InventoryImage>, Error> {
    let file = root.join(VENDOR_DIR).join(IMAGES_LOCK);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&file)(e)),
    };
    let bad = |problem: String| Error::Lock {
        file: file.clone(),
        problem,
    };
    let lock: LockFile = toml::from_str(&text).map_err(|e| bad(format!("does not parse ({e})")))?;
    if lock.format != FORMAT {
        return Err(bad(format!(
            "format {} is not the supported {FORMAT}",
            lock.format
        )));
    }
    for i in &lock.image {
        Reference::parse(&i.reference).map_err(|e| bad(e.to_string()))?;
        if let Some(d) = &i.digest
            && !super::oci::is_digest(d)
        {
            return Err(bad(format!("{}: `{d}` is not sha256:<hex>", i.reference)));
        }
    }
    Ok(lock.image)
}

/// Writes `images` as `vendor-manifests/images.lock`.
pub fn write_lock(root: &Path, images: &[InventoryImage]) -> Result<(), Error> {
    let file = root.join(VENDOR_DIR).join(IMAGES_LOCK);
    let text = format!(
        "{HEADER}{}",
        toml::to_string(&LockFile {
            format: FORMAT,
            image: images.to_vec(),
        })
        .expect("the lock serialises")
    );
    crate::fs::write_atomic(&file, text.as_bytes(), crate::fs::Access::Keep)
        .map_err(Error::io(&file))
}

/// The images a bootstrap of the repository at `root` runs: the kind node image, every image
/// of the vendored components, the images of cluster `cluster`'s rendered folder when given,
/// and whatever `images.lock` records; with the digests the lock records. Offline.
pub fn inventory(root: &Path, cluster: Option<&str>) -> Result<Inventory, Error> {
    let mut found: BTreeMap<String, InventoryImage> = BTreeMap::new();
    let mut notes = Vec::new();
    let mut add = |image: &str, source: &str, from: &str| -> Result<(), Error> {
        let r = Reference::parse(image).map_err(|e| Error::Reference {
            from: from.to_string(),
            source: e,
        })?;
        let entry = found
            .entry(
                Reference {
                    digest: None,
                    ..r.clone()
                }
                .to_string(),
            )
            .or_insert_with(|| InventoryImage {
                reference: Reference {
                    digest: None,
                    ..r.clone()
                }
                .to_string(),
                digest: None,
                sources: Vec::new(),
            });
        if r.digest.is_some() {
            entry.digest = r.digest.clone();
        }
        if !entry.sources.iter().any(|s| s == source) {
            entry.sources.push(source.to_string());
        }
        Ok(())
    };
    let node = crate::kind::resolve_node_image(None, None).expect("the default is pinned");
    add(&node, "kind node", "the pinned kind node image")?;
    match crate::components::load(root) {
        Ok(vendored) => {
            for c in &vendored.components {
                for image in object_images(&c.objects) {
                    add(&image, &c.name, &format!("{VENDOR_DIR}/{}", c.name))?;
                }
            }
        }
        Err(crate::components::Error::NotVendored { .. }) => notes.push(format!(
            "{VENDOR_DIR} is not vendored yet: run `capi-manage vendor` to list the components' images"
        )),
        Err(source) => {
            return Err(Error::Components {
                source: Box::new(source),
            });
        }
    }
    if let Some(name) = cluster {
        let dir = root.join("clusters").join(name);
        let objects = crate::render::render(&dir).map_err(|source| Error::Render {
            dir: dir.clone(),
            source: Box::new(source),
        })?;
        for image in object_images(&objects) {
            add(
                &image,
                &format!("cluster {name}"),
                &dir.display().to_string(),
            )?;
        }
    }
    for locked in read_lock(root)? {
        let entry = found
            .entry(locked.reference.clone())
            .or_insert_with(|| InventoryImage {
                reference: locked.reference.clone(),
                digest: None,
                sources: locked.sources.clone(),
            });
        if entry.digest.is_none() {
            entry.digest = locked.digest.clone();
        }
    }
    Ok(Inventory {
        images: found.into_values().collect(),
        notes,
    })
}
