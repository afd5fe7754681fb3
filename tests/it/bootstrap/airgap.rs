//! The air-gapped side of the end-to-end bootstrap: the loopback registry (the CNCF
//! distribution registry) holding the charts as OCI artifacts, pushed by capi-manage's own code;
//! the values and patches that point the charts' images and chart repositories at it; and the
//! checks that nothing applied anywhere names another host.

use std::collections::{BTreeMap, BTreeSet};

use std::path::Path;

use capi_manage::components::mirror_image;
use capi_manage::images::{Layout, Reference, add_chart};
use capi_manage::kube::Discovery;
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::verbs;
use serde_json::{Value, json};

use super::{AIR_GAPPED, CLUSTER};
use crate::support::helm_repo::{fixture_charts, package, sha256_hex};
use crate::support::registry::Registry;
use crate::support::{capi_manage, fixtures};

/// The path of the charts in the registry: `<registry>/charts/<chart>:<version>`.
const CHART_PATH: &str = "charts";

/// The names of the registry's content.
pub struct Names {
    /// `127.0.0.1:<port>`.
    pub host: String,
    /// `oci://127.0.0.1:<port>/charts`: where every HelmRepository points.
    pub charts_url: String,
    /// `http://127.0.0.1:<port>`: the mirror of every registry for the kind node.
    pub mirror_url: String,
}

/// The registry with the fixture charts pushed into it.
pub struct AirGap {
    _registry: Registry,
    /// What is where in it.
    pub names: Names,
    /// The chart name -> the digest (`sha256:<hex>`) of the archive pushed.
    pub chart_digests: BTreeMap<String, String>,
}

impl AirGap {
    /// Starts the registry and pushes the three fixture charts with `capi-manage images push`,
    /// its environment as the bootstrap's (`env`: the dead proxies).
    pub async fn start(env: &[(&str, &str)]) -> AirGap {
        let registry = Registry::start(false).await;
        let host = registry.host.clone();
        let dir = tempfile::tempdir().unwrap();
        let layout_dir = dir.path().join("layout");
        let layout = Layout::create(&layout_dir).unwrap();
        let mut chart_digests = BTreeMap::new();
        for chart in fixture_charts() {
            let tgz = package(&chart);
            let file = dir
                .path()
                .join(format!("{}-{}.tgz", chart.name, chart.version));
            std::fs::write(&file, &tgz).unwrap();
            let r = add_chart(&layout, &file, &format!("{host}/{CHART_PATH}")).unwrap();
            assert_eq!(
                r.to_string(),
                format!("{host}/{CHART_PATH}/{}:{}", chart.name, chart.version)
            );
            chart_digests.insert(
                chart.name.to_string(),
                format!("sha256:{}", sha256_hex(&tgz)),
            );
        }
        let out = capi_manage()
            .args(["images", "push", "--from"])
            .arg(&layout_dir)
            .args(["--registry", &host])
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "images push: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout.lines().count(), 3, "three charts pushed: {stdout}");
        AirGap {
            _registry: registry,
            names: Names::new(&host),
            chart_digests,
        }
    }
}

impl Names {
    /// The names in the registry at `host`.
    pub fn new(host: &str) -> Names {
        Names {
            host: host.to_string(),
            charts_url: format!("oci://{host}/{CHART_PATH}"),
            mirror_url: format!("http://{host}"),
        }
    }

    /// The local-config ConfigMap of clusters/components/chart-repository: the registry over
    /// plain HTTP.
    pub fn chart_repository_config(&self) -> String {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: chart-repository\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\ndata:\n  url: {}\n  type: oci\n  insecure: \"true\"\n",
            self.charts_url
        )
    }

    /// Values that point what a chart's `values` name at the registry: every chart repository
    /// (`repo`, a URL) at the charts, every image (`image`, or `image.repository`) at its
    /// path in the registry (as `images push` puts it), and each of the chart's
    /// `registryMirrors` at the registry (upstream and mirror).
    pub fn values_overrides(&self, values: &Value) -> Value {
        let mut out = json!({});
        self.walk(values, &mut Vec::new(), &mut out);
        if let Some(Value::Object(mirrors)) = values.get("registryMirrors") {
            for registry in mirrors.keys() {
                out["registryMirrors"][registry] =
                    json!({"upstream": self.mirror_url, "mirrors": [self.mirror_url]});
            }
        }
        out
    }

    fn walk(&self, v: &Value, path: &mut Vec<String>, out: &mut Value) {
        let Value::Object(map) = v else { return };
        for (k, child) in map {
            let replaced = match (k.as_str(), child.as_str()) {
                ("repo", Some(url)) if url.contains("://") && !is_loopback(&url_host(url)) => {
                    Some(self.charts_url.clone())
                }
                ("image", Some(image)) if !image.is_empty() => {
                    Some(mirror_image(image, &self.host))
                }
                ("repository", Some(image))
                    if path.last().is_some_and(|p| p == "image") && !image.is_empty() =>
                {
                    Some(mirror_image(image, &self.host))
                }
                _ => None,
            };
            path.push(k.clone());
            match replaced {
                Some(r) => set(out, path, Value::String(r)),
                None => self.walk(child, path, out),
            }
            path.pop();
        }
    }
}

/// Points the cluster folder `cluster_dir` (a copy of clusters/example) at the registry: its
/// charts through clusters/components/chart-repository, the openstack-cluster values' images,
/// chart repositories and registry mirrors, and the add-on provider's and janitor's images.
pub fn configure_cluster(cluster_dir: &Path, air: &Names) {
    std::fs::write(
        cluster_dir.join("chart-repository.yaml"),
        air.chart_repository_config(),
    )
    .unwrap();
    let k = cluster_dir.join("kustomization.yaml");
    let mut text = std::fs::read_to_string(&k).unwrap().replacen(
        "- values.yaml\n",
        "- values.yaml\n- chart-repository.yaml\n",
        1,
    );
    // The add-on provider's and the janitor's images from the registry (their charts' values).
    for (release, chart) in [
        (
            "cluster-api-addon-provider",
            "cluster-api-addon-provider/chart",
        ),
        (
            "cluster-api-janitor-openstack",
            "cluster-api-janitor-openstack/chart",
        ),
    ] {
        let values = air.values_overrides(&chart_values(chart));
        assert!(values["image"]["repository"].is_string(), "{values}");
        text.push_str(&format!(
            "- target:\n    group: helm.toolkit.fluxcd.io\n    kind: HelmRelease\n    name: {release}\n  patch: |-\n    - op: add\n      path: /spec/values\n      value: {values}\n"
        ));
    }
    text.push_str("components:\n- ../components/chart-repository\n");
    std::fs::write(&k, text).unwrap();
    // The cluster's values: the chart's images and chart repositories at the registry.
    let values_file = cluster_dir.join("values.yaml");
    let mut cm: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&values_file).unwrap()).unwrap();
    let mut values: Value =
        serde_yaml_ng::from_str(cm["data"]["values.yaml"].as_str().unwrap()).unwrap();
    merge(
        &mut values,
        &air.values_overrides(&openstack_cluster_values()),
    );
    cm["data"]["values.yaml"] = Value::String(serde_yaml_ng::to_string(&values).unwrap());
    std::fs::write(&values_file, serde_yaml_ng::to_string(&cm).unwrap()).unwrap();
}

/// Air-gapped (must-show 2 and 3): the charts came from the registry on both clusters; every
/// image and chart or source reference of every object in both clusters is on loopback; `plan`
/// says where each chart comes from, and `plan --egress` with the bootstrap's flags lists
/// loopback hosts only.
pub async fn checks(
    air: &AirGap,
    work: &Path,
    plan_args: &[String],
    [kind_d, new_d]: [&Discovery; 2],
    problems: &mut Vec<String>,
) {
    problems.extend(chart_problems(new_d, "new cluster", air, true).await);
    problems.extend(chart_problems(kind_d, "kind cluster", air, false).await);
    for (name, d) in [("kind cluster", kind_d), ("new cluster", new_d)] {
        let (objects, found) = references(d.client()).await;
        let foreign = violations(name, &found);
        eprintln!(
            "{name}: {objects} objects, {} image and chart/source references, {} not on loopback",
            found.len(),
            foreign.len()
        );
        // The components' Deployments at least: the scan saw them.
        if found.len() < 10 {
            problems.push(format!(
                "{name}: only {} references found: {found:?}",
                found.len()
            ));
        }
        problems.extend(foreign);
    }
    // plan reads the repository of its working directory.
    let out = capi_manage()
        .args(["plan", CLUSTER])
        .current_dir(work)
        .envs(AIR_GAPPED)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let from = format!("from {}\n", air.names.charts_url);
    if stdout.matches(&from).count() != 3 {
        problems.push(format!(
            "plan: not every chart {from}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // The bootstrap's own flags (the ones plan takes), with --egress.
    let mut egress = Vec::new();
    let mut it = plan_args.iter();
    while let Some(a) = it.next() {
        if ["plan", CLUSTER].contains(&a.as_str()) {
            egress.push(a.clone());
        } else if [
            "--output",
            "--node-image",
            "--docker-host",
            "--registry-mirror",
        ]
        .contains(&a.as_str())
        {
            egress.push(a.clone());
            egress.push(it.next().unwrap().clone());
        }
    }
    egress.push("--egress".to_string());
    let out = capi_manage()
        .args(&egress)
        .current_dir(work)
        .envs(AIR_GAPPED)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut hosts = Vec::new();
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_default();
        if v["event"] == "egress" && v["host"].is_string() {
            hosts.push(format!("{}:{}", v["host"].as_str().unwrap(), v["port"]));
            if v["local"] != true {
                problems.push(format!("plan --egress: not local: {v}"));
            }
        }
    }
    eprintln!("plan --egress: {hosts:?}");
    if !out.status.success() || !hosts.contains(&air.names.host) {
        problems.push(format!(
            "plan --egress {egress:?}: the registry {} not listed: {stdout}{}",
            air.names.host,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
}

fn set(out: &mut Value, path: &[String], value: Value) {
    let mut at = out;
    for p in &path[..path.len() - 1] {
        at = &mut at[p.as_str()];
    }
    at[path[path.len() - 1].as_str()] = value;
}

/// `b` merged into `a`, maps key by key (as Helm merges values).
pub fn merge(a: &mut Value, b: &Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b.clone(),
    }
}

/// A fixture chart's `values.yaml`.
pub fn chart_values(dir: &str) -> Value {
    let path = fixtures().join("charts").join(dir).join("values.yaml");
    serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The values of openstack-cluster with its `addons` subchart's (cluster-addons) defaults.
pub fn openstack_cluster_values() -> Value {
    let mut v = chart_values("capi-helm-charts/charts/openstack-cluster");
    let addons = chart_values("capi-helm-charts/charts/cluster-addons");
    let mut merged = addons;
    merge(&mut merged, &v["addons"]);
    v["addons"] = merged;
    v
}

/// Host (without port) of a URL or an image reference.
fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    host_of(authority)
}

/// `host` of `host[:port]` (`[v6]:port` too).
fn host_of(authority: &str) -> String {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default().to_string();
    }
    authority.split(':').next().unwrap_or_default().to_string()
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The registries (other than loopback) of `images`: what the kind node needs mirrors for.
pub fn registries<'a>(images: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    images
        .into_iter()
        .filter_map(|i| Reference::parse(i).ok())
        .map(|r| r.registry)
        .filter(|r| !is_loopback(&host_of(r)))
        .collect()
}

/// The image references written in `text` (`image: X` lines of manifests).
pub fn images_in(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r#"(?m)^\s*-?\s*image:\s*["']?([^\s"'#]+)"#).unwrap();
    re.captures_iter(text)
        .map(|c| c[1].to_string())
        .filter(|i| !i.contains('$'))
        .collect()
}

/// Checks the kind node's containerd `hosts.toml` files: one for each of `hosts`, each naming
/// `mirror`.
pub async fn node_mirror_problems(
    docker: &bollard::Docker,
    node: &str,
    hosts: &BTreeSet<String>,
    mirror: &str,
) -> Vec<String> {
    let (code, out) = crate::support::docker::exec(
        docker,
        node,
        &[
            "sh",
            "-c",
            "for f in /etc/containerd/certs.d/*/hosts.toml; do echo \"== $f\"; cat \"$f\"; done",
        ],
    )
    .await;
    if code != 0 {
        return vec![format!(
            "reading the node's hosts.toml files: exit {code}: {out}"
        )];
    }
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let mut current = None;
    for line in out.lines() {
        if let Some(f) = line.strip_prefix("== ") {
            let host = f
                .trim_start_matches("/etc/containerd/certs.d/")
                .trim_end_matches("/hosts.toml")
                .to_string();
            files.insert(host.clone(), String::new());
            current = Some(host);
        } else if let Some(h) = &current {
            let text = files.get_mut(h).unwrap();
            text.push_str(line);
            text.push('\n');
        }
    }
    let mut problems = Vec::new();
    let written: BTreeSet<String> = files.keys().cloned().collect();
    if &written != hosts {
        problems.push(format!(
            "kind node: hosts.toml for {written:?}, expected one for each of {hosts:?}"
        ));
    }
    for (host, text) in &files {
        eprintln!("kind node: /etc/containerd/certs.d/{host}/hosts.toml:\n{text}");
        if !text.contains(&format!("[host.\"{mirror}\"]")) {
            problems.push(format!(
                "kind node: certs.d/{host}/hosts.toml does not name the mirror {mirror}:\n{text}"
            ));
        }
    }
    problems
}

/// One image or chart/source reference in a cluster.
#[derive(Debug)]
pub struct Found {
    /// `kind namespace/name`.
    pub object: String,
    /// The field's path.
    pub field: String,
    /// The reference.
    pub value: String,
    /// Its host.
    pub host: String,
}

/// Every image reference (any field named `image` or `imageRepository`, `image.repository`)
/// and chart or source URL (any `url`, `repo` or `endpoint` holding a URL; the `server` and
/// `host."..."` of every containerd `hosts.toml` among `files`) of every object of every
/// listable resource in the cluster of `client`. CRDs (their schemas) and object metadata
/// (managed fields, annotations) are not looked at.
pub async fn references(client: &kube::Client) -> (usize, Vec<Found>) {
    let discovery = kube::Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let mut objects = 0;
    let mut found = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if !caps.supports_operation(verbs::LIST) || ar.kind == "CustomResourceDefinition" {
                continue;
            }
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
            let Ok(list) = api.list(&ListParams::default()).await else {
                continue;
            };
            for o in list.items {
                objects += 1;
                let name = format!(
                    "{} {}/{}",
                    ar.kind,
                    o.metadata.namespace.clone().unwrap_or_default(),
                    o.metadata.name.clone().unwrap_or_default()
                );
                let v = serde_json::to_value(&o).unwrap();
                if let Value::Object(map) = &v {
                    for (k, child) in map {
                        if k != "metadata" {
                            collect(child, k, &name, &mut found);
                        }
                    }
                }
            }
        }
    }
    (objects, found)
}

fn collect(v: &Value, path: &str, object: &str, out: &mut Vec<Found>) {
    let key = path.rsplit('.').next().unwrap_or(path);
    let found = |value: &str, host: String| Found {
        object: object.to_string(),
        field: path.to_string(),
        value: value.to_string(),
        host,
    };
    match v {
        Value::String(s) => {
            let parent = path.rsplit('.').nth(1).unwrap_or_default();
            let image = key == "image"
                || key == "imageRepository"
                || (key == "repository" && parent == "image");
            if image && !s.is_empty() {
                let host = Reference::parse(s)
                    .map(|r| host_of(&r.registry))
                    .unwrap_or_else(|_| format!("(not an image reference: {s})"));
                out.push(found(s, host));
            } else if ["url", "repo", "endpoint"].contains(&key) && s.contains("://") {
                out.push(found(s, url_host(s)));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                if key == "files"
                    && item["path"]
                        .as_str()
                        .is_some_and(|p| p.ends_with("/hosts.toml"))
                    && let Some(content) = item["content"].as_str()
                {
                    for line in content.lines().map(str::trim) {
                        let url = line
                            .strip_prefix("server = \"")
                            .or_else(|| line.strip_prefix("[host.\""))
                            .and_then(|r| r.split('"').next());
                        if let Some(url) = url {
                            out.push(found(url, url_host(url)));
                        }
                    }
                }
                collect(item, &p, object, out);
            }
        }
        Value::Object(map) => {
            for (k, child) in map {
                collect(child, &format!("{path}.{k}"), object, out);
            }
        }
        _ => {}
    }
}

/// The references of `found` whose host is not loopback, one line each.
pub fn violations(cluster: &str, found: &[Found]) -> Vec<String> {
    found
        .iter()
        .filter(|f| !is_loopback(&f.host))
        .map(|f| format!("{cluster}: {} {}: {}", f.object, f.field, f.value))
        .collect()
}

/// The HelmCharts of the cluster: each of the three charts fetched from the registry (its
/// HelmRepository `oci://` there, type oci), Ready, its artifact the archive pushed; and each
/// HelmRelease of them Ready. `all`: every chart must be there (else only those present).
pub async fn chart_problems(
    d: &capi_manage::kube::Discovery,
    cluster: &str,
    air: &AirGap,
    all: bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    let list = |api_version: &'static str, kind: &'static str| async move {
        let Some(r) = d
            .resolve(&capi_manage::manifest::Gvk::from_api_version(
                api_version,
                kind,
            ))
            .await
            .unwrap()
        else {
            return Vec::new();
        };
        Api::<DynamicObject>::all_with(d.client().clone(), &r.api)
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
    };
    let ready = |o: &DynamicObject| {
        o.data["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    };
    let repositories = list("source.toolkit.fluxcd.io/v1", "HelmRepository").await;
    let charts = list("source.toolkit.fluxcd.io/v1", "HelmChart").await;
    let releases = list("helm.toolkit.fluxcd.io/v2", "HelmRelease").await;
    for (name, digest) in &air.chart_digests {
        let Some(chart) = charts
            .iter()
            .find(|c| c.data["spec"]["chart"] == name.as_str())
        else {
            if all {
                problems.push(format!("{cluster}: no HelmChart of {name}"));
            }
            continue;
        };
        let ns = chart.metadata.namespace.clone().unwrap_or_default();
        let source = &chart.data["spec"]["sourceRef"];
        let repository = repositories.iter().find(|r| {
            r.metadata.namespace.as_deref() == Some(&ns)
                && r.metadata.name.as_deref() == source["name"].as_str()
        });
        match repository {
            Some(r)
                if r.data["spec"]["url"] == air.names.charts_url.as_str()
                    && r.data["spec"]["type"] == "oci"
                    && r.data["spec"]["insecure"] == true => {}
            other => problems.push(format!(
                "{cluster}: HelmChart {ns}/{:?} of {name}: its HelmRepository is not {} (type oci, insecure): {:?}",
                chart.metadata.name,
                air.names.charts_url,
                other.map(|r| &r.data["spec"])
            )),
        }
        let artifact = &chart.data["status"]["artifact"];
        if !ready(chart) || artifact["digest"] != digest.as_str() {
            problems.push(format!(
                "{cluster}: HelmChart {ns}/{:?} of {name}: not Ready with the pushed archive {digest}: {}",
                chart.metadata.name, chart.data["status"]
            ));
        } else {
            eprintln!(
                "{cluster}: HelmChart {ns}/{} Ready: {name} {} from {} ({digest})",
                chart.metadata.name.clone().unwrap_or_default(),
                artifact["revision"],
                air.names.charts_url
            );
        }
        let release = releases
            .iter()
            .find(|r| r.data["spec"]["chart"]["spec"]["chart"] == name.as_str());
        match release {
            Some(r) if ready(r) => {}
            Some(r) => problems.push(format!(
                "{cluster}: HelmRelease {:?} of {name} not Ready: {}",
                r.metadata.name, r.data["status"]
            )),
            None if all => problems.push(format!("{cluster}: no HelmRelease of {name}")),
            None => {}
        }
    }
    problems
}

#[test]
fn overrides_point_repositories_images_and_mirrors_at_the_registry() {
    let values = json!({
        "registryMirrors": {"docker.io": ["https://quay.io/v2/azimuth/docker.io"]},
        "autoscaler": {"image": {"repository": "registry.k8s.io/autoscaling/cluster-autoscaler", "tag": "v1"}},
        "addons": {"cni": {"calico": {"chart": {"repo": "https://projectcalico.docs.tigera.io/charts", "name": "tigera-operator"}}},
                   "local": {"chart": {"repo": "http://127.0.0.1:1/charts"}}},
        "machineImage": "ubuntu",
    });
    let out = Names::new("127.0.0.1:5000").values_overrides(&values);
    assert_eq!(
        out,
        json!({
            "registryMirrors": {"docker.io": {"upstream": "http://127.0.0.1:5000", "mirrors": ["http://127.0.0.1:5000"]}},
            "autoscaler": {"image": {"repository": "127.0.0.1:5000/autoscaling/cluster-autoscaler"}},
            "addons": {"cni": {"calico": {"chart": {"repo": "oci://127.0.0.1:5000/charts"}}}},
        })
    );
    let mut found = Vec::new();
    collect(
        &json!({"template": {"spec": {"containers": [{"image": "ghcr.io/x/y:1"}, {"image": "127.0.0.1:5000/x/y:1"}]}},
                "files": [{"path": "/etc/containerd/certs.d/docker.io/hosts.toml",
                           "content": "server = \"https://registry-1.docker.io\"\n[host.\"http://127.0.0.1:5000\"]\n"}],
                "chart": {"repo": "oci://127.0.0.1:5000/charts"}}),
        "spec",
        "Thing ns/a",
        &mut found,
    );
    let v = violations("c", &found);
    assert_eq!(
        v,
        [
            "c: Thing ns/a spec.template.spec.containers[0].image: ghcr.io/x/y:1",
            "c: Thing ns/a spec.files: https://registry-1.docker.io"
        ],
        "{found:?}"
    );
    assert_eq!(found.len(), 5, "{found:?}");
}
