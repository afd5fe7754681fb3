//! `bootstrap --images DIR`, `--registry-mirror` and `--registry-ca`: what the preflight refuses
//! before anything is created, and the flags' one-line errors.

use std::path::{Path, PathBuf};

use capi_manage::bootstrap::{self, CheckStatus, Operation, Options};
use capi_manage::images::Layout;
use capi_manage::images::oci::{self, Descriptor};
use tokio_util::sync::CancellationToken;

use crate::support::{capi_manage, project_root};

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A repository with the example cluster and an `images.lock` naming two images the kind node
/// runs besides the node image.
fn repo(dir: &Path) -> PathBuf {
    let work = dir.join("repo");
    copy(&project_root().join("clusters"), &work.join("clusters"));
    std::fs::create_dir_all(work.join("vendor-manifests")).unwrap();
    std::fs::copy(
        project_root().join("vendor-manifests/vendor.toml"),
        work.join("vendor-manifests/vendor.toml"),
    )
    .unwrap();
    let node = capi_manage::kind::resolve_node_image(None, None).unwrap();
    let (node_ref, node_digest) = node.split_once('@').unwrap();
    std::fs::write(
        work.join("vendor-manifests/images.lock"),
        format!(
            r#"format = 1

[[image]]
reference = "docker.io/{node_ref}"
digest = "{node_digest}"
sources = ["kind node"]

[[image]]
reference = "ghcr.io/fluxcd/source-controller:v1.6.2"
sources = ["flux"]

[[image]]
reference = "registry.k8s.io/cluster-api/cluster-api-controller:v1.10.4"
sources = ["cluster-api"]
"#
        ),
    )
    .unwrap();
    work
}

/// Adds one small image to the layout under each name.
fn add_image(layout: &Layout, names: &[&str]) -> String {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = b"not really a layer, but bytes with a digest".to_vec();
    layout.put(&oci::digest_of(config), config).unwrap();
    layout.put(&oci::digest_of(&layer), &layer).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": oci::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": oci::digest_of(config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": oci::digest_of(&layer), "size": layer.len()}],
    }))
    .unwrap();
    let digest = oci::digest_of(&manifest);
    layout.put(&digest, &manifest).unwrap();
    for name in names {
        layout
            .tag(
                name,
                &Descriptor {
                    media_type: oci::OCI_MANIFEST.into(),
                    digest: digest.clone(),
                    size: manifest.len() as u64,
                    platform: None,
                    annotations: Default::default(),
                },
            )
            .unwrap();
    }
    oci::digest_of(&layer)
}

async fn images_check(o: &Options) -> Option<bootstrap::Check> {
    let p = bootstrap::preflight(o, Operation::Bootstrap, false, &CancellationToken::new())
        .await
        .unwrap();
    p.checks.into_iter().find(|c| c.id == "images")
}

#[tokio::test]
async fn the_preflight_refuses_a_layout_that_is_not_one_or_lacks_an_image() {
    let tmp = tempfile::tempdir().unwrap();
    let work = repo(tmp.path());
    let mut o = Options::new(&work, "example");
    o.cloud_preflight = None;
    // A dead engine address: the Docker checks fail at once, the images check is what counts.
    o.kind.docker_host = Some(format!("unix://{}", tmp.path().join("no.sock").display()));
    assert!(images_check(&o).await.is_none(), "no --images, no check");

    // Not a layout.
    let dir = tmp.path().join("images");
    o.images = Some(dir.clone());
    let c = images_check(&o).await.unwrap();
    assert_eq!(c.status, CheckStatus::Problem, "{c}");
    assert!(c.detail.contains("not a usable OCI image layout"), "{c}");
    let fix = c.fix.clone().unwrap();
    assert!(
        fix.contains(&format!("`capi-manage images pull --to {}`", dir.display())),
        "{c}"
    );

    // A layout lacking one image: named, with the command that adds it. The node image is
    // not asked for (Docker runs it).
    let layout = Layout::create(&dir).unwrap();
    let layer = add_image(&layout, &["ghcr.io/fluxcd/source-controller:v1.6.2"]);
    let c = images_check(&o).await.unwrap();
    assert_eq!(c.status, CheckStatus::Problem, "{c}");
    assert!(
        c.detail.ends_with(
            "lacks 1 of the images the kind node runs: registry.k8s.io/cluster-api/cluster-api-controller:v1.10.4"
        ),
        "{c}"
    );
    assert!(
        c.fix.as_deref().unwrap().contains(&format!(
            "`capi-manage images pull --to {} registry.k8s.io/cluster-api/cluster-api-controller:v1.10.4`",
            dir.display()
        )),
        "{c}"
    );
    assert_eq!(c.to_string().lines().count(), 1);

    // Complete: fine.
    add_image(
        &layout,
        &["registry.k8s.io/cluster-api/cluster-api-controller:v1.10.4"],
    );
    let c = images_check(&o).await.unwrap();
    assert_eq!(c.status, CheckStatus::Ok, "{c}");
    assert!(c.detail.contains("2 images"), "{c}");

    // A blob gone: the image and the blob are named.
    std::fs::remove_file(layout.blob_path(&layer)).unwrap();
    let c = images_check(&o).await.unwrap();
    assert_eq!(c.status, CheckStatus::Problem, "{c}");
    assert!(
        c.detail.contains(&format!("blob {layer} is missing"))
            && c.detail.contains("ghcr.io/fluxcd/source-controller:v1.6.2"),
        "{c}"
    );
}

fn bootstrap_cli(work: &Path, args: &[&str]) -> std::process::Output {
    capi_manage()
        .args(["bootstrap", "example", "--repo"])
        .arg(work)
        .args(["--skip-cloud-preflight", "--yes"])
        .args(args)
        .env_remove("KIND_CLUSTER_NAME")
        .output()
        .unwrap()
}

#[test]
fn the_flags_refuse_bad_values_in_one_line_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    let work = repo(tmp.path());
    for (value, needle) in [
        (
            "https://docker.io=http://127.0.0.1:5000",
            "\"https://docker.io\" is not a registry host",
        ),
        (
            "docker.io=127.0.0.1:5000",
            "\"127.0.0.1:5000\" is not an http:// or https:// URL",
        ),
        ("docker.io", "\"docker.io\" is not HOST=URL"),
    ] {
        let out = bootstrap_cli(&work, &["--registry-mirror", value]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(
            errors[0].contains("--registry-mirror") && errors[0].contains(needle),
            "{stderr}"
        );
    }
    let not_pem = tmp.path().join("ca.txt");
    std::fs::write(&not_pem, "just text").unwrap();
    for (args, needle) in [
        (
            vec![
                "--registry-mirror".to_string(),
                "docker.io=https://127.0.0.1:5443".into(),
                "--registry-ca".into(),
                not_pem.display().to_string(),
            ],
            format!(
                "--registry-ca: registry CA {} is not a PEM certificate",
                not_pem.display()
            ),
        ),
        (
            vec![
                "--registry-mirror".to_string(),
                "docker.io=https://127.0.0.1:5443".into(),
                "--registry-ca".into(),
                tmp.path().join("absent.pem").display().to_string(),
            ],
            "--registry-ca: cannot read registry CA".to_string(),
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = bootstrap_cli(&work, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(errors[0].contains(&needle), "`{needle}` in {stderr}");
    }
}

#[test]
fn bootstrap_with_an_incomplete_layout_stops_in_the_preflight_naming_the_image() {
    let tmp = tempfile::tempdir().unwrap();
    let work = repo(tmp.path());
    let dir = tmp.path().join("images");
    add_image(
        &Layout::create(&dir).unwrap(),
        &["registry.k8s.io/cluster-api/cluster-api-controller:v1.10.4"],
    );
    let dead = format!("unix://{}", tmp.path().join("no.sock").display());
    let out = bootstrap_cli(
        &work,
        &["--images", dir.to_str().unwrap(), "--docker-host", &dead],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(error.contains("nothing was created"), "{stderr}");
    assert!(
        error.contains(&format!(
            "images: {} lacks 1 of the images the kind node runs: ghcr.io/fluxcd/source-controller:v1.6.2 (fix: on a connected host, `capi-manage images pull --to {} ghcr.io/fluxcd/source-controller:v1.6.2`",
            dir.display(),
            dir.display()
        )),
        "{stderr}"
    );
    assert!(
        !work
            .join("clusters/example/.capi-manage/state.json")
            .exists()
    );
}

/// `--node-image` may name the internal registry: the preflight says whether Docker has it,
/// and whether that registry serves it. Uses dockerd: run under `flock /work/docker.lock`.
#[tokio::test]
async fn the_preflight_says_when_the_node_image_is_missing_from_docker() {
    let _serial = crate::kind::SERIAL.lock().await;
    let docker = crate::support::docker::engine().await;
    let tmp = tempfile::tempdir().unwrap();
    let work = repo(tmp.path());
    let mut o = Options::new(&work, "example");
    o.cloud_preflight = None;
    o.kind.docker_host = Some(crate::support::docker::docker_host());
    let node_check =
        |p: bootstrap::Preflight| p.checks.into_iter().find(|c| c.id == "node-image").unwrap();
    let stand_in = crate::support::docker::build_stand_in(
        &docker,
        &crate::support::docker::StandIn::default(),
    )
    .await;
    let registry = crate::support::docker::Registry::serve(
        &docker,
        &stand_in.image,
        "kindest/node",
        "v1.35.0",
    )
    .await;
    crate::support::docker::remove_loopback_registry_images(&docker).await;
    let internal = format!(
        "{}/kindest/node:v1.35.0@{}",
        registry.addr, registry.manifest_digest
    );
    o.kind.image = internal.clone();

    // Offline: missing from Docker, said as a warning (the registry is not asked).
    let offline = bootstrap::preflight(&o, Operation::Bootstrap, false, &CancellationToken::new())
        .await
        .unwrap();
    let c = node_check(offline);
    assert_eq!(c.status, CheckStatus::Warning, "{c}");
    assert!(
        c.detail
            .starts_with(&format!("{internal} is missing from Docker")),
        "{c}"
    );
    // Online: the internal registry serves it, so creating the cluster pulls it from there.
    let online = bootstrap::preflight(&o, Operation::Bootstrap, true, &CancellationToken::new())
        .await
        .unwrap();
    let c = node_check(online);
    assert_eq!(c.status, CheckStatus::Ok, "{c}");
    assert!(c.detail.contains(&registry.manifest_digest), "{c}");
    assert!(
        docker.inspect_image(&internal).await.is_err(),
        "the preflight pulls nothing"
    );
    // A registry that does not answer: a problem, with the fixes.
    drop(registry);
    let online = bootstrap::preflight(&o, Operation::Bootstrap, true, &CancellationToken::new())
        .await
        .unwrap();
    let c = node_check(online);
    assert_eq!(c.status, CheckStatus::Problem, "{c}");
    assert!(
        c.detail.starts_with(&format!(
            "{internal} is missing from Docker and cannot be pulled"
        )),
        "{c}"
    );
    assert!(c.fix.as_deref().unwrap().contains("docker load"), "{c}");
}

/// `bootstrap --images DIR` on the stand-in node: the `kind-cluster` step makes the cluster and
/// streams the layout into the node's `ctr images import` before `kind-components` runs (which
/// fails here: nothing is vendored). Uses dockerd: run under `flock /work/docker.lock`.
#[tokio::test]
async fn the_kind_cluster_step_loads_the_layout_before_the_components() {
    use crate::support::docker::{self as sd, StandIn};
    let _serial = crate::kind::SERIAL.lock().await;
    let docker = sd::engine().await;
    let cp = crate::support::ControlPlane::start().await;
    let name = "capi-airgap-it-step";
    let stand_in = sd::build_stand_in(
        &docker,
        &StandIn {
            ca_pem: cp.ca_pem().to_string(),
            token: cp.admin_token().to_string(),
            ..StandIn::default()
        },
    )
    .await;
    let _cleanup = crate::kind::clean(name).await;
    let tmp = tempfile::tempdir().unwrap();
    let work = repo(tmp.path());
    let dir = tmp.path().join("images");
    let layout = Layout::create(&dir).unwrap();
    add_image(
        &layout,
        &[
            "ghcr.io/fluxcd/source-controller:v1.6.2",
            "registry.k8s.io/cluster-api/cluster-api-controller:v1.10.4",
        ],
    );
    let mut o = Options::new(&work, "example");
    o.cloud_preflight = None;
    // The fork is not complete (no git remote, nothing vendored): only the steps count here.
    o.ignore_preflight = vec!["all".into()];
    o.images = Some(dir.clone());
    o.kind = capi_manage::kind::CreateOptions {
        name: name.into(),
        image: stand_in.image.clone(),
        docker_host: Some(sd::docker_host()),
        ready_timeout: std::time::Duration::from_secs(30),
        privileges: capi_manage::kind::NodePrivileges::TestOnlyCapabilities(sd::test_capabilities()),
        ..Default::default()
    };
    // The node made first (the relay to the test API server needs the `kind` network); the
    // step reuses it, as a resumed bootstrap does.
    capi_manage::kind::create(
        &o.kind,
        &capi_manage::observe::Silent,
        &CancellationToken::new(),
    )
    .await
    .expect("create");
    let _relay = sd::Relay::start(&docker, stand_in.relay_port, cp.port()).await;
    let err = bootstrap::bootstrap(&o, &capi_manage::observe::Silent, &CancellationToken::new())
        .await
        .unwrap_err();
    let (step, _) = err.step_error().unwrap_or_else(|| panic!("{err}"));
    assert_eq!(step, "kind-components", "{err}");

    let node = capi_manage::kind::control_plane_name(name);
    let (code, log) = sd::exec(&docker, &node, &["cat", "/kind/stand-in/ctr.log"]).await;
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        log.trim(),
        "ctr --namespace=k8s.io images import --all-platforms --digests --snapshotter=native -"
    );
    // What ctr got is the layout: the index naming both images, every blob by its digest.
    let kept = download(&docker, &node, "/var/lib/stand-in/import.tar").await;
    let mut names = Vec::new();
    let mut archive = tar::Archive::new(&kept[..]);
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let n = e.path().unwrap().to_string_lossy().into_owned();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut content).unwrap();
        if let Some(hex) = n.strip_prefix("blobs/sha256/") {
            assert_eq!(oci::digest_of(&content), format!("sha256:{hex}"));
        }
        if n == "index.json" {
            let index: serde_json::Value = serde_json::from_slice(&content).unwrap();
            let mut refs: Vec<&str> = index["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    m["annotations"]["org.opencontainers.image.ref.name"]
                        .as_str()
                        .unwrap()
                })
                .collect();
            refs.sort();
            assert_eq!(
                refs,
                [
                    "ghcr.io/fluxcd/source-controller:v1.6.2",
                    "registry.k8s.io/cluster-api/cluster-api-controller:v1.10.4"
                ]
            );
        }
        names.push(n);
    }
    assert_eq!(names, read_layout_names(&dir));
    assert_eq!(
        names.len(),
        5,
        "oci-layout, index.json, manifest, config, layer: {names:?}"
    );
    let state =
        std::fs::read_to_string(work.join("clusters/example/.capi-manage/state.json")).unwrap();
    assert!(state.contains("\"kind-cluster\""), "{state}");
}

/// The archive's member names for the layout at `dir`, in order.
fn read_layout_names(dir: &Path) -> Vec<String> {
    bootstrap::read_layout(dir)
        .unwrap()
        .files
        .iter()
        .map(|f| f.name.clone())
        .collect()
}

/// A file of the container, through the engine's archive download.
async fn download(docker: &bollard::Docker, container: &str, path: &str) -> Vec<u8> {
    use futures::StreamExt;
    let options = bollard::query_parameters::DownloadFromContainerOptionsBuilder::default()
        .path(path)
        .build();
    let mut stream = docker.download_from_container(container, Some(options));
    let mut wrapped = Vec::new();
    while let Some(chunk) = stream.next().await {
        wrapped.extend_from_slice(&chunk.expect("download"));
    }
    let mut outer = tar::Archive::new(&wrapped[..]);
    let mut e = outer.entries().unwrap().next().expect("the file").unwrap();
    let mut content = Vec::new();
    std::io::Read::read_to_end(&mut e, &mut content).unwrap();
    content
}
