"""The IUGC 2025 challenge submission: export a folder for Codabench and evaluate one.

A submission folder holds

* ``model.py`` — ``class model`` with ``load(path)`` and ``predict(X)``: ``X`` is a PIL RGB image
  of any size, the result a numpy array ``[x1, y1, x2, y2, x3, y3]`` (PS1, PS2, FH1) in ``X``'s
  pixels. It imports only torch, numpy, Pillow and the standard library (the organisers advise
  against third-party packages), and its preprocessing is sslkeypoint's exactly, so its
  predictions equal :class:`~sslkeypoint.inference.KeypointPredictor`'s. The file is shipped
  with this package (``template/model.py``, :func:`submission_template`);
* ``model.pt`` — the network with its codec's decode
  (:class:`~sslkeypoint.inference.KeypointDecoder`) as TorchScript, loadable with torch alone;
* ``metadata.json`` — input size, channels, landmark order, how landmarks map back to the image
  (``map_back``), the codec, library version, the SHA-256 of the source checkpoint and of every
  file the export wrote (``files``): the record that lets a later export refresh the folder, and
  refuse a folder it did not write (:func:`check_submission_folder`).

:mod:`iugc_aop.submission.export` writes one from a fine-tuning checkpoint
(:func:`export_submission`; the codec is the checkpoint's own);
:mod:`iugc_aop.submission.evaluate` loads a folder the way the challenge does (``model.py``
imported from its path, in this process) and scores it on labelled records with
:class:`~sslkeypoint.metrics.KeypointMetrics` (:func:`evaluate_submission`).
"""

from __future__ import annotations

from iugc_aop.submission.evaluate import evaluate_submission, load_submission
from iugc_aop.submission.export import (
    MAP_BACK_MODES,
    METADATA_VERSION,
    SUBMISSION_FILES,
    SubmissionFolderError,
    check_submission_folder,
    export_submission,
    file_sha256,
    map_back_mode,
    output_indices,
    submission_metadata,
    submission_template,
)

__all__ = [
    "MAP_BACK_MODES",
    "METADATA_VERSION",
    "SUBMISSION_FILES",
    "SubmissionFolderError",
    "check_submission_folder",
    "evaluate_submission",
    "export_submission",
    "file_sha256",
    "load_submission",
    "map_back_mode",
    "output_indices",
    "submission_metadata",
    "submission_template",
]
