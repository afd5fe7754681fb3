//! The OpenStack on loopback (`scripts/prereqs/openstack.sh start`), and one fresh project per
//! test: a project, a user with the roles CAPO needs, and an application credential, made
//! through the admin cloud with Keystone's v3 API and removed again when dropped.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};

/// The running stack: its `clouds.yaml` and the admin login in it.
pub struct OpenStack {
    /// The `clouds.yaml` the start script wrote.
    pub clouds_yaml: PathBuf,
    /// Keystone's v3 URL.
    pub auth_url: String,
    admin: Value,
}

/// Serializes the Keystone writes of concurrent tests (its sqlite database otherwise answers
/// some of them with lock retries that duplicate an insert).
static KEYSTONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

thread_local! {
    static SETTING_UP: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks this thread as holding [`KEYSTONE`] while it sets up a project.
struct SettingUp;

impl SettingUp {
    fn enter() -> SettingUp {
        SETTING_UP.with(|s| s.set(true));
        SettingUp
    }
}

impl Drop for SettingUp {
    fn drop(&mut self) {
        SETTING_UP.with(|s| s.set(false));
    }
}

/// A plain-HTTP client (the stack listens on loopback without TLS, and no proxy stands
/// between); reqwest is built here without a process-wide rustls provider, so it gets ring's
/// explicitly.
pub(super) fn http() -> reqwest::Client {
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap()
}

const START: &str = "scripts/prereqs/openstack.sh start";

pub fn clouds_yaml_path() -> PathBuf {
    if let Some(p) = std::env::var_os("CAPI_MANAGE_TEST_OPENSTACK") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache")
        });
    cache.join("capi-manage/openstack/clouds.yaml")
}

impl OpenStack {
    /// The stack, found through `$CAPI_MANAGE_TEST_OPENSTACK` (a clouds.yaml path) or the start
    /// script's state folder; panics naming the command that starts it.
    pub fn get() -> &'static OpenStack {
        static STACK: OnceLock<OpenStack> = OnceLock::new();
        STACK.get_or_init(|| {
            let path = clouds_yaml_path();
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!(
                    "missing test prerequisite: the OpenStack on loopback ({}: {e}); run `{START}` \
                     (or set CAPI_MANAGE_TEST_OPENSTACK to the clouds.yaml of a running stack)",
                    path.display()
                )
            });
            let doc: Value = serde_yaml_ng::from_str(&text).expect("clouds.yaml is YAML");
            let admin = doc["clouds"]["capo-admin"]["auth"].clone();
            assert!(admin.is_object(), "{}: no cloud capo-admin", path.display());
            let auth_url = admin["auth_url"].as_str().expect("auth_url").trim_end_matches('/').to_string();
            let up = std::net::TcpStream::connect_timeout(
                &"127.0.0.1:5000".parse().unwrap(),
                std::time::Duration::from_secs(3),
            );
            assert!(
                up.is_ok(),
                "missing test prerequisite: the OpenStack on loopback does not answer on 127.0.0.1:5000; run `{START}`"
            );
            OpenStack {
                clouds_yaml: path,
                auth_url,
                admin,
            }
        })
    }

    /// A fresh project `<name>-<pid>-<n>` with a user (roles member and load-balancer_member)
    /// and an application credential of that user.
    pub async fn project(&self, name: &str) -> TestProject {
        static N: AtomicU32 = AtomicU32::new(0);
        // Keystone on sqlite: one project set-up (or clean-up) at a time. A panic below drops
        // the half-made project while this thread holds the lock: its clean-up then skips it.
        let _one = KEYSTONE.lock().await;
        let _setting_up = SettingUp::enter();
        let unique = format!(
            "cm-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let http = http();
        let admin = Session::admin(&http, self).await;
        let project = admin
            .post(
                "identity",
                "/projects",
                json!({"project": {"name": unique, "domain_id": "default"}}),
            )
            .await["project"]["id"]
            .as_str()
            .expect("project id")
            .to_string();
        let password = format!("pw-{unique}");
        let user = admin
            .post(
                "identity",
                "/users",
                json!({"user": {"name": unique, "domain_id": "default", "password": password, "default_project_id": project}}),
            )
            .await["user"]["id"]
            .as_str()
            .expect("user id")
            .to_string();
        let mut out = TestProject {
            name: unique.clone(),
            id: project.clone(),
            user_id: user.clone(),
            password: password.clone(),
            auth_url: self.auth_url.clone(),
            app_cred_id: String::new(),
            app_cred_secret: String::new(),
            admin,
        };
        for role in ["member", "load-balancer_member"] {
            let roles = out
                .admin
                .get("identity", &format!("/roles?name={role}"))
                .await;
            let role_id = roles["roles"][0]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("role {role}: {roles}"));
            out.admin
                .put(
                    "identity",
                    &format!("/projects/{project}/users/{user}/roles/{role_id}"),
                )
                .await;
        }
        // An application credential is made with the user's own token.
        let user_token = token(
            &http,
            &self.auth_url,
            json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {"id": user, "password": password}}},
                "scope": {"project": {"id": project}},
            }}),
        )
        .await
        .0;
        // Our own secret: a create that Keystone retried internally (409 on the name) still
        // leaves a credential we can use.
        let secret = format!("secret-{unique}");
        // Keystone on sqlite may not see the role assignment made a moment ago yet ("Could not
        // find role assignment"): a few more tries.
        let mut attempt = 0;
        let (status, mut body) = loop {
            attempt += 1;
            let resp = http
                .post(format!(
                    "{}/users/{user}/application_credentials",
                    self.auth_url
                ))
                .header("X-Auth-Token", &user_token)
                .header("Content-Type", "application/json")
                .body(
                    json!({"application_credential": {"name": unique, "secret": secret}})
                        .to_string(),
                )
                .send()
                .await
                .expect("application credential");
            let status = resp.status();
            let body: Value =
                serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or_default();
            let lagging = status == reqwest::StatusCode::BAD_REQUEST
                && body.to_string().contains("role assignment");
            if !lagging || attempt == 5 {
                break (status, body);
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        };
        if status == reqwest::StatusCode::CONFLICT {
            let resp = http
                .get(format!(
                    "{}/users/{user}/application_credentials?name={unique}",
                    self.auth_url
                ))
                .header("X-Auth-Token", &user_token)
                .send()
                .await
                .expect("application credentials");
            let list: Value =
                serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or_default();
            body = json!({"application_credential": list["application_credentials"][0]});
        }
        out.app_cred_id = body["application_credential"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("application credential of {unique}: {status} {body}"))
            .into();
        out.app_cred_secret = secret;
        out
    }
}

/// Logs in to Keystone: the token, and the token's body (its project, catalog, ...).
pub(super) async fn token(http: &reqwest::Client, auth_url: &str, body: Value) -> (String, Value) {
    let resp = http
        .post(format!("{auth_url}/auth/tokens"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("Keystone answers");
    let status = resp.status();
    let token = resp
        .headers()
        .get("X-Subject-Token")
        .map(|t| t.to_str().unwrap().to_string());
    let doc: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or_default();
    let token = token.unwrap_or_else(|| panic!("login failed: {status} {doc}"));
    (token, doc["token"].clone())
}

/// A logged-in session with the catalog's public endpoints: the project-scoped admin (the
/// `capo-admin` cloud), or a test project's user.
pub struct Session {
    http: reqwest::Client,
    token: String,
    endpoints: Vec<(String, String)>,
}

impl Session {
    async fn admin(http: &reqwest::Client, stack: &OpenStack) -> Session {
        let a = &stack.admin;
        let (token, doc) = token(
            http,
            &stack.auth_url,
            json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": a["username"], "password": a["password"],
                    "domain": {"name": a["user_domain_name"].as_str().unwrap_or("Default")}}}},
                "scope": {"project": {"name": a["project_name"],
                    "domain": {"name": a["project_domain_name"].as_str().unwrap_or("Default")}}},
            }}),
        )
        .await;
        Session::from_token(http, token, &doc)
    }

    fn from_token(http: &reqwest::Client, token: String, doc: &Value) -> Session {
        let mut endpoints = Vec::new();
        for s in doc["catalog"].as_array().into_iter().flatten() {
            for e in s["endpoints"].as_array().into_iter().flatten() {
                if e["interface"] == "public" {
                    endpoints.push((
                        s["type"].as_str().unwrap().to_string(),
                        e["url"].as_str().unwrap().trim_end_matches('/').to_string(),
                    ));
                }
            }
        }
        Session {
            http: http.clone(),
            token,
            endpoints,
        }
    }

    /// The versioned base URL of a service: identity, compute, network, image, load-balancer.
    pub fn base(&self, service: &str) -> String {
        let url = self
            .endpoints
            .iter()
            .find(|(t, _)| t == service)
            .unwrap_or_else(|| panic!("no {service} in the catalog"))
            .1
            .clone();
        match service {
            "network" => format!("{url}/v2.0"),
            "image" | "load-balancer" => format!("{url}/v2"),
            _ => url,
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        service: &str,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let url = format!("{}{path}", self.base(service));
        let mut req = self
            .http
            .request(method.clone(), &url)
            .header("X-Auth-Token", &self.token);
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status();
        let bytes = resp.bytes().await.unwrap();
        assert!(
            status.is_success() || (method == reqwest::Method::DELETE && status == 404),
            "{method} {url}: {status} {}",
            String::from_utf8_lossy(&bytes)
        );
        serde_json::from_slice(&bytes).unwrap_or_default()
    }

    /// GET a service path as admin.
    pub async fn get(&self, service: &str, path: &str) -> Value {
        self.send(reqwest::Method::GET, service, path, None).await
    }
    /// POST a JSON body as admin.
    pub async fn post(&self, service: &str, path: &str, body: Value) -> Value {
        self.send(reqwest::Method::POST, service, path, Some(body))
            .await
    }
    /// PUT (with or without a body) as admin.
    pub async fn put(&self, service: &str, path: &str) -> Value {
        self.send(reqwest::Method::PUT, service, path, None).await
    }
    /// PUT a JSON body as admin.
    pub async fn put_json(&self, service: &str, path: &str, body: Value) -> Value {
        self.send(reqwest::Method::PUT, service, path, Some(body))
            .await
    }
    /// DELETE as admin (404 is fine).
    pub async fn delete(&self, service: &str, path: &str) {
        self.send(reqwest::Method::DELETE, service, path, None)
            .await;
    }
}

/// A project of one test; dropped, it deletes its networks, images, quotas, user and project.
pub struct TestProject {
    /// The project's (unique) name; also the user's and the credential's.
    pub name: String,
    /// The project id.
    pub id: String,
    /// The user id.
    pub user_id: String,
    /// The user's password.
    pub password: String,
    /// Keystone's v3 URL.
    pub auth_url: String,
    /// The application credential's id.
    pub app_cred_id: String,
    /// Its secret.
    pub app_cred_secret: String,
    /// The admin session that made it (for quotas and objects the test sets up).
    pub admin: Session,
}

impl TestProject {
    /// A `clouds.yaml` whose cloud `openstack` is this project's application credential.
    pub fn clouds_yaml(&self) -> String {
        format!(
            "clouds:\n  openstack:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: {}\n      application_credential_id: {}\n      application_credential_secret: {}\n    region_name: RegionOne\n    interface: public\n    identity_api_version: 3\n",
            self.auth_url, self.app_cred_id, self.app_cred_secret
        )
    }

    /// A `clouds.yaml` whose cloud `openstack` is the user's password, scoped to the project.
    pub fn password_clouds_yaml(&self) -> String {
        format!(
            "clouds:\n  openstack:\n    auth_type: password\n    auth:\n      auth_url: {}\n      username: {}\n      password: {}\n      user_domain_name: Default\n      project_name: {}\n      project_domain_name: Default\n    region_name: RegionOne\n",
            self.auth_url, self.name, self.password, self.name
        )
    }

    /// A session as the project's user (its application credential).
    pub async fn user(&self) -> Session {
        let http = http();
        let (token, doc) = token(
            &http,
            &self.auth_url,
            json!({"auth": {"identity": {"methods": ["application_credential"],
                "application_credential": {"id": self.app_cred_id, "secret": self.app_cred_secret}}}}),
        )
        .await;
        Session::from_token(&http, token, &doc)
    }

    async fn delete_key_pairs(&self) {
        let user = self.user().await;
        let kps = user.get("compute", "/os-keypairs").await;
        for k in kps["keypairs"].as_array().into_iter().flatten() {
            let name = k["keypair"]["name"].as_str().unwrap();
            user.delete("compute", &format!("/os-keypairs/{name}"))
                .await;
        }
    }

    async fn cleanup(&self, lock: bool) {
        let _one = if lock {
            Some(KEYSTONE.lock().await)
        } else {
            None
        };
        if !self.app_cred_id.is_empty() {
            self.delete_key_pairs().await;
        }
        let a = &self.admin;
        let p = &self.id;
        let nets = a.get("network", &format!("/networks?project_id={p}")).await;
        for n in nets["networks"].as_array().into_iter().flatten() {
            a.delete(
                "network",
                &format!("/networks/{}", n["id"].as_str().unwrap()),
            )
            .await;
        }
        let images = a.get("image", &format!("/images?owner={p}")).await;
        for i in images["images"].as_array().into_iter().flatten() {
            a.delete("image", &format!("/images/{}", i["id"].as_str().unwrap()))
                .await;
        }
        a.delete("compute", &format!("/os-quota-sets/{p}")).await;
        a.delete("network", &format!("/quotas/{p}")).await;
        // The credential first, through its own API: deleting the user drops it without its
        // role rows on sqlite (no foreign keys), and the next credential reusing its row id
        // then fails with 409.
        if !self.app_cred_id.is_empty() {
            let (user_token, _) = token(
                &a.http,
                &self.auth_url,
                json!({"auth": {"identity": {"methods": ["password"],
                    "password": {"user": {"id": self.user_id, "password": self.password}}}}}),
            )
            .await;
            let url = format!(
                "{}/users/{}/application_credentials/{}",
                self.auth_url, self.user_id, self.app_cred_id
            );
            let resp = a
                .http
                .delete(&url)
                .header("X-Auth-Token", user_token)
                .send()
                .await;
            let status = resp.map(|r| r.status());
            assert!(
                matches!(&status, Ok(s) if s.is_success() || s.as_u16() == 404),
                "DELETE {url}: {status:?}"
            );
        }
        a.delete("identity", &format!("/users/{}", self.user_id))
            .await;
        a.delete("identity", &format!("/projects/{p}")).await;
    }
}

impl Drop for TestProject {
    fn drop(&mut self) {
        if self.id.is_empty() {
            return;
        }
        // Async cleanup on a runtime of its own (Drop runs inside the test's runtime).
        let lock = !SETTING_UP.with(|s| s.get());
        let done = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(self.cleanup(lock));
                })
                .join()
        });
        if done.is_err() && !std::thread::panicking() {
            panic!("cleaning up test project {} failed (see above)", self.name);
        }
    }
}
