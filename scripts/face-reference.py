#!/usr/bin/env python3
"""dlib's own landmarks for tests/fixtures/dlib-landmarks.json, the reference
that pins likeness's Rust port of dlib's shape predictor (tests/regions.rs).

Runs in the bench venv of `make bench-regions` (PyPI dlib-bin, numpy, pillow):
    python scripts/face-reference.py MODELS_DIR IMAGE... > faces.json
Each face dlib's HOG detector finds (upsampled once) gets its box and the 5-
and 68-point models' points on it.
"""
import json
import sys

import dlib
import numpy as np
from PIL import Image

models = sys.argv[1]
sp5 = dlib.shape_predictor(f"{models}/shape_predictor_5_face_landmarks.dat")
sp68 = dlib.shape_predictor(f"{models}/shape_predictor_68_face_landmarks.dat")
detector = dlib.get_frontal_face_detector()
faces = []
for path in sys.argv[2:]:
    image = np.array(Image.open(path).convert("RGB"))
    for r in detector(image, 1):
        s5, s68 = sp5(image, r), sp68(image, r)
        faces.append({
            "image": path,
            "box": [r.left(), r.top(), r.right(), r.bottom()],
            "p5": [[s5.part(i).x, s5.part(i).y] for i in range(5)],
            "p68": [[s68.part(i).x, s68.part(i).y] for i in range(68)],
        })
json.dump(faces, sys.stdout)
