"""Seeded cartoon sample clips with exact ground truth, and broken files for tests."""

from app.samples.badfiles import BadFile, make_bad_files
from app.samples.generator import SampleClip, make_clip, make_samples

__all__ = ["BadFile", "SampleClip", "make_bad_files", "make_clip", "make_samples"]
