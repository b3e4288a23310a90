"""Training commands, each an objective in the shared loop: train, finetune, distill, train-encoder.

Options default to None and take their defaults (shown in --help) from the config dataclasses,
so a resumed run keeps its checkpoint's settings unless an option is given again."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import sys
from pathlib import Path


from .. import formats
from ..errors import StylemixError
from ..networks import Generator
from ..train import TrainConfig
from ..train.distill import DistillConfig
from ..train.encoder import EncoderTrainConfig
from .common import Command, add_device_option, device_for

TRAIN, DISTILL, ENCODER = TrainConfig(), DistillConfig(), EncoderTrainConfig()


def _add_training_options(parser, kimg: float, augment: str) -> None:
    parser.add_argument("--kimg", type=float, default=kimg,
                        help=f"train until this many thousand images were shown (default {kimg:g})")
    parser.add_argument("--batch", type=int, default=TRAIN.batch, help=f"minibatch size, a multiple of 4 "
                                                                        f"(default {TRAIN.batch})")
    parser.add_argument("--lr", type=float, default=TRAIN.g_lr, help=f"Adam learning rate of G and D "
                                                                      f"(default {TRAIN.g_lr:g})")
    parser.add_argument("--gamma", type=float, default=None,
                        help="R1 weight (default 0.0002·resolution²/batch)")
    parser.add_argument("--augment", default=augment,
                        help=f"DiffAugment policy: comma list of color, translation, cutout; "
                             f"empty for none (default {augment})")
    parser.add_argument("--no-xflip", action="store_true", help="do not mirror training images")
    parser.add_argument("--seed", type=int, default=TRAIN.seed)
    add_batch_gpu_option(parser)
    parser.add_argument("--snapshot-kimg", type=float, default=TRAIN.snapshot_kimg,
                        help=f"write a checkpoint every this many kimg (default {TRAIN.snapshot_kimg:g})")
    add_device_option(parser)
    parser.add_argument("-o", "--output", required=True,
                        help="output folder; a checkpoint already there is resumed")


def _train_config(args) -> TrainConfig:
    return TrainConfig(batch=args.batch, kimg=args.kimg,
                       g_lr=args.lr, d_lr=args.lr, r1_gamma=args.gamma, augment=args.augment,
                       xflip=not args.no_xflip, seed=args.seed, snapshot_kimg=args.snapshot_kimg,
                       freeze_g_above=getattr(args, "freeze_g_above", None),
                       freeze_g_upto=getattr(args, "freeze_g_upto", None),
                       freeze_d=getattr(args, "freeze_d", 0),
                       freeze_mapping=getattr(args, "freeze_mapping", False),
                       freeze_noise=getattr(args, "freeze_noise", False),
                       keep_colour=getattr(args, "keep_colour", 0.0),
                       keep_layout=getattr(args, "keep_layout", 0.0), batch_gpu=args.batch_gpu)


def add_batch_gpu_option(parser) -> None:
    parser.add_argument("--batch-gpu", type=int, default=None,
                        help="samples per forward pass on each device (default: --batch / number of "
                             "ranks); gradients of the chunks are accumulated, so the result depends "
                             "on --batch and this, not on how many devices run it")


def _training_device(name: str | None) -> str:
    """This process's device; under ``torchrun`` (WORLD_SIZE > 1) it joins the process group
    first and takes its local GPU (cuda:LOCAL_RANK), and only rank 0 prints."""
    from ..train.distributed import init_from_env
    ranks, device = init_from_env(device_for(name))
    if not ranks.is_main:
        sys.stdout = open(os.devnull, "w")
    return device


def _run_training(objective, out_dir: str, ckpt: dict | None, artefact: str = "generator.safetensors") -> None:
    """Run ``objective`` in the training loop (resuming from ``ckpt``) on every rank of this
    job, with a progress bar on rank 0."""
    from ..train import TrainingLoop
    from ..train.distributed import init_from_env
    ranks, _ = init_from_env(objective.device)
    if ckpt is not None and ckpt["nimg"] >= round(objective.config.kimg * 1000):
        # A finished run given again (a rerun chain script, a --kimg below the checkpoint's):
        # nothing to train and nothing written, said so rather than "wrote".
        print(f"{out_dir} is already at {ckpt['nimg'] / 1000:g} kimg (--kimg {objective.config.kimg:g}): "
              "nothing to train; give a larger --kimg to continue it")
        ranks.finish()
        return
    loop = TrainingLoop(objective, out_dir, progress=True, ranks=ranks)
    if ckpt is not None:
        loop.load_state(ckpt)
    if ranks.active:
        loop.log(f"{ranks.world} ranks, {loop.chunks} chunks of {loop.chunk} per step")
    loop.run()
    print(f"wrote {Path(out_dir) / artefact}")
    ranks.finish()


def _check_output_folder(out_dir: str) -> None:
    """Refuse, before any work, an output that is a file (a run writes a folder there)."""
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise StylemixError(f"-o {out_dir} is a file: a training run writes a folder (checkpoint.pt, "
                            "generator.safetensors, samples.png); give a folder")


def _resume_checkpoint(out_dir: str) -> dict | None:
    """The checkpoint already in OUT (to continue an interrupted run), if any."""
    from ..train import read_trainer_checkpoint
    return read_trainer_checkpoint(out_dir) if Path(out_dir).is_dir() else None


def cmd_train(args) -> None:
    from ..networks.discriminator import Discriminator
    from ..train import (GanObjective, ImageFolder, matching_discriminator_config,
                        networks_from_checkpoint, small_generator_config)
    _check_output_folder(args.output)
    device = _training_device(args.device)
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

    from ..networks.discriminator import Discriminator
    from ..train import matching_discriminator_config, networks_from_checkpoint, read_trainer_checkpoint
    from ..train.distill import networks_from_distill_checkpoint, read_distill_checkpoint
    ckpt = read_trainer_checkpoint(path)
    if ckpt is not None:
        print(f"starting from {path} at {ckpt['nimg'] / 1000:g} kimg (its G, G_ema and D; new optimisers, "
              "kimg counted from 0 here)")
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
    from ..train import GanObjective, ImageFolder, networks_from_checkpoint, reference_from_checkpoint
    _check_output_folder(args.output)
    device = _training_device(args.device)
    ckpt = _resume_checkpoint(args.output)
    reference = None
    if ckpt is not None:
        G, D, G_ema = networks_from_checkpoint(ckpt)
        reference = reference_from_checkpoint(ckpt)
        print(f"resuming {args.output} at {ckpt['nimg'] / 1000:.1f} kimg")
    else:
        G, D, G_ema = _pretrained(args.base)
    data = ImageFolder(args.data, G.img_resolution)
    for name, why in data.skipped:
        print(f"skipped {name}: {why}", file=sys.stderr)
    _run_training(GanObjective(G, D, data, _train_config(args), G_ema=G_ema, device=device,
                               reference=reference), args.output, ckpt)


def paired_changes(args) -> dict:
    """The finetune-paired options given on the command line as PairedConfig fields (None:
    not given, so a resumed run keeps its checkpoint's value; ``train.paired.config_with``)."""
    from ..train.paired import PairedConfig
    changes = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(PairedConfig)}
    changes["xflip"] = False if args.no_xflip else None
    return changes


def cmd_finetune_paired(args) -> None:
    """Paired fine-tune (:mod:`stylemix.train.paired`): from a model file and its encoder, or
    from a paired run's folder (its generator and pairs); a checkpoint in OUT is resumed."""
    from ..train import ImageFolder
    from ..train import paired as pd
    from ..train.gan import check_block_options, generator_from_checkpoint
    from ..train.region import region_mask
    _check_output_folder(args.output)
    device = _training_device(args.device)
    changes = paired_changes(args)
    ckpt = pd.read_paired_checkpoint(args.output) if Path(args.output).is_dir() else None
    start = ckpt if ckpt is not None else (pd.read_paired_checkpoint(args.base)
                                           if Path(args.base).is_dir() else None)
    if ckpt is not None:
        print(f"resuming {args.output} at {ckpt['nimg'] / 1000:g} kimg")
    elif start is not None:
        print(f"starting from {args.base}'s generator and pairs (kimg counted from 0 here)")
    reference = generator_from_checkpoint(ckpt, "G_reference") if ckpt is not None else None
    config = pd.config_with(changes, ckpt)
    pairs_run = None
    if args.pairs_from and ckpt is None:
        if start is not None:
            raise StylemixError(f"--pairs-from takes the pairs for a model file; {args.base} is a paired "
                                "run's folder, which has its own")
        pairs_run = pd.read_paired_checkpoint(args.pairs_from)
        if pairs_run is None:
            raise StylemixError(f"--pairs-from {args.pairs_from}: not a finetune-paired output folder "
                                "(no paired checkpoint.pt there)")
    pairs = start if start is not None else pairs_run   # the checkpoint whose pairs are reused
    if pairs is not None:
        latents, flipped = pairs["pair_latents"], pairs.get("pair_latents_flipped")
    if start is not None:
        G = generator_from_checkpoint(start, "G")
    elif pairs_run is not None:   # e.g. a paired phase after an adversarial one
        G = formats.load_generator(args.base)
        print(f"starting from {args.base} with {args.pairs_from}'s pairs (kimg counted from 0 here)")
    else:
        if Path(args.base).is_dir():
            raise StylemixError(f"{args.base} is a folder without a paired run's checkpoint.pt")
        if not args.encoder:
            raise StylemixError("a paired fine-tune from a model file needs --encoder FILE: that "
                                "model's encoder (stylemix train-encoder), to find each image's latent")
        from ..encoder import load_encoder
        G = formats.load_generator(args.base)
        encoder = load_encoder(args.encoder, base=G)   # another base's: one-line refusal
    data = ImageFolder(args.data, G.img_resolution)
    for name, why in data.skipped:
        print(f"skipped {name}: {why}", file=sys.stderr)
    source = args.output if ckpt is not None else (args.pairs_from if pairs_run is not None else args.base)
    if pairs is not None and args.encoder:
        print(f"--encoder is not used: the pairs come from {source}", file=sys.stderr)
    if ckpt is not None and args.pairs_from:
        print(f"--pairs-from is not used: the pairs come from {source}, the run being resumed", file=sys.stderr)
    if config.learn_region:   # a bad mask file: refused before the inversion's minutes
        region_mask(config.learn_region, G.img_resolution)
    if pairs is None:   # checked again by the objective; here before the inversion's minutes
        check_block_options(G, config.freeze_g_above, config.freeze_g_upto, **{"--mix-from": config.mix_from})
        latents = pd.invert_pairs(encoder, data.images)
        flipped = pd.invert_pairs(encoder, data.images.flip(-1))
        print(f"inverted {len(data)} images (and their mirrors) with {Path(args.encoder).name}")
    made_from = pairs.get("images_sha256") if pairs is not None else None
    _run_training(pd.PairedObjective(G, data, latents, config, latents_flipped=flipped, device=device,
                                     reference=reference, made_from=made_from), args.output, ckpt)


DEFAULT_STUDENT_CHANNELS = "4:256,8:256,16:256,32:128,64:64,128:32"  # the default base's


def cmd_distill(args) -> None:
    from ..train import distill as ds
    _check_output_folder(args.output)
    device = _training_device(args.device)
    ckpt = ds.read_distill_checkpoint(args.output) if Path(args.output).is_dir() else None
    if ckpt is not None:
        G, G_ema, D = ds.networks_from_distill_checkpoint(ckpt)
        config = ds.DistillConfig(**ckpt["distill_config"])
        print(f"resuming {args.output} at {ckpt['nimg'] / 1000:g} kimg")
        fixed = [flag for flag, value in (("--mapping", args.mapping), ("--grow-from", args.grow_from),
                                          ("--resolution", args.resolution), ("--channels", args.channels))
                 if value is not None]
        if fixed:
            print(f"{', '.join(fixed)} ignored: a resumed run keeps the network it has", file=sys.stderr)
    else:
        grown_from = None
        if args.grow_from:
            if args.mapping:
                raise StylemixError("--grow-from takes the mapping network from its model: leave out --mapping")
            if not args.channels:
                raise StylemixError("--grow-from needs --channels for the new blocks, e.g. 256:16")
            small = formats.load_generator(args.grow_from)
            resolution = args.resolution or 2 * small.img_resolution
            G = ds.grow_student(small, resolution, ds.parse_channels(args.channels), seed=args.seed or 0)
            grown_from = (f"grown from {Path(args.grow_from).name} ({small.img_resolution} px): it draws "
                          f"its faces upsampled to {resolution} px until the new blocks learn")
        elif not args.mapping:
            raise StylemixError("a new distillation needs --mapping FILE (the teacher's mapping network) "
                                "or --grow-from MODEL")
        else:
            G = ds.make_student(ds.read_mapping(args.mapping), args.resolution or 128,
                                ds.parse_channels(args.channels or DEFAULT_STUDENT_CHANNELS),
                                seed=args.seed or 0)
        G_ema, D, config = None, None, ds.DistillConfig()
    config = ds.config_overrides(
        config, batch=args.batch, kimg=args.kimg, lr=args.lr, ssim_weight=args.ssim_weight,
        adv_weight=args.adv_weight, adv_start_kimg=args.adv_start_kimg, seed=args.seed,
        snapshot_kimg=args.snapshot_kimg, batch_gpu=args.batch_gpu)
    data = ds.TeacherPairs(Path(args.pairs) / "train" if (Path(args.pairs) / "train").is_dir()
                           else args.pairs, G.img_resolution)
    val_dir = Path(args.val) if args.val else Path(args.pairs) / "val"
    val = ds.TeacherPairs(val_dir, G.img_resolution) if val_dir.is_dir() else None
    if val is None:
        print(f"no held-out pairs at {val_dir}: snapshots are not scored", file=sys.stderr)
    if ckpt is None and grown_from:
        print(grown_from)  # once the pairs are known to fit
    _run_training(ds.DistillObjective(G, data, config, val=val, G_ema=G_ema, D=D, device=device),
                  args.output, ckpt)


def cmd_train_encoder(args) -> None:
    """Train (or resume) an encoder face → W+ for a base generator."""
    import dataclasses

    from ..encoder import Encoder, EncoderConfig, encoder_for
    from ..train import ImageFolder, TeacherPairs
    from ..train.encoder import ENCODER_NAME, EncoderObjective, EncoderTrainConfig, read_encoder_checkpoint
    device = _training_device(args.device)
    G, D = formats.load_generator_and_discriminator(args.base, device=device)
    if D is not None:
        print(f"{Path(args.base).name} has a discriminator: its features join the reconstruction loss")
    ckpt = read_encoder_checkpoint(args.output) if Path(args.output).is_dir() else None
    if ckpt is not None:
        E, E_ema = (Encoder(EncoderConfig(**ckpt["E_arch"])) for _ in range(2))
        E.load_state_dict(ckpt["E"])
        E_ema.load_state_dict(ckpt["E_ema"])
        config = EncoderTrainConfig(**ckpt["encoder_config"])
        print(f"resuming {args.output} at {ckpt['nimg'] / 1000:g} kimg")
    elif args.init:
        from ..encoder import load_encoder
        E_ema = load_encoder(args.init, base=G, device=device)  # another base's: one-line refusal
        E, config = copy.deepcopy(E_ema).train().requires_grad_(True), EncoderTrainConfig()
        print(f"starting from {Path(args.init).name} (fine-tuning it)")
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
                                 base_name=Path(args.base).name, device=device, discriminator=D)
    _run_training(objective, args.output, ckpt, artefact=ENCODER_NAME)


def configure_train(p) -> None:
    p.add_argument("data", help="folder of images (square crops are taken from the centre)")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--z-dim", type=int, default=128)
    p.add_argument("--w-dim", type=int, default=None, help="default: same as --z-dim")
    p.add_argument("--channel-base", type=int, default=4096)
    p.add_argument("--channel-max", type=int, default=128)
    p.add_argument("--mapping-layers", type=int, default=2)
    _add_training_options(p, kimg=200, augment="translation")


def configure_finetune(p) -> None:
    p.add_argument("base", help="model file (.pkl/.pt/.safetensors) or a `train` output folder")
    p.add_argument("data", help="folder of images of the new domain")
    _add_training_options(p, kimg=30, augment="color,translation,cutout")
    p.add_argument("--freeze-g-above", type=int, default=None, metavar="RES",
                    help="keep the synthesis blocks above RES px fixed, so the new domain's shape is "
                         "learnt by the low blocks (the layer swap's structure side); resume without it "
                         "to release them")
    p.add_argument("--freeze-g-upto", type=int, default=None, metavar="RES",
                    help="keep the synthesis blocks at and below RES px fixed, so what is still learnt "
                         "(colour, rendering) goes to the high blocks (the layer swap's rendering side)")
    p.add_argument("--freeze-noise", action="store_true",
                    help="keep every layer's noise strength (a distilled base has none at the top; "
                         "a young discriminator turns it up into grain)")
    p.add_argument("--keep-colour", type=float, default=0.0, metavar="WEIGHT",
                    help="pull each sample's colour (its mean and 8×8 chroma) back to the starting "
                         "model's (a structure phase: with --freeze-g-above, the low blocks learn "
                         "shape, not colour)")
    p.add_argument("--keep-layout", type=float, default=0.0, metavar="WEIGHT",
                    help="pull each sample's 16×16 light/dark layout back to the starting model's (a "
                         "rendering phase: with --freeze-g-upto, the high blocks learn rendering, not shape)")
    p.add_argument("--freeze-d", type=int, default=0, metavar="N",
                    help="keep the discriminator's first N (highest-resolution) blocks fixed (FreezeD)")
    p.add_argument("--freeze-mapping", action="store_true",
                    help="keep the mapping network fixed (blends use base's mapping: latents then mean "
                         "to the transfer what they meant while it trained)")


def configure_finetune_paired(p) -> None:
    from ..train.paired import PairedConfig
    d = PairedConfig()
    p.add_argument("base", help="model file to start from (with --encoder), or a finetune-paired output "
                                "folder (its generator and its pairs, for the same images: e.g. the "
                                "eyes phase from the head phase)")
    p.add_argument("data", help="folder of images of the new domain, aligned like the base's faces")
    p.add_argument("--encoder", default=None, help="the base's encoder (.safetensors): finds each "
                                                   "image's W+ latent (a new run from a model file)")
    p.add_argument("--pairs-from", default=None, metavar="RUN",
                   help="a finetune-paired output folder whose pairs (the images' latents in the base) "
                        "to reuse for a model file that is not the base, e.g. a paired phase after an "
                        "adversarial one")
    p.add_argument("--kimg", type=float, default=None, help=f"train until this many thousand images were "
                                                           f"shown (default {d.kimg:g})")
    p.add_argument("--batch", type=int, default=None, help=f"minibatch size (default {d.batch})")
    p.add_argument("--lr", type=float, default=None, help=f"Adam learning rate (default {d.lr:g})")
    p.add_argument("--mixing", type=float, default=None,
                   help=f"share of samples whose latents from --mix-from px up are a random face's, the "
                        f"target unchanged: any face gets the style (default {d.mixing:g})")
    p.add_argument("--mix-from", type=int, default=None, metavar="RES",
                   help="lowest resolution whose latents are mixed (default 64, or the top block of a smaller model)")
    p.add_argument("--freeze-g-above", type=int, default=None, metavar="RES",
                   help="keep the synthesis blocks above RES px fixed: the low blocks learn the new "
                        "domain's structure (phase 1)")
    p.add_argument("--freeze-g-upto", type=int, default=None, metavar="RES",
                   help="keep the blocks at and below RES px fixed: what is learnt goes above (with "
                        "--freeze-g-above: one block, e.g. the eyes at 32 px after the head at ≤ 16)")
    p.add_argument("--grey-pairs", action=argparse.BooleanOptionalAction, default=None,
                   help="compare each image's standardised grey only (light and dark, not colour): "
                        "a structure phase, with --keep-colour (--no-grey-pairs: colour again, "
                        "e.g. on resuming a grey run)")
    p.add_argument("--keep-colour", type=float, default=None, metavar="WEIGHT",
                   help="hold each sample's colour (mean, 8×8 chroma) to the start model's at the same "
                        "latent, so a structure phase learns shape, not colour")
    p.add_argument("--keep-colour-swap", type=int, action="append", default=None, metavar="RES",
                   dest="keep_colour_swaps",
                   help="with --keep-colour: also hold the colour of the layer swap at RES px (these "
                        "blocks up to RES, the start model's above), so blocks learnt together leave "
                        "that swap's colour to the base (repeatable)")
    p.add_argument("--keep-chroma-grid", type=int, default=None, metavar="CELLS", dest="chroma_grid",
                   help=f"with --keep-colour: hold the chroma on a CELLS×CELLS grid (default "
                        f"{d.chroma_grid}); finer, e.g. 32 at 128 px, also holds colour fringes a few "
                        "px wide, such as a rim around cartoon eyes learnt in grey")
    p.add_argument("--learn-region", default=None, metavar="REGION",
                   help="learn the images only there and keep the start model's drawing elsewhere: "
                        "'eyes' (both eyes of an FFHQ-aligned face), 'no-mouth' (all but the mouth) or a "
                        "greyscale mask image (white = learn); e.g. the eyes at 32 px without the mouth "
                        "that block would also learn")
    p.add_argument("--keep-faces", type=float, default=None, metavar="SHARE",
                   help="with --learn-region: that share of samples is drawn at random faces' latents "
                        "and held to the start model outside the region, so a real face's smile is "
                        "kept too, not only the stylised images' (default 0)")
    p.add_argument("--region-weight", type=float, default=None, metavar="WEIGHT",
                   help=f"with --learn-region: weight of an extra L1 averaged over the region alone, so a "
                        f"small region is learnt as fast as a whole image (default {d.region_weight:g})")
    p.add_argument("--no-xflip", action="store_true", help="do not also learn the mirrored images")
    p.add_argument("--seed", type=int, default=None, help="seed of the data order (default 0)")
    p.add_argument("--snapshot-kimg", type=float, default=None,
                   help=f"write checkpoint.pt, generator.safetensors and samples.png every this many kimg "
                        f"(default {d.snapshot_kimg:g})")
    add_batch_gpu_option(p)
    add_device_option(p)
    p.add_argument("-o", "--output", required=True,
                   help="output folder; a checkpoint there is resumed, with its settings except the "
                        "options given again (its pairs and images must be the same)")


def configure_distill(p) -> None:
    p.add_argument("pairs", help="folder of teacher pairs (chunk_*.npz, or a folder with train/ and val/)")
    p.add_argument("--mapping", help="file holding the teacher's mapping network (copied, frozen)")
    p.add_argument("--resolution", type=int, default=None,
                   help="the student's output in px (default 128; with --grow-from: twice the model's); "
                        "the pairs must be stored at least this large")
    p.add_argument("--channels", default=None,
                   help="feature maps per resolution, RES:COUNT,... (default 4:256,8:256,16:256,32:128,"
                        "64:64,128:32; with --grow-from: the new blocks' only, e.g. 256:16)")
    p.add_argument("--grow-from", default=None, metavar="MODEL",
                   help="start from this smaller skip generator (e.g. models/base.safetensors) with new "
                        "blocks up to --resolution, their RGB output zero at first: a sharper base that "
                        "keeps the latent space and faces it has")
    p.add_argument("--val", default=None, help="held-out pairs (default PAIRS/val)")
    p.add_argument("--kimg", type=float, default=None,
                   help=f"train until this many thousand pairs were shown (default {DISTILL.kimg:g})")
    p.add_argument("--batch", type=int, default=None, help=f"default {DISTILL.batch}")
    p.add_argument("--lr", type=float, default=None, help=f"default {DISTILL.lr:g}")
    p.add_argument("--ssim-weight", type=float, default=None,
                   help=f"weight of 1 − SSIM over scales (L1 has 1; default {DISTILL.ssim_weight:g})")
    p.add_argument("--adv-weight", type=float, default=None,
                   help=f"adversarial term's weight (0: none; default {DISTILL.adv_weight:g})")
    p.add_argument("--adv-start-kimg", type=float, default=None)
    p.add_argument("--seed", type=int, default=None, help="seed of the data order and initialisation (default 0)")
    p.add_argument("--snapshot-kimg", type=float, default=None, help=f"default {DISTILL.snapshot_kimg:g}")
    add_batch_gpu_option(p)
    add_device_option(p)
    p.add_argument("-o", "--output", required=True, help="output folder; a checkpoint there is resumed")


def configure_train_encoder(p) -> None:
    p.add_argument("--base", required=True, help="the base generator (any format stylemix reads)")
    p.add_argument("--data", default=None,
                    help="extra faces: teacher pairs (chunk_*.npz, or a folder with train/ and val/) "
                         "or a folder of aligned face images")
    p.add_argument("--val", default=None, help="held-out teacher pairs (default DATA/val)")
    p.add_argument("--kimg", type=float, default=None,
                   help=f"train until this many thousand faces were shown (default {ENCODER.kimg:g})")
    p.add_argument("--batch", type=int, default=None, help=f"minibatch size (default {ENCODER.batch})")
    p.add_argument("--lr", type=float, default=None, help=f"Adam learning rate (default {ENCODER.lr:g})")
    p.add_argument("--recon-weight", type=float, default=None,
                    help=f"weight of the reconstruction term through the base (default {ENCODER.recon_weight:g}; "
                         "0: latents only)")
    p.add_argument("--offset-weight", type=float, default=None,
                    help=f"weight of the per-layer offset regulariser (default {ENCODER.offset_weight:g})")
    p.add_argument("--width", type=int, default=24, help="feature maps at full resolution (new runs)")
    p.add_argument("--init", default=None, metavar="ENCODER.safetensors",
                   help="a new run starts from this encoder of the same base (e.g. the shipped "
                        "one, to fine-tune it on your faces) instead of from scratch")
    p.add_argument("--seed", type=int, default=None, help="seed of the data order and initialisation (default 0)")
    p.add_argument("--snapshot-kimg", type=float, default=None, help=f"default {ENCODER.snapshot_kimg:g}")
    add_batch_gpu_option(p)
    add_device_option(p)
    p.add_argument("-o", "--output", required=True, help="output folder; a checkpoint there is resumed")


COMMANDS = [
    Command("train", "train a small StyleGAN2 from scratch on a folder of images",
            configure_train, cmd_train),
    Command("finetune", "fine-tune a model on a (small) folder of images: "
                                         "the transferred model of a blend pair",
            configure_finetune, cmd_finetune),
    Command("finetune-paired", "fine-tune a transfer from stylised images and their latents "
                               "(JoJoGAN-style; fast on a CPU); resumes OUT",
            configure_finetune_paired, cmd_finetune_paired),
    Command("distill", "train a generator to redraw a teacher's faces for each w "
                                        "(how the default base was made); resumes OUT",
            configure_distill, cmd_distill),
    Command("train-encoder", "train an encoder face → W+ for a base (instant toonify "
                                              "and projection); resumes OUT",
            configure_train_encoder, cmd_train_encoder),
]
