"""The ``stylemix`` command (``python -m stylemix``): info, generate, blend.

Every failure a user can cause prints one line, ``stylemix: error: …``, and exits non-zero.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import default_pair, formats
from .blend import BlendSpec, blend, blend_many
from .errors import BlendSpecError, StylemixError
from .networks import Generator
from .render import (check_class, make_grid, parse_seeds, render_seeds, resized, save_image,
                     save_png, saved_size, to_pil, to_uint8)


def _device(name: str | None) -> str:
    if name:
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise StylemixError("--device cuda was asked for, but no CUDA GPU is available")
        return name
    return "cuda" if torch.cuda.is_available() else "cpu"


def _load_pair(base: str, transfer: str, device: str | None) -> tuple[Generator, Generator]:
    device = _device(device)
    return formats.load_generator(base, device=device), formats.load_generator(transfer, device=device)


def _class_idx(args, *models: Generator) -> int | None:
    """``--class`` checked against the models about to render: required by a conditional one
    (the error names the option and the class count), ignored with a note by the others."""
    class_idx = getattr(args, "class_idx", None)
    conditional = [G for G in models if G.c_dim]
    for G in conditional:
        check_class(G, class_idx)
    if class_idx is not None and not conditional:
        print(f"note: --class {class_idx} ignored: the model is not class-conditional", file=sys.stderr)
        return None
    return class_idx


OTHER_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")


def _describe(G: Generator, path: str) -> list[str]:
    cfg = G.config
    src = G.source
    n_map = sum(p.numel() for p in G.mapping.parameters())
    n_syn = sum(p.numel() for p in G.synthesis.parameters())
    fmt = {"nvidia_pkl": "NVIDIA network pickle", "rosinality": "rosinality checkpoint",
           "native": "stylemix safetensors", "tf_pkl": "TensorFlow StyleGAN2 pickle",
           }.get(getattr(src, "format", ""), "unknown")
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
        f"image          {G.img_resolution}x{G.img_resolution}, {G.img_channels} channels",
        f"latents        z_dim {G.z_dim}, w_dim {G.w_dim}, c_dim {G.c_dim}, num_ws {G.num_ws}",
        f"mapping        {cfg.mapping_layers} layers, lr multiplier {cfg.mapping_lr_multiplier:g}",
        *shape_lines[1:],
        f"parameters     {n_map + n_syn:,} (mapping {n_map:,}, synthesis {n_syn:,})",
    ]
    if G.c_dim:
        lines.append(f"classes        {G.c_dim}, class-conditional: render with --class N (0 to {G.c_dim - 1})")
    if G.blend_info:
        lines.append(f"blend          {G.blend_info.get('label')}")
    return lines


def cmd_info(args) -> None:
    G = formats.load_generator(args.model, network=args.network)
    print("\n".join(_describe(G, args.model)))


def cmd_generate(args) -> None:
    G = formats.load_generator(args.model, device=_device(args.device), network=args.network)
    class_idx = _class_idx(args, G)
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
        arrays.extend(np.asarray(resized(to_pil(a), size)).reshape(size, size, -1) for a in to_uint8(imgs))
    if out.suffix.lower() == ".png":  # an image path: that one image, or the grid
        save_png(arrays[0] if len(seeds) == 1 else make_grid(np.stack(arrays)), out)
        what = f"seed {seeds[0]}" if len(seeds) == 1 else f"a grid of {len(seeds)} seeds"
        print(f"wrote {out} ({what}, {size} px per image)")
        return
    for seed, arr in zip(seeds, arrays):
        save_png(arr, out / f"seed{seed:04d}.png")
    save_png(make_grid(np.stack(arrays)), out / "grid.png")
    print(f"wrote {len(seeds)} images ({size} px) and grid.png to {out}")


def spec_from_args(args) -> BlendSpec:
    chosen = [name for name in ("swap", "alpha", "smooth", "alphas") if getattr(args, name) is not None]
    if len(chosen) != 1:
        raise BlendSpecError("choose exactly one of --swap, --alpha, --smooth, --alphas")
    if args.swap is not None:
        spec = BlendSpec.swap(args.swap, low=args.low, mapping=args.mapping)
    elif args.alpha is not None:
        spec = BlendSpec.linear(args.alpha, mapping=args.mapping)
    elif args.smooth is not None:
        try:
            centre, width = (float(v) for v in args.smooth.split(","))
        except ValueError:
            raise BlendSpecError(f"--smooth wants CENTRE,WIDTH (e.g. 16,0.5), not '{args.smooth}'") from None
        spec = BlendSpec.smooth(centre, width, low=args.low, mapping=args.mapping)
    else:
        spec = BlendSpec.per_resolution(_parse_table(args.alphas), mapping=args.mapping)
    for text in getattr(args, "channels", None) or []:
        spec = spec.with_channels(*_parse_channels(text))
    outside = sorted({a for a in [spec.alpha, spec.mapping, *(a for _, a in spec.table),
                                  *(a for *_, a in spec.channel_table)]
                      if a is not None and not 0 <= a <= 1})
    if outside:
        print(f"note: α {', '.join(f'{a:g}' for a in outside)} lies outside [0, 1]: the blend "
              "extrapolates beyond base (α < 0) or transfer (α > 1)", file=sys.stderr)
    return spec


def _parse_channels(text: str) -> tuple[int, list[int], float]:
    """'16:3+7+12=1' → (16, [3, 7, 12], 1.0)."""
    try:
        head, alpha = text.split("=")
        res, chans = head.split(":")
        return int(res), [int(c) for c in chans.split("+")], float(alpha)
    except ValueError:
        raise BlendSpecError(f"--channels wants RES:C+C+…=ALPHA (e.g. 16:3+7=1), not '{text}'") from None


def cmd_blend(args) -> None:
    if len(args.transfer) > 1:
        return cmd_blend_many(args)
    spec = spec_from_args(args)
    fmt = formats.format_for_path(args.output)
    G_base, G_transfer = _load_pair(args.base, args.transfer[0], args.device)
    class_idx = _class_idx(args, G_base, G_transfer) if args.preview else None
    B = blend(G_base, G_transfer, spec)
    formats.save(B, args.output, format=fmt, template=args.template)
    alphas = B.blend_info["alphas"]
    print(f"blend {spec.describe()}: α " + ", ".join(f"{r}:{a:g}" for r, a in alphas.items()))
    print(f"wrote {args.output}")
    if args.preview:
        seeds = parse_seeds(args.preview)
        rows = [to_uint8(render_seeds(G, seeds, psi=args.psi, class_idx=class_idx))
                for G in (G_base, B, G_transfer)]
        grid = make_grid(np.stack([img for trio in zip(*rows) for img in trio]), columns=3)
        preview = Path(args.output).with_suffix(".preview.png")
        save_png(grid, preview)
        print(f"wrote {preview} (columns: base | blend | transfer)")


def cmd_sheet(args) -> None:
    from .sheet import contact_sheet
    G_base, G_transfer = _load_pair(args.base, args.transfer, args.device)
    if args.cell is not None and args.cell < 1:
        raise StylemixError("--cell must be at least 1 px")
    image = contact_sheet(G_base, G_transfer, parse_seeds(args.seeds), psi=args.psi, cell=args.cell,
                          class_idx=_class_idx(args, G_base, G_transfer))
    save_image(image, args.output)
    print(f"wrote {args.output} (columns: base, T<=r = resolutions up to r from transfer, "
          "B<=r = up to r from base, transfer)")


DEFAULT_BASE = default_pair.default_base()
DEFAULT_TRANSFER = default_pair.default_transfer()


def _projection_config(args, from_encoder: bool = False):
    """Optimisation settings: from an encoder's latent, --steps per-layer refinement steps
    (default toonify.DEFAULT_REFINE_STEPS); from the mean w, --steps W steps then --w-plus-steps."""
    from .project import ProjectionConfig
    from .toonify import DEFAULT_REFINE_STEPS, refinement_config
    if from_encoder:
        return refinement_config(DEFAULT_REFINE_STEPS if args.steps is None else args.steps, seed=args.seed)
    steps = 200 if args.steps is None else args.steps
    return ProjectionConfig(steps=steps, w_plus_steps=args.w_plus_steps, seed=args.seed)


def _encoder_for(args, G_base):
    """(encoder or None, use it?) for a command with --init/--encoder; says how to get one."""
    from .default_pair import encoder_beside
    from .encoder import load_encoder
    base_path = getattr(args, "base", None) or getattr(args, "model", None)
    path = args.encoder or encoder_beside(base_path)
    if args.init == "mean":
        return None
    if path is None:
        if args.init == "encoder":
            raise StylemixError(f"{Path(base_path).name} has no encoder beside it "
                                f"({Path(base_path).stem}.encoder.safetensors): give --encoder FILE, "
                                f"or train one with: stylemix train-encoder --base {base_path} -o RUN")
        print(f"no encoder for {Path(base_path).name}: optimising from the mean w (slow; train one with "
              f"`stylemix train-encoder --base {base_path} -o RUN` and put RUN/encoder.safetensors beside "
              f"the base as {Path(base_path).stem}.encoder.safetensors)", file=sys.stderr)
        return None
    return load_encoder(path, base=G_base, device=G_base.mapping.w_avg.device)


def _perceptual(args):
    if not (args.lpips_vgg or args.lpips_lin):
        return None
    if not (args.lpips_vgg and args.lpips_lin):
        raise StylemixError("--lpips-vgg and --lpips-lin go together")
    from .perceptual import LPIPS
    return LPIPS(args.lpips_vgg, args.lpips_lin)


def _print_progress(step: int, total: int, loss: float) -> None:
    if step == total or step % max(1, total // 10) == 0:
        print(f"  step {step}/{total}  loss {loss:.4f}", file=sys.stderr)


def cmd_align(args) -> None:
    from .align import align
    faces = align(args.photo, output_size=args.size, all_faces=args.all)
    out = Path(args.output)
    paths = [out] if len(faces) == 1 else [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(len(faces))]
    for face, path in zip(faces, paths):
        save_image(face.image, path)
    found = faces[0].faces_in_photo
    more = f" ({len(faces)} faces)" if len(faces) > 1 else (
        f" (the largest of {found} faces; --all writes each)" if found > 1 else "")
    print(f"wrote {', '.join(map(str, paths))}{more}")


def cmd_project(args) -> None:
    from .align import load_image
    from .project import image_to_tensor, project, psnr, render_latent
    G, D = formats.load_generator_and_discriminator(args.model, device=_device(args.device))
    class_idx = _class_idx(args, G)
    target = load_image(args.aligned)
    res = G.img_resolution
    if target.width != target.height:
        raise StylemixError(f"{Path(args.aligned).name} is {target.width}×{target.height}, not an "
                            f"aligned square face (run: stylemix align PHOTO --size {res})")
    if target.size != (res, res):
        print(f"resizing {Path(args.aligned).name} from {target.width} px to the model's {res} px",
              file=sys.stderr)
        target = target.resize((res, res), Image.LANCZOS)
    if G.img_channels == 1 and target.mode != "L":
        print("the model is greyscale: projecting the face's luma (ITU-R BT.601)", file=sys.stderr)
    if D is not None:
        print("using the model's own discriminator features in the loss", file=sys.stderr)
    encoder = _encoder_for(args, G)
    init_ws = None
    if encoder is not None:
        from .project import image_to_tensor as _to_tensor
        init_ws = encoder.encode(_to_tensor(target, device=G.mapping.w_avg.device, channels=G.img_channels))
    result = project(G, target, _projection_config(args, from_encoder=encoder is not None),
                     progress=_print_progress, perceptual=_perceptual(args), discriminator=D,
                     class_idx=class_idx, init_ws=init_ws)
    result.save(args.output)
    rec = render_latent(G, result)
    quality = psnr(rec.cpu(), image_to_tensor(target, channels=G.img_channels))
    image = Image.fromarray(to_uint8(rec)[0].squeeze(-1) if G.img_channels == 1 else to_uint8(rec)[0])
    rec_path = Path(args.output).with_suffix(".reconstruction.png")
    save_image(resized(image, saved_size(res, args.size)), rec_path)
    if not result.history:
        how = "the encoder's latent"
    else:
        last = result.history[-1]
        phases = " (W+ from the encoder's latent)" if encoder is not None else \
            " (W, then W+)" if result.config.w_plus_steps else " (W)"
        how = f"{last['step']} steps{phases} in {last['seconds']:.1f} s"
    print(f"wrote {args.output}: {how}, PSNR {quality:.2f} dB; reconstruction {rec_path}")


def _toon_output(args) -> Path:
    """-o, or PHOTO.toon.png beside the photo; an existing file is kept unless --force."""
    out = Path(args.output) if args.output else Path(args.photo).with_suffix(".toon.png")
    if out.exists() and not args.force:
        raise StylemixError(f"{out} exists: pass --force to overwrite it, or -o another path")
    return out


def _toonify_folder(args, pair, spec) -> None:
    """``stylemix toonify DIR -o OUTDIR``: every photo, batched, with a progress bar."""
    from tqdm import tqdm

    from .batch_toonify import photos_in, toonify_folder
    from .toonify import DEFAULT_REFINE_STEPS
    if not args.output:
        raise StylemixError("toonifying a folder needs -o OUTDIR")
    steps = DEFAULT_REFINE_STEPS if args.steps is None else args.steps
    bar = tqdm(total=len(photos_in(Path(args.photo))), unit="photo", dynamic_ncols=True)
    try:
        report = toonify_folder(pair, args.photo, args.output, spec, steps=steps, batch=args.batch,
                                size=args.size, force=args.force,
                                skipped=lambda name, why: bar.write(f"skipped {name}: {why}", file=sys.stderr),
                                progress=bar.update)
    finally:
        bar.close()
    rate = len(report.written) / report.seconds if report.seconds else 0.0
    print(f"wrote {len(report.written)} toons to {args.output} ({rate:.2f} photos/s, batch {args.batch}, "
          f"{steps} refinement steps); {len(report.skipped)} skipped, {len(report.done_before)} already done")


def cmd_toonify(args) -> None:
    from .toonify import Toonifier, default_toonify_spec, toonify_r_swap
    chosen = any(getattr(args, name) is not None for name in ("swap", "alpha", "smooth", "alphas"))
    spec = spec_from_args(args) if chosen else None
    device = _device(args.device)
    G_base, D = formats.load_generator_and_discriminator(args.base, device=device)
    G_transfer = formats.load_generator(args.transfer, device=device)
    class_idx = _class_idx(args, G_base, G_transfer)
    folder = Path(args.photo).is_dir()
    if not folder:
        from .align import load_image  # dlib is imported only by the commands that need it
        photo = load_image(args.photo)  # a bad photo stops here, before anything is printed
    if spec is None:
        spec = default_toonify_spec(G_base)
        if args.channels:
            for text in args.channels:
                spec = spec.with_channels(*_parse_channels(text))
        r_swap = toonify_r_swap(G_base)
        shape = ("" if spec.kind == "swap" else
                 f" with the {r_swap} px block half-blended")
        print(f"blend: the paper's layer swap at {r_swap} px{shape}, low resolutions from the "
              f"transfer model ({spec.describe()}; choose another with --swap/--alpha/--smooth/--alphas)")
    encoder = _encoder_for(args, G_base)
    if folder:
        _toonify_folder(args, Toonifier(G_base, G_transfer, encoder=encoder), spec)
        return
    output = _toon_output(args)
    toonifier = Toonifier(G_base, G_transfer, discriminator=D, encoder=encoder)
    config = _projection_config(args, from_encoder=encoder is not None)
    result = toonifier.toonify(photo, spec, config, progress=_print_progress, class_idx=class_idx,
                               init="encoder" if encoder is not None else "mean")
    save_image(resized(result.toon, saved_size(G_base.img_resolution, args.size)), output)
    how = "" if encoder is None else (" from the encoder" if not config.w_plus_steps else
                                      f" from the encoder + {config.w_plus_steps} refinement steps")
    print(f"wrote {output} ({spec.describe()}{how})")
    if args.sheet:
        sheet = Path(output).with_suffix(".sheet.png")
        save_image(result.side_by_side(photo), sheet)
        print(f"wrote {sheet} (photo | aligned | reconstruction | toonified)")


def _add_blend_options(parser) -> None:
    how = parser.add_argument_group("blend (choose one)")
    how.add_argument("--swap", type=int, help="layer swap at this resolution, e.g. 16")
    how.add_argument("--alpha", type=float, help="one α at every resolution (0 = base, 1 = transfer)")
    how.add_argument("--smooth", help="CENTRE,WIDTH: logistic ramp centred at CENTRE px, WIDTH octaves")
    how.add_argument("--alphas", help="explicit α per resolution, e.g. 4:1,8:1,16:0.5 (unlisted = 0)")
    parser.add_argument("--low", default="transfer", choices=["base", "transfer"],
                        help="which model gives the low resolutions for --swap/--smooth (default transfer)")
    parser.add_argument("--mapping", default="base",
                        help="mapping network from base, transfer, blend (½) or a weight (default base)")
    parser.add_argument("--channels", action="append", metavar="RES:C+C…=ALPHA",
                        help="give single feature maps of one resolution their own α, e.g. "
                             "16:3+7=0 (repeatable; find channels with `stylemix channels`)")


def _add_class_option(parser) -> None:
    parser.add_argument("--class", dest="class_idx", type=int, default=None, metavar="N",
                        help="class to render, for class-conditional models (required for them; "
                             "`stylemix info` shows how many classes a model has)")


def _add_size_option(parser, what: str) -> None:
    parser.add_argument("--size", type=int, default=None, metavar="PX",
                        help=f"side of {what} in px (default: the model's size, enlarged to at "
                             "least 256 px with a Lanczos filter; 0 = the model's own size)")


def _add_projection_options(parser) -> None:
    parser.add_argument("--init", choices=("auto", "encoder", "mean"), default="auto",
                        help="start from the base's encoder (instant; auto uses it when the base has "
                             "one) or optimise from the mean w (slow)")
    parser.add_argument("--encoder", default=None,
                        help="encoder file for the base (default: BASE.encoder.safetensors beside it; "
                             "the default pair ships one)")
    parser.add_argument("--steps", type=int, default=None,
                        help="from the encoder: refinement steps (default 30; 0: the encoder alone); "
                             "from the mean w: W-space steps (default 200)")
    parser.add_argument("--w-plus-steps", type=int, default=None,
                        help="from the mean w: per-layer (W+) steps after --steps (default ¾ of them; 0: W only)")
    parser.add_argument("--seed", type=int, default=0)


def _parse_table(text: str) -> dict[int, float]:
    table = {}
    for item in text.split(","):
        try:
            res, alpha = item.split(":")
            table[int(res)] = float(alpha)
        except ValueError:
            raise BlendSpecError(f"α lists look like 4:1,8:1,16:0.5, not '{item}'") from None
    return table


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
    specs = [BlendSpec.per_resolution(_parse_table(t)) for t in args.model_alphas]
    fmt = formats.format_for_path(args.output)
    device = _device(args.device)
    G_base = formats.load_generator(args.base, device=device)
    transfers = [formats.load_generator(p, device=device) for p in args.transfer]
    B = blend_many(G_base, transfers, specs, mapping=mapping)
    formats.save(B, args.output, format=fmt, template=args.template)
    for path, spec in zip(args.transfer, specs):
        alphas = spec.alphas(G_base.block_resolutions)
        print(f"{Path(path).name}: α " + ", ".join(f"{r}:{a:g}" for r, a in alphas.items()))
    print(f"wrote {args.output}")


def cmd_animate(args) -> None:
    from .animate import save_gif, sweep_frames, sweep_specs, walk_frames
    from .engine import BlendEngine
    G_base, G_transfer = _load_pair(args.base, args.transfer, args.device)
    class_idx = _class_idx(args, G_base, G_transfer)
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
    from .channels import rank_channels
    from .engine import BlendEngine
    G_base, G_transfer = _load_pair(args.base, args.transfer, args.device)
    spec = spec_from_args(args)
    box = None
    if args.box:
        try:
            box = tuple(float(v) for v in args.box.split(","))
            assert len(box) == 4
        except (ValueError, AssertionError):
            raise BlendSpecError(f"--box wants LEFT,TOP,RIGHT,BOTTOM fractions, not '{args.box}'") from None
    effects = rank_channels(BlendEngine(G_base, G_transfer), spec, args.res, parse_seeds(args.seeds),
                            psi=args.psi, box=box, class_idx=_class_idx(args, G_base, G_transfer))
    print(f"channels of the {args.res} px block, most influential first "
          f"(mean |Δ pixel| when one channel is flipped to the other model, blend {spec.describe()}):")
    for e in effects[: args.top]:
        print(f"{e.channel:5d}  {e.change:.4f}")


def _train_config(args) -> "TrainConfig":
    from .train import TrainConfig
    return TrainConfig(batch=args.batch, kimg=args.kimg,
                       g_lr=args.lr, d_lr=args.lr, r1_gamma=args.gamma, augment=args.augment,
                       xflip=not args.no_xflip, seed=args.seed, snapshot_kimg=args.snapshot_kimg,
                       freeze_g_above=getattr(args, "freeze_g_above", None),
                       freeze_d=getattr(args, "freeze_d", 0),
                       freeze_mapping=getattr(args, "freeze_mapping", False))


def _run_training(objective, out_dir: str, ckpt: dict | None, artefact: str = "generator.safetensors") -> None:
    """Run ``objective`` in the training loop (resuming from ``ckpt``), with a progress bar."""
    from .train import TrainingLoop
    loop = TrainingLoop(objective, out_dir, progress=True)
    if ckpt is not None:
        loop.load_state(ckpt)
    loop.run()
    print(f"wrote {Path(out_dir) / artefact}")


def _resume_checkpoint(out_dir: str) -> dict | None:
    """The checkpoint already in OUT (to continue an interrupted run), if any."""
    from .train import read_trainer_checkpoint
    return read_trainer_checkpoint(out_dir) if Path(out_dir).is_dir() else None


def cmd_train(args) -> None:
    from .networks.discriminator import Discriminator
    from .train import (GanObjective, ImageFolder, matching_discriminator_config,
                        networks_from_checkpoint, small_generator_config)
    device = _device(args.device)
    data = ImageFolder(args.data, args.resolution)
    for name, why in data.skipped:
        print(f"skipped {name}: {why}", file=sys.stderr)
    ckpt = _resume_checkpoint(args.output)
    if ckpt is not None:
        G, D, G_ema = networks_from_checkpoint(ckpt)
        print(f"resuming {args.output} at {ckpt['nimg'] / 1000:.1f} kimg")
    else:
        cfg = small_generator_config(args.resolution, z_dim=args.z_dim, channel_base=args.channel_base,
                                     channel_max=args.channel_max, mapping_layers=args.mapping_layers)
        cfg.w_dim = args.w_dim or args.z_dim
        G, G_ema = Generator(cfg), None
        D = Discriminator(matching_discriminator_config(cfg))
    _run_training(GanObjective(G, D, data, _train_config(args), G_ema=G_ema, device=device),
                  args.output, ckpt)


def _pretrained(path: str):
    """(G, D or None, G_ema) to fine-tune from: a `train` or `distill` output folder (its
    checkpoint) or any model file."""
    import copy

    from .networks.discriminator import Discriminator
    from .train import matching_discriminator_config, networks_from_checkpoint, read_trainer_checkpoint
    from .train.distill import networks_from_distill_checkpoint, read_distill_checkpoint
    ckpt = read_trainer_checkpoint(path)
    if ckpt is not None:
        return networks_from_checkpoint(ckpt)
    distilled = read_distill_checkpoint(path) if Path(path).is_dir() else None
    if distilled is not None:
        G, G_ema, D = networks_from_distill_checkpoint(distilled)
        if D is not None:  # its D learned the teacher's faces: the best start for fine-tuning
            return G, D, G_ema
        print(f"{path} was distilled without the adversarial term: starting a new discriminator "
              "(fine-tuning takes longer)", file=sys.stderr)
        return G, Discriminator(matching_discriminator_config(G_ema.config)), G_ema
    if Path(path).is_dir():
        raise StylemixError(f"{path} is a folder without a stylemix checkpoint.pt")
    fmt = formats.detect_format(path)
    if fmt == formats.TORCH_SAVE:  # a train.py checkpoint holds g, d and g_ema; a converted one g_ema
        G, D, G_ema = formats.rosinality.load_training_networks(path)
        G = G if G is not None else copy.deepcopy(G_ema)
    else:
        G_ema, D = formats.load_generator_and_discriminator(path)
        G = formats.load_generator(path, network="G") if fmt == formats.PICKLE else copy.deepcopy(G_ema)
    if D is None:
        print(f"{os.path.basename(path)} has no discriminator stylemix can read: starting a new one "
              "(fine-tuning takes longer)", file=sys.stderr)
        D = Discriminator(matching_discriminator_config(G_ema.config))
    return G, D, G_ema


def cmd_finetune(args) -> None:
    from .train import GanObjective, ImageFolder, networks_from_checkpoint
    device = _device(args.device)
    ckpt = _resume_checkpoint(args.output)
    if ckpt is not None:
        G, D, G_ema = networks_from_checkpoint(ckpt)
        print(f"resuming {args.output} at {ckpt['nimg'] / 1000:.1f} kimg")
    else:
        G, D, G_ema = _pretrained(args.base)
    data = ImageFolder(args.data, G.img_resolution)
    for name, why in data.skipped:
        print(f"skipped {name}: {why}", file=sys.stderr)
    _run_training(GanObjective(G, D, data, _train_config(args), G_ema=G_ema, device=device),
                  args.output, ckpt)


def cmd_distill(args) -> None:
    from .train import distill as ds
    device = _device(args.device)
    ckpt = ds.read_distill_checkpoint(args.output) if Path(args.output).is_dir() else None
    if ckpt is not None:
        G, G_ema, D = ds.networks_from_distill_checkpoint(ckpt)
        config = ds.DistillConfig(**ckpt["distill_config"])
        print(f"resuming {args.output} at {ckpt['nimg'] / 1000:g} kimg")
    else:
        if not args.mapping:
            raise StylemixError("a new distillation needs --mapping FILE: the teacher's mapping network")
        G = ds.make_student(ds.read_mapping(args.mapping), args.resolution,
                            ds.parse_channels(args.channels), seed=args.seed or 0)
        G_ema, D, config = None, None, ds.DistillConfig()
    config = ds.config_overrides(
        config, batch=args.batch, kimg=args.kimg, lr=args.lr, ssim_weight=args.ssim_weight,
        adv_weight=args.adv_weight, adv_start_kimg=args.adv_start_kimg, seed=args.seed,
        snapshot_kimg=args.snapshot_kimg)
    data = ds.TeacherPairs(Path(args.pairs) / "train" if (Path(args.pairs) / "train").is_dir()
                           else args.pairs, G.img_resolution)
    val_dir = Path(args.val) if args.val else Path(args.pairs) / "val"
    val = ds.TeacherPairs(val_dir, G.img_resolution) if val_dir.is_dir() else None
    if val is None:
        print(f"no held-out pairs at {val_dir}: snapshots are not scored", file=sys.stderr)
    _run_training(ds.DistillObjective(G, data, config, val=val, G_ema=G_ema, D=D, device=device),
                  args.output, ckpt)


def cmd_train_encoder(args) -> None:
    """Train (or resume) an encoder face → W+ for a base generator."""
    import dataclasses

    from .encoder import Encoder, EncoderConfig, encoder_for
    from .train import ImageFolder, TeacherPairs
    from .train.encoder import ENCODER_NAME, EncoderObjective, EncoderTrainConfig, read_encoder_checkpoint
    device = _device(args.device)
    G = formats.load_generator(args.base, device=device)
    ckpt = read_encoder_checkpoint(args.output) if Path(args.output).is_dir() else None
    if ckpt is not None:
        E, E_ema = (Encoder(EncoderConfig(**ckpt["E_arch"])) for _ in range(2))
        E.load_state_dict(ckpt["E"])
        E_ema.load_state_dict(ckpt["E_ema"])
        config = EncoderTrainConfig(**ckpt["encoder_config"])
        print(f"resuming {args.output} at {ckpt['nimg'] / 1000:g} kimg")
    else:
        E, E_ema, config = encoder_for(G, width=args.width), None, EncoderTrainConfig()
    changes = {f.name: getattr(args, f.name) for f in dataclasses.fields(EncoderTrainConfig)
               if getattr(args, f.name, None) is not None}
    config = dataclasses.replace(config, **changes)
    data = val = None
    if args.data:
        root = Path(args.data)
        if list(root.glob("chunk_*.npz")) or (root / "train").is_dir():
            data = TeacherPairs(root / "train" if (root / "train").is_dir() else root, G.img_resolution)
        else:
            data = ImageFolder(root, G.img_resolution)
    val_dir = Path(args.val) if args.val else (Path(args.data) / "val" if args.data else None)
    if val_dir is not None and val_dir.is_dir():
        val = TeacherPairs(val_dir, G.img_resolution)
    objective = EncoderObjective(E, G, config, data=data, val=val, E_ema=E_ema,
                                 base_name=Path(args.base).name, device=device)
    _run_training(objective, args.output, ckpt, artefact=ENCODER_NAME)


def _add_training_options(parser, kimg: float, augment: str) -> None:
    parser.add_argument("--kimg", type=float, default=kimg,
                        help=f"train until this many thousand images were shown (default {kimg:g})")
    parser.add_argument("--batch", type=int, default=16, help="minibatch size, a multiple of 4")
    parser.add_argument("--lr", type=float, default=0.0025, help="Adam learning rate of G and D")
    parser.add_argument("--gamma", type=float, default=None,
                        help="R1 weight (default 0.0002·resolution²/batch)")
    parser.add_argument("--augment", default=augment,
                        help=f"DiffAugment policy: comma list of color, translation, cutout; "
                             f"empty for none (default {augment})")
    parser.add_argument("--no-xflip", action="store_true", help="do not mirror training images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--snapshot-kimg", type=float, default=10.0,
                        help="write a checkpoint every this many kimg (default 10)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("-o", "--output", required=True,
                        help="output folder; a checkpoint already there is resumed")


class _Parser(argparse.ArgumentParser):
    """argparse whose mistakes look like every other stylemix error: one line, exit status 1
    (as the README says), pointing at --help instead of printing the usage block."""

    def error(self, message: str):
        self.exit(1, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="stylemix", description=(
        "Blend StyleGAN2 and StyleGAN3 generators by resolution (layer swapping). Reads NVIDIA .pkl, "
        "old TensorFlow .pkl, rosinality .pt and stylemix .safetensors files without running code from them."))
    sub = p.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="describe a model file")
    info.add_argument("model")
    info.add_argument("--network", default="G_ema", choices=["G_ema", "G"],
                      help="which network of an NVIDIA pickle (default G_ema)")
    info.set_defaults(func=cmd_info)

    gen = sub.add_parser("generate", help="render seeds to PNGs and a grid")
    gen.add_argument("model")
    gen.add_argument("--seeds", default="0-7", help="e.g. 0-7 or 1,5,9 (default 0-7)")
    gen.add_argument("--psi", type=float, default=0.7, help="truncation ψ (default 0.7)")
    gen.add_argument("--cutoff", type=int, default=None, help="truncate only the first N ws")
    gen.add_argument("--noise", default="const", choices=["const", "random", "none"])
    _add_class_option(gen)
    _add_size_option(gen, "each saved image")
    gen.add_argument("--network", default="G_ema", choices=["G_ema", "G"])
    gen.add_argument("--batch", type=int, default=8)
    gen.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    gen.add_argument("-o", "--output", required=True,
                     help="output folder (one PNG per seed and grid.png), or an image path: the "
                          "image of a single seed, or the grid of several")
    gen.set_defaults(func=cmd_generate)

    bl = sub.add_parser("blend", help="blend BASE and TRANSFER (or several) by resolution and save it")
    bl.add_argument("base")
    bl.add_argument("transfer", nargs="+", help="one transferred model, or several with --model-alphas")
    bl.add_argument("--model-alphas", action="append", metavar="RES:ALPHA,…",
                    help="with several transferred models: their α per resolution, once per model")
    _add_blend_options(bl)
    bl.add_argument("--preview", default=None, help="also write base|blend|transfer rows for these seeds")
    bl.add_argument("--psi", type=float, default=0.7, help="truncation ψ for --preview")
    _add_class_option(bl)
    bl.add_argument("--device", default=None)
    bl.add_argument("-o", "--output", required=True,
                    help="OUT.pkl (a pickle like the base's: NVIDIA or TF), OUT.pt or OUT.safetensors")
    bl.add_argument("--template", default=None, metavar="FILE.pkl",
                    help="write the .pkl into this NVIDIA or TF pickle of the same shape instead of "
                         "the base's (e.g. a TF pickle for a blend of PyTorch models)")
    bl.set_defaults(func=cmd_blend)

    sh = sub.add_parser("sheet", help="contact sheet: base, every swap both ways, transfer")
    sh.add_argument("base")
    sh.add_argument("transfer")
    sh.add_argument("--seeds", default="0-3")
    sh.add_argument("--psi", type=float, default=0.7)
    sh.add_argument("--cell", type=int, default=None,
                    help="pixels per image in the sheet (default: the model's size, at least 256; "
                         "resampled with a Lanczos filter)")
    _add_class_option(sh)
    sh.add_argument("--device", default=None)
    sh.add_argument("-o", "--output", required=True, help="OUT.png")
    sh.set_defaults(func=cmd_sheet)

    an = sub.add_parser("animate", help="GIF sweeping the blend for one seed, or a latent walk")
    an.add_argument("base")
    an.add_argument("transfer")
    an.add_argument("--sweep", default="smooth", choices=["alpha", "swap", "smooth"],
                    help="alpha: 0→1 everywhere; swap: each swap resolution; smooth: a ramp's centre")
    an.add_argument("--seed", type=int, default=0)
    an.add_argument("--walk", metavar="SEEDS", help="instead: walk through these seeds (e.g. 0-3) "
                    "rendered with the blend given by --swap/--alpha/--smooth/--alphas")
    _add_blend_options(an)
    an.add_argument("--frames", type=int, default=24, help="frames per sweep / per walk segment")
    an.add_argument("--fps", type=float, default=12)
    an.add_argument("--psi", type=float, default=0.7)
    _add_class_option(an)
    an.add_argument("--device", default=None)
    an.add_argument("-o", "--output", required=True, help="OUT.gif")
    an.set_defaults(func=cmd_animate)

    al = sub.add_parser("align", help="find the face in a photo and crop it FFHQ-style")
    al.add_argument("photo")
    al.add_argument("--size", type=int, default=1024, help="output size in px (default 1024)")
    al.add_argument("--all", action="store_true", help="every face, not only the largest")
    al.add_argument("-o", "--output", required=True, help="OUT.png (OUT_0.png, OUT_1.png … with --all)")
    al.set_defaults(func=cmd_align)

    pr = sub.add_parser("project", help="find the latent of an aligned face in a model")
    pr.add_argument("aligned", help="an aligned face (`stylemix align`); resized to the model's "
                                    "size if it has another")
    pr.add_argument("--model", required=True)
    _add_projection_options(pr)
    _add_class_option(pr)
    _add_size_option(pr, "the reconstruction image (written beside W.npz as W.reconstruction.png)")
    pr.add_argument("--lpips-vgg", help="local torchvision VGG16 weights (.pth) for an LPIPS loss")
    pr.add_argument("--lpips-lin", help="local LPIPS v0.1 linear weights (vgg.pth)")
    pr.add_argument("--device", default=None)
    pr.add_argument("-o", "--output", required=True, help="W.npz")
    pr.set_defaults(func=cmd_project)

    tf = sub.add_parser("toonify", help="align, project into base, render with the blend (default: "
                                        "the paper's layer swap for the pair's size, printed)")
    tf.add_argument("photo", help="a photo, or a folder of photos")
    tf.add_argument("--base", default=str(DEFAULT_BASE))
    tf.add_argument("--transfer", default=str(DEFAULT_TRANSFER))
    _add_blend_options(tf)
    _add_projection_options(tf)
    _add_class_option(tf)
    _add_size_option(tf, "the toonified image")
    tf.add_argument("--sheet", action="store_true", help="also write photo | aligned | reconstruction | result")
    tf.add_argument("--device", default=None)
    tf.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    tf.add_argument("--batch", type=int, default=8, help="faces encoded and drawn together for a folder (default 8)")
    tf.add_argument("-o", "--output", default=None,
                    help="OUT.png (default PHOTO.toon.png beside the photo); for a folder of photos, "
                         "OUTDIR (each NAME.toon.png; finished ones are skipped on a re-run)")
    tf.set_defaults(func=cmd_toonify)

    ch = sub.add_parser("channels", help="rank one resolution's channels by how much swapping "
                                         "each changes the image (for --channels)")
    ch.add_argument("base")
    ch.add_argument("transfer")
    ch.add_argument("--res", type=int, required=True, help="block resolution, e.g. 16")
    _add_blend_options(ch)
    ch.add_argument("--seeds", default="0-7")
    ch.add_argument("--psi", type=float, default=0.7)
    _add_class_option(ch)
    ch.add_argument("--box", default=None, help="LEFT,TOP,RIGHT,BOTTOM fractions: measure only there")
    ch.add_argument("--top", type=int, default=16, help="how many channels to list (default 16)")
    ch.add_argument("--device", default=None)
    ch.set_defaults(func=cmd_channels)

    tr = sub.add_parser("train", help="train a small StyleGAN2 from scratch on a folder of images")
    tr.add_argument("data", help="folder of images (square crops are taken from the centre)")
    tr.add_argument("--resolution", type=int, default=64)
    tr.add_argument("--z-dim", type=int, default=128)
    tr.add_argument("--w-dim", type=int, default=None, help="default: same as --z-dim")
    tr.add_argument("--channel-base", type=int, default=4096)
    tr.add_argument("--channel-max", type=int, default=128)
    tr.add_argument("--mapping-layers", type=int, default=2)
    _add_training_options(tr, kimg=200, augment="translation")
    tr.set_defaults(func=cmd_train)

    ft = sub.add_parser("finetune", help="fine-tune a model on a (small) folder of images: "
                                         "the transferred model of a blend pair")
    ft.add_argument("base", help="model file (.pkl/.pt/.safetensors) or a `train` output folder")
    ft.add_argument("data", help="folder of images of the new domain")
    _add_training_options(ft, kimg=30, augment="color,translation,cutout")
    ft.add_argument("--freeze-g-above", type=int, default=None, metavar="RES",
                    help="keep the synthesis blocks above RES px fixed, so the new domain's shape is "
                         "learnt by the low blocks (the layer swap's structure side); resume without it "
                         "to release them")
    ft.add_argument("--freeze-d", type=int, default=0, metavar="N",
                    help="keep the discriminator's first N (highest-resolution) blocks fixed (FreezeD)")
    ft.add_argument("--freeze-mapping", action="store_true",
                    help="keep the mapping network fixed (blends use base's mapping: latents then mean "
                         "to the transfer what they meant while it trained)")
    ft.set_defaults(func=cmd_finetune)

    ds = sub.add_parser("distill", help="train a generator to redraw a teacher's faces for each w "
                                        "(how the default base was made); resumes OUT")
    ds.add_argument("pairs", help="folder of teacher pairs (chunk_*.npz, or a folder with train/ and val/)")
    ds.add_argument("--mapping", help="file holding the teacher's mapping network (copied, frozen)")
    ds.add_argument("--resolution", type=int, default=128)
    ds.add_argument("--channels", default="4:256,8:256,16:256,32:128,64:64,128:32",
                    help="feature maps per resolution, RES:COUNT,...")
    ds.add_argument("--val", default=None, help="held-out pairs (default PAIRS/val)")
    ds.add_argument("--kimg", type=float, default=None, help="train until this many thousand pairs were shown")
    ds.add_argument("--batch", type=int, default=None)
    ds.add_argument("--lr", type=float, default=None)
    ds.add_argument("--ssim-weight", type=float, default=None, help="weight of 1 − multi-scale SSIM (L1 has 1)")
    ds.add_argument("--adv-weight", type=float, default=None, help="adversarial term's weight (0: none)")
    ds.add_argument("--adv-start-kimg", type=float, default=None)
    ds.add_argument("--seed", type=int, default=None)
    ds.add_argument("--snapshot-kimg", type=float, default=None)
    ds.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    ds.add_argument("-o", "--output", required=True, help="output folder; a checkpoint there is resumed")
    ds.set_defaults(func=cmd_distill)

    te = sub.add_parser("train-encoder", help="train an encoder face → W+ for a base (instant toonify "
                                              "and projection); resumes OUT")
    te.add_argument("--base", required=True, help="the base generator (any format stylemix reads)")
    te.add_argument("--data", default=None,
                    help="extra faces: teacher pairs (chunk_*.npz, or a folder with train/ and val/) "
                         "or a folder of aligned face images")
    te.add_argument("--val", default=None, help="held-out teacher pairs (default DATA/val)")
    te.add_argument("--kimg", type=float, default=None, help="train until this many thousand faces were shown (default 50)")
    te.add_argument("--batch", type=int, default=None, help="minibatch size (default 8)")
    te.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 0.001)")
    te.add_argument("--recon-weight", type=float, default=None,
                    help="weight of the reconstruction term through the base (default 1; 0: latents only)")
    te.add_argument("--offset-weight", type=float, default=None,
                    help="weight of the per-layer offset regulariser (default 0.1)")
    te.add_argument("--width", type=int, default=24, help="feature maps at full resolution (new runs)")
    te.add_argument("--seed", type=int, default=None)
    te.add_argument("--snapshot-kimg", type=float, default=None, help="default 2")
    te.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    te.add_argument("-o", "--output", required=True, help="output folder; a checkpoint there is resumed")
    te.set_defaults(func=cmd_train_encoder)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except BrokenPipeError:  # the reader (e.g. `| head`) stopped listening: not an error to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except StylemixError as exc:
        print(f"stylemix: error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"stylemix: error: {exc}", file=sys.stderr)
        return 1
    return 0
