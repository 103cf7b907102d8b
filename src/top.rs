//! `sightline top`: the actor tree of a running server in the terminal, for
//! operators on a machine without a browser. Reads `GET /actors` with the
//! admin token and prints one line per actor, indented under its
//! supervisor; with `--watch` it redraws every few seconds.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

/// What to show, and where from.
pub struct TopOptions {
    pub url: String,
    pub token: String,
    pub user: Option<String>,
    pub package: Option<String>,
    /// Redraw every this often; print once when `None`.
    pub watch: Option<Duration>,
}

/// Runs the command until it fails or (without `--watch`) after one print.
pub fn run(opts: TopOptions) -> Result<(), String> {
    let system = actix_rt::System::new();
    system.block_on(async move {
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(10))
            .finish();
        let mut query = Vec::new();
        if let Some(u) = &opts.user {
            query.push(("user", u.as_str()));
        }
        if let Some(p) = &opts.package {
            query.push(("package", p.as_str()));
        }
        let url = format!("{}/actors", opts.url.trim_end_matches('/'));
        loop {
            let request = client
                .get(&url)
                .bearer_auth(&opts.token)
                .query(&query)
                .map_err(|e| format!("bad filter: {e}"))?;
            let mut resp = request.send().await.map_err(|e| format!("{url}: {e}"))?;
            let status = resp.status();
            let body = resp
                .body()
                .limit(64 * 1024 * 1024)
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            if !status.is_success() {
                let text = String::from_utf8_lossy(&body);
                return Err(format!("{url} answered {status}: {text}"));
            }
            let view: Value = serde_json::from_slice(&body)
                .map_err(|e| format!("{url} did not answer JSON: {e}"))?;
            let page = render(&view, &opts.url);
            match opts.watch {
                Some(every) => {
                    // Clear the screen and draw from the top.
                    print!("\x1b[2J\x1b[H{page}");
                    actix_rt::time::sleep(every).await;
                }
                None => {
                    print!("{page}");
                    return Ok(());
                }
            }
        }
    })
}

const HEADER: [&str; 8] = [
    "ACTOR", "STATE", "HANDLED", "MAILBOX", "/MIN", "LAST", "FAIL", "RESTART",
];

/// The page for one `GET /actors` answer.
pub fn render(view: &Value, source: &str) -> String {
    let mut rows: Vec<[String; 8]> = Vec::new();
    for node in view["tree"].as_array().into_iter().flatten() {
        walk(node, "", "", &mut rows);
    }
    let counts = view["counts"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(" · ")
        })
        .unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(out, "Sightline actors at {source}: {counts}");
    if let Some(members) = view["cluster"].as_array() {
        let here = view["instance"].as_str().unwrap_or_default();
        let _ = writeln!(out, "Cluster: {} instances", members.len());
        for m in members {
            let id = m["instance"].as_str().unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}{id}  sessions {}  glasses {}  apps {}{}  {}",
                if id == here { "* " } else { "  " },
                m["sessions"].as_i64().unwrap_or(0),
                m["glassesConnections"].as_i64().unwrap_or(0),
                m["appConnections"].as_i64().unwrap_or(0),
                if m["draining"] == true {
                    "  draining"
                } else {
                    ""
                },
                m["url"].as_str().unwrap_or_default(),
            );
        }
    }
    let widths: Vec<usize> = (0..8)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([HEADER[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let header = HEADER.map(String::from);
    for row in std::iter::once(&header).chain(rows.iter()) {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c].saturating_sub(cell.chars().count());
            if c == 0 || c == 1 || c == 5 {
                let _ = write!(line, "{cell}{}  ", " ".repeat(pad));
            } else {
                let _ = write!(line, "{}{cell}  ", " ".repeat(pad));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

fn walk(node: &Value, prefix: &str, branch: &str, rows: &mut Vec<[String; 8]>) {
    let text = |k: &str| node[k].as_str().unwrap_or_default().to_string();
    let num = |k: &str| node[k].as_u64().unwrap_or(0).to_string();
    let mut name = format!("{prefix}{branch}{} #{}", text("kind"), num("id"));
    for extra in ["label", "package"] {
        if let Some(v) = node[extra].as_str() {
            let _ = write!(name, " {v}");
        }
    }
    if node["kind"] == "user-session" {
        if let Some(u) = node["user"].as_str() {
            let _ = write!(name, " {u}");
        }
    }
    rows.push([
        name,
        text("state"),
        num("messagesHandled"),
        num("mailbox"),
        num("messagesLastMinute"),
        ago(node["lastActivity"].as_str().unwrap_or_default()),
        num("failures"),
        num("restarts"),
    ]);
    let children = node["children"].as_array().cloned().unwrap_or_default();
    let inner = match branch {
        "├─ " => format!("{prefix}│  "),
        "└─ " => format!("{prefix}   "),
        _ => prefix.to_string(),
    };
    for (i, child) in children.iter().enumerate() {
        let b = if i + 1 == children.len() {
            "└─ "
        } else {
            "├─ "
        };
        walk(child, &inner, b, rows);
    }
}

/// "3 s ago" for an ISO timestamp.
fn ago(iso: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(iso) else {
        return "?".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds();
    match secs {
        s if s < 1 => "now".into(),
        s if s < 60 => format!("{s} s ago"),
        s if s < 3600 => format!("{} min ago", s / 60),
        s => format!("{} h ago", s / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_tree_is_drawn_with_one_line_per_actor() {
        let leaf = |id: u64, kind: &str, extra: Value| {
            let mut v = json!({"id": id, "kind": kind, "state": "open", "messagesHandled": 5,
                "mailbox": 0, "messagesLastMinute": 5, "lastActivity": "2000-01-01T00:00:00Z",
                "failures": 0, "restarts": 0, "children": []});
            if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                m.extend(e.clone());
            }
            v
        };
        let mut session = leaf(2, "user-session", json!({"user": "a@example.com"}));
        session["children"] = json!([
            leaf(3, "glasses-connection", json!({"label": "c1"})),
            leaf(
                4,
                "app-connection",
                json!({"label": "c2", "package": "com.example.notes"})
            ),
        ]);
        let mut root = leaf(1, "supervisor", json!({}));
        root["children"] = json!([session]);
        let page = render(
            &json!({"counts": {"user-session": 1}, "tree": [root]}),
            "http://x",
        );
        let lines: Vec<&str> = page.lines().collect();
        assert_eq!(lines.len(), 2 + 4, "{page}");
        assert!(lines[2].starts_with("supervisor #1"));
        assert!(
            lines[3].starts_with("└─ user-session #2 a@example.com"),
            "{page}"
        );
        assert!(
            lines[4].starts_with("   ├─ glasses-connection #3 c1"),
            "{page}"
        );
        assert!(
            lines[5].starts_with("   └─ app-connection #4 c2 com.example.notes"),
            "{page}"
        );
        assert!(lines[5].contains(" h ago"));
    }
}
