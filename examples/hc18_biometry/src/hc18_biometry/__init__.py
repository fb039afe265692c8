"""hc18_biometry: fetal head biometry on HC18 with sslkeypoint, in millimetres.

A worked example built only from the library's public API and command line: HC18's head
ellipses become named outline points (:mod:`hc18_biometry.landmarks`), a U-Net learns them from
few labels and many unlabelled images, and the head circumference (HC), biparietal diameter (BPD)
and occipito-frontal diameter (OFD) are measured in mm with each image's pixel size
(:mod:`hc18_biometry.measures`).

Modules:
    :mod:`~hc18_biometry.data`: the two HC18 layouts.
    :mod:`~hc18_biometry.landmarks`: outline points and the rule that names them.
    :mod:`~hc18_biometry.measures`: HC (a measure of this example), BPD, OFD, the challenge score.
    :mod:`~hc18_biometry.pipeline`: the demo's steps, each a library call.
    :mod:`~hc18_biometry.demo`, :mod:`~hc18_biometry.report`, :mod:`~hc18_biometry.predict`,
    :mod:`~hc18_biometry.cli`: the commands.
"""

from __future__ import annotations

__version__ = "0.1.0"
