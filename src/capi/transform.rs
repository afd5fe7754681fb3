//! Pure transforms of a move: the copy of a source object for the target or a backup file, and
//! the one rule for what pauses ([`pausable_key`]) and how ([`is_paused`], [`pause_patch`],
//! [`unpause_patch`], [`set_paused`]).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::graph::ObjectRef;

/// Annotation that holds a move back while present (clusterctl's contract).
pub const BLOCK_MOVE: &str = "clusterctl.cluster.x-k8s.io/block-move";
/// Annotation clusterctl sets on objects it deletes from the source after a move.
pub const DELETE_FOR_MOVE: &str = "clusterctl.cluster.x-k8s.io/delete-for-move";
/// Annotation that pauses a ClusterClass.
pub const PAUSED: &str = "cluster.x-k8s.io/paused";
/// Annotation this tool puts on what it pauses for a move, holding the move's run id: a later
/// run recognises its own pause by it even when the journal is lost, and never mistakes it for
/// a pause the user asked for.
pub const PAUSED_BY_MOVE: &str = "capi-manage.io/paused-by-move";

/// The copy of a source object to create on the target: server-set fields and status dropped,
/// owner references rewritten to the target's UIDs (`uid_map`: source UID -> target UID), or
/// dropped when their owner is not on the target.
pub(super) fn target_copy(source: &Value, uid_map: &BTreeMap<String, String>) -> Value {
    let mut o = source.clone();
    if let Some(md) = o["metadata"].as_object_mut() {
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "generation",
            "selfLink",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            md.remove(k);
        }
        if let Some(anns) = md.get_mut("annotations").and_then(Value::as_object_mut) {
            anns.retain(|k, _| {
                !k.starts_with("kopf.zalando.org/")
                    && k != "kubectl.kubernetes.io/last-applied-configuration"
            });
        }
        let owners: Vec<Value> = md
            .get("ownerReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let target = uid_map.get(r["uid"].as_str()?)?;
                let mut r = r.clone();
                r["uid"] = json!(target);
                Some(r)
            })
            .collect();
        if owners.is_empty() {
            md.remove("ownerReferences");
        } else {
            md.insert("ownerReferences".into(), Value::Array(owners));
        }
    }
    o.as_object_mut().expect("object").remove("status");
    o
}

/// The copy of a source object (read while the source is paused) to write to a backup file:
/// without managed fields, and without the pause when this tool made it (`paused_by_us`), so the
/// file holds the object as it was before the move paused it.
pub(super) fn backup_copy(mut current: Value, paused_by_us: bool) -> Value {
    if let Some(md) = current["metadata"].as_object_mut() {
        md.remove("managedFields");
    }
    if paused_by_us {
        set_paused(&mut current, false);
    }
    current
}

/// `Kind/name` of a Cluster or ClusterClass of `cluster.x-k8s.io`, the objects that pause; `None`
/// for every other object. The journal records paused objects under this key.
pub(super) fn pausable_key(reference: &ObjectRef) -> Option<String> {
    let kind = reference.kind.as_str();
    (reference.group() == "cluster.x-k8s.io" && (kind == "Cluster" || kind == "ClusterClass"))
        .then(|| format!("{kind}/{}", reference.name))
}

/// Where a pausable object of a kind holds its pause.
enum PauseField {
    /// `spec.paused: true` (a Cluster).
    Spec,
    /// The [`PAUSED`] annotation, any value (a ClusterClass).
    Annotation,
}

impl PauseField {
    fn of(kind: &str) -> PauseField {
        if kind == "Cluster" {
            PauseField::Spec
        } else {
            PauseField::Annotation
        }
    }
}

/// Whether a pausable object is paused, by whoever paused it.
pub(super) fn is_paused(object: &Value) -> bool {
    match PauseField::of(object["kind"].as_str().unwrap_or_default()) {
        PauseField::Spec => object["spec"]["paused"] == true,
        PauseField::Annotation => object["metadata"]["annotations"][PAUSED].is_string(),
    }
}

/// Whether a move run of this tool paused the object (it carries [`PAUSED_BY_MOVE`]).
pub(super) fn paused_by_move(object: &Value) -> bool {
    object["metadata"]["annotations"][PAUSED_BY_MOVE].is_string()
}

/// The JSON merge patch that pauses (`Some(run)`: marked with [`PAUSED_BY_MOVE`] = `run`;
/// `None`: unmarked) or unpauses (removing the field, not setting `false`, and the mark) an
/// object of `kind`.
fn pause_fields(kind: &str, paused: bool, run: Option<&str>) -> Value {
    let mark = match (paused, run) {
        (false, _) => Some(Value::Null),
        (true, Some(run)) => Some(json!(run)),
        (true, None) => None,
    };
    let mut annotations = Map::new();
    if let Some(mark) = mark {
        annotations.insert(PAUSED_BY_MOVE.into(), mark);
    }
    let mut patch = json!({});
    match PauseField::of(kind) {
        PauseField::Spec => {
            patch["spec"] = json!({"paused": if paused { json!(true) } else { Value::Null }});
        }
        PauseField::Annotation => {
            annotations.insert(PAUSED.into(), if paused { json!("") } else { Value::Null });
        }
    }
    if !annotations.is_empty() {
        patch["metadata"] = json!({"annotations": annotations});
    }
    patch
}

/// The merge patch that pauses an object of `kind` for the move run `run`.
pub(super) fn pause_patch(kind: &str, run: &str) -> Value {
    pause_fields(kind, true, Some(run))
}

/// The merge patch that undoes [`pause_patch`].
pub(super) fn unpause_patch(kind: &str) -> Value {
    pause_fields(kind, false, None)
}

/// Sets (`true`, unmarked) or clears (with the [`PAUSED_BY_MOVE`] mark) the pause of a Cluster
/// or ClusterClass in an object body: the patches above, applied locally. Annotations left empty
/// by clearing go.
pub(super) fn set_paused(body: &mut Value, paused: bool) {
    let kind = body["kind"].as_str().unwrap_or_default().to_string();
    merge_patch(body, &pause_fields(&kind, paused, None));
    if !paused
        && let Some(md) = body["metadata"].as_object_mut()
        && md
            .get("annotations")
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
    {
        md.remove("annotations");
    }
}

/// Applies a JSON merge patch (RFC 7386) to `target`.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let object = target.as_object_mut().expect("made an object");
    for (k, v) in fields {
        if v.is_null() {
            object.remove(k);
        } else {
            merge_patch(object.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_drop_server_fields_and_rewrite_or_drop_owner_refs() {
        let src = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n", "uid": "u1", "resourceVersion": "9",
            "creationTimestamp": "2026-01-01T00:00:00Z", "managedFields": [], "annotations": {"kopf.zalando.org/last-handled-configuration": "{}", "keep": "me"},
            "ownerReferences": [{"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "name": "c", "uid": "src-c"},
                                {"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "name": "s", "uid": "sealed"}]},
            "data": {"a": "Yg=="}, "status": {"x": 1}});
        let map = BTreeMap::from([("src-c".to_string(), "dst-c".to_string())]);
        let copy = target_copy(&src, &map);
        assert_eq!(
            copy,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n", "annotations": {"keep": "me"},
                "ownerReferences": [{"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "name": "c", "uid": "dst-c"}]},
                "data": {"a": "Yg=="}})
        );
    }

    fn object(api_version: &str, kind: &str) -> Value {
        json!({"apiVersion": api_version, "kind": kind,
            "metadata": {"name": "a", "namespace": "n", "annotations": {"keep": "me"}},
            "spec": {"x": 1}})
    }

    #[test]
    fn only_clusters_and_cluster_classes_of_cluster_api_pause() {
        let key = |v: &str, k: &str| pausable_key(&ObjectRef::of(&object(v, k)));
        assert_eq!(
            key("cluster.x-k8s.io/v1beta2", "Cluster").as_deref(),
            Some("Cluster/a")
        );
        assert_eq!(
            key("cluster.x-k8s.io/v1beta1", "ClusterClass").as_deref(),
            Some("ClusterClass/a")
        );
        for (v, k) in [
            ("infrastructure.cluster.x-k8s.io/v1beta1", "Cluster"),
            ("cluster.x-k8s.io/v1beta2", "MachineDeployment"),
            ("v1", "Secret"),
        ] {
            assert_eq!(key(v, k), None, "{v} {k}");
        }
    }

    #[test]
    fn pausing_patches_the_spec_of_clusters_and_annotates_cluster_classes() {
        assert_eq!(
            pause_patch("Cluster", "r1"),
            json!({"spec": {"paused": true}, "metadata": {"annotations": {PAUSED_BY_MOVE: "r1"}}})
        );
        assert_eq!(
            pause_patch("ClusterClass", "r1"),
            json!({"metadata": {"annotations": {PAUSED: "", PAUSED_BY_MOVE: "r1"}}})
        );
        assert_eq!(
            unpause_patch("Cluster"),
            json!({"spec": {"paused": null}, "metadata": {"annotations": {PAUSED_BY_MOVE: null}}})
        );
        assert_eq!(
            unpause_patch("ClusterClass"),
            json!({"metadata": {"annotations": {PAUSED: null, PAUSED_BY_MOVE: null}}})
        );
    }

    #[test]
    fn a_body_paused_then_unpaused_is_as_it_was_and_pause_is_read_back() {
        for kind in ["Cluster", "ClusterClass"] {
            let original = object("cluster.x-k8s.io/v1beta2", kind);
            assert!(!is_paused(&original), "{kind}");
            let mut body = original.clone();
            set_paused(&mut body, true);
            assert!(is_paused(&body), "{kind}");
            assert!(!paused_by_move(&body), "{kind}: a local pause is unmarked");
            set_paused(&mut body, false);
            assert_eq!(body, original, "{kind}");

            // As the server stores it after the pause patch: marked, and undone by unpausing.
            let mut stored = original.clone();
            merge_patch(&mut stored, &pause_patch(kind, "r1"));
            assert!(is_paused(&stored) && paused_by_move(&stored), "{kind}");
            set_paused(&mut stored, false);
            assert_eq!(stored, original, "{kind}");
        }
    }

    #[test]
    fn unpausing_drops_annotations_it_leaves_empty_and_a_user_value_still_counts_as_paused() {
        let mut body = json!({"kind": "ClusterClass", "metadata": {"name": "a",
            "annotations": {PAUSED: "by-hand", PAUSED_BY_MOVE: "r1"}}});
        assert!(is_paused(&body));
        set_paused(&mut body, false);
        assert_eq!(
            body,
            json!({"kind": "ClusterClass", "metadata": {"name": "a"}})
        );
    }

    #[test]
    fn backup_copies_drop_managed_fields_and_only_the_pause_this_tool_made() {
        let mut paused = object("cluster.x-k8s.io/v1beta2", "Cluster");
        paused["metadata"]["managedFields"] = json!([]);
        merge_patch(&mut paused, &pause_patch("Cluster", "r1"));
        let ours = backup_copy(paused.clone(), true);
        assert_eq!(ours, object("cluster.x-k8s.io/v1beta2", "Cluster"));
        let theirs = backup_copy(paused, false);
        assert!(is_paused(&theirs) && theirs["metadata"].get("managedFields").is_none());
    }
}
