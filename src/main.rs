//! The `accord` binary: parse the command line, run the command on an
//! async runtime. Errors end the process with one line.

use std::process::ExitCode;

use clap::Parser;

use accord::cli::Cli;

/// The allocator: each audited call makes and frees many small buffers on
/// several threads, which mimalloc serves from per-thread pages.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    match runtime.block_on(accord::commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("accord: {}", accord::telemetry::causes(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
