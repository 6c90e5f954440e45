//! The code generated from `proto/accord/v1`, included once.
#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// `accord.v1`: the public contract.
pub mod v1 {
    tonic::include_proto!("accord.v1");
}

/// The encoded descriptor set of the contract, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("accord_descriptor");

pub use v1::*;
