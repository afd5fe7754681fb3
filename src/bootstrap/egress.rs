//! Every host a bootstrap contacts, with the step that contacts it and from where, so that an
//! operator can open exactly those in a firewall. Pure: the caller gathers the inputs (the
//! Docker address, the images, the chart repositories, the git remote, the cloud's auth URL).

use serde::Serialize;

use crate::components::{ChartSource, mirror_image};

/// What [`egress`] needs.
#[derive(Debug, Clone, Default)]
pub struct EgressInput {
    /// The Docker engine's address (`unix:///…` or `tcp://host:port`).
    pub docker_host: String,
    /// The kind node image (normalised reference, registry first).
    pub node_image: String,
    /// The images the components run on kind and on the new cluster (normalised references,
    /// registry first, as `images list` gives them).
    pub images: Vec<String>,
    /// Images are pulled from this registry instead (`HOST[:PORT][/PATH]`), paths and tags
    /// kept, as `vendor --image-registry` rewrites them.
    pub image_registry: Option<String>,
    /// The kind node has every component image loaded before the first install (`bootstrap
    /// --images`): it pulls none.
    pub images_preloaded: bool,
    /// The kind node's containerd pulls a registry's images through these mirrors (`bootstrap
    /// --registry-mirror HOST=URL`; HOST `_default` for every other registry).
    pub mirrors: Vec<(String, String)>,
    /// The charts with their Helm repositories.
    pub charts: Vec<ChartSource>,
    /// The git remote bootstrap pushes to and Flux pulls from.
    pub git_url: Option<String>,
    /// The cloud's Keystone URL.
    pub auth_url: String,
}

/// Who opens a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// The host running capi-manage.
    ThisHost,
    /// The Docker engine (pulling the node image).
    DockerEngine,
    /// The kind cluster's node and controllers.
    KindCluster,
    /// The new cluster's nodes and controllers.
    NewCluster,
}

/// One destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Destination {
    /// The host (name or address); `None` when it is known only later (see `note`).
    pub host: Option<String>,
    /// The TCP port; `None` for a unix socket.
    pub port: Option<u16>,
    /// `https`, `http`, `ssh`, `git`, `tcp` or `unix`.
    pub protocol: String,
    /// What is fetched or done there.
    pub purpose: String,
    /// The bootstrap steps (ids, as in the state file) that contact it, in order.
    pub steps: Vec<&'static str>,
    /// Who connects.
    pub from: Vec<Origin>,
    /// A loopback address or a local socket: nothing to open in a firewall.
    pub local: bool,
    /// What cannot be known offline, or what else the destination may lead to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `host[:port]` of `url` with the scheme's default port, and the scheme.
fn url_endpoint(url: &str) -> Option<(String, u16, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let default = match scheme {
        "https" | "oci" => 443,
        "http" => 80,
        "ssh" | "git+ssh" => 22,
        "git" => 9418,
        "tcp" => 2375,
        _ => return None,
    };
    let (host, port) = split_host_port(authority, default)?;
    let protocol = match scheme {
        "git+ssh" => "ssh",
        "oci" => "https",
        s => s,
    };
    Some((host, port, protocol.to_string()))
}

/// `host` and `port` of `authority` (`[v6]:port`, `host:port`, `host`).
fn split_host_port(authority: &str, default: u16) -> Option<(String, u16)> {
    if authority.is_empty() {
        return None;
    }
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => default,
        };
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_string(), p.parse().ok()?)),
        _ => Some((authority.to_string(), default)),
    }
}

/// The git remote's endpoint: a URL, or the scp-like `user@host:path` (ssh, port 22).
fn git_endpoint(url: &str) -> Option<(String, u16, String)> {
    if url.contains("://") {
        return if url.starts_with("file://") {
            None
        } else {
            url_endpoint(url)
        };
    }
    let (authority, _) = url.split_once(':')?;
    let host = authority.rsplit('@').next()?;
    (!host.is_empty() && !host.contains('/')).then(|| (host.to_string(), 22, "ssh".to_string()))
}

/// Whether `host` is loopback (`localhost`, 127.0.0.0/8, `::1`).
pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The registry host of a normalised reference and its port (registries speak HTTPS on 443
/// unless a port is written).
fn registry_of(image: &str) -> Option<(String, u16)> {
    let registry = image.split('/').next()?;
    let (host, port) = split_host_port(registry, 443)?;
    // Docker Hub's API host (what `docker.io` means to a client).
    let host = if host == "docker.io" {
        "registry-1.docker.io".to_string()
    } else {
        host
    };
    Some((host, port))
}

const REDIRECT_NOTE: &str = "a public registry may redirect layer downloads to its storage or CDN hosts: mirror the images (`images push`, `vendor --image-registry`) rather than opening those";

/// Component images pulled from one endpoint.
struct Pull {
    endpoint: (String, u16, String),
    /// Who pulls there.
    from: Vec<Origin>,
    /// The images.
    images: std::collections::BTreeSet<String>,
    /// `mirror URL of HOST`, for a kind node's mirror.
    mirror_of: Option<String>,
}

/// Records `image` pulled from `endpoint` by `who`.
fn count(
    pulls: &mut Vec<Pull>,
    endpoint: (String, u16, String),
    image: &str,
    who: Origin,
    mirror_of: Option<String>,
) {
    let i = match pulls.iter().position(|p| p.endpoint == endpoint) {
        Some(i) => i,
        None => {
            pulls.push(Pull {
                endpoint,
                from: Vec::new(),
                images: Default::default(),
                mirror_of: None,
            });
            pulls.len() - 1
        }
    };
    let p = &mut pulls[i];
    if !p.from.contains(&who) {
        p.from.push(who);
    }
    p.images.insert(image.to_string());
    if p.mirror_of.is_none() {
        p.mirror_of = mirror_of;
    }
}

/// Every destination of a bootstrap with `input`, merged by host, port and protocol, in the
/// order the bootstrap first contacts them.
pub fn egress(input: &EgressInput) -> Vec<Destination> {
    let mut out: Vec<Destination> = Vec::new();
    let mut add = |d: Destination| {
        if let Some(e) = out.iter_mut().find(|e| {
            e.host.is_some() && e.host == d.host && e.port == d.port && e.protocol == d.protocol
        }) {
            e.purpose = format!("{}; {}", e.purpose, d.purpose);
            for s in d.steps {
                if !e.steps.contains(&s) {
                    e.steps.push(s);
                }
            }
            for f in d.from {
                if !e.from.contains(&f) {
                    e.from.push(f);
                }
            }
            if e.note.is_none() {
                e.note = d.note;
            }
        } else {
            out.push(d);
        }
    };

    // The Docker engine.
    let docker = &input.docker_host;
    match docker.strip_prefix("unix://") {
        Some(path) => add(Destination {
            host: None,
            port: None,
            protocol: "unix".into(),
            purpose: format!("the Docker engine at {path} (creates the kind node)"),
            steps: vec!["kind-cluster", "delete-kind"],
            from: vec![Origin::ThisHost],
            local: true,
            note: None,
        }),
        None => {
            let endpoint = url_endpoint(docker);
            add(Destination {
                local: endpoint.as_ref().is_some_and(|(h, _, _)| is_loopback(h)),
                host: endpoint.as_ref().map(|(h, _, _)| h.clone()),
                port: endpoint.as_ref().map(|(_, p, _)| *p),
                protocol: "tcp".into(),
                purpose: "the Docker engine (creates the kind node)".into(),
                steps: vec!["kind-cluster", "delete-kind"],
                from: vec![Origin::ThisHost],
                note: endpoint
                    .is_none()
                    .then(|| format!("DOCKER_HOST `{docker}` names no host")),
            });
        }
    }

    // Registries: the node image through the engine, the components' images on both clusters.
    let mirrored = |image: &str| match &input.image_registry {
        Some(r) => mirror_image(image, r),
        None => image.to_string(),
    };
    if let Some((host, port)) = registry_of(&input.node_image) {
        add(Destination {
            local: is_loopback(&host),
            host: Some(host),
            port: Some(port),
            protocol: "https".into(),
            purpose: format!(
                "registry of the kind node image {} (unless the engine has it)",
                input.node_image
            ),
            steps: vec!["kind-cluster"],
            from: vec![Origin::DockerEngine],
            note: Some(REDIRECT_NOTE.into()),
        });
    }
    // Who pulls from where: the new cluster from each image's registry; the kind node from
    // there too, unless it has the images loaded or a mirror of that registry.
    let mut registries: Vec<Pull> = Vec::new();
    for image in &input.images {
        let image = mirrored(image);
        let Some((host, port)) = registry_of(&image) else {
            continue;
        };
        let raw = image.split('/').next().unwrap_or_default();
        let kind_mirror = input
            .mirrors
            .iter()
            .find(|(h, _)| h == raw)
            .or_else(|| input.mirrors.iter().find(|(h, _)| h == "_default"));
        if !input.images_preloaded {
            match kind_mirror.and_then(|(h, url)| Some((h, url, url_endpoint(url)?))) {
                Some((h, url, (mh, mp, proto))) => count(
                    &mut registries,
                    (mh, mp, proto),
                    &image,
                    Origin::KindCluster,
                    Some(format!("mirror {url} of {h}")),
                ),
                None => count(
                    &mut registries,
                    (host.clone(), port, "https".into()),
                    &image,
                    Origin::KindCluster,
                    None,
                ),
            }
        }
        count(
            &mut registries,
            (host, port, "https".into()),
            &image,
            Origin::NewCluster,
            None,
        );
    }
    for r in registries {
        let (host, port, protocol) = r.endpoint;
        let local = is_loopback(&host);
        let mut steps = Vec::new();
        if r.from.contains(&Origin::KindCluster) {
            steps.push("kind-components");
        }
        if r.from.contains(&Origin::NewCluster) {
            steps.push("target-components");
        }
        let purpose = match &r.mirror_of {
            Some(m) => format!("{m}: {} component image(s)", r.images.len()),
            None => format!("registry of {} component image(s)", r.images.len()),
        };
        let note = if r.mirror_of.is_some() {
            Some(
                "containerd falls back to the mirrored registry itself when the mirror fails"
                    .into(),
            )
        } else {
            (!local && input.image_registry.is_none()).then(|| REDIRECT_NOTE.into())
        };
        add(Destination {
            note,
            local,
            host: Some(host),
            port: Some(port),
            protocol,
            purpose,
            steps,
            from: r.from,
        });
    }

    // The cloud, as CAPO and the cloud provider reach it.
    match url_endpoint(&input.auth_url) {
        Some((host, port, protocol)) => add(Destination {
            local: is_loopback(&host),
            note: host
                .contains("REPLACE_ME")
                .then(|| "credentials.yaml still holds the placeholder".to_string()),
            host: Some(host),
            port: Some(port),
            protocol,
            purpose: "OpenStack identity (Keystone): the credentials' auth_url".into(),
            steps: vec!["apply-cluster", "cluster-ready", "target-ready"],
            from: vec![Origin::ThisHost, Origin::KindCluster, Origin::NewCluster],
        }),
        None => add(Destination {
            host: None,
            port: None,
            protocol: "https".into(),
            purpose: "OpenStack identity (Keystone)".into(),
            steps: vec!["apply-cluster"],
            from: vec![Origin::KindCluster, Origin::NewCluster],
            local: false,
            note: Some(format!("auth_url `{}` is not a URL", input.auth_url)),
        }),
    }
    add(Destination {
        host: None,
        port: None,
        protocol: "https".into(),
        purpose:
            "OpenStack service endpoints (compute, network, image, load-balancer, block-storage)"
                .into(),
        steps: vec!["apply-cluster", "cluster-ready", "target-ready"],
        from: vec![Origin::KindCluster, Origin::NewCluster],
        local: false,
        note: Some(
            "known only online: the hosts of the service catalog Keystone returns at login".into(),
        ),
    });

    // Chart repositories, fetched by Flux's source-controller.
    for c in &input.charts {
        // An insecure OCI repository is reached over plain HTTP (port 80 unless it says).
        let url = match c.repository.strip_prefix("oci://") {
            Some(rest) if c.plain_http => format!("http://{rest}"),
            _ => c.repository.clone(),
        };
        if let Some((host, port, protocol)) = url_endpoint(&url) {
            add(Destination {
                local: is_loopback(&host),
                host: Some(host),
                port: Some(port),
                protocol,
                purpose: format!(
                    "Helm repository {} (chart {} {})",
                    c.repository, c.name, c.version
                ),
                steps: vec!["apply-cluster", "flux-sync"],
                from: vec![Origin::KindCluster, Origin::NewCluster],
                note: None,
            });
        }
    }

    if !input.charts.is_empty() {
        add(Destination {
            host: None,
            port: None,
            protocol: "https".into(),
            purpose: "registries of the images the charts run (their controllers on kind and the new cluster; the add-ons such as CNI, cloud provider and CSI on the new cluster)".into(),
            steps: vec!["apply-cluster", "cluster-ready", "flux-sync"],
            from: vec![Origin::KindCluster, Origin::NewCluster],
            local: false,
            note: Some(
                "not known offline: the charts' templates and values choose them; set their image registries in the values to a mirror"
                    .into(),
            ),
        });
    }

    // The new cluster's API.
    add(Destination {
        host: None,
        port: Some(6443),
        protocol: "https".into(),
        purpose: "the new cluster's Kubernetes API".into(),
        steps: vec!["cluster-ready", "kubeconfig", "target-components", "move"],
        from: vec![Origin::ThisHost, Origin::KindCluster],
        local: false,
        note: Some(
            "known only after the cluster is created: the API load balancer's (floating) address"
                .into(),
        ),
    });

    // The git remote.
    if let Some(url) = &input.git_url {
        match git_endpoint(url) {
            Some((host, port, protocol)) => add(Destination {
                local: is_loopback(&host),
                host: Some(host),
                port: Some(port),
                protocol,
                purpose: format!("git remote {url}"),
                steps: vec!["push", "flux-sync"],
                from: vec![Origin::ThisHost, Origin::NewCluster],
                note: None,
            }),
            None => add(Destination {
                host: None,
                port: None,
                protocol: "file".into(),
                purpose: format!("git remote {url}"),
                steps: vec!["push"],
                from: vec![Origin::ThisHost],
                local: true,
                note: None,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> EgressInput {
        EgressInput {
            docker_host: "unix:///var/run/docker.sock".into(),
            node_image: "docker.io/kindest/node:v1.33.1".into(),
            images: vec![
                "registry.k8s.io/cluster-api/cluster-api-controller:v1.13.3".into(),
                "registry.k8s.io/capi-openstack/capi-openstack-controller:v0.14.6".into(),
                "ghcr.io/fluxcd/source-controller:v1.7.0".into(),
            ],
            image_registry: None,
            charts: vec![ChartSource {
                name: "openstack-cluster".into(),
                version: "0.27.0".into(),
                repository: "https://azimuth-cloud.github.io/capi-helm-charts".into(),
                plain_http: false,
            }],
            git_url: Some("git@github.com:example/fleet.git".into()),
            auth_url: "https://keystone.example:5000/v3".into(),
            ..Default::default()
        }
    }

    fn hosts(d: &[Destination]) -> Vec<(String, u16)> {
        d.iter()
            .filter_map(|d| Some((d.host.clone()?, d.port?)))
            .collect()
    }

    #[test]
    fn lists_each_host_once_with_its_port() {
        let d = egress(&input());
        assert_eq!(
            hosts(&d),
            [
                ("registry-1.docker.io".to_string(), 443),
                ("registry.k8s.io".to_string(), 443),
                ("ghcr.io".to_string(), 443),
                ("keystone.example".to_string(), 5000),
                ("azimuth-cloud.github.io".to_string(), 443),
                ("github.com".to_string(), 22),
            ]
        );
        let k8s = d
            .iter()
            .find(|d| d.host.as_deref() == Some("registry.k8s.io"))
            .unwrap();
        assert!(k8s.purpose.contains("2 component image"), "{}", k8s.purpose);
        assert!(d.iter().any(|d| d.host.is_none() && d.port == Some(6443)));
    }

    #[test]
    fn a_mirror_leaves_only_local_hosts() {
        let mut i = input();
        i.image_registry = Some("127.0.0.1:5000/mirror".into());
        i.node_image = "127.0.0.1:5000/mirror/kindest/node:v1.33.1".into();
        i.charts[0].repository = "http://127.0.0.1:8080/charts".into();
        i.git_url = Some("ssh://git@127.0.0.1:2222/fleet.git".into());
        i.auth_url = "http://[::1]:5000/v3".into();
        i.docker_host = "tcp://127.0.0.1:2376".into();
        let d = egress(&i);
        assert!(
            d.iter().filter(|d| d.host.is_some()).all(|d| d.local),
            "{d:?}"
        );
        assert!(hosts(&d).contains(&("127.0.0.1".to_string(), 2222)));
        assert!(hosts(&d).contains(&("::1".to_string(), 5000)));
    }

    #[test]
    fn an_insecure_oci_chart_repository_is_plain_http() {
        let mut i = input();
        let mut chart_egress = |repository: &str, plain_http: bool| {
            i.charts[0].repository = repository.into();
            i.charts[0].plain_http = plain_http;
            let d = egress(&i);
            let c = d.iter().find(|d| d.purpose.starts_with("Helm repository"));
            let c = c.unwrap();
            (c.protocol.clone(), c.port)
        };
        assert_eq!(
            chart_egress("oci://charts.internal/capi", true),
            ("http".to_string(), Some(80))
        );
        assert_eq!(
            chart_egress("oci://charts.internal:5000/capi", false),
            ("https".to_string(), Some(5000))
        );
    }

    #[test]
    fn preloaded_images_and_mirrors_move_the_kind_nodes_pulls() {
        let from = |d: &[Destination], host: &str| {
            d.iter()
                .find(|d| d.host.as_deref() == Some(host))
                .map(|d| (d.from.clone(), d.steps.clone()))
        };
        let mut i = input();
        i.images_preloaded = true;
        let d = egress(&i);
        assert_eq!(
            from(&d, "ghcr.io"),
            Some((vec![Origin::NewCluster], vec!["target-components"]))
        );

        let mut i = input();
        i.mirrors = vec![
            ("registry.k8s.io".into(), "https://127.0.0.1:5443".into()),
            ("_default".into(), "http://10.0.0.9:5000".into()),
        ];
        let d = egress(&i);
        let k8s_mirror = d
            .iter()
            .find(|d| d.host.as_deref() == Some("127.0.0.1"))
            .unwrap();
        assert!(k8s_mirror.local);
        assert_eq!(k8s_mirror.port, Some(5443));
        assert_eq!(k8s_mirror.from, vec![Origin::KindCluster]);
        assert!(
            k8s_mirror
                .purpose
                .contains("of registry.k8s.io: 2 component image(s)")
        );
        let other = from(&d, "10.0.0.9").unwrap();
        assert_eq!(other, (vec![Origin::KindCluster], vec!["kind-components"]));
        // The new cluster still pulls from the registries themselves.
        assert_eq!(
            from(&d, "registry.k8s.io"),
            Some((vec![Origin::NewCluster], vec!["target-components"]))
        );
        let k8s = d
            .iter()
            .find(|d| d.host.as_deref() == Some("registry.k8s.io"))
            .unwrap();
        assert!(k8s.purpose.contains("2 component image"), "{}", k8s.purpose);
    }

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            git_endpoint("https://user@git.example:8443/x.git"),
            Some(("git.example".into(), 8443, "https".into()))
        );
        assert_eq!(git_endpoint("file:///srv/x.git"), None);
        assert_eq!(
            registry_of("127.0.0.1:5000/a/b:1"),
            Some(("127.0.0.1".into(), 5000))
        );
        assert!(is_loopback("127.0.0.2") && is_loopback("localhost") && !is_loopback("10.0.0.1"));
    }
}
