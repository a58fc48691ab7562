"""Differentiable twin of the print-scene-camera channel (torch and kornia), for EOT.

Expectation over Transformation (Athalye et al. 2018, https://arxiv.org/abs/1707.07397)
averages the loss over transforms drawn from a distribution; this module draws them
from the same channel profile as the simulated camera (``channel.model``) and
applies the same stages, in the same order, to an image tile:

``print`` (sRGB decode, tone, dot gain, Murray-Davies, gamut) -> ``pose`` (a mild
perspective warp from the profile's pose ranges) -> ``light`` (illuminance, fall-off,
glare, Planckian colour, exposure) -> ``optics`` (Gaussian defocus, motion line) ->
``resolution`` (the tile as the camera samples it: the blur is in camera pixels,
so it is scaled by ``size / tile_px``, and a tile narrower than ``size`` camera pixels
is area-averaged onto ``tile_px`` pixels and brought back to ``size`` bilinearly, as
capture's crop does; ``tile_px`` is drawn from the range craft's EOT passes,
``contracts.framing.default_tile_px_range``: the default print layout's tiles; a bare twin
defaults to ``tile_px_range``, the simulated camera's whole-sheet framing) ->
``sensor`` (signal-dependent and read noise, white balance, 1/gamma encoding) ->
``isp`` (``channel.isp``: auto white balance and levels metered on the sheet, colour matrix,
tone curves, unsharp mask in camera pixels) ->
``jpeg`` (``kornia.enhance.jpeg_codec_differentiable``, Reich et al. 2024).

``tests/test_twin.py`` checks it against ``channel.tile.apply_tile`` with the same
parameters (see ``params_from_channel``). Formulas and constants: ``docs/channel-profile.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import kornia
import numpy as np
import torch
from torch import Tensor

from channel import colour
from channel import isp as isp_mod
from contracts.framing import tile_px_range
from contracts.profile import CHANNEL_STAGES, GLARE_RADIUS, TILE_VIEW_DEG, ChannelProfile, channel_range

STAGES = CHANNEL_STAGES
_XYZ_TO_SRGB = colour.XYZ_TO_SRGB.tolist()  # the numpy channel's constants (channel.colour), as tensors below
_LUMA = colour.LUMA.tolist()


@dataclass
class TwinParams:
    """One sampled transform per image: every field is a tensor of shape (N,)."""

    sheet_fill: Tensor
    tilt_deg: Tensor
    tilt_axis_deg: Tensor
    rotation_deg: Tensor
    illuminance: Tensor
    colour_temperature_k: Tensor
    gradient: Tensor
    gradient_angle_deg: Tensor
    glare: Tensor
    glare_x: Tensor
    glare_y: Tensor
    defocus_sigma_px: Tensor
    motion_blur_px: Tensor
    motion_angle_deg: Tensor
    shot_noise: Tensor
    read_noise: Tensor
    wb_error_r: Tensor
    wb_error_b: Tensor
    exposure: Tensor
    jpeg_quality: Tensor
    noise_seed: Tensor  # int64: seeds the noise of each image
    tile_px: Tensor | None = None  # the tile's side in camera pixels (None: the tile's own size, no resampling)

    def __len__(self) -> int:
        return int(self.noise_seed.shape[0])

    def to(self, x: Tensor) -> TwinParams:
        """Float fields on ``x``'s device and dtype; ``noise_seed`` stays int64 on the CPU."""
        vals = {
            f.name: getattr(self, f.name).to(device=x.device, dtype=x.dtype)
            for f in fields(self)
            if f.name not in ("noise_seed", "tile_px")
        }
        tile = None if self.tile_px is None else self.tile_px.to(device=x.device, dtype=x.dtype)
        return TwinParams(**vals, noise_seed=self.noise_seed.to("cpu", torch.int64), tile_px=tile)

    def to_dict(self) -> dict[str, list[float]]:
        return {f.name: getattr(self, f.name).tolist() for f in fields(self) if getattr(self, f.name) is not None}


TWIN_FIELDS = tuple(f.name for f in fields(TwinParams) if f.name not in ("noise_seed", "tile_px"))


def params_from_channel(channel_params: Any | Sequence[Any]) -> TwinParams:
    """TwinParams from one or more ``channel.model.ChannelParams`` (or their ``to_dict()``), N = their number."""
    items = list(channel_params) if isinstance(channel_params, (list, tuple)) else [channel_params]
    rows = [
        dict(p) if isinstance(p, Mapping) else {n: getattr(p, n) for n in (*TWIN_FIELDS, "noise_seed")} for p in items
    ]
    vals = {n: torch.tensor([float(r[n]) for r in rows], dtype=torch.float64) for n in TWIN_FIELDS}
    return TwinParams(**vals, noise_seed=torch.tensor([int(r["noise_seed"]) for r in rows], dtype=torch.int64))


def srgb_decode(v: Tensor) -> Tensor:
    """sRGB-encoded 0..1 to linear (IEC 61966-2-1)."""
    v = v.clamp(0.0, 1.0)
    return torch.where(
        v <= colour.SRGB_DECODE_THRESHOLD,
        v / colour.SRGB_SLOPE,
        ((v + colour.SRGB_OFFSET) / colour.SRGB_SCALE).clamp_min(1e-12) ** colour.SRGB_GAMMA,
    )


def illuminant_rgb(cct_k: Tensor) -> Tensor:
    """(N,) colour temperatures to (N, 3) linear sRGB of luminance 1 (Planckian locus, Kim et al. 2002)."""
    t = cct_k.to(torch.float64).clamp(*colour.CCT_RANGE_K)

    def in_t(c: tuple[float, float, float, float]) -> Tensor:
        return c[0] / t**3 + c[1] / t**2 + c[2] / t + c[3]

    x = torch.where(t <= colour.PLANCK_SPLIT_K, in_t(colour.PLANCK_X_LOW), in_t(colour.PLANCK_X_HIGH))

    def in_x(c: tuple[float, float, float, float]) -> Tensor:
        return c[0] * x**3 + c[1] * x**2 + c[2] * x + c[3]

    y = torch.where(
        t <= colour.PLANCK_Y_SPLIT_K,
        in_x(colour.PLANCK_Y_LOW),
        torch.where(t <= colour.PLANCK_SPLIT_K, in_x(colour.PLANCK_Y_MID), in_x(colour.PLANCK_Y_HIGH)),
    )
    xyz = torch.stack([x / y, torch.ones_like(x), (1.0 - x - y) / y], dim=-1)
    return xyz @ torch.tensor(_XYZ_TO_SRGB, dtype=torch.float64, device=t.device).T


def tile_homography(p: TwinParams, size: int, fill_mid: float) -> Tensor:
    """(N, 3, 3) float64 warp of a size x size tile (pixel centres at integers), as channel.model.tile_homography."""
    n, dev = len(p), p.tilt_deg.device
    c = (size - 1) / 2
    f = (size / 2) / math.tan(math.radians(TILE_VIEW_DEG) / 2)
    t, ax, r = (torch.deg2rad(v.to(torch.float64)) for v in (p.tilt_deg, p.tilt_axis_deg, p.rotation_deg))
    k = torch.stack([torch.cos(ax), torch.sin(ax), torch.zeros_like(ax)], dim=-1)
    z = torch.zeros_like(ax)
    kx = torch.stack([z, -k[:, 2], k[:, 1], k[:, 2], z, -k[:, 0], -k[:, 1], k[:, 0], z], dim=-1).view(n, 3, 3)
    eye = torch.eye(3, dtype=torch.float64, device=dev).expand(n, 3, 3)
    rot = (
        eye * torch.cos(t)[:, None, None]
        + torch.sin(t)[:, None, None] * kx
        + (1 - torch.cos(t))[:, None, None] * k[:, :, None] * k[:, None, :]
    )
    one = torch.ones_like(r)
    rz = torch.stack([torch.cos(r), -torch.sin(r), z, torch.sin(r), torch.cos(r), z, z, z, one], dim=-1).view(n, 3, 3)
    rot = rz @ rot
    ext = torch.stack(
        [rot[:, :, 0], rot[:, :, 1], torch.tensor([0.0, 0.0, f], dtype=torch.float64, device=dev).expand(n, 3)], dim=-1
    )
    shift = torch.tensor([[1.0, 0, -c], [0, 1.0, -c], [0, 0, 1.0]], dtype=torch.float64, device=dev)
    h0 = torch.diag(torch.tensor([f, f, 1.0], dtype=torch.float64, device=dev)) @ ext @ shift
    h0 = h0 / h0[:, 2:3, 2:3]
    det = torch.linalg.det(h0[:, :2, :2]) / (h0[:, 2, 0] * c + h0[:, 2, 1] * c + h0[:, 2, 2]) ** 2
    scale = (p.sheet_fill.to(torch.float64) / fill_mid) / det.abs().sqrt()
    back = torch.tensor([[1.0, 0, c], [0, 1.0, c], [0, 0, 1.0]], dtype=torch.float64, device=dev)
    return back @ (torch.diag_embed(torch.stack([scale, scale, one], dim=-1)) @ h0)


def motion_kernels(length_px: Tensor, angle_deg: Tensor) -> Tensor:
    """(N, K, K) line kernels, as channel.camera.motion_kernel, zero-padded to the largest."""
    r = max(1, math.ceil(float(length_px.max()) / 2))
    grid = torch.arange(-r, r + 1, dtype=torch.float64)
    out = []
    for length, ang in zip(length_px.tolist(), angle_deg.tolist(), strict=True):
        n = max(2, math.ceil(2 * length) + 1)
        t = torch.linspace(-length / 2, length / 2, n, dtype=torch.float64)
        a = math.radians(ang)
        wx = (1 - (grid[None, :] - (t * math.cos(a))[:, None]).abs()).clamp_min(0)
        wy = (1 - (grid[None, :] - (t * math.sin(a))[:, None]).abs()).clamp_min(0)
        k = torch.einsum("ni,nj->ij", wy, wx)
        out.append(k / k.sum())
    return torch.stack(out)


class ChannelTwin:
    """Samples and applies channel transforms to image tiles, differentiably w.r.t. the image.

    Args:
        profile: the channel profile (the same TOML as the simulated camera).
        size: side of the (square) tiles in pixels; warps keep this size.
        tile_px: range of the tile's side in camera pixels that ``sample`` draws from
            (default: ``tile_px_range(profile)``, the simulated camera's whole-sheet framing of a
            60 mm tile; craft's EOT passes ``default_tile_px_range``); ``None`` or ``(0, 0)`` leaves resolution out.
    """

    def __init__(
        self, profile: ChannelProfile, size: int, tile_px: tuple[float, float] | None | str = "framing"
    ) -> None:
        if size < 8:
            raise ValueError(f"size: expected a tile side of at least 8 pixels, got {size}")
        self.profile, self.size = profile, int(size)
        rng = tile_px_range(profile) if isinstance(tile_px, str) else tile_px
        self.tile_range: tuple[float, float] | None = (
            None if not rng or max(rng) <= 0 else (float(rng[0]), float(rng[1]))
        )
        pr = profile.printer
        self._gamut = (1 - pr.gamut_compression) * torch.eye(
            3, dtype=torch.float64
        ) + pr.gamut_compression * torch.tensor(_LUMA, dtype=torch.float64)[None, :].expand(3, 3)
        lo, hi = profile.scene.colour_temperature_k
        self._wb_ref = 1.0 / illuminant_rgb(torch.tensor([2.0 / (1.0 / lo + 1.0 / hi)]))[0]  # mired midpoint
        self._wb_ref_np = self._wb_ref.numpy()
        self._fill_mid = 0.5 * sum(profile.scene.sheet_fill)

    def _range(self, name: str) -> tuple[float, float]:
        return channel_range(self.profile, name)

    def sample(
        self, n: int, generator: torch.Generator, device: Any = None, dtype: torch.dtype = torch.float32
    ) -> TwinParams:
        """Draw ``n`` transforms uniformly from the profile's ranges (all randomness from ``generator``)."""
        dev = generator.device
        u = torch.rand(len(TWIN_FIELDS), n, generator=generator, device=dev, dtype=torch.float64)
        vals = {}
        for i, name in enumerate(TWIN_FIELDS):
            lo, hi = self._range(name)
            vals[name] = (lo + u[i] * (hi - lo)).to(device=device or dev, dtype=dtype)
        vals["jpeg_quality"] = vals["jpeg_quality"].round()
        seeds = torch.randint(0, 2**31 - 1, (n,), generator=generator, device=dev).to("cpu", torch.int64)
        tile = None
        if self.tile_range is not None:  # drawn last, so the other fields are the same with or without it
            lo, hi = self.tile_range
            tile = (lo + torch.rand(n, generator=generator, device=dev, dtype=torch.float64) * (hi - lo)).to(
                device=device or dev, dtype=dtype
            )
        return TwinParams(**vals, noise_seed=seeds, tile_px=tile)

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """Apply a fresh transform per image: ``apply(x, sample(len(x), generator, x.device, x.dtype))``."""
        return self.apply(x, self.sample(x.shape[0], generator, x.device, x.dtype))

    def _print(self, v: Tensor) -> Tensor:
        pr = self.profile.printer
        a = 1.0 - srgb_decode(v).clamp_min(1e-12) ** pr.tone_gamma
        a = (a + pr.dot_gain * 4.0 * a * (1.0 - a)).clamp(0.0, 1.0)
        white = torch.tensor(pr.paper_white, dtype=v.dtype, device=v.device).view(1, 3, 1, 1)
        black = torch.tensor(pr.ink_black, dtype=v.dtype, device=v.device).view(1, 3, 1, 1)
        return torch.einsum("ij,njhw->nihw", self._gamut.to(v), white * (1.0 - a) + black * a)

    def apply(self, x: Tensor, params: TwinParams, stages: Iterable[str] | None = None) -> Tensor:
        """Transform ``x`` (N, 3, size, size; RGB, 0..255) with ``params``; returns the same shape, 0..255.

        Stages left out of ``stages`` are identities; without ``sensor`` the linear signal
        times 255 is returned (as ``channel.tile.apply_tile``).
        """
        stages = tuple(STAGES if stages is None else stages)
        if set(stages) - set(STAGES):
            raise ValueError(f"stages: unknown {sorted(set(stages) - set(STAGES))}; expected some of {STAGES}")
        if x.ndim != 4 or x.shape[0] != len(params) or tuple(x.shape[1:]) != (3, self.size, self.size):
            raise ValueError(f"x: expected ({len(params)}, 3, {self.size}, {self.size}), got {tuple(x.shape)}")
        p, (_, _, h, w) = params.to(x), x.shape
        v = x / 255.0
        white = torch.ones(3, dtype=x.dtype, device=x.device)
        if "print" in stages:
            v = self._print(v)
            white = self._print(torch.ones(1, 3, 1, 1, dtype=x.dtype, device=x.device)).view(3)
        if "pose" in stages:
            m = tile_homography(p, w, self._fill_mid).to(x)
            v = kornia.geometry.transform.warp_perspective(
                v, m, (h, w), mode="bilinear", padding_mode="fill", align_corners=True, fill_value=white
            )
        if "light" in stages:
            v = self._light(v, p)
        if "optics" in stages:
            # Blur lengths are in camera pixels; at a tile of tile_px camera pixels one is size / tile_px tile pixels.
            scale = torch.ones_like(p.defocus_sigma_px) if p.tile_px is None else w / p.tile_px.clamp_min(4.0)
            sigma = (p.defocus_sigma_px * scale).clamp_min(1e-3)
            k = 2 * math.ceil(3.0 * float(sigma.max())) + 1
            v = kornia.filters.gaussian_blur2d(v, (k, k), torch.stack([sigma, sigma], dim=-1), border_type="reflect")
            if float(p.motion_blur_px.max()) > 0:
                length = (p.motion_blur_px * scale).detach().cpu()
                v = kornia.filters.filter2d(
                    v, motion_kernels(length, p.motion_angle_deg.detach().cpu()).to(x), border_type="reflect"
                )
            if p.tile_px is not None:
                v = self._resample(v, p.tile_px)
        v = self._sensor(v, p) if "sensor" in stages else (v * 255.0).clamp(0.0, 255.0)
        if "isp" in stages and not self.profile.isp.is_identity():
            v = self._isp(v, p)
        if "jpeg" in stages:
            v = 255.0 * kornia.enhance.jpeg_codec_differentiable((v / 255.0).clamp(0.0, 1.0), p.jpeg_quality)
        return v

    def _isp(self, v: Tensor, p: TwinParams) -> Tensor:
        """The ISP (``channel.isp``): per-image white balance and levels, colour matrix, tone curves, unsharp mask."""
        isp, gamma, n = self.profile.isp, self.profile.camera.gamma, v.shape[0]
        consts = [
            isp_mod.frame_constants(
                self.profile,
                float(p.illuminance[i]),
                float(p.gradient[i]),
                float(p.exposure[i]),
                float(p.colour_temperature_k[i]),
                np.array([1.0 + float(p.wb_error_r[i]), 1.0, 1.0 + float(p.wb_error_b[i])]) * self._wb_ref_np,
            )
            for i in range(n)
        ]
        gains = torch.tensor(np.stack([c.gains for c in consts]), dtype=v.dtype, device=v.device).view(n, 3, 1, 1)
        black = torch.tensor([c.black for c in consts], dtype=v.dtype, device=v.device).view(n, 1, 1, 1)
        white = torch.tensor([c.white for c in consts], dtype=v.dtype, device=v.device).view(n, 1, 1, 1)
        lin = (v / 255.0).clamp(1e-6, 1.0) ** gamma * gains
        e = lin.clamp(1e-6, 1.0) ** (1.0 / gamma)
        stretch = isp.levels_black + (e - black) * (isp.levels_white - isp.levels_black) / (white - black)
        e = (e + isp.levels_strength * (stretch - e)).clamp(0.0, 1.0)
        m = isp_mod.colour_matrix(isp)
        if not np.allclose(m, np.eye(3)):
            lin = torch.einsum("ij,njhw->nihw", torch.tensor(m, dtype=v.dtype, device=v.device), e**gamma)
            e = lin.clamp(1e-6, 1.0) ** (1.0 / gamma)
        knots = torch.tensor([isp.tone_r, isp.tone_g, isp.tone_b], dtype=v.dtype, device=v.device)  # (3, K)
        segs = knots.shape[1] - 1
        pos = e * segs
        idx = pos.detach().floor().clamp(0, segs - 1).long()
        k = knots.view(1, 3, 1, 1, -1).expand(n, 3, *e.shape[2:], -1)
        lo = torch.gather(k, -1, idx[..., None])[..., 0]
        hi = torch.gather(k, -1, (idx + 1)[..., None])[..., 0]
        e = lo + (pos - idx) * (hi - lo)
        out = (255.0 * e).clamp(0.0, 255.0)
        if isp.sharpen_amount > 0:
            w = v.shape[-1]
            scale = torch.ones_like(p.illuminance) if p.tile_px is None else w / p.tile_px.clamp_min(4.0)
            sigma = (isp.sharpen_sigma_px * scale).clamp_min(1e-3)
            ks = 2 * math.ceil(3.0 * float(sigma.max())) + 1
            blur = kornia.filters.gaussian_blur2d(out, (ks, ks), torch.stack([sigma, sigma], -1), border_type="reflect")
            out = (out + isp.sharpen_amount * (out - blur)).clamp(0.0, 255.0)
        return out

    @staticmethod
    def _resample(v: Tensor, tile_px: Tensor) -> Tensor:
        """Each image area-averaged onto its ``tile_px`` camera pixels and back to its size, bilinearly (as capture's
        crop).
        """
        h, w = v.shape[-2:]
        out = []
        for img, t in zip(v, tile_px.tolist(), strict=True):
            side = int(round(t))
            if side >= min(h, w):
                out.append(img)
                continue
            small = torch.nn.functional.adaptive_avg_pool2d(img[None], (max(4, side), max(4, side)))
            out.append(torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)[0])
        return torch.stack(out)

    def _light(self, v: Tensor, p: TwinParams) -> Tensor:
        n, _, h, w = v.shape
        uu = ((torch.arange(w, dtype=v.dtype, device=v.device) + 0.5) / w).view(1, 1, w)
        vv = ((torch.arange(h, dtype=v.dtype, device=v.device) + 0.5) / h).view(1, h, 1)
        a = torch.deg2rad(p.gradient_angle_deg).view(n, 1, 1)
        ca, sa = torch.cos(a), torch.sin(a)
        ramp = (((uu - 0.5) * ca + (vv - 0.5) * sa) / (ca.abs() + sa.abs()) + 0.5).clamp(0.0, 1.0)
        gain = p.illuminance.view(n, 1, 1) * (1.0 - p.gradient.view(n, 1, 1) * ramp)
        d2 = (uu - p.glare_x.view(n, 1, 1)) ** 2 + (vv - p.glare_y.view(n, 1, 1)) ** 2
        glare = p.glare.view(n, 1, 1) * torch.exp(-d2 / (2 * GLARE_RADIUS**2))
        colour = (p.exposure[:, None] * illuminant_rgb(p.colour_temperature_k).to(v)).view(n, 3, 1, 1)
        return (v * gain[:, None] + glare[:, None]) * colour

    def _sensor(self, raw: Tensor, p: TwinParams) -> Tensor:
        """Noise ``a*raw + b**2`` added through y = sqrt(raw + b**2/a) (as channel.model), then WB and 1/gamma."""
        n = raw.shape[0]
        a = p.shot_noise.clamp_min(0.0)
        b = p.read_noise.clamp_min(0.0)
        a = torch.where((b > 0) & (a < 1e-4 * b), 1e-4 * b, a)
        c = torch.where(a > 0, b * b / a.clamp_min(1e-30), torch.zeros_like(a)).view(n, 1, 1, 1)
        noise = torch.stack(
            [
                torch.randn(raw.shape[1:], generator=torch.Generator().manual_seed(int(s)), dtype=torch.float32)
                for s in p.noise_seed.tolist()
            ]
        ).to(raw)
        y = torch.sqrt(raw.clamp_min(0.0) + c + 1e-12) + (a.sqrt() / 2).view(n, 1, 1, 1) * noise
        raw = y * y - c - 1e-12
        gains = torch.stack(
            [1.0 + p.wb_error_r, torch.ones_like(p.wb_error_r), 1.0 + p.wb_error_b], dim=-1
        ) * self._wb_ref.to(raw)
        lin = (raw * gains.view(n, 3, 1, 1)).clamp(1e-6, 1.0)
        return 255.0 * lin ** (1.0 / self.profile.camera.gamma)
