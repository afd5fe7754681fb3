//! Reading the vendored components one at a time (`components::open`) and installing a unit
//! taken by value (`components::install_unit`), as the bootstrap does to hold one component's
//! objects at a time.

use std::path::Path;
use std::time::Duration;

use capi_manage::components::{
    self, Error, InstallOptions, NAMESPACE_NAME_LABEL, Unit, gate, install_unit,
};
use capi_manage::kube::Discovery;
use capi_manage::manifest::Object;
use capi_manage::observe::Silent;
use kube::api::DynamicObject;
use tokio_util::sync::CancellationToken;

use crate::support::capi::dynamic_api;
use crate::support::release_mirror::{Mirror, release_files, vendor_toml};
use crate::support::{self, ControlPlane, Options};

/// A repository with `vendor-manifests/` vendored from the test mirror's releases.
async fn vendored_repo(dir: &Path) {
    std::fs::create_dir_all(dir.join("vendor-manifests")).unwrap();
    std::fs::write(dir.join("vendor-manifests/vendor.toml"), vendor_toml()).unwrap();
    let mirror = Mirror::start(release_files());
    let options = components::VendorOptions {
        trust_mirror_for_new_assets: true,
        mirror: Some(mirror.base.clone()),
        ..Default::default()
    };
    components::vendor(dir, &options, &Silent, &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{}", support::error_chain(&e)));
}

#[tokio::test]
async fn components_read_one_at_a_time_are_what_load_reads_and_verify_checks_every_file() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    vendored_repo(root).await;

    let all = components::load(root).unwrap().components;
    let files = components::open(root).unwrap();
    assert_eq!(files.len(), all.len());
    assert!(!files.is_empty());
    files.verify().unwrap();
    for (i, c) in files.iter().enumerate() {
        let c = c.unwrap();
        let whole = &all[i];
        assert_eq!(
            (&c.name, &c.version, &c.files),
            (&whole.name, &whole.version, &whole.files)
        );
        assert_eq!(c.objects, whole.objects, "{}", c.name);
    }

    // One changed byte in the last component's file: verify and load refuse it, naming the
    // file; open reads no component file, and the others still read.
    let last = all.last().unwrap();
    let file = root.join(last.files.last().unwrap());
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();
    let tampered = |e: &Error| matches!(e, Error::Tampered { file: f, .. } if *f == file);
    let files = components::open(root).unwrap();
    let e = files.verify().unwrap_err();
    assert!(tampered(&e), "{}", support::error_chain(&e));
    let e = components::load(root).unwrap_err();
    assert!(tampered(&e), "{}", support::error_chain(&e));
    assert_eq!(files.read(0).unwrap().objects, all[0].objects);
    let e = files.read(files.len() - 1).unwrap_err();
    assert!(tampered(&e), "{}", support::error_chain(&e));
}

/// Every object of `objects` as stored now.
async fn stored(discovery: &Discovery, objects: &[Object]) -> Vec<(String, DynamicObject)> {
    let mut out = Vec::new();
    for o in objects {
        let live = dynamic_api(discovery, o)
            .await
            .get(o.name())
            .await
            .unwrap_or_else(|e| panic!("{} readable: {e}", o.identity()));
        out.push((o.identity(), live));
    }
    out
}

#[tokio::test]
async fn install_unit_labels_namespaces_it_owns_and_a_rerun_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    vendored_repo(root).await;
    let flux = components::open(root).unwrap().read(0).unwrap();
    assert_eq!(flux.name, "flux");
    let objects = flux.objects.clone();
    let gated = objects.iter().filter(|o| gate(o.kind()).is_some()).count();
    assert!(gated > 0);

    let cp = ControlPlane::start_with(Options::kwok()).await;
    let discovery = Discovery::new(cp.client().await);
    let cancel = CancellationToken::new();
    let options = InstallOptions {
        timeout: Duration::from_secs(180),
        ..Default::default()
    };
    let unit = || Unit {
        name: "flux".into(),
        objects: objects.clone(),
    };
    let report = install_unit(&discovery, unit(), &options, &Silent, &cancel)
        .await
        .unwrap_or_else(|e| panic!("{}", support::error_chain(&e)));
    assert_eq!(
        (report.name.as_str(), report.objects, report.gated),
        ("flux", objects.len(), gated)
    );

    // The Namespace carries its name label, owned by capi-manage's apply.
    let namespaces: Vec<&Object> = objects.iter().filter(|o| o.kind() == "Namespace").collect();
    assert!(!namespaces.is_empty());
    for (id, ns) in stored(
        &discovery,
        &namespaces.into_iter().cloned().collect::<Vec<_>>(),
    )
    .await
    {
        let owned = ns
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .filter(|f| f.manager.as_deref() == Some(capi_manage::kube::FIELD_MANAGER))
            .any(|f| {
                let fields = serde_json::to_value(&f.fields_v1).unwrap();
                fields["f:metadata"]["f:labels"]
                    .get(format!("f:{NAMESPACE_NAME_LABEL}"))
                    .is_some()
            });
        assert!(owned, "{id}: {:?}", ns.metadata.managed_fields);
    }

    // Re-run: no object outside the Deployments (whose status kwok's pods move) changes its
    // resourceVersion, and no Deployment its generation.
    let before = stored(&discovery, &objects).await;
    install_unit(&discovery, unit(), &options, &Silent, &cancel)
        .await
        .unwrap_or_else(|e| panic!("{}", support::error_chain(&e)));
    let after = stored(&discovery, &objects).await;
    for ((id, b), (_, a)) in before.iter().zip(&after) {
        if b.types.as_ref().is_some_and(|t| t.kind == "Deployment") {
            assert_eq!(b.metadata.generation, a.metadata.generation, "{id}");
        } else {
            assert_eq!(
                b.metadata.resource_version, a.metadata.resource_version,
                "{id}"
            );
        }
    }
}
