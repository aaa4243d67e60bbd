// Verifies DKIM signatures with mailauth (Node), an implementation
// independent of mailqueue's. Reads {"dns_port", "messages": [base64]} on
// stdin; the public keys come from the test's DNS server. Prints a list of
// {"result", "domain", "selector", "algorithm"} as JSON.
'use strict';
const fs = require('fs');
const { Resolver } = require('dns').promises;
const { dkimVerify } = require('mailauth/lib/dkim/verify');

async function main() {
  const input = JSON.parse(fs.readFileSync(0, 'utf8'));
  const dns = new Resolver();
  dns.setServers([`127.0.0.1:${input.dns_port}`]);
  const resolver = (name, type) => dns.resolve(name, type);
  const out = [];
  for (const encoded of input.messages) {
    const message = Buffer.from(encoded, 'base64');
    const verified = await dkimVerify(message, { resolver });
    const first = verified.results[0] || { status: { result: 'none' } };
    out.push({
      result: first.status.result,
      comment: first.status.comment || null,
      domain: first.signingDomain || null,
      selector: first.selector || null,
      algorithm: first.algo || null,
    });
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
