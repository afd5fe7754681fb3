//! ORC (openstack-resource-controller) objects that move with their cluster (pure).
//!
//! Since v0.12, CAPO takes some OpenStack resources from ORC objects (API group
//! `openstack.k-orc.cloud`): in CAPO v0.14, an `image.imageRef.name` in an OpenStackMachine,
//! OpenStackMachineTemplate, OpenStackServer, or the bastion of an OpenStackCluster(Template)
//! names an ORC `Image` in the same namespace. `clusterctl move` leaves these objects behind
//! (their CRDs carry no clusterctl label), so the moved machines wait for an image that is not
//! there. The mover takes them along.
//!
//! **Which ORC objects move.** An ORC object in the moved namespace moves when a moved object
//! needs it, and stays otherwise:
//! 1. a Cluster API provider object (`*.cluster.x-k8s.io`) names it through an `imageRef`
//!    (CAPO's only reference to ORC kinds in v0.14), or
//! 2. one of its owner references points at a moved object, or
//! 3. its `cluster.x-k8s.io/cluster-name` label names a moved Cluster, or
//! 4. a moving ORC object references it: ORC's references are spec fields `<kind>Ref` (a name)
//!    or `<kind>Refs` (names) in the same namespace, e.g. `networkRef`, `floatingNetworkRef`,
//!    `securityGroupRefs`; the kind is the longest ORC kind that ends the field's stem.
//!
//! The mover moves every Cluster of the namespace, so the ORC objects of each of them move with
//! it. An ORC object that no moved object needs (say, an Image nothing refers to yet) stays on
//! the source and is reported as skipped: handing the management of a cloud resource to
//! another cluster is not for a move to decide on a guess.
//!
//! **Deleting the source copy safely.** ORC deletes the OpenStack resource of a `managed` object
//! (unless `managedOptions.onDelete` is `detach`) when the object is deleted while it holds
//! ORC's finalizer (`openstack.k-orc.cloud/<controller>`, e.g. `openstack.k-orc.cloud/image`)
//! and no other finalizer; ORC has no pause. Removing the finalizers and then deleting, as
//! clusterctl does, leaves a window in which ORC re-adds its finalizer, and the deletion would
//! then delete the image in the cloud. So the mover first replaces the finalizers with its own
//! [`MOVE_GUARD_FINALIZER`], then deletes (ORC now waits for the foreign finalizer, and the API
//! server lets nobody add a finalizer to an object being deleted), then removes every finalizer
//! at once: the object goes without ORC's deletion ever running.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// The API group of ORC's kinds.
pub const ORC_GROUP: &str = "openstack.k-orc.cloud";

/// The finalizer the mover puts on an ORC object before deleting its source copy, so that ORC
/// waits instead of deleting the OpenStack resource.
pub const MOVE_GUARD_FINALIZER: &str = "capi-manage/move-guard";

/// Why a source copy that an interrupted earlier move was deleting is not moved again: the
/// move releases it once its copy is on the target.
pub const GUARDED_REASON: &str = "being deleted by an earlier move, held by its guard finalizer: released once its copy is on the target";

/// Whether `o` carries [`MOVE_GUARD_FINALIZER`].
pub fn is_guarded(o: &Value) -> bool {
    o["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| f.iter().any(|f| f == MOVE_GUARD_FINALIZER))
}

/// Why an ORC object stays on the source.
pub const STAYS_REASON: &str = "ORC object that no moved object needs (no imageRef, owner reference, cluster-name label or ORC reference ties it to a cluster): it stays, managed from the source";

const CLUSTER_NAME_LABEL: &str = "cluster.x-k8s.io/cluster-name";

fn group(o: &Value) -> &str {
    o["apiVersion"]
        .as_str()
        .and_then(|a| a.rsplit_once('/'))
        .map_or("", |(g, _)| g)
}

/// Whether `o` is an ORC object.
pub fn is_orc(o: &Value) -> bool {
    group(o) == ORC_GROUP
}

fn is_provider(o: &Value) -> bool {
    let g = group(o);
    g == "cluster.x-k8s.io" || g.ends_with(".cluster.x-k8s.io")
}

fn str_at<'a>(o: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .fold(o, |v, k| &v[*k])
        .as_str()
        .unwrap_or_default()
}

/// Every `imageRef: {name}` anywhere under `v`.
fn image_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if k == "imageRef"
                    && let Some(name) = child["name"].as_str()
                {
                    out.push(name);
                }
                image_refs(child, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|c| image_refs(c, out)),
        _ => {}
    }
}

/// The ORC kind a reference field names: the longest kind (case-insensitive) that ends the
/// field's stem, e.g. `floatingNetworkRef` -> `Network`, `serverGroupRef` -> `ServerGroup`.
fn referenced_kind<'k>(field: &str, kinds: &'k BTreeSet<String>) -> Option<&'k str> {
    let stem = field
        .strip_suffix("Refs")
        .or_else(|| field.strip_suffix("Ref"))?
        .to_ascii_lowercase();
    kinds
        .iter()
        .filter(|k| stem.ends_with(&k.to_ascii_lowercase()))
        .max_by_key(|k| k.len())
        .map(String::as_str)
}

/// Every `(kind, name)` an ORC object references through `<kind>Ref`/`<kind>Refs` fields.
fn orc_refs<'a>(v: &'a Value, kinds: &BTreeSet<String>, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if let Some(kind) = referenced_kind(k, kinds) {
                    let names: Vec<&str> = match child {
                        Value::String(s) => vec![s.as_str()],
                        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                        _ => Vec::new(),
                    };
                    out.extend(names.into_iter().map(|n| (kind.to_string(), n)));
                }
                orc_refs(child, kinds, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|c| orc_refs(c, kinds, out)),
        _ => {}
    }
}

/// Splits the objects of a namespace into those that move and the ORC objects that stay (see
/// the module's rule). Every object that is not ORC's moves. Order is kept.
pub fn partition(objects: Vec<Value>) -> (Vec<Value>, Vec<Value>) {
    let key = |o: &Value| {
        (
            str_at(o, &["kind"]).to_string(),
            str_at(o, &["metadata", "namespace"]).to_string(),
            str_at(o, &["metadata", "name"]).to_string(),
        )
    };
    let orc_kinds: BTreeSet<String> = objects
        .iter()
        .filter(|o| is_orc(o))
        .map(|o| str_at(o, &["kind"]).to_string())
        .collect();
    // ORC objects by (kind, namespace, name) -> index.
    let orc: BTreeMap<(String, String, String), usize> = objects
        .iter()
        .enumerate()
        .filter(|(_, o)| is_orc(o))
        .map(|(i, o)| (key(o), i))
        .collect();
    let mut moving: BTreeSet<usize> = (0..objects.len())
        .filter(|i| !is_orc(&objects[*i]))
        .collect();
    let clusters: BTreeSet<(&str, &str)> = objects
        .iter()
        .filter(|o| str_at(o, &["kind"]) == "Cluster" && group(o) == "cluster.x-k8s.io")
        .map(|o| {
            (
                str_at(o, &["metadata", "namespace"]),
                str_at(o, &["metadata", "name"]),
            )
        })
        .collect();
    let mut queue: Vec<usize> = Vec::new();
    for o in objects.iter().filter(|o| is_provider(o)) {
        let mut names = Vec::new();
        image_refs(&o["spec"], &mut names);
        let ns = str_at(o, &["metadata", "namespace"]);
        for n in names {
            if let Some(&i) = orc.get(&("Image".to_string(), ns.to_string(), n.to_string())) {
                queue.push(i);
            }
        }
    }
    for &i in orc.values() {
        let o = &objects[i];
        let ns = str_at(o, &["metadata", "namespace"]);
        if let Some(cluster) = o["metadata"]["labels"][CLUSTER_NAME_LABEL].as_str()
            && clusters.contains(&(ns, cluster))
        {
            queue.push(i);
        }
    }
    // Owner references and ORC references, to a fixpoint.
    loop {
        while let Some(i) = queue.pop() {
            if !moving.insert(i) {
                continue;
            }
            let o = &objects[i];
            let ns = str_at(o, &["metadata", "namespace"]);
            let mut refs = Vec::new();
            orc_refs(&o["spec"], &orc_kinds, &mut refs);
            for (kind, name) in refs {
                if let Some(&j) = orc.get(&(kind, ns.to_string(), name.to_string())) {
                    queue.push(j);
                }
            }
        }
        let moving_uids: BTreeSet<&str> = moving
            .iter()
            .filter_map(|i| objects[*i]["metadata"]["uid"].as_str())
            .collect();
        queue = orc
            .values()
            .copied()
            .filter(|i| !moving.contains(i))
            .filter(|i| {
                objects[*i]["metadata"]["ownerReferences"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|r| r["uid"].as_str().is_some_and(|u| moving_uids.contains(u)))
            })
            .collect();
        if queue.is_empty() {
            break;
        }
    }
    let mut moves = Vec::new();
    let mut stays = Vec::new();
    for (i, o) in objects.into_iter().enumerate() {
        if moving.contains(&i) {
            moves.push(o);
        } else {
            stays.push(o);
        }
    }
    (moves, stays)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn o(api: &str, kind: &str, name: &str, spec: Value) -> Value {
        json!({"apiVersion": api, "kind": kind,
               "metadata": {"name": name, "namespace": "capi-self", "uid": format!("uid-{kind}-{name}")},
               "spec": spec})
    }
    const ORC: &str = "openstack.k-orc.cloud/v1alpha1";
    const CAPO: &str = "infrastructure.cluster.x-k8s.io/v1beta1";

    fn names(v: &[Value]) -> Vec<String> {
        let mut n: Vec<String> = v
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect();
        n.sort();
        n
    }

    #[test]
    fn reference_fields_name_the_longest_matching_kind() {
        let kinds: BTreeSet<String> = [
            "Network",
            "Group",
            "ServerGroup",
            "Subnet",
            "SecurityGroup",
            "Image",
            "User",
        ]
        .map(String::from)
        .into();
        let k = |f| referenced_kind(f, &kinds);
        assert_eq!(k("floatingNetworkRef"), Some("Network"));
        assert_eq!(k("serverGroupRef"), Some("ServerGroup"));
        assert_eq!(k("securityGroupRefs"), Some("SecurityGroup"));
        assert_eq!(k("subnetRefs"), Some("Subnet"));
        assert_eq!(k("imageRef"), Some("Image"));
        // Not references to ORC kinds.
        assert_eq!(k("secretRef"), None);
        assert_eq!(k("userDataRef"), None);
        assert_eq!(k("networkFilter"), None);
    }

    #[test]
    fn images_referenced_by_capo_move_with_their_orc_dependencies() {
        let objects = vec![
            o("cluster.x-k8s.io/v1beta2", "Cluster", "a", json!({})),
            o(
                CAPO,
                "OpenStackMachineTemplate",
                "a-md-0",
                json!({"template": {"spec": {"image": {"imageRef": {"name": "a-image"}}}}}),
            ),
            o(
                CAPO,
                "OpenStackCluster",
                "b",
                json!({"bastion": {"spec": {"image": {"imageRef": {"name": "b-bastion"}}}}}),
            ),
            o(
                ORC,
                "Image",
                "a-image",
                json!({"managementPolicy": "managed", "resource": {"projectRef": "p"}}),
            ),
            o(
                ORC,
                "Image",
                "b-bastion",
                json!({"managementPolicy": "unmanaged", "import": {"filter": {"name": "x"}}}),
            ),
            o(ORC, "Project", "p", json!({})),
            // Referenced by nothing that moves.
            o(
                ORC,
                "Image",
                "spare",
                json!({"resource": {"projectRef": "q"}}),
            ),
            o(ORC, "Project", "q", json!({})),
            // Referenced by a ConfigMap's data: not a provider's reference.
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "capi-self", "uid": "cm"},
                   "spec": {"imageRef": {"name": "spare"}}}),
        ];
        let (moves, stays) = partition(objects);
        assert_eq!(
            names(&moves),
            [
                "Cluster/a",
                "ConfigMap/cm",
                "Image/a-image",
                "Image/b-bastion",
                "OpenStackCluster/b",
                "OpenStackMachineTemplate/a-md-0",
                "Project/p"
            ]
        );
        assert_eq!(names(&stays), ["Image/spare", "Project/q"]);
    }

    #[test]
    fn owner_references_and_cluster_labels_tie_too() {
        let mut owned = o(ORC, "Network", "n", json!({}));
        owned["metadata"]["ownerReferences"] =
            json!([{"uid": "uid-OpenStackCluster-a", "kind": "OpenStackCluster", "name": "a"}]);
        let mut subnet = o(ORC, "Subnet", "s", json!({"networkRef": "n2"}));
        subnet["metadata"]["ownerReferences"] =
            json!([{"uid": "uid-Network-n", "kind": "Network", "name": "n"}]);
        let mut labelled = o(ORC, "Port", "lp", json!({}));
        labelled["metadata"]["labels"] = json!({"cluster.x-k8s.io/cluster-name": "a"});
        let mut other_cluster = o(ORC, "Port", "op", json!({}));
        other_cluster["metadata"]["labels"] = json!({"cluster.x-k8s.io/cluster-name": "gone"});
        let objects = vec![
            o("cluster.x-k8s.io/v1beta2", "Cluster", "a", json!({})),
            o(CAPO, "OpenStackCluster", "a", json!({})),
            owned,
            subnet,
            o(ORC, "Network", "n2", json!({})),
            labelled,
            other_cluster,
        ];
        let (moves, stays) = partition(objects);
        assert_eq!(
            names(&moves),
            [
                "Cluster/a",
                "Network/n",
                "Network/n2",
                "OpenStackCluster/a",
                "Port/lp",
                "Subnet/s"
            ]
        );
        assert_eq!(names(&stays), ["Port/op"]);
    }

    #[test]
    fn references_stay_within_the_namespace() {
        let mut elsewhere = o(ORC, "Image", "img", json!({}));
        elsewhere["metadata"]["namespace"] = json!("other");
        let objects = vec![
            o(
                CAPO,
                "OpenStackMachine",
                "m",
                json!({"image": {"imageRef": {"name": "img"}}}),
            ),
            elsewhere,
        ];
        let (moves, stays) = partition(objects);
        assert_eq!(names(&moves), ["OpenStackMachine/m"]);
        assert_eq!(names(&stays), ["Image/img"]);
    }
}
