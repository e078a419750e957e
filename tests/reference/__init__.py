"""Frozen pre-issue-8 implementations (commit a0338fe), kept as test oracles and benchmark baselines."""
