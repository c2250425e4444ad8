"""The peer of `make bench-regions`: dlib's HOG face detector (upsampled
once, so that it finds faces down to about 40 px, as likeness's default
--min-face 32 does) plus its 68-point shape predictor, over the same photos.
Prints one JSON line: photos, faces, seconds (after the models are loaded,
as likeness's own faces/s line counts), faces/s.

    python dlib_regions.py MODELS_DIR PHOTO...
"""
import json
import sys
import time

import dlib

models, photos = sys.argv[1], sys.argv[2:]
detector = dlib.get_frontal_face_detector()
predictor = dlib.shape_predictor(f"{models}/shape_predictor_68_face_landmarks.dat")
start = time.perf_counter()
faces = 0
for path in photos:
    image = dlib.load_rgb_image(path)
    for rect in detector(image, 1):
        predictor(image, rect)
        faces += 1
seconds = time.perf_counter() - start
print(json.dumps({"photos": len(photos), "faces": faces, "seconds": round(seconds, 3),
                  "faces_per_s": round(faces / seconds, 1)}))
