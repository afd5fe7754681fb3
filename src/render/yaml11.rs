//! A kustomization file read as kustomize reads it: its YAML library resolves plain scalars by
//! YAML 1.1 rules, so an unquoted `yes`, `off`, `y`, `0644` or `1_000` is a boolean or a number
//! there, not a string. kustomize then rejects it where a string belongs (and accepts `yes` where
//! a boolean belongs). Quoted and block scalars stay strings. Mapping keys that YAML 1.1 reads as
//! something other than a string are recorded: kustomize fails on them.

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Reads `text` (one YAML document). Returns the value and what kustomize cannot read in it:
/// the dotted path of each mapping key that is not a string under YAML 1.1, and of each
/// infinite or NaN number (no JSON number holds them), with the problem.
pub fn from_str(text: &str) -> Result<(Value, Vec<(String, String)>), serde_yaml_ng::Error> {
    let bad = RefCell::new(Vec::new());
    let seed = Seed {
        base: text,
        path: String::new(),
        bad: &bad,
    };
    let value = seed.deserialize(serde_yaml_ng::Deserializer::from_str(text))?;
    Ok((value, bad.into_inner()))
}

/// What a plain scalar `text` is under YAML 1.1 (go-yaml v2's resolver), when not a string.
pub fn resolve_plain(text: &str) -> Option<Value> {
    match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => {
            return Some(Value::Bool(true));
        }
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => {
            return Some(Value::Bool(false));
        }
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        _ => {}
    }
    let first = text.as_bytes().first()?;
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.')) {
        return None;
    }
    let plain: String = text.chars().filter(|&c| c != '_').collect();
    if let Some(i) = go_parse_int(&plain) {
        return Some(Value::from(i));
    }
    if is_float(&plain) {
        return plain
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number);
    }
    None
}

/// Go's `strconv.ParseInt(s, 0, 64)`: sign, then `0x`, `0o`, `0b` or a leading `0` (octal).
fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i128::from_str_radix(digits, radix).ok()?;
    i64::try_from(if neg { -v } else { v }).ok()
}

/// go-yaml's float form: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`.
pub(super) fn is_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

#[derive(Clone)]
struct Seed<'a, 's> {
    base: &'s str,
    path: String,
    bad: &'a RefCell<Vec<(String, String)>>,
}

impl Seed<'_, '_> {
    fn at(&self, part: &str) -> Self {
        let mut s = self.clone();
        if !s.path.is_empty() && !part.starts_with('[') {
            s.path.push('.');
        }
        s.path.push_str(part);
        s
    }

    /// Whether `s`, borrowed from the input, was written plain (not after a quote).
    fn is_plain(&self, s: &str) -> bool {
        let base = self.base.as_ptr() as usize;
        let at = s.as_ptr() as usize;
        if at <= base || at > base + self.base.len() {
            return false;
        }
        !matches!(self.base.as_bytes()[at - base - 1], b'\'' | b'"')
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(match serde_json::Number::from_f64(v) {
            Some(n) => Value::Number(n),
            None => {
                let problem = format!("{v} is not a number kustomize can hold: quote it");
                self.bad.borrow_mut().push((self.path.clone(), problem));
                Value::Null
            }
        })
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Value, E> {
        if self.is_plain(v)
            && let Some(r) = resolve_plain(v)
        {
            return Ok(r);
        }
        Ok(Value::String(v.to_string()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self.at(&format!("[{}]", out.len())))? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key_seed(self.at("(key)"))? {
            let key = match k {
                Value::String(s) => s,
                other => {
                    let text = match &other {
                        Value::Null => "null".to_string(),
                        v => v.to_string(),
                    };
                    let problem = format!(
                        "the key `{text}` is not a string to kustomize (YAML 1.1): quote it"
                    );
                    self.bad.borrow_mut().push((self.at(&text).path, problem));
                    text
                }
            };
            let v = map.next_value_seed(self.at(&key))?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_resolve_by_yaml_1_1_and_quoted_ones_stay_strings() {
        let (v, bad) = from_str(
            "a: yes\nb: 'yes'\nc: \"on\"\nd: 0644\ne: 1_000\nf: 1e3\ng: [off, n, '0x1F', 0x1F]\nh: |\n  yes\ni: 2024-01-01\nj: web\nk: ~\nl: .5\nm: 1:20\n",
        )
        .unwrap();
        assert!(bad.is_empty());
        assert_eq!(v["a"], true);
        assert_eq!(v["b"], "yes");
        assert_eq!(v["c"], "on");
        assert_eq!(v["d"], 420);
        assert_eq!(v["e"], 1000);
        assert_eq!(v["f"], 1000.0);
        assert_eq!(v["g"], serde_json::json!([false, false, "0x1F", 31]));
        assert_eq!(v["h"], "yes\n");
        assert_eq!(v["i"], "2024-01-01");
        assert_eq!(v["j"], "web");
        assert_eq!(v["k"], Value::Null);
        assert_eq!(v["l"], 0.5);
        assert_eq!(v["m"], "1:20");
    }

    #[test]
    fn keys_that_are_not_strings_are_reported_with_their_path() {
        let (v, bad) = from_str("commonLabels:\n  on: a\n  'off': b\n  12: c\n").unwrap();
        let paths: Vec<&str> = bad.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, vec!["commonLabels.true", "commonLabels.12"]);
        let (_, bad) = from_str("namePrefix: .inf\n").unwrap();
        assert_eq!(bad[0].0, "namePrefix");
        assert_eq!(v["commonLabels"]["off"], "b");
    }

    #[test]
    fn go_integers() {
        assert_eq!(go_parse_int("-0x10"), Some(-16));
        assert_eq!(go_parse_int("0b101"), Some(5));
        assert_eq!(go_parse_int("09"), None);
        assert_eq!(go_parse_int("+7"), Some(7));
        assert!(is_float("1.") && is_float("-.5e-3") && !is_float("1e") && !is_float("."));
    }
}
