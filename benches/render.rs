//! `capi-manage render` against `kustomize build`, both as whole processes (start-up included,
//! as a user runs them), interleaved in one run: on `clusters/example`, then on a generated
//! config repository (bases with generators, components, replacements, an overlay). Prints the
//! median of each and the ratio. Needs `scripts/test-binaries kustomize`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn kustomize() -> PathBuf {
    common::test_bin("kustomize")
}

fn time(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let out = cmd.output().expect("run");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_capi-manage"));
    let theirs = kustomize();
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30)
        .max(5);
    compare(
        &ours,
        &theirs,
        &root.join("clusters/example"),
        "clusters/example",
        rounds,
    );
    // RENDER_BENCH_REPO=<folder> writes the generated repository there and keeps it (to
    // profile a render of it by hand).
    let repo = tempfile::tempdir().expect("temporary folder");
    let kept = std::env::var_os("RENDER_BENCH_REPO").map(PathBuf::from);
    let top = config_repository(kept.as_deref().unwrap_or(repo.path()));
    compare(
        &ours,
        &theirs,
        &top,
        "a config repository (12 apps, generators, 3 components, replacements)",
        rounds,
    );
}

/// Writes a config repository: `apps/<name>` bases (Deployment, Service, ConfigMap, a
/// configMapGenerator and a secretGenerator each), `components/` (monitoring sidecar, high
/// availability, TLS wiring with replacements) and `overlays/prod` using them all. Returns the
/// overlay's folder.
fn config_repository(root: &Path) -> PathBuf {
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    let apps: Vec<String> = (0..12).map(|i| format!("svc{i:02}")).collect();
    for app in &apps {
        write(
            &format!("apps/{app}/kustomization.yaml"),
            &format!(
                "resources:\n- deployment.yaml\n- service.yaml\nlabels:\n- pairs:\n    app.kubernetes.io/name: {app}\n  includeSelectors: true\nconfigMapGenerator:\n- name: {app}-env\n  literals:\n  - LOG_LEVEL=info\n  - FEATURE_X=false\n  files:\n  - app.properties\nsecretGenerator:\n- name: {app}-db\n  literals:\n  - username={app}\n  - password=secret-{app}\n"
            ),
        );
        write(
            &format!("apps/{app}/app.properties"),
            &format!("name={app}\nthreads=8\ncache.size=128\n"),
        );
        write(
            &format!("apps/{app}/deployment.yaml"),
            &format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {app}\nspec:\n  replicas: 1\n  template:\n    spec:\n      containers:\n      - name: app\n        image: registry.example.com/{app}:1.0.0\n        args: [\"--port=8080\"]\n        ports:\n        - containerPort: 8080\n        env:\n        - name: DOMAIN\n          value: placeholder\n        - name: DB_PASSWORD\n          valueFrom:\n            secretKeyRef:\n              name: {app}-db\n              key: password\n        envFrom:\n        - configMapRef:\n            name: {app}-env\n        resources:\n          requests: {{cpu: 100m, memory: 128Mi}}\n"
            ),
        );
        write(
            &format!("apps/{app}/service.yaml"),
            &format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: {app}\nspec:\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n"
            ),
        );
    }
    write(
        "components/monitoring/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\ncommonAnnotations:\n  prometheus.io/scrape: \"true\"\npatches:\n- target:\n    kind: Deployment\n  patch: |-\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata:\n      name: any\n    spec:\n      template:\n        spec:\n          containers:\n          - name: exporter\n            image: registry.example.com/exporter:0.9\n            ports:\n            - containerPort: 9100\nconfigMapGenerator:\n- name: scrape-config\n  literals:\n  - interval=30s\n",
    );
    write(
        "components/ha/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources:\n- pdb.yaml\npatches:\n- target:\n    kind: Deployment\n  patch: |-\n    - op: replace\n      path: /spec/replicas\n      value: 3\n",
    );
    write(
        "components/ha/pdb.yaml",
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: all\nspec:\n  maxUnavailable: 1\n",
    );
    let mut tls = String::from(
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources:\n- ingress.yaml\nreplacements:\n- source:\n    kind: ConfigMap\n    name: cluster-settings\n    fieldPath: data.domain\n  targets:\n  - select:\n      kind: Ingress\n    fieldPaths:\n    - spec.rules.*.host\n    - spec.tls.0.hosts.0\n    options:\n      delimiter: \".\"\n      index: 1\n  - select:\n      kind: Deployment\n    fieldPaths:\n    - spec.template.spec.containers.[name=app].env.[name=DOMAIN].value\n",
    );
    tls.push_str("- source:\n    kind: Secret\n    name: tls\n  targets:\n  - select:\n      kind: Ingress\n    fieldPaths:\n    - spec.tls.0.secretName\n");
    write("components/tls/kustomization.yaml", &tls);
    let mut ingress = String::from(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: edge\nspec:\n  tls:\n  - hosts: [www.placeholder]\n    secretName: placeholder\n  rules:\n",
    );
    for app in &apps {
        ingress.push_str(&format!(
            "  - host: {app}.placeholder\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend:\n          service:\n            name: {app}\n            port: {{number: 80}}\n"
        ));
    }
    write("components/tls/ingress.yaml", &ingress);
    let mut overlay = String::from(
        "namespace: prod\nnamePrefix: prod-\nlabels:\n- pairs:\n    env: prod\nresources:\n",
    );
    for app in &apps {
        overlay.push_str(&format!("- ../../apps/{app}\n"));
    }
    overlay.push_str("configMapGenerator:\n- name: cluster-settings\n  literals:\n  - domain=prod.example.com\n  - region=eu-1\nsecretGenerator:\n- name: tls\n  type: kubernetes.io/tls\n  literals:\n  - tls.crt=CERT\n  - tls.key=KEY\ncomponents:\n- ../../components/monitoring\n- ../../components/ha\n- ../../components/tls\nimages:\n- name: registry.example.com/exporter\n  newTag: \"1.0\"\nreplacements:\n- source:\n    kind: ConfigMap\n    name: cluster-settings\n    fieldPath: data.region\n  targets:\n  - select:\n      kind: Deployment\n    fieldPaths:\n    - spec.template.metadata.annotations.region\n    options:\n      create: true\n");
    write("overlays/prod/kustomization.yaml", &overlay);
    root.join("overlays/prod")
}

/// Interleaved whole-process runs of both on `dir`, after checking they print the same objects.
fn compare(ours: &Path, theirs: &Path, dir: &Path, what: &str, rounds: usize) {
    // Same output first: a fast wrong answer is no answer.
    let a = Command::new(ours).arg("render").arg(dir).output().unwrap();
    let b = Command::new(theirs).arg("build").arg(dir).output().unwrap();
    assert!(
        a.status.success() && b.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    let parse = |o: &[u8]| -> Vec<serde_json::Value> {
        serde_yaml_ng::Deserializer::from_str(std::str::from_utf8(o).unwrap())
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .filter(|v: &serde_json::Value| !v.is_null())
            .collect()
    };
    assert_eq!(
        parse(&a.stdout),
        parse(&b.stdout),
        "{what}: capi-manage and kustomize disagree"
    );
    let (mut t_ours, mut t_theirs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        t_ours.push(time(Command::new(ours).arg("render").arg(dir)));
        t_theirs.push(time(Command::new(theirs).arg("build").arg(dir)));
    }
    let (m_ours, m_theirs) = (median(t_ours), median(t_theirs));
    println!(
        "render {what} ({} objects), median of {rounds} runs each (whole process):",
        parse(&b.stdout).len()
    );
    println!(
        "  capi-manage render   {:>8.2} ms",
        m_ours.as_secs_f64() * 1e3
    );
    println!(
        "  kustomize build      {:>8.2} ms",
        m_theirs.as_secs_f64() * 1e3
    );
    println!(
        "  ratio kustomize / capi-manage = {:.2}x",
        m_theirs.as_secs_f64() / m_ours.as_secs_f64()
    );
}
