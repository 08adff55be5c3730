"""Model-level CAM paths: they take the model and its inputs, not features (beside ``harness.cams``)."""
