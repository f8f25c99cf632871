"""The review page (QDIR/index.html) and its thumbnails (QDIR/.thumbs/): one page for both uses.

Opened as a file it is a read-only overview. Served by `prep review` (with its token in the URL), the
same page gets keep/remove buttons per photo and per group, keyboard shortcuts and live counts; its
script asks the server for each photo's state and sends each decision at once.

Every candidate shows all its reasons as badges, its score and threshold; a duplicate stands beside
the photo it duplicates; tiny photos are shown upscaled (pixelated) with their real size; thumbnails
load lazily, so thousands of candidates open fast.
"""

from __future__ import annotations

import hashlib
import html
from collections import defaultdict
from pathlib import Path

from PIL import Image

from core import decode_image
from prep.quarantine_report import ReportRow

Sizes = dict[str, tuple[int, int] | None]  # path → (width, height) of the photo, None if it does not decode

THUMBS = ".thumbs"
THUMBNAIL_SIDE = 180
# Below this the thumbnail is shown larger than its pixels, pixelated.
UPSCALE_BELOW = 90


def thumbnail_name(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()[:24] + ".jpg"


def write_thumbnail(source: Path, target: Path) -> tuple[int, int] | None:
    """A ≤180 px JPEG of `source`; its original size, or None if it does not decode."""
    try:
        image = decode_image(source.read_bytes(), draft=True, draft_side=THUMBNAIL_SIDE)
    except Exception:  # unreadable candidates are shown as such
        return None
    size = image.size
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target, "JPEG", quality=80)
    return size


STYLE = """
body{font-family:sans-serif;margin:0;background:#fafafa}
header{position:sticky;top:0;background:#fff;border-bottom:1px solid #ccc;padding:.5em 1.5em;z-index:2}
main{padding:0 1.5em 3em}h2{border-bottom:2px solid #ccc;margin-top:1.5em}
.row{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start;margin:.5em 0 1.5em}
figure{margin:0;width:190px;font-size:12px;overflow-wrap:anywhere;background:#fff;padding:4px;border-radius:4px}
figure img{width:180px;height:auto;max-height:180px;object-fit:contain;display:block;background:#eee}
figure.tiny img{image-rendering:pixelated}
.candidate{outline:3px solid #d33}.candidate.kept{outline-color:#3a3;opacity:.7}
.candidate.focus{box-shadow:0 0 0 3px #36c}.original{outline:3px dashed #36c}.ordinary{opacity:.85}
.badge{display:inline-block;background:#d33;color:#fff;border-radius:3px;padding:0 4px;margin:1px}
.badge.other{background:#888}.broken{width:180px;height:120px;background:#eee;display:flex;
align-items:center;justify-content:center}.sep{width:2px;background:#999;align-self:stretch}
.actions,.group-actions{display:none}body.live .actions,body.live .group-actions{display:inline}
button{font-size:12px;margin:2px}.hidden{display:none}
#trouble{position:fixed;left:0;right:0;bottom:0;background:#d33;color:#fff;padding:8px 1.5em;font-weight:bold;
z-index:10;box-shadow:0 -2px 6px rgba(0,0,0,.3)}
"""

SCRIPT = """
const token = location.pathname.split('/')[1];
const live = location.protocol.startsWith('http') && token;
const figures = () => [...document.querySelectorAll('figure.candidate:not(.hidden)')];
let focus = 0;
function setState(paths, state) {
  for (const p of paths) for (const f of document.querySelectorAll(`figure.candidate[data-path="${CSS.escape(p)}"]`)) {
    f.classList.toggle('kept', state === 'keep'); f.dataset.state = state; }
  counts();
}
function trouble(message) {  // the page never shows a state the server does not have
  const bar = document.getElementById('trouble');
  bar.textContent = message; bar.classList.toggle('hidden', !message);
}
async function decide(paths, decision) {
  try {
    const r = await fetch(`/${token}/decide`, {method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({paths, decision})});
    if (!r.ok) throw new Error(`the server answered ${r.status}`);
    const states = await r.json(); for (const [p, s] of Object.entries(states)) setState([p], s);
    trouble('');
  } catch (err) {
    trouble(`Not saved (${err.message}): is prep review still running? Reload the page to see what is saved.`);
  }
}
function counts() {
  const all = [...document.querySelectorAll('figure.candidate')];
  const kept = all.filter(f => f.dataset.state === 'keep').length;
  document.getElementById('counts').textContent =
    `${all.length} candidates: ${all.length - kept} to remove, ${kept} kept`;
}
function filter() {
  const reason = document.getElementById('reason').value, city = document.getElementById('city').value;
  for (const f of document.querySelectorAll('figure.candidate'))
    f.classList.toggle('hidden',
      (reason && !f.dataset.reasons.split(' ').includes(reason)) || (city && f.dataset.city !== city));
  for (const g of document.querySelectorAll('section.group'))
    g.classList.toggle('hidden', !g.querySelector('figure.candidate:not(.hidden)'));
  for (const r of document.querySelectorAll('section.reason'))  // no heading over nothing
    r.classList.toggle('hidden', !r.querySelector('section.group:not(.hidden)'));
}
function groupPaths(el) {
  const group = el.closest('section.group');
  return [...group.querySelectorAll('figure.candidate:not(.hidden)')].map(f => f.dataset.path);
}
document.addEventListener('click', e => {
  const b = e.target.closest('button[data-decision]'); if (!b) return;
  const paths = b.dataset.scope === 'group' ? groupPaths(b) : [b.closest('figure').dataset.path];
  decide(paths, b.dataset.decision);
});
document.addEventListener('keydown', e => {
  if (!live || e.target.tagName === 'SELECT') return;
  const fs = figures(); if (!fs.length) return;
  fs.forEach(f => f.classList.remove('focus'));
  if (e.key === 'j') focus = Math.min(focus + 1, fs.length - 1);
  else if (e.key === 'k') focus = Math.max(focus - 1, 0);
  else if (e.key === 's' || e.key === 'd') {
    decide([fs[focus].dataset.path], e.key === 's' ? 'keep' : 'remove');
    focus = Math.min(focus + 1, fs.length - 1);
  }
  else if (e.key === 'S' || e.key === 'D') decide(groupPaths(fs[focus]), e.key === 'S' ? 'keep' : 'remove');
  fs[focus].classList.add('focus'); fs[focus].scrollIntoView({block: 'center'});
});
document.getElementById('reason').onchange = filter; document.getElementById('city').onchange = filter;
if (live) {
  document.body.classList.add('live');
  fetch(`/${token}/state`)
    .then(r => { if (!r.ok) throw new Error(`the server answered ${r.status}`); return r.json(); })
    .then(states => { for (const [p, s] of Object.entries(states)) setState([p], s); })
    .catch(err => trouble(`Cannot read the saved decisions (${err.message}): is prep review running?`));
}
counts();
"""


def render(
    rows: list[ReportRow],
    landmarks: dict[str, str],
    typical: dict[str, list[str]],
    sizes: Sizes,
    photos: int,
) -> str:
    """The page. rows: report rows (path, reason, score, threshold, detail, other_reasons, original);
    landmarks: xid → "name, city"; typical: xid → ordinary photos to compare with; sizes: path → (w, h)."""
    grouped: dict[str, dict[str, list[ReportRow]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        grouped[row.reason][row.xid].append(row)
    reasons = sorted({r for row in rows for r in row.reasons})
    cities = sorted({Path(row.path).parts[1] for row in rows})
    options = lambda values: "".join(f"<option>{html.escape(v)}</option>" for v in values)  # noqa: E731
    parts = [
        "<!doctype html><html lang='en'><meta charset='utf-8'><title>Cleaning review</title>",
        f"<style>{STYLE}</style><body><div id='trouble' class='hidden' role='alert'></div><header>",
        f"<b>Cleaning review</b> — {len(rows)} candidates of {photos} photos. <span id='counts'></span>",
        " Reason: <select id='reason'><option value=''>all</option>" + options(reasons) + "</select>",
        " City: <select id='city'><option value=''>all</option>" + options(cities) + "</select>",
        "<br><small>Red: candidates, removed by <code>prep apply</code> unless kept (green). Dashed blue: the "
        "photo a duplicate duplicates. Grey: typical photos of the landmark. Served by <code>prep review</code>: "
        "keys j/k move, s keeps, d removes, S/D for the whole group. As a file: read-only — keep a photo "
        "by deleting its copy from the quarantine folder.</small></header><main>",
    ]
    for reason in [r for r in reasons if r in grouped]:
        count = sum(len(v) for v in grouped[reason].values())
        parts.append(f"<section class='reason'><h2 id='{html.escape(reason)}'>{html.escape(reason)} ({count})</h2>")
        for xid, group in sorted(grouped[reason].items()):
            parts.append(_group(xid, group, landmarks, typical.get(xid, []), sizes))
        parts.append("</section>")
    parts.append(f"</main><script>{SCRIPT}</script></body></html>")
    return "\n".join(parts)


def _group(xid: str, rows: list[ReportRow], landmarks: dict[str, str], typical: list[str], sizes: Sizes) -> str:
    title = landmarks.get(xid, xid)
    out = [
        f"<section class='group'><h3>{html.escape(title)} <small>{html.escape(xid)}</small> "
        "<span class='group-actions'><button data-scope='group' data-decision='keep'>keep all</button>"
        "<button data-scope='group' data-decision='remove'>remove all</button></span></h3><div class='row'>"
    ]
    for row in rows:
        out.append(_candidate(row, sizes))
        if row.original:
            out.append(_figure(row.original, f"original of {Path(row.path).name}", "original", sizes))
    if typical:
        out.append("<div class='sep'></div>")
        out += [_figure(path, Path(path).name, "ordinary", sizes) for path in typical]
    out.append("</div></section>")
    return "".join(out)


def _image(path: str, sizes: Sizes) -> tuple[str, str]:
    size = sizes.get(path)
    if size is None:
        return "<div class='broken'>unreadable</div>", ""
    tiny = " tiny" if min(size) < UPSCALE_BELOW else ""
    return f"<img loading='lazy' src='{THUMBS}/{thumbnail_name(path)}' alt=''>", tiny


def _candidate(row: ReportRow, sizes: Sizes) -> str:
    image, tiny = _image(row.path, sizes)
    others = list(row.other_reasons)
    badges = f"<span class='badge'>{html.escape(row.reason)}</span>" + "".join(
        f"<span class='badge other'>{html.escape(r)}</span>" for r in others
    )
    size = sizes.get(row.path)
    real = f" · {size[0]}×{size[1]} px" if size else ""
    caption = f"{Path(row.path).name}: {row.score} / {row.threshold} {row.detail}{real}"
    city = Path(row.path).parts[1]
    data = {
        "path": row.path,
        "reasons": " ".join([row.reason, *others]),
        "city": city,
        "state": "remove",
    }
    attributes = " ".join(f"data-{k}='{html.escape(v, quote=True)}'" for k, v in data.items())
    return (
        f"<figure class='candidate{tiny}' {attributes}>{image}<figcaption>{badges}<br>{html.escape(caption)}"
        "<span class='actions'><br><button data-decision='keep'>keep</button>"
        "<button data-decision='remove'>remove</button></span></figcaption></figure>"
    )


def _figure(path: str, caption: str, css: str, sizes: Sizes) -> str:
    image, tiny = _image(path, sizes)
    return f"<figure class='{css}{tiny}'>{image}<figcaption>{html.escape(caption)}</figcaption></figure>"

