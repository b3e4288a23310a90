"""The Toonify tab: a photo → the aligned face at once → projection into base (progress bar) →
reconstruction and toonified result; slider moves re-render the cached latent.

The photo reaches the handler as the uploaded file itself (``preprocess=False``) and is opened
by the library's loader, so a bad file gets the same one-line reason the CLI gives.
"""

from __future__ import annotations

import gradio as gr

from ..errors import ImageInputError
from ..project import ProjectionConfig
from ..render import save_image
from .controls import Controls
from .images import BASE_ONLY, shown, to_image
from .services import QUIET, Services, reveal, session_of, user_errors


def photo_path(payload) -> str:
    """The uploaded file behind an unprocessed gr.Image value (a FileData dict or a path)."""
    if payload is None:
        raise ImageInputError("upload a photo first")
    path = payload.get("path") if isinstance(payload, dict) else getattr(payload, "path", payload)
    if not path:
        raise ImageInputError("the photo did not arrive; upload it again")
    return str(path)


class ToonifyTab:
    """Built inside ``gr.Tab("Toonify")``."""

    def __init__(self, services: Services, controls: Controls):
        self.services, self.controls = services, controls
        self.face = gr.State(None)    # the aligned face (PIL) of this session's photo
        self.latent = gr.State(None)  # its projection
        with gr.Row(equal_height=True):
            with gr.Column(scale=1, min_width=240):
                self.photo = gr.Image(label="photo", type="filepath", sources=["upload", "webcam"],
                                      height=240, elem_id="photo")
                self.steps = gr.Slider(20, 1000, value=ProjectionConfig.steps, step=10, elem_id="photo-steps",
                                       label="projection steps (W; then ¾ as many per layer, W+)")
                self.go = gr.Button("Toonify", variant="primary", elem_id="toonify")
            self.aligned, self.reconstruction, self.toon = (
                gr.Image(label=label, type="numpy", format="png", height=320, elem_id=f"toon-{name}",
                         scale=1, min_width=200)
                for name, label in (("aligned", "aligned face"), ("reconstruction", "reconstruction (base)"),
                                    ("toon", "toonified (blend)")))
        self.download = gr.File(label="download the result (PNG)", elem_id="toon-download", visible=False)

    def _save(self, image, label: str, request) -> str:
        path = self.services.exports.path_for(session_of(request), f"toonified-{label}.png")
        save_image(to_image(shown(image)), path)
        return str(path)

    @user_errors
    def align_photo(self, photo, *values):
        """Step 1, at once: open the photo and align its largest face (a bad file or a photo
        without a face stops here, with its one-line reason)."""
        current = self.controls.read(values)
        face = current.toonifier.align(photo_path(photo))[0]
        if face.faces_in_photo > 1:
            gr.Info(f"The photo has {face.faces_in_photo} faces; toonifying the largest.")
        return {self.face: face.image, self.latent: None, self.aligned: shown(face.image),
                self.reconstruction: None, self.toon: None,
                self.download: gr.update(value=None, visible=False)}

    @user_errors
    def project_face(self, request: gr.Request, progress=gr.Progress(), face=None,
                     steps=ProjectionConfig.steps, *values):
        """Step 2: project the aligned face (with a progress bar), render it with base and blend."""
        if face is None:
            raise ImageInputError("upload a photo first")
        current = self.controls.read(values)
        toonifier = current.toonifier
        config = ProjectionConfig(steps=int(steps))
        every = max(1, (config.steps + config.w_plus_steps) // 50)  # ~50 progress updates: each one costs a round trip

        def report(step, _total, _loss):
            if step % every == 0 or step == _total:
                progress((step, _total), desc="projecting into the base model")

        result = toonifier.project(face, config, progress=report,
                                   class_idx=current.class_idx)
        base_img = toonifier.render(result, BASE_ONLY)
        toon_img = toonifier.render(result, current.spec)
        return {self.latent: result, self.reconstruction: shown(base_img), self.toon: shown(toon_img),
                self.download: self._save(toon_img, current.spec.describe(), request)}

    @user_errors
    def rerender(self, request: gr.Request, ticket, latent, *values):
        """The projected face with the current blend (no projection again)."""
        if latent is None or not values[0]:
            return gr.skip()
        if not self.services.order.panel_turn(session_of(request), ticket, first=True):
            return gr.skip()
        current = self.controls.read(values)
        if latent.ws.shape[1] != current.toonifier.G_base.num_ws:
            return gr.skip()
        toon_img = current.toonifier.render(latent, current.spec)
        return {self.toon: shown(toon_img), self.download: self._save(toon_img, current.spec.describe(), request)}

    def on_pair(self, key, toonifier) -> dict:
        return {self.face: None, self.latent: None, self.aligned: None, self.reconstruction: None,
                self.toon: None, self.download: gr.update(value=None, visible=False)}

    @property
    def pair_outputs(self) -> list:
        return [self.face, self.latent, self.aligned, self.reconstruction, self.toon, self.download]

    def wire(self) -> None:
        # Aligning shows no progress (and so no error badge: a bad photo's reason is the toast).
        aligned = self.go.click(
            self.align_photo, [self.photo, *self.controls.inputs],
            [self.face, self.latent, self.aligned, self.reconstruction, self.toon, self.download],
            preprocess=False, show_progress="hidden", show_progress_on=QUIET, api_name="align_photo")
        aligned.success(self.project_face, [self.face, self.steps, *self.controls.inputs],
                        [self.latent, self.reconstruction, self.toon, self.download],
                        show_progress_on=[self.reconstruction, self.toon], api_name="run_toonify").success(
            reveal, None, self.download, api_name=False)
        gr.Button("re-render toon", visible=False).click(
            self.rerender, [gr.State(None), self.latent, *self.controls.inputs], [self.toon, self.download],
            api_name="rerender_toon")

    def follow(self, event, ticket):
        """Re-render the projected face after the main image."""
        return event.then(self.rerender, [ticket, self.latent, *self.controls.inputs],
                          [self.toon, self.download], show_progress="minimal", show_progress_on=[self.toon],
                          api_name=False)
