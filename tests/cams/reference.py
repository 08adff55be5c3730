"""Independent references for the CAM tests: naive loops, written from the conventions' formulas."""
import numpy as np


def bilinear_naive(img: np.ndarray, H: int, W: int, align: str) -> np.ndarray:
    """Bilinear resampling of a 2-D map, pixel by pixel.

    half_pixel: output y samples input coordinate (y+0.5)*h/H-0.5, clamped to [0, h-1].
    corner: output y samples input coordinate y*(h-1)/(H-1).
    """
    h, w = img.shape
    out = np.empty((H, W), dtype=np.float64)
    for y in range(H):
        for x in range(W):
            if align == "half_pixel":
                sy = min(max((y + 0.5) * h / H - 0.5, 0.0), h - 1)
                sx = min(max((x + 0.5) * w / W - 0.5, 0.0), w - 1)
            else:
                sy = y * (h - 1) / (H - 1) if H > 1 else 0.0
                sx = x * (w - 1) / (W - 1) if W > 1 else 0.0
            y0, x0 = int(np.floor(sy)), int(np.floor(sx))
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            fy, fx = sy - y0, sx - x0
            out[y, x] = ((1 - fy) * (1 - fx) * img[y0, x0] + (1 - fy) * fx * img[y0, x1]
                         + fy * (1 - fx) * img[y1, x0] + fy * fx * img[y1, x1])
    return out


def cam_naive(features, weights, class_idx, out_size, align: str) -> np.ndarray:
    """Class map by an explicit channel loop, then the naive bilinear."""
    maps = []
    for f, k in zip(features, class_idx):
        m = np.zeros(f.shape[:2], dtype=np.float64)
        for c in range(f.shape[-1]):
            m += f[:, :, c].astype(np.float64) * float(weights[c, k])
        maps.append(bilinear_naive(m, *out_size, align))
    return np.stack(maps)


def seed_show_cam_lines(features_for_img, gap_weights, label):
    """The seed's own lines from show_cam (../shared/seed), for one image of any size."""
    import scipy as sp
    import scipy.ndimage  # noqa: F401 - loads sp.ndimage, which the seed's lines use
    h, w = features_for_img.shape[:2]
    class_activation_weigths = gap_weights[:, label]
    class_activation_features = sp.ndimage.zoom(features_for_img, (224 / h, 224 / w, 1), order=2)
    return np.dot(class_activation_features, class_activation_weigths)
