import sys, numpy as np
sys.path.insert(0, "tests")
from pathlib import Path
import tempfile
from test_calibrate import known_profile, _capture
from testkit.batch import write_batch
from testkit.scenes import tiny_classifier
from printouts.sheets import print_batch
from channel.calibrate import calibrate
from contracts.profile import IDENTITY_TONE
d = Path(tempfile.mkdtemp()) / "batch"
write_batch(d, n_items=3, size=64)
print_batch(d, paper="a4", tile_mm=60.0, layout="pairs", cover=False)
model = tiny_classifier(d.parent / "tiny.onnx", size=48)
_capture(d, model, known_profile(), "known")
r = calibrate(d, "known", d.parent / "o.toml", jpeg_quality=95)
f = r.isp
print("used", f.used, "printer_ok", f.printer_ok, "rms", f.curve_rms, "matrix", np.round(f.matrix, 3).tolist(), f.matrix_rms)
print(np.round((f.knots - np.asarray(IDENTITY_TONE)) * 255, 1))
print(np.round(f.observed - f.predicted, 1))
print(r.fit.tone_rms, r.profile.scene.sheet_fill, r.profile.scene.tilt_deg)
