//! The deployment of the operations guide: PostgreSQL as the truth, Redis
//! as the dispatch layer, separate `api` and `worker` processes of the real
//! binary. Faults are real: Redis flushed, Redis killed and restarted
//! without persistence, a worker killed with SIGKILL, the maintainer
//! killed. Every accepted email is delivered, and only sends in flight at
//! a crash may be repeated.

use crate::processes::{clean_command, succeeded, Server, BIN};
use mailqueue_testkit::{
    wait_until, RedisServer, RelayOptions, TempDir, TestCluster, TestDatabase, TestRelay,
};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sends a worker may have in flight at once in these tests.
const CONCURRENCY: usize = 4;

pub struct Fleet {
    pub db: TestDatabase,
    pub redis: RedisServer,
    pub relay: TestRelay,
    dir: TempDir,
    env: Vec<(String, String)>,
    pub key: String,
    pub apis: Vec<Server>,
    pub workers: Vec<Server>,
}

impl Fleet {
    /// `relay_delay` slows every delivery down, so that a backlog builds up.
    pub async fn start(
        apis: usize,
        workers: usize,
        relay_delay: Duration,
        extra: &[(&str, &str)],
    ) -> Self {
        let db = TestDatabase::create().await;
        let redis = RedisServer::start(false);
        let relay = TestRelay::start(RelayOptions {
            pipelining: true,
            data_reply_delay: relay_delay,
            ..Default::default()
        })
        .await;
        let mut env: Vec<(String, String)> = [
            ("DATABASE_URL", db.url.clone()),
            ("REDIS_URL", redis.url()),
            ("MAILQUEUE_REDIS_PREFIX", mailqueue_testkit::unique_suffix()),
            ("MAILQUEUE_SMTP_URL", relay.url()),
            ("MAILQUEUE_WORKER_CONCURRENCY", CONCURRENCY.to_string()),
            ("MAILQUEUE_LEASE_SECONDS", "6".into()),
            ("MAILQUEUE_SEND_TIMEOUT_SECONDS", "3".into()),
            ("MAILQUEUE_SMTP_TIMEOUT_SECONDS", "2".into()),
            ("MAILQUEUE_RESCUE_INTERVAL_SECONDS", "0.5".into()),
            ("MAILQUEUE_RETRY_INITIAL_SECONDS", "0.5".into()),
            ("MAILQUEUE_RETRY_MAX_DELAY_SECONDS", "1".into()),
            ("MAILQUEUE_MAINTENANCE_LEASE_SECONDS", "2".into()),
            ("MAILQUEUE_SHUTDOWN_GRACE_SECONDS", "3".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push((k.to_string(), v.to_string()));
        }
        let dir = TempDir::new("fleet");
        let mut fleet = Self {
            db,
            redis,
            relay,
            dir,
            env,
            key: String::new(),
            apis: Vec::new(),
            workers: Vec::new(),
        };
        let out = fleet
            .command("all")
            .args(["api-keys", "create", "--name", "fleet"])
            .output()
            .unwrap();
        fleet.key = succeeded(out, "api-keys create")
            .lines()
            .last()
            .unwrap()
            .trim()
            .to_string();
        for _ in 0..apis {
            let api = Server::start(fleet.command("api")).await;
            fleet.apis.push(api);
        }
        for _ in 0..workers {
            fleet.add_worker().await;
        }
        fleet
    }

    fn command(&self, role: &str) -> Command {
        let mut c = clean_command(BIN);
        c.current_dir(self.dir.path())
            .env("MAILQUEUE_ROLE", role)
            .env("MAILQUEUE_DATA_DIR", self.dir.path().join("data"));
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub async fn add_worker(&mut self) {
        let worker = Server::start(self.command("worker")).await;
        self.workers.push(worker);
    }

    /// Posts `n` emails, spread over the API processes, a few at a time.
    /// Returns the subjects of those answered 202 (keyed by subject, the
    /// id); every other answer must be 503 when `outage_ok`.
    pub fn load(&self, n: usize, label: &str, outage_ok: bool) -> Load {
        let accepted = Arc::new(Mutex::new(HashMap::new()));
        let bases: Vec<String> = self.apis.iter().map(|a| a.base.clone()).collect();
        let key = self.key.clone();
        let label = label.to_string();
        let sink = accepted.clone();
        let refused = Arc::new(AtomicUsize::new(0));
        let refusals = refused.clone();
        let task = tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0..n {
                let subject = format!("{label}-{i}");
                let base = &bases[i % bases.len()];
                let body = json!({"from": "app@acme.test", "to": "user@example.com",
                                  "subject": subject, "text": "fleet"});
                let answer = client
                    .post(format!("{base}/v1/emails"))
                    .bearer_auth(&key)
                    .json(&body)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                match answer {
                    Ok(r) if r.status() == 202 => {
                        let id = r.json::<Value>().await.unwrap()["id"]
                            .as_str()
                            .unwrap()
                            .to_string();
                        sink.lock().unwrap().insert(subject, id);
                    }
                    Ok(r) => {
                        assert!(
                            outage_ok && r.status() == 503,
                            "{subject}: answered {}",
                            r.status()
                        );
                        refusals.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => assert!(outage_ok, "{subject}: {e}"),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        Load {
            accepted,
            refused,
            task,
        }
    }

    /// Waits until the relay holds every subject; returns how many
    /// deliveries repeated an earlier one.
    pub async fn delivered_all(&self, subjects: &HashSet<String>, timeout: Duration) -> usize {
        let seen = wait_until(
            &format!("{} emails at the relay", subjects.len()),
            timeout,
            || async {
                let got = self.delivered_subjects();
                subjects.iter().all(|s| got.contains_key(s)).then_some(got)
            },
        )
        .await;
        seen.values().map(|n| n - 1).sum()
    }

    /// How often each subject reached the relay.
    pub fn delivered_subjects(&self) -> HashMap<String, usize> {
        let mut seen = HashMap::new();
        for m in self.relay.messages() {
            if let Some(subject) = m.parsed().subject() {
                *seen.entry(subject.to_string()).or_insert(0) += 1;
            }
        }
        seen
    }

    /// Waits until every accepted email reads `sent`.
    pub async fn all_sent(&self, ids: &[String]) {
        let client = reqwest::Client::new();
        let base = &self.apis[0].base;
        for id in ids {
            wait_until(
                &format!("{id} to be sent"),
                Duration::from_secs(60),
                || async {
                    let r = client
                        .get(format!("{base}/v1/emails/{id}"))
                        .bearer_auth(&self.key)
                        .send()
                        .await
                        .ok()?;
                    let v: Value = r.json().await.ok()?;
                    (v["status"] == "sent").then_some(())
                },
            )
            .await;
        }
    }

    /// The holder of the maintenance lease, if any holds it now.
    pub async fn maintainer(&self) -> Option<String> {
        let mut conn = self.db.connect().await;
        sqlx::query_scalar(
            "SELECT holder FROM maintenance_leases WHERE name = 'maintenance' AND expires_at > now()",
        )
        .fetch_optional(&mut conn)
        .await
        .unwrap()
    }
}

pub struct Load {
    accepted: Arc<Mutex<HashMap<String, String>>>,
    /// Answers 503 so far.
    refused: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    pub fn refused_so_far(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }

    pub fn accepted_so_far(&self) -> usize {
        self.accepted.lock().unwrap().len()
    }

    /// Waits for the load to end; returns subject → id of what was accepted.
    pub async fn finish(self) -> HashMap<String, String> {
        self.task.await.expect("the load generator does not panic");
        self.accepted.lock().unwrap().clone()
    }
}

async fn once_accepted(load: &Load, n: usize) {
    wait_until(
        &format!("{n} accepted"),
        Duration::from_secs(30),
        || async { (load.accepted_so_far() >= n).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn losing_redis_loses_no_email() {
    let mut fleet = Fleet::start(2, 2, Duration::from_millis(300), &[]).await;
    let load = fleet.load(200, "redis-loss", false);
    once_accepted(&load, 80).await;
    let backlog = fleet.redis.cli(&["EVAL", "local n = 0 for _, k in ipairs(redis.call('KEYS', '*:due:*')) do n = n + redis.call('ZCARD', k) end return n", "0"]);
    assert!(
        backlog.trim().parse::<u64>().unwrap() > 0,
        "a backlog waits in Redis when it is flushed"
    );
    fleet.redis.cli(&["FLUSHALL"]);
    once_accepted(&load, 140).await;
    fleet.redis.restart();
    let accepted = load.finish().await;
    assert_eq!(accepted.len(), 200, "the API accepts while Redis is lost");
    let subjects: HashSet<String> = accepted.keys().cloned().collect();
    let repeats = fleet
        .delivered_all(&subjects, Duration::from_secs(60))
        .await;
    assert!(
        repeats <= 2 * CONCURRENCY,
        "{repeats} repeated deliveries; only sends in flight may repeat"
    );
    let ids: Vec<String> = accepted.values().cloned().collect();
    fleet.all_sent(&ids).await;
}

#[tokio::test]
async fn a_worker_killed_under_load_loses_no_email() {
    let mut fleet = Fleet::start(1, 2, Duration::from_millis(20), &[]).await;
    let load = fleet.load(200, "worker-kill", false);
    once_accepted(&load, 60).await;
    fleet.workers[0].child.kill().unwrap();
    fleet.workers[0].child.wait().unwrap();
    let accepted = load.finish().await;
    let subjects: HashSet<String> = accepted.keys().cloned().collect();
    let repeats = fleet
        .delivered_all(&subjects, Duration::from_secs(60))
        .await;
    assert!(
        repeats <= CONCURRENCY,
        "{repeats} repeated deliveries; only the killed worker's sends in flight may repeat"
    );
    let ids: Vec<String> = accepted.values().cloned().collect();
    fleet.all_sent(&ids).await;
}

#[tokio::test]
async fn another_worker_takes_over_the_maintenance_within_one_lease() {
    let mut fleet = Fleet::start(1, 2, Duration::from_millis(20), &[]).await;
    let holder = wait_until("a maintainer", Duration::from_secs(10), || {
        fleet.maintainer()
    })
    .await;
    let pid: u32 = holder.split(':').nth(1).unwrap().parse().unwrap();
    let index = fleet
        .workers
        .iter()
        .position(|w| w.child.id() == pid)
        .expect("the maintainer is one of the workers");
    fleet.workers[index].child.kill().unwrap();
    fleet.workers[index].child.wait().unwrap();
    let killed = Instant::now();
    let next = wait_until("a new maintainer", Duration::from_secs(10), || async {
        fleet.maintainer().await.filter(|h| *h != holder)
    })
    .await;
    let took = killed.elapsed();
    // The lease (2 s) runs out, then the other worker's next try (every
    // third of the lease) takes it.
    assert!(
        took <= Duration::from_millis(2_000 + 700 + 1_000),
        "took over after {took:?}"
    );
    let survivor = fleet.workers[1 - index].child.id();
    assert_eq!(next.split(':').nth(1).unwrap(), survivor.to_string());
}

#[tokio::test]
async fn requeue_all_twice_under_load_sends_nothing_twice() {
    let fleet = Fleet::start(1, 2, Duration::from_millis(20), &[]).await;
    let load = fleet.load(200, "requeue", false);
    let client = reqwest::Client::new();
    for at in [50, 120] {
        once_accepted(&load, at).await;
        let r = client
            .post(format!(
                "{}/v1/scheduled-jobs/requeue-all",
                fleet.apis[0].base
            ))
            .bearer_auth(&fleet.key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let counts: Value = r.json().await.unwrap();
        assert_eq!(counts["object"], "requeue", "{counts}");
    }
    let accepted = load.finish().await;
    let subjects: HashSet<String> = accepted.keys().cloned().collect();
    let repeats = fleet
        .delivered_all(&subjects, Duration::from_secs(60))
        .await;
    assert_eq!(repeats, 0, "no worker died, so nothing repeats");
}

#[tokio::test]
async fn a_worker_serves_only_health_readiness_and_metrics() {
    let fleet = Fleet::start(1, 1, Duration::from_millis(20), &[]).await;
    let client = reqwest::Client::new();
    let worker = &fleet.workers[0].base;
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = client.get(format!("{worker}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let r = client
        .post(format!("{worker}/v1/emails"))
        .bearer_auth(&fleet.key)
        .json(&json!({"from": "a@acme.test", "to": "b@example.com", "subject": "x", "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "a worker does not accept email");
}

#[tokio::test]
async fn redis_down_keeps_the_api_ready_and_the_worker_not() {
    let mut fleet = Fleet::start(1, 1, Duration::from_millis(20), &[]).await;
    fleet.redis.stop();
    let client = reqwest::Client::new();
    let id = {
        let r = client
            .post(format!("{}/v1/emails", fleet.apis[0].base))
            .bearer_auth(&fleet.key)
            .json(&json!({"from": "a@acme.test", "to": "b@example.com", "subject": "while-down", "text": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "the API accepts while Redis is down");
        r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let api_ready = client
        .get(format!("{}/readyz", fleet.apis[0].base))
        .send()
        .await
        .unwrap();
    assert_eq!(api_ready.status(), 200);
    let worker = fleet.workers[0].base.clone();
    let r = client.get(format!("{worker}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("dispatch queue cannot be reached"),
        "{body}"
    );
    fleet.redis.restart();
    fleet.all_sent(&[id]).await;
    let r = client.get(format!("{worker}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// `/readyz` of a server, as its status code (0 when it does not answer).
async fn readiness(server: &Server) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/readyz", server.base))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_postgres_restart_under_load_answers_503_and_loses_nothing() {
    let cluster = TestCluster::start(&[]);
    let url = cluster.url();
    let fleet = Fleet::start(1, 1, Duration::from_millis(20), &[("DATABASE_URL", &url)]).await;
    let load = fleet.load(600, "pg-restart", true);
    once_accepted(&load, 50).await;
    cluster.stop();
    wait_until(
        "the API to report the store down",
        Duration::from_secs(30),
        || async { (readiness(&fleet.apis[0]).await == 503).then_some(()) },
    )
    .await;
    wait_until(
        "a request answered 503 during the outage",
        Duration::from_secs(30),
        || async { (load.refused_so_far() > 0).then_some(()) },
    )
    .await;
    cluster.start_again();
    wait_until(
        "the API to be ready again",
        Duration::from_secs(30),
        || async { (readiness(&fleet.apis[0]).await == 200).then_some(()) },
    )
    .await;
    // Every answer of the load was 202 or 503 (checked as it ran).
    let accepted = load.finish().await;
    assert!(accepted.len() >= 50, "{}", accepted.len());
    let subjects: HashSet<String> = accepted.keys().cloned().collect();
    let repeats = fleet
        .delivered_all(&subjects, Duration::from_secs(120))
        .await;
    assert!(repeats <= CONCURRENCY, "{repeats} repeated deliveries");
    let ids: Vec<String> = accepted.values().cloned().collect();
    fleet.all_sent(&ids).await;
}
