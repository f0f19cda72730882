"""Arbitrary resolution: is a SIREN's own 2x rendering better than upscaling its pixels?

Each image is downscaled by 2 (Pillow Lanczos), encoded with inrcodec at a fast preset, and decoded
straight at the original size. PSNR against the original full-size image is measured for

- ``inr-render``: the network evaluated at full size (the decoder's ``--size``);
- ``inr-native+bicubic`` / ``inr-native+lanczos``: the codec's native-size decode, upscaled;
- ``bicubic`` / ``lanczos``: the (uncompressed) downscaled image, upscaled: no coding loss at all.

Rates of the ``inr-*`` rows are the ``.inr`` bytes per full-size pixel; the two references have no
rate (``bpp`` null). ``native_psnr`` is the codec's PSNR against the downscaled image it coded.
With a latent-grid preset (``--preset grid-medium``) the network is the synthesis over the
latents interpolated at the full-size coordinates: does interpolating latents beat upscaling pixels?

    python -m benchmarks.upscale [--images DIR] [--workers N] [--ray [ADDRESS]] [--quick] [--preset fast]
    python -m benchmarks.upscale --workers 2 --preset grid-medium   # results in kodak-upscale-grid-medium/
"""

from __future__ import annotations

import sys
import time

import numpy as np
from PIL import Image

from benchmarks.kodak_rd import DEFAULT_IMAGES, images_for, parser
from benchmarks.runner import RESULTS, DatasetError, Experiment, Job, dataset_meta, run
from inrcodec.config import latent_record, record
from inrcodec.image import psnr
from inrcodec.metrics import bpp

FILTERS = {"bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}
SETTINGS = ("inr-render", "inr-native+bicubic", "inr-native+lanczos", "bicubic", "lanczos")


def resize(arr: np.ndarray, width: int, height: int, flt: str) -> tuple[np.ndarray, float]:
    t = time.perf_counter()
    out = np.asarray(Image.fromarray(arr).resize((width, height), FILTERS[flt]))
    return out, time.perf_counter() - t


class Upscale(Experiment):
    name, label, kind = "upscale", "2x upscaling", "upscale"

    def __init__(self, preset: str = "fast", factor: int = 2, device: str = "cpu"):
        self.preset = preset
        self.factor = factor
        self.device = device

    def config(self) -> dict:
        from inrcodec.config import LATENT_PRESETS, preset

        latent = LATENT_PRESETS.get(self.preset)
        return {
            "preset": self.preset,
            "encode_config": latent_record(latent) if latent else record(preset(self.preset)),
            "factor": self.factor,
            "downscale": "lanczos",
            "device": self.device,
        }

    def jobs(self) -> list[Job]:
        return [Job("all", SETTINGS, None, cost=20.0)]

    def run(self, arr: np.ndarray, job: Job) -> list[dict]:
        import inrcodec

        h, w = arr.shape[:2]
        small, _ = resize(arr, w // self.factor, h // self.factor, "lanczos")
        t = time.perf_counter()
        data = inrcodec.encode(small, preset=self.preset, device=self.device)
        encode_s = time.perf_counter() - t
        t = time.perf_counter()
        full = inrcodec.decode(data, width=w, height=h, device=self.device)
        full_s = time.perf_counter() - t
        t = time.perf_counter()
        native = inrcodec.decode(data, device=self.device)
        native_s = time.perf_counter() - t
        coded = {"bytes": len(data), "bpp": bpp(len(data), w, h), "native_psnr": psnr(native, small)}
        rows = [{"setting": "inr-render", "psnr": psnr(full, arr), "encode_s": encode_s, "decode_s": full_s, **coded}]
        for flt in ("bicubic", "lanczos"):
            up, secs = resize(native, w, h, flt)
            rows.append(
                {
                    "setting": f"inr-native+{flt}",
                    "psnr": psnr(up, arr),
                    "encode_s": encode_s,
                    "decode_s": native_s + secs,
                    **coded,
                }
            )
        for flt in ("bicubic", "lanczos"):
            up, secs = resize(small, w, h, flt)
            rows.append({"setting": flt, "psnr": psnr(up, arr), "bpp": None, "encode_s": 0.0, "decode_s": secs})
        for r in rows:
            r["encode_s"], r["decode_s"] = round(r["encode_s"], 4), round(r["decode_s"], 4)
        return rows


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0], DEFAULT_IMAGES)
    p.add_argument("--preset", default="fast", help="inrcodec preset of the encoder (default fast)")
    args = p.parse_args(argv)
    try:
        refs, name, crop = images_for(args)
        exp = Upscale(args.preset, device=args.device)
        exp.config()  # an unknown preset fails here, before any work
    except (DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = args.out or RESULTS / (f"{name}-upscale" + ("" if args.preset == "fast" else f"-{args.preset}"))
    meta = dataset_meta(args.images, name, args.quick)
    ok = run([exp], refs, out, workers=args.workers, crop=crop, meta=meta, ray=args.ray, device=args.device)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
