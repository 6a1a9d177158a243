"""Natural-looking images for the photometric tests, made here (nothing is downloaded).

Photographs are not white noise: their spectrum falls off roughly as 1/f, colour channels
are strongly correlated, objects occlude each other with sharp edges, and sensors add a
little noise. :func:`synthetic_photo` draws such an image, so that JPEG sizes and decode
times, and the colour statistics that photometric transforms see, resemble real photos
(a 500 x 375 image saved at JPEG quality 90 takes about 60-90 KB).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def synthetic_photo(height: int, width: int, seed: int) -> np.ndarray:
    """Draw a natural-looking RGB image.

    1/f^alpha colour noise (alpha ~ U[0.9, 1.2], correlated channels) as background,
    3-8 opaque ellipses and polygons of random colours, a slight blur and sensor noise.

    Args:
        height (int): Image height in pixels.
        width (int): Image width in pixels.
        seed (int): Seed of the image's own random generator (same seed, same image).

    Returns:
        np.ndarray: (height, width, 3) uint8 RGB image.
    """
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    freq = np.sqrt(fx**2 + fy**2)
    freq[0, 0] = 1.0
    amplitude = freq ** -rng.uniform(0.9, 1.2)
    amplitude[0, 0] = 0.0
    channels = []
    for _ in range(3):
        phase = rng.uniform(0, 2 * np.pi, amplitude.shape)
        field = np.fft.irfft2(amplitude * np.exp(1j * phase), s=(height, width))
        channels.append(field / field.std())
    mix = np.full((3, 3), 0.8) + rng.normal(0, 0.15, (3, 3))
    mix[np.diag_indices(3)] = 1.0
    img = np.stack(channels, axis=-1) @ mix.T
    img = img / img.std() * rng.uniform(35, 55) + rng.uniform(90, 150, 3)
    canvas = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(rng.integers(3, 9)):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        radius = rng.uniform(0.04, 0.3) * min(height, width)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            ry = radius * rng.uniform(0.5, 1.5)
            draw.ellipse([cx - radius, cy - ry, cx + radius, cy + ry], fill=colour)
        else:
            angles = np.sort(rng.uniform(0, 2 * np.pi, rng.integers(3, 7)))
            points = [(cx + radius * np.cos(a), cy + radius * np.sin(a)) for a in angles]
            draw.polygon(points, fill=colour)
    canvas = canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    noisy = np.asarray(canvas, dtype=np.float32) + rng.normal(0, 3, (height, width, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8)
