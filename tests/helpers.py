"""Tiny models and synthetic data for fast tests."""

import numpy as np

from semiconv.config import ModelConfig, TrainConfig


def tiny_config(**overrides) -> ModelConfig:
    cfg = ModelConfig(
        fpn_channels=32, box_head_width=64, mask_head_layers=(32, 32), mask_resolution=28,
        embedding_hidden=32, rpn_pre_nms_train=200, rpn_post_nms_train=100, rpn_pre_nms_test=100,
        rpn_post_nms_test=50, rpn_batch_per_image=64, box_batch_per_image=32, max_detections=30,
    )
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


def tiny_train_config(**overrides) -> TrainConfig:
    cfg = TrainConfig(steps=3, batch_size=2, crop_size=128, val_every=3, checkpoint_every=1, warmup_steps=1, num_threads=0)
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


def synthetic_samples(n, shape=(160, 160), seed=0, config=None):
    from semiconv.data.generic import AnnotatedImage
    from semiconv.data.synthetic import generate
    from semiconv.training.samples import samples_from_annotated

    items = []
    for i in range(n):
        s = generate(shape, seed + i)
        items.append(AnnotatedImage(f"syn{i}", s.image, s.masks, s.boxes))
    return samples_from_annotated(items, config or tiny_config())


def run_cli(*args):
    """`semiconv ARGS` in this process (typer's CliRunner: no interpreter start-up), as a
    CompletedProcess (returncode, stdout, stderr). An exception the CLI did not turn into a
    message is raised, so a test sees the traceback a user would."""
    import subprocess

    from typer.testing import CliRunner

    from semiconv.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def toy_masks(shape=(128, 128)):
    masks = np.zeros((3,) + shape, bool)
    masks[0, 10:50, 20:28] = True
    masks[1, 30:38, 5:90] = True  # crosses worm 0
    masks[2, 90:98, 30:110] = True
    return masks


def imagej_jar():
    """ImageJ 1.x's ij.jar (Debian's `imagej` package) and java, or None where they are missing."""
    import shutil
    from pathlib import Path

    jar = Path("/usr/share/java/ij.jar")
    return jar if jar.exists() and shutil.which("java") and shutil.which("xvfb-run") else None


IMAGEJ_FILL_MACRO = """
args = split(getArgument(), ",");
roiManager("Open", args[0]);
n = roiManager("count");
newImage("filled", "8-bit black", parseInt(args[1]), parseInt(args[2]), maxOf(n, 1));
for (i = 0; i < n; i++) {
  roiManager("select", i);
  setSlice(i + 1);
  setColor(255);
  fill();
  print("roi\\t" + i + "\\t" + Roi.getName);
}
run("Select None");
saveAs("Tiff", args[3]);
"""


def imagej_filled_rois(roi_zip, width: int, height: int, workdir):
    """Open a ROI set in ImageJ's own ROI Manager (headless, under Xvfb) and fill each ROI into
    its own slice: (names in ImageJ's order, n x height x width bool masks as ImageJ draws them)."""
    import subprocess
    from pathlib import Path

    import tifffile

    Path(workdir).mkdir(parents=True, exist_ok=True)
    macro = Path(workdir) / "fill_rois.ijm"
    macro.write_text(IMAGEJ_FILL_MACRO)
    out = Path(workdir) / "imagej_filled.tif"
    result = subprocess.run(["xvfb-run", "-a", "java", "-jar", str(imagej_jar()), "-batch", str(macro),
                             f"{roi_zip},{width},{height},{out}"], capture_output=True, text=True, timeout=300)
    names = [line.split("\t")[2] for line in result.stdout.splitlines() if line.startswith("roi\t")]
    assert out.exists(), result.stdout + result.stderr
    filled = tifffile.imread(out).reshape(-1, height, width) > 0
    return names, filled[: len(names)]


IMAGEJ_OPEN_MACRO = """
open(getArgument());
Stack.getDimensions(width, height, channels, slices, frames);
print("opened\t" + width + "\t" + height + "\t" + slices + "\t" + frames + "\t" + bitDepth());
"""


def imagej_opened(path, workdir) -> tuple[int, int, int, int, int]:
    """Open an image file in ImageJ 1.x (headless, under Xvfb): (width, height, slices, frames,
    bit depth) as ImageJ sees it (an RGB image: 1 slice of 24 bits)."""
    import subprocess
    from pathlib import Path

    macro = Path(workdir) / "open.ijm"
    macro.write_text(IMAGEJ_OPEN_MACRO)
    result = subprocess.run(["xvfb-run", "-a", "java", "-jar", str(imagej_jar()), "-batch", str(macro), str(path)],
                            capture_output=True, text=True, timeout=300)
    lines = [line.split("\t")[1:] for line in result.stdout.splitlines() if line.startswith("opened\t")]
    assert lines, result.stdout + result.stderr
    return tuple(int(v) for v in lines[0])


def filled_by_roifile(roi, height, width):
    """Pixels whose centres lie inside a ROI (even-odd over a composite ROI's outlines)."""
    from matplotlib.path import Path as MplPath

    yy, xx = np.mgrid[:height, :width]
    centres = np.column_stack([xx.ravel() + 0.5, yy.ravel() + 0.5])
    outlines = roi.path2coords(roi.multi_coordinates) if roi.composite else [roi.coordinates()]
    inside = sum(MplPath(o).contains_points(centres).astype(int) for o in outlines)
    return (inside % 2 == 1).reshape(height, width)


def crossing_worms(shape=(40, 61)) -> np.ndarray:
    """3 x H x W bool: two tube worms that cross, and an empty mask."""
    from semiconv.data.annotate import tube_mask

    return np.array([tube_mask(np.array([[5, 3], [30, 58]]), 3, shape),
                     tube_mask(np.array([[35, 10], [8, 50]]), 3, shape),
                     np.zeros(shape, bool)])


def stack_plane(seed: int = 0, shape=(40, 61)):
    """A Prediction with every field a napari result shows: `crossing_worms`, random dense maps."""
    from semiconv.data.instances import stack_to_labels
    from semiconv.postprocess import Prediction

    rng = np.random.default_rng(seed)
    masks, scores = crossing_worms(shape), np.array([0.9, 0.8, 0.7], np.float32)
    embedding = rng.normal(0, 1, (8, *shape)).astype(np.float32)
    return Prediction(masks, scores, np.zeros((3, 4), np.float32), stack_to_labels(masks, scores), np.zeros((3, 2), np.float32),
                      embedding=embedding, displacement=rng.normal(0, 5, (2, *shape)).astype(np.float32),
                      foreground=rng.uniform(0, 1, shape).astype(np.float32),
                      seed_embeddings=embedding[:, [10, 20, 5], [20, 30, 5]].T.copy(), sigma=2.0)
