//! The `accord` binary: parse the command line, load the configuration,
//! start logging, run the command. Errors end the process with one line.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use accord::app::{App, open_store, shutdown_signal, signing_key};
use accord::cli::{Cli, Command, LedgerCommand};
use accord::config::Config;
use accord::telemetry;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("accord: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("accord: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let config = Config::load(cli.config.as_deref(), &args.overrides())?;
            telemetry::init(config.log_format, &config.log_level);
            tracing::debug!(?config, "configuration");
            let app = App::build(&config).await?;
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Migrate(args) => {
            let config = Config::load(cli.config.as_deref(), &args.overrides())?;
            telemetry::init(config.log_format, &config.log_level);
            let store = open_store(&config).await?;
            store.close().await;
            println!("the database schema is up to date");
            Ok(())
        }
        Command::Ledger(LedgerCommand::Verify(args)) => {
            let config = Config::load(cli.config.as_deref(), &args.overrides())?;
            telemetry::init(config.log_format, &config.log_level);
            let store = open_store(&config).await?;
            let result = accord::store::verify_ledger(&store).await;
            store.close().await;
            let head = result.context("the ledger does not verify")?;
            println!(
                "the ledger verifies: {} entries, root hash {}",
                head.size,
                hex::encode(head.root)
            );
            Ok(())
        }
        Command::Ledger(LedgerCommand::PublicKey(args)) => {
            let config = Config::load(cli.config.as_deref(), &args.overrides())?;
            telemetry::init(config.log_format, &config.log_level);
            println!("{}", signing_key(&config)?.verifier_key());
            Ok(())
        }
    }
}
