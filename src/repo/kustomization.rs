//! Edits of a cluster's `kustomization.yaml` that keep the user's file as it is: comments,
//! order and indentation stay; only the line added is new.

use std::path::Path;

use super::Error;

/// Lists `file` in the top-level `resources:` of the kustomization at `path` (written
/// atomically, keeping the file's permissions). Returns whether the file changed: `false` when
/// `file` is listed already.
///
/// # Errors
///
/// [`Error::Read`] or [`Error::Write`] naming the kustomization.
pub fn list_resource(path: &Path, file: &str) -> Result<bool, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let Some(updated) = add_resource(&text, file) else {
        return Ok(false);
    };
    crate::fs::write_atomic(path, updated.as_bytes(), crate::fs::Access::Keep).map_err(
        |source| Error::Write {
            path: path.to_path_buf(),
            source,
        },
    )?;
    Ok(true)
}

/// `text` (a kustomization.yaml) with `file` appended to its top-level `resources:` list, keeping
/// every other line as it is; `None` when it is already listed.
pub fn add_resource(text: &str, file: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| l.trim_end() == "resources:");
    let Some(start) = start else {
        let mut out = text.to_string();
        if !out.ends_with('\n') && !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("resources:\n- {file}\n"));
        return Some(out);
    };
    let mut end = start + 1;
    while end < lines.len() {
        let l = lines[end];
        let t = l.trim_start();
        if t.starts_with("- ") || t == "-" || (t.starts_with('#') && l.starts_with(['#', ' ', '-']))
        {
            let item = t.trim_start_matches('-').trim();
            if item == file || item.trim_matches(['"', '\'']) == file {
                return None;
            }
            end += 1;
        } else {
            break;
        }
    }
    // The list's item indentation, from its first item.
    let indent = lines
        .get(start + 1)
        .filter(|l| l.trim_start().starts_with('-'))
        .map(|l| &l[..l.len() - l.trim_start().len()])
        .unwrap_or("");
    let mut out: Vec<String> = lines[..end].iter().map(|s| s.to_string()).collect();
    out.push(format!("{indent}- {file}"));
    out.extend(lines[end..].iter().map(|s| s.to_string()));
    let mut s = out.join("\n");
    s.push('\n');
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_resource_appends_once_and_keeps_everything_else() {
        let k = "# comment\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../bases/addons\n- values.yaml\npatches:\n- target:\n    kind: HelmRelease\n";
        let out = add_resource(k, "credentials-sealed.yaml").unwrap();
        assert_eq!(
            out,
            "# comment\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../bases/addons\n- values.yaml\n- credentials-sealed.yaml\npatches:\n- target:\n    kind: HelmRelease\n"
        );
        assert_eq!(add_resource(&out, "credentials-sealed.yaml"), None);
        let indented = "resources:\n  - a.yaml\n";
        assert_eq!(
            add_resource(indented, "b.yaml").unwrap(),
            "resources:\n  - a.yaml\n  - b.yaml\n"
        );
        assert_eq!(
            add_resource("kind: Kustomization\n", "b.yaml").unwrap(),
            "kind: Kustomization\nresources:\n- b.yaml\n"
        );
    }

    #[test]
    fn list_resource_writes_only_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kustomization.yaml");
        std::fs::write(&path, "resources:\n- a.yaml\n").unwrap();
        assert!(list_resource(&path, "b.yaml").unwrap());
        assert!(!list_resource(&path, "b.yaml").unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "resources:\n- a.yaml\n- b.yaml\n"
        );
        let e = list_resource(&dir.path().join("none.yaml"), "b.yaml").unwrap_err();
        assert!(e.to_string().contains("none.yaml"), "{e}");
    }
}
