"""The CoT data engine behind ``prepare/build_cot.py`` (MoGen-CoT t2m and MoUnd-CoT m2t records).

Modules:

* :mod:`prepare.cot.captions`: keyword parse of a caption into clauses, clause phrases, limb names.
* :mod:`prepare.cot.template`: the offline :class:`TemplateReasoner` and the wording of motion facts.
* :mod:`prepare.cot.openai_client`: prompts and the OpenAI-compatible client (retries, cache).
* :mod:`prepare.cot.records`: tokens records in, (item, caption) units, validated CoT records out.
* :mod:`prepare.cot.refine`: refine records (a plan to refine in the prompt, the gold target) for
  Chain-of-Motion's later rounds.
* :mod:`prepare.cot.builder`: writing the JSONL files of each split and the run summary.
"""
