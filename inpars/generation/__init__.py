"""Synthetic query generation: prompt templates, backends, the resumable runner, the stage.

Library use, without a pipeline::

    from inpars.config import GenerateConfig
    from inpars.generation import (PromptBuilder, RunSettings, generate_queries, load_backend,
                                   load_template, read_synthetic_queries)

    cfg = GenerateConfig(num_docs=100)
    backend = load_backend(cfg)
    builder = PromptBuilder(load_template("inpars"), truncate=backend.truncate, doc_max_tokens=256)
    generate_queries(docs, "out/shards", backend=backend, builder=builder,
                     run=RunSettings(template="inpars", model=cfg.model, seed=42))
    queries = list(read_synthetic_queries("out/shards"))
"""

from __future__ import annotations

from inpars.generation.backends import Backend, Completion, GenerationRequest, load_backend
from inpars.generation.parsing import REJECT_REASONS, QueryCheck, check_query, clean_query
from inpars.generation.prompts import FewShotExample, PromptBuilder, check_no_test_queries, select_examples
from inpars.generation.runner import GenerationResult, RunSettings, generate_queries
from inpars.generation.sampling import SamplingSettings, derive_seed
from inpars.generation.selection import iter_documents, select_doc_ids
from inpars.generation.shards import read_rejects, read_synthetic_queries
from inpars.generation.stage import generate_stage, sampling_settings
from inpars.generation.templates import (
    BUILTIN_TEMPLATES,
    Prompt,
    Template,
    load_template,
    parse_template,
    render,
)

__all__ = [
    "BUILTIN_TEMPLATES",
    "REJECT_REASONS",
    "Backend",
    "Completion",
    "FewShotExample",
    "GenerationRequest",
    "GenerationResult",
    "Prompt",
    "PromptBuilder",
    "QueryCheck",
    "RunSettings",
    "SamplingSettings",
    "Template",
    "check_no_test_queries",
    "check_query",
    "clean_query",
    "derive_seed",
    "generate_queries",
    "generate_stage",
    "iter_documents",
    "load_backend",
    "load_template",
    "parse_template",
    "read_rejects",
    "read_synthetic_queries",
    "render",
    "sampling_settings",
    "select_doc_ids",
    "select_examples",
]
