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

/// How to read manifests.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct ParseOptions {
    /// Turn every `metadata.annotations` value into a string as kustomize does: a scalar
    /// becomes its text as written (`true`, `0x1F`, `1.50`, `~` stay spelled so), anything
    /// else the empty string.
    pub annotations_as_written: bool,
    /// Accept objects without `apiVersion` (kustomize does; an API server would not).
    pub api_version_optional: bool,
    /// Require `metadata.name`: `generateName` alone is not enough (kustomize's rule).
    pub name_required: bool,
}

/// [`parse_file`] with options.
pub fn parse_file_with(path: &Path, options: ParseOptions) -> Result<Vec<Object>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_str_with(&text, Some(path), options)
}

/// Parses multi-document YAML into objects.
///
/// Empty documents are skipped; a `kind: List` (or `*List`) document contributes its `items`.
/// Every object must have string `apiVersion` and `kind` and a `metadata.name` (or
/// `generateName`); errors name the file, the document and the line it starts on.
pub fn parse_str(text: &str, file: Option<&Path>) -> Result<Vec<Object>, Error> {
    parse_str_with(text, file, ParseOptions::default())
}

/// [`parse_str`] with options.
pub fn parse_str_with(
    text: &str,
    file: Option<&Path>,
    options: ParseOptions,
) -> Result<Vec<Object>, Error> {
    let mut out = Vec::new();
    for (document, (line, body)) in split_documents(text).enumerate() {
        let origin = Origin {
            file: file.map(Path::to_path_buf),
            document,
            line,
        };
        let mut value: Value = match serde_yaml_ng::from_str(&body) {
            Ok(v) => v,
            Err(source) => return Err(Error::Yaml { origin, source }),
        };
        if options.annotations_as_written {
            annotations_as_written(&mut value, &body);
        }
        if value.is_null() {
            continue;
        }
        if is_list(&value) {
            let items = match value.get_mut("items").map(Value::take) {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            };
            for item in items {
                out.push(checked(item, &origin, options)?);
            }
        } else {
            out.push(checked(value, &origin, options)?);
        }
    }
    Ok(out)
}

/// The annotations of `value` (a document, or the items of a list) as strings: scalars as
/// written in `body`, other values empty.
fn annotations_as_written(value: &mut Value, body: &str) {
    let items = value
        .get("items")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let mut pending: Vec<(Option<usize>, String)> = Vec::new();
    for index in std::iter::once(None).chain((0..items).map(Some)) {
        if let Some(a) = annotations_at(value, index) {
            for (k, x) in a.iter_mut() {
                match x {
                    Value::String(_) => {}
                    Value::Object(_) | Value::Array(_) => *x = Value::String(String::new()),
                    _ => pending.push((index, k.clone())),
                }
            }
        }
    }
    if pending.is_empty() {
        return;
    }
    // Fails only when some annotation is not a scalar: then numbers keep their canonical text.
    let raw: Option<RawDoc> = serde_yaml_ng::from_str(body).ok();
    for (index, key) in pending {
        let written = raw
            .as_ref()
            .and_then(|r| match index {
                None => Some(r),
                Some(i) => r.items.get(i),
            })
            .and_then(|r| r.metadata.annotations.get(&key))
            .map(|t| t.0.clone());
        if let Some(x) = annotations_at(value, index).and_then(|a| a.get_mut(&key)) {
            let text = match (written, &*x) {
                (Some(w), _) => w,
                (None, Value::Null) => String::new(),
                (None, other) => other.to_string(),
            };
            *x = Value::String(text);
        }
    }
}

fn annotations_at(
    value: &mut Value,
    index: Option<usize>,
) -> Option<&mut serde_json::Map<String, Value>> {
    let v = match index {
        None => value,
        Some(i) => value.get_mut("items")?.get_mut(i)?,
    };
    v.get_mut("metadata")?
        .get_mut("annotations")?
        .as_object_mut()
}

/// Just the annotations of a document (and of its list items), each scalar as its text.
#[derive(Default, serde::Deserialize)]
struct RawDoc {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    items: Vec<RawDoc>,
}

#[derive(Default, serde::Deserialize)]
struct RawMeta {
    #[serde(default)]
    annotations: std::collections::HashMap<String, AsWritten>,
}

/// A scalar's text exactly as written (the YAML deserializer hands any scalar to `visit_str`).
struct AsWritten(String);

impl<'de> serde::Deserialize<'de> for AsWritten {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = AsWritten;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a scalar")
            }
            fn visit_str<E>(self, v: &str) -> Result<AsWritten, E> {
                Ok(AsWritten(v.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

fn is_list(v: &Value) -> bool {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    kind.ends_with("List")
        && v.get("items").is_some_and(Value::is_array)
        && v.get("metadata").and_then(|m| m.get("name")).is_none()
}

fn checked(value: Value, origin: &Origin, options: ParseOptions) -> Result<Object, Error> {
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
            Some(Value::String(_)) | None
                if field == "apiVersion" && options.api_version_optional => {}
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
    if !named("name") && (options.name_required || !named("generateName")) {
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
fn split_documents(text: &str) -> Documents<'_> {
    Documents {
        lines: text.lines().enumerate(),
        current: String::new(),
        start: 1,
        finished: false,
    }
}

/// The documents of a stream, each with the line it starts on, one at a time (a file's
/// documents are not all copied out of it at once). A leading marker leaves an empty first
/// document: documents that are only whitespace and comments are skipped, so document numbers
/// count real documents as users see them.
struct Documents<'a> {
    lines: std::iter::Enumerate<std::str::Lines<'a>>,
    current: String,
    start: usize,
    finished: bool,
}

impl Documents<'_> {
    /// The next document, empty or not.
    fn next_raw(&mut self) -> Option<(usize, String)> {
        if self.finished {
            return None;
        }
        for (i, line) in self.lines.by_ref() {
            let trimmed = line.trim_end();
            let is_start = trimmed == "---" || trimmed.starts_with("--- ");
            if is_start || trimmed == "..." {
                let doc = (self.start, std::mem::take(&mut self.current));
                self.start = i + 2;
                if let Some(rest) = trimmed.strip_prefix("--- ") {
                    // `--- value` puts content on the marker line itself.
                    self.current.push_str(rest);
                    self.current.push('\n');
                    self.start = i + 1;
                }
                return Some(doc);
            }
            self.current.push_str(line);
            self.current.push('\n');
        }
        self.finished = true;
        Some((self.start, std::mem::take(&mut self.current)))
    }
}

impl Iterator for Documents<'_> {
    type Item = (usize, String);

    fn next(&mut self) -> Option<(usize, String)> {
        loop {
            let (line, doc) = self.next_raw()?;
            if doc
                .lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            {
                return Some((line, doc));
            }
        }
    }
}

/// Serialises objects as multi-document YAML, `---` between documents, fields in their order,
/// strings a YAML 1.1 reader would take for something else quoted (see [`super::to_yaml_value`]).
pub fn to_yaml(objects: &[Object]) -> String {
    let mut out = String::new();
    for (i, o) in objects.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&super::to_yaml_value(&o.value));
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
        assert!(y.find("z:").unwrap() < y.find("a: \"2\"").unwrap(), "{y}");
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
    fn annotations_as_written_keep_the_spelling() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {l: 0x1F}\n  annotations:\n    a: 0x1F\n    b: 1.50\n    c: ~\n    d:\n    e: true\n    f: &x 7\n    g: *x\n    h: s\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: b, annotations: {a: Null, m: {k: v}}}\n";
        let opts = ParseOptions {
            annotations_as_written: true,
            ..Default::default()
        };
        let objs = parse_str_with(text, None, opts).unwrap();
        assert_eq!(
            objs[0].value["metadata"]["annotations"],
            serde_json::json!({"a": "0x1F", "b": "1.50", "c": "~", "d": "", "e": "true", "f": "7", "g": "7", "h": "s"})
        );
        assert_eq!(objs[0].value["metadata"]["labels"]["l"], 31);
        // A non-scalar annotation becomes empty; the others fall back to their canonical text.
        assert_eq!(
            objs[1].value["metadata"]["annotations"],
            serde_json::json!({"a": "", "m": ""})
        );
        let plain = parse_str(text, None).unwrap();
        assert_eq!(plain[0].value["metadata"]["annotations"]["e"], true);
    }

    #[test]
    fn kustomize_rules_accept_no_api_version_and_require_a_name() {
        let kustomize = ParseOptions {
            api_version_optional: true,
            name_required: true,
            ..Default::default()
        };
        let no_api = "kind: ConfigMap\nmetadata: {name: a}\n";
        assert!(parse_str(no_api, None).is_err());
        assert_eq!(parse_str_with(no_api, None, kustomize).unwrap().len(), 1);
        let generated = "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: a-}\n";
        assert_eq!(parse_str(generated, None).unwrap().len(), 1);
        let e = parse_str_with(generated, None, kustomize).unwrap_err();
        assert!(e.to_string().contains("metadata.name"), "{e}");
        assert!(parse_str_with("metadata: {name: a}\n", None, kustomize).is_err());
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
