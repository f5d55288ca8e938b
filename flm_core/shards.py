"""Token blocks on disk: packed into fixed-length rows, appended to .npy shards, read back memory-mapped.

    BlockPacker: token lists -> (N, L) uint16 rows (documents joined by a boundary id, tail carried over)
    ShardWriter: rows -> {split}-00000.npy, {split}-00001.npy, ... each written whole (atomic) and hashed
    Blocks:      the shards of one split as one (N, L) sequence, memory-mapped: rows are read on demand

Memory: a packer holds under one row of carry plus the rows of one shard being filled; a reader holds the
mapped files' page cache (shared between processes, dropped by the kernel) and the rows it returns.
"""
from __future__ import annotations

import hashlib
import mmap
from pathlib import Path

import numpy as np
import torch

from flm_core.checkpoint import atomic_write

SHARD_TOKENS = 1 << 24  # tokens per shard (32 MiB of uint16); every shard but the last of a split is full
TOKEN_DTYPE = np.uint16


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:05d}.npy"


class BlockPacker:
    """Documents, each followed by `boundary_id`, as one stream cut into rows of `seq_len` tokens.

    `add` returns the rows completed so far; what is left (< seq_len tokens) waits for the next documents,
    and the incomplete tail of the whole stream is dropped."""

    def __init__(self, seq_len: int, boundary_id: int):
        if seq_len < 1:
            raise ValueError(f"seq_len must be positive, got {seq_len}")
        self.seq_len, self.boundary_id = seq_len, boundary_id
        self.carry = np.zeros(0, dtype=np.int64)

    def add(self, token_lists: list[list[int]]) -> np.ndarray:
        lengths = np.fromiter((len(ids) + 1 for ids in token_lists), dtype=np.int64, count=len(token_lists))
        stream = np.full(int(lengths.sum()), self.boundary_id, dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else lengths
        for start, ids in zip(starts.tolist(), token_lists):
            stream[start:start + len(ids)] = ids
        stream = np.concatenate([self.carry, stream])
        if stream.size and (stream.min() < 0 or stream.max() > np.iinfo(TOKEN_DTYPE).max):
            raise ValueError("token ids must fit in uint16 (0..65535)")
        full = stream.size // self.seq_len * self.seq_len
        self.carry = stream[full:]
        return stream[:full].astype(TOKEN_DTYPE).reshape(-1, self.seq_len)


class ShardWriter:
    """Rows appended to numbered shards of `rows_per_shard` rows in `folder`. A shard file appears only once
    it is whole (atomic rename), so a killed writer leaves whole shards and hidden temporary files."""

    def __init__(self, folder: Path, split: str, seq_len: int, shard_tokens: int = SHARD_TOKENS):
        self.folder, self.split, self.seq_len = Path(folder), split, seq_len
        self.rows_per_shard = max(1, shard_tokens // seq_len)
        self.pending: list[np.ndarray] = []
        self.pending_rows = 0
        self.shards: list[dict] = []  # {"file", "blocks", "sha256"} of each shard written

    @property
    def rows(self) -> int:
        return sum(s["blocks"] for s in self.shards) + self.pending_rows

    def add(self, rows: np.ndarray) -> None:
        self.pending.append(rows)
        self.pending_rows += len(rows)
        if self.pending_rows < self.rows_per_shard:
            return
        stacked = np.concatenate(self.pending)  # at most one shard plus one batch of rows
        whole = len(stacked) // self.rows_per_shard * self.rows_per_shard
        for start in range(0, whole, self.rows_per_shard):
            self._write(stacked[start:start + self.rows_per_shard])
        self.pending = [stacked[whole:].copy()]  # a copy: the written rows are let go of
        self.pending_rows = len(stacked) - whole

    def close(self) -> list[dict]:
        """Write the last, partial shard (none if it would be empty, unless the split has no shard at all)."""
        if self.pending_rows or not self.shards:
            rows = np.concatenate(self.pending) if self.pending else np.zeros((0, self.seq_len), TOKEN_DTYPE)
            self._write(rows)
        self.pending, self.pending_rows = [], 0
        return self.shards

    def _write(self, rows: np.ndarray) -> None:
        name = shard_name(self.split, len(self.shards))
        path = self.folder / name

        def save(tmp: Path) -> None:
            with open(tmp, "wb") as f:  # a file object: np.save would append .npy to a path
                np.save(f, np.ascontiguousarray(rows, dtype=TOKEN_DTYPE))

        atomic_write(path, save)
        self.shards.append({"file": name, "blocks": int(len(rows)), "sha256": file_sha256(path)})


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def map_shard(path: Path) -> np.ndarray:
    """A shard's rows as a read-only array over a memory map of its file (nothing is read until used). The
    map is advised MADV_RANDOM: a row read pulls in its own pages, not the kernel's read-ahead around them."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read_header:
            raise ValueError(f"{path}: .npy format version {version} is not one np.save writes for token rows")
        shape, fortran, dtype = read_header[version](f)
        offset = f.tell()
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if fortran or len(shape) != 2:
        raise ValueError(f"{path}: expected a C-ordered (rows, length) array, got shape {shape}")
    if hasattr(mmap, "MADV_RANDOM"):
        mapped.madvise(mmap.MADV_RANDOM)
    return np.frombuffer(mapped, dtype=dtype, count=shape[0] * shape[1], offset=offset).reshape(shape)


def _release(array: np.ndarray) -> None:
    """Unmap from this process the pages of `array`'s memory map that reads brought in (MADV_DONTNEED on a
    read-only file map: the data stays in the kernel's page cache, a later read maps it again). Without it
    the pages a rank has read stay in its RSS as file pages, up to the whole corpus over a long run."""
    while isinstance(array, np.ndarray):
        array = array.base
    mapped = array.obj if isinstance(array, memoryview) else array
    if isinstance(mapped, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        mapped.madvise(mmap.MADV_DONTNEED)


class Blocks:
    """The rows of one split, stored in shards, as one (N, L) sequence. Each shard is memory-mapped
    (`map_shard`); indexing reads only the rows asked for and returns an int64 tensor."""

    def __init__(self, arrays: list[np.ndarray]):
        if not arrays:
            raise ValueError("no shards to read")
        widths = {a.shape[1] for a in arrays}
        if len(widths) != 1:
            raise ValueError(f"shards of different block lengths: {sorted(widths)}")
        self.arrays = arrays
        self.starts = np.cumsum([0] + [len(a) for a in arrays])  # row i lives in shard searchsorted(starts, i)
        self.shape = (int(self.starts[-1]), widths.pop())

    def __len__(self) -> int:
        return self.shape[0]

    def numel(self) -> int:
        return self.shape[0] * self.shape[1]

    def __getitem__(self, rows: int | slice | torch.Tensor | np.ndarray) -> torch.Tensor:
        """rows: an int (or 0-d tensor), a slice, or a 1-D integer tensor/array of row numbers -> (L,) or
        (len(rows), L) int64. Boolean masks are refused (they would read as row numbers 0 and 1)."""
        if isinstance(rows, slice):
            index = np.arange(*rows.indices(len(self)))
        else:
            index = np.asarray(rows)
            if index.dtype == bool or not np.issubdtype(index.dtype, np.integer):
                raise TypeError(f"rows must be integers, not {index.dtype}")
            if index.ndim == 0:
                return self[index.reshape(1)][0]
            index = index.astype(np.int64)
        if index.size and (index.min() < -len(self) or index.max() >= len(self)):
            raise IndexError(f"row index out of range for {len(self)} blocks")
        index = np.where(index < 0, index + len(self), index)
        out = np.empty((index.size, self.shape[1]), dtype=np.int64)
        shard = np.searchsorted(self.starts, index, side="right") - 1
        for s in np.unique(shard).tolist():
            here = shard == s
            out[here] = self.arrays[s][index[here] - self.starts[s]]
            _release(self.arrays[s])
        return torch.from_numpy(out)

    def read_all(self) -> torch.Tensor:
        """Every row, in memory: (N, L) int64 (for the small validation split and small corpora)."""
        return self[:]
