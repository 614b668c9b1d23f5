//! `cherrypick`: the command-line front end. One module per subcommand; the work lives in the
//! `optimizer`, `workload` and `experiments` crates.

mod cmd;
mod exit;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cherrypick",
    version,
    about = "Find the cheapest cloud configuration for a data-processing job"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compare strategies on recorded runs over many seeds; write tables, traces and plots.
    Compare(cmd::compare::Args),
    /// Replay one strategy on one recorded workload (or replay a search journal).
    Replay(cmd::replay::Args),
    /// Search a configuration space live: launch the workload under each proposed configuration.
    Search(cmd::search::Args),
    /// The workload on its own: generate a dataset, preprocess, read-speed test, regression.
    #[command(subcommand)]
    Workload(cmd::workload::Command),
    /// Work with search journals.
    #[command(subcommand)]
    Journal(cmd::journal::Command),
    /// Print the CherryPick paper's Table 1 from its recorded runs.
    Paper(cmd::paper::Args),
    /// Choose a strategy's settings by cross-validation over workloads; report held-out figures.
    Tune(cmd::tune::Args),
    /// End-to-end demo: small synthetic dataset, local backend, `bo` search.
    Demo(cmd::demo::Args),
    /// Stops the jobs of a search that died outright (started by `search` itself).
    #[command(hide = true)]
    Guard,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Output piped into `head` and the like: a report or a table ends quietly when the reader
    // goes away, as other command-line tools do, instead of panicking on the failed write. Not
    // a search: it has paid probes running and a journal to keep, so it stops printing instead
    // (its output ignores write errors) and carries on.
    if !matches!(cli.command, Command::Search(_)) {
        // SAFETY: restores the default disposition of one signal before any thread is started.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    // Cloud Storage outside an emulator signs in with the same stack as the Dataproc client.
    workload::set_sign_in(launch::dataproc::storage_sign_in);
    let result = match cli.command {
        Command::Compare(a) => cmd::compare::run(a),
        Command::Replay(a) => cmd::replay::run(a),
        Command::Search(a) => cmd::search::run(a),
        Command::Workload(c) => cmd::workload::run(c),
        Command::Journal(c) => cmd::journal::run(c),
        Command::Paper(a) => cmd::paper::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Tune(a) => cmd::tune::run(a),
        Command::Guard => {
            launch::guard::serve(std::io::stdin().lock());
            Ok(())
        }
    };
    exit::report(result)
}
