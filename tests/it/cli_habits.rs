//! The habits users bring from flux, kind, clusterctl and kubeseal, checked on the real binary:
//! durations such as `10m`, `KIND_CLUSTER_NAME`, `--image`, `--retain`, `completion`,
//! `version -o json`, `-v N` and `-q`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::git_server::{self, git};
use crate::support::{capi_manage, project_root};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A work repository with cluster `prod` (from clusters/example, committed) whose credentials
/// are filled in.
fn cluster_repo(dir: &Path) -> PathBuf {
    let work = git_server::work_repo(dir, "work");
    let root = project_root();
    copy_dir(&root.join("clusters/bases"), &work.join("clusters/bases"));
    copy_dir(
        &root.join("vendor-manifests"),
        &work.join("vendor-manifests"),
    );
    let prod = work.join("clusters/prod");
    copy_dir(&root.join("clusters/example"), &prod);
    for f in ["kustomization.yaml", "values.yaml"] {
        let text = std::fs::read_to_string(prod.join(f)).unwrap();
        std::fs::write(prod.join(f), text.replace("example", "prod")).unwrap();
    }
    std::fs::copy(root.join(".gitignore"), work.join(".gitignore")).unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "Add cluster prod"]);
    git(
        &work,
        &[
            "remote",
            "add",
            "origin",
            "git@git.example.com:org/config.git",
        ],
    );
    std::fs::write(
        prod.join("credentials.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: prod-cloud-credentials\n  namespace: capi-self\n  labels:\n    addons.stackhpc.com/watch: \"true\"\n  annotations:\n    sealedsecrets.bitnami.com/managed: \"true\"\ntype: Opaque\nstringData:\n  clouds.yaml: |\n    clouds:\n      openstack:\n        auth:\n          auth_url: https://keystone.example.com:5000/v3\n          application_credential_id: 0a1b2c\n          application_credential_secret: s3cr3t\n        region_name: RegionOne\n        interface: public\n        identity_api_version: 3\n        auth_type: v3applicationcredential\n",
    )
    .unwrap();
    // What teardown starts from: the self-managed cluster's kubeconfig (its server refuses
    // connections).
    write_kubeconfig(&prod.join("kubeconfig"));
    work
}

/// A kubeconfig whose API server on loopback refuses connections.
fn write_kubeconfig(path: &Path) {
    std::fs::write(
        path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n",
            refused_port()
        ),
    )
    .unwrap();
}

/// A loopback port nothing listens on: connections are refused at once.
fn refused_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `capi-manage <args>` in `work`, with no git or kind settings from the machine.
fn in_repo(work: &Path, home: &Path, args: &[&str]) -> Command {
    let mut cmd = capi_manage();
    cmd.args(args)
        .current_dir(work)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env_remove("KIND_CLUSTER_NAME")
        .env_remove("DOCKER_HOST")
        .stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> (Option<i32>, String, String) {
    let out: Output = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A Docker engine address on loopback that refuses connections.
static DOCKER: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("tcp://127.0.0.1:{}", refused_port()));

/// `bootstrap prod` (or `teardown prod`) against a Docker engine that refuses connections, with
/// `extra` flags: it gets past the parser and fails at the kind step.
fn bootstrap_refused(work: &Path, home: &Path, command: &str, extra: &[&str]) -> Command {
    let docker = &*DOCKER;
    let mut args = vec![
        command,
        "prod",
        "--yes",
        "--skip-cloud-preflight",
        "--docker-host",
        docker,
    ];
    args.extend_from_slice(extra);
    in_repo(work, home, &args)
}

#[test]
fn durations_are_written_as_flux_and_kind_write_them() {
    let dir = tempfile::tempdir().unwrap();
    let work = cluster_repo(dir.path());
    for (command, timeouts) in [
        (
            "bootstrap",
            ["--timeout", "10m", "--cluster-timeout", "1h30m"],
        ),
        (
            "bootstrap",
            ["--timeout", "600", "--cluster-timeout", "90s"],
        ),
        ("teardown", ["--timeout", "1.5h", "--cluster-timeout", "2h"]),
    ] {
        let (code, _, stderr) = run(&mut bootstrap_refused(
            &work,
            dir.path(),
            command,
            &timeouts,
        ));
        assert_eq!(code, Some(1), "{command} {timeouts:?}: {stderr}");
        assert!(
            stderr.contains(DOCKER.as_str()),
            "{command} {timeouts:?}: the Docker engine is reached: {stderr}"
        );
    }
    for bad in ["soon", "10x", "m", ""] {
        let (code, _, stderr) = run(&mut bootstrap_refused(
            &work,
            dir.path(),
            "bootstrap",
            &["--timeout", bad],
        ));
        assert_eq!(code, Some(2), "--timeout {bad:?}: {stderr}");
        assert!(stderr.contains("--timeout"), "{bad:?}: {stderr}");
    }
}

#[test]
fn kind_cluster_name_comes_from_the_environment_and_the_flag_wins() {
    let dir = tempfile::tempdir().unwrap();
    let work = cluster_repo(dir.path());
    // An invalid name from the environment is refused naming it: the variable is read.
    let (code, _, stderr) =
        run(bootstrap_refused(&work, dir.path(), "bootstrap", &[])
            .env("KIND_CLUSTER_NAME", "From_Env"));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("invalid cluster name \"From_Env\""),
        "{stderr}"
    );
    // The flag wins over the environment: the valid name passes and the engine is reached.
    let (code, _, stderr) = run(bootstrap_refused(
        &work,
        dir.path(),
        "bootstrap",
        &["--kind-name", "from-flag"],
    )
    .env("KIND_CLUSTER_NAME", "From_Env"));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("From_Env"), "{stderr}");
    assert!(stderr.contains(DOCKER.as_str()), "{stderr}");
    // And teardown reads it too.
    let (code, _, stderr) =
        run(bootstrap_refused(&work, dir.path(), "teardown", &[])
            .env("KIND_CLUSTER_NAME", "From_Env"));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("From_Env"), "{stderr}");
}

/// `--retain` and `--keep-kind` are accepted by both commands (what the kept cluster looks like
/// after a successful run is the end-to-end test's).
#[test]
fn retain_and_keep_kind_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let work = cluster_repo(dir.path());
    for command in ["bootstrap", "teardown"] {
        for flag in ["--retain", "--keep-kind"] {
            let (code, _, stderr) =
                run(&mut bootstrap_refused(&work, dir.path(), command, &[flag]));
            assert_eq!(code, Some(1), "{command} {flag}: {stderr}");
            assert!(
                stderr.contains(DOCKER.as_str()),
                "{command} {flag}: {stderr}"
            );
        }
    }
    let (code, _, stderr) = run(&mut bootstrap_refused(
        &work,
        dir.path(),
        "bootstrap",
        &["--retain=maybe"],
    ));
    assert_eq!(code, Some(2), "{stderr}");
}

/// `--image` as kind spells it, and `--node-image`, reach the real Docker engine, which tries
/// to pull the image from a registry on loopback that refuses connections; the error names the
/// image and the flag, and no container exists afterwards. Uses dockerd: run under
/// `flock /work/docker.lock`.
#[test]
fn image_is_kinds_name_for_node_image() {
    let dir = tempfile::tempdir().unwrap();
    let work = cluster_repo(dir.path());
    let image = format!("127.0.0.1:{}/capi-manage-habits/node:v0", refused_port());
    for flag in ["--image", "--node-image"] {
        let kind_name = "capi-manage-habits-image";
        let mut cmd = in_repo(
            &work,
            dir.path(),
            &[
                "bootstrap",
                "prod",
                "--yes",
                "--skip-cloud-preflight",
                "--kind-name",
                kind_name,
                flag,
                &image,
            ],
        );
        let (code, _, stderr) = run(&mut cmd);
        assert_eq!(code, Some(1), "{flag}: {stderr}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(last.contains(&image), "{flag}: {stderr}");
        assert!(last.contains("--node-image"), "{flag}: {stderr}");
        let ps = Command::new("docker")
            .args(["ps", "-a", "--format", "{{.Names}}"])
            .output()
            .unwrap();
        assert!(ps.status.success());
        assert!(
            !String::from_utf8_lossy(&ps.stdout).contains(kind_name),
            "{flag}: a container was created"
        );
    }
}

#[test]
fn completion_is_the_command_and_completions_its_alias() {
    let (code, script, stderr) = run(capi_manage().args(["completion", "bash"]));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(script.contains("capi-manage"), "{script}");
    let (code, alias, stderr) = run(capi_manage().args(["completions", "bash"]));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(script, alias);
    let (_, help, _) = run(capi_manage().arg("--help"));
    assert!(help.contains("completion "), "{help}");
    assert!(help.contains("version "), "{help}");
}

/// The charts the HelmReleases under clusters/bases pin, rendered by the library.
fn base_charts(root: &Path) -> Vec<serde_json::Value> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(root.join("clusters/bases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("kustomization.yaml").is_file())
        .collect();
    folders.sort();
    folders
        .iter()
        .flat_map(|f| capi_manage::components::chart_pins(&capi_manage::render::render(f).unwrap()))
        .map(|c| serde_json::json!({"release": c.release, "chart": c.chart, "version": c.version}))
        .collect()
}

#[test]
fn version_lists_the_pinned_components_and_charts() {
    let dir = tempfile::tempdir().unwrap();
    let work = cluster_repo(dir.path());
    let (code, stdout, stderr) = run(&mut in_repo(&work, dir.path(), &["version", "-o", "json"]));
    assert_eq!(code, Some(0), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
    let pins =
        capi_manage::components::Pins::read(&work.join("vendor-manifests/vendor.toml")).unwrap();
    let expected: Vec<serde_json::Value> = pins
        .versions()
        .into_iter()
        .map(|(name, version)| serde_json::json!({"name": name, "version": version}))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(doc["components"], serde_json::Value::from(expected));
    let charts = base_charts(&work);
    assert!(
        charts
            .iter()
            .any(|c| c["chart"] == "openstack-cluster" && c["version"] != "*"),
        "{charts:?}"
    );
    assert_eq!(doc["charts"], serde_json::Value::from(charts));

    // A changed pin shows at once.
    let toml = work.join("vendor-manifests/vendor.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let sealed = pins.version_of("sealed-secrets").unwrap();
    std::fs::write(&toml, text.replace(sealed, "v9.9.9")).unwrap();
    let (code, stdout, stderr) = run(&mut in_repo(&work, dir.path(), &["version"]));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.starts_with(&format!("capi-manage {}\n", env!("CARGO_PKG_VERSION"))),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("sealed-secrets") && l.ends_with("v9.9.9")),
        "{stdout}"
    );

    // Outside a repository: the binary's version only.
    let outside = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(capi_manage()
        .args(["version", "-o", "json"])
        .current_dir(outside.path()));
    assert_eq!(code, Some(0), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["components"], serde_json::json!([]));
}

/// A Secret sealed offline reports the certificate it used on stderr; `-q` leaves only the
/// output, `-v N` (kind's form) turns on the library's debug and trace logs.
#[test]
fn quiet_prints_only_errors_and_v_n_sets_the_level() {
    let dir = tempfile::tempdir().unwrap();
    let cert = crate::seal::keys().cert.clone();
    let secret = dir.path().join("secret.yaml");
    std::fs::write(
        &secret,
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: n\nstringData:\n  k: v\n",
    )
    .unwrap();
    let seal = |flags: &[&str]| {
        let mut cmd = capi_manage();
        cmd.args(flags)
            .arg("seal")
            .arg(&secret)
            .arg("--cert")
            .arg(&cert)
            .env_remove("RUST_LOG");
        run(&mut cmd)
    };
    let (code, plain, stderr) = seal(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("sealing with certificate"), "{stderr}");
    assert!(
        !stderr.contains("DEBUG") && !stderr.contains("TRACE"),
        "{stderr}"
    );
    let (code, quiet, stderr) = seal(&["-q"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stderr, "");
    assert!(quiet.contains("kind: SealedSecret") && plain.contains("kind: SealedSecret"));
    // An error still shows with -q.
    let (code, _, stderr) = run(capi_manage()
        .args(["-q", "seal", "/nonexistent/secret.yaml", "--cert"])
        .arg(&cert));
    assert_eq!(code, Some(1));
    assert!(stderr.starts_with("error: "), "{stderr}");

    // A request to an API server that refuses connections: kube's client logs at debug and
    // trace level.
    let kubeconfig = dir.path().join("kubeconfig");
    write_kubeconfig(&kubeconfig);
    let dry_run = |flags: &[&str]| {
        let mut cmd = capi_manage();
        cmd.args(flags)
            .args(["move", "--dry-run", "--kubeconfig"])
            .arg(&kubeconfig)
            .env_remove("RUST_LOG");
        run(&mut cmd)
    };
    for flags in [
        &["-v", "2"][..],
        &["-v2"],
        &["-v=2"],
        &["-vv"],
        &["-v", "3"],
    ] {
        let (code, _, stderr) = dry_run(flags);
        assert_eq!(code, Some(1), "{flags:?}: {stderr}");
        assert!(stderr.contains("TRACE"), "{flags:?}: {stderr}");
    }
    for flags in [&["-v", "1"][..], &["-v"], &[]] {
        let (code, _, stderr) = dry_run(flags);
        assert_eq!(code, Some(1), "{flags:?}: {stderr}");
        assert!(!stderr.contains("TRACE"), "{flags:?}: {stderr}");
    }
    let (code, _, stderr) = dry_run(&["-q"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    let (code, _, stderr) = seal(&["-q", "-v", "2"]);
    assert_eq!(code, Some(2), "-q with -v is bad usage: {stderr}");
}

/// `kubeconfig` with contexts added: `name` → (cluster and user of context `test`, namespace),
/// and `current` as current-context.
fn with_contexts(kubeconfig: &Path, to: &Path, contexts: &[(&str, Option<&str>)], current: &str) {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let mut doc: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    let base = doc["contexts"][0]["context"].clone();
    for (name, namespace) in contexts {
        let mut context = base.clone();
        match namespace {
            Some(ns) => context["namespace"] = (*ns).into(),
            None => {
                context.as_object_mut().unwrap().remove("namespace");
            }
        }
        doc["contexts"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"name": name, "context": context}));
    }
    doc["current-context"] = current.into();
    std::fs::write(to, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
}

async fn output(cmd: Command) -> (Option<i32>, String, String) {
    let mut cmd = cmd;
    tokio::task::spawn_blocking(move || run(&mut cmd))
        .await
        .unwrap()
}

/// clusterctl's flag names for `move`: --kubeconfig, --kubeconfig-context, --to-kubeconfig,
/// --to-kubeconfig-context; the namespace is the context's unless -n says otherwise, and
/// --dry-run needs no target. Two real kube-apiservers with Cluster API's CRDs and webhooks.
#[tokio::test]
async fn move_takes_clusterctls_flags() {
    use crate::support::capi::{CAPI, NS, api, cluster_graph, management_cluster};
    let ((src_cp, src), (dst_cp, dst)) = tokio::join!(management_cluster(), management_cluster());
    cluster_graph(&src, "c1").await;
    let dir = tempfile::tempdir().unwrap();
    // Current context: one whose namespace holds nothing; `src` names no namespace.
    let from = dir.path().join("from");
    with_contexts(
        src_cp.kubeconfig_path(),
        &from,
        &[("src", None), ("elsewhere", Some("elsewhere"))],
        "elsewhere",
    );
    // The target's current context is not the one to use.
    let to = dir.path().join("to");
    with_contexts(
        dst_cp.kubeconfig_path(),
        &to,
        &[("dst", Some("default"))],
        "dst",
    );
    let bogus = std::fs::read_to_string(&to)
        .unwrap()
        .replace("current-context: dst", "current-context: nowhere");
    std::fs::write(&to, bogus).unwrap();

    let planned = format!("Cluster {NS}/c1");
    let dry_run = |extra: &[&str]| {
        let mut cmd = capi_manage();
        cmd.args(["move", "--dry-run", "--kubeconfig"])
            .arg(&from)
            .args(extra);
        cmd
    };
    // The context's namespace, as clusterctl takes it: nothing there.
    let (code, stdout, stderr) = output(dry_run(&[])).await;
    assert!(!stdout.contains(&planned), "{code:?} {stdout} {stderr}");
    // A context without a namespace: bootstrap's namespace.
    let (code, stdout, stderr) = output(dry_run(&["--kubeconfig-context", "src"])).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains(&planned), "{stdout}");
    // -n wins over the context.
    let (code, stdout, stderr) = output(dry_run(&["--namespace", NS])).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains(&planned), "{stdout}");
    // The dry run moved nothing.
    assert!(
        api(&dst, CAPI, "Cluster")
            .await
            .get_opt("c1")
            .await
            .unwrap()
            .is_none()
    );

    let mut cmd = capi_manage();
    cmd.args(["move", "--kubeconfig"])
        .arg(&from)
        .args(["--kubeconfig-context", "src", "--to-kubeconfig"])
        .arg(&to)
        .args(["--to-kubeconfig-context", "dst", "-n", NS]);
    let (code, stdout, stderr) = output(cmd).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains(&planned), "{stdout}");
    assert!(
        api(&dst, CAPI, "Cluster")
            .await
            .get_opt("c1")
            .await
            .unwrap()
            .is_some()
    );
}

fn config_map(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\ndata:\n  key: {value}\n"
    )
}

/// kubectl's apply flags: -R, -k, --dry-run=server, --field-manager, --force-conflicts. A real
/// kube-apiserver.
#[tokio::test]
async fn apply_takes_kubectls_flags() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let cp = crate::support::ControlPlane::start().await;
    let cms: ::kube::Api<ConfigMap> = ::kube::Api::namespaced(cp.client().await, "default");
    let kubeconfig = cp.kubeconfig_path().to_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("nested")).unwrap();
    std::fs::write(tree.join("top.yaml"), config_map("top", "one")).unwrap();
    std::fs::write(tree.join("nested/deep.yaml"), config_map("deep", "one")).unwrap();
    let tree_s = tree.to_str().unwrap().to_string();
    let apply = |args: &[&str]| {
        let mut cmd = capi_manage();
        cmd.arg("apply")
            .args(args)
            .args(["--kubeconfig", &kubeconfig]);
        output(cmd)
    };
    let value = |cm: Option<ConfigMap>| cm.and_then(|c| c.data).and_then(|d| d.get("key").cloned());

    // A server dry run stores nothing, and the server does check: a bad object fails.
    let (code, _, stderr) = apply(&["-R", "-f", &tree_s, "--dry-run=server"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("dry run"), "{stderr}");
    assert!(cms.get_opt("top").await.unwrap().is_none());
    assert!(cms.get_opt("deep").await.unwrap().is_none());
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, config_map("Not_A_Name", "x")).unwrap();
    let (code, _, stderr) = apply(&["-f", bad.to_str().unwrap(), "--dry-run=server"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("Not_A_Name"), "{stderr}");

    // Without -R only the folder's own files; with it the subfolders' too.
    let (code, _, stderr) = apply(&["-f", &tree_s]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(cms.get_opt("top").await.unwrap().is_some());
    assert!(cms.get_opt("deep").await.unwrap().is_none());
    let (code, _, stderr) = apply(&["--recursive", "-f", &tree_s]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(cms.get_opt("deep").await.unwrap().is_some());

    // -k renders a kustomization first.
    let k = dir.path().join("k");
    std::fs::create_dir_all(&k).unwrap();
    std::fs::write(k.join("cm.yaml"), config_map("rendered", "one")).unwrap();
    std::fs::write(
        k.join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: from-k-\nresources:\n- cm.yaml\n",
    )
    .unwrap();
    let (code, _, stderr) = apply(&["-k", k.to_str().unwrap()]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(cms.get_opt("from-k-rendered").await.unwrap().is_some());

    // --field-manager names the owner; another manager's change conflicts unless forced.
    let top = tree.join("top.yaml");
    let top_s = top.to_str().unwrap().to_string();
    std::fs::write(&top, config_map("top", "two")).unwrap();
    let (code, _, stderr) = apply(&["-f", &top_s, "--field-manager", "someone-else"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let managers: Vec<String> = cms
        .get("top")
        .await
        .unwrap()
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.contains(&"someone-else".to_string()),
        "{managers:?}"
    );
    std::fs::write(&top, config_map("top", "three")).unwrap();
    let (code, _, stderr) = apply(&["-f", &top_s, "--force-conflicts=false"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.to_lowercase().contains("conflict"), "{stderr}");
    assert_eq!(
        value(cms.get_opt("top").await.unwrap()).as_deref(),
        Some("two")
    );
    let (code, _, stderr) = apply(&["-f", &top_s, "--force-conflicts"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        value(cms.get_opt("top").await.unwrap()).as_deref(),
        Some("three")
    );
}

/// bootstrap and rotate name their git flags alike; rotate's former names still work.
#[test]
fn bootstrap_and_rotate_share_their_git_flags() {
    let flags = [
        "--git-url",
        "--message",
        "--author-name",
        "--author-email",
        "--git-token-stdin",
        "--ssh-identity",
        "--known-hosts",
        "--accept-new-host-key",
        "--no-agent",
    ];
    for command in ["bootstrap", "rotate"] {
        let (code, help, stderr) = run(capi_manage().args([command, "--help"]));
        assert_eq!(code, Some(0), "{stderr}");
        for flag in flags {
            assert!(
                help.contains(&format!("{flag} ")),
                "{command} lacks {flag}: {help}"
            );
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let work = cluster_repo(dir.path());
    let cert = crate::seal::keys().cert.to_str().unwrap().to_string();
    for flag in ["--git-url", "--remote-url"] {
        let url = format!("http://127.0.0.1:{}/config.git", refused_port());
        let (code, _, stderr) = run(&mut in_repo(
            &work,
            dir.path(),
            &["rotate", "prod", "--cert", &cert, flag, &url],
        ));
        assert_eq!(code, Some(1), "{flag}: {stderr}");
        assert!(
            stderr.contains(&url),
            "{flag}: the push goes to {url}: {stderr}"
        );
    }
}

/// teardown lists only the flags it uses; bootstrap's git flags are not among them (the few
/// that earlier releases took are ignored with a warning).
#[test]
fn teardown_takes_only_the_flags_it_uses() {
    let (code, help, stderr) = run(capi_manage().args(["teardown", "--help"]));
    assert_eq!(code, Some(0), "{stderr}");
    for unused in [
        "--git-url",
        "--flux-url",
        "--message",
        "--yes",
        "--deploy-key-added",
        "--ssh-identity",
        "--git-token-stdin",
    ] {
        assert!(!help.contains(unused), "teardown shows {unused}: {help}");
    }
    for used in [
        "--kind-name",
        "--retain",
        "--timeout",
        "--cluster-timeout",
        "--docker-host",
    ] {
        assert!(help.contains(used), "teardown lacks {used}: {help}");
    }
    let dir = tempfile::tempdir().unwrap();
    let work = cluster_repo(dir.path());
    let (code, _, stderr) = run(&mut bootstrap_refused(
        &work,
        dir.path(),
        "teardown",
        &["--message", "x"],
    ));
    assert_eq!(code, Some(2), "{stderr}");
    // An ignored flag is said so, and the run goes on (bootstrap_refused passes --yes, which
    // is taken silently).
    let (code, _, stderr) = run(&mut bootstrap_refused(
        &work,
        dir.path(),
        "teardown",
        &["--ssh-identity", "/nonexistent/key"],
    ));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("teardown does not use --ssh-identity"),
        "{stderr}"
    );
    assert!(!stderr.contains("--yes"), "{stderr}");
    assert!(stderr.contains(DOCKER.as_str()), "{stderr}");
}
