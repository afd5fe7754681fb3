//! The `kind` Docker network, created and deduplicated as kind's docker provider does.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{Ipam, IpamConfig, NetworkCreateRequest};
use bollard::query_parameters::{InspectNetworkOptions, ListNetworksOptionsBuilder};

use super::config::ula_subnet;
use super::docker::DockerError;
use crate::observe::{Observer, ObserverExt};

/// The network every kind node joins (kind's fixed name; a user-defined bridge for its DNS).
pub const NETWORK_NAME: &str = "kind";

/// Networks named exactly `name` (Docker's name filter matches substrings), sorted as kind sorts
/// them: most attached containers first, then by id.
async fn networks_named(docker: &Docker, name: &str) -> Result<Vec<String>, DockerError> {
    let mut filters = HashMap::new();
    filters.insert("name".to_string(), vec![name.to_string()]);
    let list = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(DockerError::api("list networks"))?;
    let mut found: Vec<(usize, String)> = Vec::new();
    for n in list {
        if n.name.as_deref() != Some(name) {
            continue;
        }
        let Some(id) = n.id else { continue };
        // The list does not fill in containers; inspect for the count.
        let containers = match docker
            .inspect_network(&id, None::<InspectNetworkOptions>)
            .await
        {
            Ok(n) => n.containers.map_or(0, |c| c.len()),
            Err(_) => 0,
        };
        found.push((containers, id));
    }
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    Ok(found.into_iter().map(|(_, id)| id).collect())
}

/// Keeps the first of several networks named `name` (two racing creators can make duplicates)
/// and says whether one exists.
async fn dedupe(docker: &Docker, name: &str) -> Result<bool, DockerError> {
    let ids = networks_named(docker, name).await?;
    for id in ids.iter().skip(1) {
        if let Err(e) = docker.remove_network(id).await {
            let e = DockerError::api(format!("remove duplicate network {id}"))(e);
            if !e.is_not_found() {
                return Err(e);
            }
        }
    }
    Ok(!ids.is_empty())
}

/// The MTU of Docker's default bridge, when it sets one.
async fn default_bridge_mtu(docker: &Docker) -> Option<String> {
    let bridge = docker
        .inspect_network("bridge", None::<InspectNetworkOptions>)
        .await
        .ok()?;
    let mtu = bridge
        .options?
        .get("com.docker.network.driver.mtu")?
        .clone();
    mtu.parse::<u32>().ok().filter(|m| *m > 0)?;
    Some(mtu)
}

async fn create(
    docker: &Docker,
    name: &str,
    ipv6_subnet: Option<&str>,
    mtu: Option<&str>,
) -> Result<(), DockerError> {
    let mut options = HashMap::new();
    options.insert(
        "com.docker.network.bridge.enable_ip_masquerade".to_string(),
        "true".to_string(),
    );
    if let Some(mtu) = mtu {
        options.insert("com.docker.network.driver.mtu".to_string(), mtu.to_string());
    }
    let request = NetworkCreateRequest {
        name: name.to_string(),
        driver: Some("bridge".to_string()),
        options: Some(options),
        enable_ipv6: Some(ipv6_subnet.is_some()),
        ipam: ipv6_subnet.map(|subnet| Ipam {
            config: Some(vec![IpamConfig {
                subnet: Some(subnet.to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    docker
        .create_network(request)
        .await
        .map(|_| ())
        .map_err(DockerError::api(format!("create network {name}")))
}

fn message(e: &DockerError) -> &str {
    e.server_error().map_or("", |(_, m)| m)
}

/// The host cannot do IPv6 on bridges (kind's check, plus the wording of newer engines when IPv6
/// is disabled in the kernel).
fn is_ipv6_unavailable(e: &DockerError) -> bool {
    let m = message(e);
    m.starts_with("Cannot read IPv6 setup for bridge")
        || (m.contains("IPv6") && (m.contains("disabled") || m.contains("not supported")))
}

fn is_pool_overlap(e: &DockerError) -> bool {
    let m = message(e);
    m.starts_with("Pool overlaps with other one on this address space")
        || m.contains("networks have overlapping")
}

fn is_already_exists(e: &DockerError) -> bool {
    let m = message(e);
    m.starts_with("network with name") && m.contains("already exists")
}

/// Makes sure the `kind` network exists: reused when present; otherwise a bridge with IP
/// masquerading, the default bridge's MTU and an IPv6 ULA subnet derived from the name (probing
/// further subnets on overlap, and falling back to IPv4 only when the host has no IPv6).
pub(crate) async fn ensure(docker: &Docker, observer: &dyn Observer) -> Result<(), DockerError> {
    let name = NETWORK_NAME;
    if dedupe(docker, name).await? {
        return Ok(());
    }
    observer.action(format!("creating network {name}"));
    let mtu = default_bridge_mtu(docker).await;
    let mut last = None;
    for attempt in 0..5 {
        let subnet = ula_subnet(name, attempt);
        match create(docker, name, Some(&subnet), mtu.as_deref()).await {
            Ok(()) => {
                dedupe(docker, name).await?;
                return Ok(());
            }
            Err(e) if is_already_exists(&e) => {
                dedupe(docker, name).await?;
                return Ok(());
            }
            Err(e) if attempt == 0 && is_ipv6_unavailable(&e) && !is_pool_overlap(&e) => {
                observer.warning(format!(
                    "IPv6 unavailable for network {name}, creating it IPv4 only"
                ));
                match create(docker, name, None, mtu.as_deref()).await {
                    Err(e) if !is_already_exists(&e) => return Err(e),
                    _ => {
                        dedupe(docker, name).await?;
                        return Ok(());
                    }
                }
            }
            Err(e) if is_pool_overlap(&e) => {
                // Perhaps someone else just created it.
                if dedupe(docker, name).await? {
                    return Ok(());
                }
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("the loop ran"))
}

/// The `kind` network vanished between [`ensure`] and its use: another cluster's delete removed
/// it while no container was attached (a create then retries from [`ensure`]).
pub(crate) fn is_gone(e: &super::CreateError) -> bool {
    match e {
        super::CreateError::Docker(d) => {
            let m = message(d);
            m.contains(&format!("network {NETWORK_NAME} not found"))
                || (m.contains("network") && m.contains("not found") && m.contains(NETWORK_NAME))
        }
        _ => false,
    }
}

/// The subnets of the `kind` network (for `NO_PROXY`).
pub(crate) async fn subnets(docker: &Docker) -> Result<Vec<String>, DockerError> {
    let n = docker
        .inspect_network(NETWORK_NAME, None::<InspectNetworkOptions>)
        .await
        .map_err(DockerError::api(format!("inspect network {NETWORK_NAME}")))?;
    Ok(n.ipam
        .and_then(|i| i.config)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.subnet)
        .collect())
}

/// Removes the `kind` network when no container is attached to it; says whether it did.
pub(crate) async fn remove_if_unused(docker: &Docker) -> Result<bool, DockerError> {
    let mut removed = false;
    for id in networks_named(docker, NETWORK_NAME).await? {
        let inspected = match docker
            .inspect_network(&id, None::<InspectNetworkOptions>)
            .await
        {
            Ok(n) => n,
            Err(_) => continue,
        };
        if inspected.containers.is_some_and(|c| !c.is_empty()) {
            continue;
        }
        match docker.remove_network(&id).await {
            Ok(()) => removed = true,
            Err(e) => {
                let e = DockerError::api(format!("remove network {NETWORK_NAME}"))(e);
                // Another cluster attached a node in the meantime: keep it.
                if !(e.is_not_found() || matches!(e.server_error(), Some((403 | 409, _)))) {
                    return Err(e);
                }
            }
        }
    }
    Ok(removed)
}
