//! The OCI image and distribution formats: media types, descriptors, manifests, indexes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// An OCI image index (several platforms, or the top of a layout).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker's image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker's manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Helm's chart config (a chart pushed as an OCI artifact).
pub const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
/// Helm's chart archive layer.
pub const HELM_CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// The annotation naming an image in a layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation for the full image name (what `docker save` and `ctr export` write).
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// The media types a manifest request accepts.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Whether `s` is 64 lowercase hex digits.
pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether `digest` is `sha256:<64 lowercase hex>`.
pub fn is_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(is_sha256_hex)
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    format!("sha256:{}", hex(d.as_ref()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a media type is an index (OCI index or Docker manifest list).
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Its media type.
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// The platform, in an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub annotations: serde_json::Map<String, Value>,
}

/// A platform of an index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// e.g. `amd64`.
    pub architecture: String,
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// `linux/amd64`, the platform pulled unless all are asked for.
    pub fn linux_amd64() -> Platform {
        Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            variant: None,
        }
    }
}

/// The parts of a manifest or index that the copy needs; anything else is kept byte for byte
/// in the raw JSON, which is what is stored and pushed.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parsed {
    /// `mediaType`, when the document names it.
    #[serde(default)]
    pub media_type: Option<String>,
    /// An image manifest's config.
    #[serde(default)]
    pub config: Option<Descriptor>,
    /// An image manifest's layers.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// An index's manifests.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

impl Parsed {
    /// Parses a manifest or index, `content_type` being what the registry said it is.
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<(Parsed, String), String> {
        let p: Parsed = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let media_type = p
            .media_type
            .clone()
            .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_string()))
            .unwrap_or_else(|| {
                if p.manifests.is_empty() {
                    OCI_MANIFEST.to_string()
                } else {
                    OCI_INDEX.to_string()
                }
            });
        if is_index(&media_type) {
            if p.config.is_some() {
                return Err(format!("an index ({media_type}) with a config"));
            }
        } else if media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST {
            if p.config.is_none() {
                return Err(format!("a manifest ({media_type}) without a config"));
            }
        } else {
            return Err(format!("unsupported manifest media type `{media_type}`"));
        }
        for d in p.config.iter().chain(&p.layers).chain(&p.manifests) {
            if !is_digest(&d.digest) {
                return Err(format!(
                    "descriptor digest `{}` is not sha256:<hex>",
                    d.digest
                ));
            }
        }
        Ok((p, media_type))
    }

    /// Config and layers: the blobs an image manifest needs.
    pub fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.config.iter().chain(&self.layers)
    }
}

/// A layout's `index.json` (an OCI index).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// [`OCI_INDEX`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The images.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_manifests_and_indexes() {
        let d = format!("sha256:{}", "b".repeat(64));
        let m = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"{d}","size":1}},"layers":[]}}"#
        );
        let (p, t) = Parsed::parse(m.as_bytes(), Some(DOCKER_MANIFEST)).unwrap();
        assert_eq!(t, DOCKER_MANIFEST);
        assert_eq!(p.blobs().count(), 1);
        let i = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":1,"platform":{{"architecture":"arm64","os":"linux"}}}}]}}"#
        );
        let (p, t) = Parsed::parse(i.as_bytes(), None).unwrap();
        assert!(is_index(&t));
        assert_eq!(
            p.manifests[0].platform.as_ref().unwrap().architecture,
            "arm64"
        );
        assert!(Parsed::parse(br#"{"mediaType":"text/plain"}"#, None).is_err());
        let bad = m.replace(&d, "sha256:zz");
        assert!(Parsed::parse(bad.as_bytes(), None).is_err());
        assert_eq!(
            digest_of(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
