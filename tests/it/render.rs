//! The renderer against the real `kustomize build`: every case under tests/render-cases (and
//! every kustomization under clusters/) must render to the same objects in the same order;
//! every case with an `expect-error` file must fail naming the file and field it lists.

use std::path::{Path, PathBuf};
use std::process::Command;

use capi_manage::manifest::parse_str;
use capi_manage::render::render;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The kustomize binary built by `scripts/test-binaries kustomize`; a missing one fails.
pub fn kustomize() -> PathBuf {
    let dir = match std::env::var_os("CAPI_MANAGE_TEST_BIN") {
        Some(d) => PathBuf::from(d),
        None => {
            let out = Command::new(root().join("scripts/test-binaries"))
                .arg("--print-dir")
                .output()
                .expect("run scripts/test-binaries --print-dir");
            PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
        }
    };
    let bin = dir.join("kustomize");
    assert!(
        bin.is_file(),
        "kustomize is missing at {}: run `scripts/test-binaries kustomize`",
        bin.display()
    );
    bin
}

fn kustomize_build(dir: &Path) -> Result<String, String> {
    let out = Command::new(kustomize())
        .arg("build")
        .arg(dir)
        .output()
        .expect("run kustomize");
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("tests/render-cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

/// Compares one folder; Err describes the difference.
fn compare(dir: &Path) -> Result<(), String> {
    let expected = kustomize_build(dir).map_err(|e| format!("kustomize failed: {e}"))?;
    let expected = parse_str(&expected, None).map_err(|e| format!("kustomize output: {e}"))?;
    let ours = render(dir).map_err(|e| {
        let mut s = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(c) = src {
            s.push_str(&format!(": {c}"));
            src = c.source();
        }
        format!("capi-manage failed: {s}")
    })?;
    let ids =
        |o: &[capi_manage::manifest::Object]| o.iter().map(|x| x.identity()).collect::<Vec<_>>();
    if ids(&expected) != ids(&ours) {
        return Err(format!(
            "order or set differs:\n  kustomize:   {:?}\n  capi-manage: {:?}",
            ids(&expected),
            ids(&ours)
        ));
    }
    for (e, o) in expected.iter().zip(&ours) {
        if e.value != o.value {
            return Err(format!(
                "{} differs:\n--- kustomize\n{}--- capi-manage\n{}",
                e.identity(),
                serde_yaml_ng::to_string(&e.value).unwrap(),
                serde_yaml_ng::to_string(&o.value).unwrap()
            ));
        }
    }
    Ok(())
}

/// `expect-error` lists `file: <suffix of the file path>` and `field: <field>` lines.
fn check_error(dir: &Path, spec: &str) -> Result<(), String> {
    let msg = match render(dir) {
        Ok(objs) => {
            return Err(format!(
                "rendered {} objects; expected an error",
                objs.len()
            ));
        }
        Err(e) => e.to_string(),
    };
    for line in spec.lines().filter(|l| !l.trim().is_empty()) {
        let (key, want) = line.split_once(':').ok_or("bad expect-error line")?;
        let want = want.trim();
        let ok = match key.trim() {
            "file" => msg.contains(want),
            "field" => msg.contains(&format!("`{want}`")),
            "message" => msg.contains(want),
            other => return Err(format!("unknown expect-error key {other}")),
        };
        if !ok {
            return Err(format!("error {msg:?} does not name {key} {want:?}"));
        }
    }
    Ok(())
}

#[test]
fn corpus_matches_kustomize() {
    kustomize();
    let mut failures = Vec::new();
    let mut compared = 0;
    let mut errors = 0;
    for case in cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let result = match std::fs::read_to_string(case.join("expect-error")) {
            Ok(spec) => {
                errors += 1;
                check_error(&case, &spec)
            }
            Err(_) => {
                compared += 1;
                compare(&case)
            }
        };
        if let Err(e) = result {
            failures.push(format!("== {name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        compared + errors,
        failures.join("\n")
    );
    assert!(
        compared + errors >= 40,
        "the corpus has {} cases",
        compared + errors
    );
}

#[test]
fn repo_clusters_match_kustomize() {
    kustomize();
    let clusters = root().join("clusters");
    let mut dirs = Vec::new();
    let mut stack = vec![clusters];
    while let Some(d) = stack.pop() {
        if capi_manage::render::is_kustomization_dir(&d) {
            dirs.push(d.clone());
        }
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    assert!(
        dirs.len() >= 2,
        "clusters/ has too few kustomizations: {dirs:?}"
    );
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|d| compare(d).err().map(|e| format!("== {}: {e}", d.display())))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
