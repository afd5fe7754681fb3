use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use capi_manage::kube::connect;
use capi_manage::manifest::parse_str;
use capi_manage::observe::ObserverExt;
use capi_manage::seal::{
    Controller, DEFAULT_CONTROLLER_NAME, DEFAULT_CONTROLLER_NAMESPACE, MergeOptions, Scope,
    SealOptions, Secret, merge_into, reencrypt_sealed, seal, seal_files, seal_raw, secret_files,
    to_json, to_yaml, unsealed_secret_data, validate_sealed,
};
use zeroize::Zeroizing;

use super::{CertArgs, KubeArgs, Terminal, report_certificate, with_cert_hint};

/// Flags as kubeseal names them; each also reads kubeseal's `SEALED_SECRETS_<FLAG>` variable.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Secret to seal (YAML or JSON, one or more documents), or `-` for standard input
    /// (default). With --raw: the value to seal.
    #[arg(value_name = "SECRET", conflicts_with = "secret_file")]
    pub input: Option<PathBuf>,
    /// The Secret to seal, as kubeseal's -f takes it. Repeat it, or name a folder (its
    /// .yaml, .yml and .json files), to seal many files in one run.
    #[arg(
        short = 'f',
        long = "secret-file",
        value_name = "FILE",
        env = "SEALED_SECRETS_SECRET_FILE"
    )]
    pub secret_file: Vec<PathBuf>,
    /// With several inputs or a folder: write each file's SealedSecrets to DIR/<its file
    /// name> (atomically) instead of all of them to one output.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["sealed_secret_file", "raw", "merge_into", "fetch_cert", "validate", "re_encrypt"])]
    pub output_dir: Option<PathBuf>,
    /// Write the SealedSecret to this file (atomically) instead of standard output.
    #[arg(
        short = 'w',
        long = "sealed-secret-file",
        value_name = "FILE",
        env = "SEALED_SECRETS_SEALED_SECRET_FILE"
    )]
    pub sealed_secret_file: Option<PathBuf>,
    /// Output format: yaml or json, laid out as kubeseal writes them (kubeseal's default is
    /// json; ours is yaml, what a config repository holds).
    #[arg(
        short = 'o',
        long = "format",
        visible_alias = "output",
        default_value = "yaml",
        value_parser = ["yaml", "json"],
        env = "SEALED_SECRETS_FORMAT"
    )]
    pub format: String,
    #[command(flatten)]
    pub cert: CertArgs,
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Namespace of the sealed-secrets controller.
    #[arg(long, value_name = "NS", default_value = DEFAULT_CONTROLLER_NAMESPACE, env = "SEALED_SECRETS_CONTROLLER_NAMESPACE")]
    pub controller_namespace: String,
    /// Name of the sealed-secrets controller's Service.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_CONTROLLER_NAME, env = "SEALED_SECRETS_CONTROLLER_NAME")]
    pub controller_name: String,
    /// Print the sealing certificate (PEM) and nothing else, for later use with --cert.
    #[arg(long, env = "SEALED_SECRETS_FETCH_CERT", conflicts_with_all = ["raw", "merge_into"])]
    pub fetch_cert: bool,
    /// strict, namespace-wide or cluster-wide (default: from the Secret's annotations, else
    /// strict).
    #[arg(long, value_parser = parse_scope, env = "SEALED_SECRETS_SCOPE")]
    pub scope: Option<Scope>,
    /// Seal into this existing SealedSecret file, in place (or to -w): only keys whose value
    /// changed are re-sealed when the cluster shows the current values.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "raw",
        env = "SEALED_SECRETS_MERGE_INTO"
    )]
    pub merge_into: Option<PathBuf>,
    /// Seal one raw value (from --from-file, else the input's bytes) and print it
    /// base64-encoded, for spec.encryptedData.
    #[arg(long, env = "SEALED_SECRETS_RAW")]
    pub raw: bool,
    /// With --raw: the file holding the value, as kubeseal takes it (`[KEY=]FILE`; the key is
    /// not used).
    #[arg(long, value_name = "[KEY=]FILE", requires = "raw", conflicts_with_all = ["input", "secret_file"])]
    pub from_file: Option<String>,
    /// Name to seal under (the Secret's own by default; required by --raw in strict scope).
    #[arg(long, env = "SEALED_SECRETS_NAME")]
    pub name: Option<String>,
    /// Namespace for a Secret that names none, as kubeseal's -n (required by --raw unless
    /// cluster-wide).
    #[arg(long, short = 'n', env = "SEALED_SECRETS_NAMESPACE")]
    pub namespace: Option<String>,
    /// Ask the controller whether it can decrypt the input's SealedSecrets; exit 1 when it
    /// cannot.
    #[arg(long, env = "SEALED_SECRETS_VALIDATE", conflicts_with_all = ["raw", "merge_into", "fetch_cert", "re_encrypt"])]
    pub validate: bool,
    /// Have the controller re-encrypt the input's SealedSecrets with its newest key.
    #[arg(long, alias = "rotate", env = "SEALED_SECRETS_RE_ENCRYPT", conflicts_with_all = ["raw", "merge_into", "fetch_cert"])]
    pub re_encrypt: bool,
    /// With --validate and --re-encrypt: reach the controller's HTTP API at this URL (a
    /// `kubectl port-forward`, an ingress) instead of through the API server's service proxy.
    #[arg(long, value_name = "URL")]
    pub controller_url: Option<String>,
    /// Seal a Secret that holds no values instead of refusing it.
    #[arg(long, env = "SEALED_SECRETS_ALLOW_EMPTY_DATA")]
    pub allow_empty_data: bool,
}

/// An environment variable's value, when set and not empty.
fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    s.parse()
        .map_err(|e: capi_manage::seal::Error| e.to_string())
}

impl Args {
    /// kubeseal's variables for the flags shared with other commands.
    pub fn apply_env(&mut self) {
        if self.cert.cert.is_none() {
            self.cert.cert = env_value("SEALED_SECRETS_CERT");
        }
        if self.kube.kubeconfig.is_none() {
            self.kube.kubeconfig = env_value("SEALED_SECRETS_KUBECONFIG").map(PathBuf::from);
        }
        if self.kube.context.is_none() {
            self.kube.context = env_value("SEALED_SECRETS_CONTEXT");
        }
    }

    /// Whether the run needs neither the network nor a cluster: the certificate is a --cert
    /// file, no cluster is named and the controller is not asked anything.
    pub fn offline(&self) -> bool {
        self.cert
            .cert
            .as_deref()
            .is_some_and(|c| !c.contains("://"))
            && self.kube.kubeconfig.is_none()
            && self.kube.context.is_none()
            && !self.validate
            && !self.re_encrypt
    }

    /// Several files or a folder to seal in one run.
    fn many(&self) -> bool {
        self.output_dir.is_some()
            || self.secret_file.len() > 1
            || self
                .secret_file
                .first()
                .or(self.input.as_ref())
                .is_some_and(|p| p.is_dir())
    }
}

pub async fn run(mut args: Args, observer: &Terminal) -> anyhow::Result<()> {
    args.apply_env();
    if args.fetch_cert {
        let (key, key_from, _) = sealing_key(&args, observer).await?;
        return write_certificate(&args, &key, &key_from, observer);
    }
    if args.many() {
        let files = many_inputs(&args)?;
        let (key, key_from, _) = sealing_key(&args, observer).await?;
        return seal_many(&args, &files, &key, &key_from, observer);
    }
    let input_path = input_path(&args);
    if args.validate || args.re_encrypt {
        return through_controller(&args, &input_path).await;
    }
    let input = prepare(&args, &input_path)?;
    let (key, key_from, client) = sealing_key(&args, observer).await?;
    let current = match (&input.existing, &client) {
        (Some((existing, _)), Some(client)) => {
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
        _ => None,
    };
    finish(&args, input, &key, &key_from, current.as_ref(), observer)
}

/// [`run`] for [`Args::offline`] runs: no async runtime, no network.
pub fn run_offline(mut args: Args, observer: &Terminal) -> anyhow::Result<()> {
    args.apply_env();
    let offline_key = |args: &Args| -> anyhow::Result<_> {
        let source = args
            .cert
            .source(&args.controller_namespace, &args.controller_name)?;
        source
            .resolve_offline()
            .map_err(with_cert_hint)?
            .context("the certificate is not a file")
    };
    if args.fetch_cert {
        let (key, key_from) = offline_key(&args)?;
        return write_certificate(&args, &key, &key_from, observer);
    }
    if args.many() {
        let files = many_inputs(&args)?;
        let (key, key_from) = offline_key(&args)?;
        return seal_many(&args, &files, &key, &key_from, observer);
    }
    let input = prepare(&args, &input_path(&args))?;
    let (key, key_from) = offline_key(&args)?;
    finish(&args, input, &key, &key_from, None, observer)
}

/// The input of a one-file run, read and checked before the certificate is looked for: bad
/// input fails fast.
struct Input {
    bytes: Zeroizing<Vec<u8>>,
    secrets: Vec<Secret>,
    /// The --merge-into SealedSecret, and whether its file starts with `---`.
    existing: Option<(capi_manage::manifest::Object, bool)>,
}

fn prepare(args: &Args, input_path: &Path) -> anyhow::Result<Input> {
    let stdin = input_path == Path::new("-");
    let input_name = if stdin {
        "<stdin>".to_string()
    } else {
        input_path.display().to_string()
    };
    let input = read_input(input_path)?;
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
    Ok(Input {
        bytes: input,
        secrets,
        existing,
    })
}

/// Seals the input with the key and writes the result.
fn finish(
    args: &Args,
    input: Input,
    key: &capi_manage::seal::SealingKey,
    key_from: &str,
    current: Option<&capi_manage::seal::SecretData>,
    observer: &Terminal,
) -> anyhow::Result<()> {
    let json = args.format == "json";
    let output = if args.raw {
        // As kubeseal prints it: no newline after the value.
        seal_raw(
            &input.bytes,
            key,
            args.scope.unwrap_or_default(),
            args.namespace.as_deref(),
            args.name.as_deref(),
        )?
    } else if let Some((existing, marker)) = &input.existing {
        let secret = &input.secrets[0];
        let merged = merge_into(
            existing,
            secret,
            key,
            &MergeOptions {
                scope: args.scope,
                current,
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
        if json {
            to_json(&merged.object)
        } else if *marker {
            yaml
        } else {
            yaml.trim_start_matches("---\n").to_string()
        }
    } else {
        let mut out = String::new();
        for secret in &input.secrets {
            // As kubeseal: --namespace is for a Secret that names none.
            let options = SealOptions {
                scope: args.scope,
                name: args.name.clone(),
                namespace: args
                    .namespace
                    .clone()
                    .filter(|_| secret.namespace().is_none()),
                allow_empty_data: args.allow_empty_data,
            };
            let sealed = seal(secret, key, &options)?;
            out.push_str(&if json {
                to_json(&sealed)
            } else {
                to_yaml(&sealed)
            });
        }
        out
    };
    drop(input);

    let target = args
        .sealed_secret_file
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
    report_certificate(observer, key, key_from);
    Ok(())
}

/// The files of a many-file run (each -f, or the argument; folders listed), checked before the
/// certificate is looked for.
fn many_inputs(args: &Args) -> anyhow::Result<Vec<PathBuf>> {
    for (given, flag) in [
        (args.raw, "--raw"),
        (args.merge_into.is_some(), "--merge-into"),
        (args.name.is_some(), "--name"),
        (args.validate, "--validate"),
        (args.re_encrypt, "--re-encrypt"),
    ] {
        if given {
            bail!("{flag} takes one Secret file, not several or a folder");
        }
    }
    let inputs: Vec<PathBuf> = if args.secret_file.is_empty() {
        args.input.iter().cloned().collect()
    } else {
        args.secret_file.clone()
    };
    if inputs.iter().any(|p| p == Path::new("-")) {
        bail!("standard input (`-`) cannot be one of several inputs: name the files");
    }
    let files = secret_files(&inputs)?;
    if files.is_empty() {
        bail!(
            "no .yaml, .yml or .json file to seal in {}",
            list_paths(&inputs)
        );
    }
    if args.output_dir.is_some() {
        let mut names: Vec<_> = files.iter().map(|f| f.file_name()).collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            bail!(
                "two inputs are named {}: --output-dir writes each to a file of its name",
                Path::new(w[0].unwrap_or_default()).display()
            );
        }
    }
    Ok(files)
}

fn list_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Seals many files with one key: each to --output-dir/<its name>, or all to one output.
fn seal_many(
    args: &Args,
    files: &[PathBuf],
    key: &capi_manage::seal::SealingKey,
    key_from: &str,
    observer: &Terminal,
) -> anyhow::Result<()> {
    let options = SealOptions {
        scope: args.scope,
        name: None,
        namespace: args.namespace.clone(),
        allow_empty_data: args.allow_empty_data,
    };
    let sealed = seal_files(files, key, &options)?;
    let render = |objects: &[capi_manage::manifest::Object]| {
        let mut out = String::new();
        for o in objects {
            out.push_str(&if args.format == "json" {
                to_json(o)
            } else {
                to_yaml(o)
            });
        }
        out
    };
    match &args.output_dir {
        Some(dir) => {
            for file in &sealed {
                let name = file.path.file_name().context("an input has no file name")?;
                write_atomically(&dir.join(name), render(&file.sealed).as_bytes())?;
            }
            observer.success(
                format!("sealed {} files into {}", sealed.len(), dir.display()),
                None,
            );
        }
        None => {
            let all: Vec<_> = sealed.into_iter().flat_map(|f| f.sealed).collect();
            let output = render(&all);
            match &args.sealed_secret_file {
                Some(path) => write_atomically(path, output.as_bytes())?,
                None => {
                    let mut stdout = std::io::stdout().lock();
                    stdout.write_all(output.as_bytes())?;
                    stdout.flush()?;
                }
            }
        }
    }
    report_certificate(observer, key, key_from);
    Ok(())
}

/// The input: --from-file (its `KEY=` dropped), -f, the argument, else standard input (`-`).
fn input_path(args: &Args) -> PathBuf {
    match (&args.from_file, args.secret_file.first(), &args.input) {
        (Some(f), _, _) => PathBuf::from(f.split_once('=').map_or(f.as_str(), |(_, p)| p)),
        (None, Some(f), _) | (None, None, Some(f)) => f.clone(),
        (None, None, None) => PathBuf::from("-"),
    }
}

/// `--validate` and `--re-encrypt`: each SealedSecret of the input sent to the controller.
async fn through_controller(args: &Args, input_path: &Path) -> anyhow::Result<()> {
    let name = if input_path == Path::new("-") {
        "<stdin>".to_string()
    } else {
        input_path.display().to_string()
    };
    let input = read_input(input_path)?;
    let text = std::str::from_utf8(&input).with_context(|| format!("{name} is not UTF-8 text"))?;
    let sealed: Vec<_> = parse_str(text, Some(Path::new(&name)))?
        .into_iter()
        .filter(|o| o.kind() == "SealedSecret")
        .collect();
    if sealed.is_empty() {
        bail!("{name} holds no SealedSecret");
    }
    let client = match &args.controller_url {
        Some(_) => None,
        None => Some(connect(&args.kube.options()).await?),
    };
    let controller = match (&args.controller_url, &client) {
        (Some(url), _) => Controller::Url(url),
        (None, Some(client)) => Controller::Service {
            client,
            namespace: &args.controller_namespace,
            name: &args.controller_name,
        },
        (None, None) => unreachable!("a client is made without --controller-url"),
    };
    if args.validate {
        for s in &sealed {
            if !validate_sealed(controller, s)
                .await
                .map_err(with_cert_hint)?
            {
                bail!(
                    "sealed-secrets controller {controller} cannot decrypt {}",
                    s.identity()
                );
            }
        }
        return Ok(());
    }
    let mut out = String::new();
    for s in &sealed {
        let new = reencrypt_sealed(controller, s)
            .await
            .map_err(with_cert_hint)?;
        out.push_str(&if args.format == "json" {
            to_json(&new)
        } else {
            to_yaml(&new)
        });
    }
    match &args.sealed_secret_file {
        Some(path) => write_atomically(path, out.as_bytes())?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(out.as_bytes())?;
            stdout.flush()?;
        }
    }
    Ok(())
}

/// The sealing key: from --cert (a file or URL) or from the controller through the cluster;
/// also the cluster's client when one is used.
async fn sealing_key(
    args: &Args,
    observer: &Terminal,
) -> anyhow::Result<(
    capi_manage::seal::SealingKey,
    String,
    Option<::kube::Client>,
)> {
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
    Ok((key, key_from, client))
}

/// `--fetch-cert`: the certificate as PEM on standard output (or to -w).
fn write_certificate(
    args: &Args,
    key: &capi_manage::seal::SealingKey,
    key_from: &str,
    observer: &Terminal,
) -> anyhow::Result<()> {
    let pem = key.certificate_pem();
    match &args.sealed_secret_file {
        Some(path) => write_atomically(path, pem.as_bytes())?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(pem.as_bytes())?;
            stdout.flush()?;
        }
    }
    report_certificate(observer, key, key_from);
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
