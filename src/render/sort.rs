//! kustomize's legacy output order: a fixed kind ranking, then group/version/kind, then
//! namespace and name.

use super::res::Res;
use crate::manifest::Gvk;

/// Kinds that go first, in this order.
const FIRST: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];

/// Kinds that go last, in this order.
const LAST: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

fn rank(kind: &str) -> i64 {
    if let Some(i) = FIRST.iter().position(|k| *k == kind) {
        return i as i64 - FIRST.len() as i64;
    }
    if let Some(i) = LAST.iter().position(|k| *k == kind) {
        return 1 + i as i64;
    }
    0
}

fn or<'a>(s: &'a str, empty: &'a str) -> &'a str {
    if s.is_empty() { empty } else { s }
}

fn gvk_key(g: &Gvk) -> String {
    format!(
        "{}_{}_{}",
        or(&g.group, "~G"),
        or(&g.version, "~V"),
        or(&g.kind, "~K")
    )
}

fn order(a: &Res, b: &Res) -> std::cmp::Ordering {
    let (ia, ib) = (a.cur_id(), b.cur_id());
    if ia.gvk != ib.gvk {
        let (ra, rb) = (rank(&ia.gvk.kind), rank(&ib.gvk.kind));
        if ra != rb {
            return ra.cmp(&rb);
        }
        let (ka, kb) = (gvk_key(&ia.gvk), gvk_key(&ib.gvk));
        if ia.gvk.kind == "Namespace"
            && ib.gvk.kind == "Namespace"
            && (ia.gvk.group.is_empty() || ib.gvk.group.is_empty())
        {
            return kb.cmp(&ka);
        }
        return ka.cmp(&kb);
    }
    let key = |id: &super::res::Id| {
        format!(
            "{}|{}|{}",
            id_gvk_string(&id.gvk),
            or(&id.namespace, "~X"),
            or(&id.name, "~N")
        )
    };
    key(&ia).cmp(&key(&ib))
}

fn id_gvk_string(g: &Gvk) -> String {
    format!(
        "{}.{}.{}",
        or(&g.kind, "[noKind]"),
        or(&g.version, "[noVer]"),
        or(&g.group, "[noGrp]")
    )
}

/// Sorts in kustomize's legacy order.
pub fn legacy(list: &mut [Res]) {
    list.sort_by(order);
}
