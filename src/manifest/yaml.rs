use std::path::Path;

use serde_json::Value;

use super::{Error, Object, Origin};

/// Reads a multi-document YAML file into objects (see [`parse_str`]).
pub fn parse_file(path: &Path) -> Result<Vec<Object>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_str(&text, Some(path))
}

/// Parses multi-document YAML into objects.
///
/// Empty documents are skipped; a `kind: List` (or `*List`) document contributes its `items`.
/// Every object must have string `apiVersion` and `kind` and a `metadata.name` (or
/// `generateName`); errors name the file, the document and the line it starts on.
pub fn parse_str(text: &str, file: Option<&Path>) -> Result<Vec<Object>, Error> {
    let mut out = Vec::new();
    for (document, (line, body)) in split_documents(text).into_iter().enumerate() {
        let origin = Origin {
            file: file.map(Path::to_path_buf),
            document,
            line,
        };
        let value: Value = match serde_yaml_ng::from_str(&body) {
            Ok(v) => v,
            Err(source) => return Err(Error::Yaml { origin, source }),
        };
        if value.is_null() {
            continue;
        }
        if is_list(&value) {
            let items = value
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for item in items {
                out.push(checked(item, &origin)?);
            }
        } else {
            out.push(checked(value, &origin)?);
        }
    }
    Ok(out)
}

fn is_list(v: &Value) -> bool {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    kind.ends_with("List")
        && v.get("items").is_some_and(Value::is_array)
        && v.get("metadata").and_then(|m| m.get("name")).is_none()
}

fn checked(value: Value, origin: &Origin) -> Result<Object, Error> {
    let problem = |p: &str| Error::NotAnObject {
        origin: origin.clone(),
        problem: p.to_string(),
    };
    if !value.is_object() {
        return Err(problem(
            "not a Kubernetes object: expected a mapping with apiVersion, kind and metadata",
        ));
    }
    for field in ["apiVersion", "kind"] {
        match value.get(field) {
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(_) => {
                return Err(problem(&format!(
                    "field `{field}` must be a non-empty string"
                )));
            }
            None => {
                return Err(problem(&format!(
                    "field `{field}` is missing: every object needs apiVersion, kind and metadata.name"
                )));
            }
        }
    }
    let md = value.get("metadata");
    let named = |k: &str| {
        md.and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    if md.is_some_and(|m| !m.is_object()) {
        return Err(problem("field `metadata` must be a mapping"));
    }
    if !named("name") && !named("generateName") {
        return Err(problem(
            "field `metadata.name` is missing: give the object a name",
        ));
    }
    Ok(Object {
        value,
        origin: origin.clone(),
    })
}

/// Splits a YAML stream into documents at column-0 `---` markers, with the line each starts on.
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_end();
        let is_start = trimmed == "---" || trimmed.starts_with("--- ");
        if is_start || trimmed == "..." {
            docs.push((start, std::mem::take(&mut current)));
            start = i + 2;
            if let Some(rest) = trimmed.strip_prefix("--- ") {
                // `--- value` puts content on the marker line itself.
                current.push_str(rest);
                current.push('\n');
                start = i + 1;
            }
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    docs.push((start, current));
    // A leading marker leaves an empty first document: drop empty documents that are only
    // whitespace so document numbers count real documents as users see them.
    docs.retain(|(_, d)| {
        d.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    });
    docs
}

/// Serialises objects as multi-document YAML, `---` between documents, fields in their order.
pub fn to_yaml(objects: &[Object]) -> String {
    let mut out = String::new();
    for (i, o) in objects.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(
            &serde_yaml_ng::to_string(&o.value).expect("JSON values always serialise as YAML"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "# leading comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  z: '1'\n  a: '2'\n---\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns\n";

    #[test]
    fn parses_documents_skipping_empty_ones() {
        let objs = parse_str(TWO, Some(Path::new("x.yaml"))).unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0].identity(), "ConfigMap a");
        assert_eq!(objs[0].origin.line, 3);
        assert_eq!(objs[1].origin.line, 12);
        assert_eq!(objs[1].origin.document, 1);
    }

    #[test]
    fn round_trip_keeps_field_order() {
        let objs = parse_str(TWO, None).unwrap();
        let y = to_yaml(&objs);
        assert!(y.find("z:").unwrap() < y.find("a: '2'").unwrap(), "{y}");
        assert_eq!(
            parse_str(&y, None)
                .unwrap()
                .iter()
                .map(|o| &o.value)
                .collect::<Vec<_>>(),
            objs.iter().map(|o| &o.value).collect::<Vec<_>>()
        );
    }

    #[test]
    fn lists_are_flattened() {
        let objs = parse_str("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: b}\n", None).unwrap();
        assert_eq!(
            objs.iter().map(|o| o.name()).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn errors_name_file_document_and_line() {
        let e = parse_str("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: ConfigMap\nmetadata: {name: b}\n", Some(Path::new("c.yaml"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.yaml (document 2, line 5): field `apiVersion` is missing: every object needs apiVersion, kind and metadata.name"
        );
        let e = parse_str("a: [\n", Some(Path::new("bad.yaml"))).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("bad.yaml (document 1, line 1): invalid YAML"),
            "{e}"
        );
        let e = parse_str("apiVersion: v1\nkind: ConfigMap\n", None).unwrap_err();
        assert!(e.to_string().contains("metadata.name"), "{e}");
    }
}
