"""Versioned index storage: atomic versions, manifests, and clear refusals of bad or mismatched indexes."""

import json

import numpy as np
import pytest

from rag_pet.retrieval.store import IndexStoreError, check_compatible, read_manifest, versions
from tests.retrieval.test_sharded import random_unit_vectors, write_flat


def test_each_build_is_a_new_version_and_old_ones_stay(tmp_path):
    first, manifest = write_flat(tmp_path, "family", random_unit_vectors(50, 8, seed=1), num_shards=2)
    first_files = {p.name: p.read_bytes() for p in first.rglob("*") if p.is_file()}
    second, _ = write_flat(tmp_path, "family", random_unit_vectors(60, 8, seed=2), num_shards=3)
    assert versions(tmp_path, "family") == [1, 2]
    assert {p.name: p.read_bytes() for p in first.rglob("*") if p.is_file()} == first_files
    directory, latest = read_manifest(tmp_path, "family")
    assert directory == second and latest.version == 2 and latest.num_vectors == 60 and latest.num_shards == 3
    assert read_manifest(tmp_path, "family", version=1)[1].num_vectors == 50
    assert (
        manifest.dim == 8 and manifest.created and set(manifest.files_sha256) >= {"ids.json", "shard_000/index.faiss"}
    )


def test_a_half_written_version_is_invisible(tmp_path):
    write_flat(tmp_path, "family", random_unit_vectors(50, 8, seed=1), num_shards=2)
    (tmp_path / "family" / ".building-crashed").mkdir()
    (tmp_path / "family" / ".building-crashed" / "ids.json").write_text("[")
    assert versions(tmp_path, "family") == [1]
    assert read_manifest(tmp_path, "family")[1].version == 1


def test_a_corrupt_index_file_is_refused_by_name(tmp_path):
    directory, _ = write_flat(tmp_path, "family", random_unit_vectors(50, 8, seed=1), num_shards=2)
    shard_file = directory / "shard_001" / "index.faiss"
    shard_file.write_bytes(shard_file.read_bytes()[:100])
    with pytest.raises(IndexStoreError, match=r"shard_001/index.faiss is missing or corrupt"):
        read_manifest(tmp_path, "family")


def test_an_unreadable_manifest_is_refused(tmp_path):
    directory, _ = write_flat(tmp_path, "family", random_unit_vectors(50, 8, seed=1), num_shards=2)
    (directory / "manifest.json").write_text(json.dumps({"name": "family"}))
    with pytest.raises(IndexStoreError, match="manifest.json is unreadable"):
        read_manifest(tmp_path, "family")


def test_missing_index_and_version_name_what_exists(tmp_path):
    with pytest.raises(IndexStoreError, match="no index named 'nothing'.*jobs.index"):
        read_manifest(tmp_path, "nothing")
    write_flat(tmp_path, "family", random_unit_vectors(50, 8, seed=1), num_shards=1)
    with pytest.raises(IndexStoreError, match=r"has versions \[1\], not 7"):
        read_manifest(tmp_path, "family", version=7)


def test_manifest_mismatches_are_refused(tmp_path):
    _, manifest = write_flat(tmp_path, "family", np.eye(8, dtype=np.float32), num_shards=1)
    check_compatible(manifest, dim=8, corpus_sha256="", encoder_sha256="")
    with pytest.raises(IndexStoreError, match="holds 8-d vectors but the encoder gives 384-d"):
        check_compatible(manifest, dim=384)
    with pytest.raises(IndexStoreError, match="another corpus"):
        check_compatible(manifest, dim=8, corpus_sha256="abc")
    with pytest.raises(IndexStoreError, match="other document-encoder weights"):
        check_compatible(manifest, dim=8, encoder_sha256="abc")


def test_a_failed_build_leaves_the_previous_version_untouched(tmp_path):
    from rag_pet.errors import ConfigError
    from rag_pet.retrieval.build import index_vectors

    first, manifest = write_flat(tmp_path, "family", random_unit_vectors(50, 8, seed=1), num_shards=2)
    before = {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}
    manifest.factory = "IVF4096,Flat"  # more centroids than vectors: faiss refuses to train
    with pytest.raises(ConfigError, match="index.factory='IVF4096,Flat'"):
        index_vectors(tmp_path, manifest, [str(i) for i in range(50)], random_unit_vectors(50, 8, seed=2), 2, 1000)
    assert versions(tmp_path, "family") == [1]
    assert {p: p.read_bytes() for p in first.rglob("*") if p.is_file()} == before
    assert [p.name for p in (tmp_path / "family").iterdir()] == ["v000001"]
