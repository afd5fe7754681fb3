//! The I/O half of the preflight: Keystone login, the catalog, and the GETs that fetch the facts.

use std::sync::Arc;

use serde_json::Value;

use super::check::{Facts, Flavor, Ident, Image, Network};
use super::needs::{ImageRef, Needs};
use super::{CloudConfig, Error, Options, Problem, Project, Quota, Report};

/// One endpoint of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub kind: String,
    pub interface: String,
    pub region: String,
    pub url: String,
}

/// The catalog of a token, flattened.
pub(crate) fn parse_catalog(token: &Value) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for s in token["catalog"].as_array().into_iter().flatten() {
        let kind = s["type"].as_str().unwrap_or_default();
        for e in s["endpoints"].as_array().into_iter().flatten() {
            let region = e["region_id"]
                .as_str()
                .or_else(|| e["region"].as_str())
                .unwrap_or_default();
            out.push(Endpoint {
                kind: kind.into(),
                interface: e["interface"].as_str().unwrap_or_default().into(),
                region: region.into(),
                url: e["url"]
                    .as_str()
                    .unwrap_or_default()
                    .trim_end_matches('/')
                    .into(),
            });
        }
    }
    out
}

/// The service types each API goes by in catalogs.
const ALIASES: &[(&str, &[&str])] = &[
    ("compute", &["compute"]),
    ("network", &["network"]),
    ("image", &["image"]),
    ("load-balancer", &["load-balancer"]),
    ("block-storage", &["block-storage", "volumev3", "volume"]),
];

/// The endpoint of `service` for the interface and region (the first region when none is set).
pub(crate) fn endpoint<'c>(
    catalog: &'c [Endpoint],
    service: &str,
    interface: &str,
    region: Option<&str>,
) -> Option<&'c Endpoint> {
    let kinds = ALIASES
        .iter()
        .find(|(s, _)| *s == service)
        .map_or(&[][..], |(_, k)| *k);
    kinds.iter().find_map(|k| {
        catalog.iter().find(|e| {
            e.kind == *k && e.interface == interface && region.is_none_or(|r| e.region == r)
        })
    })
}

/// The services the values need, with the field to blame when one is missing: compute, network
/// and image always; load-balancer with the API load balancer; block-storage with volumes.
pub(crate) fn required_services(needs: &Needs, cloud: &CloudConfig) -> Vec<(&'static str, String)> {
    let region = cloud.field("region_name");
    let mut out = vec![
        ("compute", region.clone()),
        ("network", region.clone()),
        ("image", region),
    ];
    if needs.load_balancer {
        out.push(("load-balancer", "apiServer.enableLoadBalancer".into()));
    }
    if let Some(v) = needs.groups.iter().flat_map(|g| &g.volumes).next() {
        out.push(("block-storage", v.field.clone()));
    }
    out
}

/// Catalog problems: the region is unknown (then nothing else can be checked), or a needed
/// service has no endpoint there.
pub(crate) fn catalog_problems(
    catalog: &[Endpoint],
    needs: &Needs,
    cloud: &CloudConfig,
) -> Vec<Problem> {
    let mut regions: Vec<&str> = catalog.iter().map(|e| e.region.as_str()).collect();
    regions.sort_unstable();
    regions.dedup();
    if let Some(r) = &cloud.region
        && !regions.contains(&r.as_str())
    {
        return vec![Problem {
            field: cloud.field("region_name"),
            message: format!(
                "region {r} is not in the catalog; regions: {}",
                if regions.is_empty() {
                    "none".to_string()
                } else {
                    regions.join(", ")
                }
            ),
        }];
    }
    let mut out = Vec::new();
    for (service, field) in required_services(needs, cloud) {
        if endpoint(catalog, service, &cloud.interface, cloud.region.as_deref()).is_none() {
            let mut types: Vec<&str> = catalog
                .iter()
                .filter(|e| cloud.region.as_deref().is_none_or(|r| e.region == r))
                .map(|e| e.kind.as_str())
                .collect();
            types.sort_unstable();
            types.dedup();
            out.push(Problem {
                field,
                message: format!(
                    "the catalog has no {service} endpoint (interface {}) in region {}; it has: {}",
                    cloud.interface,
                    cloud.region.as_deref().unwrap_or("(any)"),
                    types.join(", ")
                ),
            });
        }
    }
    out
}

/// A versioned base URL: the catalog URL with `version` appended unless it already ends in a
/// version (`/v2.1`, `/v3/<project>`, ...).
pub(crate) fn versioned(url: &str, version: &str) -> String {
    let has_version = url.rsplit('/').take(2).any(|seg| {
        seg.strip_prefix('v')
            .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.'))
    });
    if has_version {
        url.to_string()
    } else {
        format!("{url}/{version}")
    }
}

struct Session {
    http: reqwest::Client,
    token: zeroize::Zeroizing<String>,
}

fn http_client(cloud: &CloudConfig, options: &Options) -> Result<reqwest::Client, Error> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    if cloud.auth_url.starts_with("https://") {
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
    }
    if let Some(path) = &cloud.cacert {
        let path = match &options.base_dir {
            Some(base) if path.is_relative() => base.join(path),
            _ => path.clone(),
        };
        let pem = std::fs::read(&path).map_err(|source| Error::CaCert {
            path: path.clone(),
            source,
        })?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
            if roots.add(cert).is_ok() {
                added += 1;
            }
        }
        if added == 0 {
            return Err(Error::CaCertPem { path });
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Client {
        source: Box::new(e),
    })?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(options.timeout)
        .user_agent(concat!("capi-manage/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Client {
            source: Box::new(e),
        })
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(300).collect()
}

/// The outcome of a GET: the JSON, or the status when it was 403/404 (which callers may skip).
enum Got {
    Json(Value),
    Refused(u16),
}

impl Session {
    async fn get(&self, service: &'static str, url: &str) -> Result<Got, Error> {
        let resp = self
            .http
            .get(url)
            .header("X-Auth-Token", self.token.as_str())
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|source| Error::Request {
                service,
                url: url.into(),
                source,
            })?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|source| Error::Request {
            service,
            url: url.into(),
            source,
        })?;
        match status {
            200..=299 => serde_json::from_slice(&body)
                .map(Got::Json)
                .map_err(|source| Error::Decode {
                    service,
                    url: url.into(),
                    source,
                }),
            403 | 404 => Ok(Got::Refused(status)),
            _ => Err(Error::Status {
                service,
                url: url.into(),
                status,
                body: snippet(&body),
            }),
        }
    }

    /// A GET whose answer is required: 403/404 are errors too.
    async fn json(&self, service: &'static str, url: &str) -> Result<Value, Error> {
        match self.get(service, url).await? {
            Got::Json(v) => Ok(v),
            Got::Refused(status) => Err(Error::Status {
                service,
                url: url.into(),
                status,
                body: "refused".into(),
            }),
        }
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

/// `-1` (or a missing value) is unlimited.
fn limit(v: &Value) -> Option<u64> {
    v.as_i64().filter(|n| *n >= 0).map(|n| n as u64)
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// Logs in; `Ok(Err(problem))` when Keystone refuses the credential.
async fn login(
    http: &reqwest::Client,
    cloud: &CloudConfig,
) -> Result<Result<(zeroize::Zeroizing<String>, Value), Problem>, Error> {
    let url = format!("{}/auth/tokens", cloud.auth_url);
    let body = serde_json::to_vec(&cloud.token_request()).expect("JSON of strings");
    let resp = http
        .post(&url)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|source| Error::Request {
            service: "identity",
            url: url.clone(),
            source,
        })?;
    let status = resp.status().as_u16();
    let token = resp
        .headers()
        .get("X-Subject-Token")
        .and_then(|h| h.to_str().ok())
        .map(|t| zeroize::Zeroizing::new(t.to_string()));
    let bytes = resp.bytes().await.map_err(|source| Error::Request {
        service: "identity",
        url: url.clone(),
        source,
    })?;
    if status == 401
        || (status == 404 && matches!(cloud.auth, super::Auth::ApplicationCredential { .. }))
    {
        let (what, field) = match &cloud.auth {
            super::Auth::ApplicationCredential { id, name, .. } => (
                format!(
                    "the application credential {}",
                    id.as_ref().or(name.as_ref()).map_or("?", |s| s)
                ),
                cloud.field("auth.application_credential_secret"),
            ),
            super::Auth::Password { user, .. } => (
                format!(
                    "the password of {}",
                    user.name.as_ref().or(user.id.as_ref()).map_or("?", |s| s)
                ),
                cloud.field("auth.password"),
            ),
        };
        return Ok(Err(Problem {
            field,
            message: format!(
                "Keystone at {} refused {what} ({status}: {}); check the id and secret, and that it has not expired or been deleted",
                cloud.auth_url,
                snippet(&bytes)
            ),
        }));
    }
    if !(200..300).contains(&status) {
        return Err(Error::Status {
            service: "identity",
            url,
            status,
            body: snippet(&bytes),
        });
    }
    let doc: Value = serde_json::from_slice(&bytes).map_err(|source| Error::Decode {
        service: "identity",
        url: url.clone(),
        source,
    })?;
    let token = token.ok_or_else(|| Error::Status {
        service: "identity",
        url,
        status,
        body: "no X-Subject-Token header".into(),
    })?;
    Ok(Ok((token, doc["token"].clone())))
}

/// Logs in, checks the project and catalog, fetches the facts and evaluates them.
pub(crate) async fn run(
    cloud: &CloudConfig,
    needs: &Needs,
    options: &Options,
) -> Result<Report, Error> {
    let mut report = Report {
        region: cloud.region.clone(),
        ..Report::default()
    };
    if cloud.insecure {
        report.problems.push(Problem {
            field: cloud.field("verify"),
            message: "is false: the preflight does not skip TLS verification; give the CA in cacert instead".into(),
        });
        return Ok(report);
    }
    let http = http_client(cloud, options)?;
    let (token, doc) = match login(&http, cloud).await? {
        Ok(t) => t,
        Err(p) => {
            report.problems.push(p);
            return Ok(report);
        }
    };
    let project = Project {
        id: s(&doc["project"]["id"]),
        name: s(&doc["project"]["name"]),
    };
    if project.id.is_empty() {
        report.problems.push(Problem {
            field: cloud.field("auth"),
            message: "the token is not scoped to a project; the cluster needs a project-scoped credential".into(),
        });
        return Ok(report);
    }
    let want = &cloud.project;
    let mismatch = want.id.as_ref().is_some_and(|id| *id != project.id)
        || want.name.as_ref().is_some_and(|n| *n != project.name);
    if mismatch {
        report.problems.push(Problem {
            field: cloud.field(if want.id.is_some() {
                "auth.project_id"
            } else {
                "auth.project_name"
            }),
            message: format!(
                "names project {}, but the credential logs into project {} ({})",
                want.id.as_ref().or(want.name.as_ref()).map_or("?", |s| s),
                project.name,
                project.id
            ),
        });
    }
    report.project = Some(project.clone());
    let catalog = parse_catalog(&doc);
    let problems = catalog_problems(&catalog, needs, cloud);
    let region_unknown = problems.iter().any(|p| p.message.starts_with("region "));
    report.problems.extend(problems);
    if region_unknown {
        return Ok(report);
    }
    let session = Session { http, token };
    let url = |service| {
        endpoint(&catalog, service, &cloud.interface, cloud.region.as_deref())
            .map(|e| e.url.clone())
    };
    let mut facts = Facts::default();
    let mut checked = needs.clone();
    if let Some(compute) = url("compute") {
        fetch_compute(&session, &compute, needs, &mut facts).await?;
    } else {
        checked.groups.iter_mut().for_each(|g| g.zones.clear());
        checked.ssh_key = None;
    }
    match url("image") {
        Some(image) => fetch_images(&session, &versioned(&image, "v2"), needs, &mut facts).await?,
        None => checked.groups.iter_mut().for_each(|g| g.image = None),
    }
    if let Some(network) = url("network") {
        fetch_network(
            &session,
            &versioned(&network, "v2.0"),
            &project,
            needs,
            &mut facts,
            &mut report,
        )
        .await?;
    } else {
        checked.external_network_disabled = true;
        checked
            .groups
            .iter_mut()
            .for_each(|g| g.security_groups.clear());
    }
    if needs.load_balancer
        && let Some(lb) = url("load-balancer")
    {
        fetch_load_balancer(
            &session,
            &versioned(&lb, "v2"),
            &project,
            &mut facts,
            &mut report,
        )
        .await?;
    }
    if needs.volumes()
        && let Some(volume) = url("block-storage")
    {
        let base = if volume.contains("/v3") {
            volume
                .replace("%(project_id)s", &project.id)
                .replace("$(project_id)s", &project.id)
        } else {
            format!("{volume}/v3/{}", project.id)
        };
        fetch_volumes(&session, &base, &project, &mut facts, &mut report).await?;
    }
    let mut problems = super::check::evaluate(&checked, &facts);
    if url("compute").is_none() {
        problems.retain(|p| !p.field.ends_with("machineFlavor") && !p.message.starts_with("quota"));
    }
    if url("image").is_none() {
        problems.retain(|p| !p.field.ends_with("machineImage"));
    }
    report.problems.extend(problems);
    Ok(report)
}

async fn fetch_compute(
    session: &Session,
    base: &str,
    needs: &Needs,
    facts: &mut Facts,
) -> Result<(), Error> {
    let mut next = Some(format!("{base}/flavors/detail?is_public=None"));
    while let Some(url) = next.take() {
        let doc = session.json("compute", &url).await?;
        for f in doc["flavors"].as_array().into_iter().flatten() {
            facts.flavors.push(Flavor {
                id: s(&f["id"]),
                name: s(&f["name"]),
                vcpus: u(&f["vcpus"]),
                ram_mib: u(&f["ram"]),
                disk_gib: u(&f["disk"]),
            });
        }
        next = doc["flavors_links"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["rel"] == "next")
            .and_then(|l| l["href"].as_str())
            .map(str::to_string);
    }
    if needs.ssh_key.is_some() {
        let doc = session
            .json("compute", &format!("{base}/os-keypairs"))
            .await?;
        facts.key_pairs = doc["keypairs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|k| s(&k["keypair"]["name"]))
            .collect();
    }
    if needs.groups.iter().any(|g| !g.zones.is_empty()) {
        let doc = session
            .json("compute", &format!("{base}/os-availability-zone"))
            .await?;
        facts.compute_zones = doc["availabilityZoneInfo"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|z| z["zoneState"]["available"].as_bool().unwrap_or(false))
            .map(|z| s(&z["zoneName"]))
            .collect();
    }
    let doc = session.json("compute", &format!("{base}/limits")).await?;
    let a = &doc["limits"]["absolute"];
    for (resource, max, used) in [
        ("instances", "maxTotalInstances", "totalInstancesUsed"),
        ("cores", "maxTotalCores", "totalCoresUsed"),
        ("ram", "maxTotalRAMSize", "totalRAMUsed"),
    ] {
        facts.quotas.push(Quota {
            resource,
            limit: limit(&a[max]),
            used: u(&a[used]),
        });
    }
    Ok(())
}

fn image(v: &Value) -> Image {
    Image {
        id: s(&v["id"]),
        name: s(&v["name"]),
        status: s(&v["status"]),
        min_disk_gib: u(&v["min_disk"]),
    }
}

async fn fetch_images(
    session: &Session,
    base: &str,
    needs: &Needs,
    facts: &mut Facts,
) -> Result<(), Error> {
    let root = base.trim_end_matches("/v2").to_string();
    let mut next = Some(format!("{base}/images?limit=500"));
    while let Some(url) = next.take() {
        let doc = session.json("image", &url).await?;
        facts
            .images
            .extend(doc["images"].as_array().into_iter().flatten().map(image));
        next = doc["next"].as_str().map(|n| format!("{root}{n}"));
    }
    // Community images are left out of the default listing; ids are fetched one by one.
    for g in &needs.groups {
        match &g.image {
            Some(ImageRef::Id(id)) if !facts.images.iter().any(|i| i.id == id.value) => {
                if let Got::Json(v) = session
                    .get("image", &format!("{base}/images/{}", id.value))
                    .await?
                {
                    facts.images.push(image(&v));
                }
            }
            Some(ImageRef::Name(n)) if !facts.images.iter().any(|i| i.name == n.value) => {
                let url = format!("{base}/images?visibility=community&name={}", n.value);
                if let Got::Json(doc) = session.get("image", &url).await? {
                    facts
                        .images
                        .extend(doc["images"].as_array().into_iter().flatten().map(image));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn network(v: &Value) -> Network {
    Network {
        id: s(&v["id"]),
        name: s(&v["name"]),
        external: v["router:external"].as_bool().unwrap_or(false),
    }
}

async fn fetch_network(
    session: &Session,
    base: &str,
    project: &Project,
    needs: &Needs,
    facts: &mut Facts,
    report: &mut Report,
) -> Result<(), Error> {
    let doc = session
        .json("network", &format!("{base}/networks?router:external=true"))
        .await?;
    facts.networks = doc["networks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(network)
        .collect();
    if let Some(id) = &needs.external_network
        && !facts.networks.iter().any(|n| n.id == id.value)
        && let Got::Json(v) = session
            .get("network", &format!("{base}/networks/{}", id.value))
            .await?
    {
        facts.networks.push(network(&v["network"]));
    }
    if needs.groups.iter().any(|g| !g.security_groups.is_empty()) {
        let doc = session
            .json(
                "network",
                &format!("{base}/security-groups?fields=id&fields=name"),
            )
            .await?;
        facts.security_groups = doc["security_groups"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| Ident {
                id: s(&g["id"]),
                name: s(&g["name"]),
            })
            .collect();
    }
    let url = format!("{base}/quotas/{}/details", project.id);
    match session.get("network", &url).await? {
        Got::Json(doc) => {
            for (resource, key) in [
                ("ports", "port"),
                ("floating IPs", "floatingip"),
                ("security groups", "security_group"),
            ] {
                let q = &doc["quota"][key];
                facts.quotas.push(Quota {
                    resource,
                    limit: limit(&q["limit"]),
                    used: u(&q["used"]) + u(&q["reserved"]),
                });
            }
        }
        Got::Refused(status) => report.skipped.push(format!(
            "network quotas (ports, floating IPs, security groups): {url} answered {status}"
        )),
    }
    Ok(())
}

/// The `name` of each element of a JSON list (none when it is not a list).
fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|x| s(&x["name"]))
        .collect()
}

async fn fetch_load_balancer(
    session: &Session,
    base: &str,
    project: &Project,
    facts: &mut Facts,
    report: &mut Report,
) -> Result<(), Error> {
    let doc = session
        .json("load-balancer", &format!("{base}/lbaas/providers"))
        .await?;
    facts.load_balancer_providers = Some(names(&doc["providers"]));
    let url = format!("{base}/lbaas/quotas/{}", project.id);
    match session.get("load-balancer", &url).await? {
        Got::Json(doc) => {
            let q = &doc["quota"];
            let lim = if q["load_balancer"].is_null() {
                &q["loadbalancer"]
            } else {
                &q["load_balancer"]
            };
            let lbs = session
                .json(
                    "load-balancer",
                    &format!(
                        "{base}/lbaas/loadbalancers?project_id={}&fields=id",
                        project.id
                    ),
                )
                .await?;
            let used = lbs["loadbalancers"]
                .as_array()
                .map_or(0, |a| a.len() as u64);
            facts.quotas.push(Quota {
                resource: "load balancers",
                limit: limit(lim),
                used,
            });
        }
        Got::Refused(status) => report
            .skipped
            .push(format!("load balancer quota: {url} answered {status}")),
    }
    Ok(())
}

async fn fetch_volumes(
    session: &Session,
    base: &str,
    project: &Project,
    facts: &mut Facts,
    report: &mut Report,
) -> Result<(), Error> {
    let doc = session
        .json("block-storage", &format!("{base}/types"))
        .await?;
    facts.volume_types = Some(names(&doc["volume_types"]));
    let doc = session
        .json("block-storage", &format!("{base}/os-availability-zone"))
        .await?;
    facts.volume_zones = Some(
        doc["availabilityZoneInfo"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|z| z["zoneState"]["available"].as_bool().unwrap_or(false))
            .map(|z| s(&z["zoneName"]))
            .collect(),
    );
    let url = format!("{base}/os-quota-sets/{}?usage=true", project.id);
    match session.get("block-storage", &url).await? {
        Got::Json(doc) => {
            for (resource, key) in [("volumes", "volumes"), ("volume gigabytes", "gigabytes")] {
                let q = &doc["quota_set"][key];
                facts.quotas.push(Quota {
                    resource,
                    limit: limit(&q["limit"]),
                    used: u(&q["in_use"]) + u(&q["reserved"]),
                });
            }
        }
        Got::Refused(status) => report
            .skipped
            .push(format!("volume quotas: {url} answered {status}")),
    }
    Ok(())
}
