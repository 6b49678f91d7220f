"""Real small model files of every built-in type, and crafted variants of them: bit flips
at many offsets of the payload, truncations, forest trees with out-of-range nodes, manifest
edits, a huge header length -- each resealed with a valid SHA-256, as an attacker would."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from marketpredictor_train.features.spec import default_spec
from marketpredictor_train.models.registry import get_model_type
from marketpredictor_train.store.modelfile import HEADER_SIZE, MAGIC, encode_model_file

N_FEATURES = 5
SMALL_PARAMS = {
    "xgb": {"n_estimators": 3, "max_depth": 2},
    "lgb": {"n_estimators": 3, "num_leaves": 4, "min_child_samples": 5},
    "rf": {"n_estimators": 3, "max_depth": 3},
}


def fitted(type_name: str) -> Any:
    rng = np.random.default_rng(0)
    X = rng.random((300, N_FEATURES))
    y = (X[:, 0] + rng.random(300) * 0.5 > 0.7).astype(int)
    model = get_model_type(type_name)(SMALL_PARAMS[type_name])
    model.fit(X, y)
    return model


def manifest_for(type_name: str, version: str, **edits: Any) -> dict[str, Any]:
    spec = default_spec()
    model_type = get_model_type(type_name)
    manifest = {
        "model_type": type_name,
        "params": {**model_type.default_params, **SMALL_PARAMS[type_name]},
        "payload_format": model_type.payload_format,
        "feature_spec": spec.to_dict(),
        "feature_spec_hash": spec.hash,
        "feature_columns": [f"f{i}" for i in range(N_FEATURES)],
        "label": {"horizon": 1, "dead_band": 0.0},
        "data_window": {"train_start": "2020-01-02", "train_end": "2022-12-30"},
        "metrics": {"accuracy": 0.52, "f1": 0.5},
        "version": version,
        "created_at": "2025-01-20T02:00:15+00:00",
    }
    manifest.update(edits)
    return manifest


def sealed(manifest: dict[str, Any], payload: bytes) -> bytes:
    """A model file with a valid checksum (and no signature)."""
    return encode_model_file(manifest, payload, signer=None)


def flips(payload: bytes, count: int) -> list[tuple[str, bytes]]:
    """``count`` payloads, each with one byte changed, at offsets spread over the payload
    (and every byte of the first 64, where headers and lengths live)."""
    offsets = sorted(
        set(range(min(64, len(payload))))
        | set(np.linspace(0, len(payload) - 1, count).astype(int).tolist())
    )
    out = []
    for i, offset in enumerate(offsets):
        data = bytearray(payload)
        data[offset] ^= (1, 0x80, 0x20, 0xFF)[i % 4]
        out.append((f"flip@{offset}", bytes(data)))
    return out


def truncations(payload: bytes, count: int) -> list[tuple[str, bytes]]:
    cuts = sorted(set(np.linspace(0, len(payload) - 1, count).astype(int).tolist()))
    return [(f"cut@{cut}", payload[:cut]) for cut in cuts]


def crafted_forests(payload: bytes) -> list[tuple[str, bytes]]:
    """The forest's skops zip rebuilt with one tree's node array edited: children out of
    range, a cycle, a split feature out of range, and the tree's n_classes argument."""
    source = zipfile.ZipFile(io.BytesIO(payload))
    schema = json.loads(source.read("schema.json"))
    node_files, class_files = [], []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("__class__") == "Tree":
                node_files.append(node["content"]["content"]["nodes"]["file"])
                class_files.append(node["__reduce__"]["args"]["content"][1]["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)

    def rebuilt(name: str, edit) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
            for item in source.namelist():
                data = source.read(item)
                if item == name:
                    array = np.load(io.BytesIO(data), allow_pickle=False)
                    edit(array)
                    buffer = io.BytesIO()
                    np.save(buffer, array, allow_pickle=False)
                    data = buffer.getvalue()
                target.writestr(item, data)
        return out.getvalue()

    def set_field(field: str, node: int, value: int):
        def edit(array: np.ndarray) -> None:
            array[field][node] = value

        return edit

    def bump(array: np.ndarray) -> None:
        array[0] = 10**6

    nodes = node_files[0]
    return [
        ("rf left child 10**6", rebuilt(nodes, set_field("left_child", 0, 10**6))),
        ("rf right child -5", rebuilt(nodes, set_field("right_child", 0, -5))),
        ("rf cycle to root", rebuilt(nodes, set_field("left_child", 1, 0))),
        ("rf feature 10**6", rebuilt(nodes, set_field("feature", 0, 10**6))),
        ("rf leaf with one child", rebuilt(nodes, set_field("left_child", 3, 1))),
        ("rf n_classes 10**6", rebuilt(class_files[0], bump)),
    ]


def manifest_edits(type_name: str, version: str) -> list[tuple[str, dict[str, Any]]]:
    base = manifest_for(type_name, version)
    fixed = sorted(get_model_type(type_name).reserved_params) or ["n_estimators"]
    return [
        ("params collide", {**base, "params": {**base["params"], fixed[0]: "x"}}),
        ("params a list", {**base, "params": [1, 2]}),
        ("horizon text", {**base, "label": {"horizon": "one"}}),
        ("horizon float", {**base, "label": {"horizon": 1.5}}),
        ("horizon zero", {**base, "label": {"horizon": 0}}),
        ("no feature_columns", {k: v for k, v in base.items() if k != "feature_columns"}),
        ("feature_columns wrong count", {**base, "feature_columns": ["a", "b"]}),
        ("feature_columns text", {**base, "feature_columns": "f0"}),
        ("feature_spec garbage", {**base, "feature_spec": {"indicators": "x"}}),
        ("feature_spec_hash other", {**base, "feature_spec_hash": "0" * 64}),
        ("no model_type", {k: v for k, v in base.items() if k != "model_type"}),
        ("unknown model_type", {**base, "model_type": "catboost-nope"}),
        ("train_end garbage", {**base, "data_window": {"train_end": "yesterday"}}),
        ("metrics a list", {**base, "metrics": [0.9]}),
        ("label a list", {**base, "label": [1]}),
        ("calibration garbage", {**base, "calibration": {"method": "magic"}}),
    ] + (
        # scikit-learn refuses arguments it does not know (the boosting libraries warn).
        [("params unknown", {**base, "params": {"no_such_argument": 1}})]
        if type_name == "rf"
        else []
    )


def corpus(type_name: str, version: str, *, flips_n: int, cuts_n: int) -> list[tuple[str, bytes]]:
    """(name, file bytes) of every crafted variant of one real model of ``type_name``."""
    payload = fitted(type_name).to_bytes()
    manifest = manifest_for(type_name, version)
    files = [(name, sealed(manifest, data)) for name, data in flips(payload, flips_n)]
    files += [(name, sealed(manifest, data)) for name, data in truncations(payload, cuts_n)]
    if type_name == "rf":
        files += [(name, sealed(manifest, data)) for name, data in crafted_forests(payload)]
    files += [
        (name, sealed(edited, payload)) for name, edited in manifest_edits(type_name, version)
    ]
    return files


def huge_header(path: Path, *, payload_len: int = 3 * 1024**3) -> None:
    """A sparse file whose header promises a multi-GiB payload (and whose size agrees)."""
    manifest = json.dumps({"version": "x"}).encode()
    header = struct.pack(">8sHIQ", MAGIC, 1, len(manifest), payload_len)
    with open(path, "wb") as handle:
        handle.write(header + manifest)
        handle.truncate(HEADER_SIZE + len(manifest) + payload_len + 32)
