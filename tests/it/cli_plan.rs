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
