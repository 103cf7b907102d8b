#!/usr/bin/env python3
"""Where the server's instructions go, hop by hop, in a cost-guard run.

Usage:
    target/release/sightline-bench cost --sightline target/release/sightline --keep
    python3 scripts/cost-profile.py /tmp/sightline-cost-<pid>-0

Reads the callgrind dumps the cost guard keeps (part 2: N rounds of
events, part 4: N rounds of PCM audio; 20 deliveries per round with the
default 10 users x 2 apps), groups each function's own instructions by
the hop of the message path it belongs to, and prints instructions per
delivery for each hop. Kernel time (system calls) is not counted by
callgrind, so socket writes show only their user-space part.
"""
import re
import subprocess
import sys

HOPS = [
    ("socket read and WebSocket decode (actix-http dispatcher, codec, frame guard)",
     r"actix_http::h1|WsStream|ws::codec|ws::frame|FrameGuard|h1::payload|poll_read|TcpStream|Registration::poll_ready|ScheduledIo|frame_header"),
    ("JSON parse of the glasses frame",
     r"serde_json::de|serde_json::read|deserialize_raw_value|deserialize_struct|parse_glasses|RawValue"),
    ("mailboxes and actor scheduling (actix channels, contexts, wakers, tokio)",
     r"actix::address|actix::context|ContextFut|AtomicWaker|actix::stream|actix::fut|LocalSet|notify|tokio::runtime::scheduler|tokio::task|tokio::sync|LocalKey"),
    ("subscription match and fan-out in the session",
     r"route_event|sightline_runtime::session|matches_event|sightline_runtime::link|send_event|Subscription"),
    ("building each app's frame (data_stream text, timestamps)",
     r"push_json_str|DataStreamFrame|to_rfc3339|chrono|for_session|format|fmt::"),
    ("WebSocket encode and socket write (user space)",
     r"WebsocketContextFut|MessageBody|ws::Codec.*encode|Encoder|poll_write|write_all|BytesMut|bytes::"),
    ("allocation and copies (malloc, free, memcpy)", r"malloc|free|memmove|memcpy|realloc|alloc::"),
    ("timers and clocks", r"Sleep|Timespec|Instant|time::|trace_timer"),
    ("hashing and maps", r"sip::Hasher|hash_one|hashbrown|HashMap"),
    ("metrics and probes", r"prometheus|sightline_probe|LabelledCounters|Histogram|IntCounter|atomic"),
]
FRAMES = ("__rust_begin_short_backtrace", "block_on", "clone.S", "start_thread",
          "thread_start", "call_once{{vtable", "enter_runtime")


def profile(path, deliveries):
    out = subprocess.run(["callgrind_annotate", "--threshold=100", "--inclusive=no", path],
                         capture_output=True, text=True, check=True).stdout
    total, sums, other = 0, {h: 0 for h, _ in HOPS}, 0
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)", line)
        if not m:
            continue
        n, name = int(m.group(1).replace(",", "")), m.group(2)
        if "PROGRAM TOTALS" in name:
            total = n
            continue
        if any(f in name for f in FRAMES):
            continue
        for hop, pattern in HOPS:
            if re.search(pattern, name):
                sums[hop] += n
                break
        else:
            other += n
    print(f"| hop | instructions per delivery | share |")
    print(f"|---|---:|---:|")
    for hop, n in sums.items():
        print(f"| {hop} | {n / deliveries:.0f} | {100 * n / total:.1f} % |")
    print(f"| other | {other / deliveries:.0f} | {100 * other / total:.1f} % |")
    print(f"| **total** | **{total / deliveries:.0f}** | |")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    d = sys.argv[1].rstrip("/")
    deliveries = int(sys.argv[2]) if len(sys.argv) > 2 else 4000
    for title, part in (("events (button_press)", 2), ("PCM audio frames", 4)):
        print(f"\n{title}:\n")
        profile(f"{d}/callgrind.out.{part}", deliveries)


if __name__ == "__main__":
    main()
