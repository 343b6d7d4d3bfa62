"""Procedural chest-radiograph phantoms: a frontal chest film drawn from a few ellipses and bands.

Not a medical simulation: a picture with the layout of a chest X-ray (bright = dense) in which every finding
leaves a deliberate, learnable trace, so that the whole pipeline can be exercised without real X-rays.
Coordinates run from -1 to 1 (x to the image's right, y downwards); as on a real film the patient's left side
(heart) is on the image's right.

Anatomy: a soft-tissue body ellipse; the spine and mediastinum as a bright central band; two dark lung fields cut
below by diaphragm domes; the heart as a bright ellipse low and to the image's right; curved rib bands and
clavicles; a brighter abdomen under the domes; faint lung markings (low-frequency texture). Women get smaller
frames and breast shadows over the lower lung fields; AP films magnify the heart and raise the diaphragm.

| finding            | trace drawn (strength s scales each; s=1 is the full trace)                         |
|--------------------|--------------------------------------------------------------------------------------|
| Cardiomegaly       | heart shadow widened by 45% x s (cardiothoracic ratio ~0.45 -> ~0.65), taller by 20% |
| Effusion           | fluid layer filling one or both lung bases with a meniscus; blunted costophrenic angle |
| Atelectasis        | plate-like band of opacity in a lower zone; that hemidiaphragm raised (volume loss)  |
| Pneumothorax       | one lung collapsed toward the hilum: dark rim without markings, thin pleural line   |
| Edema              | bilateral perihilar ("butterfly") haze                                               |
| Consolidation      | dense, fairly sharp lobar opacity filling part of one lung                          |
| Pneumonia          | patchy cluster of soft blobs in one lower lung zone                                 |
| Infiltration       | many small faint blobs spread over both lungs                                       |
| Mass               | one large round dense blob (radius 0.09-0.13) with a sharp edge                     |
| Nodule             | one to three small round dense blobs (radius 0.03-0.045)                           |
| Emphysema          | larger, darker lungs with flattened diaphragm domes                                 |
| Fibrosis           | fine reticular (net-like) lines in the lower, outer lung zones                      |
| Pleural_Thickening | bright band along the outer edge of one lung                                        |
| Hernia             | round retrocardiac opacity above the diaphragm with a small dark air bubble         |
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

TRACES: tuple[str, ...] = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax",
    "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
)


@dataclass(frozen=True)
class Anatomy:
    """Per-patient shape of the phantom (drawn once per patient, so follow-up films look alike)."""

    scale: float = 1.0
    lung_height: float = 1.0
    heart_ratio: float = 0.45
    shift_x: float = 0.0
    shift_y: float = 0.0
    rib_phase: float = 0.0
    female: bool = False


def random_anatomy(rng: np.random.Generator, *, female: bool) -> Anatomy:
    """A plausible patient: women have smaller frames; all values vary a little."""
    return Anatomy(
        scale=float(rng.normal(0.93 if female else 1.0, 0.03)),
        lung_height=float(rng.normal(1.0, 0.04)),
        heart_ratio=float(np.clip(rng.normal(0.44, 0.025), 0.38, 0.5)),
        shift_x=float(rng.normal(0, 0.02)),
        shift_y=float(rng.normal(0, 0.02)),
        rib_phase=float(rng.uniform(0, 2 * np.pi)),
        female=female,
    )


class _Grid:
    """Cached coordinate grids for one image size."""

    _cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    @classmethod
    def get(cls, size: int) -> tuple[np.ndarray, np.ndarray]:
        if size not in cls._cache:
            axis = np.linspace(-1, 1, size, dtype=np.float32)
            cls._cache[size] = np.meshgrid(axis, axis)
        return cls._cache[size]


def _ellipse(x, y, cx, cy, rx, ry, edge=0.08):
    """Soft 0..1 mask of an ellipse (edge: relative width of the soft border)."""
    q = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2
    return np.clip((1.0 - q) / edge, 0.0, 1.0)


def _blob(x, y, cx, cy, r):
    """Gaussian blob of radius r."""
    return np.exp(-(((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r)))


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in about -1..1: a cells x cells random grid, bicubically enlarged."""
    small = rng.standard_normal((cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(small, mode="F").resize((size, size), Image.BICUBIC))


def render(
    anatomy: Anatomy,
    findings: dict[str, float],
    *,
    size: int,
    rng: np.random.Generator,
    ap_view: bool = False,
    contrast: float = 1.0,
    noise: float = 0.015,
) -> np.ndarray:
    """Draw one film; `findings` maps finding name -> trace strength (0..1). Returns uint8 [size, size].

    `contrast` scales deviations from the film's mean intensity (1 = unchanged); `noise` is the standard deviation
    of added Gaussian noise in 0..1 intensity units.
    """
    unknown = set(findings) - set(TRACES)
    if unknown:
        raise ValueError(f"no trace defined for {sorted(unknown)}")
    x0, y0 = _Grid.get(size)
    a = anatomy
    x = (x0 - a.shift_x) / a.scale
    y = (y0 - a.shift_y) / a.scale
    s = {name: float(strength) for name, strength in findings.items() if strength > 0}
    emphysema = s.get("Emphysema", 0.0)
    magnify = 1.12 if ap_view else 1.0

    image = np.full_like(x, 0.04)
    body = _ellipse(x, y, 0.0, 0.08, 0.9, 1.05, edge=0.05)
    image += 0.42 * body
    image += 0.22 * np.clip(1 - np.abs(x) / 0.09, 0, 1) * body

    lung_h = 0.5 * a.lung_height * (0.94 if ap_view else 1.0) * (1 + 0.1 * emphysema)
    lung_masks = []
    for side in (-1, 1):
        cx, cy, rx = 0.37 * side, -0.1, 0.3 * (1 + 0.06 * emphysema)
        base = cy + lung_h * 0.92
        if side == -1 and "Atelectasis" in s:
            base -= 0.05 * s["Atelectasis"]
        curvature = 0.14 * (1 - 0.7 * emphysema)
        dome = base - curvature * (1 - np.clip(((x - cx) / rx) ** 2, 0, 1))
        above = np.clip((dome - y) / 0.02, 0, 1)
        lung = _ellipse(x, y, cx, cy, rx, lung_h, edge=0.06) * above
        lung_masks.append((lung, cx, cy, rx, dome))
        image += 0.1 * (1 - above) * body * (np.abs(x - cx) < rx)
    lungs = np.maximum(lung_masks[0][0], lung_masks[1][0])

    markings = _smooth_noise(rng, size, 24)
    hilum = _blob(x, y, -0.18, -0.05, 0.25) + _blob(x, y, 0.18, -0.05, 0.25)
    image -= (0.3 + 0.08 * emphysema) * lungs
    image += lungs * (0.025 * markings + 0.06 * hilum)

    ribs = 0.5 + 0.5 * np.cos(2 * np.pi * 5.5 * (y - 0.45 * x**2) + a.rib_phase)
    image += 0.07 * ribs**6 * np.clip(body * 1.2 - 0.2, 0, 1) * (y < 0.55)
    for side in (-1, 1):
        clavicle = np.abs(y + 0.62 - 0.18 * (x * side - 0.35) ** 2 + 0.08 * x * side)
        image += 0.12 * np.clip(1 - clavicle / 0.025, 0, 1) * (np.abs(x) < 0.7) * (np.abs(x) > 0.06)
    if a.female:
        for side in (-1, 1):
            image += 0.07 * _ellipse(x, y, 0.42 * side, 0.42, 0.3, 0.2, edge=0.5)

    heart_rx = a.heart_ratio * 0.67 * magnify * (1 + 0.45 * s.get("Cardiomegaly", 0.0))
    heart_ry = 0.2 * magnify * (1 + 0.2 * s.get("Cardiomegaly", 0.0))
    image += 0.3 * _ellipse(x, y, 0.1, 0.12, heart_rx, heart_ry, edge=0.1)

    _draw_findings(image, x, y, s, lung_masks, lungs, size, rng)

    mean = float(image.mean())
    image = mean + (image - mean) * contrast
    image += rng.standard_normal(image.shape, dtype=np.float32) * noise
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def _draw_findings(image, x, y, s, lung_masks, lungs, size, rng) -> None:
    """Add each finding's trace in place (see the module docstring's table), in a fixed order of random draws."""
    _draw_diffuse(image, x, y, s, lung_masks, lungs, rng)
    _draw_focal(image, x, y, s, lung_masks, lungs, size, rng)


def _side(rng) -> int:
    """Which lung: 0 = image left, 1 = image right."""
    return int(rng.integers(2))


def _draw_diffuse(image, x, y, s, lung_masks, lungs, rng) -> None:
    """Effusion, atelectasis, pneumothorax, edema, consolidation and pneumonia."""
    side = lambda: _side(rng)  # noqa: E731
    if "Effusion" in s:
        sides = [0, 1] if rng.random() < 0.35 else [side()]
        for i in sides:
            lung, cx, cy, rx, dome = lung_masks[i]
            level = dome - (0.1 + 0.15 * s["Effusion"]) - 0.15 * np.clip(np.abs(x - cx) / rx, 0, 1) ** 2
            fluid = np.clip((y - level) / 0.03, 0, 1) * lung
            image += 0.3 * s["Effusion"] * fluid
    if "Atelectasis" in s:
        lung, cx, cy, rx, _ = lung_masks[0]
        angle = rng.uniform(-0.5, 0.5)
        u = (x - cx) * np.cos(angle) + (y - 0.08) * np.sin(angle)
        v = -(x - cx) * np.sin(angle) + (y - 0.08) * np.cos(angle)
        image += 0.35 * s["Atelectasis"] * np.clip(1 - (u / 0.22) ** 2 - (v / 0.05) ** 2, 0, 1) ** 0.5 * lung
    if "Pneumothorax" in s:
        lung, cx, cy, rx, _ = lung_masks[side()]
        k = 1 - 0.3 * s["Pneumothorax"]
        collapsed = _ellipse(x, y, cx * (0.7 + 0.3 * k), cy, rx * k, 0.5 * k, edge=0.05)
        rim = np.clip(lung - collapsed, 0, 1)
        image -= 0.1 * s["Pneumothorax"] * rim
        edge = np.clip(1 - np.abs(((x - cx * (0.7 + 0.3 * k)) / (rx * k)) ** 2 + ((y - cy) / (0.5 * k)) ** 2 - 1) / 0.04, 0, 1)
        image += 0.12 * s["Pneumothorax"] * edge * lung
    if "Edema" in s:
        haze = _blob(x, y, -0.2, 0.0, 0.2) + _blob(x, y, 0.2, 0.0, 0.2)
        image += 0.2 * s["Edema"] * haze * lungs
    if "Consolidation" in s:
        lung, cx, cy, rx, _ = lung_masks[side()]
        top = rng.random() < 0.4
        region = _ellipse(x, y, cx + rng.normal(0, 0.04), -0.3 if top else 0.15, rx * 0.8, 0.2, edge=0.15)
        image += 0.28 * s["Consolidation"] * region * lung
    if "Pneumonia" in s:
        lung, cx, cy, rx, _ = lung_masks[side()]
        centre = np.array([cx, 0.15]) + rng.normal(0, 0.05, 2)
        for _ in range(int(rng.integers(3, 6))):
            px, py = centre + rng.normal(0, 0.07, 2)
            image += 0.15 * s["Pneumonia"] * _blob(x, y, px, py, rng.uniform(0.04, 0.07)) * lung


def _draw_focal(image, x, y, s, lung_masks, lungs, size, rng) -> None:
    """Infiltration, mass, nodules, fibrosis, pleural thickening and hernia."""
    side = lambda: _side(rng)  # noqa: E731
    if "Infiltration" in s:
        for _ in range(int(rng.integers(8, 15))):
            lung, cx, cy, rx, _ = lung_masks[side()]
            px, py = cx + rng.uniform(-0.7, 0.7) * rx, rng.uniform(-0.45, 0.3)
            image += 0.12 * s["Infiltration"] * _blob(x, y, px, py, rng.uniform(0.025, 0.045)) * lung
    if "Mass" in s:
        lung, cx, cy, rx, _ = lung_masks[side()]
        r = rng.uniform(0.09, 0.13)
        image += 0.3 * s["Mass"] * _ellipse(x, y, cx + rng.uniform(-0.4, 0.4) * rx, rng.uniform(-0.4, 0.15), r, r, edge=0.2)
    if "Nodule" in s:
        for _ in range(int(rng.integers(1, 4))):
            lung, cx, cy, rx, _ = lung_masks[side()]
            r = rng.uniform(0.03, 0.045)
            image += 0.28 * s["Nodule"] * _ellipse(x, y, cx + rng.uniform(-0.6, 0.6) * rx, rng.uniform(-0.5, 0.25), r, r, edge=0.3)
    if "Fibrosis" in s:
        net = np.abs(_smooth_noise(rng, size, max(8, size // 6)))
        reticular = np.clip(1 - net / 0.25, 0, 1)
        zone = np.clip((y + 0.1) / 0.4, 0, 1) * np.clip((np.abs(x) - 0.2) / 0.2, 0, 1)
        image += 0.22 * s["Fibrosis"] * reticular * zone * lungs
    if "Pleural_Thickening" in s:
        lung, cx, cy, rx, _ = lung_masks[side()]
        q = ((x - cx) / rx) ** 2 + ((y - cy) / 0.5) ** 2
        band = np.clip(1 - np.abs(q - 0.85) / 0.15, 0, 1) * (np.abs(x) > np.abs(cx)) * (y < 0.3)
        image += 0.25 * s["Pleural_Thickening"] * band
    if "Hernia" in s:
        image += 0.25 * s["Hernia"] * _ellipse(x, y, 0.02, 0.3, 0.1, 0.08, edge=0.2)
        image -= 0.12 * s["Hernia"] * _ellipse(x, y, 0.02, 0.25, 0.05, 0.025, edge=0.3)
