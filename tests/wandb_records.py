"""The records of a W&B offline run, read from its transaction log (``run-<id>.wandb``) into W&B's own
protobuf messages: what ``wandb sync`` would upload.

wandb ships no reader of this file any more (its Go core writes it). The format is LevelDB's log: a 7-byte
header (``:W&B``, a magic number, a version), then 32 KiB blocks of chunks, each with a CRC-32 of its type
and data, a length and a type (a whole record, or its first, middle or last part).
"""

import json
import struct
import zlib
from pathlib import Path

from wandb.proto import wandb_internal_pb2

HEADER = b":W&B\xe1\xbe\x00"
BLOCK, CHUNK_HEADER = 32 * 1024, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[wandb_internal_pb2.Record]:
    """Every record of the log at ``path``, in order; a chunk whose checksum fails raises."""
    data = path.read_bytes()
    assert data.startswith(HEADER), f"{path} is not a W&B transaction log"
    position, parts, found = len(HEADER), b"", []
    while position + CHUNK_HEADER <= len(data):
        if BLOCK - position % BLOCK < CHUNK_HEADER:  # a block's tail too short for a chunk is padding
            position += BLOCK - position % BLOCK
            continue
        checksum, length, kind = struct.unpack("<IHB", data[position : position + CHUNK_HEADER])
        if kind == 0:  # zeros after the last chunk
            break
        chunk = data[position + CHUNK_HEADER : position + CHUNK_HEADER + length]
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) == checksum, f"{path}: bad chunk at {position}"
        position += CHUNK_HEADER + length
        parts = chunk if kind in (FULL, FIRST) else parts + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            found.append(record)
    return found


def offline_run(run_folder: Path) -> dict:
    """What the W&B offline runs in ``run_folder/wandb/`` hold, oldest first: per run, its id, name, group and
    project, its config (``key: value``), its history rows (``key: value`` each, ``_step`` and the trainer's
    ``trainer/global_step`` included) and the image files it saved."""
    runs = []
    for folder in sorted((run_folder / "wandb").glob("offline-run-*")):
        (log,) = folder.glob("run-*.wandb")
        images = sorted(folder.glob("files/media/images/**/*.png"))
        run = {"folder": folder, "config": {}, "history": [], "images": images}
        for record in records(log):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                info = record.run
                run |= {"id": info.run_id, "name": info.display_name, "group": info.run_group, "project": info.project}
                run["config"] |= {item.key: json.loads(item.value_json) for item in info.config.update}
            elif kind == "config":
                run["config"] |= {item.key: json.loads(item.value_json) for item in record.config.update}
            elif kind == "history":
                run["history"].append({_key(item): json.loads(item.value_json) for item in record.history.item})
        runs.append(run)
    return runs


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)
