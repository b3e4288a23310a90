"""The default pair that ships in models/ (models/MODEL_CARD.md): a 128 px base distilled from
FFHQ's StyleGAN2 (through MobileStyleGAN) that keeps FFHQ's own z → w, and a transfer
fine-tuned from it on 3D emoji heads. Checked here: it speaks FFHQ's latent language, draws the
held-out teacher faces it never saw, shows the paper's effect at toonify's swap (16 px), and
toonify keeps a person recognisable. bench/ has the full-size figures (bench/RESULTS.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import app
import stylemix
from stylemix.project import psnr
from stylemix.render import render_seeds
from measures import measure_swap_effect
from stylemix.toonify import default_toonify_spec, toonify_r_swap

ROOT = Path(__file__).resolve().parents[1]
SEEDS = list(range(32))
HELDOUT = sorted((ROOT / "assets" / "photos").glob("heldout_*.png"))

# FFHQ StyleGAN2's w for seed 0 (z = RandomState(0).randn(512)), first five values, as the
# teacher's own mapping network computes it (data/ffhq_teacher/train/chunk_00000.npz, OpenVINO).
TEACHER_W_SEED0 = [0.1941408, -0.13804258, 1.1571978, 0.03174952, 0.18743555]


@pytest.fixture(scope="module")
def pair():
    return stylemix.load_generator(app.DEFAULT_BASE), stylemix.load_generator(app.DEFAULT_TRANSFER)


def z_of(seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.RandomState(seed).randn(1, 512).astype(np.float32))


def test_default_pair_is_small_and_ffhq_shaped(pair):
    base, transfer = pair
    stylemix.check_compatible(base, transfer)
    assert base.img_resolution == 128 and base.z_dim == base.w_dim == 512
    assert base.mapping.num_layers == 8
    for path in (app.DEFAULT_BASE, app.DEFAULT_TRANSFER):
        assert Path(path).stat().st_size < 20 * 2**20


def test_base_maps_z_to_ffhq_w(pair):
    """Same z, same w as NVIDIA's FFHQ StyleGAN2: the base speaks FFHQ's latent language."""
    w = pair[0].mapping(z_of(0), None, truncation_psi=1)[0, 0]
    assert torch.allclose(w[:5], torch.tensor(TEACHER_W_SEED0), atol=1e-4), w[:5]


def test_transfer_was_fine_tuned_from_base(pair):
    """Fine-tuning moves the weights, but not so far that they become unrelated."""
    base, transfer = pair
    b = torch.cat([p.flatten() for p in base.synthesis.parameters()])
    t = torch.cat([p.flatten() for p in transfer.synthesis.parameters()])
    cosine = F.cosine_similarity(b, t, dim=0).item()
    assert 0.5 < cosine < 0.9999


def photo_at(path: Path, resolution: int) -> torch.Tensor:
    """A 256 px teacher face box-filtered to ``resolution`` (as the training pairs were), [-1, 1]."""
    photo = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)
    return F.adaptive_avg_pool2d(photo[None].float(), resolution) / 127.5 - 1


def held_out_drawings(base) -> list[torch.Tensor]:
    """The base's drawing of each held-out seed's w (w from its mapping: FFHQ's), [-1, 1]."""
    return [base.synthesis(base.mapping(z_of(int(path.stem.split("_")[1])), None, truncation_psi=1),
                           noise_mode="const") for path in HELDOUT]


def test_base_draws_held_out_teacher_faces(pair):
    """Teacher faces of seeds the base never saw (1,000,000+), drawn from the same w: far nearer
    than a generic face (the mean w) and than another seed's face."""
    base = pair[0]
    assert len(HELDOUT) >= 4
    mean_face = base.synthesis(base.mapping.w_avg.reshape(1, 1, -1).repeat(1, base.num_ws, 1),
                               noise_mode="const")
    photos = [photo_at(path, base.img_resolution) for path in HELDOUT]
    drawn = held_out_drawings(base)
    own = [psnr(d, photo) for d, photo in zip(drawn, photos)]
    generic = [psnr(mean_face, photo) for photo in photos]
    other = [psnr(drawn[(i + 1) % len(drawn)], photo) for i, photo in enumerate(photos)]
    assert np.mean(own) > 14.0, own   # 256 held-out faces: 16.2 dB (bench/heldout_teacher.py)
    assert np.mean(own) > np.mean(generic) + 2 and np.mean(own) > np.mean(other) + 2, (own, generic, other)


def test_dlib_recognises_held_out_people_in_the_base(pair):
    """dlib's face-recognition descriptors (same person below 0.6): the base's drawing of each
    held-out seed's w is a face, and nearer its own teacher face than other people's on average
    (not for every seed: the soft drawings drift toward a generic face). A photo goes through
    projection with a W+ phase, which gets much closer: bench/toonify_identity.py, figures in
    bench/RESULTS.md."""
    from stylemix.identity import face_descriptor
    from stylemix.render import to_uint8
    base = pair[0]
    photos = [face_descriptor(Image.open(path).convert("RGB")) for path in HELDOUT]
    assert all(d is not None for d in photos)
    distances = []
    for path, image in zip(HELDOUT, held_out_drawings(base)):
        drawn = Image.fromarray(to_uint8(image)[0]).resize((256, 256), Image.LANCZOS)
        d = face_descriptor(drawn)
        assert d is not None, f"no face found in the base's drawing of {path.name}"
        distances.append([float(np.linalg.norm(d - p)) for p in photos])
    distances = np.array(distances)
    own, others = np.diag(distances), distances[~np.eye(len(HELDOUT), dtype=bool)]
    assert own.mean() < others.mean() - 0.05, distances


def test_the_pair_renders_varied_images(pair):
    for G in pair:
        images = render_seeds(G, SEEDS[:8], psi=0.7)
        assert torch.isfinite(images).all()
        assert images.std(dim=0).mean() > 0.05  # different seeds, different faces
    base_img, transfer_img = (render_seeds(G, SEEDS[:8], psi=0.7) for G in pair)
    assert (base_img - transfer_img).abs().mean() > 0.05


def test_toonify_swap_takes_structure_low_and_rendering_high(pair):
    """The paper's effect at its analogue for a 128 px pair, the swap toonify uses (16 px), over
    64 seeds: layout follows the transfer for 100 % of them and rendering the base for 92 % on
    the shipped pair (bench/swap_effect.py; issue 26 asks for 80 % each); mean distances 0.144
    against 0.298 (layout) and 0.0169 against 0.0390 (rendering). Asserted per seed near the
    measured shares (92 % is 59 of 64 seeds; 90 % is 58), and on the mean distances' ratios
    (measured 0.48 and 0.43). The transfer's head phase kept real faces outside the mouth, so its
    layout lies nearer the base's than the previous transfer's did (0.535 there)."""
    r_swap = toonify_r_swap(pair[0])
    assert r_swap == 16
    effect = measure_swap_effect(*pair, r_swap, list(range(64)))
    assert effect.coarse_wins >= 0.95, effect.report()
    assert effect.fine_wins >= 0.90, effect.report()
    assert effect.coarse_lowT_to_T < 0.6 * effect.coarse_lowB_to_T, effect.report()
    assert effect.fine_lowT_to_B < 0.5 * effect.fine_lowB_to_B, effect.report()


def test_cli_toonify_with_no_blend_option_uses_the_default_pair_and_swap(tmp_path, capsys):
    """`stylemix toonify PHOTO -o OUT.png`: the shipped pair with the blend its transfer file
    recommends — 4–32 px from the transfer, 64 px up from base (said) —, a 256 px lossless PNG."""
    from stylemix.cli import main
    photo = ROOT / "assets" / "photos" / HELDOUT[0].name
    out = tmp_path / "toon.png"
    assert main(["toonify", str(photo), "--steps", "20", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "res4-1_8-1_16-1_32-1, the one this transfer file recommends: 4, 8, 16, 32 px at α 1, the rest from base" in printed
    G_base, G_transfer = (stylemix.load_generator(p) for p in (app.DEFAULT_BASE, app.DEFAULT_TRANSFER))
    assert default_toonify_spec(G_base, G_transfer).alphas([4, 8, 16, 32, 64, 128]) == {
        4: 1.0, 8: 1.0, 16: 1.0, 32: 1.0, 64: 0.0, 128: 0.0}
    generic = default_toonify_spec(G_base).alphas([4, 8, 16, 32, 64, 128])  # a pair without one
    assert (generic[16], generic[32]) == (0.75, 0.25)
    image = Image.open(out)
    assert image.format == "PNG" and image.size == (256, 256)
