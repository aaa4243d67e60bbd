// BullMQ's side of bench/dispatch.sh: one producer adds --jobs jobs with
// Queue.addBulk, --enqueue-batch per call, while one Worker at
// --concurrency processes (a no-op) and completes them. Each job's id is a
// fresh UUID, as mailqueue's entries are keyed by the email's id, and
// completed jobs are removed, as mailqueue's acknowledgement removes its
// entry. Prints: RESULT jobs=… seconds=… rate=… enqueue_seconds=…
//
//   node dispatch.mjs --jobs 200000 --concurrency 64 \
//     --redis-url redis://127.0.0.1:6379 [--enqueue-batch 100]
import { Queue, Worker } from "bullmq";
import { randomUUID } from "node:crypto";

function options(argv) {
  const o = { jobs: 100000, concurrency: 64, enqueueBatch: 100, redisUrl: "redis://127.0.0.1:6379" };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    switch (flag) {
      case "--jobs": o.jobs = Number(value); break;
      case "--concurrency": o.concurrency = Number(value); break;
      case "--enqueue-batch": o.enqueueBatch = Number(value); break;
      case "--redis-url": o.redisUrl = value; break;
      default: throw new Error(`unknown option ${flag}`);
    }
  }
  return o;
}

const o = options(process.argv.slice(2));
const url = new URL(o.redisUrl);
const connection = { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
const name = `dispatch-bench-${process.pid}`;
const queue = new Queue(name, { connection });
await queue.waitUntilReady();

let done = 0;
let finish;
const finished = new Promise((resolve) => { finish = resolve; });
const started = process.hrtime.bigint();
const worker = new Worker(name, async () => {}, { connection, concurrency: o.concurrency });
worker.on("completed", () => {
  done += 1;
  if (done === o.jobs) finish();
});
worker.on("error", (e) => { console.error(e); process.exit(1); });

let left = o.jobs;
while (left > 0) {
  const n = Math.min(left, o.enqueueBatch);
  const jobs = Array.from({ length: n }, () => ({
    name: "send",
    data: {},
    opts: { jobId: randomUUID(), removeOnComplete: true, removeOnFail: true },
  }));
  await queue.addBulk(jobs);
  left -= n;
}
const enqueueSeconds = Number(process.hrtime.bigint() - started) / 1e9;
await finished;
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
await worker.close();
const counts = await queue.getJobCounts("waiting", "active", "delayed");
await queue.close();
if (counts.waiting + counts.active + counts.delayed !== 0) {
  console.error("jobs are still queued after the run", counts);
  process.exit(1);
}
console.log(`RESULT jobs=${o.jobs} seconds=${seconds.toFixed(2)} rate=${(o.jobs / seconds).toFixed(0)} enqueue_seconds=${enqueueSeconds.toFixed(2)}`);
