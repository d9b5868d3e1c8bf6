//! `triage`: the connect-triage command line (see `triage --help`).

use clap::Parser;
use connect_triage::cli::{run, Cli};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    connect_triage::logging::init_cli(cli.verbose);
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            // One line: the error and its causes, then a non-zero exit.
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}
