//! A Helm chart repository on loopback, serving the upstream charts of the fixtures
//! (`../shared/fixtures/upstream/charts/`) packaged as their release jobs package them:
//! `Chart.yaml` gets the release version and, as `appVersion`, the short commit id of the
//! release (both set by upstream's publish script before `helm package`); a `file://`
//! dependency is vendored into `charts/<name>-<version>.tgz` with a `Chart.lock`, as
//! `helm dependency update` leaves it; `.helmignore` is respected. The repository is an
//! `index.yaml` (apiVersion v1) and the `.tgz` files beside it, as `helm repo index` writes it.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use serde_yaml_ng::Value;

use super::release_mirror::Mirror;

/// One chart of the fixtures at its release.
#[derive(Debug, Clone)]
pub struct FixtureChart {
    /// The chart's name (its directory inside the archive).
    pub name: &'static str,
    /// The chart's source directory.
    pub dir: PathBuf,
    /// The release version (the upstream tag).
    pub version: &'static str,
    /// The release's `appVersion`: the tag's short commit id.
    pub app_version: &'static str,
    /// Charts vendored into `charts/` (local `file://` dependencies).
    pub dependencies: Vec<FixtureChart>,
}

/// The three released charts of the fixtures: openstack-cluster 0.27.0 (with cluster-addons
/// 0.27.0), cluster-api-addon-provider 0.12.1 and cluster-api-janitor-openstack 0.14.0.
/// The short commit ids are the tags' commits (capi-helm-charts 0.27.0 = 89334f5a9eaf).
pub fn fixture_charts() -> Vec<FixtureChart> {
    let charts = super::fixtures().join("charts");
    let capi = charts.join("capi-helm-charts/charts");
    let addons = FixtureChart {
        name: "cluster-addons",
        dir: capi.join("cluster-addons"),
        version: "0.27.0",
        app_version: "89334f5",
        dependencies: vec![],
    };
    vec![
        FixtureChart {
            name: "openstack-cluster",
            dir: capi.join("openstack-cluster"),
            version: "0.27.0",
            app_version: "89334f5",
            dependencies: vec![addons],
        },
        FixtureChart {
            name: "cluster-api-addon-provider",
            dir: charts.join("cluster-api-addon-provider/chart"),
            version: "0.12.1",
            app_version: "1458081",
            dependencies: vec![],
        },
        FixtureChart {
            name: "cluster-api-janitor-openstack",
            dir: charts.join("cluster-api-janitor-openstack/chart"),
            version: "0.14.0",
            app_version: "b0879ae",
            dependencies: vec![],
        },
    ]
}

/// The fixture release of chart `name`; panics when there is none.
pub fn fixture_chart(name: &str) -> FixtureChart {
    fixture_charts()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no fixture chart {name}"))
}

// ---------------------------------------------------------------- .helmignore

/// `.helmignore` rules: shell globs, `dir/` for directories only, a leading `!` negates, a
/// pattern without `/` matches a base name, one with `/` the path relative to the chart.
/// Helm always adds `templates/.?*` (hidden files under templates are never packaged).
struct Ignore {
    rules: Vec<(bool, bool, String)>,
}

impl Ignore {
    fn load(dir: &Path) -> Ignore {
        let text = std::fs::read_to_string(dir.join(".helmignore")).unwrap_or_default();
        let mut rules = vec![(false, false, "templates/.?*".to_string())];
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negate, line) = match line.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            let (dir_only, pattern) = match line.strip_suffix('/') {
                Some(p) => (true, p),
                None => (false, line),
            };
            let pattern = pattern.trim_start_matches("./").trim_start_matches('/');
            rules.push((negate, dir_only, pattern.to_string()));
        }
        Ignore { rules }
    }

    fn ignored(&self, rel: &str, is_dir: bool) -> bool {
        let base = rel.rsplit('/').next().unwrap_or(rel);
        let mut ignored = false;
        for (negate, dir_only, pattern) in &self.rules {
            if *dir_only && !is_dir {
                continue;
            }
            let target = if pattern.contains('/') { rel } else { base };
            if glob(pattern.as_bytes(), target.as_bytes()) {
                ignored = !negate;
            }
        }
        ignored
    }
}

/// Shell glob: `*` and `?` never match `/`; `[...]` classes are not used by the fixtures.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&p[1..], s) || (s.first().is_some_and(|c| *c != b'/') && glob(p, &s[1..]))
        }
        (Some(b'?'), Some(c)) if *c != b'/' => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b && *a != b'?' => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

/// The chart's files (relative paths, sorted) that `helm package` takes.
fn chart_files(dir: &Path) -> Vec<String> {
    let ignore = Ignore::load(dir);
    let mut out = Vec::new();
    let mut stack = vec![String::new()];
    while let Some(rel_dir) = stack.pop() {
        let abs = if rel_dir.is_empty() {
            dir.to_path_buf()
        } else {
            dir.join(&rel_dir)
        };
        for entry in std::fs::read_dir(&abs).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let rel = if rel_dir.is_empty() {
                name
            } else {
                format!("{rel_dir}/{name}")
            };
            let is_dir = entry.file_type().unwrap().is_dir();
            if ignore.ignored(&rel, is_dir) {
                continue;
            }
            if is_dir {
                stack.push(rel);
            } else {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------- packaging

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// RFC 3339 UTC time of `t`, as Helm writes `created` and `generated`.
fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// `Chart.yaml` with the release's version and appVersion (the publish script loads, sets
/// both as strings and dumps it again).
fn released_metadata(chart: &FixtureChart) -> Value {
    let path = chart.dir.join("Chart.yaml");
    let mut meta: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        meta["name"].as_str(),
        Some(chart.name),
        "{}: chart name",
        path.display()
    );
    meta["version"] = Value::String(chart.version.to_string());
    meta["appVersion"] = Value::String(chart.app_version.to_string());
    meta
}

/// Helm's digest of a lock: SHA-256 of the JSON of `[requested, locked]` dependencies, the
/// fields in the order of Helm's `Dependency` type, empty ones left out.
fn lock_digest(requested: &[Value], locked: &[(String, String, String)]) -> String {
    let field = |d: &Value, k: &str| d[k].as_str().map(str::to_string);
    let req: Vec<String> = requested
        .iter()
        .map(|d| {
            let mut parts = vec![format!(
                "\"name\":{}",
                json!(field(d, "name").unwrap_or_default())
            )];
            if let Some(v) = field(d, "version") {
                parts.push(format!("\"version\":{}", json!(v)));
            }
            parts.push(format!(
                "\"repository\":{}",
                json!(field(d, "repository").unwrap_or_default())
            ));
            if let Some(c) = field(d, "condition") {
                parts.push(format!("\"condition\":{}", json!(c)));
            }
            if let Some(a) = field(d, "alias") {
                parts.push(format!("\"alias\":{}", json!(a)));
            }
            format!("{{{}}}", parts.join(","))
        })
        .collect();
    let lock: Vec<String> = locked
        .iter()
        .map(|(n, v, r)| {
            format!(
                "{{\"name\":{},\"version\":{},\"repository\":{}}}",
                json!(n),
                json!(v),
                json!(r)
            )
        })
        .collect();
    let data = format!("[[{}],[{}]]", req.join(","), lock.join(","));
    format!("sha256:{}", sha256_hex(data.as_bytes()))
}

fn append(tar: &mut tar::Builder<Vec<u8>>, path: &str, bytes: &[u8], mtime: u64) {
    let mut h = tar::Header::new_ustar();
    h.set_size(bytes.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(mtime);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, path, bytes)
        .unwrap_or_else(|e| panic!("tar {path}: {e}"));
}

/// The chart archive `<name>-<version>.tgz`: a gzipped tar with every file under `<name>/`.
pub fn package(chart: &FixtureChart) -> Vec<u8> {
    let now = SystemTime::now();
    let mtime = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let meta = released_metadata(chart);
    let mut tar = tar::Builder::new(Vec::new());
    let root = chart.name;
    append(
        &mut tar,
        &format!("{root}/Chart.yaml"),
        serde_yaml_ng::to_string(&meta).unwrap().as_bytes(),
        mtime,
    );
    let requested: Vec<Value> = meta["dependencies"]
        .as_sequence()
        .cloned()
        .unwrap_or_default();
    let mut locked = Vec::new();
    for r in &requested {
        let name = r["name"].as_str().unwrap();
        let repo = r["repository"].as_str().unwrap_or_default();
        let dep = chart
            .dependencies
            .iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("{}: dependency {name} not given", chart.name));
        let local = repo
            .strip_prefix("file://")
            .unwrap_or_else(|| panic!("{}: dependency {name} is not file://", chart.name));
        assert_eq!(
            chart.dir.join(local).canonicalize().unwrap(),
            dep.dir.canonicalize().unwrap(),
            "{}: dependency {name} path",
            chart.name
        );
        append(
            &mut tar,
            &format!("{root}/charts/{name}-{}.tgz", dep.version),
            &package(dep),
            mtime,
        );
        locked.push((name.to_string(), dep.version.to_string(), repo.to_string()));
    }
    if !locked.is_empty() {
        let lock = json!({
            "dependencies": locked.iter().map(|(n, v, r)| json!({"name": n, "repository": r, "version": v})).collect::<Vec<_>>(),
            "digest": lock_digest(&requested, &locked),
            "generated": rfc3339(now),
        });
        append(
            &mut tar,
            &format!("{root}/Chart.lock"),
            serde_yaml_ng::to_string(&lock).unwrap().as_bytes(),
            mtime,
        );
    }
    for rel in chart_files(&chart.dir) {
        // Chart.yaml is written above; a stale charts/ or Chart.lock in the source would be
        // replaced by `helm dependency update`.
        if rel == "Chart.yaml" || rel == "Chart.lock" || rel.starts_with("charts/") {
            continue;
        }
        let bytes = std::fs::read(chart.dir.join(&rel)).unwrap();
        append(&mut tar, &format!("{root}/{rel}"), &bytes, mtime);
    }
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

/// One entry of `index.yaml`: the chart's metadata plus `urls`, `digest` and `created`.
fn index_entry(chart: &FixtureChart, file: &str, tgz: &[u8]) -> Value {
    let mut entry = released_metadata(chart);
    let m = entry.as_mapping_mut().unwrap();
    m.insert("created".into(), rfc3339(SystemTime::now()).into());
    m.insert("digest".into(), sha256_hex(tgz).into());
    m.insert(
        "urls".into(),
        Value::Sequence(vec![Value::String(file.to_string())]),
    );
    entry
}

// ---------------------------------------------------------------- the repository

/// The repository server; stops on drop.
pub struct HelmRepo {
    mirror: Mirror,
    /// `http://127.0.0.1:<port>/`: the HelmRepository URL.
    pub url: String,
    /// (name, version) of every chart served.
    pub charts: Vec<(String, String)>,
}

impl HelmRepo {
    /// Serves `charts` (top-level charts; dependencies travel inside them).
    pub fn serve(charts: &[FixtureChart]) -> HelmRepo {
        let mut files = std::collections::HashMap::new();
        let mut entries = serde_yaml_ng::Mapping::new();
        let mut served = Vec::new();
        for c in charts {
            let file = format!("{}-{}.tgz", c.name, c.version);
            let tgz = package(c);
            entries.insert(
                c.name.into(),
                Value::Sequence(vec![index_entry(c, &file, &tgz)]),
            );
            files.insert(format!("/{file}"), tgz);
            served.push((c.name.to_string(), c.version.to_string()));
        }
        let mut index = serde_yaml_ng::Mapping::new();
        index.insert("apiVersion".into(), "v1".into());
        index.insert("entries".into(), Value::Mapping(entries));
        index.insert("generated".into(), rfc3339(SystemTime::now()).into());
        files.insert(
            "/index.yaml".to_string(),
            serde_yaml_ng::to_string(&Value::Mapping(index))
                .unwrap()
                .into_bytes(),
        );
        let mirror = Mirror::start(files);
        HelmRepo {
            url: mirror.base.clone(),
            mirror,
            charts: served,
        }
    }

    /// Serves every fixture chart.
    pub fn serve_fixtures() -> HelmRepo {
        HelmRepo::serve(&fixture_charts())
    }

    /// The version served for chart `name`.
    pub fn version(&self, name: &str) -> Option<&str> {
        self.charts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.mirror
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}
