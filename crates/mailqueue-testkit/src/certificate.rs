//! A TLS server certificate for 127.0.0.1 and localhost, signed by a
//! one-off authority, made with the openssl command. Clients trust it through `SSL_CERT_FILE`, which
//! rustls-native-certs reads instead of the system's roots.

use crate::TempDir;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct TestCertificate {
    /// The PEM certificate of the authority that signed it: the file to trust.
    pub ca: PathBuf,
    /// PEM server certificate.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    _dir: Arc<TempDir>,
}

fn openssl(args: &[&std::ffi::OsStr]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestCertificate {
    /// A one-off authority and a server certificate it signed.
    pub fn generate() -> Self {
        let dir = TempDir::new("tls");
        let path = |name: &str| dir.path().join(name);
        let (ca, ca_key) = (path("ca.pem"), path("ca.key"));
        let (cert, key, request) = (path("cert.pem"), path("key.pem"), path("cert.csr"));
        let extensions = path("server.ext");
        std::fs::write(
            &extensions,
            "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .expect("write the extensions file");
        let os = |s: &'static str| std::ffi::OsStr::new(s);
        openssl(&[
            os("req"),
            os("-x509"),
            os("-newkey"),
            os("rsa:2048"),
            os("-nodes"),
            os("-days"),
            os("2"),
            os("-subj"),
            os("/CN=mailqueue test CA"),
            os("-keyout"),
            ca_key.as_os_str(),
            os("-out"),
            ca.as_os_str(),
        ]);
        openssl(&[
            os("req"),
            os("-newkey"),
            os("rsa:2048"),
            os("-nodes"),
            os("-subj"),
            os("/CN=localhost"),
            os("-keyout"),
            key.as_os_str(),
            os("-out"),
            request.as_os_str(),
        ]);
        openssl(&[
            os("x509"),
            os("-req"),
            os("-days"),
            os("2"),
            os("-in"),
            request.as_os_str(),
            os("-CA"),
            ca.as_os_str(),
            os("-CAkey"),
            ca_key.as_os_str(),
            os("-CAcreateserial"),
            os("-extfile"),
            extensions.as_os_str(),
            os("-out"),
            cert.as_os_str(),
        ]);
        Self {
            ca,
            cert,
            key,
            _dir: Arc::new(dir),
        }
    }
}
