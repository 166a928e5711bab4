"""Training: samples and augmentation, and the one loop shared by train and finetune."""

from .loop import TrainResult, train
from .samples import Sample, samples_from_annotated, samples_from_bbbc010

__all__ = ["TrainResult", "train", "Sample", "samples_from_annotated", "samples_from_bbbc010"]
