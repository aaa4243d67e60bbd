//! The command-line commands, one file each.

pub mod api_keys;
pub mod backup;
pub mod backups;
pub mod dr;
pub mod migrate;
pub mod places;
pub mod restore;
pub mod serve;
pub mod verify;
pub mod wal;
