//! `cherrypick compare`.

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`cherrypick compare` is not built yet")
}
