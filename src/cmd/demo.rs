//! `cherrypick demo`.

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`cherrypick demo` is not built yet")
}
