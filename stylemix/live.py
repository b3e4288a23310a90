"""Live toonify: webcam frames → tracked face → encoder → the current blend, one frame at a time.

Detection is the slow part of alignment (dlib's HOG detector scans the whole frame), so the
face is *tracked*: the 68-point predictor runs on the box around the previous frame's landmarks,
and the detector runs again only when there is no face yet, when the tracked landmarks stop
looking like a face in that box, or every ``redetect_every`` frames as a guard against drift.
Every frame is aligned the FFHQ way (:func:`stylemix.align.align_face`), encoded by the pair's
encoder (one forward pass) and drawn by the blend engine.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .align import _dlib_models, align_face, detect_faces
from .blend import BlendSpec
from .errors import StylemixError



def _centre(points: np.ndarray) -> np.ndarray:
    return (points.min(0) + points.max(0)) / 2


class FaceTracker:
    """68 landmarks per frame of one video stream (one tracker per viewer)."""

    def __init__(self, redetect_every: int = 60):
        self.redetect_every = redetect_every
        self._points: np.ndarray | None = None
        self._anchor = None   # (detector box, landmark centre, landmark width) at the last detection
        self._since_detect = 0
        self.detections = 0   # how often the detector ran (tests and the fps readout)

    def reset(self) -> None:
        self._points = None

    def _track(self, frame: np.ndarray) -> np.ndarray | None:
        import dlib
        # The predictor fills whatever box it is given, so it gets the detector's own box moved
        # with the face (a box drawn from the landmarks would grow or shrink frame by frame).
        box, centre, width = self._anchor
        dx, dy = np.rint(_centre(self._points) - centre).astype(int)
        left, top, right, bottom = box
        shape = _dlib_models()["predictor"](frame, dlib.rectangle(left + dx, top + dy, right + dx, bottom + dy))
        pts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
        old_w, new_w = width, np.ptp(pts[:, 0])
        inside = (pts[:, 0].min() >= 0 and pts[:, 1].min() >= 0 and
                  pts[:, 0].max() < frame.shape[1] and pts[:, 1].max() < frame.shape[0])
        # Lost: the predictor's shape collapsed, blew up or left the frame.
        if not inside or not 0.8 < new_w / max(old_w, 1e-6) < 1.25:
            return None
        return pts

    def landmarks(self, frame: np.ndarray) -> np.ndarray | None:
        """(68, 2) landmarks in frame pixels, or None when there is no face."""
        pts = None
        if self._points is not None and self._since_detect < self.redetect_every:
            pts = self._track(frame)
            self._since_detect += 1
        if pts is None:
            faces = detect_faces(Image.fromarray(frame))
            self.detections += 1
            self._since_detect = 0
            pts = faces[0].landmarks if faces else None
            if pts is not None:
                self._anchor = (faces[0].box, _centre(pts), np.ptp(pts[:, 0]))
        self._points = pts
        return pts


@dataclass
class LiveFrame:
    toon: np.ndarray | None     # (R, R, C) uint8, or None without a face
    aligned: Image.Image | None
    seconds: float


class LiveToonifier:
    """Toonifies a stream of frames with one pair (a :class:`stylemix.toonify.Toonifier` that
    has an encoder). Frames that arrive while the previous one is still being drawn are dropped
    (``frame`` returns None at once), never queued: a live view wants the newest frame."""

    def __init__(self, pair, tracker: FaceTracker | None = None):
        if pair.encoder is None:
            raise StylemixError("live toonify needs the pair's encoder (train one: stylemix "
                                "train-encoder --base BASE -o RUN)")
        self.pair, self.tracker = pair, tracker or FaceTracker()
        self._busy = threading.Lock()
        self.dropped = 0

    def frame(self, frame: np.ndarray, spec: BlendSpec) -> LiveFrame | None:
        """One RGB frame (H, W, 3) uint8 → the toon of its face with ``spec``; None when the
        previous frame is still in flight (dropped)."""
        if not self._busy.acquire(blocking=False):
            self.dropped += 1
            return None
        try:
            start = time.perf_counter()
            frame = np.ascontiguousarray(frame[..., :3], dtype=np.uint8)
            pts = self.tracker.landmarks(frame)
            if pts is None:
                return LiveFrame(None, None, time.perf_counter() - start)
            res = self.pair.G_base.img_resolution
            aligned = align_face(Image.fromarray(frame), pts, output_size=res).image
            latent = self.pair.encode(aligned)
            toon = np.asarray(self.pair.render(latent, spec))
            return LiveFrame(toon, aligned, time.perf_counter() - start)
        finally:
            self._busy.release()
