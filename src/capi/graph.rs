//! The object graph of a Cluster API namespace and the order to move it in (pure).
//!
//! Facts carried over from clusterctl's object graph: objects are linked by their owner
//! references plus "soft" ownership that the references do not express (a Cluster's
//! `<cluster>-kubeconfig`, `-ca`, `-etcd`, `-sa`, `-proxy` and `-apiserver-etcd-client` Secrets
//! belong to it; a Cluster built from a ClusterClass depends on it); objects are moved in groups,
//! each holding only objects whose owners were all placed by earlier groups, so the target can
//! rewrite every owner reference to a UID that already exists there.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

/// Secret name suffixes that tie a Secret to its Cluster (clusterctl's soft ownership).
pub const CLUSTER_SECRET_SUFFIXES: [&str; 6] = [
    "kubeconfig",
    "ca",
    "etcd",
    "sa",
    "proxy",
    "apiserver-etcd-client",
];

/// Identifies an object for people: `Kind namespace/name` plus its apiVersion.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    /// `group/version` or `v1`.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// The reference of an object's JSON.
    pub fn of(o: &Value) -> ObjectRef {
        let s = |v: &Value| v.as_str().unwrap_or("").to_string();
        ObjectRef {
            api_version: s(&o["apiVersion"]),
            kind: s(&o["kind"]),
            namespace: s(&o["metadata"]["namespace"]),
            name: s(&o["metadata"]["name"]),
        }
    }

    /// The API group (empty for core).
    pub fn group(&self) -> &str {
        self.api_version.rsplit_once('/').map_or("", |(g, _)| g)
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// One object in the graph.
#[derive(Debug, Clone)]
pub struct Node {
    /// Who it is.
    pub reference: ObjectRef,
    /// Its UID on the source cluster.
    pub uid: String,
    /// UIDs of its owners that are in the graph (owner references and soft ownership).
    pub owners: BTreeSet<String>,
    /// Owner references to objects that are not in the graph: they cannot be rewritten.
    pub dangling_owners: Vec<ObjectRef>,
    /// The object as read from the source.
    pub object: Value,
}

/// The graph: every object to move, keyed by source UID.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    nodes: BTreeMap<String, Node>,
}

/// The order of a move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    /// Groups of UIDs; every owner of an object in group N is in a group before N.
    pub groups: Vec<Vec<String>>,
}

/// Owner references that loop, so no order places every owner first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("owner references form a cycle among {}; break it before moving", .objects.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(", "))]
pub struct CycleError {
    /// The objects that could not be ordered.
    pub objects: Vec<ObjectRef>,
}

impl Graph {
    /// Builds the graph of these objects (each with `metadata.uid`), adding soft ownership.
    pub fn new(objects: impl IntoIterator<Item = Value>) -> Graph {
        let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
        for object in objects {
            let uid = object["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let reference = ObjectRef::of(&object);
            nodes.insert(
                uid.clone(),
                Node {
                    reference,
                    uid,
                    owners: BTreeSet::new(),
                    dangling_owners: Vec::new(),
                    object,
                },
            );
        }
        let uids: BTreeSet<String> = nodes.keys().cloned().collect();
        // Clusters and ClusterClasses by kind, namespace and name, for soft ownership (an index:
        // a scan per Secret would grow with the square of the namespace's size).
        let mut owners_by_name: BTreeMap<(&str, &str, &str), &str> = BTreeMap::new();
        for n in nodes.values() {
            let r = &n.reference;
            if (r.kind == "Cluster" || r.kind == "ClusterClass") && r.group() == "cluster.x-k8s.io"
            {
                owners_by_name
                    .entry((&r.kind, &r.namespace, &r.name))
                    .or_insert(&n.uid);
            }
        }
        let find = |kind: &str, ns: &str, name: &str| {
            owners_by_name
                .get(&(kind, ns, name))
                .map(|uid| uid.to_string())
        };
        let mut soft: Vec<(String, String)> = Vec::new();
        for n in nodes.values() {
            let r = &n.reference;
            if r.kind == "Secret" && r.api_version == "v1" {
                for suffix in CLUSTER_SECRET_SUFFIXES {
                    if let Some(cluster) = r.name.strip_suffix(&format!("-{suffix}"))
                        && let Some(owner) = find("Cluster", &r.namespace, cluster)
                    {
                        soft.push((n.uid.clone(), owner));
                    }
                }
            }
            if r.kind == "Cluster" && r.group() == "cluster.x-k8s.io" {
                let topo = &n.object["spec"]["topology"];
                let class = topo["classRef"]["name"]
                    .as_str()
                    .or_else(|| topo["class"].as_str());
                if let Some(class) = class {
                    let ns = topo["classRef"]["namespace"]
                        .as_str()
                        .or_else(|| topo["classNamespace"].as_str())
                        .unwrap_or(&r.namespace);
                    if let Some(owner) = find("ClusterClass", ns, class) {
                        soft.push((n.uid.clone(), owner));
                    }
                }
            }
        }
        for n in nodes.values_mut() {
            for owner in n.object["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let uid = owner["uid"].as_str().unwrap_or_default();
                if uids.contains(uid) && uid != n.uid {
                    n.owners.insert(uid.to_string());
                } else {
                    n.dangling_owners.push(ObjectRef {
                        api_version: owner["apiVersion"].as_str().unwrap_or_default().into(),
                        kind: owner["kind"].as_str().unwrap_or_default().into(),
                        namespace: n.reference.namespace.clone(),
                        name: owner["name"].as_str().unwrap_or_default().into(),
                    });
                }
            }
        }
        for (child, owner) in soft {
            if child != owner {
                nodes
                    .get_mut(&child)
                    .expect("child is a node")
                    .owners
                    .insert(owner);
            }
        }
        Graph { nodes }
    }

    /// The node with this source UID.
    pub fn node(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    /// Every node, by UID.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// How many objects the graph holds.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph is empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The move order: groups whose owners were all placed by earlier groups. Within a group,
    /// objects are sorted by kind, namespace and name so plans read the same every time.
    pub fn sequence(&self) -> Result<Sequence, CycleError> {
        let mut placed: BTreeSet<&str> = BTreeSet::new();
        let mut groups = Vec::new();
        while placed.len() < self.nodes.len() {
            let mut group: Vec<&Node> = self
                .nodes
                .values()
                .filter(|n| {
                    !placed.contains(n.uid.as_str())
                        && n.owners.iter().all(|o| placed.contains(o.as_str()))
                })
                .collect();
            if group.is_empty() {
                let mut objects: Vec<ObjectRef> = self
                    .nodes
                    .values()
                    .filter(|n| !placed.contains(n.uid.as_str()))
                    .map(|n| n.reference.clone())
                    .collect();
                objects.sort();
                return Err(CycleError { objects });
            }
            group.sort_by(|a, b| {
                let key = |n: &Node| {
                    (
                        n.reference.kind.clone(),
                        n.reference.namespace.clone(),
                        n.reference.name.clone(),
                    )
                };
                key(a).cmp(&key(b))
            });
            placed.extend(group.iter().map(|n| n.uid.as_str()));
            groups.push(group.into_iter().map(|n| n.uid.clone()).collect());
        }
        Ok(Sequence { groups })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(api: &str, kind: &str, name: &str, uid: &str, owners: &[(&str, &str, &str)]) -> Value {
        let refs: Vec<Value> = owners.iter().map(|(k, n, u)| json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": k, "name": n, "uid": u})).collect();
        json!({"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": "capi-self", "uid": uid, "ownerReferences": refs}})
    }

    /// A cluster like the bootstrap moves: Cluster -> KCP/infra cluster -> machines, plus secrets.
    pub(crate) fn demo_cluster() -> Vec<Value> {
        vec![
            obj("cluster.x-k8s.io/v1beta2", "Cluster", "demo", "c", &[]),
            obj(
                "controlplane.cluster.x-k8s.io/v1beta2",
                "KubeadmControlPlane",
                "demo-cp",
                "kcp",
                &[("Cluster", "demo", "c")],
            ),
            obj(
                "infrastructure.cluster.x-k8s.io/v1beta1",
                "OpenStackCluster",
                "demo",
                "osc",
                &[("Cluster", "demo", "c")],
            ),
            obj(
                "cluster.x-k8s.io/v1beta2",
                "MachineDeployment",
                "demo-md-0",
                "md",
                &[("Cluster", "demo", "c")],
            ),
            obj(
                "cluster.x-k8s.io/v1beta2",
                "MachineSet",
                "demo-md-0-x",
                "ms",
                &[("MachineDeployment", "demo-md-0", "md")],
            ),
            obj(
                "cluster.x-k8s.io/v1beta2",
                "Machine",
                "demo-md-0-x-1",
                "m1",
                &[("MachineSet", "demo-md-0-x", "ms")],
            ),
            obj(
                "infrastructure.cluster.x-k8s.io/v1beta1",
                "OpenStackMachine",
                "demo-md-0-x-1",
                "osm1",
                &[("Machine", "demo-md-0-x-1", "m1")],
            ),
            obj("v1", "Secret", "demo-kubeconfig", "s1", &[]),
            obj(
                "v1",
                "Secret",
                "demo-ca",
                "s2",
                &[("KubeadmControlPlane", "demo-cp", "kcp")],
            ),
            obj("v1", "Secret", "sh.helm.release.v1.demo.v1", "s3", &[]),
            obj(
                "v1",
                "Secret",
                "demo-cloud-credentials",
                "s4",
                &[("SealedSecret", "demo-cloud-credentials", "not-moved")],
            ),
        ]
    }

    fn kinds(g: &Graph, seq: &Sequence) -> Vec<Vec<String>> {
        seq.groups
            .iter()
            .map(|grp| {
                grp.iter()
                    .map(|u| g.node(u).unwrap().reference.to_string())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn owners_come_first_in_stable_groups() {
        let g = Graph::new(demo_cluster());
        let seq = g.sequence().unwrap();
        let groups = kinds(&g, &seq);
        assert_eq!(
            groups[0],
            [
                "Cluster capi-self/demo",
                "Secret capi-self/demo-cloud-credentials",
                "Secret capi-self/sh.helm.release.v1.demo.v1"
            ]
        );
        assert_eq!(
            groups[1],
            [
                "KubeadmControlPlane capi-self/demo-cp",
                "MachineDeployment capi-self/demo-md-0",
                "OpenStackCluster capi-self/demo",
                "Secret capi-self/demo-kubeconfig"
            ]
        );
        assert_eq!(
            groups[2],
            [
                "MachineSet capi-self/demo-md-0-x",
                "Secret capi-self/demo-ca"
            ]
        );
        assert_eq!(groups[3], ["Machine capi-self/demo-md-0-x-1"]);
        assert_eq!(groups[4], ["OpenStackMachine capi-self/demo-md-0-x-1"]);
        assert_eq!(groups.len(), 5);
        // Every owner is placed before its dependants.
        let position: BTreeMap<&str, usize> = seq
            .groups
            .iter()
            .enumerate()
            .flat_map(|(i, g)| g.iter().map(move |u| (u.as_str(), i)))
            .collect();
        for n in g.nodes() {
            for o in &n.owners {
                assert!(
                    position[o.as_str()] < position[n.uid.as_str()],
                    "{} before {}",
                    o,
                    n.uid
                );
            }
        }
    }

    #[test]
    fn soft_ownership_ties_cluster_secrets_and_dangling_owners_are_kept_aside() {
        let g = Graph::new(demo_cluster());
        assert!(
            g.node("s1").unwrap().owners.contains("c"),
            "demo-kubeconfig belongs to Cluster demo"
        );
        // demo-ca is owned by the KCP and, softly, by the Cluster.
        assert_eq!(
            g.node("s2").unwrap().owners,
            BTreeSet::from(["c".to_string(), "kcp".to_string()])
        );
        let creds = g.node("s4").unwrap();
        assert!(creds.owners.is_empty());
        assert_eq!(
            creds.dangling_owners[0].to_string(),
            "SealedSecret capi-self/demo-cloud-credentials"
        );
    }

    #[test]
    fn cluster_classes_precede_their_clusters() {
        let mut objs = vec![obj(
            "cluster.x-k8s.io/v1beta2",
            "ClusterClass",
            "quick",
            "cc",
            &[],
        )];
        let mut c = obj("cluster.x-k8s.io/v1beta2", "Cluster", "demo", "c", &[]);
        c["spec"] = json!({"topology": {"classRef": {"name": "quick"}}});
        objs.push(c);
        let g = Graph::new(objs);
        assert_eq!(
            kinds(&g, &g.sequence().unwrap()),
            [["ClusterClass capi-self/quick"], ["Cluster capi-self/demo"]]
        );
    }

    #[test]
    fn cycles_are_reported_by_name() {
        let g = Graph::new(vec![
            obj(
                "cluster.x-k8s.io/v1beta2",
                "Machine",
                "a",
                "a",
                &[("Machine", "b", "b")],
            ),
            obj(
                "cluster.x-k8s.io/v1beta2",
                "Machine",
                "b",
                "b",
                &[("Machine", "a", "a")],
            ),
            obj("cluster.x-k8s.io/v1beta2", "Cluster", "c", "c", &[]),
        ]);
        let err = g.sequence().unwrap_err();
        assert_eq!(
            err.to_string(),
            "owner references form a cycle among Machine capi-self/a, Machine capi-self/b; break it before moving"
        );
    }

    #[test]
    fn empty_graph_has_empty_sequence() {
        assert_eq!(
            Graph::new(vec![]).sequence().unwrap(),
            Sequence { groups: vec![] }
        );
    }
}
