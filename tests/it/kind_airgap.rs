//! The kind node of an air-gapped bootstrap, against the real Docker engine and the stand-in
//! node (tests/support/docker.rs): an OCI image layout streamed into `ctr images import` as a
//! tar of the layout, and containerd's registry mirrors (`hosts.toml`, the CA, `config_path`)
//! read back from the node container.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use capi_manage::kind::{
    self, CreateOptions, LoadOptions, RegistryCa, RegistryConfig, RegistryMirror,
};
use capi_manage::observe::Event;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::kind::{SERIAL, clean, options};
use crate::support::docker::{self as sd, StandIn};

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl capi_manage::observe::Observer for Recorder {
    fn event(&self, event: Event) {
        self.0.lock().unwrap().push(event.to_string());
    }
}

async fn cat(docker: &bollard::Docker, node: &str, path: &str) -> String {
    let (code, out) = sd::exec(docker, node, &["cat", path]).await;
    assert_eq!(code, 0, "cat {path} in {node}: {out}");
    out
}

fn sha256(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    format!(
        "sha256:{}",
        d.as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// A real CA certificate, PEM.
fn ca_pem() -> String {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().pem()
}

#[tokio::test]
async fn mirrors_write_containerds_hosts_toml_and_ca_once_and_patch_config_path() {
    let _serial = SERIAL.lock().await;
    let docker = sd::engine().await;
    let name = "capi-kind-it-mirrors";
    let stand_in = sd::build_stand_in(&docker, &StandIn::default()).await;
    let _cleanup = clean(name).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    let pem = ca_pem();
    std::fs::write(&ca_file, &pem).unwrap();
    let mirror = |s: &str| RegistryMirror::parse(s).unwrap();
    let registry = RegistryConfig::new(
        vec![
            mirror("docker.io=https://mirror.internal:5443"),
            mirror("registry.k8s.io=http://127.0.0.1:5000"),
            mirror("docker.io=http://127.0.0.1:5000/"),
        ],
        Some(RegistryCa::read(&ca_file).unwrap()),
    )
    .unwrap();
    let opts = CreateOptions {
        registry,
        ..options(name, &stand_in.image)
    };
    let recorder = Recorder::default();
    let created = kind::create(&opts, &recorder, &CancellationToken::new())
        .await
        .expect("create");
    let node = created.node.clone();

    // containerd's hosts.toml format: the upstream as server, then each mirror in order.
    let docker_io = cat(
        &docker,
        &node,
        "/etc/containerd/certs.d/docker.io/hosts.toml",
    )
    .await;
    assert_eq!(
        docker_io,
        r#"server = "https://registry-1.docker.io"

[host."https://mirror.internal:5443"]
  capabilities = ["pull", "resolve"]
  ca = "/etc/containerd/certs.d/docker.io/ca.crt"

[host."http://127.0.0.1:5000"]
  capabilities = ["pull", "resolve"]
"#
    );
    let parsed: toml::Value = toml::from_str(&docker_io).unwrap();
    assert_eq!(
        parsed["host"]["https://mirror.internal:5443"]["capabilities"],
        toml::Value::Array(vec!["pull".into(), "resolve".into()])
    );
    let k8s = cat(
        &docker,
        &node,
        "/etc/containerd/certs.d/registry.k8s.io/hosts.toml",
    )
    .await;
    assert_eq!(
        k8s,
        "server = \"https://registry.k8s.io\"\n\n[host.\"http://127.0.0.1:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
    );
    // The CA next to the file that names it; none for a host with only http:// mirrors.
    assert_eq!(
        cat(&docker, &node, "/etc/containerd/certs.d/docker.io/ca.crt").await,
        pem
    );
    let (code, _) = sd::exec(
        &docker,
        &node,
        &[
            "test",
            "-e",
            "/etc/containerd/certs.d/registry.k8s.io/ca.crt",
        ],
    )
    .await;
    assert_ne!(code, 0);

    // The stand-in's containerd (1.7 format) did not read certs.d: config_path patched in as
    // kind's documented patch does, the file's other settings kept, containerd restarted.
    let config = cat(&docker, &node, "/etc/containerd/config.toml").await;
    let config: toml::Value = toml::from_str(&config).unwrap();
    let cri = &config["plugins"]["io.containerd.grpc.v1.cri"];
    assert_eq!(
        cri["registry"]["config_path"].as_str(),
        Some("/etc/containerd/certs.d")
    );
    assert_eq!(
        cri["sandbox_image"].as_str(),
        Some("registry.k8s.io/pause:3.10")
    );
    assert_eq!(cri["containerd"]["snapshotter"].as_str(), Some("overlayfs"));
    assert_eq!(
        cat(&docker, &node, "/kind/stand-in/systemctl.log").await,
        "systemctl restart containerd\n"
    );
    // Before kubeadm init, as kind applies containerdConfigPatches.
    let lines = recorder.0.lock().unwrap().clone();
    let mirror_at = lines
        .iter()
        .position(|l| l.contains("registry mirror in") && l.contains("docker.io pulls through"))
        .expect("mirror reported");
    let init_at = lines
        .iter()
        .position(|l| l.contains("kubeadm init"))
        .expect("kubeadm init reported");
    assert!(mirror_at < init_at, "{lines:#?}");

    // A rerun (the cluster reused) changes nothing and restarts nothing.
    let recorder = Recorder::default();
    let again = kind::create(&opts, &recorder, &CancellationToken::new())
        .await
        .expect("reuse");
    assert!(again.reused);
    assert_eq!(
        cat(
            &docker,
            &node,
            "/etc/containerd/certs.d/docker.io/hosts.toml"
        )
        .await,
        docker_io
    );
    assert_eq!(
        cat(&docker, &node, "/kind/stand-in/systemctl.log").await,
        "systemctl restart containerd\n"
    );
    let lines = recorder.0.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("already set: docker.io pulls through https://mirror.internal:5443, http://127.0.0.1:5000")),
        "{lines:#?}"
    );
}

/// The stand-in image served by a registry on loopback (its `docker save` as a Docker v2
/// manifest) and pulled into an OCI image layout by `images::pull`, as `images pull --to`
/// does; returns the name the layout records.
async fn pulled_layout(docker: &bollard::Docker, image: &str, to: &Path) -> String {
    let registry = sd::Registry::serve(docker, image, "kindest/node", "v1.35.0").await;
    let name = format!("{}/kindest/node:v1.35.0", registry.addr);
    capi_manage::images::pull(
        &[capi_manage::images::Reference::parse(&name).unwrap()],
        to,
        &capi_manage::images::PullOptions::default(),
        &capi_manage::observe::Silent,
        &CancellationToken::new(),
    )
    .await
    .expect("pull into a layout");
    name
}

/// The members of a tar archive, name -> content.
fn members(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(archive);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut content = Vec::new();
            e.read_to_end(&mut content).unwrap();
            (name, content)
        })
        .collect()
}

/// Streams `files` into the node of kind cluster `name`.
async fn load_files(
    name: &str,
    files: &[kind::ArchiveFile],
) -> Result<kind::Loaded, kind::LoadError> {
    kind::load_image_files(
        &LoadOptions {
            name: name.to_string(),
            docker_host: Some(sd::docker_host()),
        },
        files,
        &capi_manage::observe::Silent,
        &CancellationToken::new(),
    )
    .await
}

#[tokio::test]
async fn an_image_layout_streams_into_ctr_as_a_tar_of_its_blobs() {
    let _serial = SERIAL.lock().await;
    let docker = sd::engine().await;
    let name = "capi-kind-it-layout";
    let stand_in = sd::build_stand_in(&docker, &StandIn::default()).await;
    let _cleanup = clean(name).await;
    let created = kind::create(
        &options(name, &stand_in.image),
        &capi_manage::observe::Silent,
        &CancellationToken::new(),
    )
    .await
    .expect("create");
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let image = pulled_layout(&docker, &stand_in.image, &layout).await;
    // A chart in the same layout (as `images pull --chart` adds it) is not an image.
    let tgz = dir.path().join("demo-0.1.0.tgz");
    std::fs::write(&tgz, chart_tgz()).unwrap();
    let l = capi_manage::images::Layout::open(&layout).unwrap();
    capi_manage::images::add_chart(&l, &tgz, "127.0.0.1:5000/charts").expect("add chart");

    let read = capi_manage::bootstrap::read_layout(&layout).expect("a usable layout");
    assert_eq!(read.images, [image], "{:?}", read.images);
    assert_eq!(read.charts.len(), 1, "{:?}", read.charts);

    let started = Instant::now();
    let loaded = load_files(name, &read.files).await.expect("load");
    let took = started.elapsed();

    // ctr was asked as kind asks it, and fed a tar of the layout.
    assert_eq!(
        cat(&docker, &created.node, "/kind/stand-in/ctr.log")
            .await
            .trim(),
        "ctr --namespace=k8s.io images import --all-platforms --digests --snapshotter=native -"
    );
    let kept = download(&docker, &created.node, "/var/lib/stand-in/import.tar").await;
    assert_eq!(kept.len() as u64, loaded.bytes);
    let entries = members(&kept);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[..2], ["oci-layout", "index.json"], "{names:?}");
    let files: BTreeMap<&str, &Vec<u8>> = entries.iter().map(|(n, c)| (n.as_str(), c)).collect();
    assert_eq!(
        files["oci-layout"].as_slice(),
        std::fs::read(layout.join("oci-layout")).unwrap().as_slice()
    );
    // Every blob is named by its digest and holds the layout's bytes.
    for (n, content) in &entries[2..] {
        let hex = n.strip_prefix("blobs/sha256/").expect("a blob");
        assert_eq!(sha256(content), format!("sha256:{hex}"));
        assert_eq!(
            *content,
            std::fs::read(layout.join(n)).unwrap(),
            "{n} as in the layout"
        );
    }
    // index.json names the image, not the chart, and everything the image reaches is there.
    let index: serde_json::Value = serde_json::from_slice(files["index.json"]).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{index}");
    let top = manifests[0]["digest"].as_str().unwrap();
    let mut reach = vec![top.to_string()];
    let mut blobs = 0;
    while let Some(d) = reach.pop() {
        let body = files[format!("blobs/sha256/{}", &d[7..]).as_str()];
        blobs += 1;
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        for list in ["manifests", "layers"] {
            for c in v[list].as_array().into_iter().flatten() {
                reach.push(c["digest"].as_str().unwrap().to_string());
            }
        }
        if let Some(c) = v["config"]["digest"].as_str() {
            assert!(files.contains_key(format!("blobs/sha256/{}", &c[7..]).as_str()));
            blobs += 1;
        }
    }
    assert_eq!(blobs, entries.len() - 2, "no blob the image does not reach");
    eprintln!(
        "streamed {} bytes ({} blobs) into the node in {took:?}",
        loaded.bytes,
        entries.len() - 2
    );

    // A flipped byte in a layer stops the load, naming the blob.
    let layer = entries
        .iter()
        .filter(|(n, _)| n.starts_with("blobs/"))
        .max_by_key(|(_, c)| c.len())
        .unwrap()
        .0
        .clone();
    let path = layout.join(&layer);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let err = load_files(name, &read.files).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&layer) && msg.contains("does not match its digest"),
        "{msg}"
    );
}

/// A minimal chart archive.
fn chart_tgz() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let chart = b"apiVersion: v2\nname: demo\nversion: 0.1.0\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(chart.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "demo/Chart.yaml", &chart[..])
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

/// A file of the container, through the engine's archive download.
async fn download(docker: &bollard::Docker, container: &str, path: &str) -> Vec<u8> {
    let options = bollard::query_parameters::DownloadFromContainerOptionsBuilder::default()
        .path(path)
        .build();
    let mut stream = docker.download_from_container(container, Some(options));
    let mut archive = Vec::new();
    while let Some(chunk) = stream.next().await {
        archive.extend_from_slice(&chunk.expect("download"));
    }
    members(&archive).pop().expect("the file").1
}
