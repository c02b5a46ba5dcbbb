"""A finished run's `summary.json`: what ran, the selected epoch, test scores and times, and the
few lines the main command prints of it.
"""

import statistics

import jax

from dropout_study import allocator, train_step, xla_options


def summarize(config, model_config, info, progress, test, *, num_params, compile_s, workdir):
    """The run's short summary: best epoch and value, test scores, data source and sizes, times.

    `model_config`: `config.model` as `models.resolve_config` completed it (rates and keep probs).
    `progress`: the run's final early_stopping.Progress. `test`: score_test's {"selected": ...,
    "final": ...} (None on processes that write nothing).
    """
    history = progress.history
    timed = [r for r in history if not r["warmup"]]
    best = progress.best or {}
    best_record = next((r for r in history if r["epoch"] == best.get("epoch")), None)
    return {
        "task": config.task,
        "model": config.model.name,
        "model_config": model_config.to_dict(),
        "seed": config.seed,
        "device_resident": config.device_resident,
        "compute_dtype": config.compute_dtype,  # parameters and optimizer state are float32
        "data": info,
        "num_params": num_params,
        "epochs_run": len(history),
        "num_epochs": config.num_epochs,
        "stopped_early": progress.stopped_early,
        "steps": progress.step,
        "monitor": config.monitor,
        "best_epoch": best.get("epoch"),
        f"best_{config.monitor}": best.get("value"),
        "best": best_record,
        "final": history[-1] if history else None,
        "test": test,
        "times": {
            "compile_s": compile_s,
            "train_s": sum(r["train_time_s"] for r in history),
            "median_epoch_s": statistics.median(r["epoch_time_s"] for r in timed)
            if timed
            else None,
            "median_examples_per_s": (
                statistics.median(r["examples_per_s"] for r in timed) if timed else None
            ),
            "timed_epochs": len(timed),
            "allocator": allocator.active(),  # glibc malloc slows memory-bound steps severalfold
            "xla_options": xla_options.active(),  # matmul library: Eigen or YNNPACK
        },
        "devices": {
            "platform": jax.default_backend(),
            "count": jax.device_count(),
            "processes": jax.process_count(),
        },
        "workdir": str(workdir),
    }


def format_summary(summary):
    """A few human-readable lines of a summary."""
    data_info = summary["data"]
    times = summary["times"]
    monitor = summary["monitor"]
    best = summary[f"best_{monitor}"]
    speed = (
        f"median epoch {times['median_epoch_s']:.1f} s, {times['median_examples_per_s']:.0f} ex/s"
        if times["median_epoch_s"] is not None
        else "no epoch after the first to time"
    )
    return "\n".join(
        [
            f"{summary['model']} on {data_info.get('name')} (source {data_info.get('source')}, "
            f"sizes {data_info.get('sizes')}), seed {summary['seed']}, "
            f"{summary['num_params']:,} parameters",
            f"best {monitor} {best:.4f} at epoch {summary['best_epoch']} of "
            f"{summary['epochs_run']}" + (" (stopped early)" if summary["stopped_early"] else ""),
            _test_line(summary),
            f"compile {times['compile_s']:.1f} s, training {times['train_s']:.1f} s, {speed}",
            f"results in {summary['workdir']}",
        ]
    )


def _test_line(summary):
    selected = summary["test"]["selected"]
    score = train_step.score_name(summary["task"])
    return (
        f"test {score} {selected[score]:.4f} at the selected epoch {selected['epoch']} "
        f"(test split: {summary['data'].get('validation')!r} protocol)"
    )
