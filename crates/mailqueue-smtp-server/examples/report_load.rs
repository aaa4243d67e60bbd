//! A load generator for the bounce domain's MX (bench/bounces.sh): one DSN
//! per line of JOBS_FILE (`EMAIL_ID RECIPIENT`), each a Postfix-style
//! `Action: failed` report for the recipient sent to the email's return address
//! (computed with DOMAIN and SECRET, as the server does), over SESSIONS
//! connections at once, one message after the other on each. Prints
//! `reports=N seconds=S rate=R`; exits non-zero on any reply but 250.
//!
//! Usage: report_load ADDRESS DOMAIN SECRET JOBS_FILE SESSIONS

mod load_client;

use load_client::{command, connect, run_all, send_message};
use mailqueue_core::return_path::ReturnPaths;
use mailqueue_core::EmailId;

fn dsn(return_path: &str, recipient: &str) -> Vec<u8> {
    format!(
        "From: MAILER-DAEMON@relay.test (Mail Delivery System)\r\n\
         To: {return_path}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\
         \r\n\
         --B\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         <{recipient}>: host mx.example.com said: 550 5.1.1 User unknown\r\n\
         \r\n\
         --B\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; relay.test\r\n\
         \r\n\
         Final-Recipient: rfc822; {recipient}\r\n\
         Action: failed\r\n\
         Status: 5.1.1\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown\r\n\
         \r\n\
         --B--\r\n.\r\n"
    )
    .into_bytes()
}

async fn session(address: String, jobs: Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
    let mut conn = connect(&address).await?;
    command(&mut conn, b"EHLO relay.test\r\n", 250).await?;
    for (rcpt, body) in jobs {
        send_message(&mut conn, "", &rcpt, &body).await?;
    }
    command(&mut conn, b"QUIT\r\n", 221).await
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [address, domain, secret, jobs_file, sessions] = args.as_slice() else {
        eprintln!("usage: report_load ADDRESS DOMAIN SECRET JOBS_FILE SESSIONS");
        std::process::exit(2);
    };
    let fail = |e: String| -> ! {
        eprintln!("report_load: {e}");
        std::process::exit(1)
    };
    let paths = ReturnPaths::new(domain, secret.as_bytes()).unwrap_or_else(|e| fail(e));
    let lines =
        std::fs::read_to_string(jobs_file).unwrap_or_else(|e| fail(format!("{jobs_file}: {e}")));
    let jobs: Vec<(String, Vec<u8>)> = lines
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (id, recipient) = l
                .trim()
                .split_once(' ')
                .unwrap_or_else(|| fail(format!("`{l}`: EMAIL_ID RECIPIENT")));
            let id: EmailId = id
                .parse()
                .unwrap_or_else(|_| fail(format!("`{id}` is no email id")));
            let rcpt = paths.address_for(id).to_string();
            let body = dsn(&rcpt, recipient);
            (rcpt, body)
        })
        .collect();
    let total = jobs.len();
    let sessions: usize = sessions
        .parse()
        .unwrap_or_else(|_| fail(format!("`{sessions}` is no number")));
    let mut shares: Vec<Vec<(String, Vec<u8>)>> =
        (0..sessions.max(1)).map(|_| Vec::new()).collect();
    for (i, job) in jobs.into_iter().enumerate() {
        let n = shares.len();
        shares[i % n].push(job);
    }
    let sessions: Vec<_> = shares
        .into_iter()
        .map(|share| session(address.clone(), share))
        .collect();
    run_all("reports", total, sessions).await;
}
