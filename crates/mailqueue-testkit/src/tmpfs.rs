//! A small tmpfs, mounted for a test that needs a disk that fills up.
//!
//! Mounting needs root; elsewhere [`SmallDisk::mount`] prints why the test
//! cannot run and returns `None`, and the test returns early.

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug)]
pub struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    /// A fresh tmpfs of `bytes` at a new directory, or `None` (with the
    /// reason printed) where this process may not mount one.
    pub fn mount(label: &str, bytes: u64) -> Option<Self> {
        let path =
            std::env::temp_dir().join(format!("mailqueue-{label}-{}", crate::unique_suffix()));
        if let Err(e) = std::fs::create_dir_all(&path) {
            eprintln!("skipped: cannot create {}: {e}", path.display());
            return None;
        }
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={bytes},mode=0777"),
                "tmpfs",
            ])
            .arg(&path)
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Self { path }),
            Ok(out) => {
                let _ = std::fs::remove_dir(&path);
                eprintln!(
                    "skipped: mounting a tmpfs needs root ({})",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                let _ = std::fs::remove_dir(&path);
                eprintln!("skipped: `mount` cannot run: {e}");
                None
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Grows (or shrinks) the disk in place, keeping what it holds.
    pub fn resize(&self, bytes: u64) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(&self.path)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "resizing {}: {}",
            self.path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).output();
        let _ = std::fs::remove_dir(&self.path);
    }
}
