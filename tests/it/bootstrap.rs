//! `capi-manage bootstrap` and `teardown` end to end, running the real binary.
//!
//! Real: dockerd (the kind node container, a stand-in image: see tests/support/docker.rs), two
//! kube-apiservers with kube-controller-manager and a kwok node (the kind cluster and the "new
//! cluster"), the real release components vendored from the test mirror (Cluster API v1.13.3,
//! CAPO v0.14.6, ORC v2.6.0, Flux, sealed-secrets), the real Cluster API and CAPO webhooks
//! (conversion, defaulting, validation) serving both clusters, Flux's source- and
//! helm-controller on both clusters installing the real openstack-cluster chart (and the add-on
//! provider and janitor charts), kustomize-controller and the sealed-secrets controller on the
//! new cluster, OpenSSH's sshd serving the config repository, and git checking it.
//!
//! Air-gapped (bootstrap/airgap.rs): capi-manage runs with its proxies set to a dead port
//! (loopback exempt); the CNCF distribution registry on loopback holds the three charts as OCI
//! artifacts (`images push`), and the cluster takes them from there through
//! clusters/components/chart-repository; the components are vendored with `--image-registry`
//! at it, the values point the charts' images and chart repositories at it, the kind node
//! image is named there and the node's containerd mirrors every other registry to it. After
//! the bootstrap, every image and chart or source reference of every object in both clusters
//! must be on loopback. OpenStack is real too (the loopback stack: Keystone, Nova with the fake
//! virt driver, Neutron, Glance, Octavia with the noop amphora), and so are the CAPO v0.14.6 and
//! ORC v2.6.0 managers reconciling against it on the kind cluster, then on the new cluster,
//! then on teardown's kind cluster: the test counts the cluster's OpenStack resources through
//! the APIs before and after the pivot and after teardown. Stood in (tests/support/infra.rs):
//! what needs a booted machine (the kubeadm control-plane and bootstrap controllers' results,
//! the kwok Nodes of the servers) and the other Cluster API controllers' and the add-on
//! provider's results.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use ::kube::Api;
use capi_manage::kube::Discovery;
use capi_manage::manifest::{Object, parse_file};
use capi_manage::observe::Silent;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::capi::{api_in, apply_all};
use crate::support::capo::{self, Admin};
use crate::support::docker::{self as sd, StandIn};
use crate::support::flux::FluxControllers;
use crate::support::git_server::{self, Sshd, git};
use crate::support::infra::{Infra, InfraOptions};
use crate::support::openstack::OpenStack;
use crate::support::orc::Orc;
use crate::support::release_mirror::{Mirror, release_files};
use crate::support::webhooks::Webhooks;
use crate::support::{ControlPlane, Options, capi_manage, fixtures, project_root};
use crate::{e2e_timing, status_e2e};

mod airgap;
mod peak_rss;

use peak_rss::PeakRss;

use airgap::AirGap;

const CLUSTER: &str = "e2e";
/// A proxy nobody listens on (the discard port).
const DEAD_PROXY: &str = "http://127.0.0.1:9";
/// Air-gapped: any connection of capi-manage beyond loopback would go to a dead proxy and fail.
const AIR_GAPPED: [(&str, &str); 3] = [
    ("HTTPS_PROXY", DEAD_PROXY),
    ("HTTP_PROXY", DEAD_PROXY),
    ("NO_PROXY", "127.0.0.1,localhost"),
];
const NS: &str = "capi-self";

/// Copies the project's `clusters/bases`, `clusters/components` and `clusters/example` (as
/// `clusters/<name>`, with credentials filled in) into a fresh work repository. The cluster
/// takes its charts from the loopback registry through clusters/components/chart-repository,
/// and its values and the add-on charts' values name the registry for every image and chart
/// repository.
fn config_repo(
    dir: &Path,
    origin: &str,
    air: &airgap::Names,
    cred: &capo::AppCredential,
) -> PathBuf {
    let work = git_server::work_repo(dir, "config");
    let src = project_root().join("clusters");
    for sub in ["bases", "components", "example"] {
        copy_dir(&src.join(sub), &work.join("clusters").join(sub), &|t| t);
    }
    copy_dir(
        &src.join("example"),
        &work.join(format!("clusters/{CLUSTER}")),
        &|t| {
            // The loopback cloud's application credential; its flavors are m1.small and
            // m1.medium, so the workers take m1.small.
            t.replace("example", CLUSTER)
                .replace("https://REPLACE_ME:5000/v3", &cred.auth_url)
                .replace(
                    "application_credential_id: REPLACE_ME",
                    &format!("application_credential_id: {}", cred.id),
                )
                .replace(
                    "application_credential_secret: REPLACE_ME",
                    &format!("application_credential_secret: {}", cred.secret),
                )
                .replace("machineFlavor: m1.large", "machineFlavor: m1.small")
        },
    );
    // The machine image as an ORC Image of the cluster (imported by name), as a user adds one:
    // it must move with the cluster.
    let cluster_dir = work.join(format!("clusters/{CLUSTER}"));
    std::fs::write(
        cluster_dir.join("machine-image.yaml"),
        format!(
            "apiVersion: openstack.k-orc.cloud/v1alpha1\nkind: Image\nmetadata:\n  name: {ORC_IMAGE}\n  namespace: {NS}\n  labels:\n    cluster.x-k8s.io/cluster-name: {CLUSTER}\nspec:\n  managementPolicy: unmanaged\n  import:\n    filter:\n      name: {MACHINE_IMAGE}\n  cloudCredentialsRef:\n    secretName: {CLUSTER}-cloud-credentials\n    cloudName: openstack\n"
        ),
    )
    .unwrap();
    let k = cluster_dir.join("kustomization.yaml");
    let text = std::fs::read_to_string(&k).unwrap().replacen(
        "- values.yaml\n",
        "- values.yaml\n- machine-image.yaml\n",
        1,
    );
    std::fs::write(&k, text).unwrap();
    airgap::configure_cluster(&cluster_dir, air);
    std::fs::copy(project_root().join(".gitignore"), work.join(".gitignore")).unwrap();
    git(&work, &["remote", "add", "origin", origin]);
    work
}

const ORC_IMAGE: &str = "e2e-machine-image";
/// The Glance image the example values name (`machineImage`).
const MACHINE_IMAGE: &str = "ubuntu-jammy-kube-v1.33.1";

fn copy_dir(from: &Path, to: &Path, edit: &dyn Fn(String) -> String) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()), edit);
        } else {
            let text = std::fs::read_to_string(&p).unwrap();
            std::fs::write(to.join(e.file_name()), edit(text)).unwrap();
        }
    }
}

fn fixture_dir(dir: &str) -> Vec<Object> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(fixtures().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for f in files {
        out.extend(parse_file(&f).unwrap());
    }
    out
}

/// A run of the binary whose JSON events are read line by line.
struct Run {
    child: Child,
    events: std::sync::mpsc::Receiver<Value>,
    started: Instant,
    peak: PeakRss,
}

fn spawn(args: &[String], home: &Path) -> Run {
    let mut child = capi_manage()
        .args(args)
        .env("HOME", home)
        .env_remove("SSH_AUTH_SOCK")
        .envs(AIR_GAPPED)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run capi-manage");
    let started = Instant::now();
    let peak = PeakRss::start(child.id());
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut v) = serde_json::from_str::<Value>(&line) {
                // When it arrived, for the per-step timing (e2e_timing).
                v[e2e_timing::AT] = json!(started.elapsed().as_secs_f64());
                if tx.send(v).is_err() {
                    break;
                }
            } else {
                eprintln!("capi-manage stdout (not JSON): {line}");
            }
        }
    });
    Run {
        child,
        events: rx,
        started,
        peak,
    }
}

/// Reaps the child: its wait status and peak RSS in KiB (see [`peak_rss`]).
fn reap(child: Child, peak: PeakRss) -> (libc::c_int, i64) {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: waits for our own child, which has exited or is about to, leaving it a zombie
    // (WNOWAIT): its pid stays ours until the sampler has stopped.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        )
    };
    assert_eq!(r, 0, "waitid");
    let rss = peak.stop();
    // SAFETY: reaps that zombie.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid");
    // std's Child must not wait again.
    std::mem::forget(child);
    (status, rss)
}

/// Waits for the process and returns (exit code, peak RSS in KiB).
fn wait(run: Run) -> (i32, i64, Vec<Value>) {
    let (status, rss) = reap(run.child, run.peak);
    let events: Vec<Value> = run.events.iter().collect();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    (code, rss, events)
}

/// Adds the time since its start to a total when dropped.
struct Elapsed<'a>(Instant, &'a mut Duration);

impl Drop for Elapsed<'_> {
    fn drop(&mut self) {
        *self.1 += self.0.elapsed();
    }
}

/// How [`kill_during`] ended.
#[derive(Debug, PartialEq)]
enum Killed {
    /// Killed while the step ran.
    InStep,
    /// An earlier run had finished the step; this run was killed in a later one.
    AlreadyDone,
    /// The run finished before the step started.
    Finished,
}

/// Runs until step `name` starts, lets it work for `grace`, then kills the process (SIGKILL).
/// Every event of the run and its peak RSS go to `log`.
fn kill_during(mut run: Run, name: &str, grace: Duration, log: &mut e2e_timing::Runs) -> Killed {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut skipped = false;
    let mut events = Vec::new();
    loop {
        let next = run.events.recv_timeout(Duration::from_millis(200));
        if let Ok(e) = &next {
            events.push(e.clone());
        }
        match next {
            Ok(e) if e["event"] == "step" && e["step"] == name && e["phase"] == "skipped" => {
                skipped = true;
            }
            Ok(e)
                if e["event"] == "step"
                    && e["phase"] == "started"
                    && (skipped || e["step"] == name) =>
            {
                std::thread::sleep(grace);
                run.peak.now();
                let _ = run.child.kill();
                let (_, rss) = reap(run.child, run.peak);
                events.extend(run.events.iter());
                log.add(events, rss);
                return if skipped {
                    Killed::AlreadyDone
                } else {
                    Killed::InStep
                };
            }
            Ok(_) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(status)) = run.child.try_wait() {
                    assert!(
                        status.success(),
                        "capi-manage failed ({status}) before step {name}"
                    );
                    return Killed::Finished;
                }
                assert!(Instant::now() < deadline, "step {name} never started");
            }
            Err(_) => {
                let status = run.child.wait().unwrap();
                assert!(
                    status.success(),
                    "capi-manage failed ({status}) before step {name}"
                );
                return Killed::Finished;
            }
        }
    }
}

/// Names of every object of `kind` in the namespace.
async fn names(d: &Discovery, api_version: &str, kind: &str) -> Vec<String> {
    let mut v: Vec<String> = api_in(d, api_version, kind, NS)
        .await
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|o| o.metadata.name.unwrap())
        .collect();
    v.sort();
    v
}

const STEPS: [&str; 14] = [
    "kind-cluster",
    "kind-components",
    "apply-cluster",
    "cluster-ready",
    "kubeconfig",
    "target-components",
    "move",
    "target-ready",
    "seal",
    "push",
    "deploy-key",
    "flux-sync",
    "sync-health",
    "delete-kind",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bootstrap_survives_a_kill_in_every_step_then_teardown_removes_the_cluster() {
    let _serial = crate::kind::SERIAL.lock().await;
    let test_started = Instant::now();
    let docker = sd::engine().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();

    // The loopback OpenStack: the credential the user writes into credentials.yaml, the
    // machine image the values name (uploaded if the cloud lacks it), and no resource of the
    // cluster yet.
    let project = OpenStack::get().project("e2e").await;
    let admin = Admin::login(&project.id).await;
    let cred = capo::AppCredential::from(&project);
    let image_id = admin.ensure_image(MACHINE_IMAGE).await;
    let leftovers = admin.inventory(NS, CLUSTER).await;
    assert_eq!(
        leftovers.total(),
        0,
        "the project holds resources of an earlier run: {leftovers:?}"
    );

    // The kind cluster's API server, and the new cluster; each served by the real Cluster API
    // and CAPO webhooks once capi-manage has installed the components there, with CAPO's and
    // ORC's reconcilers running against the loopback OpenStack.
    let (mut kind_cp, mut new_cp) = tokio::join!(
        ControlPlane::start_with(Options::kwok()),
        ControlPlane::start_with(Options::kwok())
    );
    let (kind_webhooks, new_webhooks, kind_orc, new_orc) = tokio::join!(
        Webhooks::start_reconciling(&kind_cp, &["capo"]),
        Webhooks::start_reconciling(&new_cp, &["capo"]),
        Orc::start(&kind_cp),
        Orc::start(&new_cp)
    );
    kind_cp.attach(kind_webhooks);
    kind_cp.attach(kind_orc);
    new_cp.attach(new_webhooks);
    new_cp.attach(new_orc);
    let stand_in = sd::build_stand_in(
        &docker,
        &StandIn {
            ca_pem: kind_cp.ca_pem().to_string(),
            token: kind_cp.admin_token().to_string(),
            ..StandIn::default()
        },
    )
    .await;
    let kind_name = "capi-e2e";
    let _cleanup = crate::kind::clean(kind_name).await;
    let relay = RelayWhenNetwork::start(stand_in.relay_port, kind_cp.port());

    // The new cluster runs the sealed-secrets controller and Flux (CRDs first, as the
    // vendored install will also apply them).
    let kind_d = Discovery::new(kind_cp.client().await);
    let new_d = Discovery::new(new_cp.client().await);
    let mut pre = fixture_dir("flux");
    pre.extend(fixture_dir("sealed-secrets"));
    pre.retain(|o| o.kind() == "CustomResourceDefinition" || o.kind() == "Namespace");
    pre.push(Object::new(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SEALED_NS}}),
    ));
    apply_all(&new_d, &pre).await;
    let _sealer = crate::support::sealed_secrets::start_controller(&new_cp, SEALED_NS).await;
    let _flux = FluxControllers::start_with_helm(&new_cp);
    // The kind cluster runs Flux's source- and helm-controller too (the vendored install's
    // Deployments do not run on a kwok node): they install the chart there.
    let mut kind_pre = fixture_dir("flux");
    kind_pre.retain(|o| o.kind() == "CustomResourceDefinition" || o.kind() == "Namespace");
    apply_all(&kind_d, &kind_pre).await;
    let _kind_flux = FluxControllers::start_with_helm(&kind_cp);
    // The loopback registry with the charts, pushed by `capi-manage images push`.
    let air = AirGap::start(&AIR_GAPPED).await;

    // The stand-in for what needs booted machines and the other controllers' results; the
    // machines' Nodes register in the new cluster (the workload cluster).
    let _infra = Infra::start_with_workload(
        kind_d.clone(),
        vec![new_d.clone()],
        InfraOptions {
            namespace: NS.into(),
            cluster: CLUSTER.into(),
            kubeconfig: std::fs::read(new_cp.kubeconfig_path()).unwrap(),
        },
        Some(new_d.clone()),
    );

    // The config repository, served over SSH.
    let sshd = Sshd::start(dir);
    let bare = git_server::bare_repo(dir, "config.git");
    let work = config_repo(dir, &sshd.url(&bare), &air.names, &cred);
    // Every component image at the registry.
    vendor_into(&work, &air.names.host).await;
    // The kind node's mirrors: one for every registry the components' releases, the
    // inventory (images.lock, the node image) and the node's own manifests name.
    let mut upstream: Vec<String> = release_files()
        .values()
        .flat_map(|b| airgap::images_in(&String::from_utf8_lossy(b)))
        .collect();
    let inventory = capi_manage::images::inventory(&work, Some(CLUSTER)).unwrap();
    upstream.extend(inventory.images.iter().map(|i| i.reference.clone()));
    upstream.extend(sd::node_manifest_images());
    let mirrored = airgap::registries(upstream.iter().map(String::as_str));
    eprintln!("mirrored for the kind node: {mirrored:?}");
    assert!(mirrored.contains("docker.io") && mirrored.contains("registry.k8s.io"));
    // The node image under a name in the registry, as the air-gapped host has it.
    let node_tag = stand_in.image.rsplit(':').next().unwrap().to_string();
    let node_repo = format!("{}/kindest/node", air.names.host);
    let node_image = sd::TaggedImage::new(&docker, &stand_in.image, &node_repo, &node_tag).await;
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "initial config"]);
    git(&work, &["push", "-q", &bare.display().to_string(), "main"]);
    let initial = git_server::rev_parse(&bare, "main").unwrap();

    // The user adds the deploy key on the forge once bootstrap shows it.
    let pub_path = work.join(format!("clusters/{CLUSTER}/.capi-manage/deploy-key.pub"));
    let key_adder = {
        let pub_path = pub_path.clone();
        let authorized = sshd.authorized_keys_path();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(1800);
            while Instant::now() < deadline {
                if let Ok(line) = std::fs::read_to_string(&pub_path) {
                    use std::io::Write;
                    let mut f = std::fs::OpenOptions::new()
                        .append(true)
                        .open(&authorized)
                        .unwrap();
                    writeln!(f, "{}", line.trim()).unwrap();
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };

    let caps = sd::test_capabilities().join(",");
    let args = |command: &str| -> Vec<String> {
        [
            command,
            CLUSTER,
            "--repo",
            &work.display().to_string(),
            "--output",
            "json",
            "--yes",
            "--kind-name",
            kind_name,
            "--node-image",
            &node_image.image,
            "--docker-host",
            &sd::docker_host(),
            "--test-only-node-capabilities",
            &caps,
            "--ssh-identity",
            &sshd.client_key.display().to_string(),
            "--known-hosts",
            &sshd.known_hosts.display().to_string(),
            "--timeout",
            "180",
            "--cluster-timeout",
            "300",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(mirrored.iter().flat_map(|h| {
            [
                "--registry-mirror".to_string(),
                format!("{h}={}", air.names.mirror_url),
            ]
        }))
        .collect()
    };

    // Killed (SIGKILL) inside every step in turn; each rerun resumes. A step that finishes
    // within the grace period is done before the kill lands: the kill then hits the next step.
    let mut kills = Vec::new();
    let mut runs = e2e_timing::Runs::default();
    let mut bootstrap_time = Duration::ZERO;
    let mut before_pivot = None;
    // Problems of the status and support-bundle checks, asserted after teardown (a panic
    // before it would leave the cluster's OpenStack resources behind).
    let mut problems = Vec::new();
    for step in STEPS {
        if step == "kubeconfig" {
            // A step broken on purpose once the Cluster exists and is ready (its kubeconfig's
            // path is taken by a folder) leaves a support bundle.
            let taken = work.join(format!("clusters/{CLUSTER}/kubeconfig"));
            std::fs::create_dir_all(taken.join("taken")).unwrap();
            let (code, rss, events) = wait(spawn(&args("bootstrap"), &home));
            runs.add(events, rss);
            std::fs::remove_dir_all(&taken).unwrap();
            let found = status_e2e::bundles(&work, CLUSTER);
            match (code, found.as_slice()) {
                (1, [bundle]) => {
                    let secrets = bundle_secrets(&work, &new_cp, &cred.secret).await;
                    let p = status_e2e::bundle_checks(bundle, step, CLUSTER, NS, &kind_d, &secrets);
                    problems.extend(p.await);
                }
                _ => problems.push(format!("failed run: exit {code}, bundles {found:?}")),
            }
        }
        if step == "apply-cluster" {
            // kind-cluster is done (the last run was killed in a later step): the node's
            // containerd names the mirror for each registry.
            let node = capi_manage::kind::control_plane_name(kind_name);
            problems.extend(
                airgap::node_mirror_problems(&docker, &node, &mirrored, &air.names.mirror_url)
                    .await,
            );
        }
        if step == "move" {
            // The cluster is ready (CAPO built it): its resources before the pivot.
            before_pivot = Some(admin.inventory(NS, CLUSTER).await);
        }
        let run = spawn(&args("bootstrap"), &home);
        let t = run.started;
        let _time = Elapsed(t, &mut bootstrap_time);
        match kill_during(run, step, Duration::from_millis(200), &mut runs) {
            Killed::InStep => kills.push(format!("{step} ({:.1}s)", t.elapsed().as_secs_f64())),
            Killed::AlreadyDone => kills.push(format!("after {step}")),
            Killed::Finished => {
                panic!("bootstrap finished before step {step} could be interrupted")
            }
        }
    }
    eprintln!("killed in: {}", kills.join(", "));
    let final_run = spawn(&args("bootstrap"), &home);
    let started = final_run.started;
    let (code, rss_kib, events) = wait(final_run);
    let final_time = started.elapsed();
    bootstrap_time += final_time;
    assert_eq!(code, 0, "the final bootstrap run failed");
    runs.add(events.clone(), rss_kib);
    eprintln!(
        "bootstrap, each step in the run that finished it (own work: outside waits):\n{}",
        runs.report()
    );
    let skipped = events
        .iter()
        .filter(|e| e["event"] == "step" && e["phase"] == "skipped")
        .count();
    assert!(
        skipped >= 13,
        "the final run resumed (skipped {skipped} steps)"
    );
    key_adder.join().unwrap();

    // The cluster is on the new cluster, unpaused, with its graph whole.
    let capi = "cluster.x-k8s.io/v1beta2";
    assert_eq!(
        names(&new_d, capi, "Cluster").await,
        vec![CLUSTER.to_string()]
    );
    let cluster = api_in(&new_d, capi, "Cluster", NS)
        .await
        .get(CLUSTER)
        .await
        .unwrap();
    assert!(
        cluster.data["spec"].get("paused").is_none(),
        "unpaused by removing the field"
    );
    // The chart wrote v1beta1; read as v1beta2 through Cluster API's conversion webhook.
    assert_eq!(
        cluster.data["spec"]["controlPlaneRef"]["apiGroup"], "controlplane.cluster.x-k8s.io",
        "v1beta2's reference shape: {}",
        cluster.data["spec"]
    );
    // Three control-plane Machines and the MachineDeployment's two workers (the example).
    assert_eq!(names(&new_d, capi, "Machine").await.len(), 5);
    // The cluster's ORC Image moved with it, status and all.
    let image = api_in(&new_d, "openstack.k-orc.cloud/v1alpha1", "Image", NS)
        .await
        .get(ORC_IMAGE)
        .await
        .unwrap();
    let on_kind = api_in(&kind_d, "openstack.k-orc.cloud/v1alpha1", "Image", NS)
        .await
        .get_opt(ORC_IMAGE)
        .await
        .unwrap();
    assert_eq!(
        image.data["status"]["id"],
        image_id.as_str(),
        "new cluster: {:?}; kind: {:?}",
        image.data,
        on_kind.map(|i| i.data)
    );
    assert_eq!(
        names(&new_d, capi, "MachineDeployment").await,
        names(&kind_d, capi, "MachineDeployment").await
    );

    // The kubeconfig is private and works.
    let kc = work.join(format!("clusters/{CLUSTER}/kubeconfig"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&kc).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // git: one commit on top of the initial one, only the sealed credentials and the
    // kustomization; no plaintext anywhere in the history.
    git_server::fsck_strict(&bare);
    let log = git(&bare, &["log", "--format=%s", &format!("{initial}..main")]);
    assert_eq!(log.trim(), format!("Bootstrap cluster - {CLUSTER}"));
    let changed = git(&bare, &["diff", "--name-only", &initial, "main"]);
    let mut changed: Vec<&str> = changed.lines().collect();
    changed.sort();
    assert_eq!(
        changed,
        [
            format!("clusters/{CLUSTER}/credentials-sealed.yaml"),
            format!("clusters/{CLUSTER}/kustomization.yaml")
        ]
    );
    let all = git(&bare, &["log", "-p", "--all"]);
    assert!(!all.contains(&cred.secret), "plaintext credentials in git");
    let kustomization = git(
        &bare,
        &[
            "show",
            &format!("main:clusters/{CLUSTER}/kustomization.yaml"),
        ],
    );
    assert_eq!(kustomization.matches("credentials-sealed.yaml").count(), 1);
    let head = git_server::rev_parse(&bare, "main").unwrap();

    // Flux on the new cluster applied the pushed revision.
    let revision = format!("main@sha1:{head}");
    let ks = api_in(
        &new_d,
        "kustomize.toolkit.fluxcd.io/v1",
        "Kustomization",
        "flux-system",
    )
    .await;
    let k = ks.get(CLUSTER).await.unwrap();
    assert_eq!(k.data["status"]["lastAppliedRevision"], revision.as_str());

    // The controller unsealed the credentials the user wrote.
    let secrets: Api<Secret> = Api::namespaced(new_cp.client().await, NS);
    let name = format!("{CLUSTER}-cloud-credentials");
    let deadline = Instant::now() + Duration::from_secs(60);
    let unsealed = loop {
        let s = secrets.get(&name).await.unwrap();
        let owned = s
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "SealedSecret");
        if owned {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the controller never took over Secret {name}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let clouds = String::from_utf8(unsealed.data.unwrap()["clouds.yaml"].0.clone()).unwrap();
    assert!(clouds.contains(&format!("application_credential_secret: {}", cred.secret)));

    // The kind node is gone.
    assert!(
        sd::containers_labelled(&docker, capi_manage::kind::CLUSTER_LABEL, kind_name)
            .await
            .is_empty()
    );
    eprintln!(
        "bootstrap: all runs {:.1}s, final run {:.1}s, peak RSS {} MiB (highest of all runs); whole test so far {:.1}s",
        bootstrap_time.as_secs_f64(),
        final_time.as_secs_f64(),
        runs.peak_rss_kib / 1024,
        test_started.elapsed().as_secs_f64()
    );

    // A rerun of a finished bootstrap changes nothing.
    let (code, _, events) = wait(spawn(&args("bootstrap"), &home));
    assert_eq!(code, 0);
    assert!(
        events
            .iter()
            .filter(|e| e["event"] == "step")
            .all(|e| e["phase"] == "skipped")
    );
    assert_eq!(git_server::rev_parse(&bare, "main").unwrap(), head);

    // status (must-show 4) and kubeconfig read the same cluster.
    let target = status_e2e::Target {
        work: &work,
        cluster: CLUSTER,
        namespace: NS,
        home: &home,
        ssh_identity: &sshd.client_key,
        known_hosts: &sshd.known_hosts,
        head: &head,
    };
    problems.extend(status_e2e::status_checks(&target, &new_d).await);
    let work_s = work.display().to_string();
    let out = capi_manage()
        .args(["kubeconfig", CLUSTER, "--repo", &work_s, "--print"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, std::fs::read(&kc).unwrap());
    let out = capi_manage()
        .args(["completions", "bash"])
        .output()
        .unwrap();
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && script.contains("bootstrap")
            && script.contains("--deploy-key-added")
    );
    drop(relay);
    airgap::checks(&air, &work, &args("plan"), [&kind_d, &new_d], &mut problems).await;

    // The pivot kept the cloud intact: the same resources, all ACTIVE, none added or lost;
    // the paused source CAPO deleted nothing.
    let before = before_pivot.expect("counted before the move");
    let after = admin.inventory(NS, CLUSTER).await;
    eprintln!("OpenStack, before the pivot: {before}");
    eprintln!("OpenStack, after the pivot:  {after}");
    assert_eq!(
        before.ids(),
        after.ids(),
        "before {before:?}\nafter {after:?}"
    );
    assert_eq!(
        (
            before.servers.len(),
            before.load_balancers.len(),
            before.floating_ips.len()
        ),
        (5, 1, 1),
        "one server per machine, the API load balancer and its floating IP: {before:?}"
    );
    assert!(
        [&before.servers, &before.load_balancers]
            .iter()
            .all(|s| s.iter().all(|e| e.ends_with(" ACTIVE"))),
        "{before:?}"
    );
    assert!(
        !before.networks.is_empty()
            && !before.subnets.is_empty()
            && !before.routers.is_empty()
            && !before.security_groups.is_empty(),
        "{before:?}"
    );
    let source_capo = capo_log_lines(&kind_cp.dir().join("webhooks/capo"));
    let deletes: Vec<&String> = source_capo
        .iter()
        .filter(|l| l.contains("\"Deleting "))
        .collect();
    assert!(deletes.is_empty(), "the source CAPO deleted: {deletes:?}");
    let paused_seen = source_capo.iter().filter(|l| l.contains("paused")).count();
    eprintln!("source CAPO: {paused_seen} log lines of paused objects left alone, no deletion");

    // Teardown: a fresh kind cluster (its own API server), the cluster moved back and deleted.
    let mut td_cp = ControlPlane::start_with(Options::kwok()).await;
    let (td_webhooks, td_orc) = tokio::join!(
        Webhooks::start_reconciling(&td_cp, &["capo"]),
        Orc::start(&td_cp)
    );
    td_cp.attach(td_webhooks);
    td_cp.attach(td_orc);
    let td_image = sd::build_stand_in(
        &docker,
        &StandIn {
            ca_pem: td_cp.ca_pem().to_string(),
            token: td_cp.admin_token().to_string(),
            ..StandIn::default()
        },
    )
    .await;
    let _td_relay = RelayWhenNetwork::start(td_image.relay_port, td_cp.port());
    let td_d = Discovery::new(td_cp.client().await);
    // helm-controller installs the cluster's add-on provider there too, before the move back.
    apply_all(&td_d, &kind_pre).await;
    let _td_flux = FluxControllers::start_with_helm(&td_cp);
    // The stand-in fills webhook CA bundles and readiness on the new kind cluster too.
    let _td_infra = Infra::start_with_workload(
        td_d.clone(),
        vec![],
        InfraOptions {
            namespace: NS.into(),
            cluster: CLUSTER.into(),
            kubeconfig: Vec::new(),
        },
        Some(new_d.clone()),
    );
    // Octavia's noop worker never frees a load balancer's VIP port (a real amphora driver
    // does), so CAPO's network delete would get 409 NetworkInUse forever: a thin stand-in for
    // the worker's missing cleanup deletes the cluster network's `Octavia` ports once no load
    // balancer is left on it.
    let vip_cleaner = {
        let admin = admin.clone();
        let nets = before.network_ids();
        tokio::spawn(async move {
            loop {
                admin.delete_leaked_vip_ports(&nets).await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };
    let td_tag = td_image.image.rsplit(':').next().unwrap().to_string();
    let td_node = sd::TaggedImage::new(&docker, &td_image.image, &node_repo, &td_tag).await;
    let mut td_args = args("teardown");
    let i = td_args.iter().position(|a| a == &node_image.image).unwrap();
    td_args[i] = td_node.image.clone();
    let started = Instant::now();
    let (code, rss_td, _) = wait(spawn(&td_args, &home));
    assert_eq!(code, 0, "teardown failed");
    assert!(
        names(&new_d, capi, "Cluster").await.is_empty(),
        "moved off the self-managed cluster"
    );
    assert!(
        names(&td_d, capi, "Cluster").await.is_empty(),
        "deleted on kind"
    );
    assert!(
        !kc.exists(),
        "the kubeconfig of a deleted cluster is removed"
    );
    vip_cleaner.abort();
    // CAPO deleted everything before the Cluster's finalizer went.
    let end = admin.inventory(NS, CLUSTER).await;
    eprintln!("OpenStack, after teardown:   {end}");
    assert_eq!(end.total(), 0, "left in the project: {end:?}");
    assert!(
        sd::containers_labelled(&docker, capi_manage::kind::CLUSTER_LABEL, kind_name)
            .await
            .is_empty()
    );
    eprintln!(
        "teardown {:.1}s, peak RSS {} MiB; whole test {:.1}s",
        started.elapsed().as_secs_f64(),
        rss_td / 1024,
        test_started.elapsed().as_secs_f64()
    );
    assert!(problems.is_empty(), "status and bundle: {problems:#?}");
}

/// Every credential value a support bundle must not hold: the application credential secret,
/// the kind and new clusters' kubeconfig keys, the sealed-secrets controller's private key.
async fn bundle_secrets(work: &Path, new_cp: &ControlPlane, app_secret: &str) -> Vec<String> {
    let dir = capi_manage::repo::ClusterDir::new(work, CLUSTER);
    let mut out = vec![app_secret.to_string()];
    for kc in [
        dir.kind_kubeconfig(),
        new_cp.kubeconfig_path().to_path_buf(),
    ] {
        let text = std::fs::read_to_string(&kc).unwrap_or_default();
        out.extend(status_e2e::kubeconfig_secrets(&text));
    }
    let keys: Api<Secret> = Api::namespaced(new_cp.client().await, SEALED_NS);
    let label = format!("{}=active", capi_manage::seal::SEALING_KEY_LABEL);
    let listed = keys
        .list(&::kube::api::ListParams::default().labels(&label))
        .await;
    for s in listed.map(|l| l.items).unwrap_or_default() {
        let key = s.data.unwrap_or_default().remove("tls.key").map(|b| b.0);
        let key = key.unwrap_or_default();
        use base64::Engine as _;
        out.push(base64::engine::general_purpose::STANDARD.encode(&key));
        // A line from the middle of the PEM body, in case it was written decoded.
        let pem = String::from_utf8_lossy(&key).into_owned();
        out.extend(
            pem.lines()
                .filter(|l| l.len() >= 60)
                .nth(3)
                .map(str::to_string),
        );
    }
    out
}

const SEALED_NS: &str = capi_manage::seal::DEFAULT_CONTROLLER_NAMESPACE;

/// Starts relaying once the `kind` network exists (the binary creates it).
struct RelayWhenNetwork(tokio::task::JoinHandle<()>);

impl RelayWhenNetwork {
    fn start(port: u16, target: u16) -> RelayWhenNetwork {
        RelayWhenNetwork(tokio::spawn(async move {
            let docker = sd::engine().await;
            loop {
                if docker
                    .inspect_network(
                        "kind",
                        None::<bollard::query_parameters::InspectNetworkOptions>,
                    )
                    .await
                    .is_ok()
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let _relay = sd::Relay::start(&docker, port, target).await;
            std::future::pending::<()>().await;
        }))
    }
}

impl Drop for RelayWhenNetwork {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `vendor-manifests/` of the work repository, vendored from a mirror of release-like files
/// with the project's pins.
async fn vendor_into(work: &Path, image_registry: &str) {
    let dir = work.join("vendor-manifests");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        project_root().join("vendor-manifests/vendor.toml"),
        dir.join("vendor.toml"),
    )
    .unwrap();
    let mirror = Mirror::start(release_files());
    capi_manage::components::vendor(
        work,
        &capi_manage::components::VendorOptions {
            trust_mirror_for_new_assets: true,
            mirror: Some(mirror.base.clone()),
            image_registry: Some(image_registry.to_string()),
            ..Default::default()
        },
        &Silent,
        &CancellationToken::new(),
    )
    .await
    .expect("vendor from the mirror");
}

/// Every line of the CAPO manager logs in `dir` (one per start).
fn capo_log_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_name().to_string_lossy().ends_with(".log") {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            lines.extend(text.lines().map(str::to_string));
        }
    }
    lines
}

#[test]
fn bootstrap_refuses_template_credentials_before_creating_anything() {
    let root = project_root();
    let out = capi_manage()
        .args([
            "bootstrap",
            "example",
            "--repo",
            &root.display().to_string(),
            "--yes",
            // No engine: the preflight reports it instead of asking a registry for the image.
            "--docker-host",
            "tcp://127.0.0.1:9",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // The preflight's lines, then one error line that lists every problem.
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("clusters/example/credentials.yaml")
            && stderr.contains("clouds.openstack.auth.")
            && stderr.contains("REPLACE_ME"),
        "{stderr}"
    );
    assert!(!root.join("clusters/example/.capi-manage").exists());
}
