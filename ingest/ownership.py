"""Server mode: which manifest records a writer may change, so replicas never delete each other's.

Several app replicas (or ingest jobs) may write one Chroma server, one at a time. Each brings
its own corpus folders: a shared folder (the same files on every machine) or a folder of its own
(uploads land in the corpus of the replica that received them). A writer must not read "not in
my folders" as "deleted" for documents another writer brought in. So every corpus folder gets an
identity, a random id kept in a hidden file inside it: a folder shared between machines has one
identity, two folders on two machines have two, even under the same path. A writer withdraws or
renames only records of its own folders' identities; a record that names one of its files is its
to update, whoever wrote it.
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from ingest.corpus import SourceFile
from quellenchat.storage import SourceRecord

log = logging.getLogger(__name__)

ID_FILE = ".quellenchat-korpus-id"


def corpus_identity(folder: Path, *, create: bool = True) -> str:
    """The folder's identity: the id in its hidden id file, written on first use.

    A read-only folder falls back to host name and absolute path; without `create` (dry runs)
    a folder without id file has none yet ("").
    """
    path = folder / ID_FILE
    try:
        text = path.read_text(encoding="ascii").strip()
        if text:
            return text
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("Korpus-Kennung %s unlesbar: %s", path, exc)
    if not create:
        return ""
    try:
        with path.open("x", encoding="ascii") as handle:  # exclusive: two writers, one id
            identity = uuid.uuid4().hex
            handle.write(identity + "\n")
        return identity
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        return f"{socket.gethostname()}:{folder.resolve()}"


def corpus_identities(folders: Sequence[Path], *, create: bool = True) -> dict[str, str]:
    """Identity per corpus folder, keyed like `SourceRecord.corpus` (the folder as given)."""
    return {f.as_posix(): corpus_identity(f, create=create) for f in folders if f.is_dir()}


def writable_records(
    files: Sequence[SourceFile], records: Sequence[SourceRecord], identities: Mapping[str, str]
) -> list[SourceRecord]:
    """The records this writer may change: those of its own folders and those of its files."""
    present = {f.source for f in files}
    own = set(identities.values()) - {""}
    paths = set(identities)
    return [
        r
        for r in records
        if r.source in present or (r.corpus_id in own if r.corpus_id else r.corpus in paths)
    ]
