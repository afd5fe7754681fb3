//! OCI image layouts on disk: `oci-layout`, `index.json` and `blobs/sha256/<hex>`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::Error;
use super::oci::{self, Descriptor, Index};

/// The `oci-layout` file's content.
const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// An OCI image layout folder.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
}

/// What a blob in the layout is.
pub(crate) enum Present {
    /// Absent.
    No,
    /// Present with the right digest.
    Yes,
}

impl Layout {
    /// Opens the layout at `dir`, creating it (and `oci-layout`, `index.json`) when missing.
    pub fn create(dir: &Path) -> Result<Layout, Error> {
        std::fs::create_dir_all(dir.join("blobs/sha256")).map_err(Error::io(dir))?;
        let marker = dir.join("oci-layout");
        if !marker.exists() {
            std::fs::write(&marker, OCI_LAYOUT).map_err(Error::io(&marker))?;
        }
        let index = dir.join("index.json");
        let layout = Layout {
            dir: dir.to_path_buf(),
        };
        if !index.exists() {
            layout.write_index(&Index {
                schema_version: 2,
                media_type: Some(oci::OCI_INDEX.into()),
                manifests: Vec::new(),
            })?;
        }
        layout.index()?;
        Ok(layout)
    }

    /// Opens an existing layout.
    pub fn open(dir: &Path) -> Result<Layout, Error> {
        let layout = Layout {
            dir: dir.to_path_buf(),
        };
        let marker = dir.join("oci-layout");
        let text = std::fs::read_to_string(&marker).map_err(|e| Error::Layout {
            dir: dir.to_path_buf(),
            problem: format!("cannot read oci-layout ({e})"),
        })?;
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if v["imageLayoutVersion"] != "1.0.0" {
            return Err(layout.bad("oci-layout does not give imageLayoutVersion 1.0.0"));
        }
        layout.index()?;
        Ok(layout)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn bad(&self, problem: impl Into<String>) -> Error {
        Error::Layout {
            dir: self.dir.clone(),
            problem: problem.into(),
        }
    }

    /// `index.json`.
    pub fn index(&self) -> Result<Index, Error> {
        let path = self.dir.join("index.json");
        let bytes = std::fs::read(&path).map_err(Error::io(&path))?;
        let index: Index = serde_json::from_slice(&bytes)
            .map_err(|e| self.bad(format!("index.json does not parse ({e})")))?;
        if index.schema_version != 2 {
            return Err(self.bad("index.json's schemaVersion is not 2"));
        }
        for d in &index.manifests {
            if !oci::is_digest(&d.digest) {
                return Err(self.bad(format!(
                    "index.json names digest `{}`, not sha256:<hex>",
                    d.digest
                )));
            }
        }
        Ok(index)
    }

    fn write_index(&self, index: &Index) -> Result<(), Error> {
        let path = self.dir.join("index.json");
        let mut bytes = serde_json::to_vec_pretty(index).expect("an index serialises");
        bytes.push(b'\n');
        crate::fs::write_atomic(&path, &bytes, crate::fs::Access::Keep).map_err(Error::io(&path))
    }

    /// Records `descriptor` in `index.json` under the name `name` (replacing an entry of that
    /// name).
    pub fn tag(&self, name: &str, descriptor: &Descriptor) -> Result<(), Error> {
        let mut index = self.index()?;
        index.manifests.retain(|d| ref_name(d) != Some(name));
        let mut d = descriptor.clone();
        d.annotations
            .insert(oci::REF_NAME.into(), serde_json::Value::String(name.into()));
        index.manifests.push(d);
        self.write_index(&index)
    }

    /// The path of blob `digest`.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.dir.join("blobs/sha256").join(hex)
    }

    /// Whether the blob is present with the right content: a blob whose content does not match
    /// its digest is removed (`Present::No`), so that it is fetched again.
    pub(crate) fn check(&self, digest: &str, size: u64) -> Result<Present, Error> {
        let path = self.blob_path(digest);
        match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Present::No),
            Err(e) => return Err(Error::io(&path)(e)),
            Ok(m) if m.len() != size => {}
            Ok(_) => {
                if file_digest(&path)? == digest {
                    return Ok(Present::Yes);
                }
            }
        }
        std::fs::remove_file(&path).map_err(Error::io(&path))?;
        Ok(Present::No)
    }

    /// Reads a blob into memory, checking its digest (for manifests and configs).
    pub fn read_verified(&self, digest: &str, reference: &str) -> Result<Vec<u8>, Error> {
        let path = self.blob_path(digest);
        let bytes = std::fs::read(&path).map_err(Error::io(&path))?;
        let actual = oci::digest_of(&bytes);
        if actual != digest {
            return Err(Error::Digest {
                what: path.display().to_string(),
                reference: reference.to_string(),
                expected: digest.to_string(),
                actual,
                bytes: bytes.len() as u64,
            });
        }
        Ok(bytes)
    }

    /// Writes a blob held in memory, after checking its digest.
    pub fn put(&self, digest: &str, bytes: &[u8]) -> Result<(), Error> {
        debug_assert_eq!(oci::digest_of(bytes), digest);
        let path = self.blob_path(digest);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64)
            && file_digest(&path)? == digest
        {
            return Ok(());
        }
        crate::fs::write_atomic(&path, bytes, crate::fs::Access::Keep).map_err(Error::io(&path))
    }

    /// A temporary file for a blob being downloaded.
    pub(crate) fn partial(&self, digest: &str) -> PathBuf {
        let mut p = self.blob_path(digest).into_os_string();
        p.push(".partial");
        PathBuf::from(p)
    }
}

/// The name an `index.json` entry gives its image: `org.opencontainers.image.ref.name`, or
/// containerd's `io.containerd.image.name` (what `docker save` writes).
pub fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations
        .get(oci::CONTAINERD_NAME)
        .or_else(|| d.annotations.get(oci::REF_NAME))
        .and_then(|v| v.as_str())
}

/// `sha256:<hex>` of a file, streamed.
pub fn file_digest(path: &Path) -> Result<String, Error> {
    let mut f = std::fs::File::open(path).map_err(Error::io(path))?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(Error::io(path))?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", oci::hex(ctx.finish().as_ref())))
}

/// Appends to a file while hashing what is written.
pub(crate) struct HashingWriter {
    pub file: std::fs::File,
    pub ctx: ring::digest::Context,
    pub written: u64,
}

impl HashingWriter {
    pub fn create(path: &Path) -> Result<HashingWriter, Error> {
        Ok(HashingWriter {
            file: std::fs::File::create(path).map_err(Error::io(path))?,
            ctx: ring::digest::Context::new(&ring::digest::SHA256),
            written: 0,
        })
    }

    pub fn write(&mut self, bytes: &[u8], path: &Path) -> Result<(), Error> {
        self.ctx.update(bytes);
        self.written += bytes.len() as u64;
        self.file.write_all(bytes).map_err(Error::io(path))
    }

    pub fn finish(self, path: &Path) -> Result<(String, u64), Error> {
        self.file.sync_all().map_err(Error::io(path))?;
        Ok((
            format!("sha256:{}", oci::hex(self.ctx.finish().as_ref())),
            self.written,
        ))
    }
}
