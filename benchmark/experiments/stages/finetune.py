"""finetune/<encoder>/<task>/<method>/seed<S>: LoRA or full fine-tuning (`benchmark.pipelines.finetune`).
Done when the run with the same id (the digest of everything that determines it) has finished; a killed
run resumes from its last epoch checkpoint."""

from __future__ import annotations

from benchmark.experiments.stages import run_output
from benchmark.experiments.stages.extract import device_of


def request_of(job):
    from benchmark.experiments.parse import finetune_config
    from benchmark.experiments.spec import MethodEntry
    from benchmark.pipelines.finetune import FineTuneRequest

    payload = job.payload
    method = MethodEntry(name=payload["method"], kind="finetune", params=payload["overrides"],
                         preset=payload["preset"])
    return FineTuneRequest(
        model=payload["model"], task=payload["task"], config=finetune_config(method, seed=payload["seed"]),
        preset=payload["preset"], dataset=payload["dataset"], task_params=payload["task_params"],
        task_seed=payload["task_seed"], device=device_of(job), weights=payload["weights"],
        trust_checkpoint=payload["trust_checkpoint"], skip_bad=payload["skip_bad"],
        experiment=payload["experiment"],
    )


def check(job, ctx) -> dict | None:
    from benchmark.pipelines.extract import expected_weights_digest
    from benchmark.pipelines.finetune import finetune_run_id, finished_predictions, run_description

    request = request_of(job)
    weights_digest = expected_weights_digest(request.model, request.weights)
    if weights_digest is None:
        return None
    _, _, manifest_digest = ctx.registered(request.dataset)
    task = ctx.task(request.dataset, request.task, request.task_seed, request.task_params)
    description = run_description(request, weights_digest=weights_digest, manifest_digest=manifest_digest,
                                  task=task, world_size=job.processes)
    predictions = finished_predictions(ctx.workdir, finetune_run_id(description), request.task)
    return None if predictions is None else {"runs": {request.config.method: run_output(predictions)}}


def run(job, ctx) -> dict:
    from benchmark.pipelines.finetune import run_finetune

    request = request_of(job)
    outcome = run_finetune(ctx.workdir, request, ctx.progress)
    if outcome.predictions is None:  # a rank other than 0 under torchrun
        return {}
    return {"runs": {request.config.method: run_output(outcome.predictions)}}
