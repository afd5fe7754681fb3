//! Image references as container runtimes spell them: `[registry/]path[:tag][@digest]`.

use std::fmt;

/// Docker Hub's registry host, as references name it.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's registry API is served.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed image reference, normalised as containerd normalises it (`nginx` is
/// `docker.io/library/nginx:latest`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// The registry host and optional port, e.g. `registry.k8s.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// The repository path, e.g. `cluster-api/cluster-api-controller`.
    pub repository: String,
    /// The tag, if any (`latest` when neither tag nor digest is written).
    pub tag: Option<String>,
    /// The digest (`sha256:<hex>`), if any.
    pub digest: Option<String>,
}

/// Why a reference is not usable; the caller names where it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{reference}` is not an image reference: {problem}")]
pub struct ParseError {
    /// The text.
    pub reference: String,
    /// What is wrong with it.
    pub problem: String,
}

fn is_host(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

impl Reference {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Reference, ParseError> {
        let bad = |problem: &str| ParseError {
            reference: text.to_string(),
            problem: problem.to_string(),
        };
        if text.is_empty() || text.trim() != text {
            return Err(bad("empty or surrounded by spaces"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((r, d)) => {
                let hex = d
                    .strip_prefix("sha256:")
                    .ok_or_else(|| bad("only sha256 digests are supported"))?;
                if !super::oci::is_sha256_hex(hex) {
                    return Err(bad("the digest is not sha256:<64 lowercase hex digits>"));
                }
                (r, Some(d.to_string()))
            }
            None => (text, None),
        };
        // A tag follows the last `:` after the last `/` (a port's `:` comes before a `/`).
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(rest[slash + i + 1..].to_string())),
            None => (rest, None),
        };
        if let Some(t) = &tag
            && (t.is_empty()
                || t.len() > 128
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)))
        {
            return Err(bad("the tag may hold letters, digits, `_`, `.` and `-`"));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path)) if is_host(first) => (first.to_string(), path.to_string()),
            Some(_) => (DOCKER_HUB.to_string(), name.to_string()),
            None => (DOCKER_HUB.to_string(), format!("library/{name}")),
        };
        if repository.is_empty()
            || !repository.split('/').all(|c| {
                !c.is_empty()
                    && c.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    })
            })
        {
            return Err(bad(
                "the repository path may hold lowercase letters, digits, `.`, `_`, `-` and `/`",
            ));
        }
        let tag = match (tag, &digest) {
            (None, None) => Some("latest".to_string()),
            (t, _) => t,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host the registry API is served on (Docker Hub's API host for `docker.io`).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// What the manifest is fetched by: the digest when there is one, else the tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The same image at `registry` (a host with an optional path prefix), under the path that
    /// `vendor --image-registry` rewrites it to.
    pub fn moved_to(&self, registry: &str) -> Result<Reference, ParseError> {
        Reference::parse(&crate::components::mirror_image(
            &self.to_string(),
            registry,
        ))
    }

    /// The same image with its digest set to `digest`.
    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference {
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let r = Reference::parse("nginx").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/nginx:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r = Reference::parse("127.0.0.1:5000/a/b:v1").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "a/b", Some("v1"))
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("kindest/node:v1.35.0@{d}")).unwrap();
        assert_eq!(r.manifest_reference(), d);
        assert_eq!(r.repository, "kindest/node");
        let r = Reference::parse(&format!("localhost/x@{d}")).unwrap();
        assert_eq!(r.tag, None);
        for bad in ["", "A/b", "x:", "x@sha256:12", "x@md5:aa", "a//b"] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn moves_as_vendor_rewrites() {
        let r = Reference::parse("registry.k8s.io/cluster-api/x:v1").unwrap();
        assert_eq!(
            r.moved_to("127.0.0.1:5000/mirror").unwrap().to_string(),
            "127.0.0.1:5000/mirror/cluster-api/x:v1"
        );
        let r = Reference::parse("busybox:1").unwrap();
        assert_eq!(
            r.moved_to("reg.local").unwrap().to_string(),
            "reg.local/library/busybox:1"
        );
    }
}
