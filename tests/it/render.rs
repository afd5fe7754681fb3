//! The renderer against the real `kustomize build`: every case under tests/render-cases (and
//! every kustomization under clusters/) must render to the same objects in the same order;
//! every case with an `expect-error` file must fail naming the file and field it lists.

use std::path::{Path, PathBuf};
use std::process::Command;

use capi_manage::kube::{ApplyOptions, Discovery, apply};
use capi_manage::manifest::{Object, parse_file, parse_str};
use capi_manage::observe::Silent;
use capi_manage::render::render;
use kube::api::{Api, DynamicObject};
use tokio_util::sync::CancellationToken;

use crate::support::{self, ControlPlane};

fn root() -> PathBuf {
    support::project_root()
}

/// The kustomize binary built by `scripts/test-binaries kustomize`; a missing one fails.
pub fn kustomize() -> PathBuf {
    support::test_bin("kustomize")
}

fn kustomize_build(dir: &Path) -> Result<String, String> {
    let out = Command::new(kustomize())
        .arg("build")
        .arg(dir)
        .output()
        .expect("run kustomize");
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("tests/render-cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

/// Compares one folder; Err describes the difference.
fn compare(dir: &Path) -> Result<(), String> {
    compare_with(dir, kustomize_build(dir))
}

/// Compares our rendering of `dir` with kustomize's output for it.
fn compare_with(dir: &Path, kustomized: Result<String, String>) -> Result<(), String> {
    let expected = kustomized.map_err(|e| format!("kustomize failed: {e}"))?;
    // kustomize keeps objects without an apiVersion.
    let mut read = capi_manage::manifest::ParseOptions::default();
    read.api_version_optional = true;
    let expected = capi_manage::manifest::parse_str_with(&expected, None, read)
        .map_err(|e| format!("kustomize output: {e}"))?;
    let ours = render(dir).map_err(|e| {
        let mut s = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(c) = src {
            s.push_str(&format!(": {c}"));
            src = c.source();
        }
        format!("capi-manage failed: {s}")
    })?;
    let ids =
        |o: &[capi_manage::manifest::Object]| o.iter().map(|x| x.identity()).collect::<Vec<_>>();
    if ids(&expected) != ids(&ours) {
        return Err(format!(
            "order or set differs:\n  kustomize:   {:?}\n  capi-manage: {:?}",
            ids(&expected),
            ids(&ours)
        ));
    }
    for (e, o) in expected.iter().zip(&ours) {
        if e.value != o.value {
            return Err(format!(
                "{} differs:\n--- kustomize\n{}--- capi-manage\n{}",
                e.identity(),
                serde_yaml_ng::to_string(&e.value).unwrap(),
                serde_yaml_ng::to_string(&o.value).unwrap()
            ));
        }
    }
    Ok(())
}

/// `expect-error` lists `file: <suffix of the file path>` and `field: <field>` lines; a
/// `kustomize: <text>` line also requires kustomize to fail on the folder, with `<text>` (may be
/// empty) in its error.
fn check_error(dir: &Path, spec: &str) -> Result<(), String> {
    let msg = match render(dir) {
        Ok(objs) => {
            return Err(format!(
                "rendered {} objects; expected an error",
                objs.len()
            ));
        }
        Err(e) => e.to_string(),
    };
    for line in spec.lines().filter(|l| !l.trim().is_empty()) {
        let (key, want) = line.split_once(':').ok_or("bad expect-error line")?;
        let want = want.trim();
        let ok = match key.trim() {
            "file" => msg.contains(want),
            "field" => msg.contains(&format!("`{want}`")),
            "message" => msg.contains(want),
            "kustomize" => match kustomize_build(dir) {
                Ok(_) => return Err("kustomize builds it: the error is ours alone".into()),
                Err(e) if e.contains(want) => true,
                Err(e) => return Err(format!("kustomize fails otherwise: {e}")),
            },
            other => return Err(format!("unknown expect-error key {other}")),
        };
        if !ok {
            return Err(format!("error {msg:?} does not name {key} {want:?}"));
        }
    }
    Ok(())
}

#[test]
fn corpus_matches_kustomize() {
    kustomize();
    let mut failures = Vec::new();
    let mut compared = 0;
    let mut errors = 0;
    for case in cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let result = match std::fs::read_to_string(case.join("expect-error")) {
            Ok(spec) => {
                errors += 1;
                check_error(&case, &spec)
            }
            Err(_) => {
                compared += 1;
                compare(&case)
            }
        };
        if let Err(e) = result {
            failures.push(format!("== {name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        compared + errors,
        failures.join("\n")
    );
    assert!(
        compared + errors >= 40,
        "the corpus has {} cases",
        compared + errors
    );
}

#[test]
fn repo_clusters_match_kustomize() {
    kustomize();
    let clusters = root().join("clusters");
    let mut dirs = Vec::new();
    let mut stack = vec![clusters];
    while let Some(d) = stack.pop() {
        // A Component builds only inside a kustomization that gives it what it reads
        // (clusters/components: a render case covers each, within a cluster folder).
        if capi_manage::render::is_kustomization_dir(&d) && !is_component(&d) {
            dirs.push(d.clone());
        }
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    assert!(
        dirs.len() >= 2,
        "clusters/ has too few kustomizations: {dirs:?}"
    );
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|d| compare(d).err().map(|e| format!("== {}: {e}", d.display())))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn is_component(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("kustomization.yaml"))
        .is_ok_and(|t| t.lines().any(|l| l.trim() == "kind: Component"))
}

/// The CRDs the example's objects need (Flux's HelmRelease and HelmRepository).
fn flux_crds() -> Vec<Object> {
    [
        "crd-helm.toolkit.fluxcd.io_helmreleases.yaml",
        "crd-source.toolkit.fluxcd.io_helmrepositories.yaml",
    ]
    .iter()
    .flat_map(|f| parse_file(&support::fixtures().join("flux").join(f)).unwrap())
    .collect()
}

#[tokio::test]
async fn rendered_example_applies_cleanly_to_a_real_apiserver() {
    let cp = ControlPlane::start().await;
    let discovery = Discovery::new(cp.client().await);
    let example = root().join("clusters/example");
    let rendered = render(&example).unwrap();
    let mut bundle = flux_crds();
    bundle.extend(rendered.iter().cloned());
    // Bootstrap applies the (plaintext) credentials next to the rendered folder.
    bundle.extend(parse_file(&example.join("credentials.yaml")).unwrap());
    let report = apply(
        &discovery,
        &bundle,
        &ApplyOptions::default(),
        &Silent,
        &CancellationToken::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("apply failed: {e:?}"));
    assert_eq!(report.applied.len(), bundle.len());
    // Every rendered object is on the server as rendered (the fields we set are there).
    for o in &rendered {
        let r = discovery.resolve(&o.gvk()).await.unwrap().unwrap();
        let api: Api<DynamicObject> = match o.namespace() {
            Some(ns) => Api::namespaced_with(discovery.client().clone(), ns, &r.api),
            None => Api::all_with(discovery.client().clone(), &r.api),
        };
        let live = api
            .get(o.name())
            .await
            .unwrap_or_else(|e| panic!("{o}: {e}"));
        let live = serde_json::to_value(&live).unwrap();
        for field in ["spec", "data", "stringData"] {
            if let Some(v) = o.value.get(field) {
                if field == "stringData" {
                    continue; // the server folds it into data
                }
                assert!(
                    subset(v, &live[field]),
                    "{o}: {field} on the server differs:\n{v:#}\nvs\n{:#}",
                    live[field]
                );
            }
        }
    }
    let hr = rendered
        .iter()
        .find(|o| o.kind() == "HelmRelease" && o.name() == "cluster")
        .expect("the cluster HelmRelease");
    assert_eq!(hr.value["spec"]["releaseName"], "example");
    assert_eq!(hr.value["spec"]["valuesFrom"][0]["name"], "example-values");
}

/// Everything in `a` is in `b` (the server may add defaults).
fn subset(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a, b) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => x
            .iter()
            .all(|(k, v)| y.get(k).is_some_and(|w| subset(v, w))),
        (serde_json::Value::Array(x), serde_json::Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| subset(v, w))
        }
        _ => a == b,
    }
}

fn run_cli(args: &[&str]) -> (i32, String, String) {
    let out = support::capi_manage()
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn cli_render_prints_what_kustomize_builds() {
    let (code, stdout, stderr) = run_cli(&["render", "example"]);
    assert_eq!(code, 0, "{stderr}");
    let ours = parse_str(&stdout, None).unwrap();
    let theirs = parse_str(
        &kustomize_build(&root().join("clusters/example")).unwrap(),
        None,
    )
    .unwrap();
    assert_eq!(
        ours.iter().map(|o| &o.value).collect::<Vec<_>>(),
        theirs.iter().map(|o| &o.value).collect::<Vec<_>>()
    );
    // A path works as well as a name.
    let (code, by_path, _) = run_cli(&["render", "tests/render-cases/01-resources-files"]);
    assert_eq!(code, 0);
    assert_eq!(parse_str(&by_path, None).unwrap().len(), 3);
}

/// `render --reorder legacy|none` orders like `kustomize build --reorder ...`, and the two
/// orders differ on this case (so the flag is not ignored).
#[test]
fn cli_render_reorder_matches_kustomize() {
    let dir = "tests/render-cases/02-legacy-order";
    let mut orders = Vec::new();
    for mode in ["legacy", "none"] {
        let (code, stdout, stderr) = run_cli(&["render", "--reorder", mode, dir]);
        assert_eq!(code, 0, "{stderr}");
        let out = Command::new(kustomize())
            .args(["build", "--reorder", mode])
            .arg(root().join(dir))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs = parse_str(std::str::from_utf8(&out.stdout).unwrap(), None).unwrap();
        let ours = parse_str(&stdout, None).unwrap();
        assert_eq!(
            ours.iter().map(|o| &o.value).collect::<Vec<_>>(),
            theirs.iter().map(|o| &o.value).collect::<Vec<_>>(),
            "--reorder {mode}"
        );
        orders.push(ours.iter().map(|o| o.identity()).collect::<Vec<_>>());
    }
    assert_ne!(orders[0], orders[1], "the case must tell the orders apart");
    let (code, _, stderr) = run_cli(&["render", "--reorder", "sideways", dir]);
    assert_ne!(code, 0);
    assert!(stderr.contains("sideways"), "{stderr}");
}

#[test]
fn cli_render_errors_are_one_line_naming_file_and_field() {
    let (code, stdout, stderr) = run_cli(&["render", "tests/render-cases/e05-replacements"]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("e05-replacements/kustomization.yaml")
            && stderr.contains("`replacements[0]`"),
        "{stderr}"
    );
    let (code, _, stderr) = run_cli(&["render", "no-such-cluster"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("clusters/no-such-cluster"), "{stderr}");
}

#[test]
fn cli_plan_checks_the_example_offline_and_lists_the_steps() {
    let (code, stdout, stderr) = run_cli(&["plan", "example"]);
    assert_eq!(code, 0, "{stderr}");
    for want in [
        "ConfigMap capi-self/example-values",
        "Kubernetes 1.33.1",
        "Secret capi-self/example-cloud-credentials",
        "REPLACE_ME",
        "bootstrap steps:",
        "delete the kind cluster",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
}

#[test]
fn cli_plan_rejects_a_cluster_whose_release_ignores_its_values() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("clusters/copy");
    std::fs::create_dir_all(&c).unwrap();
    std::fs::create_dir_all(dir.path().join("clusters/bases")).unwrap();
    let example = root().join("clusters/example");
    for f in ["values.yaml", "credentials.yaml"] {
        std::fs::copy(example.join(f), c.join(f)).unwrap();
    }
    // The shared bases, and a kustomization that forgot to point the release at its values.
    for base in ["cluster", "addons"] {
        let to = dir.path().join("clusters/bases").join(base);
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(root().join("clusters/bases").join(base)).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(
        c.join("kustomization.yaml"),
        "resources:\n- ../bases/addons\n- ../bases/cluster\n- values.yaml\n",
    )
    .unwrap();
    let out = support::capi_manage()
        .args(["plan", "copy"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("clusters/copy/kustomization.yaml")
            && stderr.contains("`patches`")
            && stderr.contains("example-values"),
        "{stderr}"
    );
}

#[test]
fn cli_plan_rejects_mismatched_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("clusters/bad");
    std::fs::create_dir_all(&c).unwrap();
    let example = root().join("clusters/example");
    for f in ["values.yaml", "credentials.yaml"] {
        std::fs::copy(example.join(f), c.join(f)).unwrap();
    }
    std::fs::write(c.join("kustomization.yaml"), "resources:\n- values.yaml\n").unwrap();
    let creds = std::fs::read_to_string(c.join("credentials.yaml"))
        .unwrap()
        .replace("name: example-cloud-credentials", "name: other");
    std::fs::write(c.join("credentials.yaml"), creds).unwrap();
    let out = support::capi_manage()
        .args(["plan", "bad"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("credentials.yaml")
            && stderr.contains("`metadata.name`")
            && stderr.contains("cloudCredentialsSecretName"),
        "{stderr}"
    );
}

/// Real upstream manifests (Flux, CAPI, CAPO, sealed-secrets from ../shared/fixtures) through
/// every transformer at once, in a temporary folder: the renderer must agree with kustomize on
/// large real CRDs, Deployments and RBAC, not only on the hand-written corpus.
#[test]
fn upstream_manifests_match_kustomize() {
    kustomize();
    let mut failures = Vec::new();
    for group in ["flux", "cluster-api", "openstack", "sealed-secrets"] {
        let dir = tempfile::tempdir().unwrap();
        let mut files: Vec<String> = Vec::new();
        for e in std::fs::read_dir(support::fixtures().join(group)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                std::fs::copy(&p, dir.path().join(&name)).unwrap();
                files.push(name);
            }
        }
        files.sort();
        let mut k = String::from(
            "namespace: managed\nnamePrefix: t-\ncommonLabels:\n  suite: upstream\ncommonAnnotations:\n  note: test\nimages:\n- name: ghcr.io/fluxcd/helm-controller\n  newTag: v9.9.9\n- name: ghcr.io/fluxcd/kustomize-controller\n  newName: mirror.example.com/kc\npatches:\n- target:\n    kind: Deployment\n  patch: |-\n    - op: add\n      path: /spec/template/metadata/annotations\n      value: {patched: \"yes\"}\n- target:\n    kind: CustomResourceDefinition\n  patch: |-\n    apiVersion: apiextensions.k8s.io/v1\n    kind: CustomResourceDefinition\n    metadata:\n      name: any\n      labels:\n        crd: \"yes\"\nresources:\n",
        );
        for f in &files {
            k.push_str(&format!("- {f}\n"));
        }
        std::fs::write(dir.path().join("kustomization.yaml"), k).unwrap();
        if let Err(e) = compare(dir.path()) {
            failures.push(format!("== {group}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A small deterministic generator (no dependency for randomness).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// One overlay level with a random mix of features.
fn random_level(rng: &mut Lcg, level: usize) -> String {
    let mut k = String::new();
    if rng.chance(50) {
        k.push_str(&format!("namespace: ns{level}\n"));
    }
    if rng.chance(50) {
        k.push_str(&format!("namePrefix: p{level}-\n"));
    }
    if rng.chance(30) {
        k.push_str(&format!("nameSuffix: -s{level}\n"));
    }
    if rng.chance(40) {
        k.push_str(&format!("commonLabels:\n  l{level}: v{level}\n"));
    }
    if rng.chance(40) {
        let sel = rng.pick(&[
            "includeSelectors: true",
            "includeTemplates: true",
            "includeSelectors: false",
        ]);
        k.push_str(&format!(
            "labels:\n- pairs:\n    m{level}: w{level}\n  {sel}\n"
        ));
    }
    if rng.chance(40) {
        k.push_str(&format!("commonAnnotations:\n  a{level}: b{level}\n"));
    }
    if rng.chance(50) {
        let name = rng.pick(&["nginx", "busybox", "ctrl", "postgres", "store"]);
        let change = rng.pick(&[
            "newTag: \"9\"",
            "newName: mirror.example.com/x",
            "digest: sha256:feed",
            "tagSuffix: -fips",
        ]);
        k.push_str(&format!("images:\n- name: {name}\n  {change}\n"));
    }
    if rng.chance(40) {
        let name = rng.pick(&["web", "ctrl", "store", "db"]);
        k.push_str(&format!(
            "replicas:\n- name: {name}\n  count: {}\n",
            rng.next() % 5
        ));
    }
    let mut gens = String::new();
    if rng.chance(40) {
        let behavior = if level > 0 && rng.chance(50) {
            "merge"
        } else {
            "create"
        };
        let name = if behavior == "merge" {
            "extra".to_string()
        } else {
            format!("gen{level}")
        };
        gens.push_str(&format!(
            "configMapGenerator:\n- name: {name}\n  behavior: {behavior}\n  literals:\n  - k{level}=v\n"
        ));
    }
    if rng.chance(30) {
        gens.push_str(&format!(
            "secretGenerator:\n- name: sec{level}\n  literals:\n  - s=v{level}\n"
        ));
    }
    k.push_str(&gens);
    let mut patches = Vec::new();
    if rng.chance(40) {
        patches.push(format!(
            "- patch: |-\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata:\n      name: web\n    spec:\n      template:\n        spec:\n          containers:\n          - name: side{level}\n            image: busybox\n          volumes:\n          - name: v{level}\n            configMap:\n              name: web-config\n"
        ));
    }
    if rng.chance(40) {
        let kind = rng.pick(&["Deployment", "Service", "ConfigMap", "StatefulSet"]);
        patches.push(format!(
            "- target:\n    kind: {kind}\n  patch: |-\n    - op: add\n      path: /metadata/annotations/j{level}\n      value: \"x\"\n"
        ));
    }
    if rng.chance(30) {
        patches.push(format!(
            "- target:\n    labelSelector: app=web\n  patch: |-\n    apiVersion: v1\n    kind: Any\n    metadata:\n      name: any\n      labels:\n        sel{level}: \"y\"\n"
        ));
    }
    if rng.chance(15) {
        patches.push(
            "- patch: |-\n    $patch: delete\n    apiVersion: v1\n    kind: Service\n    metadata:\n      name: db\n"
                .to_string(),
        );
    }
    if rng.chance(25) {
        let re = rng.pick(&["web|db", "c.*", "store", ".*-config"]);
        patches.push(format!(
            "- target:\n    name: \"{re}\"\n  patch: |-\n    - op: add\n      path: /metadata/annotations/re{level}\n      value: \"{re}\"\n"
        ));
    }
    if rng.chance(20) {
        k.push_str(&format!(
            "patchesStrategicMerge:\n- |-\n  apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: web-config\n  data:\n    psm{level}: \"1\"\n"
        ));
    }
    if rng.chance(15) {
        k.push_str("sortOptions:\n  order: fifo\n");
    }
    if rng.chance(35) {
        k.push_str(&random_replacements(rng, level));
    }
    if rng.chance(30) {
        // A var per level (names must be unique across levels), used in an annotation.
        let (objref, field) = rng
            .pick(&[
                "kind: Service\n    name: web\n    apiVersion: v1|",
                "kind: Deployment\n    name: web\n    apiVersion: apps/v1|spec.replicas",
                "kind: ConfigMap\n    name: web-config\n    apiVersion: v1|data.MODE",
            ])
            .split_once('|')
            .unwrap();
        k.push_str(&format!(
            "vars:\n- name: V{level}\n  objref:\n    {objref}\n"
        ));
        if !field.is_empty() {
            k.push_str(&format!("  fieldref:\n    fieldPath: {field}\n"));
        }
        patches.push(format!(
            "- patch: |-\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata:\n      name: web\n      annotations:\n        var{level}: \"$(V{level})\"\n"
        ));
    }
    if rng.chance(35) {
        k.push_str(&format!("components:\n- ../c{level}\n"));
    }
    if !patches.is_empty() {
        k.push_str("patches:\n");
        for p in patches {
            k.push_str(&p);
        }
    }
    k
}

/// A `replacements` block: a field of a base object into fields of others.
fn random_replacements(rng: &mut Lcg, level: usize) -> String {
    let source = rng.pick(&[
        "kind: Deployment\n    name: web\n    fieldPath: spec.template.spec.containers.[name=web].image",
        "kind: ConfigMap\n    name: web-config\n    fieldPath: data.MODE",
        "kind: Service\n    name: web",
        // Numbers: kustomize copies the text and keeps the target's type.
        "kind: Service\n    name: web\n    fieldPath: spec.ports.0.port",
        "kind: Deployment\n    name: web\n    fieldPath: spec.replicas",
    ]);
    let options = rng.pick(&["", "\n    options:\n      delimiter: \":\"\n      index: 0"]);
    let target = rng.pick(&[
        "select:\n      kind: ConfigMap\n      name: web-config\n    fieldPaths:\n    - data.r{L}\n    options:\n      create: true",
        "select:\n      kind: Deployment\n    reject:\n    - name: ctrl\n    fieldPaths:\n    - spec.template.metadata.annotations.r{L}\n    options:\n      create: true",
        "select:\n      kind: Deployment|StatefulSet\n    fieldPaths:\n    - spec.template.spec.containers.*.env.[name=R{L}].value\n    options:\n      create: true",
        "select:\n      kind: Service\n      name: web\n    fieldPaths:\n    - metadata.labels.r{L}\n    options:\n      create: true",
        "select:\n      kind: Deployment\n      name: web\n    fieldPaths:\n    - spec.replicas",
        "select:\n      kind: Service\n    fieldPaths:\n    - spec.ports.0.name",
    ])
    .replace("{L}", &level.to_string());
    format!("replacements:\n- source:\n    {source}{options}\n  targets:\n  - {target}\n")
}

/// A component for level `level` (used once: its generator names are the level's own).
fn random_component(rng: &mut Lcg, level: usize) -> String {
    let mut k = format!(
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\ncommonAnnotations:\n  comp{level}: \"on\"\n"
    );
    if rng.chance(30) {
        k.push_str(&format!("namePrefix: c{level}-\n"));
    }
    if rng.chance(40) {
        k.push_str(&format!("labels:\n- pairs:\n    cl{level}: x\n"));
    }
    if rng.chance(40) {
        k.push_str(&format!(
            "configMapGenerator:\n- name: cg{level}\n  literals:\n  - c=v{level}\n"
        ));
    }
    if rng.chance(50) {
        k.push_str(&format!(
            "patches:\n- patch: |-\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata:\n      name: web\n    spec:\n      template:\n        spec:\n          containers:\n          - name: web\n            env:\n            - name: FROM_C{level}\n              value: \"1\"\n"
        ));
    }
    if rng.chance(40) {
        k.push_str(&random_replacements(rng, 100 + level));
    }
    k
}

/// Seeds per run: 1 to 30, or to `RENDER_RANDOM_SEEDS` (`=500` searches harder);
/// `RENDER_RANDOM_SEED=N` runs seed N alone (to look at one failure; `RENDER_RANDOM_KEEP=1`
/// keeps its folders).
fn seeds() -> std::ops::RangeInclusive<u64> {
    let var = |name: &str| std::env::var(name).ok().and_then(|s| s.parse::<u64>().ok());
    match var("RENDER_RANDOM_SEED") {
        Some(one) => one..=one,
        None => 1..=var("RENDER_RANDOM_SEEDS").unwrap_or(30),
    }
}

/// Random layered overlays over real cases, each compared with kustomize. Deterministic seed:
/// a failure names the seed and the generated kustomizations.
#[test]
fn random_layered_kustomizations_match_kustomize() {
    kustomize();
    let cases = root().join("tests/render-cases");
    let copy_tree = |from: &Path, to: &Path| {
        fn walk(from: &Path, to: &Path) {
            std::fs::create_dir_all(to).unwrap();
            for e in std::fs::read_dir(from).unwrap() {
                let p = e.unwrap().path();
                let t = to.join(p.file_name().unwrap());
                if p.is_dir() {
                    walk(&p, &t);
                } else {
                    std::fs::copy(&p, &t).unwrap();
                }
            }
        }
        walk(from, to)
    };
    let mut failures = Vec::new();
    let mut compared = 0;
    let total = seeds().count() as u64;
    for seed in seeds() {
        let mut rng = Lcg(seed * 7919);
        // kustomize takes relative paths only: work on a copy of the corpus.
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&cases, &dir.path().join("cases"));
        let mut below: Vec<String> = vec![
            "../cases/43-kitchen-sink/base".into(),
            "../cases/36-service-refs".into(),
            "../cases/48-workloads-common-labels".into(),
            "../cases/55-kind-and-apiservice-skip-prefix".into(),
        ];
        let levels = 1 + (rng.next() % 3) as usize;
        let mut texts = Vec::new();
        for level in 0..levels {
            let d = dir.path().join(format!("l{level}"));
            std::fs::create_dir_all(&d).unwrap();
            let mut k = String::from("resources:\n");
            for b in &below {
                k.push_str(&format!("- {b}\n"));
            }
            let component = random_component(&mut rng, level);
            let c = dir.path().join(format!("c{level}"));
            std::fs::create_dir_all(&c).unwrap();
            std::fs::write(c.join("kustomization.yaml"), &component).unwrap();
            k.push_str(&random_level(&mut rng, level));
            if k.contains(&format!("../c{level}\n")) {
                k.push_str(&format!(
                    "# c{level}:\n# {}\n",
                    component.replace('\n', "\n# ")
                ));
            }
            std::fs::write(d.join("kustomization.yaml"), &k).unwrap();
            texts.push(k);
            below = vec![format!("../l{level}")];
        }
        let top = dir.path().join(format!("l{}", levels - 1));
        // Both must agree, including on failing: compare errors by their presence.
        let theirs = kustomize_build(&top);
        let ours = render(&top);
        let result = match (&theirs, &ours) {
            (Ok(_), Ok(_)) => {
                compared += 1;
                compare_with(&top, theirs.clone())
            }
            (Err(_), Err(_)) => Ok(()),
            (Ok(_), Err(e)) => Err(format!("capi-manage failed where kustomize did not: {e}")),
            (Err(e), Ok(_)) => Err(format!("kustomize failed where capi-manage did not: {e}")),
        };
        if let Err(e) = result {
            // RENDER_RANDOM_KEEP=1 keeps the failing seed's folders to look at.
            let kept = if std::env::var("RENDER_RANDOM_KEEP").is_ok_and(|v| v == "1") {
                format!("(kept in {})\n", dir.keep().display())
            } else {
                String::new()
            };
            failures.push(format!(
                "== seed {seed}: {e}\n{kept}{}",
                texts.join("---\n")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        total,
        failures.join("\n")
    );
    // Most mixes must build: agreeing on errors alone would prove little.
    assert!(
        compared * 3 >= total * 2,
        "only {compared} of {total} mixes built"
    );
}

/// Flux builds without kustomize's root-only restriction: so does `render_with(None)`.
#[test]
fn load_restrictions_none_matches_kustomize_with_the_same_flag() {
    let dir = root().join("tests/render-cases/e07-file-outside-root");
    let out = Command::new(kustomize())
        .args(["build", "--load-restrictor", "LoadRestrictionsNone"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = parse_str(&String::from_utf8(out.stdout).unwrap(), None).unwrap();
    let mut options = capi_manage::render::Options::default();
    options.load_restrictions = capi_manage::render::LoadRestrictions::None;
    let ours = capi_manage::render::render_with(&dir, &options).unwrap();
    assert_eq!(
        ours.iter().map(|o| &o.value).collect::<Vec<_>>(),
        theirs.iter().map(|o| &o.value).collect::<Vec<_>>()
    );
    assert!(render(&dir).is_err(), "the default stays root-only");
}
