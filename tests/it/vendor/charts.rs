//! `vendor`'s chart pins: the clusters' charts served by a Helm repository on loopback, their
//! archives packaged from the upstream fixtures.

use std::path::Path;

use capi_manage::components::{self, ChecksumStatus, Error};

use super::{options, repo, run, sha256, snapshot};
use crate::support;
use crate::support::release_mirror::{Mirror, release_files};

/// A Helm repository on loopback serving the fixture charts packaged once here, with an
/// `index.yaml` giving relative URLs (as `helm repo index` writes them) and no digest, so that
/// only the lock can catch a changed archive.
fn chart_repo() -> (Mirror, Vec<(String, String, Vec<u8>)>) {
    let mut files = std::collections::HashMap::new();
    let mut entries = String::new();
    let mut charts = Vec::new();
    for c in support::helm_repo::fixture_charts() {
        let file = format!("{}-{}.tgz", c.name, c.version);
        let tgz = support::helm_repo::package(&c);
        entries.push_str(&format!(
            "  {}:\n  - name: {}\n    version: {}\n    urls: [{file}]\n",
            c.name, c.name, c.version
        ));
        files.insert(format!("/{file}"), tgz.clone());
        charts.push((c.name.to_string(), c.version.to_string(), tgz));
    }
    files.insert(
        "/index.yaml".into(),
        format!("apiVersion: v1\nentries:\n{entries}").into_bytes(),
    );
    (Mirror::start(files), charts)
}

#[tokio::test]
async fn charts_are_recorded_with_their_sha256_and_a_flipped_byte_is_refused() {
    let mirror = Mirror::start(release_files());
    let (helm, charts) = chart_repo();
    let repo = repo();
    let root = repo.path();
    let mut opts = options(&mirror);
    opts.charts = charts
        .iter()
        .map(|(name, version, _)| components::ChartSource {
            name: name.clone(),
            version: version.clone(),
            repository: helm.base.trim_end_matches('/').to_string(),
            plain_http: false,
        })
        .collect();

    let report = run(root, &opts).await.unwrap();
    assert_eq!(report.charts.len(), charts.len());
    assert!(
        report
            .charts
            .iter()
            .all(|c| c.checksum == ChecksumStatus::Recorded)
    );
    // The lock, read as plain TOML: one [[chart]] per chart with the archive's sha256.
    let lock: toml::Table = std::fs::read_to_string(root.join("vendor-manifests/vendor.lock"))
        .unwrap()
        .parse()
        .unwrap();
    let locked = lock["chart"].as_array().unwrap();
    assert_eq!(locked.len(), charts.len());
    for (name, version, tgz) in &charts {
        let entry = locked
            .iter()
            .find(|c| c["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("{name} not in the lock"));
        assert_eq!(entry["version"].as_str(), Some(version.as_str()));
        assert_eq!(
            entry["sha256"].as_str(),
            Some(sha256(tgz).as_str()),
            "{name}"
        );
        assert_eq!(entry["bytes"].as_integer(), Some(tgz.len() as i64));
        assert_eq!(
            entry["file"].as_str(),
            Some(format!("{name}-{version}.tgz").as_str())
        );
        assert_eq!(
            entry["repository"].as_str(),
            Some(helm.base.trim_end_matches('/'))
        );
    }

    // Again: verified, nothing changes.
    let before = snapshot(root);
    let report = run(root, &opts).await.unwrap();
    assert!(report.unchanged(), "{:?}", report.charts);
    assert_eq!(snapshot(root), before);

    // One flipped byte in a served archive: refused, naming the chart; nothing written.
    let (name, version, tgz) = &charts[0];
    let path = format!("/{name}-{version}.tgz");
    let mut flipped = tgz.clone();
    let i = flipped.len() / 2;
    flipped[i] ^= 0x01;
    helm.set(&path, flipped.clone());
    let err = run(root, &opts).await.unwrap_err();
    match &err {
        Error::Checksum {
            component,
            expected,
            actual,
            ..
        } => {
            assert!(component.contains(name.as_str()), "{component}");
            assert_eq!(expected, &sha256(tgz));
            assert_eq!(actual, &sha256(&flipped));
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
    assert_eq!(snapshot(root), before);

    // An index whose digest disagrees with the archive: refused too.
    helm.set(&path, tgz.clone());
    let index = String::from_utf8(helm.get("/index.yaml")).unwrap();
    let with_digest = index.replacen(
        &format!("    urls: [{name}-{version}.tgz]\n"),
        &format!(
            "    urls: [{name}-{version}.tgz]\n    digest: {}\n",
            sha256(&flipped)
        ),
        1,
    );
    assert_ne!(with_digest, index);
    helm.set("/index.yaml", with_digest.into_bytes());
    let err = run(root, &opts).await.unwrap_err().to_string();
    assert!(
        err.contains("digest") && err.contains(name.as_str()),
        "{err}"
    );
    assert_eq!(snapshot(root), before);
    helm.set("/index.yaml", index.into_bytes());

    // A chart the index does not have at the pinned version: refused, naming it.
    opts.charts[0].version = "9.9.9".into();
    let err = run(root, &opts).await.unwrap_err().to_string();
    assert!(
        err.contains("9.9.9") && err.contains(name.as_str()),
        "{err}"
    );
    assert_eq!(snapshot(root), before);
}

#[test]
fn cli_vendor_pins_the_charts_of_the_cluster_folders() {
    let mirror = Mirror::start(release_files());
    let (helm, charts) = chart_repo();
    let repo = repo();
    let root = repo.path();
    // The example cluster, its three HelmRepositories pointed at the loopback repository.
    copy_dir(
        &support::project_root().join("clusters"),
        &root.join("clusters"),
    );
    let k = root.join("clusters/example/kustomization.yaml");
    let mut text = std::fs::read_to_string(&k).unwrap();
    text.push_str(&format!(
        "- target:\n    kind: HelmRepository\n  patch: |-\n    - op: replace\n      path: /spec/url\n      value: {}\n",
        helm.base.trim_end_matches('/')
    ));
    std::fs::write(&k, text).unwrap();
    let out = support::capi_manage()
        .args(["vendor", "--trust-mirror", "--mirror", &mirror.base])
        .current_dir(root)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (name, version, tgz) in &charts {
        let line = format!("chart {name} {version}\t");
        let l = stdout
            .lines()
            .find(|l| l.starts_with(&line))
            .unwrap_or_else(|| panic!("{line:?} not in:\n{stdout}"));
        assert!(
            l.contains(&format!("sha256 {} recorded", sha256(tgz))),
            "{l}"
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}
