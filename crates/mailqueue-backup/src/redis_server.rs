//! Talking to Redis for backups: configuration, persistence state, key
//! counts, and the replication stream (`SYNC`) for when the RDB file is not
//! reachable from here.

use crate::error::BackupError;
use redis::aio::MultiplexedConnection;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

fn redis_error(what: &str, e: redis::RedisError) -> BackupError {
    BackupError::Tool {
        tool: "Redis",
        detail: format!("{what}: {e}"),
    }
}

pub struct RedisAdmin {
    conn: MultiplexedConnection,
    url: String,
}

impl RedisAdmin {
    pub async fn connect(url: &str) -> Result<Self, BackupError> {
        let client =
            redis::Client::open(url).map_err(|e| redis_error("REDIS_URL is not valid", e))?;
        let conn = tokio::time::timeout(
            Duration::from_secs(10),
            client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| BackupError::Tool {
            tool: "Redis",
            detail: "connecting took longer than 10 s".into(),
        })?
        .map_err(|e| redis_error("connecting", e))?;
        Ok(Self {
            conn,
            url: url.to_string(),
        })
    }

    pub async fn config_get(&mut self, name: &str) -> Result<String, BackupError> {
        let pair: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query_async(&mut self.conn)
            .await
            .map_err(|e| redis_error(&format!("CONFIG GET {name}"), e))?;
        pair.get(1).cloned().ok_or_else(|| BackupError::Tool {
            tool: "Redis",
            detail: format!("CONFIG GET {name} returned nothing"),
        })
    }

    pub async fn config_set(&mut self, name: &str, value: &str) -> Result<(), BackupError> {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(value)
            .query_async::<()>(&mut self.conn)
            .await
            .map_err(|e| redis_error(&format!("CONFIG SET {name}"), e))
    }

    pub async fn info(&mut self, section: &str) -> Result<HashMap<String, String>, BackupError> {
        let text: String = redis::cmd("INFO")
            .arg(section)
            .query_async(&mut self.conn)
            .await
            .map_err(|e| redis_error("INFO", e))?;
        Ok(text
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect())
    }

    /// Keys in every database (INFO keyspace).
    pub async fn key_count(&mut self) -> Result<u64, BackupError> {
        Ok(self
            .info("keyspace")
            .await?
            .iter()
            .filter(|(k, _)| k.starts_with("db"))
            .filter_map(|(_, v)| {
                v.split(',')
                    .find_map(|p| p.strip_prefix("keys="))
                    .and_then(|n| n.parse::<u64>().ok())
            })
            .sum())
    }

    pub async fn version(&mut self) -> Result<String, BackupError> {
        let info = self.info("server").await?;
        Ok(format!(
            "Redis {}",
            info.get("redis_version").cloned().unwrap_or_default()
        ))
    }

    /// Runs BGSAVE and waits until a save started after the call has
    /// finished (`rdb_saves` counts them; LASTSAVE has one-second steps).
    pub async fn bgsave_and_wait(&mut self, timeout: Duration) -> Result<(), BackupError> {
        let saves =
            |p: &HashMap<String, String>| p.get("rdb_saves").and_then(|n| n.parse::<u64>().ok());
        let before = saves(&self.info("persistence").await?).ok_or_else(|| BackupError::Tool {
            tool: "Redis",
            detail: "INFO persistence has no rdb_saves (Redis 7 or later is needed)".into(),
        })?;
        let deadline = Instant::now() + timeout;
        loop {
            let started: Result<String, _> = redis::cmd("BGSAVE").query_async(&mut self.conn).await;
            match started {
                Ok(_) => break,
                // A save (or AOF rewrite) is running: wait for it, then ask again.
                Err(e) if e.to_string().contains("in progress") && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(redis_error("BGSAVE", e)),
            }
        }
        loop {
            let p = self.info("persistence").await?;
            let idle = p.get("rdb_bgsave_in_progress").map(String::as_str) == Some("0");
            if idle && saves(&p).is_some_and(|n| n > before) {
                return match p.get("rdb_last_bgsave_status").map(String::as_str) {
                    Some("ok") => Ok(()),
                    other => Err(BackupError::Tool {
                        tool: "Redis",
                        detail: format!(
                            "BGSAVE failed (rdb_last_bgsave_status: {})",
                            other.unwrap_or("?")
                        ),
                    }),
                };
            }
            if Instant::now() > deadline {
                return Err(BackupError::Tool {
                    tool: "Redis",
                    detail: format!("BGSAVE did not finish within {timeout:?}"),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until no AOF rewrite runs or is scheduled.
    pub async fn wait_no_aof_rewrite(&mut self, timeout: Duration) -> Result<(), BackupError> {
        let deadline = Instant::now() + timeout;
        loop {
            let p = self.info("persistence").await?;
            let idle = p.get("aof_rewrite_in_progress").map(String::as_str) == Some("0")
                && p.get("aof_rewrite_scheduled").map(String::as_str) == Some("0");
            if idle {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(BackupError::Tool {
                    tool: "Redis",
                    detail: "an AOF rewrite did not finish in time".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Whether anything answers PING at `url`.
pub async fn is_running(url: &str) -> bool {
    match RedisAdmin::connect(url).await {
        Ok(mut admin) => redis::cmd("PING")
            .query_async::<String>(&mut admin.conn)
            .await
            .is_ok(),
        Err(_) => false,
    }
}

/// The RDB of a full resynchronisation: what a replica receives. Returns a
/// reader that yields exactly the RDB's bytes.
pub fn sync_stream(url: &str) -> Result<Box<dyn Read + Send>, BackupError> {
    let info = redis::Client::open(url)
        .map_err(|e| redis_error("REDIS_URL is not valid", e))?
        .get_connection_info()
        .clone();
    let (host, port) = match &info.addr {
        redis::ConnectionAddr::Tcp(host, port) => (host.clone(), *port),
        other => {
            return Err(BackupError::Config(format!(
                "the replication stream needs a plain TCP Redis address, not {other}"
            )))
        }
    };
    let io = |e: std::io::Error| {
        BackupError::io(
            format!("reading the replication stream from {host}:{port}"),
            e,
        )
    };
    let mut stream = std::net::TcpStream::connect((host.as_str(), port)).map_err(io)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .map_err(io)?;
    if let Some(password) = &info.redis.password {
        let user = info
            .redis
            .username
            .clone()
            .unwrap_or_else(|| "default".into());
        write!(stream, "AUTH {user} {password}\r\n").map_err(io)?;
    }
    stream.write_all(b"SYNC\r\n").map_err(io)?;
    let mut reader = BufReader::new(stream);
    if info.redis.password.is_some() {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(io)?;
        if !line.starts_with("+OK") {
            return Err(BackupError::Tool {
                tool: "Redis",
                detail: format!("AUTH failed: {}", line.trim()),
            });
        }
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).map_err(io)? == 0 {
            return Err(BackupError::Tool {
                tool: "Redis",
                detail: "the server closed the replication stream".into(),
            });
        }
        let line = line.trim_end();
        if line.is_empty() {
            continue; // keep-alive newlines while the RDB is prepared
        }
        if let Some(len) = line.strip_prefix('$') {
            let len: u64 = len.parse().map_err(|_| BackupError::Tool {
                tool: "Redis",
                detail: format!("unexpected replication header `{line}`"),
            })?;
            return Ok(Box::new(reader.take(len)));
        }
        if let Some(refusal) = line.strip_prefix('-') {
            return Err(BackupError::Tool {
                tool: "Redis",
                detail: format!("SYNC refused: {refusal}"),
            });
        }
    }
}
