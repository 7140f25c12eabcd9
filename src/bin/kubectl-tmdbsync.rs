//! `kubectl-tmdbsync`: the kubectl plugin (`kubectl tmdbsync …`). Parses and dispatches to
//! `tmdbsync::plugin`.

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let cli = tmdbsync::plugin::Cli::parse();
    match tmdbsync::plugin::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
