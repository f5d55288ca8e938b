"""HTML snippets and the slide GIF: pure functions (strings / bytes out, no Streamlit)."""
from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.tokens_view import joined_pieces

FONT_CANDIDATES = ("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
                   "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf")


def _esc(text: str) -> str:
    return html.escape(text).replace("\n", "⏎")


def _piece(text: str) -> str:
    """A token for display in a cell: visible spaces at the edges, newline as ⏎."""
    text = text.replace("\n", "⏎")
    if text.startswith(" "):
        text = "·" + text[1:]
    return html.escape(text) if text else "∅"


def texts_html(texts: Sequence[str], lane: str, big: bool = False, run: str = "", size: str | None = None) -> str:
    """Generated texts as boxes; `data-lane` / `data-run` let browser tests find fresh output."""
    size = size or ("1.35rem" if big else "0.95rem")
    boxes = "".join(
        f'<div class="flm-text" data-lane="{html.escape(lane)}" data-run="{html.escape(run)}" data-sample="{i}" style="font-family:monospace;'
        f'font-size:{size};white-space:pre-wrap;word-break:break-word;border:1px solid #ddd;border-radius:6px;'
        f'padding:8px;margin:4px 0;background:#fafafa">{html.escape(t) if t.strip() else "<i>(empty)</i>"}</div>'
        for i, t in enumerate(texts))
    return f'<div class="flm-texts">{boxes}</div>'


def diff_html(a_ids: Sequence[int], b_ids: Sequence[int], tokens: Sequence[str], labels=("FLM", "FMLM")) -> str:
    """Two token sequences position by position; disagreeing positions highlighted in both rows."""
    cells = []
    for i, (a, b) in enumerate(zip(a_ids, b_ids)):
        same = a == b
        style = "" if same else "background:#ffd6d6;border-color:#e05555"
        cells.append(
            f'<span title="position {i}" style="display:inline-flex;flex-direction:column;border:1px solid #e6e6e6;'
            f'border-radius:4px;margin:1px;padding:0 3px;font-family:monospace;font-size:0.85rem;{style}">'
            f'<span>{_piece(tokens[a])}</span><span style="color:{"#999" if same else "#b00"}">'
            f'{"=" if same else _piece(tokens[b])}</span></span>')
    legend = (f'<div style="font-size:0.8rem;color:#666">top: {html.escape(labels[0])} · bottom: '
              f'{html.escape(labels[1])} (“=” same token; red: differ)</div>')
    return f'<div class="flm-diff">{legend}<div style="line-height:1.1">{"".join(cells)}</div></div>'


def superposition_html(top_ids: np.ndarray, top_probs: np.ndarray, tokens: Sequence[str],
                       final_ids: Sequence[int], pending: Sequence[bool] | None = None, show_k: int = 4,
                       big: bool = False) -> str:
    """Each position's top-k candidates stacked, opacity by probability; the final token is underlined.

    top_ids, top_probs: (L, k) at one step; final_ids: (L,)."""
    ids, probs = np.asarray(top_ids), np.asarray(top_probs, float)
    size = "1.1rem" if big else "0.8rem"
    cells = []
    for pos in range(ids.shape[0]):
        is_pending = pending is not None and bool(pending[pos])
        rows = []
        for j in range(min(show_k, ids.shape[1])):
            tok, p = int(ids[pos, j]), float(probs[pos, j])
            if tok < 0:
                rows.append('<span style="opacity:0.25">·</span>')
                continue
            opacity = 0.12 + 0.88 * min(1.0, p) ** 0.5
            deco = "text-decoration:underline;text-decoration-color:#d62728;" if tok == int(final_ids[pos]) else ""
            weight = "font-weight:700;" if j == 0 else ""
            rows.append(f'<span title="{_esc(tokens[tok])} p={p:.3f}" style="opacity:{opacity:.2f};{deco}{weight}">'
                        f'{_piece(tokens[tok])}</span>')
        border = "1px dashed #bbb" if is_pending else "1px solid #e6e6e6"
        cells.append(f'<span class="flm-cell" style="display:inline-flex;flex-direction:column;border:{border};'
                     f'border-radius:4px;margin:1px;padding:1px 3px;vertical-align:top;min-width:1.2em">'
                     + "".join(rows) + "</span>")
    return (f'<div class="flm-superposition" style="font-family:monospace;font-size:{size};line-height:1.15">'
            + "".join(cells) + "</div>")


def _font(size: int):
    for path in FONT_CANDIDATES:  # basic layout: no raqm shaping, which fails on some byte soup
        if Path(path).is_file():
            return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)
    return ImageFont.load_default(size=size)


def _printable(text: str) -> str:
    """Newlines as ⏎ (the GIF breaks its lines at them first), other spaces (a no-break space) as " ", other
    control / format characters as '·' (safe for PIL's text layout)."""
    text = text.replace("\n", "⏎")
    return "".join(c if c.isprintable() else " " if c.isspace() else "·" for c in text)


def _segments(pieces: Sequence[tuple]) -> list[tuple[str, tuple, bool, bool]]:
    """Pieces (text, confidence, changed, pending) as drawable segments (text, colour, starts_word, breaks): a
    newline (or the document separator's ⏎) inside a piece ends the line there; a pending piece is a grey ░."""
    out = []
    for text, conf, changed, pending in pieces:
        if pending:
            color = (190, 190, 190)
        elif changed:
            color = (230, 120, 0)
        else:
            shade = int(200 * (1.0 - max(0.0, min(1.0, conf))) ** 1.5)
            color = (shade, shade, shade)
        parts = ("░" if pending and not text else text.replace("⏎", "\n")).split("\n")  # ⏎: the separator
        for i, part in enumerate(parts):
            part = _printable(part)
            out.append((part, color, i > 0 or not out or part[:1].isspace() or pending, i > 0))
    return out


def _running_text(draw: ImageDraw.ImageDraw, pieces: Sequence[tuple], font, width: int, top: int,
                  line_h: int) -> list[tuple[int, int, str, tuple]]:
    """Where each piece (text, confidence, changed, pending) goes as running text: (x, y, text, colour). Lines
    wrap between words (a word split over tokens stays whole unless it is wider than a line) and at newlines."""
    segments = _segments(pieces)
    widths = [draw.textlength(text, font=font) for text, _, _, _ in segments]
    placed, x, y, left, right = [], 16, top, 16, width - 16
    for i, (text, color, starts_word, breaks) in enumerate(segments):
        if breaks:
            x, y = left, y + line_h
        if starts_word and x > left:  # the whole word (this segment and those that continue it) must fit
            j = i + 1
            while j < len(segments) and not segments[j][2]:
                j += 1
            if x + sum(widths[i:j]) > right and sum(widths[i:j]) <= right - left:
                x, y = left, y + line_h
        if x + widths[i] > right and x > left:  # a word wider than a line: cut between its tokens
            x, y = left, y + line_h
        if x == left and text.startswith(" "):
            text = text.lstrip(" ")
            widths[i] = draw.textlength(text, font=font)
        placed.append((x, y, text, color))
        x += widths[i]
    return placed


def gif_frames(frames: Sequence[dict], width: int = 960, height: int = 540,
               font_sizes: Sequence[int] = range(40, 13, -2)) -> bytes:
    """Animated GIF of the denoising: one frame per dict {title, pieces: [(text, confidence, changed, pending)]}.

    Confident tokens are dark, unsure ones light, changed ones orange, pending ones grey boxes. The text is
    set in the largest of `font_sizes` at which the longest frame fits. The first frame of three or more is held
    for 1.2 s, the last for 2.5 s."""
    title_font = _font(24)
    top = int(24 * 1.45) + 30
    draw = ImageDraw.Draw(Image.new("RGB", (width, height)))
    longest = max(frames, key=lambda f: sum(len(p[0]) or 1 for p in f["pieces"]), default={"pieces": []})
    for size in font_sizes:  # the largest size at which the longest frame fits; the smallest one otherwise
        font, line_h = _font(size), int(size * 1.45)
        if max((y for _, y, _, _ in _running_text(draw, longest["pieces"], font, width, top, line_h)),
               default=top) <= height - line_h:
            break
    images = []
    for frame in frames:
        img = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(img)
        draw.rectangle([0, 0, width, top - 12], fill="#1f2937")
        draw.text((16, 9), _printable(frame["title"]), font=title_font, fill="white")
        for x, y, text, color in _running_text(draw, frame["pieces"], font, width, top, line_h):
            if y <= height - line_h:  # what does not fit even at the smallest size is cut at the bottom
                draw.text((x, y), text, font=font, fill=color)
        images.append(img.convert("P", palette=Image.ADAPTIVE, colors=64))
    if not images:
        images = [Image.new("P", (width, height), 0)]
    buf = io.BytesIO()
    durations = [450] * (len(images) - 1) + [2500]
    if len(images) > 2:
        durations[0] = 1200  # the start (noise / masks), long enough to be seen before the first step
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0,
                   optimize=False)
    return buf.getvalue()


def step_text_html(ids: Sequence[int], confidence: Sequence[float], changed: Sequence[bool], pending: Sequence[bool],
                   tokens: Sequence[str], big: bool = False, size: str | None = None,
                   max_lines: int | None = None) -> str:
    """The sequence at one step as running text: opacity by confidence, changed tokens orange, pending ░;
    characters split over several tokens are written whole. max_lines: show only the first lines (a stage row)."""
    size = size or ("1.5rem" if big else "1.0rem")
    clamp = (f"display:-webkit-box;-webkit-box-orient:vertical;-webkit-line-clamp:{max_lines};overflow:hidden;"
             if max_lines else "")
    shown = joined_pieces(["" if pending[i] or tok < 0 else tokens[int(tok)] for i, tok in enumerate(ids)])
    spans = []
    for i, tok in enumerate(ids):
        if pending[i] or tok < 0:
            spans.append('<span style="color:#bbb">░</span>')
            continue
        text = html.escape(shown[i])
        opacity = 0.25 + 0.75 * float(max(0.0, min(1.0, confidence[i])))
        color = "#e67800" if changed[i] else "#111"
        spans.append(f'<span title="pos {i} p={float(confidence[i]):.2f}" style="opacity:{opacity:.2f};'
                     f'color:{color}">{text}</span>')
    return (f'<div class="flm-step-text" style="font-family:monospace;font-size:{size};white-space:pre-wrap;'
            f'word-break:break-word;border:1px solid #ddd;border-radius:6px;padding:10px;background:#fcfcfc;'
            f'line-height:1.45"><div style="{clamp}">' + "".join(spans) + "</div></div>")
