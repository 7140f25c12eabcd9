//! Misbehaving HTTP servers for fault tests: a proxy whose error page echoes the request (URL and
//! headers, keys included), a listener that accepts and never answers, a download that stalls
//! after its first bytes, and an HTML page where a gzip file should be.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// 502 with the request head in the HTML body; `/configuration` answers 200 `{}` when
    /// `configuration_ok` (so a stage gets past its credentials check).
    Echo502 { configuration_ok: bool },
    /// Accepts the connection and never sends a byte.
    Silent,
    /// Sends 200 headers and the first two bytes of a gzip file, then nothing.
    StallAfterHeaders,
    /// 200 with an HTML page (a captive portal or a proxy's login page).
    Html200,
}

/// A running fake server; stops when dropped.
pub struct FakeHttp {
    addr: SocketAddr,
    connections: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeHttp {
    /// Starts a server on a free local port.
    pub async fn start(behaviour: Behaviour) -> FakeHttp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicU64::new(0));
        let count = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(socket, behaviour));
            }
        });
        FakeHttp {
            addr,
            connections,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections accepted so far (one request each: every answer closes the connection).
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut socket: TcpStream, behaviour: Behaviour) {
    if behaviour == Behaviour::Silent {
        // Hold the connection open, read nothing, answer nothing.
        let _keep = socket;
        std::future::pending::<()>().await;
        return;
    }
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let request_line = head.lines().next().unwrap_or_default().to_string();
    let response = match behaviour {
        Behaviour::Echo502 { configuration_ok }
            if configuration_ok && request_line.contains("/configuration") =>
        {
            reply("200 OK", "application/json", b"{\"images\":{}}".to_vec())
        }
        Behaviour::Echo502 { .. } => {
            let body =
                format!("<html><body><h1>502 Bad Gateway</h1>\n<pre>{head}</pre></body></html>");
            reply("502 Bad Gateway", "text/html", body.into_bytes())
        }
        Behaviour::Html200 => reply(
            "200 OK",
            "text/html",
            b"<html><body>Please sign in to the proxy</body></html>".to_vec(),
        ),
        Behaviour::StallAfterHeaders => {
            let mut r = b"HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\n\
                          Content-Length: 1000000\r\n\r\n"
                .to_vec();
            r.extend_from_slice(&[0x1f, 0x8b]);
            let _ = socket.write_all(&r).await;
            let _ = socket.flush().await;
            let _keep = socket;
            std::future::pending::<()>().await;
            return;
        }
        Behaviour::Silent => unreachable!(),
    };
    let _ = socket.write_all(&response).await;
    let _ = socket.shutdown().await;
}

fn reply(status: &str, content_type: &str, body: Vec<u8>) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(&body);
    r
}
