//! What each command of the `accord` binary does.

use anyhow::Context;

use crate::app::{App, Setup, checkpoint_keys, open_store, shutdown_signal};
#[cfg(feature = "dev")]
use crate::cli::DevCommand;
use crate::cli::{Cli, Command, LedgerCommand};
use crate::config::Config;
use crate::ledger::export::{ExportSummary, Line, OfflineVerifier};
use crate::telemetry;

/// Runs the command `cli` names.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let config = configure(cli.config.as_deref(), &args.overrides())?;
            tracing::debug!(?config, "configuration");
            let app = App::build(&config).await?;
            let served = app.run_until_stopped(shutdown_signal()).await;
            telemetry::shutdown();
            served
        }
        #[cfg(feature = "dev")]
        Command::Dev(DevCommand::Init(args)) => {
            let done = crate::dev::setup::init(&args.dir).await?;
            for file in &done.files {
                println!("wrote {}", file.display());
            }
            println!(
                "registered the development agencies leeds-cc and leeds-th\n\
                 serve:      accord serve --config {}\n\
                 a token:    accord dev token --dir {} --agency leeds-cc --roles social_worker",
                done.config_file.display(),
                args.dir.display()
            );
            Ok(())
        }
        #[cfg(feature = "dev")]
        Command::Dev(DevCommand::Token(args)) => {
            let token = crate::dev::setup::token(
                &args.dir,
                &args.agency,
                &args.principal,
                &args.roles,
                args.minutes,
            )?;
            println!("{token}");
            Ok(())
        }
        Command::Console(args) => {
            let overrides = crate::config::Overrides::default();
            let mut config = configure(cli.config.as_deref(), &overrides)?;
            if let Some(listen) = args.listen {
                config.console_listen = listen;
            }
            let console = crate::console::Console::build(&config).await?;
            console.run_until_stopped(shutdown_signal()).await
        }
        Command::Probe(args) => {
            let address = match args.address {
                Some(address) => address,
                None => {
                    let config =
                        Config::load(cli.config.as_deref(), &crate::config::Overrides::default())?;
                    let mut address = config.metrics_listen;
                    if address.ip().is_unspecified() {
                        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                    }
                    address
                }
            };
            let status = crate::monitor::http::probe(address, &args.path).await?;
            println!("{status}");
            Ok(())
        }
        Command::Backup(args) => {
            let config = configure(cli.config.as_deref(), &args.storage.overrides())?;
            if config
                .database_url
                .as_deref()
                .is_some_and(|u| u.starts_with("postgres"))
            {
                anyhow::bail!(
                    "accord backup copies the embedded SQLite database; back PostgreSQL up with \
                     pg_dump or continuous archiving (docs/operations.md)"
                );
            }
            let done = crate::backup::sqlite(&config.data_dir, &args.to)?;
            println!(
                "backed up the ledger at tree size {} to {}",
                done.tree_size,
                done.file.display()
            );
            let key = config.ledger_key_path();
            if args.with_key {
                let copy = args.to.join("ledger-signing.key");
                let text = std::fs::read_to_string(&key)
                    .with_context(|| format!("cannot read the signing key {}", key.display()))?;
                crate::app::write_private(&copy, &text)
                    .with_context(|| format!("cannot write {}", copy.display()))?;
                println!("copied the signing key to {}", copy.display());
            } else {
                println!(
                    "keep the signing key {} too (it is not in the backup)",
                    key.display()
                );
            }
            Ok(())
        }
        Command::Migrate(args) => {
            let config = configure(cli.config.as_deref(), &args.overrides())?;
            let store = open_store(&config, Setup::CreateIfMissing).await?;
            store.close().await;
            println!("the database schema is up to date");
            Ok(())
        }
        Command::Ledger(LedgerCommand::Verify(args)) => match &args.export {
            Some(file) => {
                let summary = verify_export(file, &args.public_key)?;
                println!(
                    "the export verifies: {} entries, {} signed checkpoints; entries 0 to {} are covered by the checkpoint of size {} (root hash {})",
                    summary.entries,
                    summary.checkpoints,
                    summary.signed.size.saturating_sub(1),
                    summary.signed.size,
                    hex::encode(summary.signed.root)
                );
                print_signers(&summary);
                Ok(())
            }
            None => {
                let config = configure(cli.config.as_deref(), &args.storage.overrides())?;
                let store = open_store(&config, Setup::MustExist).await?;
                let keys = if args.public_key.is_empty() {
                    checkpoint_keys(&config, Setup::MustExist).map(|k| k.verifier_keys())
                } else {
                    Ok(args.public_key.clone())
                };
                let result = match keys {
                    Ok(keys) => verify_database(&store, &keys).await,
                    Err(e) => Err(e),
                };
                store.close().await;
                let (head, summary) = result?;
                println!(
                    "the ledger verifies: {} entries, root hash {}",
                    head.size,
                    hex::encode(head.root)
                );
                match summary {
                    Some(summary) => {
                        println!(
                            "{} signed checkpoints verify; the latest covers {} entries",
                            summary.checkpoints, summary.signed.size
                        );
                        print_signers(&summary);
                    }
                    None => println!("no checkpoint has been signed yet"),
                }
                Ok(())
            }
        },
        Command::Ledger(LedgerCommand::Export(args)) => {
            let config = configure(cli.config.as_deref(), &args.storage.overrides())?;
            let keys = checkpoint_keys(&config, Setup::MustExist)?.verifier_keys();
            let store = open_store(&config, Setup::MustExist).await?;
            let result = export(&store, &keys, &args.output).await;
            store.close().await;
            let entries = result?;
            eprintln!("exported {entries} entries");
            Ok(())
        }
        Command::Ledger(LedgerCommand::Report(args)) => {
            let config = configure(cli.config.as_deref(), &args.storage.overrides())?;
            let subject = crate::domain::SubjectId::parse_name(&args.subject)
                .map_err(|e| anyhow::anyhow!("--subject {e}"))?;
            let agency = args
                .agency
                .as_deref()
                .map(crate::domain::AgencyCode::parse)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--agency {e}"))?;
            let store = open_store(&config, Setup::MustExist).await?;
            let filter = crate::service::subject_access_filter(
                &subject,
                agency.as_ref().map(crate::domain::AgencyCode::as_str),
            );
            let result = crate::store::all_entries(&store, &filter)
                .await
                .context("cannot read the ledger");
            store.close().await;
            let accesses: Vec<_> = result?
                .into_iter()
                .map(crate::service::SubjectAccess::from)
                .collect();
            let mut out = output(&args.output)?;
            crate::report::write_report(
                &subject,
                chrono::Utc::now(),
                &accesses,
                args.format,
                &mut out,
            )
            .and_then(|()| std::io::Write::flush(&mut out))
            .with_context(|| format!("cannot write {}", args.output.display()))?;
            eprintln!("reported {} accesses", accesses.len());
            Ok(())
        }
        Command::Ledger(LedgerCommand::NewKey(args)) => {
            let config = configure(cli.config.as_deref(), &args.overrides())?;
            println!("{}", crate::app::new_signing_key(&config)?.verifier_key());
            Ok(())
        }
        Command::Ledger(LedgerCommand::PublicKey(args)) => {
            let config = configure(cli.config.as_deref(), &args.storage.overrides())?;
            let keys = checkpoint_keys(&config, Setup::MustExist)?;
            if args.all {
                for key in keys.verifier_keys() {
                    println!("{key}");
                }
            } else {
                println!("{}", keys.current().verifier_key());
            }
            Ok(())
        }
    }
}

/// Loads the configuration, starts logging as it says, and warns once
/// about `ACCORD_*` variables that name no setting.
fn configure(
    file: Option<&std::path::Path>,
    overrides: &crate::config::Overrides,
) -> anyhow::Result<Config> {
    let config = Config::load(file, overrides)?;
    telemetry::init(
        config.log_format,
        &config.log_level,
        config.otlp_endpoint.as_deref(),
    )?;
    let unknown = Config::unknown_environment();
    if !unknown.is_empty() {
        tracing::warn!(
            variables = unknown.join(","),
            "ignoring environment variables that name no Accord setting"
        );
    }
    Ok(config)
}

/// Writes the ledger in `store` to `output` (`-`: standard output);
/// returns how many entries it holds.
async fn export(
    store: &crate::store::SqlStore,
    verifier_keys: &[String],
    output: &std::path::Path,
) -> anyhow::Result<u64> {
    use std::io::Write;
    let mut out = self::output(output)?;
    let mut write = |line: &Line| -> anyhow::Result<()> {
        serde_json::to_writer(&mut out, line)?;
        out.write_all(b"\n")?;
        Ok(())
    };
    let size = export_lines(store, verifier_keys, |line| write(&line)).await?;
    out.flush().context("cannot write the export")?;
    Ok(size)
}

/// Hands `each` the lines of an export of the ledger in `store` by a
/// service publishing `verifier_keys`, header first; returns how many
/// entries it held.
async fn export_lines(
    store: &crate::store::SqlStore,
    verifier_keys: &[String],
    mut each: impl FnMut(Line) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    each(export_header(verifier_keys))?;
    let mut cursor = crate::store::ExportCursor::open(store).await?;
    loop {
        let lines = cursor
            .next_lines()
            .await
            .context("cannot read the ledger")?;
        if lines.is_empty() {
            return Ok(cursor.size());
        }
        for line in lines {
            each(line)?;
        }
    }
}

/// The header of an export by a service publishing `verifier_keys`
/// (the current one first).
fn export_header(verifier_keys: &[String]) -> Line {
    Line::Header {
        format: crate::ledger::export::FORMAT.to_owned(),
        verifier_key: verifier_keys.first().cloned().unwrap_or_default(),
        verifier_keys: verifier_keys.to_vec(),
    }
}

/// Checks the tree of the ledger in `store` and every signed checkpoint
/// against `keys`, as an export of it would be checked; the checkpoints'
/// summary, unless none has been signed yet.
async fn verify_database(
    store: &crate::store::SqlStore,
    keys: &[String],
) -> anyhow::Result<(crate::ledger::TreeHead, Option<ExportSummary>)> {
    let head = crate::store::verify_ledger(store)
        .await
        .context("the ledger does not verify")?;
    let mut verifier = OfflineVerifier::new(keys);
    let fail = "the ledger's checkpoints do not verify";
    export_lines(store, keys, |line| verifier.check(line).context(fail)).await?;
    match verifier.finish() {
        Ok(summary) => Ok((head, Some(summary))),
        Err(crate::ledger::export::ExportError::NoCheckpoint) => Ok((head, None)),
        Err(e) => Err(anyhow::Error::new(e).context(fail)),
    }
}

/// Prints which keys signed the checkpoints of a verified ledger.
fn print_signers(summary: &ExportSummary) {
    for (key, checkpoints) in &summary.signed_by {
        println!("signed by {key}: {checkpoints} checkpoints");
    }
}

/// Checks an export file with the verifier keys alone.
fn verify_export(file: &std::path::Path, keys: &[String]) -> anyhow::Result<ExportSummary> {
    use std::io::BufRead;
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
    );
    let mut verifier = OfflineVerifier::new(keys);
    for line in reader.lines() {
        let line = line.with_context(|| format!("cannot read {}", file.display()))?;
        verifier.feed(&line).context("the export does not verify")?;
    }
    verifier.finish().context("the export does not verify")
}

/// A buffered writer to `path`, or to standard output for `-`.
fn output(path: &std::path::Path) -> anyhow::Result<std::io::BufWriter<Box<dyn std::io::Write>>> {
    let sink: Box<dyn std::io::Write> = if path == std::path::Path::new("-") {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )
    };
    Ok(std::io::BufWriter::new(sink))
}
