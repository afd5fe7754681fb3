use super::NotImplemented;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A cluster name (clusters/<name>) or a folder with a kustomization.yaml.
    pub target: String,
}

pub async fn run(_args: Args) -> anyhow::Result<()> {
    Err(NotImplemented("plan").into())
}
