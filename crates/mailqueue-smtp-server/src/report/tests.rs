use super::*;

/// A DSN as Postfix 3.7 writes it when its next hop refused a recipient.
const POSTFIX_DSN: &str = "From: MAILER-DAEMON@postfix.test (Mail Delivery System)\r
Subject: Undelivered Mail Returned to Sender\r
To: b-0123@bounces.acme.test\r
Auto-Submitted: auto-replied\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status;\r
\tboundary=\"4ABC.1765000000/postfix.test\"\r
Message-Id: <20261207120000.5DEF@postfix.test>\r
\r
This is a MIME-encapsulated message.\r
\r
--4ABC.1765000000/postfix.test\r
Content-Description: Notification\r
Content-Type: text/plain; charset=us-ascii\r
\r
This is the mail system at host postfix.test.\r
\r
<nobody@example.com>: host 127.0.0.1[127.0.0.1] said: 550 5.1.1\r
    <nobody@example.com>: Recipient address rejected: User unknown (in reply to\r
    RCPT TO command)\r
\r
--4ABC.1765000000/postfix.test\r
Content-Description: Delivery report\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; postfix.test\r
X-Postfix-Queue-ID: 4ABC\r
X-Postfix-Sender: rfc822; b-0123@bounces.acme.test\r
Arrival-Date: Mon,  7 Dec 2026 12:00:00 +0000 (UTC)\r
\r
Final-Recipient: rfc822; nobody@example.com\r
Original-Recipient: rfc822;nobody@example.com\r
Action: failed\r
Status: 5.1.1\r
Remote-MTA: dns; 127.0.0.1\r
Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.com>: Recipient address\r
    rejected: User unknown\r
\r
Final-Recipient: rfc822; slow@example.com\r
Action: delayed\r
Status: 4.4.1\r
Diagnostic-Code: X-Postfix; connect to 127.0.0.1[127.0.0.1]:2525: Connection\r
    refused\r
\r
--4ABC.1765000000/postfix.test\r
Content-Description: Undelivered Message Headers\r
Content-Type: text/rfc822-headers\r
\r
Return-Path: <b-0123@bounces.acme.test>\r
From: billing@acme.test\r
To: nobody@example.com\r
Subject: Your invoice\r
Message-ID: <invoice-42@acme.test>\r
\r
--4ABC.1765000000/postfix.test--\r
";

/// An ARF report as mailbox providers send them (RFC 5965 §B.1).
const ARF: &str = "From: <abuse@mailbox.example>\r
To: <fbl@acme.test>\r
Subject: FW: Your invoice\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=feedback-report;\r
     boundary=\"part1_13d.2e68ed54_boundary\"\r
\r
--part1_13d.2e68ed54_boundary\r
Content-Type: text/plain; charset=\"US-ASCII\"\r
\r
This is an email abuse report for an email message received from IP\r
192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.\r
\r
--part1_13d.2e68ed54_boundary\r
Content-Type: message/feedback-report\r
\r
Feedback-Type: abuse\r
User-Agent: SomeGenerator/1.0\r
Version: 1\r
Original-Mail-From: <b-0123@bounces.acme.test>\r
Original-Rcpt-To: <ann@mailbox.example>\r
Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT\r
\r
--part1_13d.2e68ed54_boundary\r
Content-Type: message/rfc822\r
Content-Disposition: inline\r
\r
Return-Path: <b-0123@bounces.acme.test>\r
From: <billing@acme.test>\r
To: Ann <ann@mailbox.example>\r
Subject: Your invoice\r
Message-ID: <invoice-42@acme.test>\r
Date: Thu, 8 Mar 2005 12:00:00 -0500\r
\r
Your invoice is attached.\r
\r
--part1_13d.2e68ed54_boundary--\r
";

#[test]
fn reads_a_postfix_dsn() {
    let Report::Delivery(report) = read_report(POSTFIX_DSN.as_bytes()) else {
        panic!("{:?}", read_report(POSTFIX_DSN.as_bytes()));
    };
    assert_eq!(
        report.original_message_id.as_deref(),
        Some("<invoice-42@acme.test>")
    );
    assert_eq!(
        report.recipients,
        [
            RecipientStatus {
                recipient: "nobody@example.com".into(),
                action: DsnAction::Failed,
                status: "5.1.1".into(),
                diagnostic_code: Some(
                    "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown"
                        .into()
                ),
            },
            RecipientStatus {
                recipient: "slow@example.com".into(),
                action: DsnAction::Delayed,
                status: "4.4.1".into(),
                diagnostic_code: Some(
                    "connect to 127.0.0.1[127.0.0.1]:2525: Connection refused".into()
                ),
            },
        ]
    );
}

#[test]
fn reads_an_arf_report() {
    let Report::Complaint(report) = read_report(ARF.as_bytes()) else {
        panic!("{:?}", read_report(ARF.as_bytes()));
    };
    assert_eq!(report.feedback_type, "abuse");
    assert_eq!(
        report.original_rcpt_to.as_deref(),
        Some("ann@mailbox.example")
    );
    assert_eq!(
        report.original_mail_from.as_deref(),
        Some("b-0123@bounces.acme.test")
    );
    assert_eq!(
        report.original_message_id.as_deref(),
        Some("<invoice-42@acme.test>")
    );
    assert_eq!(
        report.original_return_path.as_deref(),
        Some("b-0123@bounces.acme.test")
    );
    assert_eq!(report.original_to, ["ann@mailbox.example"]);
}

#[test]
fn anything_else_is_unclassified() {
    let cases: [&[u8]; 4] = [
        b"Subject: out of office\r\n\r\nI am away.\r\n",
        b"Content-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n\r\n--b--\r\n",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n",
        b"",
    ];
    for case in cases {
        assert!(
            matches!(read_report(case), Report::Unclassified(_)),
            "{}",
            String::from_utf8_lossy(case)
        );
    }
}

#[test]
fn status_codes_are_read_from_their_field() {
    assert_eq!(status_code("5.1.1").as_deref(), Some("5.1.1"));
    assert_eq!(
        status_code("4.2.2 (mailbox full)").as_deref(),
        Some("4.2.2")
    );
    assert_eq!(status_code("5.1"), None);
    assert_eq!(status_code("9.1.1"), None);
}

proptest::proptest! {
    #[test]
    fn never_panics_on_any_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096)) {
        let _ = read_report(&bytes);
    }

    #[test]
    fn never_panics_on_mangled_reports(cut in 0usize..2000, junk in "[ -~\\r\\n\\t]{0,200}") {
        for base in [POSTFIX_DSN, ARF] {
            let at = cut.min(base.len());
            let mut mangled = base.as_bytes()[..at].to_vec();
            mangled.extend_from_slice(junk.as_bytes());
            mangled.extend_from_slice(&base.as_bytes()[at..]);
            let _ = read_report(&mangled);
        }
    }
}
