//! `capi-manage images push` and `pull` against the real CNCF distribution registry on
//! loopback, behind token auth (and Basic auth from an htpasswd file): images made by `docker
//! import`, a multi-platform index and a chart as an OCI artifact; digests checked, a flipped
//! byte refused.

use std::path::Path;
use std::process::Output;

use crate::support::{self, capi_manage, docker, helm_repo, registry};
use capi_manage::images::{Layout, file_digest, ref_name};

fn run(args: &[&str], password: bool) -> Output {
    let mut cmd = capi_manage();
    cmd.args(args);
    if password {
        cmd.env("CAPI_MANAGE_REGISTRY_PASSWORD", registry::PASSWORD);
    } else {
        cmd.env_remove("CAPI_MANAGE_REGISTRY_PASSWORD");
    }
    // Outside a repository: no images.lock applies.
    cmd.current_dir(std::env::temp_dir());
    cmd.output().unwrap()
}

/// `images push` of the layout `from` to `registry` as [`registry::USER`].
fn push_args<'a>(from: &'a Path, registry: &'a str) -> [&'a str; 8] {
    let from = from.to_str().unwrap();
    let user = registry::USER;
    [
        "images",
        "push",
        "--from",
        from,
        "--registry",
        registry,
        "--username",
        user,
    ]
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Name -> digest of a layout's index.json, every blob checked against its name.
fn layout_images(dir: &Path) -> std::collections::BTreeMap<String, String> {
    let layout = Layout::open(dir).unwrap();
    for entry in std::fs::read_dir(dir.join("blobs/sha256")).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        assert_eq!(
            file_digest(&p).unwrap(),
            format!("sha256:{name}"),
            "{}",
            p.display()
        );
    }
    layout
        .index()
        .unwrap()
        .manifests
        .iter()
        .map(|d| (ref_name(d).unwrap().to_string(), d.digest.clone()))
        .collect()
}

// The binary runs blocking while the token service answers on this runtime: two workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_then_pull_through_a_token_auth_registry() {
    let engine = docker::engine().await;
    let reg = registry::Registry::start(true).await;
    let src = tempfile::tempdir().unwrap();
    let l0 = src.path();
    std::fs::create_dir_all(l0.join("blobs/sha256")).unwrap();

    // An image from `docker import`, and a two-platform index of two imported images.
    let app =
        registry::imported_image(&engine, l0, &[("etc/app.conf", b"amd64 app\n")], "amd64").await;
    let amd64 = registry::imported_image(&engine, l0, &[("etc/arch", b"amd64\n")], "amd64").await;
    let arm64 = registry::imported_image(&engine, l0, &[("etc/arch", b"arm64\n")], "arm64").await;
    let multi = registry::index_of(l0, &[amd64.clone(), arm64.clone()]);
    registry::write_layout_index(
        l0,
        &[
            ("example.test/capi/app:v1", app.clone()),
            ("example.test/capi/multi:v1", multi.clone()),
        ],
    );
    // The openstack-cluster chart as an OCI artifact, added by `images pull --chart`.
    let chart = helm_repo::fixture_chart("openstack-cluster");
    let tgz = src.path().join("openstack-cluster-0.27.0.tgz");
    std::fs::write(&tgz, helm_repo::package(&chart)).unwrap();
    let chart_arg = format!("{}=azimuth-cloud.github.io/capi-helm-charts", tgz.display());
    let out = ok(&run(
        &[
            "images",
            "pull",
            "--to",
            l0.to_str().unwrap(),
            "--chart",
            &chart_arg,
        ],
        false,
    ));
    assert!(
        out.contains("azimuth-cloud.github.io/capi-helm-charts/openstack-cluster:0.27.0"),
        "{out}"
    );
    let pushed = layout_images(l0);
    assert_eq!(pushed.len(), 3);

    let mirror = format!("{}/mirror", reg.host);
    // Without credentials the registry's token service refuses.
    let e = failed(&run(&push_args(l0, &mirror)[..6], false));
    assert!(e.contains("refused"), "{e}");
    let push = push_args(l0, &mirror);
    let out = ok(&run(&push, true));
    assert!(out.contains(&format!("{mirror}/capi/app:v1")), "{out}");
    assert!(
        out.contains(&format!(
            "{mirror}/capi-helm-charts/openstack-cluster:0.27.0"
        )),
        "{out}"
    );
    // A second push finds every blob in the registry already.
    let again = ok(&run(&push, true));
    assert!(
        again.lines().all(|l| l.contains("\t0 blobs uploaded")),
        "{again}"
    );

    // Pull back: digests as pushed; the index resolves to its linux/amd64 image.
    let dst = tempfile::tempdir().unwrap();
    let l1 = dst.path().join("layout");
    let pull = |to: &Path| {
        run(
            &[
                "images",
                "pull",
                "--to",
                to.to_str().unwrap(),
                "--source-registry",
                &mirror,
                "--username",
                registry::USER,
                "example.test/capi/app:v1",
                "example.test/capi/multi:v1",
                "azimuth-cloud.github.io/capi-helm-charts/openstack-cluster:0.27.0",
            ],
            true,
        )
    };
    ok(&pull(&l1));
    let pulled = layout_images(&l1);
    assert_eq!(
        pulled["example.test/capi/app:v1"],
        pushed["example.test/capi/app:v1"]
    );
    assert_eq!(
        pulled["example.test/capi/multi:v1"],
        amd64["digest"].as_str().unwrap()
    );
    assert_ne!(
        pulled["example.test/capi/multi:v1"],
        multi["digest"].as_str().unwrap()
    );
    let chart_ref = "azimuth-cloud.github.io/capi-helm-charts/openstack-cluster:0.27.0";
    assert_eq!(pulled[chart_ref], pushed[chart_ref]);
    let chart_manifest: serde_json::Value = serde_json::from_slice(
        &Layout::open(&l1)
            .unwrap()
            .read_verified(&pulled[chart_ref], chart_ref)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        chart_manifest["config"]["mediaType"],
        "application/vnd.cncf.helm.config.v1+json"
    );
    assert_eq!(
        chart_manifest["layers"][0]["mediaType"],
        "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    );
    let arm_config = arm64["digest"].as_str().unwrap();
    assert!(!Layout::open(&l1).unwrap().blob_path(arm_config).exists());
    // Resumed: everything is in the layout already.
    let out = ok(&pull(&l1));
    assert!(
        out.lines().all(|l| l.contains("\t0 blobs fetched")),
        "{out}"
    );

    // One flipped byte in the registry's copy of the app's layer: the pull refuses it.
    let app_manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            Layout::open(l0)
                .unwrap()
                .blob_path(app["digest"].as_str().unwrap()),
        )
        .unwrap(),
    )
    .unwrap();
    let layer = app_manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let flip = |path: &Path| {
        let mut bytes = std::fs::read(path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        std::fs::write(path, bytes).unwrap();
    };
    flip(&reg.blob_file(&layer));
    let l2 = dst.path().join("corrupt");
    let e = failed(&pull(&l2));
    assert!(
        e.contains("does not match its digest") && e.contains(&layer),
        "{e}"
    );
    assert!(!Layout::open(&l2).unwrap().blob_path(&layer).exists());

    // One flipped byte in the layout's copy: the push to a new path refuses it.
    flip(&Layout::open(l0).unwrap().blob_path(&layer));
    let other = format!("{}/other", reg.host);
    let e = failed(&run(&push_args(l0, &other), true));
    assert!(
        e.contains("does not match its digest") && e.contains(&layer),
        "{e}"
    );
}

#[test]
fn list_offline_reads_the_lock() {
    let root = tempfile::tempdir().unwrap();
    let vm = root.path().join("vendor-manifests");
    std::fs::create_dir_all(&vm).unwrap();
    std::fs::copy(
        support::project_root().join("vendor-manifests/vendor.toml"),
        vm.join("vendor.toml"),
    )
    .unwrap();
    let digest = format!("sha256:{}", "c".repeat(64));
    std::fs::write(
        vm.join("images.lock"),
        format!("format = 1\n[[image]]\nreference = \"registry.k8s.io/x/y:v1\"\ndigest = \"{digest}\"\nsources = [\"cluster-api\"]\n"),
    )
    .unwrap();
    let out = ok(&capi_manage()
        .args([
            "images",
            "list",
            "-o",
            "json",
            "--repo",
            root.path().to_str().unwrap(),
        ])
        .output()
        .unwrap());
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let images = doc["images"].as_array().unwrap();
    let y = images
        .iter()
        .find(|i| i["reference"] == "registry.k8s.io/x/y:v1")
        .unwrap();
    assert_eq!(y["digest"], digest.as_str());
    let node = images
        .iter()
        .find(|i| i["sources"][0] == "kind node")
        .unwrap();
    assert!(
        node["reference"]
            .as_str()
            .unwrap()
            .starts_with("docker.io/kindest/node:v1.")
    );
    assert!(node["digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(
        doc["notes"][0].as_str().unwrap().contains("not vendored"),
        "{doc}"
    );
}

// Basic auth against the registry's htpasswd file: no credentials and a wrong password are
// refused; the right ones push and pull the same digest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_then_pull_through_an_htpasswd_registry() {
    let engine = docker::engine().await;
    let reg = registry::Registry::start_with(registry::Auth::Htpasswd).await;
    let src = tempfile::tempdir().unwrap();
    let l0 = src.path();
    std::fs::create_dir_all(l0.join("blobs/sha256")).unwrap();
    let app = registry::imported_image(&engine, l0, &[("etc/app.conf", b"basic\n")], "amd64").await;
    registry::write_layout_index(l0, &[("example.test/capi/basic:v1", app.clone())]);
    let mirror = format!("{}/mirror", reg.host);
    let push = push_args(l0, &mirror);
    let e = failed(&run(&push[..6], false));
    assert!(e.contains("refused"), "without credentials: {e}");
    let mut wrong = capi_manage();
    wrong
        .args(push)
        .env("CAPI_MANAGE_REGISTRY_PASSWORD", "not-the-password")
        .current_dir(std::env::temp_dir());
    let e = failed(&wrong.output().unwrap());
    assert!(e.contains("refused"), "a wrong password: {e}");
    let out = ok(&run(&push, true));
    assert!(out.contains(&format!("{mirror}/capi/basic:v1")), "{out}");

    let dst = tempfile::tempdir().unwrap();
    let l1 = dst.path().join("layout");
    ok(&run(
        &[
            "images",
            "pull",
            "--to",
            l1.to_str().unwrap(),
            "--source-registry",
            &mirror,
            "--username",
            registry::USER,
            "example.test/capi/basic:v1",
        ],
        true,
    ));
    assert_eq!(
        layout_images(&l1)["example.test/capi/basic:v1"],
        app["digest"].as_str().unwrap()
    );
}
