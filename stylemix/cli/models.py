"""Commands on model files: info, generate, blend (two or N models), sheet, animate, channels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import formats
from ..blend import BlendSpec, blend, blend_many
from ..errors import BlendSpecError, StylemixError
from ..networks import Generator
from ..render import (make_grid, parse_seeds, render_seeds, resized, save_image, save_png,
                      saved_size, to_pil, to_uint8)
from .common import (Command, add_blend_options, add_class_option, add_device_option, add_size_option,
                     class_index, device_for, load_pair, parse_alpha_table, spec_from_args)


OTHER_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")


def _width_x_height(G) -> str:
    height, width = getattr(G.config, "img_size", (G.img_resolution, G.img_resolution))
    return f"{width}x{height}" + ("" if width == height else " (width x height, non-square)")


def _describe(G: Generator, path: str) -> list[str]:
    cfg = G.config
    src = G.source
    n_map = sum(p.numel() for p in G.mapping.parameters())
    n_syn = sum(p.numel() for p in G.synthesis.parameters())
    known = formats.BY_NAME.get(getattr(src, "format", ""))
    fmt = known.description if known else "unknown"
    if G.family == "stylegan3":
        groups = G.layers_by_group()
        shape_lines = [
            f"architecture   StyleGAN3, {cfg.architecture} (alias-free)",
            "α groups       by sampling rate: " + "; ".join(
                f"{r} px: {len(names)} layers" for r, names in groups.items()),
        ]
    else:
        shape_lines = [
            "architecture   StyleGAN2, " + cfg.architecture,
            "resolutions    " + ", ".join(f"{r}:{cfg.channels_at(r)}ch" for r in G.block_resolutions),
            f"fp16 blocks    {'≥ %d px' % cfg.fp16_resolution if cfg.num_fp16_res else 'none'}"
            f", conv_clamp {cfg.conv_clamp if cfg.conv_clamp is not None else 'none'}",
        ]
    lines = [
        f"file           {path}",
        f"format         {fmt}" + (f" ({src.network})" if src and src.network else ""),
        shape_lines[0],
        f"image          {_width_x_height(G)}, {G.img_channels} channels",
        f"latents        z_dim {G.z_dim}, w_dim {G.w_dim}, c_dim {G.c_dim}, num_ws {G.num_ws}",
        f"mapping        {cfg.mapping_layers} layers, lr multiplier {cfg.mapping_lr_multiplier:g}",
        *shape_lines[1:],
        f"parameters     {n_map + n_syn:,} (mapping {n_map:,}, synthesis {n_syn:,})",
    ]
    if G.c_dim:
        lines.append(f"classes        {G.c_dim}, class-conditional: render with --class N (0 to {G.c_dim - 1})")
    if G.blend_info:
        lines.append(f"blend          {G.blend_info.get('label')}")
    if G.family == "stylegan2":
        reason = formats.rosinality.unwritable_reason(G)
        as_pt = (f"cannot be written: {reason}" if reason else
                 "loads as " + formats.rosinality.generator_call(formats.rosinality.generator_args(cfg)))
        lines.append(f"rosinality .pt {as_pt}")
    lines += [f"note           {note}" for note in getattr(G, "load_notes", [])]
    return lines


def cmd_info(args) -> None:
    G = formats.load_generator(args.model, network=args.network)
    print("\n".join(_describe(G, args.model)))


def cmd_generate(args) -> None:
    G = formats.load_generator(args.model, device=device_for(args.device), network=args.network)
    class_idx = class_index(args, G)
    seeds = parse_seeds(args.seeds)
    size = saved_size(G.img_resolution, args.size)
    out = Path(args.output)
    if out.suffix.lower() in OTHER_IMAGE_SUFFIXES:
        raise StylemixError(f"images are written as lossless PNG: name the output {out.stem}.png "
                            "(or give a folder)")
    if args.batch < 1:
        raise StylemixError("--batch must be at least 1")
    arrays = []  # (size, size, channels) uint8 per seed
    for start in range(0, len(seeds), args.batch):
        chunk = seeds[start: start + args.batch]
        imgs = render_seeds(G, chunk, psi=args.psi, cutoff=args.cutoff, noise_mode=args.noise,
                            class_idx=class_idx)
        for a in to_uint8(imgs):
            image = np.asarray(resized(to_pil(a), size))
            arrays.append(image.reshape(image.shape[0], image.shape[1], -1))
    if out.suffix.lower() == ".png":  # an image path: that one image, or the grid
        save_png(arrays[0] if len(seeds) == 1 else make_grid(np.stack(arrays)), out)
        what = f"seed {seeds[0]}" if len(seeds) == 1 else f"a grid of {len(seeds)} seeds"
        print(f"wrote {out} ({what}, {size} px per image)")
        return
    for seed, arr in zip(seeds, arrays):
        save_png(arr, out / f"seed{seed:04d}.png")
    save_png(make_grid(np.stack(arrays)), out / "grid.png")
    print(f"wrote {len(seeds)} images ({size} px) and grid.png to {out}")


def cmd_blend(args) -> None:
    if len(args.transfer) > 1:
        return cmd_blend_many(args)
    spec = spec_from_args(args)
    fmt = formats.format_for_path(args.output)
    G_base, G_transfer = load_pair(args.base, args.transfer[0], args.device)
    class_idx = class_index(args, G_base, G_transfer) if args.preview else None
    B = blend(G_base, G_transfer, spec)
    loads_as = formats.save(B, args.output, format=fmt, template=args.template,
                            custom_channels=args.custom_channels)
    alphas = B.blend_info["alphas"]
    print(f"blend {spec.describe()}: α " + ", ".join(f"{r}:{a:g}" for r, a in alphas.items()))
    print(_wrote(args.output, loads_as))
    if args.preview:
        seeds = parse_seeds(args.preview)
        rows = [to_uint8(render_seeds(G, seeds, psi=args.psi, class_idx=class_idx))
                for G in (G_base, B, G_transfer)]
        grid = make_grid(np.stack([img for trio in zip(*rows) for img in trio]), columns=3)
        preview = Path(args.output).with_suffix(".preview.png")
        save_png(grid, preview)
        print(f"wrote {preview} (columns: base | blend | transfer)")


def cmd_blend_many(args) -> None:
    """BASE T1 T2 … with one --model-alphas per transfer: θ = θ_base + Σ α_i (θ_i − θ_base)."""
    if len(args.model_alphas or []) != len(args.transfer):
        raise BlendSpecError(f"{len(args.transfer)} transferred models need {len(args.transfer)} "
                             "--model-alphas lists (one per model, in order)")
    if any(getattr(args, k) is not None for k in ("swap", "alpha", "smooth", "alphas")):
        raise BlendSpecError("with several transferred models use --model-alphas, not --swap/--alpha/…")
    mapping = None if args.mapping == "base" else int(args.mapping) - 1 if args.mapping.isdigit() else -1
    if mapping == -1:
        raise BlendSpecError("with several models, --mapping is 'base' or the number of a transfer (1, 2, …)")
    specs = [BlendSpec.per_resolution(parse_alpha_table(t)) for t in args.model_alphas]
    fmt = formats.format_for_path(args.output)
    device = device_for(args.device)
    G_base = formats.load_generator(args.base, device=device)
    transfers = [formats.load_generator(p, device=device) for p in args.transfer]
    B = blend_many(G_base, transfers, specs, mapping=mapping)
    loads_as = formats.save(B, args.output, format=fmt, template=args.template,
                            custom_channels=args.custom_channels)
    for path, spec in zip(args.transfer, specs):
        alphas = spec.alphas(G_base.block_resolutions)
        print(f"{Path(path).name}: α " + ", ".join(f"{r}:{a:g}" for r, a in alphas.items()))
    print(_wrote(args.output, loads_as))


def _wrote(path, loads_as: dict | None) -> str:
    """'wrote PATH', plus for a rosinality .pt the Generator call that loads it."""
    if loads_as is None:
        return f"wrote {path}"
    return (f"wrote {path} (rosinality: load with {formats.rosinality.generator_call(loads_as)}, "
            "g_ema and latent_avg)")


def cmd_sheet(args) -> None:
    from ..sheet import contact_sheet
    G_base, G_transfer = load_pair(args.base, args.transfer, args.device)
    if args.cell is not None and args.cell < 1:
        raise StylemixError("--cell must be at least 1 px")
    image = contact_sheet(G_base, G_transfer, parse_seeds(args.seeds), psi=args.psi, cell=args.cell,
                          class_idx=class_index(args, G_base, G_transfer))
    save_image(image, args.output)
    print(f"wrote {args.output} (columns: base, T<=r = resolutions up to r from transfer, "
          "B<=r = up to r from base, transfer)")


def cmd_animate(args) -> None:
    from ..animate import save_gif, sweep_frames, sweep_specs, walk_frames
    from ..engine import BlendEngine
    G_base, G_transfer = load_pair(args.base, args.transfer, args.device)
    class_idx = class_index(args, G_base, G_transfer)
    engine = BlendEngine(G_base, G_transfer)
    if args.walk:
        spec = spec_from_args(args)
        frames = walk_frames(engine, spec, parse_seeds(args.walk), steps=args.frames, psi=args.psi,
                             class_idx=class_idx)
        what = f"latent walk through seeds {args.walk} with {spec.describe()}"
    else:
        specs = sweep_specs(args.sweep, engine.resolutions, args.frames, low=args.low)
        frames = sweep_frames(engine, specs, args.seed, psi=args.psi, class_idx=class_idx)
        what = f"{args.sweep} sweep for seed {args.seed}"
    save_gif(frames, args.output, fps=args.fps)
    print(f"wrote {args.output}: {len(frames)} frames, {what}")


def cmd_channels(args) -> None:
    from ..channels import rank_channels
    from ..engine import BlendEngine
    G_base, G_transfer = load_pair(args.base, args.transfer, args.device)
    spec = spec_from_args(args)
    box = None
    if args.box:
        try:
            box = tuple(float(v) for v in args.box.split(","))
        except ValueError:
            box = ()
        if len(box) != 4:
            raise BlendSpecError(f"--box wants LEFT,TOP,RIGHT,BOTTOM fractions, not '{args.box}'")
    effects = rank_channels(BlendEngine(G_base, G_transfer), spec, args.res, parse_seeds(args.seeds),
                            psi=args.psi, box=box, class_idx=class_index(args, G_base, G_transfer))
    print(f"channels of the {args.res} px block, most influential first "
          f"(mean |Δ pixel| when one channel is flipped to the other model, blend {spec.describe()}):")
    for e in effects[: args.top]:
        print(f"{e.channel:5d}  {e.change:.4f}")


def configure_info(p) -> None:
    p.add_argument("model")
    p.add_argument("--network", default="G_ema", choices=["G_ema", "G"],
                      help="which network of an NVIDIA pickle (default G_ema)")


def configure_generate(p) -> None:
    p.add_argument("model")
    p.add_argument("--seeds", default="0-7", help="e.g. 0-7 or 1,5,9 (default 0-7)")
    p.add_argument("--psi", type=float, default=0.7, help="truncation ψ (default 0.7)")
    p.add_argument("--cutoff", type=int, default=None, help="truncate only the first N ws")
    p.add_argument("--noise", default="const", choices=["const", "random", "none"])
    add_class_option(p)
    add_size_option(p, "each saved image")
    p.add_argument("--network", default="G_ema", choices=["G_ema", "G"])
    p.add_argument("--batch", type=int, default=8)
    add_device_option(p)
    p.add_argument("-o", "--output", required=True,
                     help="output folder (one PNG per seed and grid.png), or an image path: the "
                          "image of a single seed, or the grid of several")


def configure_blend(p) -> None:
    p.add_argument("base")
    p.add_argument("transfer", nargs="+", help="one transferred model, or several with --model-alphas")
    p.add_argument("--model-alphas", action="append", metavar="RES:ALPHA,…",
                    help="with several transferred models: their α per resolution, once per model")
    add_blend_options(p)
    p.add_argument("--preview", default=None, help="also write base|blend|transfer rows for these seeds")
    p.add_argument("--psi", type=float, default=0.7, help="truncation ψ for --preview")
    add_class_option(p)
    add_device_option(p)
    p.add_argument("-o", "--output", required=True,
                    help="OUT.pkl (a pickle like the base's: NVIDIA or TF), OUT.pt or OUT.safetensors")
    p.add_argument("--template", default=None, metavar="FILE.pkl",
                    help="write the .pkl into this NVIDIA or TF pickle of the same shape instead of "
                         "the base's (e.g. a TF pickle for a blend of PyTorch models)")
    p.add_argument("--custom-channels", action="store_true",
                    help="for a .pt whose channel counts rosinality's Generator cannot build: write "
                         "it anyway (it loads only in a Generator with an edited channel table, "
                         "printed after writing; pSp, e4e and JoJoGAN cannot load it)")


def configure_sheet(p) -> None:
    p.add_argument("base")
    p.add_argument("transfer")
    p.add_argument("--seeds", default="0-3")
    p.add_argument("--psi", type=float, default=0.7)
    p.add_argument("--cell", type=int, default=None,
                    help="pixels per image in the sheet (default: the model's size, at least 256; "
                         "resampled with a Lanczos filter)")
    add_class_option(p)
    add_device_option(p)
    p.add_argument("-o", "--output", required=True, help="OUT.png")


def configure_animate(p) -> None:
    p.add_argument("base")
    p.add_argument("transfer")
    p.add_argument("--sweep", default="smooth", choices=["alpha", "swap", "smooth"],
                    help="alpha: 0→1 everywhere; swap: each swap resolution; smooth: a ramp's centre")
    p.add_argument("--seed", type=int, default=0, help="seed of the face (NVIDIA's convention; default 0)")
    p.add_argument("--walk", metavar="SEEDS", help="instead: walk through these seeds (e.g. 0-3) "
                    "rendered with the blend given by --swap/--alpha/--smooth/--alphas")
    add_blend_options(p)
    p.add_argument("--frames", type=int, default=24, help="frames per sweep / per walk segment")
    p.add_argument("--fps", type=float, default=12)
    p.add_argument("--psi", type=float, default=0.7)
    add_class_option(p)
    add_device_option(p)
    p.add_argument("-o", "--output", required=True, help="OUT.gif")


def configure_channels(p) -> None:
    p.add_argument("base")
    p.add_argument("transfer")
    p.add_argument("--res", type=int, required=True, help="block resolution, e.g. 16")
    add_blend_options(p)
    p.add_argument("--seeds", default="0-7")
    p.add_argument("--psi", type=float, default=0.7)
    add_class_option(p)
    p.add_argument("--box", default=None, help="LEFT,TOP,RIGHT,BOTTOM fractions: measure only there")
    p.add_argument("--top", type=int, default=16, help="how many channels to list (default 16)")
    add_device_option(p)


COMMANDS = [
    Command("info", "describe a model file",
            configure_info, cmd_info),
    Command("generate", "render seeds to PNGs and a grid",
            configure_generate, cmd_generate),
    Command("blend", "blend BASE and TRANSFER (or several) by resolution and save it",
            configure_blend, cmd_blend),
    Command("sheet", "contact sheet: base, every swap both ways, transfer",
            configure_sheet, cmd_sheet),
    Command("animate", "GIF sweeping the blend for one seed, or a latent walk",
            configure_animate, cmd_animate),
    Command("channels", "rank one resolution's channels by how much swapping "
                                         "each changes the image (for --channels)",
            configure_channels, cmd_channels),
]
