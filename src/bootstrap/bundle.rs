//! The support bundle of a failed step, like `kind export logs`: a gzipped tar at
//! `clusters/<name>/.capi-manage/support-<time>.tar.gz` (0600) with the node's logs, the
//! controllers' logs, the events, the Cluster's conditions, the state file and the error.
//!
//! Secrets stay out: Secrets are never read, values under keys that look secret are replaced in
//! every YAML, and the secret values of the cluster's `credentials.yaml` are replaced wherever
//! they occur (a controller may log them). Each part is gathered within a time limit; what
//! cannot be gathered is noted in `README.txt` instead.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ApiResource, DynamicObject, ListParams, LogParams};
use serde_json::Value;

use super::StepError;
use super::context::Context;
use crate::observe::ObserverExt;

/// Longest wait for each part of the bundle.
const PART_TIMEOUT: Duration = Duration::from_secs(20);
/// Lines of each container's log kept.
const LOG_LINES: i64 = 2000;
/// What replaces a secret value.
pub const REDACTED: &str = "<redacted>";

/// Whether a key names a secret value.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "private",
        "credential",
        "apikey",
        "api_key",
        "api-key",
        "clouds.yaml",
        "tls.key",
        "identity",
        "bearer",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// Redacts `v` in place: the data of Secrets, values under secret-looking keys, and `value` next
/// to a secret-looking `name` (environment variables).
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("kind").and_then(Value::as_str) == Some("Secret") {
                for k in ["data", "stringData"] {
                    if map.contains_key(k) {
                        map.insert(k.into(), Value::String(REDACTED.into()));
                    }
                }
            }
            let named_secret = map
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(is_secret_key);
            for (k, child) in map.iter_mut() {
                if (is_secret_key(k) || (named_secret && k == "value")) && !child.is_null() {
                    *child = Value::String(REDACTED.into());
                } else {
                    redact(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// The string values under secret-looking keys of a YAML text (and of YAML documents held in
/// its strings, such as `clouds.yaml` inside a Secret's `stringData`).
pub fn secret_values(yaml: &str) -> Vec<String> {
    fn walk(v: &Value, under_secret: bool, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    walk(child, under_secret || is_secret_key(k), out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, under_secret, out)),
            Value::String(s) => {
                if s.contains('\n')
                    && let Ok(inner) = serde_yaml_ng::from_str::<Value>(s)
                    && inner.is_object()
                {
                    walk(&inner, false, out);
                } else if under_secret && s.len() >= 4 {
                    out.push(s.clone());
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(yaml) {
        if let Ok(v) = <Value as serde::Deserialize>::deserialize(doc) {
            walk(&v, false, &mut out);
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// `text` with every one of `secrets` replaced.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut t = text.to_string();
    for s in secrets {
        if t.contains(s.as_str()) {
            t = t.replace(s.as_str(), REDACTED);
        }
    }
    t
}

/// `value` redacted, as YAML.
fn yaml(mut value: Value) -> String {
    redact(&mut value);
    crate::manifest::to_yaml_value(&value)
}

/// `YYYYMMDDTHHMMSSZ` of `t` (UTC).
pub fn timestamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The files of a bundle, gathered.
#[derive(Default)]
struct Parts {
    files: Vec<(String, String)>,
    notes: Vec<String>,
}

impl Parts {
    fn add(&mut self, name: impl Into<String>, text: impl Into<String>) {
        self.files.push((name.into(), text.into()));
    }
}

async fn within<T>(
    what: &str,
    notes: &mut Vec<String>,
    f: impl std::future::Future<Output = Result<T, String>>,
) -> Option<T> {
    match tokio::time::timeout(PART_TIMEOUT, f).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            notes.push(format!("{what}: {e}"));
            None
        }
        Err(_) => {
            notes.push(format!("{what}: no answer within {PART_TIMEOUT:?}"));
            None
        }
    }
}

/// Pod logs, events and the Cluster from the cluster behind `kubeconfig`, under `prefix/`.
async fn cluster_parts(parts: &mut Parts, prefix: &str, kubeconfig: PathBuf, ctx: &Context<'_>) {
    if !kubeconfig.is_file() {
        parts.notes.push(format!(
            "{prefix}: no kubeconfig at {}",
            kubeconfig.display()
        ));
        return;
    }
    let what = format!("{prefix}: connect");
    let Some(client) = within(&what, &mut parts.notes, async {
        crate::kube::connect(&ctx.o.timeouts.client(kubeconfig))
            .await
            .map_err(|e| e.to_string())
    })
    .await
    else {
        return;
    };
    let pods: kube::Api<Pod> = kube::Api::all(client.clone());
    let listed = within(&format!("{prefix}: list Pods"), &mut parts.notes, async {
        pods.list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    for pod in listed.map(|l| l.items).unwrap_or_default() {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        parts.add(
            format!("{prefix}/pods/{ns}/{name}.yaml"),
            yaml(serde_json::to_value(&pod).unwrap_or_default()),
        );
        let api: kube::Api<Pod> = kube::Api::namespaced(client.clone(), &ns);
        let containers = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter().map(|c| c.name.clone()))
            .collect::<Vec<_>>();
        for c in containers {
            let params = LogParams {
                container: Some(c.clone()),
                tail_lines: Some(LOG_LINES),
                ..LogParams::default()
            };
            let what = format!("{prefix}: logs of {ns}/{name}/{c}");
            if let Some(text) = within(&what, &mut parts.notes, async {
                api.logs(&name, &params).await.map_err(|e| e.to_string())
            })
            .await
            {
                parts.add(format!("{prefix}/pods/{ns}/{name}/{c}.log"), text);
            }
        }
    }
    let events: kube::Api<Event> = kube::Api::all(client.clone());
    if let Some(list) = within(&format!("{prefix}: list Events"), &mut parts.notes, async {
        events
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())
    })
    .await
    {
        let mut items = list.items;
        items.sort_by_key(|e| e.last_timestamp.clone().map(|t| t.0));
        let value = serde_json::to_value(&items).unwrap_or_default();
        parts.add(format!("{prefix}/events.yaml"), yaml(value));
    }
    let (ns, name) = (&ctx.o.namespace, &ctx.o.cluster);
    let mut found = None;
    let mut errors = Vec::new();
    for version in ["v1beta2", "v1beta1"] {
        let gvk = kube::api::GroupVersionKind::gvk("cluster.x-k8s.io", version, "Cluster");
        let ar = ApiResource::from_gvk_with_plural(&gvk, "clusters");
        let api: kube::Api<DynamicObject> = kube::Api::namespaced_with(client.clone(), ns, &ar);
        match tokio::time::timeout(PART_TIMEOUT, api.get(name)).await {
            Ok(Ok(c)) => {
                found = Some(c);
                break;
            }
            Ok(Err(e)) => errors.push(format!("{version}: {e}")),
            Err(_) => errors.push(format!("{version}: no answer")),
        }
    }
    match found {
        Some(c) => parts.add(
            format!("{prefix}/cluster-conditions.yaml"),
            cluster_conditions(&c),
        ),
        None => parts.notes.push(format!(
            "{prefix}: Cluster {ns}/{name}: {}",
            errors.join("; ")
        )),
    }
}

/// A Cluster's phase and conditions (both contracts' fields), as redacted YAML.
fn cluster_conditions(c: &DynamicObject) -> String {
    let status = &c.data["status"];
    yaml(serde_json::json!({
        "cluster": format!(
            "{}/{}",
            c.metadata.namespace.as_deref().unwrap_or_default(),
            c.metadata.name.as_deref().unwrap_or_default()
        ),
        "apiVersion": c.types.as_ref().map(|t| t.api_version.clone()),
        "phase": status["phase"],
        "conditions": status["conditions"],
        "v1beta2": status["v1beta2"],
        "deprecated": status["deprecated"],
    }))
}

/// The gzipped tar of `files`.
fn archive(files: &[(String, String)], mtime: u64) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, text.as_bytes())?;
    }
    tar.into_inner()?.finish()
}

/// Writes the support bundle for `step`, failed with `error`; its path, or `None` (with a
/// warning) when it cannot be written. Never fails the run further.
pub(super) async fn write(ctx: &mut Context<'_>, step: &str, error: &StepError) -> Option<PathBuf> {
    let now = SystemTime::now();
    let dir = ctx.dir.clone();
    let path = dir
        .state_dir()
        .join(format!("support-{}.tar.gz", timestamp(now)));
    ctx.observer.action(format!(
        "writing a support bundle to {}",
        dir.relative(&path).display()
    ));
    let mut parts = Parts::default();
    let mut message = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(c) = cause {
        message.push_str(&format!("\n  caused by: {c}"));
        cause = c.source();
    }
    parts.add(
        "error.txt",
        format!("{} failed at step {step}:\n{message}\n", ctx.operation),
    );
    match std::fs::read_to_string(&ctx.state_path) {
        Ok(s) => parts.add("state.json", s),
        Err(e) => parts
            .notes
            .push(format!("state file {}: {e}", ctx.state_path.display())),
    }
    let host = crate::kind::docker_host(ctx.o.kind.docker_host.as_deref());
    let kind_name = ctx.o.kind.name.clone();
    match tokio::time::timeout(
        PART_TIMEOUT * 4,
        crate::kind::node_logs(
            &host,
            ctx.o.kind.docker_timeout.min(PART_TIMEOUT),
            &kind_name,
        ),
    )
    .await
    {
        Ok(Ok(logs)) => {
            for (name, text) in logs {
                parts.add(format!("node/{name}"), text);
            }
        }
        Ok(Err(e)) => parts.notes.push(format!("node logs: {e}")),
        Err(_) => parts.notes.push("node logs: no answer".into()),
    }
    cluster_parts(&mut parts, "kind", dir.kind_kubeconfig(), ctx).await;
    cluster_parts(&mut parts, "cluster", dir.kubeconfig(), ctx).await;
    let secrets = std::fs::read_to_string(dir.credentials())
        .map(|t| secret_values(&t))
        .unwrap_or_default();
    let mut readme = format!(
        "capi-manage support bundle: {} of cluster {}, step {step}, written {}\nSecrets are redacted ({REDACTED}).\n",
        ctx.operation,
        dir.name(),
        timestamp(now)
    );
    for n in &parts.notes {
        readme.push_str(&format!("not gathered: {n}\n"));
    }
    let mut files = vec![("README.txt".to_string(), readme)];
    files.extend(parts.files);
    for (_, text) in &mut files {
        *text = scrub(text, &secrets);
    }
    let mtime = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let written =
        archive(&files, mtime).and_then(|bytes| write_bundle(&dir.state_dir(), &path, &bytes));
    match written {
        Ok(()) => Some(path),
        Err(e) => {
            ctx.observer.warning(format!(
                "cannot write the support bundle {}: {e}",
                path.display()
            ));
            None
        }
    }
}

fn write_bundle(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    crate::fs::write_private(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_yaml_and_in_text() {
        let mut v = serde_json::json!({
            "kind": "Secret", "data": {"a": "b"},
            "spec": {"env": [{"name": "GIT_TOKEN", "value": "t0k"}, {"name": "X", "value": "keep"}]},
            "auth": {"application_credential_secret": "s3cr3t", "auth_url": "https://k"},
        });
        redact(&mut v);
        let text = v.to_string();
        for gone in ["t0k", "s3cr3t", "\"b\""] {
            assert!(!text.contains(gone), "{text}");
        }
        assert!(
            text.contains("keep") && text.contains("https://k"),
            "{text}"
        );

        let creds = "kind: Secret\nstringData:\n  clouds.yaml: |\n    clouds:\n      openstack:\n        auth:\n          auth_url: https://k:5000/v3\n          application_credential_id: abcd\n          application_credential_secret: s3cr3t-value\n";
        let secrets = secret_values(creds);
        assert!(secrets.contains(&"s3cr3t-value".to_string()), "{secrets:?}");
        assert!(
            !secrets.iter().any(|s| s.contains("https://")),
            "{secrets:?}"
        );
        assert_eq!(
            scrub("logged s3cr3t-value twice: s3cr3t-value", &secrets),
            format!("logged {REDACTED} twice: {REDACTED}")
        );
    }

    #[test]
    fn a_clusters_conditions_keep_reason_and_message() {
        let c: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
            "metadata": {"name": "prod", "namespace": "capi-self"},
            "spec": {"topology": {"variables": [{"name": "token", "value": "t0k"}]}},
            "status": {"phase": "Provisioning", "conditions": [
                {"type": "Available", "status": "False", "reason": "NotAvailable",
                 "message": "* InfrastructureReady: OpenStackCluster not ready"}]},
        }))
        .unwrap();
        let text = cluster_conditions(&c);
        for want in [
            "capi-self/prod",
            "Provisioning",
            "NotAvailable",
            "OpenStackCluster not ready",
        ] {
            assert!(text.contains(want), "{want}: {text}");
        }
        assert!(!text.contains("t0k"), "{text}");
    }

    #[test]
    fn timestamps_are_utc_civil_time() {
        let t = UNIX_EPOCH + Duration::from_secs(1_767_225_600 + 3 * 3600 + 4 * 60 + 5);
        assert_eq!(timestamp(t), "20260101T030405Z");
        assert_eq!(timestamp(UNIX_EPOCH), "19700101T000000Z");
    }

    #[test]
    fn the_archive_is_a_gzipped_tar_of_the_files() {
        let bytes = archive(&[("a/b.txt".into(), "hello".into())], 0).unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        let mut entries = tar.entries().unwrap();
        let mut e = entries.next().unwrap().unwrap();
        assert_eq!(e.path().unwrap().to_str(), Some("a/b.txt"));
        let mut s = String::new();
        std::io::Read::read_to_string(&mut e, &mut s).unwrap();
        assert_eq!(s, "hello");
    }
}
