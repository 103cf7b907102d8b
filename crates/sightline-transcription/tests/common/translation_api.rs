//! A scripted HTTP translation API on a free loopback port, for the
//! translator contract tests: it records each request (method, path,
//! headers, JSON body) and answers the n-th one as the test says, with a
//! status and a JSON body or not at all (to test timeouts).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What the client sent.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: Value,
}

/// How the fake answers a request.
#[derive(Debug, Clone)]
pub enum Reply {
    Json(u16, Value),
    /// Never answer (the client must time out).
    Silent,
}

pub struct FakeHttp {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    requests: mpsc::UnboundedReceiver<HttpRequest>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeHttp {
    /// `answer(n, request)` for the n-th request, counting from 1.
    pub async fn start(
        answer: impl Fn(usize, &HttpRequest) -> Reply + Send + Sync + 'static,
    ) -> FakeHttp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, requests) = mpsc::unbounded_channel();
        let answer = Arc::new(answer);
        let count = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (answer, tx, count) = (answer.clone(), tx.clone(), count.clone());
                tokio::spawn(async move {
                    let mut tcp = tcp;
                    let Some(req) = read_request(&mut tcp).await else {
                        return;
                    };
                    let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                    let reply = answer(n, &req);
                    let _ = tx.send(req);
                    match reply {
                        Reply::Silent => tokio::time::sleep(Duration::from_secs(30)).await,
                        Reply::Json(status, body) => {
                            let body = body.to_string();
                            let head = format!(
                                "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                                body.len()
                            );
                            let _ = tcp.write_all(head.as_bytes()).await;
                            let _ = tcp.write_all(body.as_bytes()).await;
                            let _ = tcp.shutdown().await;
                        }
                    }
                });
            }
        });
        FakeHttp {
            url,
            requests,
            task,
        }
    }

    /// The next request the client sent (waits up to 5 s).
    pub async fn request(&mut self) -> HttpRequest {
        tokio::time::timeout(Duration::from_secs(5), self.requests.recv())
            .await
            .expect("no request within 5 s")
            .expect("server gone")
    }

    /// Requests received so far and not yet taken.
    pub fn pending(&mut self) -> usize {
        let mut n = 0;
        while self.requests.try_recv().is_ok() {
            n += 1;
        }
        n
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request(tcp: &mut TcpStream) -> Option<HttpRequest> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        let n = tcp.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let mut lines = head.lines();
        let mut first = lines.next()?.split(' ');
        let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if buf.len() - (end + 4) < len {
            continue;
        }
        let body = serde_json::from_slice(&buf[end + 4..end + 4 + len]).unwrap_or(Value::Null);
        return Some(HttpRequest {
            method,
            path,
            headers,
            body,
        });
    }
}
