//! The dispatch layer alone on Redis, for `bench/dispatch.sh`: no HTTP, no
//! store. One producer enqueues `--jobs` entries, all due at once, in calls
//! of `--enqueue-batch`, while consumers take and acknowledge them with
//! `--concurrency` jobs in process at once. Prints one line:
//! `RESULT jobs=… seconds=… rate=… enqueue_seconds=…`, the rate counting
//! from the first enqueue to the last job done.
//!
//! Two ways to consume:
//! - `batched` (default), as the delivery dispatcher does: one taker keeps
//!   up to 4 × concurrency entries ready, taking as many as there is room
//!   for (at most 512) in one call and acknowledging them in one call; each
//!   job then runs in its own task once one of `--concurrency` slots is free;
//! - `single`: `--concurrency` consumers, each taking one entry,
//!   acknowledging it and processing it, one at a time.
//!
//! ```text
//! cargo run --release -p mailqueue-queue --example dispatch_bench -- \
//!     --jobs 200000 --concurrency 64 --redis-url redis://127.0.0.1:6379 \
//!     [--mode batched|single] [--enqueue-batch 100] [--prefix NAME]
//! ```
//! Use a Redis of its own: the entries are left behind when jobs are lost,
//! and nothing else should run commands on it meanwhile.

use chrono::Utc;
use mailqueue_core::email::Priority;
use mailqueue_core::queue::DispatchQueue;
use mailqueue_core::store::DueEmail;
use mailqueue_core::EmailId;
use mailqueue_queue::{RedisQueue, RedisSettings};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};

/// Most entries taken in one call, as the dispatcher's claim batch.
const TAKE_BATCH: usize = 512;
/// Entries kept ready, as a multiple of the concurrency, as the dispatcher.
const TAKE_AHEAD: usize = 4;
/// How long an idle consumer waits for a wake-up before looking again.
const IDLE_WAIT: Duration = Duration::from_millis(50);

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Batched,
    Single,
}

struct Options {
    jobs: u64,
    concurrency: usize,
    enqueue_batch: usize,
    redis_url: String,
    prefix: String,
    mode: Mode,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        jobs: 100_000,
        concurrency: 64,
        enqueue_batch: 100,
        redis_url: "redis://127.0.0.1:6379".into(),
        prefix: format!("dispatch-bench-{}", std::process::id()),
        mode: Mode::Batched,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag} takes a positive number, not {value:?}"))
        };
        match flag.as_str() {
            "--jobs" => options.jobs = number()?,
            "--concurrency" => options.concurrency = number()? as usize,
            "--enqueue-batch" => options.enqueue_batch = number()? as usize,
            "--redis-url" => options.redis_url = value,
            "--prefix" => options.prefix = value,
            "--mode" => {
                options.mode = match value.as_str() {
                    "batched" => Mode::Batched,
                    "single" => Mode::Single,
                    _ => return Err(format!("--mode is batched or single, not {value:?}")),
                }
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(options)
}

/// Jobs done so far, shared by the consumers.
struct Progress {
    done: AtomicU64,
    goal: u64,
}

impl Progress {
    fn finished(&self) -> bool {
        self.done.load(Ordering::Relaxed) >= self.goal
    }
}

/// The work of a job: none, so that only the queue is measured.
async fn process(job: DueEmail, progress: &Progress) {
    std::hint::black_box(job);
    progress.done.fetch_add(1, Ordering::Relaxed);
}

async fn produce(queue: Arc<RedisQueue>, jobs: u64, batch: usize) -> Result<Duration, String> {
    let started = Instant::now();
    let mut left = jobs;
    while left > 0 {
        let n = left.min(batch as u64);
        let now = Utc::now();
        let entries: Vec<DueEmail> = (0..n)
            .map(|_| DueEmail {
                id: EmailId::generate(now),
                due_at: now,
                priority: Priority::Normal,
            })
            .collect();
        queue.enqueue(&entries).await.map_err(|e| e.to_string())?;
        left -= n;
    }
    Ok(started.elapsed())
}

/// One taker feeding a task per job, `concurrency` at a time.
async fn consume_batched(
    queue: Arc<RedisQueue>,
    concurrency: usize,
    progress: Arc<Progress>,
) -> Result<(), String> {
    let (ready_tx, mut ready) = mpsc::channel::<DueEmail>(concurrency * TAKE_AHEAD);
    let taker = {
        let progress = progress.clone();
        tokio::spawn(async move {
            while !progress.finished() {
                let room = ready_tx.capacity();
                if room == 0 {
                    match ready_tx.reserve().await {
                        Ok(permit) => drop(permit),
                        Err(_) => return Ok(()),
                    }
                    continue;
                }
                let due = queue
                    .take_due(Utc::now(), room.min(TAKE_BATCH))
                    .await
                    .map_err(|e| e.to_string())?;
                if due.is_empty() {
                    queue.wait_for_work(IDLE_WAIT).await;
                    continue;
                }
                let ids: Vec<EmailId> = due.iter().map(|e| e.id).collect();
                queue.ack(&ids).await.map_err(|e| e.to_string())?;
                for job in due {
                    if ready_tx.send(job).await.is_err() {
                        return Ok(());
                    }
                }
            }
            Ok::<(), String>(())
        })
    };
    let slots = Arc::new(Semaphore::new(concurrency));
    while !progress.finished() {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let job = tokio::select! {
            job = ready.recv() => job,
            _ = tokio::time::sleep(IDLE_WAIT) => continue,
        };
        let Some(job) = job else { break };
        let progress = progress.clone();
        tokio::spawn(async move {
            process(job, &progress).await;
            drop(slot);
        });
    }
    let _ = slots.acquire_many(concurrency as u32).await;
    taker.await.map_err(|e| e.to_string())?
}

/// `concurrency` consumers taking one job at a time.
async fn consume_single(
    queue: Arc<RedisQueue>,
    concurrency: usize,
    progress: Arc<Progress>,
) -> Result<(), String> {
    let mut consumers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let queue = queue.clone();
        let progress = progress.clone();
        consumers.spawn(async move {
            while !progress.finished() {
                let due = queue
                    .take_due(Utc::now(), 1)
                    .await
                    .map_err(|e| e.to_string())?;
                let Some(job) = due.into_iter().next() else {
                    queue.wait_for_work(IDLE_WAIT).await;
                    continue;
                };
                queue.ack(&[job.id]).await.map_err(|e| e.to_string())?;
                process(job, &progress).await;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(joined) = consumers.join_next().await {
        joined.map_err(|e| e.to_string())??;
    }
    Ok(())
}

async fn run(options: Options) -> Result<(), String> {
    let queue = Arc::new(
        RedisQueue::new(RedisSettings {
            url: options.redis_url.clone(),
            prefix: options.prefix.clone(),
            visibility_timeout: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
        })
        .map_err(|e| e.to_string())?,
    );
    queue.ping().await.map_err(|e| e.to_string())?;
    let progress = Arc::new(Progress {
        done: AtomicU64::new(0),
        goal: options.jobs,
    });
    let started = Instant::now();
    let producer = tokio::spawn(produce(queue.clone(), options.jobs, options.enqueue_batch));
    match options.mode {
        Mode::Batched => consume_batched(queue.clone(), options.concurrency, progress).await?,
        Mode::Single => consume_single(queue.clone(), options.concurrency, progress).await?,
    }
    let seconds = started.elapsed().as_secs_f64();
    let enqueue_seconds = producer.await.map_err(|e| e.to_string())??.as_secs_f64();
    let left = queue.queued_count().await.map_err(|e| e.to_string())?;
    if left != 0 {
        return Err(format!("{left} entries are still queued after the run"));
    }
    println!(
        "RESULT jobs={} seconds={seconds:.2} rate={:.0} enqueue_seconds={enqueue_seconds:.2}",
        options.jobs,
        options.jobs as f64 / seconds
    );
    Ok(())
}

#[tokio::main]
async fn main() {
    let outcome = match parse_options() {
        Ok(options) => run(options).await,
        Err(e) => Err(e),
    };
    if let Err(e) = outcome {
        eprintln!("dispatch_bench: {e}");
        std::process::exit(1);
    }
}
