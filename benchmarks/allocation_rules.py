"""Could any rule that splits a batch over skills, seeing only what a real loop sees, save 30%? (issue 16, `mix`)

    .venv/bin/python benchmarks/allocation_rules.py DIR [DIR ...] --out PATH [--replicates 200] [--clusters JSON ...]

`allocation_bound.py` answers how much the *best* split of the budget across `mix`'s skills could
save: it knows every skill's learning curve in advance. A strategy does not. This script asks the
next question: how much do simple, realistic rules save, rules that decide each batch's split from
what a loop could observe by then? It simulates them in the same fitted model of how each skill is
learnt, instead of training new adapters (hours of CPU per run).

**The model** is `allocation_bound.py`'s: ``acc(n) = Σ_s w_s·f_s(n_s) + c_N``, with ``f_s`` the isotonic
fit of skill s's test accuracy against its labels, fitted on the runs of the *other* seeds, so that
no seed's own test noise shapes its simulation.

**What a rule sees.** Each rule is the best case of a strategy that clusters the pool: its clusters
*are* the skills (on `mix`'s prompt embeddings they are not quite: chain shares a cluster with add).
After each round it sees how the adapter of that round answered the examples it then bought, held
out since it was not trained on them: ``Binomial(q_s, f_s(n_s))`` correct of the ``q_s`` labels of skill
s bought at counts ``n``. The initial labels count as answered by the untrained model, ``f_s(n0_s)``
standing in for it. A rule's estimate of skill s's accuracy is the smoothed rate over the last
``--window`` rounds of that feedback,

    p̂_s = (correct_s + a/2) / (answered_s + a),   a = --prior,

which is 1/2 for a skill with no feedback yet.

**The rules** (each batch split by :func:`activelora.strategies.cluster_weighted.allocate`, the library's
largest-remainder split, capped by what the pool still holds):
- ``random``: a multivariate hypergeometric draw from what the pool still holds; random selection.
- ``balanced``: one label of each skill in turn, skills in a random order: ``oracle-balanced``'s rule.
- ``inverse-accuracy``: weight ``1 − p̂_s + ε``: ``cluster-weighted``'s rule with calibrated confidence.
- ``learning-zone``: weight ``p̂_s(1 − p̂_s) + ε``: skills of middling accuracy first, neither the
  solved nor the hopeless (the goals of intermediate difficulty of Florensa et al., ICML 2018).
- ``learning-progress``: weight ``max(p̂_s,t − p̂_s,t−1, 0) + ε``: skills whose accuracy is rising
  (the learning progress of Oudeyer et al. 2007; Matiisen et al. 2019's teacher-student curricula).
- ``balanced-learnable``: ``balanced`` over the skills whose fitted curve ever gains ``--learnable``
  over its start. It knows in hindsight which skills can be learnt at all: an oracle, for scale.

``ε = --explore`` keeps every skill in play.

**Over real clusters.** With ``--clusters``, the three feedback rules run again over k-means
clusters of the pool's prompt embeddings, as a clustering strategy would: one
``pool_clusters.py --json`` file per k-means seed, replicate r on file r mod F (a real run
clusters with its own seed). Feedback is then per cluster, and within a cluster the labels
fall on its skills at random. Each rule runs ``--replicates`` times per seed, the
same random streams for every rule. Per seed, the mean modelled curve of each rule gives the labels
it needs to reach random's mean modelled final accuracy; the saving is ``1 − labels / final labels``.
Writes ``<out>.md`` and ``<out>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from allocation_bound import fit_model, observations, predict, require_two_seeds  # noqa: E402  (sibling scripts)
from tables import fail, write_table  # noqa: E402

from activelora.errors import DataError  # noqa: E402
from activelora.experiment.paired import labels_to_reach, t_interval  # noqa: E402
from activelora.experiment.report import predictions_file  # noqa: E402
from activelora.strategies.cluster_weighted import allocate  # noqa: E402

# A rule: (feedback rounds, room left per unit, batch size, rng) -> labels per unit this round.
# A unit is a skill, or a cluster with --clusters.
Feedback = list[tuple[np.ndarray, np.ndarray]]  # per round: (correct per unit, answered per unit)
Rule = Callable[[Feedback, np.ndarray, int, np.random.Generator], np.ndarray]
# The rules that learn from feedback, and so can run over clusters instead of the skills.
FEEDBACK_RULES = ("inverse-accuracy", "learning-zone", "learning-progress")


def smoothed_accuracy(feedback: Feedback, window: int, prior: float) -> np.ndarray:
    """``p̂_s = (correct_s + a/2) / (answered_s + a)`` over the last ``window`` rounds of feedback."""
    recent = feedback[-window:]
    correct = np.sum([c for c, _ in recent], axis=0)
    answered = np.sum([k for _, k in recent], axis=0)
    return (correct + prior / 2) / (answered + prior)


def round_robin(skills: np.ndarray, room: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """One label of each listed skill with room in turn, the skills in a random order, until ``n``
    are taken: oracle-balanced's batch. ``skills``: indices allowed (all others get none, unless
    none of them has room left, then every skill with room is allowed)."""
    if n > room.sum():
        raise ValueError(f"a batch of {n} from a pool holding {room.sum()}")
    quota = np.zeros(len(room), dtype=np.int64)
    order = rng.permutation(skills)
    while n > 0:
        open_ = [s for s in order if room[s] > quota[s]]
        if not open_:
            open_ = [s for s in rng.permutation(len(room)) if room[s] > quota[s]]
        for s in open_[:n]:
            quota[s] += 1
        n -= len(open_[:n])
    return quota


def weighted_rule(weight: Callable[[Feedback], np.ndarray], explore: float) -> Rule:
    """A rule that splits each batch in proportion to ``weight(feedback) + explore``."""
    def rule(feedback: Feedback, room: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        return allocate(weight(feedback) + explore, room, n)
    return rule


def make_rules(curves: list[np.ndarray], shares: np.ndarray, window: int, prior: float, explore: float,
               learnable: float) -> dict[str, Rule]:
    """The rules of the module docstring, for one seed's fitted ``curves`` (the oracle reads them)."""
    def p_hat(feedback: Feedback) -> np.ndarray:
        return smoothed_accuracy(feedback, window, prior)

    def progress(feedback: Feedback) -> np.ndarray:
        if len(feedback) < 2:
            return np.ones(len(feedback[0][1]))  # nothing to compare yet: every unit alike
        now = smoothed_accuracy(feedback, 1, prior)
        before = smoothed_accuracy(feedback[:-1], 1, prior)
        return np.maximum(now - before, 0.0)

    gains = np.array([(curve[-1] - curve[0]) / share for curve, share in zip(curves, shares)])
    learnt = np.flatnonzero(gains >= learnable)
    return {
        "random": lambda feedback, room, n, rng: rng.multivariate_hypergeometric(room, n),
        "balanced": lambda feedback, room, n, rng: round_robin(np.arange(len(room)), room, n, rng),
        "inverse-accuracy": weighted_rule(lambda feedback: 1.0 - p_hat(feedback), explore),
        "learning-zone": weighted_rule(lambda feedback: p_hat(feedback) * (1.0 - p_hat(feedback)), explore),
        "learning-progress": weighted_rule(progress, explore),
        "balanced-learnable": lambda feedback, room, n, rng: round_robin(learnt, room, n, rng),
    }


def into_cells(rows: np.ndarray, quota: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``quota[u]`` labels drawn at random from each row of ``rows`` (what each unit still holds of
    each skill): a multivariate hypergeometric draw per row, none where a row holds one skill."""
    out = np.zeros_like(rows)
    for u in np.flatnonzero(quota):
        held = np.flatnonzero(rows[u])
        if len(held) == 1:
            out[u, held[0]] = quota[u]
        else:
            out[u] = rng.multivariate_hypergeometric(rows[u], int(quota[u]))
    return out


def simulate(rule: Rule, membership: np.ndarray, initial: np.ndarray, batch: int, rounds: int,
             skill_accuracy: Callable[[np.ndarray], np.ndarray], rng: np.random.Generator) -> tuple[list[np.ndarray], Feedback]:
    """One run of ``rule`` over units (clusters, or the skills themselves): the label counts per
    skill after each round (the initial ones first) and the feedback per unit it saw.

    ``membership`` (U, S): how many examples of skill s unit u holds. ``initial`` (S,): the seed's
    initial labels per skill, spread over the units that hold the skill at random. The rule splits
    each batch over the units; within a unit the labels fall on its skills at random. Feedback:
    per unit, how many of the labels it just bought the adapter answered correctly, each drawn
    ``Binomial(1, f_s(n_s))`` from ``skill_accuracy(counts)``, the modelled test accuracy per skill.
    """
    cells = into_cells(membership.T.copy(), initial, rng).T  # per skill, over the units holding it

    def answered(bought: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return rng.binomial(bought, skill_accuracy(counts)[None, :]).sum(axis=1), bought.sum(axis=1)

    feedback: Feedback = [answered(cells, cells.sum(axis=0))]
    history = [cells.sum(axis=0)]
    for _ in range(rounds):
        quota = np.asarray(rule(feedback, (membership - cells).sum(axis=1), batch, rng), dtype=np.int64)
        bought = into_cells(membership - cells, quota, rng)
        feedback.append(answered(bought, cells.sum(axis=0)))
        cells = cells + bought
        history.append(cells.sum(axis=0))
    return history, feedback


def seed_rules(initial: np.ndarray, pool: np.ndarray, model: tuple[list[np.ndarray], dict[int, float]], skills: list[str],
               shares: np.ndarray, batch: int, rounds: int, replicates: int, seed: int, settings: dict,
               clusters: dict[str, np.ndarray]) -> dict:
    """Every rule on one seed: mean modelled curve, mean final labels per skill, the labels each
    needs to reach random's mean final, and its accuracy at the final budget against random's.
    ``shares``: each skill's share of the test set; ``settings``: :func:`make_rules`' knobs;
    ``clusters``: named lists of cluster memberships (U, S), one per k-means seed, over which the
    feedback rules run again."""
    curves, offsets = model
    rules = make_rules(curves, shares, **settings)
    runs = [(name, rule, [np.diag(pool)]) for name, rule in rules.items()]
    for label, memberships in clusters.items():
        runs += [(f"{name}, {label}", rules[name], memberships) for name in FEEDBACK_RULES]

    def skill_accuracy(counts: np.ndarray) -> np.ndarray:
        acc = [curve[min(int(c), len(curve) - 1)] / share for curve, share, c in zip(curves, shares, counts)]
        return np.clip(acc, 0.0, 1.0)

    def accuracy(counts: np.ndarray) -> float:
        return predict(curves, skills, dict(zip(skills, counts.tolist()))) + offsets.get(int(counts.sum()), 0.0)

    out: dict = {}
    for name, rule, memberships in runs:
        curves_run, finals = [], []
        for rep in range(replicates):
            # The same stream per replicate for every rule: paired, as the real studies are by seed.
            rng = np.random.default_rng([seed, rep])
            # A real run clusters its pool with its own k-means seed: replicate r takes clustering r mod F.
            history, _ = simulate(rule, memberships[rep % len(memberships)], initial, batch, rounds, skill_accuracy, rng)
            curves_run.append([accuracy(c) for c in history])
            finals.append(history[-1])
        labels = [int(c.sum()) for c in history]
        out[name] = {"labels": labels, "curve": np.mean(curves_run, axis=0).tolist(),
                     "final_allocation": dict(zip(skills, np.mean(finals, axis=0).round(1).tolist()))}
    target = out["random"]["curve"][-1]
    for info in out.values():
        reach = labels_to_reach(list(zip(info["labels"], info["curve"])), target)
        info["labels_to_random_final"] = reach
        info["saving"] = None if reach is None else 1 - reach / info["labels"][-1]
        info["final_minus_random"] = info["curve"][-1] - target
    return out


def read_clusters(paths: list[Path], skills: list[str], pool: np.ndarray) -> dict[str, list[np.ndarray]]:
    """``{"<k> clusters": [membership (k, S) per file]}`` from ``pool_clusters.py --json`` files
    (one per k-means seed), which must describe this pool: per skill, its clusters' counts add up
    to the pool's, and every file must hold the same cluster counts."""
    out: dict[str, list[np.ndarray]] = {}
    for path in paths:
        try:
            made_up = json.loads(path.read_text())["clusters"]
            found = {f"{k} clusters": np.array([[int(cluster.get(s, 0)) for s in skills] for cluster in rows])
                     for k, rows in made_up.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            fail(f"allocation_rules: --clusters {path}: not a pool_clusters.py --json file ({exc})")
        if out and set(found) != set(out):
            fail(f"allocation_rules: --clusters {path}: holds {sorted(found)}, the first file {sorted(out)}")
        for label, membership in found.items():
            if membership.ndim != 2 or not np.array_equal(membership.sum(axis=0), pool):
                fail(f"allocation_rules: --clusters {path}: its {label} do not hold this pool "
                     f"({dict(zip(skills, pool.tolist()))})")
            out.setdefault(label, []).append(membership)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", help="experiment folders of the same task and test set (with random runs)")
    parser.add_argument("--metric", default="accuracy", help="accuracy (skill-balanced, the default) or accuracy_pool_like")
    parser.add_argument("--replicates", type=int, default=200, help="simulated runs per rule and seed (default 200)")
    parser.add_argument("--window", type=int, default=2, help="rounds of feedback a rule's accuracy estimate pools (default 2)")
    parser.add_argument("--prior", type=float, default=1.0, help="pseudo-answers in that estimate, half of them correct (default 1)")
    parser.add_argument("--explore", type=float, default=0.05, help="weight every skill keeps (default 0.05)")
    parser.add_argument("--learnable", type=float, default=0.1,
                        help="balanced-learnable's bar: a skill's fitted gain in accuracy over its curve (default 0.1)")
    parser.add_argument("--clusters", type=Path, nargs="+", default=[],
                        help="pool_clusters.py --json files, one per k-means seed: run the feedback rules again over "
                             "their clusters, replicate r on file r mod F")
    parser.add_argument("--out", required=True, help="output path without suffix")
    args = parser.parse_args()
    for name in ("replicates", "window"):
        if getattr(args, name) < 1:
            fail(f"allocation_rules: --{name} must be at least 1, got {getattr(args, name)}")
    if args.prior <= 0 or args.explore < 0:
        fail(f"allocation_rules: --prior must be > 0 and --explore >= 0, got {args.prior} and {args.explore}")
    try:
        rows = observations(args.dirs, args.metric)
    except DataError as exc:
        fail(f"allocation_rules: {exc}")
    randoms = sorted((row for row in rows if row["strategy"] == "random"), key=lambda row: (row["seed"], row["round"]))
    if not randoms:
        fail(f"allocation_rules: no random run with a finished round in {', '.join(args.dirs)}")
    require_two_seeds(rows, "allocation_rules")
    skills = sorted({s for row in rows for s in row["acc_skill"]})
    pool = np.array([rows[0]["pool"].get(s, 0) for s in skills])
    shares = np.array([rows[0]["test_share"][s] for s in skills])
    upto = int(pool.max())
    final_round = max(row["round"] for row in randoms)
    n_test = sum(1 for _ in (Path(rows[0]["folder"]) / "round-0" / predictions_file(args.metric)).open())
    seeds = sorted({row["seed"] for row in randoms if row["round"] == final_round})
    clusters = read_clusters(args.clusters, skills, pool) if args.clusters else {}
    result: dict = {"metric": args.metric, "skills": skills, "pool": dict(zip(skills, pool.tolist())),
                    "n_test": n_test, "settings": {k: getattr(args, k) for k in
                                                   ("replicates", "window", "prior", "explore", "learnable")},
                    "runs": len({row["folder"] for row in rows}), "seeds": {},
                    "cluster_files": [str(path) for path in args.clusters]}
    for seed in seeds:
        own = [row for row in randoms if row["seed"] == seed]
        initial = np.array([own[0]["n_skill"].get(s, 0) for s in skills])
        batch = (own[-1]["labels"] - own[0]["labels"]) // final_round
        model = fit_model([row for row in rows if row["seed"] != seed], skills, upto)
        settings = {k: getattr(args, k) for k in ("window", "prior", "explore", "learnable")}
        result["seeds"][str(seed)] = seed_rules(initial, pool, model, skills, shares, batch, final_round,
                                                args.replicates, seed, settings, clusters)
    names = list(next(iter(result["seeds"].values())))
    final_labels = next(iter(result["seeds"].values()))["random"]["labels"][-1]
    lines = [f"Allocation rules on `{args.metric}`, simulated in the additive skill model fitted on {result['runs']} runs "
             f"(held out by seed), seeds {seeds}, {args.replicates} replicates per rule and seed; feedback window "
             f"{args.window}, prior {args.prior:g}, explore {args.explore:g}.", "",
             f"| rule | saving against random's final at {final_labels} labels (seeds reaching it) | "
             f"accuracy − random's at {final_labels} labels (problems of {n_test}) | " + " | ".join(skills) + " |",
             "|---|---|---|" + "---:|" * len(skills)]
    result["summary"] = {}
    for name in names:
        per_seed = [info[name] for info in result["seeds"].values()]
        savings = [info["saving"] for info in per_seed if info["saving"] is not None]
        diff = t_interval([info["final_minus_random"] * n_test for info in per_seed])
        saving = t_interval(savings) if savings else (None, None, None)
        allocation = {s: float(np.mean([info["final_allocation"][s] for info in per_seed])) for s in skills}
        result["summary"][name] = {"saving": saving, "reached": len(savings), "seeds": len(per_seed),
                                   "final_minus_random_problems": diff, "final_allocation": allocation}

        def show(value: tuple, percent: bool) -> str:
            mean, low, high = value
            if mean is None:
                return "never"
            unit = (lambda v: f"{v:.0%}") if percent else (lambda v: f"{v:+.1f}")
            return unit(mean) + ("" if low is None else f" [{unit(low)}, {unit(high)}]")
        lines.append(f"| {name} | {show(saving, True)} ({len(savings)}/{len(per_seed)}) | {show(diff, False)} | "
                     + " | ".join(f"{allocation[s]:.0f}" for s in skills) + " |")
    lines += ["", "Labels per skill: mean over seeds and replicates at the final budget. A seed that never reaches "
                  "random's final is left out of the saving's mean and counted beside it."]
    write_table(Path(args.out), "\n".join(lines), result)


if __name__ == "__main__":
    main()
