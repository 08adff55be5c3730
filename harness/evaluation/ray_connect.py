"""Ray for ``--engine ray``: whether it is installed, whether a cluster address answers as a Ray
cluster, whether the cluster holds the pool, and a session that never outlives the run. Light to
import (Ray itself only when called), so that the CLI's preflight can check them before
TensorFlow loads."""
from __future__ import annotations

import logging
import math
import os
import signal
import socket
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from harness.config import EngineConfig
from harness.errors import UsageError

RAY_INSTALL = "pip install '.[ray]'"
CONNECT_TIMEOUT_S = 5.0
RESOURCE_STEP = 1e-4  # Ray's finest fraction of a resource
_FIX = "check the address (the GCS, HOST:6379 as `ray start --head` prints it, or ray://HOST:10001), or run with " \
       "--engine local"


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
    """A cluster address must answer as Ray does, within ``timeout`` seconds per step: a valid
    ``host:port`` (or ``ray://host:port``) accepting a TCP connection and speaking gRPC (HTTP/2;
    Ray's GCS and its client server both do, an HTTP server or the dashboard's port does not);
    ``auto`` must find a running cluster. Otherwise a :class:`UsageError` naming it. None (a local
    instance) passes."""
    target = _auto_address() if address == "auto" else address
    if not target or target == "auto":  # a local instance, or auto where Ray's finder has moved: Ray's to find
        return
    where = address if target == address else f"{address} (found {target})"
    host, port = _host_port(target, where)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise UsageError(f"--ray-address {where}: the Ray cluster cannot be reached ({exc.strerror or exc}); start "
                         f"it (ray start --head) or {_FIX}") from None
    if not _tls() and not _speaks_grpc(f"{host}:{port}" if ":" not in host else f"[{host}]:{port}", timeout):
        raise UsageError(f"--ray-address {where}: something answers there but it is not a Ray cluster (no gRPC "
                         f"reply within {timeout:g} s; an HTTP server, or the dashboard's port 8265?); {_FIX}")


def _host_port(address: str, where: str) -> tuple[str, int]:
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UsageError(f"--ray-address {where!r}: not HOST:PORT (e.g. 10.0.0.5:6379, ray://10.0.0.5:10001 or auto)")
    if not 1 <= int(port) <= 65535:
        raise UsageError(f"--ray-address {where}: {port} is not a valid port (1-65535); {_FIX}")
    return host.strip("[]"), int(port)


def _auto_address() -> str:
    """The cluster ``auto`` means, as Ray finds it (``RAY_ADDRESS``, the latest ``ray start``, a
    running GCS), or a :class:`UsageError` when there is none."""
    try:
        from ray._private.services import get_ray_address_from_environment
    except ImportError:  # Ray moved its helper: leave auto to ray.init
        return "auto"
    try:
        found = get_ray_address_from_environment("auto", None)
    except ConnectionError:
        found = None
    if not found:
        raise UsageError("--ray-address auto: no running Ray cluster was found on this machine (none started with "
                         "`ray start`, RAY_ADDRESS unset); start one, pass its address, or leave --ray-address out "
                         "to start a local instance for the run")
    return found


def _tls() -> bool:
    """Ray's gRPC uses TLS (``RAY_USE_TLS``): a plain channel cannot tell, so only TCP is checked."""
    return os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true")


def _speaks_grpc(target: str, timeout: float) -> bool:
    """Whether ``target`` completes a gRPC (HTTP/2) handshake within ``timeout`` seconds."""
    import grpc
    channel = grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)])
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
        return True
    except grpc.FutureTimeoutError:
        return False
    finally:
        channel.close()


def check_resources(config: EngineConfig, nodes: list[dict[str, float]], where: str) -> None:
    """The pool fits ``nodes`` (each node's resources as Ray reports them; a resource left out is
    0): every actor's CPUs and GPUs on one node, and ``workers`` actors in all, counted node by
    node. Otherwise a :class:`UsageError` naming the resource, so that the run stops instead of
    waiting forever for actors Ray cannot place."""
    for key, flag, each in (("CPU", "--cpus-per-worker", config.cpus), ("GPU", "--gpus-per-worker", config.gpus)):
        if each <= 0:
            continue
        have = [float(n.get(key, 0.0)) for n in nodes]
        fix = f"lower --workers or {flag}, or run on a cluster with more (--ray-address)"
        if max(have, default=0.0) == 0:
            also = f"pass {flag} 0, or run on a cluster with GPUs (--ray-address)" if key == "GPU" else fix
            raise UsageError(f"{flag} {each:g}: {where} has no {key} (Ray sees 0); {also}")
        if max(have) < each:
            raise UsageError(f"{flag} {each:g}: no node of {where} has {each:g} {key}s for one actor (the largest "
                             f"has {max(have):g}); {fix}")
        room = sum(math.floor(h / each + 1e-9) for h in have)
        if room < config.workers:
            raise UsageError(f"--workers {config.workers} x {flag} {each:g} needs {config.workers * each:g} {key}s; "
                             f"{where} has {sum(have):g}, room for {room} actor{'s' if room != 1 else ''}; {fix}")


def local_resources() -> dict[str, float]:
    """The CPUs and GPUs a local Ray instance started here will have, as Ray detects them (CPUs
    within the cgroup's quota, the GPUs ``CUDA_VISIBLE_DEVICES`` leaves)."""
    try:
        from ray._private import accelerators, utils
        gpu = accelerators.get_accelerator_manager_for_resource("GPU")
        count, visible = gpu.get_current_node_num_accelerators(), gpu.get_current_process_visible_accelerator_ids()
        return {"CPU": float(utils.get_num_cpus()), "GPU": float(count if visible is None else min(count, len(visible)))}
    except Exception:  # Ray's detection moved: CPUs from the OS, GPUs left to the check once Ray has started
        return {"CPU": float(os.cpu_count() or 1), "GPU": math.inf}


def _alive_nodes(ray) -> list[dict[str, float]]:
    return [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]


@contextmanager
def ray_session(config: EngineConfig, log: Callable[[str], None] = print) -> Iterator[object]:
    """Ray connected for the pass: the cluster at ``config.address``, or a local instance. The pool
    must fit what it reports (:func:`check_resources`) before any actor is created. One started
    here is shut down on the way out, whatever happens (an interrupt included), so no Ray process
    outlives the run; one already running is left as it was."""
    ray = import_ray()
    check_address(config.address)
    if ray.is_initialized():
        check_resources(config, _alive_nodes(ray), "the running Ray instance")
        yield ray
        return
    where = f"the Ray cluster at {config.address}" if config.address else "the local Ray instance"
    log(f"connecting to {where}" if config.address else "starting a local Ray instance")
    _init(ray, dict(address=config.address or "local", include_dashboard=False, log_to_driver=False,
                    logging_level=logging.WARNING, configure_logging=True), where)
    try:
        check_resources(config, _alive_nodes(ray), where)
        yield ray
    finally:
        ray.shutdown()


def _init(ray, options: dict, where: str) -> None:
    """``ray.init``, with a SIGTERM during it taken as an interrupt (Ray's own handlers would exit
    15, or 1, without a word) and the caller's SIGTERM handler put back afterwards, so that a
    SIGTERM during the pass is the CLI's interrupt too (exit 130, Ray shut down). A process with no
    handler of its own (the default action) keeps Ray's, which stops Ray's processes."""
    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGTERM) if main else None
    handler = handler if callable(handler) else None
    try:
        ray.init(**options)
    except SystemExit:  # Ray's SIGTERM handler, during its start
        _shutdown_quietly(ray)
        raise KeyboardInterrupt from None
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(f"{where}: Ray could not start or connect ({str(exc)[:300]}); check the address and that "
                         "the cluster runs the same Ray and Python versions, or run with --engine local") from None
    finally:
        if handler is not None:
            signal.signal(signal.SIGTERM, handler)


def _shutdown_quietly(ray) -> None:
    try:
        ray.shutdown()
    except Exception:  # a start cut short: shut down what there is, and say nothing of the rest
        pass
