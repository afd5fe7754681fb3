//! `replacements` (kustomize's ReplacementTransformer, the last builtin transformer of a level):
//! copy a field of one object (or a fixed `sourceValue`) into fields of the objects the targets
//! select. Paths are dot-separated: `[key=value]` picks list elements (exact match in a source,
//! regular-expression match in a target, kustomize's difference), numbers index lists, `*` visits
//! every element of a list (targets only), and a string holding JSON or YAML can be entered.

mod path;

use serde_json::{Map, Value};

use super::Error;
use super::kustomization::{Kustomization, Selector};
use super::res::{GvkSel, Id, Res};

pub use path::{lookup, split_path};

/// One source: an object's field, or a fixed value.
#[derive(Debug, Clone)]
enum Source {
    Field {
        gvk: GvkSel,
        name: String,
        namespace: String,
        field_path: String,
        delimiter: String,
        index: i64,
    },
    Value(String),
}

#[derive(Debug, Clone)]
struct Target {
    select: Selector,
    reject: Vec<Selector>,
    field_paths: Vec<String>,
    delimiter: String,
    index: i64,
    create: bool,
}

#[derive(Debug, Clone)]
struct Replacement {
    field: String,
    source: Source,
    targets: Vec<Target>,
}

fn invalid(k: &Kustomization, field: &str, problem: impl Into<String>) -> Error {
    Error::Invalid {
        file: k.file.clone(),
        field: field.to_string(),
        problem: problem.into(),
    }
}

/// A mapping's keys, compared like Go's JSON decoder does (case-insensitively); unknown keys
/// are refused.
pub(super) struct Fields<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    pub(super) fn new(
        k: &Kustomization,
        v: &'a Value,
        field: &str,
        known: &[&str],
    ) -> Result<Self, Error> {
        let map = v
            .as_object()
            .ok_or_else(|| invalid(k, field, "expected a mapping"))?;
        for key in map.keys() {
            if !known.iter().any(|n| n.eq_ignore_ascii_case(key)) {
                return Err(invalid(
                    k,
                    &format!("{field}.{key}"),
                    format!("unknown field (known here: {})", known.join(", ")),
                ));
            }
        }
        Ok(Fields { map })
    }

    pub(super) fn get(&self, name: &str) -> Option<&'a Value> {
        self.map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    pub(super) fn string(&self, k: &Kustomization, f: &str, name: &str) -> Result<String, Error> {
        match self.get(name) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(invalid(k, &format!("{f}.{name}"), "expected a string")),
        }
    }

    fn int(&self, k: &Kustomization, f: &str, name: &str) -> Result<i64, Error> {
        match self.get(name) {
            None => Ok(0),
            Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64().unwrap_or(0)),
            Some(_) => Err(invalid(k, &format!("{f}.{name}"), "expected an integer")),
        }
    }

    fn boolean(&self, k: &Kustomization, f: &str, name: &str) -> Result<bool, Error> {
        match self.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(invalid(k, &format!("{f}.{name}"), "expected true or false")),
        }
    }
}

fn parse_selector(k: &Kustomization, v: &Value, f: &str) -> Result<Selector, Error> {
    let m = Fields::new(k, v, f, super::kustomization::SELECTOR_FIELDS)?;
    let s = |n: &str| m.string(k, f, n);
    Ok(Selector {
        gvk: GvkSel::new(&s("group")?, &s("version")?, &s("kind")?),
        name: s("name")?,
        namespace: s("namespace")?,
        label_selector: s("labelSelector")?,
        annotation_selector: s("annotationSelector")?,
    })
}

fn parse_options(k: &Kustomization, m: &Fields, f: &str) -> Result<(String, i64, bool), Error> {
    match m.get("options") {
        None => Ok((String::new(), 0, false)),
        Some(o) => {
            let of = format!("{f}.options");
            let om = Fields::new(k, o, &of, &["delimiter", "index", "encoding", "create"])?;
            Ok((
                om.string(k, &of, "delimiter")?,
                om.int(k, &of, "index")?,
                om.boolean(k, &of, "create")?,
            ))
        }
    }
}

fn parse_one(k: &Kustomization, v: &Value, f: &str) -> Result<Replacement, Error> {
    let m = Fields::new(k, v, f, &["source", "sourceValue", "targets"])?;
    let source = match (m.get("source"), m.get("sourceValue")) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                k,
                f,
                "`source` and `sourceValue` are mutually exclusive: give one",
            ));
        }
        (None, Some(_)) => Source::Value(m.string(k, f, "sourceValue")?),
        (Some(s), None) => {
            let sf = format!("{f}.source");
            let sm = Fields::new(
                k,
                s,
                &sf,
                &[
                    "group",
                    "version",
                    "kind",
                    "name",
                    "namespace",
                    "fieldPath",
                    "options",
                ],
            )?;
            let (delimiter, index, _) = parse_options(k, &sm, &sf)?;
            let st = |n: &str| sm.string(k, &sf, n);
            let mut field_path = st("fieldPath")?;
            if field_path.is_empty() {
                field_path = "metadata.name".into();
            }
            Source::Field {
                gvk: GvkSel::new(&st("group")?, &st("version")?, &st("kind")?),
                name: st("name")?,
                namespace: st("namespace")?,
                field_path,
                delimiter,
                index,
            }
        }
        (None, None) => {
            return Err(invalid(
                k,
                f,
                "a replacement needs a `source` (or `sourceValue`) and `targets`",
            ));
        }
    };
    // kustomize drops an empty list before it reads the replacement: `targets: []` is none.
    let ts = m
        .get("targets")
        .filter(|t| t.as_array().is_none_or(|a| !a.is_empty()));
    let Some(ts) = ts else {
        return Err(invalid(
            k,
            f,
            "a replacement needs a `source` (or `sourceValue`) and `targets`",
        ));
    };
    let ts = ts
        .as_array()
        .ok_or_else(|| invalid(k, &format!("{f}.targets"), "expected a list"))?;
    let mut targets = Vec::new();
    for (i, t) in ts.iter().enumerate() {
        let tf = format!("{f}.targets[{i}]");
        let tm = Fields::new(k, t, &tf, &["select", "reject", "fieldPaths", "options"])?;
        let select = match tm.get("select") {
            Some(s) => parse_selector(k, s, &format!("{tf}.select"))?,
            None => {
                return Err(invalid(
                    k,
                    &format!("{tf}.select"),
                    "a target must select the objects to change",
                ));
            }
        };
        let mut reject = Vec::new();
        if let Some(r) = tm.get("reject") {
            let rl = r
                .as_array()
                .ok_or_else(|| invalid(k, &format!("{tf}.reject"), "expected a list"))?;
            for (j, x) in rl.iter().enumerate() {
                reject.push(parse_selector(k, x, &format!("{tf}.reject[{j}]"))?);
            }
        }
        let mut field_paths = Vec::new();
        if let Some(fp) = tm.get("fieldPaths") {
            let fl = fp
                .as_array()
                .ok_or_else(|| invalid(k, &format!("{tf}.fieldPaths"), "expected a list"))?;
            for (j, x) in fl.iter().enumerate() {
                match x {
                    Value::String(s) => field_paths.push(s.clone()),
                    _ => {
                        return Err(invalid(
                            k,
                            &format!("{tf}.fieldPaths[{j}]"),
                            "expected a string",
                        ));
                    }
                }
            }
        }
        if field_paths.is_empty() {
            field_paths.push("metadata.name".into());
        }
        let (delimiter, index, create) = parse_options(k, &tm, &tf)?;
        for (key, pat) in [
            ("group", &select.gvk.group),
            ("version", &select.gvk.version),
            ("kind", &select.gvk.kind),
            ("name", &select.name),
            ("namespace", &select.namespace),
        ] {
            if !pat.is_empty() && regex::Regex::new(pat).is_err() {
                return Err(invalid(
                    k,
                    &format!("{tf}.select.{key}"),
                    format!("invalid regular expression {pat:?}"),
                ));
            }
        }
        targets.push(Target {
            select,
            reject,
            field_paths,
            delimiter,
            index,
            create,
        });
    }
    Ok(Replacement {
        field: f.to_string(),
        source,
        targets,
    })
}

/// The replacements of `k`, inline ones and those read from `path` files, in order.
fn parse(k: &Kustomization) -> Result<Vec<Replacement>, Error> {
    let Some(v) = &k.replacements else {
        return Ok(Vec::new());
    };
    let list = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        _ => return Err(invalid(k, "replacements", "expected a list")),
    };
    let mut out = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let f = format!("replacements[{i}]");
        let path = r
            .as_object()
            .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case("path")))
            .map(|(_, v)| v);
        let Some(path) = path else {
            out.push(parse_one(k, r, &f)?);
            continue;
        };
        let pf = format!("{f}.path");
        let Value::String(path) = path else {
            return Err(invalid(k, &pf, "expected a string"));
        };
        if r.as_object().is_some_and(|m| m.len() > 1) {
            return Err(invalid(
                k,
                &f,
                "give either `path` or an inline replacement, not both",
            ));
        }
        let bytes = super::generate::read_local(k, &pf, path)?;
        let text = String::from_utf8_lossy(&bytes);
        let value: Value = serde_yaml_ng::from_str(&text)
            .map_err(|e| invalid(k, &pf, format!("{path}: invalid YAML: {e}")))?;
        match &value {
            Value::Array(items) => {
                for (j, item) in items.iter().enumerate() {
                    out.push(parse_one(k, item, &format!("{pf} ({path}) [{j}]"))?);
                }
            }
            Value::Object(_) => out.push(parse_one(k, &value, &format!("{pf} ({path})"))?),
            _ => {
                return Err(invalid(
                    k,
                    &pf,
                    format!("{path} holds neither a replacement nor a list of them"),
                ));
            }
        }
    }
    Ok(out)
}

/// All ids of a resource, current first (kustomize's `MakeResIds`).
fn ids(r: &Res) -> Vec<Id> {
    let mut v = vec![r.cur_id()];
    v.extend(r.prev.iter().cloned());
    v
}

fn describe(gvk: &GvkSel, name: &str, namespace: &str) -> String {
    let mut parts = Vec::new();
    for (k, v) in [
        ("group", &gvk.group),
        ("version", &gvk.version),
        ("kind", &gvk.kind),
        ("name", &name.to_string()),
        ("namespace", &namespace.to_string()),
    ] {
        if !v.is_empty() {
            parts.push(format!("{k} {v}"));
        }
    }
    if parts.is_empty() {
        "any object".into()
    } else {
        parts.join(", ")
    }
}

/// The source's value (and whether it came as a string, which decides how it lands in
/// created or non-scalar targets).
fn source_value(k: &Kustomization, list: &[Res], r: &Replacement) -> Result<Value, Error> {
    let Source::Field {
        gvk,
        name,
        namespace,
        field_path,
        delimiter,
        index,
    } = &r.source
    else {
        let Source::Value(v) = &r.source else {
            unreachable!()
        };
        return Ok(path::untagged(v));
    };
    // kustomize compares the selector's namespace as an id of the selector's own kind.
    let sel = Id {
        gvk: crate::manifest::Gvk {
            group: gvk.group.clone(),
            version: gvk.version.clone(),
            kind: gvk.kind.clone(),
        },
        name: name.clone(),
        namespace: namespace.clone(),
    };
    let mut found: Option<&Res> = None;
    for res in list {
        let hit = ids(res).iter().any(|id| {
            (name.is_empty() || *name == id.name)
                && (namespace.is_empty() || sel.ns_equals(id))
                && gvk.selects(&id.gvk)
        });
        if hit {
            if found.is_some() {
                return Err(invalid(
                    k,
                    &format!("{}.source", r.field),
                    format!(
                        "several objects match the source ({}): make it select one",
                        describe(gvk, name, namespace)
                    ),
                ));
            }
            found = Some(res);
        }
    }
    let Some(res) = found else {
        return Err(invalid(
            k,
            &format!("{}.source", r.field),
            format!(
                "no object matches the source ({})",
                describe(gvk, name, namespace)
            ),
        ));
    };
    let parts = split_path(field_path);
    let v = lookup(&res.value, &parts).map_err(|e| {
        invalid(
            k,
            &format!("{}.source.fieldPath", r.field),
            format!("cannot look up {field_path} in {}: {e}", res.cur_id()),
        )
    })?;
    let v = match v {
        Some(v) if !path::is_empty(v) => v.clone(),
        _ => {
            return Err(invalid(
                k,
                &format!("{}.source.fieldPath", r.field),
                format!("{field_path} is missing in the source {}", res.cur_id()),
            ));
        }
    };
    if delimiter.is_empty() {
        return Ok(v);
    }
    let Some(text) = path::scalar_text(&v) else {
        return Err(invalid(
            k,
            &format!("{}.source.options.delimiter", r.field),
            "a delimiter works on a scalar only",
        ));
    };
    let parts: Vec<&str> = text.split(delimiter.as_str()).collect();
    if *index < 0 || *index as usize >= parts.len() {
        return Err(invalid(
            k,
            &format!("{}.source.options.index", r.field),
            format!("index {index} is out of bounds for {text:?} split at {delimiter:?}"),
        ));
    }
    // kustomize makes a new, untagged scalar of the part.
    Ok(path::untagged(parts[*index as usize]))
}

/// A selector's id fields as anchored patterns, compiled once per target.
struct IdMatcher {
    group: Option<regex::Regex>,
    version: Option<regex::Regex>,
    kind: Option<regex::Regex>,
    name: Option<regex::Regex>,
    namespace: Option<regex::Regex>,
    /// A selector with no id field (labels or annotations only) selects by id nothing.
    empty: bool,
}

impl IdMatcher {
    fn new(s: &Selector) -> Self {
        // An invalid pattern matches nothing (parse already rejected those of the file).
        let re = |pat: &str| {
            (!pat.is_empty()).then(|| {
                regex::Regex::new(&format!("^(?:{pat})$"))
                    .unwrap_or_else(|_| regex::Regex::new("[^\\s\\S]").expect("valid"))
            })
        };
        IdMatcher {
            group: re(&s.gvk.group),
            version: re(&s.gvk.version),
            kind: re(&s.gvk.kind),
            name: re(&s.name),
            namespace: re(&s.namespace),
            empty: s.gvk == GvkSel::default() && s.name.is_empty() && s.namespace.is_empty(),
        }
    }

    fn matches(&self, id: &Id) -> bool {
        let m = |re: &Option<regex::Regex>, x: &str| re.as_ref().is_none_or(|re| re.is_match(x));
        m(&self.group, &id.gvk.group)
            && m(&self.version, &id.gvk.version)
            && m(&self.kind, &id.gvk.kind)
            && m(&self.name, &id.name)
            && m(&self.namespace, &id.namespace)
    }
}

/// A target with its patterns compiled.
struct Compiled<'t> {
    target: &'t Target,
    select: IdMatcher,
    reject: Vec<IdMatcher>,
}

impl<'t> Compiled<'t> {
    fn new(target: &'t Target) -> Self {
        Compiled {
            target,
            select: IdMatcher::new(&target.select),
            reject: target.reject.iter().map(IdMatcher::new).collect(),
        }
    }
}

fn selected(k: &Kustomization, field: &str, res: &Res, c: &Compiled) -> Result<bool, Error> {
    let t = c.target;
    let one = std::slice::from_ref(res);
    // Label and annotation selectors of `select`, then of each reject.
    let meta_only = |s: &Selector| Selector {
        label_selector: s.label_selector.clone(),
        annotation_selector: s.annotation_selector.clone(),
        ..Default::default()
    };
    if (!t.select.label_selector.is_empty() || !t.select.annotation_selector.is_empty())
        && super::patch::select(k, field, one, &meta_only(&t.select))?.is_empty()
    {
        return Ok(false);
    }
    for r in &t.reject {
        if (!r.label_selector.is_empty() || !r.annotation_selector.is_empty())
            && !super::patch::select(k, field, one, &meta_only(r))?.is_empty()
        {
            return Ok(false);
        }
    }
    let ids = ids(res);
    for r in &c.reject {
        if !r.empty && ids.iter().any(|id| r.matches(id)) {
            return Ok(false);
        }
    }
    Ok(ids.iter().any(|id| c.select.matches(id)))
}

/// Applies the replacements of `k` to `list`, in order.
pub fn apply(k: &Kustomization, list: &mut [Res]) -> Result<(), Error> {
    for r in parse(k)? {
        let value = source_value(k, list, &r)?;
        for (ti, t) in r.targets.iter().enumerate() {
            let tf = format!("{}.targets[{ti}]", r.field);
            let compiled = Compiled::new(t);
            for res in list.iter_mut() {
                if !selected(k, &tf, res, &compiled)? {
                    continue;
                }
                let id = res.cur_id();
                let field = format!("{tf}.fieldPaths");
                for fp in &t.field_paths {
                    let kept = res.live_mistyped();
                    let (delimiter, index) = (&t.delimiter, t.index);
                    let written = path::set(
                        &mut res.value,
                        fp,
                        &value,
                        t.create,
                        delimiter,
                        index,
                        &kept,
                    )
                    .map_err(|e| invalid(k, &field, format!("{id}: {e}")))?;
                    for (at, tag) in written.mistyped {
                        res.mistyped.retain(|m| m.at != at);
                        let text = res.value.pointer(&at).and_then(Value::as_str);
                        let text = text.unwrap_or_default().to_string();
                        res.mistyped.push(super::res::Mistyped {
                            at,
                            tag,
                            text,
                            file: k.file.clone(),
                            field: field.clone(),
                        });
                    }
                    let untagged = written.untagged;
                    // kustomize sets every object's annotations again at the end of a build:
                    // a created annotation is a string whatever its text.
                    for at in untagged {
                        if at.starts_with("/metadata/annotations/") {
                            if let Some(v) = res.value.pointer_mut(&at)
                                && !v.is_string()
                            {
                                *v = Value::String(path::scalar_text(v).unwrap_or_default());
                            }
                        } else {
                            res.untagged.push(at);
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// kustomize decodes an object whole (its output, a JSON patch): text a replacement left under a
/// type tag that cannot hold it fails there, named by the replacement that wrote it.
pub fn check_decodable(r: &Res) -> Result<(), Error> {
    match r.undecodable() {
        None => Ok(()),
        Some(m) => Err(Error::Invalid {
            file: m.file.clone(),
            field: m.field.clone(),
            problem: format!(
                "{}: {} keeps its {} tag, which cannot decode {:?}",
                r.cur_id(),
                m.at.trim_start_matches('/').replace('/', "."),
                m.tag,
                m.text
            ),
        }),
    }
}

/// A strategic-merge patch re-tags the plain scalars of the object it patches as strings
/// (kustomize's merge leaves them `!!str`): numbers and booleans a replacement created become
/// their text.
pub fn settle_untagged(r: &mut Res) {
    for at in std::mem::take(&mut r.untagged) {
        if let Some(v) = r.value.pointer_mut(&at)
            && let Value::Number(_) | Value::Bool(_) = v
        {
            *v = Value::String(path::scalar_text(v).unwrap_or_default());
        }
    }
}
