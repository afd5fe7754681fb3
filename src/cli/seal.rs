use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use capi_manage::kube::connect;
use capi_manage::manifest::parse_str;
use capi_manage::observe::ObserverExt;
use capi_manage::seal::{
    DEFAULT_CONTROLLER_NAME, DEFAULT_CONTROLLER_NAMESPACE, MergeOptions, Scope, SealOptions,
    Secret, merge_into, seal, seal_raw, to_yaml, unsealed_secret_data,
};
use zeroize::Zeroizing;

use super::{CertArgs, KubeArgs, Terminal, report_certificate, with_cert_hint};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Secret to seal (YAML, one or more documents), or `-` for standard input. With
    /// --raw: the value to seal.
    #[arg(value_name = "SECRET", default_value = "-")]
    pub input: PathBuf,
    #[command(flatten)]
    pub cert: CertArgs,
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Namespace of the sealed-secrets controller.
    #[arg(long, value_name = "NS", default_value = DEFAULT_CONTROLLER_NAMESPACE)]
    pub controller_namespace: String,
    /// Name of the sealed-secrets controller's Service.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_CONTROLLER_NAME)]
    pub controller_name: String,
    /// strict, namespace-wide or cluster-wide (default: from the Secret's annotations, else
    /// strict).
    #[arg(long, value_parser = parse_scope)]
    pub scope: Option<Scope>,
    /// Write the SealedSecret to this file (atomically) instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Seal into this existing SealedSecret file, in place (or to -o): only keys whose value
    /// changed are re-sealed when the cluster shows the current values.
    #[arg(long, value_name = "FILE", conflicts_with = "raw")]
    pub merge_into: Option<PathBuf>,
    /// Seal one raw value (the input's bytes) and print it base64-encoded, for
    /// spec.encryptedData.
    #[arg(long)]
    pub raw: bool,
    /// Name to seal under (the Secret's own by default; required by --raw in strict scope).
    #[arg(long)]
    pub name: Option<String>,
    /// Namespace to seal into (the Secret's own by default; required by --raw unless
    /// cluster-wide).
    #[arg(long)]
    pub namespace: Option<String>,
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    s.parse()
        .map_err(|e: capi_manage::seal::Error| e.to_string())
}

pub async fn run(args: Args, observer: &Terminal) -> anyhow::Result<()> {
    let stdin = args.input == Path::new("-");
    let input_name = if stdin {
        "<stdin>".to_string()
    } else {
        args.input.display().to_string()
    };
    // Read (and check) the input before any network traffic: bad input fails fast.
    let input = read_input(&args.input)?;
    let secrets = if args.raw {
        Vec::new()
    } else {
        let text = std::str::from_utf8(&input)
            .with_context(|| format!("{input_name} is not UTF-8 text"))?;
        let file = PathBuf::from(&input_name);
        let secrets = Secret::parse(text, Some(&file))?;
        if secrets.is_empty() {
            bail!("{input_name} holds no Secret: expected a YAML `kind: Secret` document");
        }
        if args.merge_into.is_some() && secrets.len() > 1 {
            bail!(
                "{input_name} holds {} Secrets: --merge-into takes exactly one",
                secrets.len()
            );
        }
        secrets
    };
    let existing = match &args.merge_into {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --merge-into file {}", path.display()))?;
            let mut objects = parse_str(&text, Some(path))?;
            if objects.len() != 1 {
                bail!(
                    "{}: --merge-into needs a file with exactly one SealedSecret, found {} objects",
                    path.display(),
                    objects.len()
                );
            }
            Some((objects.remove(0), text.starts_with("---")))
        }
        None => None,
    };

    let source = args
        .cert
        .source(&args.controller_namespace, &args.controller_name)?;
    let use_cluster =
        args.cert.cert.is_none() || args.kube.kubeconfig.is_some() || args.kube.context.is_some();
    let client = if use_cluster {
        Some(connect(&args.kube.options()).await?)
    } else {
        None
    };
    let (key, key_from) = source
        .resolve(client.as_ref(), observer)
        .await
        .map_err(with_cert_hint)?;

    let output = if args.raw {
        let mut sealed = seal_raw(
            &input,
            &key,
            args.scope.unwrap_or_default(),
            args.namespace.as_deref(),
            args.name.as_deref(),
        )?;
        sealed.push('\n');
        sealed
    } else if let Some((existing, marker)) = &existing {
        let secret = &secrets[0];
        let current = match &client {
            Some(client) => {
                let ns = existing.namespace().unwrap_or_default();
                match unsealed_secret_data(client, ns, existing.name()).await {
                    Ok(c) => c,
                    Err(e) => {
                        observer.warning(format!(
                            "cannot read the current values of Secret {ns}/{}, re-sealing every key: {}",
                            existing.name(),
                            super::one_line(&anyhow::Error::from(e))
                        ));
                        None
                    }
                }
            }
            None => None,
        };
        let merged = merge_into(
            existing,
            secret,
            &key,
            &MergeOptions {
                scope: args.scope,
                current: current.as_ref(),
            },
        )?;
        observer.success(
            format!(
                "re-sealed {} into {}{}",
                list(&merged.resealed),
                existing.identity(),
                if merged.unchanged.is_empty() {
                    String::new()
                } else {
                    format!("; unchanged: {}", list(&merged.unchanged))
                }
            ),
            None,
        );
        let yaml = to_yaml(&merged.object);
        if *marker {
            yaml
        } else {
            yaml.trim_start_matches("---\n").to_string()
        }
    } else {
        let options = SealOptions {
            scope: args.scope,
            name: args.name.clone(),
            namespace: args.namespace.clone(),
        };
        let mut out = String::new();
        for secret in &secrets {
            out.push_str(&to_yaml(&seal(secret, &key, &options)?));
        }
        out
    };
    drop(secrets);
    drop(input);

    let target = args
        .output
        .clone()
        .or_else(|| args.merge_into.clone().filter(|_| !args.raw));
    match target {
        Some(path) => write_atomically(&path, output.as_bytes())?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(output.as_bytes())?;
            stdout.flush()?;
        }
    }
    report_certificate(observer, &key, &key_from);
    Ok(())
}

fn list(keys: &[String]) -> String {
    if keys.is_empty() {
        "no keys".into()
    } else {
        keys.join(", ")
    }
}

fn read_input(path: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::new());
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read the Secret from standard input")?;
    } else {
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut buf))
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
    Ok(buf)
}

/// Writes through a temporary file in the same folder and renames it over `path`, so readers
/// see the old or the new content, never a part. An existing file keeps its permissions.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    capi_manage::fs::write_atomic(path, bytes, capi_manage::fs::Access::Keep)
        .with_context(|| format!("cannot write {}", path.display()))
}
