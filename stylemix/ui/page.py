"""The page's ``gr.Blocks``, whose app also serves routes of stylemix's own."""

from __future__ import annotations

import gradio as gr


class PageBlocks(gr.Blocks):
    """A ``gr.Blocks`` whose app, however it is launched, also serves the routes given to
    :meth:`add_routes` (FastAPI ``APIRoute`` objects), registered once when the app is built."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.extra_routes: list = []

    def add_routes(self, routes: list) -> None:
        self.extra_routes.extend(routes)

    def app_kwargs(self, app_kwargs: dict | None = None) -> dict:
        """``app_kwargs`` for Gradio's FastAPI app with this page's routes added (for
        ``gr.mount_gradio_app(app, demo, path, app_kwargs=demo.app_kwargs())``)."""
        app_kwargs = dict(app_kwargs or {})
        app_kwargs["routes"] = [*app_kwargs.get("routes", []), *self.extra_routes]
        return app_kwargs

    def launch(self, *args, app_kwargs: dict | None = None, **kwargs):
        return super().launch(*args, app_kwargs=self.app_kwargs(app_kwargs), **kwargs)
