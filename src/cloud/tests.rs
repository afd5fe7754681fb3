//! Unit tests of the pure evaluation: facts against needs, the catalog, the URLs.

use serde_json::{Value, json};

use super::client::{catalog_problems, endpoint, parse_catalog, versioned};
use super::*;

fn values(yaml: &str) -> Value {
    serde_yaml_ng::from_str(yaml).unwrap()
}

const VALUES: &str = r#"
machineImage: ubuntu-kube
machineSSHKeyName: ops
clusterNetworking:
  externalNetworkId: ext-1
controlPlane:
  machineFlavor: m1.medium
  machineCount: 3
nodeGroups:
- name: md-0
  machineFlavor: m1.small
  machineCount: 2
"#;

fn flavor(name: &str, vcpus: u64, ram_mib: u64) -> Flavor {
    Flavor {
        id: format!("id-{name}"),
        name: name.into(),
        vcpus,
        ram_mib,
        disk_gib: 20,
    }
}

fn facts() -> Facts {
    Facts {
        flavors: vec![
            flavor("m1.small", 1, 2048),
            flavor("m1.medium", 2, 4096),
            flavor("m1.tiny", 1, 512),
        ],
        images: vec![Image {
            id: "img-1".into(),
            name: "ubuntu-kube".into(),
            status: "active".into(),
            min_disk_gib: 0,
        }],
        networks: vec![
            Network {
                id: "ext-1".into(),
                name: "public".into(),
                external: true,
            },
            Network {
                id: "int-1".into(),
                name: "private".into(),
                external: false,
            },
        ],
        key_pairs: vec!["ops".into(), "other".into()],
        compute_zones: vec!["nova".into()],
        quotas: vec![
            Quota {
                resource: "instances",
                limit: Some(10),
                used: 0,
            },
            Quota {
                resource: "cores",
                limit: Some(20),
                used: 0,
            },
            Quota {
                resource: "ram",
                limit: Some(51200),
                used: 0,
            },
            Quota {
                resource: "ports",
                limit: Some(500),
                used: 0,
            },
            Quota {
                resource: "floating IPs",
                limit: None,
                used: 3,
            },
            Quota {
                resource: "security groups",
                limit: Some(10),
                used: 1,
            },
            Quota {
                resource: "load balancers",
                limit: None,
                used: 0,
            },
        ],
        ..Facts::default()
    }
}

fn lines(values_yaml: &str, facts: &Facts) -> Vec<String> {
    evaluate(&Needs::from_values(&values(values_yaml)), facts)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn matching_facts_have_no_problem() {
    assert_eq!(lines(VALUES, &facts()), Vec::<String>::new());
}

#[test]
fn a_missing_flavor_names_the_similar_one() {
    let got = lines(
        &VALUES.replace("machineFlavor: m1.medium", "machineFlavor: m1.medim"),
        &facts(),
    );
    assert_eq!(
        got,
        ["controlPlane.machineFlavor: flavor m1.medim not found; similar: m1.medium"]
    );
    let got = lines(
        &VALUES.replace("machineFlavor: m1.small", "machineFlavor: gpu.huge"),
        &facts(),
    );
    assert_eq!(
        got,
        [
            "nodeGroups[0].machineFlavor: flavor gpu.huge not found; available: m1.medium, m1.small, m1.tiny"
        ]
    );
}

#[test]
fn a_flavor_too_small_for_its_role() {
    let got = lines(
        &VALUES.replace("machineFlavor: m1.medium", "machineFlavor: m1.small"),
        &facts(),
    );
    assert_eq!(
        got,
        [
            "controlPlane.machineFlavor: flavor m1.small has 1 vCPU and 2048 MiB RAM; a control-plane machine needs at least 2 vCPU and 2048 MiB (kubeadm's minimum); large enough: m1.medium"
        ]
    );
    let got = lines(
        &VALUES.replace("machineFlavor: m1.small", "machineFlavor: m1.tiny"),
        &facts(),
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("nodeGroups[0].machineFlavor: flavor m1.tiny has 1 vCPU and 512 MiB RAM; a worker machine needs at least 1 vCPU and 2048 MiB"), "{got:?}");
}

#[test]
fn image_problems() {
    let mut f = facts();
    f.images[0].status = "queued".into();
    assert_eq!(
        lines(VALUES, &f),
        ["machineImage: image ubuntu-kube (img-1) is queued, not active; active images: none"]
    );
    let got = lines(
        &VALUES.replace("machineImage: ubuntu-kube", "machineImage: ubuntu-kub"),
        &facts(),
    );
    assert_eq!(
        got,
        ["machineImage: image ubuntu-kub not found; similar: ubuntu-kube"]
    );
    let mut f = facts();
    f.images.push(Image {
        id: "img-2".into(),
        ..f.images[0].clone()
    });
    assert_eq!(
        lines(VALUES, &f),
        [
            "machineImage: 2 images are named ubuntu-kube: CAPO needs exactly one; use machineImageId with one of img-1, img-2"
        ]
    );
}

#[test]
fn network_problems() {
    let got = lines(&VALUES.replace("ext-1", "int-1"), &facts());
    assert_eq!(
        got,
        [
            "clusterNetworking.externalNetworkId: network int-1 (private) is not external (router:external is false); external networks: ext-1 (public)"
        ]
    );
    let got = lines(&VALUES.replace("ext-1", "nope"), &facts());
    assert_eq!(
        got,
        [
            "clusterNetworking.externalNetworkId: network nope not found; external networks: ext-1 (public)"
        ]
    );
    let mut f = facts();
    f.networks.push(Network {
        id: "ext-2".into(),
        name: "public2".into(),
        external: true,
    });
    let got = lines(
        &VALUES.replace(
            "  externalNetworkId: ext-1\n",
            "  externalNetworkId: \"\"\n",
        ),
        &f,
    );
    assert_eq!(
        got,
        [
            "clusterNetworking.externalNetworkId: is empty but several external networks exist: set it to one of ext-1, ext-2 (public, public2)"
        ]
    );
}

#[test]
fn key_pair_zone_security_group_problems() {
    let got = lines(
        &VALUES.replace("machineSSHKeyName: ops", "machineSSHKeyName: opz"),
        &facts(),
    );
    assert_eq!(
        got,
        ["machineSSHKeyName: key pair opz not found; similar: ops"]
    );
    let v = format!(
        "{VALUES}  failureDomain: az9\n  machineNetworking:\n    ports:\n    - securityGroups: [{{filter: {{name: webb}}}}]\n"
    );
    let mut f = facts();
    f.security_groups = vec![Ident {
        id: "sg-1".into(),
        name: "web".into(),
    }];
    assert_eq!(
        lines(&v, &f),
        [
            "nodeGroups[0].failureDomain: availability zone az9 not found; available: nova",
            "nodeGroups[0].machineNetworking.ports[0].securityGroups[0]: security group webb not found; similar: web",
        ]
    );
}

#[test]
fn quotas_count_the_machines_and_one_surge() {
    let mut f = facts();
    f.quotas[0].limit = Some(5); // 3 + 2 machines, + 1 surge = 6
    f.quotas[1].used = 12; // cores: 3*2 + 2*1 + 2 surge = 10; 8 left
    assert_eq!(
        lines(VALUES, &f),
        [
            "controlPlane.machineCount + nodeGroups[].machineCount: quota instances: the cluster needs 6 (5 machines + 1 surge), the project has 5 left (limit 5, 0 in use)",
            "controlPlane.machineCount + nodeGroups[].machineCount: quota cores: the cluster needs 10 (8 for the machines + 1 surge of 2), the project has 8 left (limit 20, 12 in use)",
        ]
    );
    let mut f = facts();
    f.quotas[5].limit = Some(2); // one default group in use, two needed
    f.quotas[3].limit = Some(8); // 5 machines + surge + router + DHCP + VIP = 9
    assert_eq!(
        lines(VALUES, &f),
        [
            "controlPlane.machineCount + nodeGroups[].machineCount: quota ports: the cluster needs 9 (5 for the machines + 1 surge + router interface and DHCP + load balancer VIP), the project has 8 left (limit 8, 0 in use)",
            "clusterNetworking.manageSecurityGroups: quota security groups: the cluster needs 2 (CAPO's control-plane and worker groups), the project has 1 left (limit 2, 1 in use)",
        ]
    );
}

#[test]
fn volumes_count_against_cinder_quotas() {
    let v = VALUES.replace(
        "  machineCount: 3\n",
        "  machineCount: 3\n  machineRootVolume: {diskSize: 30, volumeType: fast}\n",
    );
    let needs = Needs::from_values(&values(&v));
    let d = demand(&needs, &facts().flavors);
    let vols = d.iter().find(|(r, ..)| *r == "volumes").unwrap();
    assert_eq!(vols.1, 4, "3 control-plane root volumes + 1 surge");
    let gib = d.iter().find(|(r, ..)| *r == "volume gigabytes").unwrap();
    assert_eq!(gib.1, 120);
    let mut f = facts();
    f.volume_types = Some(vec!["fast".into()]);
    f.volume_zones = Some(vec!["nova".into()]);
    f.quotas.push(Quota {
        resource: "volumes",
        limit: Some(3),
        used: 0,
    });
    assert_eq!(
        evaluate(&needs, &f)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "controlPlane.machineCount + nodeGroups[].machineCount: quota volumes: the cluster needs 4 (3 for the machines + 1 surge), the project has 3 left (limit 3, 0 in use)"
        ]
    );
    f.volume_types = Some(vec!["slow".into()]);
    assert!(
        evaluate(&needs, &f)[0]
            .to_string()
            .starts_with("controlPlane.machineRootVolume.volumeType: volume type fast not found")
    );
}

fn token() -> Value {
    json!({"catalog": [
        {"type": "compute", "endpoints": [
            {"interface": "public", "region_id": "RegionOne", "url": "http://c:8774/v2.1/"},
            {"interface": "internal", "region_id": "RegionOne", "url": "http://ci:8774/v2.1"}]},
        {"type": "network", "endpoints": [{"interface": "public", "region": "RegionOne", "url": "http://n:9696"}]},
        {"type": "image", "endpoints": [{"interface": "public", "region": "RegionOne", "url": "http://g:9292"}]},
        {"type": "volumev3", "endpoints": [{"interface": "public", "region": "RegionOne", "url": "http://v:8776/v3/p1"}]},
    ]})
}

fn cloud(region: &str) -> CloudConfig {
    CloudConfig::from_clouds_yaml(
        &format!("clouds:\n  openstack:\n    auth:\n      auth_url: http://k/v3\n      application_credential_id: a\n      application_credential_secret: b\n    region_name: {region}\n"),
        "openstack",
    )
    .unwrap()
}

#[test]
fn the_catalog_gives_endpoints_by_interface_and_region() {
    let c = parse_catalog(&token());
    assert_eq!(
        endpoint(&c, "compute", "public", Some("RegionOne"))
            .unwrap()
            .url,
        "http://c:8774/v2.1"
    );
    assert_eq!(
        endpoint(&c, "compute", "internal", None).unwrap().url,
        "http://ci:8774/v2.1"
    );
    assert_eq!(
        endpoint(&c, "block-storage", "public", None).unwrap().kind,
        "volumev3"
    );
    assert!(endpoint(&c, "compute", "public", Some("RegionTwo")).is_none());
    assert_eq!(versioned("http://g:9292", "v2"), "http://g:9292/v2");
    assert_eq!(versioned("http://c:8774/v2.1", "v2"), "http://c:8774/v2.1");
    assert_eq!(
        versioned("http://n/networking", "v2.0"),
        "http://n/networking/v2.0"
    );
    assert_eq!(
        versioned("http://v:8776/v3/p1", "v3"),
        "http://v:8776/v3/p1"
    );
}

#[test]
fn catalog_problems_name_the_region_and_missing_services() {
    let c = parse_catalog(&token());
    let needs = Needs::from_values(&values(VALUES));
    let got: Vec<String> = catalog_problems(&c, &needs, &cloud("RegionTwo"))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        got,
        [
            "clouds.openstack.region_name: region RegionTwo is not in the catalog; regions: RegionOne"
        ]
    );
    let got: Vec<String> = catalog_problems(&c, &needs, &cloud("RegionOne"))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        got,
        [
            "apiServer.enableLoadBalancer: the catalog has no load-balancer endpoint (interface public) in region RegionOne; it has: compute, image, network, volumev3"
        ]
    );
    let no_lb = Needs::from_values(&values(&format!(
        "{VALUES}apiServer: {{enableLoadBalancer: false}}\n"
    )));
    assert!(catalog_problems(&c, &no_lb, &cloud("RegionOne")).is_empty());
}

#[test]
fn alternatives_prefer_similar_names() {
    assert_eq!(
        alternatives("m1.medim", ["m1.small", "m1.medium", "m1.large"]),
        "similar: m1.medium"
    );
    assert_eq!(alternatives("x", Vec::<&str>::new()), "none exist");
    assert_eq!(alternatives("zzzzzz", ["a1", "b2"]), "available: a1, b2");
}
