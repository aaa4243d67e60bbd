//! A private gpg home with a fresh key pair, as a recipient of encrypted
//! backups; stock `gpg` is the only tool involved.

use crate::TempDir;
use std::path::Path;
use std::process::Command;

pub struct GpgHome {
    dir: TempDir,
    pub recipient: String,
}

impl GpgHome {
    /// A keyring holding one key pair for `backup@mailqueue.test` (no passphrase).
    pub fn with_key() -> Self {
        let dir = TempDir::new("gnupg");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
                .expect("chmod the gpg home");
        }
        let recipient = "backup@mailqueue.test".to_string();
        let out = Command::new("gpg")
            .env("GNUPGHOME", dir.path())
            .args(["--batch", "--passphrase", "", "--quick-gen-key"])
            .arg(format!("Backup Test <{recipient}>"))
            .args(["default", "default", "never"])
            .output()
            .expect("gpg runs");
        assert!(
            out.status.success(),
            "gpg --quick-gen-key: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir, recipient }
    }

    /// An empty keyring: no keys at all.
    pub fn empty() -> Self {
        let dir = TempDir::new("gnupg-empty");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
                .expect("chmod the gpg home");
        }
        Self {
            dir,
            recipient: String::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Decrypts `file` with stock gpg; returns the plaintext.
    pub fn decrypt(&self, file: &Path) -> Vec<u8> {
        let out = Command::new("gpg")
            .env("GNUPGHOME", self.path())
            .args(["--batch", "--quiet", "--decrypt"])
            .arg(file)
            .output()
            .expect("gpg runs");
        assert!(
            out.status.success(),
            "gpg --decrypt: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}
