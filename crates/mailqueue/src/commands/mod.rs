//! The command-line commands, one file each.

pub mod api_keys;
pub mod migrate;
pub mod serve;
