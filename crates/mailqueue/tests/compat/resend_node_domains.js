// Drives mailqueue's /v1/domains with the official Resend Node SDK, as a
// user moving from Resend would: only the base URL changes. Reads
// {"base_url", "api_key", "zone_file"} on stdin; publishes the records the
// server asks for in the zone file that the test's DNS server serves (for
// "good.sdk.test" as given, for "wrong.sdk.test" with another DKIM key),
// verifies both, and prints what it saw as JSON.
'use strict';
const fs = require('fs');
const { Resend } = require('resend');

function readStdin() {
  return JSON.parse(fs.readFileSync(0, 'utf8'));
}

function must(what, { data, error }) {
  if (error) {
    throw new Error(`${what}: ${JSON.stringify(error)}`);
  }
  return data;
}

function publish(zoneFile, domain, records) {
  const zone = JSON.parse(fs.readFileSync(zoneFile, 'utf8'));
  for (const r of records) {
    const name = `${r.name}.${domain}.`.toLowerCase();
    zone[name] = zone[name] || {};
    zone[name][r.type] = zone[name][r.type] || [];
    zone[name][r.type].push(r.type === 'MX' ? [r.priority, `${r.value}.`] : r.value);
  }
  fs.writeFileSync(`${zoneFile}.tmp`, JSON.stringify(zone));
  fs.renameSync(`${zoneFile}.tmp`, zoneFile);
}

async function settled(resend, id) {
  for (let i = 0; i < 200; i++) {
    const domain = must('domains.get', await resend.domains.get(id));
    if (domain.status !== 'pending') {
      return domain;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`domain ${id} stayed pending`);
}

async function main() {
  const input = readStdin();
  const resend = new Resend(input.api_key, { baseUrl: input.base_url });
  const out = {};

  const good = must('domains.create', await resend.domains.create({
    name: 'good.sdk.test',
    region: 'eu-west-1',
    customReturnPath: 'bounces',
  }));
  out.created = good;
  publish(input.zone_file, good.name, good.records);

  const wrong = must('domains.create', await resend.domains.create({ name: 'wrong.sdk.test' }));
  const forged = wrong.records.map((r) => (r.record === 'DKIM'
    ? { ...r, value: r.value.replace(/p=.{12}/, 'p=AAAAAAAAAAAA') }
    : r));
  publish(input.zone_file, wrong.name, forged);

  out.verify = must('domains.verify', await resend.domains.verify(good.id));
  must('domains.verify', await resend.domains.verify(wrong.id));
  out.verified = await settled(resend, good.id);
  out.wrong = await settled(resend, wrong.id);

  out.update = must('domains.update', await resend.domains.update({
    id: good.id,
    openTracking: true,
    clickTracking: true,
    tls: 'enforced',
  }));
  out.updated = must('domains.get', await resend.domains.get(good.id));

  out.first_page = must('domains.list', await resend.domains.list({ limit: 1 }));
  out.second_page = must('domains.list', await resend.domains.list({
    limit: 1,
    after: out.first_page.data[0].id,
  }));

  out.removed = must('domains.remove', await resend.domains.remove(wrong.id));
  const gone = await resend.domains.get(wrong.id);
  out.gone = gone.error;
  out.after_remove = must('domains.list', await resend.domains.list());

  const dup = await resend.domains.create({ name: 'good.sdk.test' });
  out.duplicate = dup.error;
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
