"""The Mix tab: several models fine-tuned from one base, each with its own α per resolution,
θ = θ_base + Σ α_i,r (θ_i − θ_base) (stylemix.blend_many).  It opens rendered, its first row
set like the main sliders (the pair's transfer model)."""

from __future__ import annotations

import gradio as gr

from ..blend import BlendSpec, blend_many
from ..errors import StylemixError
from .controls import ALL_RESOLUTIONS, Controls, class_from_page, opening_alphas, spec_from_sliders
from .images import render_seed
from .pairs import MODEL_SUFFIXES, check_upload, list_models, resolve_model
from .services import Services, noted, session_of, show_note, user_errors

MIX_MODELS = 4  # transferred models in the Mix tab: the pair's transfer and up to 3 more


def render_mix(G_base, transfers: list, names: list[str], alphas, seed: int, psi: float,
               class_idx: int | None = None):
    """base | mix for one seed, one slider row per model.

    ``alphas`` holds MIX_MODELS rows of one value per ALL_RESOLUTIONS."""
    res = G_base.block_resolutions
    rows = [alphas[i * len(ALL_RESOLUTIONS):(i + 1) * len(ALL_RESOLUTIONS)] for i in range(len(transfers))]
    specs = [spec_from_sliders(res, row, "base") for row in rows]
    mixed = blend_many(G_base, transfers, specs)
    label = " + ".join(f"{name}: {spec.describe()}" for name, spec in zip(names, specs))
    return render_seed(mixed, seed, psi, class_idx), label


def offered_label(offered: list[str]) -> str:
    if offered:
        return f"more models from models/ ({len(offered)} besides this pair)"
    return "more models from models/ (it holds only this pair: upload models fine-tuned from its base)"


class MixTab:
    """Built inside ``gr.Tab("Mix several models")``."""

    def __init__(self, services: Services, controls: Controls, seed, psi, G=None, key=None, G_transfer=None):
        self.services, self.controls = services, controls
        self.seed, self.psi = seed, psi  # the Blend tab's
        offered = self.offered(key)
        gr.Markdown("Blend more than one transferred model into the base, each with its own α "
                    "per resolution: θ = θ_base + Σ α (θ_model − θ_base) — e.g. structure from "
                    "one, colours from another, texture from base. All must be fine-tuned from "
                    "the loaded base. The first row is the loaded pair's transfer model.")
        with gr.Row(equal_height=True):
            self.pick = gr.Dropdown(offered, multiselect=True, max_choices=MIX_MODELS - 1,
                                    label=offered_label(offered), scale=2)
            self.upload = gr.UploadButton("or upload them", file_count="multiple", scale=1,
                                          file_types=list(MODEL_SUFFIXES))
            self.load = gr.Button("use these models", scale=1)
        self.keys = gr.State([])  # content hashes of this session's extra models
        self.shown = gr.State(None)  # the inputs of the mix on the page
        self.status = gr.Markdown()
        self.note = gr.Markdown(elem_id="mix-note")
        res = G.block_resolutions if G is not None else []
        self.rows, self.sliders = [], []
        for i in range(MIX_MODELS):
            start = opening_alphas(G, G_transfer) if i == 0 else [0.0] * len(ALL_RESOLUTIONS)
            name = "transfer" if i == 0 else f"model {i + 1}"
            with gr.Row(visible=i == 0) as row:
                self.sliders += [gr.Slider(0, 1, value=v, step=0.05, label=f"{name}: {r} px",
                                           min_width=80, visible=r in res, elem_id=f"mix-{i}-{r}")
                                 for r, v in zip(ALL_RESOLUTIONS, start)]
            self.rows.append(row)
        with gr.Row():
            self.base = gr.Image(label="base", type="numpy", format="png", height=320)
            self.mix = gr.Image(label="mix", type="numpy", format="png", height=320, elem_id="view-mix")
        self.label = gr.Markdown()

    def offered(self, key) -> list[str]:
        """models/ without the loaded pair's own two files (mixing those adds nothing)."""
        folder = self.services.models_dir
        return [name for name in list_models(folder)
                if not key or self.services.cache.known_key(folder / name) not in tuple(key)]

    @property
    def inputs(self) -> list:
        c = self.controls
        return [c.pair_key, self.keys, self.seed, self.psi, *self.sliders, c.class_pick]

    @property
    def outputs(self) -> list:
        return [self.base, self.mix, self.label, self.shown]

    @noted("mix")
    def load_models(self, request: gr.Request, key, picked, uploaded):
        base = self.services.pair(key).G_base
        paths = [resolve_model(n, self.services.models_dir) for n in (picked or [])]
        paths += [check_upload(getattr(f, "name", f), self.services.max_upload_bytes) for f in (uploaded or [])]
        if len(paths) > MIX_MODELS - 1:
            raise StylemixError(f"mix at most {MIX_MODELS - 1} models besides the pair's transfer")
        keys = []
        for path in paths:
            keys.append(self.services.models.load(path))
            try:
                blend_many(base, [self.services.models.get(keys[-1])], [BlendSpec.linear(0.0)])
            except StylemixError as exc:
                raise StylemixError(f"{path.name}: {exc}") from None
        names = [p.name for p in paths]
        note = "Mixing the pair's transfer" + (" with " + ", ".join(names) if names else " only") + "."
        updates = {self.keys: [{"key": k, "name": n} for k, n in zip(keys, names)], self.status: note}
        updates.update({row: gr.update(visible=i <= len(keys)) for i, row in enumerate(self.rows)})
        return updates

    @noted("mix")
    def render(self, request: gr.Request, key, extras, seed, psi, *values):
        """base | mix for the Mix tab's sliders."""
        if not key:
            return gr.skip()
        *alphas, class_idx = values
        return self._render(key, extras, seed, psi, alphas, class_idx)

    @user_errors  # no note step follows this one (it runs after every slider move): a toast
    def refresh(self, request: gr.Request, ticket, shown, key, extras, seed, psi, *values):
        """After the main image: the mix again only if its inputs changed (seed, ψ, class, pair)."""
        if not key or shown == repr((key, extras, seed, psi, tuple(values))):
            return gr.skip()
        if not self.services.order.panel_turn(session_of(request), ticket, first=True):
            return gr.skip()
        *alphas, class_idx = values
        return self._render(key, extras, seed, psi, alphas, class_idx)

    def _render(self, key, extras, seed, psi, alphas, class_idx):
        shown = repr((key, extras, seed, psi, (*alphas, class_idx)))
        toonifier = self.services.pair(key)
        transfers = [toonifier.G_transfer] + [self.services.models.get(e["key"]) for e in extras or []]
        if any(G is None for G in transfers):
            raise StylemixError("a mixed model was unloaded to save memory: press 'use these models' again")
        names = ["transfer"] + [e["name"] for e in extras or []]
        class_idx = class_from_page(toonifier.G_base, class_idx)
        mix, label = render_mix(toonifier.G_base, transfers, names, alphas, seed, psi, class_idx)
        base, _ = self.services.parents.render((tuple(key), int(seed), float(psi), class_idx),
                                               toonifier, seed, psi, class_idx)
        files = self.services.files
        return {self.base: files.png(base, "base.png"), self.mix: files.png(mix, "mix.png"), self.label: label,
                self.shown: shown}

    def on_pair(self, key, toonifier) -> dict:
        res = toonifier.G_base.block_resolutions
        offered = self.offered(key)
        updates = {self.keys: [], self.status: "", self.note: "", self.base: None, self.mix: None, self.label: "",
                   self.pick: gr.update(choices=offered, value=[], label=offered_label(offered))}
        for i, row in enumerate(self.rows):
            updates[row] = gr.update(visible=i == 0)
            start = opening_alphas(toonifier.G_base, toonifier.G_transfer) if i == 0 else [0.0] * len(ALL_RESOLUTIONS)
            for j, (r, v) in enumerate(zip(ALL_RESOLUTIONS, start)):
                updates[self.sliders[i * len(ALL_RESOLUTIONS) + j]] = gr.update(visible=r in res, value=v)
        return updates

    @property
    def pair_outputs(self) -> list:
        return [self.keys, self.status, self.base, self.mix, self.label, self.pick, *self.rows, *self.sliders,
                self.note]

    def wire(self, tab: gr.Tab) -> None:
        """Renders when its own controls change or the tab is opened."""
        loaded = self.load.click(self.load_models, [self.controls.pair_key, self.pick, self.upload],
                        [self.keys, self.status, *self.rows], show_progress_on=[self.status],
                        api_name="load_mix")
        rendered = gr.on([tab.select, self.keys.change, *[s.change for s in self.sliders]],
              self.render, self.inputs, self.outputs, trigger_mode="always_last",
              show_progress="minimal", show_progress_on=[self.mix], api_name="render_mix")
        for event in (loaded, rendered):
            show_note(event, self.services.notes, "mix", self.note)

    def follow(self, event, ticket):
        """The mix after the main image and its panels, when its inputs changed."""
        # No note step here: this runs after every slider move, and an extra round trip each
        # time would cost every move (the tab's own events show the note).
        return event.then(self.refresh, [ticket, self.shown, *self.inputs], self.outputs,
                          show_progress="minimal", show_progress_on=[self.mix], api_name=False)
