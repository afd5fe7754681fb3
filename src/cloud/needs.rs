//! What the `openstack-cluster` chart values (0.27.0) ask of the cloud: flavors, images, networks,
//! key pair, zones, security groups and the machine counts behind the quotas (pure).

use serde_json::Value;

/// A named value of the chart, with the values field it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// The values field, e.g. `nodeGroups[0].machineFlavor`.
    pub field: String,
    /// Its value.
    pub value: String,
}

/// An image by name (`machineImage`) or by id (`machineImageId`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// A Glance image name (CAPO filters by name and wants exactly one).
    Name(Named),
    /// A Glance image id.
    Id(Named),
}

/// A security group a port names: by id or by name (`{id}`, `{name}` or `{filter: {name}}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRef {
    /// By id.
    Id(Named),
    /// By name.
    Name(Named),
}

/// A volume the machines of a group get (root volume or additional block device).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The values field of the volume.
    pub field: String,
    /// Its size in GiB.
    pub size_gib: u64,
    /// `volumeType`, if named.
    pub volume_type: Option<String>,
    /// `availabilityZone`, if named.
    pub zone: Option<String>,
}

/// The machines of the control plane or one node group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `controlPlane` or `nodeGroups[i]`.
    pub field: String,
    /// Control plane (the larger minimum applies).
    pub control_plane: bool,
    /// How many machines (`machineCount`, or `machineCountMax` when autoscaled).
    pub count: u64,
    /// `machineFlavor`.
    pub flavor: Named,
    /// The image (the group's own, else the cluster's).
    pub image: Option<ImageRef>,
    /// Ports per machine (`machineNetworking.ports`, at least one).
    pub ports: u64,
    /// Volumes per machine.
    pub volumes: Vec<Volume>,
    /// The compute availability zones named for the group.
    pub zones: Vec<Named>,
    /// The security groups its ports name.
    pub security_groups: Vec<GroupRef>,
}

/// Everything the values ask of the cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    /// The control plane, then each node group.
    pub groups: Vec<Group>,
    /// `machineSSHKeyName`.
    pub ssh_key: Option<Named>,
    /// `clusterNetworking.externalNetworkId`.
    pub external_network: Option<Named>,
    /// `clusterNetworking.disableExternalNetwork`.
    pub external_network_disabled: bool,
    /// `apiServer.enableLoadBalancer`.
    pub load_balancer: bool,
    /// `apiServer.loadBalancerProvider`.
    pub load_balancer_provider: Option<Named>,
    /// `apiServer.associateFloatingIP`.
    pub floating_ip: bool,
    /// `clusterNetworking.manageSecurityGroups`: CAPO creates two groups (control plane, workers).
    pub managed_security_groups: bool,
    /// No `internalNetwork.networkFilter`: CAPO creates the network, its subnet and a router.
    pub managed_network: bool,
}

impl Needs {
    /// What an existing cluster needs of the cloud (to go on, or to be deleted): the services
    /// in the catalog (the load balancer's when it has one), nothing that only creating uses.
    pub fn for_existing(self) -> Needs {
        Needs {
            groups: Vec::new(),
            ssh_key: None,
            external_network: None,
            external_network_disabled: true,
            load_balancer_provider: None,
            floating_ip: false,
            managed_security_groups: false,
            managed_network: false,
            ..self
        }
    }
}

fn get<'v>(v: &'v Value, dotted: &str) -> Option<&'v Value> {
    let mut cur = v;
    for p in dotted.split('.') {
        cur = cur.get(p)?;
    }
    (!cur.is_null()).then_some(cur)
}

fn string(v: &Value, dotted: &str) -> Option<String> {
    match get(v, dotted)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn boolean(v: &Value, dotted: &str, default: bool) -> bool {
    match get(v, dotted) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => default,
    }
}

fn number(v: &Value, key: &str) -> Option<u64> {
    match v.get(key)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A shallow merge of the defaults with a node group's own keys (the chart's `mergeOverwrite` of
/// `nodeGroupDefaults` and the group: the group wins; `null` keeps the default).
fn merged(defaults: Option<&Value>, group: &Value) -> Value {
    let mut out = defaults
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(g) = group.as_object() {
        for (k, v) in g {
            if !v.is_null() {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

fn named(field: String, value: String) -> Named {
    Named { field, value }
}

fn group(values: &Value, g: &Value, field: &str, control_plane: bool, default_count: u64) -> Group {
    let f = |k: &str| format!("{field}.{k}");
    let autoscale = boolean(g, "autoscale", false);
    let count = if autoscale {
        number(g, "machineCountMax").or_else(|| number(g, "machineCount"))
    } else {
        number(g, "machineCount")
    }
    .unwrap_or(default_count);
    let image = if let Some(id) = string(g, "machineImageId") {
        Some(ImageRef::Id(named(f("machineImageId"), id)))
    } else if let Some(n) = string(g, "machineImage") {
        Some(ImageRef::Name(named(f("machineImage"), n)))
    } else if let Some(id) = string(values, "machineImageId") {
        Some(ImageRef::Id(named("machineImageId".into(), id)))
    } else {
        string(values, "machineImage").map(|n| ImageRef::Name(named("machineImage".into(), n)))
    };
    let port_list = get(g, "machineNetworking.ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut security_groups = Vec::new();
    for (i, p) in port_list.iter().enumerate() {
        let groups = p.get("securityGroups").and_then(Value::as_array);
        for (j, sg) in groups.into_iter().flatten().enumerate() {
            let sf = format!("{field}.machineNetworking.ports[{i}].securityGroups[{j}]");
            if let Some(id) = string(sg, "id") {
                security_groups.push(GroupRef::Id(named(sf, id)));
            } else if let Some(n) = string(sg, "name").or_else(|| string(sg, "filter.name")) {
                security_groups.push(GroupRef::Name(named(sf, n)));
            }
        }
    }
    let mut volumes = Vec::new();
    let mut zones = Vec::new();
    if let Some(size) = get(g, "machineRootVolume").and_then(|r| number(r, "diskSize"))
        && size > 0
    {
        volumes.push(Volume {
            field: f("machineRootVolume"),
            size_gib: size,
            volume_type: string(g, "machineRootVolume.volumeType"),
            zone: string(g, "machineRootVolume.availabilityZone"),
        });
    }
    if let Some(devices) = get(g, "additionalBlockDevices").and_then(Value::as_object) {
        for (name, d) in devices {
            let kind = string(d, "type").unwrap_or_else(|| "Volume".into());
            if kind == "Volume" {
                volumes.push(Volume {
                    field: f(&format!("additionalBlockDevices.{name}")),
                    size_gib: number(d, "size").unwrap_or(0),
                    volume_type: string(d, "volumeType"),
                    zone: string(d, "availabilityZone"),
                });
            }
        }
    }
    if control_plane {
        if !boolean(g, "omitFailureDomain", true) {
            for (i, z) in get(g, "failureDomains")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                if let Some(z) = z.as_str().filter(|z| !z.is_empty()) {
                    zones.push(named(f(&format!("failureDomains[{i}]")), z.into()));
                }
            }
        }
    } else if let Some(z) = string(g, "failureDomain") {
        zones.push(named(f("failureDomain"), z));
    }
    Group {
        field: field.into(),
        control_plane,
        count,
        flavor: named(
            f("machineFlavor"),
            string(g, "machineFlavor").unwrap_or_default(),
        ),
        image,
        ports: (port_list.len() as u64).max(1),
        volumes,
        zones,
        security_groups,
    }
}

impl Needs {
    /// What the chart values (`data."values.yaml"`, parsed) ask of the cloud. Chart defaults
    /// apply where a key is absent (3 control-plane machines, API load balancer with a floating
    /// IP, managed security groups and network).
    pub fn from_values(values: &Value) -> Needs {
        let empty = Value::Object(Default::default());
        let cp = get(values, "controlPlane").unwrap_or(&empty);
        let mut groups = vec![group(values, cp, "controlPlane", true, 3)];
        let defaults = get(values, "nodeGroupDefaults");
        if let Some(list) = get(values, "nodeGroups").and_then(Value::as_array) {
            for (i, g) in list.iter().enumerate() {
                let g = merged(defaults, g);
                groups.push(group(values, &g, &format!("nodeGroups[{i}]"), false, 0));
            }
        }
        Needs {
            groups,
            ssh_key: string(values, "machineSSHKeyName")
                .map(|k| named("machineSSHKeyName".into(), k)),
            external_network: string(values, "clusterNetworking.externalNetworkId")
                .map(|n| named("clusterNetworking.externalNetworkId".into(), n)),
            external_network_disabled: boolean(
                values,
                "clusterNetworking.disableExternalNetwork",
                false,
            ),
            load_balancer: boolean(values, "apiServer.enableLoadBalancer", true),
            load_balancer_provider: string(values, "apiServer.loadBalancerProvider")
                .map(|p| named("apiServer.loadBalancerProvider".into(), p)),
            floating_ip: boolean(values, "apiServer.associateFloatingIP", true),
            managed_security_groups: boolean(
                values,
                "clusterNetworking.manageSecurityGroups",
                true,
            ),
            managed_network: string(
                values,
                "clusterNetworking.internalNetwork.networkFilter.name",
            )
            .is_none()
                && get(values, "clusterNetworking.internalNetwork.networkFilter").is_none(),
        }
    }

    /// Any group uses Cinder volumes.
    pub fn volumes(&self) -> bool {
        self.groups.iter().any(|g| !g.volumes.is_empty())
    }

    /// All machines, without the surge.
    pub fn machines(&self) -> u64 {
        self.groups.iter().map(|g| g.count).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(yaml: &str) -> Value {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn the_example_values() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clusters/example/values.yaml"),
        )
        .unwrap();
        let cm: Value = serde_yaml_ng::from_str(&text).unwrap();
        let chart = values(cm["data"]["values.yaml"].as_str().unwrap());
        let n = Needs::from_values(&chart);
        assert_eq!(n.groups.len(), 2);
        assert_eq!(n.groups[0].count, 3);
        assert_eq!(n.groups[0].flavor.field, "controlPlane.machineFlavor");
        assert_eq!(n.groups[1].flavor.value, "m1.large");
        assert_eq!(n.machines(), 5);
        assert!(matches!(&n.groups[1].image, Some(ImageRef::Name(i)) if i.field == "machineImage"));
        assert!(n.load_balancer && n.floating_ip && n.managed_security_groups && n.managed_network);
        assert_eq!(n.ssh_key, None);
        assert_eq!(n.external_network, None);
        assert!(!n.volumes());
    }

    #[test]
    fn overrides_defaults_ports_volumes_and_zones() {
        let n = Needs::from_values(&values(
            r#"
machineImageId: img-1
machineSSHKeyName: ops
controlPlane:
  machineFlavor: cp
  omitFailureDomain: false
  failureDomains: [az1, az2]
  machineRootVolume: {diskSize: 40, volumeType: ssd}
nodeGroupDefaults:
  machineFlavor: w
  failureDomain: az3
  machineNetworking:
    ports:
    - securityGroups: [{filter: {name: web}}, {id: sg-1}]
    - {}
nodeGroups:
- name: a
  machineCount: 2
  machineImage: special
- name: b
  autoscale: true
  machineCountMin: 1
  machineCountMax: 4
  machineFlavor: big
  failureDomain: null
  additionalBlockDevices:
    scratch: {size: 10, availabilityZone: vaz}
    local: {size: 5, type: Local}
apiServer: {enableLoadBalancer: false, associateFloatingIP: false}
"#,
        ));
        let [cp, a, b] = &n.groups[..] else {
            panic!("{n:?}")
        };
        assert_eq!(cp.count, 3);
        assert!(matches!(&cp.image, Some(ImageRef::Id(i)) if i.value == "img-1"));
        assert_eq!(
            cp.zones
                .iter()
                .map(|z| z.value.as_str())
                .collect::<Vec<_>>(),
            ["az1", "az2"]
        );
        assert_eq!(cp.volumes[0].size_gib, 40);
        assert_eq!(a.flavor.value, "w");
        assert_eq!(a.ports, 2);
        assert!(
            matches!(&a.image, Some(ImageRef::Name(i)) if i.field == "nodeGroups[0].machineImage")
        );
        assert_eq!(a.zones[0].value, "az3");
        assert_eq!(
            a.security_groups,
            [
                GroupRef::Name(named(
                    "nodeGroups[0].machineNetworking.ports[0].securityGroups[0]".into(),
                    "web".into()
                )),
                GroupRef::Id(named(
                    "nodeGroups[0].machineNetworking.ports[0].securityGroups[1]".into(),
                    "sg-1".into()
                )),
            ]
        );
        assert_eq!(b.count, 4);
        assert_eq!(b.flavor.value, "big");
        assert_eq!(b.zones[0].value, "az3", "null keeps the default");
        assert_eq!(b.volumes.len(), 1);
        assert_eq!(b.volumes[0].zone.as_deref(), Some("vaz"));
        assert!(!n.load_balancer && !n.floating_ip && n.volumes());
        assert_eq!(n.ssh_key.unwrap().value, "ops");
    }
}
