"""On-disk blocks: streaming packing equals packing at once, shards split and join back exactly, and the
memory-mapped reader returns the rows asked for."""
from itertools import chain
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st


from conftest import is_mapped
from flm_core.shards import BlockPacker, Blocks, ShardWriter, file_sha256, map_shard, shard_name


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.lists(st.integers(0, 65535), max_size=12), max_size=24), st.integers(1, 9),
       st.lists(st.integers(0, 24), max_size=6), st.integers(0, 65535))
def test_packing_in_batches_equals_packing_the_whole_stream(token_lists, seq_len, cuts, boundary):
    stream = list(chain.from_iterable(ids + [boundary] for ids in token_lists))
    packer = BlockPacker(seq_len, boundary)
    edges = [0, *sorted(c for c in cuts if c <= len(token_lists)), len(token_lists)]
    rows = np.concatenate([packer.add(token_lists[a:b]) for a, b in zip(edges, edges[1:])])
    assert rows.dtype == np.uint16 and rows.shape == (len(stream) // seq_len, seq_len)
    assert rows.ravel().tolist() == stream[:rows.size]
    assert packer.carry.tolist() == stream[rows.size:]  # the tail waits for more (and is dropped at the end)


def test_ids_beyond_uint16_are_refused():
    with pytest.raises(ValueError, match="uint16"):
        BlockPacker(4, 0).add([[70000]])


def write_shards(folder, rows, seq_len, shard_tokens, pieces=3):
    writer = ShardWriter(folder, "train", seq_len, shard_tokens)
    for piece in np.array_split(rows, pieces):
        writer.add(piece)
    return writer.close()


def test_shards_split_rows_into_full_files_and_join_back(tmp_path):
    rows = np.arange(23 * 4, dtype=np.uint16).reshape(23, 4)
    shards = write_shards(tmp_path, rows, 4, shard_tokens=5 * 4)
    assert [s["blocks"] for s in shards] == [5, 5, 5, 5, 3]  # every shard but the last is full
    assert [s["file"] for s in shards] == [shard_name("train", i) for i in range(5)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [s["file"] for s in shards]  # no temporary files
    for s in shards:
        assert file_sha256(tmp_path / s["file"]) == s["sha256"]
    blocks = Blocks([np.load(tmp_path / s["file"], mmap_mode="r") for s in shards])
    assert blocks.shape == (23, 4) and len(blocks) == 23 and blocks.numel() == 92
    assert torch.equal(blocks.read_all(), torch.from_numpy(rows.astype(np.int64)))


def test_a_split_too_small_for_one_row_still_gets_an_empty_shard(tmp_path):
    shards = ShardWriter(tmp_path, "val", 8).close()
    assert [s["blocks"] for s in shards] == [0]
    assert np.load(tmp_path / shards[0]["file"]).shape == (0, 8)


def test_the_reader_returns_the_rows_asked_for_across_shards(tmp_path):
    rows = np.random.default_rng(0).integers(0, 65535, size=(50, 6), dtype=np.uint16)
    shards = write_shards(tmp_path, rows, 6, shard_tokens=7 * 6, pieces=4)
    arrays = [map_shard(tmp_path / s["file"]) for s in shards]
    assert all(is_mapped(a) and not a.flags.writeable for a in arrays)  # mapped, not read
    assert all(np.array_equal(a, np.load(tmp_path / s["file"])) for a, s in zip(arrays, shards))
    blocks = Blocks(arrays)
    expected = torch.from_numpy(rows.astype(np.int64))
    index = torch.tensor([49, 0, 7, 6, 13, 14, 7, 48, -1])
    assert torch.equal(blocks[index], expected[index])
    assert torch.equal(blocks[np.array([3, 21])], expected[[3, 21]])
    assert torch.equal(blocks[10:30], expected[10:30]) and torch.equal(blocks[45:], expected[45:])
    assert torch.equal(blocks[8], expected[8]) and blocks[index].dtype == torch.int64
    with pytest.raises(IndexError, match="50 blocks"):
        blocks[torch.tensor([50])]


def test_shards_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="block lengths"):
        Blocks([np.zeros((2, 4), np.uint16), np.zeros((2, 5), np.uint16)])


def resident_file_kb() -> int:
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(status["RssFile"].split()[0])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_reading_rows_does_not_keep_the_shards_pages_resident(tmp_path):
    """12,800 random rows over 16 MiB of shards would touch every page of them; the reader gives the pages back
    after each read, so the process's resident file pages stay flat (the data stays in the page cache)."""
    rows = np.random.default_rng(1).integers(0, 65535, size=(1 << 16, 128), dtype=np.uint16)  # 16 MiB
    shards = write_shards(tmp_path, rows, 128, shard_tokens=1 << 21, pieces=8)
    blocks = Blocks([map_shard(tmp_path / s["file"]) for s in shards])
    before = resident_file_kb()
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        index = torch.randint(0, len(blocks), (64,), generator=generator)
        assert torch.equal(blocks[index], torch.from_numpy(rows[index.numpy()].astype(np.int64)))
    assert resident_file_kb() - before < 4096
