//! OpenSSH's known_hosts, as its client reads it: host patterns (wildcards, negation, hashed
//! names), `@revoked` keys, and "new" only for a host with no key at all, of any algorithm.

use std::io::Write;
use std::path::Path;

use russh::keys::{Algorithm, HashAlg, PublicKey};

/// One line of a known_hosts file.
#[derive(Debug)]
pub(crate) struct Entry {
    /// 1-based line number.
    pub line: usize,
    revoked: bool,
    cert_authority: bool,
    patterns: String,
    /// `None` when the key does not parse (the line still makes its hosts known).
    key: Option<PublicKey>,
}

/// What known_hosts says about a presented host key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The key is listed for the host.
    Known,
    /// The key is marked `@revoked` (for this host or any).
    Revoked { line: usize },
    /// The host is listed, but not with this key (another key, maybe of another algorithm).
    Changed { line: usize },
    /// The host has no entry at all.
    New,
}

pub(crate) fn parse(text: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_text = line.trim();
        if line_text.is_empty() || line_text.starts_with('#') {
            continue;
        }
        let mut fields = line_text.split_whitespace();
        let mut first = fields.next().unwrap_or("");
        let (mut revoked, mut cert_authority) = (false, false);
        match first {
            "@revoked" => revoked = true,
            "@cert-authority" => cert_authority = true,
            _ => {}
        }
        if revoked || cert_authority {
            first = fields.next().unwrap_or("");
        }
        let (kind, data) = (fields.next(), fields.next());
        let key = match (kind, data) {
            (Some(kind), Some(data)) => PublicKey::from_openssh(&format!("{kind} {data}")).ok(),
            _ => None,
        };
        entries.push(Entry {
            line: i + 1,
            revoked,
            cert_authority,
            patterns: first.to_owned(),
            key,
        });
    }
    entries
}

fn same_key(a: &PublicKey, b: &PublicKey) -> bool {
    a.key_data() == b.key_data()
}

/// `host` is the known_hosts form: `name` for port 22, `[name]:port` otherwise.
pub(crate) fn check(entries: &[Entry], host: &str, key: &PublicKey) -> Verdict {
    // A revoked key is refused whatever host it is listed for.
    if let Some(e) = entries
        .iter()
        .find(|e| e.revoked && e.key.as_ref().is_some_and(|k| same_key(k, key)))
    {
        return Verdict::Revoked { line: e.line };
    }
    let mut first = None;
    for e in entries
        .iter()
        .filter(|e| !e.revoked && !e.cert_authority && host_matches(&e.patterns, host))
    {
        if e.key.as_ref().is_some_and(|k| same_key(k, key)) {
            return Verdict::Known;
        }
        first.get_or_insert(e.line);
    }
    match first {
        Some(line) => Verdict::Changed { line },
        None => Verdict::New,
    }
}

/// Host key algorithms in the order to offer them: those known_hosts lists for `host` first
/// (as OpenSSH orders them, so a known host is verified by the key we have), then the rest.
pub(crate) fn preferred_algorithms(entries: &[Entry], host: &str) -> Vec<Algorithm> {
    let defaults = russh::Preferred::DEFAULT.key;
    let mut out: Vec<Algorithm> = Vec::new();
    for e in entries
        .iter()
        .filter(|e| !e.revoked && !e.cert_authority && host_matches(&e.patterns, host))
    {
        let Some(key) = &e.key else { continue };
        let algorithms = match key.algorithm() {
            Algorithm::Rsa { .. } => vec![
                Algorithm::Rsa {
                    hash: Some(HashAlg::Sha512),
                },
                Algorithm::Rsa {
                    hash: Some(HashAlg::Sha256),
                },
            ],
            other => vec![other],
        };
        for a in algorithms {
            if defaults.contains(&a) && !out.contains(&a) {
                out.push(a);
            }
        }
    }
    for a in defaults.iter() {
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    out
}

/// Whether a comma-separated pattern list matches `host`: `*`/`?` wildcards, `!` negation
/// (a negated match wins), `|1|salt|hash` hashed names. Case-insensitive.
pub(crate) fn host_matches(patterns: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let mut matched = false;
    for pattern in patterns.split(',') {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern),
        };
        let hit = if let Some(hashed) = pattern.strip_prefix("|1|") {
            hashed_matches(hashed, &host)
        } else {
            glob(&pattern.to_ascii_lowercase(), &host)
        };
        if hit && negated {
            return false;
        }
        matched |= hit;
    }
    matched
}

fn hashed_matches(salt_and_hash: &str, host: &str) -> bool {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let Some((salt, hash)) = salt_and_hash.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
    ring::hmac::verify(&key, host.as_bytes(), &hash).is_ok()
}

/// `*` and `?` wildcard match, linear in practice (greedy with one backtrack point).
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Appends `host key` to the known_hosts at `path`, creating its folder with mode 0700 (as
/// OpenSSH creates `~/.ssh`) and the file with mode 0600.
pub(crate) fn learn(path: &Path, host: &str, key: &PublicKey) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.exists()
    {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(parent)?;
    }
    let existing = std::fs::read(path).unwrap_or_default();
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    let key = key
        .to_openssh()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let separator = if existing.is_empty() || existing.ends_with(b"\n") {
        ""
    } else {
        "\n"
    };
    file.write_all(format!("{separator}{host} {key}\n").as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const ED2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA6rWI3G2sz07DnfFlrouTcysQlj2P+jpNSOEWD9OJ3X";

    fn key(line: &str) -> PublicKey {
        PublicKey::from_openssh(line).unwrap()
    }

    #[test]
    fn verdicts() {
        let text = format!(
            "# comment\n[10.0.0.1]:2222 {ED}\n*.example.com,!bad.example.com {ED}\n@revoked * {ED2}\n|1|O33ESRMWPVkMYIwJ1Uw+n877jTo=|nuuC5vEqXlEZ/8BXQR7m619W6Ak= {ED}\nother ecdsa-sha2-nistp256 not-base64\n|1|MDEyMzQ1Njc4OWFiY2RlZmdoaWo=|KUUijchiu6PXKh5QH01UYx6Y1v8= {ED2}\n"
        );
        let entries = parse(&text);
        let (ed, ed2) = (key(ED), key(ED2));
        assert_eq!(check(&entries, "[10.0.0.1]:2222", &ed), Verdict::Known);
        assert_eq!(check(&entries, "git.Example.com", &ed), Verdict::Known);
        assert_eq!(check(&entries, "bad.example.com", &ed), Verdict::New);
        assert_eq!(check(&entries, "10.0.0.1", &ed), Verdict::New);
        assert_eq!(
            check(&entries, "[10.0.0.1]:2222", &ed2),
            Verdict::Revoked { line: 4 }
        );
        // A host known only by an unparseable key line is known: any other key is a change.
        assert_eq!(check(&entries, "other", &ed), Verdict::Changed { line: 6 });
        // Hashed names (HashKnownHosts): salt and HMAC-SHA1 of the name.
        assert_eq!(
            check(&entries, "hashed.example", &ed2),
            Verdict::Revoked { line: 4 }
        );
        assert!(host_matches(
            "|1|MDEyMzQ1Njc4OWFiY2RlZmdoaWo=|KUUijchiu6PXKh5QH01UYx6Y1v8=",
            "hashed.example"
        ));
        assert!(!host_matches(
            "|1|MDEyMzQ1Njc4OWFiY2RlZmdoaWo=|KUUijchiu6PXKh5QH01UYx6Y1v8=",
            "other.example"
        ));
        assert!(glob("a*b?c", "axxxbyc") && !glob("a*b?c", "axxxbc") && glob("*", ""));
    }

    #[test]
    fn a_host_known_by_another_algorithm_is_not_new() {
        let ecdsa = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBG185K5+Mn9hbiwWqJQ0snUfinoO82sNrFrtt2T9JyJ+OK7mtBUM4n9n5mMfRMfEbPPZ1Ppi+Kkq73wVst7HKds=";
        let entries = parse(&format!("h {ecdsa}\n"));
        assert_eq!(check(&entries, "h", &key(ED)), Verdict::Changed { line: 1 });
        let order = preferred_algorithms(&entries, "h");
        assert_eq!(
            order[0],
            Algorithm::Ecdsa {
                curve: russh::keys::EcdsaCurve::NistP256
            }
        );
        assert_eq!(order.len(), russh::Preferred::DEFAULT.key.len());
    }

    #[test]
    fn learning_creates_a_private_folder_and_file() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("home/.ssh/known_hosts");
        learn(&path, "[h]:2222", &key(ED)).unwrap();
        learn(&path, "h2", &key(ED2)).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(mode(&path), 0o600);
        let entries = parse(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(check(&entries, "[h]:2222", &key(ED)), Verdict::Known);
        assert_eq!(check(&entries, "h2", &key(ED2)), Verdict::Known);
    }
}
