//! The loopback OpenStack as the end-to-end test sees it through the OpenStack APIs: the
//! application credential the cluster's `credentials.yaml` carries, the machine image the
//! values name, and an inventory of one cluster's resources (what CAPO created), read as admin.
//!
//! The stack is the one `scripts/prereqs/openstack.sh start` runs (see `super::openstack`);
//! each test that builds a cluster on it gets a project of its own from there.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::openstack::{http, token};

/// The clouds.yaml of the loopback stack (found as [`super::openstack::OpenStack::get`] finds
/// it, which panics naming the command that starts it when it is missing).
pub fn clouds_yaml() -> (PathBuf, Value) {
    let _stack = super::openstack::OpenStack::get();
    let path = super::openstack::clouds_yaml_path();
    let text = std::fs::read_to_string(&path).expect("clouds.yaml");
    (path, serde_yaml_ng::from_str(&text).expect("clouds.yaml"))
}

/// The application credential a user writes into `credentials.yaml`.
pub struct AppCredential {
    pub auth_url: String,
    pub id: String,
    pub secret: String,
}

impl From<&super::openstack::TestProject> for AppCredential {
    fn from(p: &super::openstack::TestProject) -> Self {
        AppCredential {
            auth_url: p.auth_url.clone(),
            id: p.app_cred_id.clone(),
            secret: p.app_cred_secret.clone(),
        }
    }
}

/// An admin session (cloud `capo-admin`): a token and the public endpoints of its catalog.
#[derive(Clone)]
pub struct Admin {
    http: reqwest::Client,
    token: String,
    endpoints: Arc<Vec<(String, String)>>,
    /// The project whose resources the inventories count.
    pub project_id: String,
}

impl Admin {
    /// An admin session whose inventories look at project `project_id`.
    pub async fn login(project_id: &str) -> Admin {
        let (path, clouds) = clouds_yaml();
        let a = &clouds["clouds"]["capo-admin"]["auth"];
        let auth_url = a["auth_url"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: clouds.capo-admin missing", path.display()));
        let http = http();
        let (tok, body) = token(&http, auth_url, json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": a["username"], "password": a["password"],
                "domain": {"name": a["user_domain_name"]}}}},
            "scope": {"project": {"name": a["project_name"], "domain": {"name": a["project_domain_name"]}}}}}))
        .await;
        let endpoints = body["catalog"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| {
                let ty = s["type"].as_str().unwrap_or_default().to_string();
                s["endpoints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|e| e["interface"] == "public")
                    .map(move |e| (ty.clone(), e["url"].as_str().unwrap_or_default().into()))
            })
            .collect();
        let project_id = project_id.to_string();
        Admin {
            http,
            token: tok,
            endpoints: Arc::new(endpoints),
            project_id,
        }
    }

    fn url(&self, service: &str, path: &str) -> String {
        let base = self
            .endpoints
            .iter()
            .find(|(t, _)| t == service)
            .unwrap_or_else(|| panic!("no public {service} endpoint in the catalog"))
            .1
            .trim_end_matches('/');
        let base = match service {
            "network" if !base.ends_with("/v2.0") => format!("{base}/v2.0"),
            "image" if !base.ends_with("/v2") => format!("{base}/v2"),
            _ => base.to_string(),
        };
        format!("{base}{path}")
    }

    /// One API call; a 5xx is retried (the loopback services keep sqlite databases and answer
    /// `database is locked` or `disk I/O error` under load), a DELETE's 404 is success.
    async fn call(&self, method: reqwest::Method, url: &str, body: Option<Value>) -> Value {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .http
                .request(method.clone(), url)
                .header("x-auth-token", &self.token)
                .header("openstack-api-version", "compute 2.53");
            if let Some(b) = &body {
                req = req
                    .header("content-type", "application/json")
                    .body(b.to_string());
            }
            let r = req
                .send()
                .await
                .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
            let status = r.status();
            let bytes = r.bytes().await.unwrap();
            if status.is_server_error() && attempt < 10 {
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
            if method == reqwest::Method::DELETE && status == reqwest::StatusCode::NOT_FOUND {
                return Value::Null;
            }
            assert!(
                status.is_success(),
                "{method} {url}: {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
            return serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        }
    }

    async fn get(&self, service: &str, path: &str, key: &str) -> Vec<Value> {
        let v = self
            .call(reqwest::Method::GET, &self.url(service, path), None)
            .await;
        v[key].as_array().cloned().unwrap_or_default()
    }

    /// The id of the active image `name`, uploading a 1 MiB raw image (public) when the cloud
    /// has none: the machine image the cluster's values name.
    pub async fn ensure_image(&self, name: &str) -> String {
        let found = self
            .get(
                "image",
                &format!("/images?name={name}&status=active"),
                "images",
            )
            .await;
        if let Some(i) = found.first() {
            return i["id"].as_str().unwrap().to_string();
        }
        let created = self
            .call(
                reqwest::Method::POST,
                &self.url("image", "/images"),
                Some(
                    json!({"name": name, "disk_format": "raw", "container_format": "bare",
                    "visibility": "public", "min_disk": 1}),
                ),
            )
            .await;
        let id = created["id"].as_str().unwrap().to_string();
        // Glance inspects the data against disk_format: zeros are a valid raw image.
        let r = self
            .http
            .put(self.url("image", &format!("/images/{id}/file")))
            .header("x-auth-token", &self.token)
            .header("content-type", "application/octet-stream")
            .body(vec![0u8; 1 << 20])
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "upload image {name}: {}",
            r.status()
        );
        id
    }

    /// Deletes the ports Octavia's noop worker leaves behind (device_owner `Octavia`, the load
    /// balancers' VIP ports) on `networks`, once no load balancer of the project is left there.
    pub async fn delete_leaked_vip_ports(&self, networks: &BTreeSet<String>) -> usize {
        let lbs = self
            .get(
                "load-balancer",
                &format!("/v2/lbaas/loadbalancers?project_id={}", self.project_id),
                "loadbalancers",
            )
            .await;
        let mut n = 0;
        for p in self
            .get("network", "/ports?device_owner=Octavia", "ports")
            .await
        {
            let net = p["network_id"].as_str().unwrap_or_default();
            let vip_in_use = lbs
                .iter()
                .any(|lb| lb["vip_port_id"] == p["id"] || lb["vip_network_id"] == net);
            if networks.contains(net) && !vip_in_use {
                let url = self.url("network", &format!("/ports/{}", p["id"].as_str().unwrap()));
                self.call(reqwest::Method::DELETE, &url, None).await;
                n += 1;
            }
        }
        n
    }

    /// Every resource of the project that belongs to the cluster whose CAPO resource name is
    /// `<namespace>-<cluster>` and whose machines are named `<cluster>-...`.
    pub async fn inventory(&self, namespace: &str, cluster: &str) -> Inventory {
        let p = &self.project_id;
        // CAPO names the cluster's network, subnet, router and load balancer
        // `k8s-clusterapi-cluster-<namespace>-<cluster>[-suffix]`, its security groups
        // `k8s-cluster-<namespace>-<cluster>-secgroup-<role>`.
        let prefix = format!("k8s-clusterapi-cluster-{namespace}-{cluster}");
        let sg_prefix = format!("k8s-cluster-{namespace}-{cluster}-secgroup-");
        let ours = |v: &Value| {
            v["name"].as_str().is_some_and(|n| {
                n == prefix || n.starts_with(&format!("{prefix}-")) || n.starts_with(&sg_prefix)
            })
        };
        let q = format!("?project_id={p}");
        let named = |items: Vec<Value>| -> Vec<Value> { items.into_iter().filter(ours).collect() };
        let networks = named(
            self.get("network", &format!("/networks{q}"), "networks")
                .await,
        );
        let subnets = named(
            self.get("network", &format!("/subnets{q}"), "subnets")
                .await,
        );
        let routers = named(
            self.get("network", &format!("/routers{q}"), "routers")
                .await,
        );
        let security_groups = named(
            self.get(
                "network",
                &format!("/security-groups{q}"),
                "security_groups",
            )
            .await,
        );
        let load_balancers = named(
            self.get(
                "load-balancer",
                &format!("/v2/lbaas/loadbalancers{q}"),
                "loadbalancers",
            )
            .await,
        );
        let servers: Vec<Value> = self
            .get(
                "compute",
                &format!("/servers/detail?all_tenants=1&project_id={p}"),
                "servers",
            )
            .await
            .into_iter()
            .filter(|s| {
                s["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(&format!("{cluster}-")))
            })
            .collect();
        let ids = |v: &[Value]| -> BTreeSet<String> {
            v.iter()
                .filter_map(|o| o["id"].as_str().map(str::to_string))
                .collect()
        };
        let (net_ids, server_ids, router_ids) = (ids(&networks), ids(&servers), ids(&routers));
        // The cluster's ports: on its networks (servers, the VIP, router interfaces), and the
        // ports of its servers and routers elsewhere (the router's gateway).
        let ports: Vec<Value> = self
            .get("network", "/ports", "ports")
            .await
            .into_iter()
            .filter(|port| {
                let s = |k: &str| port[k].as_str().unwrap_or_default().to_string();
                net_ids.contains(&s("network_id"))
                    || server_ids.contains(&s("device_id"))
                    || router_ids.contains(&s("device_id"))
            })
            .collect();
        let port_ids = ids(&ports);
        let description =
            format!("Created by cluster-api-provider-openstack cluster {namespace}-{cluster}");
        let floating_ips: Vec<Value> = self
            .get("network", &format!("/floatingips{q}"), "floatingips")
            .await
            .into_iter()
            .filter(|f| {
                f["description"] == description.as_str()
                    || f["port_id"]
                        .as_str()
                        .is_some_and(|id| port_ids.contains(id))
            })
            .collect();
        let set = |v: &[Value]| -> BTreeSet<String> {
            v.iter()
                .map(|o| {
                    let state = ["status", "provisioning_status"]
                        .iter()
                        .find_map(|k| o[k].as_str())
                        .unwrap_or("-");
                    format!("{} {state}", o["id"].as_str().unwrap_or("?"))
                })
                .collect()
        };
        Inventory {
            servers: set(&servers),
            ports: set(&ports),
            routers: set(&routers),
            networks: set(&networks),
            subnets: set(&subnets),
            security_groups: set(&security_groups),
            load_balancers: set(&load_balancers),
            floating_ips: set(&floating_ips),
        }
    }
}

/// A cluster's OpenStack resources, each as `<id> <status>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inventory {
    pub servers: BTreeSet<String>,
    pub ports: BTreeSet<String>,
    pub routers: BTreeSet<String>,
    pub networks: BTreeSet<String>,
    pub subnets: BTreeSet<String>,
    pub security_groups: BTreeSet<String>,
    pub load_balancers: BTreeSet<String>,
    pub floating_ips: BTreeSet<String>,
}

impl Inventory {
    fn all(&self) -> [(&'static str, &BTreeSet<String>); 8] {
        [
            ("servers", &self.servers),
            ("ports", &self.ports),
            ("routers", &self.routers),
            ("networks", &self.networks),
            ("subnets", &self.subnets),
            ("security groups", &self.security_groups),
            ("load balancers", &self.load_balancers),
            ("floating IPs", &self.floating_ips),
        ]
    }

    pub fn total(&self) -> usize {
        self.all().iter().map(|(_, s)| s.len()).sum()
    }

    /// The network ids (for the VIP-port cleanup).
    pub fn network_ids(&self) -> BTreeSet<String> {
        self.networks
            .iter()
            .filter_map(|n| n.split(' ').next().map(str::to_string))
            .collect()
    }

    /// Without states: the identities only.
    pub fn ids(&self) -> Vec<BTreeSet<String>> {
        self.all()
            .iter()
            .map(|(_, s)| {
                s.iter()
                    .filter_map(|e| e.split(' ').next().map(str::to_string))
                    .collect()
            })
            .collect()
    }
}

impl fmt::Display for Inventory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .all()
            .iter()
            .map(|(k, s)| {
                // Subnets and security groups have no status.
                if s.iter().all(|e| e.ends_with(" -")) {
                    return format!("{k} {}", s.len());
                }
                let active = s.iter().filter(|e| e.ends_with(" ACTIVE")).count();
                format!("{k} {} ({active} ACTIVE)", s.len())
            })
            .collect();
        write!(f, "{}", parts.join(", "))
    }
}
