"""What a fine-tuning checkpoint stores as its model when a teacher is what was validated.

:class:`~sslkeypoint.lightning.HeatmapFinetuneModule` holds the trained network as ``model.*`` and
a fine-tuning method's teacher (the mean teacher, :class:`~sslkeypoint.ssl.MeanTeacher`) as
``objective.teacher.network.*``. When validation scores the teacher, its checkpoints store the
teacher as ``model.*`` and the trained network as ``student.*`` (:func:`teacher_as_model`), so a
predictor built from the file predicts with the network that was validated; loading the file back
into the module puts both in their place (:func:`teacher_from_model`). Checkpoints of sslkeypoint
0.6 and earlier named the teacher ``teacher.network.*`` (:data:`LEGACY_TEACHER_PREFIX`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "LEGACY_TEACHER_PREFIX",
    "MODEL_PREFIX",
    "STUDENT_PREFIX",
    "TEACHER_PREFIX",
    "rename_prefixes",
    "teacher_as_model",
    "teacher_from_model",
]

#: ``state_dict`` prefix of the trained network in the module.
MODEL_PREFIX = "model."
#: ``state_dict`` prefix of the teacher network in the module.
TEACHER_PREFIX = "objective.teacher.network."
#: Prefix of the trained network in a checkpoint whose ``model.*`` weights are the teacher's.
STUDENT_PREFIX = "student."
#: The teacher's prefix in modules of sslkeypoint 0.6 and earlier.
LEGACY_TEACHER_PREFIX = "teacher.network."


def teacher_as_model(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """A module's ``state_dict`` for saving: the teacher as ``model.*``, the network as ``student.*``.

    Examples:
        >>> teacher_as_model({"model.w": 1, "objective.teacher.network.w": 2, "val_loss.x": 3})
        {'student.w': 1, 'model.w': 2, 'val_loss.x': 3}
    """
    return rename_prefixes(state_dict, {MODEL_PREFIX: STUDENT_PREFIX, TEACHER_PREFIX: MODEL_PREFIX})


def teacher_from_model(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`teacher_as_model`: a saved ``state_dict`` back in the module's names.

    Examples:
        >>> teacher_from_model(teacher_as_model({"model.w": 1, "objective.teacher.network.w": 2}))
        {'model.w': 1, 'objective.teacher.network.w': 2}
    """
    return rename_prefixes(state_dict, {MODEL_PREFIX: TEACHER_PREFIX, STUDENT_PREFIX: MODEL_PREFIX})


def rename_prefixes(state_dict: Mapping[str, Any], renames: Mapping[str, str]) -> dict[str, Any]:
    """The ``state_dict`` with key prefixes renamed (each key by the first prefix it starts with).

    Args:
        state_dict: The weights.
        renames: Old prefix → new prefix.

    Returns:
        A new dict, in the same order.

    Raises:
        ValueError: If two keys would get the same name.

    Examples:
        >>> sd = {"model.w": 1, "teacher.network.w": 2, "other": 3}
        >>> rename_prefixes(sd, {LEGACY_TEACHER_PREFIX: TEACHER_PREFIX})
        {'model.w': 1, 'objective.teacher.network.w': 2, 'other': 3}
    """
    out: dict[str, Any] = {}
    for key, value in state_dict.items():
        new = key
        for old, replacement in renames.items():
            if key.startswith(old):
                new = replacement + key[len(old) :]
                break
        if new in out:
            raise ValueError(f"renaming {key!r} to {new!r} collides with another weight of that name")
        out[new] = value
    return out
