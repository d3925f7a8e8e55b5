"""The cost-balanced plan of ``--shard-jobs`` (``clipbench.engine.balance``): hand-made cases whose LPT
result is worked out below, and the plan run as a job array of forked ranks against a plain run."""

from __future__ import annotations

import itertools

import pytest
from _distributed_fixtures import BATCH_SIZE, fork_ranks, stable, write_png_dataset
from _engine_fixtures import write_tiny_clip

from clipbench.cli import main
from clipbench.engine.balance import Unit, balanced_plan, holders, model_gflops, rank_units
from clipbench.engine.distributed import DistContext, rank_range
from clipbench.results.records import read_records


def _loads(plan):
    return [sum(u.cost for u in units) for units in plan]


def test_lpt_on_whole_jobs_matches_the_hand_worked_greedy_result():
    # share 14: no job is cut. LPT: 10->r0, 6->r1, 4->r1 (the lighter: 10/10), 3->r0 (a tie goes to the lower
    # rank: 13/10), 3->r1 (13/13), 2->r0: loads 15 and 13, where the optimum is 14/14 (10+4 | 6+3+3+2).
    plan = balanced_plan([10, 6, 4, 3, 3, 2], 2)
    assert [[u.job for u in units] for units in plan] == [[0, 3, 5], [1, 2, 4]]
    assert _loads(plan) == [15, 13]
    best = min(max(sum(c for c, s in zip([10, 6, 4, 3, 3, 2], side, strict=True) if s == r) for r in (0, 1))
               for side in itertools.product((0, 1), repeat=6))
    assert best == 14 and max(_loads(plan)) <= 4 / 3 * best


def test_a_job_above_the_fair_share_is_cut_into_pieces_and_the_scorer_runs_last():
    # total 48, share 12: job 0 (40) is cut into ceil(40/12) = 4 pieces of 10, one per rank; then 4 -> r0
    # and 4 -> r1 (ties go to the lower rank): loads 14, 14, 10, 10. Handing out whole jobs would put
    # 40 on one rank.
    plan = balanced_plan([40, 4, 4], 4)
    assert _loads(plan) == [14, 14, 10, 10]
    assert plan[0] == [Unit(1, 0, 1, 4.0), Unit(0, 0, 4, 10.0)]  # whole job first, then the scoring piece
    assert plan[1] == [Unit(0, 1, 4, 10.0), Unit(2, 0, 1, 4.0)]  # a non-scoring piece first: it never waits
    assert [[(u.job, u.piece) for u in units] for units in plan[2:]] == [[(0, 2)], [(0, 3)]]
    assert holders(plan)[0] == (0, 1, 2, 3)
    scorer = rank_units([40, 4, 4], DistContext(0, 4))[1][1]
    assert (scorer.rank, scorer.world_size, scorer.is_main, scorer.holders) == (0, 4, True, (0, 1, 2, 3))
    assert rank_units([40, 4, 4], DistContext(0, 4))[0][1] == DistContext()  # a whole job extracts alone


def test_plan_is_deterministic_complete_and_never_cuts_more_than_the_world():
    costs = [35.1 * n for n in (10_000, 50_000, 2_000, 300, 300, 120_000)] + [162.0 * 10_000]
    for world in (1, 2, 3, 8):
        plan = balanced_plan(costs, world)
        assert plan == balanced_plan(list(costs), world)  # every rank computes the same plan
        pieces = sorted((u.job, u.piece, u.pieces) for units in plan for u in units)
        for job in range(len(costs)):
            mine = [p for p in pieces if p[0] == job]
            assert [p[1] for p in mine] == list(range(mine[0][2])) and mine[0][2] <= world
        assert sum(_loads(plan)) == pytest.approx(sum(costs))
    assert balanced_plan([1, 1], 1) == [[Unit(0, 0, 1, 1.0), Unit(1, 0, 1, 1.0)]]
    assert balanced_plan([], 3) == [[], [], []]
    with pytest.raises(ValueError):
        balanced_plan([1.0, float("nan")], 2)


def test_model_gflops_from_the_registry_and_a_fallback_for_unknown_models():
    b16, l14, unknown = model_gflops(["ViT-B/16", "ViT-L/14", "/some/checkpoint.pt"])
    assert b16 == pytest.approx(35.1, abs=0.2) and l14 == pytest.approx(162, abs=1)
    assert unknown == pytest.approx((b16 + l14) / 2)
    assert model_gflops(["/a.pt", "/b.pt"]) == [1.0, 1.0]


@pytest.mark.subprocess
def test_shard_jobs_plan_in_a_job_array_scores_every_job_once_with_the_plain_numbers(tmp_path):
    """Two datasets (21 and 9 test images), zero-shot, ranks forked at once with --shard-jobs: the 21-image
    job is cut (world 2: pieces of 12 and 9 images; world 3: 8, 8 and 5) and each rank encodes what the
    plan gives it; the records equal a plain run's."""
    pets = write_png_dataset(tmp_path / "pets", sizes={"test": 21})
    more = write_png_dataset(tmp_path / "more", sizes={"test": 9}, seed=1)
    ckpt = write_tiny_clip(tmp_path / "tiny.pt")
    suite = tmp_path / "zs.yaml"
    suite.write_text(f"version: 1\ndatasets: ['folder:{pets}', 'folder:{more}']\ntasks: [zeroshot]\n"
                     f"options: {{batch_size: {BATCH_SIZE}, bootstrap: 50, offline: true, workers: 0, threads: 1}}\n")

    def argv(tag, *extra):
        return ["run", "--model", str(ckpt), "--suite", str(suite), "--device", "cpu", "--no-progress",
                "--cache-dir", str(tmp_path / f"cache-{tag}"), "--results-dir", str(tmp_path / f"res-{tag}"), *extra]

    assert main(argv("ref")) == 0
    def by_dataset(records):
        return sorted(stable(records), key=lambda r: r["dataset"])

    expected = {2: [rank_range(21, 2, 0, BATCH_SIZE)[1] + 9, 21 - rank_range(21, 2, 0, BATCH_SIZE)[1]],
                3: [9, 8 + 5, 8]}  # world 3: r0 the 9-image job, r1 pieces 0 and 2, r2 piece 1
    for world, forwards in expected.items():
        tag = f"plan{world}"
        codes = fork_ranks(world, lambda r, tag=tag, world=world: argv(tag, "--rank", str(r), "--world-size",
                                                                            str(world), "--shard-jobs"),
                           lambda r, tag=tag: {"CLIPBENCH_TEST_FORWARD_LOG": str(tmp_path / f"fw-{tag}.{r}")})
        assert codes == [0] * world
        assert by_dataset(read_records(tmp_path / f"res-{tag}")) == by_dataset(read_records(tmp_path / "res-ref"))
        done = [sum(int(n) for n in (tmp_path / f"fw-{tag}.{r}").read_text().split()) for r in range(world)]
        assert done == forwards, (world, done)


def test_a_waiting_scorer_counts_any_new_shard_as_progress_and_names_the_holding_rank(tmp_path):
    """The first piece of a cut job waits while the piece's holder may be busy with other jobs first: a
    shard of any entry keeps it waiting; once nothing moves, the message names the rank holding the piece."""
    from types import SimpleNamespace

    from clipbench.engine.distributed import wait_for_shards
    from clipbench.foundations.errors import ClipbenchError

    other = tmp_path / "other-entry" / "shards"
    other.mkdir(parents=True)
    store = SimpleNamespace(root=tmp_path, plan=lambda key: ([], [(20, 40)]))  # this job's piece 1: never
    key, split = SimpleNamespace(n_samples=40), SimpleNamespace(dataset_name="pets", split="test")
    now = [0.0]

    def sleep(seconds):  # the holder writes another job's shard every second for 10 s, then stops
        now[0] += seconds
        if now[0] <= 10:
            (other / f"{int(now[0] * 10):04d}.npz").write_bytes(b"")

    ctx = DistContext(0, 2, holders=(5, 3))
    with pytest.raises(ClipbenchError) as info:
        wait_for_shards(store, key, split, ctx, 4, timeout=3.0, poll=1.0, clock=lambda: now[0], sleep=sleep)
    assert 13 <= now[0] <= 15  # 10 s of progress elsewhere, then the 3 s timeout
    assert "rank 3 (piece 1 of 2) (20 of its samples [20, 40) missing)" in str(info.value)
    assert "rank 5, which scores the job, waits" in str(info.value)


def test_job_costs_are_images_times_gflops_model_major_after_limit():
    from types import SimpleNamespace

    from clipbench.engine.balance import job_costs

    adapters = [SimpleNamespace(expected_count=100, evaluation_split="test"),
                SimpleNamespace(expected_count=50, evaluation_split="test")]
    b16, l14 = model_gflops(["ViT-B/16", "ViT-L/14"])
    costs = job_costs(["ViT-B/16", "ViT-L/14"], adapters, None, SimpleNamespace(limit=None))
    assert costs == [b16 * 100, b16 * 50, l14 * 100, l14 * 50]
    assert job_costs(["ViT-B/16"], adapters, None, SimpleNamespace(limit=60)) == [b16 * 60, b16 * 50]
