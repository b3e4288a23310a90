"""The Blend tab: the blend for one seed first, then (only when they change) base and transfer,
then a grid of the next seeds; export of the blend and an animation row.

A slider move renders one image: the parents depend only on (pair, seed, ψ, class) and come
from :class:`~stylemix.ui.images.ParentCache`; the grid follows the main image (for models up to
GRID_FOLLOWS_UP_TO px; larger ones draw it when asked) and is dropped as soon as a newer slider
state arrives.  α and ψ moves also reach the image through the sliders' direct path
(:mod:`stylemix.ui.preview`), which skips the page's Gradio code; the main event then finds that
drawing instead of rendering again.
"""

from __future__ import annotations

import time

import gradio as gr

from ..render import MIN_SAVED_SIZE
from ..render_batch import RenderRequest
from .controls import Controls
from .exports import base_is_pickle, export_blend
from .images import TILE_SIZE, grid_image, png_bytes, render_seed, shown
from .preview import Drawn, Previews
from .pairs import friendly
from .services import QUIET, USER_ERRORS, Services, note_markdown, noted, reveal, show_note, session_of, user_errors

GRID_SEEDS = 4
GRID_FOLLOWS_UP_TO = 128  # px: up to this size the grid re-renders after every change by default

ANIMATIONS = {"sweep α from base to transfer": "alpha", "sweep the swap resolution": "swap",
              "sweep a smooth ramp's centre": "smooth", "walk through 4 seeds with this blend": "walk"}

PKL_HINT = ("**.pkl export** writes the blend into an existing NVIDIA or TensorFlow .pkl of the "
            "same network. This pair's base is not a pickle: choose one as the template, or "
            "export .safetensors.")



def pt_button(G_base) -> dict:
    """The .pt button: live where rosinality's stock Generator can build the network, else
    greyed out, its label saying why (pSp, e4e and JoJoGAN could not load such a file)."""
    from ..formats.rosinality import unwritable_reason
    if unwritable_reason(G_base):
        return {"value": "export .pt: rosinality's Generator cannot build this network",
                "interactive": False}
    return {"value": "export .pt (rosinality)", "interactive": True}


def pkl_label(base_is_a_pickle: bool) -> str:
    """The .pkl button says up front when it needs a template (the base is not a pickle)."""
    return "export .pkl" if base_is_a_pickle else "export .pkl (into a template below)"


# Run in the page before the panels' events: wait (≤ 2 s) until the new blend image has loaded,
# so preparing the next events never delays the picture the visitor is waiting for.
AFTER_BLEND_SHOWN_JS = """
async () => {
  const start = performance.now();
  const loaded = () => { const i = document.querySelector('#view-blend img');
                         return !i || (i.complete && i.naturalWidth > 0); };
  while (!loaded() && performance.now() - start < 2000) await new Promise(r => setTimeout(r, 10));
  await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
}
"""


def timing_text(waited_ms: float, render_ms: float, png_ms: float, label: str, batch: int = 1) -> str:
    """What the visitor waited for on the server, from the event to the finished PNG: the wait
    for the render queue (other visitors' renders), the recomposition and render (in one pass
    with ``batch`` - 1 other visitors' requests when they arrived together), the PNG encoding."""
    total = waited_ms + render_ms + png_ms
    shared = f", one pass for {batch} visitors" if batch > 1 else ""
    return (f"slider → image: **{total:.1f} ms** on the server (wait {waited_ms:.1f} + recompose and"
            f" render {render_ms:.1f}{shared} + PNG {png_ms:.1f} ms; {label})")


class BlendTab:
    """Built inside ``gr.Tab("Blend")``."""

    def __init__(self, services: Services, controls: Controls, G=None):
        self.services, self.controls = services, controls
        self.ticket = gr.State(None)          # the newest main render of this session
        self.parents_shown = gr.State(None)   # (pair, seed, ψ, class) whose parents are on the page
        with gr.Row(equal_height=True):
            self.seed = gr.Number(value=0, precision=0, label="seed", minimum=0, scale=2)
            self.new_seed = gr.Button("random seed", scale=1)
            self.psi = gr.Slider(0, 1.2, value=0.7, step=0.05, label="truncation ψ", scale=3, elem_id="psi")
        with gr.Row():
            self.base, self.blend, self.transfer = (
                gr.Image(label=n, type="numpy", format="png", elem_id=f"view-{n}", height=280)  # whole at 1400×900
                for n in ("base", "blend", "transfer"))
        self.timing = gr.Markdown(elem_id="timing")
        self.blend_note = gr.Markdown(elem_id="blend-note")  # why the blend could not be drawn
        self.previews = Previews(self.view_inputs, self.draw)  # the sliders' direct path
        with gr.Row(equal_height=True):
            self.grid = gr.Image(label=f"blend, the next {GRID_SEEDS} seeds", type="numpy", format="png",
                                 elem_id="view-grid", height=200, scale=5)
            with gr.Column(scale=1, min_width=160):
                # Four renders after every change are cheap for small models; for large ones they
                # would keep the CPU busy between moves, so there the grid waits to be asked for.
                self.grid_follows = gr.Checkbox(G is None or G.img_resolution <= GRID_FOLLOWS_UP_TO,
                                                label="update after every change", elem_id="grid-follows")
                self.draw_grid = gr.Button("draw the grid")
        pickle_base = G is None or base_is_pickle(G)
        with gr.Row(equal_height=True, elem_id="export-row"):
            self.export_pkl = gr.Button(pkl_label(pickle_base), elem_id="export-pkl")
            self.export_pt = gr.Button(**(pt_button(G) if G is not None else {"value": "export .pt (rosinality)"}),
                                       elem_id="export-pt")
            self.export_st = gr.Button("export .safetensors")
        with gr.Row(visible=not pickle_base, equal_height=True) as self.template_row:
            self.pkl_hint = gr.Markdown(PKL_HINT)
            self.template = gr.UploadButton("choose a template .pkl", file_types=[".pkl"],
                                            elem_id="pkl-template")
        self.export_note = gr.Markdown(elem_id="export-note")  # why the last export failed
        self.exported = gr.File(label="exported blend", elem_id="exported", visible=False)
        with gr.Row(equal_height=True):
            self.anim_kind = gr.Dropdown(list(ANIMATIONS), value=list(ANIMATIONS)[0], label="animation", scale=2)
            self.make_anim = gr.Button("make GIF", scale=1)
        self.anim_note = gr.Markdown(elem_id="anim-note")
        with gr.Row(visible=False) as self.anim_row:
            self.anim_preview = gr.Image(label="animation", type="filepath", format="gif", height=256)
            self.anim_file = gr.File(label="download the GIF")

    # -- rendering ---------------------------------------------------------------------------

    @property
    def view_inputs(self) -> list:
        return [self.seed, self.psi, *self.controls.inputs]

    def draw(self, session: str | None, view: tuple, start: float) -> Drawn:
        """One view (the values of :attr:`view_inputs`) drawn: recompose the changed slices,
        render once, write the PNG; ``start`` (perf_counter seconds) is when the visitor's
        request arrived."""
        seed, psi, *values = view
        with self.services.order.main(session):  # panels wait while it renders
            current = self.controls.read(values)
            request = RenderRequest(current.spec, int(seed), float(psi), current.class_idx)
            rendered = self.services.renders.render(current.toonifier, request)
            encoding = time.perf_counter()
            label = current.spec.describe()
            png = png_bytes(shown(rendered.image))
            path = self.services.files.store(png, f"blend-{label}.png")
        done = time.perf_counter()
        waited = (encoding - start) * 1e3 - rendered.render_ms
        text = timing_text(waited, rendered.render_ms, (done - encoding) * 1e3, label, rendered.batch)
        return Drawn(path, text, label, png)

    @user_errors
    def render_blend(self, request: gr.Request, seed, psi, *values):
        """The main image: the drawing the sliders' direct path made for this view (or is
        making), else drawn now."""
        start = time.perf_counter()
        if not values[0]:  # no pair loaded: the page says so in its status line
            return {self.blend: None, self.timing: ""}
        session = session_of(request)
        drawing = self.previews.drawing(session, (seed, psi, *values), start)
        if drawing is None:  # the page already shows a newer move; its panels follow that one
            return gr.skip()
        path, text = drawing
        # The panels follow this event: its ticket is the newest, whoever drew the image.
        return {self.blend: path, self.timing: text, self.ticket: self.services.order.stamp(session)}

    def explain_failure(self, seed, psi, *values):
        """After a failed main render, the note under the image: the user's mistake (a class out of range,
        a missing pair), else a line pointing at the server log, where the cause was written
        (once, by render_blend: this step logs nothing). The next drawn blend clears it."""
        try:
            if values[0]:
                self.controls.read(values)
        except USER_ERRORS as exc:
            return note_markdown(friendly(exc))
        return note_markdown("the blend could not be rendered: the server log says why")

    @user_errors
    def render_parents(self, request: gr.Request, ticket, shown, seed, psi, *values):
        """base | transfer for this seed: from the cache, and only sent when they changed."""
        if not values[0] or not self.services.order.panel_turn(session_of(request), ticket, first=True):
            return gr.skip()
        current = self.controls.read(values)
        key = (tuple(values[0]), int(seed), float(psi), current.class_idx)
        if shown == repr(key):
            return gr.skip()
        base, transfer = self.services.parents.render(key, current.toonifier, seed, psi, current.class_idx)
        files = self.services.files
        return {self.base: files.png(base, "base.png"), self.transfer: files.png(transfer, "transfer.png"),
                self.parents_shown: repr(key)}

    @user_errors
    def grid_after_change(self, request: gr.Request, ticket, follows, seed, psi, *values):
        """The grid after the main image, when it is set to follow every change (else it is
        cleared rather than left showing an older blend)."""
        if not follows:
            return None
        return self.render_grid(request, ticket, seed, psi, *values)

    @user_errors
    def render_grid(self, request: gr.Request, ticket, seed, psi, *values):
        """The next seeds with this blend, one tile per engine hold; dropped when stale."""
        session = session_of(request)
        if not values[0] or not self.services.order.panel_turn(session, ticket, first=True):
            return gr.skip()
        current = self.controls.read(values)
        tiles = []
        for s in range(int(seed) + 1, int(seed) + 1 + GRID_SEEDS):
            if not self.services.order.panel_turn(session, ticket):
                return gr.skip()
            with current.toonifier.engine.session(current.spec) as G:
                tiles.append(render_seed(G, s, psi, current.class_idx, TILE_SIZE))
        return {self.grid: self.services.files.png(grid_image(tiles), "grid.png")}

    # -- exports and animation ---------------------------------------------------------------

    def _export(self, suffix: str, request, values):
        current = self.controls.read(values)
        template = values[len(self.controls.inputs)] if suffix == ".pkl" else None
        return export_blend(current.toonifier.G_base, current.toonifier.G_transfer, current.spec,
                            suffix, self.services.exports, session_of(request),
                            template=getattr(template, "name", template) or None)

    @noted("export")
    def export_as_pkl(self, request: gr.Request, *values):
        return self._export(".pkl", request, values)

    @noted("export")
    def export_as_pt(self, request: gr.Request, *values):
        return self._export(".pt", request, values)

    @noted("export")
    def export_as_safetensors(self, request: gr.Request, *values):
        return self._export(".safetensors", request, values)

    @noted("animation")
    def animation(self, request: gr.Request, kind, seed, psi, *values):
        from ..animate import save_gif, sweep_frames, sweep_specs, walk_frames
        current = self.controls.read(values)
        engine, what = current.toonifier.engine, ANIMATIONS[kind]
        if what == "walk":
            seeds = [int(seed) + i for i in range(4)]
            frames = walk_frames(engine, current.spec, seeds, steps=8, psi=float(psi),
                                 class_idx=current.class_idx)
            name = f"walk-{seeds[0]}-{seeds[-1]}-{current.spec.describe()}.gif"
        else:
            specs = sweep_specs(what, engine.resolutions, 12)
            frames = sweep_frames(engine, specs, int(seed), psi=float(psi), class_idx=current.class_idx)
            name = f"sweep-{what}-seed{int(seed)}.gif"
        path = self.services.exports.path_for(session_of(request), name)
        save_gif(frames, path, fps=8 if what == "swap" else 12, min_size=MIN_SAVED_SIZE)
        return str(path), str(path)

    # -- wiring ------------------------------------------------------------------------------

    def on_pair(self, key, toonifier) -> dict:
        return {self.base: None, self.blend: None, self.transfer: None, self.grid: None,
                self.grid_follows: toonifier.G_base.img_resolution <= GRID_FOLLOWS_UP_TO,
                self.parents_shown: None, self.exported: gr.update(value=None, visible=False),
                self.export_note: "", self.anim_note: "", self.blend_note: "",
                self.template_row: gr.update(visible=not base_is_pickle(toonifier.G_base)),
                self.export_pkl: gr.update(value=pkl_label(base_is_pickle(toonifier.G_base))),
                self.export_pt: gr.update(**pt_button(toonifier.G_base))}

    @property
    def pair_outputs(self) -> list:
        return [self.base, self.blend, self.transfer, self.grid, self.grid_follows, self.parents_shown,
                self.exported, self.template_row, self.export_pkl, self.export_pt, self.export_note,
                self.anim_note, self.blend_note]

    def wire(self, demo: gr.Blocks):
        """The main render on every change that alters the blend; returns its event so panels
        of other tabs can follow it."""
        main = gr.on([demo.load, self.seed.change, self.psi.change, *self.controls.triggers],
                     self.render_blend, self.view_inputs, [self.blend, self.timing, self.ticket],
                     trigger_mode="always_last", show_progress="hidden", show_progress_on=QUIET,
                     api_name="render_blend", queue=False,  # the page: one round trip, no queue messages
                     concurrency_limit=None)  # API callers come through the queue: the limit is RenderQueue's
        self.previews.wire(demo)
        # A queue=False event's gr.Error reaches no toast, so a failed render is explained by a
        # queued step that finds the same reason again (without rendering).
        main.failure(self.explain_failure, self.view_inputs, self.blend_note, show_progress="hidden",
                     show_progress_on=QUIET, api_name=False)
        # A drawn blend clears that note in the page itself (no second round trip per move).
        main.success(None, None, self.blend_note, js="() => ''", api_name=False)
        self.new_seed.click(random_seed, None, self.seed, api_name=False)
        export_inputs = [*self.controls.inputs, self.template]
        for button, handler, name in ((self.export_pkl, self.export_as_pkl, "export_pkl"),
                                      (self.export_pt, self.export_as_pt, "export_pt"),
                                      (self.export_st, self.export_as_safetensors, "export_safetensors")):
            exported = button.click(handler, export_inputs, self.exported, api_name=name)
            exported.success(reveal, None, self.exported, api_name=False)
            show_note(exported, self.services.notes, "export", self.export_note)
        animated = self.make_anim.click(self.animation, [self.anim_kind, self.seed, self.psi, *self.controls.inputs],
                                        [self.anim_preview, self.anim_file], api_name="animation")
        animated.success(reveal, None, self.anim_row, api_name=False)
        show_note(animated, self.services.notes, "animation", self.anim_note)
        return main

    def wait_for_blend_image(self, event):
        """A step in the page (no server call) that lets the blend image load first."""
        return event.then(None, None, None, js=AFTER_BLEND_SHOWN_JS, api_name=False)

    def follow(self, event):
        """Parents (when they changed), then the grid, after the main image."""
        inputs = [self.ticket, self.parents_shown, *self.view_inputs]
        event = event.then(self.render_parents, inputs, [self.base, self.transfer, self.parents_shown],
                           show_progress="hidden", show_progress_on=QUIET, api_name="render_parents")
        self.draw_grid.click(self.render_grid, [gr.State(None), *self.view_inputs], [self.grid],
                             show_progress="minimal", api_name="render_grid")
        return event.then(self.grid_after_change, [self.ticket, self.grid_follows, *self.view_inputs],
                          [self.grid], show_progress="minimal", api_name=False)


def random_seed() -> int:
    import random
    return random.randrange(2 ** 31)
