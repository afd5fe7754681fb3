//! Dot-separated field paths the way kustomize reads them in replacements and vars: a getter
//! for sources (exact `[key=value]`, numeric indexes) and a matcher for targets (regular
//! expression `[key=value]`, `*`, creation of missing fields, strings holding JSON or YAML).

use serde_json::{Map, Value};

/// Splits at `.`, keeping `[a.b=c]` and `[a.b]` brackets whole (the brackets of a key without
/// `=` are dropped: `data.[config.json]` names the key `config.json`). A leading `.` is ignored
/// and `\.` is a literal dot.
pub fn split_path(path: &str) -> Vec<String> {
    let mut raw: Vec<String> = Vec::new();
    let mut pieces: Vec<&str> = path.split('.').collect();
    if pieces.len() > 1 && pieces[0].is_empty() {
        pieces.remove(0);
    }
    for p in pieces {
        match raw.last_mut() {
            Some(last) if last.ends_with('\\') => {
                last.pop();
                last.push('.');
                last.push_str(p);
            }
            _ => raw.push(p.to_string()),
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let elem = &raw[i];
        if elem.starts_with('[') && !elem.ends_with(']') {
            let mut joined = vec![elem.clone()];
            while i < raw.len() - 1 {
                i += 1;
                joined.push(raw[i].clone());
                if raw[i].ends_with(']') {
                    break;
                }
            }
            let s = joined.join(".");
            if s.contains('=') {
                out.push(s);
            } else {
                out.push(s.trim_matches(|c| c == '[' || c == ']').to_string());
            }
        } else {
            out.push(elem.clone());
        }
        i += 1;
    }
    out
}

fn clean(parts: &[String]) -> Vec<String> {
    parts
        .iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn is_list_index(p: &str) -> bool {
    p.starts_with('[') && p.ends_with(']')
}

fn idx_number(p: &str) -> Option<usize> {
    p.parse::<i64>()
        .ok()
        .filter(|i| *i >= 0)
        .map(|i| i as usize)
}

fn split_index(p: &str) -> Result<(String, String), String> {
    let inner = p.trim_start_matches('[').trim_end_matches(']');
    inner
        .split_once('=')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .ok_or_else(|| format!("{p}: a list element must be picked with [field=value]"))
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "a mapping",
        Value::Array(_) => "a list",
        _ => "a scalar",
    }
}

/// The text of a scalar as YAML holds it; `None` for mappings and lists.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// Null, `{}` and `[]` (kustomize's "nil or empty").
pub fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// A plain (untagged) YAML scalar: what its text resolves to.
pub fn untagged(text: &str) -> Value {
    match text {
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        "null" | "Null" | "NULL" | "~" => return Value::Null,
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>()
        && !(text.starts_with('+') || text.len() > 1 && text.starts_with('0'))
    {
        return Value::from(i);
    }
    if super::super::yaml11::is_float(text)
        && let Some(n) = text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
    {
        return Value::Number(n);
    }
    Value::String(text.to_string())
}

/// `text` in place of a scalar like `like`: kustomize keeps the target's type tag.
pub fn retyped(text: &str, like: &Value) -> Value {
    match like {
        Value::String(_) => Value::String(text.to_string()),
        _ => untagged(text),
    }
}

/// `text` written into the existing scalar `like`: kustomize copies only the text and keeps the
/// field's type tag. Text of the tag's own type is typed by it; a string field stays a string.
/// Other text is kept as a string and the tag it keeps is returned: kustomize fails only when it
/// next decodes the object (its output, a JSON patch), so a later write may still mend it.
fn typed_like(text: &str, like: &Value) -> (Value, Option<&'static str>) {
    let v = untagged(text);
    let mistyped = |tag| (Value::String(text.to_string()), Some(tag));
    match (like, &v) {
        (Value::String(_), _) => (Value::String(text.to_string()), None),
        (Value::Number(n), Value::Number(m)) if n.is_f64() || !m.is_f64() => (v, None),
        (Value::Bool(_), Value::Bool(_)) | (Value::Null, _) => (v, None),
        (Value::Number(n), _) => mistyped(if n.is_f64() { "!!float" } else { "!!int" }),
        (Value::Bool(_), _) => mistyped("!!bool"),
        _ => (v, None),
    }
}

/// What one write left at a field.
enum Wrote {
    /// A typed value.
    Typed,
    /// A plain scalar without a type tag (a created one).
    Untagged,
    /// Text the field's kept tag cannot decode.
    Mistyped(&'static str),
}

/// The scalars a replacement left that need care later (JSON pointers).
#[derive(Debug, Default)]
pub struct Written {
    /// Plain scalars a replacement created.
    pub untagged: Vec<String>,
    /// Text under a type tag that cannot decode it, with the tag.
    pub mistyped: Vec<(String, &'static str)>,
}

/// kustomize's field getter (sources, vars): `None` when a field or element is missing.
pub fn lookup<'a>(v: &'a Value, parts: &[String]) -> Result<Option<&'a Value>, String> {
    let mut cur = v;
    for part in clean(parts) {
        if cur.is_null() {
            return Ok(None);
        }
        if let Ok(i) = part.parse::<i64>() {
            if i < 0 {
                return Err(format!("array index {i} cannot be negative"));
            }
            let Value::Array(a) = cur else {
                return Err(format!("{part}: expected a list, found {}", kind_name(cur)));
            };
            match a.get(i as usize) {
                Some(x) => cur = x,
                None => return Ok(None),
            }
        } else if part == "-" {
            let Value::Array(a) = cur else {
                return Err(format!("{part}: expected a list, found {}", kind_name(cur)));
            };
            match a.last() {
                Some(x) => cur = x,
                None => return Ok(None),
            }
        } else if part == "*" {
            return Err("a wildcard `*` is not allowed here".into());
        } else if is_list_index(&part) {
            let (key, value) = split_index(&part)?;
            let Value::Array(a) = cur else {
                return Err(format!("{part}: expected a list, found {}", kind_name(cur)));
            };
            let hit = a.iter().find(|e| {
                if key.is_empty() {
                    scalar_text(e).is_some_and(|t| t == value)
                } else {
                    e.get(&key)
                        .and_then(scalar_text)
                        .is_some_and(|t| t == value)
                }
            });
            match hit {
                Some(x) => cur = x,
                None => return Ok(None),
            }
        } else {
            let Value::Object(m) = cur else {
                return Err(format!(
                    "{part}: expected a mapping, found {}",
                    kind_name(cur)
                ));
            };
            match m.get(&part) {
                Some(x) => cur = x,
                None => return Ok(None),
            }
        }
    }
    Ok(Some(cur))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Scalar,
    Map,
    Seq,
}

fn kind_of(v: &Value) -> Kind {
    match v {
        Value::Object(_) => Kind::Map,
        Value::Array(_) => Kind::Seq,
        _ => Kind::Scalar,
    }
}

fn next_kind(next: Option<&String>, leaf: Kind) -> Kind {
    match next {
        None => leaf,
        Some(p) if is_list_index(p) || idx_number(p).is_some() => Kind::Seq,
        Some(_) => Kind::Map,
    }
}

fn fresh(kind: Kind) -> Value {
    match kind {
        Kind::Scalar => Value::Null,
        Kind::Map => Value::Object(Map::new()),
        Kind::Seq => Value::Array(Vec::new()),
    }
}

/// What a matched field receives: the field, whether the matcher just created it, and its
/// JSON pointer.
type SetFn<'f> = dyn FnMut(&mut Value, bool, &str) -> Result<(), String> + 'f;

fn pointer(trail: &[String]) -> String {
    trail
        .iter()
        .map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// The text a `[key=value]` regular expression is matched against (trimmed YAML of the value).
fn match_text(v: &Value) -> String {
    scalar_text(v)
        .unwrap_or_else(|| serde_yaml_ng::to_string(v).unwrap_or_default())
        .trim()
        .to_string()
}

/// kustomize's `PathMatcher`: calls `f` on every field `path` designates; returns how many.
fn matcher(
    node: &mut Value,
    path: &[String],
    create: Option<Kind>,
    created: bool,
    trail: &mut Vec<String>,
    f: &mut SetFn,
) -> Result<usize, String> {
    let Some(p0) = path.first() else {
        f(node, created, &pointer(trail))?;
        return Ok(1);
    };
    let rest = &path[1..];
    if let Some(idx) = idx_number(p0) {
        if node.is_null() && create.is_some() {
            *node = Value::Array(Vec::new());
        }
        let Value::Array(items) = node else {
            if node.is_null() {
                return Err(format!("index {idx} specified but only 0 elements found"));
            }
            return Err(format!("{p0}: expected a list, found {}", kind_name(node)));
        };
        let mut made = false;
        if let Some(leaf) = create
            && items.len() == idx
        {
            items.push(fresh(next_kind(rest.first(), leaf)));
            made = rest.is_empty();
        }
        if items.len() < idx + 1 {
            return Err(format!(
                "index {idx} specified but only {} elements found",
                items.len()
            ));
        }
        trail.push(idx.to_string());
        let n = matcher(&mut items[idx], rest, create, made, trail, f);
        trail.pop();
        return n;
    }
    if is_list_index(p0) {
        let (key, pattern) = split_index(p0)?;
        let re = regex::Regex::new(&pattern).map_err(|e| format!("{p0}: {e}"))?;
        for attempt in 0..2 {
            let mut count = 0;
            match node {
                Value::Array(items) => {
                    for (i, e) in items.iter_mut().enumerate() {
                        let hit = if key.is_empty() {
                            re.is_match(&match_text(e))
                        } else {
                            e.get(&key)
                                .filter(|x| !x.is_null())
                                .is_some_and(|x| re.is_match(&match_text(x)))
                        };
                        if !hit {
                            continue;
                        }
                        trail.push(i.to_string());
                        let n = if key.is_empty() {
                            matcher(e, &[], create, attempt == 1, trail, f)
                        } else {
                            matcher(e, rest, create, false, trail, f)
                        };
                        trail.pop();
                        count += n?;
                    }
                }
                Value::Null => {}
                other => {
                    return Err(format!("{p0}: expected a list, found {}", kind_name(other)));
                }
            }
            if count > 0 || create.is_none() || attempt == 1 {
                return Ok(count);
            }
            let elem = if key.is_empty() {
                untagged(&pattern)
            } else {
                let mut m = Map::new();
                m.insert(key.clone(), untagged(&pattern));
                Value::Object(m)
            };
            if node.is_null() {
                *node = Value::Array(Vec::new());
            }
            if let Value::Array(items) = node {
                items.push(elem);
            }
        }
        return Ok(0);
    }
    if p0 == "*" {
        return match node {
            Value::Array(items) => {
                let mut count = 0;
                for (i, e) in items.iter_mut().enumerate() {
                    trail.push(i.to_string());
                    let n = matcher(e, rest, create, false, trail, f);
                    trail.pop();
                    count += n?;
                }
                Ok(count)
            }
            Value::Null => Ok(0),
            other => Err(format!("*: expected a list, found {}", kind_name(other))),
        };
    }
    if node.is_null() {
        if create.is_none() {
            return Ok(0);
        }
        *node = Value::Object(Map::new());
    }
    let Value::Object(m) = node else {
        return Err(format!(
            "{p0}: expected a mapping, found {}",
            kind_name(node)
        ));
    };
    let mut made = false;
    if !m.contains_key(p0.as_str()) {
        let Some(leaf) = create else {
            return Ok(0);
        };
        m.insert(p0.clone(), fresh(next_kind(rest.first(), leaf)));
        made = rest.is_empty();
    }
    let field = m.get_mut(p0.as_str()).expect("present");
    if !rest.is_empty() && kind_of(field) == Kind::Scalar {
        if field.is_null() {
            if let Some(leaf) = create {
                *field = fresh(next_kind(rest.first(), leaf));
            } else {
                return Ok(0);
            }
        } else {
            // A string holding a document: matched in a copy (the structured-data pass
            // already wrote what it could).
            let parsed = field
                .as_str()
                .and_then(|s| serde_yaml_ng::from_str::<Value>(s).ok())
                .filter(|v| matches!(v, Value::Object(_) | Value::Array(_)));
            let Some(mut parsed) = parsed else {
                return Err(format!("{}: expected a mapping, found a scalar", rest[0]));
            };
            return matcher(
                &mut parsed,
                rest,
                create,
                false,
                &mut Vec::new(),
                &mut |_, _, _| Ok(()),
            );
        }
    }
    trail.push(p0.clone());
    let n = matcher(field, rest, create, made, trail, f);
    trail.pop();
    n
}

/// Writes `value` into a matched field (kustomize's `setFieldValue`).
fn put(
    target: &mut Value,
    created: bool,
    value: &Value,
    delimiter: &str,
    index: i64,
    kept: Option<&'static str>,
) -> Result<Wrote, String> {
    let mut value = value.clone();
    if !delimiter.is_empty() {
        let Some(text) = scalar_text(target) else {
            return Err("a delimiter works on a scalar only".into());
        };
        let mut parts: Vec<String> = text.split(delimiter).map(str::to_string).collect();
        let v = scalar_text(&value).unwrap_or_default();
        if index < 0 {
            parts.insert(0, v);
        } else if index as usize >= parts.len() {
            parts.push(v);
        } else {
            parts[index as usize] = v;
        }
        value = retyped(&parts.join(delimiter), &value);
    }
    if kind_of(target) == Kind::Scalar {
        let text = scalar_text(&value).unwrap_or_default();
        if created {
            *target = untagged(&text);
            return Ok(Wrote::Untagged);
        }
        // A field holding text under a tag it could not decode still has that tag.
        let like = match kept {
            Some("!!int") => Value::from(0),
            Some("!!float") => Value::from(0.5),
            Some("!!bool") => Value::Bool(false),
            _ => target.clone(),
        };
        let (v, tag) = typed_like(&text, &like);
        *target = v;
        Ok(tag.map_or(Wrote::Typed, Wrote::Mistyped))
    } else {
        *target = value;
        Ok(Wrote::Typed)
    }
}

/// Go's `json.Marshal` of decoded YAML: sorted keys, `<>&` escaped, whole floats as integers.
fn go_json(v: &Value, pretty: bool) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            Value::Number(n) => match n.as_f64() {
                Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e21 => {
                    Value::from(f as i64)
                }
                _ => v.clone(),
            },
            other => other.clone(),
        }
    }
    let v = sorted(v);
    let s = if pretty {
        serde_json::to_string_pretty(&v)
    } else {
        serde_json::to_string(&v)
    }
    .unwrap_or_default();
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// kustomize's first try: a scalar partway along the path that holds JSON or YAML is parsed,
/// changed and written back in the same notation. `Ok(false)` when the path has no such scalar.
fn set_structured(
    obj: &mut Value,
    parts: &[String],
    value: &Value,
    create: Option<Kind>,
) -> Result<bool, String> {
    if parts.len() < 2 {
        return Ok(false);
    }
    let mut at = None;
    for i in 1..parts.len() {
        if let Ok(Some(v)) = lookup(obj, &parts[..i])
            && kind_of(v) == Kind::Scalar
        {
            at = Some(i);
            break;
        }
    }
    let Some(i) = at else { return Ok(false) };
    let scalar = lookup(obj, &parts[..i]).ok().flatten().cloned();
    let Some(Value::String(text)) = scalar else {
        return Ok(false);
    };
    let Ok(mut doc) = serde_yaml_ng::from_str::<Value>(&text) else {
        return Ok(false);
    };
    if !matches!(doc, Value::Object(_) | Value::Array(_)) {
        return Ok(false);
    }
    let mut mistyped = Vec::new();
    let n = matcher(
        &mut doc,
        &clean(&parts[i..]),
        create,
        false,
        &mut Vec::new(),
        &mut |t, created, at| {
            if let Wrote::Mistyped(tag) = put(t, created, value, "", 0, None)? {
                mistyped.push((at.to_string(), tag));
            }
            Ok(())
        },
    );
    match n {
        Ok(n) if n > 0 => {}
        _ => return Ok(false),
    }
    let first = text.trim_start().chars().next();
    let out = if matches!(first, Some('{') | Some('[')) {
        if !mistyped.is_empty() {
            // kustomize cannot write a tag that does not fit back as JSON: the text stays.
            return Ok(true);
        }
        go_json(&doc, text.contains('\n') && text.contains("  "))
    } else {
        yaml_with_tags(&mut doc, &mistyped)?
    };
    // Write the new text back at the scalar's place.
    let mut cur = obj;
    for p in clean(&parts[..i]) {
        cur = match cur {
            Value::Object(m) => m.get_mut(&p),
            Value::Array(a) => p.parse::<usize>().ok().and_then(|x| a.get_mut(x)),
            _ => None,
        }
        .ok_or("the structured field moved")?;
    }
    *cur = Value::String(out);
    Ok(true)
}

/// `doc` as YAML text, where each mistyped field is written with the tag it kept, as kustomize
/// writes it (`!!int nginx`).
fn yaml_with_tags(doc: &mut Value, mistyped: &[(String, &'static str)]) -> Result<String, String> {
    let yaml = |v: &Value| serde_yaml_ng::to_string(v).map_err(|e| e.to_string());
    let mut tagged = Vec::new();
    for (i, (at, tag)) in mistyped.iter().enumerate() {
        if let Some(v) = doc.pointer_mut(at) {
            let text = scalar_text(v).unwrap_or_default();
            let token = format!("capi-manage-mistyped-{i}-{}", text.len());
            let written = yaml(&Value::String(text))?;
            tagged.push((token.clone(), format!("{tag} {}", written.trim())));
            *v = Value::String(token);
        }
    }
    let mut out = yaml(doc)?.trim().to_string();
    for (token, written) in tagged {
        out = out.replace(&token, &written);
    }
    Ok(out)
}

/// kustomize's `copyValueToTarget` for one field path of one target object. `kept` names the
/// fields (JSON pointers) that hold text under a tag that cannot decode it, with the tag.
/// Returns the scalars it wrote that need care later.
pub fn set(
    obj: &mut Value,
    field_path: &str,
    value: &Value,
    create: bool,
    delimiter: &str,
    index: i64,
    kept: &[(String, &'static str)],
) -> Result<Written, String> {
    let create_kind = create.then(|| kind_of(value));
    let parts = split_path(field_path);
    if set_structured(obj, &parts, value, create_kind)? {
        return Ok(Written::default());
    }
    let mut written = Written::default();
    let what = if create {
        "cannot find or create"
    } else {
        "cannot find"
    };
    let n = matcher(
        obj,
        &clean(&parts),
        create_kind,
        false,
        &mut Vec::new(),
        &mut |t, created, at| {
            let tag = kept.iter().find(|(p, _)| p == at).map(|(_, tag)| *tag);
            match put(t, created, value, delimiter, index, tag)? {
                Wrote::Typed => {}
                Wrote::Untagged => written.untagged.push(at.to_string()),
                Wrote::Mistyped(tag) => written.mistyped.push((at.to_string(), tag)),
            }
            Ok(())
        },
    )
    .map_err(|e| format!("{what} field {field_path:?}: {e}"))?;
    if n == 0 {
        return Err(format!("{what} field {field_path:?} in the target"));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_split_like_kustomize() {
        assert_eq!(
            split_path("spec.containers.[name=a.b].image"),
            ["spec", "containers", "[name=a.b]", "image"]
        );
        assert_eq!(
            split_path("data.[config.json].a"),
            ["data", "config.json", "a"]
        );
        assert_eq!(
            split_path(r"metadata.annotations.a\.b"),
            ["metadata", "annotations", "a.b"]
        );
    }

    #[test]
    fn targets_match_by_regex_and_create() {
        let mut v =
            json!({"spec": {"containers": [{"name": "app"}, {"name": "myapp"}, {"name": "x"}]}});
        set(
            &mut v,
            "spec.containers.[name=app].image",
            &json!("i"),
            true,
            "",
            0,
            &[],
        )
        .unwrap();
        assert_eq!(v["spec"]["containers"][1]["image"], "i");
        assert!(v["spec"]["containers"][2].get("image").is_none());
        let err = set(&mut v, "spec.missing", &json!("i"), false, "", 0, &[]).unwrap_err();
        assert!(err.contains("spec.missing"), "{err}");
        set(&mut v, "spec.replicas", &json!("3"), true, "", 0, &[]).unwrap();
        assert_eq!(v["spec"]["replicas"], 3, "a created scalar is untagged");
    }

    #[test]
    fn delimiters_and_types() {
        let mut v = json!({"a": "x.y.z", "n": 1});
        set(&mut v, "a", &json!("Q"), false, ".", 1, &[]).unwrap();
        assert_eq!(v["a"], "x.Q.z");
        set(&mut v, "a", &json!("P"), false, ".", -1, &[]).unwrap();
        assert_eq!(v["a"], "P.x.Q.z");
        set(&mut v, "n", &json!("5"), false, "", 0, &[]).unwrap();
        assert_eq!(v["n"], 5);
    }

    #[test]
    fn json_inside_a_string_is_edited_in_place() {
        let mut v = json!({"data": {"c.json": "{\"b\": 1, \"a\": {\"x\": \"old\"}}"}});
        set(
            &mut v,
            "data.[c.json].a.x",
            &json!("new"),
            false,
            "",
            0,
            &[],
        )
        .unwrap();
        assert_eq!(v["data"]["c.json"], "{\"a\":{\"x\":\"new\"},\"b\":1}");
    }

    #[test]
    fn text_under_a_kept_tag_is_reported_not_refused() {
        let mut v = json!({"n": 1, "f": 1.5, "b": true, "s": "x"});
        let w = set(&mut v, "n", &json!("nginx"), false, "", 0, &[]).unwrap();
        assert_eq!(w.mistyped, [("/n".to_string(), "!!int")]);
        assert_eq!(v["n"], "nginx");
        let w = set(&mut v, "f", &json!("2"), false, "", 0, &[]).unwrap();
        assert!(w.mistyped.is_empty(), "an integer fits a float field");
        assert_eq!(
            set(&mut v, "b", &json!("on"), false, "", 0, &[])
                .unwrap()
                .mistyped
                .len(),
            1
        );
        assert!(
            set(&mut v, "s", &json!("7"), false, "", 0, &[])
                .unwrap()
                .mistyped
                .is_empty()
        );
        assert_eq!(v["s"], "7");
    }

    #[test]
    fn a_field_holding_mistyped_text_keeps_its_tag() {
        let kept = [("/n".to_string(), "!!int")];
        let mut v = json!({"n": "nginx"});
        let w = set(&mut v, "n", &json!("web"), false, "", 0, &kept).unwrap();
        assert_eq!(w.mistyped, [("/n".to_string(), "!!int")]);
        set(&mut v, "n", &json!("4"), false, "", 0, &kept).unwrap();
        assert_eq!(v["n"], 4, "text of the kept tag's type decodes");
    }

    #[test]
    fn yaml_text_keeps_the_tag_in_writing() {
        let mut v = json!({"data": {"c.yaml": "a:\n  n: 1\n"}});
        let w = set(
            &mut v,
            "data.[c.yaml].a.n",
            &json!("web: x"),
            false,
            "",
            0,
            &[],
        );
        let w = w.unwrap_or_else(|e| panic!("{e}"));
        assert!(w.mistyped.is_empty(), "inside text the tag is written out");
        assert_eq!(v["data"]["c.yaml"], "a:\n  n: !!int 'web: x'");
    }
}
