//! `capi-manage plan`, run as the real binary: the components and versions it will install.

use crate::support;

fn plan(dir: &std::path::Path, cluster: &str) -> (Option<i32>, String, String) {
    let out = support::capi_manage()
        .args(["plan", cluster])
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `(name, version)` of each `[[component]]` of a vendor.toml, read with the toml crate alone.
fn pinned(text: &str) -> Vec<(String, String)> {
    let doc: toml::Table = text.parse().unwrap();
    doc["component"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["version"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The lines of the section that starts with `components`, up to the next unindented line.
fn components_section(stdout: &str) -> Vec<String> {
    section(stdout, "components ")
}

/// The lines of the section whose heading starts with `heading`.
fn section(stdout: &str, heading: &str) -> Vec<String> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with(heading))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn cli_plan_lists_the_pinned_components_in_install_order() {
    let root = support::project_root();
    let (code, stdout, stderr) = plan(&root, "example");
    assert_eq!(code, Some(0), "{stderr}");
    let text = std::fs::read_to_string(root.join("vendor-manifests/vendor.toml")).unwrap();
    let want: Vec<String> = pinned(&text)
        .iter()
        .map(|(n, v)| format!("{n} {v}"))
        .collect();
    assert!(want.len() >= 2);
    assert_eq!(components_section(&stdout), want, "in:\n{stdout}");
    assert!(
        want.iter()
            .any(|l| l.starts_with("openstack-resource-controller ")),
        "{want:?}"
    );
    // The charts: every HelmRelease of the bases, with the version its file pins.
    let charts = section(&stdout, "charts ");
    let mut pinned_charts = 0;
    for base in ["cluster", "addons"] {
        for e in std::fs::read_dir(root.join("clusters/bases").join(base)).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            for doc in serde_yaml_ng::Deserializer::from_str(&text) {
                let v = <serde_json::Value as serde::Deserialize>::deserialize(doc).unwrap();
                if v["kind"] == "HelmRelease" {
                    let spec = &v["spec"]["chart"]["spec"];
                    let line = format!(
                        "{} {} ",
                        spec["chart"].as_str().unwrap(),
                        spec["version"].as_str().unwrap()
                    );
                    assert!(
                        charts.iter().any(|l| l.starts_with(&line)),
                        "{line:?} not in:\n{stdout}"
                    );
                    pinned_charts += 1;
                }
            }
        }
    }
    assert_eq!(charts.len(), pinned_charts, "{stdout}");

    // Another repository with other pins: plan prints those, not a built-in list.
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&root.join("clusters"), &dir.path().join("clusters"));
    std::fs::create_dir_all(dir.path().join("vendor-manifests")).unwrap();
    let edited = text.replace("\"v2.6.0\"", "\"v2.6.1-test\"");
    assert_ne!(edited, text, "vendor.toml pins ORC v2.6.0");
    std::fs::write(dir.path().join("vendor-manifests/vendor.toml"), &edited).unwrap();
    let (code, stdout, stderr) = plan(dir.path(), "example");
    assert_eq!(code, Some(0), "{stderr}");
    let section = components_section(&stdout);
    assert!(
        section.contains(&"openstack-resource-controller v2.6.1-test".to_string()),
        "{stdout}"
    );

    // Without vendor.toml, plan fails closed: one line naming the file.
    std::fs::remove_file(dir.path().join("vendor-manifests/vendor.toml")).unwrap();
    let (code, stdout, stderr) = plan(dir.path(), "example");
    assert_eq!(code, Some(1), "{stdout}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("vendor-manifests/vendor.toml"), "{stderr}");
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// `plan --egress -o json` in `dir`: the destinations, one JSON object each.
fn egress(dir: &std::path::Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let out = support::capi_manage()
        .args(["plan", "example", "--egress", "-o", "json"])
        .args(extra)
        .env("DOCKER_HOST", "unix:///run/test-docker.sock")
        .current_dir(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "egress")
        .collect()
}

/// `host:port` of the destinations that name a host.
fn endpoints(d: &[serde_json::Value]) -> Vec<String> {
    d.iter()
        .filter(|v| v["host"].is_string())
        .map(|v| format!("{}:{}", v["host"].as_str().unwrap(), v["port"]))
        .collect()
}

/// The registries of the container images in the rendered files under `dir`.
fn rendered_registries(dir: &std::path::Path) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(rendered_registries(&p));
        } else if p.extension().is_some_and(|x| x == "yaml") {
            let text = std::fs::read_to_string(&p).unwrap();
            for line in text.lines() {
                if let Some(image) = line.trim().trim_start_matches("- ").strip_prefix("image: ") {
                    let image = image.trim_matches('"');
                    let first = image.split('/').next().unwrap();
                    if image.contains('/') && (first.contains('.') || first.contains(':')) {
                        out.insert(first.to_string());
                    }
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn cli_plan_egress_lists_each_host_and_only_local_ones_with_mirrors() {
    // A repository with the example cluster and vendored components (from a loopback mirror
    // of the releases, so the manifests hold the upstream image references).
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy_tree(
        &support::project_root().join("clusters"),
        &root.join("clusters"),
    );
    std::fs::create_dir_all(root.join("vendor-manifests")).unwrap();
    std::fs::copy(
        support::project_root().join("vendor-manifests/vendor.toml"),
        root.join("vendor-manifests/vendor.toml"),
    )
    .unwrap();
    let mirror = support::release_mirror::Mirror::start(support::release_mirror::release_files());
    capi_manage::components::vendor(
        root,
        &capi_manage::components::VendorOptions {
            mirror: Some(mirror.base.clone()),
            trust_mirror_for_new_assets: true,
            ..Default::default()
        },
        &capi_manage::observe::Silent,
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap();

    // Upstream: every registry of the rendered images, the node image's registry, the chart
    // repositories of the bases, the git remote with its port, Keystone with its port.
    let git = "ssh://git@git.example.com:2222/fleet.git";
    let d = egress(root, &["--git-url", git]);
    let hosts = endpoints(&d);
    let registries = rendered_registries(&root.join("vendor-manifests"));
    assert!(!registries.is_empty());
    for r in &registries {
        // docker.io is Docker Hub, whose registry API answers at registry-1.docker.io.
        let r = if r == "docker.io" {
            "registry-1.docker.io"
        } else {
            r.as_str()
        };
        let want = if r.contains(':') {
            r.to_string()
        } else {
            format!("{r}:443")
        };
        assert!(hosts.contains(&want), "{want} not in {hosts:?}");
    }
    assert!(
        hosts.contains(&"git.example.com:2222".to_string()),
        "{hosts:?}"
    );
    let keystone = d
        .iter()
        .find(|v| v["purpose"].as_str().unwrap().contains("Keystone"))
        .unwrap();
    assert_eq!(keystone["port"], 5000, "{keystone}");
    for base in [
        "cluster/helmrepository.yaml",
        "addons/addon-provider.yaml",
        "addons/janitor.yaml",
    ] {
        let text = std::fs::read_to_string(root.join("clusters/bases").join(base)).unwrap();
        let url = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("url: "))
            .unwrap();
        let host = url.split("://").nth(1).unwrap().split('/').next().unwrap();
        let charts = d
            .iter()
            .find(|v| v["host"] == host)
            .unwrap_or_else(|| panic!("{host} not in {hosts:?}"));
        assert!(
            charts["purpose"].as_str().unwrap().contains(url),
            "{charts}"
        );
        assert!(
            charts["steps"]
                .as_array()
                .unwrap()
                .contains(&"apply-cluster".into())
        );
    }
    let docker = d.iter().find(|v| v["protocol"] == "unix").unwrap();
    assert!(
        docker["purpose"]
            .as_str()
            .unwrap()
            .contains("/run/test-docker.sock")
    );
    // What only a login or the created cluster tells.
    let later: Vec<&str> = d
        .iter()
        .filter(|v| v["host"].is_null() && v["protocol"] != "unix")
        .map(|v| v["note"].as_str().unwrap())
        .collect();
    assert!(later.iter().any(|n| n.contains("online")), "{later:?}");
    assert!(
        later
            .iter()
            .any(|n| n.contains("after the cluster is created")),
        "{later:?}"
    );
    assert!(
        d.iter()
            .any(|v| v["host"].is_string() && v["local"] == false)
    );

    // Mirrored: images from an internal registry, charts from an internal repository, the git
    // server and the cloud inside: nothing but loopback hosts remains.
    let k = root.join("clusters/example/kustomization.yaml");
    let mut text = std::fs::read_to_string(&k).unwrap();
    text.push_str("- target:\n    kind: HelmRepository\n  patch: |-\n    - op: replace\n      path: /spec/url\n      value: http://127.0.0.1:8080/charts\n");
    std::fs::write(&k, text).unwrap();
    let creds = root.join("clusters/example/credentials.yaml");
    let text = std::fs::read_to_string(&creds)
        .unwrap()
        .replace("https://REPLACE_ME:5000/v3", "https://127.0.0.1:5000/v3");
    std::fs::write(&creds, text).unwrap();
    let d = egress(
        root,
        &[
            "--git-url",
            "ssh://git@127.0.0.1:2222/fleet.git",
            "--image-registry",
            "127.0.0.1:5000/mirror",
            "--node-image",
            "127.0.0.1:5000/mirror/kindest/node:v1.33.1",
        ],
    );
    let remote: Vec<&serde_json::Value> = d
        .iter()
        .filter(|v| v["host"].is_string() && v["local"] != true)
        .collect();
    assert!(remote.is_empty(), "{remote:?}");
    let hosts = endpoints(&d);
    for want in ["127.0.0.1:5000", "127.0.0.1:8080", "127.0.0.1:2222"] {
        assert!(hosts.contains(&want.to_string()), "{want} not in {hosts:?}");
    }
    // Still said: what only a login or the created cluster tells.
    let later: Vec<&str> = d
        .iter()
        .filter(|v| v["host"].is_null() && v["local"] == false)
        .map(|v| v["note"].as_str().unwrap())
        .collect();
    assert_eq!(later.len(), 3, "{later:?}");
    for said in [
        "online",
        "after the cluster is created",
        "not known offline",
    ] {
        assert!(later.iter().any(|n| n.contains(said)), "{said}: {later:?}");
    }

    // The kind node with its own mirrors (as `bootstrap --registry-mirror`): it pulls the
    // component images from loopback only; the new cluster still from the registries.
    let kind_pulls = |d: &[serde_json::Value]| -> Vec<String> {
        d.iter()
            .filter(|v| {
                v["steps"]
                    .as_array()
                    .unwrap()
                    .contains(&"kind-components".into())
            })
            .map(|v| format!("{}:{} local={}", v["host"], v["port"], v["local"]))
            .collect()
    };
    let d = egress(
        root,
        &[
            "--registry-mirror",
            "docker.io=http://127.0.0.1:5001",
            "--registry-mirror",
            "_default=http://127.0.0.1:5002/v2",
        ],
    );
    let pulls = kind_pulls(&d);
    assert!(!pulls.is_empty());
    assert!(pulls.iter().all(|p| p.ends_with("local=true")), "{pulls:?}");
    let new_cluster: Vec<&serde_json::Value> = d
        .iter()
        .filter(|v| {
            v["steps"]
                .as_array()
                .unwrap()
                .contains(&"target-components".into())
        })
        .collect();
    for r in &registries {
        let r = if r == "docker.io" {
            "registry-1.docker.io"
        } else {
            r.as_str()
        };
        assert!(
            new_cluster.iter().any(|v| v["host"] == r),
            "{r} not pulled from by the new cluster: {new_cluster:?}"
        );
    }
    // With the images loaded into the node (`bootstrap --images`), it pulls none.
    let d = egress(root, &["--images", root.to_str().unwrap()]);
    assert_eq!(kind_pulls(&d), Vec::<String>::new());

    // Text: one line per destination.
    let out = support::capi_manage()
        .args(["plan", "example", "--egress", "--git-url", git])
        .current_dir(root)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("git.example.com:2222 ssh"), "{stdout}");
}
