"""Training: one resumable loop (:mod:`.loop`) and the objectives that plug into it —
adversarial training / fine-tuning (:mod:`.gan`), paired fine-tuning from stylised images and
their latents (:mod:`.paired`), distillation from a teacher (:mod:`.distill`) and the latent
encoder (:mod:`.encoder`)."""

from .augment import diff_augment, parse_policy
from .dataset import DatasetError, ImageFolder, TeacherPairs
from .gan import (GanObjective, TrainConfig, matching_discriminator_config, networks_from_checkpoint,
                  reference_from_checkpoint,
                  read_trainer_checkpoint, small_generator_config)
from .loop import LoopConfig, Objective, Phase, TrainingLoop, read_checkpoint

__all__ = ["DatasetError", "GanObjective", "ImageFolder", "LoopConfig", "Objective", "Phase",
           "TeacherPairs", "TrainConfig", "TrainingLoop", "diff_augment",
           "matching_discriminator_config", "networks_from_checkpoint", "reference_from_checkpoint", "parse_policy",
           "read_checkpoint", "read_trainer_checkpoint", "small_generator_config"]
