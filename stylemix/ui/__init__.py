"""Gradio page for stylemix: a thin layer over the library.

One shared :class:`~stylemix.toonify.Toonifier` (and its engine) serves every visitor; each
browser session keeps its own slider values and projected face in Gradio state, and the engine's
lock guarantees no render sees another session's α.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

import gradio as gr
import numpy as np

from .. import formats
from ..blend import BlendSpec, blend, blend_many
from ..channels import block_channels, rank_channels
from ..errors import StylemixError
from ..project import ProjectionConfig
from ..render import make_grid, render_seeds, to_pil, to_uint8
from ..toonify import Toonifier
from .exports import ExportArea
from .pairs import ModelCache, PairCache, check_upload, friendly, list_models, resolve_model

DISPLAY_SIZE = 256  # small models are enlarged with nearest-neighbour to at least this
GRID_SEEDS = 4
PRESETS = ["swap, low from transfer", "swap, low from base", "linear", "smooth ramp"]
ALL_RESOLUTIONS = [2 ** i for i in range(2, 11)]  # one slider each; those of the pair are shown
MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


def enlarge(image, size: int = DISPLAY_SIZE) -> np.ndarray:
    """Nearest-neighbour enlargement to ≥ ``size`` px, so 64 px images stay crisp."""
    arr = np.asarray(image)
    return np.asarray(to_pil(arr, max(1, size // arr.shape[0])))


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


ANIMATIONS = {"sweep α from base to transfer": "alpha", "sweep the swap resolution": "swap",
              "sweep a smooth ramp's centre": "smooth", "walk through 4 seeds with this blend": "walk"}

REGIONS = {"whole image": None, "upper half (eyes, hair)": (0, 0, 1, 0.5),
           "lower half (mouth, chin)": (0, 0.5, 1, 1), "centre (the face)": (0.25, 0.25, 0.75, 0.75),
           "left half": (0, 0, 0.5, 1), "right half": (0.5, 0, 1, 1)}


def parse_channel_list(text: str) -> list[int]:
    """'3, 17 42' → [3, 17, 42]; anything else is a clear error."""
    parts = [p for p in str(text or "").replace(",", " ").split() if p]
    try:
        return sorted({int(p) for p in parts})
    except ValueError:
        raise StylemixError(f"channels must be whole numbers separated by commas, not '{text}'") from None


def toonify_swap(resolutions: list[int]) -> int:
    """Where a page opens: the paper's Toonify swap at 16 px when the pair has it."""
    return 16 if 16 in resolutions[:-1] else resolutions[max(0, len(resolutions) // 2 - 1)]


def preset_alphas(resolutions: list[int], preset: str, r: int, alpha: float, width: float) -> list[float]:
    """Slider values (one per ALL_RESOLUTIONS) for a preset (r: swap resolution or ramp centre)."""
    if preset == PRESETS[0]:
        spec = BlendSpec.swap(r, low="transfer")
    elif preset == PRESETS[1]:
        spec = BlendSpec.swap(r, low="base")
    elif preset == PRESETS[2]:
        spec = BlendSpec.linear(alpha)
    else:
        spec = BlendSpec.smooth(r, width)
    alphas = spec.alphas(resolutions)
    return [round(alphas.get(res, 0.0), 3) for res in ALL_RESOLUTIONS]


MIX_MODELS = 4  # transferred models in the Mix tab: the pair's transfer and up to 3 more


def render_mix(G_base, transfers: list, names: list[str], alphas, seed: int, psi: float):
    """base | mix for one seed: θ = θ_base + Σ α_i,r (θ_i − θ_base), one slider row per model.

    ``alphas`` holds MIX_MODELS rows of one value per ALL_RESOLUTIONS."""
    res = G_base.block_resolutions
    rows = [alphas[i * len(ALL_RESOLUTIONS):(i + 1) * len(ALL_RESOLUTIONS)] for i in range(len(transfers))]
    specs = [spec_from_sliders(res, row, "base") for row in rows]
    mixed = blend_many(G_base, transfers, specs)
    images = [enlarge(to_uint8(render_seeds(G, [int(seed)], psi=float(psi)))[0]) for G in (G_base, mixed)]
    label = " + ".join(f"{name}: {spec.describe()}" for name, spec in zip(names, specs))
    return images, label


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


BASE_ONLY = BlendSpec.linear(0.0)
TRANSFER_ONLY = BlendSpec.linear(1.0, mapping="transfer")


def render_one(toonifier: Toonifier, spec: BlendSpec, seed: int, psi: float) -> np.ndarray:
    """One seed through the shared engine set to ``spec``, enlarged for display."""
    with toonifier.engine.session(spec) as G:
        return enlarge(to_uint8(render_seeds(G, [int(seed)], psi=float(psi)))[0])


def render_triptych(toonifier: Toonifier, seed: int, psi: float, spec: BlendSpec):
    """base | blend | transfer for one seed, as enlarged uint8 images."""
    return [render_one(toonifier, s, seed, psi) for s in (BASE_ONLY, spec, TRANSFER_ONLY)]


def render_grid(toonifier: Toonifier, seed: int, psi: float, spec: BlendSpec) -> np.ndarray:
    seeds = [int(seed) + i for i in range(1, GRID_SEEDS + 1)]
    with toonifier.engine.session(spec) as G:
        tiles = to_uint8(render_seeds(G, seeds, psi=float(psi)))
    size = max(DISPLAY_SIZE // 2, tiles.shape[1])
    return make_grid(np.stack([enlarge(t, size) for t in tiles]), columns=GRID_SEEDS)


def export_blend(G_base, G_transfer, spec: BlendSpec, suffix: str,
                 exports: ExportArea | None = None, session: str | None = None) -> str:
    """Write the blend (atomically) into the session's export folder; the name records the recipe."""
    name = f"stylemix-{spec.describe()}{suffix}"
    path = exports.path_for(session, name) if exports else Path(tempfile.mkdtemp(prefix="stylemix-")) / name
    formats.save(blend(G_base, G_transfer, spec), path)
    return str(path)


def _session(request) -> str | None:
    return getattr(request, "session_hash", None)


def build_demo(base_path, transfer_path, device: str = "cpu", models_dir: Path = MODELS_DIR,
               max_upload_mb: int = 1024, cache: PairCache | None = None,
               exports: ExportArea | None = None, compile: bool = False) -> gr.Blocks:
    """The page; ``base_path``/``transfer_path`` is the pair every new visitor starts on.
    ``compile`` renders through torch.compile (see BlendEngine.compile)."""
    cache = cache or PairCache(device=device, compile=compile)
    models = ModelCache(device=device)
    exports = exports or ExportArea()
    models_dir = Path(models_dir)
    try:
        default_key, default = cache.load(Path(base_path), Path(transfer_path))
        problem = None
    except (StylemixError, OSError) as exc:
        default_key, default = None, None
        problem = (f"Cannot load the model pair: {friendly(exc)}. Start with --base BASE "
                   "--transfer TRANSFER, or load a pair below.")

    def pair(key) -> Toonifier:
        toonifier = cache.get(key)
        if toonifier is None:
            raise gr.Error("Load a model pair first (the Models section).")
        return toonifier

    def slider_updates(resolutions, values=None, labels=None):
        labels = labels or {}
        return [gr.update(visible=r in resolutions, label=labels.get(r, f"{r} px"),
                          **({} if values is None else {"value": v}))
                for r, v in zip(ALL_RESOLUTIONS, values or [None] * len(ALL_RESOLUTIONS))]

    start_res = default.G_base.block_resolutions if default else []
    start_values = preset_alphas(start_res, PRESETS[0], toonify_swap(start_res), 0.5, 0.5) \
        if default else [0.0] * len(ALL_RESOLUTIONS)

    # delete_cache: Gradio's own copies of served files go after an hour, checked every 10 min.
    with gr.Blocks(title="stylemix", analytics_enabled=False, delete_cache=(600, 3600)) as demo:
        gr.Markdown("# stylemix — resolution-dependent GAN blending")
        status = gr.Markdown(f"**{problem}**" if problem else family_note(default.G_base).strip())
        pair_key = gr.State(default_key)
        with gr.Accordion("Models", open=default is None):
            offered = list_models(models_dir)
            with gr.Row():
                pick_base = gr.Dropdown(offered, label="base (from models/)", value=None)
                pick_transfer = gr.Dropdown(offered, label="transfer (from models/)", value=None)
                load_picked = gr.Button("load this pair")
            with gr.Row():
                up_base = gr.File(label=f"upload base (.pkl .pt .safetensors, ≤ {max_upload_mb} MB)",
                                  file_types=[".pkl", ".pt", ".pth", ".safetensors"])
                up_transfer = gr.File(label="upload transfer", file_types=[".pkl", ".pt", ".pth", ".safetensors"])
                load_uploaded = gr.Button("load the uploaded pair")
        gr.Markdown("α per resolution: **0 = base, 1 = transfer**. Low resolutions shape the "
                    "structure (pose, head shape), high ones the texture and rendering.")
        with gr.Row():
            start_labels = slider_labels(default.G_base) if default else {}
            sliders = [gr.Slider(0, 1, value=v, step=0.05, label=start_labels.get(r, f"{r} px"), min_width=80,
                                 visible=r in start_res, elem_id=f"alpha-{r}")
                       for r, v in zip(ALL_RESOLUTIONS, start_values)]
        with gr.Row():
            preset = gr.Dropdown(PRESETS, value=PRESETS[0], label="preset")
            preset_r = gr.Dropdown(ALL_RESOLUTIONS[:-1], value=16, label="swap at / ramp centre (px)")
            preset_alpha = gr.Slider(0, 1, value=0.5, step=0.05, label="linear α")
            preset_width = gr.Slider(0.25, 2, value=0.5, step=0.25, label="ramp width (octaves)")
            apply_preset = gr.Button("apply preset")
            mapping = gr.Radio(["base", "transfer", "blend"], value="base", label="mapping network from")
        channel_pick = gr.State(None)  # {"res", "channels", "alpha"} of this session, or None
        with gr.Accordion("Channels: blend single feature maps of one resolution", open=False):
            gr.Markdown("Find the channels of a resolution that change the picture most when taken "
                        "from the other model (optionally inside one area), then give just those "
                        "their own α. The rest of the block keeps its slider's α.")
            with gr.Row():
                ch_res = gr.Dropdown(start_res, value=start_res[len(start_res) // 2] if start_res else None,
                                     label="resolution (px)")
                ch_region = gr.Dropdown(list(REGIONS), value="whole image", label="measure in")
                ch_rank = gr.Button("rank channels")
            ch_ranking = gr.Markdown()
            with gr.Row():
                ch_list = gr.Textbox(label="channels (e.g. 3, 17, 42)", elem_id="channel-list")
                ch_alpha = gr.Slider(0, 1, value=1, step=0.05, label="their α")
                ch_apply = gr.Button("apply to these channels")
                ch_clear = gr.Button("clear")
            ch_status = gr.Markdown("No channel has its own α.")
        with gr.Tab("Blend"):
            with gr.Row():
                seed = gr.Number(value=0, precision=0, label="seed", minimum=0)
                new_seed = gr.Button("random seed")
                psi = gr.Slider(0, 1.2, value=0.7, step=0.05, label="truncation ψ")
            with gr.Row():
                triptych = [gr.Image(label=n, type="numpy", format="png", elem_id=f"view-{n}")
                            for n in ("base", "blend", "transfer")]
            grid = gr.Image(label=f"blend, the next {GRID_SEEDS} seeds", type="numpy", format="png")
            timing = gr.Markdown(elem_id="timing")
            with gr.Row():
                export_pkl = gr.Button("export .pkl (needs a .pkl base: NVIDIA or TF)")
                export_pt = gr.Button("export .pt (rosinality)")
                export_st = gr.Button("export .safetensors")
                exported = gr.File(label="exported blend")
            with gr.Row():
                anim_kind = gr.Dropdown(list(ANIMATIONS), value=list(ANIMATIONS)[0], label="animation")
                make_anim = gr.Button("make GIF")
                anim_preview = gr.Image(label="animation", type="filepath", format="gif", height=256)
                anim_file = gr.File(label="download the GIF")
        with gr.Tab("Mix several models"):
            gr.Markdown("Blend more than one transferred model into the base, each with its own α "
                        "per resolution: θ = θ_base + Σ α (θ_model − θ_base) — e.g. structure from "
                        "one, colours from another, texture from base. All must be fine-tuned from "
                        "the loaded base. The first row is the loaded pair's transfer model.")
            with gr.Row():
                mix_pick = gr.Dropdown(offered, multiselect=True, max_choices=MIX_MODELS - 1,
                                       label="more models from models/")
                mix_upload = gr.File(file_count="multiple", label="or upload them",
                                     file_types=[".pkl", ".pt", ".pth", ".safetensors"])
                mix_load = gr.Button("use these models")
            mix_keys = gr.State([])  # content hashes of this session's extra models
            mix_status = gr.Markdown()
            mix_rows, mix_sliders = [], []
            for i in range(MIX_MODELS):
                with gr.Row(visible=i == 0) as row:
                    mix_sliders += [gr.Slider(0, 1, value=0, step=0.05, label=f"model {i + 1}: {r} px",
                                              min_width=80, visible=r in start_res)
                                    for r in ALL_RESOLUTIONS]
                mix_rows.append(row)
            with gr.Row():
                mix_images = [gr.Image(label=n, type="numpy", format="png") for n in ("base", "mix")]
            mix_label = gr.Markdown()
        with gr.Tab("Toonify"):
            latent = gr.State(None)
            with gr.Row():
                photo = gr.Image(label="photo", type="pil", sources=["upload", "webcam"], format="png")
                steps = gr.Slider(20, 1000, value=300, step=10, label="projection steps")
                go = gr.Button("Toonify", variant="primary")
            with gr.Row():
                aligned = gr.Image(label="aligned face", type="numpy", format="png")
                reconstruction = gr.Image(label="reconstruction (base)", type="numpy", format="png")
                toon = gr.Image(label="toonified (blend)", type="numpy", format="png")
            download = gr.File(label="download the result")

        def update_blend(key, chans, seed_value, psi_value, mapping_value, *alphas):
            if not key:
                return None, None, None, None, ""
            toonifier = pair(key)
            try:
                spec = spec_from_sliders(toonifier.G_base.block_resolutions, alphas, mapping_value, chans)
                start = time.perf_counter()
                blend_img = render_one(toonifier, spec, seed_value, psi_value)
                ms = (time.perf_counter() - start) * 1000
                base_img = render_one(toonifier, BASE_ONLY, seed_value, psi_value)
                transfer_img = render_one(toonifier, TRANSFER_ONLY, seed_value, psi_value)
                grid_img = render_grid(toonifier, seed_value, psi_value, spec)
            except StylemixError as exc:
                raise gr.Error(friendly(exc))
            return (base_img, blend_img, transfer_img, grid_img,
                    f"slider → image: **{ms:.1f} ms** (recompose + render, {spec.describe()})")

        def load_pair(base, transfer, uploaded: bool):
            try:
                if not (base and transfer):
                    raise StylemixError("choose both a base and a transfer model")
                if uploaded:
                    limit = max_upload_mb * 2 ** 20
                    base, transfer = (check_upload(p, None, limit) for p in (base, transfer))
                else:
                    base, transfer = resolve_model(base, models_dir), resolve_model(transfer, models_dir)
                key, toonifier = cache.load(base, transfer)
            except (StylemixError, OSError) as exc:
                gr.Warning(friendly(exc))  # the page keeps its current pair
                return (gr.update(), f"**Not loaded: {friendly(exc)}**", gr.update(), gr.update(),
                        gr.update(), gr.update(), *[gr.update()] * (len(sliders) + len(mix_sliders)))
            res = toonifier.G_base.block_resolutions
            values = preset_alphas(res, PRESETS[0], toonify_swap(res), 0.5, 0.5)
            note = f"Loaded {base.name} + {transfer.name} ({toonifier.G_base.img_resolution} px)." \
                + family_note(toonifier.G_base)
            channel_res = gr.update(choices=res, value=res[len(res) // 2])
            mix_updates = [gr.update(visible=r in res, value=0) for _ in range(MIX_MODELS)
                           for r in ALL_RESOLUTIONS]
            return (key, note, None, None, channel_res, [],
                    *slider_updates(res, values, slider_labels(toonifier.G_base)), *mix_updates)

        def save_png(image, label: str, session: str | None) -> str:
            path = exports.path_for(session, f"toonified-{label}.png")
            image.save(path)
            return str(path)

        def run_toonify(key, chans, photo_value, steps_value, mapping_value, *alphas, progress=gr.Progress(),
                        request: gr.Request = None):
            """Show the aligned face at once, then project (with a progress bar) and render."""
            toonifier = pair(key)
            if photo_value is None:
                raise gr.Error("Upload a photo first.")
            spec = spec_from_sliders(toonifier.G_base.block_resolutions, alphas, mapping_value, chans)
            total = int(steps_value)
            every = max(1, total // 50)  # ~50 progress updates: each one costs a round trip

            def report(step, _total, _loss):
                if step % every == 0 or step == _total:
                    progress((step, _total), desc="projecting into the base model")

            try:
                face = toonifier.align(photo_value)[0]
                if face.faces_in_photo > 1:
                    gr.Info(f"The photo has {face.faces_in_photo} faces; toonifying the largest.")
                yield None, enlarge(face.image), None, None, None
                result = toonifier.project(face.image, ProjectionConfig(steps=total), progress=report)
                base_img = toonifier.render(result, BASE_ONLY)
                toon_img = toonifier.render(result, spec)
            except StylemixError as exc:
                raise gr.Error(friendly(exc))
            yield (result, enlarge(face.image), enlarge(base_img), enlarge(toon_img),
                   save_png(toon_img, spec.describe(), _session(request)))

        def rerender_toon(key, chans, result, mapping_value, *alphas, request: gr.Request = None):
            toonifier = cache.get(key)
            if result is None or toonifier is None or result.ws.shape[1] != toonifier.G_base.num_ws:
                return gr.update(), gr.update()
            spec = spec_from_sliders(toonifier.G_base.block_resolutions, alphas, mapping_value, chans)
            toon_img = toonifier.render(result, spec)
            return enlarge(toon_img), save_png(toon_img, spec.describe(), _session(request))

        def do_export(suffix):
            def handler(key, chans, mapping_value, *alphas, request: gr.Request = None):
                toonifier = pair(key)
                try:
                    spec = spec_from_sliders(toonifier.G_base.block_resolutions, alphas, mapping_value, chans)
                    return export_blend(toonifier.G_base, toonifier.G_transfer, spec, suffix,
                                        exports, _session(request))
                except StylemixError as exc:
                    raise gr.Error(friendly(exc))
            return handler

        def rank(key, chans, res, region, seed_value, psi_value, mapping_value, *alphas):
            toonifier = pair(key)
            try:
                spec = spec_from_sliders(toonifier.G_base.block_resolutions, alphas, mapping_value, chans)
                seeds = [int(seed_value) + i for i in range(4)]
                effects = rank_channels(toonifier.engine, spec, int(res), seeds, float(psi_value),
                                        box=REGIONS.get(region))
            except StylemixError as exc:
                raise gr.Error(friendly(exc))
            top = effects[:12]
            rows = "\n".join(f"| {e.channel} | {e.change:.3f} |" for e in top)
            block_alpha = spec.alphas(toonifier.G_base.block_resolutions)[int(res)]
            suggested_alpha = 0.0 if block_alpha > 0.5 else 1.0
            return (f"Most influential of the {len(effects)} channels at {int(res)} px "
                    f"({region}; mean pixel change when one channel is taken from the other model, "
                    f"seeds {seeds[0]}–{seeds[-1]}). The four strongest are filled in below:\n\n"
                    f"| channel | change |\n|---|---|\n{rows}",
                    ", ".join(str(e.channel) for e in top[:4]), suggested_alpha)

        def set_channels(key, res, text, alpha):
            toonifier = pair(key)
            try:
                channels = parse_channel_list(text)
                if not channels:
                    raise StylemixError("list at least one channel, e.g. 3, 17")
                chans = {"res": int(res), "channels": channels, "alpha": float(alpha)}
                count = block_channels(toonifier.G_base, int(res))
                if channels[-1] >= count or channels[0] < 0:
                    raise StylemixError(f"the {int(res)} px block has channels 0–{count - 1}")
            except StylemixError as exc:
                raise gr.Error(friendly(exc))
            return chans, (f"Channels {', '.join(map(str, channels))} of {int(res)} px take "
                           f"α = {float(alpha):g}.")

        def animation(key, chans, kind, seed_value, psi_value, mapping_value, *alphas,
                      request: gr.Request = None):
            from ..animate import save_gif, sweep_frames, sweep_specs, walk_frames
            toonifier = pair(key)
            try:
                engine, what = toonifier.engine, ANIMATIONS[kind]
                if what == "walk":
                    spec = spec_from_sliders(toonifier.G_base.block_resolutions, alphas, mapping_value, chans)
                    seeds = [int(seed_value) + i for i in range(4)]
                    frames = walk_frames(engine, spec, seeds, steps=8, psi=float(psi_value))
                    name = f"walk-{seeds[0]}-{seeds[-1]}-{spec.describe()}.gif"
                else:
                    specs = sweep_specs(what, engine.resolutions, 12)
                    frames = sweep_frames(engine, specs, int(seed_value), psi=float(psi_value))
                    name = f"sweep-{what}-seed{int(seed_value)}.gif"
                path = exports.path_for(_session(request), name)
                save_gif(frames, path, fps=8 if what == "swap" else 12)
            except StylemixError as exc:
                raise gr.Error(friendly(exc))
            return str(path), str(path)

        def load_mix(key, picked, uploaded):
            pair(key)
            limit = max_upload_mb * 2**20
            try:
                paths = [resolve_model(n, models_dir) for n in (picked or [])]
                paths += [check_upload(getattr(f, "name", f), None, limit) for f in (uploaded or [])]
                if len(paths) > MIX_MODELS - 1:
                    raise StylemixError(f"mix at most {MIX_MODELS - 1} models besides the pair's transfer")
                keys = [models.load(p) for p in paths]
                base = pair(key).G_base
                for p, k in zip(paths, keys):
                    try:
                        blend_many(base, [models.get(k)], [BlendSpec.linear(0.0)])
                    except StylemixError as exc:
                        raise StylemixError(f"{p.name}: {exc}") from None
            except (StylemixError, OSError) as exc:
                raise gr.Error(friendly(exc))
            names = [p.name for p in paths]
            note = "Mixing the pair's transfer" + (" with " + ", ".join(names) if names else " only") + "."
            return ([{"key": k, "name": n} for k, n in zip(keys, names)], note,
                    *[gr.update(visible=i <= len(keys)) for i in range(MIX_MODELS)])

        def update_mix(key, extras, seed_value, psi_value, *alphas):
            toonifier = cache.get(key) if key else None
            if toonifier is None:
                return None, None, ""
            transfers = [toonifier.G_transfer] + [models.get(e["key"]) for e in extras or []]
            if any(G is None for G in transfers):
                raise gr.Error("A mixed model was unloaded to save memory: press 'use these models' again.")
            names = ["transfer"] + [e["name"] for e in extras or []]
            try:
                (base_img, mix_img), label = render_mix(toonifier.G_base, transfers, names, alphas,
                                                        seed_value, psi_value)
            except StylemixError as exc:
                raise gr.Error(friendly(exc))
            return base_img, mix_img, label

        def apply(key, p, r, a, w):
            res = pair(key).G_base.block_resolutions
            return preset_alphas(res, p, min(int(r), res[-2]), a, w)

        blend_inputs = [pair_key, channel_pick, seed, psi, mapping, *sliders]
        blend_outputs = [*triptych, grid, timing]
        for control in blend_inputs[2:]:
            control.change(update_blend, blend_inputs, blend_outputs, trigger_mode="always_last",
                           api_name=False)
        demo.load(update_blend, blend_inputs, blend_outputs, api_name="render_blend")
        pair_outputs = [pair_key, status, latent, channel_pick, ch_res, mix_keys, *sliders, *mix_sliders]
        load_picked.click(lambda b, t: load_pair(b, t, False), [pick_base, pick_transfer], pair_outputs,
                          api_name="load_models").then(update_blend, blend_inputs, blend_outputs)
        load_uploaded.click(lambda b, t: load_pair(b, t, True), [up_base, up_transfer], pair_outputs,
                            api_name="load_uploads").then(update_blend, blend_inputs, blend_outputs)
        toon_inputs = [pair_key, channel_pick, latent, mapping, *sliders]
        for control in [mapping, *sliders]:
            control.change(rerender_toon, toon_inputs, [toon, download],
                           trigger_mode="always_last", api_name=False)
        ch_rank.click(rank, [pair_key, channel_pick, ch_res, ch_region, seed, psi, mapping, *sliders],
                      [ch_ranking, ch_list, ch_alpha], api_name="rank_channels")
        ch_apply.click(set_channels, [pair_key, ch_res, ch_list, ch_alpha], [channel_pick, ch_status],
                       api_name="set_channels").then(
            update_blend, blend_inputs, blend_outputs).then(rerender_toon, toon_inputs, [toon, download])
        ch_clear.click(lambda: (None, "No channel has its own α."), None, [channel_pick, ch_status],
                       api_name="clear_channels").then(
            update_blend, blend_inputs, blend_outputs).then(rerender_toon, toon_inputs, [toon, download])
        new_seed.click(lambda: random.randrange(2 ** 31), None, seed, api_name=False)
        apply_preset.click(apply, [pair_key, preset, preset_r, preset_alpha, preset_width], sliders,
                           api_name="preset")
        export_inputs = [pair_key, channel_pick, mapping, *sliders]
        export_pkl.click(do_export(".pkl"), export_inputs, exported, api_name="export_pkl")
        export_pt.click(do_export(".pt"), export_inputs, exported, api_name="export_pt")
        export_st.click(do_export(".safetensors"), export_inputs, exported,
                        api_name="export_safetensors")
        mix_inputs = [pair_key, mix_keys, seed, psi, *mix_sliders]
        mix_outputs = [*mix_images, mix_label]
        mix_load.click(load_mix, [pair_key, mix_pick, mix_upload], [mix_keys, mix_status, *mix_rows],
                       api_name="load_mix").then(update_mix, mix_inputs, mix_outputs)
        for control in [seed, psi, *mix_sliders]:
            control.change(update_mix, mix_inputs, mix_outputs, trigger_mode="always_last", api_name=False)
        gr.Button("render mix", visible=False).click(update_mix, mix_inputs, mix_outputs, api_name="render_mix")
        make_anim.click(animation, [pair_key, channel_pick, anim_kind, seed, psi, mapping, *sliders],
                        [anim_preview, anim_file], api_name="animation")
        go.click(run_toonify, [pair_key, channel_pick, photo, steps, mapping, *sliders],
                 [latent, aligned, reconstruction, toon, download],
                 show_progress_on=[reconstruction, toon], api_name="run_toonify")
        gr.Button("re-render toon", visible=False).click(
            rerender_toon, toon_inputs, [toon, download], api_name="rerender_toon")
        def forget_session(request: gr.Request):
            exports.forget(_session(request))

        demo.unload(forget_session)
    demo.max_upload_mb = max_upload_mb  # app.py passes it to launch() as max_file_size
    return demo
