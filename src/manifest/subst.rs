//! Variable substitution as Flux's `postBuild.substitute` does it (also fit for clusterctl-style
//! templates): `${NAME}` is replaced by the variable's value, `${NAME:=default}` (or clusterctl's
//! `${NAME:-default}`) by the value or else the default, and `$${NAME}` is an escape that leaves
//! `${NAME}` in the output. A variable
//! with neither a value nor a default is an error naming it. A bare `$NAME` is left alone.
//!
//! Like Flux, objects are substituted as YAML text and parsed again, so `replicas: ${N}` becomes
//! a number; objects annotated `kustomize.toolkit.fluxcd.io/substitute: disabled` are skipped.

use std::collections::BTreeMap;

use super::{Object, Origin, parse_str};

/// The annotation with which an object opts out of substitution.
pub const SUBSTITUTE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/substitute";

/// What went wrong substituting variables.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubstError {
    /// A variable is used without a value or a default.
    #[error(
        "{origin}: variable `{name}` is not set and has no default (write ${{{name}:=default}} or set it)"
    )]
    Missing {
        /// Where it is used.
        origin: Origin,
        /// The variable.
        name: String,
    },
    /// A `${` is not closed or names no valid variable.
    #[error(
        "{origin}: bad variable reference `{text}`: use ${{NAME}} or ${{NAME:=default}}, NAME matching [_a-zA-Z][_a-zA-Z0-9]*"
    )]
    Syntax {
        /// Where it is.
        origin: Origin,
        /// The offending text.
        text: String,
    },
    /// The substituted object is no longer valid YAML or not an object.
    #[error("{origin}: the object is invalid after substitution")]
    Reparse {
        /// The object's origin.
        origin: Origin,
        /// Why.
        #[source]
        source: Box<super::Error>,
    },
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(f) if f == '_' || f.is_ascii_alphabetic())
        && c.all(|x| x == '_' || x.is_ascii_alphanumeric())
}

/// Substitutes variables in `text`; `origin` is for errors.
pub fn substitute_str(
    text: &str,
    vars: &BTreeMap<String, String>,
    origin: &Origin,
) -> Result<String, SubstError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if after.starts_with("$${") {
            // Escape: `$${X}` stays `${X}` in the output.
            out.push('$');
            rest = &after[2..];
            let end = rest.find('}').map(|e| e + 1).unwrap_or(rest.len());
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        if !after.starts_with("${") {
            out.push('$');
            rest = &after[1..];
            continue;
        }
        let Some(close) = after.find('}') else {
            return Err(SubstError::Syntax {
                origin: origin.clone(),
                text: after.chars().take(40).collect(),
            });
        };
        let inner = &after[2..close];
        // `:=` is Flux's spelling of a default; clusterctl templates also use `:-`.
        let split = [":=", ":-"]
            .iter()
            .filter_map(|sep| inner.find(sep).map(|i| (i, sep.len())))
            .min();
        let (name, default) = match split {
            Some((i, n)) => (&inner[..i], Some(&inner[i + n..])),
            None => (inner, None),
        };
        if !valid_name(name) {
            return Err(SubstError::Syntax {
                origin: origin.clone(),
                text: after[..=close].to_string(),
            });
        }
        match (vars.get(name), default) {
            (Some(v), _) => out.push_str(v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(SubstError::Missing {
                    origin: origin.clone(),
                    name: name.to_string(),
                });
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Substitutes variables in every object (except those that opt out), like Flux's post-build
/// step: each object is written as YAML, substituted and parsed again.
pub fn substitute(
    objects: &[Object],
    vars: &BTreeMap<String, String>,
) -> Result<Vec<Object>, SubstError> {
    let mut out = Vec::with_capacity(objects.len());
    for o in objects {
        if o.annotation(SUBSTITUTE_ANNOTATION) == Some("disabled") {
            out.push(o.clone());
            continue;
        }
        let text = super::to_yaml(std::slice::from_ref(o));
        let replaced = substitute_str(&text, vars, &o.origin)?;
        let mut parsed =
            parse_str(&replaced, o.origin.file.as_deref()).map_err(|e| SubstError::Reparse {
                origin: o.origin.clone(),
                source: Box::new(e),
            })?;
        if parsed.len() != 1 {
            return Err(SubstError::Reparse {
                origin: o.origin.clone(),
                source: Box::new(super::Error::NotAnObject {
                    origin: o.origin.clone(),
                    problem: format!("substitution made {} documents of one", parsed.len()),
                }),
            });
        }
        let mut obj = parsed.remove(0);
        obj.origin = o.origin.clone();
        out.push(obj);
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn values_defaults_and_escapes() {
        let o = Origin::default();
        let v = vars(&[("A", "1"), ("NAME", "x")]);
        assert_eq!(
            substitute_str("a=${A} b=${B:=two} c=$${A} d=$HOME e=${NAME:=y}", &v, &o).unwrap(),
            "a=1 b=two c=${A} d=$HOME e=x"
        );
        assert_eq!(substitute_str("${E:=}", &v, &o).unwrap(), "");
        assert_eq!(
            substitute_str("--gates=MachinePool=${EXP_MP:-false},${A:-x}", &v, &o).unwrap(),
            "--gates=MachinePool=false,1"
        );
    }

    #[test]
    fn missing_variables_and_bad_syntax_are_named() {
        let o = Origin::default();
        let e = substitute_str("x: ${CLUSTER_NAME}", &vars(&[]), &o).unwrap_err();
        assert!(matches!(&e, SubstError::Missing { name, .. } if name == "CLUSTER_NAME"));
        assert!(e.to_string().contains("`CLUSTER_NAME`"), "{e}");
        assert!(matches!(
            substitute_str("${1X}", &vars(&[]), &o),
            Err(SubstError::Syntax { .. })
        ));
        assert!(matches!(
            substitute_str("${OPEN", &vars(&[]), &o),
            Err(SubstError::Syntax { .. })
        ));
    }

    #[test]
    fn objects_are_reparsed_and_opt_outs_kept() {
        let objs = vec![
            Object::new(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "${NAME}"}, "spec": {"replicas": "${N}"}})),
            Object::new(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "raw", "annotations": {SUBSTITUTE_ANNOTATION: "disabled"}},
                "data": {"x": "${NOPE}"}})),
        ];
        let out = substitute(&objs, &vars(&[("NAME", "web"), ("N", "3")])).unwrap();
        assert_eq!(out[0].name(), "web");
        assert_eq!(out[0].value["spec"]["replicas"], json!(3));
        assert_eq!(out[1].value["data"]["x"], "${NOPE}");
    }
}
