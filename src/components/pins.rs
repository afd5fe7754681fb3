//! `vendor-manifests/vendor.toml`: the pinned components, in install order.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Error;

/// Every pinned component, in install order, as read from `vendor.toml` and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Pins {
    /// The components, in the order they are installed.
    pub components: Vec<Pin>,
}

/// One pinned component: a version and the release assets that make it up.
#[derive(Debug, Clone, PartialEq)]
pub struct Pin {
    /// The component's name, also the folder its rendered files go to (`[a-z0-9-]+`).
    pub name: String,
    /// The upstream version, e.g. `v1.14.0`.
    pub version: String,
    /// The release assets, in the order they are applied.
    pub assets: Vec<Asset>,
    /// How `clusterctl init` would treat the component.
    pub role: Role,
}

/// One upstream release file.
#[derive(Debug, Clone, PartialEq)]
pub struct Asset {
    /// Where upstream publishes it (http or https).
    pub url: String,
    /// The expected sha256 (lowercase hex), when written into `vendor.toml`; otherwise the one
    /// recorded in `vendor.lock` on first download is expected.
    pub sha256: Option<String>,
}

impl Asset {
    /// The file name: the URL's last path segment.
    pub fn file_name(&self) -> &str {
        file_name(&self.url)
    }
}

fn file_name(url: &str) -> &str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or(path)
}

/// What `clusterctl init` does to a component's objects, which `vendor` reproduces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Nothing: the files are applied as published (Flux, sealed-secrets).
    Plain,
    /// cert-manager as clusterctl installs it: labels `clusterctl.cluster.x-k8s.io` and
    /// `clusterctl.cluster.x-k8s.io/core: cert-manager`, the version annotation.
    CertManager,
    /// A Cluster API provider: variable substitution, one target namespace, provider labels.
    Provider(Provider),
}

/// A clusterctl provider's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// The provider's name as clusterctl knows it, e.g. `kubeadm` or `openstack`.
    pub name: String,
    /// Its type.
    pub provider_type: ProviderType,
}

impl Provider {
    /// The value of the `cluster.x-k8s.io/provider` label, as clusterctl's `ManifestLabel`:
    /// the type's prefix and the name, e.g. `bootstrap-kubeadm`, `infrastructure-openstack`.
    pub fn manifest_label(&self) -> String {
        format!("{}{}", self.provider_type.label_prefix(), self.name)
    }
}

/// clusterctl's provider types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderType {
    /// `CoreProvider` (cluster-api itself).
    Core,
    /// `BootstrapProvider`.
    Bootstrap,
    /// `ControlPlaneProvider`.
    ControlPlane,
    /// `InfrastructureProvider`.
    Infrastructure,
    /// `IPAMProvider`.
    Ipam,
    /// `RuntimeExtensionProvider`.
    RuntimeExtension,
    /// `AddonProvider`.
    Addon,
}

const PROVIDER_TYPES: [(&str, ProviderType, &str); 7] = [
    ("CoreProvider", ProviderType::Core, ""),
    ("BootstrapProvider", ProviderType::Bootstrap, "bootstrap-"),
    (
        "ControlPlaneProvider",
        ProviderType::ControlPlane,
        "control-plane-",
    ),
    (
        "InfrastructureProvider",
        ProviderType::Infrastructure,
        "infrastructure-",
    ),
    ("IPAMProvider", ProviderType::Ipam, "ipam-"),
    (
        "RuntimeExtensionProvider",
        ProviderType::RuntimeExtension,
        "runtime-extension-",
    ),
    ("AddonProvider", ProviderType::Addon, "addon-"),
];

impl ProviderType {
    /// The name clusterctl uses, e.g. `BootstrapProvider`.
    pub fn as_str(self) -> &'static str {
        PROVIDER_TYPES
            .iter()
            .find(|(_, t, _)| *t == self)
            .map(|(s, _, _)| *s)
            .expect("every type is listed")
    }

    fn label_prefix(self) -> &'static str {
        PROVIDER_TYPES
            .iter()
            .find(|(_, t, _)| *t == self)
            .map(|(_, _, p)| *p)
            .expect("every type is listed")
    }

    fn parse(s: &str) -> Option<Self> {
        PROVIDER_TYPES
            .iter()
            .find(|(n, _, _)| *n == s)
            .map(|(_, t, _)| *t)
    }
}

// The file's shape; validated into `Pins`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPins {
    #[serde(default)]
    component: Vec<RawPin>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPin {
    name: String,
    version: String,
    #[serde(default)]
    assets: Vec<RawAsset>,
    provider: Option<RawProvider>,
    clusterctl: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawAsset {
    Url(String),
    Table { url: String, sha256: Option<String> },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    name: String,
    #[serde(rename = "type")]
    provider_type: String,
}

/// Whether `s` is a lowercase hex sha256.
pub(crate) fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Pins {
    /// Reads and validates `file`.
    pub fn read(file: &Path) -> Result<Pins, Error> {
        let text = std::fs::read_to_string(file).map_err(|source| Error::Read {
            path: file.to_path_buf(),
            source,
        })?;
        Pins::parse(&text, file)
    }

    /// Parses and validates the text of a `vendor.toml`; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<Pins, Error> {
        let raw: RawPins = toml::from_str(text).map_err(|source| Error::PinsToml {
            file: file.to_path_buf(),
            source: Box::new(source),
        })?;
        let bad = |field: String, problem: String| Error::Pin {
            file: file.to_path_buf(),
            field,
            problem,
        };
        if raw.component.is_empty() {
            return Err(bad(
                "component".into(),
                "no components: add [[component]] tables with name, version and assets".into(),
            ));
        }
        let mut names = BTreeSet::new();
        let mut components = Vec::new();
        for (i, c) in raw.component.into_iter().enumerate() {
            let at = |f: &str| format!("component[{i}].{f}");
            if c.name.is_empty()
                || !c
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(bad(
                    at("name"),
                    format!(
                        "`{}` is not a valid name: use lowercase letters, digits and `-` (it names the folder of its files)",
                        c.name
                    ),
                ));
            }
            if !names.insert(c.name.clone()) {
                return Err(bad(
                    at("name"),
                    format!("`{}` is pinned twice: keep one entry", c.name),
                ));
            }
            if c.version.trim().is_empty() {
                return Err(bad(
                    at("version"),
                    "is empty: write the upstream version, e.g. \"v1.14.0\"".into(),
                ));
            }
            if c.assets.is_empty() {
                return Err(bad(
                    at("assets"),
                    "no assets: list the release URLs of the component's manifests".into(),
                ));
            }
            let mut files = BTreeSet::new();
            let mut assets = Vec::new();
            for (j, a) in c.assets.into_iter().enumerate() {
                let field = format!("component[{i}].assets[{j}]");
                let (url, sha256) = match a {
                    RawAsset::Url(u) => (u, None),
                    RawAsset::Table { url, sha256 } => (url, sha256),
                };
                let parsed = reqwest::Url::parse(&url)
                    .map_err(|e| bad(field.clone(), format!("`{url}` is not a URL ({e})")))?;
                if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                    return Err(bad(
                        field,
                        format!("`{url}`: only http and https URLs with a host can be vendored"),
                    ));
                }
                let name = file_name(&url);
                if !(name.ends_with(".yaml") || name.ends_with(".yml")) {
                    return Err(bad(
                        field,
                        format!("`{url}` does not name a .yaml or .yml file"),
                    ));
                }
                if !files.insert(name.to_string()) {
                    return Err(bad(
                        field,
                        format!(
                            "two assets are named `{name}`: their rendered files would collide"
                        ),
                    ));
                }
                if let Some(s) = &sha256
                    && !is_sha256(s)
                {
                    return Err(bad(
                        format!("{field}.sha256"),
                        format!("`{s}` is not a sha256: 64 lowercase hex digits"),
                    ));
                }
                assets.push(Asset { url, sha256 });
            }
            let role = match (c.provider, c.clusterctl.as_deref()) {
                (Some(_), Some(_)) => {
                    return Err(bad(
                        at("clusterctl"),
                        "set either `provider` or `clusterctl`, not both".into(),
                    ));
                }
                (None, Some("cert-manager")) => Role::CertManager,
                (None, Some(other)) => {
                    return Err(bad(
                        at("clusterctl"),
                        format!("`{other}` is unknown: the only value is \"cert-manager\""),
                    ));
                }
                (None, None) => Role::Plain,
                (Some(p), None) => {
                    let Some(provider_type) = ProviderType::parse(&p.provider_type) else {
                        let known: Vec<&str> = PROVIDER_TYPES.iter().map(|t| t.0).collect();
                        return Err(bad(
                            at("provider.type"),
                            format!(
                                "`{}` is not a clusterctl provider type: use one of {}",
                                p.provider_type,
                                known.join(", ")
                            ),
                        ));
                    };
                    if p.name.is_empty() {
                        return Err(bad(at("provider.name"), "is empty".into()));
                    }
                    Role::Provider(Provider {
                        name: p.name,
                        provider_type,
                    })
                }
            };
            components.push(Pin {
                name: c.name,
                version: c.version,
                assets,
                role,
            });
        }
        Ok(Pins { components })
    }
}

impl Pins {
    /// Each component's name and version, in install order: what bootstrap installs on both
    /// clusters (e.g. `("cluster-api", "v1.13.3")`).
    pub fn versions(&self) -> Vec<(&str, &str)> {
        self.components
            .iter()
            .map(|c| (c.name.as_str(), c.version.as_str()))
            .collect()
    }

    /// The version pinned for the component `name`, if it is pinned.
    pub fn version_of(&self, name: &str) -> Option<&str> {
        self.components
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.version.as_str())
    }
}

/// A Helm chart that a cluster's folder pins: its Flux HelmRelease and the chart's version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartPin {
    /// `namespace/name` of the HelmRelease.
    pub release: String,
    /// The chart's name.
    pub chart: String,
    /// The pinned version (`spec.chart.spec.version`), or `*` when none is set.
    pub version: String,
    /// Where the chart comes from: the `spec.url` of the HelmRepository among the objects that
    /// the release's `sourceRef` names (an `https://`, `http://` or `oci://` URL, no trailing
    /// `/`); `None` for another kind of source or a repository not among the objects.
    pub repository: Option<String>,
}

/// Flux's HelmReleases among `objects`.
fn helm_releases(
    objects: &[crate::manifest::Object],
) -> impl Iterator<Item = &crate::manifest::Object> {
    objects.iter().filter(|o| {
        o.kind() == "HelmRelease"
            && o.value["apiVersion"]
                .as_str()
                .is_some_and(|a| a.starts_with("helm.toolkit.fluxcd.io/"))
    })
}

/// The charts pinned by the HelmReleases among `objects` (a cluster's rendered folder), in
/// order: the other half of what a bootstrap installs, through Flux.
pub fn chart_pins(objects: &[crate::manifest::Object]) -> Vec<ChartPin> {
    helm_releases(objects)
        .map(|o| {
            let spec = &o.value["spec"]["chart"]["spec"];
            ChartPin {
                release: format!("{}/{}", o.namespace().unwrap_or_default(), o.name()),
                chart: spec["chart"].as_str().unwrap_or_default().to_string(),
                version: spec["version"].as_str().unwrap_or("*").to_string(),
                repository: repository_of(objects, o).map(str::to_string),
            }
        })
        .collect()
}

/// The URL (without a trailing `/`) of the HelmRepository among `objects` that `release`'s
/// `spec.chart.spec.sourceRef` names (its namespace defaulting to the release's).
fn repository_of<'a>(
    objects: &'a [crate::manifest::Object],
    release: &crate::manifest::Object,
) -> Option<&'a str> {
    repository_object(objects, release)?.value["spec"]["url"]
        .as_str()
        .map(|u| u.trim_end_matches('/'))
}

/// The HelmRepository among `objects` that `release`'s `sourceRef` names.
fn repository_object<'a>(
    objects: &'a [crate::manifest::Object],
    release: &crate::manifest::Object,
) -> Option<&'a crate::manifest::Object> {
    let source = &release.value["spec"]["chart"]["spec"]["sourceRef"];
    if source["kind"].as_str() != Some("HelmRepository") {
        return None;
    }
    let name = source["name"].as_str()?;
    let namespace = source["namespace"]
        .as_str()
        .or(release.namespace())
        .unwrap_or_default();
    objects.iter().find(|o| {
        o.kind() == "HelmRepository"
            && o.value["apiVersion"]
                .as_str()
                .is_some_and(|a| a.starts_with("source.toolkit.fluxcd.io/"))
            && o.name() == name
            && o.namespace().unwrap_or_default() == namespace
    })
}

/// A pinned chart with the Helm repository its HelmRelease takes it from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChartSource {
    /// The chart's name.
    pub name: String,
    /// The pinned version.
    pub version: String,
    /// The HelmRepository's `spec.url` (no trailing `/`).
    pub repository: String,
    /// An OCI repository reached over plain HTTP (`spec.insecure: true` with `type: oci`).
    pub plain_http: bool,
}

/// The charts of the HelmReleases among `objects` whose source is a HelmRepository among
/// `objects` as well, each with that repository's URL, sorted and without duplicates. Releases
/// without a pinned version, or with another kind of source, are left out.
pub fn chart_sources(objects: &[crate::manifest::Object]) -> Vec<ChartSource> {
    let mut out: Vec<ChartSource> = helm_releases(objects)
        .filter_map(|o| {
            let spec = &o.value["spec"]["chart"]["spec"];
            let repo = &repository_object(objects, o)?.value["spec"];
            Some(ChartSource {
                name: spec["chart"].as_str()?.to_string(),
                version: spec["version"].as_str()?.to_string(),
                repository: repo["url"].as_str()?.trim_end_matches('/').to_string(),
                plain_http: repo["type"] == "oci" && repo["insecure"] == true,
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Where a component's rendered asset goes, relative to `vendor-manifests/`.
pub(crate) fn rendered_path(pin: &Pin, asset: &Asset) -> PathBuf {
    PathBuf::from(&pin.name).join(asset.file_name())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Pins, Error> {
        Pins::parse(text, Path::new("vendor-manifests/vendor.toml"))
    }

    #[test]
    fn reads_roles_assets_and_labels() {
        let pins = parse(
            r#"
[[component]]
name = "flux"
version = "v2.9.4"
assets = ["https://github.com/fluxcd/flux2/releases/download/v2.9.4/install.yaml"]

[[component]]
name = "bootstrap-kubeadm"
version = "v1.14.0"
provider = { name = "kubeadm", type = "BootstrapProvider" }
assets = [{ url = "https://example.com/bootstrap-components.yaml", sha256 = "0000000000000000000000000000000000000000000000000000000000000000" }]
"#,
        )
        .unwrap();
        assert_eq!(pins.components.len(), 2);
        assert_eq!(pins.components[0].role, Role::Plain);
        assert_eq!(pins.components[0].assets[0].file_name(), "install.yaml");
        let Role::Provider(p) = &pins.components[1].role else {
            panic!("a provider")
        };
        assert_eq!(p.manifest_label(), "bootstrap-kubeadm");
        assert!(pins.components[1].assets[0].sha256.is_some());
        assert_eq!(
            pins.versions(),
            [("flux", "v2.9.4"), ("bootstrap-kubeadm", "v1.14.0")]
        );
        assert_eq!(pins.version_of("bootstrap-kubeadm"), Some("v1.14.0"));
        assert_eq!(pins.version_of("cluster-api"), None);
    }

    #[test]
    fn charts_of_the_flux_helm_releases() {
        let objects = crate::manifest::parse_str(
            "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: c, namespace: ns}\nspec: {chart: {spec: {chart: openstack-cluster, version: 0.27.0}}}\n---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: d, namespace: ns}\nspec: {chart: {spec: {chart: floating}}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: HelmRelease}\n",
            None,
        )
        .unwrap();
        let pins = chart_pins(&objects);
        assert_eq!(pins.len(), 2);
        assert_eq!(
            (
                pins[0].release.as_str(),
                pins[0].chart.as_str(),
                pins[0].version.as_str()
            ),
            ("ns/c", "openstack-cluster", "0.27.0")
        );
        assert_eq!(pins[1].version, "*");
    }

    #[test]
    fn chart_sources_resolve_the_helm_repository() {
        let objects = crate::manifest::parse_str(
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {name: r, namespace: ns}\nspec: {url: 'http://127.0.0.1:1/charts/'}\n---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: c, namespace: ns}\nspec: {chart: {spec: {chart: a, version: 1.0.0, sourceRef: {kind: HelmRepository, name: r}}}}\n---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: d, namespace: other}\nspec: {chart: {spec: {chart: b, version: 2.0.0, sourceRef: {kind: HelmRepository, name: r, namespace: ns}}}}\n---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: e, namespace: other}\nspec: {chart: {spec: {chart: c, version: 2.0.0, sourceRef: {kind: HelmRepository, name: r}}}}\n",
            None,
        )
        .unwrap();
        let sources = chart_sources(&objects);
        let names: Vec<_> = sources
            .iter()
            .map(|c| (c.name.as_str(), c.version.as_str(), c.repository.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("a", "1.0.0", "http://127.0.0.1:1/charts"),
                ("b", "2.0.0", "http://127.0.0.1:1/charts")
            ]
        );
    }

    #[test]
    fn charts_from_an_oci_repository_name_it() {
        let objects = crate::manifest::parse_str(
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {name: r, namespace: ns}\nspec: {type: oci, insecure: true, url: 'oci://127.0.0.1:5000/charts'}\n---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: c, namespace: ns}\nspec: {chart: {spec: {chart: a, version: 1.0.0, sourceRef: {kind: HelmRepository, name: r}}}}\n---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: g, namespace: ns}\nspec: {chart: {spec: {chart: b, version: 1.0.0, sourceRef: {kind: GitRepository, name: r}}}}\n---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: m, namespace: other}\nspec: {chart: {spec: {chart: d, version: 1.0.0, sourceRef: {kind: HelmRepository, name: r}}}}\n",
            None,
        )
        .unwrap();
        let pins = chart_pins(&objects);
        let repos: Vec<_> = pins.iter().map(|p| p.repository.as_deref()).collect();
        // Another source kind, and a repository in another namespace than the release's: none.
        assert_eq!(repos, [Some("oci://127.0.0.1:5000/charts"), None, None]);
        assert_eq!(
            chart_sources(&objects),
            [ChartSource {
                name: "a".into(),
                version: "1.0.0".into(),
                repository: "oci://127.0.0.1:5000/charts".into(),
                plain_http: true,
            }]
        );
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let e = parse(
            r#"
[[component]]
name = "capo"
version = "v0.14.7"
provider = { name = "openstack", type = "InfraProvider" }
assets = ["https://example.com/infrastructure-components.yaml"]
"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("vendor-manifests/vendor.toml")
                && e.contains("component[0].provider.type")
                && e.contains("InfrastructureProvider"),
            "{e}"
        );
        let e =
            parse("[[component]]\nname = \"a\"\nversion = \"1\"\nassets = [\"ftp://x/y.yaml\"]\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("component[0].assets[0]"), "{e}");
        let e = parse("[[component]]\nname = \"a\"\nversion = \"1\"\nasset = []\n").unwrap_err();
        let e = format!("{e}: {}", std::error::Error::source(&e).unwrap());
        assert!(e.contains("vendor.toml") && e.contains("asset"), "{e}");
        let e = parse(
            "[[component]]\nname = \"a\"\nversion = \"1\"\nassets = [{ url = \"https://x/a.yaml\", sha256 = \"ABC\" }]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("assets[0].sha256"), "{e}");
    }

    #[test]
    fn the_committed_pins_are_valid_and_in_install_order() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("vendor-manifests/vendor.toml");
        let pins = Pins::read(&file).unwrap();
        let names: Vec<&str> = pins.components.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "flux",
                "cert-manager",
                "cluster-api",
                "bootstrap-kubeadm",
                "control-plane-kubeadm",
                "openstack-resource-controller",
                "infrastructure-openstack",
                "sealed-secrets"
            ]
        );
        // ORC is applied as published: no clusterctl processing, and nothing to substitute.
        let orc = &pins.components[5];
        assert_eq!(orc.role, Role::Plain);
        assert_eq!(pins.versions()[5].0, "openstack-resource-controller");
        for c in &pins.components {
            if let Role::Provider(p) = &c.role {
                assert_eq!(
                    p.manifest_label(),
                    c.name,
                    "the folder is the provider label"
                );
            }
        }
    }
}
