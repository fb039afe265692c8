"""Gated colour jitter and Gaussian blur: kornia augmentations that compute only what their gate selects.

kornia's probability gate (``p < 1``) transforms the whole batch and then keeps the inputs of the
samples it did not select. These two augmentations draw the same parameters as kornia's
``ColorJiggle`` and ``RandomGaussianBlur`` (with kornia's own random generators) plus a per-sample
gate of probability ``p``, and compute only the selected samples. kornia's own gate stays at
``p=1``, so an ``AugmentationSequential`` calls them on the whole batch.

Both are kornia ``IntensityAugmentationBase2D`` subclasses: they compose with kornia containers,
draw through ``forward_parameters`` and replay through ``params=``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import kornia.augmentation as K
import torch
from kornia.augmentation.random_generator import ColorJiggleGenerator, RandomGaussianBlurGenerator
from kornia.enhance import adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation
from kornia.filters import gaussian_blur2d
from torch import Tensor

from sslkeypoint._utils import size_pair

# Factor keys of ColorJiggleGenerator in kornia's step order (0 brightness, 1 contrast,
# 2 saturation, 3 hue) and the factor that leaves an image unchanged.
_FACTORS: tuple[tuple[str, float], ...] = (
    ("brightness_factor", 1.0),
    ("contrast_factor", 1.0),
    ("saturation_factor", 1.0),
    ("hue_factor", 0.0),
)


def _brightness(image: Tensor, factor: Tensor) -> Tensor:
    return adjust_brightness(image, factor - 1)


def _hue(image: Tensor, factor: Tensor) -> Tensor:
    return adjust_hue(image, factor * 2 * math.pi)


_STEPS: tuple[Callable[[Tensor, Tensor], Tensor], ...] = (
    _brightness,
    adjust_contrast,
    adjust_saturation,
    _hue,
)


def _check_p(p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1]; got {p}")
    return float(p)


def _draw_gate(batch: int, p: float, same_on_batch: bool) -> Tensor:
    """``(batch,)`` bool on the CPU, each true with probability ``p`` (one draw shared if ``same_on_batch``)."""
    if same_on_batch:
        return (torch.rand(1) < p).expand(batch)
    return torch.rand(batch) < p


class GatedColorJiggle(K.IntensityAugmentationBase2D):
    """kornia's ``ColorJiggle`` factors and steps, computed only for the samples its gate selects.

    The factors come from kornia's ``ColorJiggleGenerator`` (brightness and contrast around 1 by
    up to the given strength, saturation likewise, hue by up to ``hue`` turns, one random step
    order per batch) and the steps are kornia's: additive brightness
    (``kornia.enhance.adjust_brightness``), multiplicative contrast, HSV saturation and hue, each
    clamped to ``[0, 1]``. A sample the gate skips gets neutral factors (1, 1, 1, 0) and comes back
    clamped to ``[0, 1]`` but otherwise unchanged.

    With brightness and contrast only (``saturation == hue == 0``; any channel count, the
    one-channel case) the two steps run as fused tensor ops on the batch. With saturation or hue
    (3 channels) the four steps run on the selected sub-batch only.

    Drawn parameters (``forward_parameters``) are those of ``ColorJiggleGenerator``:
    ``brightness_factor``, ``contrast_factor``, ``saturation_factor``, ``hue_factor`` (``(B,)``, neutral
    where the gate skipped the sample) and ``order`` (``(4,)``), plus kornia's ``batch_prob``.

    Args:
        brightness: Brightness strength in ``[0, 1]``: additive shifts in ``[-brightness, brightness]``.
        contrast: Contrast strength: gains in ``[1 - contrast, 1 + contrast]`` (floored at 0).
        saturation: Saturation strength: factors in ``[1 - saturation, 1 + saturation]``.
        hue: Hue strength in ``[0, 0.5]``: shifts in ``[-hue, hue]`` turns of the hue circle.
        p: Probability that a sample is jittered.
        same_on_batch: One draw (factors and gate) for the whole batch.

    Attributes:
        gate_p: The probability ``p`` (kornia's own ``p`` stays 1).
        strengths: ``(brightness, contrast, saturation, hue)`` as given.
        factors: The kornia ``ColorJiggleGenerator`` that draws the factors.
        colour: Whether the saturation and hue steps can run (3 channels needed).

    Examples:
        >>> import torch
        >>> jitter = GatedColorJiggle(brightness=0.4, contrast=0.4, p=0.5)
        >>> x = torch.rand(8, 1, 16, 16)
        >>> params = jitter.forward_parameters(x.shape)
        >>> out = jitter(x, params=params)
        >>> skipped = params["brightness_factor"] == 1.0
        >>> out.shape, torch.equal(out[skipped], x[skipped])
        (torch.Size([8, 1, 16, 16]), True)
        >>> torch.equal(jitter(x, params=params), out)
        True
    """

    def __init__(
        self,
        brightness: float = 0.0,
        contrast: float = 0.0,
        saturation: float = 0.0,
        hue: float = 0.0,
        p: float = 1.0,
        same_on_batch: bool = False,
    ) -> None:
        super().__init__(p=1.0, same_on_batch=same_on_batch)
        self.gate_p = _check_p(p)
        self.strengths = (float(brightness), float(contrast), float(saturation), float(hue))
        self.factors = ColorJiggleGenerator(brightness, contrast, saturation, hue)
        self.colour = saturation > 0 or hue > 0

    def __repr__(self) -> str:
        b, c, s, h = self.strengths
        return (
            f"{type(self).__name__}(brightness={b}, contrast={c}, saturation={s}, hue={h}, "
            f"p={self.gate_p}, same_on_batch={self.same_on_batch})"
        )

    def set_rng_device_and_dtype(self, device: torch.device, dtype: torch.dtype) -> None:
        """Set where and in which dtype the factors are drawn (the gate is drawn on the CPU)."""
        super().set_rng_device_and_dtype(device, dtype)
        factors = getattr(self, "factors", None)  # absent while the base class initialises
        if factors is not None:
            factors.set_rng_device_and_dtype(device, dtype)

    def generate_parameters(self, batch_shape: tuple[int, ...]) -> dict[str, Tensor]:
        """Draw the factors for a batch of ``batch_shape``, neutral where the gate skips a sample."""
        params: dict[str, Tensor] = self.factors(batch_shape, self.same_on_batch)
        gate = _draw_gate(batch_shape[0], self.gate_p, self.same_on_batch)
        for key, neutral in _FACTORS:
            value = params[key]
            params[key] = torch.where(gate.to(value.device), value, torch.full_like(value, neutral))
        return params

    def apply_transform(
        self,
        input: Tensor,
        params: dict[str, Tensor],
        flags: dict[str, Any],
        transform: Tensor | None = None,
    ) -> Tensor:
        """Jitter the samples whose factors are not all neutral; clamp every sample to ``[0, 1]``."""
        if self.colour:
            return self._colour(input, params)
        shift = (params["brightness_factor"].to(input) - 1.0).view(-1, 1, 1, 1)
        gain = params["contrast_factor"].to(input).view(-1, 1, 1, 1)
        out = input.clamp(0.0, 1.0)
        for step in params["order"].tolist():
            if step == 0 and bool((shift != 0).any()):
                out = (out + shift).clamp_(0.0, 1.0)
            elif step == 1 and bool((gain != 1).any()):
                out = (out * gain).clamp_(0.0, 1.0)
        return out

    def _colour(self, input: Tensor, params: dict[str, Tensor]) -> Tensor:
        """All four steps on the sub-batch with a non-neutral factor, in the drawn order."""
        active = torch.zeros(input.shape[0], dtype=torch.bool)
        for key, neutral in _FACTORS:
            active |= params[key].cpu() != neutral
        out = input.clamp(0.0, 1.0)
        idx = active.nonzero().squeeze(1)
        if idx.numel() == 0:
            return out
        factors = [params[key][idx.to(params[key].device)] for key, _ in _FACTORS]
        rows = idx.to(input.device)
        sub = input[rows].clamp(0.0, 1.0)
        for step in params["order"].tolist():
            if bool((factors[step] != _FACTORS[step][1]).any()):
                sub = _STEPS[step](sub, factors[step])
        out[rows] = sub.clamp(0.0, 1.0)
        return out


class GatedGaussianBlur(K.IntensityAugmentationBase2D):
    """kornia's ``RandomGaussianBlur`` that convolves only the samples its gate selects.

    Each sample draws a standard deviation with kornia's ``RandomGaussianBlurGenerator`` (uniform in
    ``sigma``, one value for both axes) and a gate of probability ``p``; the selected samples are
    blurred with ``kornia.filters.gaussian_blur2d`` (separable, reflect padding), the others are
    returned unchanged. The output is not clamped (a blur stays within the input's range).

    Drawn parameters (``forward_parameters``): ``sigma`` ``(B,)`` in px and ``gate`` ``(B,)`` bool,
    plus kornia's ``batch_prob``.

    Args:
        kernel_size: Odd kernel size in px, an int or ``(kH, kW)``; the image must be larger than
            half of it (reflect padding).
        sigma: ``(min, max)`` of the standard deviation in px.
        p: Probability that a sample is blurred.
        same_on_batch: One draw (sigma and gate) for the whole batch.

    Attributes:
        kernel_size: ``(kH, kW)`` in px.
        sigma_range: ``sigma`` as given, in px.
        gate_p: The probability ``p`` (kornia's own ``p`` stays 1).
        sigmas: The kornia ``RandomGaussianBlurGenerator`` that draws the standard deviations.

    Examples:
        >>> import torch
        >>> blur = GatedGaussianBlur(5, (0.5, 2.0), p=0.5)
        >>> x = torch.rand(8, 1, 16, 16)
        >>> params = blur.forward_parameters(x.shape)
        >>> out = blur(x, params=params)
        >>> gate = params["gate"]
        >>> torch.equal(out[~gate], x[~gate]), bool((out[gate] != x[gate]).any()) == bool(gate.any())
        (True, True)
    """

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        sigma: tuple[float, float] = (0.1, 2.0),
        p: float = 0.5,
        same_on_batch: bool = False,
    ) -> None:
        super().__init__(p=1.0, same_on_batch=same_on_batch)
        kh, kw = size_pair(kernel_size, "kernel_size")
        if kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f"kernel_size must be odd; got {(kh, kw)}")
        if not (0.0 <= sigma[0] <= sigma[1] and sigma[1] > 0.0):
            raise ValueError(f"sigma must satisfy 0 <= min <= max, max > 0; got {sigma}")
        self.kernel_size = (kh, kw)
        self.sigma_range = (float(sigma[0]), float(sigma[1]))
        self.gate_p = _check_p(p)
        self.sigmas = RandomGaussianBlurGenerator(sigma)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(kernel_size={self.kernel_size}, sigma={self.sigma_range}, "
            f"p={self.gate_p}, same_on_batch={self.same_on_batch})"
        )

    def set_rng_device_and_dtype(self, device: torch.device, dtype: torch.dtype) -> None:
        """Set where and in which dtype sigma is drawn (the gate is drawn on the CPU)."""
        super().set_rng_device_and_dtype(device, dtype)
        sigmas = getattr(self, "sigmas", None)  # absent while the base class initialises
        if sigmas is not None:
            sigmas.set_rng_device_and_dtype(device, dtype)

    def generate_parameters(self, batch_shape: tuple[int, ...]) -> dict[str, Tensor]:
        """Draw ``sigma`` and the ``gate`` for a batch of ``batch_shape``."""
        params: dict[str, Tensor] = self.sigmas(batch_shape, self.same_on_batch)
        params["gate"] = _draw_gate(batch_shape[0], self.gate_p, self.same_on_batch)
        return params

    def apply_transform(
        self,
        input: Tensor,
        params: dict[str, Tensor],
        flags: dict[str, Any],
        transform: Tensor | None = None,
    ) -> Tensor:
        """Blur the gated samples; the others are copied unchanged."""
        out = input.clone()
        idx = params["gate"].nonzero().squeeze(1)
        if idx.numel() == 0:
            return out
        idx = idx.to(input.device)
        sigma = params["sigma"].to(input)[idx].unsqueeze(-1).expand(-1, 2)
        out[idx] = gaussian_blur2d(
            input[idx], self.kernel_size, sigma, border_type="reflect", separable=True
        )
        return out
