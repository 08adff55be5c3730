"""Ray for ``--engine ray``: whether it is installed, whether a cluster address answers, and a
session that never outlives the run. Light to import (Ray itself only when called), so that the
CLI's preflight can check all three before TensorFlow loads."""
from __future__ import annotations

import logging
import math
import os
import socket
from contextlib import contextmanager
from typing import Callable, Iterator

from harness.config import EngineConfig
from harness.errors import UsageError

RAY_INSTALL = "pip install '.[ray]'"
CONNECT_TIMEOUT_S = 5.0


def import_ray():
    """Ray, or a :class:`UsageError` naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"--engine ray needs Ray Data, which is not installed here ({exc}); install it with "
                         f"{RAY_INSTALL} (or pip install 'ray[data]'), or run with --engine local") from None
    return ray


def check_address(address: str | None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """A ``host:port`` (or ``ray://host:port``) address must accept a TCP connection within
    ``timeout`` seconds; otherwise a :class:`UsageError` naming it. ``auto`` and None are left to Ray."""
    if not address or address == "auto":
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"--ray-address {address!r}: not HOST:PORT (e.g. 10.0.0.5:6379, ray://10.0.0.5:10001 or auto)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise UsageError(f"--ray-address {address}: the Ray cluster cannot be reached ({exc.strerror or exc}); start "
                         f"it (ray start --head) or check the address, or run with --engine local") from None


@contextmanager
def ray_session(config: EngineConfig, log: Callable[[str], None] = print) -> Iterator[object]:
    """Ray connected for the pass: the cluster at ``config.address``, or a local instance with
    room for the pool. One started here is shut down on the way out, whatever happens (an
    interrupt included), so no Ray process outlives the run; one already running is left as it was."""
    ray = import_ray()
    check_address(config.address)
    if ray.is_initialized():
        yield ray
        return
    options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                   configure_logging=True)
    if config.address:
        options["address"] = config.address
    else:
        options["num_cpus"] = max(os.cpu_count() or 1, math.ceil(config.workers * config.cpus))
    log(f"connecting to the Ray cluster at {config.address}" if config.address else
        f"starting a local Ray instance with {options['num_cpus']} CPUs")
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"--ray-address {config.address}" if config.address else "a local Ray instance"
        raise UsageError(f"{where}: Ray could not start or connect ({str(exc)[:300]}); check the address and that "
                         "the cluster runs the same Ray and Python versions, or run with --engine local") from None
    try:
        yield ray
    finally:
        ray.shutdown()
