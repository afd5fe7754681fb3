//! Pure: release bytes in, rendered objects and file text out, as `clusterctl init` would
//! install them (variables, target namespace, labels) plus an optional registry mirror.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::Error;
use super::pins::{Pin, Provider, Role};
use crate::manifest::{Object, parse_str, to_yaml};

/// Label on everything clusterctl installs (value empty).
pub const CLUSTERCTL_LABEL: &str = "clusterctl.cluster.x-k8s.io";
/// Label naming the provider an object belongs to, e.g. `infrastructure-openstack`.
pub const PROVIDER_LABEL: &str = "cluster.x-k8s.io/provider";
/// Label clusterctl puts on cert-manager's objects (value `cert-manager`).
pub const CLUSTERCTL_CORE_LABEL: &str = "clusterctl.cluster.x-k8s.io/core";
/// Annotation with the cert-manager version clusterctl installed.
pub const CERT_MANAGER_VERSION_ANNOTATION: &str =
    "cert-manager.clusterctl.cluster.x-k8s.io/version";

/// Kinds clusterctl treats as cluster-scoped (its `IsResourceNamespaced` list); every other
/// kind of a provider is put into the provider's namespace.
const CLUSTER_SCOPED: [&str; 16] = [
    "Namespace",
    "Node",
    "PersistentVolume",
    "PodSecurityPolicy",
    "CertificateSigningRequest",
    "ClusterRoleBinding",
    "ClusterRole",
    "VolumeAttachment",
    "StorageClass",
    "CSIDriver",
    "CSINode",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "CustomResourceDefinition",
    "PriorityClass",
    "RuntimeClass",
];

/// Renders one downloaded asset of `pin`: substitute variables (providers only, on the text, as
/// clusterctl does), parse, apply
/// clusterctl's rules for the pin's role, rewrite images for `image_registry`.
pub fn render_objects(
    pin: &Pin,
    url: &str,
    bytes: &[u8],
    variables: &BTreeMap<String, String>,
    image_registry: Option<&str>,
) -> Result<Vec<Object>, Error> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::NotUtf8 {
        component: pin.name.clone(),
        url: url.to_string(),
    })?;
    let substituted;
    let text = match &pin.role {
        Role::Provider(_) => {
            substituted = super::envsubst::substitute(text, variables).map_err(|p| match p {
                super::envsubst::Problem::Missing(names) => Error::Variable {
                    component: pin.name.clone(),
                    url: url.to_string(),
                    names: names.iter().map(|(n, _)| n.clone()).collect(),
                    line: names[0].1,
                },
                super::envsubst::Problem::Unsupported(expr, line) => Error::Provider {
                    component: pin.name.clone(),
                    url: url.to_string(),
                    problem: format!(
                        "line {line}: `{expr}` is not a supported variable reference (use ${{NAME}} or ${{NAME:=default}}; $$ for a literal $)"
                    ),
                },
            })?;
            substituted.as_str()
        }
        _ => text,
    };
    let mut objects = parse_str(text, Some(Path::new(url))).map_err(|source| Error::Manifest {
        component: pin.name.clone(),
        url: url.to_string(),
        source,
    })?;
    if let Some(registry) = image_registry {
        for o in &mut objects {
            rewrite_images(o, registry);
        }
    }
    match &pin.role {
        Role::Plain => {}
        Role::CertManager => {
            for o in &mut objects {
                set_label(o, CLUSTERCTL_LABEL, "");
                set_label(o, CLUSTERCTL_CORE_LABEL, "cert-manager");
                set_annotation(o, CERT_MANAGER_VERSION_ANNOTATION, &pin.version);
            }
        }
        Role::Provider(provider) => {
            objects =
                provider_components(objects, provider).map_err(|problem| Error::Provider {
                    component: pin.name.clone(),
                    url: url.to_string(),
                    problem,
                })?;
        }
    }
    Ok(objects)
}

/// The text of a rendered file: a header naming its source, then the objects.
pub fn rendered_text(pin: &Pin, url: &str, sha256: &str, objects: &[Object]) -> String {
    format!(
        "# {} {}: rendered by `capi-manage vendor` from\n#   {url}\n#   (sha256 {sha256}).\n# Do not edit: change vendor-manifests/vendor.toml and run `capi-manage vendor`.\n{}",
        pin.name,
        pin.version,
        to_yaml(objects)
    )
}

/// clusterctl's processing of a provider's components (after variable substitution):
/// the one Namespace is the target namespace; namespaced objects, webhook and conversion
/// services, cert-manager CA injection references, Certificate DNS names and RBAC subjects
/// are moved into it; every object gets the clusterctl and provider labels.
pub fn provider_components(
    mut objects: Vec<Object>,
    provider: &Provider,
) -> Result<Vec<Object>, String> {
    let namespaces: Vec<&str> = objects
        .iter()
        .filter(|o| o.kind() == "Namespace")
        .map(Object::name)
        .collect();
    let target = match namespaces.as_slice() {
        [one] => one.to_string(),
        [] => {
            return Err(
                "no Namespace object, so the target namespace cannot be defaulted (clusterctl needs one too)"
                    .into(),
            );
        }
        many => {
            return Err(format!(
                "{} Namespace objects ({}): a provider's components must hold exactly one",
                many.len(),
                many.join(", ")
            ));
        }
    };
    for o in &mut objects {
        let kind = o.kind().to_string();
        let original = o.namespace().unwrap_or("").to_string();
        if !CLUSTER_SCOPED.contains(&kind.as_str()) {
            o.set_namespace(&target);
        }
        if matches!(
            kind.as_str(),
            "MutatingWebhookConfiguration"
                | "ValidatingWebhookConfiguration"
                | "CustomResourceDefinition"
        ) {
            fix_webhook_references(o, &target)?;
        }
        match kind.as_str() {
            "Certificate" => fix_certificate(o, &original, &target),
            "ClusterRoleBinding" | "RoleBinding" => fix_subjects(o, &target),
            _ => {}
        }
        set_label(o, CLUSTERCTL_LABEL, "");
        set_label(o, PROVIDER_LABEL, &provider.manifest_label());
    }
    Ok(objects)
}

fn fix_webhook_references(o: &mut Object, target: &str) -> Result<(), String> {
    const INJECT: &str = "cert-manager.io/inject-ca-from";
    if let Some(from) = o.annotation(INJECT).map(str::to_string) {
        let parts: Vec<&str> = from.split('/').collect();
        let [_, name] = parts.as_slice() else {
            return Err(format!(
                "{}: annotation {INJECT} is `{from}`, not namespace/name",
                o.identity()
            ));
        };
        let value = format!("{target}/{name}");
        set_annotation(o, INJECT, &value);
    }
    let service_namespace = |v: Option<&mut Value>| {
        if let Some(Value::Object(service)) = v {
            service.insert("namespace".into(), Value::String(target.into()));
        }
    };
    match o.kind() {
        "CustomResourceDefinition" => {
            let conversion = o.value.pointer_mut("/spec/conversion");
            if let Some(c) = conversion {
                // apiextensions/v1 and (older) v1beta1 locations of the conversion service.
                if c.pointer("/webhook/clientConfig/service").is_some() {
                    service_namespace(c.pointer_mut("/webhook/clientConfig/service"));
                } else {
                    service_namespace(c.pointer_mut("/webhookClientConfig/service"));
                }
            }
        }
        _ => {
            if let Some(Value::Array(hooks)) = o.value.get_mut("webhooks") {
                for h in hooks {
                    service_namespace(h.pointer_mut("/clientConfig/service"));
                }
            }
        }
    }
    Ok(())
}

fn fix_certificate(o: &mut Object, original: &str, target: &str) {
    let from = format!(".{original}.");
    let to = format!(".{target}.");
    if let Some(Value::Array(names)) = o.value.pointer_mut("/spec/dnsNames") {
        for n in names {
            if let Value::String(s) = n {
                *s = s.replacen(&from, &to, 1);
            }
        }
    }
}

fn fix_subjects(o: &mut Object, target: &str) {
    if let Some(Value::Array(subjects)) = o.value.get_mut("subjects") {
        for s in subjects {
            if let Some(Value::String(ns)) = s.get_mut("namespace")
                && !ns.is_empty()
            {
                *ns = target.to_string();
            }
        }
    }
}

fn meta_map<'a>(o: &'a mut Object, field: &str) -> &'a mut Map<String, Value> {
    let md = o.metadata_mut();
    let m = md.entry(field).or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    m.as_object_mut().expect("just made an object")
}

fn set_label(o: &mut Object, key: &str, value: &str) {
    meta_map(o, "labels").insert(key.into(), Value::String(value.into()));
}

fn set_annotation(o: &mut Object, key: &str, value: &str) {
    meta_map(o, "annotations").insert(key.into(), Value::String(value.into()));
}

/// Points every container image of a workload at `registry`, keeping the repository path,
/// tag and digest: `registry.k8s.io/cluster-api/x:v1` becomes `<registry>/cluster-api/x:v1`.
/// Docker Hub images are spelled out first (`nginx` is `docker.io/library/nginx`).
pub fn rewrite_images(o: &mut Object, registry: &str) {
    let pod_spec = match o.kind() {
        "Deployment" | "DaemonSet" | "StatefulSet" | "ReplicaSet" | "Job" => "/spec/template/spec",
        "CronJob" => "/spec/jobTemplate/spec/template/spec",
        "Pod" => "/spec",
        _ => return,
    };
    let Some(spec) = o.value.pointer_mut(pod_spec) else {
        return;
    };
    for list in ["initContainers", "containers"] {
        if let Some(Value::Array(containers)) = spec.get_mut(list) {
            for c in containers {
                if let Some(Value::String(image)) = c.get_mut("image") {
                    *image = mirror_image(image, registry);
                }
            }
        }
    }
}

/// One image reference moved to `registry` (see [`rewrite_images`]).
pub fn mirror_image(image: &str, registry: &str) -> String {
    let registry = registry.trim_end_matches('/');
    let path = match image.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            rest.to_string()
        }
        Some(_) => image.to_string(),
        None => format!("library/{image}"),
    };
    format!("{registry}/{path}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::pins::ProviderType;
    use serde_json::json;

    fn provider() -> Provider {
        Provider {
            name: "openstack".into(),
            provider_type: ProviderType::Infrastructure,
        }
    }

    #[test]
    fn images_move_to_the_mirror_keeping_path_tag_and_digest() {
        let m = |i| mirror_image(i, "mirror.local:5000/");
        assert_eq!(
            m("registry.k8s.io/capi-openstack/capi-openstack-controller:v0.14.7"),
            "mirror.local:5000/capi-openstack/capi-openstack-controller:v0.14.7"
        );
        assert_eq!(m("nginx:1"), "mirror.local:5000/library/nginx:1");
        assert_eq!(
            m("bitnami/sealed-secrets-controller@sha256:ab"),
            "mirror.local:5000/bitnami/sealed-secrets-controller@sha256:ab"
        );
        assert_eq!(m("localhost/x"), "mirror.local:5000/x");
    }

    #[test]
    fn provider_rules_as_clusterctl() {
        let objs = vec![
            Object::new(json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "capo-system", "labels": {"control-plane": "x"}}})),
            Object::new(json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "svc"}})),
            Object::new(json!({"apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding", "metadata": {"name": "b"},
                "roleRef": {"kind": "ClusterRole", "name": "r"},
                "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "other"},
                             {"kind": "Group", "name": "g"}]})),
            Object::new(json!({"apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": "v", "annotations":
                    {"cert-manager.io/inject-ca-from": "old/serving-cert"}},
                "webhooks": [{"clientConfig": {"service": {"name": "svc", "namespace": "old"}}}]})),
            Object::new(
                json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
                "metadata": {"name": "c", "namespace": "old"},
                "spec": {"dnsNames": ["svc.old.svc", "svc.old.svc.cluster.local"]}}),
            ),
        ];
        let out = provider_components(objs, &provider()).unwrap();
        for o in &out {
            assert_eq!(o.label(CLUSTERCTL_LABEL), Some(""), "{o}");
            assert_eq!(o.label(PROVIDER_LABEL), Some("infrastructure-openstack"));
        }
        assert_eq!(out[0].label("control-plane"), Some("x"));
        assert_eq!(out[0].namespace(), None);
        assert_eq!(out[1].namespace(), Some("capo-system"));
        assert_eq!(out[2].namespace(), None);
        assert_eq!(out[2].value["subjects"][0]["namespace"], "capo-system");
        assert!(out[2].value["subjects"][1].get("namespace").is_none());
        assert_eq!(
            out[3].annotation("cert-manager.io/inject-ca-from"),
            Some("capo-system/serving-cert")
        );
        assert_eq!(
            out[3].value["webhooks"][0]["clientConfig"]["service"]["namespace"],
            "capo-system"
        );
        assert_eq!(
            out[4].value["spec"]["dnsNames"],
            json!(["svc.capo-system.svc", "svc.capo-system.svc.cluster.local"])
        );
    }

    #[test]
    fn a_provider_needs_exactly_one_namespace() {
        let ns = |n: &str| {
            Object::new(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}))
        };
        assert!(
            provider_components(vec![], &provider())
                .unwrap_err()
                .contains("no Namespace")
        );
        let e = provider_components(vec![ns("a"), ns("b")], &provider()).unwrap_err();
        assert!(e.contains("a, b"), "{e}");
    }
}
