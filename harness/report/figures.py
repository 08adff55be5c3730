"""Figures for the report, drawn from results.json sections only, returned as base64 PNG strings."""
from __future__ import annotations

import base64
import io

import numpy as np


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _encode(fig) -> str:
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _decode_png(b64: str) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


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


def latency_per_device(rows: list[dict], geometry: str) -> str | None:
    """Per-image time at batch 1, one bar per implementation and device, log scale."""
    sel = [r for r in rows if r["kind"] == "cam" and r["geometry"] == geometry and r["batch"] == 1]
    if not sel:
        return None
    sel.sort(key=lambda r: r["per_image_ms"])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(sel) + 1))
    labels = [f"{r['impl']} [{r['device']}]" for r in sel]
    ax.barh(range(len(sel)), [r["per_image_ms"] for r in sel],
            color=["#d62728" if r["device"].startswith("gpu") else "#1f77b4" for r in sel])
    ax.set_yticks(range(len(sel)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("ms per image (batch 1, log scale)")
    ax.grid(axis="x", alpha=0.3, which="both")
    return _encode(fig)


def batch_scaling(rows: list[dict], geometry: str) -> str | None:
    sel = [r for r in rows if r["kind"] == "cam" and r["geometry"] == geometry]
    if not sel:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    for key in sorted({(r["impl"], r["device"]) for r in sel}):
        pts = sorted((r["batch"], r["per_image_ms"]) for r in sel if (r["impl"], r["device"]) == key)
        ax.plot(*zip(*pts), marker="o", label=f"{key[0]} [{key[1]}]")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("ms per image")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3, which="both")
    return _encode(fig)


def pointing_chart(rows: list[dict]) -> str | None:
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(rows) + 1))
    y = np.arange(len(rows))
    acc = np.array([r["pointing_acc"] for r in rows])
    err = np.clip([[r["pointing_acc"] - r["ci_low"] for r in rows], [r["ci_high"] - r["pointing_acc"] for r in rows]], 0, 1)
    ax.barh(y, acc, xerr=err, capsize=3,
            color=["#7f7f7f" if r["kind"] == "baseline" else "#2ca02c" for r in rows])
    ax.set_yticks(y, [r["impl"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("pointing accuracy (95 % Wilson interval)")
    ax.grid(axis="x", alpha=0.3)
    return _encode(fig)


PANELS_PER_ROW = 7


def gallery_item(item: dict, impls: list[str]) -> str:
    """The image, then each implementation's heatmap over it, with the mask outline and the peak."""
    plt = _plt()
    image, mask = _decode_png(item["image_png"]), _decode_png(item["mask_png"]) > 127
    names = [n for n in impls if n in item["maps"]]
    cols = min(PANELS_PER_ROW, len(names) + 1)
    rows = -(-(len(names) + 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.5 * rows), squeeze=False)
    axes = axes.ravel()
    axes[0].imshow(image)
    axes[0].contour(mask, [0.5], colors="white", linewidths=1)
    axes[0].set_title(f"#{item['index']} class {item['label']}", fontsize=8)
    for ax, name in zip(axes[1:], names):
        m = item["maps"][name]
        ax.imshow(image)
        ax.imshow(_decode_png(m["png"]), cmap="jet", alpha=0.5)
        ax.contour(mask, [0.5], colors="white", linewidths=1)
        ax.plot(m["peak"][1], m["peak"][0], marker="x", color="white" if m["hit"] else "red", ms=9, mew=2.5)
        ax.set_title(f"{name}\n{'hit' if m['hit'] else 'MISS'}", fontsize=7, color="black" if m["hit"] else "red")
    for ax in axes:
        ax.axis("off")
    return _encode(fig)
