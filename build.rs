//! Generates the gRPC code and the reflection descriptor set from `proto/`
//! with `protox`, so no system `protoc` is needed; and installs the web
//! console's GOV.UK Frontend from npm (`console/package-lock.json`), whose
//! compiled CSS and JavaScript are built into the binary: nothing is
//! fetched when the console runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

use prost::Message;

const PROTOS: &[&str] = &[
    "accord/v1/common.proto",
    "accord/v1/agency.proto",
    "accord/v1/agreement.proto",
    "accord/v1/catalog.proto",
    "accord/v1/consent.proto",
    "accord/v1/subject.proto",
    "accord/v1/record.proto",
    "accord/v1/audit.proto",
    "accord/v1/event.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    // The migrations are embedded by `sqlx::migrate!`: a new one must
    // rebuild the crate.
    println!("cargo:rerun-if-changed=migrations");
    let descriptors = protox::Compiler::new(["proto"])?
        .include_imports(true)
        .include_source_info(true)
        .open_files(PROTOS)?
        .file_descriptor_set();
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("accord_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    console_assets(&out_dir)?;
    Ok(())
}

/// The files of GOV.UK Frontend the console serves, from its `dist/govuk`.
/// Its fonts and crown images are left out: they are for GOV.UK's own
/// domains only.
const GOVUK_FILES: &[&str] = &["govuk-frontend.min.css", "govuk-frontend.min.js"];

/// Installs the console's runtime npm packages (exactly as locked, no
/// install scripts) in `out_dir` and copies the files the console serves to
/// `out_dir/console-assets`.
fn console_assets(out_dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=console/package.json");
    println!("cargo:rerun-if-changed=console/package-lock.json");
    let work = out_dir.join("console-npm");
    fs::create_dir_all(&work)?;
    for file in ["package.json", "package-lock.json"] {
        fs::copy(Path::new("console").join(file), work.join(file))?;
    }
    let status = Command::new("npm")
        .args([
            "ci",
            "--omit=dev",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ])
        .current_dir(&work)
        .status()
        .map_err(|e| {
            format!(
                "the web console's GOV.UK Frontend is installed from npm when Accord is built, \
                 and npm cannot be run ({e}): install Node.js and npm"
            )
        })?;
    if !status.success() {
        return Err(format!("`npm ci` for the web console's assets failed ({status})").into());
    }
    let dist = work.join("node_modules/govuk-frontend/dist/govuk");
    let assets = out_dir.join("console-assets");
    fs::create_dir_all(&assets)?;
    for file in GOVUK_FILES {
        fs::copy(dist.join(file), assets.join(file))?;
    }
    // Ed25519 for browsers whose WebCrypto lacks it: one self-contained ES
    // module, verified by npm against the lock file's integrity hash.
    fs::copy(
        work.join("node_modules/@noble/ed25519/index.js"),
        assets.join("noble-ed25519.js"),
    )?;
    Ok(())
}
