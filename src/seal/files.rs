//! Sealing many Secret files in one go, with one key: each file read, checked and sealed in
//! turn, so a folder of Secrets costs one certificate parse, not one process per file.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::{Error, SealOptions, SealingKey, Secret, seal};
use crate::manifest::Object;

/// The SealedSecrets of one input file, in the order of its Secrets.
#[derive(Debug, Clone)]
pub struct SealedFile {
    /// The input file.
    pub path: PathBuf,
    /// One SealedSecret per Secret of the file.
    pub sealed: Vec<Object>,
}

/// Whether a folder entry is a manifest file: `.yaml`, `.yml` or `.json`.
fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// The files a list of inputs names: a file as it is; a folder's `.yaml`, `.yml` and `.json`
/// files (not those of its subfolders), sorted by name.
///
/// # Errors
///
/// [`Error::SecretFile`] naming an input or folder that cannot be read.
pub fn secret_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for input in inputs {
        let unreadable = |source| Error::SecretFile {
            path: input.clone(),
            source,
        };
        if !std::fs::metadata(input).map_err(unreadable)?.is_dir() {
            out.push(input.clone());
            continue;
        }
        let mut files = Vec::new();
        for entry in std::fs::read_dir(input).map_err(unreadable)? {
            let path = entry.map_err(unreadable)?.path();
            if is_manifest(&path) && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        out.extend(files);
    }
    Ok(out)
}

/// The Secrets of one file; its bytes are wiped once read.
///
/// # Errors
///
/// [`Error::SecretFile`] when it cannot be read or is not UTF-8 text, [`Error::NoSecret`]
/// when it holds no document, and the errors of [`Secret::parse`].
pub fn read_secret_file(path: &Path) -> Result<Vec<Secret>, Error> {
    let unreadable = |source| Error::SecretFile {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Zeroizing::new(Vec::new());
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(unreadable)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        unreadable(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text: {e}"),
        ))
    })?;
    let secrets = Secret::parse(text, Some(path))?;
    if secrets.is_empty() {
        return Err(Error::NoSecret {
            path: path.to_path_buf(),
        });
    }
    Ok(secrets)
}

/// Seals every Secret of each file with `key`. `options.namespace`, as kubeseal's
/// `--namespace`, is used only for the Secrets that name no namespace.
///
/// Fails closed: the first file or Secret that cannot be sealed stops the run, and nothing is
/// returned for the others.
///
/// # Errors
///
/// The errors of [`read_secret_file`] and [`seal`], each naming the file.
pub fn seal_files(
    files: &[PathBuf],
    key: &SealingKey,
    options: &SealOptions,
) -> Result<Vec<SealedFile>, Error> {
    files
        .iter()
        .map(|path| {
            let sealed = read_secret_file(path)?
                .iter()
                .map(|secret| {
                    let options = SealOptions {
                        namespace: options
                            .namespace
                            .clone()
                            .filter(|_| secret.namespace().is_none()),
                        ..options.clone()
                    };
                    seal(secret, key, &options)
                })
                .collect::<Result<_, _>>()?;
            Ok(SealedFile {
                path: path.clone(),
                sealed,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_files_are_yaml_and_json() {
        assert!(is_manifest(Path::new("a/secret.yaml")));
        assert!(is_manifest(Path::new("secret.yml")));
        assert!(is_manifest(Path::new("secret.json")));
        assert!(!is_manifest(Path::new("README.md")));
        assert!(!is_manifest(Path::new("yaml")));
    }
}
