//! `mixed`: glasses-event → app latency while the transcription path and
//! the display manager are busy, beside the same event load alone.
//!
//! Every user's glasses run a listener app subscribed to `button_press`;
//! a share of the users also speak: their glasses stream 20 ms PCM frames
//! in real time, and a live-captions app subscribed to
//! `transcription:en-US` shows every transcript it receives as a
//! `text_wall`, so each transcript becomes a display request that goes
//! through the display manager to the glasses. The server is Sightline's
//! release binary with the Vosk provider pointed at a recogniser that
//! speaks the Vosk protocol and answers by the amount of audio it has
//! received (a partial every 0.5 s of speech, a final every 2 s) without
//! recognising anything: the machine's CPU goes to Sightline, not to a
//! speech model, and what is measured is Sightline's transcription path
//! (decode, stream actor, provider socket, results to apps).
//!
//! Two phases on one server: *events alone* (speakers silent), then
//! *mixed* (speakers speaking, captions displaying), each at the same
//! event rate; the events' latency is compared.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use crate::apps::{self, Behaviour, Metrics, Waiters};
use crate::deploy::GlassesSink;
use crate::glasses::{self, Payload, PCM_FRAME_BYTES};
use crate::hist::Percentiles;
use crate::net::Ws;
use crate::procstat;
use crate::target::{check_programs, Kind, Programs, Target};

/// Parameters of the mixed-load run.
#[derive(Debug, Clone, clap::Args, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MixedArgs {
    /// Simulated users (glasses + a `button_press` listener app each).
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// Users who speak (PCM in real time, a captions app displaying their
    /// transcripts).
    #[arg(long, default_value_t = 20)]
    pub speakers: usize,
    /// Glasses events per second, over all users (each reaches one app).
    #[arg(long, default_value_t = 4000.0)]
    pub event_rate: f64,
    /// Seconds measured in each phase (after a warm-up of a third of it).
    #[arg(long, default_value_t = 10.0)]
    pub secs: f64,
}

/// One phase's figures.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Phase {
    pub name: &'static str,
    /// Glasses events sent per second.
    pub events_sent: f64,
    /// Events delivered to listener apps per second.
    pub events_delivered: f64,
    /// Glasses event → listener app.
    pub latency: Percentiles,
    /// PCM frames the speakers sent per second.
    pub audio_frames: f64,
    /// Transcripts reaching caption apps per second.
    pub transcripts: f64,
    /// Display requests the caption apps sent per second.
    pub display_requests: f64,
    /// `display_event`s reaching the glasses per second.
    pub displays_shown: f64,
    /// CPU of the server, percent of one core.
    pub server_cpu: f64,
    pub generator_cpu: f64,
}

/// Both phases.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MixedRun {
    pub params: MixedArgs,
    pub alone: Phase,
    pub mixed: Phase,
}

/// Runs both phases on a fresh Sightline.
pub async fn run(args: &MixedArgs, programs: &Programs) -> Result<MixedRun> {
    check_programs(programs, &[Kind::Sightline])?;
    if args.speakers > args.users {
        bail!("--speakers must not exceed --users");
    }
    println!(
        "mixed load: users={} speakers={} event_rate={}/s secs={}",
        args.users, args.speakers, args.event_rate, args.secs
    );
    let recogniser = Recogniser::spawn().await?;
    let env = [
        ("SIGHTLINE_ASR_PROVIDER", "vosk".to_string()),
        ("SIGHTLINE_ASR_URL", format!("ws://{}", recogniser.addr)),
    ];
    let target = Target::start(Kind::Sightline, programs, &env).await?;
    let result = measure(&target, args).await;
    target.stop().await;
    let run = result?;
    for p in [&run.alone, &run.mixed] {
        println!(
            "  {:<12} events {:.0}/s delivered, p50 {:.2} p99 {:.2} p99.9 {:.2} ms; audio {:.0} frames/s, transcripts {:.0}/s, displays {:.0}/s asked, {:.0}/s shown; server CPU {:.0} %",
            p.name,
            p.events_delivered,
            p.latency.p50,
            p.latency.p99,
            p.latency.p999,
            p.audio_frames,
            p.transcripts,
            p.display_requests,
            p.displays_shown,
            p.server_cpu
        );
    }
    Ok(run)
}

async fn measure(target: &Target, args: &MixedArgs) -> Result<MixedRun> {
    let listen = Arc::new(Metrics::default());
    let captions = Arc::new(Metrics::default());
    let waiters = Arc::new(Waiters::default());
    let listener = apps::spawn_app_server_as(
        "bench.mixed.listener",
        "bench-mixed-listener-key",
        vec!["button_press".into()],
        listen.clone(),
        waiters.clone(),
        Behaviour::Listen,
    )
    .await?;
    let caption_app = apps::spawn_app_server_as(
        "bench.mixed.captions",
        "bench-mixed-captions-key",
        vec!["transcription:en-US".into()],
        captions.clone(),
        waiters,
        Behaviour::Captions,
    )
    .await?;
    target
        .register_app(
            &listener.package,
            &listener.url,
            "bench-mixed-listener-key",
            &["ALL"],
        )
        .await?;
    target
        .register_app(
            &caption_app.package,
            &caption_app.url,
            "bench-mixed-captions-key",
            &["MICROPHONE"],
        )
        .await?;

    let shown = Arc::new(AtomicU64::new(0));
    let mut sinks = Vec::new();
    let mut readers = Vec::new();
    for u in 0..args.users {
        let (mut ws, _) =
            glasses::connect_sightline(target.addr, &format!("mixed{u}@bench.local")).await?;
        let mut packages = vec![listener.package.clone()];
        if u < args.speakers {
            packages.push(caption_app.package.clone());
        }
        for p in packages {
            ws.send(Message::text(
                json!({"type": "start_app", "packageName": p}).to_string(),
            ))
            .await?;
        }
        let (sink, stream) = ws.split();
        sinks.push(sink);
        readers.push(tokio::spawn(count_displays(stream, shown.clone())));
    }
    let want = (args.users + args.speakers) as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while listener.acked.load(Ordering::Relaxed) + caption_app.acked.load(Ordering::Relaxed) < want
    {
        if Instant::now() > deadline {
            bail!("not every app acknowledged within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Subscriptions in place: one event per user reaches its listener.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let before = listen.delivered();
        for s in sinks.iter_mut() {
            s.send(Payload::Event.frame()).await?;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        if listen.delivered() - before >= args.users as u64 {
            break;
        }
        if Instant::now() > deadline {
            bail!("events do not reach every listener app");
        }
    }
    let counters = Counters {
        listen,
        captions,
        shown,
    };
    let alone = phase(target, &mut sinks, args, 0, &counters, "events alone").await?;
    let mixed = phase(target, &mut sinks, args, args.speakers, &counters, "mixed").await?;
    for r in readers {
        r.abort();
    }
    if mixed.transcripts <= 0.0 || mixed.displays_shown <= 0.0 {
        bail!(
            "the mixed phase had no transcripts ({:.0}/s) or no displays ({:.0}/s): the transcription or display path did not run",
            mixed.transcripts,
            mixed.displays_shown
        );
    }
    Ok(MixedRun {
        params: args.clone(),
        alone,
        mixed,
    })
}

struct Counters {
    listen: Arc<Metrics>,
    captions: Arc<Metrics>,
    shown: Arc<AtomicU64>,
}

impl Counters {
    fn read(&self) -> [u64; 3] {
        [
            self.captions.transcripts.load(Ordering::Relaxed),
            self.captions.displays_sent.load(Ordering::Relaxed),
            self.shown.load(Ordering::Relaxed),
        ]
    }
}

/// Sends events at the run's rate (and audio from the first `speakers`
/// users) for a warm-up then the measured window.
async fn phase(
    target: &Target,
    sinks: &mut Vec<GlassesSink>,
    args: &MixedArgs,
    speakers: usize,
    counters: &Counters,
    name: &'static str,
) -> Result<Phase> {
    let warmup = Duration::from_secs_f64((args.secs / 3.0).max(1.0));
    let window = Duration::from_secs_f64(args.secs);
    let events = Arc::new(AtomicU64::new(0));
    let audio = Arc::new(AtomicU64::new(0));
    // Two senders, each with half the users (and the speakers among them).
    let mut halves: [Vec<(GlassesSink, bool)>; 2] = [Vec::new(), Vec::new()];
    for (i, s) in std::mem::take(sinks).into_iter().enumerate() {
        halves[i % 2].push((s, i < speakers));
    }
    let handles: Vec<_> = halves
        .into_iter()
        .map(|h| {
            tokio::spawn(send_mixed(
                h,
                args.event_rate / 2.0,
                warmup + window,
                events.clone(),
                audio.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(warmup).await;
    counters.listen.latency.reset();
    let (d0, e0, a0, c0) = (
        counters.listen.delivered(),
        events.load(Ordering::Relaxed),
        audio.load(Ordering::Relaxed),
        counters.read(),
    );
    let (srv0, gen0) = (target.sample()?, procstat::own()?);
    tokio::time::sleep(window).await;
    let (d1, e1, a1, c1) = (
        counters.listen.delivered(),
        events.load(Ordering::Relaxed),
        audio.load(Ordering::Relaxed),
        counters.read(),
    );
    let (srv1, gen1) = (target.sample()?, procstat::own()?);
    let mut back: [Vec<GlassesSink>; 2] = [Vec::new(), Vec::new()];
    for (k, h) in handles.into_iter().enumerate() {
        back[k] = h.await?;
    }
    // Put the sinks back in user order (they were dealt alternately).
    let [mut even, mut odd] = back.map(|v| v.into_iter());
    loop {
        match (even.next(), odd.next()) {
            (None, None) => break,
            (a, b) => sinks.extend(a.into_iter().chain(b)),
        }
    }
    // Late events still count in the latency.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let secs = srv1.at.duration_since(srv0.at).as_secs_f64();
    let per_sec = |a: u64, b: u64| (b - a) as f64 / secs;
    Ok(Phase {
        name,
        events_sent: per_sec(e0, e1),
        events_delivered: per_sec(d0, d1),
        latency: counters.listen.latency.percentiles(),
        audio_frames: per_sec(a0, a1),
        transcripts: per_sec(c0[0], c1[0]),
        display_requests: per_sec(c0[1], c1[1]),
        displays_shown: per_sec(c0[2], c1[2]),
        server_cpu: procstat::cpu_percent(&srv0, &srv1),
        generator_cpu: procstat::cpu_percent(&gen0, &gen1),
    })
}

/// Paces events round-robin over all `sinks` at `rate`, and a 20 ms PCM
/// frame every 20 ms from each speaking one.
async fn send_mixed(
    mut sinks: Vec<(GlassesSink, bool)>,
    rate: f64,
    dur: Duration,
    events: Arc<AtomicU64>,
    audio: Arc<AtomicU64>,
) -> Vec<GlassesSink> {
    let start = Instant::now();
    let (mut sent, mut audio_rounds, mut i) = (0u64, 0u64, 0usize);
    for (s, _) in sinks.iter_mut().filter(|(_, s)| *s) {
        let _ = s
            .send(Message::text(r#"{"type":"VAD","status":true}"#))
            .await;
    }
    while !sinks.is_empty() && start.elapsed() < dur {
        let elapsed = start.elapsed().as_secs_f64();
        let due = (rate * elapsed) as u64;
        while sent < due {
            let len = sinks.len();
            let _ = sinks[i % len].0.send(Payload::Event.frame()).await;
            i += 1;
            sent += 1;
            events.fetch_add(1, Ordering::Relaxed);
        }
        // One frame per speaker per 20 ms of elapsed time.
        let rounds_due = (elapsed / 0.020) as u64;
        while audio_rounds < rounds_due {
            for (s, _) in sinks.iter_mut().filter(|(_, s)| *s) {
                let _ = s.send(speech_frame()).await;
                audio.fetch_add(1, Ordering::Relaxed);
            }
            audio_rounds += 1;
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    for (s, _) in sinks.iter_mut().filter(|(_, s)| *s) {
        let _ = s
            .send(Message::text(r#"{"type":"VAD","status":false}"#))
            .await;
    }
    sinks.into_iter().map(|(s, _)| s).collect()
}

/// 20 ms of a 440 Hz tone at 16 kHz (a stand-in for speech: the
/// recogniser only counts it), made once and shared by every frame so the
/// generator spends nothing on it.
fn speech_frame() -> Message {
    static FRAME: std::sync::OnceLock<bytes::Bytes> = std::sync::OnceLock::new();
    let frame = FRAME.get_or_init(|| {
        let mut b = Vec::with_capacity(PCM_FRAME_BYTES);
        for n in 0..PCM_FRAME_BYTES / 2 {
            let phase = n as f64 * 2.0 * std::f64::consts::PI * 440.0 / 16000.0;
            b.extend_from_slice(&((phase.sin() * 8000.0) as i16).to_le_bytes());
        }
        bytes::Bytes::from(b)
    });
    Message::binary(frame.clone())
}

/// Counts the captions app's `display_event`s a user's glasses receive.
async fn count_displays(mut stream: SplitStream<Ws>, shown: Arc<AtomicU64>) {
    while let Some(Ok(m)) = stream.next().await {
        match m {
            // Only the captions' views: the dashboard's own renders (at
            // every minute boundary, for every session) are not the load.
            Message::Text(t)
                if t.contains("\"type\":\"display_event\"")
                    && t.contains("\"packageName\":\"bench.mixed.captions\"") =>
            {
                shown.fetch_add(1, Ordering::Relaxed);
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
}

/// A recogniser speaking the Vosk server protocol that transcribes by
/// length: a partial for every 0.5 s of audio received, a final for every
/// 2 s, and a final on `{"eof": 1}`.
struct Recogniser {
    addr: SocketAddr,
    _task: tokio::task::JoinHandle<()>,
}

impl Recogniser {
    async fn spawn() -> Result<Recogniser> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(ws) = tokio_tungstenite::accept_async(stream).await {
                        recognise(ws).await;
                    }
                });
            }
        });
        Ok(Recogniser { addr, _task: task })
    }
}

const PARTIAL_BYTES: usize = 16_000; // 0.5 s of 16 kHz 16-bit PCM
const FINAL_BYTES: usize = 64_000; // 2 s

async fn recognise(mut ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) {
    let (mut since_partial, mut since_final, mut words) = (0usize, 0usize, 0u64);
    while let Some(Ok(msg)) = ws.next().await {
        let reply = match msg {
            Message::Binary(b) => {
                since_partial += b.len();
                since_final += b.len();
                if since_final >= FINAL_BYTES {
                    since_final = 0;
                    since_partial = 0;
                    words += 1;
                    Some(
                        json!({"text": format!("caption number {words} from the bench"), "result": []}),
                    )
                } else if since_partial >= PARTIAL_BYTES {
                    since_partial = 0;
                    words += 1;
                    Some(json!({"partial": format!("caption number {words}")}))
                } else {
                    None
                }
            }
            Message::Text(t) if t.contains("eof") => {
                let _ = ws
                    .send(Message::text(json!({"text": "", "result": []}).to_string()))
                    .await;
                break;
            }
            Message::Close(_) => break,
            _ => None,
        };
        if let Some(r) = reply {
            if ws.send(Message::text(r.to_string())).await.is_err() {
                break;
            }
        }
    }
}
