//! Log setup. Logs never hold callers' numbers or answers: events are logged by type and
//! sequence number only.

use tracing_subscriber::EnvFilter;

/// CLI logs: plain text on stderr; warnings by default, `-v` info, `-vv` debug.
pub fn init_cli(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
