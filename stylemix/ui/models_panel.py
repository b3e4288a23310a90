"""The Models section: pick a pair from ``models/`` or upload two files; every part of the page
then resets to the new pair (each part says how through its ``on_pair``)."""

from __future__ import annotations

import gradio as gr

from ..errors import StylemixError
from .controls import family_note
from .pairs import MODEL_SUFFIXES, check_upload, friendly, list_models, resolve_model
from .services import Services, log, note_markdown

FILE_TYPES = list(MODEL_SUFFIXES)


class ModelsPanel:
    """Built where the page wants the accordion; ``status`` is the page's status line."""

    def __init__(self, services: Services, status: gr.Markdown, open: bool):
        self.services, self.status = services, status
        offered = list_models(services.models_dir)
        with gr.Accordion("Models", open=open):
            with gr.Row(equal_height=True):
                self.pick_base = gr.Dropdown(offered, label="base (from models/)", value=None)
                self.pick_transfer = gr.Dropdown(offered, label="transfer (from models/)", value=None)
                self.load_picked = gr.Button("load this pair")
            with gr.Row(equal_height=True):
                self.up_base = gr.File(label=f"upload base (.pkl .pt .safetensors, ≤ {services.max_upload_mb} MB)",
                                       file_types=FILE_TYPES)
                self.up_transfer = gr.File(label="upload transfer", file_types=FILE_TYPES)
                self.load_uploaded = gr.Button("load the uploaded pair")
            # Why the last load failed, under the controls until the next load: a toast fades.
            self.note = gr.Markdown(elem_id="models-note")

    def load_from_models(self, base, transfer) -> dict:
        return self._load(base, transfer, uploaded=False)

    def load_uploads(self, base, transfer) -> dict:
        return self._load(base, transfer, uploaded=True)

    def _load(self, base, transfer, uploaded: bool) -> dict:
        """Load a pair; on a bad file the page keeps its current pair and says why in one line."""
        try:
            if not (base and transfer):
                raise StylemixError("choose both a base and a transfer model")
            if uploaded:
                base, transfer = (check_upload(p, self.services.max_upload_bytes) for p in (base, transfer))
            else:
                base, transfer = (resolve_model(p, self.services.models_dir) for p in (base, transfer))
            key, toonifier = self.services.cache.load(base, transfer)
        except (StylemixError, OSError) as exc:
            log.warning("load_pair: %s", friendly(exc))
            return {self.status: f"**Not loaded: {friendly(exc)}** (the page keeps the pair it had)",
                    self.note: note_markdown(friendly(exc))}
        G = toonifier.G_base
        updates = {self.status: f"Loaded {base.name} + {transfer.name} ({G.img_resolution} px"
                                + (f", {G.c_dim} classes" if G.c_dim else "")
                                + (", greyscale" if G.img_channels == 1 else "") + ")."
                                + family_note(G), self.note: ""}
        notes = list(getattr(G, "load_notes", [])) + list(getattr(toonifier.G_transfer, "load_notes", []))
        if notes:  # what a loader filled in (e.g. noise maps an old checkpoint lacks)
            updates[self.note] = "ℹ " + " ".join(dict.fromkeys(notes))
        for part in self.parts:
            updates.update(part.on_pair(key, toonifier))
        return updates

    def wire(self, parts) -> None:
        """``parts``: the page's pieces that reset when a pair loads (on_pair, pair_outputs)."""
        self.parts = parts
        outputs = [self.status, self.note] + [c for part in parts for c in part.pair_outputs]
        # Progress on the status line only: the page keeps re-reading every component an event
        # ever showed progress on (see services.QUIET), and a pair load outputs most of the page.
        self.load_picked.click(self.load_from_models, [self.pick_base, self.pick_transfer], outputs,
                               show_progress_on=[self.status], api_name="load_models")
        self.load_uploaded.click(self.load_uploads, [self.up_base, self.up_transfer], outputs,
                                 show_progress_on=[self.status], api_name="load_uploads")
