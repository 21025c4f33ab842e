"""Shared harness of the benchmark scripts in ``benchmarks/``.

The scripts are run as ``python benchmarks/bench_x.py``, which puts
``benchmarks/`` on ``sys.path``, so ``from _harness.report import md_table``
works without any path edits. Each helper lives in exactly one module:

``paths``
    the repository, benchmark and default results folders.
``env``
    machine and environment record (``machine_info``, ``finish_machine``,
    ``set_threads``), the report header shared by the torch benchmarks.
``data``
    datasets: CLINC150 embeddings, scikit-learn digits, synthetic blobs; the
    ``--data`` argument.
``timing``
    ``timed``, ``best_time``, per-call latency statistics, ``with_load``
    (load average around a section), peak-memory helpers.
``report``
    ``log``, ``fmt_params``, ``md_table``, the targets table, ``write_results``.
``selection``
    ``select_on_val`` (hyper-parameter choice on the validation split), ``accuracy``.

``lvq_reference.py`` does not import this package: it runs in a separate
virtual environment without skproto or torch.
"""
