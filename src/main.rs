//! The `mcp-broker` command; the commands themselves live in `cli`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use mcp_broker::config::Config;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("mcp-broker: {e}");
            return ExitCode::from(2);
        }
    };
    mcp_broker::ops::logs::init(config.ops.log_format);
    let runtime = tokio::runtime::Runtime::new().expect("the tokio runtime starts");
    match runtime.block_on(cli.run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-broker: {e}");
            ExitCode::FAILURE
        }
    }
}
