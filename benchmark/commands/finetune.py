"""`bench finetune`: LoRA or full fine-tuning of an encoder's image tower, end to end.

    bench finetune --model tiny-clip --task nih6x200 --method lora --epochs 3 --per-class 20
    bench finetune --model tiny-clip --task nih14 --method lora --protect sex --balance groups --loss groupdro
    torchrun --nproc_per_node 4 -m benchmark.cli finetune --model biomedclip --task nih14 --method full --device cuda

The dataset comes from the workdir registry (`bench extract --dataset nih --root DIR` registers it). Running the
same command again resumes an interrupted run from its last epoch checkpoint (`--no-resume` starts afresh).
"""

from __future__ import annotations

import argparse

from benchmark.commands.options import non_negative_float, non_negative_int, positive_float, positive_int

HELP = "LoRA or full fine-tuning of an encoder's image tower, end to end"


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("finetune", parents=[common], help=HELP, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="encoder name (see `bench models`)")
    parser.add_argument("--task", required=True, help="task name, e.g. nih6x200, nih14, nofinding")
    parser.add_argument("--method", required=True, choices=["lora", "full"], help="LoRA adapters or every weight")
    parser.add_argument("--dataset", default="nih", help="registered dataset name (default: nih)")
    from benchmark.finetune.config import PRESETS

    parser.add_argument("--preset", default="seed-study", choices=list(PRESETS),
                        help="hyperparameter preset (default seed-study; see docs/finetune.md)")
    parser.add_argument("--head", choices=["linear", "mlp"], default=None, help="classification head (default linear)")
    parser.add_argument("--epochs", type=positive_int, default=None, help="epochs (seed-study: 100)")
    parser.add_argument("--lr", type=positive_float, default=None, help="AdamW learning rate (seed-study: 1e-4)")
    parser.add_argument("--weight-decay", type=non_negative_float, default=None, help="AdamW weight decay (seed-study: 1e-5)")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="images per optimizer step (seed-study: 64)")
    parser.add_argument("--grad-accum", type=positive_int, default=None,
                        help="split each batch into K micro-batches (same arithmetic, less memory)")
    parser.add_argument("--patience", type=non_negative_int, default=None,
                        help="stop after P epochs without a better val loss (0: never; seed-study: never)")
    parser.add_argument("--no-augment", action="store_true", help="train without the study's augmentations")
    parser.add_argument("--lora-rank", type=positive_int, default=None, help="LoRA rank (seed-study: 16)")
    parser.add_argument("--lora-alpha", type=positive_float, default=None,
                        help="LoRA alpha (default: equal to the rank; the study's code used 1)")
    parser.add_argument("--lora-dropout", type=non_negative_float, default=None, help="LoRA dropout (default 0)")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default=None,
                        help="autocast precision (auto: bf16 on CUDA if supported, else fp16; fp32 on the CPU)")
    parser.add_argument("--protect", default=None, metavar="ATTRIBUTE",
                        help="mitigation: the protected attribute for --balance / --loss groupdro (sex, age, race, "
                             "insurance or an intersection such as sex*age; docs/mitigation.md)")
    parser.add_argument("--balance", choices=["none", "groups"], default=None,
                        help="groups: draw each epoch's images group-balanced with replacement (default none)")
    parser.add_argument("--loss", choices=["erm", "groupdro"], default=None,
                        help="groupdro: GroupDRO's online group weights; best epoch by the worst group's val loss "
                             "(default erm)")
    parser.add_argument("--dro-step", type=non_negative_float, default=None,
                        help="GroupDRO's step size for the group weights (default 0.01)")
    parser.add_argument("--seed", type=int, default=None, help="training seed (default 0)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (under torchrun each process takes its GPU)")
    parser.add_argument("--per-class", type=positive_int, default=None, help="nih6x200: images per class (default 200)")
    parser.add_argument("--task-param", action="append", default=None, metavar="KEY=VALUE",
                        help="other task parameters, e.g. split_fractions=0.7,0.1,0.2")
    parser.add_argument("--task-seed", type=int, default=0, help="seed of the task's subset and split (default 0)")
    parser.add_argument("--weights", default=None, help="checkpoint file or folder for the encoder")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow checkpoints that need full unpickling (only for files you trust)")
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                        help="continue an interrupted identical run from its last checkpoint (default: yes)")
    parser.add_argument("--run-id", default=None, help="name of the checkpoint folder (default: derived from the run)")
    parser.add_argument("--skip-bad", action="store_true", help="leave out images the pixel cache could not decode")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def build_config(args):
    import dataclasses

    from benchmark.finetune.config import NO_AUGMENTATION, make_config

    config = make_config(
        args.preset,
        method=args.method,
        head=args.head,
        epochs=args.epochs,
        lr=args.lr,
        weight_decay=args.weight_decay,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        lora_rank=args.lora_rank,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        precision=args.precision,
        seed=args.seed,
        protect=args.protect,
        balance=args.balance,
        loss=args.loss,
        dro_step=args.dro_step,
    )
    changes = {}
    if args.patience is not None:
        changes["patience"] = args.patience or None
    if args.no_augment:
        changes["augmentation"] = NO_AUGMENTATION
    return dataclasses.replace(config, **changes)


def run(args) -> int:
    from benchmark.core.workdir import Workdir
    from benchmark.pipelines.finetune import FineTuneRequest, run_finetune
    from benchmark.tasks import parse_task_params
    from benchmark.ui import RichProgress

    task_params = parse_task_params(args.task, args.task_param)
    if args.per_class is not None:
        task_params["per_class"] = args.per_class
    request = FineTuneRequest(
        model=args.model, task=args.task, config=build_config(args), preset=args.preset, dataset=args.dataset,
        task_params=task_params, task_seed=args.task_seed, device=args.device, weights=args.weights,
        trust_checkpoint=args.trust_checkpoint, resume=args.resume, run_id=args.run_id, skip_bad=args.skip_bad,
    )
    run_finetune(Workdir.resolve(getattr(args, "workdir", None)), request, RichProgress(enabled=not args.no_progress))
    return 0
