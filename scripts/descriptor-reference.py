#!/usr/bin/env python3
"""dlib's own face descriptors for tests/fixtures/dlib-descriptors.json, the
reference that pins likeness's tch port of dlib's face ResNet
(src/model/dlib_resnet.rs, tests/pretrained.rs).

Runs in the bench venv of `make bench-faces` (scripts/dlib-venv.sh: PyPI
dlib-bin and face_recognition_models):
    python scripts/descriptor-reference.py SWELL_DIR > tests/fixtures/dlib-descriptors.json
SWELL_DIR: `make data`'s synthetic set ($LIKENESS_CACHE/data/swell-v2), whose
150x150 johns chips are PNG, so dlib and likeness read the same pixels
(their JPEG decoders differ by a level here and there). The first chip of
each person (sorted by name, variant 0) and compute_face_descriptor's 128
values (no jitter).
"""
import glob
import hashlib
import json
import os
import sys

import dlib
import face_recognition_models
import numpy as np

images = os.path.join(sys.argv[1], "images")
net = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
faces = []
for person in sorted(os.listdir(images)):
    path = sorted(glob.glob(os.path.join(images, person, "*_v0.png")))[0]
    img = dlib.load_rgb_image(path)
    faces.append({
        "image": os.path.relpath(path, sys.argv[1]),
        "rgb_sha256": hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest(),
        "descriptor": [round(float(v), 7) for v in net.compute_face_descriptor(img)],
    })
json.dump({"made_by": f"dlib {dlib.__version__} (PyPI dlib-bin), "
           "dlib_face_recognition_resnet_model_v1.dat of face_recognition_models 0.3.0, "
           "scripts/descriptor-reference.py", "faces": faces}, sys.stdout, indent=0)
print()
