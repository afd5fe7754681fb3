//! What `bootstrap` would do for a cluster, as data: its config summarised, the git remote it
//! pushes to, the pinned components and charts, and the steps with what an earlier run
//! finished. Only reads: the cluster's rendered config, the pins, the git config and the state
//! file.

use std::path::PathBuf;

use serde_json::Value;

use crate::components::{ChartPin, Pins, chart_pins};
use crate::repo::{Cluster, Repo};

/// A cluster's bootstrap plan.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Plan {
    /// The cluster's name.
    pub cluster: String,
    /// `clusters/<name>`.
    pub dir: PathBuf,
    /// The values ConfigMap, summarised.
    pub values: ValuesPlan,
    /// The credentials Secret, summarised (no secret values).
    pub credentials: CredentialsPlan,
    /// How many objects the cluster's folder renders to.
    pub objects: usize,
    /// Each rendered kind with its count, in order of first appearance.
    pub kinds: Vec<(String, usize)>,
    /// The URL of remote `origin` without credentials, when the repository has one.
    pub origin_url: Option<String>,
    /// The pinned components (name, version) in install order.
    pub components: Vec<(String, String)>,
    /// The charts of the cluster's HelmReleases with their pinned versions.
    pub charts: Vec<ChartPin>,
    /// The bootstrap's steps in order.
    pub steps: Vec<PlannedStep>,
}

/// The values ConfigMap's settings that shape the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValuesPlan {
    /// The ConfigMap's namespace.
    pub namespace: String,
    /// The ConfigMap's name.
    pub config_map: String,
    /// The Kubernetes version.
    pub kubernetes_version: String,
    /// The control plane's machines (its name is empty).
    pub control_plane: Machines,
    /// The node groups (`nodeGroups`), in order.
    pub node_groups: Vec<Machines>,
}

/// A set of machines of one flavor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machines {
    /// The node group's name.
    pub name: String,
    /// `machineCount`, when set (else the chart's default).
    pub count: Option<String>,
    /// `machineFlavor`, when set.
    pub flavor: Option<String>,
}

/// The credentials Secret, without its values.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CredentialsPlan {
    /// The Secret's namespace.
    pub namespace: String,
    /// The Secret's name.
    pub secret_name: String,
    /// The cloud's Keystone URL.
    pub auth_url: String,
    /// Fields that still hold the placeholder: bootstrap refuses them.
    pub placeholders: Vec<String>,
}

/// One bootstrap step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlannedStep {
    /// Its id, as in the state file.
    pub id: &'static str,
    /// What it does.
    pub description: &'static str,
    /// Whether an earlier run finished it (a rerun skips it).
    pub done: bool,
}

/// The plan of `cluster` in `repo` with the components of `pins`. A state file that cannot be
/// read counts as no step done; a repository without a readable `origin` has none.
pub fn plan(repo: &Repo, cluster: &Cluster, pins: &Pins) -> Plan {
    let state = super::State::load(&cluster.dir.bootstrap_state()).unwrap_or_default();
    let steps = super::bootstrap_steps();
    let steps = steps.iter().map(|s| (s.id(), s.description()));
    let origin = crate::git::remote_url(repo.root(), "origin").ok().flatten();
    let v = &cluster.values;
    let c = &cluster.credentials;
    Plan {
        cluster: cluster.name.clone(),
        dir: cluster.dir.path().to_path_buf(),
        values: ValuesPlan {
            namespace: v.namespace.clone(),
            config_map: v.config_map_name.clone(),
            kubernetes_version: v.kubernetes_version.clone(),
            control_plane: machines(v.chart.get("controlPlane").unwrap_or(&Value::Null)),
            node_groups: v
                .chart
                .get("nodeGroups")
                .and_then(Value::as_array)
                .map(|groups| groups.iter().map(machines).collect())
                .unwrap_or_default(),
        },
        credentials: CredentialsPlan {
            namespace: c.namespace.clone(),
            secret_name: c.secret_name.clone(),
            auth_url: c.auth_url.clone(),
            placeholders: c.placeholders.clone(),
        },
        objects: cluster.objects.len(),
        kinds: kinds(cluster),
        origin_url: origin.map(|url| crate::git::split_credentials(&url).0),
        components: pins
            .versions()
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        charts: chart_pins(&cluster.objects),
        steps: steps
            .map(|(id, description)| PlannedStep {
                id,
                description,
                done: state.done.contains(id),
            })
            .collect(),
    }
}

fn kinds(cluster: &Cluster) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for o in &cluster.objects {
        match counts.iter_mut().find(|(k, _)| k == o.kind()) {
            Some((_, n)) => *n += 1,
            None => counts.push((o.kind().to_string(), 1)),
        }
    }
    counts
}

fn machines(group: &Value) -> Machines {
    let field = |k: &str| {
        group.get(k).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    Machines {
        name: field("name").unwrap_or_default(),
        count: field("machineCount"),
        flavor: field("machineFlavor"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machines_read_numbers_and_strings_and_leave_unset_fields_out() {
        let m = machines(
            &serde_json::json!({"name": "md-0", "machineCount": 3, "machineFlavor": "m1.large"}),
        );
        assert_eq!(
            m,
            Machines {
                name: "md-0".into(),
                count: Some("3".into()),
                flavor: Some("m1.large".into())
            }
        );
        let m = machines(&Value::Null);
        assert_eq!((m.count, m.flavor), (None, None));
    }
}
