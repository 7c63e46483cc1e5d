"""`--shard i/n` splits any task set deterministically; `eval merge` of the shards equals an unsharded run."""

from __future__ import annotations

import dataclasses

from agentkit.envs.executors import ShardSpec, parse_shard
from agentkit.envs.metrics import summarize
from agentkit.envs.results import ResultsStore
from agentkit.testing.oracle import oracle_script


def test_shards_partition_by_task_id_alone(small_tasks) -> None:
    ids = [t.task.task_id for t in small_tasks]
    shards = [[i for i in ids if ShardSpec(s, 3).holds(i)] for s in (1, 2, 3)]
    assert sorted(sum(shards, [])) == sorted(ids)  # each task in exactly one shard
    assert [i for i in reversed(ids) if ShardSpec(2, 3).holds(i)] == list(reversed(shards[1]))  # order-free
    assert parse_shard("2/3") == ShardSpec(2, 3)


def test_merged_shards_equal_an_unsharded_run(cli, serve, task_file, small_tasks, tmp_path, capsys) -> None:
    srv = serve(oracle_script(small_tasks[:8]))  # the rest fail: the merge must keep failures too
    base = ["eval", "--tasks", str(task_file), "--provider", "vllm", "--model", "oracle", "--base-url", srv.base_url,
            "--k", "2", "--no-report"]  # fmt: skip
    whole = tmp_path / "whole.jsonl"
    assert cli(*base, "--out", str(whole)) == 0
    parts = [tmp_path / f"s{i}.jsonl" for i in (1, 2, 3)]
    for i, part in enumerate(parts, 1):
        assert cli(*base, "--shard", f"{i}/3", "--out", str(part)) == 0
    assert cli(*base, "--shard", "2/3", "--out", str(parts[0])) == 2  # a shard's file is its own
    assert "shard 1/3" in capsys.readouterr().err
    merged = tmp_path / "merged.jsonl"
    assert cli("eval", "merge", *map(str, parts), "--out", str(merged)) == 0
    assert cli("eval", "merge", str(parts[0]), "--out", str(parts[0])) == 2  # never into an input

    a, b = ResultsStore(whole).read(), ResultsStore(merged).read()
    assert a.config == b.config and a.k == b.k == 2

    def outcome(r):
        return {k: v for k, v in dataclasses.asdict(r).items() if k not in ("wall_time", "transcript_z")}

    assert sorted(map(outcome, a.records), key=lambda d: (d["task_id"], d["attempt"])) == \
        sorted(map(outcome, b.records), key=lambda d: (d["task_id"], d["attempt"]))  # fmt: skip
    sa, sb = summarize(a.records, k=2), summarize(b.records, k=2)
    assert sa.overall == sb.overall and sa.by_family == sb.by_family and sa.statuses == sb.statuses
    assert 0 < sa.pass1 < 1
