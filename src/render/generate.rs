//! `configMapGenerator` and `secretGenerator`, and kustomize's content hash for their names.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::Error;
use super::kustomization::{GenOptions, GenSpec, Kustomization};
use super::res::{Behavior, Res};
use crate::manifest::Origin;

fn invalid(k: &Kustomization, field: &str, problem: impl Into<String>) -> Error {
    Error::Invalid {
        file: k.file.clone(),
        field: field.to_string(),
        problem: problem.into(),
    }
}

/// Reads a file a kustomization names, refusing paths outside its folder (kustomize's
/// default load restriction).
pub fn read_local(k: &Kustomization, field: &str, rel: &str) -> Result<Vec<u8>, Error> {
    let path = k.dir.join(rel);
    check_inside(k, field, &path)?;
    std::fs::read(&path).map_err(|source| Error::Read { path, source })
}

pub fn check_inside(k: &Kustomization, field: &str, path: &Path) -> Result<(), Error> {
    if !k.root_only {
        return Ok(());
    }
    let root = k.dir.canonicalize().map_err(|source| Error::Read {
        path: k.dir.clone(),
        source,
    })?;
    let real = path.canonicalize().map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if !real.starts_with(&root) {
        return Err(invalid(
            k,
            field,
            format!(
                "{} is outside {}: kustomize only loads files in or below the kustomization's folder",
                path.display(),
                k.dir.display()
            ),
        ));
    }
    Ok(())
}

fn merged_options(local: &Option<GenOptions>, global: &Option<GenOptions>) -> Option<GenOptions> {
    let Some(g) = global else {
        return local.clone();
    };
    let mut l = local.clone().unwrap_or_default();
    for (key, v) in &g.labels {
        if !l.labels.iter().any(|(k2, _)| k2 == key) {
            l.labels.push((key.clone(), v.clone()));
        }
    }
    for (key, v) in &g.annotations {
        if !l.annotations.iter().any(|(k2, _)| k2 == key) {
            l.annotations.push((key.clone(), v.clone()));
        }
    }
    l.disable_name_suffix_hash |= g.disable_name_suffix_hash;
    l.immutable |= g.immutable;
    Some(l)
}

fn is_env_var_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

fn is_config_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// Key/value pairs from env files, then literals, then files (kustomize's order).
fn pairs(k: &Kustomization, g: &GenSpec) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, env) in g.envs.iter().enumerate() {
        let field = format!("{}.envs[{i}]", g.field);
        let bytes = read_local(k, &field, env)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| invalid(k, &field, format!("{env} is not UTF-8")))?;
        for (n, line) in text.lines().enumerate() {
            let line = if n == 0 {
                line.trim_start_matches('\u{feff}')
            } else {
                line
            };
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line.split_once('=').unwrap_or((line, ""));
            if !is_env_var_name(key) {
                return Err(invalid(
                    k,
                    &field,
                    format!("{env} line {}: {key:?} is not a valid variable name", n + 1),
                ));
            }
            out.push((key.to_string(), value.as_bytes().to_vec()));
        }
    }
    for (i, lit) in g.literals.iter().enumerate() {
        let field = format!("{}.literals[{i}]", g.field);
        match lit.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                let b = value.as_bytes();
                let value =
                    if b.len() >= 2 && b[0] == b[b.len() - 1] && (b[0] == b'"' || b[0] == b'\'') {
                        &value[1..value.len() - 1]
                    } else {
                        value
                    };
                out.push((key.to_string(), value.as_bytes().to_vec()));
            }
            _ => {
                return Err(invalid(k, &field, format!("{lit:?} is not key=value")));
            }
        }
    }
    for (i, src) in g.files.iter().enumerate() {
        let field = format!("{}.files[{i}]", g.field);
        let (key, path) = match src.matches('=').count() {
            0 => (
                Path::new(src)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                src.as_str(),
            ),
            1 if src.starts_with('=') => {
                return Err(invalid(k, &field, "missing key name before `=`"));
            }
            1 if src.ends_with('=') => {
                return Err(invalid(k, &field, "missing file path after `=`"));
            }
            1 => {
                let (a, b) = src.split_once('=').expect("one =");
                (a.to_string(), b)
            }
            _ => return Err(invalid(k, &field, "key name or file path contains `=`")),
        };
        out.push((key.to_string(), read_local(k, &field, path)?));
    }
    let mut seen = std::collections::HashSet::new();
    for (key, _) in &out {
        if !is_config_key(key) {
            return Err(invalid(
                k,
                &g.field,
                format!("{key:?} is not a valid key (letters, digits, '-', '_' or '.')"),
            ));
        }
        if !seen.insert(key.clone()) {
            return Err(invalid(
                k,
                &g.field,
                format!("{} repeats the key {key:?}", g.name),
            ));
        }
    }
    Ok(out)
}

/// Base64 as kustomize writes Secret data: lines of 70 characters when longer than one line.
fn secret_base64(data: &[u8]) -> String {
    let enc = base64::engine::general_purpose::STANDARD.encode(data);
    let lines = enc.len() / 70 + 1;
    if lines <= 1 {
        return enc;
    }
    let mut out = String::new();
    for chunk in enc.as_bytes().chunks(70) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out
}

pub(super) fn generate_one(k: &Kustomization, g: &GenSpec, secret: bool) -> Result<Res, Error> {
    let opts = merged_options(&g.options, &k.generator_options);
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(g.name));
    if !g.namespace.is_empty() {
        metadata.insert("namespace".into(), json!(g.namespace));
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!("v1"));
    obj.insert(
        "kind".into(),
        json!(if secret { "Secret" } else { "ConfigMap" }),
    );
    obj.insert("metadata".into(), Value::Object(metadata));
    if secret {
        let t = if g.secret_type.is_empty() {
            "Opaque"
        } else {
            &g.secret_type
        };
        obj.insert("type".into(), json!(t));
    }
    let mut kv = pairs(k, g)?;
    kv.sort_by(|a, b| a.0.cmp(&b.0));
    let mut data = Map::new();
    let mut binary = Map::new();
    for (key, v) in kv {
        if secret {
            data.insert(key, json!(secret_base64(&v)));
        } else {
            match String::from_utf8(v) {
                Ok(s) => {
                    data.insert(key, json!(s));
                }
                Err(e) => {
                    binary.insert(key, json!(secret_base64(e.as_bytes())));
                }
            }
        }
    }
    if !data.is_empty() {
        obj.insert("data".into(), Value::Object(data));
    }
    if !binary.is_empty() {
        obj.insert("binaryData".into(), Value::Object(binary));
    }
    let mut res = Res::new(
        Value::Object(obj),
        Origin {
            file: Some(k.file.clone()),
            document: 0,
            line: 0,
        },
    );
    res.behavior = g.behavior;
    res.needs_hash = true;
    if let Some(o) = opts {
        let md = res.metadata_mut();
        if !o.labels.is_empty() {
            let mut l: Vec<_> = o.labels.clone();
            l.sort();
            md.insert(
                "labels".into(),
                Value::Object(l.into_iter().map(|(a, b)| (a, json!(b))).collect()),
            );
        }
        if !o.annotations.is_empty() {
            let mut a: Vec<_> = o.annotations.clone();
            a.sort();
            md.insert(
                "annotations".into(),
                Value::Object(a.into_iter().map(|(a, b)| (a, json!(b))).collect()),
            );
        }
        if o.immutable
            && let Some(m) = res.value.as_object_mut()
        {
            m.insert("immutable".into(), json!(true));
        }
        res.needs_hash = !o.disable_name_suffix_hash;
    }
    Ok(res)
}

/// Runs the kustomization's generators and absorbs their objects into `list`.
pub fn run(k: &Kustomization, list: &mut Vec<Res>) -> Result<(), Error> {
    let gens = k
        .config_map_generator
        .iter()
        .map(|g| (g, false))
        .chain(k.secret_generator.iter().map(|g| (g, true)));
    for (g, secret) in gens {
        let res = generate_one(k, g, secret)?;
        absorb(k, &g.field, list, res)?;
    }
    Ok(())
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, Value> {
    v.and_then(Value::as_object)
        .map(|m| m.iter().map(|(a, b)| (a.clone(), b.clone())).collect())
        .unwrap_or_default()
}

fn merge_map(md_old: Option<&Value>, md_new: Option<&Value>) -> Option<Value> {
    let mut m = string_map(md_old);
    m.extend(string_map(md_new));
    if m.is_empty() {
        None
    } else {
        Some(Value::Object(m.into_iter().collect()))
    }
}

pub(super) fn absorb(
    k: &Kustomization,
    field: &str,
    list: &mut Vec<Res>,
    mut res: Res,
) -> Result<(), Error> {
    let id = res.cur_id();
    let matches = super::res::positions_of(list, &id);
    match (matches.len(), res.behavior) {
        (0, Behavior::Create) => {
            list.push(res);
            Ok(())
        }
        (0, _) => Err(invalid(
            k,
            &format!("{field}.behavior"),
            format!("there is no {id} to merge with or replace"),
        )),
        (1, Behavior::Create) => Err(invalid(
            k,
            field,
            format!("{id} already exists: set `behavior: merge` or `behavior: replace`"),
        )),
        (1, behavior) => {
            let old = &list[matches[0]];
            let old_md = old.value.get("metadata").cloned().unwrap_or(Value::Null);
            let new_md = res.value.get("metadata").cloned().unwrap_or(Value::Null);
            let labels = merge_map(old_md.get("labels"), new_md.get("labels"));
            let annotations = merge_map(old_md.get("annotations"), new_md.get("annotations"));
            {
                let md = res.metadata_mut();
                md.remove("labels");
                md.remove("annotations");
                if let Some(l) = labels {
                    md.insert("labels".into(), l);
                }
                if let Some(a) = annotations {
                    md.insert("annotations".into(), a);
                }
            }
            res.set_name(old.name());
            let ns = old.namespace().to_string();
            res.set_namespace(&ns);
            // kustomize keeps the old object's build annotations: the hash suffix is added
            // only when both the old and the new object want one.
            res.needs_hash = old.needs_hash && res.needs_hash;
            res.prev = old.prev.clone();
            res.prefixes = old.prefixes.clone();
            res.suffixes = old.suffixes.clone();
            if behavior == Behavior::Merge {
                for key in ["data", "binaryData"] {
                    let merged = merge_map(old.value.get(key), res.value.get(key));
                    let obj = res.value.as_object_mut().expect("mapping");
                    obj.remove(key);
                    if let Some(m) = merged {
                        obj.insert(key.into(), m);
                    }
                }
                res.origin = old.origin.clone();
            }
            let i = matches[0];
            list[i] = res;
            Ok(())
        }
        _ => Err(invalid(
            k,
            field,
            format!("several objects could take {id}"),
        )),
    }
}

/// kustomize's name suffix for a generated ConfigMap or Secret: sha256 of a canonical JSON
/// encoding of its kind, name, data (and type), cut to 10 characters with some letters swapped
/// so the result never looks like a number or a word.
pub fn hash_suffix(obj: &Value) -> String {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    // kustomize looks the name up as a single field called "metadata/name", which never
    // exists: the name is always empty in the hashed document.
    let name = json!("");
    let field = |k: &str| match obj.get(k) {
        None | Some(Value::Null) => json!(""),
        Some(Value::Object(m)) => Value::Object(m.clone()),
        Some(other) => json!(super::res::scalar_string(other)),
    };
    let mut m = BTreeMap::new();
    m.insert("kind", json!(kind));
    m.insert("name", name);
    m.insert("data", field("data"));
    match kind {
        "ConfigMap" if obj.get("binaryData").is_some_and(Value::is_object) => {
            m.insert("binaryData", field("binaryData"));
        }
        "Secret" => {
            m.insert("type", field("type"));
            if obj.get("stringData").is_some_and(Value::is_object) {
                m.insert("stringData", field("stringData"));
            }
        }
        _ => {}
    }
    let mut encoded = String::new();
    go_json(
        &Value::Object(m.into_iter().map(|(a, b)| (a.to_string(), b)).collect()),
        &mut encoded,
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, encoded.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    hex[..10]
        .chars()
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            c => c,
        })
        .collect()
}

/// JSON as Go's encoding/json writes it: object keys sorted, HTML characters escaped.
fn go_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_string(k, out);
                out.push(':');
                go_json(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json(x, out);
            }
            out.push(']');
        }
        Value::String(s) => go_string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

fn go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Adds the hash suffix to generated objects that want one (done once, at the top level).
pub fn add_hashes(list: &mut [Res]) {
    for r in list.iter_mut() {
        if r.needs_hash && matches!(r.kind(), "ConfigMap" | "Secret") {
            let h = hash_suffix(&r.value);
            r.store_prev();
            let name = format!("{}-{h}", r.name());
            r.set_name(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_json_sorts_keys_and_escapes_html() {
        let mut s = String::new();
        go_json(&json!({"b": "<&>", "a": {"z": "1", "y": "\n"}}), &mut s);
        assert_eq!(s, r#"{"a":{"y":"\n","z":"1"},"b":"\u003c\u0026\u003e"}"#);
    }

    #[test]
    fn hash_suffix_matches_kustomize() {
        // Suffixes kustomize v5.8.1 printed for these objects (the name is not hashed).
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "own-ns", "namespace": "inner"}, "data": {"k": "v"}});
        assert_eq!(hash_suffix(&cm), "bdg947hgcc");
        let mut other = cm.clone();
        other["metadata"]["name"] = json!("default-ns");
        assert_eq!(hash_suffix(&other), "bdg947hgcc");
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
            "type": "Opaque", "data": {"password": "czNjcjN0", "username": "YWRtaW4="}});
        assert_eq!(hash_suffix(&secret), "b892bc2827");
    }

    #[test]
    fn long_secret_values_wrap_at_70() {
        let v = secret_base64(&[b'x'; 60]);
        assert!(v.ends_with('\n'));
        assert_eq!(v.lines().next().unwrap().len(), 70);
        assert_eq!(secret_base64(b"abc"), "YWJj");
    }
}
