//! `cherrypick paper`.

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`cherrypick paper` is not built yet")
}
