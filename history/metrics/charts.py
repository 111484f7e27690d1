"""SVG plots drawn in Python: readable without JavaScript, no library, text escaped."""

from datetime import timedelta

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from history.metrics.compute import DayCount

WIDTH, HEIGHT, PAD = 640, 180, 28


def human(value: timedelta | None) -> str:
    """A duration as people read it: 2 d 4 h, 3 h 12 min, 45 min, 30 s."""
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def daily_deployments(days: list[DayCount]) -> SafeString:
    """Bars per day: DONE (green) with the failures stacked on top (red)."""
    if not days:
        return mark_safe("")
    top = max((d.done + d.failures for d in days), default=0) or 1
    slot = (WIDTH - 2 * PAD) / len(days)
    bar = max(slot * 0.8, 1.0)
    scale = (HEIGHT - 2 * PAD) / top
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="Deployments per day: done and failed">',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="#888"/>',
        f'<text x="2" y="{PAD + 4}" font-size="11">{top}</text>',
        f'<text x="2" y="{HEIGHT - PAD}" font-size="11">0</text>',
    ]
    for i, d in enumerate(days):
        x = PAD + i * slot + (slot - bar) / 2
        done_h, failed_h = d.done * scale, d.failures * scale
        base = HEIGHT - PAD
        label = escape(f"{d.day.isoformat()}: {d.done} done, {d.failures} failed")
        parts.append(f"<g><title>{label}</title>")
        if done_h:
            parts.append(
                f'<rect x="{x:.1f}" y="{base - done_h:.1f}" width="{bar:.1f}" '
                f'height="{done_h:.1f}" fill="#2e7d32"/>'
            )
        if failed_h:
            parts.append(
                f'<rect x="{x:.1f}" y="{base - done_h - failed_h:.1f}" width="{bar:.1f}" '
                f'height="{failed_h:.1f}" fill="#c62828"/>'
            )
        parts.append("</g>")
    first, last = escape(days[0].day.isoformat()), escape(days[-1].day.isoformat())
    parts.append(f'<text x="{PAD}" y="{HEIGHT - 8}" font-size="11">{first}</text>')
    parts.append(
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" font-size="11" text-anchor="end">{last}</text>'
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (built here, every text escaped)


def lead_time_histogram(buckets: list[tuple[str, int]]) -> SafeString:
    """Horizontal bars: how many DONE deployments took each span from commit to DONE."""
    top = max((n for _, n in buckets), default=0) or 1
    row, label_w = 24, 120
    height = row * len(buckets) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}" '
        'role="img" aria-label="Lead time for changes: deployments per span">'
    ]
    for i, (label, n) in enumerate(buckets):
        y = 4 + i * row
        w = (WIDTH - label_w - 60) * n / top
        parts.append(
            f'<text x="0" y="{y + 15}" font-size="12">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="#1565c0"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" font-size="12">{n}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (built here, every text escaped)
