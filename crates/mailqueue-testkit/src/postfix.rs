//! A private Postfix instance (Debian's `postfix` package, run as root):
//! its own configuration, queue and log under a temporary directory, its
//! `smtpd` on a free loopback port, and transports that send each domain
//! to a port of the test's choosing, or everything to one relay host with
//! SASL. Real Postfix is the best client, relay and DSN generator a test
//! can have; the system instance is never touched beyond one line of the
//! default `main.cf` (`alternate_config_directories`, which Postfix needs
//! before it runs a configuration elsewhere).

use crate::{free_port, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// Serialises changes to the system's `main.cf`.
static SYSTEM_MAIN_CF: Mutex<()> = Mutex::new(());

/// Where Postfix sends mail next.
#[derive(Clone, Debug, Default)]
pub struct PostfixOptions {
    /// Every message to this relay: `[127.0.0.1]:port`, with SASL as
    /// `(user, password)` and TLS required, verified against `ca` when set.
    pub relay: Option<PostfixRelay>,
    /// Per-domain next hops on loopback: `(domain, port)`.
    pub transports: Vec<(String, u16)>,
    /// Extra `main.cf` lines.
    pub main_cf: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct PostfixRelay {
    pub port: u16,
    pub user: String,
    pub password: String,
    /// The authority to verify the relay's certificate with; `None`: TLS
    /// without verification (`encrypt`).
    pub ca: Option<PathBuf>,
}

pub struct PrivatePostfix {
    /// The port of its `smtpd` on 127.0.0.1 (clients in `mynetworks` may
    /// relay).
    pub port: u16,
    config_dir: PathBuf,
    dir: TempDir,
}

fn run(command: &mut Command) -> Result<String, String> {
    let out = command
        .output()
        .map_err(|e| format!("{command:?} cannot run: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{command:?} failed: {text}"))
    }
}

/// Lists `dir` in the default `main.cf`'s `alternate_config_directories`.
fn allow_config_dir(dir: &Path) -> Result<(), String> {
    let _guard = SYSTEM_MAIN_CF.lock().unwrap_or_else(|e| e.into_inner());
    let main_cf = Path::new("/etc/postfix/main.cf");
    if !main_cf.exists() {
        std::fs::write(main_cf, "compatibility_level = 3.6\n")
            .map_err(|e| format!("writing {}: {e}", main_cf.display()))?;
    }
    let current = run(Command::new("postconf").args(["-h", "alternate_config_directories"]))?;
    let mut dirs: Vec<String> = current
        .split([',', ' ', '\n'])
        .filter(|d| !d.is_empty() && Path::new(d).exists())
        .map(str::to_string)
        .collect();
    dirs.push(dir.display().to_string());
    run(Command::new("postconf").arg("-e").arg(format!(
        "alternate_config_directories = {}",
        dirs.join(", ")
    )))?;
    Ok(())
}

impl PrivatePostfix {
    /// Whether Postfix is installed here.
    pub fn available() -> bool {
        Path::new("/usr/sbin/postfix").exists() && Path::new("/etc/postfix/master.cf").exists()
    }

    /// Configures and starts an instance; panics with Postfix's own words
    /// when it cannot.
    pub fn start(options: PostfixOptions) -> Self {
        Self::try_start(options).unwrap_or_else(|e| panic!("a private Postfix: {e}"))
    }

    fn try_start(options: PostfixOptions) -> Result<Self, String> {
        let dir = TempDir::new("postfix");
        let root = dir.path().to_path_buf();
        let config_dir = root.join("etc");
        let (queue, data) = (root.join("queue"), root.join("data"));
        for d in [&config_dir, &queue, &data] {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        run(Command::new("chown").args(["-R", "postfix"]).arg(&data))?;
        // The temporary directory must be reachable by Postfix's users.
        run(Command::new("chmod").args(["755"]).arg(&root))?;
        let port = free_port();
        std::fs::write(config_dir.join("master.cf"), master_cf(port)?)
            .map_err(|e| format!("writing master.cf: {e}"))?;
        // Optional: the maps Debian builds as plugins.
        let _ = std::fs::copy(
            "/etc/postfix/dynamicmaps.cf",
            config_dir.join("dynamicmaps.cf"),
        );
        std::fs::write(config_dir.join("main.cf"), main_cf(&root, &options))
            .map_err(|e| format!("writing main.cf: {e}"))?;
        let transport: String = options
            .transports
            .iter()
            .map(|(domain, port)| format!("{domain} smtp:[127.0.0.1]:{port}\n"))
            .collect();
        std::fs::write(config_dir.join("transport"), transport)
            .map_err(|e| format!("writing transport: {e}"))?;
        if let Some(relay) = &options.relay {
            std::fs::write(
                config_dir.join("sasl"),
                format!(
                    "[127.0.0.1]:{} {}:{}\n",
                    relay.port, relay.user, relay.password
                ),
            )
            .map_err(|e| format!("writing sasl: {e}"))?;
        }
        allow_config_dir(&config_dir)?;
        run(Command::new("postfix")
            .arg("-c")
            .arg(&config_dir)
            .args(["set-permissions", "create-missing"]))?;
        run(Command::new("postfix")
            .arg("-c")
            .arg(&config_dir)
            .arg("start"))?;
        let postfix = Self {
            port,
            config_dir,
            dir,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if std::time::Instant::now() > deadline {
                return Err(format!("its smtpd never listened; log:\n{}", postfix.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(postfix)
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// Messages still in its queue (`postqueue -p`'s last line).
    pub fn queue_summary(&self) -> String {
        run(Command::new("postqueue")
            .arg("-c")
            .arg(&self.config_dir)
            .arg("-p"))
        .unwrap_or_else(|e| e)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
    }

    /// Asks it to try its deferred mail now.
    pub fn flush(&self) {
        let _ = run(Command::new("postqueue")
            .arg("-c")
            .arg(&self.config_dir)
            .arg("-f"));
    }
}

impl Drop for PrivatePostfix {
    fn drop(&mut self) {
        let _ = run(Command::new("postfix")
            .arg("-c")
            .arg(&self.config_dir)
            .arg("stop"));
    }
}

/// Debian's `master.cf` with its `smtpd` on `127.0.0.1:port`, nothing
/// chrooted, and `postlogd` for a log file without syslog.
fn master_cf(port: u16) -> Result<String, String> {
    let system = std::fs::read_to_string("/etc/postfix/master.cf")
        .map_err(|e| format!("reading /etc/postfix/master.cf: {e}"))?;
    let mut out = String::new();
    for line in system.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let is_service = !line.starts_with([' ', '\t', '#']) && fields.len() >= 8;
        if !is_service {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let name = if fields[0] == "smtp" && fields[1] == "inet" {
            format!("127.0.0.1:{port}")
        } else {
            fields[0].to_string()
        };
        if fields[1] == "inet" && name != format!("127.0.0.1:{port}") {
            // Other listeners (submission, smtps) stay off.
            continue;
        }
        let mut service: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        service[0] = name;
        service[4] = "n".into();
        out.push_str(&service.join(" "));
        out.push('\n');
    }
    if !out.contains("postlogd") {
        out.push_str("postlog unix-dgram n - n - 1 postlogd\n");
    }
    Ok(out)
}

fn main_cf(root: &Path, options: &PostfixOptions) -> String {
    let root_s = root.display();
    let parent = root.parent().unwrap_or(root).display();
    let mut lines = vec![
        "compatibility_level = 3.6".to_string(),
        format!("queue_directory = {root_s}/queue"),
        format!("data_directory = {root_s}/data"),
        format!("maillog_file = {root_s}/maillog"),
        format!("maillog_file_prefixes = /var, /dev/stdout, {parent}"),
        "myhostname = postfix.test".into(),
        "mydomain = postfix.test".into(),
        "myorigin = $myhostname".into(),
        "inet_interfaces = 127.0.0.1".into(),
        "inet_protocols = ipv4".into(),
        "mydestination =".into(),
        "mynetworks = 127.0.0.0/8".into(),
        "smtpd_relay_restrictions = permit_mynetworks, reject".into(),
        "smtpd_reject_unlisted_recipient = no".into(),
        "local_recipient_maps =".into(),
        "alias_maps =".into(),
        "alias_database =".into(),
        "disable_dns_lookups = yes".into(),
        "smtp_host_lookup = native".into(),
        "smtp_dns_support_level = disabled".into(),
        "queue_run_delay = 1s".into(),
        "minimal_backoff_time = 1s".into(),
        "maximal_backoff_time = 2s".into(),
        "smtp_connect_timeout = 5s".into(),
        "biff = no".into(),
        format!("transport_maps = texthash:{root_s}/etc/transport"),
    ];
    if let Some(relay) = &options.relay {
        lines.push(format!("relayhost = [127.0.0.1]:{}", relay.port));
        lines.push("smtp_sasl_auth_enable = yes".into());
        lines.push(format!(
            "smtp_sasl_password_maps = texthash:{root_s}/etc/sasl"
        ));
        lines.push("smtp_sasl_security_options = noanonymous".into());
        lines.push("smtp_sasl_tls_security_options = noanonymous".into());
        match &relay.ca {
            Some(ca) => {
                lines.push("smtp_tls_security_level = verify".into());
                lines.push("smtp_tls_verify_cert_match = hostname, nexthop, dot-nexthop, 127.0.0.1, localhost".into());
                lines.push(format!("smtp_tls_CAfile = {}", ca.display()));
            }
            None => lines.push("smtp_tls_security_level = encrypt".into()),
        }
    }
    lines.extend(options.main_cf.iter().cloned());
    lines.join("\n") + "\n"
}
