//! Uploading one blob to a registry: the distribution API's chunked upload session.

use std::path::Path;
use std::sync::Arc;

use reqwest::{Method, StatusCode};

use super::client::{Body, Client, status_error};
use super::oci::{self, Descriptor};
use super::transfer::Ctx;
use super::{Error, Reference};
use crate::observe::ObserverExt;

/// Size of each upload request of a blob.
const CHUNK: usize = 16 << 20;

/// One upload session: POST, PATCH chunks while hashing the file, then PUT with the digest
/// only when the bytes sent match it (otherwise the session is cancelled).
pub(super) async fn upload(
    ctx: &Ctx<'_>,
    target: &Reference,
    d: &Descriptor,
    path: &Path,
) -> Result<(), Error> {
    use std::io::Read as _;
    let start = ctx.client.url(target, "blobs/uploads/");
    let resp = ctx
        .push(
            Method::POST,
            &start,
            target,
            &[("Content-Length", "0".into())],
            &Body::None,
            false,
        )
        .await?;
    if resp.status() != StatusCode::ACCEPTED {
        return Err(status_error("POST", &start, resp).await);
    }
    let mut location = location(&start, &resp)?;
    let mut file = std::fs::File::open(path).map_err(Error::io(path))?;
    let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
    let mut offset = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        ctx.check()?;
        let mut n = 0;
        while n < CHUNK {
            let k = file.read(&mut buf[n..]).map_err(Error::io(path))?;
            if k == 0 {
                break;
            }
            n += k;
        }
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        let range = format!("{}-{}", offset, offset + n as u64 - 1);
        let resp = ctx
            .push(
                Method::PATCH,
                &location,
                target,
                &[
                    ("Content-Type", "application/octet-stream".into()),
                    ("Content-Range", range),
                ],
                &Body::Bytes(Arc::new(buf[..n].to_vec())),
                false,
            )
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(status_error("PATCH", &location, resp).await);
        }
        location = self::location(&location, &resp)?;
        offset += n as u64;
        ctx.observer.progress(
            format!("{target} {}", &d.digest[..19]),
            offset,
            Some(d.size),
        );
    }
    let actual = format!("sha256:{}", oci::hex(hasher.finish().as_ref()));
    if actual != d.digest || offset != d.size {
        let _ = ctx
            .push(Method::DELETE, &location, target, &[], &Body::None, false)
            .await;
        return Err(Error::Digest {
            what: path.display().to_string(),
            reference: target.to_string(),
            expected: d.digest.clone(),
            actual,
            bytes: offset,
        });
    }
    let mut url = reqwest::Url::parse(&location).map_err(|e| Error::Manifest {
        reference: target.to_string(),
        problem: format!("the upload location `{location}` is not a URL ({e})"),
    })?;
    url.query_pairs_mut().append_pair("digest", &d.digest);
    let url = url.to_string();
    let resp = ctx
        .push(
            Method::PUT,
            &url,
            target,
            &[("Content-Length", "0".into())],
            &Body::None,
            false,
        )
        .await?;
    if resp.status() != StatusCode::CREATED {
        return Err(status_error("PUT", &url, resp).await);
    }
    Ok(())
}

fn location(base: &str, resp: &reqwest::Response) -> Result<String, Error> {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(|l| Client::resolve(base, l))
        .ok_or_else(|| Error::Status {
            method: "upload".into(),
            url: base.to_string(),
            status: resp.status().as_u16(),
            body: "no Location header".into(),
        })
}
