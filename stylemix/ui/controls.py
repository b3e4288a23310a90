"""The controls every render reads: the loaded pair, one α slider per resolution, presets, the
mapping network's source, the class of a conditional pair and the Channels panel's pick.

:meth:`Controls.read` is the one place that turns their values into (pair, spec, class), so
every handler starts the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ..blend import BlendSpec
from ..errors import StylemixError
from ..render import check_class
from ..toonify import Toonifier, default_toonify_spec, recommended_toonify_alphas, toonify_r_swap
from .services import QUIET, Services

# The last one is where the sliders open (opening_alphas): the page opens with it chosen, and
# after any slider moves it brings that blend back.
TOONIFY_PRESET = "toonify default"
PRESETS = ["swap, low from transfer", "swap, low from base", "linear", "smooth ramp", TOONIFY_PRESET]
ALL_RESOLUTIONS = [2 ** i for i in range(2, 11)]  # one slider each; those of the pair are shown


def spec_from_sliders(resolutions: list[int], alphas, mapping: str,
                      channels: dict | None = None) -> BlendSpec:
    """Slider values (one per ALL_RESOLUTIONS) as a spec for a pair with these resolutions;
    ``channels`` ({"res", "channels", "alpha"}, from the Channels panel) adds channel α.

    Zeros are left out (unlisted means base) to keep labels short."""
    table = {r: float(a) for r, a in zip(ALL_RESOLUTIONS, alphas) if r in resolutions and float(a) != 0}
    spec = BlendSpec.per_resolution(table, mapping=mapping)
    if channels and channels.get("res") in resolutions and channels.get("channels"):
        spec = spec.with_channels(channels["res"], channels["channels"], channels["alpha"])
    return spec


def toonify_swap(G) -> int:
    """Where a page opens: the library's Toonify swap for the pair's size (CLI and app alike),
    or a middle α group when the pair has no such group (StyleGAN3 sampling rates)."""
    resolutions = G.block_resolutions
    r_swap = toonify_r_swap(G)
    return r_swap if r_swap in resolutions[:-1] else resolutions[max(0, len(resolutions) // 2 - 1)]


def preset_alphas(resolutions: list[int], preset: str, r: int, alpha: float, width: float) -> list[float]:
    """Slider values (one per ALL_RESOLUTIONS) for a preset (r: swap resolution or ramp centre)."""
    if preset == PRESETS[0]:
        spec = BlendSpec.swap(r, low="transfer")
    elif preset == PRESETS[1]:
        spec = BlendSpec.swap(r, low="base")
    elif preset == PRESETS[2]:
        spec = BlendSpec.linear(alpha)
    elif preset == PRESETS[3]:
        spec = BlendSpec.smooth(r, width)
    else:  # TOONIFY_PRESET depends on the pair: opening_alphas
        raise StylemixError(f"preset {preset!r} is not one of {', '.join(PRESETS[:4])}")
    return slider_values(spec, resolutions)


def slider_values(spec: BlendSpec, resolutions: list[int]) -> list[float]:
    """One slider value per ALL_RESOLUTIONS for ``spec`` on a pair with these α groups."""
    alphas = spec.alphas(resolutions)
    return [round(alphas.get(res, 0.0), 3) for res in ALL_RESOLUTIONS]


def opening_alphas(G, G_transfer=None) -> list[float]:
    """The sliders a pair opens with (all zero without a pair): toonify's default blend, the
    transfer's recommended one or the paper's swap with a soft edge
    (stylemix.toonify.default_toonify_spec)."""
    if G is None:
        return [0.0] * len(ALL_RESOLUTIONS)
    own = recommended_toonify_alphas(G, G_transfer) is not None
    if toonify_swap(G) != toonify_r_swap(G) and not own:  # StyleGAN3: a middle α group, a plain swap
        return preset_alphas(G.block_resolutions, PRESETS[0], toonify_swap(G), 0.5, 0.5)
    return slider_values(default_toonify_spec(G, G_transfer), G.block_resolutions)


def slider_labels(G) -> dict[int, str]:
    """Slider label per α group: "16 px" for StyleGAN2 blocks; StyleGAN3 layers have no single
    resolution, so its sliders name the sampling rate and how many layers it drives."""
    if G.family != "stylegan3":
        return {r: f"{r} px" for r in G.block_resolutions}
    return {r: f"{r} px · {len(names)} layers" for r, names in G.layers_by_group().items()}


def family_note(G) -> str:
    """One line for the page when the pair is StyleGAN3: what the sliders mean there."""
    if G.family != "stylegan3":
        return ""
    groups = "; ".join(f"{r} px = {', '.join(names)}" for r, names in G.layers_by_group().items())
    return (f" StyleGAN3 ({G.config.architecture}): its layers have no single resolution, so each "
            f"slider drives the layers of one sampling rate ({groups}). Channel α is StyleGAN2-only.")


def class_label(classes: int) -> str:
    """The class picker's label: which classes a conditional pair has (NVIDIA's one-hot c)."""
    return f"class (0–{classes - 1}; the pair is conditional)" if classes else "class"


@dataclass
class Current:
    """What one render needs: the pair, the blend the controls describe, and the class."""

    toonifier: Toonifier
    spec: BlendSpec
    class_idx: int | None

    @property
    def resolutions(self) -> list[int]:
        return self.toonifier.G_base.block_resolutions


class Controls:
    """The shared controls, built where the page wants them (sliders, then presets)."""

    def __init__(self, services: Services, G=None, key=None, G_transfer=None):
        self.services = services
        res = G.block_resolutions if G is not None else []
        labels = slider_labels(G) if G is not None else {}
        self.pair_key = gr.State(key)
        self.channel_pick = gr.State(None)  # {"res", "channels", "alpha"} of this session, or None
        with gr.Row():
            self.sliders = [gr.Slider(0, 1, value=v, step=0.05, label=labels.get(r, f"{r} px"),
                                      min_width=80, visible=r in res, elem_id=f"alpha-{r}")
                            for r, v in zip(ALL_RESOLUTIONS, opening_alphas(G, G_transfer))]
        with gr.Row(equal_height=True):
            self.preset = gr.Dropdown(PRESETS, value=TOONIFY_PRESET, label="preset", scale=3, min_width=220,
                                      elem_id="preset")
            self.preset_r = gr.Dropdown(ALL_RESOLUTIONS[:-1], value=toonify_swap(G) if G is not None else 16,
                                        label="swap at / ramp centre (px)",
                                        scale=2, min_width=120)
            self.preset_alpha = gr.Slider(0, 1, value=0.5, step=0.05, label="linear α", scale=2, min_width=120)
            self.preset_width = gr.Slider(0.25, 2, value=0.5, step=0.25, label="ramp width (octaves)",
                                          scale=2, min_width=120)
            self.apply_preset = gr.Button("apply preset", scale=1, min_width=100)
            self.mapping = gr.Radio(["base", "transfer", "blend"], value="base",
                                    label="mapping network from", scale=3, min_width=220)
            classes = G.c_dim if G is not None else 0
            # No minimum/maximum: out-of-range classes get class_from_page's one-line reason.
            self.class_pick = gr.Number(0, precision=0, label=class_label(classes), visible=bool(classes),
                                        elem_id="class-pick", scale=2, min_width=120)

    @property
    def inputs(self) -> list:
        """What :meth:`read` takes, in its order (the class last: API callers may leave it out)."""
        return [self.pair_key, self.channel_pick, self.mapping, *self.sliders, self.class_pick]

    @property
    def triggers(self) -> list:
        """Every control whose change changes the blend image."""
        return [s.change for s in self.sliders] + [self.mapping.change, self.class_pick.change,
                                                   self.channel_pick.change, self.pair_key.change]

    def read(self, values) -> Current:
        """The values of :attr:`inputs` (extra values after them are ignored) as what to render."""
        key, chans, mapping, *rest = values[:len(self.inputs)]
        *alphas, class_idx = rest
        toonifier = self.services.pair(key)
        spec = spec_from_sliders(toonifier.G_base.block_resolutions, alphas, mapping, chans)
        return Current(toonifier, spec, class_from_page(toonifier.G_base, class_idx))

    def wire(self) -> None:
        self.apply_preset.click(self.apply, [self.pair_key, self.preset, self.preset_r, self.preset_alpha,
                                             self.preset_width], self.sliders, api_name="preset",
                                 show_progress="hidden", show_progress_on=QUIET)  # instant

    def apply(self, key, preset, r, alpha, width):
        """The sliders of ``preset``; TOONIFY_PRESET: the blend the pair opens with (its transfer's
        recommended one, or the paper's swap with a soft edge)."""
        pair = self.services.pair(key)
        if preset == TOONIFY_PRESET:
            return opening_alphas(pair.G_base, pair.G_transfer)
        res = pair.G_base.block_resolutions
        return preset_alphas(res, preset, min(int(r), res[-2]), alpha, width)

    def on_pair(self, key, toonifier: Toonifier) -> dict:
        """Updates when a pair loads: its sliders at the opening swap, its classes."""
        G = toonifier.G_base
        res, labels = G.block_resolutions, slider_labels(G)
        updates = {self.pair_key: key, self.channel_pick: None, self.preset_r: toonify_swap(G)}
        for r, v, slider in zip(ALL_RESOLUTIONS, opening_alphas(G, toonifier.G_transfer), self.sliders):
            updates[slider] = gr.update(visible=r in res, label=labels.get(r, f"{r} px"), value=v)
        updates[self.class_pick] = gr.update(value=0, visible=bool(G.c_dim), label=class_label(G.c_dim))
        return updates

    @property
    def pair_outputs(self) -> list:
        return [self.pair_key, self.channel_pick, self.preset_r, *self.sliders, self.class_pick]


def class_from_page(G, class_idx) -> int | None:
    """The page's class box (a number, maybe empty or 2.0) as the class to render: None for an
    unconditional model; else a whole number checked by the library's ``render.check_class``
    (2.5 is refused, never cut to 2)."""
    if not G.c_dim:
        return None
    if class_idx is None or class_idx == "":
        raise StylemixError(f"this pair is conditional ({G.c_dim} classes): pick a class")
    try:
        value = float(class_idx)
    except (TypeError, ValueError):
        value = float("nan")
    if not value.is_integer():
        raise StylemixError(f"class {class_idx} is not a whole number: this pair has classes 0 to {G.c_dim - 1}")
    return check_class(G, int(value))
