//! The pre-commit and pre-push scan: what must never reach the repository.
//!
//! The scan fails closed. A file is refused when its name says it holds credentials, a
//! kubeconfig or local state (backup and editor suffixes such as `.bak` and `~` do not hide the
//! name, nor does upper case); when its name says it is a manifest but it does not parse; and,
//! whatever its name, when its content holds a private key, kubeconfig credentials, an
//! OpenStack application credential secret or a plaintext Secret (also inside Lists, in any
//! encoding we can decode). The example cluster's `credentials.yaml` is allowed only while every
//! credential field still holds the template's placeholder.

mod content;
pub(crate) mod history;
mod names;
#[cfg(test)]
#[cfg(all(feature = "seal", feature = "repo"))]
mod tests;

use std::fmt;

use names::NameClass;

/// What the example template writes where the user must fill in a value.
pub(crate) const PLACEHOLDER: &str = "REPLACE_ME";

/// A file the commit (or push) must not contain.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// A Kubernetes Secret with `data` or `stringData`: plaintext credentials.
    PlaintextSecret {
        /// The Secret's `metadata.name`, if it has one.
        name: Option<String>,
    },
    /// An unsealed credentials file (`credentials.yaml` and its backups), or the example's
    /// `credentials.yaml` holding something other than placeholders.
    Credentials,
    /// A kubeconfig: by file name (`kubeconfig`, `*.kubeconfig`, `admin.conf`, ...), by its
    /// shape (`users` with credentials), or by a `client-key-data` or user `token` anywhere.
    Kubeconfig,
    /// A PEM or OpenSSH private key.
    PrivateKey,
    /// OpenStack credentials: a `clouds.yaml`, an `application_credential_secret`, or a
    /// ConfigMap holding `clouds:`.
    CloudCredentials,
    /// A kustomize `secretGenerator` with literals, files or env files: a plaintext Secret.
    SecretGenerator,
    /// Anything under `.capi-manage/` (deploy keys, state).
    LocalState,
    /// A file named like a manifest (or credentials, or a kubeconfig) that does not parse, so
    /// it cannot be shown to be harmless.
    Unparseable {
        /// Why it does not parse.
        reason: String,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::PlaintextSecret { name: Some(n) } => write!(
                f,
                "plaintext Secret {n:?} (data/stringData); seal it, commit only the SealedSecret"
            ),
            Violation::PlaintextSecret { name: None } => write!(
                f,
                "plaintext Secret (data/stringData); seal it, commit only the SealedSecret"
            ),
            Violation::Credentials => write!(
                f,
                "unsealed credentials file; commit credentials-sealed.yaml instead and list credentials.yaml in .gitignore"
            ),
            Violation::Kubeconfig => write!(
                f,
                "kubeconfig with cluster-admin access; never commit it (list it in .gitignore)"
            ),
            Violation::PrivateKey => write!(
                f,
                "private key; never commit it (keep it outside the repository or seal it)"
            ),
            Violation::CloudCredentials => write!(
                f,
                "OpenStack credentials (clouds.yaml / application_credential_secret); put them in credentials.yaml, which bootstrap seals"
            ),
            Violation::SecretGenerator => write!(
                f,
                "kustomize secretGenerator with literals, files or envs (a plaintext Secret); use a SealedSecret instead"
            ),
            Violation::LocalState => write!(
                f,
                "local state under .capi-manage/ (deploy keys); never commit it (list .capi-manage/ in .gitignore)"
            ),
            Violation::Unparseable { reason } => write!(
                f,
                "named like a manifest but does not parse ({reason}); fix it, or rename it if it is not a manifest"
            ),
        }
    }
}

/// Whether the file at `path` (relative to the repository root, `/`-separated) with `content`
/// must not be committed or pushed. Never blocks on any input: every rule is linear in the size
/// of `content`, and a YAML stream stops at its first error.
pub fn scan_file(path: &str, content: &[u8]) -> Option<Violation> {
    if path
        .split('/')
        .any(|c| c.eq_ignore_ascii_case(".capi-manage"))
    {
        return Some(Violation::LocalState);
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    let class = names::classify(name);
    let text = content::decode(content);

    match class {
        NameClass::Credentials => {
            if names::is_example_credentials(path)
                && let content::Decoded::Utf8(text) = &text
                && content::only_placeholders(text)
            {
                // The template: only the name-independent text rules still apply (a key pasted
                // into a comment is refused all the same).
                return content::text_rules(text);
            }
            return Some(Violation::Credentials);
        }
        NameClass::Kubeconfig => return Some(Violation::Kubeconfig),
        NameClass::CloudsYaml => return Some(Violation::CloudCredentials),
        NameClass::Manifest | NameClass::MaybeConfig | NameClass::Other => {}
    }
    if let Some(v) = content::text_rules(text.as_str()) {
        return Some(v);
    }
    match (class, &text) {
        (NameClass::Manifest, content::Decoded::Utf8(text)) => content::structure(text)
            .unwrap_or_else(|reason| Some(Violation::Unparseable { reason })),
        (NameClass::Manifest, other) => Some(Violation::Unparseable {
            reason: other.not_utf8_reason().into(),
        }),
        // Files that may be YAML under another name: their shape counts, a parse error not.
        (NameClass::MaybeConfig, content::Decoded::Utf8(text)) => {
            content::structure(text).unwrap_or(None)
        }
        _ => None,
    }
}
