//! The tree of a Cluster API cluster as `clusterctl describe cluster` shows it: the Cluster, its
//! infrastructure, its control plane with its Machines, and under `Workers` each
//! MachineDeployment with its Machines; sibling Machines whose Available, Ready and UpToDate
//! conditions agree (status and reason) are grouped into one row (`3 Machines...`).
//!
//! Pure: objects (as JSON values, in either contract's shape) in, a [`Description`] out. Each row
//! shows one condition, as clusterctl does: `Available` for the Cluster, the control plane and
//! MachineDeployments, `Ready` for Machines and infrastructure; where an object has no
//! v1beta2 condition of that type its v1beta1 `Ready` condition (with its severity) stands in.

use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

/// One condition as a row shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Condition {
    /// `Available`, `Ready`, ...
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// The controller's reason (CamelCase), or empty.
    pub reason: String,
    /// The controller's message, or empty.
    pub message: String,
    /// `lastTransitionTime` (RFC 3339), when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// The v1beta1 severity (`Error`, `Warning`, `Info`) of a v1beta1 condition that is not True.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
}

/// One row of the tree: an object, a group of alike Machines, or the `Workers` heading.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Row {
    /// What the NAME column shows: `Cluster capi-self/prod`, `3 Machines...`, `Workers`.
    pub name: String,
    /// The object's kind; `MachineGroup` for a group, `WorkerGroup` for the heading.
    pub kind: String,
    /// The object's role where clusterctl names one: `ClusterInfrastructure`, `ControlPlane`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `current/desired` replicas, where the object counts them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<String>,
    /// Available replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available: Option<String>,
    /// Ready replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
    /// Up-to-date replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub up_to_date: Option<String>,
    /// The condition the row shows (see the module's documentation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    /// Whether the row counts as ready: its condition is True and it is neither deleted nor
    /// paused (a heading is ready when all its children are).
    pub ok: bool,
    /// Set when the object is being deleted.
    pub deleting: bool,
    /// Set when the object is paused (`spec.paused`): its controllers do nothing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// The Machines of a group, by name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// The rows under it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Row>,
}

/// A cluster's tree and its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Description {
    /// Every row is ready.
    pub ready: bool,
    /// One line per row that is not ready, with its reason and message.
    pub not_ready: Vec<String>,
    /// The Cluster's row, holding the others.
    pub tree: Row,
}

/// The objects of one cluster, as read from its management cluster.
#[derive(Debug, Clone, Default)]
pub struct Objects {
    /// The Cluster.
    pub cluster: Value,
    /// The object `spec.infrastructureRef` names, when it exists.
    pub infrastructure: Option<Value>,
    /// The object `spec.controlPlaneRef` names, when it exists.
    pub control_plane: Option<Value>,
    /// The cluster's MachineDeployments.
    pub machine_deployments: Vec<Value>,
    /// The cluster's MachineSets (they link Machines to their MachineDeployment).
    pub machine_sets: Vec<Value>,
    /// The cluster's Machines.
    pub machines: Vec<Value>,
}

/// Label Cluster API puts on control-plane Machines.
const CONTROL_PLANE_LABEL: &str = "cluster.x-k8s.io/control-plane";

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("?")
}

fn kind(o: &Value) -> &str {
    o["kind"].as_str().unwrap_or("?")
}

/// The condition lists of `o`, v1beta2 ones first: `status.conditions` of a v1beta2 object
/// (or `status.v1beta2.conditions` of a v1beta1 one), then the v1beta1 ones
/// (`status.deprecated.v1beta1.conditions`, or `status.conditions` of a v1beta1 object).
fn lists(o: &Value) -> (Vec<&Value>, Vec<&Value>) {
    let s = &o["status"];
    fn items(v: &Value) -> Vec<&Value> {
        v.as_array().into_iter().flatten().collect()
    }
    let own = items(&s["conditions"]);
    // v1beta1 conditions carry `severity` when not True; v1beta2 ones `observedGeneration` and
    // always a reason. A v1beta1 object keeps its v1beta2 conditions under `status.v1beta2`.
    let v1beta1_object = s.get("v1beta2").is_some()
        || o["apiVersion"]
            .as_str()
            .is_some_and(|v| v.ends_with("/v1beta1") && s.get("deprecated").is_none());
    if v1beta1_object {
        (items(&s["v1beta2"]["conditions"]), own)
    } else {
        (own, items(&s["deprecated"]["v1beta1"]["conditions"]))
    }
}

fn to_condition(c: &Value) -> Condition {
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    Condition {
        type_: text("type"),
        status: text("status"),
        reason: text("reason"),
        message: text("message"),
        since: c["lastTransitionTime"].as_str().map(str::to_string),
        severity: c["severity"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    }
}

/// The v1beta2 condition `type_` of `o`.
fn v1beta2(o: &Value, type_: &str) -> Option<Condition> {
    lists(o)
        .0
        .into_iter()
        .find(|c| c["type"] == type_)
        .map(to_condition)
}

/// The condition a row of `o` shows: v1beta2 `preferred`, else v1beta1 `Ready`.
fn shown(o: &Value, preferred: &str) -> Option<Condition> {
    v1beta2(o, preferred).or_else(|| {
        lists(o)
            .1
            .into_iter()
            .find(|c| c["type"] == "Ready")
            .map(to_condition)
    })
}

fn count(v: &Value) -> Option<String> {
    v.as_i64().map(|n| n.to_string())
}

/// The replica counters of a MachineDeployment, MachineSet or control plane.
fn counters(row: &mut Row, o: &Value) {
    let s = &o["status"];
    if let Some(want) = o["spec"]["replicas"].as_i64() {
        row.replicas = Some(format!("{}/{want}", s["replicas"].as_i64().unwrap_or(0)));
    }
    row.available = count(&s["availableReplicas"]);
    row.ready = count(&s["readyReplicas"]);
    row.up_to_date = count(&s["upToDateReplicas"]).or_else(|| count(&s["updatedReplicas"]));
}

fn object_row(o: &Value, shows: &str, role: Option<&str>) -> Row {
    let ns = o["metadata"]["namespace"].as_str().unwrap_or_default();
    let mut label = format!("{} {ns}/{}", kind(o), name(o));
    let version = o["spec"]["version"]
        .as_str()
        .or(o["spec"]["template"]["spec"]["version"].as_str())
        .or(o["spec"]["topology"]["version"].as_str());
    if let Some(v) = version {
        label.push_str(&format!(", {v}"));
    }
    let deleting = o["metadata"]["deletionTimestamp"].is_string();
    if deleting {
        label = format!("!! DELETED !! {label}");
    }
    let condition = shown(o, shows);
    // Without a condition an infrastructure object may still say it is ready (v1beta1
    // `status.ready`, v1beta2 `status.initialization.provisioned`).
    let flag = o["status"]["ready"] == true || o["status"]["initialization"]["provisioned"] == true;
    let paused = o["spec"]["paused"] == true;
    let ok = match &condition {
        Some(c) => c.status == "True",
        None => role == Some("ClusterInfrastructure") && flag,
    } && !deleting
        && !paused;
    Row {
        name: label,
        kind: kind(o).to_string(),
        role: role.map(str::to_string),
        condition,
        ok,
        deleting,
        paused,
        ..Row::default()
    }
}

fn machine_row(m: &Value) -> Row {
    let mut row = object_row(m, "Ready", None);
    let is_true = |t: &str| v1beta2(m, t).is_some_and(|c| c.status == "True");
    row.replicas = Some("1".into());
    row.available = Some(u8::from(is_true("Available")).to_string());
    row.ready = Some(u8::from(row.ok).to_string());
    row.up_to_date = Some(u8::from(is_true("UpToDate")).to_string());
    row
}

/// Status and reason of a Machine's Available, Ready and UpToDate conditions.
type Likeness = Vec<Option<(String, String)>>;

/// What makes Machines alike: status and reason of Available, Ready and UpToDate.
fn likeness(m: &Value) -> Likeness {
    ["Available", "Ready", "UpToDate"]
        .iter()
        .map(|t| {
            let c = if *t == "Ready" {
                shown(m, t)
            } else {
                v1beta2(m, t)
            };
            c.map(|c| (c.status, c.reason))
        })
        .collect()
}

/// Rows for `machines` under a grouping parent: alike Machines (two or more) become one group row.
fn machine_rows(machines: &[&Value]) -> Vec<Row> {
    let mut rows: Vec<(Likeness, Vec<&Value>)> = Vec::new();
    for m in machines {
        let key = likeness(m);
        let deleting = m["metadata"]["deletionTimestamp"].is_string();
        match rows.iter_mut().find(|(k, _)| !deleting && *k == key) {
            Some((_, group)) if !group[0]["metadata"]["deletionTimestamp"].is_string() => {
                group.push(m)
            }
            _ => rows.push((key, vec![m])),
        }
    }
    let mut out: Vec<Row> = rows
        .into_iter()
        .map(|(_, group)| {
            if group.len() == 1 {
                return machine_row(group[0]);
            }
            let each: Vec<Row> = group.iter().map(|m| machine_row(m)).collect();
            let mut members: Vec<String> = group.iter().map(|m| name(m).to_string()).collect();
            members.sort();
            let sum = |f: fn(&Row) -> &Option<String>| {
                each.iter()
                    .filter_map(|r| f(r).as_deref()?.parse::<u32>().ok())
                    .sum::<u32>()
                    .to_string()
            };
            // The group's condition: the members' (alike in status and reason), since the
            // earliest transition, and no message (the members' messages differ).
            let condition = each[0].condition.clone().map(|mut c| {
                c.since = each
                    .iter()
                    .filter_map(|r| r.condition.as_ref()?.since.clone())
                    .min();
                c.message = String::new();
                c
            });
            Row {
                name: format!("{} Machines...", group.len()),
                kind: "MachineGroup".into(),
                available: Some(sum(|r| &r.available)),
                ready: Some(sum(|r| &r.ready)),
                up_to_date: Some(sum(|r| &r.up_to_date)),
                ok: each.iter().all(|r| r.ok),
                condition,
                members,
                ..Row::default()
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn owned_by<'a>(o: &'a Value, kind_: &str) -> Option<&'a str> {
    o["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["kind"] == kind_)?["name"]
        .as_str()
}

/// The tree of the cluster in `objects`, with its verdict.
pub fn describe(objects: &Objects) -> Description {
    let cluster = &objects.cluster;
    let mut root = object_row(cluster, "Available", None);
    let s = &cluster["status"];
    let (cp, w) = (&s["controlPlane"], &s["workers"]);
    let add = |k: &str| -> Option<i64> {
        let (a, b) = (cp[k].as_i64(), w[k].as_i64());
        (a.is_some() || b.is_some()).then(|| a.unwrap_or(0) + b.unwrap_or(0))
    };
    if add("desiredReplicas").is_some() || add("replicas").is_some() {
        root.replicas = Some(format!(
            "{}/{}",
            add("replicas").unwrap_or(0),
            add("desiredReplicas").unwrap_or(0)
        ));
    }
    root.available = add("availableReplicas").map(|n| n.to_string());
    root.ready = add("readyReplicas").map(|n| n.to_string());
    root.up_to_date = add("upToDateReplicas").map(|n| n.to_string());

    let mut children = Vec::new();
    if let Some(infra) = &objects.infrastructure {
        children.push(object_row(infra, "Ready", Some("ClusterInfrastructure")));
    }
    let is_cp = |m: &&Value| m["metadata"]["labels"].get(CONTROL_PLANE_LABEL).is_some();
    if let Some(cpo) = &objects.control_plane {
        let mut row = object_row(cpo, "Available", Some("ControlPlane"));
        counters(&mut row, cpo);
        let machines: Vec<&Value> = objects.machines.iter().filter(is_cp).collect();
        row.children = machine_rows(&machines);
        children.push(row);
    }
    let workers: Vec<&Value> = objects
        .machines
        .iter()
        .filter(|m| !is_cp(m) || objects.control_plane.is_none())
        .collect();
    if !workers.is_empty() || !objects.machine_deployments.is_empty() {
        let mut heading = Row {
            name: "Workers".into(),
            kind: "WorkerGroup".into(),
            ..Row::default()
        };
        let mut placed = vec![false; workers.len()];
        let mut mds: Vec<&Value> = objects.machine_deployments.iter().collect();
        mds.sort_by_key(|md| name(md));
        for md in mds {
            let mut row = object_row(md, "Available", None);
            counters(&mut row, md);
            let sets: Vec<&str> = objects
                .machine_sets
                .iter()
                .filter(|ms| owned_by(ms, "MachineDeployment") == Some(name(md)))
                .map(name)
                .collect();
            let mut mine = Vec::new();
            for (i, m) in workers.iter().enumerate() {
                if owned_by(m, "MachineSet").is_some_and(|ms| sets.contains(&ms)) {
                    placed[i] = true;
                    mine.push(*m);
                }
            }
            row.children = machine_rows(&mine);
            heading.children.push(row);
        }
        let other: Vec<&Value> = workers
            .iter()
            .zip(&placed)
            .filter(|(_, p)| !**p)
            .map(|(m, _)| *m)
            .collect();
        if !other.is_empty() {
            heading.children.push(Row {
                name: "Other".into(),
                kind: "OtherGroup".into(),
                children: machine_rows(&other),
                ..Row::default()
            });
        }
        children.push(heading);
    }
    children.sort_by_key(row_name);
    root.children = children;
    settle(&mut root);
    let mut not_ready = Vec::new();
    collect_not_ready(&root, &mut not_ready);
    Description {
        ready: not_ready.is_empty(),
        not_ready,
        tree: root,
    }
}

/// The name a row is sorted by: its role first where it has one, as clusterctl's NAME shows.
fn row_name(r: &Row) -> String {
    match &r.role {
        Some(role) => format!("{role} - {}", r.name),
        None => r.name.clone(),
    }
}

/// Headings (no condition of their own) are ready when all their children are.
fn settle(row: &mut Row) {
    row.children.iter_mut().for_each(settle);
    if row.condition.is_none() && matches!(row.kind.as_str(), "WorkerGroup" | "OtherGroup") {
        row.ok = row.children.iter().all(|c| c.ok);
    }
}

fn collect_not_ready(row: &Row, out: &mut Vec<String>) {
    let heading = matches!(row.kind.as_str(), "WorkerGroup" | "OtherGroup");
    if !row.ok && !heading {
        let what = match &row.condition {
            None => "no condition reported yet".to_string(),
            Some(c) => {
                let mut s = format!("{}={}", c.type_, c.status);
                match (c.reason.is_empty(), first_line(&c.message).is_empty()) {
                    (true, true) => {}
                    (false, true) => s.push_str(&format!(" ({})", c.reason)),
                    (true, false) => s.push_str(&format!(" ({})", first_line(&c.message))),
                    (false, false) => {
                        s.push_str(&format!(" ({}: {})", c.reason, first_line(&c.message)))
                    }
                }
                s
            }
        };
        let mut name = row.name.clone();
        if !row.members.is_empty() {
            name.push_str(&format!(" ({})", row.members.join(", ")));
        }
        let mut also = String::new();
        if row.paused {
            also.push_str("; paused (spec.paused)");
        }
        if row.deleting {
            also.push_str("; being deleted");
        }
        out.push(format!("{name}: {what}{also}"));
    }
    row.children.iter().for_each(|c| collect_not_ready(c, out));
}

fn first_line(s: &str) -> &str {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// How long ago `since` (RFC 3339) was, as clusterctl prints ages: `45s`, `12m`, `3h`, `2d`.
pub fn age(since: &str, now: SystemTime) -> String {
    let Some(t) = parse_rfc3339(since) else {
        return String::new();
    };
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let s = (now - t).max(0);
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 3600 * 3 => format!("{}m", s / 60),
        s if s < 86_400 * 2 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SSZ` (fractions and offsets other than Z are
/// not written by the API server for conditions).
fn parse_rfc3339(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[10] != b'T' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// The column headings of [`render`], as clusterctl's (v1beta2 conditions).
pub const COLUMNS: [&str; 9] = [
    "NAME",
    "REPLICAS",
    "AVAILABLE",
    "READY",
    "UP TO DATE",
    "STATUS",
    "REASON",
    "SINCE",
    "MESSAGE",
];

/// The tree as a table like `clusterctl describe cluster`'s: one line per row, the NAME column
/// drawn as a tree (`├─`, `└─`, `│ `), messages on their first line (a group's says which
/// Machines it holds).
pub fn render(d: &Description, now: SystemTime) -> String {
    let mut lines: Vec<[String; 9]> = vec![COLUMNS.map(str::to_string)];
    fn walk(row: &Row, prefix: &str, lines: &mut Vec<[String; 9]>, now: SystemTime) {
        let c = row.condition.as_ref();
        let message = if row.members.is_empty() {
            c.map(|c| first_line(&c.message).to_string())
                .unwrap_or_default()
        } else if row.members.len() <= 2 {
            format!("See {}", row.members.join(", "))
        } else {
            format!("See {}, ...", row.members[..2].join(", "))
        };
        let name = match &row.role {
            Some(role) => format!("{role} - {}", row.name),
            None => row.name.clone(),
        };
        lines.push([
            format!("{prefix}{name}"),
            row.replicas.clone().unwrap_or_default(),
            row.available.clone().unwrap_or_default(),
            row.ready.clone().unwrap_or_default(),
            row.up_to_date.clone().unwrap_or_default(),
            c.map(|c| c.status.clone()).unwrap_or_default(),
            c.map(|c| c.reason.clone()).unwrap_or_default(),
            c.and_then(|c| c.since.as_deref())
                .map(|s| age(s, now))
                .unwrap_or_default(),
            message,
        ]);
        // Children continue the parent's lines: `├─` becomes `│ `, `└─` becomes blanks.
        let base = prefix.replace("├─", "│ ").replace("└─", "  ");
        for (i, child) in row.children.iter().enumerate() {
            let branch = if i + 1 < row.children.len() {
                "├─"
            } else {
                "└─"
            };
            walk(child, &format!("{base}{branch}"), lines, now);
        }
    }
    walk(&d.tree, "", &mut lines, now);
    let mut widths = [0usize; 9];
    for l in &lines {
        for (w, cell) in widths.iter_mut().zip(l) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for l in &lines {
        let mut line = String::new();
        for (i, cell) in l.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < l.len() {
                let pad = widths[i] - cell.chars().count() + 2;
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T0: &str = "2026-01-01T00:00:00Z";

    fn cond(type_: &str, status: &str, reason: &str, message: &str) -> Value {
        json!({"type": type_, "status": status, "reason": reason, "message": message,
               "lastTransitionTime": T0, "observedGeneration": 1})
    }

    fn machine(name: &str, owner: (&str, &str), cp: bool, ready: &str, reason: &str) -> Value {
        let labels = if cp {
            json!({CONTROL_PLANE_LABEL: ""})
        } else {
            json!({})
        };
        json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
               "metadata": {"name": name, "namespace": "ns", "labels": labels,
                            "ownerReferences": [{"kind": owner.0, "name": owner.1}]},
               "spec": {"version": "v1.33.1"},
               "status": {"conditions": [
                   cond("Available", ready, reason, ""),
                   cond("Ready", ready, reason, if ready == "True" { "" } else { "* NodeHealthy: Node not ready" }),
                   cond("UpToDate", "True", "UpToDate", "")]}})
    }

    fn objects(worker_ready: &str) -> Objects {
        Objects {
            cluster: json!({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
                "metadata": {"name": "prod", "namespace": "ns"},
                "spec": {},
                "status": {
                    "controlPlane": {"desiredReplicas": 3, "replicas": 3, "readyReplicas": 3, "availableReplicas": 3, "upToDateReplicas": 3},
                    "workers": {"desiredReplicas": 2, "replicas": 2, "readyReplicas": 1, "availableReplicas": 1, "upToDateReplicas": 2},
                    "conditions": [cond("Available", "True", "Available", "")]}}),
            // CAPO v0.14's OpenStackCluster: v1beta1 conditions only.
            infrastructure: Some(
                json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
                "kind": "OpenStackCluster", "metadata": {"name": "prod", "namespace": "ns"},
                "status": {"ready": true, "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": T0}]}}),
            ),
            control_plane: Some(
                json!({"apiVersion": "controlplane.cluster.x-k8s.io/v1beta2",
                "kind": "KubeadmControlPlane", "metadata": {"name": "prod-cp", "namespace": "ns"},
                "spec": {"replicas": 3, "version": "v1.33.1"},
                "status": {"replicas": 3, "readyReplicas": 3, "availableReplicas": 3, "upToDateReplicas": 3,
                           "conditions": [cond("Available", "True", "Available", "")]}}),
            ),
            machine_deployments: vec![json!({"apiVersion": "cluster.x-k8s.io/v1beta2",
                "kind": "MachineDeployment", "metadata": {"name": "prod-md-0", "namespace": "ns"},
                "spec": {"replicas": 2, "template": {"spec": {"version": "v1.33.1"}}},
                "status": {"replicas": 2, "readyReplicas": 1, "availableReplicas": 1, "upToDateReplicas": 2,
                           "conditions": [cond("Available", worker_ready, if worker_ready == "True" {"Available"} else {"NotAvailable"},
                                               "1 available replicas, at least 2 required")]}})],
            machine_sets: vec![
                json!({"kind": "MachineSet", "metadata": {"name": "prod-md-0-abc",
                "ownerReferences": [{"kind": "MachineDeployment", "name": "prod-md-0"}]}}),
            ],
            machines: vec![
                machine(
                    "prod-cp-1",
                    ("KubeadmControlPlane", "prod-cp"),
                    true,
                    "True",
                    "Ready",
                ),
                machine(
                    "prod-cp-2",
                    ("KubeadmControlPlane", "prod-cp"),
                    true,
                    "True",
                    "Ready",
                ),
                machine(
                    "prod-cp-3",
                    ("KubeadmControlPlane", "prod-cp"),
                    true,
                    "True",
                    "Ready",
                ),
                machine(
                    "prod-md-0-abc-x",
                    ("MachineSet", "prod-md-0-abc"),
                    false,
                    "True",
                    "Ready",
                ),
                machine(
                    "prod-md-0-abc-y",
                    ("MachineSet", "prod-md-0-abc"),
                    false,
                    worker_ready,
                    if worker_ready == "True" {
                        "Ready"
                    } else {
                        "NotReady"
                    },
                ),
            ],
        }
    }

    #[test]
    fn alike_machines_are_grouped_and_each_part_sits_where_clusterctl_puts_it() {
        let d = describe(&objects("True"));
        assert!(d.ready, "{:?}", d.not_ready);
        let t = &d.tree;
        assert_eq!(t.name, "Cluster ns/prod");
        assert_eq!(
            (t.replicas.as_deref(), t.ready.as_deref()),
            (Some("5/5"), Some("4"))
        );
        let names: Vec<String> = t.children.iter().map(row_name).collect();
        assert_eq!(
            names,
            [
                "ClusterInfrastructure - OpenStackCluster ns/prod",
                "ControlPlane - KubeadmControlPlane ns/prod-cp, v1.33.1",
                "Workers"
            ]
        );
        // The v1beta1 Ready condition stands in for the missing v1beta2 one.
        assert_eq!(t.children[0].condition.as_ref().unwrap().type_, "Ready");
        let cp = &t.children[1];
        assert_eq!(cp.children.len(), 1);
        assert_eq!(cp.children[0].name, "3 Machines...");
        assert_eq!(
            cp.children[0].members,
            ["prod-cp-1", "prod-cp-2", "prod-cp-3"]
        );
        assert_eq!(cp.children[0].ready.as_deref(), Some("3"));
        let md = &t.children[2].children[0];
        assert_eq!(md.name, "MachineDeployment ns/prod-md-0, v1.33.1");
        assert_eq!(md.children[0].name, "2 Machines...");

        let text = render(
            &d,
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_767_225_600 + 300),
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("NAME") && lines[0].contains("UP TO DATE  STATUS  REASON"),
            "{text}"
        );
        assert!(lines[1].starts_with("Cluster ns/prod "), "{text}");
        assert!(
            lines[2].starts_with("├─ClusterInfrastructure - OpenStackCluster ns/prod "),
            "{text}"
        );
        assert!(lines[4].starts_with("│ └─3 Machines... "), "{text}");
        assert!(
            lines[4].contains("True")
                && lines[4].contains("5m")
                && lines[4].contains("See prod-cp-1, prod-cp-2, ..."),
            "{text}"
        );
        assert!(lines[5].starts_with("└─Workers"), "{text}");
        assert!(lines[7].starts_with("    └─2 Machines... "), "{text}");
        assert_eq!(lines.len(), 8, "{text}");
    }

    #[test]
    fn a_machine_not_ready_stands_alone_and_is_reported_with_its_reason() {
        let d = describe(&objects("False"));
        assert!(!d.ready);
        let md = &d.tree.children[2].children[0];
        let names: Vec<&str> = md.children.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Machine ns/prod-md-0-abc-x, v1.33.1",
                "Machine ns/prod-md-0-abc-y, v1.33.1"
            ]
        );
        assert_eq!(
            d.not_ready,
            [
                "MachineDeployment ns/prod-md-0, v1.33.1: Available=False (NotAvailable: 1 available replicas, at least 2 required)",
                "Machine ns/prod-md-0-abc-y, v1.33.1: Ready=False (NotReady: * NodeHealthy: Node not ready)",
            ]
        );
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["ready"], false);
        assert_eq!(
            json["tree"]["children"][2]["children"][0]["condition"]["reason"],
            "NotAvailable"
        );
    }

    #[test]
    fn v1beta1_objects_fall_back_to_their_ready_condition_and_a_pause_is_not_ready() {
        let mut o = objects("True");
        // A v1beta1 Cluster: v1beta1 conditions at status.conditions, v1beta2 under status.v1beta2.
        o.cluster = json!({"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster",
            "metadata": {"name": "prod", "namespace": "ns"}, "spec": {"paused": true},
            "status": {"conditions": [{"type": "Ready", "status": "False", "severity": "Warning",
                                       "reason": "WaitingForControlPlane", "lastTransitionTime": T0}]}});
        let d = describe(&o);
        let c = d.tree.condition.as_ref().unwrap();
        assert_eq!(
            (c.type_.as_str(), c.severity.as_deref()),
            ("Ready", Some("Warning"))
        );
        assert_eq!(
            d.not_ready,
            ["Cluster ns/prod: Ready=False (WaitingForControlPlane); paused (spec.paused)"]
        );
        o.cluster["status"]["v1beta2"] =
            json!({"conditions": [cond("Available", "True", "Available", "")]});
        let d = describe(&o);
        assert_eq!(d.tree.condition.as_ref().unwrap().type_, "Available");
        assert_eq!(
            d.not_ready,
            ["Cluster ns/prod: Available=True (Available); paused (spec.paused)"]
        );
        // No condition yet: not ready, said so.
        o.cluster = json!({"kind": "Cluster", "metadata": {"name": "prod", "namespace": "ns"}});
        assert_eq!(
            describe(&o).not_ready,
            ["Cluster ns/prod: no condition reported yet"]
        );
    }

    #[test]
    fn machines_without_a_machine_deployment_go_under_other_and_ages_read_like_clusterctls() {
        let mut o = objects("True");
        o.machine_deployments.clear();
        let d = describe(&o);
        let workers = &d.tree.children[2];
        assert_eq!(workers.children[0].name, "Other");
        assert_eq!(workers.children[0].children[0].name, "2 Machines...");
        let at =
            |s: u64| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_767_225_600 + s);
        assert_eq!(age(T0, at(59)), "59s");
        assert_eq!(age(T0, at(3600)), "60m");
        assert_eq!(age(T0, at(5 * 3600)), "5h");
        assert_eq!(age(T0, at(3 * 86_400)), "3d");
        assert_eq!(age("garbage", at(1)), "");
    }
}
