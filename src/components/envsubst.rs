//! Variable substitution as clusterctl applies it to a provider's components: on the raw text,
//! before parsing, with the envsubst rules clusterctl uses. That differs from Flux's
//! post-build substitution in [`crate::manifest::substitute`]: `$$` always becomes `$` (release
//! files rely on it, e.g. "$$(VAR_NAME)" in CRD descriptions), a bare `$NAME` is a variable
//! too, and an empty value counts as unset (the default applies).
//!
//! Supported: `$$`, `$NAME`, `${NAME}`, `${NAME:=default}`, `${NAME:-default}`,
//! `${NAME=default}`, `${NAME-default}` (spaces around NAME are ignored, as clusterctl's legacy
//! form). Other envsubst functions (`${NAME^}`, `${NAME/a/b}`, ...) are refused by name.

use std::collections::BTreeMap;

/// Why substitution failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// Variables with neither a value nor a default, in order of first use, with that line.
    Missing(Vec<(String, usize)>),
    /// An expression this substitution does not support, and its line.
    Unsupported(String, usize),
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_name(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

/// Substitutes `vars` into `text`; every missing variable is reported at once.
pub(crate) fn substitute(text: &str, vars: &BTreeMap<String, String>) -> Result<String, Problem> {
    let lookup = |name: &str| vars.get(name).filter(|v| !v.is_empty());
    let line_at = |offset: usize| text[..offset].matches('\n').count() + 1;
    let mut out = String::with_capacity(text.len());
    let mut missing: Vec<(String, usize)> = Vec::new();
    let mut note_missing = |name: &str, offset: usize| {
        if !missing.iter().any(|(n, _)| n == name) {
            missing.push((name.to_string(), line_at(offset)));
        }
    };
    let mut i = 0;
    while let Some(pos) = text[i..].find('$') {
        let at = i + pos;
        out.push_str(&text[i..at]);
        let rest = &text[at + 1..];
        let next = rest.chars().next();
        match next {
            Some('$') => {
                out.push('$');
                i = at + 2;
            }
            Some('{') => {
                let Some(close) = rest.find('}') else {
                    return Err(Problem::Unsupported(
                        rest.chars().take(40).collect::<String>().replace('\n', " "),
                        line_at(at),
                    ));
                };
                let inner = &rest[1..close];
                let trimmed = inner.trim_start();
                let name_len = trimmed
                    .char_indices()
                    .find(|(_, c)| !is_name(*c))
                    .map(|(k, _)| k)
                    .unwrap_or(trimmed.len());
                let name = &trimmed[..name_len];
                let op = trimmed[name_len..].trim_start();
                let unsupported = || Problem::Unsupported(format!("${{{inner}}}"), line_at(at));
                if !name.starts_with(is_name_start) {
                    return Err(unsupported());
                }
                let default = if op.is_empty() {
                    None
                } else if let Some(d) = [":=", ":-", "=", "-"]
                    .iter()
                    .find_map(|p| op.strip_prefix(p))
                {
                    Some(d)
                } else {
                    return Err(unsupported());
                };
                match (lookup(name), default) {
                    (Some(v), _) => out.push_str(v),
                    (None, Some(d)) => out.push_str(d),
                    (None, None) => note_missing(name, at),
                }
                i = at + 1 + close + 1;
            }
            Some(c) if is_name_start(c) => {
                let len = rest
                    .char_indices()
                    .find(|(_, c)| !is_name(*c))
                    .map(|(k, _)| k)
                    .unwrap_or(rest.len());
                let name = &rest[..len];
                match lookup(name) {
                    Some(v) => out.push_str(v),
                    None => note_missing(name, at),
                }
                i = at + 1 + len;
            }
            _ => {
                out.push('$');
                i = at + 1;
            }
        }
    }
    out.push_str(&text[i..]);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(Problem::Missing(missing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::test_vars as vars;

    #[test]
    fn clusterctl_rules() {
        let v = vars(&[("A", "1"), ("EMPTY", "")]);
        assert_eq!(
            substitute(
                "a=${A} b=${B:=two} c=${C:-3} d=$A e=${ A } f=${EMPTY:=dflt} g=$$(X) h=$$ i=^x$\n",
                &v
            )
            .unwrap(),
            "a=1 b=two c=3 d=1 e=1 f=dflt g=$(X) h=$ i=^x$\n"
        );
        assert_eq!(
            substitute("--gates=MachinePool=${EXP_MACHINE_POOL:=true}", &v).unwrap(),
            "--gates=MachinePool=true"
        );
    }

    #[test]
    fn every_missing_variable_is_named_with_its_line() {
        let e = substitute("x: ${NEED}\ny: $ALSO\nz: ${NEED}\n", &vars(&[])).unwrap_err();
        assert_eq!(
            e,
            Problem::Missing(vec![("NEED".into(), 1), ("ALSO".into(), 2)])
        );
        assert_eq!(
            substitute("a\nb: ${X/a/b}", &vars(&[])).unwrap_err(),
            Problem::Unsupported("${X/a/b}".into(), 2)
        );
        assert!(matches!(
            substitute("${OPEN", &vars(&[])),
            Err(Problem::Unsupported(..))
        ));
    }
}
