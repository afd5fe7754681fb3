//! Helm charts as OCI artifacts, the way `helm push` stores them.

use std::io::Read as _;
use std::path::Path;

use super::layout::Layout;
use super::oci::{self, Descriptor};
use super::{Error, Reference};

/// Adds the chart archive `tgz` to the layout as an OCI artifact named
/// `<repository>/<chart name>:<chart version>` (Helm's config and chart-content media types;
/// the config is the chart's `Chart.yaml` as JSON). `repository` is a registry host and path,
/// e.g. `azimuth-cloud.github.io/capi-helm-charts`. Returns the name it is recorded under.
pub fn add_chart(layout: &Layout, tgz: &Path, repository: &str) -> Result<Reference, Error> {
    let bad = |problem: String| Error::Chart {
        file: tgz.to_path_buf(),
        problem,
    };
    let archive = std::fs::read(tgz).map_err(Error::io(tgz))?;
    let chart = chart_yaml(&archive).map_err(bad)?;
    let name = chart["name"]
        .as_str()
        .ok_or_else(|| bad("Chart.yaml has no name".into()))?;
    let version = chart["version"]
        .as_str()
        .ok_or_else(|| bad("Chart.yaml has no version".into()))?;
    // Helm writes `+` (not allowed in a tag) as `_`.
    let text = format!(
        "{}/{name}:{}",
        repository.trim_end_matches('/'),
        version.replace('+', "_")
    );
    let reference = Reference::parse(&text).map_err(|source| Error::Reference {
        from: tgz.display().to_string(),
        source,
    })?;
    let config = serde_json::to_vec(&chart).expect("JSON serialises");
    let config_digest = oci::digest_of(&config);
    let layer_digest = oci::digest_of(&archive);
    layout.put(&config_digest, &config)?;
    layout.put(&layer_digest, &archive)?;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": oci::OCI_MANIFEST,
        "config": {"mediaType": oci::HELM_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": oci::HELM_CHART_LAYER, "digest": layer_digest, "size": archive.len()}],
    }))
    .expect("JSON serialises");
    let digest = oci::digest_of(&manifest);
    layout.put(&digest, &manifest)?;
    layout.tag(
        &reference.to_string(),
        &Descriptor {
            media_type: oci::OCI_MANIFEST.into(),
            digest,
            size: manifest.len() as u64,
            platform: None,
            annotations: Default::default(),
        },
    )?;
    Ok(reference)
}

/// `Chart.yaml` of the chart at the archive's top, as JSON.
fn chart_yaml(archive: &[u8]) -> Result<serde_json::Value, String> {
    let gz = flate2::read::GzDecoder::new(archive);
    let mut tar = tar::Archive::new(gz);
    for entry in tar
        .entries()
        .map_err(|e| format!("not a gzipped tar ({e})"))?
    {
        let mut entry = entry.map_err(|e| format!("not a gzipped tar ({e})"))?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        let parts: Vec<_> = path.components().collect();
        if parts.len() == 2 && parts[1].as_os_str() == "Chart.yaml" {
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .map_err(|e| format!("Chart.yaml is not UTF-8 text ({e})"))?;
            return serde_yaml_ng::from_str(&text)
                .map_err(|e| format!("Chart.yaml does not parse ({e})"));
        }
    }
    Err("no <chart>/Chart.yaml in the archive".into())
}
