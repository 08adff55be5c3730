"""The evaluation pass: the model and every CAM implementation over a stream of trials, feeding
agreement statistics and the localization accumulators (:mod:`harness.metrics`); and the gallery
data the report draws. Below the runners, above the pure numerics."""
