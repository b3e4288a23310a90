"""Where the default base + transfer pair lives: ``models/`` in a checkout, or the copy that
``pip install .`` puts inside the package (``stylemix/default_models``), so the CLI and the app
find the same pair whether they run from the repository or from an installed copy."""

from __future__ import annotations

from pathlib import Path

BASE_NAME = "base.safetensors"
TRANSFER_NAME = "transfer.safetensors"
ENCODER_NAME = "encoder.safetensors"
ENCODER_SUFFIX = ".encoder.safetensors"   # BASE.pkl's encoder: BASE.encoder.safetensors beside it

_CHECKOUT_MODELS = Path(__file__).resolve().parents[1] / "models"
_INSTALLED_MODELS = Path(__file__).resolve().parent / "default_models"


def models_dir() -> Path:
    """The folder holding the default pair (the checkout's ``models/`` first)."""
    for folder in (_CHECKOUT_MODELS, _INSTALLED_MODELS):
        if (folder / BASE_NAME).is_file():
            return folder
    return _CHECKOUT_MODELS


def default_base() -> Path:
    """The default base model (FFHQ-latent faces; see models/MODEL_CARD.md)."""
    return models_dir() / BASE_NAME


def default_transfer() -> Path:
    """The default transferred model, fine-tuned from :func:`default_base`."""
    return models_dir() / TRANSFER_NAME


def default_encoder() -> Path:
    """The encoder trained for :func:`default_base` (instant toonify)."""
    return models_dir() / ENCODER_NAME


def encoder_beside(base: str | Path) -> Path | None:
    """The encoder that goes with the base file ``base``, if one is there: the default
    encoder for the default base, else ``STEM.encoder.safetensors`` beside the base."""
    base = Path(base)
    if base.resolve() == default_base().resolve():
        return default_encoder() if default_encoder().is_file() else None
    candidate = base.with_name(base.stem + ENCODER_SUFFIX)
    return candidate if candidate.is_file() else None

