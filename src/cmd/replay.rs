//! `cherrypick replay`.

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`cherrypick replay` is not built yet")
}
