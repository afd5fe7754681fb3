//! Name references: once prefixes, suffixes and hashes have renamed objects, the fields that
//! refer to them by name (a Deployment's ConfigMap volume, a RoleBinding's roleRef...) follow.

use std::collections::HashMap;

use serde_json::Value;

use super::fieldspec::{self, FieldSpec, Leaf};
use super::res::{GvkSel, Id, Res};

/// (referenced group, version, kind) and the fields that name such an object.
struct BackRef {
    target: GvkSel,
    referrers: Vec<FieldSpec>,
}

const POD_TEMPLATE_KINDS: &[(&str, &str)] = &[
    ("Deployment", "spec/template/spec"),
    ("ReplicaSet", "spec/template/spec"),
    ("DaemonSet", "spec/template/spec"),
    ("StatefulSet", "spec/template/spec"),
    ("Job", "spec/template/spec"),
    ("CronJob", "spec/jobTemplate/spec/template/spec"),
];

/// The workloads whose pod spec names a ServiceAccount, PersistentVolumeClaims and a
/// PriorityClass, with the path of that pod spec, in kustomize's order for those references.
const WORKLOAD_POD_SPECS: [(&str, &str); 6] = [
    ("StatefulSet", "spec/template/spec"),
    ("Deployment", "spec/template/spec"),
    ("ReplicationController", "spec/template/spec"),
    ("CronJob", "spec/jobTemplate/spec/template/spec"),
    ("Job", "spec/template/spec"),
    ("DaemonSet", "spec/template/spec"),
];

fn pod_fields(kind_paths: &[&str], out: &mut Vec<FieldSpec>) {
    // Pod (core v1), PodTemplate, then the workloads.
    for p in kind_paths {
        out.push(FieldSpec::new("", "v1", "Pod", &format!("spec/{p}"), false));
    }
    for p in kind_paths {
        out.push(FieldSpec::new(
            "",
            "",
            "PodTemplate",
            &format!("template/spec/{p}"),
            false,
        ));
    }
    for (kind, base) in POD_TEMPLATE_KINDS {
        for p in kind_paths {
            out.push(FieldSpec::new("", "", kind, &format!("{base}/{p}"), false));
        }
    }
}

fn back_refs() -> Vec<BackRef> {
    let fs = FieldSpec::new;
    let mut refs = Vec::new();
    for kind in [
        "Deployment",
        "ReplicationController",
        "ReplicaSet",
        "StatefulSet",
    ] {
        refs.push(BackRef {
            target: GvkSel::new("", "", kind),
            referrers: vec![fs(
                "",
                "",
                "HorizontalPodAutoscaler",
                "spec/scaleTargetRef/name",
                false,
            )],
        });
    }
    let mut cm = Vec::new();
    pod_fields(
        &[
            "volumes/configMap/name",
            "containers/env/valueFrom/configMapKeyRef/name",
            "initContainers/env/valueFrom/configMapKeyRef/name",
            "containers/envFrom/configMapRef/name",
            "initContainers/envFrom/configMapRef/name",
            "volumes/projected/sources/configMap/name",
        ],
        &mut cm,
    );
    cm.push(fs("", "", "Node", "spec/configSource/configMap", false));
    cm.push(fs("", "", "Role", "rules/resourceNames", false));
    cm.push(fs("", "", "ClusterRole", "rules/resourceNames", false));
    cm.push(fs(
        "",
        "",
        "Ingress",
        r"metadata/annotations/nginx.ingress.kubernetes.io\/fastcgi-params-configmap",
        false,
    ));
    refs.push(BackRef {
        target: GvkSel::new("", "v1", "ConfigMap"),
        referrers: cm,
    });
    let mut secret = Vec::new();
    pod_fields(
        &[
            "volumes/secret/secretName",
            "containers/env/valueFrom/secretKeyRef/name",
            "initContainers/env/valueFrom/secretKeyRef/name",
            "containers/envFrom/secretRef/name",
            "initContainers/envFrom/secretRef/name",
            "imagePullSecrets/name",
            "volumes/projected/sources/secret/name",
        ],
        &mut secret,
    );
    for (k, p) in [
        ("Ingress", "spec/tls/secretName"),
        (
            "Ingress",
            r"metadata/annotations/ingress.kubernetes.io\/auth-secret",
        ),
        (
            "Ingress",
            r"metadata/annotations/nginx.ingress.kubernetes.io\/auth-secret",
        ),
        (
            "Ingress",
            r"metadata/annotations/nginx.ingress.kubernetes.io\/auth-tls-secret",
        ),
        ("ServiceAccount", "imagePullSecrets/name"),
        ("StorageClass", "parameters/secretName"),
        ("StorageClass", "parameters/adminSecretName"),
        ("StorageClass", "parameters/userSecretName"),
        ("StorageClass", "parameters/secretRef"),
        ("Role", "rules/resourceNames"),
        ("ClusterRole", "rules/resourceNames"),
        ("PersistentVolume", "spec/azureFile/secretName"),
    ] {
        secret.push(fs("", "", k, p, false));
    }
    secret.push(fs(
        "serving.knative.dev",
        "v1",
        "Service",
        "spec/template/spec/containers/env/valueFrom/secretKeyRef/name",
        false,
    ));
    refs.push(BackRef {
        target: GvkSel::new("", "v1", "Secret"),
        referrers: secret,
    });
    refs.push(BackRef {
        target: GvkSel::new("", "v1", "Service"),
        referrers: vec![
            fs("apps", "", "StatefulSet", "spec/serviceName", false),
            fs(
                "",
                "",
                "Ingress",
                "spec/rules/http/paths/backend/serviceName",
                false,
            ),
            fs("", "", "Ingress", "spec/backend/serviceName", false),
            fs(
                "",
                "",
                "Ingress",
                "spec/rules/http/paths/backend/service/name",
                false,
            ),
            fs("", "", "Ingress", "spec/defaultBackend/service/name", false),
            fs(
                "apiregistration.k8s.io",
                "",
                "APIService",
                "spec/service/name",
                false,
            ),
            fs(
                "admissionregistration.k8s.io",
                "",
                "ValidatingWebhookConfiguration",
                "webhooks/clientConfig/service",
                false,
            ),
            fs(
                "admissionregistration.k8s.io",
                "",
                "MutatingWebhookConfiguration",
                "webhooks/clientConfig/service",
                false,
            ),
        ],
    });
    refs.push(BackRef {
        target: GvkSel::new("rbac.authorization.k8s.io", "", "Role"),
        referrers: vec![fs(
            "rbac.authorization.k8s.io",
            "",
            "RoleBinding",
            "roleRef/name",
            false,
        )],
    });
    refs.push(BackRef {
        target: GvkSel::new("rbac.authorization.k8s.io", "", "ClusterRole"),
        referrers: vec![
            fs(
                "rbac.authorization.k8s.io",
                "",
                "RoleBinding",
                "roleRef/name",
                false,
            ),
            fs(
                "rbac.authorization.k8s.io",
                "",
                "ClusterRoleBinding",
                "roleRef/name",
                false,
            ),
        ],
    });
    let mut sa = vec![
        fs(
            "rbac.authorization.k8s.io",
            "",
            "RoleBinding",
            "subjects",
            false,
        ),
        fs(
            "rbac.authorization.k8s.io",
            "",
            "ClusterRoleBinding",
            "subjects",
            false,
        ),
        fs("", "", "Pod", "spec/serviceAccountName", false),
    ];
    for (k, base) in WORKLOAD_POD_SPECS {
        sa.push(fs("", "", k, &format!("{base}/serviceAccountName"), false));
    }
    refs.push(BackRef {
        target: GvkSel::new("", "v1", "ServiceAccount"),
        referrers: sa,
    });
    let mut pvc = vec![fs(
        "",
        "",
        "Pod",
        "spec/volumes/persistentVolumeClaim/claimName",
        false,
    )];
    for (k, base) in WORKLOAD_POD_SPECS {
        pvc.push(fs(
            "",
            "",
            k,
            &format!("{base}/volumes/persistentVolumeClaim/claimName"),
            false,
        ));
    }
    refs.push(BackRef {
        target: GvkSel::new("", "v1", "PersistentVolumeClaim"),
        referrers: pvc,
    });
    refs.push(BackRef {
        target: GvkSel::new("", "v1", "PersistentVolume"),
        referrers: vec![
            fs("", "", "PersistentVolumeClaim", "spec/volumeName", false),
            fs("", "", "ClusterRole", "rules/resourceNames", false),
        ],
    });
    refs.push(BackRef {
        target: GvkSel::new("storage.k8s.io", "v1", "StorageClass"),
        referrers: vec![
            fs("", "", "PersistentVolume", "spec/storageClassName", false),
            fs(
                "",
                "",
                "PersistentVolumeClaim",
                "spec/storageClassName",
                false,
            ),
            fs(
                "",
                "",
                "StatefulSet",
                "spec/volumeClaimTemplates/spec/storageClassName",
                false,
            ),
        ],
    });
    let mut pc = vec![fs("", "", "Pod", "spec/priorityClassName", false)];
    for (k, base) in WORKLOAD_POD_SPECS {
        pc.push(fs("", "", k, &format!("{base}/priorityClassName"), false));
    }
    refs.push(BackRef {
        target: GvkSel::new("scheduling.k8s.io", "v1", "PriorityClass"),
        referrers: pc,
    });
    refs.push(BackRef {
        target: GvkSel::new("networking.k8s.io/v1", "v1", "IngressClass"),
        referrers: vec![fs("", "", "Ingress", "spec/ingressClassName", false)],
    });
    refs.push(BackRef {
        target: GvkSel::new(
            "admissionregistration.k8s.io",
            "",
            "ValidatingAdmissionPolicy",
        ),
        referrers: vec![fs(
            "admissionregistration.k8s.io",
            "",
            "ValidatingAdmissionPolicyBinding",
            "spec/policyName",
            false,
        )],
    });
    refs
}

/// A snapshot of a candidate referral, taken before any field is rewritten.
struct Cand {
    cur: Id,
    prev: Vec<Id>,
    prefixes: Vec<String>,
    suffixes: Vec<String>,
}

fn same_ending(a: &[String], b: &[String]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.is_empty() {
        return long.is_empty();
    }
    long.ends_with(short)
}

fn affixes_equal(a: &Cand, r: &Cand, allow_empty: bool) -> bool {
    if allow_empty {
        let pe = a.prefixes.is_empty() || r.prefixes.is_empty();
        let se = a.suffixes.is_empty() || r.suffixes.is_empty();
        (pe || same_ending(&a.prefixes, &r.prefixes))
            && (se || same_ending(&a.suffixes, &r.suffixes))
    } else {
        same_ending(&a.prefixes, &r.prefixes) && same_ending(&a.suffixes, &r.suffixes)
    }
}

/// The objects of the build by each name they had before their current one, and by the
/// namespace of their original id: each list in build order, each object once. References are
/// resolved through these instead of a scan of every object, so fixing them stays linear.
struct Index<'a> {
    by_prev_name: HashMap<&'a str, Vec<usize>>,
    by_org_namespace: HashMap<&'a str, Vec<usize>>,
}

impl<'a> Index<'a> {
    fn new(all: &'a [Cand]) -> Self {
        let mut by_prev_name: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut by_org_namespace: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, c) in all.iter().enumerate() {
            for p in &c.prev {
                let v = by_prev_name.entry(p.name.as_str()).or_default();
                if v.last() != Some(&i) {
                    v.push(i);
                }
            }
            let org = c.prev.first().unwrap_or(&c.cur);
            by_org_namespace
                .entry(org.namespace.as_str())
                .or_default()
                .push(i);
        }
        Index {
            by_prev_name,
            by_org_namespace,
        }
    }
}

/// The RoleBinding's ServiceAccount subjects' namespaces (where its references may point too).
fn subject_namespaces(referrer: &Res) -> Vec<String> {
    let mut sa_namespaces: Vec<String> = Vec::new();
    if referrer.kind() == "RoleBinding"
        && let Some(subjects) = referrer.value.get("subjects").and_then(Value::as_array)
    {
        for s in subjects {
            if s.get("kind").and_then(Value::as_str) == Some("ServiceAccount")
                && let Some(ns) = s.get("namespace").and_then(Value::as_str)
            {
                sa_namespaces.push(ns.to_string());
            }
        }
    }
    sa_namespaces
}

/// Which namespace a reference names, when it names one.
enum NsFilter<'n> {
    Any,
    /// Candidates whose original id is in this namespace.
    Original(&'n str),
    /// Candidates whose current id is in this namespace.
    Current(&'n str),
}

struct Ctx<'a> {
    referrer: Cand,
    referrer_cluster_scoped: bool,
    /// The namespaces of a RoleBinding's ServiceAccount subjects.
    sa_namespaces: Vec<String>,
    target: &'a GvkSel,
    role_ref: Option<GvkSel>,
    all: &'a [Cand],
    index: &'a Index<'a>,
}

impl Ctx<'_> {
    /// Whether the referrer could name candidate `i`: same namespace, or cluster-scoped, or
    /// (for a RoleBinding) in a namespace one of its ServiceAccount subjects names.
    fn could_reference(&self, i: usize) -> bool {
        if self.referrer_cluster_scoped {
            return true;
        }
        let id = &self.all[i].cur;
        id.is_cluster_scoped()
            || id.ns_equals(&self.referrer.cur)
            || self.sa_namespaces.contains(&id.namespace)
    }

    fn ns_matches(&self, i: usize, ns: &NsFilter) -> bool {
        match ns {
            NsFilter::Any => true,
            NsFilter::Original(ns) => {
                let c = &self.all[i];
                c.prev.first().unwrap_or(&c.cur).namespace == *ns
            }
            NsFilter::Current(ns) => self.all[i].cur.namespace == *ns,
        }
    }

    fn select(&self, old: &str, ns: &NsFilter, with_ns: bool) -> Result<Option<usize>, String> {
        let named: &[usize] = self.index.by_prev_name.get(old).map_or(&[], Vec::as_slice);
        let mut c: Vec<usize> = named
            .iter()
            .copied()
            .filter(|&i| self.could_reference(i) && self.ns_matches(i, ns))
            .filter(|&i| self.all[i].prev.iter().any(|p| self.target.selects(&p.gvk)))
            .filter(|&i| match &self.role_ref {
                Some(sel) => self.all[i].prev.iter().any(|p| sel.selects(&p.gvk)),
                None => true,
            })
            .filter(|&i| {
                if self.referrer_cluster_scoped {
                    return true;
                }
                let cand = &self.all[i].cur;
                cand.is_cluster_scoped()
                    || cand.gvk.kind == "ServiceAccount"
                    || cand.ns_equals(&self.referrer.cur)
            })
            .collect();
        if c.len() == 1 {
            return Ok(Some(c[0]));
        }
        c.retain(|&i| affixes_equal(&self.all[i], &self.referrer, true));
        if c.len() > 1 {
            c.retain(|&i| affixes_equal(&self.all[i], &self.referrer, false));
        }
        match c.len() {
            0 => Ok(None),
            1 => Ok(Some(c[0])),
            _ => {
                let first = &self.all[c[0]].cur;
                let same = c.iter().all(|&i| {
                    let x = &self.all[i].cur;
                    x.name == first.name && (!with_ns || x.namespace == first.namespace)
                });
                if same {
                    Ok(Some(c[0]))
                } else {
                    Err(format!(
                        "{old:?} could refer to several objects: {}",
                        c.iter()
                            .map(|&i| self.all[i].cur.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }
            }
        }
    }

    fn set(&self, node: &mut Value) -> Result<(), String> {
        match node {
            Value::Null => Ok(()),
            Value::String(s) => {
                if let Some(i) = self.select(s, &NsFilter::Any, false)? {
                    *s = self.all[i].cur.name.clone();
                }
                Ok(())
            }
            Value::Object(_) => self.set_map(node),
            Value::Array(items) => {
                for it in items {
                    match it {
                        Value::String(_) | Value::Object(_) => self.set(it)?,
                        _ => {}
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn set_map(&self, node: &mut Value) -> Result<(), String> {
        let m = node.as_object_mut().expect("mapping");
        let Some(old) = m.get("name").map(super::res::scalar_string) else {
            return Err("no `name` field in the reference".into());
        };
        let namespace = m.get("namespace").map(super::res::scalar_string);
        let filter = match namespace.as_deref() {
            None => NsFilter::Any,
            Some(ns) => {
                // By the original namespace when a candidate has it, else by the current one.
                let by_org = self
                    .index
                    .by_org_namespace
                    .get(ns)
                    .is_some_and(|v| v.iter().any(|&i| self.could_reference(i)));
                if by_org {
                    NsFilter::Original(ns)
                } else {
                    NsFilter::Current(ns)
                }
            }
        };
        let Some(i) = self.select(&old, &filter, true)? else {
            return Ok(());
        };
        let r = &self.all[i].cur;
        if r.name == old && r.namespace.is_empty() {
            return Ok(());
        }
        m.insert("name".into(), Value::String(r.name.clone()));
        if !r.namespace.is_empty() {
            m.insert("namespace".into(), Value::String(r.namespace.clone()));
        }
        Ok(())
    }
}

/// Rewrites name references across `list` (kustomize's back-reference fixing).
#[allow(dead_code)]
pub fn fix(list: &mut [Res]) -> Result<(), String> {
    fix_with(list, &[])
}

/// [`fix`] with the `nameReference` entries `configurations` and `crds` add.
pub fn fix_with(list: &mut [Res], added: &[super::fieldspec::NameBackRef]) -> Result<(), String> {
    let all: Vec<Cand> = list
        .iter()
        .map(|r| Cand {
            cur: r.cur_id(),
            prev: r.prev.clone(),
            prefixes: r.prefixes.clone(),
            suffixes: r.suffixes.clone(),
        })
        .collect();
    let index = Index::new(&all);
    let mut refs = back_refs();
    for a in added {
        match refs.iter_mut().find(|b| b.target == a.target) {
            Some(b) => {
                for f in &a.referrers {
                    if !b
                        .referrers
                        .iter()
                        .any(|o| o.gvk == f.gvk && o.path == f.path)
                    {
                        b.referrers.push(f.clone());
                    }
                }
            }
            None => refs.push(BackRef {
                target: a.target.clone(),
                referrers: a.referrers.clone(),
            }),
        }
    }
    for r in list.iter_mut() {
        let org = r.org_id();
        let mut applicable: Vec<(&BackRef, &FieldSpec)> = Vec::new();
        for br in &refs {
            for fs in &br.referrers {
                if fs.gvk.selects(&org.gvk) {
                    applicable.push((br, fs));
                }
            }
        }
        if applicable.is_empty() {
            continue;
        }
        let sa_namespaces = subject_namespaces(r);
        let referrer = Cand {
            cur: r.cur_id(),
            prev: r.prev.clone(),
            prefixes: r.prefixes.clone(),
            suffixes: r.suffixes.clone(),
        };
        let gvk = r.gvk();
        let role_ref = r.value.get("roleRef").and_then(|rr| {
            Some(GvkSel::new(
                rr.get("apiGroup")?.as_str()?,
                "",
                rr.get("kind")?.as_str()?,
            ))
        });
        let cluster = referrer.cur.is_cluster_scoped();
        let mut ctx = Ctx {
            referrer,
            referrer_cluster_scoped: cluster,
            sa_namespaces,
            target: &refs[0].target,
            role_ref: None,
            all: &all,
            index: &index,
        };
        for (br, fs) in applicable {
            ctx.target = &br.target;
            ctx.role_ref = if fs.path.ends_with("roleRef/name") {
                role_ref.clone()
            } else {
                None
            };
            // The referrer's own kind is what the spec was matched on: apply to its fields.
            let spec = FieldSpec {
                gvk: GvkSel::default(),
                path: fs.path.clone(),
                create: false,
            };
            let mut set = |v: &mut Value| ctx.set(v);
            fieldspec::apply(&mut r.value, &gvk, &spec, Leaf::None, &mut set).map_err(|e| {
                format!(
                    "{}: updating name reference in '{}': {e}",
                    ctx.referrer.cur, fs.path
                )
            })?;
        }
    }
    Ok(())
}
