//! kustomize's legacy output order: a kind ranking (kustomize's fixed one, or the
//! kustomization's `sortOptions.legacySortOptions`), then group/version/kind, then namespace and
//! name.

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

/// Which kinds go first and last, in order (`sortOptions.legacySortOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ranking {
    pub first: Vec<String>,
    pub last: Vec<String>,
}

impl Ranking {
    /// kustomize's built-in ranking.
    pub fn builtin() -> Self {
        Ranking {
            first: FIRST.iter().map(|k| k.to_string()).collect(),
            last: LAST.iter().map(|k| k.to_string()).collect(),
        }
    }

    /// A kind's rank: negative for `first`, positive for `last`, 0 for the others. A kind in
    /// both lists takes its `last` rank, as kustomize's map does (later entries win).
    fn rank(&self, kind: &str) -> i64 {
        if let Some(i) = self.last.iter().rposition(|k| k == kind) {
            return 1 + i as i64;
        }
        if let Some(i) = self.first.iter().rposition(|k| k == kind) {
            return i as i64 - self.first.len() as i64;
        }
        0
    }
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

fn order(ranking: &Ranking, a: &Res, b: &Res) -> std::cmp::Ordering {
    let (ia, ib) = (a.cur_id(), b.cur_id());
    if ia.gvk != ib.gvk {
        let (ra, rb) = (ranking.rank(&ia.gvk.kind), ranking.rank(&ib.gvk.kind));
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
    legacy_with(list, &Ranking::builtin());
}

/// Sorts in kustomize's legacy order with a custom kind ranking.
pub fn legacy_with(list: &mut [Res], ranking: &Ranking) {
    list.sort_by(|a, b| order(ranking, a, b));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_first_negative_last_positive_and_last_wins() {
        let r = Ranking {
            first: vec!["A".into(), "B".into()],
            last: vec!["C".into(), "B".into()],
        };
        assert_eq!(r.rank("A"), -2);
        assert_eq!(r.rank("B"), 2);
        assert_eq!(r.rank("C"), 1);
        assert_eq!(r.rank("D"), 0);
        assert_eq!(Ranking::builtin().rank("Namespace"), -22);
        assert_eq!(Ranking::default().rank("Namespace"), 0);
    }
}
