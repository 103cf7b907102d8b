#!/usr/bin/env python3
"""Draws docs/display-timeline.svg: the contested scenario of
tests/display.rs (a standard and a background app sharing the screen),
laid out with the display rules' own numbers (boot screen 1.5 s, throttle
300 ms, the notification's durationMs 2.5 s). Plain Python, no packages.

Usage: python3 scripts/draw-display-timeline.py > docs/display-timeline.svg
"""

T1 = 2.5  # the background app is started 2.5 s in

# (lane, start s, end s, label, fill)
BLOCKS = [
    ("screen", 0.0, 1.5, "Boot: Starting App", "#d9d9d9"),
    ("screen", 1.5, T1, "NAV: Turn left in 200 m", "#9ecae1"),
    ("screen", T1, T1 + 1.5, "Boot: Starting App", "#d9d9d9"),
    ("screen", T1 + 1.5, T1 + 4.0, "NOTE: Ana: lunch at 1?", "#fdae6b"),
    ("screen", T1 + 4.0, T1 + 4.5, "Reroute", "#9ecae1"),
    ("screen", T1 + 4.5, T1 + 4.8, "In 50 m", "#9ecae1"),
    ("screen", T1 + 4.8, T1 + 5.6, "Now", "#9ecae1"),
    ("screen", T1 + 5.6, T1 + 6.2, "clear", "#ffffff"),
]

# (lane, time s, label, kind) kind: sent | queued | dropped | replaced | stop
MARKS = [
    ("nav", 0.0, "start_app", "stop"),
    ("nav", 0.3, "Turn left (queued in boot)", "queued"),
    ("note", T1, "start_app", "stop"),
    ("note", T1 + 0.3, "Ana (queued in boot, durationMs 2500)", "queued"),
    ("nav", T1 + 1.7, "Reroute: dropped, NOTE holds the lock", "dropped"),
    ("nav", T1 + 4.5, "3 sent at once: 2nd replaced by 3rd", "sent"),
    ("nav", T1 + 4.52, "", "replaced"),
    ("nav", T1 + 4.54, "", "queued"),
    ("nav", T1 + 5.6, "stop_app", "stop"),
]

LANES = {"nav": 70, "note": 150, "screen": 230}
LANE_NAMES = {
    "nav": "Navigator (standard, core app)",
    "note": "Notifier (background app)",
    "screen": "Glasses main view",
}
X0, SCALE, WIDTH, HEIGHT = 40, 100, 1000, 330


def x(t):
    return X0 + t * SCALE


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main():
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        '<text x="40" y="20" font-size="14" font-weight="bold">'
        "Two apps, one screen: what the glasses show (seconds)</text>",
    ]
    for lane, y in LANES.items():
        out.append(f'<text x="{X0}" y="{y - 22}" font-weight="bold">{LANE_NAMES[lane]}</text>')
        out.append(f'<line x1="{X0}" y1="{y}" x2="{x(T1 + 6.2)}" y2="{y}" stroke="#bbb"/>')
    for lane, start, end, label, fill in BLOCKS:
        y = LANES[lane]
        out.append(
            f'<rect x="{x(start):.1f}" y="{y - 14}" width="{(end - start) * SCALE:.1f}" '
            f'height="28" fill="{fill}" stroke="#555"/>'
        )
        out.append(
            f'<text x="{x(start) + 3:.1f}" y="{y + 4}" font-size="9">{esc(label)}</text>'
        )
    colors = {"sent": "#3182bd", "queued": "#31a354", "dropped": "#de2d26",
              "replaced": "#999", "stop": "#000"}
    offsets = {}
    for lane, t, label, kind in MARKS:
        y = LANES[lane]
        c = colors[kind]
        if kind == "dropped":
            out.append(f'<text x="{x(t) - 4:.1f}" y="{y + 4}" fill="{c}" font-size="14">✕</text>')
        else:
            out.append(f'<circle cx="{x(t):.1f}" cy="{y}" r="4" fill="{c}"/>')
        if label:
            n = offsets.get(lane, 0)
            offsets[lane] = n + 1
            dy = 18 + 11 * (n % 2)
            out.append(
                f'<text x="{x(t) + 5:.1f}" y="{y + dy}" fill="{c}" font-size="9">{esc(label)}</text>'
            )
    for s in range(0, 9):
        out.append(f'<line x1="{x(s)}" y1="262" x2="{x(s)}" y2="268" stroke="#333"/>')
        out.append(f'<text x="{x(s) - 3}" y="282">{s}</text>')
    notes = [
        "Boot screen at least 1.5 s; requests made meanwhile wait in a one-slot-per-app queue.",
        "The background app takes the lock; the core app's display is dropped while the holder is on screen.",
        "The notification runs out after 2.5 s: the lock goes and the core app's latest display returns.",
        "Throttle: one main-view send per 300 ms; a later request replaces the app's waiting one. Stop: cleared.",
    ]
    for i, n in enumerate(notes):
        out.append(f'<text x="{X0}" y="{300 + 9 * i}" font-size="8.5" fill="#333">{esc(n)}</text>')
    out.append("</svg>")
    print("\n".join(out))


if __name__ == "__main__":
    main()
