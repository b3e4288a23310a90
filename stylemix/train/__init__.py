"""Training and fine-tuning StyleGAN2 generators (how the default pair was made)."""

from .augment import diff_augment, parse_policy
from .dataset import DatasetError, ImageFolder
from .loop import (Trainer, TrainConfig, matching_discriminator_config, networks_from_checkpoint,
                   read_trainer_checkpoint, small_generator_config)

__all__ = ["DatasetError", "ImageFolder", "Trainer", "TrainConfig", "diff_augment",
           "matching_discriminator_config", "networks_from_checkpoint", "parse_policy",
           "read_trainer_checkpoint", "small_generator_config"]
