//! `vendor` against a mirror on loopback serving release-like files built from the upstream
//! fixtures (cert-manager is a small stand-in: Namespace, two CRDs written here and its three
//! Deployments). The committed vendor.toml is the pin file; provider rendering is compared with
//! the real clusterctl's `generate provider` on the same bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use capi_manage::components::{self, ChecksumStatus, Error, FileStatus, VendorOptions};
use capi_manage::manifest::{Object, parse_str};
use capi_manage::observe::{Event, Silent};
use serde_json::Value;
use sha2::Digest;
use tokio_util::sync::CancellationToken;

use crate::support;
use crate::support::release_mirror::{GH, Mirror, release_files};

mod charts;

const CORE_PATH: &str =
    "/github.com/kubernetes-sigs/cluster-api/releases/download/v1.13.3/core-components.yaml";

/// A repository holding the committed vendor.toml.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("vendor-manifests")).unwrap();
    std::fs::copy(
        support::project_root().join("vendor-manifests/vendor.toml"),
        dir.path().join("vendor-manifests/vendor.toml"),
    )
    .unwrap();
    dir
}

fn options(mirror: &Mirror) -> VendorOptions {
    VendorOptions {
        trust_mirror_for_new_assets: true,
        mirror: Some(mirror.base.clone()),
        ..VendorOptions::default()
    }
}

fn sha256(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

async fn run(root: &Path, options: &VendorOptions) -> Result<components::VendorReport, Error> {
    components::vendor(root, options, &Silent, &CancellationToken::new()).await
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn records_then_verifies_and_refuses_a_changed_byte() {
    let served = release_files();
    let mirror = Mirror::start(served.clone());
    let repo = repo();
    let root = repo.path();

    // First run: every asset downloaded, its sha256 recorded, its file written.
    let first = run(root, &options(&mirror)).await.unwrap();
    assert_eq!(first.assets.len(), 8);
    let lock: toml::Table = toml::from_str(
        &std::fs::read_to_string(root.join("vendor-manifests/vendor.lock")).unwrap(),
    )
    .unwrap();
    let locked: Vec<&toml::Table> = lock["component"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["asset"].as_array().unwrap())
        .map(|a| a.as_table().unwrap())
        .collect();
    for (a, l) in first.assets.iter().zip(&locked) {
        assert_eq!(a.checksum, ChecksumStatus::Recorded, "{}", a.url);
        assert_eq!(a.file_status, FileStatus::Written);
        let path = a.url.strip_prefix("https:/").unwrap();
        let bytes = &served[path];
        assert_eq!(a.sha256, sha256(bytes), "{}", a.url);
        assert_eq!(l["sha256"].as_str(), Some(sha256(bytes).as_str()));
        assert_eq!(l["bytes"].as_integer(), Some(bytes.len() as i64));
        let rendered = std::fs::read(root.join(&a.file)).unwrap();
        assert_eq!(
            l["rendered_sha256"].as_str(),
            Some(sha256(&rendered).as_str())
        );
        // The rendered file holds the served objects (same identities, same order).
        let ids = |text: &str| -> Vec<String> {
            parse_str(text, None)
                .unwrap()
                .iter()
                .map(Object::identity)
                .collect()
        };
        let served_ids = ids(std::str::from_utf8(bytes).unwrap());
        let rendered_ids = ids(std::str::from_utf8(&rendered).unwrap());
        assert_eq!(served_ids.len(), rendered_ids.len(), "{}", a.url);
    }
    let names: Vec<&str> = first.assets.iter().map(|a| a.component.as_str()).collect();
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

    // Second run: verified, nothing written.
    let before = snapshot(&root.join("vendor-manifests"));
    let second = run(root, &options(&mirror)).await.unwrap();
    assert!(second.unchanged(), "{second:?}");
    assert!(
        second
            .assets
            .iter()
            .all(|a| a.checksum == ChecksumStatus::Verified)
    );
    assert_eq!(snapshot(&root.join("vendor-manifests")), before);

    // One changed byte on the mirror: refused, naming asset and both checksums; nothing
    // overwritten.
    let mut tampered = mirror.get(CORE_PATH);
    let at = tampered.len() / 2;
    tampered[at] ^= 0x01;
    mirror.set(CORE_PATH, tampered.clone());
    let e = run(root, &options(&mirror)).await.unwrap_err();
    let line = support::error_chain(&e);
    assert!(
        matches!(&e, Error::Checksum { component, expected, actual, .. }
            if component == "cluster-api"
                && *expected == sha256(&served[CORE_PATH])
                && *actual == sha256(&tampered)),
        "{line}"
    );
    assert!(!line.contains('\n'));
    for needle in [
        "core-components.yaml",
        &sha256(&served[CORE_PATH]),
        &sha256(&tampered),
    ] {
        assert!(line.contains(needle), "{needle} missing from: {line}");
    }
    assert_eq!(snapshot(&root.join("vendor-manifests")), before);

    // load: verified components in install order, the objects the files hold.
    let vendored = components::load(root).unwrap();
    let names: Vec<&str> = vendored
        .components
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, &names_in_order()[..]);
    assert_eq!(
        vendored.components[2].files,
        [PathBuf::from(
            "vendor-manifests/cluster-api/core-components.yaml"
        )]
    );
    let flux_objects = parse_str(
        std::str::from_utf8(
            &served[&format!("{GH}/fluxcd/flux2/releases/download/v2.9.4/install.yaml")],
        )
        .unwrap(),
        None,
    )
    .unwrap();
    assert_eq!(vendored.components[0].objects.len(), flux_objects.len());
    // Flux's component is applied as published: same objects, no labels added.
    for (a, b) in vendored.components[0].objects.iter().zip(&flux_objects) {
        assert_eq!(a.value, b.value);
    }

    // The kustomization lists the files in install order and renders (our kustomize) to the
    // same objects load returns.
    let rendered = capi_manage::render::render(&root.join("vendor-manifests")).unwrap();
    let mut from_load: Vec<Value> = vendored
        .components
        .iter()
        .flat_map(|c| c.objects.iter().map(|o| o.value.clone()))
        .collect();
    let mut from_render: Vec<Value> = rendered.iter().map(|o| o.value.clone()).collect();
    let key = |v: &Value| serde_json::to_string(v).unwrap();
    from_load.sort_by_key(key);
    from_render.sort_by_key(key);
    assert_eq!(from_load, from_render);
    let kustomization: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root.join("vendor-manifests/kustomization.yaml")).unwrap(),
    )
    .unwrap();
    let listed: Vec<&str> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(listed[0], "flux/install.yaml");
    assert_eq!(listed[7], "sealed-secrets/controller.yaml");

    // One changed byte in a rendered file: load refuses, naming the file.
    let file =
        root.join("vendor-manifests/infrastructure-openstack/infrastructure-components.yaml");
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();
    let e = components::load(root).unwrap_err();
    let line = support::error_chain(&e);
    assert!(matches!(e, Error::Tampered { .. }), "{line}");
    assert!(
        line.contains("infrastructure-openstack/infrastructure-components.yaml"),
        "{line}"
    );
    assert!(line.contains(&sha256(&bytes)), "{line}");
}

fn names_in_order() -> [&'static str; 8] {
    [
        "flux",
        "cert-manager",
        "cluster-api",
        "bootstrap-kubeadm",
        "control-plane-kubeadm",
        "openstack-resource-controller",
        "infrastructure-openstack",
        "sealed-secrets",
    ]
}

/// Drops what clusterctl's typed round trip adds (empty maps, nulls, status) so objects can
/// be compared field for field.
fn normalize(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(m) => {
            let out: serde_json::Map<String, Value> = m
                .iter()
                .filter(|(k, _)| k.as_str() != "status" && k.as_str() != "creationTimestamp")
                .filter_map(|(k, v)| normalize(v).map(|v| (k.clone(), v)))
                .collect();
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(a) => {
            let out: Vec<Value> = a.iter().filter_map(normalize).collect();
            (!out.is_empty()).then_some(Value::Array(out))
        }
        other => Some(other.clone()),
    }
}

/// Where two values first differ: a JSON path and both sides, or `None` when equal.
fn first_difference(at: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let (l, r) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                if let Some(d) = first_difference(&format!("{at}.{k}"), l, r) {
                    return Some(d);
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (l, r))| first_difference(&format!("{at}[{i}]"), l, r)),
        _ if a == b => None,
        _ => Some(format!("{at}: ours {a}, clusterctl {b}")),
    }
}

fn by_identity(objects: &[Object]) -> BTreeMap<String, Value> {
    objects
        .iter()
        .map(|o| {
            (
                format!("{} {}", o.api_version(), o.identity()),
                normalize(&o.value).unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn providers_render_as_clusterctl_generates_them() {
    let clusterctl = support::test_bin("clusterctl");
    let served = release_files();
    let mirror = Mirror::start(served.clone());
    let repo = repo();
    run(repo.path(), &options(&mirror)).await.unwrap();
    let vendored = components::load(repo.path()).unwrap();

    let work = tempfile::tempdir().unwrap();
    let providers = [
        (
            "cluster-api",
            "cluster-api",
            "CoreProvider",
            "--core",
            "v1.13.3",
            "core-components.yaml",
        ),
        (
            "bootstrap-kubeadm",
            "kubeadm",
            "BootstrapProvider",
            "--bootstrap",
            "v1.13.3",
            "bootstrap-components.yaml",
        ),
        (
            "control-plane-kubeadm",
            "kubeadm",
            "ControlPlaneProvider",
            "--control-plane",
            "v1.13.3",
            "control-plane-components.yaml",
        ),
        (
            "infrastructure-openstack",
            "openstack",
            "InfrastructureProvider",
            "--infrastructure",
            "v0.14.6",
            "infrastructure-components.yaml",
        ),
    ];
    let mut config = String::from("providers:\n");
    for (label, name, kind, _, version, file) in providers {
        let dir = work.path().join("repo").join(label).join(version);
        std::fs::create_dir_all(&dir).unwrap();
        let (path, bytes) = served.iter().find(|(p, _)| p.ends_with(file)).unwrap();
        assert!(path.contains(version));
        std::fs::write(dir.join(file), bytes).unwrap();
        let minor: Vec<&str> = version.trim_start_matches('v').split('.').collect();
        std::fs::write(
            dir.join("metadata.yaml"),
            format!("apiVersion: clusterctl.cluster.x-k8s.io/v1alpha3\nkind: Metadata\nreleaseSeries:\n- major: {}\n  minor: {}\n  contract: v1beta2\n", minor[0], minor[1]),
        )
        .unwrap();
        config.push_str(&format!(
            "- name: {name}\n  type: {kind}\n  url: file://{}\n",
            dir.join(file).display()
        ));
    }
    std::fs::write(work.path().join("clusterctl.yaml"), &config).unwrap();

    for (label, name, _, flag, version, _) in providers {
        let out = Command::new(&clusterctl)
            .args([
                "generate",
                "provider",
                flag,
                &format!("{name}:{version}"),
                "--config",
            ])
            .arg(work.path().join("clusterctl.yaml"))
            .env("XDG_CONFIG_HOME", work.path().join("config"))
            .env("HOME", work.path())
            .env("CLUSTERCTL_DISABLE_VERSIONCHECK", "true")
            .output()
            .expect("run clusterctl");
        assert!(
            out.status.success(),
            "clusterctl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs = parse_str(std::str::from_utf8(&out.stdout).unwrap(), None).unwrap();
        let ours = &vendored
            .components
            .iter()
            .find(|c| c.name == label)
            .unwrap()
            .objects;
        let (theirs, ours) = (by_identity(&theirs), by_identity(ours));
        assert_eq!(
            theirs.keys().collect::<Vec<_>>(),
            ours.keys().collect::<Vec<_>>(),
            "{label}: object identities"
        );
        for (id, t) in &theirs {
            if let Some(d) = first_difference("", &ours[id], t) {
                panic!("{label}: {id} differs from clusterctl's output at {d}");
            }
        }
        // The labels clusterctl's contract names, on every object.
        for o in vendored
            .components
            .iter()
            .find(|c| c.name == label)
            .unwrap()
            .objects
            .iter()
        {
            assert_eq!(o.label("clusterctl.cluster.x-k8s.io"), Some(""), "{o}");
            assert_eq!(o.label("cluster.x-k8s.io/provider"), Some(label), "{o}");
        }
    }

    // The variable defaults were applied, as clusterctl does.
    let core = &vendored.components[2].objects;
    let deploy = core.iter().find(|o| o.kind() == "Deployment").unwrap();
    let args = deploy.value["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(
        args.contains("MachinePool=true,ClusterTopology=false"),
        "{args}"
    );
    assert!(!args.contains("${"), "{args}");

    // cert-manager carries clusterctl's cert-manager labels and version annotation.
    for o in &vendored.components[1].objects {
        assert_eq!(o.label("clusterctl.cluster.x-k8s.io"), Some(""), "{o}");
        assert_eq!(
            o.label("clusterctl.cluster.x-k8s.io/core"),
            Some("cert-manager"),
            "{o}"
        );
        assert_eq!(
            o.annotation("cert-manager.clusterctl.cluster.x-k8s.io/version"),
            Some("v1.20.3")
        );
    }
    // Flux, ORC and sealed-secrets are not clusterctl's: no labels added.
    for c in [
        &vendored.components[0],
        &vendored.components[5],
        &vendored.components[7],
    ] {
        assert!(
            c.objects
                .iter()
                .all(|o| o.label("clusterctl.cluster.x-k8s.io").is_none())
        );
    }
}

fn images(objects: &[Object]) -> Vec<String> {
    objects
        .iter()
        .filter(|o| o.kind() == "Deployment")
        .flat_map(|o| {
            o.value["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["image"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn image_registry_variables_and_retries() {
    let served = release_files();
    let mirror = Mirror::start(served.clone());

    // --image-registry: every workload image points at the registry, paths and tags kept.
    let first = repo();
    let opts = VendorOptions {
        image_registry: Some("registry.mirror.internal:5000".into()),
        ..options(&mirror)
    };
    run(first.path(), &opts).await.unwrap();
    let vendored = components::load(first.path()).unwrap();
    let all: Vec<String> = vendored
        .components
        .iter()
        .flat_map(|c| images(&c.objects))
        .collect();
    assert!(all.len() >= 10, "{all:?}");
    for i in &all {
        assert!(i.starts_with("registry.mirror.internal:5000/"), "{i}");
    }
    for expected in [
        "registry.mirror.internal:5000/cluster-api/cluster-api-controller:v1.13.3",
        "registry.mirror.internal:5000/capi-openstack/capi-openstack-controller:v0.14.6",
        "registry.mirror.internal:5000/jetstack/cert-manager-webhook:v1.20.3",
        "registry.mirror.internal:5000/bitnami/sealed-secrets-controller:0.36.6",
        // Flux's fixture images name no registry: Docker Hub's path is kept.
        "registry.mirror.internal:5000/fluxcd/source-controller",
    ] {
        assert!(
            all.iter().any(|i| i == expected),
            "{expected} not in {all:?}"
        );
    }

    // A variable without a default and without a value: the error names it; with --var the
    // same run succeeds and uses the value.
    let with_required = String::from_utf8(served[CORE_PATH].clone())
        .unwrap()
        .replace("--leader-elect", "--sync-period=${CAPI_SYNC_PERIOD}");
    mirror.set(CORE_PATH, with_required.into_bytes());
    let repo = repo();
    let e = run(repo.path(), &options(&mirror)).await.unwrap_err();
    let line = support::error_chain(&e);
    assert!(matches!(e, Error::Variable { .. }), "{line}");
    assert!(
        line.contains("`CAPI_SYNC_PERIOD`") && line.contains("core-components.yaml"),
        "{line}"
    );
    assert!(!repo.path().join("vendor-manifests/vendor.lock").exists());

    // Retries: the mirror answers 503 twice, then serves; the warnings say so.
    mirror.fail_next.store(2, Ordering::Relaxed);
    let before = mirror.requests.load(Ordering::Relaxed);
    let warnings = Mutex::new(Vec::new());
    let observer = |e: Event| {
        if let Event::Warning { message } = e {
            warnings.lock().unwrap().push(message);
        }
    };
    let opts = VendorOptions {
        variables: [("CAPI_SYNC_PERIOD".to_string(), "10m".to_string())].into(),
        ..options(&mirror)
    };
    components::vendor(repo.path(), &opts, &observer, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(mirror.requests.load(Ordering::Relaxed) - before, 10);
    let warnings = warnings.into_inner().unwrap();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("HTTP 503"), "{warnings:?}");
    let core = &components::load(repo.path()).unwrap().components[2].objects;
    let deploy = core.iter().find(|o| o.kind() == "Deployment").unwrap();
    assert!(deploy.value.to_string().contains("--sync-period=10m"));

    // A missing asset (404) is not retried and names the URL it asked.
    mirror.remove(CORE_PATH);
    let e = run(repo.path(), &options(&mirror)).await.unwrap_err();
    let line = support::error_chain(&e);
    assert!(matches!(e, Error::HttpStatus { status: 404, .. }), "{line}");
    assert!(
        line.contains(&format!("{}github.com/kubernetes-sigs", mirror.base)),
        "{line}"
    );
}

#[test]
fn cli_vendors_verifies_and_refuses() {
    let served = release_files();
    let mirror = Mirror::start(served.clone());
    let repo = repo();
    let vendor_cmd = || {
        let mut c = support::capi_manage();
        c.args([
            "vendor",
            "--mirror",
            &mirror.base,
            "--trust-mirror",
            "--repo",
        ])
        .arg(repo.path());
        c
    };
    // Without --trust-mirror, an asset with neither a pin nor a lock entry is refused.
    let out = support::capi_manage()
        .args(["vendor", "--mirror", &mirror.base, "--repo"])
        .arg(repo.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no sha256 in vendor.toml and no entry in vendor.lock"),
        "{stderr}"
    );
    assert!(!repo.path().join("vendor-manifests/vendor.lock").exists());
    let out = vendor_cmd().output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 8, "{stdout}");
    assert!(
        stdout
            .lines()
            .all(|l| l.contains(" recorded") && l.ends_with(" written")),
        "{stdout}"
    );
    assert!(stdout.contains(&sha256(&served[CORE_PATH])), "{stdout}");

    let out = vendor_cmd().output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout
            .lines()
            .all(|l| l.contains(" verified") && l.ends_with(" unchanged")),
        "{stdout}"
    );

    let mut bytes = mirror.get(CORE_PATH);
    bytes[10] ^= 0x20;
    mirror.set(CORE_PATH, bytes);
    let out = vendor_cmd().output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("error: cluster-api: https://github.com/"),
        "{stderr}"
    );
    assert!(last.contains(&sha256(&served[CORE_PATH])), "{stderr}");
}

/// The pins are the set the openstack-cluster chart release is tested with upstream: every
/// version that the chart repository's `dependencies.json` names and that capi-manage installs
/// (vendor.toml) or deploys (the HelmReleases of clusters/bases) must equal it.
#[test]
fn pins_match_the_charts_tested_dependencies() {
    let file = support::fixtures().join("charts/capi-helm-charts/dependencies.json");
    let deps: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let dep = |key: &str| {
        deps[key]
            .as_str()
            .unwrap_or_else(|| panic!("{} has no {key}", file.display()))
            .to_string()
    };
    let pins =
        components::Pins::read(&support::project_root().join("vendor-manifests/vendor.toml"))
            .unwrap();
    let mut mismatches = Vec::new();
    let mut compare = |what: String, ours: Option<String>, theirs: String| {
        if ours.as_deref() != Some(theirs.as_str()) {
            mismatches.push(format!("{what}: pinned {ours:?}, tested upstream {theirs}"));
        }
    };
    for (component, key) in [
        ("cert-manager", "cert-manager"),
        ("cluster-api", "cluster-api"),
        ("bootstrap-kubeadm", "cluster-api"),
        ("control-plane-kubeadm", "cluster-api"),
        (
            "openstack-resource-controller",
            "openstack-resource-controller",
        ),
        ("infrastructure-openstack", "cluster-api-provider-openstack"),
    ] {
        compare(
            format!("vendor.toml {component}"),
            pins.version_of(component).map(str::to_string),
            dep(key),
        );
    }
    // The chart versions, as the bases render (each HelmRelease's spec.chart.spec).
    let mut charts = BTreeMap::new();
    for base in ["cluster", "addons"] {
        let dir = support::project_root().join("clusters/bases").join(base);
        for o in capi_manage::render::render(&dir).unwrap() {
            if o.kind() == "HelmRelease" {
                let spec = &o.value["spec"]["chart"]["spec"];
                charts.insert(
                    spec["chart"].as_str().unwrap().to_string(),
                    spec["version"].as_str().unwrap().to_string(),
                );
            }
        }
    }
    for (chart, key) in [
        ("cluster-api-addon-provider", "addon-provider"),
        (
            "cluster-api-janitor-openstack",
            "cluster-api-janitor-openstack",
        ),
    ] {
        compare(
            format!("clusters/bases HelmRelease of {chart}"),
            charts.get(chart).cloned(),
            dep(key),
        );
    }
    // dependencies.json belongs to one release of the chart repository: the fixtures' README
    // names its tag, which is the openstack-cluster chart version to deploy.
    let readme = std::fs::read_to_string(support::fixtures().join("README.md")).unwrap();
    let release = readme
        .lines()
        .find(|l| l.starts_with("| charts/capi-helm-charts/ |"))
        .and_then(|l| l.split('|').nth(3))
        .and_then(|tag| tag.split_whitespace().next())
        .expect("the fixtures' README names the chart release")
        .to_string();
    compare(
        "clusters/bases HelmRelease of openstack-cluster".into(),
        charts.get("openstack-cluster").cloned(),
        release,
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[tokio::test]
async fn a_download_larger_than_its_locked_size_is_cut_off() {
    let served = release_files();
    let mirror = Mirror::start(served.clone());
    let repo = repo();
    run(repo.path(), &options(&mirror)).await.unwrap();
    // The mirror now serves far more than the lock recorded for the core components.
    let mut huge = mirror.get(CORE_PATH);
    huge.extend(std::iter::repeat_n(b'#', 1 << 20));
    mirror.set(CORE_PATH, huge);
    let e = run(repo.path(), &options(&mirror)).await.unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("sent more than"), "{e}");
}
