//! Real git servers on loopback for the git tests and the push bench: bare repositories,
//! Debian git's `git http-backend` behind a small HTTP/1.1 server, and OpenSSH's sshd with a
//! test key. Tests may run the real git and sshd; the library never does.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const FIX: &str = "run `sudo scripts/prereqs/git.sh` (installs git and openssh-server)";

/// Panics, naming the command that installs it, when a prerequisite program is missing.
pub fn require(program: &str) -> PathBuf {
    let candidates = [
        PathBuf::from(program),
        Path::new("/usr/bin").join(program),
        Path::new("/usr/sbin").join(program),
        Path::new("/usr/lib/git-core").join(program),
    ];
    if let Some(p) = candidates.iter().find(|p| p.is_absolute() && p.is_file()) {
        return p.clone();
    }
    if let Ok(out) = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
    {
        let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && !path.is_empty() {
            return PathBuf::from(path);
        }
    }
    panic!("missing test prerequisite `{program}`: {FIX}");
}

/// Runs git with a clean, deterministic environment; panics with its stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_command(dir, args).output().expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("git prints UTF-8")
}

/// A git command in `dir` isolated from the user's and system configuration.
pub fn git_command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(require("git"));
    cmd.current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_NAME", "Test Committer")
        .env("GIT_COMMITTER_EMAIL", "committer@example.com")
        .env("GIT_TERMINAL_PROMPT", "0");
    cmd
}

/// `git init --bare -b main` at `dir/name`.
pub fn bare_repo(dir: &Path, name: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    git(dir, &["init", "-q", "--bare", "-b", "main", name]);
    path
}

/// A work repository at `dir/name` on branch `main` with a local identity, no commits.
pub fn work_repo(dir: &Path, name: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    git(dir, &["init", "-q", "-b", "main", name]);
    git(&path, &["config", "user.name", "Capi Tester"]);
    git(&path, &["config", "user.email", "capi@example.com"]);
    path
}

/// Fills `repo` (a work repository) with one commit of `dirs` x `files` unique blobs through
/// `git fast-import`, so the commit has `dirs * files + dirs + 2` objects, and checks it out.
pub fn fill_large(repo: &Path, dirs: usize, files: usize) {
    let mut script = String::new();
    let mut mark = 0;
    for d in 0..dirs {
        for f in 0..files {
            mark += 1;
            let data = format!("blob {d}/{f}: {}\n", "x".repeat((d * 7 + f) % 50));
            script.push_str(&format!(
                "blob\nmark :{mark}\ndata {}\n{data}\n",
                data.len()
            ));
        }
    }
    script.push_str("commit refs/heads/main\ncommitter Test <t@example.com> 1700000000 +0000\ndata 13\nlarge commit\n");
    let mut m = 0;
    for d in 0..dirs {
        for f in 0..files {
            m += 1;
            script.push_str(&format!("M 100644 :{m} dir{d:03}/file{f:03}.txt\n"));
        }
    }
    script.push('\n');
    let mut child = git_command(repo, &["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "fast-import failed");
    git(repo, &["reset", "-q", "--hard", "main"]);
}

/// `git fsck --strict` of `repo`; panics with its output unless clean.
pub fn fsck_strict(repo: &Path) {
    let out = git_command(repo, &["fsck", "--strict", "--no-dangling"])
        .output()
        .expect("git fsck");
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "git fsck --strict in {}: {}{}",
        repo.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The commit a ref points to in `repo`, `None` if it does not exist.
pub fn rev_parse(repo: &Path, rev: &str) -> Option<String> {
    let out = git_command(repo, &["rev-parse", "--verify", "-q", rev])
        .output()
        .expect("git rev-parse");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn wait_for_port(port: u16, what: &str, child: &mut Option<&mut Child>) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Some(child) = child.as_deref_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("{what} exited with {status}: {err}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `git http-backend` (CGI) behind a minimal HTTP/1.1 server on 127.0.0.1, serving the bare
/// repositories under `root` at `/<name>`.
pub struct HttpServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Size of the body of the last `git-receive-pack` POST (command + pack).
    pub last_push_body: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl HttpServer {
    /// Starts serving `root`; with `credentials`, requests need them as basic auth.
    pub fn start(root: &Path, credentials: Option<(&str, &str)>) -> HttpServer {
        let backend = require("git-http-backend");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let last_push_body = Arc::new(AtomicU64::new(0));
        let expected = credentials.map(|(u, p)| format!("Basic {}", base64(&format!("{u}:{p}"))));
        let root = root.to_owned();
        {
            let stop = stop.clone();
            let last = last_push_body.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (root, backend, expected, last) = (
                        root.clone(),
                        backend.clone(),
                        expected.clone(),
                        last.clone(),
                    );
                    std::thread::spawn(move || {
                        let _ = serve(stream, &root, &backend, expected.as_deref(), &last);
                    });
                }
            });
        }
        HttpServer {
            base: format!("http://127.0.0.1:{port}"),
            last_push_body,
            stop,
            port,
        }
    }

    /// The URL of repository `name`.
    pub fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(
    stream: TcpStream,
    root: &Path,
    backend: &Path,
    expected_auth: Option<&str>,
    last_push_body: &AtomicU64,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or("").to_owned(),
            parts.next().unwrap_or("").to_owned(),
        );
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let mut body = Vec::new();
        if let Some(len) = header("content-length") {
            body.resize(len.parse().unwrap_or(0), 0);
            reader.read_exact(&mut body)?;
        } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size)?;
                let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; size + 2];
                reader.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        }
        if let Some(expected) = expected_auth
            && header("authorization") != Some(expected)
        {
            writer.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\n\r\n",
            )?;
            continue;
        }
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        if path.ends_with("/git-receive-pack") {
            last_push_body.store(body.len() as u64, Ordering::Relaxed);
        }
        let mut child = Command::new(backend)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("GIT_PROJECT_ROOT", root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("REQUEST_METHOD", &method)
            .env("PATH_INFO", path)
            .env("QUERY_STRING", query)
            .env("CONTENT_TYPE", header("content-type").unwrap_or(""))
            .env("CONTENT_LENGTH", body.len().to_string())
            .env("REMOTE_USER", "tester")
            .env("REMOTE_ADDR", "127.0.0.1")
            .env("GIT_PROTOCOL", header("git-protocol").unwrap_or(""))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut stdin = child.stdin.take().unwrap();
        let writer_thread = std::thread::spawn(move || {
            let _ = stdin.write_all(&body);
        });
        let mut out = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut out)?;
        let _ = writer_thread.join();
        child.wait()?;
        let split = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| (p, 4))
            .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|p| (p, 2)));
        let (head, body) = match split {
            Some((p, n)) => (
                String::from_utf8_lossy(&out[..p]).into_owned(),
                &out[p + n..],
            ),
            None => (String::new(), &out[..]),
        };
        let mut status = "200 OK".to_owned();
        let mut response = Vec::new();
        for line in head.lines() {
            if let Some(s) = line.strip_prefix("Status:") {
                status = s.trim().to_owned();
            } else if !line.is_empty() {
                response.extend_from_slice(format!("{line}\r\n").as_bytes());
            }
        }
        writer.write_all(format!("HTTP/1.1 {status}\r\n").as_bytes())?;
        writer.write_all(&response)?;
        writer.write_all(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes())?;
        writer.write_all(body)?;
        writer.flush()?;
    }
}

fn base64(s: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// OpenSSH's sshd on a loopback port, accepting `client_key` for the current user.
pub struct Sshd {
    /// The port on 127.0.0.1.
    pub port: u16,
    /// The user to log in as (the current user).
    pub user: String,
    /// A private key (ed25519, OpenSSH format) in authorized_keys.
    pub client_key: PathBuf,
    /// The server's host public keys (`type base64 comment` lines), one per algorithm.
    pub host_keys: Vec<String>,
    /// A known_hosts file listing the server's keys.
    pub known_hosts: PathBuf,
    child: Child,
    dir: PathBuf,
}

impl Sshd {
    /// Generates host keys (ed25519, ECDSA P-256, RSA) and a client key under `dir`, then
    /// starts sshd.
    pub fn start(dir: &Path) -> Sshd {
        let sshd = require("sshd");
        let keygen = require("ssh-keygen");
        let dir = dir.join("sshd");
        std::fs::create_dir_all(&dir).unwrap();
        let mut host_keys = Vec::new();
        let mut host_key_config = String::new();
        for (kind, bits) in [
            ("ed25519", None),
            ("ecdsa", Some("256")),
            ("rsa", Some("2048")),
        ] {
            let path = dir.join(format!("host_{kind}"));
            let mut cmd = Command::new(&keygen);
            cmd.args(["-q", "-N", "", "-t", kind, "-f"]).arg(&path);
            if let Some(bits) = bits {
                cmd.args(["-b", bits]);
            }
            assert!(cmd.status().unwrap().success(), "ssh-keygen {kind}");
            host_keys.push(
                std::fs::read_to_string(path.with_extension("pub"))
                    .unwrap()
                    .trim()
                    .to_owned(),
            );
            host_key_config.push_str(&format!("HostKey {}\n", path.display()));
        }
        let client_key = dir.join("client_ed25519");
        assert!(
            Command::new(&keygen)
                .args(["-q", "-N", "", "-t", "ed25519", "-C", "capi-test", "-f"])
                .arg(&client_key)
                .status()
                .unwrap()
                .success()
        );
        let authorized = dir.join("authorized_keys");
        std::fs::copy(client_key.with_extension("pub"), &authorized).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\n{host_key_config}AuthorizedKeysFile {}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\nPidFile none\nLogLevel ERROR\nSubsystem sftp internal-sftp\n",
                authorized.display()
            ),
        )
        .unwrap();
        // sshd's privilege-separation directory, normally made by its service unit.
        let _ = std::fs::create_dir_all("/run/sshd");
        let mut child = Command::new(&sshd)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sshd");
        wait_for_port(port, "sshd", &mut Some(&mut child));
        let known_hosts = dir.join("known_hosts");
        let lines: String = host_keys
            .iter()
            .map(|k| {
                let mut p = k.split_whitespace();
                format!(
                    "[127.0.0.1]:{port} {} {}\n",
                    p.next().unwrap(),
                    p.next().unwrap()
                )
            })
            .collect();
        std::fs::write(&known_hosts, lines).unwrap();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned();
        Sshd {
            port,
            user,
            client_key,
            host_keys,
            known_hosts,
            child,
            dir,
        }
    }

    /// The authorized_keys file sshd reads.
    pub fn authorized_keys_path(&self) -> PathBuf {
        self.dir.join("authorized_keys")
    }

    /// Adds a public key line to authorized_keys (as a user adds a deploy key on a forge).
    pub fn authorize(&self, public_line: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("authorized_keys"))
            .unwrap();
        writeln!(f, "{}", public_line.trim()).unwrap();
    }

    /// `ssh://user@127.0.0.1:port/<path>`.
    pub fn url(&self, path: &Path) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            path.display()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
