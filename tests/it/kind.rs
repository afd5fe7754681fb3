//! The kind cluster against the real Docker engine, with a stand-in node image (see
//! tests/support/docker.rs for what is stood in and why).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{InspectContainerOptions, InspectNetworkOptions};
use capi_manage::kind::{
    self, CreateError, CreateOptions, DeleteOptions, DockerError, LoadOptions, NodePrivileges,
};
use capi_manage::observe::Event;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::support::docker::{self as sd, StandIn};
use crate::support::{ControlPlane, free_port};

/// The kind tests share the engine and the `kind` network: one at a time.
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Create options for a stand-in node on the test engine.
pub(crate) fn options(name: &str, image: &str) -> CreateOptions {
    CreateOptions {
        name: name.to_string(),
        image: image.to_string(),
        docker_host: Some(sd::docker_host()),
        ready_timeout: Duration::from_secs(30),
        privileges: NodePrivileges::TestOnlyCapabilities(sd::test_capabilities()),
        ..CreateOptions::default()
    }
}

fn delete_options(name: &str) -> DeleteOptions {
    DeleteOptions {
        name: name.to_string(),
        docker_host: Some(sd::docker_host()),
    }
}

/// Records events, for asserting on what an operation reported.
#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

impl capi_manage::observe::Observer for Recorder {
    fn event(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

impl Recorder {
    fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }
}

/// Removes a cluster left by an earlier, aborted run of the same test, and deletes it again when
/// the returned guard drops (also when the test panics), so no test leaves nodes on the network.
pub(crate) async fn clean(name: &'static str) -> Cleanup {
    kind::delete(&delete_options(name), &capi_manage::observe::Silent)
        .await
        .expect("delete leftovers");
    Cleanup(name)
}

pub(crate) struct Cleanup(&'static str);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let name = self.0;
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _ = rt.block_on(kind::delete(
                &delete_options(name),
                &capi_manage::observe::Silent,
            ));
        })
        .join();
    }
}

async fn file(docker: &Docker, node: &str, path: &str) -> String {
    let (code, out) = sd::exec(docker, node, &["cat", path]).await;
    assert_eq!(code, 0, "cat {path} in {node}: {out}");
    out
}

async fn anonymous_volumes(docker: &Docker, node: &str) -> Vec<String> {
    let c = docker
        .inspect_container(node, None::<InspectContainerOptions>)
        .await
        .unwrap();
    c.mounts
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.destination.as_deref() == Some("/var"))
        .filter_map(|m| m.name)
        .collect()
}

#[tokio::test]
async fn create_reuse_delete_with_a_working_kubeconfig_and_nothing_left() {
    let _serial = SERIAL.lock().await;
    let docker = sd::engine().await;
    let cp = ControlPlane::start().await;
    let name = "capi-kind-it-life";
    let stand_in = sd::build_stand_in(
        &docker,
        &StandIn {
            ca_pem: cp.ca_pem().to_string(),
            token: cp.admin_token().to_string(),
            ..StandIn::default()
        },
    )
    .await;
    let _cleanup_name = clean(name).await;
    let opts = options(name, &stand_in.image);
    let recorder = Recorder::default();
    let cancel = CancellationToken::new();

    // Other tests' clusters may share the network (the suite runs in parallel).
    let network_existed = docker
        .inspect_network(
            kind::NETWORK_NAME,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .is_ok();
    let started = Instant::now();
    let created = kind::create(&opts, &recorder, &cancel)
        .await
        .expect("create");
    let create_time = started.elapsed();
    assert!(!created.reused);
    assert_eq!(created.node, "capi-kind-it-life-control-plane");
    assert_eq!(created.version.to_string(), "v1.35.0");
    let node = created.node.clone();

    // The kubeconfig: kind's names and the published port, credentials from admin.conf.
    let kc: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&created.kubeconfig).unwrap();
    let kind_name = format!("kind-{name}");
    assert_eq!(kc["current-context"].as_str(), Some(kind_name.as_str()));
    assert_eq!(kc["clusters"][0]["name"].as_str(), Some(kind_name.as_str()));
    assert_eq!(kc["users"][0]["name"].as_str(), Some(kind_name.as_str()));
    let server = format!("https://127.0.0.1:{}", created.api_server_port);
    assert_eq!(
        kc["clusters"][0]["cluster"]["server"].as_str(),
        Some(server.as_str())
    );

    // ... and it works: through the published port, the node and the relay, to the real
    // kube-apiserver, TLS verified against the cluster CA for 127.0.0.1.
    let _relay = sd::Relay::start(&docker, stand_in.relay_port, cp.port()).await;
    let kubeconfig =
        ::kube::config::Kubeconfig::from_yaml(std::str::from_utf8(&created.kubeconfig).unwrap())
            .unwrap();
    let config = ::kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let client = ::kube::Client::try_from(config).unwrap();
    let version = client
        .apiserver_version()
        .await
        .expect("API server reachable");
    assert_eq!(version.major, "1");
    let namespaces: ::kube::Api<k8s_openapi::api::core::v1::Namespace> = ::kube::Api::all(client);
    let list = namespaces
        .list(&Default::default())
        .await
        .expect("list namespaces");
    assert!(
        list.items
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some("default"))
    );

    // What ran in the node, in kind's order and with kind's arguments.
    let kubeadm_log = file(&docker, &node, "/kind/stand-in/kubeadm.log").await;
    assert_eq!(
        kubeadm_log.trim(),
        "kubeadm init --config=/kind/kubeadm.conf --skip-token-print --v=6"
    );
    let conf = file(&docker, &node, "/kind/kubeadm.conf").await;
    assert!(
        conf.contains("apiVersion: kubeadm.k8s.io/v1beta3"),
        "{conf}"
    );
    assert!(conf.contains("controlPlaneEndpoint: \"capi-kind-it-life-control-plane:6443\""));
    assert!(conf.contains("kubernetesVersion: v1.35.0"));
    let kubectl_log = file(&docker, &node, "/kind/stand-in/kubectl.log").await;
    let calls: Vec<&str> = kubectl_log.lines().collect();
    assert_eq!(
        calls[0],
        "kubectl --kubeconfig=/etc/kubernetes/admin.conf taint nodes --all node-role.kubernetes.io/control-plane-"
    );
    assert_eq!(
        calls[1],
        "kubectl --kubeconfig=/etc/kubernetes/admin.conf apply -f -"
    );
    assert_eq!(
        calls[2],
        "kubectl --kubeconfig=/etc/kubernetes/admin.conf apply -f -"
    );
    assert!(calls[3].contains("get nodes --selector=node-role.kubernetes.io/control-plane"));
    let cni = file(&docker, &node, "/kind/stand-in/applied-0.yaml").await;
    assert!(
        cni.contains("value: 10.244.0.0/16"),
        "pod subnet templated: {cni}"
    );
    assert!(cni.contains("CONTROL_PLANE_ENDPOINT"), "{cni}");
    assert!(
        cni.contains("capi-kind-it-life-control-plane:6443"),
        "{cni}"
    );
    let storage = file(&docker, &node, "/kind/stand-in/applied-1.yaml").await;
    assert!(storage.contains("kind: StorageClass"));
    let events = recorder.lines();
    assert!(
        !events.iter().any(|e| e.contains("pulling")),
        "a present image is not pulled: {events:?}"
    );
    if !network_existed {
        assert!(
            events.iter().any(|e| e.contains("creating network kind")),
            "{events:?}"
        );
    }
    assert!(
        events
            .iter()
            .any(|e| e.contains("creating node capi-kind-it-life-control-plane"))
    );
    assert!(events.iter().any(|e| e.contains("kubeadm init")));

    // Reuse: same node, same port, same credentials; kubeadm is not run again.
    let started = Instant::now();
    let again = kind::create(&opts, &capi_manage::observe::Silent, &cancel)
        .await
        .expect("reuse");
    let reuse_time = started.elapsed();
    assert!(again.reused);
    assert_eq!(again.api_server_port, created.api_server_port);
    assert_eq!(again.kubeconfig, created.kubeconfig);
    let kubeadm_log = file(&docker, &node, "/kind/stand-in/kubeadm.log").await;
    assert_eq!(kubeadm_log.lines().count(), 1, "{kubeadm_log}");

    // A stopped node (e.g. after a host reboot with the engine not restarting it) is started
    // again, waits for a fresh boot line, and is reused.
    docker
        .stop_container(
            &node,
            None::<bollard::query_parameters::StopContainerOptions>,
        )
        .await
        .unwrap();
    let restarted = kind::create(&opts, &capi_manage::observe::Silent, &cancel)
        .await
        .expect("reuse a stopped node");
    assert!(restarted.reused);
    let state = docker
        .inspect_container(&node, None::<InspectContainerOptions>)
        .await
        .unwrap()
        .state
        .unwrap();
    assert_eq!(state.running, Some(true));
    let kubeadm_log = file(&docker, &node, "/kind/stand-in/kubeadm.log").await;
    assert_eq!(kubeadm_log.lines().count(), 1, "{kubeadm_log}");

    // Delete: container, its /var volume and the network are gone.
    let volumes = anonymous_volumes(&docker, &node).await;
    assert_eq!(volumes.len(), 1, "one anonymous /var volume");
    let started = Instant::now();
    let deleted = kind::delete(&delete_options(name), &capi_manage::observe::Silent)
        .await
        .expect("delete");
    let delete_time = started.elapsed();
    assert_eq!(deleted.containers, vec![node.clone()]);
    assert!(deleted.network_removed);
    assert!(
        sd::containers_labelled(&docker, kind::CLUSTER_LABEL, name)
            .await
            .is_empty()
    );
    let err = docker.inspect_volume(&volumes[0]).await.unwrap_err();
    assert!(
        format!("{err}").contains("404") || format!("{err:?}").contains("404"),
        "{err:?}"
    );
    let err = docker
        .inspect_network(kind::NETWORK_NAME, None::<InspectNetworkOptions>)
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("404"), "{err:?}");
    // Deleting again is a no-op.
    let none = kind::delete(&delete_options(name), &capi_manage::observe::Silent)
        .await
        .unwrap();
    assert!(none.containers.is_empty());
    eprintln!(
        "kind figures: create {:.2}s, reuse {:.2}s, delete {:.2}s",
        create_time.as_secs_f64(),
        reuse_time.as_secs_f64(),
        delete_time.as_secs_f64()
    );
}

#[tokio::test]
async fn node_container_and_network_have_kinds_settings() {
    let _serial = SERIAL.lock().await;
    let docker = sd::engine().await;
    let name = "capi-kind-it-settings";
    let stand_in = sd::build_stand_in(&docker, &StandIn::default()).await;
    let _cleanup_name = clean(name).await;
    let mut opts = options(name, &stand_in.image);
    opts.containerd_snapshotter = Some("native".into());
    opts.proxy = kind::ProxyEnv {
        http_proxy: Some("http://proxy.invalid:3128".into()),
        https_proxy: Some("http://proxy.invalid:3128".into()),
        no_proxy: Some("internal.invalid".into()),
    };
    let created = kind::create(
        &opts,
        &capi_manage::observe::Silent,
        &CancellationToken::new(),
    )
    .await
    .expect("create");
    let node = created.node.clone();

    let c = docker
        .inspect_container(&node, None::<InspectContainerOptions>)
        .await
        .unwrap();
    let config = c.config.clone().unwrap();
    let host = c.host_config.clone().unwrap();
    // docker run --name <cluster>-control-plane --hostname <same>
    assert_eq!(
        c.name.as_deref(),
        Some("/capi-kind-it-settings-control-plane")
    );
    assert_eq!(config.hostname.as_deref(), Some(node.as_str()));
    // --label io.x-k8s.kind.cluster=<cluster> --label io.x-k8s.kind.role=control-plane
    let labels = config.labels.clone().unwrap();
    assert_eq!(
        labels.get("io.x-k8s.kind.cluster").map(String::as_str),
        Some(name)
    );
    assert_eq!(
        labels.get("io.x-k8s.kind.role").map(String::as_str),
        Some("control-plane")
    );
    // --tty, and the image
    assert_eq!(config.tty, Some(true));
    assert_eq!(config.image.as_deref(), Some(stand_in.image.as_str()));
    // -e KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER (passed through) -e KUBECONFIG=...
    let env = config.env.clone().unwrap();
    assert!(env.contains(&"KUBECONFIG=/etc/kubernetes/admin.conf".to_string()));
    assert!(env.contains(&"KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER=native".to_string()));
    // HTTP(S)_PROXY and NO_PROXY in both spellings, NO_PROXY extended with the network's
    // subnets, the node and the service domains.
    assert!(env.contains(&"HTTPS_PROXY=http://proxy.invalid:3128".to_string()));
    assert!(env.contains(&"http_proxy=http://proxy.invalid:3128".to_string()));
    let no_proxy = env
        .iter()
        .find_map(|e| e.strip_prefix("NO_PROXY="))
        .expect("NO_PROXY");
    assert!(no_proxy.contains("fc00:f853:ccd:e793::/64"), "{no_proxy}");
    assert!(no_proxy.contains("internal.invalid,capi-kind-it-settings-control-plane,.svc,.svc.cluster,.svc.cluster.local"), "{no_proxy}");
    // --privileged is replaced, in tests only, by explicit capabilities
    assert_eq!(host.privileged, Some(false));
    assert_eq!(host.cap_add, Some(sd::test_capabilities()));
    // --security-opt seccomp=unconfined --security-opt apparmor=unconfined
    let sec = host.security_opt.clone().unwrap();
    assert!(sec.contains(&"seccomp=unconfined".to_string()), "{sec:?}");
    assert!(sec.contains(&"apparmor=unconfined".to_string()), "{sec:?}");
    // --tmpfs /tmp --tmpfs /run
    let tmpfs = host.tmpfs.clone().unwrap();
    assert_eq!(tmpfs.get("/tmp").map(String::as_str), Some(""));
    assert_eq!(tmpfs.get("/run").map(String::as_str), Some(""));
    // --volume /var (anonymous) --volume /lib/modules:/lib/modules:ro
    assert!(config.volumes.clone().unwrap().iter().any(|v| v == "/var"));
    assert_eq!(
        host.binds,
        Some(vec!["/lib/modules:/lib/modules:ro".to_string()])
    );
    let mounts = c.mounts.clone().unwrap();
    let var = mounts
        .iter()
        .find(|m| m.destination.as_deref() == Some("/var"))
        .unwrap();
    assert!(
        format!("{:?}", var.typ).to_lowercase().contains("volume"),
        "{:?}",
        var.typ
    );
    let modules = mounts
        .iter()
        .find(|m| m.destination.as_deref() == Some("/lib/modules"))
        .unwrap();
    assert_eq!(modules.rw, Some(false));
    // --restart=on-failure:1
    let restart = host.restart_policy.clone().unwrap();
    assert_eq!(format!("{:?}", restart.name.unwrap()), "ON_FAILURE");
    assert_eq!(restart.maximum_retry_count, Some(1));
    // --init=false --cgroupns=private
    assert_eq!(host.init, Some(false));
    assert_eq!(format!("{:?}", host.cgroupns_mode.unwrap()), "PRIVATE");
    // --net kind
    assert_eq!(host.network_mode.as_deref(), Some("kind"));
    assert!(
        c.network_settings
            .clone()
            .unwrap()
            .networks
            .unwrap()
            .contains_key("kind")
    );
    // --publish=127.0.0.1:<free port>:6443/tcp
    let bindings = host.port_bindings.clone().unwrap();
    let b = bindings["6443/tcp"].clone().unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        b[0].host_port.as_deref(),
        Some(created.api_server_port.to_string().as_str())
    );
    assert_ne!(created.api_server_port, 6443);

    // The network: bridge, masquerade, the default bridge's MTU, kind's IPv6 ULA subnet.
    let n = docker
        .inspect_network("kind", None::<InspectNetworkOptions>)
        .await
        .unwrap();
    assert_eq!(n.driver.as_deref(), Some("bridge"));
    let net_opts = n.options.clone().unwrap();
    assert_eq!(
        net_opts
            .get("com.docker.network.bridge.enable_ip_masquerade")
            .map(String::as_str),
        Some("true")
    );
    let bridge = docker
        .inspect_network("bridge", None::<InspectNetworkOptions>)
        .await
        .unwrap();
    assert_eq!(
        net_opts.get("com.docker.network.driver.mtu"),
        bridge.options.unwrap().get("com.docker.network.driver.mtu")
    );
    assert_eq!(n.enable_ipv6, Some(true));
    let subnets: Vec<String> = n
        .ipam
        .unwrap()
        .config
        .unwrap()
        .into_iter()
        .filter_map(|c| c.subnet)
        .collect();
    assert!(
        subnets.contains(&"fc00:f853:ccd:e793::/64".to_string()),
        "{subnets:?}"
    );

    // Reusing the present network: a second cluster joins it rather than making another.
    let other = "capi-kind-it-settings2";
    let _cleanup_other = clean(other).await;
    let second = kind::create(
        &options(other, &stand_in.image),
        &capi_manage::observe::Silent,
        &CancellationToken::new(),
    )
    .await
    .expect("second cluster");
    let nets = docker
        .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
        .await
        .unwrap();
    assert_eq!(
        nets.iter()
            .filter(|n| n.name.as_deref() == Some("kind"))
            .count(),
        1
    );
    assert_ne!(second.api_server_port, created.api_server_port);
    // Deleting one cluster keeps the network the other still uses.
    let d = kind::delete(&delete_options(name), &capi_manage::observe::Silent)
        .await
        .unwrap();
    assert!(!d.network_removed);
    let d = kind::delete(&delete_options(other), &capi_manage::observe::Silent)
        .await
        .unwrap();
    assert!(d.network_removed);
}

#[tokio::test]
async fn kubeadm_failure_reports_its_tail_keeps_the_cluster_and_a_rerun_reuses_it() {
    let _serial = SERIAL.lock().await;
    let docker = sd::engine().await;
    let name = "capi-kind-it-kubeadm";
    let stand_in = sd::build_stand_in(
        &docker,
        &StandIn {
            kubeadm_fails_once: true,
            ..StandIn::default()
        },
    )
    .await;
    let _cleanup_name = clean(name).await;
    let opts = options(name, &stand_in.image);
    let cancel = CancellationToken::new();
    let err = kind::create(&opts, &capi_manage::observe::Silent, &cancel)
        .await
        .expect_err("kubeadm init fails");
    let CreateError::Step {
        ref step,
        exit_code,
        ref tail,
        ..
    } = err
    else {
        panic!("expected a step error, got {err:?}");
    };
    assert_eq!(step, "kubeadm init");
    assert_eq!(exit_code, 1);
    assert!(
        tail.contains("couldn't initialize a Kubernetes cluster"),
        "{tail}"
    );
    assert!(tail.contains("output line 40"), "{tail}");
    assert!(!tail.contains("output line 1\n"), "only the tail: {tail}");
    assert!(tail.lines().count() <= 25, "{tail}");
    let message = err.to_string();
    assert!(
        message.starts_with(
            "kubeadm init failed in node capi-kind-it-kubeadm-control-plane (exit code 1)"
        ),
        "{message}"
    );
    assert!(
        message.contains("docker rm -f -v capi-kind-it-kubeadm-control-plane"),
        "{message}"
    );

    // Kept for debugging.
    let node = kind::control_plane_name(name);
    let c = docker
        .inspect_container(&node, None::<InspectContainerOptions>)
        .await
        .expect("the node is kept");
    assert_eq!(c.state.unwrap().running, Some(true));

    // A rerun reuses the node: the failed init is reset, then init succeeds.
    let created = kind::create(&opts, &capi_manage::observe::Silent, &cancel)
        .await
        .expect("rerun");
    assert!(created.reused);
    let log = file(&docker, &node, "/kind/stand-in/kubeadm.log").await;
    let calls: Vec<&str> = log.lines().collect();
    assert_eq!(
        calls,
        [
            "kubeadm init --config=/kind/kubeadm.conf --skip-token-print --v=6",
            "kubeadm reset --force",
            "kubeadm init --config=/kind/kubeadm.conf --skip-token-print --v=6",
        ]
    );
    kind::delete(&delete_options(name), &capi_manage::observe::Silent)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_node_that_never_gets_ready_times_out_and_is_kept() {
    let _serial = SERIAL.lock().await;
    let docker = sd::engine().await;
    let stand_in = sd::build_stand_in(
        &docker,
        &StandIn {
            never_ready: true,
            ..StandIn::default()
        },
    )
    .await;
    let name = "capi-kind-it-notready";
    let _cleanup_name = clean(name).await;
    let mut opts = options(name, &stand_in.image);
    opts.ready_timeout = Duration::from_secs(2);
    let recorder = Recorder::default();
    let err = kind::create(&opts, &recorder, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, CreateError::NotReady { .. }), "{err:?}");
    assert_eq!(
        one_line(&err),
        "node capi-kind-it-notready-control-plane not Ready after 2s; the cluster is kept for debugging (a rerun continues from it; delete it with `docker rm -f -v capi-kind-it-notready-control-plane` or `kind delete cluster --name capi-kind-it-notready`)"
    );
    let waits = recorder
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("waiting for node capi-kind-it-notready-control-plane Ready"))
        .count();
    assert!(
        (1..=2).contains(&waits),
        "waiting reported now and then: {waits}"
    );
    assert_eq!(
        sd::containers_labelled(&docker, kind::CLUSTER_LABEL, name).await,
        ["/capi-kind-it-notready-control-plane"]
    );
}

#[tokio::test]
async fn kubernetes_1_36_nodes_get_a_v1beta4_kubeadm_config() {
    let _serial = SERIAL.lock().await;
    let docker = sd::engine().await;
    let name = "capi-kind-it-v1beta4";
    let stand_in = sd::build_stand_in(
        &docker,
        &StandIn {
            kube_version: "v1.36.0".into(),
            ..StandIn::default()
        },
    )
    .await;
    let _cleanup_name = clean(name).await;
    let created = kind::create(
        &options(name, &stand_in.image),
        &capi_manage::observe::Silent,
        &CancellationToken::new(),
    )
    .await
    .expect("create");
    assert_eq!(created.version.to_string(), "v1.36.0");
    let conf = file(&docker, &created.node, "/kind/kubeadm.conf").await;
    assert!(
        conf.contains("apiVersion: kubeadm.k8s.io/v1beta4"),
        "{conf}"
    );
    assert!(!conf.contains("v1beta3"), "{conf}");
    kind::delete(&delete_options(name), &capi_manage::observe::Silent)
        .await
        .unwrap();
}

#[tokio::test]
async fn image_archive_load_streams_a_docker_save_tarball_into_ctr() {
    let _serial = SERIAL.lock().await;
    let docker = sd::engine().await;
    let name = "capi-kind-it-load";
    let stand_in = sd::build_stand_in(&docker, &StandIn::default()).await;
    let _cleanup_name = clean(name).await;
    let created = kind::create(
        &options(name, &stand_in.image),
        &capi_manage::observe::Silent,
        &CancellationToken::new(),
    )
    .await
    .expect("create");

    // A real `docker save` of the stand-in image, written to a file.
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("images.tar");
    let mut saved = Vec::new();
    let mut stream = docker.export_image(&stand_in.image);
    while let Some(chunk) = stream.next().await {
        saved.extend_from_slice(&chunk.expect("docker save"));
    }
    std::fs::write(&archive, &saved).unwrap();
    assert!(
        saved.len() > 1_000_000,
        "busybox alone is over 1 MB: {}",
        saved.len()
    );
    assert_eq!(&saved[257..262], b"ustar", "a tar archive");

    let recorder = Recorder::default();
    let mut f = tokio::fs::File::open(&archive).await.unwrap();
    let loaded = kind::load_image_archive(
        &LoadOptions {
            name: name.to_string(),
            docker_host: Some(sd::docker_host()),
        },
        &mut f,
        &recorder,
        &CancellationToken::new(),
    )
    .await
    .expect("load");
    assert_eq!(loaded.bytes, saved.len() as u64);
    assert_eq!(
        loaded.snapshotter, "native",
        "read from the node's containerd config"
    );

    // Every byte arrived, in order.
    let digest = ring::digest::digest(&ring::digest::SHA256, &saved);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let (code, out) = sd::exec(
        &docker,
        &created.node,
        &["sha256sum", "/var/lib/stand-in/import.tar"],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with(&hex), "node has {out}, host {hex}");
    let log = file(&docker, &created.node, "/kind/stand-in/ctr.log").await;
    assert_eq!(
        log.trim(),
        "ctr --namespace=k8s.io images import --all-platforms --digests --snapshotter=native -"
    );
    let progress: Vec<String> = recorder
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("image archive bytes sent"))
        .collect();
    assert!(
        progress.len() > 1,
        "progress reported while streaming: {progress:?}"
    );
    assert_eq!(
        progress.last().unwrap(),
        &format!("image archive bytes sent: {}", saved.len())
    );

    // Loading into a cluster that does not exist says so.
    let err = kind::load_image_archive(
        &LoadOptions {
            name: "capi-kind-it-absent".into(),
            docker_host: Some(sd::docker_host()),
        },
        &mut &b""[..],
        &capi_manage::observe::Silent,
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "kind cluster capi-kind-it-absent has no running node capi-kind-it-absent-control-plane: create it first"
    );
    kind::delete(&delete_options(name), &capi_manage::observe::Silent)
        .await
        .unwrap();
}

/// The real kind (built from its Go module by scripts/test-binaries) as the peer: it finds our
/// cluster and its node by kind's labels, and deletes it.
#[tokio::test]
async fn kind_itself_lists_and_deletes_our_cluster() {
    let _serial = SERIAL.lock().await;
    let kind_bin = crate::support::test_bin("kind");
    let docker = sd::engine().await;
    let stand_in = sd::build_stand_in(&docker, &StandIn::default()).await;
    let name = "capi-kind-it-peer";
    let _cleanup_name = clean(name).await;
    let created = kind::create(
        &options(name, &stand_in.image),
        &capi_manage::observe::Silent,
        &CancellationToken::new(),
    )
    .await
    .expect("create");
    // kind edits $KUBECONFIG on delete: give it a scratch file, never the user's.
    let scratch = tempfile::tempdir().unwrap();
    let run_kind = |args: &[&str]| {
        let out = std::process::Command::new(&kind_bin)
            .args(args)
            .env("KUBECONFIG", scratch.path().join("config"))
            .env("DOCKER_HOST", sd::docker_host())
            .output()
            .expect("run kind");
        assert!(
            out.status.success(),
            "kind {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };

    let clusters = run_kind(&["get", "clusters"]);
    assert!(clusters.lines().any(|l| l == name), "{clusters}");
    let nodes = run_kind(&["get", "nodes", "--name", name]);
    assert_eq!(nodes.trim(), created.node);

    // `kind get kubeconfig` and `kind load` run `docker exec --privileged` in the node, which
    // this host refuses like `--privileged` itself; what they do is compared field by field in
    // the other tests (admin.conf rewrite, the ctr command line).

    run_kind(&["delete", "cluster", "--name", name]);
    assert!(
        sd::containers_labelled(&docker, kind::CLUSTER_LABEL, name)
            .await
            .is_empty()
    );
    // kind keeps the network; ours removes it when unused.
    let deleted = kind::delete(&delete_options(name), &capi_manage::observe::Silent)
        .await
        .unwrap();
    assert!(deleted.containers.is_empty());
    assert!(deleted.network_removed);
}

/// A missing image is pulled, by digest, with progress, then runs; present images are not pulled
/// again. The registry is a small one on loopback (tests/support/docker.rs).
#[tokio::test]
async fn a_missing_image_is_pulled_by_digest_with_progress() {
    let _serial = SERIAL.lock().await;
    let docker = sd::engine().await;
    let stand_in = sd::build_stand_in(&docker, &StandIn::default()).await;
    let name = "capi-kind-it-pulled";
    let _cleanup_name = clean(name).await;
    sd::remove_loopback_registry_images(&docker).await;
    let registry = sd::Registry::serve(&docker, &stand_in.image, "kindest/node", "v1.35.0").await;
    // Only the registry has the layer now, so it is really downloaded.
    docker
        .remove_image(
            &stand_in.image,
            Some(
                bollard::query_parameters::RemoveImageOptionsBuilder::default()
                    .force(true)
                    .build(),
            ),
            None,
        )
        .await
        .unwrap();
    let image = format!(
        "{}/kindest/node:v1.35.0@{}",
        registry.addr, registry.manifest_digest
    );
    let recorder = Recorder::default();
    let created = kind::create(&options(name, &image), &recorder, &CancellationToken::new())
        .await
        .expect("create with a pulled image");
    let events = recorder.lines();
    assert!(
        events
            .iter()
            .any(|e| e.contains("pulling node image") && e.ends_with("(attempt 1/4)")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e == "node image layers pulled: 1/1"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("node image bytes downloaded: ")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e.starts_with("pulled ")),
        "{events:?}"
    );
    let blob_gets = registry.blob_gets.load(std::sync::atomic::Ordering::SeqCst);
    assert!(blob_gets >= 1);
    let c = docker
        .inspect_container(&created.node, None::<InspectContainerOptions>)
        .await
        .unwrap();
    assert_eq!(c.config.unwrap().image.as_deref(), Some(image.as_str()));
    let pulled = docker
        .inspect_image(&image)
        .await
        .expect("the pinned image is present");
    assert!(
        pulled
            .repo_digests
            .unwrap_or_default()
            .iter()
            .any(|d| d.ends_with(&registry.manifest_digest))
    );
    // Present now: a second cluster from the same image does not pull again.
    kind::delete(&delete_options(name), &capi_manage::observe::Silent)
        .await
        .unwrap();
    let recorder = Recorder::default();
    kind::create(&options(name, &image), &recorder, &CancellationToken::new())
        .await
        .expect("create again");
    assert!(!recorder.lines().iter().any(|e| e.contains("pulling")));
    assert_eq!(
        registry.blob_gets.load(std::sync::atomic::Ordering::SeqCst),
        blob_gets
    );
    kind::delete(&delete_options(name), &capi_manage::observe::Silent)
        .await
        .unwrap();
    let _ = docker
        .remove_image(
            &image,
            Some(
                bollard::query_parameters::RemoveImageOptionsBuilder::default()
                    .force(true)
                    .build(),
            ),
            None,
        )
        .await;
}

/// A missing image is pulled with retries; here from a registry address on loopback where
/// nothing listens, so every attempt fails fast and the error names the image and the count.
#[tokio::test]
async fn a_missing_image_is_pulled_with_retries_then_a_one_line_error() {
    let _serial = SERIAL.lock().await;
    let docker = sd::engine().await;
    let name = "capi-kind-it-pull";
    let _cleanup_name = clean(name).await;
    let image = format!(
        "127.0.0.1:{}/kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f",
        free_port()
    );
    let mut opts = options(name, &image);
    opts.pull_attempts = 2;
    let recorder = Recorder::default();
    let err = kind::create(&opts, &recorder, &CancellationToken::new())
        .await
        .unwrap_err();
    let CreateError::Pull { attempts, .. } = &err else {
        panic!("expected a pull error, got {err:?}");
    };
    assert_eq!(*attempts, 2);
    assert_eq!(
        one_line(&err),
        format!(
            "cannot pull node image {image} after 2 attempts (air-gapped? `docker load` the image and name it by tag as the node image)"
        )
    );
    let events = recorder.lines();
    assert!(
        events.iter().any(|e| e.ends_with("(attempt 1/2)")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e.ends_with("(attempt 2/2)")),
        "{events:?}"
    );
    assert!(
        sd::containers_labelled(&docker, kind::CLUSTER_LABEL, name)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_cancelled_create_stops_before_making_anything() {
    let _serial = SERIAL.lock().await;
    let docker = sd::engine().await;
    let stand_in = sd::build_stand_in(&docker, &StandIn::default()).await;
    let name = "capi-kind-it-cancel";
    let _cleanup_name = clean(name).await;
    let cancel = CancellationToken::new();
    cancel.cancel();
    let err = kind::create(
        &options(name, &stand_in.image),
        &capi_manage::observe::Silent,
        &cancel,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, CreateError::Cancelled), "{err:?}");
    assert!(
        sd::containers_labelled(&docker, kind::CLUSTER_LABEL, name)
            .await
            .is_empty()
    );
}

fn one_line(e: &impl std::fmt::Display) -> String {
    let s = e.to_string();
    assert!(!s.contains('\n'), "one line: {s}");
    s
}

#[tokio::test]
async fn no_docker_and_port_in_use_are_one_line_errors() {
    let _serial = SERIAL.lock().await;
    let docker = sd::engine().await;

    // No Docker at the address.
    let dir = tempfile::tempdir().unwrap();
    let host = format!("unix://{}/docker.sock", dir.path().display());
    let mut opts = options("capi-kind-it-nodocker", "unused");
    opts.docker_host = Some(host.clone());
    let err = kind::create(
        &opts,
        &capi_manage::observe::Silent,
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, CreateError::Docker(DockerError::NotRunning { .. })),
        "{err:?}"
    );
    assert_eq!(
        one_line(&err),
        format!(
            "no Docker engine at {host}: start dockerd (or Docker Desktop), or set DOCKER_HOST to where it listens"
        )
    );
    // Same through TCP (nothing listens on this loopback port).
    let tcp = format!("tcp://127.0.0.1:{}", free_port());
    let err = kind::delete(
        &DeleteOptions {
            name: "x".into(),
            docker_host: Some(tcp.clone()),
        },
        &capi_manage::observe::Silent,
    )
    .await
    .unwrap_err();
    assert!(
        one_line(&err).starts_with(&format!("no Docker engine at {tcp}")),
        "{err}"
    );

    // The API server port is taken.
    let name = "capi-kind-it-port";
    let stand_in = sd::build_stand_in(&docker, &StandIn::default()).await;
    let _cleanup_name = clean(name).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut opts = options(name, &stand_in.image);
    opts.api_server_port = Some(port);
    let err = kind::create(
        &opts,
        &capi_manage::observe::Silent,
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, CreateError::PortInUse { port: p } if p == port),
        "{err:?}"
    );
    assert_eq!(
        one_line(&err),
        format!(
            "port 127.0.0.1:{port} is already in use: free it or choose another API server port"
        )
    );
    // Nothing half-made is left to be "reused" by a rerun.
    assert!(
        sd::containers_labelled(&docker, kind::CLUSTER_LABEL, name)
            .await
            .is_empty()
    );
    drop(taken);
    kind::delete(&delete_options(name), &capi_manage::observe::Silent)
        .await
        .unwrap();
}

/// Permission denied needs a user who is not root (root opens any socket): the test runs itself
/// again as `nobody` against a root-only socket.
#[tokio::test]
async fn permission_denied_on_the_socket_is_a_one_line_error() {
    const CHILD: &str = "CAPI_MANAGE_KIND_TEST_SOCKET";
    if let Ok(host) = std::env::var(CHILD) {
        let err = kind::delete(
            &DeleteOptions {
                name: "x".into(),
                docker_host: Some(host),
            },
            &capi_manage::observe::Silent,
        )
        .await
        .unwrap_err();
        println!("CHILD-ERROR: {err}");
        return;
    }
    assert_eq!(
        unsafe_geteuid(),
        0,
        "this test makes a root-only socket and runs itself as `nobody`: run the tests as root (CI does)"
    );
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("docker.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let host = format!("unix://{}", path.display());

    // The test binary may sit under a directory `nobody` cannot enter (CI builds under /root):
    // run a copy from a directory it can.
    let bin_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(bin_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = bin_dir.path().join("it");
    std::fs::copy(std::env::current_exe().unwrap(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    use std::os::unix::process::CommandExt;
    let out = std::process::Command::new(&bin)
        .args([
            "--exact",
            "kind::permission_denied_on_the_socket_is_a_one_line_error",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, &host)
        .uid(65534)
        .gid(65534)
        .current_dir("/")
        .output()
        .expect("run the test binary as nobody");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("CHILD-ERROR: ").map(|(_, e)| e))
        .unwrap_or_else(|| panic!("no error line from the child: {stdout}"));
    assert_eq!(
        line,
        format!(
            "permission denied on the Docker socket {host}: add this user to the `docker` group (then log in again) or run as root"
        )
    );
}

fn unsafe_geteuid() -> u32 {
    // /proc/self/status: "Uid: real effective saved fs".
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    uids.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[tokio::test]
async fn invalid_names_and_foreign_containers_are_refused() {
    let _serial = SERIAL.lock().await;
    let docker = sd::engine().await;
    let err = kind::create(
        &options("Bad Name", "unused"),
        &capi_manage::observe::Silent,
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, CreateError::InvalidName { .. }));
    one_line(&err);

    // A container that happens to be called <name>-control-plane but is no kind node.
    let name = "capi-kind-it-foreign";
    let node = kind::control_plane_name(name);
    let stand_in = sd::build_stand_in(&docker, &StandIn::default()).await;
    let _cleanup_name = clean(name).await;
    let _ = docker
        .remove_container(
            &node,
            Some(
                bollard::query_parameters::RemoveContainerOptionsBuilder::default()
                    .force(true)
                    .build(),
            ),
        )
        .await;
    docker
        .create_container(
            Some(
                bollard::query_parameters::CreateContainerOptionsBuilder::default()
                    .name(&node)
                    .build(),
            ),
            bollard::models::ContainerCreateBody {
                image: Some(stand_in.image.clone()),
                labels: Some(HashMap::from([(
                    "purpose".to_string(),
                    "not kind".to_string(),
                )])),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let err = kind::create(
        &options(name, &stand_in.image),
        &capi_manage::observe::Silent,
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, CreateError::NameTaken { .. }), "{err:?}");
    one_line(&err);
    docker
        .remove_container(
            &node,
            Some(
                bollard::query_parameters::RemoveContainerOptionsBuilder::default()
                    .force(true)
                    .v(true)
                    .build(),
            ),
        )
        .await
        .unwrap();
}
