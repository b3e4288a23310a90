"""The Toonify tab: a photo → the aligned face at once → its latent in base → reconstruction and
toonified result; slider moves re-render the cached latent. A live mode toonifies the webcam.

With the pair's encoder the first result comes from one forward pass (well under a second),
then refined results stream in as refinement steps finish (Stop keeps the latest); without one,
the face is projected from the mean w with a progress bar. The photo reaches the handler as the
uploaded file itself (``preprocess=False``) and is opened by the library's loader, so a bad file
gets the same one-line reason the CLI gives.
"""

from __future__ import annotations

import threading

import gradio as gr

from ..errors import ImageInputError
from ..live import LiveToonifier
from ..lru import LRU
from ..project import ProjectionConfig, ProjectionResult
from ..render import save_image
from ..toonify import DEFAULT_REFINE_STEPS, refinement_config
from .controls import Controls
from .images import BASE_ONLY, shown, to_image
from .pairs import friendly
from .services import QUIET, USER_ERRORS, Services, log, noted, reveal, session_of, show_note, user_errors


def photo_path(payload) -> str:
    """The uploaded file behind an unprocessed gr.Image value (a FileData dict or a path)."""
    if payload is None:
        raise ImageInputError("upload a photo first")
    path = payload.get("path") if isinstance(payload, dict) else getattr(payload, "path", payload)
    if not path:
        raise ImageInputError("the photo did not arrive; upload it again")
    return str(path)


STEPS_LABEL = {True: "refinement steps after the encoder (0: the encoder alone)",
               False: "projection steps (W; then ¾ as many per layer, W+)"}
LIVE_VIEWERS = 64   # live viewers whose face tracker is kept (least recent out)
REFRESH_S = 1.0  # seconds between two streamed results of a running refinement
# The last photo's images, cleared in the browser the moment a new photo lands: in order with
# the visitor's clicks, so a late clear never wipes the results of a Toonify pressed at once.
FORGET_IMAGES_JS = "() => [null, null, null]"
NO_ENCODER = ("This pair has no encoder, so each photo is optimised from the mean w (slow). "
              "Train one: `stylemix train-encoder --base BASE -o RUN`.")


class _Stopped(Exception):
    """The visitor pressed Stop (or left): the refinement ends at its current step."""


def many_faces(count: int) -> str:
    return f"{count} faces in the photo: the largest is toonified."


class ToonifyTab:
    """Built inside ``gr.Tab("Toonify")``."""

    def __init__(self, services: Services, controls: Controls, pair=None):
        """``pair``: the Toonifier the page opens on (its encoder decides the steps slider)."""
        self.services, self.controls = services, controls
        encoder = pair is not None and pair.encoder is not None
        self.face = gr.State(None)    # the aligned face (PIL) of this session's photo
        self.latent = gr.State(None)  # its projection
        with gr.Row(equal_height=True):
            with gr.Column(scale=1, min_width=240):
                self.photo = gr.Image(label="photo", type="filepath", sources=["upload", "webcam"],
                                      height=240, elem_id="photo")
                # The button right under the photo: on a 1400×900 window it stays in view.
                with gr.Row():
                    self.go = gr.Button("Toonify", variant="primary", elem_id="toonify")
                    self.stop = gr.Button("Stop", elem_id="toonify-stop", variant="secondary")
                # The photo's problem, beside it, until the next photo: a toast fades, this stays.
                self.photo_note = gr.Markdown("", elem_id="photo-note")
                self.steps = gr.Slider(0, 200 if encoder else 1000, step=10, elem_id="photo-steps",
                                       value=DEFAULT_REFINE_STEPS if encoder else ProjectionConfig.steps,
                                       label=STEPS_LABEL[encoder])
                self.encoder_note = gr.Markdown("" if encoder or pair is None else NO_ENCODER,
                                                elem_id="encoder-note")
            self.aligned, self.reconstruction, self.toon = (
                gr.Image(label=label, type="numpy", format="png", height=320, elem_id=f"toon-{name}",
                         scale=1, min_width=200)
                for name, label in (("aligned", "aligned face"), ("reconstruction", "reconstruction (base)"),
                                    ("toon", "toonified (blend)")))
        self.download = gr.File(label="download the result (PNG)", elem_id="toon-download", visible=False)
        with gr.Accordion("Live: toonify your webcam", open=False, elem_id="live"):
            with gr.Row():
                self.camera = gr.Image(label="webcam", sources=["webcam"], streaming=True, type="numpy",
                                       height=240, elem_id="live-camera")
                self.live_toon = gr.Image(label="live toon (current blend)", type="numpy", height=240,
                                          format="jpeg",  # JPEG: encodes fast enough for a live view
                                          elem_id="live-toon")
            self.live_status = gr.Markdown("" if encoder or pair is None else NO_ENCODER, elem_id="live-status")
        # Each viewer's LiveToonifier (face tracker + frame dropping), by session: frames of one
        # stream arrive as concurrent events, so it cannot travel in gr.State (a frame sent
        # before the first one returned would start a tracker of its own).
        self._live: LRU[str | None, LiveToonifier] = LRU(LIVE_VIEWERS)

    def _toon_outputs(self, toon_img, label: str, request) -> dict:
        """The toon as the page shows it and as its download (the same shown pixels, resampled
        and encoded once for each file)."""
        toon = shown(toon_img)
        path = self.services.exports.path_for(session_of(request), f"toonified-{label}.png")
        save_image(to_image(toon), path)
        return {self.toon: self.services.files.png(toon, "toon.png"), self.download: str(path)}

    def forget_results(self) -> list:
        """On a new photo (or none), on the server: the last photo's latent (so a slider move
        re-renders nothing) and its download. Not the aligned face: only the Toonify chain reads
        it, right after its own align step writes it, and this unqueued step may land after a
        Toonify pressed at once. The images go in the browser (FORGET_IMAGES_JS), at once."""
        return [None, gr.update(value=None, visible=False)]

    def check_photo(self, photo, *values):
        """On upload: open and align the photo at once, so a file that is not a photo, or a
        photo without a face, is named beside it before Toonify is pressed (and the note goes
        when a good photo replaces it)."""
        if photo is None:
            return ""
        try:
            current = self.controls.read(values)
            face = current.toonifier.align(photo_path(photo))[0]
        except USER_ERRORS as exc:
            log.warning("check_photo: %s", friendly(exc))  # one line in the server log, as every mistake
            return f"⚠ {friendly(exc)}"
        return many_faces(face.faces_in_photo) if face.faces_in_photo > 1 else ""

    @noted("photo")
    def align_photo(self, request: gr.Request, photo, *values):
        """Step 1, at once: open the photo and align its largest face (a bad file or a photo
        without a face stops here, with its one-line reason)."""
        current = self.controls.read(values)
        face = current.toonifier.align(photo_path(photo))[0]
        if face.faces_in_photo > 1:
            self.services.notes.put(session_of(request), "photo", many_faces(face.faces_in_photo))
        return {self.face: face.image, self.latent: None,
                self.aligned: self.services.files.png(shown(face.image), "aligned.png"),
                self.reconstruction: None, self.toon: None,
                self.download: gr.update(value=None, visible=False)}

    @noted("photo")
    def project_face(self, request: gr.Request, progress=gr.Progress(), face=None,
                     steps=ProjectionConfig.steps, *values):
        """Step 2: the face's latent, then base and blend renders. With an encoder: the
        encoding at once, then a refined result every REFINE_CHUNK steps (a generator: each
        yield reaches the page; Stop keeps the last). Without: projection with a progress bar."""
        if face is None:
            raise ImageInputError("upload a photo first")
        current = self.controls.read(values)
        toonifier = current.toonifier
        if toonifier.encoder is None:
            yield self._shown(self._projected(toonifier, face, int(steps), progress, current), current, request)
            return
        latent = toonifier.project(face, refinement_config(0), init="encoder")
        yield self._shown(latent, current, request)
        if int(steps) > 0:
            yield from self._refined(toonifier, face, int(steps), current, request, latent.ws)

    def _refined(self, toonifier, face, steps: int, current, request, start_ws):
        """The refinement the CLI runs (one schedule of ``steps`` steps), in a worker thread,
        its latest latent shown about every REFRESH_S; Stop (the generator closed) ends it."""
        latest, stop, outcome = {}, threading.Event(), {}

        def seen(step, ws):
            if stop.is_set():
                raise _Stopped()
            latest["ws"] = ws

        def work():
            try:
                outcome["latent"] = toonifier.project(face, refinement_config(steps), init="encoder",
                                                      on_latent=seen)
            except _Stopped:
                pass
            except BaseException as exc:  # raised again below, in the event
                outcome["error"] = exc

        worker = threading.Thread(target=work, name="stylemix-refine", daemon=True)
        worker.start()
        try:
            shown_ws = None
            while worker.is_alive():
                worker.join(REFRESH_S)
                ws = latest.get("ws")
                if worker.is_alive() and ws is not None and ws is not shown_ws:
                    shown_ws = ws
                    yield self._shown(ProjectionResult(ws, init_ws=start_ws), current, request)
        finally:
            stop.set()
        if "error" in outcome:
            raise outcome["error"]
        if "latent" in outcome:
            yield self._shown(outcome["latent"], current, request)

    def _projected(self, toonifier, face, steps: int, progress, current):
        config = ProjectionConfig(steps=max(1, steps))
        every = max(1, (config.steps + config.w_plus_steps) // 50)  # ~50 progress updates: each one costs a round trip

        def report(step, _total, _loss):
            if step % every == 0 or step == _total:
                progress((step, _total), desc="projecting into the base model")

        return toonifier.project(face, config, progress=report, class_idx=current.class_idx, init="mean")

    def _shown(self, latent, current, request) -> dict:
        base_img = current.toonifier.render(latent, BASE_ONLY)
        toon_img = current.toonifier.render_toon(latent, current.spec)
        return {self.latent: latent,
                self.reconstruction: self.services.files.png(shown(base_img), "reconstruction.png"),
                **self._toon_outputs(toon_img, current.spec.describe(), request)}

    def _live_for(self, session: str | None, toonifier) -> LiveToonifier:
        return self._live.get_or_put(session, lambda: LiveToonifier(toonifier),
                                     keep=lambda live: live.pair is toonifier)

    def live_frame(self, request: gr.Request, frame, *values):
        """One webcam frame → its toon with the current blend. A frame that arrives while this
        viewer's previous one is still drawn is dropped (the page keeps the last toon)."""
        if frame is None:
            return gr.skip(), gr.skip()
        try:
            current = self.controls.read(values)
            live = self._live_for(session_of(request), current.toonifier)
            result = live.frame(frame, current.spec)
        except USER_ERRORS as exc:
            return gr.skip(), f"⚠ {friendly(exc)}"
        if result is None:
            return gr.skip(), gr.skip()
        if result.toon is None:
            return gr.skip(), "no face in view"
        status = (f"{1 / max(result.seconds, 1e-3):.0f} frames/s drawn · {live.tracker.detections} "
                  f"detections · {live.dropped} frames dropped")
        return self.services.files.jpeg(shown(result.toon), "live-toon.jpg"), status

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
        toon_img = current.toonifier.render_toon(latent, current.spec)
        return self._toon_outputs(toon_img, current.spec.describe(), request)

    def on_pair(self, key, toonifier) -> dict:
        encoder = toonifier.encoder is not None
        steps = gr.update(label=STEPS_LABEL[encoder], maximum=200 if encoder else 1000,
                          value=DEFAULT_REFINE_STEPS if encoder else ProjectionConfig.steps)
        return {self.face: None, self.latent: None, self.aligned: None, self.reconstruction: None,
                self.toon: None, self.download: gr.update(value=None, visible=False), self.steps: steps,
                self.live_status: "" if encoder else NO_ENCODER, self.encoder_note: "" if encoder else NO_ENCODER,
}

    @property
    def pair_outputs(self) -> list:
        return [self.face, self.latent, self.aligned, self.reconstruction, self.toon, self.download,
                self.steps, self.live_status, self.encoder_note]

    def wire(self) -> None:
        self.photo.upload(self.check_photo, [self.photo, *self.controls.inputs], self.photo_note,
                          preprocess=False, show_progress="hidden", show_progress_on=QUIET, api_name="check_photo")
        self.photo.clear(lambda: "", None, self.photo_note, api_name=False)
        # A new photo (or none): the last photo's images, latent and download go, so nothing on
        # the page belongs to a photo that is no longer there (its aligned face stays: forget_results).
        for event in (self.photo.upload, self.photo.clear):
            event(None, None, [self.aligned, self.reconstruction, self.toon], js=FORGET_IMAGES_JS,
                  queue=False, show_progress="hidden", show_progress_on=QUIET, api_name=False)
            event(self.forget_results, None, [self.latent, self.download], queue=False,
                  show_progress="hidden", show_progress_on=QUIET, api_name=False)
        # Aligning shows no progress (and so no error badge: a bad photo's reason is the toast).
        aligned = self.go.click(
            self.align_photo, [self.photo, *self.controls.inputs],
            [self.face, self.latent, self.aligned, self.reconstruction, self.toon, self.download],
            preprocess=False, show_progress="hidden", show_progress_on=QUIET, api_name="align_photo")
        show_note(aligned, self.services.notes, "photo", self.photo_note)
        running = aligned.success(self.project_face, [self.face, self.steps, *self.controls.inputs],
                                  [self.latent, self.reconstruction, self.toon, self.download],
                                  show_progress_on=[self.reconstruction, self.toon], api_name="run_toonify")
        show_note(running, self.services.notes, "photo", self.photo_note)
        running.success(reveal, None, self.download, api_name=False)
        self.stop.click(None, None, None, cancels=[running], api_name=False)
        self.camera.stream(self.live_frame, [self.camera, *self.controls.inputs],
                           [self.live_toon, self.live_status], stream_every=0.05,
                           concurrency_limit=4, show_progress="hidden", show_progress_on=QUIET,
                           api_name="live_frame")
        gr.Button("re-render toon", visible=False).click(
            self.rerender, [gr.State(None), self.latent, *self.controls.inputs], [self.toon, self.download],
            api_name="rerender_toon")

    def follow(self, event, ticket):
        """Re-render the projected face after the main image."""
        return event.then(self.rerender, [ticket, self.latent, *self.controls.inputs],
                          [self.toon, self.download], show_progress="minimal", show_progress_on=[self.toon],
                          api_name=False)
