"""Iterative refinement (the ``refine`` stage): where the trained model fails on its own
training queries, write new queries that the failure shows it needs, and retrain on the union.

- :mod:`inpars.refinement.failures`: the probe (which queries fail, which documents the model
  wrongly preferred, which documents get new queries);
- :mod:`inpars.refinement.rounds`: the rounds, each step a resumable stage, and the stop rule.
"""

from inpars.refinement.failures import Failure, find_failures, pick_documents, probe
from inpars.refinement.rounds import DevScore, RoundSteps, Start, refine

__all__ = ["DevScore", "Failure", "RoundSteps", "Start", "find_failures", "pick_documents", "probe", "refine"]
