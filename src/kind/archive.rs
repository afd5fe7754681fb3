//! A tar archive of files written as it is read: the files are streamed from disk one chunk at
//! a time (never whole in memory), each checked against its size and, when given, its digest.

use std::path::PathBuf;

use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// One member of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveFile {
    /// Its name in the archive, relative (`index.json`, `blobs/sha256/<hex>`); at most 100
    /// bytes.
    pub name: String,
    /// What it holds.
    pub content: ArchiveContent,
}

/// Where a member's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveContent {
    /// These bytes.
    Bytes(Vec<u8>),
    /// A file on this host, streamed.
    File {
        /// The file.
        path: PathBuf,
        /// Its size: a file of another size is refused.
        size: u64,
        /// `sha256:<hex>` it must hash to, checked while it streams.
        digest: Option<String>,
    },
}

impl ArchiveFile {
    /// The member's size.
    pub fn size(&self) -> u64 {
        match &self.content {
            ArchiveContent::Bytes(b) => b.len() as u64,
            ArchiveContent::File { size, .. } => *size,
        }
    }
}

/// Why the archive could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ArchiveError {
    /// A member name that a ustar header cannot hold.
    #[error("archive member name {name:?} is longer than 100 bytes")]
    Name { name: String },
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file of another size than announced.
    #[error("{} holds {actual} bytes, not the {expected} its descriptor gives", path.display())]
    Size {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    /// A file whose content does not match its digest.
    #[error("{} does not match its digest {expected} (its content hashes to {actual})", path.display())]
    Digest {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// The reading side went away.
    #[error("the archive's reader stopped")]
    Write(#[source] std::io::Error),
}

/// A ustar header for a regular file (owner root, mtime 0).
pub(crate) fn tar_header(name: &str, size: u64, mode: u32) -> Option<[u8; 512]> {
    let mut h = [0u8; 512];
    let bytes = name.as_bytes();
    if bytes.len() > 100 {
        return None;
    }
    h[..bytes.len()].copy_from_slice(bytes);
    let octal = |buf: &mut [u8], v: u64| {
        let s = format!("{:0width$o}\0", v, width = buf.len() - 1);
        buf.copy_from_slice(s.as_bytes());
    };
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 0);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    Some(h)
}

/// The zeros that pad `size` bytes of content to a 512-byte block.
fn padding(size: u64) -> usize {
    ((512 - size % 512) % 512) as usize
}

/// Writes the archive of `files` to `out`, streaming each file, then the two zero blocks that
/// end a tar archive.
pub(crate) async fn write_tar<W: AsyncWrite + Unpin>(
    files: &[ArchiveFile],
    out: &mut W,
) -> Result<(), ArchiveError> {
    let mut buf = vec![0u8; 1 << 16];
    for f in files {
        let header = tar_header(&f.name, f.size(), 0o644).ok_or_else(|| ArchiveError::Name {
            name: f.name.clone(),
        })?;
        match &f.content {
            ArchiveContent::Bytes(b) => {
                out.write_all(&header).await.map_err(ArchiveError::Write)?;
                out.write_all(b).await.map_err(ArchiveError::Write)?;
            }
            ArchiveContent::File { path, size, digest } => {
                let read = |source| ArchiveError::Read {
                    path: path.clone(),
                    source,
                };
                let mut file = tokio::fs::File::open(path).await.map_err(read)?;
                let actual = file.metadata().await.map_err(read)?.len();
                if actual != *size {
                    return Err(ArchiveError::Size {
                        path: path.clone(),
                        expected: *size,
                        actual,
                    });
                }
                out.write_all(&header).await.map_err(ArchiveError::Write)?;
                let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
                let mut sent = 0u64;
                while sent < *size {
                    let want = buf.len().min((*size - sent) as usize);
                    let n = file.read(&mut buf[..want]).await.map_err(read)?;
                    if n == 0 {
                        return Err(ArchiveError::Size {
                            path: path.clone(),
                            expected: *size,
                            actual: sent,
                        });
                    }
                    ctx.update(&buf[..n]);
                    out.write_all(&buf[..n])
                        .await
                        .map_err(ArchiveError::Write)?;
                    sent += n as u64;
                }
                if let Some(expected) = digest {
                    let actual = format!(
                        "sha256:{}",
                        ctx.finish()
                            .as_ref()
                            .iter()
                            .map(|b| format!("{b:02x}"))
                            .collect::<String>()
                    );
                    if actual != *expected {
                        return Err(ArchiveError::Digest {
                            path: path.clone(),
                            expected: expected.clone(),
                            actual,
                        });
                    }
                }
            }
        }
        out.write_all(&[0u8; 512][..padding(f.size())])
            .await
            .map_err(ArchiveError::Write)?;
    }
    out.write_all(&[0u8; 1024])
        .await
        .map_err(ArchiveError::Write)?;
    out.flush().await.map_err(ArchiveError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn members_stream_in_order_padded_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let blob = dir.path().join("blob");
        let content = vec![7u8; 70_000];
        std::fs::write(&blob, &content).unwrap();
        let digest = format!(
            "sha256:{}",
            ring::digest::digest(&ring::digest::SHA256, &content)
                .as_ref()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let files = vec![
            ArchiveFile {
                name: "index.json".into(),
                content: ArchiveContent::Bytes(b"{}".to_vec()),
            },
            ArchiveFile {
                name: "blobs/sha256/x".into(),
                content: ArchiveContent::File {
                    path: blob.clone(),
                    size: content.len() as u64,
                    digest: Some(digest.clone()),
                },
            },
        ];
        let mut out = Vec::new();
        write_tar(&files, &mut out).await.unwrap();
        assert_eq!(out.len(), 512 + 512 + 512 + 70_000 + padding(70_000) + 1024);
        assert_eq!(out.len() % 512, 0);
        assert_eq!(&out[..10], b"index.json");
        assert_eq!(&out[512..514], b"{}");
        assert_eq!(&out[1024..1038], b"blobs/sha256/x");
        assert_eq!(&out[1536..1536 + 70_000], &content[..]);

        // A flipped byte, or another size, is refused.
        let mut bad = content.clone();
        bad[5] = 8;
        std::fs::write(&blob, &bad).unwrap();
        let e = write_tar(&files, &mut Vec::new()).await.unwrap_err();
        assert!(matches!(e, ArchiveError::Digest { .. }), "{e}");
        std::fs::write(&blob, &content[1..]).unwrap();
        let e = write_tar(&files, &mut Vec::new()).await.unwrap_err();
        assert!(
            matches!(e, ArchiveError::Size { actual: 69_999, .. }),
            "{e}"
        );
        let long = ArchiveFile {
            name: "x".repeat(101),
            content: ArchiveContent::Bytes(Vec::new()),
        };
        assert!(matches!(
            write_tar(&[long], &mut Vec::new()).await.unwrap_err(),
            ArchiveError::Name { .. }
        ));
    }
}
