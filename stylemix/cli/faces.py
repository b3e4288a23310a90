"""Commands on photos: align, project (into a model's latent space), toonify (a photo or a folder)."""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

from .. import formats
from ..errors import StylemixError
from ..render import (resized, save_image, saved_size, to_uint8)
from ..toonify import DEFAULT_REFINE_STEPS, TOON_REFINEMENT_SHARE
from .common import (DEFAULT_BASE, DEFAULT_TRANSFER, Command, add_blend_options, add_class_option, naming,
                     add_device_option, add_size_option, class_index, device_for, parse_channel_option,
                     print_progress, spec_from_args)


def _add_projection_options(parser) -> None:
    parser.add_argument("--init", choices=("auto", "encoder", "mean"), default="auto",
                        help="start from the base's encoder (instant; auto uses it when the base has "
                             "one) or optimise from the mean w (slow)")
    parser.add_argument("--encoder", default=None,
                        help="encoder file for the base (default: BASE.encoder.safetensors beside it; "
                             "the default pair ships one)")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"from the encoder: refinement steps (default {DEFAULT_REFINE_STEPS}; 0: the encoder alone); "
                             "from the mean w: W-space steps (default 200)")
    parser.add_argument("--w-plus-steps", type=int, default=None,
                        help="from the mean w: per-layer (W+) steps after --steps (default ¾ of them; 0: W only)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the optimisation's noise (default 0)")


def _projection_config(args, from_encoder: bool = False):
    """Optimisation settings: from an encoder's latent, --steps per-layer refinement steps
    (default toonify.DEFAULT_REFINE_STEPS); from the mean w, --steps W steps then --w-plus-steps."""
    from ..project import ProjectionConfig
    from ..toonify import DEFAULT_REFINE_STEPS, refinement_config
    if from_encoder:
        return refinement_config(DEFAULT_REFINE_STEPS if args.steps is None else args.steps, seed=args.seed)
    steps = 200 if args.steps is None else args.steps
    return ProjectionConfig(steps=steps, w_plus_steps=args.w_plus_steps, seed=args.seed)


def _encoder_for(args, G_base):
    """(encoder or None, use it?) for a command with --init/--encoder; says how to get one."""
    from ..default_pair import encoder_beside
    from ..encoder import load_encoder
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
    from ..perceptual import LPIPS
    return LPIPS(args.lpips_vgg, args.lpips_lin)


def cmd_align(args) -> None:
    from ..align import align
    with naming(args.photo):
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
    from ..align import load_image
    from ..project import image_to_tensor, project, psnr, render_latent
    G, D = formats.load_generator_and_discriminator(args.model, device=device_for(args.device))
    class_idx = class_index(args, G)
    with naming(args.aligned):
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
        from ..project import image_to_tensor as _to_tensor
        init_ws = encoder.encode(_to_tensor(target, device=G.mapping.w_avg.device, channels=G.img_channels))
    result = project(G, target, _projection_config(args, from_encoder=encoder is not None),
                     progress=print_progress, perceptual=_perceptual(args), discriminator=D,
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
    """-o, or PHOTO.toon.png beside the photo; an existing file (or sheet, with --sheet) is kept
    unless --force. Checked before anything slow runs."""
    out = Path(args.output) if args.output else Path(args.photo).with_suffix(".toon.png")
    for path in [out] + ([out.with_suffix(".sheet.png")] if args.sheet else []):
        if path.exists() and not args.force:
            raise StylemixError(f"{path} exists: pass --force to overwrite it, or -o another path")
    return out


def _check_steps(args) -> None:
    if args.steps is not None and args.steps < 0:
        raise StylemixError(f"--steps must be 0 or more, not {args.steps}")
    share = getattr(args, "toon_share", None)
    if share is not None and not 0 <= share <= 1:
        raise StylemixError(f"--toon-share must be between 0 (the encoder's latent) and 1 (the refined one), not {share:g}")


def _pair(args, G_base, G_transfer, **kwargs):
    """The Toonifier, with --toon-share when given."""
    from ..toonify import Toonifier
    pair = Toonifier(G_base, G_transfer, **kwargs)
    if args.toon_share is not None:
        pair.toon_share = args.toon_share
    return pair


def _toonify_folder(args, pair, spec) -> None:
    """``stylemix toonify DIR -o OUTDIR``: every photo, batched, with a progress bar."""
    from tqdm import tqdm

    from ..batch_toonify import photos_in, toonify_folder
    from ..toonify import DEFAULT_REFINE_STEPS
    steps = DEFAULT_REFINE_STEPS if args.steps is None else args.steps
    bar = tqdm(total=len(photos_in(Path(args.photo))), unit="photo", dynamic_ncols=True)
    try:
        report = toonify_folder(pair, args.photo, args.output, spec, steps=steps, batch=args.batch,
                                size=args.size, force=args.force,
                                skipped=lambda name, why: bar.write(f"skipped {name}: {why}", file=sys.stderr),
                                progress=bar.update)
    finally:
        bar.close()
    n = len(report.written)
    speed = f" in {report.seconds:.1f} s ({n / report.seconds:.2f} photos/s, align included)" if n else ""
    print(f"wrote {n} toons to {args.output}{speed}, batch {args.batch}, {steps} refinement steps; "
          f"{len(report.skipped)} skipped, {len(report.done_before)} already done")


def _default_blend_words(spec, G_base, G_transfer) -> str:
    """How the CLI names the default blend it chose (stylemix.toonify.default_toonify_spec)."""
    from ..toonify import recommended_toonify_alphas, toonify_r_swap
    alphas = spec.alphas(G_base.block_resolutions)
    if recommended_toonify_alphas(G_base, G_transfer) is not None:
        groups: dict[float, list[str]] = {}
        for r in G_base.block_resolutions:
            if alphas.get(r):
                groups.setdefault(alphas[r], []).append(str(r))
        table = "; ".join(f"{', '.join(rs)} px at α {a:g}" for a, rs in groups.items())
        return f"{spec.describe()}, the one this transfer file recommends: {table}, the rest from base"
    r_swap = toonify_r_swap(G_base)
    shape = ("" if spec.kind == "swap" else
             f" with a soft edge ({r_swap} px at α {alphas[r_swap]:g}"
             + (f", {2 * r_swap} px at {alphas[2 * r_swap]:g})" if alphas.get(2 * r_swap) else ")"))
    return (f"the paper's layer swap at {r_swap} px{shape}, low resolutions from the transfer model "
            f"({spec.describe()})")


def cmd_toonify(args) -> None:
    from ..toonify import default_toonify_spec
    chosen = any(getattr(args, name) is not None for name in ("swap", "alpha", "smooth", "alphas"))
    spec = spec_from_args(args) if chosen else None
    _check_steps(args)
    folder = Path(args.photo).is_dir()
    if folder:
        if not args.output:
            raise StylemixError("toonifying a folder needs -o OUTDIR")
        if Path(args.output).exists() and not Path(args.output).is_dir():
            raise StylemixError(f"{args.output} is a file: toonifying a folder needs -o OUTDIR, a folder")
    else:
        if not Path(args.photo).exists():  # the CLI names the path (the library's message does not)
            raise StylemixError(f"no such photo file: {args.photo}")
        from ..align import load_image  # dlib is imported only by the commands that need it
        with naming(args.photo):
            photo = load_image(args.photo)  # a bad photo stops here, before anything is printed
        output = _toon_output(args)
    device = device_for(args.device)
    G_base, D = formats.load_generator_and_discriminator(args.base, device=device)
    G_transfer = formats.load_generator(args.transfer, device=device)
    class_idx = class_index(args, G_base, G_transfer)
    if spec is None:
        spec = default_toonify_spec(G_base, G_transfer)
        if args.channels:
            for text in args.channels:
                spec = spec.with_channels(*parse_channel_option(text))
        print(f"blend: {_default_blend_words(spec, G_base, G_transfer)}; "
              "choose another with --swap/--alpha/--smooth/--alphas")
    encoder = _encoder_for(args, G_base)
    if folder:
        _toonify_folder(args, _pair(args, G_base, G_transfer, encoder=encoder), spec)
        return
    toonifier = _pair(args, G_base, G_transfer, discriminator=D, encoder=encoder)
    config = _projection_config(args, from_encoder=encoder is not None)
    result = toonifier.toonify(photo, spec, config, progress=print_progress, class_idx=class_idx,
                               init="encoder" if encoder is not None else "mean")
    size = saved_size(G_base.img_resolution, args.size)
    save_image(resized(result.toon, size), output)
    scaled = ("" if size == G_base.img_resolution else f", the {G_base.img_resolution} px toon "
              f"{'enlarged' if size > G_base.img_resolution else 'reduced'} to {size} px (Lanczos)")
    how = "" if encoder is None else (" from the encoder" if not config.w_plus_steps else
                                      f" from the encoder + {config.w_plus_steps} refinement steps, "
                                      f"the toon at --toon-share {toonifier.toon_share:g}")
    print(f"wrote {output} ({spec.describe()}{how}{scaled})")
    if args.sheet:
        sheet = Path(output).with_suffix(".sheet.png")
        save_image(result.side_by_side(photo), sheet)
        print(f"wrote {sheet} (photo | aligned | reconstruction | toonified)")


def configure_align(p) -> None:
    p.add_argument("photo")
    p.add_argument("--size", type=int, default=1024, help="output size in px (default 1024)")
    p.add_argument("--all", action="store_true", help="every face, not only the largest")
    p.add_argument("-o", "--output", required=True, help="OUT.png (OUT_0.png, OUT_1.png … with --all)")


def configure_project(p) -> None:
    p.add_argument("aligned", help="an aligned face (`stylemix align`); resized to the model's "
                                    "size if it has another")
    p.add_argument("--model", required=True)
    _add_projection_options(p)
    add_class_option(p)
    add_size_option(p, "the reconstruction image (written beside W.npz as W.reconstruction.png)")
    p.add_argument("--lpips-vgg", help="local torchvision VGG16 weights (.pth) for an LPIPS loss")
    p.add_argument("--lpips-lin", help="local LPIPS v0.1 linear weights (vgg.pth)")
    add_device_option(p)
    p.add_argument("-o", "--output", required=True, help="W.npz")


def configure_toonify(p) -> None:
    p.add_argument("photo", help="a photo, or a folder of photos")
    p.add_argument("--base", default=str(DEFAULT_BASE), help="base model file (default: the shipped pair's)")
    p.add_argument("--transfer", default=str(DEFAULT_TRANSFER),
                   help="transferred model file (default: the shipped pair's)")
    add_blend_options(p)
    _add_projection_options(p)
    add_class_option(p)
    add_size_option(p, "the toonified image")
    p.add_argument("--sheet", action="store_true", help="also write photo | aligned | reconstruction | result")
    p.add_argument("--toon-share", type=float, default=None,
                   help=f"from the encoder: draw the toon at the encoding + this share of the refinement's "
                        f"change (default {TOON_REFINEMENT_SHARE:g}; 1: at the refined latent, as the "
                        "reconstruction; less: cleaner, a little less like the person)")
    add_device_option(p)
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    p.add_argument("--batch", type=int, default=8, help="faces encoded and drawn together for a folder (default 8)")
    p.add_argument("-o", "--output", default=None,
                    help="OUT.png (default PHOTO.toon.png beside the photo); for a folder of photos, "
                         "OUTDIR (each NAME.toon.png; finished ones are skipped on a re-run)")


COMMANDS = [
    Command("align", "find the face in a photo and crop it FFHQ-style",
            configure_align, cmd_align),
    Command("project", "find the latent of an aligned face in a model",
            configure_project, cmd_project),
    Command("toonify", "align, project into base, render with the blend (default: "
                                        "the paper's layer swap for the pair's size, printed)",
            configure_toonify, cmd_toonify),
]
