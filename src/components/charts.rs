//! The chart part of `vendor`: each pinned chart's archive, found through its Helm
//! repository's `index.yaml`, downloaded and checked against the sha256 in `vendor.lock` (and
//! the index's own `digest`), or recorded the first time.

use tokio_util::sync::CancellationToken;

use super::download::{Downloader, Failure};
use super::lock::{Lock, LockedChart};
use super::pins::ChartSource;
use super::{ASSET_SIZE_MARGIN, ChecksumStatus, Error, MAX_ASSET_BYTES, sha256_hex};
use crate::observe::{Observer, ObserverExt};

/// What [`super::vendor`] did with one chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartReport {
    /// The chart's name.
    pub name: String,
    /// Its pinned version.
    pub version: String,
    /// The Helm repository's URL.
    pub repository: String,
    /// Where the archive was downloaded from.
    pub url: String,
    /// The archive's file name.
    pub file: String,
    /// Its size.
    pub bytes: u64,
    /// Its sha256.
    pub sha256: String,
    /// Whether its checksum was recorded now or verified.
    pub checksum: ChecksumStatus,
}

/// Where a chart of `index` (the parsed `index.yaml` of `repository`) at `version` is served:
/// its first URL, resolved against the repository's URL when relative (as Helm does), and the
/// index's `digest` when it gives one.
pub(crate) fn chart_url(
    index: &serde_json::Value,
    repository: &str,
    chart: &str,
    version: &str,
) -> Result<(String, Option<String>), String> {
    let entries = index["entries"][chart]
        .as_array()
        .ok_or_else(|| format!("no chart {chart}"))?;
    let entry = entries
        .iter()
        .find(|e| e["version"].as_str() == Some(version))
        .ok_or_else(|| {
            let versions: Vec<&str> = entries
                .iter()
                .filter_map(|e| e["version"].as_str())
                .collect();
            format!(
                "no version {version} of {chart} (it has {})",
                versions.join(", ")
            )
        })?;
    let url = entry["urls"][0]
        .as_str()
        .ok_or_else(|| format!("{chart} {version} has no urls"))?;
    let base = reqwest::Url::parse(&format!("{}/", repository.trim_end_matches('/')))
        .map_err(|e| format!("the repository URL does not parse ({e})"))?;
    let url = base
        .join(url)
        .map_err(|e| format!("{chart} {version}: url `{url}` does not parse ({e})"))?;
    let digest = entry["digest"]
        .as_str()
        .filter(|d| !d.is_empty())
        .map(|d| d.trim_start_matches("sha256:").to_string());
    Ok((url.to_string(), digest))
}

fn failure(what: &str, url: &str, f: Failure) -> Error {
    match f {
        Failure::Cancelled => Error::Cancelled,
        Failure::Status(status) => Error::HttpStatus {
            component: what.to_string(),
            url: url.to_string(),
            from: url.to_string(),
            status,
        },
        Failure::TooLarge { limit } => Error::TooLarge {
            component: what.to_string(),
            url: url.to_string(),
            from: url.to_string(),
            limit,
        },
        Failure::Transport(source) => Error::Download {
            component: what.to_string(),
            url: url.to_string(),
            from: url.to_string(),
            attempts: 4,
            source,
        },
    }
}

/// Downloads and checks every chart of `charts`; nothing is written here.
pub(crate) async fn vendor_charts(
    downloader: &Downloader,
    charts: &[ChartSource],
    old_lock: Option<&Lock>,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<(Vec<LockedChart>, Vec<ChartReport>), Error> {
    let mut locked = Vec::new();
    let mut reports = Vec::new();
    for c in charts {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let what = format!("chart {} {}", c.name, c.version);
        if !(c.repository.starts_with("https://") || c.repository.starts_with("http://")) {
            return Err(Error::ChartIndex {
                chart: c.name.clone(),
                version: c.version.clone(),
                repository: c.repository.clone(),
                problem: "only http(s) Helm repositories (an index.yaml) can be vendored".into(),
            });
        }
        let index_url = format!("{}/index.yaml", c.repository.trim_end_matches('/'));
        observer.action(format!("reading {index_url} for {what}"));
        let bytes = downloader
            .get(&index_url, &what, MAX_ASSET_BYTES, observer, cancel)
            .await
            .map_err(|f| failure(&what, &index_url, f))?;
        let bad_index = |problem: String| Error::ChartIndex {
            chart: c.name.clone(),
            version: c.version.clone(),
            repository: c.repository.clone(),
            problem,
        };
        let index: serde_json::Value = serde_yaml_ng::from_slice(&bytes)
            .map_err(|e| bad_index(format!("does not parse ({e})")))?;
        let (url, digest) =
            chart_url(&index, &c.repository, &c.name, &c.version).map_err(bad_index)?;
        let previous = old_lock.and_then(|l| l.chart(&c.name, &c.version));
        let limit = previous.map_or(MAX_ASSET_BYTES, |p| p.bytes + ASSET_SIZE_MARGIN);
        observer.action(format!("downloading {what} from {url}"));
        let tgz = downloader
            .get(&url, &what, limit, observer, cancel)
            .await
            .map_err(|f| failure(&what, &url, f))?;
        let actual = sha256_hex(&tgz);
        let checksum = match previous {
            Some(p) if p.sha256 != actual => {
                return Err(Error::Checksum {
                    component: what,
                    url: url.clone(),
                    from: url,
                    expected: p.sha256.clone(),
                    actual,
                });
            }
            Some(_) => ChecksumStatus::Verified,
            None => ChecksumStatus::Recorded,
        };
        if let Some(d) = digest
            && d != actual
        {
            return Err(bad_index(format!(
                "the archive {url} has sha256 {actual}, but the index gives digest {d}; refusing it"
            )));
        }
        let file = url
            .rsplit('/')
            .next()
            .filter(|f| !f.is_empty() && !f.starts_with('.'))
            .map(str::to_string)
            .ok_or_else(|| bad_index(format!("`{url}` names no file")))?;
        locked.push(LockedChart {
            name: c.name.clone(),
            version: c.version.clone(),
            repository: c.repository.clone(),
            file: file.clone(),
            sha256: actual.clone(),
            bytes: tgz.len() as u64,
        });
        reports.push(ChartReport {
            name: c.name.clone(),
            version: c.version.clone(),
            repository: c.repository.clone(),
            url,
            file,
            bytes: tgz.len() as u64,
            sha256: actual,
            checksum,
        });
    }
    Ok((locked, reports))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_urls_resolve_like_helm() {
        let index: serde_json::Value = serde_yaml_ng::from_str(
            "apiVersion: v1\nentries:\n  a:\n  - {version: 1.0.0, urls: [a-1.0.0.tgz], digest: abc}\n  - {version: 2.0.0, urls: ['https://cdn.example/x/a-2.0.0.tgz']}\n",
        )
        .unwrap();
        assert_eq!(
            chart_url(&index, "http://127.0.0.1:9/charts/", "a", "1.0.0").unwrap(),
            (
                "http://127.0.0.1:9/charts/a-1.0.0.tgz".to_string(),
                Some("abc".to_string())
            )
        );
        assert_eq!(
            chart_url(&index, "http://127.0.0.1:9/charts", "a", "2.0.0")
                .unwrap()
                .0,
            "https://cdn.example/x/a-2.0.0.tgz"
        );
        let e = chart_url(&index, "http://127.0.0.1:9", "a", "3.0.0").unwrap_err();
        assert!(e.contains("1.0.0, 2.0.0"), "{e}");
        assert!(chart_url(&index, "http://127.0.0.1:9", "b", "1.0.0").is_err());
    }

    #[tokio::test]
    async fn an_oci_repository_is_refused_before_any_download() {
        let charts = [ChartSource {
            name: "a".into(),
            version: "1.0.0".into(),
            repository: "oci://127.0.0.1:9/charts".into(),
            plain_http: false,
        }];
        let downloader = Downloader::new(false).unwrap();
        let err = vendor_charts(
            &downloader,
            &charts,
            None,
            &crate::observe::Silent,
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, Error::ChartIndex { chart, .. } if chart == "a"),
            "{err:?}"
        );
    }
}
