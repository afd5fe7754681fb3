use super::{NotImplemented, Terminal};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args, _observer: &Terminal) -> anyhow::Result<()> {
    Err(NotImplemented("rotate").into())
}
