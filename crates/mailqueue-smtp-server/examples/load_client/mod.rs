//! What the load generators share: one command at a time on a connection,
//! each waiting for its reply, as Postfix's `smtp-source` does.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub type Conn = BufReader<TcpStream>;

/// Connects and reads the greeting.
pub async fn connect(address: &str) -> std::io::Result<Conn> {
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let mut conn = BufReader::new(stream);
    let (code, text) = reply(&mut conn).await?;
    if code != 220 {
        return Err(std::io::Error::other(format!("greeting: {text}")));
    }
    Ok(conn)
}

/// Reads one reply (all its lines); returns its code and text.
pub async fn reply(conn: &mut Conn) -> std::io::Result<(u16, String)> {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        if conn.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::other("the server closed the connection"));
        }
        text.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            let code = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            return Ok((code, text));
        }
    }
}

/// Sends `line` and expects `expected` in reply.
pub async fn command(conn: &mut Conn, line: &[u8], expected: u16) -> std::io::Result<()> {
    conn.get_mut().write_all(line).await?;
    let (code, text) = reply(conn).await?;
    if code != expected {
        let sent = String::from_utf8_lossy(&line[..line.len().min(60)]).into_owned();
        return Err(std::io::Error::other(format!(
            "{} answered {text}",
            sent.trim_end()
        )));
    }
    Ok(())
}

/// One message: MAIL, RCPT, DATA and the dot-terminated `body`, each
/// answered before the next.
pub async fn send_message(
    conn: &mut Conn,
    from: &str,
    to: &str,
    body: &[u8],
) -> std::io::Result<()> {
    command(conn, format!("MAIL FROM:<{from}>\r\n").as_bytes(), 250).await?;
    command(conn, format!("RCPT TO:<{to}>\r\n").as_bytes(), 250).await?;
    command(conn, b"DATA\r\n", 354).await?;
    command(conn, body, 250).await
}

/// Runs the sessions; prints `{noun}={total} seconds=S rate=R`, or the
/// first failure and exits 1.
pub async fn run_all<F>(noun: &str, total: usize, sessions: Vec<F>)
where
    F: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    let started = std::time::Instant::now();
    let tasks: Vec<_> = sessions.into_iter().map(tokio::spawn).collect();
    for task in tasks {
        let failure = match task.await {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e.to_string(),
            Err(e) => format!("a session failed: {e}"),
        };
        eprintln!("{noun}: {failure}");
        std::process::exit(1);
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{noun}={total} seconds={seconds:.3} rate={:.0}",
        total as f64 / seconds
    );
}
