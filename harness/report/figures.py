"""Figures for the report, drawn from results.json sections only, returned as base64 PNG strings."""
from __future__ import annotations

import base64
import io

import numpy as np

MAX_GALLERY_PIXELS = 4096 * 4096  # decoded pixels per gallery image; larger ones become a placeholder
MAX_ITEM_PIXELS = 2**28  # decoded pixels per gallery item (image, mask and every map), about 16 maps of 4096^2
MAX_REPORT_PIXELS = 2**30  # decoded pixels over the whole gallery; items past it become placeholders
DISPLAY_SIDE = 512  # a panel is drawn about 200 px wide: larger images are reduced to this before drawing


class BadImage(ValueError):
    """A gallery image that is not drawn; the message says why."""


def _plt():
    """pyplot on the Agg backend, with every string drawn as plain text (no mathtext: a ``$`` in an
    implementation or dataset name must not be parsed)."""
    import matplotlib
    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False
    matplotlib.rcParams["text.usetex"] = False
    import matplotlib.pyplot as plt
    return plt


def _plain_log_ticks(axis) -> None:
    """Tick labels of a log axis as plain numbers (``0.01``, ``1``, ``1000``). Matplotlib's default
    log labels are mathtext (``$\\mathdefault{10^{3}}$``), which prints raw once mathtext is off
    (it is off so that a ``$`` in a name is drawn as text)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    axis.set_major_locator(LogLocator(base=10))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _encode(fig) -> str:
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _open_png(b64: str):
    """A base64 PNG opened lazily (header only); :class:`BadImage` when it is not one, or when it
    would decode to more than ``MAX_GALLERY_PIXELS``."""
    import binascii
    import warnings

    from PIL import Image, UnidentifiedImageError
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is checked below
            img = Image.open(io.BytesIO(base64.b64decode(b64, validate=True)))
    except (binascii.Error, TypeError, ValueError, OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise BadImage(f"not a decodable PNG ({type(exc).__name__})") from None
    if img.format != "PNG":
        raise BadImage(f"not a PNG ({img.format})")
    if img.width * img.height > MAX_GALLERY_PIXELS:
        raise BadImage(f"{img.width}x{img.height} pixels, over the report's limit of {MAX_GALLERY_PIXELS:,}")
    return img


def _decode_png(b64: str, side: int | None = None) -> np.ndarray:
    """A base64 PNG as an array, reduced (by an integer box filter) to at most ``side`` pixels on
    its longer side when ``side`` is given; :class:`BadImage` when it cannot be decoded."""
    img = _open_png(b64)
    try:
        if side and max(img.size) > side:
            img = img.reduce(-(-max(img.size) // side))
        return np.asarray(img)
    except (ValueError, OSError) as exc:
        raise BadImage(f"not a decodable PNG ({type(exc).__name__})") from None


def item_pixels(item: dict, names: list[str]) -> int:
    """Decoded pixels of a gallery item's image, mask and maps, read from their headers alone."""
    pngs = [item["image_png"], item["mask_png"], *(item["maps"][n]["png"] for n in names)]
    return sum(img.width * img.height for img in map(_open_png, pngs))


def training_curve(history: dict) -> str | None:
    """Loss and accuracy per epoch; warm-up epochs (``warmup_*`` keys) first, shaded."""
    if not history:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
    warm = len(history.get("warmup_loss", []))
    for ax, keys in zip(axes, (("loss", "val_loss"), ("acc", "val_acc"))):
        for k in keys:
            values = history.get(f"warmup_{k}", []) + history.get(k, [])
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", label=k)
        if warm:
            ax.axvspan(0.5, warm + 0.5, color="#ddd", label="warm-up (easy set)")
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return _encode(fig)


MARKERS = "osD^v<>phX*Pd"
PALETTE = [*range(0, 20, 2), *range(1, 20, 2)]  # tab20's ten saturated colours first, then their light shades


def style(name: str, names: list[str]) -> dict:
    """One colour and marker per implementation, from its place in ``names`` (the document's
    implementation order), so a form looks the same in every chart: up to 20 distinct colours,
    each with its own marker (markers cycle with a period coprime to the colours', so no two of
    the first 60 share a pair)."""
    import matplotlib
    i = names.index(name) if name in names else len(names) + sum(map(ord, name))
    return {"color": matplotlib.colormaps["tab20"](PALETTE[i % 20]), "marker": MARKERS[i % len(MARKERS)]}


def _pick_label(name: str, pick: str | None) -> str:
    return name + ("  ← pick" if name == pick else "")


def latency_per_device(rows: list[dict], geometry: str, names: list[str] | None = None,
                       pick: str | None = None) -> str | None:
    """Per-image time at batch 1, one bar per implementation and device, log scale, each bar
    labelled with its value; the pick's bar outlined and its label bold."""
    sel = [r for r in rows if r["kind"] == "cam" and r["geometry"] == geometry and r["batch"] == 1]
    if not sel:
        return None
    names = names or sorted({r["impl"] for r in sel})
    sel.sort(key=lambda r: r["per_image_ms"])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 0.22 * len(sel) + 0.9))
    labels = [_pick_label(f"{r['impl']} [{r['device']}]", f"{pick} [{r['device']}]") for r in sel]
    values = [r["per_image_ms"] for r in sel]
    bars = ax.barh(range(len(sel)), values, color=[style(r["impl"], names)["color"] for r in sel],
                   edgecolor=["black" if r["impl"] == pick else "none" for r in sel], linewidth=1.5)
    ax.bar_label(bars, labels=[f"{v:.3g} ms" for v in values], padding=3, fontsize=7)
    ax.set_yticks(range(len(sel)), labels, fontsize=8)
    for tick, r in zip(ax.get_yticklabels(), sel):
        tick.set_fontweight("bold" if r["impl"] == pick else "normal")
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(min(values) / 2, max(values) * 8)
    _plain_log_ticks(ax.xaxis)
    ax.set_xlabel("ms per image (batch 1, log scale)")
    ax.grid(axis="x", alpha=0.3, which="both")
    return _encode(fig)


def batch_scaling(rows: list[dict], geometry: str, names: list[str] | None = None, pick: str | None = None) -> str | None:
    """Per-image time against the batch size, one line per implementation and device, each with
    its own colour and marker; the pick drawn thicker."""
    sel = [r for r in rows if r["kind"] == "cam" and r["geometry"] == geometry]
    if not sel:
        return None
    names = names or sorted({r["impl"] for r in sel})
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    for key in sorted({(r["impl"], r["device"]) for r in sel}):
        pts = sorted((r["batch"], r["per_image_ms"]) for r in sel if (r["impl"], r["device"]) == key)
        ax.plot(*zip(*pts), **style(key[0], names), lw=3 if key[0] == pick else 1.2,
                linestyle="--" if key[1].startswith("gpu") else "-",
                label=_pick_label(f"{key[0]} [{key[1]}]", f"{pick} [{key[1]}]"))
    from matplotlib.ticker import NullFormatter
    batches = sorted({r["batch"] for r in sel})
    ax.set_xscale("log", base=2)
    ax.set_xticks(batches, [str(b) for b in batches])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_yscale("log")
    _plain_log_ticks(ax.yaxis)
    ax.set_xlabel("batch size")
    ax.set_ylabel("ms per image")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3, which="both")
    return _encode(fig)


def pointing_chart(rows: list[dict], names: list[str] | None = None, pick: str | None = None) -> str | None:
    """Class-mean accuracy (the headline) as bars in each implementation's colour (baselines grey);
    the pooled rate with its Wilson interval as the implementation's marker. A row that saw fewer
    trials than the others (``capped``) says how many; the pick is marked."""
    if not rows:
        return None
    names = names or [r["impl"] for r in rows if r["kind"] != "baseline"]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 0.22 * len(rows) + 0.9))
    y = np.arange(len(rows))
    styles = [{"color": "#7f7f7f", "marker": "o"} if r["kind"] == "baseline" else style(r["impl"], names) for r in rows]
    ax.barh(y, [r["class_mean_acc"] for r in rows], color=[st["color"] for st in styles], label="class mean (headline)")
    for i, (r, st) in enumerate(zip(rows, styles)):
        err = np.clip([[r["pointing_acc"] - r["ci_low"]], [r["ci_high"] - r["pointing_acc"]]], 0, 1)
        ax.errorbar([r["pointing_acc"]], [i], xerr=err, fmt=st["marker"], color="black", ms=4, capsize=3,
                    label="pooled, 95 % Wilson interval" if i == 0 else None)
    labels = [_pick_label(r["impl"], pick) + (f" (first {r['n']} only)" if r.get("capped") else "") for r in rows]
    ax.set_yticks(y, labels, fontsize=8)
    for tick, r in zip(ax.get_yticklabels(), rows):
        tick.set_fontweight("bold" if r["impl"] == pick else "normal")
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("pointing accuracy")
    ax.legend(loc="lower left", bbox_to_anchor=(1.01, 0), fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return _encode(fig)


BASELINES = ("center", "random", "full_image")


def _line_style(name: str, names: list[str], pick: str | None) -> dict:
    if name in BASELINES:
        return {"linestyle": "--", "color": "#7f7f7f", "marker": "o" if name == "center" else "s"}
    return {**style(name, names), "lw": 3 if name == pick else 1.2}


def tolerance_sweep_chart(sweep: dict | None, names: list[str] | None = None, pick: str | None = None) -> str | None:
    """Class-mean pointing accuracy against the tolerance (percent of the longer side), each
    implementation in its own colour and marker, the pick drawn thicker."""
    if not sweep or not sweep.get("rows"):
        return None
    names = names or [n for n in sweep["rows"] if n not in BASELINES]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    x = 100 * np.asarray(sweep["fractions"])
    for name, acc in sweep["rows"].items():
        ax.plot(x, acc, label=_pick_label(name, pick), markevery=4, ms=4, **{"lw": 1.2, **_line_style(name, names, pick)})
    ax.set_xlabel("tolerance, % of the image's longer side (TorchRay: 15 px on ~500 px = 3 %)")
    ax.set_ylabel("class-mean pointing accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7)
    return _encode(fig)


def box_curve_chart(curve: dict | None, iou: int = 50, names: list[str] | None = None,
                    pick: str | None = None) -> str | None:
    """Class-mean box accuracy at IoU ``iou`` against the CAM threshold, per implementation (its
    own colour and marker, the pick thicker) and baseline; MaxBoxAcc is each curve's highest point."""
    if not curve or not curve.get("rows") or iou not in curve.get("iou_thresholds", []):
        return None
    j = curve["iou_thresholds"].index(iou)
    names = names or [n for n in curve["rows"] if n not in BASELINES]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.asarray(curve["thresholds"])
    for name, acc in curve["rows"].items():
        ax.plot(x, acc[j], label=_pick_label(name, pick), markevery=10, ms=4,
                **{"lw": 1.2, **_line_style(name, names, pick)})
    ax.set_xlabel("CAM threshold (fraction of the map's maximum, 8-bit)")
    ax.set_ylabel(f"class-mean box accuracy at IoU {iou / 100:g}")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7)
    return _encode(fig)


def faithfulness_chart(curves: dict | None, reference: str | None = None) -> str | None:
    """The mean deletion and insertion curves, one panel each: every convention in its own colour
    (the reference's thicker), the centre Gaussian and the random map dashed grey."""
    if not curves or not curves.get("rows"):
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 2.5), sharey=True)
    x = np.asarray(curves["fraction"])
    names = [n for n in curves["rows"] if n not in BASELINES]
    for ax, mode in zip(axes, ("deletion", "insertion")):
        for name, row in curves["rows"].items():
            ax.plot(x, row[mode], label=name + ("  (reference)" if name == reference else ""), ms=3,
                    **{"lw": 1.2, **_line_style(name, names, reference)})
        ax.set_title(f"{mode}: {'lower' if mode == 'deletion' else 'higher'} area is better", fontsize=9)
        ax.set_xlabel("share of the pixels moved, most salient first")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean probability of the predicted class")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7)
    return _encode(fig)


PANELS_PER_ROW = 8


def _draw_box(ax, box, color: str, linestyle: str = "-") -> None:
    """An inclusive pixel box ``(x0, y0, x1, y1)`` drawn around its pixels' edges."""
    from matplotlib.patches import Rectangle
    x0, y0, x1, y1 = (float(v) for v in box)
    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False, edgecolor=color,
                           linewidth=1.3, linestyle=linestyle))


def placeholder(text: str) -> str:
    """A small PNG that says why an image is not shown."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4, 0.6))
    ax.text(0.01, 0.5, text, fontsize=8, va="center")
    ax.axis("off")
    return _encode(fig)


def gallery(items: list, impls: list[str], equivalents: dict[str, int] | None = None) -> list[str]:
    """Every gallery item drawn (:func:`gallery_item`), within ``MAX_ITEM_PIXELS`` per item and
    ``MAX_REPORT_PIXELS`` over the report: an item past either becomes a placeholder saying so, so
    neither the time nor the memory of rendering grows without bound with the results file."""
    out, spent = [], 0
    for item in items:
        try:
            pixels = item_pixels(item, [n for n in impls if n in item["maps"]])
        except BadImage as exc:
            out.append(placeholder(f"gallery image #{_index(item)} not shown: {exc}"))
            continue
        except (KeyError, TypeError, AttributeError):
            pixels = 0  # a malformed entry: gallery_item names what is missing
        if pixels > MAX_ITEM_PIXELS:
            out.append(placeholder(f"gallery image #{_index(item)} not shown: {pixels:,} pixels in its images, over "
                                   f"the limit of {MAX_ITEM_PIXELS:,} per item"))
        elif spent + pixels > MAX_REPORT_PIXELS:
            out.append(placeholder(f"gallery image #{_index(item)} not shown: the report's gallery limit of "
                                   f"{MAX_REPORT_PIXELS:,} pixels is spent"))
        else:
            spent += pixels
            out.append(gallery_item(item, impls, equivalents))
    return out


def _index(item) -> object:
    return item.get("index") if isinstance(item, dict) else None


def gallery_item(item: dict, impls: list[str], equivalents: dict[str, int] | None = None) -> str:
    """The image, then each of ``impls``' heatmap over it (one per equivalence class: its title
    says how many more members draw the same map, ``equivalents``), with the mask outline and the
    peak; a placeholder naming the problem when an image of the item cannot be drawn."""
    try:
        return _gallery_item(item, impls, equivalents or {})
    except BadImage as exc:
        return placeholder(f"gallery image #{_index(item)} not shown: {exc}")
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        return placeholder(f"gallery image #{_index(item)} not shown: malformed entry ({type(exc).__name__}: {exc})")


def panel_title(name: str, more: int, width: int = 22) -> str:
    """An implementation's name broken at underscores into lines of at most ``width`` characters,
    so neighbouring panel titles never run into each other, and ``+n equivalent`` below it."""
    lines, line = [], ""
    for part in name.split("_"):
        word = part if not line else "_" + part
        if line and len(line) + len(word) > width:
            lines.append(line + "_")
            line = part
        else:
            line += word
    lines.append(line)
    return "\n".join(lines + ([f"+{more} equivalent"] if more else []))


def _gallery_item(item: dict, impls: list[str], equivalents: dict[str, int]) -> str:
    """Images larger than ``DISPLAY_SIDE`` are reduced before drawing and placed with ``extent``
    in the original pixel coordinates, so the recorded peak is drawn where it was found."""
    plt = _plt()
    height, width = _open_png(item["image_png"]).size[::-1]
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)
    image, mask = _decode_png(item["image_png"], DISPLAY_SIDE), _decode_png(item["mask_png"], DISPLAY_SIDE) > 127
    names = [n for n in impls if n in item["maps"]]
    cols = min(PANELS_PER_ROW, len(names) + 1)
    rows = -(-(len(names) + 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.5 * rows), squeeze=False)
    axes = axes.ravel()
    axes[0].imshow(image, extent=extent)
    axes[0].contour(mask, [0.5], colors="white", linewidths=1, extent=extent)
    axes[0].set_title(f"#{item['index']} class {item['label']}", fontsize=8)
    gt_boxes = item.get("gt_boxes") or []
    for box in gt_boxes:
        _draw_box(axes[0], box, "lime")
    for ax, name in zip(axes[1:], names):
        m = item["maps"][name]
        ax.imshow(image, extent=extent)
        ax.imshow(_decode_png(m["png"], DISPLAY_SIDE), cmap="jet", alpha=0.5, extent=extent)
        ax.contour(mask, [0.5], colors="white", linewidths=1, extent=extent)
        for box in gt_boxes:
            _draw_box(ax, box, "lime")
        if m.get("box"):
            _draw_box(ax, m["box"], "yellow" if m.get("box_hit") else "red", "--")
        ax.plot(m["peak"][1], m["peak"][0], marker="x", color="white" if m["hit"] else "red", ms=9, mew=2.5)
        box_text = f", box IoU {m['box_iou']:.2f}" if isinstance(m.get("box_iou"), (int, float)) else ""
        ax.set_title(f"{panel_title(name, equivalents.get(name, 0))}\n{'hit' if m['hit'] else 'MISS'}{box_text}",
                     fontsize=7, color="black" if m["hit"] else "red")
    for ax in axes:
        ax.axis("off")
    return _encode(fig)


def _raw_map(m: dict) -> np.ndarray:
    """A gallery map back in the CAM's own units from its 8-bit PNG and its recorded range."""
    png = _decode_png(m["png"], DISPLAY_SIDE).astype(np.float64)
    return m["min"] + png / 255.0 * (m["max"] - m["min"])


def convention_figure(item: dict, pick: str, others: list[tuple[str, str]]) -> str | None:
    """One gallery image: the pick's map over it, then for each other convention (``others``:
    ``(implementation, label)``, one per convention) the signed difference of its map from the
    pick's (blue where it is lower, red where higher, one scale for all), with both peaks marked
    (white circle: the pick's; black cross: the other's) and the shift in pixels in the title."""
    if not item or not others:
        return None
    try:
        maps = item["maps"]
        if pick not in maps:
            return None
        image = _decode_png(item["image_png"], DISPLAY_SIDE)
        height, width = _open_png(item["image_png"]).size[::-1]
        extent = (-0.5, width - 0.5, height - 0.5, -0.5)
        base = _raw_map(maps[pick])
        diffs = [(_raw_map(maps[name]) - base, name, label) for name, label in others if name in maps]
        peaks = {name: [float(v) for v in maps[name]["peak"][:2]] for name in [pick, *(n for _, n, _ in diffs)]}
    except (BadImage, KeyError, TypeError, IndexError, AttributeError, ValueError):
        return None  # a malformed gallery entry: the gallery itself says what is wrong with it
    if not diffs or any(d.shape != base.shape for d, _, _ in diffs):
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(diffs) + 1, figsize=(2.2 * (len(diffs) + 1), 2.7), squeeze=False)
    axes = axes.ravel()
    axes[0].imshow(image, extent=extent)
    axes[0].imshow(base, cmap="jet", alpha=0.5, extent=extent)
    py, px = peaks[pick]
    axes[0].plot(px, py, marker="o", mfc="none", mec="white", ms=10, mew=2)
    axes[0].set_title(panel_title(pick, 0) + f"\n(the pick; image #{item.get('index')})", fontsize=7)
    scale = max(float(np.abs(d).max()) for d, _, _ in diffs) or 1.0
    for ax, (d, name, label) in zip(axes[1:], diffs):
        ax.imshow(d, cmap="RdBu_r", vmin=-scale, vmax=scale, extent=extent)
        oy, ox = peaks[name]
        ax.plot(px, py, marker="o", mfc="none", mec="white", ms=10, mew=2)
        ax.plot(ox, oy, marker="x", color="black", ms=9, mew=2)
        shift = float(np.hypot(oy - py, ox - px))
        ax.set_title(f"{label}\nminus the pick\npeak moved {shift:.1f} px", fontsize=7)
    for ax in axes:
        ax.axis("off")
    return _encode(fig)
