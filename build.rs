//! Generates the gRPC code and the reflection descriptor set from `proto/`
//! with `protox`, so no system `protoc` is needed.

use std::{env, fs, path::PathBuf};

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
    Ok(())
}
