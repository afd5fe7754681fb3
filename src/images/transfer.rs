//! `pull` (registry to OCI layout) and `push` (OCI layout to registry).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use reqwest::Method;
use tokio_util::sync::CancellationToken;

use super::client::{Access, Body, Client, ClientOptions, MAX_MANIFEST_BYTES, status_error};
use super::layout::{HashingWriter, Layout, Present, ref_name};
use super::oci::{self, Descriptor, Parsed, Platform};
use super::{Error, Reference};
use crate::observe::{Observer, ObserverExt};

/// Options for [`pull`].
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// How registries are reached.
    pub client: ClientOptions,
    /// Copy every platform of a multi-platform image; otherwise only linux/amd64 (or
    /// `platform`).
    pub all_platforms: bool,
    /// The platform copied from a multi-platform image (default linux/amd64).
    pub platform: Option<Platform>,
    /// Fetch each image through this registry (host and optional path), at the path that
    /// `vendor --image-registry` gives it, while recording it under its own name.
    pub source_registry: Option<String>,
    /// The digest each image must have (by reference, as `images.lock` records them): an
    /// image served with another digest is refused. `lock` names the file in errors.
    pub locked: BTreeMap<String, String>,
    /// The lock file `locked` came from.
    pub lock: Option<PathBuf>,
}

/// Options for [`push`].
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// How registries are reached.
    pub client: ClientOptions,
    /// The registry (host and optional path prefix) the images go to, each at the path that
    /// `vendor --image-registry` rewrites it to.
    pub registry: String,
}

/// One image copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Its name (as the layout records it).
    pub reference: String,
    /// Where it came from or went to.
    pub location: String,
    /// The digest of what was recorded or pushed under the name.
    pub digest: String,
    /// Blobs transferred.
    pub blobs_copied: usize,
    /// Blobs already there (in the layout, or in the target registry).
    pub blobs_present: usize,
    /// Bytes transferred.
    pub bytes: u64,
}

/// What [`pull`] or [`push`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransferReport {
    /// Every image, in order.
    pub images: Vec<Copied>,
}

pub(super) struct Ctx<'a> {
    pub(super) client: Client,
    pub(super) observer: &'a dyn Observer,
    pub(super) cancel: &'a CancellationToken,
    copied: usize,
    present: usize,
    bytes: u64,
}

impl Ctx<'_> {
    pub(super) fn check(&self) -> Result<(), Error> {
        if self.cancel.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }

    /// What one image's copy did: the counters' growth since `mark` (copied, present, bytes).
    fn copied_since(
        &self,
        mark: (usize, usize, u64),
        reference: String,
        location: String,
        digest: &str,
    ) -> Copied {
        Copied {
            reference,
            location,
            digest: digest.to_string(),
            blobs_copied: self.copied - mark.0,
            blobs_present: self.present - mark.1,
            bytes: self.bytes - mark.2,
        }
    }

    /// One request to `target` with push access.
    pub(super) async fn push(
        &self,
        method: Method,
        url: &str,
        target: &Reference,
        headers: &[(&str, String)],
        body: &Body,
        retry: bool,
    ) -> Result<reqwest::Response, Error> {
        self.client
            .send(
                method,
                url,
                target,
                Access::Push,
                headers,
                body,
                retry,
                self.cancel,
            )
            .await
    }
}

/// Where `image` is fetched from: itself, or its path in `options.source_registry`.
fn source_of(image: &Reference, options: &PullOptions) -> Result<Reference, Error> {
    match &options.source_registry {
        Some(r) => image.moved_to(r).map_err(|source| Error::Reference {
            from: format!("{image} moved to {r}"),
            source,
        }),
        None => Ok(image.clone()),
    }
}

fn platform_name(p: &Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

/// Copies `images` from their registries into the OCI image layout at `dir` (created when
/// missing), each recorded in `index.json` under its full name. Every manifest and blob is
/// checked against its digest while it streams; blobs already in the layout with the right
/// content are not fetched again, so an interrupted pull resumes.
///
/// # Errors
///
/// [`Error::Digest`] for content that does not match its digest, [`Error::Locked`] for an
/// image whose digest differs from `options.locked`, [`Error::NoPlatform`], [`Error::Manifest`],
/// [`Error::Status`], [`Error::Request`], [`Error::Unauthorized`], [`Error::Io`],
/// [`Error::Cancelled`].
pub async fn pull(
    images: &[Reference],
    dir: &Path,
    options: &PullOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<TransferReport, Error> {
    let layout = Layout::create(dir)?;
    let mut ctx = Ctx {
        client: Client::new(&options.client)?,
        observer,
        cancel,
        copied: 0,
        present: 0,
        bytes: 0,
    };
    let platform = options
        .platform
        .clone()
        .unwrap_or_else(Platform::linux_amd64);
    let mut report = TransferReport::default();
    for image in images {
        ctx.check()?;
        let started = Instant::now();
        let mark = (ctx.copied, ctx.present, ctx.bytes);
        let source = source_of(image, options)?;
        observer.action(format!("pulling {image} from {source}"));
        let (bytes, media_type) =
            fetch_manifest(&ctx, &source, source.manifest_reference(), None).await?;
        let top = oci::digest_of(&bytes);
        let name = Reference {
            digest: None,
            ..image.clone()
        };
        let name = if image.tag.is_some() {
            name.to_string()
        } else {
            image.to_string()
        };
        if let Some(locked) = options
            .locked
            .get(&name)
            .or(options.locked.get(&image.to_string()))
            && *locked != top
        {
            return Err(Error::Locked {
                reference: image.to_string(),
                lock: options.lock.clone().unwrap_or_default(),
                locked: locked.clone(),
                actual: top,
            });
        }
        let descriptor = if oci::is_index(&media_type) && !options.all_platforms {
            let (index, _) =
                Parsed::parse(&bytes, Some(&media_type)).map_err(|problem| Error::Manifest {
                    reference: source.to_string(),
                    problem,
                })?;
            let chosen = index
                .manifests
                .iter()
                .find(|d| {
                    d.platform.as_ref().is_some_and(|p| {
                        p.os == platform.os
                            && p.architecture == platform.architecture
                            && (platform.variant.is_none() || p.variant == platform.variant)
                    })
                })
                .ok_or_else(|| Error::NoPlatform {
                    reference: source.to_string(),
                    platform: platform_name(&platform),
                    available: index
                        .manifests
                        .iter()
                        .filter_map(|d| d.platform.as_ref().map(platform_name))
                        .collect::<Vec<_>>()
                        .join(", "),
                })?
                .clone();
            pull_manifest(&mut ctx, &layout, &source, &chosen).await?;
            Descriptor {
                platform: None,
                annotations: Default::default(),
                ..chosen
            }
        } else {
            store_manifest(&mut ctx, &layout, &source, &bytes, &media_type).await?;
            Descriptor {
                media_type: media_type.clone(),
                digest: top.clone(),
                size: bytes.len() as u64,
                platform: None,
                annotations: Default::default(),
            }
        };
        layout.tag(&name, &descriptor)?;
        let item = ctx.copied_since(mark, name, source.to_string(), &descriptor.digest);
        observer.success(
            format!(
                "pulled {} ({}): {} blobs fetched, {} already present",
                item.reference, item.digest, item.blobs_copied, item.blobs_present
            ),
            Some(started.elapsed()),
        );
        report.images.push(item);
    }
    Ok(report)
}

/// GETs a manifest by tag or digest; checks it against the digest it was asked by (or the
/// registry's Docker-Content-Digest) and its size against `size`.
async fn fetch_manifest(
    ctx: &Ctx<'_>,
    r: &Reference,
    by: &str,
    size: Option<u64>,
) -> Result<(Vec<u8>, String), Error> {
    let url = ctx.client.url(r, &format!("manifests/{by}"));
    let resp = ctx
        .client
        .send(
            Method::GET,
            &url,
            r,
            Access::Pull,
            &[("Accept", oci::ACCEPT.to_string())],
            &Body::None,
            true,
            ctx.cancel,
        )
        .await?;
    if !resp.status().is_success() {
        return Err(status_error("GET", &url, resp).await);
    }
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let served = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = read_limited(resp, MAX_MANIFEST_BYTES as u64, &url, r).await?;
    let actual = oci::digest_of(&bytes);
    let expected = if oci::is_digest(by) {
        Some(by.to_string())
    } else {
        served
    };
    if let Some(expected) = expected
        && expected != actual
    {
        return Err(Error::Digest {
            what: "manifest".into(),
            reference: r.to_string(),
            expected,
            actual,
            bytes: bytes.len() as u64,
        });
    }
    if let Some(size) = size
        && size != bytes.len() as u64
    {
        return Err(Error::Manifest {
            reference: r.to_string(),
            problem: format!("{} bytes where the index says {size}", bytes.len()),
        });
    }
    let (_, media_type) =
        Parsed::parse(&bytes, content_type.as_deref()).map_err(|problem| Error::Manifest {
            reference: r.to_string(),
            problem,
        })?;
    Ok((bytes, media_type))
}

async fn read_limited(
    mut resp: reqwest::Response,
    limit: u64,
    url: &str,
    r: &Reference,
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    loop {
        let chunk = resp.chunk().await.map_err(|source| Error::Request {
            method: "GET".into(),
            url: url.to_string(),
            attempts: 1,
            source,
        })?;
        let Some(chunk) = chunk else { break };
        out.extend_from_slice(&chunk);
        if out.len() as u64 > limit {
            return Err(Error::TooLarge {
                what: "manifest".into(),
                reference: r.to_string(),
                size: limit,
            });
        }
    }
    Ok(out)
}

/// Fetches the manifest of `d` and everything it references.
async fn pull_manifest(
    ctx: &mut Ctx<'_>,
    layout: &Layout,
    r: &Reference,
    d: &Descriptor,
) -> Result<(), Error> {
    let (bytes, media_type) = fetch_manifest(ctx, r, &d.digest, Some(d.size)).await?;
    Box::pin(store_manifest(ctx, layout, r, &bytes, &media_type)).await
}

/// Stores a verified manifest's references (blobs, or an index's manifests), then itself.
async fn store_manifest(
    ctx: &mut Ctx<'_>,
    layout: &Layout,
    r: &Reference,
    bytes: &[u8],
    media_type: &str,
) -> Result<(), Error> {
    let (parsed, _) =
        Parsed::parse(bytes, Some(media_type)).map_err(|problem| Error::Manifest {
            reference: r.to_string(),
            problem,
        })?;
    for child in &parsed.manifests {
        pull_manifest(ctx, layout, r, child).await?;
    }
    for blob in parsed.blobs() {
        pull_blob(ctx, layout, r, blob).await?;
    }
    layout.put(&oci::digest_of(bytes), bytes)
}

/// Streams a blob into the layout, hashing as it goes; a blob already there is kept.
async fn pull_blob(
    ctx: &mut Ctx<'_>,
    layout: &Layout,
    r: &Reference,
    d: &Descriptor,
) -> Result<(), Error> {
    ctx.check()?;
    if let Present::Yes = layout.check(&d.digest, d.size)? {
        ctx.present += 1;
        return Ok(());
    }
    let url = ctx.client.url(r, &format!("blobs/{}", d.digest));
    let resp = ctx
        .client
        .send(
            Method::GET,
            &url,
            r,
            Access::Pull,
            &[],
            &Body::None,
            true,
            ctx.cancel,
        )
        .await?;
    if !resp.status().is_success() {
        return Err(status_error("GET", &url, resp).await);
    }
    let partial = layout.partial(&d.digest);
    let result = stream_to(ctx, resp, &partial, d, r, &url).await;
    let (actual, written) = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    if actual != d.digest || written != d.size {
        let _ = std::fs::remove_file(&partial);
        return Err(Error::Digest {
            what: "blob".into(),
            reference: r.to_string(),
            expected: d.digest.clone(),
            actual,
            bytes: written,
        });
    }
    let path = layout.blob_path(&d.digest);
    std::fs::rename(&partial, &path).map_err(Error::io(&path))?;
    ctx.copied += 1;
    ctx.bytes += written;
    Ok(())
}

async fn stream_to(
    ctx: &Ctx<'_>,
    mut resp: reqwest::Response,
    partial: &Path,
    d: &Descriptor,
    r: &Reference,
    url: &str,
) -> Result<(String, u64), Error> {
    let mut w = HashingWriter::create(partial)?;
    let what = format!("{} {}", r, &d.digest[..19]);
    let mut reported = 0u64;
    loop {
        let chunk = tokio::select! {
            _ = ctx.cancel.cancelled() => return Err(Error::Cancelled),
            c = resp.chunk() => c,
        }
        .map_err(|source| Error::Request {
            method: "GET".into(),
            url: url.to_string(),
            attempts: 1,
            source,
        })?;
        let Some(chunk) = chunk else { break };
        w.write(&chunk, partial)?;
        if w.written > d.size {
            return Err(Error::TooLarge {
                what: format!("blob {}", d.digest),
                reference: r.to_string(),
                size: d.size,
            });
        }
        if w.written - reported >= 8 << 20 {
            reported = w.written;
            ctx.observer.progress(what.clone(), w.written, Some(d.size));
        }
    }
    w.finish(partial)
}

/// Copies every image named in the OCI layout at `dir` to `options.registry`, each at the path
/// `vendor --image-registry` gives it. Every blob read from the layout is checked against its
/// digest before the upload is committed; blobs the registry already has (HEAD) are skipped,
/// so an interrupted push resumes.
///
/// # Errors
///
/// [`Error::Layout`] for a layout without named images, [`Error::Digest`] for a layout blob
/// that does not match its digest, [`Error::Status`], [`Error::Request`],
/// [`Error::Unauthorized`], [`Error::Manifest`], [`Error::Io`], [`Error::Cancelled`].
pub async fn push(
    dir: &Path,
    options: &PushOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<TransferReport, Error> {
    let layout = Layout::open(dir)?;
    let index = layout.index()?;
    let mut ctx = Ctx {
        client: Client::new(&options.client)?,
        observer,
        cancel,
        copied: 0,
        present: 0,
        bytes: 0,
    };
    let mut report = TransferReport::default();
    let named: Vec<(&str, &Descriptor)> = index
        .manifests
        .iter()
        .filter_map(|d| ref_name(d).map(|n| (n, d)))
        .collect();
    if named.is_empty() {
        return Err(Error::Layout {
            dir: dir.to_path_buf(),
            problem: "index.json names no image (org.opencontainers.image.ref.name)".into(),
        });
    }
    for (name, d) in named {
        ctx.check()?;
        let started = Instant::now();
        let mark = (ctx.copied, ctx.present, ctx.bytes);
        let image = Reference::parse(name).map_err(|source| Error::Reference {
            from: format!("{}/index.json", dir.display()),
            source,
        })?;
        let target = image
            .moved_to(&options.registry)
            .map_err(|source| Error::Reference {
                from: format!("{name} moved to {}", options.registry),
                source,
            })?;
        observer.action(format!("pushing {name} to {target}"));
        let tag = target.tag.clone().unwrap_or_else(|| d.digest.clone());
        let mut seen = BTreeSet::new();
        push_manifest(&mut ctx, &layout, &target, d, &tag, &mut seen).await?;
        let item = ctx.copied_since(mark, name.to_string(), target.to_string(), &d.digest);
        observer.success(
            format!(
                "pushed {} as {} ({}): {} blobs uploaded, {} already there",
                item.reference, item.location, item.digest, item.blobs_copied, item.blobs_present
            ),
            Some(started.elapsed()),
        );
        report.images.push(item);
    }
    Ok(report)
}

async fn push_manifest(
    ctx: &mut Ctx<'_>,
    layout: &Layout,
    target: &Reference,
    d: &Descriptor,
    tag: &str,
    seen: &mut BTreeSet<String>,
) -> Result<(), Error> {
    let bytes = layout.read_verified(&d.digest, &target.to_string())?;
    let (parsed, media_type) =
        Parsed::parse(&bytes, Some(&d.media_type)).map_err(|problem| Error::Manifest {
            reference: target.to_string(),
            problem,
        })?;
    for child in &parsed.manifests {
        if layout.blob_path(&child.digest).exists() {
            Box::pin(push_manifest(
                ctx,
                layout,
                target,
                child,
                &child.digest,
                seen,
            ))
            .await?;
        } else {
            return Err(Error::Layout {
                dir: layout.dir().to_path_buf(),
                problem: format!(
                    "{target}: the index lists {} but the layout does not hold it (pull with --all-platforms)",
                    child.digest
                ),
            });
        }
    }
    for blob in parsed.blobs() {
        if seen.insert(blob.digest.clone()) {
            push_blob(ctx, layout, target, blob).await?;
        }
    }
    let url = ctx.client.url(target, &format!("manifests/{tag}"));
    let resp = ctx
        .push(
            Method::PUT,
            &url,
            target,
            &[("Content-Type", media_type)],
            &Body::Bytes(Arc::new(bytes)),
            true,
        )
        .await?;
    if !resp.status().is_success() {
        return Err(status_error("PUT", &url, resp).await);
    }
    if let Some(served) = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        && served != d.digest
    {
        return Err(Error::Digest {
            what: "pushed manifest".into(),
            reference: target.to_string(),
            expected: d.digest.clone(),
            actual: served.to_string(),
            bytes: d.size,
        });
    }
    Ok(())
}

async fn push_blob(
    ctx: &mut Ctx<'_>,
    layout: &Layout,
    target: &Reference,
    d: &Descriptor,
) -> Result<(), Error> {
    ctx.check()?;
    let head = ctx.client.url(target, &format!("blobs/{}", d.digest));
    let resp = ctx
        .push(Method::HEAD, &head, target, &[], &Body::None, true)
        .await?;
    if resp.status().is_success() {
        ctx.present += 1;
        return Ok(());
    }
    let path = layout.blob_path(&d.digest);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match super::upload::upload(ctx, target, d, &path).await {
            Ok(()) => break,
            Err(Error::Request { .. } | Error::Status { status: 500.., .. })
                if attempt < super::client::ATTEMPTS =>
            {
                continue;
            }
            Err(e) => return Err(e),
        }
    }
    ctx.copied += 1;
    ctx.bytes += d.size;
    Ok(())
}

/// The digest each of `images` has in its registry (through `options.source_registry` when
/// set): what `images.lock` records. The manifests are fetched and hashed, not taken on the
/// registry's word.
pub async fn resolve(
    images: &[Reference],
    options: &PullOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<Vec<String>, Error> {
    let ctx = Ctx {
        client: Client::new(&options.client)?,
        observer,
        cancel,
        copied: 0,
        present: 0,
        bytes: 0,
    };
    let mut out = Vec::new();
    for image in images {
        ctx.check()?;
        let source = source_of(image, options)?;
        observer.action(format!("resolving {image}"));
        let (bytes, _) = fetch_manifest(&ctx, &source, source.manifest_reference(), None).await?;
        out.push(oci::digest_of(&bytes));
    }
    Ok(out)
}
