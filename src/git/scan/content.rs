//! What a file's content says, whatever its name: text rules (keys, kubeconfig credentials,
//! OpenStack secrets) and the shape of its YAML documents (Secrets, Lists, ConfigMaps,
//! kustomizations, kubeconfigs).

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;
use serde_yaml_ng::Value;

use super::{PLACEHOLDER, Violation};

/// A file's bytes as text.
pub(super) enum Decoded<'a> {
    /// Valid UTF-8 without NUL bytes (a leading BOM removed).
    Utf8(&'a str),
    /// UTF-16 (by BOM or by its NUL pattern), decoded.
    Utf16(String),
    /// Neither UTF-8 nor UTF-16 text: each byte as a Latin-1 character.
    Latin1(String),
    /// NUL bytes: binary, each byte as a Latin-1 character (for the text rules).
    Binary(String),
}

impl Decoded<'_> {
    pub(super) fn as_str(&self) -> &str {
        match self {
            Decoded::Utf8(s) => s,
            Decoded::Utf16(s) | Decoded::Latin1(s) | Decoded::Binary(s) => s,
        }
    }

    pub(super) fn not_utf8_reason(&self) -> &'static str {
        match self {
            Decoded::Utf8(_) => "",
            Decoded::Utf16(_) => "UTF-16 text; manifests must be UTF-8",
            Decoded::Latin1(_) => "not UTF-8 text",
            Decoded::Binary(_) => "binary content (NUL bytes)",
        }
    }
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

fn utf16(bytes: &[u8], little_endian: bool) -> String {
    let units = bytes.chunks_exact(2).map(|c| {
        if little_endian {
            u16::from_le_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], c[1]])
        }
    });
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// Which UTF-16 byte order the NUL pattern of mostly-ASCII text shows, if any.
fn utf16_without_bom(bytes: &[u8]) -> Option<bool> {
    let sample = &bytes[..bytes.len().min(4096) & !1];
    let pairs = sample.len() / 2;
    if pairs < 2 {
        return None;
    }
    let (mut even, mut odd) = (0, 0);
    for (i, b) in sample.iter().enumerate() {
        if *b == 0 {
            if i % 2 == 0 { even += 1 } else { odd += 1 }
        }
    }
    let mostly = |n: usize| n * 10 >= pairs * 7;
    let few = |n: usize| n * 10 <= pairs;
    if mostly(odd) && few(even) {
        Some(true)
    } else if mostly(even) && few(odd) {
        Some(false)
    } else {
        None
    }
}

pub(super) fn decode(bytes: &[u8]) -> Decoded<'_> {
    if let Some(rest) = bytes.strip_prefix(b"\xff\xfe") {
        return Decoded::Utf16(utf16(rest, true));
    }
    if let Some(rest) = bytes.strip_prefix(b"\xfe\xff") {
        return Decoded::Utf16(utf16(rest, false));
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let has_nul = bytes.contains(&0);
    match std::str::from_utf8(bytes) {
        Ok(text) if !has_nul => Decoded::Utf8(text),
        _ if has_nul => match utf16_without_bom(bytes) {
            Some(little_endian) => Decoded::Utf16(utf16(bytes, little_endian)),
            None => Decoded::Binary(latin1(bytes)),
        },
        _ => Decoded::Latin1(latin1(bytes)),
    }
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("scan patterns are valid")
}

static PEM_BEGIN: LazyLock<Regex> =
    LazyLock::new(|| regex(r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----"));
static PUTTY_KEY: LazyLock<Regex> =
    LazyLock::new(|| regex(r"PuTTY-User-Key-File-[0-9]+:[^\n]*\n(?:[^\n]*\n)*?Private-Lines:"));
static CLIENT_KEY_DATA: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"client-key-data["']?\s*:\s*["']?[A-Za-z0-9+/=]{16,}"#));
static APP_CREDENTIAL_SECRET: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r#"(?i)application[_-]credential[_-]secret["']?[ \t]*[:=][ \t]*(?:"([^"\n]*)"|'([^'\n]*)'|([^\s,}\]#]*))"#,
    )
});
static USERS_KEY: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"^(\s*)(?:-\s+)?["']?users["']?\s*:\s*(?:#.*)?$"#));
static USER_SECRET_KEY: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r#"^\s*(?:-\s+)?["']?(?:token|password)["']?\s*:[ \t]*(?:"([^"\n]*)"|'([^'\n]*)'|([^#\n]*))"#,
    )
});
static CLOUDS_KEY: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"(?m)^\s*(?:-\s+)?["']?clouds["']?\s*:"#));
static TEMPLATE_KIND: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"(?m)^\s*(?:-\s+)?["']?kind["']?\s*:\s*(.*?)\s*(?:#.*)?$"#));
static TEMPLATE_SECRET_FIELDS: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"(?m)^\s*(?:-\s+)?["']?(?:stringData|secretGenerator)["']?\s*:"#));

/// Whether a value stands for a secret instead of being one: empty, the template's placeholder,
/// a template or variable reference, or no letters and digits at all (prose punctuation).
fn is_placeholder(value: &str) -> bool {
    let v = value.trim().trim_matches(['"', '\'']).trim();
    v.is_empty()
        || v == PLACEHOLDER
        || matches!(v, "null" | "~")
        || v.starts_with("{{")
        || v.starts_with("${")
        || (v.starts_with('<') && v.ends_with('>'))
        || !v.chars().any(char::is_alphanumeric)
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The value a `key:` on `lines[i]` has: on the same line, or (empty, or a block scalar
/// indicator) on the next non-blank line when that is indented deeper.
fn value_at<'t>(lines: &[&'t str], i: usize, same_line: &'t str) -> &'t str {
    let v = same_line.trim();
    let block = v.is_empty() || v.starts_with('|') || v.starts_with('>');
    if !block {
        return v;
    }
    let key_indent = indent(lines[i]);
    match lines[i + 1..].iter().find(|l| !l.trim().is_empty()) {
        Some(next) if indent(next) > key_indent => next.trim(),
        _ if v.is_empty() => "",
        // A block scalar with no content.
        _ => "",
    }
}

/// Rules on the text, independent of the file's name and of whether it parses.
pub(super) fn text_rules(text: &str) -> Option<Violation> {
    for caps in PEM_BEGIN.captures_iter(text) {
        let end = format!("-----END {}PRIVATE KEY-----", &caps[1]);
        if text[caps.get(0).map_or(0, |m| m.end())..].contains(&end) {
            return Some(Violation::PrivateKey);
        }
    }
    if PUTTY_KEY.is_match(text) {
        return Some(Violation::PrivateKey);
    }
    if CLIENT_KEY_DATA.is_match(text) {
        return Some(Violation::Kubeconfig);
    }
    let lines: Vec<&str> = text.lines().collect();
    if APP_CREDENTIAL_SECRET.is_match(text) {
        for (i, line) in lines.iter().enumerate() {
            for caps in APP_CREDENTIAL_SECRET.captures_iter(line) {
                let same = caps
                    .get(1)
                    .or(caps.get(2))
                    .or(caps.get(3))
                    .map_or("", |m| m.as_str());
                let quoted = caps.get(1).or(caps.get(2)).is_some();
                let value = if quoted {
                    same
                } else {
                    value_at(&lines, i, same)
                };
                if !is_placeholder(value) {
                    return Some(Violation::CloudCredentials);
                }
            }
        }
    }
    users_with_secrets(&lines).then_some(Violation::Kubeconfig)
}

/// A `token:` or `password:` with a value inside a `users:` block (a kubeconfig's users).
fn users_with_secrets(lines: &[&str]) -> bool {
    let mut block: Option<usize> = None;
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if let Some(users_indent) = block {
            let inside = indent(line) > users_indent
                || (indent(line) == users_indent && line.trim_start().starts_with('-'));
            if !inside {
                block = None;
            } else if let Some(caps) = USER_SECRET_KEY.captures(line) {
                let quoted = caps.get(1).or(caps.get(2));
                let value = match quoted {
                    Some(q) => q.as_str(),
                    None => value_at(lines, i, caps.get(3).map_or("", |m| m.as_str())),
                };
                if !is_placeholder(value) {
                    return true;
                }
                continue;
            } else {
                continue;
            }
        }
        if let Some(caps) = USERS_KEY.captures(line) {
            block = Some(caps[1].len());
        }
    }
    false
}

/// Helm/Go template actions (`{{ ... }}`) made parseable: an action alone on its line(s) goes
/// with the line, others become the scalar `TEMPLATE`.
fn strip_templates(text: &str) -> String {
    const MARK: char = '\u{1}';
    let mut marked = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        marked.push_str(&rest[..start]);
        match rest[start..].find("}}") {
            Some(end) => {
                marked.push(MARK);
                rest = &rest[start + end + 2..];
            }
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    marked.push_str(rest);
    let mut out = String::with_capacity(marked.len());
    for line in marked.lines() {
        if line.contains(MARK) && line.chars().all(|c| c == MARK || c.is_whitespace()) {
            continue;
        }
        out.push_str(&line.replace(MARK, "TEMPLATE"));
        out.push('\n');
    }
    out
}

/// The rules for a template that does not parse even with its actions removed: a Secret (or a
/// kind that is not a plain name), `stringData`, a `secretGenerator` or `clouds:` is refused.
fn template_text_rules(text: &str) -> Option<Violation> {
    for caps in TEMPLATE_KIND.captures_iter(text) {
        let kind = caps[1].trim_matches(['"', '\'']);
        match kind {
            "Secret" | "SecretList" => return Some(Violation::PlaintextSecret { name: None }),
            "Config" => return Some(Violation::Kubeconfig),
            _ if !kind.chars().all(|c| c.is_ascii_alphanumeric()) => {
                return Some(Violation::Unparseable {
                    reason: format!("a template whose kind {kind:?} is not a plain name"),
                });
            }
            _ => {}
        }
    }
    if TEMPLATE_SECRET_FIELDS.is_match(text) {
        return Some(Violation::PlaintextSecret { name: None });
    }
    CLOUDS_KEY
        .is_match(text)
        .then_some(Violation::CloudCredentials)
}

/// Checks every YAML document of `text`. `Err` (why) when it does not parse; a template that
/// does not parse falls back to [`template_text_rules`]. Stops at the first error: the
/// multi-document iterator would repeat the same error forever.
pub(super) fn structure(text: &str) -> Result<Option<Violation>, String> {
    let template = text.contains("{{");
    let prepared: Cow<str> = if template {
        Cow::Owned(strip_templates(text))
    } else {
        Cow::Borrowed(text)
    };
    for document in serde_yaml_ng::Deserializer::from_str(&prepared) {
        match Value::deserialize(document) {
            Ok(value) => {
                if let Some(v) = check_value(&value) {
                    return Ok(Some(v));
                }
            }
            Err(_) if template => return Ok(template_text_rules(text)),
            Err(e) => return Err(e.to_string().replace(['\n', '\r'], " ")),
        }
    }
    Ok(None)
}

fn check_value(value: &Value) -> Option<Violation> {
    match value {
        Value::Sequence(items) => items.iter().find_map(check_value),
        Value::Tagged(tagged) => check_value(&tagged.value),
        Value::Mapping(_) => check_object(value),
        _ => None,
    }
}

fn non_empty(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Mapping(m)) => !m.is_empty(),
        Some(Value::Sequence(s)) => !s.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

fn has_secret_data(object: &Value) -> bool {
    non_empty(object.get("data")) || non_empty(object.get("stringData"))
}

fn name_of(object: &Value) -> Option<String> {
    object
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn holds_clouds(key: &str, value: &Value) -> bool {
    let key = key.to_ascii_lowercase();
    if matches!(
        key.as_str(),
        "clouds.yaml" | "clouds.yml" | "secure.yaml" | "secure.yml"
    ) {
        return true;
    }
    match value.as_str() {
        Some(text) => {
            CLOUDS_KEY.is_match(text)
                || base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .is_some_and(|t| CLOUDS_KEY.is_match(&t))
        }
        None => false,
    }
}

fn check_object(object: &Value) -> Option<Violation> {
    let kind = object.get("kind").and_then(Value::as_str);
    let items = object.get("items").and_then(Value::as_sequence);
    match kind {
        Some("Secret") if has_secret_data(object) => {
            return Some(Violation::PlaintextSecret {
                name: name_of(object),
            });
        }
        // A SecretList's items may leave out their kind.
        Some("SecretList") => {
            if let Some(secret) = items.into_iter().flatten().find(|i| has_secret_data(i)) {
                return Some(Violation::PlaintextSecret {
                    name: name_of(secret),
                });
            }
        }
        Some("ConfigMap") => {
            for field in ["data", "binaryData"] {
                if let Some(data) = object.get(field).and_then(Value::as_mapping)
                    && data
                        .iter()
                        .any(|(k, v)| holds_clouds(k.as_str().unwrap_or(""), v))
                {
                    return Some(Violation::CloudCredentials);
                }
            }
        }
        Some("Config")
            if ["users", "clusters", "contexts"]
                .iter()
                .any(|f| object.get(f).is_some()) =>
        {
            return Some(Violation::Kubeconfig);
        }
        _ => {}
    }
    // A kubeconfig without apiVersion/kind: users that are users.
    if let Some(users) = object.get("users").and_then(Value::as_sequence)
        && users.iter().any(|u| u.get("user").is_some())
    {
        return Some(Violation::Kubeconfig);
    }
    if let Some(generators) = object.get("secretGenerator").and_then(Value::as_sequence)
        && generators.iter().any(|g| {
            ["literals", "files", "envs", "env"]
                .iter()
                .any(|f| non_empty(g.get(f)))
        })
    {
        return Some(Violation::SecretGenerator);
    }
    if let Some(clouds) = object.get("clouds").and_then(Value::as_mapping)
        && clouds.values().any(|c| c.get("auth").is_some())
    {
        return Some(Violation::CloudCredentials);
    }
    // `kind: List` and Lists nested in Lists, to any depth.
    items.into_iter().flatten().find_map(check_value)
}

/// Whether the example's credentials Secret still holds only the template's placeholders: one
/// v1 Secret whose only data is `stringData.clouds.yaml`, in which every value under an `auth`
/// is the placeholder (`auth_url` may contain it) and every secret-like key holds it.
pub(super) fn only_placeholders(text: &str) -> bool {
    let Ok(secret) = serde_yaml_ng::from_str::<Value>(text) else {
        return false;
    };
    if secret.get("kind").and_then(Value::as_str) != Some("Secret") || non_empty(secret.get("data"))
    {
        return false;
    }
    let Some(string_data) = secret.get("stringData").and_then(Value::as_mapping) else {
        return false;
    };
    if string_data.len() != 1 {
        return false;
    }
    let Some(clouds) = string_data.get("clouds.yaml").and_then(Value::as_str) else {
        return false;
    };
    let Ok(clouds) = serde_yaml_ng::from_str::<Value>(clouds) else {
        return false;
    };
    placeholders_only(&clouds, None, false)
}

fn placeholders_only(value: &Value, key: Option<&str>, in_auth: bool) -> bool {
    let secret_like = key.is_some_and(|k| {
        let k = k.to_ascii_lowercase();
        ["secret", "password", "token", "credential"]
            .iter()
            .any(|s| k.contains(s))
    });
    match value {
        Value::Mapping(m) => m.iter().all(|(k, v)| {
            let Some(k) = k.as_str() else { return false };
            placeholders_only(v, Some(k), in_auth || k == "auth")
        }),
        Value::Sequence(s) => s.iter().all(|v| placeholders_only(v, key, in_auth)),
        Value::Tagged(t) => placeholders_only(&t.value, key, in_auth),
        Value::String(s) if key == Some("auth_url") => s.contains(PLACEHOLDER),
        Value::String(s) if in_auth || secret_like => s == PLACEHOLDER,
        _ => !(in_auth || secret_like),
    }
}
