"""Single-face 512x512 photos for `make bench-regions`: each johns crop
(150x150) enlarged to 300x300 and placed on a 512x512 canvas whose border
repeats the crop's edge pixels, at an offset that varies with the photo.

    python portraits.py JOHNS_DIR OUT_DIR
"""
import pathlib
import sys

import dlib
import numpy as np

src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
for i, path in enumerate(sorted(src.glob("*/*.jpg"))):
    face = dlib.resize_image(dlib.load_rgb_image(str(path)), 300, 300)
    top, left = 40 + (i * 37) % 170, 30 + (i * 53) % 180
    canvas = np.pad(face, ((top, 512 - 300 - top), (left, 512 - 300 - left), (0, 0)), mode="edge")
    dlib.save_image(np.ascontiguousarray(canvas), str(out / f"{path.parent.name}-{path.stem}.jpg"))
