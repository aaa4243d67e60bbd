// Sends one message through mailqueue's submission port with nodemailer,
// as a Node.js application would. Reads {port, secure, ca, key, from, to,
// subject, text, attachment} as JSON on stdin; prints the server's last
// reply ({"response": "250 2.0.0 queued as ..."}) or the error.
const fs = require("fs");
const nodemailer = require("nodemailer");

const spec = JSON.parse(fs.readFileSync(0, "utf8"));
const transport = nodemailer.createTransport({
  host: "127.0.0.1",
  port: spec.port,
  secure: spec.secure,
  requireTLS: !spec.secure,
  auth: { user: "resend", pass: spec.key },
  tls: { ca: [fs.readFileSync(spec.ca)], servername: "localhost" },
});
transport
  .sendMail({
    from: spec.from,
    to: spec.to,
    subject: spec.subject,
    text: spec.text,
    headers: spec.idempotency_key ? { "Resend-Idempotency-Key": spec.idempotency_key } : {},
    attachments: [{ filename: "report.csv", content: spec.attachment }],
  })
  .then((info) => {
    console.log(JSON.stringify({ response: info.response, messageId: info.messageId }));
  })
  .catch((err) => {
    console.log(JSON.stringify({ error: String(err), responseCode: err.responseCode || null }));
  });
