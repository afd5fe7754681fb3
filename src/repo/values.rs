//! `clusters/<name>/values.yaml`: the ConfigMap holding the `openstack-cluster` chart's values.

use std::path::Path;

use serde_json::Value;

use super::Error;

/// The parsed values ConfigMap.
#[derive(Debug, Clone)]
pub struct Values {
    /// The ConfigMap's name (the HelmRelease's `valuesFrom` names it).
    pub config_map_name: String,
    /// Its namespace (the cluster's namespace on the management cluster).
    pub namespace: String,
    /// The chart values (`data."values.yaml"`, parsed).
    pub chart: Value,
    /// `cloudCredentialsSecretName`: the Secret the chart reads clouds.yaml from.
    pub cloud_credentials_secret_name: String,
    /// `kubernetesVersion`.
    pub kubernetes_version: String,
}

fn field(path: &Path, field: &str, problem: impl Into<String>) -> Error {
    Error::Field {
        path: path.to_path_buf(),
        field: field.into(),
        problem: problem.into(),
    }
}

fn string_at<'v>(v: &'v Value, dotted: &str) -> Option<&'v str> {
    let mut cur = v;
    for p in dotted.split('.') {
        cur = cur.get(p)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

impl Values {
    /// Reads and checks the values ConfigMap.
    pub fn load(path: &Path) -> Result<Values, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks the values ConfigMap's text (`path` is for messages).
    pub fn parse(text: &str, path: &Path) -> Result<Values, Error> {
        let cm: Value = serde_yaml_ng::from_str(text).map_err(|source| Error::Yaml {
            path: path.to_path_buf(),
            source,
        })?;
        if cm.get("kind").and_then(Value::as_str) != Some("ConfigMap")
            || cm.get("apiVersion").and_then(Value::as_str) != Some("v1")
        {
            return Err(field(path, "kind", "must be a v1 ConfigMap"));
        }
        let name = string_at(&cm, "metadata.name")
            .ok_or_else(|| field(path, "metadata.name", "is missing"))?;
        let namespace = string_at(&cm, "metadata.namespace").ok_or_else(|| {
            field(
                path,
                "metadata.namespace",
                "is missing: use the cluster's namespace (capi-self)",
            )
        })?;
        let body = cm
            .get("data")
            .and_then(|d| d.get("values.yaml"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                field(
                    path,
                    "data.values.yaml",
                    "is missing: the chart values go in this key",
                )
            })?;
        let chart: Value = serde_yaml_ng::from_str(body)
            .map_err(|e| field(path, "data.values.yaml", format!("is not valid YAML: {e}")))?;
        if !chart.is_object() {
            return Err(field(
                path,
                "data.values.yaml",
                "must be a mapping of chart values",
            ));
        }
        let req = |k: &str, hint: &str| {
            string_at(&chart, k).map(str::to_string).ok_or_else(|| {
                field(
                    path,
                    &format!("data.values.yaml: {k}"),
                    format!("is missing: {hint}"),
                )
            })
        };
        let secret = req(
            "cloudCredentialsSecretName",
            "name the Secret of credentials.yaml",
        )?;
        let version = req("kubernetesVersion", "e.g. 1.31.4")?;
        if !version
            .trim_start_matches('v')
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(field(
                path,
                "data.values.yaml: kubernetesVersion",
                format!("{version:?} is not a version like 1.31.4"),
            ));
        }
        if string_at(&chart, "machineImage").is_none()
            && string_at(&chart, "machineImageId").is_none()
        {
            return Err(field(
                path,
                "data.values.yaml: machineImage",
                "is missing: give machineImage (a Glance image name) or machineImageId",
            ));
        }
        req(
            "controlPlane.machineFlavor",
            "the OpenStack flavor of control-plane nodes",
        )?;
        if let Some(groups) = chart.get("nodeGroups") {
            let groups = groups
                .as_array()
                .ok_or_else(|| field(path, "data.values.yaml: nodeGroups", "must be a list"))?;
            for (i, g) in groups.iter().enumerate() {
                for k in ["name", "machineFlavor"] {
                    if string_at(g, k).is_none() {
                        return Err(field(
                            path,
                            &format!("data.values.yaml: nodeGroups[{i}].{k}"),
                            "is missing",
                        ));
                    }
                }
            }
        }
        Ok(Values {
            config_map_name: name.into(),
            namespace: namespace.into(),
            cloud_credentials_secret_name: secret,
            kubernetes_version: version,
            chart,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> String {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("clusters/example/values.yaml"),
        )
        .unwrap()
    }

    #[test]
    fn the_example_parses() {
        let v = Values::parse(&example(), Path::new("values.yaml")).unwrap();
        assert_eq!(v.cloud_credentials_secret_name, "example-cloud-credentials");
        assert_eq!(v.namespace, "capi-self");
        assert_eq!(v.kubernetes_version, "1.33.1");
    }

    #[test]
    fn mistakes_name_the_field() {
        let p = Path::new("clusters/x/values.yaml");
        let cases = [
            (
                example().replace("kubernetesVersion: 1.33.1", "kubernetesVersion: latest"),
                "kubernetesVersion",
            ),
            (
                example().replace(
                    "    cloudCredentialsSecretName: example-cloud-credentials\n",
                    "",
                ),
                "cloudCredentialsSecretName",
            ),
            (example().replace("machineImage:", "image:"), "machineImage"),
            (
                example().replace("      machineFlavor: m1.medium\n", ""),
                "controlPlane.machineFlavor",
            ),
            (
                example().replace("    - name: md-0\n", "    - nom: md-0\n"),
                "nodeGroups[0].name",
            ),
            (
                example().replace("  namespace: capi-self\n", ""),
                "metadata.namespace",
            ),
            (
                example().replace("values.yaml: |", "other.yaml: |"),
                "data.values.yaml",
            ),
        ];
        for (text, field) in cases {
            let e = Values::parse(&text, p).unwrap_err().to_string();
            assert!(
                e.contains(field) && e.contains("values.yaml"),
                "{field}: {e}"
            );
        }
    }
}
