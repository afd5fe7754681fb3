//! The pure half of the preflight: facts fetched from the cloud, checked against what the values
//! need. Every problem is one line naming the values field, what is wrong and what exists.

use super::needs::{GroupRef, ImageRef, Needs};
use super::{Problem, Quota};

/// Minimum vCPUs and RAM of a control-plane machine: kubeadm's documented minimum (2 CPUs and
/// 2 GB of RAM), with 2 GB read as 2048 MiB.
pub const CONTROL_PLANE_MIN: (u64, u64) = (2, 2048);
/// Minimum vCPUs and RAM of a worker machine: kubeadm's 2 GB of RAM per machine, one CPU.
pub const WORKER_MIN: (u64, u64) = (1, 2048);

/// A Nova flavor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flavor {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// vCPUs.
    pub vcpus: u64,
    /// RAM in MiB.
    pub ram_mib: u64,
    /// Root disk in GiB.
    pub disk_gib: u64,
}

/// A Glance image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// `status` (`active` when usable).
    pub status: String,
    /// `min_disk` in GiB.
    pub min_disk_gib: u64,
}

/// A Neutron network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// `router:external`.
    pub external: bool,
}

/// A named thing with an id (security group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// What the preflight read from the cloud. `None` where a service was not asked (not needed,
/// or not in the catalog).
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Nova flavors the project can use.
    pub flavors: Vec<Flavor>,
    /// Glance images the project can see.
    pub images: Vec<Image>,
    /// The external networks, plus the network `externalNetworkId` names if it exists.
    pub networks: Vec<Network>,
    /// The user's key pair names.
    pub key_pairs: Vec<String>,
    /// Available compute availability zones.
    pub compute_zones: Vec<String>,
    /// Available volume availability zones (Cinder).
    pub volume_zones: Option<Vec<String>>,
    /// Volume type names (Cinder).
    pub volume_types: Option<Vec<String>>,
    /// Security groups the project can use.
    pub security_groups: Vec<Ident>,
    /// Octavia provider names.
    pub load_balancer_providers: Option<Vec<String>>,
    /// Quotas with their use.
    pub quotas: Vec<Quota>,
}

fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// "similar: a, b" when some names are close to `wanted`, else "available: ..." (or "none
/// exist").
pub fn alternatives<'a>(wanted: &str, names: impl IntoIterator<Item = &'a str>) -> String {
    let mut names: Vec<&str> = names.into_iter().filter(|n| !n.is_empty()).collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        return "none exist".into();
    }
    let limit = (wanted.chars().count() / 3).max(2);
    let lower = wanted.to_lowercase();
    let similar: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| {
            let l = n.to_lowercase();
            distance(wanted, n) <= limit || l.contains(&lower) || lower.contains(&l)
        })
        .collect();
    let (label, list) = if similar.is_empty() {
        ("available", names)
    } else {
        ("similar", similar)
    };
    let shown: Vec<&str> = list.iter().copied().take(8).collect();
    let more = if list.len() > shown.len() {
        format!(" (and {} more)", list.len() - shown.len())
    } else {
        String::new()
    };
    format!("{label}: {}{more}", shown.join(", "))
}

fn problem(field: &str, message: String) -> Problem {
    Problem {
        field: field.into(),
        message,
    }
}

fn check_flavors(needs: &Needs, facts: &Facts, out: &mut Vec<Problem>) {
    for g in &needs.groups {
        let f = &g.flavor;
        if f.value.is_empty() {
            out.push(problem(&f.field, "is missing: name a Nova flavor".into()));
            continue;
        }
        let Some(flavor) = facts
            .flavors
            .iter()
            .find(|x| x.name == f.value)
            .or_else(|| facts.flavors.iter().find(|x| x.id == f.value))
        else {
            let names = facts.flavors.iter().map(|x| x.name.as_str());
            out.push(problem(
                &f.field,
                format!(
                    "flavor {} not found; {}",
                    f.value,
                    alternatives(&f.value, names)
                ),
            ));
            continue;
        };
        let (role, (cpus, ram)) = if g.control_plane {
            ("a control-plane machine", CONTROL_PLANE_MIN)
        } else {
            ("a worker machine", WORKER_MIN)
        };
        if flavor.vcpus < cpus || flavor.ram_mib < ram {
            let big_enough: Vec<&str> = facts
                .flavors
                .iter()
                .filter(|x| x.vcpus >= cpus && x.ram_mib >= ram)
                .map(|x| x.name.as_str())
                .collect();
            let instead = if big_enough.is_empty() {
                "no flavor is large enough".to_string()
            } else {
                format!("large enough: {}", big_enough.join(", "))
            };
            out.push(problem(
                &f.field,
                format!(
                    "flavor {} has {} vCPU and {} MiB RAM; {role} needs at least {cpus} vCPU and {ram} MiB (kubeadm's minimum); {instead}",
                    flavor.name, flavor.vcpus, flavor.ram_mib
                ),
            ));
        }
        if flavor.disk_gib == 0
            && g.volumes
                .iter()
                .all(|v| !v.field.ends_with("machineRootVolume"))
        {
            out.push(problem(
                &f.field,
                format!(
                    "flavor {} has no root disk (0 GiB) and no machineRootVolume.diskSize is set: give the machines a root volume",
                    flavor.name
                ),
            ));
        }
    }
}

fn check_images(needs: &Needs, facts: &Facts, out: &mut Vec<Problem>) {
    let mut seen = Vec::new();
    for g in &needs.groups {
        let Some(image) = &g.image else {
            out.push(problem(
                &format!("{}.machineImage", g.field),
                "is missing: give machineImage or machineImageId".into(),
            ));
            continue;
        };
        if seen.contains(image) {
            continue;
        }
        seen.push(image.clone());
        let (named, found): (_, Vec<&Image>) = match image {
            ImageRef::Name(n) => (
                n,
                facts.images.iter().filter(|i| i.name == n.value).collect(),
            ),
            ImageRef::Id(n) => (n, facts.images.iter().filter(|i| i.id == n.value).collect()),
        };
        if named.value.contains("{{") {
            continue; // a template the chart expands; nothing to compare before rendering
        }
        match found.as_slice() {
            [] => {
                let names = facts.images.iter().map(|i| i.name.as_str());
                out.push(problem(
                    &named.field,
                    format!("image {} not found; {}", named.value, alternatives(&named.value, names)),
                ));
            }
            [one] if one.status != "active" => out.push(problem(
                &named.field,
                format!(
                    "image {} ({}) is {}, not active; active images: {}",
                    one.name,
                    one.id,
                    one.status,
                    names_or_none(facts.images.iter().filter(|i| i.status == "active").map(|i| i.name.as_str()))
                ),
            )),
            [_] => {}
            many => out.push(problem(
                &named.field,
                format!(
                    "{} images are named {}: CAPO needs exactly one; use machineImageId with one of {}",
                    many.len(),
                    named.value,
                    many.iter().map(|i| i.id.as_str()).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }
}

fn names_or_none<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = names.take(8).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn check_network(needs: &Needs, facts: &Facts, out: &mut Vec<Problem>) {
    if needs.external_network_disabled {
        return;
    }
    let external: Vec<&Network> = facts.networks.iter().filter(|n| n.external).collect();
    let listed = || {
        names_or_none(external.iter().map(|n| n.id.as_str()))
            + &if external.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    external
                        .iter()
                        .map(|n| n.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
    };
    match &needs.external_network {
        Some(want) => match facts.networks.iter().find(|n| n.id == want.value) {
            None => out.push(problem(
                &want.field,
                format!("network {} not found; external networks: {}", want.value, listed()),
            )),
            Some(n) if !n.external => out.push(problem(
                &want.field,
                format!(
                    "network {} ({}) is not external (router:external is false); external networks: {}",
                    n.id,
                    n.name,
                    listed()
                ),
            )),
            Some(_) => {}
        },
        None if external.is_empty() && needs.floating_ip => out.push(problem(
            "clusterNetworking.externalNetworkId",
            "no external network is visible to the project, and the API server needs a floating IP (apiServer.associateFloatingIP)".into(),
        )),
        None if external.len() > 1 => out.push(problem(
            "clusterNetworking.externalNetworkId",
            format!("is empty but several external networks exist: set it to one of {}", listed()),
        )),
        None => {}
    }
}

fn check_named(needs: &Needs, facts: &Facts, out: &mut Vec<Problem>) {
    if let Some(k) = &needs.ssh_key
        && !facts.key_pairs.contains(&k.value)
    {
        out.push(problem(
            &k.field,
            format!(
                "key pair {} not found; {}",
                k.value,
                alternatives(&k.value, facts.key_pairs.iter().map(String::as_str))
            ),
        ));
    }
    for g in &needs.groups {
        for z in &g.zones {
            if !facts.compute_zones.contains(&z.value) {
                out.push(problem(
                    &z.field,
                    format!(
                        "availability zone {} not found; {}",
                        z.value,
                        alternatives(&z.value, facts.compute_zones.iter().map(String::as_str))
                    ),
                ));
            }
        }
        for sg in &g.security_groups {
            let (n, found) = match sg {
                GroupRef::Id(n) => (n, facts.security_groups.iter().any(|s| s.id == n.value)),
                GroupRef::Name(n) => (n, facts.security_groups.iter().any(|s| s.name == n.value)),
            };
            if !found {
                let names = facts.security_groups.iter().map(|s| s.name.as_str());
                out.push(problem(
                    &n.field,
                    format!(
                        "security group {} not found; {}",
                        n.value,
                        alternatives(&n.value, names)
                    ),
                ));
            }
        }
        for v in &g.volumes {
            if let (Some(t), Some(types)) = (&v.volume_type, &facts.volume_types)
                && !types.contains(t)
            {
                out.push(problem(
                    &format!("{}.volumeType", v.field),
                    format!(
                        "volume type {t} not found; {}",
                        alternatives(t, types.iter().map(String::as_str))
                    ),
                ));
            }
            if let (Some(z), Some(zones)) = (&v.zone, &facts.volume_zones)
                && !zones.contains(z)
            {
                out.push(problem(
                    &format!("{}.availabilityZone", v.field),
                    format!(
                        "volume availability zone {z} not found; {}",
                        alternatives(z, zones.iter().map(String::as_str))
                    ),
                ));
            }
        }
    }
    if let (Some(p), Some(providers)) = (
        &needs.load_balancer_provider,
        &facts.load_balancer_providers,
    ) && needs.load_balancer
        && !providers.contains(&p.value)
    {
        out.push(problem(
            &p.field,
            format!(
                "load balancer provider {} not found; {}",
                p.value,
                alternatives(&p.value, providers.iter().map(String::as_str))
            ),
        ));
    }
}

/// How much of each quota the cluster needs: the machines plus one rolling-upgrade surge (one
/// more machine of the largest flavor in use, as the control plane's `maxSurge: 1` creates),
/// and what CAPO creates besides: per machine its ports (and volumes), for the cluster one
/// network port each for the router interface, DHCP and the load balancer's VIP, a floating IP
/// for the API server, two security groups and one load balancer.
pub fn demand(needs: &Needs, flavors: &[Flavor]) -> Vec<(&'static str, u64, String)> {
    let flavor = |name: &str| flavors.iter().find(|f| f.name == name || f.id == name);
    let machines = needs.machines();
    let mut cores = 0;
    let mut ram = 0;
    let mut largest = (0, 0);
    let mut ports = 0;
    let mut volumes = 0;
    let mut gigabytes = 0;
    let mut surge = (0, 0, 0); // ports, volumes, gigabytes of the surge machine
    for g in &needs.groups {
        let (c, r) = flavor(&g.flavor.value).map_or((0, 0), |f| (f.vcpus, f.ram_mib));
        cores += c * g.count;
        ram += r * g.count;
        largest = (largest.0.max(c), largest.1.max(r));
        ports += g.ports * g.count;
        let gib: u64 = g.volumes.iter().map(|v| v.size_gib).sum();
        volumes += g.volumes.len() as u64 * g.count;
        gigabytes += gib * g.count;
        surge = (
            surge.0.max(g.ports),
            surge.1.max(g.volumes.len() as u64),
            surge.2.max(gib),
        );
    }
    let plus = " + 1 surge";
    let mut out = vec![
        (
            "instances",
            machines + 1,
            format!("{machines} machines{plus}"),
        ),
        (
            "cores",
            cores + largest.0,
            format!("{cores} for the machines{plus} of {}", largest.0),
        ),
        (
            "ram",
            ram + largest.1,
            format!("{ram} MiB for the machines{plus} of {} MiB", largest.1),
        ),
    ];
    let mut extra_ports = 0;
    let mut why = vec![format!("{ports} for the machines{plus}")];
    if needs.managed_network {
        extra_ports += 2;
        why.push("router interface and DHCP".into());
    }
    if needs.load_balancer {
        extra_ports += 1;
        why.push("load balancer VIP".into());
    }
    out.push(("ports", ports + surge.0 + extra_ports, why.join(" + ")));
    if needs.floating_ip && !needs.external_network_disabled {
        out.push(("floating IPs", 1, "the API server's floating IP".into()));
    }
    if needs.managed_security_groups {
        out.push((
            "security groups",
            2,
            "CAPO's control-plane and worker groups".into(),
        ));
    }
    if needs.load_balancer {
        out.push(("load balancers", 1, "the API server's load balancer".into()));
    }
    if volumes > 0 {
        out.push((
            "volumes",
            volumes + surge.1,
            format!("{volumes} for the machines{plus}"),
        ));
        out.push((
            "volume gigabytes",
            gigabytes + surge.2,
            format!("{gigabytes} GiB for the machines{plus}"),
        ));
    }
    out
}

fn check_quotas(needs: &Needs, facts: &Facts, out: &mut Vec<Problem>) {
    for (resource, needed, why) in demand(needs, &facts.flavors) {
        let Some(q) = facts.quotas.iter().find(|q| q.resource == resource) else {
            continue;
        };
        let Some(limit) = q.limit else { continue };
        let left = limit.saturating_sub(q.used);
        if needed > left {
            let unit = if resource == "ram" { " MiB" } else { "" };
            let field = match resource {
                "floating IPs" => "apiServer.associateFloatingIP",
                "load balancers" => "apiServer.enableLoadBalancer",
                "security groups" => "clusterNetworking.manageSecurityGroups",
                _ => "controlPlane.machineCount + nodeGroups[].machineCount",
            };
            out.push(problem(
                field,
                format!(
                    "quota {resource}: the cluster needs {needed}{unit} ({why}), the project has {left}{unit} left (limit {limit}, {} in use)",
                    q.used
                ),
            ));
        }
    }
}

/// Every problem of the values against the facts, in the order of the list: flavors,
/// image, external network, key pair, zones, security groups, volumes, quotas.
pub fn evaluate(needs: &Needs, facts: &Facts) -> Vec<Problem> {
    let mut out = Vec::new();
    check_flavors(needs, facts, &mut out);
    check_images(needs, facts, &mut out);
    check_network(needs, facts, &mut out);
    check_named(needs, facts, &mut out);
    check_quotas(needs, facts, &mut out);
    out
}
