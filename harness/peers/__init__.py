"""CAM libraries users import instead of writing CAM code, run on the same model and images.

Peers are model-level: they take the model and images (their forward and backward included), not
features, so they sit beside the feature-level registry of :mod:`harness.cams`. Each library runs
twice: ``aligned`` (logit target, the GAP input as layer, the raw map where the library exposes
it) and ``default`` (as its documentation's defaults give it). Their declared setups
(:mod:`harness.peers.setup`) say what each computes; the peers stage holds them to it.
"""
from __future__ import annotations

from harness.peers.registry import PEERS, PeerSpec, peer_status

__all__ = ["PEERS", "PeerSpec", "peer_status"]
