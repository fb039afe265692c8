"""Choosing which images to label: coverage of the images' features, and the model's uncertainty.

Labels are what the library exists to save, and on frames cut from videos which frames get them
matters: a random draw spends much of a small budget on near-duplicates. :func:`select_images`
returns the images to label next, in order, with the reason for each — by coverage of an encoder's
features (or thumbnails), or, once a model is fine-tuned, by where its predictions disagree; the
command line is ``python -m sslkeypoint select``. The parts: image features
(:mod:`~sslkeypoint.selection.features`), the strategies on features
(:mod:`~sslkeypoint.selection.strategies`), a model's disagreement
(:mod:`~sslkeypoint.selection.uncertainty`), the choosing (:mod:`~sslkeypoint.selection.select`)
and a contact sheet of the chosen images (:mod:`~sslkeypoint.selection.sheet`).
"""

from __future__ import annotations

from sslkeypoint.selection.features import (
    encoder_features,
    load_feature_encoder,
    thumbnail_features,
)
from sslkeypoint.selection.select import STRATEGIES, Choice, Selection, select_images
from sslkeypoint.selection.sheet import contact_sheet
from sslkeypoint.selection.strategies import (
    Pick,
    kcenter_greedy,
    kmeans,
    typical_clusters,
    typicality,
    uncertain_clusters,
)
from sslkeypoint.selection.uncertainty import prediction_disagreement

__all__ = [
    "STRATEGIES",
    "Choice",
    "Pick",
    "Selection",
    "contact_sheet",
    "encoder_features",
    "kcenter_greedy",
    "kmeans",
    "load_feature_encoder",
    "prediction_disagreement",
    "select_images",
    "thumbnail_features",
    "typical_clusters",
    "typicality",
    "uncertain_clusters",
]
