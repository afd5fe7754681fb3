//! The one YAML writer: block style, two-space indentation, sequences flush with their key
//! (kustomize's layout), and every string that any YAML reader could take for something else
//! double-quoted.
//!
//! YAML 1.1 readers (PyYAML, go-yaml v2 behind kubectl and sigs.k8s.io/yaml) resolve plain
//! scalars such as `yes`, `off`, `y`, `~`, `0644`, `1_000`, `12:30:00` or `2024-01-01` to
//! booleans, numbers, nulls or timestamps, where YAML 1.2 readers see strings. A string is written
//! plain only when both kinds of reader see a string.

use serde_json::{Map, Number, Value};

/// `value` as one YAML document (no `---` marker), ending in a newline.
pub fn to_yaml_value(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => mapping(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => sequence(&mut out, a, 0),
        other => {
            scalar_inline(&mut out, other, 0);
            out.push('\n');
        }
    }
    out
}

/// Any serialisable value (e.g. a `serde_yaml_ng::Value`) written like [`to_yaml_value`].
///
/// # Errors
///
/// When `value` does not convert to JSON (a mapping key that is not a string, number or boolean).
pub fn to_yaml_of<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    Ok(to_yaml_value(&serde_json::to_value(value)?))
}

/// Whether `s` must be quoted: a YAML 1.1 or 1.2 reader would resolve it, written plain, to
/// something other than this string (a boolean, number, null, timestamp, merge key...), or it is
/// not a valid plain scalar at all (indicators, `: `, ` #`, surrounding spaces, control
/// characters, several lines).
pub fn needs_quotes(s: &str) -> bool {
    !is_plain_safe(s) || resolves_to_non_string(s)
}

fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        // Booleans of YAML 1.1 (y/n included: the 1.1 type repository lists them) and 1.2.
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
        "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", // Nulls.
        "~", "null", "Null", "NULL", // Infinity and not-a-number.
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN", // The merge key and YAML 1.1's value key.
        "<<", "=",
    ];
    if s.is_empty() || WORDS.contains(&s) {
        return true;
    }
    numberish(s)
}

/// Generous on purpose: anything shaped like an integer (any base, `_` separators, sexagesimal
/// `1:30`), a float (`1e3`, `.5`, `1.`), or a timestamp (`2024-01-01`, `2001-12-14t21:59:43.10-05:00`,
/// `2001-12-14 21:59:43.10 -5`). Quoting a string that did not need it costs nothing.
fn numberish(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    // go-yaml v2 hands signed scalars to Go's ParseFloat, which takes `+Inf` or `-infinity`.
    if body.len() < s.len()
        && ["inf", "infinity", "nan"].contains(&body.to_ascii_lowercase().as_str())
    {
        return true;
    }
    let mut chars = body.chars();
    let first_ok = match chars.next() {
        Some(c) if c.is_ascii_digit() => true,
        Some('.') => chars.next().is_some_and(|c| c.is_ascii_digit() || c == '_'),
        _ => false,
    };
    first_ok
        && body
            .chars()
            .all(|c| c.is_ascii_hexdigit() || "xXoObBpP_.:+-tTzZ ".contains(c))
}

/// A plain scalar that parses back as exactly `s` in block context (before type resolution).
fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s.starts_with(' ') || s.ends_with(' ') || s.ends_with(':') {
        return false;
    }
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        // `-x`, `?x` and `:x` are valid plain scalars, but quoting them is simpler and safe.
        return false;
    }
    if s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.contains(":\t") || s.contains("\t#") {
        return false;
    }
    s.chars().all(|c| !c.is_control() && printable(c))
}

/// Characters YAML allows unescaped (and that readers keep as they are).
fn printable(c: char) -> bool {
    !matches!(
        c,
        '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
    )
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn is_block(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn mapping(out: &mut String, m: &Map<String, Value>, ind: usize) {
    for (i, (k, v)) in m.iter().enumerate() {
        // The first key of a mapping inside a sequence item follows the `- ` already written.
        if i > 0 || !out.ends_with("- ") {
            indent(out, ind);
        }
        string_inline(out, k);
        out.push(':');
        match v {
            Value::Object(sub) if !sub.is_empty() => {
                out.push('\n');
                mapping(out, sub, ind + 2);
            }
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                sequence(out, a, ind);
            }
            other => {
                out.push(' ');
                scalar_inline(out, other, ind + 2);
                out.push('\n');
            }
        }
    }
}

fn sequence(out: &mut String, a: &[Value], ind: usize) {
    for v in a {
        if !out.ends_with("- ") {
            indent(out, ind);
        }
        out.push_str("- ");
        match v {
            Value::Object(m) if !m.is_empty() => mapping(out, m, ind + 2),
            Value::Array(sub) if !sub.is_empty() => sequence(out, sub, ind + 2),
            other => {
                scalar_inline(out, other, ind + 2);
                out.push('\n');
            }
        }
    }
}

/// A scalar (or empty collection) after `key: ` or `- `; `ind` is the indentation of a block
/// scalar's content.
fn scalar_inline(out: &mut String, v: &Value, ind: usize) {
    debug_assert!(!is_block(v));
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => number(out, n),
        Value::String(s) if s.contains('\n') && literal_ok(s) => literal(out, s, ind),
        Value::String(s) => string_inline(out, s),
        Value::Object(_) => out.push_str("{}"),
        Value::Array(_) => out.push_str("[]"),
    }
}

/// Floats always carry a `.` so that YAML 1.1 readers, whose floats need one, agree.
fn number(out: &mut String, n: &Number) {
    let text = n.to_string();
    if n.is_f64() && !text.contains('.') {
        match text.split_once(['e', 'E']) {
            Some((mantissa, exp)) => {
                let exp = exp.strip_prefix('+').unwrap_or(exp);
                let sign = if exp.starts_with('-') { "" } else { "+" };
                out.push_str(&format!("{mantissa}.0e{sign}{exp}"));
            }
            None => out.push_str(&format!("{text}.0")),
        }
    } else {
        out.push_str(&text);
    }
}

fn string_inline(out: &mut String, s: &str) {
    if needs_quotes(s) {
        double_quoted(out, s);
    } else {
        out.push_str(s);
    }
}

fn double_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() || !printable(c) => {
                let n = c as u32;
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02x}"));
                } else {
                    out.push_str(&format!("\\u{n:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A multi-line string reads back unchanged from a literal block: printable, no line made only
/// of spaces (a reader may fold it into the indentation), no leading space on the first line
/// (it would need an indentation indicator), no carriage returns.
fn literal_ok(s: &str) -> bool {
    !s.starts_with(' ')
        && !s.starts_with('\n')
        && s.chars()
            .all(|c| c == '\n' || c == '\t' || (!c.is_control() && printable(c)))
        && s.split('\n').all(|l| l.is_empty() || !l.trim().is_empty())
}

/// Writes a literal block scalar; the caller ends its last line.
fn literal(out: &mut String, s: &str, ind: usize) {
    let body = s.trim_end_matches('\n');
    let trailing = s.len() - body.len();
    out.push_str(match trailing {
        0 => "|-",
        1 => "|",
        _ => "|+",
    });
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            indent(out, ind);
            out.push_str(line);
        }
    }
    for _ in 1..trailing {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const AMBIGUOUS: &[&str] = &[
        "yes",
        "Yes",
        "YES",
        "no",
        "NO",
        "on",
        "On",
        "off",
        "OFF",
        "y",
        "Y",
        "n",
        "N",
        "~",
        "true",
        "True",
        "TRUE",
        "false",
        "null",
        "Null",
        "NULL",
        "",
        "0644",
        "0o17",
        "1e3",
        "1E3",
        "2024-01-01",
        "2001-12-14t21:59:43.10-05:00",
        "2001-12-14 21:59:43.10 -5",
        "0x1F",
        "0b1010",
        ".inf",
        "-.Inf",
        ".NaN",
        "1_000",
        "12:30:00",
        "190:20:30.15",
        "1.5",
        ".5",
        "1.",
        "+12",
        "-0",
        "42",
        "<<",
        "=",
        "+Inf",
        "-infinity",
        "+NaN",
        "0x1p-2",
        "._5",
    ];

    #[test]
    fn quotes_every_yaml_1_1_or_1_2_non_string() {
        for s in AMBIGUOUS {
            assert!(needs_quotes(s), "{s:?} must be quoted");
        }
    }

    #[test]
    fn leaves_ordinary_strings_plain() {
        for s in [
            "nginx",
            "v1.2.3",
            "app.kubernetes.io/name",
            "Yess",
            "onion",
            "nope",
            "a b",
            "x:y",
            "http://h:80/p",
            "v1.2.3-beta",
            "ClusterRole",
            "NaN",
            "infinity",
            "é",
            "a#b",
        ] {
            assert!(!needs_quotes(s), "{s:?} should stay plain");
        }
    }

    #[test]
    fn quotes_what_is_not_a_plain_scalar() {
        for s in [
            " a",
            "a ",
            "- a",
            "-a",
            "a: b",
            "a #b",
            "#a",
            "*a",
            "&a",
            "!a",
            "|",
            ">",
            "'a",
            "\"a",
            "%a",
            "@a",
            "`a",
            "[a]",
            "{a}",
            "a:",
            "---",
            "...",
            "a\tb",
            "\u{7}",
            "a\u{2028}b",
        ] {
            assert!(needs_quotes(s), "{s:?} must be quoted");
        }
    }

    fn round_trip(v: &Value) {
        let text = to_yaml_value(v);
        let back: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(&back, v, "{text}");
    }

    #[test]
    fn writes_block_style_that_reads_back() {
        let mut data = Map::new();
        for (i, s) in AMBIGUOUS.iter().enumerate() {
            data.insert(format!("k{i}"), json!(s));
            data.insert((*s).to_string(), json!(i));
        }
        for (i, s) in [
            "line\n",
            "two\nlines",
            "trailing\n\n\n",
            "tab\tinside\nx\n",
            " lead\nx",
            "\nfirst\n",
            "blank\n\nline\n",
            "spaces\n  \nline",
            "cr\r\nlf",
            "\"quoted\" \\ back",
            "\u{1}x",
            "a\u{85}b",
            "\u{feff}bom",
            "日本語",
            "key: value\n# comment\n",
        ]
        .iter()
        .enumerate()
        {
            data.insert(format!("s{i}"), json!(s));
        }
        let v = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "x", "labels": {"a": "true"}, "annotations": {}},
            "data": data,
            "list": [[1, [2, "3"]], {"a": 1, "b": [{"c": null}]}, [], {}, "yes", 1.5, -2, 1e300, 0.0],
            "empty": [],
            "nested": {"deep": {"deeper": ["x", {"k": "multi\nline\n"}]}},
        });
        round_trip(&v);
        round_trip(&json!("yes"));
        round_trip(&json!([]));
        round_trip(&json!(["a", ["b"]]));
    }

    #[test]
    fn layout_is_kustomize_like() {
        let v =
            json!({"spec": {"containers": [{"name": "a", "args": ["yes", "x"]}]}, "s": "a\nb\n"});
        assert_eq!(
            to_yaml_value(&v),
            "spec:\n  containers:\n  - name: a\n    args:\n    - \"yes\"\n    - x\ns: |\n  a\n  b\n"
        );
        assert_eq!(
            to_yaml_value(&json!({"f": 1e300, "g": 2.0})),
            "f: 1.0e+300\ng: 2.0\n"
        );
    }
}
