//! The `accord` command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{LogFormat, Overrides};

/// Accord: consented, audited sharing of citizen and case records.
#[derive(Debug, Parser)]
#[command(name = "accord", version, about)]
pub struct Cli {
    /// Configuration file (TOML). Also `ACCORD_CONFIG`.
    #[arg(long, global = true, env = "ACCORD_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the gRPC service.
    Serve(ServeArgs),
    /// Brings the database schema up to date and exits.
    Migrate(StorageArgs),
    /// Backs the embedded SQLite database up while the server runs: one
    /// consistent snapshot, into a directory that can serve as a data
    /// directory. (For PostgreSQL use pg_dump or continuous archiving; see
    /// docs/operations.md.) The signing key is not copied unless asked.
    Backup(BackupArgs),
    /// Audit ledger tools.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Runs the web console for information-governance staff: HTTPS, staff
    /// sign-in through the agency's identity provider, every page a call to
    /// Accord as the agency's system with the staff member's token (see
    /// docs/console.md).
    Console(ConsoleArgs),
    /// Asks a running server whether it is ready (its metrics listener's
    /// `/readyz`, as configured): exits 0 if so, 1 if not. For container
    /// health checks, where no HTTP client is at hand.
    Probe(ProbeArgs),
    /// Development setup: certificates, example agencies, tokens. Never
    /// for real data. (Left out of builds without the `dev` feature.)
    #[cfg(feature = "dev")]
    #[command(subcommand)]
    Dev(DevCommand),
}

/// `accord dev …`.
#[cfg(feature = "dev")]
#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Creates a development CA, a server certificate for localhost, an
    /// operator certificate, two example agencies (a council and a health
    /// trust) registered with client certificates and token signing keys,
    /// and a configuration file that uses them. Private keys are written
    /// readable by their owner only.
    Init(DevInitArgs),
    /// Prints a short-lived staff token of a development agency.
    Token(DevTokenArgs),
}

/// Options of `accord dev init`.
#[cfg(feature = "dev")]
#[derive(Debug, Clone, Args)]
pub struct DevInitArgs {
    /// The directory to create the setup in.
    #[arg(long, default_value = "accord-dev")]
    pub dir: PathBuf,
}

/// Options of `accord dev token`.
#[cfg(feature = "dev")]
#[derive(Debug, Clone, Args)]
pub struct DevTokenArgs {
    /// The directory `accord dev init` wrote.
    #[arg(long, default_value = "accord-dev")]
    pub dir: PathBuf,
    /// The agency whose staff member the token names (`leeds-cc` or
    /// `leeds-th`).
    #[arg(long)]
    pub agency: String,
    /// The staff member's roles, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "social_worker")]
    pub roles: Vec<String>,
    /// The staff member's id.
    #[arg(long, default_value = "dev-user")]
    pub principal: String,
    /// How long the token is valid, in minutes (1 to 60).
    #[arg(long, default_value_t = 15)]
    pub minutes: u32,
}

/// `accord ledger …`.
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Rebuilds the Merkle tree from every entry and checks the stored
    /// nodes and head; names the first entry or node that was altered,
    /// removed or moved. With `--export`, checks an export file instead,
    /// offline, with nothing but the public key.
    Verify(VerifyArgs),
    /// Writes the whole ledger, with its signed checkpoints, to a file (JSON
    /// Lines, see docs/ledger.md).
    Export(ExportArgs),
    /// Writes a subject access report: every recorded access to a
    /// person's identity and records, in plain terms, as CSV or JSON.
    Report(ReportArgs),
    /// Prints the public key that verifies the ledger's new checkpoints
    /// (in the signed-note verifier key format); with `--all`, every
    /// published key, one a line, the current one first.
    PublicKey(PublicKeyArgs),
    /// Generates a checkpoint signing key named after `ledger_origin`, at
    /// `ledger_key_file` (or in the data directory), readable by its owner
    /// only, and prints its public key; never overwrites one. For
    /// deployments whose processes share a key from a secret store.
    NewKey(StorageArgs),
}

/// Options of `accord ledger public-key`.
#[derive(Debug, Clone, Args)]
pub struct PublicKeyArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Every published key: the current one, those of a changeover and
    /// retired ones.
    #[arg(long)]
    pub all: bool,
}

/// Options of `accord ledger verify`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// An export file to verify offline (no database is opened).
    #[arg(long, requires = "public_key")]
    pub export: Option<PathBuf>,
    /// A verifier key of the ledger (`name+id+base64`, as `accord ledger
    /// public-key --all` prints them), obtained out of band; repeat it for
    /// each key that signed checkpoints (before and after a rotation).
    /// Without it, the database's checkpoints are checked against the keys
    /// the configuration publishes.
    #[arg(long)]
    pub public_key: Vec<String>,
}

/// Options of `accord ledger export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// The file to write; `-` for standard output.
    #[arg(long, short)]
    pub output: PathBuf,
}

/// Options of `accord ledger report`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// The person, `subjects/{id}`.
    #[arg(long)]
    pub subject: String,
    /// Only what this agency (its code, e.g. `leeds-cc`) may see: accesses
    /// it made or to data it controls. Every access when absent.
    #[arg(long)]
    pub agency: Option<String>,
    /// The file format.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: crate::report::ReportFormat,
    /// The file to write; `-` for standard output.
    #[arg(long, short, default_value = "-")]
    pub output: PathBuf,
}

/// Options of `accord backup`.
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// The directory to back up into (created if missing; must not hold a
    /// database).
    #[arg(long)]
    pub to: PathBuf,
    /// Also copy the checkpoint signing key into it (keep such a backup as
    /// secret as the key).
    #[arg(long)]
    pub with_key: bool,
}

/// Options of `accord probe`.
#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// The metrics listener to ask; `metrics_listen` from the
    /// configuration when absent (an unspecified address, such as
    /// 0.0.0.0, as loopback).
    #[arg(long)]
    pub address: Option<SocketAddr>,
    /// The path to ask for: `/readyz` or `/livez`.
    #[arg(long, default_value = "/readyz")]
    pub path: String,
}

/// Options of `accord console`.
#[derive(Debug, Clone, Args)]
pub struct ConsoleArgs {
    /// Address to serve the console on, e.g. 127.0.0.1:8443.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

/// Where data lives.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Directory of the embedded SQLite database.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Database URL (`postgres://…`); the embedded SQLite file when absent.
    #[arg(long)]
    pub database_url: Option<String>,
}

/// Options of `accord serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Address to listen on, e.g. 127.0.0.1:50051.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Development mode: callers are named by request metadata; loopback only.
    #[arg(long)]
    pub insecure: bool,
    /// Log format.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
}

impl StorageArgs {
    /// The configuration overrides these flags make.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            ..Overrides::default()
        }
    }
}

impl ServeArgs {
    /// The configuration overrides these flags make.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen,
            insecure: self.insecure.then_some(true),
            log_format: self.log_format,
            ..self.storage.overrides()
        }
    }
}
